//! `check --pod`'s read of one pod: the pod and the Events about it, in its namespace (where
//! Karpenter records its nomination and the scheduler why it cannot place the pod), and what
//! they tell (`diagnose::pods::PodState`).

use crate::diagnose::pods::PodState;
use crate::signal::{KARPENTER_REPORTER, Observations, PodRef, Scanner};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};

/// One pod and the Events about it.
pub struct PodReading {
    pub pod: Pod,
    pub events: Vec<Event>,
}

/// Reads `namespace/name` and its Events; an error when the pod cannot be read.
pub async fn read(client: &kube::Client, pod: &PodRef) -> Result<PodReading, String> {
    let (namespace, name) = (pod.namespace.as_str(), pod.name.as_str());
    let read = Api::<Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| format!("cannot read pod {namespace}/{name}: {e}"))?;
    let about = ListParams::default().fields(&format!(
        "involvedObject.kind=Pod,involvedObject.name={name}"
    ));
    let events = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&about)
        .await
        .map_err(|e| format!("cannot read the Events of pod {namespace}/{name}: {e}"))?
        .items;
    Ok(PodReading { pod: read, events })
}

impl PodReading {
    /// Reads the pod's Events into `obs` (Karpenter's nominations of it; a failure one of them
    /// tells is another reporter's text, `signal::event_author`) and, when it waits for a node,
    /// the pod as the one pending pod.
    pub fn observe(&self, scanner: &Scanner, obs: &mut Observations) {
        let events = self
            .events
            .iter()
            .map(|e| super::observe::kinded(e, "Event"));
        scanner.read_objects("pod events", events, obs);
        if let Some(pod) = self.pod_ref() {
            let pending = self.state(&pod).pending();
            if pending {
                obs.pending_pods.get_or_insert_default().push(pod);
            }
        }
    }

    fn pod_ref(&self) -> Option<PodRef> {
        Some(PodRef {
            namespace: self.pod.metadata.namespace.clone()?,
            name: self.pod.metadata.name.clone()?,
        })
    }

    /// What the pod and its Events say; `pod` names it; the nomination is the one `obs` holds
    /// last for it (`nominated`).
    pub fn state<'a>(&'a self, pod: &'a PodRef) -> PodState<'a> {
        let phase = self.pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let node = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty());
        PodState {
            namespace: &pod.namespace,
            name: &pod.name,
            phase,
            node,
            nominated: None,
            unschedulable: self.unschedulable(),
        }
    }

    /// The latest `FailedScheduling` Event's (message, reporter): Karpenter's, else any.
    fn unschedulable(&self) -> Option<(&str, &str)> {
        fn by(e: &Event) -> &str {
            reporter(e).unwrap_or("no component")
        }
        let failed: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
            .collect();
        let latest = |karpenter: bool| {
            failed
                .iter()
                .filter(|e| !karpenter || by(e) == KARPENTER_REPORTER)
                .max_by_key(|e| last_time(e))
                .copied()
        };
        let e = latest(true).or_else(|| latest(false))?;
        Some((e.message.as_deref().unwrap_or(""), by(e)))
    }
}

/// The component that reported a core/v1 Event: its first non-empty reporting field.
pub fn reporter(e: &Event) -> Option<&str> {
    [
        e.reporting_component.as_deref(),
        e.source.as_ref().and_then(|s| s.component.as_deref()),
    ]
    .into_iter()
    .flatten()
    .find(|r| !r.is_empty())
}

/// When a core/v1 Event last happened, where it says.
pub fn last_time(e: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    [
        e.last_timestamp.as_ref().map(|t| t.0),
        e.event_time.as_ref().map(|t| t.0),
        e.metadata.creation_timestamp.as_ref().map(|t| t.0),
    ]
    .into_iter()
    .flatten()
    .next()
}
