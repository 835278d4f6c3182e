//! The one way Karpenter's objects and log lines become `Observations`, for the controller's
//! caches and `check`'s single read alike: Events are kept only when they regard Karpenter.

use super::resources;
use super::slim::Slim;
use crate::signal::{Observations, Scanner};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;

/// What was read of the cluster, borrowed from wherever it is kept.
#[derive(Clone)]
pub struct Objects<'a> {
    pub node_claims: Vec<&'a Slim>,
    pub node_pools: Vec<&'a Slim>,
    pub node_classes: Vec<&'a Slim>,
    pub events: Vec<&'a Event>,
    pub accounts: Vec<&'a ServiceAccount>,
    /// Karpenter's pods (the selector's).
    pub pods: Vec<&'a Pod>,
}

/// Scans the kept log lines (oldest first) and reads every object into observations (`check`:
/// everything read; Events only where they regard an object read).
pub fn observe<'a>(
    scanner: &Scanner,
    log_lines: impl Iterator<Item = &'a str>,
    objects: &Objects,
) -> Observations {
    let mut obs = scan_logs(scanner, log_lines);
    let existing: Vec<&Event> = objects
        .events
        .iter()
        .copied()
        .filter(|e| regards_existing(e, listed(objects)))
        .collect();
    let objects = Objects {
        events: existing,
        ..objects.clone()
    };
    read(scanner, &objects, &mut obs);
    obs
}

/// Scans the kept log lines (oldest first) into observations.
pub fn scan_logs<'a>(scanner: &Scanner, log_lines: impl Iterator<Item = &'a str>) -> Observations {
    let mut obs = Observations::default();
    let log_text: String = log_lines.map(|l| format!("{l}\n")).collect();
    if !log_text.is_empty() {
        let _ = scanner.scan("karpenter-logs", log_text.as_bytes(), &mut obs, &mut |_| {});
    }
    obs
}

/// Reads the objects into `obs`, in the order given (the Events as given: the caller chose
/// those that regard existing objects).
pub fn read(scanner: &Scanner, objects: &Objects, obs: &mut Observations) {
    let slim = |list: &[&Slim], kind: &'static str| {
        list.iter()
            .map(move |o| kinded(*o, kind))
            .collect::<Vec<_>>()
    };
    let all = slim(&objects.node_claims, "NodeClaim")
        .into_iter()
        .chain(slim(&objects.node_pools, "NodePool"))
        .chain(slim(&objects.node_classes, "EC2NodeClass"))
        .chain(objects.events.iter().map(|e| kinded(*e, "Event")))
        .chain(
            objects
                .accounts
                .iter()
                .map(|a| kinded(*a, "ServiceAccount")),
        )
        .chain(objects.pods.iter().map(|p| kinded(*p, "Pod")));
    scanner.read_objects("cluster", all, obs);
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
    let source = event.deprecated_source.as_ref();
    let reporter = first([
        event.reporting_controller.as_deref(),
        source.and_then(|s| s.component.as_deref()),
    ]);
    let instance = first([
        event.reporting_instance.as_deref(),
        source.and_then(|s| s.host.as_deref()),
    ]);
    crate::signal::author(reporter, instance, event.metadata.namespace.as_deref()).is_none()
}

/// The first of `fields` that is there and not empty.
fn first(fields: [Option<&str>; 2]) -> Option<&str> {
    fields.into_iter().flatten().find(|v| !v.is_empty())
}

/// The kinds of Karpenter's objects an Event may regard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NodeClaim,
    NodePool,
    NodeClass,
}

/// The kind, name and uid (where it says) of the Karpenter object an Event regards.
pub fn regarded(event: &Event) -> Option<(Kind, &str, Option<&str>)> {
    let r = event.regarding.as_ref()?;
    let kind = match r.kind.as_deref()? {
        "NodeClaim" | "Machine" => Kind::NodeClaim,
        "NodePool" | "Provisioner" => Kind::NodePool,
        "EC2NodeClass" | "AWSNodeTemplate" => Kind::NodeClass,
        _ => return None,
    };
    Some((kind, r.name.as_deref()?, r.uid.as_deref()))
}

/// Whether the object an Event regards is one that exists: `uid_of` finds the object of that
/// kind and name (`Some(uid)`, where `uid` is `None` when unknown), and where both say, the
/// uids agree. An Event regarding an object that never existed is no one's failure.
pub fn regards_existing<'o>(
    event: &Event,
    uid_of: impl Fn(Kind, &str) -> Option<Option<&'o str>>,
) -> bool {
    let Some((kind, name, uid)) = regarded(event) else {
        return false;
    };
    match (uid_of(kind, name), uid) {
        (None, _) => false,
        (Some(Some(a)), Some(b)) => a == b,
        (Some(_), _) => true,
    }
}

/// `regards_existing`'s lookup in lists of objects.
fn listed<'o>(objects: &'o Objects) -> impl Fn(Kind, &str) -> Option<Option<&'o str>> {
    move |kind, name| {
        let list = match kind {
            Kind::NodeClaim => &objects.node_claims,
            Kind::NodePool => &objects.node_pools,
            Kind::NodeClass => &objects.node_classes,
        };
        list.iter()
            .find(|o| o.metadata.name.as_deref() == Some(name))
            .map(|o| o.metadata.uid.as_deref())
    }
}

/// Cached objects may lack their kind (typed ones serialize without it); readers go by it.
pub fn kinded<T: serde::Serialize>(obj: &T, kind: &str) -> serde_json::Value {
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
        use super::{Objects, by_karpenter, listed, regards_existing};
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
        // Karpenter's recorder names no instance; an Event that names one is someone else's.
        let with_instance = |instance: &str| -> Event {
            let mut e = event("default", "karpenter", "a", None);
            e.reporting_instance = Some(instance.into());
            e
        };
        assert!(by_karpenter(&with_instance("")));
        assert!(!by_karpenter(&with_instance("mallory-laptop")));
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
            listed(&objects)
        ));
        assert!(regards_existing(
            &event("default", "karpenter", "a", None),
            listed(&objects)
        ));
        assert!(
            !regards_existing(
                &event("default", "karpenter", "a", Some("u-2")),
                listed(&objects)
            ),
            "an older NodeClaim of that name"
        );
        assert!(
            !regards_existing(&event("default", "karpenter", "b", None), listed(&objects)),
            "no such NodeClaim"
        );
    }
}
