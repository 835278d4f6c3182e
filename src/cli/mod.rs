//! The command line: one binary, one subcommand per job (contract §1). Parsing lives here;
//! each subcommand's module reads its inputs, calls the pure core and renders the result.

pub mod aws_args;
pub mod check;
mod check_pod;
pub mod controller;
pub mod explain;
pub mod fact_args;
pub mod karpenter_args;
pub mod kube_args;
pub mod mcp;
pub mod preflight;
pub mod report;
pub mod simulate;
pub mod snapshot;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "karpenter-doctor",
    version,
    about = "Tells why Karpenter cannot launch nodes on AWS, and what to change"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose from text: Karpenter logs, kubectl and AWS CLI output (files, or standard input).
    Explain(explain::ExplainArgs),
    /// Evaluate one IAM request against policies offline, and explain the decision.
    Simulate(simulate::SimulateArgs),
    /// Fetch IAM or KMS facts from AWS and write them as snapshot files for offline `explain`.
    Snapshot(snapshot::SnapshotArgs),
    /// Run the controller: watch Karpenter's objects and logs, write Diagnoses.
    Controller(controller::ControllerArgs),
    /// Triage the cluster of the current kube context once: read Karpenter's objects, Events
    /// and recent logs (read-only), look facts up in AWS, print the report.
    Check(check::CheckArgs),
    /// Prove, before Karpenter tries, which requests it will make are refused (and what an
    /// upgrade to another version needs).
    Preflight(preflight::PreflightArgs),
    /// Serve the read-only tools (explain, check, simulate, preflight, get_diagnoses) to an
    /// agent: a Model Context Protocol server on standard input and output.
    Mcp,
    /// Print the `Diagnosis` CustomResourceDefinition as YAML.
    Crd,
    /// Print a shell completion script: `source <(karpenter-doctor completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Yaml,
}

/// A failure that ends a command with exit status 1 (unreadable or invalid input files).
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The end of a command's output: a closed pipe (`| head`) is no failure.
pub fn finish(written: std::io::Result<()>) -> Result<(), Failure> {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Reads a whole input file, naming it in the error.
pub fn read_file(path: &str) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure(format!("{path}: cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure(format!(
            "{path}: not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// The name the binary answers to: `kubectl karpenter-doctor` when it runs as the kubectl
/// plugin `kubectl-karpenter_doctor` (krew's naming), else `karpenter-doctor`.
pub fn bin_name(argv0: &str) -> &'static str {
    let file = std::path::Path::new(argv0)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("");
    if file.starts_with("kubectl-") {
        "kubectl karpenter-doctor"
    } else {
        "karpenter-doctor"
    }
}

/// Parses the command line as `argv0` names the binary (usage errors exit 2, as clap does).
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let argv0 = std::env::args().next().unwrap_or_default();
    let matches = Cli::command().bin_name(bin_name(&argv0)).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Exit status 3: `check --exit-code` found a root cause (contract §1).
const FOUND: u8 = 3;

/// Runs the parsed command; exit 0 when it ran, 1 when an input file is unusable (or, for
/// `check`, the cluster cannot be read), 3 when `check --exit-code` found a root cause.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Check(args) => match check::run(&args, &mut std::io::stdout().lock()) {
            Ok(true) if args.exit_code => return ExitCode::from(FOUND),
            other => other.map(|_| ()),
        },
        Command::Completion { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                shell,
                &mut command,
                "karpenter-doctor",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Preflight(args) => match preflight::run(&args, &mut std::io::stdout().lock()) {
            Ok(true) if args.exit_code => return ExitCode::from(FOUND),
            other => other.map(|_| ()),
        },
        Command::Explain(args) => explain::run(&args, &mut std::io::stdout().lock()),
        Command::Simulate(args) => simulate::run(&args, &mut std::io::stdout().lock()),
        Command::Snapshot(args) => snapshot::run(&args, &mut std::io::stdout().lock()),
        Command::Controller(args) => controller::run(&args),
        Command::Mcp => mcp::run(),
        Command::Crd => finish(std::io::Write::write_all(
            &mut std::io::stdout().lock(),
            crate::cluster::crd::yaml().as_bytes(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("karpenter-doctor: {message}");
            ExitCode::from(1)
        }
    }
}
