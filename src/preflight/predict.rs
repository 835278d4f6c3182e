//! A refusal `preflight` proves, written as the Diagnosis of the failure it predicts: each
//! refused request becomes the signal Karpenter would log for it, and each EC2NodeClass key
//! the one an instance would die of; the diagnosis pipeline reasons on them with the same
//! facts, so the fingerprint, reason and remediation are the failure's. Their rule id makes
//! the failure premise a prediction: what the facts prove is `Predicted` (no failure has been
//! seen, `diagnose::premise::confidence`); what rests on an unknown stays `Inferred`. Pure.

use super::{Matrix, Row, Settings, Verdict};
use crate::diagnose::diagnose;
use crate::diagnose::model::{Confidence, Diagnosis, Evidence, ReasonCode};
use crate::diagnose::premise::PREDICTED_RULE;
use crate::facts::{Facts, Lookup};
use crate::policy::{Decision, PolicyType};
use crate::signal::{
    Category, NodeClaimInfo, NodeClassInfo, Observations, Origin, PolicyLayer, Signal, Source,
};

/// Where the predicted signals say they come from.
const ORIGIN: &str = "(preflight)";

/// The layer AWS's sentence would name for a refusal.
fn layer(decision: Decision, by: PolicyType) -> PolicyLayer {
    match (decision, by) {
        (Decision::ExplicitDeny, PolicyType::Identity) => PolicyLayer::IdentityExplicitDeny,
        (Decision::ExplicitDeny, PolicyType::PermissionsBoundary) => {
            PolicyLayer::BoundaryExplicitDeny
        }
        (Decision::ExplicitDeny, PolicyType::ServiceControlPolicy) => PolicyLayer::ScpExplicitDeny,
        (Decision::ExplicitDeny, PolicyType::ResourcePolicy) => PolicyLayer::ResourceExplicitDeny,
        (_, PolicyType::PermissionsBoundary) => PolicyLayer::NoBoundary,
        (_, PolicyType::ServiceControlPolicy) => PolicyLayer::NoScp,
        (_, PolicyType::ResourcePolicy) => PolicyLayer::NoResourcePolicy,
        (_, PolicyType::Identity) => PolicyLayer::NoIdentityPolicy,
    }
}

fn signal(message: String, category: Category) -> Signal {
    let origin = Origin {
        file: ORIGIN.into(),
        line: 0,
    };
    Signal::new(Source::Log, origin, PREDICTED_RULE, category, &message)
}

/// The signal Karpenter would log when AWS refuses `row`'s request.
fn refusal(row: &Row, version: &str) -> Option<Signal> {
    let (Verdict::Refused(decision, denial), Some(req)) = (&row.verdict, &row.request) else {
        return None;
    };
    let pass_role = req.action.eq_ignore_ascii_case("iam:PassRole");
    let ec2_call = row.template.call.starts_with("ec2:");
    let mut s = signal(
        describe(row, version),
        if pass_role {
            Category::PassRoleDenied
        } else {
            Category::ActionDenied
        },
    );
    s.error_code = Some(
        if ec2_call {
            "UnauthorizedOperation"
        } else {
            "AccessDenied"
        }
        .into(),
    );
    s.layer = denial.as_ref().map(|d| layer(*decision, d.layer));
    s.principal = Some(req.principal.clone());
    s.action = Some(req.action.clone());
    // An id Karpenter does not know before the call is no resource a failure would name.
    s.resource = Some(req.resource.clone()).filter(|r| !r.contains("preflight"));
    s.call = Some(row.template.call.clone());
    s.node_class = Some(row.node_class.clone());
    s.node_pool = row.node_pool.clone();
    s.dry_run = row
        .template
        .when
        .contains(&super::catalog::When::DryRunValidation);
    Some(s)
}

/// What Karpenter will do, in words: the evidence a Predicted Diagnosis rests on.
fn describe(row: &Row, version: &str) -> String {
    let Some(req) = &row.request else {
        return String::new();
    };
    let context: Vec<String> = req
        .context
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:TagKeys"))
        .map(|(k, v)| format!("{k}={}", v.join(",")))
        .collect();
    let refused = match &row.verdict {
        Verdict::Refused(_, Some(d)) => d.summary.clone(),
        Verdict::Refused(decision, None) => format!("{decision:?}"),
        _ => String::new(),
    };
    format!(
        "Karpenter {version} will call {} for EC2NodeClass {} ({}): {} on {}{}; the policies refuse it: {refused} (request {} from {})",
        row.template.call,
        row.node_class,
        row.node_pool
            .as_deref()
            .map_or("no NodePool given".to_string(), |p| format!("NodePool {p}")),
        req.action,
        req.resource,
        if context.is_empty() {
            String::new()
        } else {
            format!(" with {}", context.join(", "))
        },
        row.template.id,
        row.template.source
    )
}

/// The KMS keys an EC2NodeClass's launches use, each once: its block device mappings', then
/// those of its AMIs' snapshots (any account) where the facts know them, then the region's
/// default EBS key where a volume names none; with where each is from. An AWS managed key
/// (`aws/ebs`) is left out: EC2 may always use it in its own account.
fn keys_of(class: &NodeClassInfo, facts: &dyn Facts) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = class
        .kms_key_ids
        .iter()
        .map(|k| (k.clone(), "blockDeviceMappings".to_string()))
        .collect();
    let mut add = |key: String, whose: String| {
        if !keys.iter().any(|(k, _)| k == &key) {
            keys.push((key, whose));
        }
    };
    for image in &class.ami_ids {
        if let Lookup::Found(found) = facts.image_keys(image) {
            for key in found {
                add(key, format!("the snapshots of {image}"));
            }
        }
    }
    if let Some(key) = super::default_ebs_key(class, facts) {
        let managed = key.ends_with("alias/aws/ebs")
            || matches!(facts.key(&key), Lookup::Found(k) if k.manager.as_deref() == Some("AWS"));
        if !managed {
            add(
                key,
                "the region's default EBS key: a volume names no kmsKeyID".to_string(),
            );
        }
    }
    keys
}

/// The Diagnoses of the failures `matrix` predicts, and of the EC2NodeClasses' KMS keys.
pub fn predicted(
    matrix: &Matrix,
    obs: &Observations,
    facts: &dyn Facts,
    settings: &Settings,
) -> Vec<Diagnosis> {
    let version = matrix.version.to_string();
    let mut signals: Vec<Signal> = matrix
        .refused()
        .filter_map(|row| refusal(row, &version))
        .chain(credentials(obs, &version))
        .collect();
    let mut claims = Vec::new();
    for class in &obs.node_classes {
        // Spot launches need the key for the Spot service-linked role as well as the caller;
        // on-demand ones for the caller alone. A NodeClaim standing for the launches carries
        // the capacity type the KMS reasoning reads: spot where a NodePool allows it, else
        // on-demand where the NodePools are known.
        let capacity = super::Around::of(obs, class)
            .allows("spot")
            .map(|spot| if spot { "spot" } else { "on-demand" });
        let claim = capacity.map(|c| format!("preflight-{c}-{}", class.name));
        if let Some(name) = &claim {
            claims.push(NodeClaimInfo {
                name: name.clone(),
                node_pool: None,
                node_class: Some(class.name.clone()),
                instance_id: None,
                image_id: None,
                capacity_type: capacity.map(str::to_string),
                lost: false,
            });
        }
        for (key, whose) in keys_of(class, facts) {
            let mut s = signal(
                format!(
                    "Karpenter {version} will launch instances of EC2NodeClass {} whose EBS volumes are encrypted with KMS key {key} ({whose}): EC2 uses the key on behalf of the launching principal",
                    class.name
                ),
                Category::KmsKeyUnusable,
            );
            s.error_code = Some("Client.InvalidKMSKey.InvalidState".into());
            s.node_class = Some(class.name.clone());
            s.kms_key = Some(key.clone());
            s.node_claim = claim.clone();
            signals.push(s);
        }
    }
    let predicted_obs = Observations {
        signals,
        node_claims: claims,
        instances: Vec::new(),
        warnings: Vec::new(),
        ..obs.clone()
    };
    diagnose(&predicted_obs, facts, Some(&settings.controller_role))
        .into_iter()
        .filter(|d| d.status.root_cause.reason != ReasonCode::Undetermined)
        // A credential path is predicted to fail only where the facts prove it: one that
        // cannot be checked is not a refusal.
        .filter(|d| {
            d.spec.category != Category::CredentialsDenied
                || d.status.root_cause.confidence == Confidence::Predicted
        })
        .map(as_predicted)
        .collect()
}

/// The failure Karpenter would log if the credential path its pods are given were refused:
/// IRSA where Karpenter's ServiceAccount names a role (STS `AssumeRoleWithWebIdentity` with
/// its token), else EKS Pod Identity where an association names one (EKS Auth
/// `AssumeRoleForPodIdentity`). Diagnosed, the trust policy, the cluster's issuer and the
/// account's OIDC providers (IRSA) or the association (Pod Identity) decide.
fn credentials(obs: &Observations, version: &str) -> Option<Signal> {
    let irsa = crate::diagnose::karpenter_uses_irsa(obs);
    let pod_identity =
        crate::diagnose::credentials::karpenter_association(obs).is_some_and(|a| a.role.is_some());
    let (action, how) = match (irsa, pod_identity) {
        (true, _) => (
            "sts:AssumeRoleWithWebIdentity",
            "IRSA (STS AssumeRoleWithWebIdentity with its ServiceAccount's token)",
        ),
        (false, true) => (
            "eks-auth:AssumeRoleForPodIdentity",
            "EKS Pod Identity (EKS Auth AssumeRoleForPodIdentity)",
        ),
        (false, false) => return None,
    };
    let mut s = signal(
        format!("Karpenter {version} will get its AWS credentials through {how}"),
        Category::CredentialsDenied,
    );
    s.action = Some(action.into());
    s.error_code = Some("AccessDenied".into());
    Some(s)
}

/// A diagnosed prediction as it is written: no failure seen, the request as its evidence.
fn as_predicted(mut d: Diagnosis) -> Diagnosis {
    for e in d.status.root_cause.evidence.iter_mut() {
        if e.source.ends_with(&format!("{ORIGIN}:0")) {
            *e = Evidence {
                source: "preflight".into(),
                detail: e.detail.clone(),
            };
        }
    }
    let status = &mut d.status;
    status.occurrences = 0;
    status.affected_node_claims.clear();
    status.last_message.clear();
    if let Some(resolved) = status.conditions.iter_mut().find(|c| c.type_ == "Resolved") {
        resolved.reason = "NotYetSeen".into();
        resolved.message = "predicted by preflight: no failure seen yet".into();
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_is_the_one_aws_would_name() {
        assert_eq!(
            layer(Decision::ImplicitDeny, PolicyType::Identity),
            PolicyLayer::NoIdentityPolicy
        );
        assert_eq!(
            layer(Decision::ExplicitDeny, PolicyType::ServiceControlPolicy),
            PolicyLayer::ScpExplicitDeny
        );
        assert_eq!(
            layer(Decision::ImplicitDeny, PolicyType::PermissionsBoundary),
            PolicyLayer::NoBoundary
        );
    }
}
