//! The `karpenter-doctor` binary: parse the command line and run the command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    karpenter_doctor::cli::run(karpenter_doctor::cli::Cli::parse())
}
