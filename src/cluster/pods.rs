//! The Events the controller records on the pending pods a root cause blocks: once per pod and
//! cause, at most a given number a second (Karpenter's own budget for its Events on pods is 5 a
//! second), in the background, so that a reconcile never waits on them and a backlog of
//! thousands of pods drains at the budget's pace.

use super::metrics::Metrics;
use crate::diagnose::model::Diagnosis;
use crate::signal::PodRef;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The reason of the doctor's Events on blocked pods.
pub const REASON: &str = "NodeLaunchBlocked";

/// One pod to tell, of the root cause (Diagnosis) that blocks it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tell {
    pub pod: PodRef,
    pub diagnosis: String,
    pub note: String,
}

/// What every active Diagnosis's blocked pods are to be told, in order.
pub fn tells(items: &[Diagnosis]) -> Vec<Tell> {
    items
        .iter()
        .flat_map(|d| {
            let note = crate::diagnose::pods::note(d);
            d.blocked.iter().map(move |b| Tell {
                pod: b.pod.clone(),
                diagnosis: d.metadata.name.clone(),
                note: note.clone(),
            })
        })
        .collect()
}

/// Starts the teller: send it the current `tells` after each reconcile.
pub fn spawn(
    client: kube::Client,
    reporter: Reporter,
    per_second: f64,
    metrics: Arc<Metrics>,
) -> (watch::Sender<Vec<Tell>>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Vec::new());
    let recorder = Recorder::new(client, reporter);
    let pause = Duration::from_secs_f64(1.0 / per_second);
    (tx, tokio::spawn(run(rx, recorder, pause, metrics)))
}

/// Tells each wanted (pod, cause) not told yet, one every `pause`; forgets the ones no longer
/// wanted (the pod was scheduled, the cause resolved), so the set stays as large as the backlog.
async fn run(
    mut wanted: watch::Receiver<Vec<Tell>>,
    recorder: Recorder,
    pause: Duration,
    metrics: Arc<Metrics>,
) {
    let mut told: HashSet<(PodRef, String)> = HashSet::new();
    loop {
        let now: Vec<Tell> = wanted.borrow_and_update().clone();
        let keys: HashSet<(PodRef, String)> = now
            .iter()
            .map(|t| (t.pod.clone(), t.diagnosis.clone()))
            .collect();
        told.retain(|k| keys.contains(k));
        for t in &now {
            if wanted.has_changed().unwrap_or(true) {
                break;
            }
            if !told.insert((t.pod.clone(), t.diagnosis.clone())) {
                continue;
            }
            publish(&recorder, t, &metrics).await;
            tokio::time::sleep(pause).await;
        }
        if !wanted.has_changed().unwrap_or(false) && wanted.changed().await.is_err() {
            return;
        }
    }
}

async fn publish(recorder: &Recorder, t: &Tell, metrics: &Metrics) {
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(t.pod.namespace.clone()),
        name: Some(t.pod.name.clone()),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: REASON.into(),
        note: Some(t.note.clone()),
        action: "Diagnose".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &reference).await {
        metrics.kube_error("events", &e);
        super::log::warn(&format!(
            "recording an Event on pod {}/{}: {e}",
            t.pod.namespace, t.pod.name
        ));
    }
}
