//! A resource the input does not name whole (the text is cut inside it, or AWS named none): a
//! cause that holds whatever the resource is. When every Allow statement of the role's identity
//! policies for `iam:PassRole` fails on `iam:PassedToService`, a key the request decides
//! whatever the role, the request is refused for that reason on every completion of the cut
//! value; the cut value itself stays unknown (no resource, no patch of a resource). Premises:
//! the policies (whole), the request context (decided).

use super::*;
use crate::policy::Effect;
use crate::policy::statement::{ConditionTrace, StatementTrace};

/// The `PassedToServiceMismatch` that holds whatever the resource, where every identity Allow
/// statement for the action failed on a decided `iam:PassedToService` condition; `None`
/// otherwise (then which resource the request named decides the cause).
pub(super) fn whatever_the_resource(
    case: &IamCase<'_>,
    set: &PolicySet,
    traces: &[StatementTrace],
    role: &str,
    mut evidence: Vec<Evidence>,
) -> Result<Finding, Vec<Evidence>> {
    let allows: Vec<&StatementTrace> = traces
        .iter()
        .filter(|t| {
            t.policy_type == crate::policy::PolicyType::Identity
                && t.effect == Effect::Allow
                && t.action_matched
        })
        .collect();
    if !case.is_pass_role() || allows.is_empty() || !allows.iter().all(|t| failed(t).is_some()) {
        return Err(evidence);
    }
    let needed = ec2_principals(case.partition);
    let mut fixes = Vec::new();
    let mut named = Vec::new();
    for t in &allows {
        let Some((policy, st)) = set
            .identity
            .iter()
            .find(|p| p.name == t.policy)
            .and_then(|p| Some((p, p.statements.get(t.index)?)))
        else {
            return Err(evidence);
        };
        let failed = failed(t).expect("every one fails on iam:PassedToService");
        named.push(match &t.sid {
            Some(sid) => format!("statement \"{sid}\" of {}", policy.name),
            None => format!("statement #{} of {}", t.index, policy.name),
        });
        fixes.push(Fix::PatchStatement {
            role: role.to_string(),
            policy: policy.name.clone(),
            statement: st.source.clone(),
            patched: with_condition_values(&st.source, &failed.operator, &failed.key, &needed),
        });
    }
    let first = failed(allows[0]).expect("every one fails on iam:PassedToService");
    let passed = first.request_values.clone().unwrap_or_default().join(", ");
    evidence.push(super::evidence(
        "policy evaluation",
        format!(
            "the input names no complete resource, but the cause does not depend on it: every statement that allows iam:PassRole ({}) requires iam:PassedToService values the request does not carry (it passes the role to {passed}), so whatever the role, none allows it; whether the role is also among their resources is not known, and the fix names no resource",
            named.join("; ")
        ),
    ));
    let statement = allows.first().map(|t| crate::policy::StatementRef {
        policy: t.policy.clone(),
        sid: t.sid.clone(),
        index: Some(t.index),
    });
    Ok(Finding {
        reason: ReasonCode::PassedToServiceMismatch,
        premises: vec![Premise::of(What::Policies, role.to_string(), true)],
        summary: format!(
            "whatever role was passed, no statement of {role}'s policies allows iam:PassRole to {passed}: each requires iam:PassedToService {}",
            first.values.join(", ")
        ),
        evidence,
        statement: if allows.len() == 1 { statement } else { None },
        fix: if fixes.len() == 1 {
            fixes.remove(0)
        } else {
            Fix::Layers(fixes)
        },
    })
}

/// The statement's `iam:PassedToService` condition that failed on the request's decided value.
fn failed(t: &StatementTrace) -> Option<&ConditionTrace> {
    t.conditions
        .iter()
        .find(|c| !c.matched && !c.undecided() && c.key.eq_ignore_ascii_case("iam:PassedToService"))
}
