//! Pods waiting for a node, and the NodeClaim Karpenter nominated each for. Karpenter records
//! the nomination on the pod: a `Nominated` Event, "Pod should schedule on: nodeclaim/NAME[,
//! node/NODE]" (sigs.k8s.io/karpenter `scheduling/events.go`, every v1 release; `machine/NAME`
//! in v0.3x), and from v1.15 an `InsufficientCapacityError` Event, "NodeClaim NAME nominated for
//! this pod failed to launch: …" (`nodeclaim/lifecycle/events.go`). A nomination only links a
//! pod to a NodeClaim: it is never evidence of a failure.

use super::{Nomination, PodRef};

/// The most pending pods, and nominations, kept of an input (the rest are counted).
pub const MAX_PODS: usize = 200_000;

/// The NodeClaim (or v0.3x Machine) an Event of `reason` on a pod nominates it for.
pub fn nominated_claim<'m>(reason: &str, message: &'m str) -> Option<&'m str> {
    let name = match reason {
        "Nominated" => {
            let targets = message.strip_prefix("Pod should schedule on: ")?;
            targets.split(", ").find_map(|t| {
                t.strip_prefix("nodeclaim/")
                    .or_else(|| t.strip_prefix("machine/"))
            })?
        }
        "InsufficientCapacityError" => {
            message
                .strip_prefix("NodeClaim ")?
                .split_once(" nominated for this pod failed to launch")?
                .0
        }
        _ => return None,
    };
    is_object_name(name).then_some(name)
}

/// A Kubernetes object name (RFC 1123 subdomain): a cut or forged text names no object.
fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// The pods waiting on each NodeClaim: each pending pod by its latest nomination (by time, then
/// by input order), when `pending` is known; none otherwise.
pub fn waiting_on<'o>(
    pending: Option<&'o [PodRef]>,
    nominations: &'o [Nomination],
) -> std::collections::BTreeMap<&'o str, Vec<&'o PodRef>> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut out: BTreeMap<&str, Vec<&PodRef>> = BTreeMap::new();
    let Some(pending) = pending else { return out };
    let pending: BTreeSet<&PodRef> = pending.iter().collect();
    let mut latest: BTreeMap<&PodRef, &Nomination> = BTreeMap::new();
    for n in nominations.iter().filter(|n| pending.contains(&n.pod)) {
        let newer = latest.get(&n.pod).is_none_or(|l| n.time >= l.time);
        if newer {
            latest.insert(&n.pod, n);
        }
    }
    for (pod, n) in latest {
        out.entry(n.node_claim.as_str()).or_default().push(pod);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nominations_karpenter_writes_name_their_nodeclaim() {
        let n = |r, m| nominated_claim(r, m);
        assert_eq!(
            n(
                "Nominated",
                "Pod should schedule on: nodeclaim/default-vjsdn"
            ),
            Some("default-vjsdn")
        );
        assert_eq!(
            n(
                "Nominated",
                "Pod should schedule on: nodeclaim/default-vjsdn, node/ip-10-0-1-2.ec2.internal"
            ),
            Some("default-vjsdn")
        );
        assert_eq!(
            n("Nominated", "Pod should schedule on: machine/default-x1"),
            Some("default-x1")
        );
        assert_eq!(
            n(
                "Nominated",
                "Pod should schedule on: node/ip-10-0-1-2.ec2.internal"
            ),
            None,
            "an existing node: nothing to launch"
        );
        assert_eq!(
            n(
                "InsufficientCapacityError",
                "NodeClaim default-abcde nominated for this pod failed to launch: creating instance, insufficient capacity, all requested instance types were unavailable during launch"
            ),
            Some("default-abcde")
        );
        assert_eq!(
            n("FailedScheduling", "Pod should schedule on: nodeclaim/x"),
            None
        );
        assert_eq!(
            n("Nominated", "Pod should schedule on: nodeclaim/$(id)"),
            None
        );
        assert_eq!(n("Nominated", "Pod should schedule on: nodeclaim/"), None);
        assert_eq!(
            n("InsufficientCapacityError", "NodeClaim default-ab"),
            None,
            "cut before the sentence ends"
        );
    }

    fn pod(name: &str) -> PodRef {
        PodRef {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn nomination(name: &str, claim: &str, time: &str) -> Nomination {
        Nomination {
            pod: pod(name),
            node_claim: claim.into(),
            time: Some(time.into()),
        }
    }

    #[test]
    fn a_pending_pod_waits_on_its_latest_nomination_only() {
        let nominations = [
            nomination("a", "c1", "2026-01-01T00:00:02Z"),
            nomination("a", "c2", "2026-01-01T00:00:01Z"),
            nomination("b", "c2", "2026-01-01T00:00:01Z"),
            nomination("gone", "c1", "2026-01-01T00:00:03Z"),
        ];
        let pending = [pod("a"), pod("b"), pod("idle")];
        let waiting = waiting_on(Some(&pending), &nominations);
        let names = |c: &str| -> Vec<&str> {
            waiting
                .get(c)
                .map(|ps| ps.iter().map(|p| p.name.as_str()).collect())
                .unwrap_or_default()
        };
        assert_eq!(names("c1"), ["a"]);
        assert_eq!(names("c2"), ["b"]);
        assert!(waiting_on(None, &nominations).is_empty(), "pods not read");
    }
}
