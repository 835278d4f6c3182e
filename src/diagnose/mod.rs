//! From signals and facts to Diagnoses: resolve each signal (role behind the session, KMS key
//! of the NodeClass, launching principal), group by root cause, reason, and render. Pure.

mod authorization;
pub mod credentials;
mod documented;
pub mod finding;
pub mod group;
pub mod iam;
pub mod kms;
pub mod lifecycle;
pub mod model;
pub mod organization;
mod partial;
pub mod pods;
pub mod premise;
pub mod printable;
pub mod remedy;
mod remedy_layers;
pub mod shell;
pub mod time;
mod validation;

use crate::facts::authorization::AuthorizationDetails;
use crate::facts::decoded::Decoded;
use crate::facts::{Facts, Lookup};
use crate::partition::Partition;
use crate::policy::arn::{Arn, role_arn_of, role_name_of};
use crate::signal::text::cut;
use crate::signal::{Category, Observations, Signal};
use finding::{Finding, Fix, evidence};
use group::{Group, Incident, Key};
use model::{
    Condition, Diagnosis, DiagnosisSpec, DiagnosisStatus, Metadata, ReasonCode, RootCause,
};
use premise::{Premise, What};

/// At most this many root causes are diagnosed from one input set: the most frequent (ties by
/// name), so memory stays bounded whatever the number of distinct failures.
pub const MAX_ROOT_CAUSES: usize = 1000;

/// At most this many NodeClaims are listed per Diagnosis.
pub const MAX_NODE_CLAIMS: usize = 20;
/// `lastMessage` is cut to this many bytes (on a character boundary).
pub const MAX_MESSAGE: usize = 4096;
/// The transition time of conditions when the input gives no time at all.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// What live lookups must answer for `obs`: one entry per distinct root cause, not per failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Questions {
    pub principals: std::collections::BTreeSet<String>,
    pub keys: std::collections::BTreeSet<String>,
    pub simulations: std::collections::BTreeSet<crate::facts::fetched::SimulationKey>,
    pub encoded: std::collections::BTreeSet<String>,
    /// Authorization ids of denials (IAM Access Troubleshooter).
    pub authorizations: std::collections::BTreeSet<String>,
    /// Instances of lost NodeClaims the inputs do not describe (the KMS path needs their
    /// StateReason).
    pub instances: std::collections::BTreeSet<String>,
    /// AMIs of instances that died of an unusable KMS key no input names.
    pub images: std::collections::BTreeSet<String>,
    /// EKS clusters whose OIDC issuer a web identity failure needs (no input names it).
    pub clusters: std::collections::BTreeSet<String>,
    /// Whether a web identity failure needs the account's OIDC providers (no input lists them).
    pub oidc_providers: bool,
    /// (cluster, Karpenter's namespace) whose Pod Identity associations a Pod Identity
    /// failure needs (no input names the associated role).
    pub pod_identities: std::collections::BTreeSet<(String, Option<String>)>,
}

/// The controller role (given, or from the ServiceAccount, or from Karpenter's Pod Identity
/// association; resolved to its path through the facts) and every signal resolved into an
/// incident.
fn resolve<'a>(
    obs: &'a Observations,
    facts: &dyn Facts,
    controller_role: Option<&str>,
) -> (Option<String>, Vec<Incident<'a>>) {
    let controller = controller_role
        .map(str::to_string)
        .or_else(|| controller_account(obs).map(|a| a.role.clone()))
        .or_else(|| match obs.controller_roles.as_slice() {
            [only] if obs.accounts.is_empty() => Some(only.clone()),
            _ => None,
        })
        .or_else(|| credentials::karpenter_association(obs).and_then(|a| a.role.clone()))
        .map(|c| resolve_role(&c, facts));
    let sightings = partial::Sightings::of(obs);
    let incidents = obs
        .signals
        .iter()
        .map(|s| incident(s, obs, facts, controller.as_deref(), &sightings))
        .collect();
    (controller, incidents)
}

/// Karpenter's own ServiceAccount among those that name a role (IRSA): the one its pods run
/// as, else the one whose name says karpenter, else the only one. Several ServiceAccounts of
/// Karpenter's namespace name roles (aws-node, the EBS CSI driver, the load balancer
/// controller): whichever a cache yields first is never taken, so the same inputs give the
/// same answer.
pub fn controller_account(obs: &Observations) -> Option<&crate::signal::AccountInfo> {
    let ran_as = |a: &&crate::signal::AccountInfo| {
        obs.karpenter_pods
            .iter()
            .any(|p| p.namespace == a.namespace && p.service_account == a.name)
    };
    let named = |a: &&crate::signal::AccountInfo| a.name.to_ascii_lowercase().contains("karpenter");
    if obs.karpenter_pods.is_empty() {
        one(obs.accounts.iter().filter(named).collect())
            .or_else(|| one(obs.accounts.iter().collect()))
    } else {
        one(obs.accounts.iter().filter(ran_as).collect())
    }
}

/// The only item, if there is exactly one.
fn one<T>(mut found: Vec<T>) -> Option<T> {
    (found.len() == 1).then(|| found.remove(0))
}

/// The lookups diagnosing `obs` would use, given what `facts` already hold (roles are resolved
/// through them, so simulations name the role with its path once it has been fetched).
pub fn questions(
    obs: &Observations,
    facts: &dyn Facts,
    controller_role: Option<&str>,
) -> Questions {
    let (controller, incidents) = resolve(obs, facts, controller_role);
    let mut q = Questions::default();
    q.principals.extend(controller.clone());
    // AWS is asked only about what Karpenter wrote: the principals, keys, images and messages
    // a text anyone may post names (an Event of another reporter) are never looked up.
    q.images = incidents
        .iter()
        .filter(|i| i.signal.author.is_none())
        .filter(|i| i.key.category == Category::KmsKeyUnusable && i.key.kms_key.is_none())
        .filter_map(|i| image_of(i, obs))
        .collect();
    for g in group::group(incidents) {
        if g.incidents.iter().all(|i| i.signal.author.is_some()) {
            continue;
        }
        let (partition, _) = place(&g, obs);
        q.principals.extend(g.key.principal.clone());
        q.keys.extend(g.key.kms_key.clone());
        // A denial on a KMS key: its key policy is the resource policy AWS evaluated.
        q.keys.extend(
            g.key
                .resource
                .clone()
                .filter(|r| Arn::parse(r).is_some_and(|a| a.service == "kms")),
        );
        let karpenters = || {
            g.incidents
                .iter()
                .rev()
                .filter(|i| i.signal.author.is_none())
        };
        q.encoded
            .extend(karpenters().find_map(|i| i.signal.encoded_message.clone()));
        q.authorizations
            .extend(karpenters().find_map(|i| i.signal.authorization_id.clone()));
        if let (Some(role), Some(action)) = (&g.key.principal, &g.key.action) {
            for (_, ctx) in iam::request_contexts(action, partition, None) {
                q.simulations.insert(iam::simulation_key(
                    role,
                    action,
                    g.key.resource.as_deref(),
                    &ctx,
                ));
            }
        }
    }
    credential_questions(obs, &mut q);
    q.instances = obs
        .node_claims
        .iter()
        .filter(|c| c.lost)
        .filter_map(|c| c.instance_id.clone())
        .filter(|id| !obs.instances.iter().any(|i| &i.instance_id == id))
        .collect();
    q
}

/// Whether Karpenter gets its credentials through IRSA: its ServiceAccount names a role.
pub fn karpenter_uses_irsa(obs: &Observations) -> bool {
    controller_account(obs).is_some_and(|a| !a.role.is_empty())
}

/// What checking Karpenter's credential path before any failure needs that no input gave:
/// IRSA's (its ServiceAccount names a role) or else Pod Identity's, as for a failure of it.
pub fn preflight_questions(obs: &Observations) -> Questions {
    let path = match karpenter_uses_irsa(obs) {
        true => finding::CredentialsPath::WebIdentity,
        false => finding::CredentialsPath::PodIdentity,
    };
    let mut q = Questions::default();
    credential_needs(obs, &[path], &mut q);
    q
}

/// What re-checking stored credentials Diagnoses needs: as for their failures seen afresh.
pub fn recheck_questions<'a>(
    obs: &Observations,
    specs: impl Iterator<Item = &'a model::DiagnosisSpec>,
) -> Questions {
    let paths: Vec<finding::CredentialsPath> = specs
        .filter(|s| s.category == Category::CredentialsDenied)
        .filter_map(|s| credentials::path_of_spec(s.action.as_deref(), s.error_code.as_deref()))
        .collect();
    let mut q = Questions::default();
    credential_needs(obs, &paths, &mut q);
    q
}

/// What a credentials failure needs that no input gave: the cluster's issuer and the account's
/// OIDC providers (IRSA), Karpenter's Pod Identity association (Pod Identity).
fn credential_questions(obs: &Observations, q: &mut Questions) {
    let paths: Vec<finding::CredentialsPath> = obs
        .signals
        .iter()
        .filter(|s| s.category == Category::CredentialsDenied)
        .filter_map(credentials::path_of)
        .collect();
    credential_needs(obs, &paths, q);
}

fn credential_needs(obs: &Observations, paths: &[finding::CredentialsPath], q: &mut Questions) {
    use finding::CredentialsPath as P;
    if paths
        .iter()
        .any(|p| matches!(p, P::WebIdentity | P::OidcProvider))
    {
        if obs.oidc_issuers.is_empty() {
            q.clusters.extend(obs.cluster_names.iter().cloned());
        }
        q.oidc_providers = obs.oidc_providers.is_none();
    }
    let associated = credentials::karpenter_association(obs).is_some_and(|a| a.role.is_some());
    if paths.contains(&P::PodIdentity) && !associated {
        let namespace = match obs.karpenter_pods.as_slice() {
            [pod, ..] => Some(pod.namespace.clone()),
            [] => None,
        };
        for cluster in &obs.cluster_names {
            q.pod_identities
                .insert((cluster.clone(), namespace.clone()));
        }
    }
}

/// One Diagnosis per root cause found in `obs`, sorted by name. The same input always gives
/// the same output, byte for byte.
pub fn diagnose(
    obs: &Observations,
    facts: &dyn Facts,
    controller_role: Option<&str>,
) -> Vec<Diagnosis> {
    diagnose_counted(obs, facts, controller_role, &|_| None)
}

/// As `diagnose`, where some occurrences were already counted into the Diagnoses a cluster
/// holds: `counted(name)` is the `lastSeen` (ms) up to which the stored Diagnosis `name`
/// counted them, and `occurrences` is only those sighted after it (a controller that restarts
/// reads the same Events and NodeClaims again, and must not count them twice).
pub fn diagnose_counted(
    obs: &Observations,
    facts: &dyn Facts,
    controller_role: Option<&str>,
    counted: &dyn Fn(&str) -> Option<i64>,
) -> Vec<Diagnosis> {
    let (controller, incidents) = resolve(obs, facts, controller_role);
    let waiting = crate::signal::pending::waiting_on(obs.pending_pods.as_deref(), &obs.nominations);
    let mut out: Vec<Diagnosis> = group::most_frequent(group::group(incidents), MAX_ROOT_CAUSES)
        .iter()
        .map(|g| {
            let mut d = render(g, obs, facts, controller.as_deref());
            if let Some(until) = counted(&d.metadata.name) {
                d.status.occurrences = g.sighted_after(until);
            }
            if obs.pending_pods.is_some() {
                d.blocked = g.blocked(&waiting);
                d.status.blocked_pods = Some(d.blocked.len() as u64);
            }
            d
        })
        .collect();
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

/// The partition and region of a root cause: from its ARNs, else the instance's region.
fn place(g: &Group<'_>, obs: &Observations) -> (&'static Partition, Option<String>) {
    let key = &g.key;
    let arn_of = |text: &Option<String>| {
        text.as_deref()
            .and_then(Arn::parse)
            .map(|a| (a.partition.to_string(), a.region.to_string()))
    };
    let instance_region = g
        .incidents
        .iter()
        .rev()
        .find_map(|i| i.signal.instance_id.as_ref())
        .and_then(|id| obs.instances.iter().find(|i| &i.instance_id == id))
        .and_then(|i| i.region.clone());
    let region = [&key.resource, &key.kms_key]
        .into_iter()
        .filter_map(|t| arn_of(t).map(|(_, r)| r))
        .find(|r| !r.is_empty())
        .or(instance_region);
    let partition = [&key.principal, &key.resource, &key.kms_key]
        .into_iter()
        .find_map(|t| arn_of(t).and_then(|(p, _)| Partition::by_id(&p)))
        .or_else(|| region.as_deref().map(Partition::of_region))
        .unwrap_or(&crate::partition::PARTITIONS[0]);
    (partition, region)
}

/// The role ARN behind a principal, with its path where the facts know it.
fn resolve_role(principal: &str, facts: &dyn Facts) -> String {
    match facts.principal(principal) {
        Lookup::Found(p) => p.arn,
        _ => role_arn_of(principal),
    }
}

fn incident<'a>(
    s: &'a Signal,
    obs: &Observations,
    facts: &dyn Facts,
    controller: Option<&str>,
    sightings: &partial::Sightings<'_>,
) -> Incident<'a> {
    let claim = s
        .node_claim
        .as_ref()
        .and_then(|n| obs.node_claims.iter().find(|c| &c.name == n));
    let instance = s
        .instance_id
        .as_ref()
        .and_then(|id| obs.instances.iter().find(|i| &i.instance_id == id));
    let node_class = s
        .node_class
        .clone()
        .or_else(|| claim.and_then(|c| c.node_class.clone()))
        .or_else(|| instance.and_then(|i| i.node_class.clone()));
    let node_pool = s
        .node_pool
        .clone()
        .or_else(|| claim.and_then(|c| c.node_pool.clone()))
        .or_else(|| instance.and_then(|i| i.node_pool.clone()));
    let node_role = node_class
        .as_ref()
        .and_then(|n| obs.node_classes.iter().find(|c| &c.name == n))
        .and_then(|c| c.role.as_deref());
    let whole = sightings.complete(s, node_role);
    let key = if s.category == Category::KmsKeyUnusable {
        let class_key = node_class
            .as_ref()
            .and_then(|n| obs.node_classes.iter().find(|c| &c.name == n))
            .and_then(|c| c.kms_key_ids.first().cloned());
        // An encrypted AMI's snapshots name the key when the node class does not.
        let image_key = || match facts.image_keys(instance?.image_id.as_deref()?) {
            Lookup::Found(keys) => keys.into_iter().next(),
            _ => None,
        };
        Key {
            category: s.category,
            principal: controller.map(str::to_string),
            action: None,
            resource: None,
            kms_key: s
                .kms_key
                .clone()
                .or(whole.kms_key)
                .or(class_key)
                .or_else(image_key),
        }
    } else if s.category == Category::CredentialsDenied {
        // The role Karpenter was to become; one Diagnosis however many of its controllers fail.
        let assumed = s
            .resource
            .as_deref()
            .filter(|r| r.contains(":role/") && complete_arn(r));
        let caller = s
            .principal
            .as_deref()
            .filter(|p| complete_arn(p))
            .map(|p| resolve_role(p, facts));
        // EKS Auth assumes the role Karpenter's association names, whatever else names one.
        let associated = (credentials::path_of(s) == Some(finding::CredentialsPath::PodIdentity))
            .then(|| credentials::karpenter_association(obs).and_then(|a| a.role.clone()))
            .flatten();
        // Role chaining (sts:AssumeRole, sts:TagSession on a role): the caller was refused, the
        // role it would become is the resource.
        let chained = credentials::path_of(s) == Some(finding::CredentialsPath::AssumeRole)
            && caller.is_some();
        Key {
            category: s.category,
            principal: if chained {
                caller
            } else {
                assumed
                    .map(str::to_string)
                    .or(associated)
                    .or_else(|| controller.map(str::to_string))
                    .or(caller)
            },
            // STS off in the region, or expired credentials, is one cause whichever call met
            // it.
            action: s.action.clone().filter(|_| !credentials::whatever_call(s)),
            resource: assumed.filter(|_| chained).map(str::to_string),
            kms_key: None,
        }
    } else {
        let principal = s
            .principal
            .as_deref()
            .or(whole.principal.as_deref())
            .map(|p| resolve_role(p, facts));
        let action = s.action.clone().or(whole.action);
        let from_controller =
            s.source == crate::signal::Source::NodeClass && principal.is_none() && action.is_some();
        let pass_role = action
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case("iam:PassRole"));
        Key {
            category: if pass_role {
                Category::PassRoleDenied
            } else {
                s.category
            },
            principal: if from_controller {
                controller.map(str::to_string)
            } else {
                principal
            },
            action,
            resource: s.resource.clone().or(whole.resource),
            kms_key: s.kms_key.clone().or(whole.kms_key),
        }
    };
    Incident {
        signal: s,
        key,
        node_pool,
        node_class,
        time_ms: s.time.as_deref().and_then(crate::policy::typed::date),
        cut: whole.notes,
        resource_by_class: whole.resource_by_class,
    }
}

/// The failure itself as a premise: Karpenter's when any of its texts is Karpenter's own,
/// else the text of whoever wrote it; a request `preflight` predicts is no failure.
fn failure_premise(g: &Group<'_>) -> Premise {
    let latest = g.latest().signal;
    let karpenters = g.incidents.iter().find(|i| i.signal.author.is_none());
    let signal = karpenters.map_or(latest, |i| i.signal);
    let what = if signal.rule == premise::PREDICTED_RULE {
        What::Prediction
    } else {
        What::Failure
    };
    Premise {
        author: signal.author.clone(),
        ..Premise::decided(
            what,
            format!("{}:{}", signal.origin.file, signal.origin.line),
        )
    }
}

fn render(
    g: &Group<'_>,
    obs: &Observations,
    facts: &dyn Facts,
    controller: Option<&str>,
) -> Diagnosis {
    let key = &g.key;
    let latest = g.latest();
    let (partition, region) = place(g, obs);
    let mut finding = reason(
        g,
        latest.signal,
        facts,
        controller,
        obs,
        partition,
        region.as_deref(),
    );
    finding.evidence.insert(0, signal_evidence(g));
    let mut cut_notes: Vec<&String> = g.incidents.iter().flat_map(|i| &i.cut).collect();
    cut_notes.sort();
    cut_notes.dedup();
    for (at, note) in cut_notes.into_iter().enumerate() {
        finding
            .evidence
            .insert(1 + at, evidence("error message", note.clone()));
    }
    finding.premises.push(failure_premise(g));
    if g.incidents.iter().all(|i| i.signal.author.is_some()) {
        // Only texts anyone may write tell of it: a hint, never proof.
        let mut authors: Vec<&str> = g
            .incidents
            .iter()
            .filter_map(|i| i.signal.author.as_deref())
            .collect();
        authors.sort();
        authors.dedup();
        finding.evidence.insert(
            1,
            evidence(
                "trust",
                format!(
                    "Karpenter did not write this: {} (Karpenter reports its Events as \"karpenter\", naming no instance, in namespace default). Anyone allowed to create Events can write such a text, so it never proves a failure; Karpenter's own log or NodeClaim would",
                    authors.join("; ")
                ),
            ),
        );
    }
    // AWS's decoded message of this request, whole, names the action the text left out.
    let decoded_names_action = key
        .principal
        .as_deref()
        .zip(key.action.as_deref())
        .and_then(|(role, action)| decoded_of(g, obs, facts, role, action))
        .is_some_and(|d| d.whole);
    if latest.signal.action_from.is_some() && decoded_names_action {
        finding.evidence.insert(
            1,
            evidence(
                "error message",
                format!(
                    "the text names no action; AWS's decoded authorization message of the request names {}",
                    key.action.as_deref().unwrap_or("it")
                ),
            ),
        );
    } else if let Some(from) = &latest.signal.action_from {
        // The action is read from around the message, not from AWS: a root cause that names
        // it rests on it, and is not proven (one that names none, as STS's
        // RegionDisabledException whatever call met it, does not).
        if key.action.is_some() {
            let source = format!(
                "{}:{}",
                latest.signal.origin.file, latest.signal.origin.line
            );
            finding
                .premises
                .push(Premise::undecided(What::Sentence, source));
        }
        finding.evidence.insert(
            1,
            evidence(
                "error message",
                format!(
                    "AWS names no action; {} is inferred: {from}",
                    key.action.as_deref().unwrap_or("the action")
                ),
            ),
        );
    }
    if let Some(policy) = g
        .incidents
        .iter()
        .rev()
        .find_map(|i| i.signal.policy_arn.as_deref())
    {
        let detail = if complete_arn(policy) {
            format!("AWS names the denying policy {policy}")
        } else {
            format!(
                "AWS names a denying policy, but the input leaves part of its ARN out ({policy}): it stays unknown"
            )
        };
        finding.evidence.push(evidence("error message", detail));
    }
    // An authorization id whose details are not at hand: how to fetch them.
    let unfetched_id = g
        .incidents
        .iter()
        .rev()
        .find_map(|i| i.signal.authorization_id.as_deref())
        .and_then(|id| match facts.authorization(id) {
            Lookup::Found(_) => None,
            Lookup::Unknown(why) => Some((id, format!("its details could not be fetched ({why})"))),
            Lookup::Absent(_) => {
                Some((id, "its details were not fetched (--live does)".to_string()))
            }
        })
        .filter(|_| {
            !finding
                .evidence
                .iter()
                .any(|e| e.source == "iam:GetRequestAuthorizationDetails")
        });
    if let Some((id, why)) = &unfetched_id {
        finding.evidence.push(evidence(
            "error message",
            format!("AWS gives the authorization id {id}; {why}: they name the policies AWS evaluated and the statements that matched (kept at least 24 hours)"),
        ));
    }
    if key.category == Category::KmsKeyUnusable {
        finding.evidence.extend(image_evidence(g, obs, facts));
    }
    if let Some(blob) = g
        .incidents
        .iter()
        .rev()
        .find_map(|i| i.signal.encoded_message.as_deref())
    {
        let line = match facts.decoded(blob) {
            Lookup::Found(decoded) => Some(decoded_line(&decoded)),
            Lookup::Unknown(why) => Some(format!("not decoded: {why}")),
            Lookup::Absent(_) => None,
        };
        if let Some(line) = line {
            finding
                .evidence
                .insert(1, evidence("sts:DecodeAuthorizationMessage", line));
        }
    }
    let mut remediation = remedy::remediation(&finding, partition);
    if let Some((id, _)) = unfetched_id {
        remediation.steps.insert(0, format!("Fetch what AWS evaluated for authorization id {id} (within 24 hours of the denial; needs iam:GetRequestAuthorizationDetails) and give its output to `explain` with the other inputs: its matched statements confirm the cause."));
        let fetch = shell::Command::new("aws")
            .lit("iam-toolbox get-request-authorization-details")
            .opt("--authorization-id", id)
            .lit(">")
            .word(&[
                shell::Piece::Lit("authorization-"),
                shell::Piece::Value(id),
                shell::Piece::Lit(".json"),
            ]);
        remediation.commands.insert(0, fetch.into());
    }
    let first_seen = g.incidents.iter().find_map(|i| i.time_ms).map(time::format);
    let last_seen = g
        .incidents
        .iter()
        .rev()
        .find_map(|i| i.time_ms)
        .map(time::format);
    let since = first_seen.clone().unwrap_or_else(|| EPOCH.to_string());
    let diagnosed = finding.reason != ReasonCode::Undetermined;
    let conditions = vec![
        Condition {
            type_: "Diagnosed".into(),
            status: if diagnosed { "True" } else { "False" }.into(),
            reason: if diagnosed {
                finding.reason.as_str().into()
            } else {
                "InsufficientData".into()
            },
            message: finding.summary.clone(),
            last_transition_time: since.clone(),
            observed_generation: None,
        },
        Condition {
            type_: "Resolved".into(),
            status: "False".into(),
            reason: "FailureObserved".into(),
            message: format!(
                "seen {} time{}; no fix verified yet",
                g.incidents.len(),
                if g.incidents.len() == 1 { "" } else { "s" }
            ),
            last_transition_time: since,
            observed_generation: None,
        },
    ];
    let latest_with = |f: for<'i> fn(&'i Incident<'_>) -> Option<&'i String>| {
        g.incidents.iter().rev().find_map(|i| f(i).cloned())
    };
    let mut diagnosis = Diagnosis {
        api_version: model::API_VERSION,
        kind: model::KIND,
        metadata: Metadata { name: key.name() },
        spec: DiagnosisSpec {
            category: key.category,
            error_code: latest_with(|i| i.signal.error_code.as_ref()),
            principal_arn: key.principal.clone(),
            action: key.action.clone(),
            resource_arn: key.resource.clone(),
            kms_key_arn: key.kms_key.clone(),
            partition: Some(partition.id.to_string()),
            region,
            node_pool: latest_with(|i| i.node_pool.as_ref()),
            node_class: latest_with(|i| i.node_class.as_ref()),
        },
        status: DiagnosisStatus {
            conditions,
            root_cause: RootCause {
                reason: finding.reason,
                confidence: premise::confidence(&finding.premises),
                summary: finding.summary,
                evidence: finding.evidence,
                statement: finding.statement,
            },
            remediation,
            occurrences: g.incidents.len() as u64,
            first_seen,
            last_seen,
            affected_node_claims: g.node_claims(MAX_NODE_CLAIMS),
            // Escaped before the cut, so that the cap holds.
            last_message: cut(&printable::escape(&latest.signal.message), MAX_MESSAGE),
            blocked_pods: None,
            node_pools: g.node_pools(),
        },
        blocked: Vec::new(),
    };
    printable::diagnosis(&mut diagnosis);
    diagnosis
}

fn reason(
    g: &Group<'_>,
    latest: &Signal,
    facts: &dyn Facts,
    controller: Option<&str>,
    obs: &Observations,
    partition: &'static Partition,
    region: Option<&str>,
) -> Finding {
    let key = &g.key;
    if key.category == Category::KmsKeyUnusable {
        let capacity = capacity_of(g, obs);
        let case = kms::KmsCase {
            key: key.kms_key.as_deref(),
            principal: key.principal.as_deref(),
            region,
            partition,
            capacity_type: capacity.as_deref(),
            error_code: latest.error_code.as_deref(),
            said_state: g.incidents.iter().rev().find_map(|i| {
                let s = i.signal;
                Some((
                    s.key_state.as_deref()?,
                    format!("{}:{}", s.origin.file, s.origin.line),
                ))
            }),
        };
        return kms::reason(&case, facts);
    }
    // Where a condition is coarser than the log line (it calls RCP, VPC endpoint and session
    // denials "no identity-based policy"), the latest signal that names the principal speaks.
    let latest = g
        .incidents
        .iter()
        .rev()
        .map(|i| i.signal)
        .find(|s| s.principal.is_some())
        .unwrap_or(latest);
    if key.category == Category::CredentialsDenied {
        let case = credentials::CredentialsCase::of(
            obs,
            key.principal.as_deref(),
            latest.oidc_issuer.as_deref(),
            partition,
        );
        return credentials::reason(latest, &case, facts);
    }
    let caller = g
        .incidents
        .iter()
        .rev()
        .find_map(|i| i.signal.principal.as_deref())
        .or(key.principal.as_deref());
    let node_roles: Vec<String> = obs
        .node_classes
        .iter()
        .filter_map(|n| n.role.clone())
        .collect();
    match (caller, key.principal.as_deref(), key.action.as_deref()) {
        (Some(caller), Some(role), Some(action)) => {
            let authorization = authorization_of(g, obs, facts, role, action);
            let decoded = decoded_of(g, obs, facts, role, action);
            // Every failure of the group is validation's dry run: no launch was seen refused.
            let validation = g.incidents.iter().all(|i| i.signal.dry_run).then(|| {
                let node_class = g
                    .incidents
                    .iter()
                    .rev()
                    .find_map(|i| i.node_class.as_deref());
                validation::Validation {
                    node_class,
                    http_tokens: node_class
                        .and_then(|n| obs.node_classes.iter().find(|c| c.name == n))
                        .and_then(|c| c.http_tokens.as_deref()),
                    namespace: obs
                        .karpenter_pods
                        .first()
                        .map(|p| p.namespace.as_str())
                        .or_else(|| obs.accounts.first().map(|a| a.namespace.as_str())),
                }
            });
            let case = iam::IamCase {
                caller,
                role,
                action,
                resource: key.resource.as_deref(),
                // No text of the failure names the role whole: the class's role stands in.
                resource_assumed: g.incidents.iter().all(|i| i.resource_by_class),
                layer: latest.layer,
                partition,
                node_roles: &node_roles,
                controller_role: controller,
                policy_arn: latest.policy_arn.as_deref().filter(|p| complete_arn(p)),
                call: latest.call.as_deref(),
                pods: &obs.karpenter_pods,
                cluster: obs.cluster_names.first().map(String::as_str),
                unannotated_accounts: &obs.unannotated_accounts,
                authorization: authorization.as_ref(),
                decoded: decoded.as_ref(),
                validation,
                org_policies: &obs.org_policies,
            };
            iam::reason(&case, facts)
        }
        _ => Finding {
            reason: ReasonCode::Undetermined,
            premises: vec![Premise::undecided(What::Sentence, "the failure's category")],
            summary: format!(
                "Karpenter reports an authorization failure ({}) without the AWS message that names the principal and action: add the Karpenter controller log to the input",
                latest.message.lines().next().unwrap_or("")
            ),
            evidence: Vec::new(),
            statement: None,
            fix: Fix::Investigate {
                role: controller.map(str::to_string),
                action: None,
                resource: None,
            },
        },
    }
}

/// The capacity type the group's instances launched as: the instance's lifecycle, else the
/// NodeClaim's label or requirement.
fn capacity_of(g: &Group<'_>, obs: &Observations) -> Option<String> {
    g.incidents
        .iter()
        .rev()
        .filter_map(|i| i.signal.node_claim.as_deref())
        .find_map(|name| {
            obs.instances
                .iter()
                .find(|i| i.node_claim.as_deref() == Some(name))
                .map(|i| i.capacity_type.clone())
                .or_else(|| {
                    obs.node_claims
                        .iter()
                        .find(|c| c.name == name)
                        .and_then(|c| c.capacity_type.clone())
                })
        })
}

/// What IAM's Access Troubleshooter says of the group's request: looked up by the
/// authorization id the message gives, else the given details that evaluated this action as
/// this role.
fn authorization_of(
    g: &Group<'_>,
    obs: &Observations,
    facts: &dyn Facts,
    role: &str,
    action: &str,
) -> Option<AuthorizationDetails> {
    let by_id = g
        .incidents
        .iter()
        .rev()
        .filter_map(|i| i.signal.authorization_id.as_deref())
        .find_map(|id| match facts.authorization(id) {
            Lookup::Found(d) => Some(d),
            _ => None,
        });
    by_id.or_else(|| {
        let name = role_name_of(role);
        obs.authorizations
            .iter()
            .find(|d| {
                d.principal().is_some_and(|p| role_name_of(p) == name)
                    && d.evaluation(action, g.key.resource.as_deref()).is_some()
            })
            .cloned()
    })
}

/// An ARN whose parts are all there: it parses, nothing is elided (`...`, `…`, `<ACCOUNT_ID>`)
/// and it is not cut short (`…:role/`, `…/p-`). A redacted account (`xxxx`) is kept: the rest
/// still names the thing.
fn complete_arn(text: &str) -> bool {
    Arn::parse(text).is_some()
        && !["...", "…", "<", ">"].iter().any(|m| text.contains(m))
        && !text.ends_with(['/', ':', '-'])
}

/// Where the failure was seen: the latest signal's origin and the kind of input.
fn signal_evidence(g: &Group<'_>) -> model::Evidence {
    let s = g.latest().signal;
    let word = if s.rule == crate::signal::DECODED_RULE {
        "aws sts decode-authorization-message"
    } else {
        source_word(s)
    };
    let source = format!("{word} {}:{}", s.origin.file, s.origin.line);
    let mut detail = cut(s.message.lines().next().unwrap_or(""), 512);
    if s.encoded_message.is_some() {
        detail.push_str(" (carries an encoded authorization message: decode it with `aws sts decode-authorization-message`)");
    }
    if let Some(code) = s
        .error_code
        .as_deref()
        .filter(|_| s.source == crate::signal::Source::Instance)
    {
        detail = format!(
            "instance {} stopped with state reason {code}",
            s.instance_id.as_deref().unwrap_or("?")
        );
    }
    evidence(source, detail)
}

/// The AMI of the instance an incident names, where an input or DescribeInstances shows it.
fn image_of(i: &Incident<'_>, obs: &Observations) -> Option<String> {
    let id = i.signal.instance_id.as_ref()?;
    obs.instances
        .iter()
        .find(|inst| &inst.instance_id == id)?
        .image_id
        .clone()
}

/// What the AMI of the group's instance says of the key: where the key came from, or why the
/// AMI's snapshots could not tell.
fn image_evidence(g: &Group<'_>, obs: &Observations, facts: &dyn Facts) -> Option<model::Evidence> {
    let image = g.incidents.iter().rev().find_map(|i| image_of(i, obs))?;
    let detail = match facts.image_keys(&image) {
        Lookup::Found(keys) if keys.is_empty() => {
            format!("{image} has no encrypted snapshots: the key is not the AMI's")
        }
        Lookup::Found(keys) => {
            format!("{image}'s snapshots are encrypted with {}", keys.join(", "))
        }
        Lookup::Unknown(why) => format!("the KMS key of {image} is unknown: {why}"),
        Lookup::Absent(_) => return None,
    };
    Some(evidence("ec2:DescribeImages", detail))
}

/// The decoded message's verdict, action, resource and matched statements, in one line.
fn decoded_line(decoded: &str) -> String {
    Decoded::from_text(decoded, "live").map_or_else(|| cut(decoded, 1024), |d| d.line())
}

/// AWS's decoded authorization message of the group's request: decoded live from the blob a
/// failure carries, else one given as input that records this request (the same principal's
/// role, action and resource).
fn decoded_of(
    g: &Group<'_>,
    obs: &Observations,
    facts: &dyn Facts,
    role: &str,
    action: &str,
) -> Option<Decoded> {
    let live = g
        .incidents
        .iter()
        .rev()
        .filter_map(|i| i.signal.encoded_message.as_deref())
        .find_map(|blob| match facts.decoded(blob) {
            Lookup::Found(text) => Decoded::from_text(&text, "live sts"),
            _ => None,
        });
    live.or_else(|| {
        let name = role_name_of(role);
        obs.decoded
            .iter()
            .find(|d| records(d, name, action, g.key.resource.as_deref()))
            .cloned()
    })
}

/// Whether a decoded message records the request of `role_name` for `action` on `resource`
/// (any, where the failure names none).
fn records(d: &Decoded, role_name: Option<&str>, action: &str, resource: Option<&str>) -> bool {
    d.principal
        .as_deref()
        .is_some_and(|p| role_name.is_some() && role_name_of(p) == role_name)
        && d.qualified_action()
            .is_some_and(|a| a.eq_ignore_ascii_case(action))
        && resource.is_none_or(|r| d.resource.as_deref() == Some(r))
}

fn source_word(s: &Signal) -> &'static str {
    use crate::signal::Source::*;
    match s.source {
        Log => "karpenter log",
        Event => "event",
        NodeClaim => "nodeclaim",
        NodeClass => "ec2nodeclass",
        Instance => "ec2 instance",
    }
}

#[cfg(test)]
mod tests {
    use super::controller_account;

    /// Only what Karpenter wrote is looked up: a forged Event's principal is never asked about.
    #[test]
    fn aws_is_asked_only_about_what_karpenter_wrote() {
        let denial = |role: &str| {
            format!(
                "UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/{role}/1 is not authorized to perform: ec2:CreateFleet on resource: arn:aws:ec2:us-east-1:111122223333:fleet/*"
            )
        };
        let forged = serde_json::json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "team-a"}, "reportingController": "karpenter",
            "reason": "LaunchFailed", "note": denial("Forged"),
            "regarding": {"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "name": "a"}});
        let log = serde_json::json!({"level": "ERROR", "time": "2026-01-01T00:00:00Z",
            "message": "failed launching nodeclaim", "NodeClaim": {"name": "b"},
            "error": format!("launching nodeclaim, creating instance, {}", denial("Karpenter"))});
        let scanner = crate::signal::Scanner::new().unwrap();
        let mut obs = Observations::default();
        for (name, text) in [
            ("event.json", forged.to_string()),
            ("k.log", log.to_string()),
        ] {
            scanner
                .scan(name, text.as_bytes(), &mut obs, &mut |_| {})
                .unwrap();
        }
        assert_eq!(obs.signals.len(), 2, "{:?}", obs.warnings);
        let facts = crate::facts::SnapshotFacts::default();
        let q = super::questions(&obs, &facts, None);
        let asked: Vec<&String> = q.principals.iter().collect();
        assert_eq!(asked, ["arn:aws:iam::111122223333:role/Karpenter"], "{q:?}");
    }
    use crate::signal::{AccountInfo, Observations, PodCredentials, PodInfo};

    fn account(name: &str, role: &str) -> AccountInfo {
        AccountInfo {
            namespace: "kube-system".into(),
            name: name.into(),
            role: format!("arn:aws:iam::1:role/{role}"),
            audience: None,
            chart_version: None,
        }
    }

    #[test]
    fn the_controller_role_is_karpenters_own_service_accounts_in_any_order() {
        let accounts = vec![
            account("aws-load-balancer-controller", "LBC"),
            account("ebs-csi-controller-sa", "EBS"),
            account("kp", "KarpenterController"),
        ];
        let pod = PodInfo {
            namespace: "kube-system".into(),
            name: "karpenter-7d9f".into(),
            service_account: "kp".into(),
            credentials: PodCredentials::WebIdentity,
        };
        for rotate in 0..accounts.len() {
            let mut obs = Observations {
                accounts: accounts.clone(),
                karpenter_pods: vec![pod.clone()],
                ..Observations::default()
            };
            obs.accounts.rotate_left(rotate);
            assert_eq!(controller_account(&obs).unwrap().name, "kp");
            // Without its pod, no name says karpenter: not known, never the first one.
            obs.karpenter_pods.clear();
            assert_eq!(controller_account(&obs), None);
        }
        let obs = Observations {
            accounts: vec![account("aws-node", "CNI"), account("karpenter", "K")],
            ..Observations::default()
        };
        assert_eq!(controller_account(&obs).unwrap().name, "karpenter");
    }
}
