//! Root cause of an IAM denial: confirmed by evaluating the role's real policies with the
//! engine (both EC2 principals for PassRole in China), else inferred from the denial sentence.
//!
//! One module per proof, each saying the premises its causes rest on (`premise`):
//! - `principal`: `WrongPrincipal` (the caller is not the controller role);
//! - `policies`: the role's policies evaluated, the layer AWS names beyond the facts;
//! - `statement`: the statement at fault (near miss, matching Deny, elimination);
//! - `tags`: the caller's principal tags, and their known absence (IRSA, Pod Identity);
//! - `completion`: a cause that holds whatever the resource a cut text left unknown;
//! - `org`: SCP / RCP documents; `launch`: a validation dry run beside its launch;
//! - `text`: AWS's sentence alone (always `Inferred`);
//! - `patch`: the fixes and the evidence lines they share.
//!
//! AWS's own evaluation (Access Troubleshooter) is applied last (`diagnose::authorization`).

use super::authorization;
use super::finding::{Finding, Fix, OrgPolicy, evidence};
use super::model::{Evidence, ReasonCode};
use super::organization;
use super::premise::{Premise, What};
use super::validation::{self, Validation};
use crate::facts::authorization::AuthorizationDetails;
use crate::facts::decoded::Decoded;
use crate::facts::fetched::{Simulation, SimulationKey};
use crate::facts::iam_snapshot::PrincipalPolicies;
use crate::facts::{Facts, Lookup};
use crate::partition::Partition;
use crate::policy::arn::{Arn, role_name_of, session_name_of};
use crate::policy::{Context, Decision, Explanation, PolicySet, Reason, Request};
use crate::signal::{OrgPolicyInfo, PodCredentials, PodInfo, PolicyLayer, ROLE_ANNOTATION};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

mod completion;
mod launch;
mod org;
mod patch;
mod policies;
mod principal;
mod statement;
mod tags;
mod text;

use self::completion::*;
use self::launch::*;
use self::org::*;
use self::patch::*;
use self::policies::*;
use self::principal::*;
use self::statement::*;
use self::tags::*;
pub(super) use self::text::from_text;

/// One IAM denial to explain.
#[derive(Clone, Copy)]
pub struct IamCase<'a> {
    /// The caller as the message names it (an assumed-role session ARN, usually).
    pub caller: &'a str,
    /// The IAM role behind the caller.
    pub role: &'a str,
    pub action: &'a str,
    pub resource: Option<&'a str>,
    /// `resource` is the EC2NodeClass's node role standing in for a role a cut text left
    /// unknown: likely, not read from the failure (`partial`).
    pub resource_assumed: bool,
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
    /// AWS's decoded authorization message of this request, where known (fetched live, or
    /// given as input).
    pub decoded: Option<&'a Decoded>,
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
        // The decoded message records the request's context: its keys are decided.
        let recorded = case.decoded.map(Decoded::context);
        let finding = validated(
            case,
            org_documented(case, from_facts(case, facts, recorded.as_ref())),
        );
        return match case.decoded {
            Some(decoded) => authorization::decoded(finding, decoded),
            None => finding,
        };
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
