//! The Events the controller records on the pending pods a root cause blocks: once per pod and
//! cause, at most a given number a second (Karpenter's own budget for its Events on pods is 5 a
//! second), in the background, so that a reconcile never waits on them and a backlog of
//! thousands of pods drains at the budget's pace. Each Event names its Diagnosis (`related`), and
//! a teller that starts reads the Events still in the cluster, so a restart tells no pod twice.

use super::metrics::Metrics;
use crate::diagnose::model::Diagnosis;
use crate::signal::PodRef;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use kube::api::{Api, ListParams};
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
    let events: Api<CoreEvent> = Api::all(client.clone());
    let told = already_told(events, reporter.controller.clone());
    let recorder = Recorder::new(client, reporter);
    let pause = Duration::from_secs_f64(1.0 / per_second);
    let teller = async move { run(told.await, rx, recorder, pause, metrics).await };
    (tx, tokio::spawn(teller))
}

/// The (pod, Diagnosis) pairs told before, as the Events of `controller` the cluster still
/// holds say. Anyone who can write Events in a namespace can only hold back the doctor's
/// Events on that namespace's pods.
async fn already_told(events: Api<CoreEvent>, controller: String) -> HashSet<(PodRef, String)> {
    let fields = format!("reason={REASON},reportingComponent={controller}");
    match super::resources::list_all(&events, ListParams::default().fields(&fields)).await {
        Ok(events) => events.iter().filter_map(told_of).collect(),
        Err(e) => {
            super::log::warn(&format!("reading the Events told before: {e}"));
            HashSet::new()
        }
    }
}

/// The pod an Event of the teller regards, and the Diagnosis it names.
fn told_of(e: &CoreEvent) -> Option<(PodRef, String)> {
    let pod = &e.involved_object;
    let diagnosis = e.related.as_ref()?;
    (pod.kind.as_deref() == Some("Pod")
        && diagnosis.kind.as_deref() == Some(crate::diagnose::model::KIND))
    .then_some(())?;
    let pod = PodRef {
        namespace: pod.namespace.clone()?,
        name: pod.name.clone()?,
    };
    Some((pod, diagnosis.name.clone()?))
}

/// Tells each wanted (pod, cause) not `told` yet, one every `pause`, from the first reconcile's
/// on; forgets the ones no longer wanted (the pod was scheduled, the cause resolved), so the set
/// stays as large as the backlog.
async fn run(
    mut told: HashSet<(PodRef, String)>,
    mut wanted: watch::Receiver<Vec<Tell>>,
    recorder: Recorder,
    pause: Duration,
    metrics: Arc<Metrics>,
) {
    if wanted.changed().await.is_err() {
        return;
    }
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
        secondary: Some(ObjectReference {
            api_version: Some(crate::diagnose::model::API_VERSION.into()),
            kind: Some(crate::diagnose::model::KIND.into()),
            name: Some(t.diagnosis.clone()),
            ..Default::default()
        }),
    };
    if let Err(e) = recorder.publish(&event, &reference).await {
        metrics.kube_error("events", &e);
        super::log::warn(&format!(
            "recording an Event on pod {}/{}: {e}",
            t.pod.namespace, t.pod.name
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The doctor's Event on a pod as the core/v1 API serves it (recorded through
    /// events.k8s.io/v1, `related` naming the Diagnosis).
    fn served(kind: &str, related: serde_json::Value) -> CoreEvent {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web-1.1", "namespace": "team-a"},
            "involvedObject": {"apiVersion": "v1", "kind": kind, "namespace": "team-a", "name": "web-1"},
            "related": related, "reason": REASON, "reportingComponent": "karpenter-doctor",
            "message": "no node can launch for this pod: …"}))
        .unwrap()
    }

    #[test]
    fn an_event_told_before_names_its_pod_and_diagnosis() {
        let diagnosis = json!({"apiVersion": "karpenter-doctor.io/v1alpha1", "kind": "Diagnosis",
            "name": "pass-role-denied-1a2b"});
        let pod = PodRef {
            namespace: "team-a".into(),
            name: "web-1".into(),
        };
        assert_eq!(
            told_of(&served("Pod", diagnosis.clone())),
            Some((pod, "pass-role-denied-1a2b".into()))
        );
        assert_eq!(told_of(&served("Pod", json!(null))), None, "no Diagnosis");
        let other = json!({"kind": "Node", "name": "pass-role-denied-1a2b"});
        assert_eq!(told_of(&served("Pod", other)), None, "not a Diagnosis");
        assert_eq!(told_of(&served("Node", diagnosis)), None, "not a pod");
    }
}
