//! `karpenter-doctor controller`: the options of contract §1, turned into the controller's
//! settings; the snapshots load as for `explain`, live AWS lookups fill in the rest.

use super::Failure;
use super::aws_args::AwsArgs;
use crate::cluster::controller::{self, Settings};
use clap::Args;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Snapshots replace live lookups for what they hold.
    #[command(flatten)]
    pub facts: super::fact_args::FactArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Where `/metrics` is served.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub metrics_bind_address: String,
    /// Where `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "0.0.0.0:8081", value_name = "ADDR")]
    pub health_probe_bind_address: String,
    /// Elect one active replica with a coordination.k8s.io/v1 Lease.
    #[arg(long)]
    pub leader_elect: bool,
    /// The Lease's namespace [default: $POD_NAMESPACE, else the Karpenter namespace].
    #[arg(long, value_name = "NS")]
    pub leader_election_namespace: Option<String>,
    /// Re-check Diagnoses with fresh AWS facts this often (±10% jitter), in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub recheck_interval_seconds: u64,
    /// Delete Diagnoses that have been resolved for this long, in hours.
    #[arg(long, default_value_t = 168, value_name = "HOURS")]
    pub resolved_retention_hours: u64,
    /// Keep at most this many Diagnoses.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_diagnoses: usize,
    #[command(flatten)]
    pub karpenter: super::karpenter_args::KarpenterArgs,
    /// Quiet time after a change before diagnosing, in milliseconds.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub debounce_ms: u64,
    /// Watch pending pods and Karpenter's nominations of them (in every namespace): count the
    /// pods each root cause blocks, and record one Event on each.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub pending_pods: bool,
    /// At most this many Events a second on blocked pods (Karpenter's own pod-event budget);
    /// 0: count the pods, record no Event.
    #[arg(long, default_value_t = 5.0, value_name = "N")]
    pub pod_events_per_second: f64,
    /// Predict the refusals Karpenter's next requests will meet this often (±10% jitter) and
    /// whenever its EC2NodeClasses, NodePools, ServiceAccount or pods change, and write them as
    /// `Predicted` Diagnoses: 90s, 30m, 1h, 1d; 0: never.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_interval)]
    pub preflight_interval: Duration,
    /// error, warn, info or debug.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
}

impl ControllerArgs {
    /// How often the preflight runs; `None`: never (`--preflight-interval 0`).
    fn preflight(&self) -> Option<Duration> {
        (!self.preflight_interval.is_zero()).then_some(self.preflight_interval)
    }
}

/// `--preflight-interval`: a duration, or `0` (zero: never).
fn parse_interval(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    super::check::parse_duration(text)
}

pub fn run(args: &ControllerArgs) -> Result<(), Failure> {
    crate::cluster::log::set_level(&args.log_level).map_err(Failure)?;
    if args.recheck_interval_seconds == 0 {
        return Err(Failure(
            "--recheck-interval-seconds must be at least 1".into(),
        ));
    }
    if !(args.pod_events_per_second.is_finite() && args.pod_events_per_second >= 0.0) {
        return Err(Failure(
            "--pod-events-per-second must be a number of at least 0".into(),
        ));
    }
    let snapshots = args.facts.load()?;
    let settings = Settings {
        karpenter_namespace: args.karpenter.namespace.clone(),
        karpenter_selector: args.karpenter.selector.clone(),
        controller_role: args.facts.controller_role.clone(),
        metrics_address: args.metrics_bind_address.clone(),
        health_address: args.health_probe_bind_address.clone(),
        debounce: Duration::from_millis(args.debounce_ms),
        recheck_interval: Duration::from_secs(args.recheck_interval_seconds),
        retention: Duration::from_secs(args.resolved_retention_hours.saturating_mul(3600)),
        max_diagnoses: args.max_diagnoses,
        leader_election: args.leader_elect.then(|| {
            args.leader_election_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| args.karpenter.namespace.clone())
        }),
        aws: args.aws.options(),
        snapshots,
        pending_pods: args.pending_pods.then_some(args.pod_events_per_second),
        preflight_interval: args.preflight(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(controller::run(settings)).map_err(Failure)
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use std::time::Duration;

    fn interval(args: &[&str]) -> Result<Option<Duration>, String> {
        let argv = [&["karpenter-doctor", "controller"], args].concat();
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Controller(c) => {
                Ok((!c.preflight_interval.is_zero()).then_some(c.preflight_interval))
            }
            _ => unreachable!("controller parses as controller"),
        }
    }

    #[test]
    fn the_preflight_runs_hourly_unless_told_otherwise_or_never() {
        assert_eq!(interval(&[]), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(
            interval(&["--preflight-interval", "90s"]),
            Ok(Some(Duration::from_secs(90)))
        );
        assert_eq!(interval(&["--preflight-interval", "0"]), Ok(None));
        let bad = interval(&["--preflight-interval", "soon"]).unwrap_err();
        assert!(bad.contains("expected a duration"), "{bad}");
    }
}
