//! From AWS's denial sentence alone, when the role's policies are not at hand: the layer it
//! names (no identity-based policy, an explicit deny, an SCP, a boundary…) is the reason, and
//! always `Inferred`: the premise that would prove it (the policies) is missing.

use super::*;

/// The root cause as the denial sentence tells it, with no facts to prove it.
pub(in crate::diagnose) fn from_text(case: &IamCase<'_>) -> Finding {
    let role = case.role.to_string();
    let what = format!("{} on {}", case.action, case.resource());
    let china_pass_role = case.is_pass_role() && case.partition.id == "aws-cn";
    let (reason, summary, fix) = match case.layer {
        Some(PolicyLayer::NoIdentityPolicy) if china_pass_role => (
            ReasonCode::PassedToServiceMismatch,
            format!(
                "no identity policy of {role} allows {what}; in aws-cn this is almost always a PassRole statement whose iam:PassedToService condition names only ec2.amazonaws.com (EC2 is ec2.amazonaws.com.cn there, and instance profiles still check ec2.amazonaws.com)"
            ),
            Fix::AddStatement {
                role: role.clone(),
                statement: pass_role_statement(case),
            },
        ),
        Some(PolicyLayer::NoIdentityPolicy) if ebs_key(case).is_some() => (
            ReasonCode::IdentityPolicyMissingKmsPermissions,
            format!(
                "no identity policy of {role} allows {what}: AWS names the identity side, and EBS uses the key with the launching role's own permissions, so the role needs every KMS operation EBS calls on the key"
            ),
            Fix::KmsIdentity {
                role: role.clone(),
                key: case.resource().to_string(),
                missing: crate::diagnose::kms::EBS_OPERATIONS
                    .iter()
                    .map(|op| format!("kms:{op}"))
                    .collect(),
            },
        ),
        Some(PolicyLayer::NoIdentityPolicy) => (
            ReasonCode::ActionNotAllowed,
            format!("no identity policy of {role} allows {what}"),
            Fix::AddStatement {
                role: role.clone(),
                statement: allow_statement(case),
            },
        ),
        Some(PolicyLayer::IdentityExplicitDeny) => (
            ReasonCode::IdentityPolicyExplicitDeny,
            format!("a Deny statement in an identity policy of {role} denies {what}"),
            investigate(case, &role),
        ),
        Some(PolicyLayer::ScpExplicitDeny | PolicyLayer::NoScp) => (
            ReasonCode::ServiceControlPolicyDeny,
            format!(
                "an organization service control policy{} denies {what} in account {}",
                named(case.policy_arn),
                account_of(&role)
            ),
            organization(case, OrgPolicy::ServiceControl, account_of(&role)),
        ),
        Some(PolicyLayer::RcpExplicitDeny | PolicyLayer::NoRcp) => (
            ReasonCode::ResourceControlPolicyDeny,
            format!(
                "an organization resource control policy{} denies {what} to {role}",
                named(case.policy_arn)
            ),
            organization(
                case,
                OrgPolicy::ResourceControl,
                case.resource
                    .map(account_of)
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| account_of(&role)),
            ),
        ),
        Some(PolicyLayer::VpcEndpointExplicitDeny | PolicyLayer::NoVpcEndpointPolicy) => (
            ReasonCode::VpcEndpointPolicyDeny,
            format!(
                "the VPC endpoint policy{} that {role}'s request went through does not allow {what}",
                named(case.policy_arn)
            ),
            Fix::VpcEndpoint {
                action: case.action.into(),
                region: case
                    .resource
                    .and_then(Arn::parse)
                    .map(|a| a.region.to_string())
                    .filter(|r| !r.is_empty()),
                endpoint: case.policy_arn.map(str::to_string),
            },
        ),
        Some(PolicyLayer::SessionExplicitDeny | PolicyLayer::NoSessionPolicy) => (
            ReasonCode::SessionPolicyDeny,
            format!(
                "a session policy of {}'s session does not allow {what}",
                case.caller
            ),
            Fix::SessionPolicy {
                role: role.clone(),
                action: case.action.into(),
            },
        ),
        Some(PolicyLayer::ResourceExplicitDeny | PolicyLayer::NoResourcePolicy) => (
            ReasonCode::ResourcePolicyDeny,
            format!(
                "the resource-based policy{} of {} {} {what} to {role}",
                named(case.policy_arn),
                case.resource(),
                if case.layer == Some(PolicyLayer::ResourceExplicitDeny) {
                    "denies"
                } else {
                    "does not allow (across accounts both sides must)"
                }
            ),
            Fix::ResourcePolicy {
                action: case.action.into(),
                resource: case.resource.map(str::to_string),
                principal: role.clone(),
                explicit_deny: case.layer == Some(PolicyLayer::ResourceExplicitDeny),
            },
        ),
        Some(PolicyLayer::NoBoundary | PolicyLayer::BoundaryExplicitDeny) => (
            ReasonCode::PermissionsBoundaryDeny,
            format!("the permissions boundary of {role} does not allow {what}"),
            Fix::Boundary {
                role: role.clone(),
                boundary: None,
                action: case.action.into(),
                resource: case.resource().into(),
                explicit_deny: case.layer == Some(PolicyLayer::BoundaryExplicitDeny),
            },
        ),
        other => (
            ReasonCode::Undetermined,
            match other {
                Some(layer) => format!(
                    "AWS denied {what} to {role} ({layer:?}); no code of the doctor's covers this layer yet"
                ),
                None => format!(
                    "AWS denied {what} to {role}; the message does not say which policy layer refused"
                ),
            },
            investigate(case, &role),
        ),
    };
    let layer = case
        .layer
        .map_or("no policy layer named".to_string(), |l| format!("{l:?}"));
    Finding {
        reason,
        // AWS's sentence alone: the policies that would prove it are not at hand.
        premises: vec![Premise::undecided(
            What::Policies,
            format!("{}'s policies", case.role),
        )],
        summary,
        evidence: vec![evidence(
            "error message",
            format!("{} was denied {what}: {layer}", case.caller),
        )],
        statement: case.policy_arn.map(|policy| crate::policy::StatementRef {
            policy: policy.to_string(),
            sid: None,
            index: None,
        }),
        fix,
    }
}
