//! The controller's metrics (contract §6), with label values from fixed code lists only:
//! diagnoses by state and NodePool, pending pods blocked by NodePool, signals by source, AWS requests by outcome, reconcile timing and errors,
//! and the Kubernetes requests that failed, by resource and error (refused ones: forbidden).

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

pub struct Metrics {
    registry: Registry,
    pub diagnoses: IntGaugeVec,
    pub blocked_pods: IntGaugeVec,
    pub signals: IntCounterVec,
    pub aws_requests: IntCounterVec,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: IntCounterVec,
    /// Failed Kubernetes requests by resource and error; an extension of §6.
    kube_errors: IntCounterVec,
    /// 1 while this replica leads (always, without --leader-elect); an extension of §6.
    pub leader: prometheus::IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let diagnoses = IntGaugeVec::new(
            Opts::new(
                "karpenter_doctor_diagnoses",
                "Diagnoses by category, reason, state (active or resolved) and the NodePool whose launches failed (empty where none).",
            ),
            &["category", "reason", "state", "nodepool"],
        )
        .expect("valid metric");
        let blocked_pods = IntGaugeVec::new(
            Opts::new(
                "karpenter_doctor_blocked_pods",
                "Pending pods waiting on NodeClaims a root cause blocks, by category, reason and the NodeClaims' NodePool.",
            ),
            &["category", "reason", "nodepool"],
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
        let kube_errors = IntCounterVec::new(
            Opts::new(
                "karpenter_doctor_kube_errors_total",
                "Kubernetes requests of the doctor's that failed, by resource and error.",
            ),
            &["resource", "error"],
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
            Box::new(blocked_pods.clone()),
            Box::new(signals.clone()),
            Box::new(aws_requests.clone()),
            Box::new(reconcile_duration.clone()),
            Box::new(reconcile_errors.clone()),
            Box::new(kube_errors.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            diagnoses,
            blocked_pods,
            signals,
            aws_requests,
            reconcile_duration,
            reconcile_errors,
            kube_errors,
            leader,
        }
    }

    /// Counts a failed request on `resource` (one of the fixed names the callers use:
    /// `nodeclaims`, `pods/log`, `leases`, …).
    pub fn kube_error(&self, resource: &'static str, e: &kube::Error) {
        self.kube_errors
            .with_label_values(&[resource, kube_error_kind(e)])
            .inc();
    }

    /// Counts a failed list or watch on `resource`.
    pub fn watch_error(&self, resource: &'static str, e: &kube::runtime::watcher::Error) {
        use kube::runtime::watcher::Error as W;
        let kind = match e {
            W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => {
                kube_error_kind(e)
            }
            W::WatchError(status) => status_kind(status.code),
            W::NoResourceVersion => "other",
        };
        self.kube_errors.with_label_values(&[resource, kind]).inc();
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
/// The `error` label of a failed Kubernetes request: its HTTP status by name, `connection`
/// when no answer came.
fn kube_error_kind(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(status) => status_kind(status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => "connection",
        _ => "other",
    }
}

fn status_kind(code: u16) -> &'static str {
    match code {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        410 => "gone",
        429 => "throttled",
        500..=599 => "server_error",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;
    use kube::core::Status;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            Status::failure("refused", "Forbidden").with_code(code),
        ))
    }

    #[test]
    fn failed_kubernetes_requests_are_counted_by_resource_and_status_name() {
        let m = Metrics::new();
        m.kube_error("pods/log", &api_error(403));
        m.kube_error("pods/log", &api_error(403));
        m.kube_error("leases", &api_error(409));
        m.watch_error(
            "nodeclaims",
            &kube::runtime::watcher::Error::InitialListFailed(api_error(403)),
        );
        m.watch_error(
            "events",
            &kube::runtime::watcher::Error::WatchError(Box::new(
                Status::failure("too old", "Expired").with_code(410),
            )),
        );
        m.watch_error("events", &kube::runtime::watcher::Error::NoResourceVersion);
        m.kube_error("pods", &api_error(503));
        let text = m.encode();
        for line in [
            r#"karpenter_doctor_kube_errors_total{error="forbidden",resource="pods/log"} 2"#,
            r#"karpenter_doctor_kube_errors_total{error="conflict",resource="leases"} 1"#,
            r#"karpenter_doctor_kube_errors_total{error="forbidden",resource="nodeclaims"} 1"#,
            r#"karpenter_doctor_kube_errors_total{error="gone",resource="events"} 1"#,
            r#"karpenter_doctor_kube_errors_total{error="other",resource="events"} 1"#,
            r#"karpenter_doctor_kube_errors_total{error="server_error",resource="pods"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
