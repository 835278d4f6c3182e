//! The `karpenter-doctor` binary: parse the command line and run the command.

fn main() -> std::process::ExitCode {
    karpenter_doctor::cli::run(karpenter_doctor::cli::parse())
}
