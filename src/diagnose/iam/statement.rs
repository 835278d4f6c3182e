//! The statement at fault, once the role's policies refuse the request: the near miss
//! (`policy::nearmiss`: the condition, resource, partition or action that falls short), the
//! identity Deny that matches, and elimination (AWS names an identity-based explicit deny and
//! one Deny statement alone can match: that one). Premises: the policies (whole), the request
//! context (decided: no condition key it lacks may change the answer).

use super::*;

/// The cause of a refusal the engine explained (`e`, of `req`): the statement at fault, and
/// the fix its reason calls for.
pub(super) fn confirmed(
    case: &IamCase<'_>,
    policies: &PrincipalPolicies,
    set: &PolicySet,
    e: Explanation,
    req: &Request,
    mut evidence: Vec<Evidence>,
) -> Finding {
    let denial = e.denial.expect("a denied explanation has a denial");
    let source = denying_statement(set, &denial);
    let role = policies.arn.clone();
    // The role stands in for one a cut text left unknown: a cause that holds whatever the
    // role is proven; any other rests on the stand-in.
    if case.resource_assumed && e.decision != Decision::ExplicitDeny {
        match whatever_the_resource(case, set, &e.statements, &role, evidence) {
            Ok(found) => return found,
            Err(back) => evidence = back,
        }
    }
    let premise = policies_premise(
        case,
        policies,
        e.decision,
        &e.statements,
        &denial,
        &mut evidence,
    );
    if denial.reason == Reason::ResourceNotCovered && case.resource.is_none() {
        // No resource known: the engine matched the statements against `*`, which a request
        // names only for actions without resource-level permissions; for any other, neither
        // the resource to add nor the statement to patch is known.
        if !authorized_on_star(case.action) {
            return match whatever_the_resource(case, set, &e.statements, &role, evidence) {
                Ok(found) => found,
                Err(evidence) => unnamed_resource(case, &role, &denial, source.as_ref(), evidence),
            };
        }
        evidence.push(super::evidence(
            "policy evaluation",
            format!(
                "{} has no resource-level permissions: AWS authorizes it on `*`, which the statement's Resource does not cover",
                case.action
            ),
        ));
    }
    let cause = reason_and_fix(case, set, req, &denial, &role, source);
    refusal(case, premise, denial, cause, evidence)
}

/// The denying statement as written, where the denial names one of the role's identity
/// policies or its boundary.
fn denying_statement(
    set: &PolicySet,
    denial: &crate::policy::Denial,
) -> Option<Map<String, Value>> {
    denial.statement.as_ref().and_then(|r| {
        set.identity
            .iter()
            .chain(&set.boundary)
            .find(|p| p.name == r.policy)
            .and_then(|p| p.statements.get(r.index?))
            .map(|s| s.source.clone())
    })
}

/// The premise of the role's policies: decided unless a condition key the request may carry
/// could change the answer. A Deny on such keys is decided still where AWS's decoded message
/// names it, or by elimination; the evidence says which, or why not, and which other Deny
/// statements match too.
fn policies_premise(
    case: &IamCase<'_>,
    policies: &PrincipalPolicies,
    decision: Decision,
    traces: &[crate::policy::statement::StatementTrace],
    denial: &crate::policy::Denial,
    evidence: &mut Vec<Evidence>,
) -> Premise {
    // Conditions on keys the request did not carry (request tags, say) may hold in the real
    // request, `Null` tests included, and an unknown operator is AWS's to decide: then the near
    // miss is likely, not proven.
    // A Deny that matched on such a key (a negated operator on a key the request did not
    // carry) is not proven either.
    let deny_undecided = decision == Decision::ExplicitDeny
        && traces.iter().any(|t| {
            t.matched
                && t.effect == crate::policy::Effect::Deny
                && is_denying(denial, t)
                && t.undecided()
        });
    let named = deny_undecided && named_by_aws(case, traces, denial);
    let eliminated = deny_undecided && !named && only_identity_deny(case, traces);
    let unknown_keys = (deny_undecided && !eliminated && !named)
        || denial.failed_conditions.iter().any(|c| c.undecided());
    if named {
        evidence.push(super::evidence(
            "policy evaluation",
            "AWS's decoded authorization message names this Deny statement as the one that matched the request: whatever keys the doctor cannot see, it is the one",
        ));
    } else if eliminated {
        evidence.push(super::evidence(
            "policy evaluation",
            "AWS names an explicit deny in an identity-based policy, and of the role's identity policies only this Deny statement can match the request (its action and resource match; only keys the doctor cannot see decide its conditions): by elimination, it is the one",
        ));
    } else if unknown_keys {
        evidence.push(super::evidence(
            "policy evaluation",
            format!(
                "not proven: {}; the encoded authorization message or the authorization details would decide it",
                undecided_keys(traces, denial)
            ),
        ));
    }
    evidence.extend(others_matching(decision, traces, denial));
    // Decided unless a condition key the request may carry could change the answer.
    Premise::of(What::Policies, policies.arn.clone(), !unknown_keys)
}

/// Other Deny statements that match too, or may, on an explicit deny: removing the one named
/// leaves them.
fn others_matching(
    decision: Decision,
    traces: &[crate::policy::statement::StatementTrace],
    denial: &crate::policy::Denial,
) -> Option<Evidence> {
    let others: Vec<String> = traces
        .iter()
        .filter(|t| t.matched && t.effect == crate::policy::Effect::Deny && !is_denying(denial, t))
        .map(|t| {
            let name = match &t.sid {
                Some(sid) => format!("statement \"{sid}\" (#{}) of {}", t.index, t.policy),
                None => format!("statement #{} of {}", t.index, t.policy),
            };
            if t.undecided() {
                format!("{name} (on keys the doctor cannot see)")
            } else {
                name
            }
        })
        .collect();
    (decision == Decision::ExplicitDeny && !others.is_empty()).then(|| {
        super::evidence(
            "policy evaluation",
            format!(
                "{} also match{} the request as the doctor knows it: once the statement named is gone, {} may deny it next",
                others.join("; "),
                if others.len() == 1 { "es" } else { "" },
                if others.len() == 1 { "it" } else { "they" }
            ),
        )
    })
}

/// The reason code of the denial and the fix it calls for, on the denying statement as written
/// (`source`), where known. A `ResourceNotCovered` on a resource the input does not name, for
/// an action with resource-level permissions, is `confirmed`'s to settle (`unnamed_resource`).
fn reason_and_fix(
    case: &IamCase<'_>,
    set: &PolicySet,
    req: &Request,
    denial: &crate::policy::Denial,
    role: &str,
    source: Option<Map<String, Value>>,
) -> (ReasonCode, Fix) {
    let policy = denial
        .statement
        .as_ref()
        .map(|r| r.policy.clone())
        .unwrap_or_default();
    match denial.reason {
        Reason::PassedToServiceMismatch => (
            ReasonCode::PassedToServiceMismatch,
            passed_to_service_fix(case, role, policy, source, denial),
        ),
        Reason::ConditionNotSatisfied => (
            ReasonCode::ConditionNotSatisfied,
            condition_fix(case, role, policy, source, denial),
        ),
        Reason::ResourcePartitionMismatch => (
            ReasonCode::ResourcePartitionMismatch,
            partition_fix(case, req, role, policy, source),
        ),
        Reason::ResourceNotCovered => (
            ReasonCode::ResourceNotCovered,
            resource_fix(case, req, role, policy, source),
        ),
        Reason::ActionNotAllowed => match ebs_key(case) {
            Some(key) => (
                ReasonCode::IdentityPolicyMissingKmsPermissions,
                kms_identity_fix(case, set, req, role, key),
            ),
            None => (
                ReasonCode::ActionNotAllowed,
                Fix::AddStatement {
                    role: role.to_string(),
                    statement: allow_statement(case),
                },
            ),
        },
        Reason::IdentityPolicyExplicitDeny => (
            ReasonCode::IdentityPolicyExplicitDeny,
            match source {
                Some(statement) => Fix::RemoveDeny {
                    role: role.to_string(),
                    policy,
                    statement,
                },
                None => investigate(case, role),
            },
        ),
        Reason::PermissionsBoundaryDeny => (
            ReasonCode::PermissionsBoundaryDeny,
            boundary_fix(case, set, role, policy, source),
        ),
        Reason::ServiceControlPolicyDeny => (
            ReasonCode::ServiceControlPolicyDeny,
            organization(case, OrgPolicy::ServiceControl, account_of(role)),
        ),
        Reason::ResourcePolicyExplicitDeny | Reason::ResourcePolicyNotAllowing => (
            ReasonCode::ResourcePolicyDeny,
            Fix::ResourcePolicy {
                action: case.action.into(),
                resource: case.resource.map(str::to_string),
                principal: role.to_string(),
                explicit_deny: denial.reason == Reason::ResourcePolicyExplicitDeny,
            },
        ),
    }
}

/// The fix of a `PassedToServiceMismatch`: the failed condition of the statement widened to
/// every EC2 principal of the partition, else a PassRole statement to add.
fn passed_to_service_fix(
    case: &IamCase<'_>,
    role: &str,
    policy: String,
    source: Option<Map<String, Value>>,
    denial: &crate::policy::Denial,
) -> Fix {
    let needed = ec2_principals(case.partition);
    match (&source, denial.failed_conditions.first()) {
        (Some(st), Some(c)) => Fix::PatchStatement {
            role: role.to_string(),
            policy,
            statement: st.clone(),
            patched: with_condition_values(st, &c.operator, &c.key, &needed),
        },
        _ => Fix::AddStatement {
            role: role.to_string(),
            statement: pass_role_statement(case),
        },
    }
}

/// The fix of a `ConditionNotSatisfied`: where every failed condition is decided and on a
/// positive string or ARN operator, the statement patched with the values the request
/// carried; else an investigation.
fn condition_fix(
    case: &IamCase<'_>,
    role: &str,
    policy: String,
    source: Option<Map<String, Value>>,
    denial: &crate::policy::Denial,
) -> Fix {
    // Decided conditions on positive string and ARN operators: the patch adds the
    // values the request carried, so that the statement allows it.
    let failed = &denial.failed_conditions;
    let patchable = !failed.is_empty()
        && failed.iter().all(|c| {
            !c.undecided()
                && matches!(
                    c.operator.trim_end_matches("IfExists"),
                    "StringEquals"
                        | "StringLike"
                        | "StringEqualsIgnoreCase"
                        | "ArnEquals"
                        | "ArnLike"
                )
        });
    patch_or_investigate(case, role, policy, source, |st| {
        patchable.then(|| {
            failed.iter().fold(st.clone(), |patched, c| {
                with_condition_values(
                    &patched,
                    &c.operator,
                    &c.key,
                    c.request_values.as_deref().unwrap_or(&[]),
                )
            })
        })
    })
}

/// The fix of a `ResourcePartitionMismatch`: the statement patched to the partition of the
/// request's resource, else an investigation.
fn partition_fix(
    case: &IamCase<'_>,
    req: &Request,
    role: &str,
    policy: String,
    source: Option<Map<String, Value>>,
) -> Fix {
    let partition = Arn::parse(&req.resource)
        .map(|a| a.partition.to_string())
        .unwrap_or_default();
    patch_or_investigate(case, role, policy, source, |st| {
        Some(with_partition(st, &partition))
    })
}

/// The fix of a `ResourceNotCovered`: the statement's Resource widened to the request's (for
/// PassRole, to each EC2 principal of the partition too), else an investigation.
fn resource_fix(
    case: &IamCase<'_>,
    req: &Request,
    role: &str,
    policy: String,
    source: Option<Map<String, Value>>,
) -> Fix {
    patch_or_investigate(case, role, policy, source, |st| {
        let patched = with_resource(st, &req.resource);
        // Both PassRole paths: the statement allows the role for each EC2
        // principal of the partition (aws-cn: CreateFleet's and the profile's).
        Some(if case.is_pass_role() {
            with_every_ec2_principal(&patched, case.partition)
        } else {
            patched
        })
    })
}

/// The fix of a denied EBS operation on a KMS key (`key`): the operations EBS calls on it that
/// the role's identity side refuses, as if the key were the role's own account's.
fn kms_identity_fix(
    case: &IamCase<'_>,
    set: &PolicySet,
    req: &Request,
    role: &str,
    key: &str,
) -> Fix {
    // The identity side alone: as if the key were the role's own account's.
    let identity = PolicySet {
        resource: None,
        ..set.clone()
    };
    let missing: Vec<String> = crate::diagnose::kms::EBS_OPERATIONS
        .iter()
        .map(|op| format!("kms:{op}"))
        .filter(|action| {
            let each = Request::new(case.caller, action, key)
                .with_context(req.context.clone())
                .with_resource_account(Some(account_of(role)));
            identity.decide(&each) != Decision::Allowed
        })
        .collect();
    Fix::KmsIdentity {
        role: role.to_string(),
        key: key.to_string(),
        missing,
    }
}

/// The fix of a `PermissionsBoundaryDeny`: the boundary's Deny statement removed, where one
/// refuses; else the boundary widened to allow the request.
fn boundary_fix(
    case: &IamCase<'_>,
    set: &PolicySet,
    role: &str,
    policy: String,
    source: Option<Map<String, Value>>,
) -> Fix {
    match source.filter(|st| st.get("Effect").and_then(Value::as_str) == Some("Deny")) {
        Some(statement) => Fix::RemoveDeny {
            role: role.to_string(),
            policy,
            statement,
        },
        None => Fix::Boundary {
            role: role.to_string(),
            boundary: set.boundary.as_ref().map(|b| b.name.clone()),
            action: case.action.into(),
            resource: case.resource().into(),
            explicit_deny: false,
        },
    }
}

/// The finding of a confirmed refusal: its reason and fix (`cause`), on the premise of the
/// role's policies, and, where the role passed is the EC2NodeClass's stand-in for one a cut
/// text left unknown, on that too (undecided).
fn refusal(
    case: &IamCase<'_>,
    premise: Premise,
    denial: crate::policy::Denial,
    (reason, fix): (ReasonCode, Fix),
    evidence: Vec<Evidence>,
) -> Finding {
    let mut premises = vec![premise];
    if case.resource_assumed {
        premises.push(Premise::undecided(
            What::Failure,
            "the role passed: the EC2NodeClass's spec.role, standing in for the role a cut text left unknown",
        ));
    }
    Finding {
        reason,
        premises,
        summary: denial.summary.clone(),
        evidence,
        statement: denial.statement,
        fix,
    }
}

/// The KMS key of a denial of one of the operations EBS calls on a key (CreateGrant,
/// GenerateDataKeyWithoutPlaintext, …: CloudTrail's record of a launch's encrypted volume).
pub(super) fn ebs_key<'a>(case: &IamCase<'a>) -> Option<&'a str> {
    let op = case.action.strip_prefix("kms:")?;
    crate::diagnose::kms::EBS_OPERATIONS
        .iter()
        .any(|o| o.eq_ignore_ascii_case(op))
        .then_some(case.resource?)
        .filter(|r| {
            Arn::parse(r).is_some_and(|a| a.service == "kms" && a.resource.starts_with("key/"))
        })
}

/// Actions AWS authorizes on `*` only (EC2's Describe calls and the Pricing API have no
/// resource-level permissions): for them a message without a resource still says which.
pub(super) fn authorized_on_star(action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    action.starts_with("ec2:describe") || action.starts_with("pricing:")
}

/// The role's policies allow the action only on some resources, and AWS's message names none
/// (older EC2 answers, some Describe calls): the request's resource was likely outside them,
/// but which it was, and so which statement to widen, is not known.
pub(super) fn unnamed_resource(
    case: &IamCase<'_>,
    role: &str,
    denial: &crate::policy::Denial,
    source: Option<&Map<String, Value>>,
    mut evidence_lines: Vec<Evidence>,
) -> Finding {
    let scope = source
        .and_then(|st| st.get("Resource"))
        .map(|r| match r {
            Value::Array(list) => list
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            other => other.as_str().unwrap_or_default().to_string(),
        })
        .filter(|s| !s.is_empty());
    let near = denial
        .statement
        .as_ref()
        .map(|r| match &r.sid {
            Some(sid) => format!("statement \"{sid}\" of {}", r.policy),
            None => format!("a statement of {}", r.policy),
        })
        .unwrap_or_else(|| "the nearest statement".into());
    evidence_lines.push(evidence(
        "error message",
        format!(
            "the input names no complete resource (AWS named none, or the text is cut short): the policies were matched against `*`, so which resource the request named, and whether {near}{} covers it, is not known; the whole log line, the encoded authorization message or the authorization details name it",
            scope.map(|s| format!(" (Resource {s})")).unwrap_or_default()
        ),
    ));
    Finding {
        reason: ReasonCode::ResourceNotCovered,
        premises: vec![Premise::undecided(What::Sentence, "the resource AWS names")],
        summary: format!(
            "{role}'s policies allow {} only on some resources (nearest: {near}), and the input names no complete resource: the request's resource is likely not among them",
            case.action
        ),
        evidence: evidence_lines,
        statement: None,
        fix: investigate(case, role),
    }
}

/// Whether `t` is the statement the denial names.
pub(super) fn is_denying(
    denial: &crate::policy::Denial,
    t: &crate::policy::statement::StatementTrace,
) -> bool {
    denial
        .statement
        .as_ref()
        .is_some_and(|s| s.policy == t.policy && s.index == Some(t.index))
}

/// Whether AWS names an identity-based explicit deny and exactly one Deny statement of the
/// role's identity policies can match the request: its action and resource match (or the
/// resource is a placeholder it partly covers) and every condition matched or is undecided.
pub(super) fn only_identity_deny(
    case: &IamCase<'_>,
    traces: &[crate::policy::statement::StatementTrace],
) -> bool {
    let could_deny = |t: &&crate::policy::statement::StatementTrace| {
        t.effect == crate::policy::Effect::Deny
            && t.policy_type == crate::policy::PolicyType::Identity
            && t.action_matched
            && (t.resource_matched || t.resource_undecided)
            && t.conditions.iter().all(|c| c.matched || c.undecided())
    };
    case.layer == Some(PolicyLayer::IdentityExplicitDeny)
        && traces.iter().filter(could_deny).count() == 1
}

/// Whether AWS's decoded authorization message settles the Deny the engine found: it records
/// an explicit deny, names the denying statement's Sid among the Deny statements that
/// matched, and no other statement of that Sid could deny the request.
pub(super) fn named_by_aws(
    case: &IamCase<'_>,
    traces: &[crate::policy::statement::StatementTrace],
    denial: &crate::policy::Denial,
) -> bool {
    let Some(decoded) = case
        .decoded
        .filter(|d| d.explicit_deny == Some(true) && d.whole)
    else {
        return false;
    };
    let sids = decoded.deny_sids();
    let named = |t: &&crate::policy::statement::StatementTrace| {
        t.effect == crate::policy::Effect::Deny
            && t.action_matched
            && t.sid.as_ref().is_some_and(|s| sids.contains(s))
    };
    let mut candidates = traces.iter().filter(named);
    matches!(
        (candidates.next(), candidates.next()),
        (Some(t), None) if is_denying(denial, t)
    )
}

/// Why the verdict is not proven, for evidence: the condition keys the doctor could not decide,
/// of the denying statement and the failed conditions (`aws:RequestTag/team, ec2:Encrypted`),
/// else the resource the input does not name.
pub(super) fn undecided_keys(
    traces: &[crate::policy::statement::StatementTrace],
    denial: &crate::policy::Denial,
) -> String {
    let mut keys: Vec<&str> = denial
        .failed_conditions
        .iter()
        .filter(|c| c.undecided())
        .map(|c| c.key.as_str())
        .chain(
            traces
                .iter()
                .filter(|t| is_denying(denial, t))
                .flat_map(|t| t.conditions.iter().filter(|c| c.undecided()))
                .map(|c| c.key.as_str()),
        )
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        "the statement's verdict rests on the request's resource, which the input does not name"
            .into()
    } else {
        format!(
            "the statement's verdict rests on {}, which the request AWS evaluated may carry and the doctor cannot see (or on an operator it does not know)",
            keys.join(", ")
        )
    }
}
