//! `karpenter-doctor snapshot iam|kms`: fetch a role's policies or a key's facts from live AWS
//! and write them as snapshot files, for `explain` on a machine without credentials.

use super::aws_args::AwsArgs;
use super::{Failure, finish};
use crate::aws::live::Live;
use crate::diagnose;
use crate::facts::fetched::FetchedFacts;
use crate::facts::write;
use crate::signal::{Observations, Scanner};
use clap::{Args, ValueEnum};
use std::collections::BTreeSet;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// `aws iam get-account-authorization-details` format, for --iam-snapshot.
    Iam,
    /// Contract §4 format, for --kms-snapshot.
    Kms,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Which facts to write.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Inputs as `explain` reads them: the roles (iam) or keys (kms) their failures name are
    /// fetched, as `explain --live` would.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// A role to fetch (repeatable), with `iam`.
    #[arg(long = "role", value_name = "ARN")]
    pub roles: Vec<String>,
    /// A KMS key to fetch (repeatable), with `kms`.
    #[arg(long = "key", value_name = "ARN")]
    pub keys: Vec<String>,
    /// The role Karpenter's controller runs as, where no input names it.
    #[arg(long, value_name = "ARN")]
    pub controller_role: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Write the snapshot to FILE instead of standard output.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<String>,
}

pub fn run(args: &SnapshotArgs, stdout: &mut impl Write) -> Result<(), Failure> {
    let wanted = wanted(args)?;
    if wanted.is_empty() {
        return Err(Failure(format!(
            "nothing to fetch: give {} or inputs that name one",
            match args.kind {
                Kind::Iam => "--role ARN",
                Kind::Kms => "--key ARN",
            }
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    let (snapshot, failures) = runtime.block_on(async {
        let live = Live::connect(&args.aws.options()).await;
        let mut failures = Vec::new();
        let snapshot = match args.kind {
            Kind::Iam => {
                let mut found = Vec::new();
                for role in &wanted {
                    match live.principal(role).await {
                        Ok(p) => found.push(p),
                        Err(e) => failures.push(format!("{role}: {e}")),
                    }
                }
                write::iam_snapshot(&found)
            }
            Kind::Kms => {
                let mut found = Vec::new();
                for key in &wanted {
                    match live.key(key).await {
                        Ok(k) => {
                            failures.extend(
                                k.unreadable
                                    .iter()
                                    .map(|why| format!("{key}: partly (absent = unknown): {why}")),
                            );
                            found.push(k)
                        }
                        Err(e) => failures.push(format!("{key}: {e}")),
                    }
                }
                write::kms_snapshot(&found)
            }
        };
        (snapshot, failures)
    });
    for f in &failures {
        eprintln!("karpenter-doctor: warning: not in the snapshot: {f}");
    }
    if snapshot_is_empty(&snapshot) {
        return Err(Failure("no lookup succeeded: nothing written".into()));
    }
    let text = serde_json::to_string_pretty(&snapshot).expect("JSON values serialize") + "\n";
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| Failure(format!("{path}: cannot write: {e}")))
        }
        None => finish(stdout.write_all(text.as_bytes())),
    }
}

/// The roles or keys to fetch: those given, and those the inputs' failures name.
fn wanted(args: &SnapshotArgs) -> Result<BTreeSet<String>, Failure> {
    let mut wanted: BTreeSet<String> = match args.kind {
        Kind::Iam => args.roles.iter().cloned().collect(),
        Kind::Kms => args.keys.iter().cloned().collect(),
    };
    if args.inputs.is_empty() {
        return Ok(wanted);
    }
    let scanner = Scanner::new()
        .map_err(|e| Failure(format!("the shipped recognition rules are invalid: {e}")))?;
    let mut obs = Observations::default();
    for name in &args.inputs {
        super::explain::scan_input(&scanner, name, &mut obs)?;
    }
    let questions = diagnose::questions(
        &obs,
        &FetchedFacts::default(),
        args.controller_role.as_deref(),
    );
    match args.kind {
        Kind::Iam => wanted.extend(questions.principals),
        Kind::Kms => wanted.extend(questions.keys),
    }
    Ok(wanted)
}

fn snapshot_is_empty(snapshot: &serde_json::Value) -> bool {
    ["RoleDetailList", "Keys"]
        .iter()
        .all(|list| snapshot[list].as_array().is_none_or(Vec::is_empty))
}
