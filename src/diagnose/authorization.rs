//! AWS's own evaluation of a denied request (Access Troubleshooter) applied to a finding: the
//! layer and policy it names prove the cause; every other refusing layer joins the fix.

use super::finding::{Finding, Fix, evidence};
use super::iam::IamCase;
use super::model::ReasonCode;
use super::premise::{Premise, What};
use crate::facts::authorization::{AuthorizationDetails, Refusal, Verdict};
use crate::facts::decoded::Decoded;
use crate::policy::StatementRef;
use crate::signal::PolicyLayer;

/// `finding` (reasoned with the first refusing layer as the case's layer) checked against what
/// AWS evaluated: `Confirmed` where AWS's verdict proves the reason, the other layers' fixes
/// added, disagreements said.
pub fn proven(
    case: &IamCase<'_>,
    mut finding: Finding,
    details: &AuthorizationDetails,
    verdict: &Verdict,
) -> Finding {
    let first = &verdict.refusals[0];
    finding.evidence.insert(
        1.min(finding.evidence.len()),
        evidence(
            "iam:GetRequestAuthorizationDetails",
            format!(
                "{}AWS evaluated {} on {} as {}: {}{}",
                details
                    .id
                    .as_deref()
                    .map(|id| format!("authorization id {id} ({}): ", details.source))
                    .unwrap_or_else(|| format!("{}: ", details.source)),
                case.action,
                case.resource.unwrap_or("*"),
                verdict.effect,
                verdict
                    .refusals
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join("; "),
                passed_to(verdict)
            ),
        ),
    );
    if matches_layer(finding.reason, first.layer) {
        if first.layer == PolicyLayer::NoIdentityPolicy {
            // AWS proves the layer; which statement falls short is the engine's to show.
            if !finding.proven() {
                finding.evidence.push(evidence(
                    "iam:GetRequestAuthorizationDetails",
                    "AWS confirms no identity policy allows the request; which statement falls short needs the role's policies (--iam-snapshot, or --live): the reason stays inferred",
                ));
            }
        } else {
            // AWS's verdict proves the layer, whatever the doctor's facts left open.
            finding.premises = vec![Premise::decided(What::AwsEvaluation, &details.source)];
            let named = finding
                .statement
                .as_ref()
                .is_some_and(|s| s.index.is_some());
            if !named && let Some(policy) = &first.policy {
                finding.statement = Some(StatementRef {
                    policy: policy.clone(),
                    sid: first.sids.first().cloned().filter(|s| !s.is_empty()),
                    index: None,
                });
            }
        }
    } else {
        // AWS and the facts disagree: the facts may be stale.
        finding
            .premises
            .push(Premise::undecided(What::AwsEvaluation, &details.source));
        finding.evidence.push(evidence(
            "iam:GetRequestAuthorizationDetails",
            format!(
                "AWS's evaluation names {:?}, but the doctor's facts point to {}: the facts may be stale, so nothing is confirmed",
                first.layer,
                finding.reason.as_str()
            ),
        ));
    }
    let more: Vec<Fix> = verdict.refusals[1..]
        .iter()
        .map(|r| {
            let next = IamCase {
                layer: Some(r.layer),
                policy_arn: r.policy.as_deref(),
                authorization: None,
                decoded: None,
                ..*case
            };
            super::iam::from_text(&next).fix
        })
        .collect();
    if !more.is_empty() {
        let first_fix = std::mem::replace(&mut finding.fix, Fix::Layers(Vec::new()));
        let mut fixes = match first_fix {
            Fix::Layers(fixes) => fixes,
            other => vec![other],
        };
        fixes.extend(more);
        finding.fix = Fix::Layers(fixes);
    }
    finding
}

/// `finding` (reasoned with the decoded message's request context) checked against AWS's
/// decoded authorization message of the same request. The message names no policy type, so
/// it does not name the layer: it is a premise beside the doctor's facts, never instead of
/// them. It holds (decided) where it agrees with the finding — the verdict (explicit or
/// implicit) is the reason's, and where it names matched Deny statements, the finding's
/// statement is one of them (then AWS settles which statement: `statement::confirmed` takes
/// the Deny it names) — and it is whole. A message cut short or elided is a premise not
/// whole; one that disagrees is undecided, and the evidence says why: then nothing is
/// `Confirmed`.
pub fn decoded(mut finding: Finding, decoded: &Decoded) -> Finding {
    use ReasonCode as R;
    let source = format!("sts:DecodeAuthorizationMessage ({})", decoded.source);
    // A live answer already has its line (`render`); a given one is shown here.
    if !decoded.source.starts_with("live") {
        finding.evidence.insert(
            1.min(finding.evidence.len()),
            evidence(
                "sts:DecodeAuthorizationMessage",
                format!("{}: {}", decoded.source, decoded.line()),
            ),
        );
    }
    let explicit_reason = matches!(
        finding.reason,
        R::IdentityPolicyExplicitDeny
            | R::PermissionsBoundaryDeny
            | R::ServiceControlPolicyDeny
            | R::ResourceControlPolicyDeny
            | R::VpcEndpointPolicyDeny
            | R::SessionPolicyDeny
            | R::ResourcePolicyDeny
    );
    let sids = decoded.deny_sids();
    let statement_sid = finding.statement.as_ref().and_then(|s| s.sid.clone());
    let disagreement = match (decoded.allowed, decoded.explicit_deny) {
        (Some(true), _) => Some("AWS's decoded message says the request was allowed".to_string()),
        (_, Some(true)) if finding.reason == R::Undetermined => None,
        (_, Some(true)) if !explicit_reason => Some(format!(
            "AWS's decoded message records an explicit deny, but the doctor's facts point to {} (no Allow): a Deny the facts do not show (an SCP, a boundary) refuses it, or the facts are stale",
            finding.reason.as_str()
        )),
        (_, Some(true)) => match &statement_sid {
            Some(sid) if !sids.is_empty() && !sids.contains(sid) => Some(format!(
                "AWS's decoded message names the matched Deny statement {}, but the doctor's facts point to statement \"{sid}\": the facts may be stale",
                sids.join(", ")
            )),
            _ => None,
        },
        (Some(false), Some(false)) if finding.reason == R::IdentityPolicyExplicitDeny => {
            Some("AWS's decoded message records no explicit deny, but the doctor's facts point to a Deny statement: the facts may be stale".to_string())
        }
        _ => None,
    };
    let decided =
        disagreement.is_none() && decoded.allowed == Some(false) && decoded.explicit_deny.is_some();
    if let Some(why) = &disagreement {
        finding.evidence.push(evidence(
            "sts:DecodeAuthorizationMessage",
            format!("{why}: nothing is confirmed"),
        ));
    } else if decoded.explicit_deny == Some(true) && !sids.is_empty() {
        finding.evidence.push(evidence(
            "sts:DecodeAuthorizationMessage",
            format!(
                "AWS names the matched Deny statement{} {}{}",
                if sids.len() == 1 { "" } else { "s" },
                sids.join(", "),
                if statement_sid.as_ref().is_some_and(|s| sids.contains(s)) {
                    ": the statement at fault is settled"
                } else {
                    " (the policy that holds it, and so the layer, needs the principal's policies or the organization's: --iam-snapshot, describe-policy output, or --live)"
                }
            ),
        ));
    }
    if !decoded.whole {
        finding.evidence.push(evidence(
            "sts:DecodeAuthorizationMessage",
            "the input holds AWS's decoded message only in part (cut short or elided): what it lacks is unknown, so it proves nothing",
        ));
    }
    finding.premises.push(Premise {
        whole: decoded.whole,
        ..Premise::of(What::AwsEvaluation, source, decided)
    });
    finding
}

/// Whether a reason code is what a refusal in `layer` means.
fn matches_layer(reason: ReasonCode, layer: PolicyLayer) -> bool {
    use PolicyLayer as L;
    use ReasonCode as R;
    match layer {
        L::NoIdentityPolicy => matches!(
            reason,
            R::PassedToServiceMismatch
                | R::ConditionNotSatisfied
                | R::ResourcePartitionMismatch
                | R::ResourceNotCovered
                | R::ActionNotAllowed
        ),
        L::IdentityExplicitDeny => reason == R::IdentityPolicyExplicitDeny,
        L::NoBoundary | L::BoundaryExplicitDeny => reason == R::PermissionsBoundaryDeny,
        L::ScpExplicitDeny | L::NoScp => reason == R::ServiceControlPolicyDeny,
        L::RcpExplicitDeny | L::NoRcp => reason == R::ResourceControlPolicyDeny,
        L::VpcEndpointExplicitDeny | L::NoVpcEndpointPolicy => reason == R::VpcEndpointPolicyDeny,
        L::SessionExplicitDeny | L::NoSessionPolicy => reason == R::SessionPolicyDeny,
        L::ResourceExplicitDeny | L::NoResourcePolicy => reason == R::ResourcePolicyDeny,
        L::NoTrustPolicy | L::TrustExplicitDeny => false,
    }
}

fn describe(r: &Refusal) -> String {
    let mut text = format!("{:?}", r.layer);
    if let Some(p) = &r.policy {
        text += &format!(" ({p})");
    }
    if !r.sids.is_empty() {
        text += &format!(", matched Deny statement {}", r.sids.join(", "));
    }
    if !r.attached_to.is_empty() {
        text += &format!(", attached to {}", r.attached_to.join(", "));
    }
    text
}

fn passed_to(v: &Verdict) -> String {
    v.context
        .get("iam:PassedToService")
        .map(|s| format!("; the request carried iam:PassedToService={}", s.join(",")))
        .unwrap_or_default()
}
