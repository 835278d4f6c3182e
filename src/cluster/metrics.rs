//! The controller's metrics (contract §6), with label values from fixed code lists only:
//! diagnoses by state, signals by source, AWS requests by outcome, reconcile timing and errors.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

pub struct Metrics {
    registry: Registry,
    pub diagnoses: IntGaugeVec,
    pub signals: IntCounterVec,
    pub aws_requests: IntCounterVec,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: IntCounterVec,
    /// 1 while this replica leads (always, without --leader-elect); an extension of §6.
    pub leader: prometheus::IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let diagnoses = IntGaugeVec::new(
            Opts::new(
                "karpenter_doctor_diagnoses",
                "Diagnoses by category, reason and state (active or resolved).",
            ),
            &["category", "reason", "state"],
        )
        .expect("valid metric");
        let signals = IntCounterVec::new(
            Opts::new(
                "karpenter_doctor_signals_total",
                "Failure signals recognised, by source and category.",
            ),
            &["source", "category"],
        )
        .expect("valid metric");
        let aws_requests = IntCounterVec::new(
            Opts::new(
                "karpenter_doctor_aws_requests_total",
                "AWS requests the doctor made, by service, operation and outcome.",
            ),
            &["service", "operation", "outcome"],
        )
        .expect("valid metric");
        let reconcile_duration = Histogram::with_opts(HistogramOpts::new(
            "karpenter_doctor_reconcile_duration_seconds",
            "Time from signals to Diagnoses written.",
        ))
        .expect("valid metric");
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "karpenter_doctor_reconcile_errors_total",
                "Reconcile errors, by kind.",
            ),
            &["error"],
        )
        .expect("valid metric");
        let leader = prometheus::IntGauge::new(
            "karpenter_doctor_leader",
            "Whether this replica writes Diagnoses (1) or waits for the Lease (0).",
        )
        .expect("valid metric");
        for c in [
            Box::new(leader.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(diagnoses.clone()),
            Box::new(signals.clone()),
            Box::new(aws_requests.clone()),
            Box::new(reconcile_duration.clone()),
            Box::new(reconcile_errors.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            diagnoses,
            signals,
            aws_requests,
            reconcile_duration,
            reconcile_errors,
            leader,
        }
    }

    /// The Prometheus text format of every metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
