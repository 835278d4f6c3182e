//! `preflight`: the requests a Karpenter version will make for each EC2NodeClass
//! (`catalog`, rules/requests.json), filled with the cluster's names and evaluated with the
//! policy engine against the controller role's real policies, its permissions boundary and
//! the SCP documents given; every refusal is then diagnosed as the failure it predicts
//! (`predict`), so it carries that failure's fingerprint and remediation. Beyond the
//! requests, `checks`: each node role's trust for EC2 (`trust`) and IAM's size limits on the
//! controller role's policies (`limits`). Pure.

pub mod catalog;
pub mod limits;
pub mod own_policy;
pub mod policy_file;
mod predict;
pub mod running;
pub mod trust;

use crate::facts::{Facts, Lookup};
use crate::partition::Partition;
use crate::policy::arn::Arn;
use crate::policy::{Context, Decision, Denial, Policy, PolicySet, Request, StatementRef};
use crate::signal::{NodeClassInfo, NodePoolInfo, Observations};
use catalog::{Catalogue, Template, Version, When, fill};
use std::collections::BTreeMap;

pub use predict::predicted;

/// What a live cluster would tell, or the user gave by hand.
#[derive(Debug, Clone)]
pub struct Settings {
    pub version: Version,
    pub partition: &'static Partition,
    pub region: String,
    pub cluster_name: Option<String>,
    /// The controller role's ARN.
    pub controller_role: String,
    /// The node role, where no EC2NodeClass names one (`--node-role`).
    pub node_role: Option<String>,
    pub interruption_queue: Option<String>,
    /// A cluster endpoint is configured: Karpenter does not ask EKS for it.
    pub cluster_endpoint: bool,
    pub isolated_vpc: bool,
    /// `DISABLE_DRY_RUN`: validation makes no dry runs.
    pub disable_dry_run: bool,
    pub feature_gates: Vec<String>,
}

#[cfg(test)]
impl Settings {
    /// Settings for unit tests: Karpenter v1.15.0, cluster `demo`, nothing else set.
    pub(crate) fn example(partition: &str, region: &str, controller_role: &str) -> Settings {
        Settings {
            version: Version(1, 15, 0),
            partition: Partition::by_id(partition).expect("a partition"),
            region: region.into(),
            cluster_name: Some("demo".into()),
            controller_role: controller_role.into(),
            node_role: None,
            interruption_queue: None,
            cluster_endpoint: false,
            isolated_vpc: false,
            disable_dry_run: false,
            feature_gates: Vec::new(),
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Allowed; the statement that allows it (an identity policy's), where one does.
    Allowed(Option<StatementRef>),
    /// Refused: how, and the layer and statement at fault.
    Refused(Decision, Option<Denial>),
    /// Not evaluated: why (a value or a policy is unknown).
    Unknown(String),
}

/// One request for one EC2NodeClass, evaluated.
#[derive(Debug, Clone)]
pub struct Row {
    pub node_class: String,
    pub node_pool: Option<String>,
    pub template: Template,
    pub request: Option<Request>,
    pub verdict: Verdict,
}

/// Everything `preflight` found for one version.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub version: Version,
    pub rows: Vec<Row>,
    /// Requests left out, and why (a setting not known to hold).
    pub notes: Vec<String>,
    /// What is checked beyond the requests (the same for every version): each EC2NodeClass's
    /// node role trust, the controller role's size limits.
    pub checks: Vec<Check>,
}

/// A check beyond the requests: no contract reason code names it, so it is in the matrix only
/// (no Diagnosis); a `Refused` one makes `preflight` fail as a refused request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The EC2NodeClass it is about; `None`: the controller role.
    pub node_class: Option<String>,
    /// What is checked (`node role trust`, `managed policy size`, …).
    pub what: &'static str,
    /// The role or policy checked.
    pub subject: String,
    pub status: Status,
    /// Why: the statement, the numbers, or what is not known.
    pub detail: String,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Allowed,
    /// Within the limit but near it (90 % or more).
    Near,
    Refused,
    Unknown,
}

/// The EC2NodeClasses to evaluate: those given, else one named `default` with `--node-role`.
fn classes(obs: &Observations, settings: &Settings) -> Vec<NodeClassInfo> {
    let mut classes = obs.node_classes.clone();
    if classes.is_empty() {
        classes.push(NodeClassInfo {
            name: "default".into(),
            role: settings.node_role.clone(),
            instance_profile: None,
            kms_key_ids: Vec::new(),
            ami_ids: Vec::new(),
            http_tokens: None,
            // Karpenter's default root volume is encrypted and names no key.
            default_ebs_key: crate::signal::DefaultKeyUse::Always,
            ami_aliases: Vec::new(),
            capacity_reservations: false,
        });
    }
    classes.sort_by(|a, b| a.name.cmp(&b.name));
    classes
}

/// The NodePools whose `nodeClassRef` names `class`, by name.
fn pools_of<'a>(obs: &'a Observations, class: &str) -> Vec<&'a NodePoolInfo> {
    let mut pools: Vec<&NodePoolInfo> = obs
        .node_pools
        .iter()
        .filter(|p| p.node_class.as_deref() == Some(class))
        .collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    pools
}

/// The node role's ARN: as the class names it (a name becomes an ARN in the controller
/// role's account, with its path where the facts know the role), else `--node-role`.
pub fn node_role(class: &NodeClassInfo, settings: &Settings, facts: &dyn Facts) -> Option<String> {
    let named = class.role.as_deref().or(settings.node_role.as_deref())?;
    if named.starts_with("arn:") {
        return Some(named.to_string());
    }
    let account = Arn::parse(&settings.controller_role)?.account.to_string();
    let arn = format!("arn:{}:iam::{account}:role/{named}", settings.partition.id);
    Some(match facts.principal(&arn) {
        Lookup::Found(p) => p.arn,
        _ => arn,
    })
}

/// The region's default EBS key, where `class`'s launches encrypt a volume with it and the
/// facts know the key.
pub fn default_ebs_key(class: &NodeClassInfo, facts: &dyn Facts) -> Option<String> {
    use crate::signal::DefaultKeyUse;
    let Lookup::Found(default) = facts.ebs_default() else {
        return None;
    };
    let used = match class.default_ebs_key {
        DefaultKeyUse::Always => true,
        DefaultKeyUse::WhenEncryptedByDefault => default.by_default == Some(true),
        DefaultKeyUse::Never => false,
    };
    used.then_some(default.key)
}

/// The roles `preflight` reads: the controller role and each EC2NodeClass's node role.
pub fn roles(obs: &Observations, settings: &Settings) -> std::collections::BTreeSet<String> {
    let none = crate::facts::SnapshotFacts::default();
    std::iter::once(settings.controller_role.clone())
        .chain(
            classes(obs, settings)
                .iter()
                .filter_map(|c| node_role(c, settings, &none)),
        )
        .collect()
}

/// The placeholder values for one class (rules/requests.json `placeholders`).
fn values(
    class: &NodeClassInfo,
    pool: Option<&str>,
    settings: &Settings,
    facts: &dyn Facts,
) -> BTreeMap<&'static str, String> {
    let mut v = BTreeMap::new();
    v.insert("partition", settings.partition.id.to_string());
    v.insert("region", settings.region.clone());
    if let Some(arn) = Arn::parse(&settings.controller_role) {
        v.insert("account", arn.account.to_string());
    }
    if let Some(name) = &settings.cluster_name {
        v.insert("clusterName", name.clone());
        v.insert("instanceProfile", format!("{name}_preflight"));
        v.insert("legacyInstanceProfile", format!("{name}_preflight"));
    }
    v.insert(
        "pricingRegion",
        pricing_region(&settings.region).to_string(),
    );
    v.insert("nodeClass", class.name.clone());
    v.insert("nodePool", pool.unwrap_or("default").to_string());
    if let Some(role) = node_role(class, settings, facts) {
        v.insert("nodeRole", role);
    }
    v.insert("ec2Principal", settings.partition.service_principal("ec2"));
    if let Some(queue) = &settings.interruption_queue {
        v.insert("queueName", queue.clone());
    }
    let image = class.ami_ids.first().cloned();
    v.insert("imageId", image.unwrap_or_else(|| "ami-preflight".into()));
    for (name, id) in [
        ("launchTemplateId", "lt-preflight"),
        ("instanceId", "i-preflight"),
        ("fleetId", "fleet-preflight"),
        ("subnetId", "subnet-preflight"),
        ("securityGroupId", "sg-preflight"),
        ("snapshotId", "snap-preflight"),
        ("volumeId", "vol-preflight"),
        ("networkInterfaceId", "eni-preflight"),
        ("spotInstanceRequestId", "sir-preflight"),
        ("capacityReservationId", "cr-preflight"),
        ("placementGroupName", "pg-preflight"),
        ("nodeClassUID", "uid-preflight"),
        ("nodeClaim", "preflight"),
        ("nodeName", "preflight"),
    ] {
        v.insert(name, id.to_string());
    }
    let alias = class
        .ami_aliases
        .first()
        .map_or("al2023@latest", String::as_str);
    v.insert("ssmParameter", ssm_parameter(alias));
    v
}

/// The public SSM parameter Karpenter reads for an AMI alias (`family@version`; the
/// Kubernetes version and architecture stand in: policies scope these by prefix).
fn ssm_parameter(alias: &str) -> String {
    let family = alias.split('@').next().unwrap_or(alias);
    match family {
        "al2" => "/aws/service/eks/optimized-ami/1.33/amazon-linux-2/recommended/image_id".into(),
        "bottlerocket" => "/aws/service/bottlerocket/aws-k8s-1.33/x86_64/latest/image_id".into(),
        "ubuntu" => {
            "/aws/service/canonical/ubuntu/eks/20.04/1.33/stable/current/amd64/hvm/ebs-gp2/ami-id"
                .into()
        }
        windows if windows.starts_with("windows") => format!(
            "/aws/service/ami-windows-latest/Windows_Server-{}-English-Core-EKS_Optimized-1.33/image_id",
            &windows["windows".len()..]
        ),
        _ => "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id"
            .into(),
    }
}

/// The region Karpenter's pricing client calls (pkg/providers/pricing: ap-south-1 for ap-,
/// cn-northwest-1 for cn-, eu-central-1 for eu-, else us-east-1).
fn pricing_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "cn-northwest-1"
    } else if region.starts_with("ap-") {
        "ap-south-1"
    } else if region.starts_with("eu-") {
        "eu-central-1"
    } else {
        "us-east-1"
    }
}

/// What is known of an EC2NodeClass beyond its own fields: its NodePools, and whether it was
/// given (not the stand-in `--node-role` makes, whose AMIs and capacity are not known).
struct Around<'a> {
    pools: Vec<&'a NodePoolInfo>,
    given: bool,
}

impl<'a> Around<'a> {
    /// What is known around `class` in `obs`.
    fn of(obs: &'a Observations, class: &NodeClassInfo) -> Around<'a> {
        Around {
            pools: pools_of(obs, &class.name),
            given: !obs.node_classes.is_empty(),
        }
    }

    /// Whether one of its NodePools allows `capacity`; not known without a NodePool.
    fn allows(&self, capacity: &str) -> Option<bool> {
        (!self.pools.is_empty()).then(|| {
            self.pools
                .iter()
                .any(|p| p.capacity_types.iter().any(|c| c == capacity))
        })
    }
}

/// Whether a setting holds for `class`: `Some(false)` leaves the request out, `None` (not
/// known) too, with a note.
fn holds(
    when: When,
    class: &NodeClassInfo,
    around: &Around<'_>,
    settings: &Settings,
) -> Option<bool> {
    match when {
        When::NodeClassRole => Some(class.role.is_some() || class.instance_profile.is_none()),
        When::NodeClassInstanceProfile => Some(class.instance_profile.is_some()),
        When::InterruptionQueue => Some(settings.interruption_queue.is_some()),
        When::NoClusterEndpoint => Some(!settings.cluster_endpoint),
        When::NotIsolatedVpc => Some(!settings.isolated_vpc),
        // `--disable-dry-run` exists from v1.6.2: before it, dry runs cannot be turned off.
        When::DryRunValidation => {
            Some(!(settings.disable_dry_run && settings.version >= Version(1, 6, 2)))
        }
        When::OnDemand => Some(around.allows("on-demand").unwrap_or(true)),
        When::Spot => around.allows("spot"),
        When::CapacityReservations => around.given.then_some(class.capacity_reservations),
        When::AmiAlias => around.given.then_some(!class.ami_aliases.is_empty()),
        // The last word on the gate wins (the running Karpenter's, then the flags').
        When::RebootForRepair => Some(
            settings
                .feature_gates
                .iter()
                .rev()
                .find(|g| g.split('=').next() == Some("RebootForRepair"))
                .is_some_and(|g| g == "RebootForRepair=true" || g == "RebootForRepair"),
        ),
    }
}

/// The controller role's policies, boundary and the SCP documents, as one set; and a note for
/// each SCP document the engine cannot read (evaluated without it: a refusal it makes is not
/// predicted, and the note says so).
fn policy_set(
    obs: &Observations,
    settings: &Settings,
    facts: &dyn Facts,
) -> (Result<PolicySet, String>, Vec<String>) {
    let allow_all = crate::diagnose::organization::allow_all();
    let mut unread = Vec::new();
    let mut scps = Vec::new();
    for d in obs
        .org_policies
        .iter()
        .filter(|d| d.kind == crate::diagnose::organization::SCP)
    {
        match Policy::from_value(&d.arn, &d.document) {
            Ok(p) => scps.push(vec![p, allow_all.clone()]),
            Err(e) => unread.push(format!(
                "SCP {} is not a policy the engine reads ({e}): the requests are evaluated without it, so a refusal it makes is not predicted",
                d.arn
            )),
        }
    }
    // RCPs guard resources (KMS keys, SQS queues, STS) against requests the engine evaluates
    // as the resource's: not applied to the controller's requests here, and said.
    for d in obs
        .org_policies
        .iter()
        .filter(|d| d.kind == crate::diagnose::organization::RCP)
    {
        unread.push(format!(
            "RCP {} is not applied: preflight evaluates the requests against the identity policies, boundary and SCPs; a refusal it makes is not predicted",
            d.arn
        ));
    }
    let set = match facts.principal(&settings.controller_role) {
        Lookup::Found(found) => Ok(PolicySet {
            identity: found.identity,
            boundary: found.boundary,
            scps: (!scps.is_empty()).then_some(scps),
            resource: None,
        }),
        Lookup::Absent(why) | Lookup::Unknown(why) => Err(format!(
            "the controller role's policies are not known: {why}"
        )),
    };
    (set, unread)
}

/// Evaluates every request `settings.version` makes for every EC2NodeClass.
pub fn evaluate(
    catalogue: &Catalogue,
    obs: &Observations,
    settings: &Settings,
    facts: &dyn Facts,
) -> Matrix {
    let (set, unread) = policy_set(obs, settings, facts);
    let mut rows = Vec::new();
    let mut notes: std::collections::BTreeSet<String> = unread.into_iter().collect();
    let classes = classes(obs, settings);
    for class in &classes {
        let around = Around::of(obs, class);
        let pool = around.pools.first().map(|p| p.name.as_str());
        let values = values(class, pool, settings, facts);
        notes.extend(image_key_notes(class, around.given, facts));
        for t in catalogue.of(settings.version) {
            let answers: Vec<(When, Option<bool>)> = t
                .when
                .iter()
                .map(|w| (*w, holds(*w, class, &around, settings)))
                .collect();
            if answers.iter().any(|(_, holds)| *holds == Some(false)) {
                continue;
            }
            let unknown: Vec<When> = answers
                .iter()
                .filter(|(_, holds)| holds.is_none())
                .map(|(w, _)| *w)
                .collect();
            if let Some(condition) = &t.unmodeled_condition {
                notes.insert(format!(
                    "{} ({}) is left out: it is made only when {condition}",
                    t.id, t.action
                ));
                continue;
            }
            if !unknown.is_empty() {
                notes.insert(format!(
                    "{} ({}) is left out: whether {unknown:?} holds is not known",
                    t.id, t.action
                ));
                continue;
            }
            let request = build(t, &values, settings);
            // One row per distinct request of a class (several call sites make some).
            let seen = rows.iter().any(|r: &Row| {
                r.node_class == class.name
                    && r.template.call == t.call
                    && r.request.is_some()
                    && r.request.as_ref() == request.as_ref().ok()
            });
            if seen {
                continue;
            }
            let verdict = match (&request, &set) {
                (Err(missing), _) => Verdict::Unknown(missing.clone()),
                (Ok(_), Err(why)) => Verdict::Unknown(why.clone()),
                (Ok(req), Ok(set)) => verdict(set, req),
            };
            rows.push(Row {
                node_class: class.name.clone(),
                node_pool: pool.map(str::to_string),
                template: t.clone(),
                request: request.ok(),
                verdict,
            });
        }
    }
    let mut checks: Vec<Check> = classes
        .iter()
        .map(|class| trust::check(class, obs, settings, facts))
        .collect();
    checks.extend(limits::controller_role(settings, facts));
    Matrix {
        version: settings.version,
        rows,
        notes: notes.into_iter().collect(),
        checks,
    }
}

/// What is not known of the keys of `class`'s AMIs' snapshots (their KMS checks are then not
/// made): an AMI whose snapshots were not read, or no AMI resolved yet (`status.amis`).
fn image_key_notes(class: &NodeClassInfo, given: bool, facts: &dyn Facts) -> Vec<String> {
    if given && class.ami_ids.is_empty() {
        return vec![format!(
            "EC2NodeClass {}: no AMI is resolved yet (status.amis): the keys of its AMIs' snapshots are not checked",
            class.name
        )];
    }
    class
        .ami_ids
        .iter()
        .filter_map(|image| match facts.image_keys(image) {
            Lookup::Found(_) => None,
            Lookup::Absent(why) | Lookup::Unknown(why) => Some(format!(
                "EC2NodeClass {}: the snapshot keys of {image} are not known ({why}): a key they use is not checked",
                class.name
            )),
        })
        .collect()
}

/// The request a template stands for, or which value it lacks.
fn build(
    t: &Template,
    values: &BTreeMap<&'static str, String>,
    settings: &Settings,
) -> Result<Request, String> {
    let missing = |text: &str| {
        let names: Vec<&str> = catalog::placeholders(text)
            .filter(|n| !values.contains_key(n))
            .collect();
        format!("not known: {}", names.join(", "))
    };
    let resource = fill(&t.resource, values).ok_or_else(|| missing(&t.resource))?;
    let mut context = Context::default();
    for (key, list) in &t.context {
        let key = fill(key, values).ok_or_else(|| missing(key))?;
        let list = list
            .iter()
            .map(|v| fill(v, values).ok_or_else(|| missing(v)))
            .collect::<Result<Vec<_>, _>>()?;
        context.set(&key, list);
    }
    let caller = session_of(&settings.controller_role);
    Ok(Request::new(&caller, &t.action, &resource).with_context(context))
}

/// The assumed-role session a role's ARN stands for (what AWS evaluates).
pub fn session_of(role: &str) -> String {
    match Arn::parse(role) {
        Some(a) if a.service == "iam" && a.resource.starts_with("role/") => {
            let name = a.resource.rsplit('/').next().unwrap_or(a.resource);
            format!(
                "arn:{}:sts::{}:assumed-role/{name}/karpenter-preflight",
                a.partition, a.account
            )
        }
        _ => role.to_string(),
    }
}

fn verdict(set: &PolicySet, req: &Request) -> Verdict {
    let e = set.explain(req);
    match e.decision {
        Decision::Allowed => Verdict::Allowed(
            e.statements
                .iter()
                .find(|s| s.matched && s.policy_type == crate::policy::PolicyType::Identity)
                .map(|s| StatementRef {
                    policy: s.policy.clone(),
                    sid: s.sid.clone(),
                    index: Some(s.index),
                }),
        ),
        refused => Verdict::Refused(refused, e.denial),
    }
}

impl Matrix {
    /// The refused rows.
    pub fn refused(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Refused(..)))
    }

    /// The checks beyond the requests that fail.
    pub fn refused_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Refused)
    }

    /// What an upgrade from `before` newly needs and the policies refuse: refused requests
    /// `before` did not make for the same EC2NodeClass (a request with other tags is another),
    /// unless `before` was refused the same action by the same call there too (broken before
    /// the upgrade, not by it).
    pub fn newly_refused<'a>(&'a self, before: &'a Matrix) -> impl Iterator<Item = &'a Row> {
        self.refused().filter(move |row| {
            let same_class = || {
                before
                    .rows
                    .iter()
                    .filter(|b| b.node_class == row.node_class)
            };
            let made = same_class().any(|b| b.request == row.request);
            let refused_already = same_class().any(|b| {
                matches!(b.verdict, Verdict::Refused(..))
                    && b.template.call == row.template.call
                    && b.template.action == row.template.action
            });
            !made && !refused_already
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::SnapshotFacts;
    use crate::facts::iam_snapshot::IamSnapshot;

    const CONTROLLER: &str = "arn:aws:iam::111122223333:role/KarpenterController-demo";

    /// The controller role allowed everything: every request evaluated is allowed.
    fn allow_all() -> SnapshotFacts {
        let doc = serde_json::json!({"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        let snapshot = policy_file::snapshot(CONTROLLER, &[("all".into(), doc)]);
        SnapshotFacts {
            iam: vec![(
                "s".into(),
                IamSnapshot::parse(&snapshot.to_string()).unwrap(),
            )],
            ..SnapshotFacts::default()
        }
    }

    fn settings() -> Settings {
        Settings::example("aws", "us-east-1", CONTROLLER)
    }

    fn observations(pools: &[&[&str]]) -> Observations {
        Observations {
            node_classes: vec![NodeClassInfo {
                name: "default".into(),
                role: Some("KarpenterNodeRole-demo".into()),
                instance_profile: None,
                kms_key_ids: Vec::new(),
                ami_ids: Vec::new(),
                http_tokens: None,
                default_ebs_key: crate::signal::DefaultKeyUse::Never,
                ami_aliases: vec!["bottlerocket@latest".into()],
                capacity_reservations: false,
            }],
            node_pools: pools
                .iter()
                .enumerate()
                .map(|(i, types)| NodePoolInfo {
                    name: format!("pool-{i}"),
                    node_class: Some("default".into()),
                    registration_unhealthy: false,
                    capacity_types: types.iter().map(|t| t.to_string()).collect(),
                })
                .collect(),
            ..Observations::default()
        }
    }

    fn resources(m: &Matrix, action: &str) -> Vec<String> {
        m.rows
            .iter()
            .filter(|r| r.template.action == action)
            .filter_map(|r| r.request.as_ref().map(|q| q.resource.clone()))
            .collect()
    }

    /// The NodePools decide the spot requests, the class its SSM parameters (by alias) and
    /// capacity reservations; without a NodePool, whether spot is launched is not known.
    #[test]
    fn the_node_pools_and_the_class_decide_spot_aliases_and_reservations() {
        let catalogue = Catalogue::shipped();
        let evaluate = |pools: &[&[&str]]| {
            evaluate(&catalogue, &observations(pools), &settings(), &allow_all())
        };
        let spot = evaluate(&[&["on-demand"], &["spot"]]);
        assert!(
            resources(&spot, "ec2:CreateFleet")
                .iter()
                .any(|r| r.contains(":spot-instances-request/")),
            "{:?}",
            resources(&spot, "ec2:CreateFleet")
        );
        assert_eq!(
            resources(&spot, "ssm:GetParameter"),
            [
                "arn:aws:ssm:us-east-1::parameter/aws/service/bottlerocket/aws-k8s-1.33/x86_64/latest/image_id"
            ]
        );
        assert!(resources(&spot, "ec2:DescribeCapacityReservations").is_empty());
        assert!(
            spot.notes
                .iter()
                .all(|n| !n.contains("Spot") && !n.contains("AmiAlias")),
            "{:?}",
            spot.notes
        );
        let on_demand = evaluate(&[&["on-demand"]]);
        assert!(
            !resources(&on_demand, "ec2:CreateFleet")
                .iter()
                .any(|r| r.contains(":spot-instances-request/"))
        );
        let unknown = evaluate(&[]);
        assert!(
            unknown.notes.iter().any(|n| n.contains("[Spot]")),
            "{:?}",
            unknown.notes
        );
    }

    /// Karpenter's settings leave requests out: isolated VPC the pricing API, disabled dry runs
    /// the validation (from v1.6.2, when the flag exists), and the RebootForRepair gate adds
    /// ec2:RebootInstances (v1.15).
    #[test]
    fn the_settings_leave_out_or_add_what_karpenter_then_calls() {
        let catalogue = Catalogue::shipped();
        let obs = observations(&[&["on-demand"]]);
        let calls = |change: &dyn Fn(&mut Settings)| {
            let mut s = settings();
            change(&mut s);
            let m = evaluate(&catalogue, &obs, &s, &allow_all());
            m.rows
                .iter()
                .map(|r| r.template.action.clone())
                .collect::<std::collections::BTreeSet<String>>()
        };
        let dry_runs = |change: &dyn Fn(&mut Settings)| {
            let mut s = settings();
            change(&mut s);
            evaluate(&catalogue, &obs, &s, &allow_all())
                .rows
                .iter()
                .filter(|r| r.template.id.starts_with("validation-dry-run"))
                .count()
        };
        let plain = calls(&|_| {});
        assert!(plain.contains("pricing:GetProducts"), "{plain:?}");
        assert!(!plain.contains("ec2:RebootInstances"), "{plain:?}");
        assert!(!calls(&|s| s.isolated_vpc = true).contains("pricing:GetProducts"));
        assert!(
            calls(&|s| s.feature_gates = vec!["RebootForRepair=true".into()])
                .contains("ec2:RebootInstances")
        );
        assert!(dry_runs(&|_| {}) > 0);
        assert_eq!(dry_runs(&|s| s.disable_dry_run = true), 0);
        let before_the_flag = |s: &mut Settings| {
            s.disable_dry_run = true;
            s.version = Version::parse("v1.5.0").unwrap();
        };
        assert!(
            dry_runs(&before_the_flag) > 0,
            "v1.5 cannot turn dry runs off"
        );
    }

    #[test]
    fn each_alias_family_reads_its_own_parameter() {
        for (alias, parameter) in [
            (
                "al2023@v20240807",
                "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id",
            ),
            (
                "al2@latest",
                "/aws/service/eks/optimized-ami/1.33/amazon-linux-2/recommended/image_id",
            ),
            (
                "windows2022@latest",
                "/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-EKS_Optimized-1.33/image_id",
            ),
        ] {
            assert_eq!(ssm_parameter(alias), parameter, "{alias}");
        }
    }
}
