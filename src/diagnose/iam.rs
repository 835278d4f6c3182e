//! Root cause of an IAM denial: confirmed by evaluating the role's real policies with the
//! engine (both EC2 principals for PassRole in China), else inferred from the denial sentence.

use super::authorization;
use super::finding::{Finding, Fix, OrgPolicy, evidence};
use super::model::{Confidence, Evidence, ReasonCode};
use super::organization;
use super::validation::{self, Validation};
use crate::facts::authorization::AuthorizationDetails;
use crate::facts::fetched::{Simulation, SimulationKey};
use crate::facts::iam_snapshot::PrincipalPolicies;
use crate::facts::{Facts, Lookup};
use crate::partition::Partition;
use crate::policy::arn::{Arn, role_name_of, session_name_of};
use crate::policy::{Context, Decision, Explanation, PolicySet, Reason, Request};
use crate::signal::{OrgPolicyInfo, PodCredentials, PodInfo, PolicyLayer, ROLE_ANNOTATION};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One IAM denial to explain.
#[derive(Clone, Copy)]
pub struct IamCase<'a> {
    /// The caller as the message names it (an assumed-role session ARN, usually).
    pub caller: &'a str,
    /// The IAM role behind the caller.
    pub role: &'a str,
    pub action: &'a str,
    pub resource: Option<&'a str>,
    pub layer: Option<PolicyLayer>,
    pub partition: &'static Partition,
    /// Node roles named by EC2NodeClasses (`spec.role`, a name or ARN).
    pub node_roles: &'a [String],
    /// The Karpenter controller role, where known (ServiceAccount or `--controller-role`).
    pub controller_role: Option<&'a str>,
    /// The ARN of the policy AWS names as denying, where the message names one.
    pub policy_arn: Option<&'a str>,
    /// The AWS call that failed (`ec2:CreateFleet`), where the text names it.
    pub call: Option<&'a str>,
    /// Karpenter's pods, where given: how each gets its credentials.
    pub pods: &'a [PodInfo],
    /// The EKS cluster's name, where known.
    pub cluster: Option<&'a str>,
    /// Karpenter's ServiceAccounts without IRSA's annotation (`namespace/name`).
    pub unannotated_accounts: &'a [String],
    /// What IAM's Access Troubleshooter says of this request, where known.
    pub authorization: Option<&'a AuthorizationDetails>,
    /// The denial is EC2NodeClass validation's (a dry run), not a launch's.
    pub validation: Option<Validation<'a>>,
    /// Organization policies given as documents (`aws organizations describe-policy`).
    pub org_policies: &'a [OrgPolicyInfo],
}

impl IamCase<'_> {
    fn is_pass_role(&self) -> bool {
        self.action.eq_ignore_ascii_case("iam:PassRole")
    }

    fn resource(&self) -> &str {
        self.resource.unwrap_or("*")
    }
}

pub fn reason(case: &IamCase<'_>, facts: &dyn Facts) -> Finding {
    if let Some(finding) = wrong_principal(case) {
        return finding;
    }
    let Some((details, verdict)) = case
        .authorization
        .and_then(|d| Some((d, d.verdict(case.action, case.resource)?)))
    else {
        return validated(case, org_documented(case, from_facts(case, facts, None)));
    };
    if verdict.refusals.is_empty() {
        return validated(
            case,
            org_documented(case, from_facts(case, facts, Some(&verdict.context))),
        );
    }
    // AWS's own evaluation names the refusing layer and policy: reason from it.
    let first = &verdict.refusals[0];
    let named = IamCase {
        layer: Some(first.layer),
        policy_arn: first
            .policy
            .as_deref()
            .filter(|p| Arn::parse(p).is_some())
            .or(case.policy_arn),
        ..*case
    };
    let finding = from_facts(&named, facts, Some(&verdict.context));
    authorization::proven(&named, finding, details, &verdict)
}

/// The request context AWS recorded for the failing request (Access Troubleshooter).
type Recorded<'a> = Option<&'a BTreeMap<String, Vec<String>>>;

fn from_facts(case: &IamCase<'_>, facts: &dyn Facts, recorded: Recorded<'_>) -> Finding {
    match facts.principal(case.role) {
        Lookup::Found(policies) => from_policies(case, &policies, facts, recorded),
        Lookup::Absent(why) | Lookup::Unknown(why) => {
            let mut finding = from_text(case);
            finding.evidence.push(evidence("facts", why));
            finding
        }
    }
}

/// The request contexts a denial is evaluated (and simulated) in, with a label for evidence:
/// for `iam:PassRole` the EC2 service principal the failing `call` passes the role to —
/// CreateFleet and RunInstances pass it to EC2's principal of the partition
/// (`ec2.amazonaws.com.cn` in aws-cn), the instance-profile calls to `ec2.amazonaws.com`
/// (domain.md §1a, §5b) — or, when the call is unknown, every principal of the partition;
/// else the empty context.
pub fn request_contexts(
    action: &str,
    partition: &Partition,
    call: Option<&str>,
) -> Vec<(String, Context)> {
    if !action.eq_ignore_ascii_case("iam:PassRole") {
        return vec![(String::new(), Context::default())];
    }
    let mut services = ec2_principals(partition);
    let call = call.unwrap_or("").to_ascii_lowercase();
    let passes_to = match call.as_str() {
        "ec2:createfleet" | "ec2:runinstances" => Some(partition.service_principal("ec2")),
        "iam:addroletoinstanceprofile" | "iam:createinstanceprofile" => {
            Some("ec2.amazonaws.com".to_string())
        }
        _ => None,
    };
    if let Some(svc) = passes_to.filter(|s| services.contains(s)) {
        services = vec![svc];
    }
    services
        .into_iter()
        .map(|svc| {
            let mut ctx = Context::default();
            ctx.insert("iam:PassedToService", svc.clone());
            (format!(" with iam:PassedToService={svc}"), ctx)
        })
        .collect()
}

/// The simulation of one request context, as live lookups key it.
pub fn simulation_key(
    role: &str,
    action: &str,
    resource: Option<&str>,
    ctx: &Context,
) -> SimulationKey {
    SimulationKey {
        role: role.to_string(),
        action: action.to_string(),
        resource: resource.unwrap_or("*").to_string(),
        context: ctx
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.to_string(), v.clone())))
            .collect(),
    }
}

/// The caller is not the controller role: a node role (session named after an instance), or
/// another role than the one Karpenter's ServiceAccount names.
fn wrong_principal(case: &IamCase<'_>) -> Option<Finding> {
    let session = session_name_of(case.caller).unwrap_or("");
    let instance_session = session
        .strip_prefix("i-")
        .is_some_and(|h| h.len() >= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let name = role_name_of(case.role);
    let node_role = case
        .node_roles
        .iter()
        .any(|r| role_name_of(r).or(Some(r.as_str())) == name);
    let other_than_controller = case.controller_role.filter(|c| role_name_of(c) != name);
    let detail = if instance_session {
        format!(
            "the session name {session} is an EC2 instance id: the call was made with the node's instance profile role {}",
            case.role
        )
    } else if node_role {
        format!(
            "{} is the node role of an EC2NodeClass, not Karpenter's controller role",
            case.role
        )
    } else if let Some(controller) = other_than_controller {
        format!(
            "Karpenter's service account names {controller}, but the call was made as {}",
            case.role
        )
    } else {
        return None;
    };
    let mut lines = vec![evidence("error message", detail)];
    // Proven where AWS's own message names an instance-profile session and Karpenter's role is
    // known to be another: the request was evaluated as the node, not as Karpenter.
    let confirmed = match (instance_session, other_than_controller) {
        (true, Some(controller)) => {
            lines.push(evidence(
                "service account",
                format!("Karpenter's controller role is {controller}: the request AWS evaluated was not made as it"),
            ));
            true
        }
        (true, None) => {
            lines.push(evidence(
                "error message",
                "Karpenter's controller role (its ServiceAccount's annotation, its Pod Identity association, or --controller-role) would confirm it",
            ));
            false
        }
        _ => false,
    };
    for account in case.unannotated_accounts {
        lines.push(evidence(
            format!("serviceaccount {account}"),
            format!("it has no {ROLE_ANNOTATION} annotation: IRSA gives its pods no role (unless an EKS Pod Identity association does)"),
        ));
    }
    for pod in case.pods {
        let said = match pod.credentials {
            PodCredentials::None => {
                "its containers have neither AWS_WEB_IDENTITY_TOKEN_FILE (IRSA) nor AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity): the SDK falls back to the node's instance profile. A pod created before its ServiceAccount was annotated (or its association made) gets them only when restarted"
            }
            PodCredentials::WebIdentity => {
                "it has IRSA's token (AWS_WEB_IDENTITY_TOKEN_FILE), yet the call was made as another role: look for a credentials error before this one"
            }
            PodCredentials::PodIdentity => {
                "it has EKS Pod Identity's AWS_CONTAINER_CREDENTIALS_FULL_URI, yet the call was made as another role: look for a credentials error before this one"
            }
        };
        lines.push(evidence(
            format!("pod {}/{}", pod.namespace, pod.name),
            format!("ServiceAccount {}: {said}", pod.service_account),
        ));
    }
    Some(Finding {
        reason: ReasonCode::WrongPrincipal,
        confidence: if confirmed {
            Confidence::Confirmed
        } else {
            Confidence::Inferred
        },
        summary: format!(
            "Karpenter called {} as {} instead of its controller role: IRSA or EKS Pod Identity is not in effect for the Karpenter pod",
            case.action, case.role
        ),
        evidence: lines,
        statement: None,
        fix: Fix::Principal {
            caller: case.role.to_string(),
            controller: case.controller_role.map(str::to_string),
            account: case
                .pods
                .first()
                .map(|p| (p.namespace.clone(), p.service_account.clone())),
            cluster: case.cluster.map(str::to_string),
        },
    })
}

/// Evaluates the role's own policies; for PassRole once per EC2 service principal of the
/// partition (aws-cn needs both: domain.md §1a).
fn from_policies(
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
            confidence: if organizations_deny_each {
                Confidence::Confirmed
            } else {
                Confidence::Inferred
            },
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
                if own.confidence != Confidence::Confirmed {
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
        finding.confidence = Confidence::Inferred;
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
fn evaluate_each(set: &PolicySet, case: &IamCase<'_>, ctx: &Context) -> (Explanation, Request) {
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
fn refusal_decided(e: &Explanation) -> bool {
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

/// Validation's dry run and the launch it stands for are both refused (`source`, `refuses`: what
/// says so): no artefact.
fn launch_refused_too(
    case: &IamCase<'_>,
    finding: &mut Finding,
    v: &Validation<'_>,
    source: &str,
    refuses: &str,
) {
    finding.evidence.push(evidence(
        "ec2nodeclass validation",
        validation::difference(v),
    ));
    finding.evidence.push(evidence(
        source,
        format!(
            "{refuses} the launch's {} too: this is no validation artefact",
            case.action
        ),
    ));
}

/// Whether the denial is a validation dry run whose request differs from the launch's.
fn dry_run_differs(case: &IamCase<'_>) -> bool {
    case.validation.is_some() && validation::differs(case.action)
}

/// What the request is known to carry from the resource AWS named: `aws:RequestedRegion`, the
/// region of a regional service's resource (an EC2 instance's region is the endpoint's).
fn region_context(case: &IamCase<'_>) -> Context {
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

/// Adds the keys of `extra` that `ctx` does not have.
fn merge(ctx: &mut Context, extra: &Context) {
    for (key, values) in extra.iter() {
        if ctx.get(key).is_none() {
            ctx.set(key, values.to_vec());
        }
    }
}

/// Sets every key of `extra` in `ctx`, replacing what it had.
fn merge_over(ctx: &mut Context, extra: &Context) {
    for (key, values) in extra.iter() {
        ctx.set(key, values.to_vec());
    }
}

/// A refusal of validation's dry run alone: `allows` (what allows) the launch's request. Never
/// `Confirmed` (AWS does not document the fleet's request context); the fix is Karpenter's way
/// out first, then the layer's own.
fn dry_run_only(
    case: &IamCase<'_>,
    mut finding: Finding,
    v: &Validation<'_>,
    allows: &str,
) -> Finding {
    finding.confidence = Confidence::Inferred;
    finding.summary = format!(
        "only EC2NodeClass validation's dry run of {} is refused ({}); {allows} the launch's request, but ValidationSucceeded=False keeps the EC2NodeClass not Ready",
        case.action, finding.summary
    );
    finding.evidence.push(evidence(
        "ec2nodeclass validation",
        validation::difference(v),
    ));
    finding.evidence.push(evidence(
        "policy evaluation",
        format!("{allows} the launch's {} (aws:ViaAWSService=true, ec2:MetadataHttpTokens={}): only the dry run is refused", case.action, v.http_tokens.unwrap_or("required")),
    ));
    finding.fix = Fix::DryRun {
        cause: Box::new(finding.fix),
        launch_allowed: true,
        node_class: v.node_class.map(str::to_string),
        namespace: v.namespace.map(str::to_string),
    };
    finding
}

/// An SCP or RCP named as denying, with its document given: the Deny statement that matches the
/// request proves the layer (`Confirmed`, the statement named), unless it rests on a key the
/// request may carry; for validation's dry run, whether it denies the launch too.
fn org_documented(case: &IamCase<'_>, mut finding: Finding) -> Finding {
    let kind = match case.layer {
        Some(PolicyLayer::ScpExplicitDeny) => organization::SCP,
        Some(PolicyLayer::RcpExplicitDeny) => organization::RCP,
        _ => return finding,
    };
    if !case.org_policies.iter().any(|d| d.kind == kind) {
        return finding;
    }
    let resources = organization::resources(
        case.action,
        case.resource,
        case.partition.id,
        &account_of(case.role),
    );
    // One group per request the failure could be (the call unknown: each iam:PassedToService),
    // each with one request per resource it touches.
    let requests = |extra: &Context| -> Vec<Vec<Request>> {
        request_contexts(case.action, case.partition, case.call)
            .into_iter()
            .map(|(_, mut ctx)| {
                merge_over(&mut ctx, extra);
                resources
                    .iter()
                    .map(|r| Request::new(case.caller, case.action, r).with_context(ctx.clone()))
                    .collect()
            })
            .collect()
    };
    let mut failing = region_context(case);
    if dry_run_differs(case) {
        merge(&mut failing, &validation::dry_run_context());
    }
    let groups = requests(&failing);
    let (found, errors) =
        organization::denies(case.org_policies, kind, case.policy_arn, &groups.concat());
    // Proven only if it refuses every request the failure could be.
    let for_each = groups.iter().all(|g| {
        organization::denies(case.org_policies, kind, case.policy_arn, g)
            .0
            .is_some_and(|d| !d.undecided)
    });
    for e in errors {
        finding
            .evidence
            .push(evidence("organization policy", format!("not read: {e}")));
    }
    let Some(found) = found else {
        let given: Vec<&str> = case
            .org_policies
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.arn.as_str())
            .collect();
        finding.evidence.push(evidence(
            "organization policy",
            format!(
                "no Deny statement of the given {} ({}) matches {} on {}: another policy of the organization refuses it",
                if kind == organization::SCP { "SCPs" } else { "RCPs" },
                given.join(", "),
                case.action,
                case.resource()
            ),
        ));
        return finding;
    };
    finding.evidence.push(evidence(
        format!("organization policy {}", found.statement.policy),
        found.summary.clone(),
    ));
    finding.statement = Some(found.statement.clone());
    if let Fix::Organization { policy, .. } = &mut finding.fix {
        *policy = Some(found.statement.policy.clone());
    }
    let mut finding = match case.validation.filter(|_| dry_run_differs(case)) {
        Some(v) => {
            let (launch, _) = organization::denies(
                case.org_policies,
                kind,
                Some(&found.statement.policy),
                &requests(&validation::launch_context(&v)).concat(),
            );
            match launch {
                None => {
                    finding.summary = found.summary;
                    return dry_run_only(case, finding, &v, "the organization policy allows");
                }
                Some(l) if !l.undecided => launch_refused_too(
                    case,
                    &mut finding,
                    &v,
                    "organization policy",
                    "the organization policy refuses",
                ),
                Some(l) => launch_unknown(case, &mut finding, &v, &l.summary),
            }
            finding
        }
        None => finding,
    };
    finding.summary = found.summary;
    if found.undecided {
        finding.evidence.push(evidence(
            "organization policy",
            "the Deny matches on a condition key the request as the doctor knows it does not carry, or on a resource the input does not name: the real request may differ, so this is not proven",
        ));
        finding.confidence = Confidence::Inferred;
    } else if !for_each {
        finding.evidence.push(evidence(
            "organization policy",
            "the text does not say which call failed, and the Deny refuses only some of the requests it could be: not proven for the request that failed",
        ));
        finding.confidence = Confidence::Inferred;
    } else {
        finding.confidence = Confidence::Confirmed;
    }
    finding
}

/// Validation's dry run is refused, and the launch's request may be too, on a key or resource
/// the doctor does not know (`why`: the engine's sentence): Karpenter's way out beside the fix.
fn launch_unknown(case: &IamCase<'_>, finding: &mut Finding, v: &Validation<'_>, why: &str) {
    finding.evidence.push(evidence(
        "ec2nodeclass validation",
        validation::difference(v),
    ));
    finding.evidence.push(evidence(
        "policy evaluation",
        format!(
            "whether the launch's {} is refused too is not known: {why}, but only on a condition key or resource the doctor does not know",
            case.action
        ),
    ));
    finding.fix = Fix::DryRun {
        cause: Box::new(finding.fix.clone()),
        launch_allowed: false,
        node_class: v.node_class.map(str::to_string),
        namespace: v.namespace.map(str::to_string),
    };
}

/// Validation's dry run of RunInstances, refused by a layer the facts do not show: whether only
/// the dry run is refused is not known, so the fix offers Karpenter's way out beside the layer's.
/// Its dry run of CreateFleet (or CreateLaunchTemplate) makes the launch's own request.
fn validated(case: &IamCase<'_>, mut finding: Finding) -> Finding {
    let Some(v) = case.validation else {
        return finding;
    };
    if matches!(finding.fix, Fix::DryRun { .. })
        || finding
            .evidence
            .iter()
            .any(|e| e.source == "ec2nodeclass validation")
    {
        return finding;
    }
    if !validation::differs(case.action) {
        finding.evidence.push(evidence(
            "ec2nodeclass validation",
            format!(
                "validation's {} makes the request a launch makes: the launch is refused too",
                case.action
            ),
        ));
        return finding;
    }
    finding.evidence.push(evidence(
        "ec2nodeclass validation",
        validation::difference(&v),
    ));
    if matches!(
        finding.fix,
        Fix::Organization { .. }
            | Fix::Layers(_)
            | Fix::Boundary { .. }
            | Fix::SessionPolicy { .. }
            | Fix::VpcEndpoint { .. }
    ) {
        finding.evidence.push(evidence(
            "ec2nodeclass validation",
            "a policy that denies ec2:RunInstances unless an AWS service calls it, or without ec2:MetadataHttpTokens=required, refuses the dry run but not the launch (karpenter-provider-aws #8190, #9018): give its document (aws organizations describe-policy for an SCP) to tell",
        ));
        finding.fix = Fix::DryRun {
            cause: Box::new(finding.fix),
            launch_allowed: false,
            node_class: v.node_class.map(str::to_string),
            namespace: v.namespace.map(str::to_string),
        };
    }
    finding
}

/// Whether the layer AWS named as refusing lies outside what the engine evaluated: SCPs,
/// RCPs, VPC endpoint and session policies always; the boundary, and a resource policy the
/// facts hold (a KMS key policy), when the engine found another cause. An explicit deny there
/// wins over any near miss in the identity policies.
fn beyond_the_facts(
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

fn confirmed(
    case: &IamCase<'_>,
    policies: &PrincipalPolicies,
    set: &PolicySet,
    e: Explanation,
    req: &Request,
    mut evidence: Vec<Evidence>,
) -> Finding {
    let denial = e.denial.expect("a denied explanation has a denial");
    let source = denial.statement.as_ref().and_then(|r| {
        set.identity
            .iter()
            .chain(&set.boundary)
            .find(|p| p.name == r.policy)
            .and_then(|p| p.statements.get(r.index?))
            .map(|s| s.source.clone())
    });
    let role = policies.arn.clone();
    // Conditions on keys the request did not carry (request tags, say) may hold in the real
    // request, `Null` tests included, and an unknown operator is AWS's to decide: then the near
    // miss is likely, not proven.
    // A Deny that matched on such a key (a negated operator on a key the request did not
    // carry) is not proven either.
    let deny_undecided = e.decision == Decision::ExplicitDeny
        && e.statements.iter().any(|t| {
            t.matched
                && t.effect == crate::policy::Effect::Deny
                && is_denying(&denial, t)
                && t.undecided()
        });
    let eliminated = deny_undecided && only_identity_deny(case, &e.statements);
    let unknown_keys =
        (deny_undecided && !eliminated) || denial.failed_conditions.iter().any(|c| c.undecided());
    if eliminated {
        evidence.push(super::finding::evidence(
            "policy evaluation",
            "AWS names an explicit deny in an identity-based policy, and of the role's identity policies only this Deny statement can match the request (its action and resource match; only keys the doctor cannot see decide its conditions): by elimination, it is the one",
        ));
    } else if unknown_keys {
        evidence.push(super::finding::evidence(
            "policy evaluation",
            format!(
                "not proven: {}; the encoded authorization message or the authorization details would decide it",
                undecided_keys(&e.statements, &denial)
            ),
        ));
    }
    let confidence = if unknown_keys {
        Confidence::Inferred
    } else {
        Confidence::Confirmed
    };
    let policy = denial
        .statement
        .as_ref()
        .map(|r| r.policy.clone())
        .unwrap_or_default();
    let (reason, fix) = match denial.reason {
        Reason::PassedToServiceMismatch => {
            let needed = ec2_principals(case.partition);
            let fix = match (&source, denial.failed_conditions.first()) {
                (Some(st), Some(c)) => Fix::PatchStatement {
                    role: role.clone(),
                    policy,
                    statement: st.clone(),
                    patched: with_condition_values(st, &c.operator, &c.key, &needed),
                },
                _ => Fix::AddStatement {
                    role: role.clone(),
                    statement: pass_role_statement(case),
                },
            };
            (ReasonCode::PassedToServiceMismatch, fix)
        }
        Reason::ConditionNotSatisfied => {
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
            (
                ReasonCode::ConditionNotSatisfied,
                patch_or_investigate(case, &role, policy, source, |st| {
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
                }),
            )
        }
        Reason::ResourcePartitionMismatch => {
            let partition = Arn::parse(&req.resource)
                .map(|a| a.partition.to_string())
                .unwrap_or_default();
            (
                ReasonCode::ResourcePartitionMismatch,
                patch_or_investigate(case, &role, policy, source, |st| {
                    Some(with_partition(st, &partition))
                }),
            )
        }
        // No resource known: the engine matched the statements against `*`, which a request
        // names only for actions without resource-level permissions; for any other, neither
        // the resource to add nor the statement to patch is known.
        Reason::ResourceNotCovered
            if case.resource.is_none() && !authorized_on_star(case.action) =>
        {
            return unnamed_resource(case, &role, &denial, source.as_ref(), evidence);
        }
        Reason::ResourceNotCovered => {
            if case.resource.is_none() {
                evidence.push(super::finding::evidence(
                    "policy evaluation",
                    format!(
                        "{} has no resource-level permissions: AWS authorizes it on `*`, which the statement's Resource does not cover",
                        case.action
                    ),
                ));
            }
            (
                ReasonCode::ResourceNotCovered,
                patch_or_investigate(case, &role, policy, source, |st| {
                    let patched = with_resource(st, &req.resource);
                    // Both PassRole paths: the statement allows the role for each EC2
                    // principal of the partition (aws-cn: CreateFleet's and the profile's).
                    Some(if case.is_pass_role() {
                        with_every_ec2_principal(&patched, case.partition)
                    } else {
                        patched
                    })
                }),
            )
        }
        Reason::ActionNotAllowed => match ebs_key(case) {
            Some(key) => {
                // The identity side alone: as if the key were the role's own account's.
                let identity = PolicySet {
                    resource: None,
                    ..set.clone()
                };
                let missing: Vec<String> = super::kms::EBS_OPERATIONS
                    .iter()
                    .map(|op| format!("kms:{op}"))
                    .filter(|action| {
                        let each = Request::new(case.caller, action, key)
                            .with_context(req.context.clone())
                            .with_resource_account(Some(account_of(&role)));
                        identity.decide(&each) != Decision::Allowed
                    })
                    .collect();
                (
                    ReasonCode::IdentityPolicyMissingKmsPermissions,
                    Fix::KmsIdentity {
                        role: role.clone(),
                        key: key.to_string(),
                        missing,
                    },
                )
            }
            None => (
                ReasonCode::ActionNotAllowed,
                Fix::AddStatement {
                    role: role.clone(),
                    statement: allow_statement(case),
                },
            ),
        },
        Reason::IdentityPolicyExplicitDeny => (
            ReasonCode::IdentityPolicyExplicitDeny,
            match source {
                Some(statement) => Fix::RemoveDeny {
                    role: role.clone(),
                    policy,
                    statement,
                },
                None => investigate(case, &role),
            },
        ),
        Reason::PermissionsBoundaryDeny => (
            ReasonCode::PermissionsBoundaryDeny,
            match source.filter(|st| st.get("Effect").and_then(Value::as_str) == Some("Deny")) {
                Some(statement) => Fix::RemoveDeny {
                    role: role.clone(),
                    policy,
                    statement,
                },
                None => Fix::Boundary {
                    role: role.clone(),
                    boundary: set.boundary.as_ref().map(|b| b.name.clone()),
                    action: case.action.into(),
                    resource: case.resource().into(),
                    explicit_deny: false,
                },
            },
        ),
        Reason::ServiceControlPolicyDeny => (
            ReasonCode::ServiceControlPolicyDeny,
            organization(case, OrgPolicy::ServiceControl, account_of(&role)),
        ),
        Reason::ResourcePolicyExplicitDeny | Reason::ResourcePolicyNotAllowing => (
            ReasonCode::ResourcePolicyDeny,
            Fix::ResourcePolicy {
                action: case.action.into(),
                resource: case.resource.map(str::to_string),
                principal: role.clone(),
                explicit_deny: denial.reason == Reason::ResourcePolicyExplicitDeny,
            },
        ),
    };
    Finding {
        reason,
        confidence,
        summary: denial.summary.clone(),
        evidence,
        statement: denial.statement,
        fix,
    }
}

/// The KMS key of a denial of one of the operations EBS calls on a key (CreateGrant,
/// GenerateDataKeyWithoutPlaintext, …: CloudTrail's record of a launch's encrypted volume).
fn ebs_key<'a>(case: &IamCase<'a>) -> Option<&'a str> {
    let op = case.action.strip_prefix("kms:")?;
    super::kms::EBS_OPERATIONS
        .iter()
        .any(|o| o.eq_ignore_ascii_case(op))
        .then_some(case.resource?)
        .filter(|r| {
            Arn::parse(r).is_some_and(|a| a.service == "kms" && a.resource.starts_with("key/"))
        })
}

/// Actions AWS authorizes on `*` only (EC2's Describe calls and the Pricing API have no
/// resource-level permissions): for them a message without a resource still says which.
fn authorized_on_star(action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    action.starts_with("ec2:describe") || action.starts_with("pricing:")
}

/// The role's policies allow the action only on some resources, and AWS's message names none
/// (older EC2 answers, some Describe calls): the request's resource was likely outside them,
/// but which it was, and so which statement to widen, is not known.
fn unnamed_resource(
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
        confidence: Confidence::Inferred,
        summary: format!(
            "{role}'s policies allow {} only on some resources (nearest: {near}), and the input names no complete resource: the request's resource is likely not among them",
            case.action
        ),
        evidence: evidence_lines,
        statement: None,
        fix: investigate(case, role),
    }
}

/// The root cause as the denial sentence tells it, with no facts to prove it.
pub(super) fn from_text(case: &IamCase<'_>) -> Finding {
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
                missing: super::kms::EBS_OPERATIONS
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
        confidence: Confidence::Inferred,
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

fn patch_or_investigate(
    case: &IamCase<'_>,
    role: &str,
    policy: String,
    source: Option<Map<String, Value>>,
    patch: impl Fn(&Map<String, Value>) -> Option<Map<String, Value>>,
) -> Fix {
    match source
        .as_ref()
        .and_then(|st| Some((st.clone(), patch(st)?)))
    {
        Some((statement, patched)) => Fix::PatchStatement {
            role: role.into(),
            policy,
            statement,
            patched,
        },
        None => investigate(case, role),
    }
}

/// ` (ARN)` after a policy's kind, where the message names the policy.
fn named(policy: Option<&str>) -> String {
    policy.map(|p| format!(" ({p})")).unwrap_or_default()
}

fn organization(case: &IamCase<'_>, kind: OrgPolicy, account: String) -> Fix {
    Fix::Organization {
        kind,
        account,
        action: case.action.into(),
        policy: case.policy_arn.map(str::to_string),
    }
}

fn investigate(case: &IamCase<'_>, role: &str) -> Fix {
    Fix::Investigate {
        role: Some(role.into()),
        action: Some(case.action.into()),
        resource: case.resource.map(str::to_string),
    }
}

/// The statement with `Condition[op][key]` extended by the missing `values` (existing first).
fn with_condition_values(
    st: &Map<String, Value>,
    op: &str,
    key: &str,
    values: &[String],
) -> Map<String, Value> {
    let mut patched = st.clone();
    if let Some(slot) = patched
        .get_mut("Condition")
        .and_then(|c| c.get_mut(op))
        .and_then(|o| o.get_mut(key))
    {
        let mut merged: Vec<String> = match slot {
            Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        };
        for v in values {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        *slot = json!(merged);
    }
    patched
}

/// A PassRole statement whose `iam:PassedToService` condition names some EC2 principals,
/// widened to every one of `partition` (aws-cn: `ec2.amazonaws.com.cn` for CreateFleet and
/// `ec2.amazonaws.com` for the instance profile); as it is without such a condition.
fn with_every_ec2_principal(st: &Map<String, Value>, partition: &Partition) -> Map<String, Value> {
    let found = st
        .get("Condition")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .find_map(|(op, keys)| {
            let key = keys
                .as_object()?
                .keys()
                .find(|k| k.eq_ignore_ascii_case("iam:PassedToService"))?;
            Some((op.clone(), key.clone()))
        });
    match found {
        Some((op, key)) => with_condition_values(st, &op, &key, &ec2_principals(partition)),
        None => st.clone(),
    }
}

/// Every EC2 service principal of `partition`, sorted (aws-cn: `ec2.amazonaws.com` and
/// `ec2.amazonaws.com.cn`): what a PassRole statement must allow for both of Karpenter's paths.
fn ec2_principals(partition: &Partition) -> Vec<String> {
    let mut services = partition.service_principals("ec2");
    services.sort();
    services
}

/// Whether `t` is the statement the denial names.
fn is_denying(
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
fn only_identity_deny(
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

/// Why the verdict is not proven, for evidence: the condition keys the doctor could not decide,
/// of the denying statement and the failed conditions (`aws:RequestTag/team, ec2:Encrypted`),
/// else the resource the input does not name.
fn undecided_keys(
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

/// The statement with each Resource ARN moved into `partition`.
fn with_partition(st: &Map<String, Value>, partition: &str) -> Map<String, Value> {
    let mut patched = st.clone();
    let rewrite = |v: &str| match Arn::parse(v) {
        Some(a) => format!(
            "arn:{partition}:{}:{}:{}:{}",
            a.service, a.region, a.account, a.resource
        ),
        None => v.to_string(),
    };
    if let Some(resource) = patched.get_mut("Resource") {
        let rewritten = match &*resource {
            Value::String(s) => json!(rewrite(s)),
            Value::Array(list) => json!(
                list.iter()
                    .map(|v| v.as_str().map_or(v.clone(), |s| json!(rewrite(s))))
                    .collect::<Vec<_>>()
            ),
            other => other.clone(),
        };
        *resource = rewritten;
    }
    patched
}

/// The statement with `resource` added to its Resource list.
fn with_resource(st: &Map<String, Value>, resource: &str) -> Map<String, Value> {
    let mut patched = st.clone();
    let mut list: Vec<Value> = match patched.get("Resource") {
        Some(Value::Array(list)) => list.clone(),
        Some(v) => vec![v.clone()],
        None => Vec::new(),
    };
    list.push(json!(resource));
    patched.insert("Resource".into(), json!(list));
    patched
}

/// Karpenter's recommended PassRole statement, for this partition.
fn pass_role_statement(case: &IamCase<'_>) -> Value {
    let services = ec2_principals(case.partition);
    json!({"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": case.resource(),
           "Condition": {"StringEquals": {"iam:PassedToService": services}}})
}

fn allow_statement(case: &IamCase<'_>) -> Value {
    if case.is_pass_role() {
        return pass_role_statement(case);
    }
    let sid: String = case
        .action
        .split(':')
        .map(|p| {
            p.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .collect();
    json!({"Sid": format!("KarpenterDoctorAllow{sid}"), "Effect": "Allow", "Action": case.action, "Resource": case.resource()})
}

fn account_of(arn: &str) -> String {
    Arn::parse(arn)
        .map(|a| a.account.to_string())
        .unwrap_or_default()
}

fn simulation_line(sim: &Simulation, label: &str) -> String {
    let flag = |b: Option<bool>| b.map_or("not reported", |b| if b { "yes" } else { "no" });
    let mut line = format!(
        "EvalDecision={}{label}; allowed by organizations: {}; allowed by the permissions boundary: {}",
        sim.decision,
        flag(sim.allowed_by_organizations),
        flag(sim.allowed_by_boundary)
    );
    if !sim.matched_statements.is_empty() {
        line += &format!(
            "; matched statements: {}",
            sim.matched_statements.join(", ")
        );
    }
    if !sim.missing_context_values.is_empty() {
        line += &format!(
            "; missing context values: {}",
            sim.missing_context_values.join(", ")
        );
    }
    line
}

fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Allowed => "allowed",
        Decision::ExplicitDeny => "explicit deny",
        Decision::ImplicitDeny => "implicit deny",
    }
}
