//! How a Diagnosis moves over time, as plain functions: re-checking its root cause against
//! fresh facts, the Resolved condition (fix verified, not recurring, recurred), metav1 rules.

use super::credentials::{CredentialsCase, recheck};
use super::iam::request_contexts;
use super::kms::{KmsCase, key_side, refused};
use super::model::{Condition, DiagnosisSpec, ReasonCode};
use super::printable::escape;
use crate::facts::{Facts, Lookup};
use crate::partition::Partition;
use crate::policy::{Decision, PolicySet, Request};
use crate::signal::{Category, Observations, Source};

/// A failure that has not been seen for this long is `Resolved=True NotRecurring`.
pub const NOT_RECURRING_AFTER_MS: i64 = 3_600_000;

/// What re-checking a root cause against the facts of now says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The facts now allow what failed.
    Fixed(String),
    /// The facts still refuse it.
    StillFailing(String),
    /// The facts cannot tell (not readable, or not enough named in the spec).
    Unknown(String),
    /// A prediction (no failure seen) that the controller's last preflight no longer makes:
    /// why.
    NoLongerPredicted(String),
}

/// Re-checks the root cause a Diagnosis names: the IAM request against the role's policies
/// now (for `iam:PassRole`, with every EC2 principal of the partition), the KMS key's state
/// and key side now, or for credentials the role's trust policy (and OIDC providers) now, for
/// Karpenter's ServiceAccount and cluster as `obs` show them. A refusal by a layer the doctor
/// does not read (`reason`: an SCP, RCP, VPC endpoint, session or resource policy) is never
/// verified fixed by the role's own policies: only the failure stopping tells.
pub fn verify(
    spec: &DiagnosisSpec,
    reason: Option<ReasonCode>,
    facts: &dyn Facts,
    obs: &Observations,
) -> Verification {
    if let Some(layer) = reason.filter(|r| {
        matches!(
            r,
            ReasonCode::ServiceControlPolicyDeny
                | ReasonCode::ResourceControlPolicyDeny
                | ReasonCode::VpcEndpointPolicyDeny
                | ReasonCode::SessionPolicyDeny
                | ReasonCode::ResourcePolicyDeny
        )
    }) {
        return Verification::Unknown(format!(
            "the layer that refuses ({}) is not among the facts the doctor re-reads: only the failure stopping tells",
            layer.as_str()
        ));
    }
    let partition = spec
        .partition
        .as_deref()
        .and_then(Partition::by_id)
        .unwrap_or_else(|| Partition::of_region(spec.region.as_deref().unwrap_or("")));
    let Some(principal) = spec.principal_arn.as_deref() else {
        return Verification::Unknown("the Diagnosis names no principal".into());
    };
    if spec.category == Category::KmsKeyUnusable {
        return verify_key(spec, principal, partition, facts);
    }
    if spec.category == Category::CredentialsDenied {
        if super::credentials::not_recheckable(spec.error_code.as_deref(), reason) {
            return Verification::Unknown(format!(
                "{} is no trust policy's refusal the doctor re-reads: only the failure stopping tells",
                spec.error_code.as_deref().unwrap_or("the failure")
            ));
        }
        let case = CredentialsCase::of(obs, Some(principal), None, partition);
        let action = spec.action.as_deref();
        return match recheck(action, spec.error_code.as_deref(), &case, facts) {
            Ok(true) => Verification::Fixed(format!(
                "the trust policy of {principal} now lets Karpenter's credentials in"
            )),
            Ok(false) => Verification::StillFailing(format!(
                "the trust policy of {principal} (or the account's OIDC providers) still refuses Karpenter's credentials"
            )),
            Err(missing) => Verification::Unknown(format!("{missing} would tell")),
        };
    }
    let Some(action) = spec.action.as_deref() else {
        return Verification::Unknown("the Diagnosis names no action".into());
    };
    let resource = spec.resource_arn.as_deref().unwrap_or("*");
    let policies = match facts.principal(principal) {
        Lookup::Found(p) => p,
        Lookup::Absent(why) | Lookup::Unknown(why) => return Verification::Unknown(why),
    };
    let set = PolicySet {
        identity: policies.identity,
        boundary: policies.boundary,
        scps: None,
        resource: None,
    };
    let refused: Vec<String> = request_contexts(action, partition, None)
        .into_iter()
        .filter(|(_, ctx)| {
            let req = Request::new(principal, action, resource).with_context(ctx.clone());
            set.decide(&req) != Decision::Allowed
        })
        .map(|(label, _)| label)
        .collect();
    if refused.is_empty() {
        Verification::Fixed(format!(
            "the policies of {principal} now allow {action} on {resource}"
        ))
    } else {
        Verification::StillFailing(format!(
            "the policies of {principal} still refuse {action} on {resource}{}",
            refused.join(",")
        ))
    }
}

fn verify_key(
    spec: &DiagnosisSpec,
    principal: &str,
    partition: &'static Partition,
    facts: &dyn Facts,
) -> Verification {
    let Some(key) = spec.kms_key_arn.as_deref() else {
        return Verification::Unknown("the Diagnosis names no KMS key".into());
    };
    let found = match facts.key(key) {
        Lookup::Found(k) => k,
        Lookup::Absent(why) | Lookup::Unknown(why) => return Verification::Unknown(why),
    };
    if found.state != "Enabled" {
        return Verification::StillFailing(format!("KMS key {key} is {}", found.state));
    }
    let case = KmsCase {
        key: Some(key),
        principal: Some(principal),
        region: spec.region.as_deref(),
        partition,
        capacity_type: None,
        error_code: spec.error_code.as_deref(),
        said_state: None,
    };
    let side = key_side(&found, principal, &case);
    let still_refused = refused(&side);
    if !still_refused.is_empty() {
        return Verification::StillFailing(format!(
            "the key side of {key} still refuses {principal} {}",
            still_refused.join(", ")
        ));
    }
    if side.iter().any(|(_, a)| a.is_none()) {
        return Verification::Unknown(format!("the grants or key policy of {key} are unknown"));
    }
    Verification::Fixed(format!(
        "KMS key {key} is Enabled and its key policy or grants let {principal} use it"
    ))
}

/// The Resolved condition's status, reason and message now. A fix verified after the last
/// failure resolves it; so does an hour without the failure, unless the failure is `ongoing`
/// (an object's condition still says it fails now); a failure seen after the Diagnosis was
/// resolved reopens it until it is quiet again.
pub fn resolved(
    verification: &Verification,
    previous: Option<&Condition>,
    last_seen_ms: Option<i64>,
    ongoing: bool,
    now_ms: i64,
) -> (&'static str, &'static str, String) {
    let resolved_at = previous
        .filter(|c| c.status == "True")
        .and_then(|c| crate::policy::typed::date(&c.last_transition_time));
    let recurred = matches!((resolved_at, last_seen_ms), (Some(at), Some(seen)) if seen > at);
    let quiet =
        !ongoing && last_seen_ms.is_some_and(|seen| now_ms - seen >= NOT_RECURRING_AFTER_MS);
    match verification {
        _ if quiet => (
            "True",
            "NotRecurring",
            format!(
                "not seen since {}",
                super::time::format(last_seen_ms.unwrap_or_default())
            ),
        ),
        _ if recurred => (
            "False",
            "Recurred",
            format!(
                "seen again at {} after it was resolved",
                super::time::format(last_seen_ms.unwrap_or_default())
            ),
        ),
        Verification::Fixed(detail) => ("True", "FixVerified", printable(detail)),
        Verification::NoLongerPredicted(why) => ("True", "NoLongerPredicted", printable(why)),
        Verification::StillFailing(detail) => ("False", "FailureObserved", printable(detail)),
        Verification::Unknown(why) => (
            "False",
            "FailureObserved",
            printable(&format!("the fix could not be verified: {why}")),
        ),
    }
}

/// A re-check's detail, which quotes facts, as printable text.
fn printable(detail: &str) -> String {
    escape(detail).into_owned()
}

/// metav1 rules: each desired condition keeps the previous `lastTransitionTime` when its
/// status did not change, and takes `now` when it did (or is new).
pub fn transition(previous: &[Condition], desired: Vec<Condition>, now: &str) -> Vec<Condition> {
    desired
        .into_iter()
        .map(|mut c| {
            c.last_transition_time = match previous.iter().find(|p| p.type_ == c.type_) {
                Some(p) if p.status == c.status => p.last_transition_time.clone(),
                _ => now.to_string(),
            };
            c
        })
        .collect()
}

/// Whether a Diagnosis's failure is a state that holds now, not an event of the past: an
/// EC2NodeClass or NodeClaim condition in `obs` still reports it, or, for an unusable KMS key,
/// the Diagnosis's NodePool says its nodes do not register (`NodeRegistrationHealthy=False`).
pub fn ongoing(spec: &DiagnosisSpec, affected: &[String], obs: &Observations) -> bool {
    let reported = obs.signals.iter().any(|s| {
        s.category == spec.category
            && match s.source {
                Source::NodeClass => s.node_class.is_some() && s.node_class == spec.node_class,
                Source::NodeClaim => s.node_claim.as_ref().is_some_and(|c| affected.contains(c)),
                _ => false,
            }
    });
    let unregistered = spec.category == Category::KmsKeyUnusable
        && obs
            .node_pools
            .iter()
            .any(|p| p.registration_unhealthy && spec.node_pool.as_ref() == Some(&p.name));
    reported || unregistered
}

/// The NodeClaims stuck after a verified fix: the fix holds, yet their conditions still report
/// the old failure (Karpenter does not retry a NodeClaim whose launch failed; it stays until it
/// is deleted, aws/karpenter-provider-aws#6098). Empty unless `verification` is `Fixed`.
pub fn stuck(
    spec: &DiagnosisSpec,
    affected: &[String],
    verification: &Verification,
    obs: &Observations,
) -> Vec<String> {
    if !matches!(verification, Verification::Fixed(_)) {
        return Vec::new();
    }
    let mut names: Vec<String> = obs
        .signals
        .iter()
        .filter(|s| s.source == Source::NodeClaim && s.category == spec.category)
        .filter_map(|s| s.node_claim.clone())
        .filter(|c| affected.contains(c))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The step and the command that clear `stuck` NodeClaims (the doctor only reads: on-call runs
/// it): `kubectl delete nodeclaim A B` (Karpenter creates new ones for the pods that wait).
pub fn delete_stuck(stuck: &[String]) -> Option<(String, String)> {
    if stuck.is_empty() {
        return None;
    }
    let command = stuck.iter().fold(
        super::shell::Command::new("kubectl").lit("delete nodeclaim"),
        |c, n| c.arg(n.as_str()),
    );
    let step = format!(
        "The fix is verified, but {} NodeClaim(s) still carry the old failure and Karpenter will not retry them: delete them, and Karpenter launches new ones for the pods that wait ({}).",
        stuck.len(),
        escape(&stuck.join(", "))
    );
    Some((step, command.into()))
}

/// A Diagnosis as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub name: String,
    /// When `Resolved` last became True; `None` while it is active.
    pub resolved_since_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
}

/// The Diagnoses to delete, by name: those resolved for longer than `retention_ms`, then, while
/// more than `cap` remain, the resolved ones seen least recently. Active ones are never
/// deleted (they would come back); the writer creates no new one at the cap instead.
pub fn expired(kept: &[Kept], now_ms: i64, retention_ms: i64, cap: usize) -> Vec<String> {
    let mut resolved: Vec<&Kept> = kept
        .iter()
        .filter(|k| k.resolved_since_ms.is_some())
        .collect();
    resolved.sort_by(|a, b| {
        (a.last_seen_ms, a.resolved_since_ms, &a.name).cmp(&(
            b.last_seen_ms,
            b.resolved_since_ms,
            &b.name,
        ))
    });
    let mut remaining = kept.len();
    let mut out = Vec::new();
    for k in resolved {
        let old = k
            .resolved_since_ms
            .is_some_and(|since| now_ms - since > retention_ms);
        if old || remaining > cap {
            out.push(k.name.clone());
            remaining -= 1;
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Scanner;

    const DENIAL: &str = "UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/ctrl/1 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/node because no identity-based policy allows the iam:PassRole action.";

    #[test]
    fn after_a_verified_fix_the_nodeclaims_still_failing_are_stuck() {
        let claim = |name: &str| {
            serde_json::json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                "metadata": {"name": name},
                "status": {"conditions": [{"type": "Launched", "status": "False", "message": DENIAL,
                    "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
        };
        let mut obs = Observations::default();
        Scanner::new().unwrap().read_objects(
            "cluster",
            [claim("default-b"), claim("default-a"), claim("elsewhere")],
            &mut obs,
        );
        let d = crate::diagnose::diagnose(&obs, &crate::facts::SnapshotFacts::default(), None)
            .remove(0);
        let affected = ["default-a".to_string(), "default-b".to_string()];
        let fixed = Verification::Fixed("allowed now".into());
        assert_eq!(
            stuck(&d.spec, &affected, &fixed, &obs),
            ["default-a", "default-b"]
        );
        let failing = Verification::StillFailing("refused".into());
        assert!(stuck(&d.spec, &affected, &failing, &obs).is_empty());
        assert!(stuck(&d.spec, &affected, &fixed, &Observations::default()).is_empty());
    }

    #[test]
    fn stuck_nodeclaims_are_deleted_one_quoted_word_each() {
        assert_eq!(delete_stuck(&[]), None);
        let (step, command) =
            delete_stuck(&["default-a".into(), "x'; touch /tmp/pwned #".into()]).unwrap();
        assert_eq!(
            command,
            r"kubectl delete nodeclaim default-a 'x'\''; touch /tmp/pwned #'"
        );
        assert!(step.starts_with("The fix is verified, but 2 NodeClaim(s) still carry"));
    }
}
