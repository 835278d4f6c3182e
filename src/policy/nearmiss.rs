//! Near-miss analysis of a denial: the layer at fault and the statement that would have allowed
//! the request but for one kind of mismatch, classified into the reason codes of contract §5.

use super::evaluate::{Cause, PolicyType};
use super::statement::{ConditionTrace, StatementTrace};
use super::{Effect, Request};
use serde::Serialize;

/// Why a request was denied, in the reason codes of contract §5 (plus the two resource-policy
/// codes the engine needs for KMS key policies and cross-account requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reason {
    PassedToServiceMismatch,
    ConditionNotSatisfied,
    ResourcePartitionMismatch,
    ResourceNotCovered,
    ActionNotAllowed,
    IdentityPolicyExplicitDeny,
    PermissionsBoundaryDeny,
    ServiceControlPolicyDeny,
    /// A Deny statement of the resource (or KMS key) policy matches.
    ResourcePolicyExplicitDeny,
    /// The resource (or KMS key) policy grants the caller nothing, where it must.
    ResourcePolicyNotAllowing,
}

/// Names one statement: the policy, its `Sid` if any, and its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatementRef {
    /// The policy: a managed policy ARN, `inline:NAME`, or the key policy.
    pub policy: String,
    /// The statement's Sid, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The statement's position in the policy, from 0; absent when only the policy is known
    /// (the policy ARN an AWS message names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

/// The explanation of a denial.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    pub reason: Reason,
    pub layer: PolicyType,
    /// The statement at fault: the matching Deny, or the Allow that nearly matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<StatementRef>,
    /// The near miss's conditions that failed for this request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_conditions: Vec<ConditionTrace>,
    pub summary: String,
}

/// Classifies a denial from the layer at fault and the traced statements.
pub fn analyse(cause: Cause, traces: &[StatementTrace], req: &Request) -> Denial {
    let what = format!("{} on {}", req.action, req.resource);
    match cause {
        Cause::ExplicitDeny(layer) => {
            // Of the Deny statements that match, one whose match rests on nothing unknown
            // proves the deny: it is named first.
            let matching = || {
                traces.iter().filter(move |t| {
                    t.policy_type == layer && t.effect == Effect::Deny && t.matched
                })
            };
            let deny = matching()
                .find(|t| !t.undecided())
                .or_else(|| matching().next());
            let reason = match layer {
                PolicyType::Identity => Reason::IdentityPolicyExplicitDeny,
                PolicyType::PermissionsBoundary => Reason::PermissionsBoundaryDeny,
                PolicyType::ServiceControlPolicy => Reason::ServiceControlPolicyDeny,
                PolicyType::ResourcePolicy => Reason::ResourcePolicyExplicitDeny,
            };
            let summary = match deny {
                Some(t) => format!("{} denies {what}", label(t)),
                None => format!("a Deny statement denies {what}"),
            };
            denial(reason, layer, deny, Vec::new(), summary)
        }
        Cause::ServiceControlPolicyNotAllowing => denial(
            Reason::ServiceControlPolicyDeny,
            PolicyType::ServiceControlPolicy,
            None,
            Vec::new(),
            format!("no service control policy at one level of the organization allows {what}"),
        ),
        Cause::BoundaryNotAllowing => {
            let near = nearest(traces, PolicyType::PermissionsBoundary);
            let summary = format!("the permissions boundary allows no {what}");
            denial(
                Reason::PermissionsBoundaryDeny,
                PolicyType::PermissionsBoundary,
                near,
                failed(near),
                summary,
            )
        }
        Cause::ResourcePolicyNotAllowing => {
            let near = nearest(traces, PolicyType::ResourcePolicy);
            let summary = format!("the resource policy grants this principal no {what}");
            denial(
                Reason::ResourcePolicyNotAllowing,
                PolicyType::ResourcePolicy,
                near,
                failed(near),
                summary,
            )
        }
        Cause::IdentityNotAllowing => identity_near_miss(traces, req, &what),
    }
}

fn identity_near_miss(traces: &[StatementTrace], req: &Request, what: &str) -> Denial {
    let layer = PolicyType::Identity;
    let Some(near) = nearest(traces, layer) else {
        let summary = format!(
            "no statement of the identity policies allows {}",
            req.action
        );
        return denial(Reason::ActionNotAllowed, layer, None, Vec::new(), summary);
    };
    let failed_conditions = failed(Some(near));
    let (reason, summary) = if !near.resource_matched {
        if near.resource_other_partition {
            (
                Reason::ResourcePartitionMismatch,
                format!(
                    "{} allows {} only on resources of another partition, not {}",
                    label(near),
                    req.action,
                    req.resource
                ),
            )
        } else {
            (
                Reason::ResourceNotCovered,
                format!(
                    "{} allows {} only on other resources, not {}",
                    label(near),
                    req.action,
                    req.resource
                ),
            )
        }
    } else if let Some(c) = failed_conditions
        .iter()
        .find(|c| c.key.eq_ignore_ascii_case("iam:PassedToService"))
    {
        (
            Reason::PassedToServiceMismatch,
            format!(
                "{} allows {what} only when iam:PassedToService is {}, but the request passes the role to {}",
                label(near),
                c.values.join(" or "),
                c.request_values
                    .as_deref()
                    .map_or("no service".into(), |v| v.join(", "))
            ),
        )
    } else {
        let conds: Vec<String> = failed_conditions
            .iter()
            .map(|c| format!("{} {}", c.operator, c.key))
            .collect();
        (
            Reason::ConditionNotSatisfied,
            format!(
                "{} allows {what}, but its condition {} does not hold",
                label(near),
                conds.join(", ")
            ),
        )
    };
    denial(reason, layer, Some(near), failed_conditions, summary)
}

/// The Allow statement of `layer` closest to applying: it must name the action (and, in a
/// resource policy, the principal); covering the resource beats covering it only in another
/// partition, which beats not covering it; failing only on conditions the request decides beats
/// failing on one it cannot (a key it does not carry, an unknown operator: AWS denied, so that
/// statement failed too, but why is not known); fewer failed conditions beat more; the first in
/// order wins ties.
fn nearest(traces: &[StatementTrace], layer: PolicyType) -> Option<&StatementTrace> {
    traces
        .iter()
        .filter(|t| t.policy_type == layer && t.effect == Effect::Allow && t.action_matched)
        .filter(|t| t.principal_matched != Some(false) || layer == PolicyType::ResourcePolicy)
        .min_by_key(|t| {
            let failed = t.conditions.iter().filter(|c| !c.matched).count();
            let undecided = t.conditions.iter().any(|c| !c.matched && c.undecided());
            let resource_miss = match (t.resource_matched, t.resource_other_partition) {
                (true, _) => 0,
                (false, true) => 1,
                (false, false) => 2,
            };
            (
                t.principal_matched == Some(false),
                resource_miss,
                undecided,
                failed,
            )
        })
}

fn failed(near: Option<&StatementTrace>) -> Vec<ConditionTrace> {
    near.map(|t| {
        t.conditions
            .iter()
            .filter(|c| !c.matched)
            .cloned()
            .collect()
    })
    .unwrap_or_default()
}

fn denial(
    reason: Reason,
    layer: PolicyType,
    st: Option<&StatementTrace>,
    failed_conditions: Vec<ConditionTrace>,
    summary: String,
) -> Denial {
    Denial {
        reason,
        layer,
        statement: st.map(|t| StatementRef {
            policy: t.policy.clone(),
            sid: t.sid.clone(),
            index: Some(t.index),
        }),
        failed_conditions,
        summary,
    }
}

/// `statement "Sid" (#2) of policy NAME`, or without the Sid when there is none.
fn label(t: &StatementTrace) -> String {
    match &t.sid {
        Some(sid) => format!("statement \"{sid}\" (#{}) of {}", t.index, t.policy),
        None => format!("statement #{} of {}", t.index, t.policy),
    }
}
