//! `karpenter-doctor controller`: watch NodeClaims, NodePools, EC2NodeClasses, Events,
//! Karpenter's ServiceAccount and logs into `cluster::index`; on each change that a diagnosis
//! reads (debounced) diagnose what can fail — log lines, failing objects, Events and the
//! NodeClaims they name — with the same pipeline as `explain`, and write one Diagnosis per root
//! cause.

use super::index::Index;
use super::logs::{self, LogBuffer};
use super::metrics::Metrics;
use super::preflight::Preflight;
use super::slim::Slim;
use super::writer::{Writer, Written, category_label};
use super::{http, leader, log, pods, resources};
use crate::aws::live::Live;
use crate::diagnose;
use crate::diagnose::lifecycle::{self, Verification};
use crate::facts::{Overlay, SnapshotFacts};
use crate::preflight::running::Given;
use crate::signal::{Observations, Scanner};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, BTreeSet};
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
    /// Diagnoses are re-checked with fresh AWS facts about this often (jittered ±10%).
    pub recheck_interval: Duration,
    /// Resolved Diagnoses are deleted after this long.
    pub retention: Duration,
    /// At most this many Diagnoses exist.
    pub max_diagnoses: usize,
    /// The namespace of the Lease, when replicas elect a leader.
    pub leader_election: Option<String>,
    pub aws: crate::aws::AwsOptions,
    pub snapshots: SnapshotFacts,
    /// Watch pending pods and Karpenter's nominations of them: count the pods each root cause
    /// blocks, and tell each pod, at most this many Events a second (0: count only).
    pub pending_pods: Option<f64>,
    /// Predict refusals this often (jittered ±10%) and when Karpenter's configuration
    /// changes (`preflight`); `None`: never.
    pub preflight_interval: Option<Duration>,
}

/// Everything one reconcile uses.
struct Context {
    settings: Settings,
    index: Arc<Mutex<Index>>,
    buffer: Arc<Mutex<LogBuffer>>,
    /// Karpenter's pods, as the log follower last listed them.
    pods: Arc<Mutex<Vec<Pod>>>,
    scanner: Arc<Scanner>,
    live: Live,
    metrics: Arc<Metrics>,
    /// Where the blocked pods to tell go (`pods`), when Events on pods are recorded.
    tell: Option<tokio::sync::watch::Sender<Vec<pods::Tell>>>,
}

/// Runs until SIGTERM or Ctrl-C (or, when electing, until leadership is lost: exit and restart).
pub async fn run(settings: Settings) -> Result<(), String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
    let notify = Arc::new(Notify::new());
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let scanner = Arc::new(Scanner::new().map_err(|e| format!("invalid recognition rules: {e}"))?);
    let index = Arc::new(Mutex::new(if settings.pending_pods.is_some() {
        Index::watching_pods()
    } else {
        Index::default()
    }));
    let watchers = watch(
        &client,
        &settings.karpenter_namespace,
        settings.pending_pods.is_some(),
        Watched {
            notify: notify.clone(),
            metrics: metrics.clone(),
            index: index.clone(),
            scanner: scanner.clone(),
        },
    )
    .await;
    for (serves, address) in [
        ("metrics", &settings.metrics_address),
        ("health probes", &settings.health_address),
    ] {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        // The bound address, not the asked one: with port 0 the kernel chooses it.
        if let Ok(bound) = listener.local_addr() {
            log::info(&format!("serving {serves} on {bound}"));
        }
        tokio::spawn(http::serve(listener, metrics.clone(), ready.clone()));
    }
    // Every watch wakes `notify` when its first list is whole.
    loop {
        let synced = index.lock().expect("index").synced();
        if synced {
            break;
        }
        notify.notified().await;
    }
    ready.store(true, Ordering::SeqCst);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let identity = leader::identity();
    let elector = settings
        .leader_election
        .as_deref()
        .map(|ns| leader::Elector::new(client.clone(), ns, identity.clone()));
    let mut lost = None;
    if let Some(elector) = &elector {
        log::info(&format!("caches synced; waiting to lead as {identity}"));
        tokio::select! {
            _ = &mut shutdown => return stop(None, &watchers, None).await,
            _ = lead(elector, &metrics) => {}
        }
        lost = Some(tokio::spawn(keep_leading(elector.clone(), metrics.clone())));
    }
    metrics.leader.set(1);
    log::info("caches synced; diagnosing");
    let mut writer = Writer::new(
        client.clone(),
        Some(identity.clone()),
        settings.max_diagnoses,
        metrics.clone(),
    );
    let resume = writer
        .resume_point()
        .await
        .map_err(|e| format!("cannot list Diagnoses: {e}"))?;
    let since = resume
        .as_deref()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t + Duration::from_secs(1));
    let buffer = Arc::new(Mutex::new(LogBuffer::default()));
    let pods = Arc::new(Mutex::new(Vec::new()));
    let follower = tokio::spawn(logs::follow(
        Api::<Pod>::namespaced(client.clone(), &settings.karpenter_namespace),
        settings.karpenter_selector.clone(),
        since,
        logs::Sink {
            buffer: buffer.clone(),
            notify: notify.clone(),
            scanner: scanner.clone(),
            metrics: metrics.clone(),
            pods: pods.clone(),
        },
    ));
    let teller = settings
        .pending_pods
        .filter(|per_second| *per_second > 0.0)
        .map(|per_second| {
            let reporter = kube::runtime::events::Reporter {
                controller: super::writer::FIELD_MANAGER.into(),
                instance: Some(identity.clone()),
            };
            pods::spawn(client.clone(), reporter, per_second, metrics.clone())
        });
    let (tell, teller) = teller.unzip();
    let cx = Context {
        tell,
        live: Live::connect(&settings.aws).await,
        scanner,
        settings,
        index,
        buffer,
        pods,
        metrics,
    };
    let mut counted = BTreeMap::new();
    let mut failures = 0u32;
    let mut next_recheck = Instant::now() + jittered(cx.settings.recheck_interval);
    let mut preflight = Preflight::new(cx.settings.preflight_interval);
    notify.notify_one();
    loop {
        let recheck = tokio::select! {
            _ = &mut shutdown => break,
            Some(Ok(why)) = async { match lost.as_mut() { Some(l) => Some(l.await), None => None } } => {
                follower.abort();
                return Err(format!("leadership lost: {why}"));
            }
            _ = notify.notified() => {
                tokio::time::sleep(cx.settings.debounce).await;
                false
            }
            _ = tokio::time::sleep_until(next_recheck.into()) => {
                next_recheck = Instant::now() + jittered(cx.settings.recheck_interval);
                cx.live.forget_answers();
                true
            }
            _ = tokio::time::sleep_until(preflight.due().into()) => false,
        };
        let started = Instant::now();
        match reconcile(&cx, &mut writer, &mut counted, recheck, &mut preflight).await {
            Ok(()) => failures = 0,
            Err(e) => {
                cx.metrics.reconcile_errors.with_label_values(&[e.0]).inc();
                log::error(&e.1);
                failures += 1;
                notify.notify_one();
                tokio::time::sleep(backoff(failures)).await;
            }
        }
        cx.metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
    }
    follower.abort();
    if let Some(teller) = teller {
        teller.abort();
    }
    stop(elector.as_ref(), &watchers, lost).await
}

/// The clean end: stop watching, give the Lease up.
async fn stop(
    elector: Option<&leader::Elector>,
    watchers: &[tokio::task::JoinHandle<()>],
    renewer: Option<tokio::task::JoinHandle<String>>,
) -> Result<(), String> {
    log::info("shutting down");
    watchers.iter().for_each(tokio::task::JoinHandle::abort);
    if let Some(renewer) = renewer {
        renewer.abort();
    }
    if let Some(elector) = elector
        && let Err(e) = elector.release().await
    {
        log::warn(&format!("releasing the Lease: {e}"));
    }
    Ok(())
}

/// Tries the Lease every retry period until this replica holds it.
async fn lead(elector: &leader::Elector, metrics: &Metrics) {
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => {
                log::info(&format!("leading as {}", elector.identity));
                return;
            }
            Ok(false) => {}
            Err(e) => {
                metrics.kube_error("leases", &e);
                log::warn(&format!("acquiring the Lease: {e}"));
            }
        }
        tokio::time::sleep(leader::RETRY_PERIOD).await;
    }
}

/// Renews the Lease every retry period; returns why, once it could not for the renew deadline.
async fn keep_leading(elector: leader::Elector, metrics: Arc<Metrics>) -> String {
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(leader::RETRY_PERIOD).await;
        match elector.try_acquire_or_renew().await {
            Ok(true) => last = Instant::now(),
            Ok(false) => return "another replica holds the Lease".into(),
            Err(e) => {
                metrics.kube_error("leases", &e);
                if last.elapsed() >= leader::RENEW_DEADLINE {
                    return format!("could not renew the Lease: {e}");
                }
                log::warn(&format!("renewing the Lease: {e}"));
            }
        }
    }
}

/// The pause before retrying after `failures` failed reconciles in a row: 1 s, doubling, at
/// most 256 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(8))
}

/// `interval` ±10%, so that replicas and restarts do not re-check in step.
pub(super) fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    interval.mul_f64(0.9 + 0.2 * f64::from(nanos % 1000) / 1000.0)
}

/// Starts a watch per resource, at the Karpenter versions the cluster serves, each feeding
/// the index (lists paged, 500 objects a page).
async fn watch(
    client: &kube::Client,
    namespace: &str,
    pending_pods: bool,
    to: Watched,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut versions = Vec::new();
    for group in [resources::KARPENTER_GROUP, resources::AWS_GROUP] {
        let served = match kube::discovery::group(client, group).await {
            Ok(g) => g.versions().map(str::to_string).collect(),
            Err(e) => {
                log::warn(&format!("discovering {group}: {e}"));
                Vec::new()
            }
        };
        let version = resources::karpenter_version(served.iter().map(String::as_str));
        log::info(&format!("watching {group}/{version}"));
        versions.push(version);
    }
    let slim = |ar: kube::api::ApiResource| {
        watcher(
            Api::<Slim>::all_with(client.clone(), &ar),
            watcher::Config::default(),
        )
        .modify(Slim::trim)
    };
    let mut pods = Vec::new();
    if pending_pods {
        // Only the pods waiting for a node (the API server filters), only their names; and
        // only the Events that nominate a pod, in every namespace (where the pods are).
        let waiting = watcher::Config::default().fields("status.phase=Pending,spec.nodeName=");
        pods.push(spawn(
            watcher(
                Api::<kube::core::PartialObjectMeta<Pod>>::all(client.clone()),
                waiting,
            ),
            to.clone(),
            "pods",
            |index, _, e| index.feed_pending(e),
        ));
        let nominated =
            watcher::Config::default().fields("involvedObject.kind=Pod,reason=Nominated");
        pods.push(spawn(
            watcher(Api::<CoreEvent>::all(client.clone()), nominated),
            to.clone(),
            "events",
            |index, _, e| index.feed_nomination(e),
        ));
    }
    let mut handles = vec![
        spawn(
            slim(resources::node_claims(versions[0])),
            to.clone(),
            "nodeclaims",
            |index, scanner, e| index.feed_claim(scanner, e),
        ),
        spawn(
            slim(resources::node_pools(versions[0])),
            to.clone(),
            "nodepools",
            |index, _, e| index.feed_pool(e),
        ),
        spawn(
            slim(resources::node_classes(versions[1])),
            to.clone(),
            "ec2nodeclasses",
            |index, _, e| index.feed_class(e),
        ),
        // Only where Karpenter records the Events of its cluster-scoped objects.
        spawn(
            watcher(
                Api::<Event>::namespaced(client.clone(), crate::signal::KARPENTER_EVENTS_NAMESPACE),
                watcher::Config::default(),
            ),
            to.clone(),
            "events",
            |index, scanner, e| index.feed_event(scanner, e),
        ),
        spawn(
            watcher(
                Api::<ServiceAccount>::namespaced(client.clone(), namespace),
                watcher::Config::default(),
            ),
            to,
            "serviceaccounts",
            |index, _, e| index.feed_account(e),
        ),
    ];
    handles.extend(pods);
    handles
}

/// What the watches feed and report to: the index, the wake-up on a change a diagnosis reads,
/// the count of their failures.
#[derive(Clone)]
struct Watched {
    notify: Arc<Notify>,
    metrics: Arc<Metrics>,
    index: Arc<Mutex<Index>>,
    scanner: Arc<Scanner>,
}

/// How one watch's events go into the index: whether what a diagnosis reads changed.
type Feed<K> = fn(&mut Index, &Scanner, watcher::Event<K>) -> bool;

/// Drives one watch of `resource` into the index, waking `notify` when what a diagnosis reads
/// changed; watch errors are counted and logged, then back off and re-list.
fn spawn<S, K>(
    stream: S,
    to: Watched,
    resource: &'static str,
    feed: Feed<K>,
) -> tokio::task::JoinHandle<()>
where
    S: futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    tokio::spawn(async move {
        let stream = stream.default_backoff();
        futures_util::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    let changed = feed(&mut to.index.lock().expect("index"), &to.scanner, event);
                    if changed {
                        to.notify.notify_one();
                    }
                }
                Err(e) => {
                    to.metrics.watch_error(resource, &e);
                    log::warn(&format!("watch {resource}: {e}"));
                }
            }
        }
    })
}

/// What tells one sighting of a failure from another: where, when, what (not the place in the
/// log buffer or the cache, which shifts as lines and objects come and go).
type Sighting = (
    crate::signal::Source,
    Option<String>,
    [Option<String>; 6],
    String,
    String,
);

fn sighting(s: &crate::signal::Signal) -> Sighting {
    (
        s.source,
        s.time.clone(),
        [
            s.node_claim.clone(),
            s.node_pool.clone(),
            s.node_class.clone(),
            s.instance_id.clone(),
            s.action.clone(),
            s.resource.clone(),
        ],
        s.rule.clone(),
        s.message.clone(),
    )
}

/// How long a sighting no longer present is remembered: one that comes back within it (an
/// instance whose lookup failed for a round) is not counted again.
const REMEMBERED: Duration = Duration::from_secs(3600);

/// The signals not sighted before, each sighting once; `counted` keeps when each sighting was
/// last present, for `REMEMBERED` (so it stays as small as an hour of failures).
fn newly_seen<'s>(
    counted: &mut BTreeMap<Sighting, Instant>,
    signals: &'s [crate::signal::Signal],
    now: Instant,
) -> Vec<&'s crate::signal::Signal> {
    let mut fresh = Vec::new();
    for s in signals {
        if counted.insert(sighting(s), now).is_none() {
            fresh.push(s);
        }
    }
    counted.retain(|_, last| now.duration_since(*last) < REMEMBERED);
    fresh
}

/// A reconcile failure: the `error` label value and the message.
type ReconcileError = (&'static str, String);

/// Diagnoses everything the caches and the log buffer hold and writes the Diagnoses; on a
/// re-check, also re-verifies the Diagnoses no current signal produced and applies retention.
async fn reconcile(
    cx: &Context,
    writer: &mut Writer,
    counted: &mut BTreeMap<Sighting, Instant>,
    recheck: bool,
    preflight: &mut Preflight,
) -> Result<(), ReconcileError> {
    let started = Instant::now();
    let mut obs = observe(cx);
    let (kept, failing) = cx.index.lock().expect("index").node_claims();
    let observed = started.elapsed();
    let role = cx.settings.controller_role.as_deref();
    let fetched = crate::aws::gather::gather(&cx.live, &cx.scanner, &mut obs, role).await;
    let gathered = started.elapsed();
    for s in newly_seen(counted, &obs.signals, Instant::now()) {
        cx.metrics
            .signals
            .with_label_values(&[source_label(s), category_label(s.category)])
            .inc();
    }
    let facts = Overlay {
        first: &cx.settings.snapshots,
        then: &fetched,
    };
    let items = diagnose::diagnose_counted(&obs, &facts, role, &|name| writer.counted_until(name));
    let diagnosed = started.elapsed();
    let now_ms = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let mut at_cap = 0;
    for d in &items {
        let verification =
            lifecycle::verify(&d.spec, Some(d.status.root_cause.reason), &facts, &obs);
        let ongoing = lifecycle::ongoing(&d.spec, &d.status.affected_node_claims, &obs);
        let stuck = lifecycle::stuck(&d.spec, &d.status.affected_node_claims, &verification, &obs);
        let written = writer
            .write(d, &verification, ongoing, &stuck, now_ms)
            .await
            .map_err(|e| {
                (
                    "write",
                    format!("writing Diagnosis {}: {e}", d.metadata.name),
                )
            })?;
        at_cap += usize::from(written == Written::AtCap);
    }
    let mut current: BTreeSet<String> = items.iter().map(|d| d.metadata.name.clone()).collect();
    at_cap += write_predicted(cx, writer, &obs, preflight, &mut current, now_ms).await?;
    log::debug(&format!(
        "reconciled {} signals from {} NodeClaims read of {kept} ({failing} failing) into {} Diagnoses: observed {} ms, facts {} ms, diagnosed {} ms, written {} ms",
        obs.signals.len(),
        obs.node_claims.len(),
        items.len(),
        observed.as_millis(),
        (gathered - observed).as_millis(),
        (diagnosed - gathered).as_millis(),
        (started.elapsed() - diagnosed).as_millis()
    ));
    if at_cap > 0 {
        log::warn(&format!(
            "{at_cap} new Diagnoses not created: {} already exist (--max-diagnoses)",
            cx.settings.max_diagnoses
        ));
    }
    if recheck {
        recheck_untouched(cx, writer, &current, &obs, preflight, now_ms).await?;
    }
    count_aws_requests(cx);
    cx.metrics.diagnoses.reset();
    for labels in writer.states() {
        cx.metrics.diagnoses.with_label_values(&labels).inc();
    }
    if let Some(tell) = &cx.tell {
        tell.send_replace(pods::tells(&items));
    }
    cx.metrics.blocked_pods.reset();
    for d in &items {
        for b in &d.blocked {
            let labels = [
                category_label(d.spec.category),
                d.status.root_cause.reason.as_str(),
                b.node_pool.as_deref().unwrap_or(""),
            ];
            cx.metrics.blocked_pods.with_label_values(&labels).inc();
        }
    }
    Ok(())
}

/// Runs the preflight when it is due or what it reads changed, then writes its predictions
/// when they changed, each unless a failure already diagnosed or seen holds its name. Every
/// prediction standing joins `current` (not re-checked as untouched); returns how many new
/// ones the cap left out.
async fn write_predicted(
    cx: &Context,
    writer: &mut Writer,
    obs: &Observations,
    preflight: &mut Preflight,
    current: &mut BTreeSet<String>,
    now_ms: i64,
) -> Result<usize, ReconcileError> {
    let pods = cx.pods.lock().expect("pods").clone();
    let given = Given {
        controller_role: cx.settings.controller_role.clone(),
        region: cx.settings.aws.region.clone().or(cx.live.region.clone()),
        cluster_name: cx.settings.aws.cluster_name.clone(),
        ..Given::default()
    };
    if let Err(e) = preflight
        .run_if_needed(&cx.live, &cx.settings.snapshots, obs, &pods, &given)
        .await
    {
        log::warn(&format!("preflight: {e}"));
    }
    let mut at_cap = 0;
    let unseen = Verification::Unknown("predicted: no failure seen yet".into());
    for d in preflight.predicted.iter().flatten() {
        let name = &d.metadata.name;
        if current.contains(name) || writer.seen(name) {
            continue;
        }
        current.insert(name.clone());
        if preflight.fresh {
            let written = writer
                .write(d, &unseen, false, &[], now_ms)
                .await
                .map_err(|e| ("write", format!("writing Diagnosis {name}: {e}")))?;
            at_cap += usize::from(written == Written::AtCap);
        }
    }
    preflight.fresh = false;
    Ok(at_cap)
}

/// Reads what can take part in a diagnosis (`Index::observe`): the log buffer, the failing
/// objects, the Events, the healthy NodeClaims they name, Karpenter's pods.
fn observe(cx: &Context) -> Observations {
    let pods = cx.pods.lock().expect("pods").clone();
    let buffer = cx.buffer.lock().expect("log buffer");
    cx.index.lock().expect("index").observe(
        &cx.scanner,
        buffer.lines.iter().map(|(_, l)| l.as_str()),
        &pods,
    )
}

/// Re-verifies, with fresh facts, the Diagnoses in the cluster that `current` does not hold,
/// then deletes the resolved ones past retention and those over the cap.
async fn recheck_untouched(
    cx: &Context,
    writer: &mut Writer,
    current: &BTreeSet<String>,
    obs: &Observations,
    preflight: &Preflight,
    now_ms: i64,
) -> Result<(), ReconcileError> {
    let stored = writer
        .list()
        .await
        .map_err(|e| ("list", format!("listing Diagnoses: {e}")))?;
    let untouched = stored.iter().filter(|s| !current.contains(s.name.as_str()));
    // Credentials re-checks need the cluster's issuer and Pod Identity associations afresh.
    let mut obs = obs.clone();
    let fetched = crate::aws::gather::gather_for_specs(
        &cx.live,
        untouched.filter_map(|s| s.spec.as_ref()),
        &mut obs,
    )
    .await;
    let facts = Overlay {
        first: &cx.settings.snapshots,
        then: &fetched,
    };
    let mut kept = Vec::new();
    for s in &stored {
        if current.contains(s.name.as_str()) {
            kept.push(s.kept());
            continue;
        }
        let verification = match &s.spec {
            Some(spec) => lifecycle::verify(spec, s.reason(), &facts, &obs),
            None => Verification::Unknown("the stored spec cannot be read".into()),
        };
        let verification = match predicted_now(s.predicted(), preflight, verification) {
            Some(v) => v,
            None => {
                kept.push(s.kept());
                continue;
            }
        };
        let now = writer
            .recheck(s, &verification, s.ongoing(&obs), now_ms)
            .await
            .map_err(|e| ("write", format!("re-checking Diagnosis {}: {e}", s.name)))?;
        kept.push(now);
    }
    let retention = i64::try_from(cx.settings.retention.as_millis()).unwrap_or(i64::MAX);
    for name in lifecycle::expired(&kept, now_ms, retention, cx.settings.max_diagnoses) {
        log::info(&format!("deleting resolved Diagnosis {name}"));
        writer
            .delete(&name)
            .await
            .map_err(|e| ("delete", format!("deleting Diagnosis {name}: {e}")))?;
    }
    Ok(())
}

/// How a re-check reads a stored prediction that the last preflight no longer makes: fixed
/// where the facts now allow it, else no longer predicted; left as it is (`None`) before a
/// preflight has run. Anything else as verified.
fn predicted_now(
    predicted: bool,
    preflight: &Preflight,
    verification: Verification,
) -> Option<Verification> {
    if !predicted || matches!(verification, Verification::Fixed(_)) {
        return Some(verification);
    }
    if !preflight.enabled() {
        return Some(Verification::NoLongerPredicted(
            "preflight is off (--preflight-interval 0)".into(),
        ));
    }
    preflight.predicted.as_ref()?;
    Some(Verification::NoLongerPredicted(
        "the last preflight no longer predicts this refusal: what the running Karpenter requests changed (its version, settings or EC2NodeClasses)".into(),
    ))
}

/// The AWS request counters follow the guard's totals.
fn count_aws_requests(cx: &Context) {
    for ((service, operation, outcome), n) in cx.live.guard.counts() {
        let counter =
            cx.metrics
                .aws_requests
                .with_label_values(&[service, operation, outcome.as_str()]);
        counter.inc_by(n.saturating_sub(counter.get()));
    }
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

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mock::answer;
    use ::http::{Request, Response};
    use kube::client::Body;

    #[test]
    fn each_sighting_is_counted_once_wherever_it_sits_in_the_buffer() {
        let mut obs = Observations::default();
        let line = |at: &str, claim: &str| {
            format!(
                r#"{{"level":"ERROR","time":"{at}","message":"Reconciler error","controller":"nodeclaim.lifecycle","NodeClaim":{{"name":"{claim}"}},"error":"launching nodeclaim, creating instance, UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/ctrl/1 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/node because no identity-based policy allows the iam:PassRole action."}}"#
            )
        };
        let scanner = Scanner::new().unwrap();
        let text = [
            line("2026-01-01T00:00:00Z", "a"),
            line("2026-01-01T00:00:01Z", "b"),
            line("2026-01-01T00:00:01Z", "b"),
        ]
        .join("\n");
        scanner
            .scan("logs", text.as_bytes(), &mut obs, &mut |_| {})
            .unwrap();
        assert_eq!(obs.signals.len(), 3);
        let t0 = Instant::now();
        let mut counted = BTreeMap::new();
        assert_eq!(
            newly_seen(&mut counted, &obs.signals, t0).len(),
            2,
            "a repeated line once"
        );
        assert!(newly_seen(&mut counted, &obs.signals, t0).is_empty());
        // The oldest line falls off the buffer: the others move up, and are not counted again.
        let mut moved = obs.signals[1..].to_vec();
        for (i, s) in moved.iter_mut().enumerate() {
            s.origin.line = i + 1;
        }
        let t1 = t0 + Duration::from_secs(60);
        assert!(newly_seen(&mut counted, &moved, t1).is_empty());
        // Missing for a round (a failed lookup), then back: still the same sighting.
        assert!(newly_seen(&mut counted, &[], t1).is_empty());
        assert!(newly_seen(&mut counted, &moved, t1 + Duration::from_secs(60)).is_empty());
        // A new failure is counted.
        let mut again = Observations::default();
        scanner
            .scan(
                "logs",
                line("2026-01-01T00:00:02Z", "b").as_bytes(),
                &mut again,
                &mut |_| {},
            )
            .unwrap();
        moved.extend(again.signals);
        let t2 = t1 + Duration::from_secs(120);
        assert_eq!(newly_seen(&mut counted, &moved, t2).len(), 1);
        // What has not been present for an hour is forgotten.
        assert_eq!(counted.len(), 3, "a, b at :01 and b at :02");
        assert!(newly_seen(&mut counted, &moved[2..], t2 + REMEMBERED).is_empty());
        assert_eq!(
            counted.len(),
            1,
            "only what was sighted within the hour is remembered"
        );
    }

    #[test]
    fn failed_reconciles_back_off_exponentially_up_to_256_seconds() {
        let secs: Vec<u64> = [1, 2, 3, 6, 9, 10, 40]
            .map(|n| backoff(n).as_secs())
            .to_vec();
        assert_eq!(secs, [1, 2, 4, 32, 256, 256, 256]);
        assert!(backoff(0) <= backoff(1));
    }

    #[tokio::test]
    async fn a_watch_that_expires_with_410_gone_lists_again() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let metrics = Arc::new(Metrics::new());
        let index = Arc::new(Mutex::new(Index::default()));
        let scanner = Arc::new(Scanner::new().unwrap());
        let task = spawn(
            watcher(
                Api::<ServiceAccount>::namespaced(client, "kube-system"),
                watcher::Config::default(),
            ),
            Watched {
                notify: Arc::new(Notify::new()),
                metrics: metrics.clone(),
                index: index.clone(),
                scanner: scanner.clone(),
            },
            "serviceaccounts",
            |index, _, e| index.feed_account(e),
        );
        let list = |rv: &str, names: &[&str]| {
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccountList", "metadata": {"resourceVersion": rv},
                "items": names.iter().map(|n| serde_json::json!({"metadata": {"name": n, "namespace": "kube-system"}})).collect::<Vec<_>>()})
        };
        let mut next = async || {
            let (request, send) = handle.next_request().await.expect("a request");
            (request.uri().to_string(), send)
        };
        let (uri, send) = next().await;
        assert!(!uri.contains("watch=true"), "first a list: {uri}");
        send.send_response(answer(200, list("10", &["karpenter"])));
        let (uri, send) = next().await;
        assert!(
            uri.contains("watch=true") && uri.contains("resourceVersion=10"),
            "{uri}"
        );
        send.send_response(answer(200, serde_json::json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "metadata": {}, "status": "Failure", "message": "too old resource version: 10 (50)", "reason": "Expired", "code": 410}})));
        let (uri, send) = next().await;
        assert!(!uri.contains("watch=true"), "410 Gone: list again: {uri}");
        send.send_response(answer(200, list("60", &["karpenter", "karpenter-2"])));
        let (uri, _send) = next().await;
        assert!(
            uri.contains("resourceVersion=60"),
            "then watch from the new list: {uri}"
        );
        // Both ServiceAccounts are Karpenter's, without IRSA's annotation: the second list's.
        let names = index
            .lock()
            .unwrap()
            .observe(&scanner, std::iter::empty(), &[])
            .unannotated_accounts;
        assert_eq!(names, ["kube-system/karpenter", "kube-system/karpenter-2"]);
        let counted =
            r#"karpenter_doctor_kube_errors_total{error="gone",resource="serviceaccounts"} 1"#;
        assert!(
            metrics.encode().lines().any(|l| l == counted),
            "{}",
            metrics.encode()
        );
        task.abort();
    }
}
