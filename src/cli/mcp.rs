//! `karpenter-doctor mcp`: a Model Context Protocol server on stdio (rmcp), so agents call the
//! doctor instead of guessing. Read-only, like every command.
//!
//! Each tool's arguments are a JSON object with a schema; they are turned into the command line
//! of the subcommand of the same name and parsed by the same clap definitions (same defaults,
//! same checks), then the subcommand's own `findings`/`evaluate` function runs, and the tool
//! returns the object `-o json` prints (as structured content, and as JSON text).
//!
//! Errors are tool results with `isError: true` and the message, as the MCP specification asks
//! so that the model can correct itself: arguments that do not fit the schema ("invalid
//! arguments: text: invalid type: …", naming the argument), arguments the subcommand rejects as
//! a usage error (exit status 2 on the command line; "invalid arguments: …" in clap's words),
//! and a run that fails (exit status 1: a file that cannot be read, no cluster). An unknown tool
//! is a JSON-RPC error. Standard output carries the protocol only; warnings go to standard
//! error, as on the command line.

use super::explain::Source;
use super::{Cli, Command, Failure};
use crate::diagnose::model::List;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, JsonObject, ServerCapabilities, ServerConfig,
};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

/// A tool's outcome before it is sent: `Err` is arguments it cannot take.
type Outcome = Result<CallToolResult, Invalid>;

/// Arguments a tool cannot take, in words naming them; sent as a tool error, so that the model
/// can correct them.
struct Invalid(String);

fn invalid(message: impl std::fmt::Display) -> Invalid {
    Invalid(message.to_string())
}

/// A tool's input schema: its arguments' type's JSON schema.
fn schema<T: schemars::JsonSchema + 'static>() -> std::sync::Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_input::<T>()
        .unwrap_or_else(|e| panic!("the input schema of {}: {e}", std::any::type_name::<T>()))
}

/// A tool's arguments; where they do not fit, a tool error naming the argument (`text: invalid
/// type: integer `42`, expected a string`, `unknown field `frobnicate``).
fn parse<T: serde::de::DeserializeOwned>(arguments: JsonObject) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(serde_json::Value::Object(arguments)).map_err(|e| {
        match e.path().to_string().as_str() {
            "." => invalid(e.inner()),
            path => invalid(format!("{path}: {}", e.inner())),
        }
    })
}

/// The reply to a tool call: its result, or the tool error its arguments get.
fn reply(outcome: Outcome) -> Result<CallToolResult, ErrorData> {
    Ok(outcome.unwrap_or_else(|Invalid(message)| {
        CallToolResult::error(vec![ContentBlock::text(format!(
            "invalid arguments: {message}"
        ))])
    }))
}

/// Arguments of the `explain` tool.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainParams {
    /// Pasted text: Karpenter controller logs (JSON or console), `kubectl get
    /// events|nodeclaims|nodepools|ec2nodeclasses|serviceaccount -o json|yaml`, `aws ec2
    /// describe-instances`, `aws eks describe-cluster` output, in any mix.
    #[serde(default)]
    pub text: Option<String>,
    /// Input files on the machine the server runs on (same kinds as `text`).
    #[serde(default)]
    pub files: Vec<String>,
    /// `aws iam get-account-authorization-details` output files, one per account.
    #[serde(default)]
    pub iam_snapshots: Vec<String>,
    /// KMS snapshot files (contract §4).
    #[serde(default)]
    pub kms_snapshots: Vec<String>,
    /// The role Karpenter's controller runs as, where no input names it.
    #[serde(default)]
    pub controller_role: Option<String>,
    /// Look facts up in AWS with the server's default credential chain (default: offline).
    #[serde(default)]
    pub live: bool,
    /// The AWS region (else the credential chain's).
    #[serde(default)]
    pub region: Option<String>,
    /// An AWS endpoint (an emulator, in tests).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The EKS cluster's name (Karpenter's CLUSTER_NAME).
    #[serde(default)]
    pub cluster_name: Option<String>,
}

/// Arguments of the `check` tool.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context (default: its current context).
    #[serde(default)]
    pub context: Option<String>,
    /// The namespace Karpenter runs in (default: kube-system).
    #[serde(default)]
    pub karpenter_namespace: Option<String>,
    /// The selector of Karpenter's pods, whose logs are read (default:
    /// app.kubernetes.io/name=karpenter).
    #[serde(default)]
    pub karpenter_selector: Option<String>,
    /// How far back to read the logs: 90s, 30m, 1h, 2h30m, 1d (default: 1h).
    #[serde(default)]
    pub since: Option<String>,
    /// `aws iam get-account-authorization-details` output files, one per account.
    #[serde(default)]
    pub iam_snapshots: Vec<String>,
    /// KMS snapshot files (contract §4).
    #[serde(default)]
    pub kms_snapshots: Vec<String>,
    /// The role Karpenter's controller runs as, where nothing read names it.
    #[serde(default)]
    pub controller_role: Option<String>,
    /// No AWS lookups: diagnose from the cluster and the snapshots only.
    #[serde(default)]
    pub offline: bool,
    /// The AWS region (else the credential chain's).
    #[serde(default)]
    pub region: Option<String>,
    /// An AWS endpoint (an emulator, in tests).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The EKS cluster's name (Karpenter's CLUSTER_NAME).
    #[serde(default)]
    pub cluster_name: Option<String>,
}

/// Arguments of the `simulate` tool: those of `karpenter-doctor simulate`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateParams {
    /// The caller: a role, user, or assumed-role session ARN.
    pub principal: String,
    /// The action, e.g. `iam:PassRole`.
    pub action: String,
    /// The resource ARN (default `*`, for actions without resource-level permissions).
    #[serde(default)]
    pub resource: Option<String>,
    /// The account owning the resource where its ARN has none (S3 buckets).
    #[serde(default)]
    pub resource_account: Option<String>,
    /// Request context entries, `KEY=VALUE` (a key given twice is multi-valued).
    #[serde(default)]
    pub context: Vec<String>,
    /// Identity policy document files.
    #[serde(default)]
    pub policies: Vec<String>,
    /// The permissions boundary document file.
    #[serde(default)]
    pub boundary: Option<String>,
    /// Service control policy levels, organization root first: each a file holding one policy
    /// document or a JSON array of the documents attached at that level.
    #[serde(default)]
    pub scps: Vec<String>,
    /// The resource's policy file (a KMS key policy for a key).
    #[serde(default)]
    pub resource_policy: Option<String>,
    /// `aws iam get-account-authorization-details` output files: the principal's own policies
    /// and boundary are taken from them.
    #[serde(default)]
    pub iam_snapshots: Vec<String>,
}

/// Arguments of the `preflight` tool: those of `karpenter-doctor preflight`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreflightParams {
    /// Pasted EC2NodeClass, NodePool and ServiceAccount YAML or JSON (kubectl -o yaml|json),
    /// or SCP documents. With no text, files, policies, snapshots or `live`, the cluster of the
    /// current kube context is read (and AWS, unless `offline`).
    #[serde(default)]
    pub text: Option<String>,
    /// The kubeconfig file, to read a cluster (default: $KUBECONFIG, else ~/.kube/config,
    /// else in-cluster).
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context, to read a cluster (default: its current context).
    #[serde(default)]
    pub context: Option<String>,
    /// The namespace Karpenter runs in (default: kube-system).
    #[serde(default)]
    pub karpenter_namespace: Option<String>,
    /// The selector of Karpenter's Deployment and pods (default:
    /// app.kubernetes.io/name=karpenter).
    #[serde(default)]
    pub karpenter_selector: Option<String>,
    /// Reading a cluster: no AWS lookups.
    #[serde(default)]
    pub offline: bool,
    /// Input files of the same kinds as `text`.
    #[serde(default)]
    pub files: Vec<String>,
    /// The controller role's policy documents, or `terraform show -json` output holding them
    /// (files).
    #[serde(default)]
    pub policies: Vec<String>,
    /// `aws iam get-account-authorization-details` output files, one per account.
    #[serde(default)]
    pub iam_snapshots: Vec<String>,
    /// KMS snapshot files (contract §4).
    #[serde(default)]
    pub kms_snapshots: Vec<String>,
    /// The role Karpenter's controller runs as, where no ServiceAccount input names it.
    #[serde(default)]
    pub controller_role: Option<String>,
    /// The Karpenter version whose requests are evaluated, like v1.15.0 (default: the running
    /// Karpenter's image tag, else the version its chart labelled it with, else v1.15.0).
    #[serde(default)]
    pub karpenter_version: Option<String>,
    /// Also evaluate this version (an upgrade), like v1.15.0.
    #[serde(default)]
    pub target_version: Option<String>,
    /// aws, aws-cn or aws-us-gov (default: the controller role's ARN's, else the region's).
    #[serde(default)]
    pub partition: Option<String>,
    /// The node role, where no EC2NodeClass input names one.
    #[serde(default)]
    pub node_role: Option<String>,
    /// Karpenter's interruption queue (settings.interruptionQueue), where one is configured.
    #[serde(default)]
    pub interruption_queue: Option<String>,
    /// A cluster endpoint is configured (Karpenter does not call eks:DescribeCluster).
    #[serde(default)]
    pub cluster_endpoint: bool,
    /// Karpenter runs with isolatedVPC (no pricing API).
    #[serde(default)]
    pub isolated_vpc: bool,
    /// Karpenter runs with DISABLE_DRY_RUN.
    #[serde(default)]
    pub disable_dry_run: bool,
    /// Karpenter's feature gates, e.g. RebootForRepair=true.
    #[serde(default)]
    pub feature_gates: Vec<String>,
    /// Look the controller role's policies and the keys up in AWS (default: offline).
    #[serde(default)]
    pub live: bool,
    /// Karpenter's AWS region (required).
    #[serde(default)]
    pub region: Option<String>,
    /// An AWS endpoint (an emulator, in tests).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Karpenter's CLUSTER_NAME (default: where an input shows it).
    #[serde(default)]
    pub cluster_name: Option<String>,
}

/// Arguments of the `get_diagnoses` tool.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetDiagnosesParams {
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context (default: its current context).
    #[serde(default)]
    pub context: Option<String>,
}

/// A subcommand's command line, built from a tool's arguments.
struct Argv(Vec<String>);

impl Argv {
    fn new(command: &str) -> Argv {
        Argv(vec!["karpenter-doctor".into(), command.into()])
    }
    /// `--name=value` (the `=` keeps a value that starts with `-` a value).
    fn opt(&mut self, name: &str, value: Option<&String>) -> &mut Argv {
        if let Some(v) = value {
            self.0.push(format!("--{name}={v}"));
        }
        self
    }
    fn many(&mut self, name: &str, values: &[String]) -> &mut Argv {
        for v in values {
            self.opt(name, Some(v));
        }
        self
    }
    fn flag(&mut self, name: &str, on: bool) -> &mut Argv {
        if on {
            self.0.push(format!("--{name}"));
        }
        self
    }
    /// `--region`, `--endpoint-url`, `--cluster-name`.
    fn aws(&mut self, [region, endpoint, cluster]: [&Option<String>; 3]) -> &mut Argv {
        self.opt("region", region.as_ref())
            .opt("endpoint-url", endpoint.as_ref())
            .opt("cluster-name", cluster.as_ref())
    }
    /// Input files after `--`; `-` (standard input) is the protocol's, never an input.
    fn files(&mut self, files: &[String]) -> Result<&mut Argv, Invalid> {
        if files.iter().any(|f| f == "-") {
            return Err(invalid(
                "files: \"-\" (standard input) carries the protocol here; paste the text as `text`",
            ));
        }
        self.0.push("--".into());
        self.0.extend(files.iter().cloned());
        Ok(self)
    }
    /// Parses the command line as the binary would, asking for `-o json`; a usage error is a
    /// tool error in clap's words (the flag `--iam-snapshot` is the argument `iam_snapshots`).
    fn parse(&mut self) -> Result<Command, Invalid> {
        use clap::Parser;
        let mut argv = self.0.clone();
        let end = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
        argv.insert(end, "--output=json".into());
        let cli = Cli::try_parse_from(argv).map_err(|e| {
            let text = e.render().to_string();
            let first = text.split("\n\n").next().unwrap_or(&text);
            invalid(first.trim_start_matches("error: "))
        })?;
        Ok(cli.command)
    }
}

/// What a tool reads: the pasted text (named `text` in the evidence), then the files.
fn sources<'a>(text: Option<&'a str>, files: &'a [String]) -> Vec<Source<'a>> {
    let text = text.map(|text| Source::Text { name: "text", text });
    text.into_iter()
        .chain(files.iter().map(|f| Source::File(f)))
        .collect()
}

/// The tool result of a run: the `-o json` object, or the failure as a tool error.
fn result<T: serde::Serialize>(found: Result<T, Failure>) -> CallToolResult {
    match found.map(serde_json::to_value) {
        Ok(Ok(value)) => CallToolResult::structured(value),
        Ok(Err(e)) => failed(Failure(format!("cannot render JSON: {e}"))),
        Err(failure) => failed(failure),
    }
}

fn failed(Failure(message): Failure) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// Runs a subcommand's blocking work (file reads, its own runtime for AWS or the cluster) off
/// the protocol's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(Failure(format!("the tool stopped: {e}"))))
}

/// The MCP server: one tool per read-only job.
#[derive(Clone)]
pub struct Doctor {
    tool_router: ToolRouter<Doctor>,
}

impl Default for Doctor {
    fn default() -> Self {
        Doctor {
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl Doctor {
    /// `explain`: diagnose pasted text (offline unless `live`).
    #[tool(
        input_schema = schema::<ExplainParams>(),
        description = "Diagnose why Karpenter cannot launch nodes on AWS from pasted text: Karpenter controller logs, kubectl get events/nodeclaims/nodepools/ec2nodeclasses/serviceaccount -o json|yaml, aws ec2 describe-instances output. Offline by default; IAM/KMS snapshot files add facts. Returns the Diagnosis list (as `karpenter-doctor explain -o json`): each root cause proven, with its remediation.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn explain(&self, arguments: JsonObject) -> Result<CallToolResult, ErrorData> {
        reply(async { explain(parse(arguments)?).await }.await)
    }

    /// `check`: triage the cluster of the current kube context once.
    #[tool(
        input_schema = schema::<CheckParams>(),
        description = "Triage the Kubernetes cluster of the current kube context once (read-only): read Karpenter's NodeClaims, NodePools, EC2NodeClasses, Events and recent logs, look facts up in AWS (unless offline), and return the Diagnosis list (as `karpenter-doctor check -o json`). A second text block says what was read. Fails when no cluster is reachable.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn check(&self, arguments: JsonObject) -> Result<CallToolResult, ErrorData> {
        reply(async { check(parse(arguments)?).await }.await)
    }

    /// `simulate`: one IAM request against policies, offline.
    #[tool(
        input_schema = schema::<SimulateParams>(),
        description = "Evaluate one IAM request (principal, action, resource, context) against policy documents offline — identity policies, permissions boundary, SCPs, a resource policy, or a principal's own policies from an IAM snapshot — and explain the decision statement by statement. Returns {decision: allowed|explicitDeny|implicitDeny, statements: [...]} as `karpenter-doctor simulate -o json`.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn simulate(&self, arguments: JsonObject) -> Result<CallToolResult, ErrorData> {
        reply(async { simulate(parse(arguments)?).await }.await)
    }

    /// `preflight`: which requests Karpenter will make are refused, before it tries.
    #[tool(
        input_schema = schema::<PreflightParams>(),
        description = "Prove, before Karpenter tries, which AWS requests its version will make that the controller role's policies refuse (and, with target_version, what an upgrade newly needs). Reads EC2NodeClass/NodePool/ServiceAccount YAML (pasted as text or files), the controller role's policy documents, IAM snapshots (offline unless live; region is required); given none of these, reads the cluster of the current kube context (its EC2NodeClasses, NodePools, Karpenter's ServiceAccount and Deployment: the version and settings) and AWS unless offline. Returns the predicted Diagnosis list (as `karpenter-doctor preflight -o json`).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn preflight(&self, arguments: JsonObject) -> Result<CallToolResult, ErrorData> {
        reply(async { preflight(parse(arguments)?).await }.await)
    }

    /// `get_diagnoses`: the Diagnosis objects of the current kube context.
    #[tool(
        input_schema = schema::<GetDiagnosesParams>(),
        description = "Read the Diagnosis objects the karpenter-doctor controller wrote in the cluster of the current kube context, as `kubectl get diagnoses -o json` (a List). Fails when no cluster is reachable or the Diagnosis CRD is not installed there.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn get_diagnoses(&self, arguments: JsonObject) -> Result<CallToolResult, ErrorData> {
        reply(async { get_diagnoses(parse(arguments)?).await }.await)
    }
}

/// `explain`: diagnose pasted text (offline unless `live`).
async fn explain(p: ExplainParams) -> Outcome {
    if p.text.is_none() && p.files.is_empty() {
        return Err(invalid(
            "explain needs `text` (the pasted logs or kubectl/AWS output) or `files`",
        ));
    }
    let mut argv = Argv::new("explain");
    argv.many("iam-snapshot", &p.iam_snapshots)
        .many("kms-snapshot", &p.kms_snapshots)
        .opt("controller-role", p.controller_role.as_ref())
        .flag("live", p.live)
        .aws([&p.region, &p.endpoint_url, &p.cluster_name])
        .files(&p.files)?;
    let Command::Explain(args) = argv.parse()? else {
        unreachable!("explain parses as explain")
    };
    let text = p.text;
    Ok(result(
        blocking(move || {
            let sources = sources(text.as_deref(), &args.inputs);
            super::explain::findings(&args, &sources).map(|found| List::new(found.items))
        })
        .await,
    ))
}

/// `check`: triage the cluster of the current kube context once.
async fn check(p: CheckParams) -> Outcome {
    let mut argv = Argv::new("check");
    argv.opt("kubeconfig", p.kubeconfig.as_ref())
        .opt("context", p.context.as_ref())
        .opt("karpenter-namespace", p.karpenter_namespace.as_ref())
        .opt("karpenter-selector", p.karpenter_selector.as_ref())
        .opt("since", p.since.as_ref())
        .many("iam-snapshot", &p.iam_snapshots)
        .many("kms-snapshot", &p.kms_snapshots)
        .opt("controller-role", p.controller_role.as_ref())
        .flag("offline", p.offline)
        .aws([&p.region, &p.endpoint_url, &p.cluster_name]);
    let Command::Check(args) = argv.parse()? else {
        unreachable!("check parses as check")
    };
    let found = blocking(move || super::check::findings(&args)).await;
    Ok(match found {
        Ok(found) => {
            let head = found.head.clone();
            let mut out = result(Ok(List::new(found.items)));
            out.content.push(ContentBlock::text(head));
            out
        }
        Err(failure) => failed(failure),
    })
}

/// `simulate`: one IAM request against policies, offline.
async fn simulate(p: SimulateParams) -> Outcome {
    let mut argv = Argv::new("simulate");
    argv.opt("principal", Some(&p.principal))
        .opt("action", Some(&p.action))
        .opt("resource", p.resource.as_ref())
        .opt("resource-account", p.resource_account.as_ref())
        .many("context", &p.context)
        .many("policy", &p.policies)
        .opt("boundary", p.boundary.as_ref())
        .many("scp", &p.scps)
        .opt("resource-policy", p.resource_policy.as_ref())
        .many("iam-snapshot", &p.iam_snapshots);
    let Command::Simulate(args) = argv.parse()? else {
        unreachable!("simulate parses as simulate")
    };
    Ok(result(
        blocking(move || super::simulate::evaluate(&args).map(|(_, e)| e)).await,
    ))
}

/// `preflight`: which requests Karpenter will make are refused, before it tries.
async fn preflight(p: PreflightParams) -> Outcome {
    let mut argv = Argv::new("preflight");
    argv.opt("kubeconfig", p.kubeconfig.as_ref())
        .opt("context", p.context.as_ref())
        .opt("karpenter-namespace", p.karpenter_namespace.as_ref())
        .opt("karpenter-selector", p.karpenter_selector.as_ref())
        .flag("offline", p.offline)
        .many("policy", &p.policies)
        .many("iam-snapshot", &p.iam_snapshots)
        .many("kms-snapshot", &p.kms_snapshots)
        .opt("controller-role", p.controller_role.as_ref())
        .opt("karpenter-version", p.karpenter_version.as_ref())
        .opt("target-version", p.target_version.as_ref())
        .opt("partition", p.partition.as_ref())
        .opt("node-role", p.node_role.as_ref())
        .opt("interruption-queue", p.interruption_queue.as_ref())
        .flag("cluster-endpoint", p.cluster_endpoint)
        .flag("isolated-vpc", p.isolated_vpc)
        .flag("disable-dry-run", p.disable_dry_run)
        .many("feature-gates", &p.feature_gates)
        .flag("live", p.live)
        .aws([&p.region, &p.endpoint_url, &p.cluster_name])
        .files(&p.files)?;
    let Command::Preflight(args) = argv.parse()? else {
        unreachable!("preflight parses as preflight")
    };
    let text = p.text;
    Ok(result(
        blocking(move || {
            let sources = sources(text.as_deref(), &args.inputs);
            super::preflight::findings(&args, &sources).map(|found| List::new(found.items))
        })
        .await,
    ))
}

/// `get_diagnoses`: the Diagnosis objects of the current kube context.
async fn get_diagnoses(p: GetDiagnosesParams) -> Outcome {
    Ok(result(
        diagnoses(p.kubeconfig.as_deref(), p.context.as_deref()).await,
    ))
}

/// Every Diagnosis in the cluster, as `kubectl get diagnoses -o json` prints them.
async fn diagnoses(
    kubeconfig: Option<&str>,
    context: Option<&str>,
) -> Result<serde_json::Value, Failure> {
    use kube::api::{Api, DynamicObject, ListParams};
    use kube::core::TypeMeta;
    let (client, cluster, _) = super::check::connect(kubeconfig, context).await?;
    let resource = crate::cluster::resources::diagnoses();
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let items = crate::cluster::resources::list_all(&api, ListParams::default())
        .await
        .map_err(|e| match &e {
            kube::Error::Api(status) if status.code == 404 => Failure(format!(
                "{cluster}: no Diagnoses here: the {} CRD is not installed (the doctor's \
                 controller does not run in this cluster; use the check tool)",
                crate::cluster::crd::PLURAL
            )),
            _ => Failure(format!("{cluster}: cannot list diagnoses: {e}")),
        })?;
    let items: Vec<DynamicObject> = items
        .into_iter()
        .map(|mut d| {
            d.types = Some(TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
            d
        })
        .collect();
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items,
        "metadata": {"resourceVersion": ""},
    }))
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Doctor {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "karpenter-doctor",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "karpenter-doctor proves why Karpenter cannot launch nodes on AWS. Every tool is \
                 read-only. Paste logs or kubectl output to `explain`; `check` and \
                 `get_diagnoses` read the cluster of the current kube context; `simulate` \
                 evaluates one IAM request; `preflight` predicts refusals before Karpenter \
                 tries. Results are the objects of `karpenter-doctor <command> -o json`.",
            )
    }
}

/// Serves the tools on standard input and output until the client closes them.
pub fn run() -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let service = Doctor::default()
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Failure(format!("mcp: cannot start: {e}")))?;
        service
            .waiting()
            .await
            .map_err(|e| Failure(format!("mcp: stopped: {e}")))?;
        Ok(())
    })
}
