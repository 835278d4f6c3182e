//! `karpenter-doctor controller`: watch NodeClaims, EC2NodeClasses, Events, Karpenter's
//! ServiceAccount and logs; on each change (debounced) diagnose everything seen with the same
//! pipeline as `explain`, and write one Diagnosis per root cause.

use super::logs::{self, LogBuffer};
use super::metrics::Metrics;
use super::writer::Writer;
use super::{http, log, resources};
use crate::aws::live::Live;
use crate::diagnose::{self, lifecycle};
use crate::facts::{Overlay, SnapshotFacts};
use crate::signal::{Observations, Scanner};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What the controller needs to run.
pub struct Settings {
    pub karpenter_namespace: String,
    pub karpenter_selector: String,
    pub controller_role: Option<String>,
    pub metrics_address: String,
    pub health_address: String,
    /// Quiet time after a change before diagnosing (changes come in bursts).
    pub debounce: Duration,
    pub aws: crate::aws::AwsOptions,
    pub snapshots: SnapshotFacts,
}

/// The caches the controller diagnoses from.
struct Stores {
    node_claims: Store<DynamicObject>,
    node_classes: Store<DynamicObject>,
    events: Store<Event>,
    accounts: Store<ServiceAccount>,
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(settings: Settings) -> Result<(), String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
    let notify = Arc::new(Notify::new());
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let (stores, watchers) = watch(&client, &settings.karpenter_namespace, notify.clone());
    for address in [&settings.metrics_address, &settings.health_address] {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        tokio::spawn(http::serve(listener, metrics.clone(), ready.clone()));
    }
    let mut writer = Writer::new(client.clone());
    let resume = writer
        .resume_point()
        .await
        .map_err(|e| format!("cannot list Diagnoses: {e}"))?;
    let since = resume
        .as_deref()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t + Duration::from_secs(1));
    let buffer = Arc::new(Mutex::new(LogBuffer::default()));
    let follower = tokio::spawn(logs::follow(
        Api::<Pod>::namespaced(client.clone(), &settings.karpenter_namespace),
        settings.karpenter_selector.clone(),
        since,
        buffer.clone(),
        notify.clone(),
    ));
    let (a, b, c, d) = (
        stores.node_claims.wait_until_ready(),
        stores.node_classes.wait_until_ready(),
        stores.events.wait_until_ready(),
        stores.accounts.wait_until_ready(),
    );
    let _ = tokio::join!(a, b, c, d);
    ready.store(true, Ordering::SeqCst);
    log::info("caches synced; diagnosing");
    let live = Live::connect(&settings.aws).await;
    let scanner = Scanner::new().map_err(|e| format!("invalid recognition rules: {e}"))?;
    let mut counted = BTreeSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = notify.notified() => {}
        }
        tokio::time::sleep(settings.debounce).await;
        let started = Instant::now();
        if let Err(e) = reconcile(
            &settings,
            &stores,
            &buffer,
            &scanner,
            &live,
            &mut writer,
            &metrics,
            &mut counted,
        )
        .await
        {
            metrics.reconcile_errors.with_label_values(&[e.0]).inc();
            log::error(&e.1);
            notify.notify_one();
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
    }
    log::info("shutting down");
    follower.abort();
    watchers.iter().for_each(tokio::task::JoinHandle::abort);
    Ok(())
}

/// Starts a reflector per resource; every change wakes `notify`.
fn watch(
    client: &kube::Client,
    namespace: &str,
    notify: Arc<Notify>,
) -> (Stores, Vec<tokio::task::JoinHandle<()>>) {
    let mut tasks = Vec::new();
    let dynamic = |ar: kube::api::ApiResource, tasks: &mut Vec<_>| {
        let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
        let w = reflector::store::Writer::new(ar);
        let store = w.as_reader();
        tasks.push(spawn(
            reflector::reflector(w, watcher(api, watcher::Config::default())),
            notify.clone(),
        ));
        store
    };
    let node_claims = dynamic(resources::node_claims(), &mut tasks);
    let node_classes = dynamic(resources::node_classes(), &mut tasks);
    let (events, w) = reflector::store();
    tasks.push(spawn(
        reflector::reflector(
            w,
            watcher(
                Api::<Event>::all(client.clone()),
                watcher::Config::default(),
            ),
        ),
        notify.clone(),
    ));
    let (accounts, w) = reflector::store();
    tasks.push(spawn(
        reflector::reflector(
            w,
            watcher(
                Api::<ServiceAccount>::namespaced(client.clone(), namespace),
                watcher::Config::default(),
            ),
        ),
        notify,
    ));
    (
        Stores {
            node_claims,
            node_classes,
            events,
            accounts,
        },
        tasks,
    )
}

/// Drives one reflector, waking `notify` on every change; watch errors back off and re-list.
fn spawn<S, K>(stream: S, notify: Arc<Notify>) -> tokio::task::JoinHandle<()>
where
    S: futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    tokio::spawn(async move {
        let stream = stream.default_backoff();
        futures_util::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => notify.notify_one(),
                Err(e) => log::warn(&format!("watch: {e}")),
            }
        }
    })
}

/// A reconcile failure: the `error` label value and the message.
type ReconcileError = (&'static str, String);

/// Diagnoses everything the caches and the log buffer hold, and writes the Diagnoses.
#[allow(clippy::too_many_arguments)]
async fn reconcile(
    settings: &Settings,
    stores: &Stores,
    buffer: &Mutex<LogBuffer>,
    scanner: &Scanner,
    live: &Live,
    writer: &mut Writer,
    metrics: &Metrics,
    counted: &mut BTreeSet<(String, usize)>,
) -> Result<(), ReconcileError> {
    let mut obs = Observations::default();
    let log_text: String = {
        let buffer = buffer.lock().expect("log buffer");
        buffer.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    };
    let _ = scanner.scan("karpenter-logs", log_text.as_bytes(), &mut obs, &mut |_| {});
    let objects = stores
        .node_claims
        .state()
        .iter()
        .map(|o| ("nodeclaim", serde_json::to_vec(&**o)))
        .chain(
            stores
                .node_classes
                .state()
                .iter()
                .map(|o| ("ec2nodeclass", serde_json::to_vec(&**o))),
        )
        .chain(stores.events.state().iter().map(|o| {
            (
                "event",
                serde_json::to_vec(&with_kind(&**o, "events.k8s.io/v1", "Event")),
            )
        }))
        .chain(stores.accounts.state().iter().map(|o| {
            (
                "serviceaccount",
                serde_json::to_vec(&with_kind(&**o, "v1", "ServiceAccount")),
            )
        }))
        .collect::<Vec<_>>();
    for (i, (kind, bytes)) in objects.into_iter().enumerate() {
        let bytes = bytes.map_err(|e| ("serialize", e.to_string()))?;
        let _ = scanner.scan(
            &format!("{kind}#{i}"),
            bytes.as_slice(),
            &mut obs,
            &mut |_| {},
        );
    }
    for s in &obs.signals {
        if counted.insert((s.origin.file.clone(), s.origin.line)) {
            metrics
                .signals
                .with_label_values(&[source_label(s), category_label(s.category)])
                .inc();
        }
    }
    let fetched =
        crate::aws::gather::gather(live, scanner, &mut obs, settings.controller_role.as_deref())
            .await;
    for ((service, operation, outcome), n) in live.guard.counts() {
        let counter =
            metrics
                .aws_requests
                .with_label_values(&[service, operation, outcome.as_str()]);
        counter.inc_by(n.saturating_sub(counter.get()));
    }
    let facts = Overlay {
        first: &settings.snapshots,
        then: &fetched,
    };
    let items = diagnose::diagnose(&obs, &facts, settings.controller_role.as_deref());
    let now_ms = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    metrics.diagnoses.reset();
    for d in &items {
        let verification = lifecycle::verify(&d.spec, &facts);
        let conditions = writer.write(d, &verification, now_ms).await.map_err(|e| {
            (
                "write",
                format!("writing Diagnosis {}: {e}", d.metadata.name),
            )
        })?;
        let resolved = conditions
            .iter()
            .any(|c| c.type_ == "Resolved" && c.status == "True");
        metrics
            .diagnoses
            .with_label_values(&[
                category_label(d.spec.category),
                d.status.root_cause.reason.as_str(),
                if resolved { "resolved" } else { "active" },
            ])
            .inc();
    }
    Ok(())
}

/// Typed objects serialize without apiVersion and kind; the scanner recognises by them.
fn with_kind<T: serde::Serialize>(obj: &T, api_version: &str, kind: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(obj).unwrap_or_default();
    v["apiVersion"] = serde_json::json!(api_version);
    v["kind"] = serde_json::json!(kind);
    v
}

fn source_label(s: &crate::signal::Signal) -> &'static str {
    use crate::signal::Source;
    match s.source {
        Source::Log => "log",
        Source::Event => "event",
        Source::NodeClaim => "nodeclaim",
        Source::NodeClass => "nodeclass",
        Source::Instance => "instance",
    }
}

fn category_label(c: crate::signal::Category) -> &'static str {
    use crate::signal::Category;
    match c {
        Category::PassRoleDenied => "PassRoleDenied",
        Category::ActionDenied => "ActionDenied",
        Category::KmsKeyUnusable => "KmsKeyUnusable",
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
