//! The role's real policies evaluated by the engine (both EC2 principals for PassRole in
//! China): whether the failing request is refused, on every request it could have been, and
//! whether a layer AWS names is one the facts cannot show. Premises: the role's policies
//! (snapshot or live, whole), the request context (AWS's record, else the partition's), the
//! layer AWS's sentence names.

use super::*;

/// Evaluates the role's own policies; for PassRole once per EC2 service principal of the
/// partition (aws-cn needs both: domain.md §1a).
pub(super) fn from_policies(
    case: &IamCase<'_>,
    policies: &PrincipalPolicies,
    facts: &dyn Facts,
    recorded: Recorded<'_>,
) -> Finding {
    let source = policies.source.as_str();
    // A KMS key's policy, where the facts hold it, is the resource's policy AWS evaluated.
    let key_policy = case
        .resource
        .filter(|r| Arn::parse(r).is_some_and(|a| a.service == "kms"))
        .and_then(|key| match facts.key(key) {
            Lookup::Found(k) => k.policy,
            _ => None,
        });
    let set = PolicySet {
        identity: policies.identity.clone(),
        boundary: policies.boundary.clone(),
        scps: None,
        resource: key_policy,
    };
    let contexts = request_contexts(case.action, case.partition, None);
    // AWS's record of the request, where given, says what the role was passed to.
    let passed_to = recorded
        .and_then(|c| c.get("iam:PassedToService"))
        .and_then(|v| v.first());
    let failing: Vec<(String, Context)> = match passed_to {
        Some(svc) => contexts
            .iter()
            .filter(|(_, ctx)| {
                ctx.get("iam:PassedToService")
                    .is_some_and(|v| v.contains(svc))
            })
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let failing = if failing.is_empty() {
        request_contexts(case.action, case.partition, case.call)
    } else {
        failing
    };
    let call_known = failing.len() < contexts.len();
    let mut evidence_lines = vec![evidence(
        source,
        format!(
            "{} has {} identity {} and {} permissions boundary",
            policies.arn,
            policies.identity.len(),
            if policies.identity.len() == 1 {
                "policy"
            } else {
                "policies"
            },
            if policies.boundary.is_some() {
                "a"
            } else {
                "no"
            }
        ),
    )];
    let tags = principal_tags(case, policies);
    evidence_lines.extend(principal_tags_evidence(case, &set, policies, &tags));
    let mut denied: Option<(Explanation, Request)> = None;
    let mut organizations_deny = false;
    // Every request the failure could be was simulated as refused by the SCPs, with every
    // context key the simulation asked for.
    let mut organizations_deny_each = true;
    let mut disagrees = false;
    // With the call unknown, a cause holds only if every request it could be is denied.
    let mut allowed_somewhere = false;
    // The keys AWS recorded for the failing request are decided, whatever the doctor would
    // have guessed.
    for (label, asked) in contexts {
        let is_failing = failing.iter().any(|(l, _)| *l == label);
        let mut ctx = asked.clone();
        for (key, values) in recorded.into_iter().flatten().filter(|_| is_failing) {
            if ctx.get(key).is_none() {
                values.iter().for_each(|v| ctx.insert(key, v.clone()));
            }
        }
        if dry_run_differs(case) {
            merge(&mut ctx, &validation::dry_run_context());
        }
        merge(&mut ctx, &region_context(case));
        merge(&mut ctx, &tags);
        let (e, req) = evaluate_each(&set, case, &ctx);
        if !is_failing {
            // Another path than the failing call's (PassRole to the other EC2 principal):
            // not this failure's cause, but a defect the fix should cover too.
            if e.decision != Decision::Allowed {
                evidence_lines.push(evidence(
                    "policy evaluation",
                    format!(
                        "warning: not this failure's cause (the failing call {} passes the role to {}), but {} on {}{label} is denied too: Karpenter's other path (CreateFleet, or the EC2NodeClass instance profile) would fail as well, so the fix allows both",
                        case.call.unwrap_or("?"),
                        failing
                            .iter()
                            .map(|(l, _)| l.trim_start_matches(" with iam:PassedToService="))
                            .collect::<Vec<_>>()
                            .join(", "),
                        case.action,
                        case.resource()
                    ),
                ));
            }
            continue;
        }
        allowed_somewhere |= e.decision == Decision::Allowed;
        let verdict = match &e.denial {
            None => "allowed".to_string(),
            Some(d) => format!(
                "{} ({:?}): {}",
                decision_word(e.decision),
                d.reason,
                d.summary
            ),
        };
        evidence_lines.push(evidence(
            "policy evaluation",
            format!("{} on {}{label}: {verdict}", case.action, req.resource),
        ));
        match facts.simulation(&simulation_key(&policies.arn, case.action, case.resource, &asked)) {
            Lookup::Found(sim) => {
                let refused = sim.allowed_by_organizations == Some(false);
                organizations_deny |= refused;
                organizations_deny_each &= refused && sim.missing_context_values.is_empty();
                evidence_lines.push(evidence("iam:SimulatePrincipalPolicy", simulation_line(&sim, &label)));
                if (sim.decision == "allowed") != (e.decision == Decision::Allowed) {
                    disagrees = true;
                    evidence_lines.push(evidence(
                        "iam:SimulatePrincipalPolicy",
                        format!(
                            "IAM's simulation{label} ({}) disagrees with the engine's evaluation of the fetched documents ({}): a layer the documents do not show, or facts that changed",
                            sim.decision,
                            decision_word(e.decision)
                        ),
                    ));
                }
            }
            Lookup::Unknown(why) => evidence_lines.push(evidence(
                "iam:SimulatePrincipalPolicy",
                format!("unavailable ({why}); the decision above is the engine's, on the fetched policy documents"),
            )),
            Lookup::Absent(_) => {}
        }
        if e.decision != Decision::Allowed && denied.is_none() {
            denied = Some((e, req));
        }
    }
    let scp_named = matches!(
        case.layer,
        Some(PolicyLayer::ScpExplicitDeny | PolicyLayer::NoScp)
    );
    if organizations_deny && (denied.is_none() || scp_named) {
        if !organizations_deny_each {
            evidence_lines.push(evidence(
                "iam:SimulatePrincipalPolicy",
                "the simulation refuses only some of the requests the failure could be, or lacked context values it asked for: the SCPs' refusal of the request that failed is not proven",
            ));
        }
        return Finding {
            reason: ReasonCode::ServiceControlPolicyDeny,
            premises: vec![Premise::of(
                What::Organization,
                "iam:SimulatePrincipalPolicy",
                organizations_deny_each,
            )],
            summary: format!(
                "the organization's SCPs do not allow {} on {} for {}{}",
                case.action,
                case.resource(),
                policies.arn,
                if denied.is_none() {
                    ", although the role's own policies do"
                } else {
                    ""
                }
            ),
            evidence: evidence_lines,
            statement: case.policy_arn.map(|policy| crate::policy::StatementRef {
                policy: policy.to_string(),
                sid: None,
                index: None,
            }),
            fix: Fix::Organization {
                kind: OrgPolicy::ServiceControl,
                account: account_of(&policies.arn),
                action: case.action.into(),
                policy: case.policy_arn.map(str::to_string),
            },
        };
    }
    if let Some(layer) = case
        .layer
        .filter(|l| beyond_the_facts(*l, denied.as_ref().map(|(e, _)| e), set.resource.is_some()))
    {
        let mut finding = from_text(case);
        match denied {
            // AWS names one layer only: the role's own policies refuse too, and are next.
            Some((e, req)) => {
                let own = confirmed(case, policies, &set, e, &req, Vec::new());
                if !own.proven() {
                    // A near miss on keys the request may carry: not known to refuse.
                    evidence_lines.push(evidence(
                        "policy evaluation",
                        format!(
                            "AWS names {layer:?}, a layer the doctor's facts do not show; the role's own policies may refuse the request too ({}: {}), on keys the doctor cannot see, so that is not known",
                            own.reason.as_str(),
                            own.summary
                        ),
                    ));
                    evidence_lines.append(&mut finding.evidence);
                    finding.evidence = evidence_lines;
                    return finding;
                }
                evidence_lines.push(evidence(
                    "policy evaluation",
                    format!(
                        "AWS names {layer:?}, a layer the doctor's facts do not show; the role's own policies refuse the request too ({}: {}): once the {layer:?} layer allows it, they would deny it next, so the fix lists both",
                        own.reason.as_str(),
                        own.summary
                    ),
                ));
                let first = std::mem::replace(&mut finding.fix, Fix::Layers(Vec::new()));
                finding.fix = Fix::Layers(vec![first, own.fix]);
            }
            None => evidence_lines.push(evidence(
                "policy evaluation",
                format!(
                    "AWS names {layer:?}, a layer the doctor's facts do not show: the role's own policies allow the request, so that layer alone refuses it"
                ),
            )),
        }
        evidence_lines.append(&mut finding.evidence);
        finding.evidence = evidence_lines;
        return finding;
    }
    let Some((explanation, req)) = denied else {
        let mut finding = from_text(case);
        evidence_lines.push(evidence(
            "policy evaluation",
            "the role's identity policies and boundary allow this request: the denial comes from another layer (an SCP, a session policy) or the facts are stale",
        ));
        if matches!(
            finding.reason,
            ReasonCode::ActionNotAllowed | ReasonCode::PassedToServiceMismatch
        ) {
            finding.reason = ReasonCode::Undetermined;
            finding.summary = format!(
                "AWS denied {} on {}, but {}'s policies allow it",
                case.action,
                case.resource(),
                policies.arn
            );
            finding.fix = Fix::Investigate {
                role: Some(policies.arn.clone()),
                action: Some(case.action.into()),
                resource: case.resource.map(str::to_string),
            };
        }
        evidence_lines.append(&mut finding.evidence);
        finding.evidence = evidence_lines;
        return finding;
    };
    if call_known {
        evidence_lines.push(evidence(
            "error message",
            format!(
                "the failing call is {}: the request AWS evaluated is the one above",
                case.call.unwrap_or("?")
            ),
        ));
    } else if allowed_somewhere {
        evidence_lines.push(evidence(
            "policy evaluation",
            format!(
                "the text does not say which call failed, and {} is allowed in one of the requests it could be: the cause is not proven for the request that failed",
                case.action
            ),
        ));
    }
    // Validation's dry run refused: does the launch's request fare better?
    let launch = case.validation.filter(|_| dry_run_differs(case)).map(|v| {
        let mut ctx = req.context.clone();
        merge_over(&mut ctx, &validation::launch_context(&v));
        (v, evaluate_each(&set, case, &ctx).0)
    });
    let mut finding = confirmed(case, policies, &set, explanation, &req, evidence_lines);
    if disagrees || (!call_known && allowed_somewhere) {
        // The simulation disagrees, or some request the failure could be is allowed.
        finding
            .premises
            .push(Premise::undecided(What::Policies, "the failing request"));
    }
    match launch {
        Some((v, e)) if e.decision == Decision::Allowed => dry_run_only(
            case,
            finding,
            &v,
            "the role's identity policies and boundary allow",
        ),
        Some((v, e)) => {
            if refusal_decided(&e) {
                launch_refused_too(
                    case,
                    &mut finding,
                    &v,
                    "policy evaluation",
                    "the role's policies refuse",
                );
            } else {
                let why = e.denial.map(|d| d.summary).unwrap_or_default();
                launch_unknown(case, &mut finding, &v, &why);
            }
            finding
        }
        None => finding,
    }
}

/// The request with `ctx`, evaluated: on the resource AWS named, else, for validation's dry
/// run (whose message never names one), on each kind of resource a launch touches (all must be
/// allowed); the first refusal, else the last evaluation.
pub(super) fn evaluate_each(
    set: &PolicySet,
    case: &IamCase<'_>,
    ctx: &Context,
) -> (Explanation, Request) {
    let resources = match (case.validation, case.resource) {
        (Some(_), None) => {
            organization::resources(case.action, None, case.partition.id, &account_of(case.role))
        }
        _ => vec![case.resource().to_string()],
    };
    let mut last = None;
    for resource in resources {
        let req = Request::new(case.caller, case.action, &resource).with_context(ctx.clone());
        let e = set.explain(&req);
        if e.decision != Decision::Allowed {
            return (e, req);
        }
        last = Some((e, req));
    }
    last.expect("at least one resource")
}

/// Whether a refusal holds whatever the keys and resources the doctor does not know: an
/// explicit deny by a statement that matched on decided keys and resources, or an implicit
/// deny no Allow statement for the action could have turned (none is undecided).
pub(super) fn refusal_decided(e: &Explanation) -> bool {
    use crate::policy::Effect;
    match e.decision {
        Decision::Allowed => false,
        Decision::ExplicitDeny => e
            .statements
            .iter()
            .any(|t| t.matched && t.effect == Effect::Deny && !t.undecided()),
        Decision::ImplicitDeny => !e
            .statements
            .iter()
            .any(|t| t.effect == Effect::Allow && t.action_matched && !t.matched && t.undecided()),
    }
}

/// Whether the layer AWS named as refusing lies outside what the engine evaluated: SCPs,
/// RCPs, VPC endpoint and session policies always; the boundary, and a resource policy the
/// facts hold (a KMS key policy), when the engine found another cause. An explicit deny there
/// wins over any near miss in the identity policies.
pub(super) fn beyond_the_facts(
    layer: PolicyLayer,
    engine: Option<&Explanation>,
    resource_known: bool,
) -> bool {
    let engine_says = |reasons: &[Reason]| {
        engine
            .and_then(|e| e.denial.as_ref())
            .is_some_and(|d| reasons.contains(&d.reason))
    };
    match layer {
        PolicyLayer::ResourceExplicitDeny | PolicyLayer::NoResourcePolicy => {
            !resource_known
                || !engine_says(&[
                    Reason::ResourcePolicyExplicitDeny,
                    Reason::ResourcePolicyNotAllowing,
                ])
        }
        PolicyLayer::ScpExplicitDeny
        | PolicyLayer::NoScp
        | PolicyLayer::RcpExplicitDeny
        | PolicyLayer::NoRcp
        | PolicyLayer::VpcEndpointExplicitDeny
        | PolicyLayer::NoVpcEndpointPolicy
        | PolicyLayer::SessionExplicitDeny
        | PolicyLayer::NoSessionPolicy
        | PolicyLayer::NoTrustPolicy
        | PolicyLayer::TrustExplicitDeny => true,
        PolicyLayer::NoBoundary | PolicyLayer::BoundaryExplicitDeny => {
            !engine_says(&[Reason::PermissionsBoundaryDeny])
        }
        PolicyLayer::NoIdentityPolicy | PolicyLayer::IdentityExplicitDeny => false,
    }
}

/// What the request is known to carry from the resource AWS named: `aws:RequestedRegion`, the
/// region of a regional service's resource (an EC2 instance's region is the endpoint's).
pub(super) fn region_context(case: &IamCase<'_>) -> Context {
    let mut ctx = Context::default();
    let service = case.action.split(':').next().unwrap_or("");
    if let Some(arn) = case.resource.and_then(Arn::parse).filter(|a| {
        a.service.eq_ignore_ascii_case(service)
            && !a.region.is_empty()
            && !a.region.contains(['*', '?'])
    }) {
        ctx.insert("aws:RequestedRegion", arn.region.to_string());
    }
    ctx
}

/// Adds the keys of `extra` that `ctx` does not have, and what `extra` knows to be absent.
pub(super) fn merge(ctx: &mut Context, extra: &Context) {
    for (key, values) in extra.iter() {
        if ctx.get(key).is_none() {
            ctx.set(key, values.to_vec());
        }
    }
    ctx.mark_as(extra);
}

/// Sets every key of `extra` in `ctx`, replacing what it had, and what `extra` knows to be
/// absent.
pub(super) fn merge_over(ctx: &mut Context, extra: &Context) {
    for (key, values) in extra.iter() {
        ctx.set(key, values.to_vec());
    }
    ctx.mark_as(extra);
}
