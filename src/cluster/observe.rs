//! The one way Karpenter's objects and log lines become `Observations`, for the controller's
//! caches and `check`'s single read alike: Events are kept only when they regard Karpenter.

use super::resources;
use super::slim::Slim;
use crate::signal::{Observations, Scanner};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;

/// What was read of the cluster, borrowed from wherever it is kept.
pub struct Objects<'a> {
    pub node_claims: Vec<&'a Slim>,
    pub node_pools: Vec<&'a Slim>,
    pub node_classes: Vec<&'a Slim>,
    pub events: Vec<&'a Event>,
    pub accounts: Vec<&'a ServiceAccount>,
    /// Karpenter's pods (the selector's).
    pub pods: Vec<&'a Pod>,
}

/// Scans the kept log lines (oldest first) and reads every object into observations.
pub fn observe<'a>(
    scanner: &Scanner,
    log_lines: impl Iterator<Item = &'a str>,
    objects: &Objects,
) -> Observations {
    let mut obs = Observations::default();
    let log_text: String = log_lines.map(|l| format!("{l}\n")).collect();
    if !log_text.is_empty() {
        let _ = scanner.scan("karpenter-logs", log_text.as_bytes(), &mut obs, &mut |_| {});
    }
    let slim = |list: &[&Slim], kind: &'static str| {
        list.iter()
            .map(move |o| kinded(*o, kind))
            .collect::<Vec<_>>()
    };
    let all = slim(&objects.node_claims, "NodeClaim")
        .into_iter()
        .chain(slim(&objects.node_pools, "NodePool"))
        .chain(slim(&objects.node_classes, "EC2NodeClass"))
        .chain(
            objects
                .events
                .iter()
                .filter(|e| regards_existing(e, objects))
                .map(|e| kinded(*e, "Event")),
        )
        .chain(
            objects
                .accounts
                .iter()
                .map(|a| kinded(*a, "ServiceAccount")),
        )
        .chain(objects.pods.iter().map(|p| kinded(*p, "Pod")));
    scanner.read_objects("cluster", all, &mut obs);
    obs
}

/// Whether an Event regards one of Karpenter's objects (any kind of its API groups): only those
/// are read (a cluster has many others), which also leaves out the doctor's own Events.
pub fn about_karpenter(event: &Event) -> bool {
    let group = event
        .regarding
        .as_ref()
        .and_then(|r| r.api_version.as_deref())
        .and_then(|v| v.split_once('/'))
        .map(|(group, _)| group);
    group.is_some_and(|g| [resources::KARPENTER_GROUP, resources::AWS_GROUP].contains(&g))
}

/// Whether Karpenter reported an Event, where it records them (`signal::event_author`): no
/// other Event is kept, so none proves, pages or takes a Diagnosis's place under the cap.
pub fn by_karpenter(event: &Event) -> bool {
    let reporter = [
        event.reporting_controller.as_deref(),
        event
            .deprecated_source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
    ]
    .into_iter()
    .flatten()
    .find(|r| !r.is_empty());
    crate::signal::author(reporter, event.metadata.namespace.as_deref()).is_none()
}

/// Whether the object an Event regards is one that exists: the same kind, name and (where
/// both say) uid among the cached objects. An Event regarding an object that never existed
/// is no one's failure.
fn regards_existing(event: &Event, objects: &Objects) -> bool {
    let Some(r) = event.regarding.as_ref() else {
        return false;
    };
    let list = match r.kind.as_deref() {
        Some("NodeClaim" | "Machine") => &objects.node_claims,
        Some("NodePool" | "Provisioner") => &objects.node_pools,
        Some("EC2NodeClass" | "AWSNodeTemplate") => &objects.node_classes,
        _ => return false,
    };
    list.iter().any(|o| {
        o.metadata.name == r.name
            && match (&o.metadata.uid, &r.uid) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    })
}

/// Cached objects may lack their kind (typed ones serialize without it); readers go by it.
fn kinded<T: serde::Serialize>(obj: &T, kind: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(obj).unwrap_or_default();
    v["kind"] = serde_json::json!(kind);
    v
}

#[cfg(test)]
mod tests {
    use super::about_karpenter;
    use k8s_openapi::api::events::v1::Event;

    #[test]
    fn only_events_about_karpenters_objects_are_kept() {
        let event = |regarding: serde_json::Value| -> Event {
            serde_json::from_value(
                serde_json::json!({"metadata": {"name": "e", "namespace": "default"},
                "eventTime": null, "regarding": regarding}),
            )
            .unwrap()
        };
        let about = |api_version: &str, kind: &str| {
            about_karpenter(&event(
                serde_json::json!({"apiVersion": api_version, "kind": kind, "name": "x"}),
            ))
        };
        assert!(about("karpenter.sh/v1", "NodeClaim"));
        assert!(about("karpenter.sh/v1beta1", "NodePool"));
        assert!(about("karpenter.k8s.aws/v1", "EC2NodeClass"));
        assert!(about("karpenter.sh/v1alpha5", "Machine"));
        assert!(
            !about("cluster.x-k8s.io/v1beta1", "Machine"),
            "Cluster API's Machine"
        );
        assert!(!about("karpenter-doctor.io/v1alpha1", "Diagnosis"));
        assert!(!about("v1", "Pod"));
        assert!(!about_karpenter(&event(serde_json::Value::Null)));
    }

    #[test]
    fn only_karpenters_events_where_it_records_them_about_objects_that_exist_are_read() {
        use super::{Objects, by_karpenter, regards_existing};
        use crate::cluster::slim::Slim;
        let event = |ns: &str, reporter: &str, name: &str, uid: Option<&str>| -> Event {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "e", "namespace": ns}, "eventTime": null,
                "reportingController": reporter,
                "regarding": {"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "name": name, "uid": uid}}))
            .unwrap()
        };
        assert!(by_karpenter(&event("default", "karpenter", "a", None)));
        assert!(
            !by_karpenter(&event("team-a", "karpenter", "a", None)),
            "a namespace user's forgery"
        );
        assert!(
            !by_karpenter(&event("default", "kubectl", "a", None)),
            "another reporter"
        );
        let claim: Slim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "uid": "u-1"}}))
        .unwrap();
        let objects = Objects {
            node_claims: vec![&claim],
            node_pools: vec![],
            node_classes: vec![],
            events: vec![],
            accounts: vec![],
            pods: vec![],
        };
        assert!(regards_existing(
            &event("default", "karpenter", "a", Some("u-1")),
            &objects
        ));
        assert!(regards_existing(
            &event("default", "karpenter", "a", None),
            &objects
        ));
        assert!(
            !regards_existing(&event("default", "karpenter", "a", Some("u-2")), &objects),
            "an older NodeClaim of that name"
        );
        assert!(
            !regards_existing(&event("default", "karpenter", "b", None), &objects),
            "no such NodeClaim"
        );
    }
}
