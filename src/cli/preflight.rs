//! `karpenter-doctor preflight`: before Karpenter tries, which of the requests its version
//! makes the controller role's policies refuse. From the current kube context (its
//! EC2NodeClasses, NodePools, Karpenter's ServiceAccount, Deployment and pods: the version is
//! the image's tag, the settings its container's) and live AWS, or offline from inputs
//! (EC2NodeClass, NodePool, ServiceAccount YAML, SCP documents), snapshots and `--policy`
//! files; prints the matrix (text) or the predicted Diagnoses (json, yaml).

use super::explain::{Source, print};
use super::{Failure, Output, read_file};
use crate::cluster::check::{Request, Scope};
use crate::diagnose::model::Diagnosis;
use crate::facts::iam_snapshot::IamSnapshot;
use crate::partition::Partition;
use crate::preflight::catalog::{Catalogue, Version};
use crate::preflight::running::{self, Given, NEWEST, Running, VersionFrom};
use crate::preflight::{
    self, Check, Matrix, Row, Settings, Status, Verdict, limits, own_policy, policy_file,
};
use crate::signal::{Observations, Scanner};
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// Inputs: EC2NodeClass, NodePool and ServiceAccount YAML or JSON (kubectl -o yaml|json),
    /// SCP documents (aws organizations describe-policy). With none (and no --policy,
    /// --iam-snapshot or --live), the current kube context is read.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Given, the cluster is read even with inputs.
    #[command(flatten)]
    pub kube: super::kube_args::KubeArgs,
    #[command(flatten)]
    pub karpenter: super::karpenter_args::KarpenterArgs,
    /// Reading a cluster: no AWS lookups (the snapshots and --policy only).
    #[arg(long, conflicts_with = "live")]
    pub offline: bool,
    #[command(flatten)]
    pub facts: super::fact_args::FactArgs,
    /// The controller role's policy as a document, or `terraform show -json` output that holds
    /// it (repeatable; before deploy).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<String>,
    /// The Karpenter version whose requests are evaluated [default: the running Karpenter's
    /// image tag, else the version its chart labelled its Deployment or ServiceAccount with;
    /// else v1.15.0].
    #[arg(long, value_name = "V", value_parser = parse_version)]
    pub karpenter_version: Option<Version>,
    /// Also evaluate version V, and lead with what it needs that the policies refuse.
    #[arg(long, value_name = "V", value_parser = parse_version)]
    pub target_version: Option<Version>,
    /// aws, aws-cn, aws-us-gov [default: the controller role's ARN's, else the region's].
    #[arg(long, value_name = "ID")]
    pub partition: Option<String>,
    /// Offline inputs: look the controller role's policies and the keys up in AWS with the
    /// default credential chain (snapshots and --policy, where given, win; a cluster read does
    /// so unless --offline). --region is Karpenter's region, --cluster-name its CLUSTER_NAME.
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub aws: super::aws_args::AwsArgs,
    /// The node role, where no EC2NodeClass input names one.
    #[arg(long, value_name = "ARN")]
    pub node_role: Option<String>,
    /// The region's default EBS key (aws ec2 get-ebs-default-kms-key-id), where no live lookup
    /// gives it: the key of every volume that is encrypted and names no kmsKeyID (Karpenter's
    /// default root volume is one).
    #[arg(long, value_name = "ARN")]
    pub ebs_default_key: Option<String>,
    /// Karpenter's interruption queue (settings.interruptionQueue), where one is configured.
    #[arg(long, value_name = "NAME")]
    pub interruption_queue: Option<String>,
    /// A cluster endpoint is configured (Karpenter does not call eks:DescribeCluster).
    #[arg(long)]
    pub cluster_endpoint: bool,
    /// Karpenter runs with isolatedVPC (no pricing API).
    #[arg(long)]
    pub isolated_vpc: bool,
    /// Karpenter runs with DISABLE_DRY_RUN (validation makes no dry runs).
    #[arg(long)]
    pub disable_dry_run: bool,
    /// Karpenter's feature gates, e.g. RebootForRepair=true (repeatable).
    #[arg(long = "feature-gates", value_name = "GATES", value_delimiter = ',')]
    pub feature_gates: Vec<String>,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: Output,
    /// Exit with status 3 when any request would be refused, or a check (node role trust, IAM
    /// size limits) is.
    #[arg(long)]
    pub exit_code: bool,
    /// Print the doctor's own IAM policy for this cluster instead: manifests/iam-policy.json's
    /// reads, on Karpenter's controller and node roles, the keys its launches use and the
    /// cluster only (what it cannot name goes to standard error).
    #[arg(long, conflicts_with_all = ["target_version", "exit_code"])]
    pub doctor_policy: bool,
}

fn parse_version(text: &str) -> Result<Version, String> {
    Version::parse(text).ok_or_else(|| format!("{text:?} is not a version like v1.15.0"))
}

/// Runs `preflight`; `Ok(true)` when a request would be refused.
pub fn run(args: &PreflightArgs, out: &mut impl Write) -> Result<bool, Failure> {
    let sources: Vec<Source<'_>> = args.inputs.iter().map(|n| Source::File(n)).collect();
    if args.doctor_policy {
        doctor_policy(args, &sources, out)?;
        return Ok(false);
    }
    let found = findings(args, &sources)?;
    match args.output {
        Output::Text => {
            let text = matrix_text(&found.now, found.target.as_ref(), &found.items);
            let head = found
                .head
                .as_ref()
                .map_or(String::new(), |h| format!("{h}\n"));
            super::finish(out.write_all((head + &text).as_bytes()))?;
        }
        other => {
            // Standard output is the Diagnosis list only; what was read goes to standard error,
            // and so do the checks no Diagnosis names that fail or are near a limit.
            if let Some(head) = &found.head {
                super::finish(std::io::stderr().write_all(head.as_bytes()))?;
            }
            let failing = found
                .now
                .checks
                .iter()
                .filter(|c| matches!(c.status, Status::Refused | Status::Near));
            let text = checks_text(failing);
            if !text.is_empty() {
                super::finish(std::io::stderr().write_all(format!("Checks:\n{text}").as_bytes()))?;
            }
            print(&found.items, &found.obs, other, out)?
        }
    }
    Ok(found.refused)
}

/// What `preflight` found: the matrix of the version evaluated (and of the target version),
/// the predicted Diagnoses (`-o json`/`yaml` print them as a `List`), whether any request
/// would be refused, and what was read of a cluster (the head of the report).
pub struct Found {
    pub now: Matrix,
    pub target: Option<Matrix>,
    pub items: Vec<Diagnosis>,
    pub obs: Observations,
    pub refused: bool,
    pub head: Option<String>,
}

/// What a cluster read says beyond its objects: how Karpenter runs (its Deployment's
/// controller container) and the region its EKS endpoint names.
#[derive(Default)]
struct ClusterSays {
    running: Running,
    image: Option<String>,
    endpoint_region: Option<String>,
}

/// Whether the cluster is read: asked for by `--kubeconfig`/`--context`, or nothing else given.
fn reads_cluster(args: &PreflightArgs, sources: &[Source<'_>]) -> bool {
    args.kube.given()
        || (sources.is_empty()
            && args.policies.is_empty()
            && args.facts.iam_snapshots.is_empty()
            && !args.live)
}

/// What `preflight` read: the inputs and the cluster, the settings, the snapshots and
/// `--policy` files, and what live AWS answered.
struct Read {
    obs: Observations,
    settings: Settings,
    version_from: VersionFrom,
    says: ClusterSays,
    head: Option<String>,
    live: bool,
    facts: crate::facts::SnapshotFacts,
    fetched: crate::facts::fetched::FetchedFacts,
    /// The `--policy` documents, for IAM's size limits (`limits::given`).
    given: Vec<limits::Given>,
}

impl Read {
    /// The snapshots over what live AWS answered; offline, the snapshots alone (so that what
    /// is unknown says which snapshot is missing, not that nothing was looked up).
    fn facts(&self) -> crate::facts::Overlay<'_> {
        crate::facts::Overlay {
            first: &self.facts,
            then: match self.live {
                true => &self.fetched,
                false => &self.facts,
            },
        }
    }
}

/// Reads `sources` (the inputs), the cluster where it is read, the snapshots and policies
/// `args` name, and, live, the roles, images and keys the classes name.
fn read(args: &PreflightArgs, sources: &[Source<'_>]) -> Result<Read, Failure> {
    let scanner = std::sync::Arc::new(
        Scanner::new()
            .map_err(|e| Failure(format!("the shipped recognition rules are invalid: {e}")))?,
    );
    let mut obs = super::explain::scan(&scanner, sources)?;
    let mut facts = args.facts.load()?;
    facts.ebs_default = args
        .ebs_default_key
        .as_ref()
        .map(|key| crate::facts::EbsDefault {
            key: key.clone(),
            by_default: None,
        });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    let (says, head) = if reads_cluster(args, sources) {
        let (says, head) = runtime.block_on(read_cluster(args, &scanner, &mut obs))?;
        (says, Some(head))
    } else {
        (ClusterSays::default(), None)
    };
    let (settings, version_from) = settings(args, &obs, &says)?;
    let mut given = Vec::new();
    if !args.policies.is_empty() {
        let mut found = Vec::new();
        for path in &args.policies {
            found.extend(policy_file::policies(path, &read_file(path)?).map_err(Failure)?);
        }
        given = found
            .iter()
            .map(|(name, doc)| limits::Given {
                name: name.clone(),
                kind: policy_file::kind(name),
                chars: crate::facts::iam_snapshot::chars_without_whitespace(doc),
            })
            .collect();
        let doc = policy_file::snapshot(&settings.controller_role, &found);
        let snapshot = IamSnapshot::parse(&doc.to_string())
            .map_err(|e| Failure(format!("--policy: invalid policy: {e}")))?;
        facts.iam.insert(0, ("--policy".into(), snapshot));
    }
    let live = if head.is_some() {
        !args.offline
    } else {
        args.live
    };
    let fetched = if live {
        runtime.block_on(async {
            let mut options = args.aws.options();
            options.region = Some(settings.region.clone());
            options.cluster_name = settings.cluster_name.clone();
            let live = crate::aws::live::Live::connect(&options).await;
            let roles = preflight::roles(&obs, &settings);
            crate::aws::gather::gather_for_preflight(&live, roles, &mut obs).await
        })
    } else {
        crate::facts::fetched::FetchedFacts::default()
    };
    Ok(Read {
        obs,
        settings,
        version_from,
        says,
        head,
        live,
        facts,
        fetched,
        given,
    })
}

/// Reads as `preflight` does, and evaluates. The one function behind `preflight` and the
/// `mcp` tool.
pub fn findings(args: &PreflightArgs, sources: &[Source<'_>]) -> Result<Found, Failure> {
    let read = read(args, sources)?;
    let (now, target, items) = {
        let (facts, obs, settings) = (read.facts(), &read.obs, &read.settings);
        let catalogue = Catalogue::shipped();
        let mut now = preflight::evaluate(&catalogue, obs, settings, &facts);
        let mut target = args.target_version.map(|version| {
            let s = Settings {
                version,
                ..settings.clone()
            };
            preflight::evaluate(&catalogue, obs, &s, &facts)
        });
        // The `--policy` documents are the controller role's policies: their kinds and sizes
        // are as given (the snapshot they are evaluated from holds them all inline).
        if !read.given.is_empty() {
            let checks = limits::given(&settings.controller_role, &read.given);
            for m in std::iter::once(&mut now).chain(target.as_mut()) {
                m.checks.retain(|c| !limits::is_limit(c));
                m.checks.extend(checks.iter().cloned());
            }
        }
        let mut items = preflight::predicted(&now, obs, &facts, settings);
        if let Some(t) = &target {
            for d in preflight::predicted(t, obs, &facts, settings) {
                if !items.iter().any(|i| i.metadata.name == d.metadata.name) {
                    items.push(d);
                }
            }
            items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        }
        (now, target, items)
    };
    let refused = now.refused().next().is_some()
        || now.refused_checks().next().is_some()
        || target
            .as_ref()
            .is_some_and(|t| t.refused().next().is_some())
        || !items.is_empty();
    let head = read.head.as_ref().map(|h| {
        h.clone() + &settings_text(&read.settings, read.version_from, &read.says, read.live)
    });
    Ok(Found {
        now,
        target,
        items,
        obs: read.obs,
        refused,
        head,
    })
}

/// `--doctor-policy`: the doctor's own IAM policy for this cluster (`own_policy`), as JSON on
/// standard output; what was read and what the policy leaves out go to standard error.
fn doctor_policy(
    args: &PreflightArgs,
    sources: &[Source<'_>],
    out: &mut impl Write,
) -> Result<(), Failure> {
    let read = read(args, sources)?;
    let scope = own_policy::scope(&read.obs, &read.settings, &read.facts()).map_err(Failure)?;
    let rendered = own_policy::render(&scope).map_err(Failure)?;
    let mut said = read.head.clone().unwrap_or_default();
    for note in &rendered.notes {
        said += &format!("note: {note}\n");
    }
    super::finish(std::io::stderr().write_all(said.as_bytes()))?;
    let json = serde_json::to_string_pretty(&rendered.policy)
        .map_err(|e| Failure(format!("cannot write the policy: {e}")))?;
    super::finish(out.write_all((json + "\n").as_bytes()))
}

/// Reads the cluster's configuration into `obs`, and what its Karpenter Deployment and
/// endpoint say; the head of the report says what was read.
async fn read_cluster(
    args: &PreflightArgs,
    scanner: &std::sync::Arc<Scanner>,
    obs: &mut Observations,
) -> Result<(ClusterSays, String), Failure> {
    let (client, cluster, url) = args.kube.connect().await.map_err(|e| {
                Failure(format!(
                    "{}; without a cluster, give EC2NodeClass/NodePool/ServiceAccount files, --iam-snapshot, --policy or --live",
                    e.0
                ))
            })?;
    let request = Request {
        namespace: args.karpenter.namespace.clone(),
        selector: args.karpenter.selector.clone(),
        since: std::time::Duration::ZERO,
        scope: Scope::Configuration,
    };
    let reading = crate::cluster::check::read(&client, &request, scanner.clone(), &mut |_| {})
        .await
        .map_err(|e| Failure(format!("{cluster}: {e}")))?;
    if reading.karpenter_version.is_none() && reading.deployments.is_empty() {
        return Err(Failure(format!(
            "{cluster}: no Karpenter here: the API group karpenter.sh is not served and no \
             Deployment matches {} in {} (another context? --context, --karpenter-namespace, \
             --karpenter-selector)",
            request.selector, request.namespace
        )));
    }
    crate::cluster::observe::read(scanner, &reading.objects(), obs);
    let deployment = reading.deployments.iter().find(|d| d.controller.is_some());
    let controller = deployment.and_then(|d| d.controller.as_ref());
    let says = ClusterSays {
        running: Running {
            chart_version: deployment
                .and_then(|d| d.chart_version.as_deref())
                .and_then(Version::parse),
            ..controller.map(running::read).unwrap_or_default()
        },
        image: controller.map(|c| c.image.clone()),
        endpoint_region: Partition::region_of_eks_endpoint(&url),
    };
    let mut head = format!(
        "Cluster: {cluster}, Kubernetes {}\nRead:    {} NodePool(s), {} EC2NodeClass(es); {} ServiceAccount(s) and {} pod(s) in {}\n",
        reading.server_version,
        reading.node_pools.len(),
        reading.node_classes.len(),
        reading.accounts.len(),
        reading.pods.len(),
        request.namespace
    );
    for d in &reading.deployments {
        head += &format!(
            "Karpenter: Deployment {} (ServiceAccount {}, image {})\n",
            d.name,
            d.service_account,
            d.controller.as_ref().map_or("none", |c| c.image.as_str())
        );
    }
    if !reading.problems.is_empty() {
        head += "Not read:\n";
        for p in &reading.problems {
            head += &format!("  - {p}\n");
        }
    }
    Ok((says, head))
}

/// What was evaluated, and where each value came from, for the head of the report.
fn settings_text(settings: &Settings, from: VersionFrom, says: &ClusterSays, live: bool) -> String {
    let version = match (from, &says.image) {
        (VersionFrom::Given, _) => settings.version.to_string(),
        (VersionFrom::Newest, Some(image)) => {
            format!("{NEWEST} (the image {image} names no version; --karpenter-version)")
        }
        (from, _) => format!("{} ({from})", settings.version),
    };
    let from = |flag: bool, what: &str| {
        if flag {
            what.to_string()
        } else {
            String::new()
        }
    };
    format!(
        "Evaluated: Karpenter {version}, controller role {}, {} {}{}{}{}{}\nAWS:     {}\n",
        settings.controller_role,
        settings.partition.id,
        settings.region,
        settings
            .cluster_name
            .as_ref()
            .map_or(String::new(), |c| format!(", cluster {c}")),
        settings
            .interruption_queue
            .as_ref()
            .map_or(String::new(), |q| format!(", interruption queue {q}")),
        from(settings.cluster_endpoint, ", cluster endpoint set"),
        from(settings.isolated_vpc, ", isolated VPC")
            + &from(settings.disable_dry_run, ", dry runs disabled"),
        if live {
            "live lookups (the default credential chain)"
        } else {
            "not asked"
        }
    )
}

/// What the flags give, over what the cluster and the inputs say (`running::settings`), and
/// where the version evaluated comes from.
fn settings(
    args: &PreflightArgs,
    obs: &Observations,
    says: &ClusterSays,
) -> Result<(Settings, VersionFrom), Failure> {
    let partition = match &args.partition {
        Some(id) => Some(
            Partition::by_id(id)
                .ok_or_else(|| Failure(format!("--partition {id}: not a partition")))?,
        ),
        None => None,
    };
    let given = Given {
        version: args.karpenter_version,
        controller_role: args.facts.controller_role.clone(),
        region: args.aws.region.clone(),
        partition,
        cluster_name: args.aws.cluster_name.clone(),
        node_role: args.node_role.clone(),
        interruption_queue: args.interruption_queue.clone(),
        cluster_endpoint: args.cluster_endpoint,
        isolated_vpc: args.isolated_vpc,
        disable_dry_run: args.disable_dry_run,
        feature_gates: args.feature_gates.clone(),
    };
    let settings = running::settings(&given, &says.running, says.endpoint_region.as_deref(), obs)
        .map_err(Failure)?;
    Ok((settings, running::version(&given, &says.running, obs).1))
}

/// One line per row: verdict, action, the call that carries it, resource, statement.
fn rows_text<'a>(rows: impl Iterator<Item = &'a Row>) -> String {
    let mut out = String::new();
    let mut class = None;
    for row in rows {
        if class != Some(&row.node_class) {
            class = Some(&row.node_class);
            out += &format!("  EC2NodeClass {}:\n", row.node_class);
        }
        let (verdict, why) = match &row.verdict {
            Verdict::Allowed(Some(s)) => ("allowed", label(s)),
            Verdict::Allowed(None) => ("allowed", String::new()),
            Verdict::Refused(_, Some(d)) => ("REFUSED", d.summary.clone()),
            Verdict::Refused(d, None) => ("REFUSED", format!("{d:?}")),
            Verdict::Unknown(why) => ("unknown", why.clone()),
        };
        let resource = row
            .request
            .as_ref()
            .map_or(String::new(), |r| r.resource.clone());
        out += &format!(
            "    {verdict:<8} {:<34} {:<30} {resource}{}\n",
            row.template.action,
            format!("({})", row.template.call),
            if why.is_empty() {
                String::new()
            } else {
                format!("  [{why}]")
            }
        );
    }
    out
}

fn label(s: &crate::policy::StatementRef) -> String {
    match (&s.sid, s.index) {
        (Some(sid), _) => format!("{} {sid}", s.policy),
        (None, Some(i)) => format!("{} statement {i}", s.policy),
        (None, None) => s.policy.clone(),
    }
}

/// One line per check beyond the requests, under its EC2NodeClass or the controller role.
fn checks_text<'a>(checks: impl Iterator<Item = &'a Check>) -> String {
    let mut out = String::new();
    let mut under = None;
    for c in checks {
        let heading = match &c.node_class {
            Some(class) => format!("EC2NodeClass {class}"),
            None => "controller role".to_string(),
        };
        if under.as_ref() != Some(&heading) {
            out += &format!("  {heading}:\n");
            under = Some(heading);
        }
        let status = match c.status {
            Status::Allowed => "allowed",
            Status::Near => "NEAR",
            Status::Refused => "REFUSED",
            Status::Unknown => "unknown",
        };
        out += &format!(
            "    {status:<8} {:<34} {}  [{}]\n",
            c.what, c.subject, c.detail
        );
    }
    out
}

/// The report: the upgrade's needs first (with a target), the matrix, what was left out, the
/// checks beyond the requests, and each predicted Diagnosis with its fix.
fn matrix_text(now: &Matrix, target: Option<&Matrix>, items: &[Diagnosis]) -> String {
    let mut out = String::new();
    if let Some(t) = target {
        let new = rows_text(t.newly_refused(now));
        out += &format!(
            "Upgrade {} -> {}: {}\n{new}\n",
            now.version,
            t.version,
            if new.is_empty() {
                "nothing it newly needs is refused".to_string()
            } else {
                "newly needed and refused:".to_string()
            }
        );
    }
    for m in std::iter::once(now).chain(target) {
        let refused = m.refused().count();
        out += &format!(
            "Karpenter {}: {} requests evaluated, {refused} refused, {} not decided\n{}",
            m.version,
            m.rows.len(),
            m.rows
                .iter()
                .filter(|r| matches!(r.verdict, Verdict::Unknown(_)))
                .count(),
            rows_text(m.rows.iter())
        );
        for note in &m.notes {
            out += &format!("  note: {note}\n");
        }
        out += "\n";
    }
    // The same for every version: the version evaluated's.
    if !now.checks.is_empty() {
        out += &format!(
            "Checks: node role trust, IAM size limits ({} refused, {} near a limit)\n{}\n",
            now.refused_checks().count(),
            now.checks
                .iter()
                .filter(|c| c.status == Status::Near)
                .count(),
            checks_text(now.checks.iter())
        );
    }
    out += &super::report::sections(items, super::report::Style { colour: false });
    out
}
