//! `karpenter-doctor preflight`: before Karpenter tries, which of the requests its version
//! makes the controller role's policies refuse. Offline from inputs (EC2NodeClass, NodePool,
//! ServiceAccount YAML, SCP documents), snapshots and `--policy` files; prints the matrix
//! (text) or the predicted Diagnoses (json, yaml).

use super::explain::{Source, print};
use super::{Failure, Output, read_file};
use crate::diagnose::model::Diagnosis;
use crate::facts::iam_snapshot::IamSnapshot;
use crate::partition::Partition;
use crate::policy::arn::Arn;
use crate::preflight::catalog::{Catalogue, Version};
use crate::preflight::{self, Matrix, Row, Settings, Verdict, policy_file};
use crate::signal::{Observations, Scanner};
use clap::Args;
use std::io::Write;

/// The version evaluated when none is given and no running Karpenter is read.
pub const NEWEST: Version = Version(1, 15, 0);

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// Inputs: EC2NodeClass, NodePool and ServiceAccount YAML or JSON (kubectl -o yaml|json),
    /// SCP documents (aws organizations describe-policy).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub facts: super::fact_args::FactArgs,
    /// The controller role's policy as a document, or `terraform show -json` output that holds
    /// it (repeatable; before deploy).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<String>,
    /// The Karpenter version whose requests are evaluated [default: v1.15.0 offline].
    #[arg(long, value_name = "V", value_parser = parse_version)]
    pub karpenter_version: Option<Version>,
    /// Also evaluate version V, and lead with what it needs that the policies refuse.
    #[arg(long, value_name = "V", value_parser = parse_version)]
    pub target_version: Option<Version>,
    /// aws, aws-cn, aws-us-gov [default: the controller role's ARN's, else the region's].
    #[arg(long, value_name = "ID")]
    pub partition: Option<String>,
    /// Look the controller role's policies and the keys up in AWS with the default credential
    /// chain (snapshots and --policy, where given, win). --region is Karpenter's region,
    /// --cluster-name its CLUSTER_NAME.
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub aws: super::aws_args::AwsArgs,
    /// The node role, where no EC2NodeClass input names one.
    #[arg(long, value_name = "ARN")]
    pub node_role: Option<String>,
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
    /// Exit with status 3 when any request would be refused.
    #[arg(long)]
    pub exit_code: bool,
}

fn parse_version(text: &str) -> Result<Version, String> {
    Version::parse(text).ok_or_else(|| format!("{text:?} is not a version like v1.15.0"))
}

/// Runs `preflight`; `Ok(true)` when a request would be refused.
pub fn run(args: &PreflightArgs, out: &mut impl Write) -> Result<bool, Failure> {
    let sources: Vec<Source<'_>> = args.inputs.iter().map(|n| Source::File(n)).collect();
    let found = findings(args, &sources)?;
    match args.output {
        Output::Text => {
            let text = matrix_text(&found.now, found.target.as_ref(), &found.items);
            super::finish(out.write_all(text.as_bytes()))?;
        }
        other => print(&found.items, &found.obs, other, out)?,
    }
    Ok(found.refused)
}

/// What `preflight` found: the matrix of the version evaluated (and of the target version),
/// the predicted Diagnoses (`-o json`/`yaml` print them as a `List`), and whether any request
/// would be refused.
pub struct Found {
    pub now: Matrix,
    pub target: Option<Matrix>,
    pub items: Vec<Diagnosis>,
    pub obs: Observations,
    pub refused: bool,
}

/// Reads `sources` (the inputs) and the snapshots and policies `args` name, and evaluates. The
/// one function behind `preflight` and the `mcp` tool.
pub fn findings(args: &PreflightArgs, sources: &[Source<'_>]) -> Result<Found, Failure> {
    if sources.is_empty()
        && args.policies.is_empty()
        && args.facts.iam_snapshots.is_empty()
        && !args.live
    {
        return Err(Failure(
            "preflight reads what it is given: give EC2NodeClass/NodePool/ServiceAccount files, --iam-snapshot, --policy or --live (reading the current kube context is not built yet)".into(),
        ));
    }
    let scanner = Scanner::new()
        .map_err(|e| Failure(format!("the shipped recognition rules are invalid: {e}")))?;
    let obs = super::explain::scan(&scanner, sources)?;
    let mut facts = args.facts.load()?;
    let settings = settings(args, &obs)?;
    if !args.policies.is_empty() {
        let mut found = Vec::new();
        for path in &args.policies {
            found.extend(policy_file::policies(path, &read_file(path)?).map_err(Failure)?);
        }
        let doc = policy_file::snapshot(&settings.controller_role, &found);
        let snapshot = IamSnapshot::parse(&doc.to_string())
            .map_err(|e| Failure(format!("--policy: invalid policy: {e}")))?;
        facts.iam.insert(0, ("--policy".into(), snapshot));
    }
    let fetched = if args.live {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(async {
            let live = crate::aws::live::Live::connect(&args.aws.options()).await;
            crate::aws::gather::gather_for_preflight(&live, &settings.controller_role, &obs).await
        })
    } else {
        crate::facts::fetched::FetchedFacts::default()
    };
    let facts = crate::facts::Overlay {
        first: &facts,
        then: &fetched,
    };
    let catalogue = Catalogue::shipped();
    let now = preflight::evaluate(&catalogue, &obs, &settings, &facts);
    let target = args.target_version.map(|version| {
        let s = Settings {
            version,
            ..settings.clone()
        };
        preflight::evaluate(&catalogue, &obs, &s, &facts)
    });
    let mut items = preflight::predicted(&now, &obs, &facts, &settings);
    if let Some(t) = &target {
        for d in preflight::predicted(t, &obs, &facts, &settings) {
            if !items.iter().any(|i| i.metadata.name == d.metadata.name) {
                items.push(d);
            }
        }
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }
    let refused = now.refused().next().is_some()
        || target
            .as_ref()
            .is_some_and(|t| t.refused().next().is_some())
        || !items.is_empty();
    Ok(Found {
        now,
        target,
        items,
        obs,
        refused,
    })
}

/// What the inputs and flags say of the cluster; a usage error names what is missing.
fn settings(args: &PreflightArgs, obs: &Observations) -> Result<Settings, Failure> {
    let controller_role = args
        .facts
        .controller_role
        .clone()
        .or_else(|| crate::diagnose::controller_account(obs).map(|a| a.role.clone()))
        .ok_or_else(|| {
            Failure("the controller role is not known: give --controller-role ARN or Karpenter's ServiceAccount".into())
        })?;
    let region = args
        .aws
        .region
        .clone()
        .ok_or_else(|| Failure("the region is not known: give --region".into()))?;
    let partition = match &args.partition {
        Some(id) => Partition::by_id(id)
            .ok_or_else(|| Failure(format!("--partition {id}: not a partition")))?,
        None => Arn::parse(&controller_role)
            .and_then(|a| Partition::by_id(a.partition))
            .unwrap_or_else(|| Partition::of_region(&region)),
    };
    Ok(Settings {
        version: args.karpenter_version.unwrap_or(NEWEST),
        partition,
        region,
        cluster_name: args
            .aws
            .cluster_name
            .clone()
            .or_else(|| obs.cluster_names.first().cloned()),
        controller_role,
        node_role: args.node_role.clone(),
        interruption_queue: args.interruption_queue.clone(),
        cluster_endpoint: args.cluster_endpoint,
        isolated_vpc: args.isolated_vpc,
        disable_dry_run: args.disable_dry_run,
        feature_gates: args.feature_gates.clone(),
    })
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

/// The report: the upgrade's needs first (with a target), the matrix, what was left out, and
/// each predicted Diagnosis with its fix.
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
    out += &super::report::sections(items, super::report::Style { colour: false });
    out
}
