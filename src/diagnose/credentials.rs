//! Root cause of a credentials failure (Karpenter gets no AWS identity: IRSA or EKS Pod
//! Identity not in effect), inferred from the error text; the remediation names the fix.

use super::finding::{CredentialsPath, Finding, Fix, evidence};
use super::model::{Confidence, ReasonCode};
use crate::signal::{PolicyLayer, Signal};

/// One credentials failure to explain.
pub struct CredentialsCase<'a> {
    pub signal: &'a Signal,
    /// The role Karpenter was to run as: the ServiceAccount's, `--controller-role`, or the
    /// role the message names.
    pub role: Option<&'a str>,
}

pub fn reason(case: &CredentialsCase<'_>) -> Finding {
    let s = case.signal;
    let action = s.action.as_deref().unwrap_or("");
    let role = case.role.map(str::to_string);
    let oidc = s
        .error_code
        .as_deref()
        .is_some_and(|c| c.starts_with("InvalidIdentityToken"))
        || s.oidc_issuer.is_some();
    let (reason, how, summary) = if oidc {
        (
            ReasonCode::OidcProviderMissing,
            CredentialsPath::OidcProvider,
            format!(
                "STS knows no OpenID Connect provider for the cluster's issuer{}: IRSA cannot work until it is registered in IAM",
                s.oidc_issuer
                    .as_deref()
                    .map(|i| format!(" {i}"))
                    .unwrap_or_default()
            ),
        )
    } else if action.eq_ignore_ascii_case("sts:AssumeRoleWithWebIdentity") {
        (
            ReasonCode::TrustPolicyMismatch,
            CredentialsPath::WebIdentity,
            format!(
                "STS refused sts:AssumeRoleWithWebIdentity for Karpenter's ServiceAccount token: the trust policy of {} does not let it in (issuer, sub or aud)",
                case.role.unwrap_or("the controller role")
            ),
        )
    } else if action.eq_ignore_ascii_case("eks-auth:AssumeRoleForPodIdentity") {
        (
            ReasonCode::TrustPolicyMismatch,
            CredentialsPath::PodIdentity,
            format!(
                "EKS Pod Identity could not assume {} for Karpenter: its trust policy must allow pods.eks.amazonaws.com sts:AssumeRole and sts:TagSession",
                case.role.unwrap_or("the associated role")
            ),
        )
    } else if action.to_ascii_lowercase().starts_with("sts:assumerole")
        || matches!(
            s.layer,
            Some(PolicyLayer::NoTrustPolicy | PolicyLayer::TrustExplicitDeny)
        )
    {
        (
            ReasonCode::TrustPolicyMismatch,
            CredentialsPath::AssumeRole,
            format!(
                "{} may not assume {}: the role's trust policy does not allow it",
                s.principal.as_deref().unwrap_or("the caller"),
                s.resource.as_deref().or(case.role).unwrap_or("the role")
            ),
        )
    } else {
        return Finding {
            reason: ReasonCode::Undetermined,
            confidence: Confidence::Inferred,
            summary: format!("Karpenter cannot get its AWS credentials ({action})"),
            evidence: vec![evidence(
                "error message",
                "a credentials failure the doctor has no reason code for",
            )],
            statement: None,
            fix: Fix::Investigate {
                role,
                action: s.action.clone(),
                resource: None,
            },
        };
    };
    let missing = match how {
        CredentialsPath::OidcProvider => {
            "the account's OIDC providers (aws iam list-open-id-connect-providers) and the cluster's issuer (aws eks describe-cluster) would confirm it"
        }
        _ => {
            "the role's trust policy, the cluster's OIDC issuer and Karpenter's ServiceAccount would confirm it and name the statement at fault"
        }
    };
    Finding {
        reason,
        confidence: Confidence::Inferred,
        summary,
        evidence: vec![evidence(
            "error message",
            format!(
                "{} was refused: inferred from the error text; {missing}",
                if action.is_empty() {
                    "Karpenter's credentials"
                } else {
                    action
                }
            ),
        )],
        statement: None,
        fix: Fix::Credentials {
            how,
            role: s
                .resource
                .clone()
                .filter(|_| how == CredentialsPath::AssumeRole)
                .or(role),
            issuer: s.oidc_issuer.clone(),
            caller: s.principal.clone(),
        },
    }
}
