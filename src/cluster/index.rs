//! The controller's state: Karpenter's objects, its Events and ServiceAccount, fed one watch
//! event at a time (`feed_*`) and kept as small as what diagnosis reads of them. Each object
//! is read once, when it changes: a healthy NodeClaim is kept as the few names a failure that
//! names it reads (a few hundred bytes), a failing one whole (slim); an Event only when it can
//! be a signal, and at most `MAX_EVENTS`. `observe` reads what can take part in a diagnosis:
//! the log lines, the failing objects, the Events, and the healthy NodeClaims they name — the
//! work of a reconcile grows with the failures, not with the cluster.

use super::observe::{self, Kind, Objects};
use super::slim::Slim;
use super::table::Table;
use crate::signal::pending::MAX_PODS;
use crate::signal::{NodeClaimInfo, Nomination, Observations, PodRef, Scanner};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// The most Events kept (the oldest goes first): Karpenter's recorder folds repeats of one
/// failure into one Event, so this holds thousands of failures.
pub const MAX_EVENTS: usize = 2000;

/// The longest Event note kept (Karpenter v1.15 cuts its own at 1024 bytes).
pub const MAX_EVENT_NOTE: usize = 4096;

/// Everything the controller diagnoses from, but the log lines and Karpenter's pods.
#[derive(Debug)]
pub struct Index {
    claims: Table<Claim>,
    pools: Table<Slim>,
    classes: Table<Slim>,
    events: Table<Event>,
    accounts: Table<ServiceAccount>,
    /// Pods waiting for a node (phase Pending, bound to none), by `namespace/name`: all a
    /// metadata watch of them carries is their name. Watched only when `pods_watched`.
    pending: Table<()>,
    /// Karpenter's nominations of pods for NodeClaims, by Event.
    nominations: Table<Nomination>,
    pods_watched: bool,
    /// Each distinct NodePool, EC2NodeClass, capacity type and image name once, shared by the
    /// healthy NodeClaims that name it.
    names: HashSet<Arc<str>>,
}

#[derive(Debug, PartialEq)]
enum Claim {
    Healthy(Healthy),
    /// A condition reports a failure, or its instance was lost: read on every reconcile.
    Failing(Box<Slim>),
}

/// What the reader makes of a NodeClaim with no failure (`NodeClaimInfo`), and its uid.
#[derive(Debug, PartialEq)]
struct Healthy {
    uid: Option<Box<str>>,
    node_pool: Option<Arc<str>>,
    node_class: Option<Arc<str>>,
    capacity_type: Option<Arc<str>>,
    image_id: Option<Arc<str>>,
    instance_id: Option<Box<str>>,
}

impl Healthy {
    fn info(&self, name: &str) -> NodeClaimInfo {
        let text = |s: &Option<Arc<str>>| s.as_deref().map(String::from);
        NodeClaimInfo {
            name: name.to_string(),
            node_pool: text(&self.node_pool),
            node_class: text(&self.node_class),
            instance_id: self.instance_id.as_deref().map(String::from),
            image_id: text(&self.image_id),
            capacity_type: text(&self.capacity_type),
            lost: false,
        }
    }
}

impl Default for Index {
    fn default() -> Index {
        Index {
            claims: Table::default(),
            pools: Table::default(),
            classes: Table::default(),
            events: Table::bounded(MAX_EVENTS),
            accounts: Table::default(),
            // Pods and nominations in every namespace: as many as an input keeps at most.
            pending: Table::namespaced(MAX_PODS),
            nominations: Table::namespaced(MAX_PODS),
            pods_watched: false,
            names: HashSet::new(),
        }
    }
}

impl Index {
    /// An index that is also fed the pending pods and Karpenter's nominations of them.
    pub fn watching_pods() -> Index {
        Index {
            pods_watched: true,
            ..Index::default()
        }
    }

    /// Each `feed_*` applies one watch event and returns whether what a diagnosis reads changed.
    pub fn feed_claim(&mut self, scanner: &Scanner, event: watcher::Event<Slim>) -> bool {
        let Index { claims, names, .. } = self;
        claims.feed(event, |slim| Some(claim(scanner, slim, names)))
    }

    pub fn feed_pool(&mut self, event: watcher::Event<Slim>) -> bool {
        self.pools.feed(event, Some)
    }

    pub fn feed_class(&mut self, event: watcher::Event<Slim>) -> bool {
        self.classes.feed(event, Some)
    }

    pub fn feed_event(&mut self, scanner: &Scanner, event: watcher::Event<Event>) -> bool {
        self.events.feed(event, |e| may_signal(scanner, e))
    }

    pub fn feed_pending(&mut self, event: watcher::Event<PartialObjectMeta<Pod>>) -> bool {
        self.pending.feed(event, |_| Some(()))
    }

    pub fn feed_nomination(&mut self, event: watcher::Event<CoreEvent>) -> bool {
        self.nominations.feed(event, nomination)
    }

    pub fn feed_account(&mut self, event: watcher::Event<ServiceAccount>) -> bool {
        self.accounts.feed(event, |mut account| {
            account.metadata.managed_fields = None;
            Some(account)
        })
    }

    /// Whether every watch has applied its first list whole.
    pub fn synced(&self) -> bool {
        self.claims.synced()
            && self.pools.synced()
            && self.classes.synced()
            && self.events.synced()
            && self.accounts.synced()
            && (!self.pods_watched || (self.pending.synced() && self.nominations.synced()))
    }

    /// How many NodeClaims are kept, and how many of them fail.
    pub fn node_claims(&self) -> (usize, usize) {
        let failing = self
            .claims
            .iter()
            .filter(|c| matches!(c, Claim::Failing(_)))
            .count();
        (self.claims.iter().count(), failing)
    }

    /// Scans the log lines (oldest first) and reads the failing objects, the Events regarding
    /// objects that exist, the healthy NodeClaims those name, NodePools, EC2NodeClasses, the
    /// ServiceAccounts and `pods` into observations, each kind in name order.
    pub fn observe<'a>(
        &self,
        scanner: &Scanner,
        log_lines: impl Iterator<Item = &'a str>,
        pods: &[Pod],
    ) -> Observations {
        let mut obs = observe::scan_logs(scanner, log_lines);
        let exists = |e: &Event| observe::regards_existing(e, |kind, name| self.uid_of(kind, name));
        let events: Vec<&Event> = values(&self.events)
            .into_iter()
            .filter(|e| exists(e))
            .collect();
        // The healthy NodeClaims a failure names go in first: the objects read after fill them in.
        let named: BTreeSet<&str> = obs
            .signals
            .iter()
            .filter_map(|s| s.node_claim.as_deref())
            .chain(events.iter().filter_map(|e| match observe::regarded(e) {
                Some((Kind::NodeClaim, name, _)) => Some(name),
                _ => None,
            }))
            .collect();
        let healthy: Vec<NodeClaimInfo> = named
            .into_iter()
            .filter_map(|name| match self.claims.get(name) {
                Some(Claim::Healthy(h)) => Some(h.info(name)),
                _ => None,
            })
            .collect();
        obs.node_claims.extend(healthy);
        let objects = Objects {
            node_claims: values(&self.claims)
                .into_iter()
                .filter_map(|c| match c {
                    Claim::Failing(slim) => Some(&**slim),
                    Claim::Healthy(_) => None,
                })
                .collect(),
            node_pools: values(&self.pools),
            node_classes: values(&self.classes),
            events,
            accounts: values(&self.accounts),
            pods: pods.iter().collect(),
        };
        observe::read(scanner, &objects, &mut obs);
        if self.pods_watched {
            self.pending_pods(&mut obs);
        }
        obs
    }

    /// The pending pods Karpenter nominated for a NodeClaim a signal names, with every
    /// nomination of theirs (a pod waits on its latest one), in name order. A pod nominated only
    /// for healthy NodeClaims is passed over and nothing of it is copied: the work grows with the
    /// pods the failures block, not with the pods pending.
    fn pending_pods(&self, obs: &mut Observations) {
        let failing: HashSet<&str> = obs
            .signals
            .iter()
            .filter_map(|s| s.node_claim.as_deref())
            .collect();
        let pending = |p: &PodRef| {
            self.pending
                .get(&format!("{}/{}", p.namespace, p.name))
                .is_some()
        };
        let pods: BTreeSet<&PodRef> = self
            .nominations
            .iter()
            .filter(|n| failing.contains(n.node_claim.as_str()) && pending(&n.pod))
            .map(|n| &n.pod)
            .collect();
        let nominations = self.nominations.sorted_where(|n| pods.contains(&n.pod));
        obs.nominations
            .extend(nominations.into_iter().map(|(_, n)| n.clone()));
        obs.pending_pods = Some(pods.into_iter().cloned().collect());
    }

    /// The uid of the kept object of `kind` named `name`: `None` when there is none,
    /// `Some(None)` when it has no uid.
    fn uid_of(&self, kind: Kind, name: &str) -> Option<Option<&str>> {
        match kind {
            Kind::NodeClaim => self.claims.get(name).map(|c| match c {
                Claim::Healthy(h) => h.uid.as_deref(),
                Claim::Failing(slim) => slim.metadata.uid.as_deref(),
            }),
            Kind::NodePool => self.pools.get(name).map(|s| s.metadata.uid.as_deref()),
            Kind::NodeClass => self.classes.get(name).map(|s| s.metadata.uid.as_deref()),
        }
    }
}

fn values<V>(table: &Table<V>) -> Vec<&V> {
    table.sorted().into_iter().map(|(_, v)| v).collect()
}

/// A NodeClaim as kept: read alone, healthy when it yields no signal and did not lose its
/// instance.
fn claim(scanner: &Scanner, slim: Slim, names: &mut HashSet<Arc<str>>) -> Claim {
    let mut read = Observations::default();
    scanner.read_objects(
        "nodeclaim",
        [observe::kinded(&slim, "NodeClaim")],
        &mut read,
    );
    match read.node_claims.pop() {
        Some(info) if read.signals.is_empty() && !info.lost => {
            let mut shared = |s: Option<String>| s.map(|s| intern(names, s));
            Claim::Healthy(Healthy {
                uid: slim.metadata.uid.map(Box::from),
                node_pool: shared(info.node_pool),
                node_class: shared(info.node_class),
                capacity_type: shared(info.capacity_type),
                image_id: shared(info.image_id),
                instance_id: info.instance_id.map(Box::from),
            })
        }
        _ => Claim::Failing(Box::new(slim)),
    }
}

fn intern(names: &mut HashSet<Arc<str>>, s: String) -> Arc<str> {
    if let Some(known) = names.get(s.as_str()) {
        return known.clone();
    }
    let new: Arc<str> = s.into();
    names.insert(new.clone());
    new
}

/// Karpenter's Event on a pod that nominates it for a NodeClaim (`signal::pending`), as kept.
fn nomination(event: CoreEvent) -> Option<Nomination> {
    if super::pod::reporter(&event) != Some(crate::signal::KARPENTER_REPORTER) {
        return None;
    }
    let o = &event.involved_object;
    let claim = crate::signal::pending::nominated_claim(
        event.reason.as_deref()?,
        event.message.as_deref()?,
    )?;
    let time = super::pod::last_time(&event).map(|t| t.to_string());
    Some(Nomination {
        pod: PodRef {
            namespace: o.namespace.clone().or(event.metadata.namespace.clone())?,
            name: o.name.clone()?,
        },
        node_claim: claim.into(),
        time,
    })
}

/// An Event as kept, when it can be a signal: Karpenter's, about one of its objects, and read
/// alone it yields a failure or a NodeClaim that lost its instance. Its note is cut at
/// `MAX_EVENT_NOTE`, with Karpenter's `...`.
fn may_signal(scanner: &Scanner, mut event: Event) -> Option<Event> {
    if !(observe::about_karpenter(&event) && observe::by_karpenter(&event)) {
        return None;
    }
    // Kept: what the reading takes, each text bounded; a poster's padding elsewhere is not.
    let meta = &mut event.metadata;
    (meta.managed_fields, meta.annotations, meta.labels) = (None, None, None);
    (meta.owner_references, meta.finalizers, event.related) = (None, None, None);
    for text in [&mut event.note, &mut event.reason, &mut event.action] {
        if let Some(text) = text.as_mut() {
            bound_note(text);
        }
    }
    let mut read = Observations::default();
    scanner.read_objects("event", [observe::kinded(&event, "Event")], &mut read);
    (!read.signals.is_empty() || !read.node_claims.is_empty()).then_some(event)
}

/// Cuts `note` to `MAX_EVENT_NOTE` bytes, `...` after the cut as Karpenter marks its own: the
/// `...` marks whatever it was cut inside as partial. A new string, not the old one truncated:
/// truncating keeps the whole allocation (a 1 MB note would still cost 1 MB).
fn bound_note(note: &mut String) {
    if note.len() > MAX_EVENT_NOTE {
        let end = crate::signal::text::floor(note, MAX_EVENT_NOTE - 3);
        let mut cut = String::with_capacity(end + 3);
        cut.push_str(&note[..end]);
        cut.push_str("...");
        *note = cut;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::observe::Objects;
    use serde_json::{Value, json};

    const DENIAL: &str = "UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/ctrl/1 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/node because no identity-based policy allows the iam:PassRole action.";

    fn claim(name: &str, launched: (&str, &str), registered: &str) -> Value {
        json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": name, "uid": format!("uid-{name}"),
                "labels": {"karpenter.sh/nodepool": "default", "karpenter.sh/capacity-type": "spot", "team": "a"}},
            "spec": {"nodeClassRef": {"name": "default"}},
            "status": {"providerID": format!("aws:///us-east-1a/i-0{name}"), "imageID": "ami-1",
                "conditions": [
                    {"type": "Launched", "status": launched.0, "message": launched.1, "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "Registered", "status": registered, "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    }

    fn event(name: &str, regarding: &str, uid: &str, reason: &str, note: &str) -> Value {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default"}, "eventTime": null,
            "reportingController": "karpenter", "reason": reason, "note": note,
            "regarding": {"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "name": regarding, "uid": uid}})
    }

    fn line(claim: &str) -> String {
        json!({"level": "ERROR", "time": "2026-01-01T00:00:01Z", "message": "Reconciler error",
            "controller": "nodeclaim.lifecycle", "NodeClaim": {"name": claim},
            "error": format!("launching nodeclaim, creating instance, {DENIAL}")})
        .to_string()
    }

    fn slim(v: &Value) -> Slim {
        let mut s: Slim = serde_json::from_value(v.clone()).unwrap();
        s.trim();
        s
    }

    /// The signals without where they sit in the input, and the NodeClaims by name.
    fn read(obs: &Observations) -> (Vec<Value>, Vec<NodeClaimInfo>) {
        let signals = obs
            .signals
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap();
                v.as_object_mut().unwrap().remove("origin");
                v
            })
            .collect();
        let mut claims = obs.node_claims.clone();
        claims.sort_by(|a, b| a.name.cmp(&b.name));
        (signals, claims)
    }

    /// What the index reads is what reading every object reads (as `check` does), but for the
    /// healthy NodeClaims no failure names.
    #[test]
    fn the_index_reads_what_reading_every_object_reads_of_what_can_fail() {
        let scanner = Scanner::new().unwrap();
        let claims: Vec<Value> = (0..50)
            .map(|i| claim(&format!("ok-{i:02}"), ("True", ""), "True"))
            .chain([
                claim("failing", ("False", DENIAL), "Unknown"),
                claim("lost", ("True", ""), "False"),
            ])
            .collect();
        let events = [
            event(
                "e1",
                "ok-07",
                "uid-ok-07",
                "InstanceTerminating",
                "Instance is terminating",
            ),
            event("e2", "ok-08", "uid-ok-08", "FailedLaunch", DENIAL),
            event("e3", "ok-09", "uid-other", "FailedLaunch", DENIAL),
            event("e4", "gone", "uid-gone", "FailedLaunch", DENIAL),
        ];
        let mut index = Index::default();
        for c in &claims {
            index.feed_claim(&scanner, watcher::Event::Apply(slim(c)));
        }
        for e in &events {
            index.feed_event(
                &scanner,
                watcher::Event::Apply(serde_json::from_value(e.clone()).unwrap()),
            );
        }
        let lines = [line("ok-03"), line("failing"), line("nowhere")];
        let got = index.observe(&scanner, lines.iter().map(String::as_str), &[]);

        let slims: Vec<Slim> = claims.iter().map(slim).collect();
        let typed: Vec<Event> = events
            .iter()
            .map(|e| serde_json::from_value(e.clone()).unwrap())
            .collect();
        let all = Objects {
            node_claims: slims.iter().collect(),
            node_pools: vec![],
            node_classes: vec![],
            events: typed.iter().collect(),
            accounts: vec![],
            pods: vec![],
        };
        let whole = observe::observe(&scanner, lines.iter().map(String::as_str), &all);
        let (got_signals, got_claims) = read(&got);
        let (whole_signals, whole_claims) = read(&whole);
        assert_eq!(got_signals, whole_signals);
        assert_eq!(got_signals.len(), 5, "three lines, a condition, one Event");
        let named: Vec<&str> = got_claims.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(named, ["failing", "lost", "ok-03", "ok-07", "ok-08"]);
        for c in &got_claims {
            assert_eq!(Some(c), whole_claims.iter().find(|w| w.name == c.name));
        }
        assert!(got_claims.iter().find(|c| c.name == "ok-07").unwrap().lost);
        assert_eq!(index.node_claims(), (52, 2));
    }

    fn feed_event(index: &mut Index, scanner: &Scanner, v: Value) -> bool {
        index.feed_event(
            scanner,
            watcher::Event::Apply(serde_json::from_value(v).unwrap()),
        )
    }

    #[test]
    fn only_karpenters_events_that_can_be_signals_are_kept_at_most_max_events() {
        let scanner = Scanner::new().unwrap();
        let mut index = Index::default();
        let transitioned = event("a", "x", "u", "Launched", "Status condition transitioned");
        assert!(!feed_event(&mut index, &scanner, transitioned));
        let mut other = event("b", "x", "u", "FailedLaunch", DENIAL);
        other["reportingController"] = json!("kubectl");
        assert!(
            !feed_event(&mut index, &scanner, other),
            "another reporter's"
        );
        let terminating = event(
            "c",
            "x",
            "u",
            "InstanceTerminating",
            "Instance is terminating",
        );
        assert!(feed_event(&mut index, &scanner, terminating));
        let denied = event("d", "x", "u", "FailedLaunch", DENIAL);
        assert!(feed_event(&mut index, &scanner, denied.clone()));
        assert!(!feed_event(&mut index, &scanner, denied), "the same again");
        assert_eq!(index.events.iter().count(), 2);
        for i in 0..MAX_EVENTS {
            let e = event(&format!("n{i}"), "x", "u", "FailedLaunch", DENIAL);
            feed_event(&mut index, &scanner, e);
        }
        assert_eq!(index.events.iter().count(), MAX_EVENTS);
        assert!(index.events.get("c").is_none() && index.events.get("d").is_none());
        assert!(index.events.get(&format!("n{}", MAX_EVENTS - 1)).is_some());
    }

    #[test]
    fn a_claim_that_heals_is_kept_small_and_one_that_fails_whole() {
        let scanner = Scanner::new().unwrap();
        let mut index = Index::default();
        let failing = slim(&claim("a", ("False", DENIAL), "Unknown"));
        assert!(index.feed_claim(&scanner, watcher::Event::Apply(failing.clone())));
        assert_eq!(
            index.claims.get("a"),
            Some(&Claim::Failing(Box::new(failing)))
        );
        let healthy = claim("a", ("True", ""), "True");
        assert!(index.feed_claim(&scanner, watcher::Event::Apply(slim(&healthy))));
        let mut again = healthy.clone();
        again["metadata"]["resourceVersion"] = json!("2");
        assert!(
            !index.feed_claim(&scanner, watcher::Event::Apply(slim(&again))),
            "nothing a diagnosis reads changed"
        );
        let Some(Claim::Healthy(h)) = index.claims.get("a") else {
            panic!("healthy")
        };
        assert_eq!(
            h.info("a"),
            NodeClaimInfo {
                name: "a".into(),
                node_pool: Some("default".into()),
                node_class: Some("default".into()),
                instance_id: Some("i-0a".into()),
                image_id: Some("ami-1".into()),
                capacity_type: Some("spot".into()),
                lost: false,
            }
        );
        assert!(index.feed_claim(&scanner, watcher::Event::Delete(slim(&healthy))));
        assert_eq!(index.node_claims(), (0, 0));
    }

    fn nominated(index: &mut Index, event: &str, pod: &str, claim: &str, second: u32) {
        let e = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": event, "namespace": "team"},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": "team"},
            "reason": "Nominated", "message": format!("Pod should schedule on: nodeclaim/{claim}"),
            "reportingComponent": "karpenter",
            "lastTimestamp": format!("2026-01-01T00:00:0{second}Z")});
        index.feed_nomination(watcher::Event::Apply(serde_json::from_value(e).unwrap()));
    }

    /// Only the pods nominated for a NodeClaim a failure names are read, each with all its
    /// nominations, so that the pod waits on its latest one even when that one is healthy.
    #[test]
    fn only_pods_nominated_for_a_failing_nodeclaim_are_read_with_all_their_nominations() {
        let scanner = Scanner::new().unwrap();
        let mut index = Index::watching_pods();
        for c in [
            claim("failing", ("False", DENIAL), "Unknown"),
            claim("ok", ("True", ""), "True"),
        ] {
            index.feed_claim(&scanner, watcher::Event::Apply(slim(&c)));
        }
        for pod in ["moved", "blocked", "elsewhere"] {
            let meta = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                "metadata": {"name": pod, "namespace": "team"}});
            index.feed_pending(watcher::Event::Apply(serde_json::from_value(meta).unwrap()));
        }
        nominated(&mut index, "e1", "moved", "failing", 1);
        nominated(&mut index, "e2", "moved", "ok", 2);
        nominated(&mut index, "e3", "blocked", "failing", 1);
        nominated(&mut index, "e4", "elsewhere", "ok", 1);
        nominated(&mut index, "e5", "scheduled", "failing", 1);

        let obs = index.observe(&scanner, std::iter::empty(), &[]);
        let names =
            |pods: &[&PodRef]| -> Vec<String> { pods.iter().map(|p| p.name.clone()).collect() };
        let pending: Vec<&PodRef> = obs.pending_pods.iter().flatten().collect();
        assert_eq!(names(&pending), ["blocked", "moved"]);
        let read: Vec<(&str, &str)> = obs
            .nominations
            .iter()
            .map(|n| (n.pod.name.as_str(), n.node_claim.as_str()))
            .collect();
        assert_eq!(
            read,
            [
                ("moved", "failing"),
                ("moved", "ok"),
                ("blocked", "failing")
            ],
            "by Event name; none of a pod nominated for healthy NodeClaims only"
        );
        let waiting =
            crate::signal::pending::waiting_on(obs.pending_pods.as_deref(), &obs.nominations);
        assert_eq!(names(&waiting["failing"]), ["blocked"]);
        assert_eq!(names(&waiting["ok"]), ["moved"]);
    }

    #[test]
    fn a_huge_event_note_is_kept_cut_and_marked() {
        let mut note = format!("x{}", "é".repeat(300_000));
        bound_note(&mut note);
        assert!(note.len() <= MAX_EVENT_NOTE && note.ends_with("..."));
        // What is kept is what it costs: not the huge note's allocation.
        assert!(note.capacity() <= MAX_EVENT_NOTE, "{}", note.capacity());
        let mut short = "UnauthorizedOperation".to_string();
        bound_note(&mut short);
        assert_eq!(short, "UnauthorizedOperation");
    }
}
