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
    let set = policy_set(case, policies, facts);
    let contexts = request_contexts(case.action, case.partition, None);
    let failing = failing_requests(case, recorded, &contexts);
    let call_known = failing.len() < contexts.len();
    let run = evaluate(case, policies, facts, recorded, &set, contexts, &failing);
    let scp_named = matches!(
        case.layer,
        Some(PolicyLayer::ScpExplicitDeny | PolicyLayer::NoScp)
    );
    if run.organizations_deny && (run.denied.is_none() || scp_named) {
        return organizations_refuse(case, policies, run);
    }
    if let Some(layer) = case.layer.filter(|l| {
        beyond_the_facts(
            *l,
            run.denied.as_ref().map(|(e, _)| e),
            set.resource.is_some(),
        )
    }) {
        return layer_beyond_the_facts(case, policies, &set, layer, run.denied, run.evidence);
    }
    let Some((explanation, req)) = run.denied else {
        return policies_allow(case, policies, run.evidence);
    };
    let mut evidence_lines = run.evidence;
    evidence_lines.extend(which_request(case, call_known, run.allowed_somewhere));
    let mut finding = confirmed(case, policies, &set, explanation, &req, evidence_lines);
    if run.disagrees || (!call_known && run.allowed_somewhere) {
        // The simulation disagrees, or some request the failure could be is allowed.
        finding
            .premises
            .push(Premise::undecided(What::Policies, "the failing request"));
    }
    beside_the_launch(case, &set, &req, finding)
}

/// The policies AWS evaluated, as far as the facts hold them: the role's identity policies and
/// boundary, and a KMS key's policy where the resource is a key the facts hold.
fn policy_set(case: &IamCase<'_>, policies: &PrincipalPolicies, facts: &dyn Facts) -> PolicySet {
    // A KMS key's policy, where the facts hold it, is the resource's policy AWS evaluated.
    let key_policy = case
        .resource
        .filter(|r| Arn::parse(r).is_some_and(|a| a.service == "kms"))
        .and_then(|key| match facts.key(key) {
            Lookup::Found(k) => k.policy,
            _ => None,
        });
    PolicySet {
        identity: policies.identity.clone(),
        boundary: policies.boundary.clone(),
        scps: None,
        resource: key_policy,
    }
}

/// The requests of `contexts` the failing call made: those passing the role to the service
/// AWS's record names (`iam:PassedToService`), else those of the call the text names (all of
/// them when it names none).
fn failing_requests(
    case: &IamCase<'_>,
    recorded: Recorded<'_>,
    contexts: &[(String, Context)],
) -> Vec<(String, Context)> {
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
    if failing.is_empty() {
        request_contexts(case.action, case.partition, case.call)
    } else {
        failing
    }
}

/// The role's policies evaluated in every request context the failure could be, with IAM's
/// simulation of each failing one.
struct Evaluation {
    /// The first failing request the role's policies refuse, with the engine's explanation.
    denied: Option<(Explanation, Request)>,
    /// IAM's simulation says the organization's SCPs refuse some failing request.
    organizations_deny: bool,
    /// Every request the failure could be was simulated as refused by the SCPs, with every
    /// context key the simulation asked for.
    organizations_deny_each: bool,
    /// IAM's simulation and the engine decide some failing request differently.
    disagrees: bool,
    /// With the call unknown, a cause holds only if every request it could be is denied.
    allowed_somewhere: bool,
    /// The role's policies, its principal tags, and each request's evaluation and simulation.
    evidence: Vec<Evidence>,
}

/// Evaluates the role's policies in each of `contexts`, and looks up IAM's simulation of each
/// one the failing call made (`failing`); another request is only warned of, where refused.
fn evaluate(
    case: &IamCase<'_>,
    policies: &PrincipalPolicies,
    facts: &dyn Facts,
    recorded: Recorded<'_>,
    set: &PolicySet,
    contexts: Vec<(String, Context)>,
    failing: &[(String, Context)],
) -> Evaluation {
    let mut run = Evaluation {
        denied: None,
        organizations_deny: false,
        organizations_deny_each: true,
        disagrees: false,
        allowed_somewhere: false,
        evidence: vec![policies_evidence(policies)],
    };
    let tags = principal_tags(case, policies);
    run.evidence
        .extend(principal_tags_evidence(case, set, policies));
    for (label, asked) in contexts {
        let is_failing = failing.iter().any(|(l, _)| *l == label);
        let ctx = request_context(case, recorded.filter(|_| is_failing), &asked, &tags);
        let (e, req) = evaluate_each(set, case, &ctx);
        if !is_failing {
            // Another path than the failing call's (PassRole to the other EC2 principal):
            // not this failure's cause, but a defect the fix should cover too.
            if e.decision != Decision::Allowed {
                run.evidence.push(other_path_denied(case, failing, &label));
            }
            continue;
        }
        run.allowed_somewhere |= e.decision == Decision::Allowed;
        let verdict = match &e.denial {
            None => "allowed".to_string(),
            Some(d) => format!(
                "{} ({:?}): {}",
                decision_word(e.decision),
                d.reason,
                d.summary
            ),
        };
        run.evidence.push(evidence(
            "policy evaluation",
            format!("{} on {}{label}: {verdict}", case.action, req.resource),
        ));
        let key = simulation_key(&policies.arn, case.action, case.resource, &asked);
        run.simulated(facts.simulation(&key), &label, e.decision);
        if e.decision != Decision::Allowed && run.denied.is_none() {
            run.denied = Some((e, req));
        }
    }
    run
}

/// The first evidence line: how many identity policies the role has, and whether a boundary.
fn policies_evidence(policies: &PrincipalPolicies) -> Evidence {
    evidence(
        policies.source.as_str(),
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
    )
}

/// The context a request (`asked`) is evaluated in: the keys AWS recorded for it (`recorded`,
/// the failing request's only), a validation dry run's keys, the region of the resource AWS
/// named, and the caller's principal tags (`tags`); each where the request lacks the key.
fn request_context(
    case: &IamCase<'_>,
    recorded: Recorded<'_>,
    asked: &Context,
    tags: &Context,
) -> Context {
    // The keys AWS recorded for the failing request are decided, whatever the doctor would
    // have guessed.
    let mut ctx = asked.clone();
    for (key, values) in recorded.into_iter().flatten() {
        if ctx.get(key).is_none() {
            values.iter().for_each(|v| ctx.insert(key, v.clone()));
        }
    }
    if dry_run_differs(case) {
        merge(&mut ctx, &validation::dry_run_context());
    }
    merge(&mut ctx, &region_context(case));
    merge(&mut ctx, tags);
    ctx
}

/// The warning that a request the failing call did not make (`label`: PassRole to the other
/// EC2 principal) is refused too.
fn other_path_denied(case: &IamCase<'_>, failing: &[(String, Context)], label: &str) -> Evidence {
    evidence(
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
    )
}

impl Evaluation {
    /// Adds IAM's simulation of a failing request (`label`), where looked up: whether the SCPs
    /// refuse it, and whether it disagrees with the engine's `decision`.
    fn simulated(&mut self, lookup: Lookup<Simulation>, label: &str, decision: Decision) {
        match lookup {
            Lookup::Found(sim) => {
                let refused = sim.allowed_by_organizations == Some(false);
                self.organizations_deny |= refused;
                self.organizations_deny_each &= refused && sim.missing_context_values.is_empty();
                self.evidence.push(evidence(
                    "iam:SimulatePrincipalPolicy",
                    simulation_line(&sim, label),
                ));
                if (sim.decision == "allowed") != (decision == Decision::Allowed) {
                    self.disagrees = true;
                    self.evidence.push(evidence(
                        "iam:SimulatePrincipalPolicy",
                        format!(
                            "IAM's simulation{label} ({}) disagrees with the engine's evaluation of the fetched documents ({}): a layer the documents do not show, or facts that changed",
                            sim.decision,
                            decision_word(decision)
                        ),
                    ));
                }
            }
            Lookup::Unknown(why) => {
                // A request not simulated is not known to be refused by the SCPs.
                self.organizations_deny_each = false;
                self.evidence.push(evidence(
                    "iam:SimulatePrincipalPolicy",
                    format!("unavailable ({why}); the decision above is the engine's, on the fetched policy documents"),
                ));
            }
            Lookup::Absent(_) => self.organizations_deny_each = false,
        }
    }
}

/// `ServiceControlPolicyDeny`: IAM's simulation refuses the request for the organization's
/// SCPs, where the role's own policies allow it or AWS names the SCP layer. Proven only where
/// the simulation refused every request the failure could be, with every context value it asked
/// for (premise: the organization).
fn organizations_refuse(
    case: &IamCase<'_>,
    policies: &PrincipalPolicies,
    run: Evaluation,
) -> Finding {
    // The policy AWS names is an SCP where AWS names the SCP layer, or the ARN is one.
    let scp_arn = case.policy_arn.filter(|p| {
        matches!(case.layer, Some(PolicyLayer::ScpExplicitDeny))
            || p.contains("/service_control_policy/")
    });
    let mut evidence_lines = run.evidence;
    if !run.organizations_deny_each {
        evidence_lines.push(evidence(
            "iam:SimulatePrincipalPolicy",
            "the simulation refuses only some of the requests the failure could be, or lacked context values it asked for: the SCPs' refusal of the request that failed is not proven",
        ));
    }
    Finding {
        reason: ReasonCode::ServiceControlPolicyDeny,
        premises: vec![Premise::of(
            What::Organization,
            "iam:SimulatePrincipalPolicy",
            run.organizations_deny_each,
        )],
        summary: format!(
            "the organization's SCPs do not allow {} on {} for {}{}",
            case.action,
            case.resource(),
            policies.arn,
            if run.denied.is_none() {
                ", although the role's own policies do"
            } else {
                ""
            }
        ),
        evidence: evidence_lines,
        statement: scp_arn.map(|policy| crate::policy::StatementRef {
            policy: policy.to_string(),
            sid: None,
            index: None,
        }),
        fix: Fix::Organization {
            kind: OrgPolicy::ServiceControl,
            account: account_of(&policies.arn),
            action: case.action.into(),
            policy: scp_arn.map(str::to_string),
        },
    }
}

/// AWS names a layer the doctor's facts do not show (`layer`): the cause is AWS's sentence's
/// (`from_text`). Where the role's own policies refuse the request too (`denied`), and provably,
/// they are next, and the fix lists both; where they only may, that is said and not fixed.
fn layer_beyond_the_facts(
    case: &IamCase<'_>,
    policies: &PrincipalPolicies,
    set: &PolicySet,
    layer: PolicyLayer,
    denied: Option<(Explanation, Request)>,
    mut evidence_lines: Vec<Evidence>,
) -> Finding {
    let mut finding = from_text(case);
    match denied {
        // AWS names one layer only: the role's own policies refuse too, and are next.
        Some((e, req)) => {
            let own = confirmed(case, policies, set, e, &req, Vec::new());
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
                return evidence_first(evidence_lines, finding);
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
    evidence_first(evidence_lines, finding)
}

/// The role's identity policies and boundary allow the request: the cause is AWS's sentence's
/// (`from_text`), except that one naming the role's own policies is `Undetermined`.
fn policies_allow(
    case: &IamCase<'_>,
    policies: &PrincipalPolicies,
    mut evidence_lines: Vec<Evidence>,
) -> Finding {
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
    evidence_first(evidence_lines, finding)
}

/// `finding` with `evidence_lines` before its own evidence.
fn evidence_first(mut evidence_lines: Vec<Evidence>, mut finding: Finding) -> Finding {
    evidence_lines.append(&mut finding.evidence);
    finding.evidence = evidence_lines;
    finding
}

/// Which request the refusal is of: the failing call's, where the text names it; else a
/// warning where the action is allowed in one of the requests the failure could be.
fn which_request(
    case: &IamCase<'_>,
    call_known: bool,
    allowed_somewhere: bool,
) -> Option<Evidence> {
    if call_known {
        Some(evidence(
            "error message",
            format!(
                "the failing call is {}: the request AWS evaluated is the one above",
                case.call.unwrap_or("?")
            ),
        ))
    } else if allowed_somewhere {
        Some(evidence(
            "policy evaluation",
            format!(
                "the text does not say which call failed, and {} is allowed in one of the requests it could be: the cause is not proven for the request that failed",
                case.action
            ),
        ))
    } else {
        None
    }
}

/// Validation's dry run refused (`req`): does the launch's request fare better? Allowed, the
/// refusal is the dry run's only (`dry_run_only`); refused whatever the doctor does not know,
/// no artefact; else whether the launch is refused too is not known.
fn beside_the_launch(
    case: &IamCase<'_>,
    set: &PolicySet,
    req: &Request,
    mut finding: Finding,
) -> Finding {
    let Some(v) = case.validation.filter(|_| dry_run_differs(case)) else {
        return finding;
    };
    let mut ctx = req.context.clone();
    merge_over(&mut ctx, &validation::launch_context(&v));
    let (e, _) = evaluate_each(set, case, &ctx);
    if e.decision == Decision::Allowed {
        return dry_run_only(
            case,
            finding,
            &v,
            "the role's identity policies and boundary allow",
        );
    }
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

#[cfg(test)]
mod tests {
    use crate::diagnose::model::{Confidence, Diagnosis, ReasonCode};
    use crate::facts::fetched::{Simulation, SimulationKey};
    use crate::facts::iam_snapshot::PrincipalPolicies;
    use crate::facts::kms_snapshot::KeyFacts;
    use crate::facts::{Facts, Lookup};
    use crate::policy::Policy;
    use std::cell::Cell;

    const ROLE: &str = "arn:aws-cn:iam::111122223333:role/KarpenterController";

    /// A role whose own policy allows PassRole everywhere, and IAM's simulation: the first
    /// request asked refused by the SCPs, each later one answered as `later` says.
    struct Simulated {
        asked: Cell<usize>,
        later: Option<bool>,
    }

    impl Facts for Simulated {
        fn principal(&self, _arn: &str) -> Lookup<PrincipalPolicies> {
            let allow = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}}"#;
            Lookup::Found(PrincipalPolicies {
                arn: ROLE.into(),
                identity: vec![Policy::parse("inline:allow", allow).unwrap()],
                boundary: None,
                trust: None,
                tags: None,
                source: "live IAM".into(),
                sizes: None,
            })
        }

        fn key(&self, key: &str) -> Lookup<KeyFacts> {
            Lookup::Absent(key.into())
        }

        fn simulation(&self, _key: &SimulationKey) -> Lookup<Simulation> {
            let n = self.asked.replace(self.asked.get() + 1);
            let refused = |by_orgs: bool| {
                Lookup::Found(Simulation {
                    decision: if by_orgs { "implicitDeny" } else { "allowed" }.into(),
                    allowed_by_organizations: Some(!by_orgs),
                    allowed_by_boundary: None,
                    matched_statements: Vec::new(),
                    missing_context_values: Vec::new(),
                })
            };
            match (n, self.later) {
                (0, _) => refused(true),
                (_, Some(by_orgs)) => refused(by_orgs),
                (_, None) => Lookup::Unknown("Throttling: Rate exceeded".into()),
            }
        }
    }

    /// A PassRole refusal in aws-cn whose call is not named (both EC2 principals are requests it
    /// could be), AWS naming the layer `layer`.
    fn diagnosed(layer: &str, later: Option<bool>) -> Diagnosis {
        let line = serde_json::json!({"level": "ERROR", "time": "2026-01-01T00:00:00Z",
            "message": "failed launching nodeclaim", "NodeClaim": {"name": "a"},
            "error": format!("UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws-cn:sts::111122223333:assumed-role/KarpenterController/1 is not authorized to perform: iam:PassRole on resource: arn:aws-cn:iam::111122223333:role/KarpenterNode {layer}")});
        let scanner = crate::signal::Scanner::new().unwrap();
        let mut obs = crate::signal::Observations::default();
        scanner
            .scan("k.log", line.to_string().as_bytes(), &mut obs, &mut |_| {})
            .unwrap();
        let facts = Simulated {
            asked: Cell::new(0),
            later,
        };
        let mut all = crate::diagnose::diagnose(&obs, &facts, Some(ROLE));
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(facts.asked.get() >= 2, "both requests were simulated");
        all.remove(0)
    }

    #[test]
    fn an_scp_refusal_is_proven_only_where_every_request_it_could_be_was_simulated_refused() {
        let scp = "with an explicit deny in a service control policy: arn:aws-cn:organizations::999988887777:policy/o-a1b2c3d4e5/service_control_policy/p-abcd1234";
        let d = diagnosed(scp, Some(true));
        let root = &d.status.root_cause;
        assert_eq!(root.reason, ReasonCode::ServiceControlPolicyDeny);
        assert_eq!(root.confidence, Confidence::Confirmed, "{root:#?}");
        // One request refused, the other not simulated (throttled): not known.
        let d = diagnosed(scp, None);
        let root = &d.status.root_cause;
        assert_eq!(root.reason, ReasonCode::ServiceControlPolicyDeny);
        assert_eq!(root.confidence, Confidence::Inferred, "{root:#?}");
    }

    #[test]
    fn the_scp_finding_names_no_policy_aws_named_for_another_layer() {
        let identity = "with an explicit deny in an identity-based policy: arn:aws-cn:iam::111122223333:policy/DenyPassRole";
        let d = diagnosed(identity, Some(true));
        let root = &d.status.root_cause;
        assert_eq!(
            root.reason,
            ReasonCode::ServiceControlPolicyDeny,
            "{root:#?}"
        );
        assert!(root.statement.is_none(), "{root:#?}");
        let fix = serde_json::to_string(&d.status.remediation).unwrap();
        assert!(!fix.contains("policy/DenyPassRole"), "{fix}");
    }
}
