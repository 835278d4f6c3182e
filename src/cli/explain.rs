//! `karpenter-doctor explain`: scan pasted logs and kubectl / AWS CLI output, load the fact
//! snapshots, diagnose, and print the report (text) or the Diagnosis list (json, yaml).

use super::{Failure, Output, report};
use crate::diagnose::{self, model::List};
use crate::signal::{Observations, Scanner};
use clap::Args;
use std::io::{IsTerminal, Read, Write};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Inputs: Karpenter logs, kubectl -o json|yaml, aws ec2 describe-instances output; none or
    /// `-` reads standard input.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub facts: super::fact_args::FactArgs,
    /// Look facts up in AWS with the default credential chain (snapshots, where given, win).
    #[arg(long)]
    pub live: bool,
    /// How to reach AWS, with --live.
    #[command(flatten)]
    pub aws: super::aws_args::AwsArgs,
    /// Print who the doctor is in AWS and what it asked, on standard error.
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: Output,
}

/// Inputs larger than this show progress on a terminal.
const PROGRESS_ABOVE: u64 = 64 << 20;

pub fn run(args: &ExplainArgs, out: &mut impl Write) -> Result<(), Failure> {
    let sources: Vec<Source<'_>> = if args.inputs.is_empty() {
        vec![Source::File("-")]
    } else {
        args.inputs.iter().map(|name| Source::File(name)).collect()
    };
    let found = findings(args, &sources)?;
    print(&found.items, &found.obs, args.output, out)
}

/// Where `explain` reads text from: a file (`-`: standard input), or text already in memory
/// (what an agent pastes through `karpenter-doctor mcp`), named for warnings.
pub enum Source<'a> {
    File(&'a str),
    Text { name: &'a str, text: &'a str },
}

/// What `explain` found: the Diagnoses (`-o json`/`yaml` print them as a `List`) and the
/// observations they came from (the text report counts them).
pub struct Found {
    pub items: Vec<diagnose::model::Diagnosis>,
    pub obs: Observations,
}

/// Scans `sources` with the fact options of `args` (snapshots, `--live`), and diagnoses.
/// Warnings go to standard error. The one function behind `explain` and the `mcp` tool.
pub fn findings(args: &ExplainArgs, sources: &[Source<'_>]) -> Result<Found, Failure> {
    let facts = args.facts.load()?;
    let scanner = Scanner::new()
        .map_err(|e| Failure(format!("the shipped recognition rules are invalid: {e}")))?;
    let mut obs = scan(&scanner, sources)?;
    let scanned = obs.warnings.len();
    let items = if args.live {
        let fetched = live_facts(args, &scanner, &mut obs)?;
        let overlay = crate::facts::Overlay {
            first: &facts,
            then: &fetched,
        };
        diagnose::diagnose(&obs, &overlay, args.facts.controller_role.as_deref())
    } else {
        diagnose::diagnose(&obs, &facts, args.facts.controller_role.as_deref())
    };
    // Only what the live lookups added (DescribeInstances) is new.
    warn(&obs.warnings[scanned..]);
    Ok(Found { items, obs })
}

/// The report (`text`) or the Diagnosis list (`json`, `yaml`) of `items`, found in `obs`.
pub fn print(
    items: &[diagnose::model::Diagnosis],
    obs: &Observations,
    output: Output,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let written = match output {
        Output::Json => serde_json::to_writer_pretty(&mut *out, &List::new(items.to_vec()))
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Output::Yaml => {
            let text = serde_norway::to_string(&List::new(items.to_vec()))
                .map_err(|e| Failure(format!("cannot render YAML: {e}")))?;
            out.write_all(text.as_bytes())
        }
        Output::Text => {
            let style = report::Style {
                colour: std::io::stdout().is_terminal(),
            };
            out.write_all(
                report::render(items, obs.signals.len(), obs.warnings.len(), style).as_bytes(),
            )
        }
    };
    super::finish(written)
}

/// Scans each source into one `Observations`; warnings go to standard error.
pub fn scan(scanner: &Scanner, sources: &[Source<'_>]) -> Result<Observations, Failure> {
    let mut obs = Observations::default();
    for source in sources {
        match source {
            Source::File(name) => scan_input(scanner, name, &mut obs)?,
            Source::Text { name, text } => scanner
                .scan(name, text.as_bytes(), &mut obs, &mut |_| {})
                .map_err(|e| Failure(format!("{name}: cannot read: {e}")))?,
        }
    }
    warn(&obs.warnings);
    Ok(obs)
}

/// Scans one input file (or standard input for `-`) into `obs`, with progress on a terminal.
pub fn scan_input(scanner: &Scanner, name: &str, obs: &mut Observations) -> Result<(), Failure> {
    let (reader, size): (Box<dyn Read>, u64) = if name == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file =
            std::fs::File::open(name).map_err(|e| Failure(format!("{name}: cannot open: {e}")))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), size)
    };
    let show = size > PROGRESS_ABOVE && std::io::stderr().is_terminal();
    let mut last = 0u64;
    let mut progress = |done: u64| {
        if show && done - last >= 16 << 20 {
            last = done;
            eprint!("\rscanning {name}: {} of {} MiB", done >> 20, size >> 20);
        }
    };
    scanner
        .scan(name, reader, obs, &mut progress)
        .map_err(|e| Failure(format!("{name}: cannot read: {e}")))?;
    if show {
        eprintln!("\rscanning {name}: done{}", " ".repeat(24));
    }
    Ok(())
}

/// Looks up what the observations need in AWS (one lookup per distinct question).
fn live_facts(
    args: &ExplainArgs,
    scanner: &Scanner,
    obs: &mut Observations,
) -> Result<crate::facts::fetched::FetchedFacts, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    let role = args.facts.controller_role.as_deref();
    Ok(runtime.block_on(gather_live(&args.aws, args.verbose, role, scanner, obs)))
}

/// The live lookups of `explain --live` and `check`: the default credential chain, one lookup
/// per distinct question; with `verbose`, who the doctor is in AWS and what it asked.
pub async fn gather_live(
    aws: &super::aws_args::AwsArgs,
    verbose: bool,
    role: Option<&str>,
    scanner: &Scanner,
    obs: &mut Observations,
) -> crate::facts::fetched::FetchedFacts {
    let live = crate::aws::live::Live::connect(&aws.options()).await;
    if verbose {
        match live.caller().await {
            Ok(arn) => eprintln!("karpenter-doctor: AWS caller {arn}"),
            Err(e) => eprintln!("karpenter-doctor: AWS caller unknown: {e}"),
        }
    }
    let facts = crate::aws::gather::gather(&live, scanner, obs, role).await;
    if verbose {
        for ((service, operation, outcome), n) in live.guard.counts() {
            eprintln!(
                "karpenter-doctor: aws {service}:{operation} {} x{n}",
                outcome.as_str()
            );
        }
    }
    facts
}

pub fn warn(warnings: &[crate::signal::Warning]) {
    for w in warnings {
        eprintln!(
            "karpenter-doctor: warning: {}:{}: {}",
            w.origin.file, w.origin.line, w.message
        );
    }
}
