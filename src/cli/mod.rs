//! The command line: one binary, one subcommand per job (contract §1). Parsing lives here;
//! each subcommand's module reads its inputs, calls the pure core and renders the result.

pub mod aws_args;
pub mod controller;
pub mod explain;
pub mod fact_args;
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
    /// Print the `Diagnosis` CustomResourceDefinition as YAML.
    Crd,
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

/// Runs the parsed command; exit 0 when it ran, 1 when an input file is unusable.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Explain(args) => explain::run(&args, &mut std::io::stdout().lock()),
        Command::Simulate(args) => simulate::run(&args, &mut std::io::stdout().lock()),
        Command::Snapshot(args) => snapshot::run(&args, &mut std::io::stdout().lock()),
        Command::Controller(args) => controller::run(&args),
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
