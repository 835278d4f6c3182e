//! One Diagnosis per root cause: signals resolved to the same category, principal, action,
//! resource and KMS key share a fingerprint (contract §3), a name, and their occurrence counts.

use super::model::category_kebab;
use crate::signal::{Category, Signal};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// A signal with what diagnosis resolved about it (the role behind the session, the KMS key…).
#[derive(Debug, Clone)]
pub struct Incident<'a> {
    pub signal: &'a Signal,
    pub key: Key,
    pub node_pool: Option<String>,
    pub node_class: Option<String>,
    /// Milliseconds since the epoch, where the input gave a time.
    pub time_ms: Option<i64>,
    /// What the signal's text held only in part, and what completed it (`partial`).
    pub cut: Vec<String>,
    /// The resource is the EC2NodeClass's node role completing a cut text (`partial`).
    pub resource_by_class: bool,
}

impl Incident<'_> {
    /// The object whose failure this is, for joining: its NodeClaim; else, for a failure of no
    /// NodeClaim (EC2NodeClass validation, the instance profile), its EC2NodeClass.
    fn object(&self) -> Option<(u8, &str)> {
        match (&self.signal.node_claim, &self.node_class) {
            (Some(claim), _) => Some((0, claim)),
            (None, Some(class)) => Some((1, class)),
            (None, None) => None,
        }
    }

    /// What this incident tells of its failure for joining a fuller one: no more than an
    /// anonymous failure when the text names no principal and its action is only read from
    /// around it (a bare `UnauthorizedOperation` under `with fleet error(s)`, perhaps cut
    /// before AWS's sentence named the action).
    fn told_less(&self) -> Key {
        if self.signal.action_from.is_some() && self.key.principal.is_none() {
            Key {
                category: self.key.category,
                principal: None,
                action: None,
                resource: None,
                kms_key: None,
            }
        } else {
            self.key.clone()
        }
    }
}

/// What identifies a root cause.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub category: Category,
    /// The IAM role ARN (never a session ARN).
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub kms_key: Option<String>,
}

impl Key {
    /// SHA-256 over category, principal, action, resource and KMS key, as lowercase hex.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let category = format!("{:?}", self.category);
        for part in [
            Some(category.as_str()),
            self.principal.as_deref(),
            self.action.as_deref(),
            self.resource.as_deref(),
            self.kms_key.as_deref(),
        ] {
            h.update(part.unwrap_or("").as_bytes());
            h.update([0u8]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `<category in kebab-case>-<first 10 hex digits of the fingerprint>`.
    pub fn name(&self) -> String {
        format!(
            "{}-{}",
            category_kebab(self.category),
            &self.fingerprint()[..10]
        )
    }

    /// Whether this key names no principal and no action: a failure Karpenter summarised
    /// without the AWS message (NodeClaim conditions).
    fn is_anonymous(&self) -> bool {
        self.principal.is_none() && self.action.is_none() && self.kms_key.is_none()
    }

    /// Whether `other` is this failure told more fully: the same category (any, for an
    /// anonymous key), and every part this key names is `other`'s (a text cut before the
    /// principal or the resource, a condition that names no principal).
    fn told_more_fully_by(&self, other: &Key) -> bool {
        let part =
            |mine: &Option<String>, theirs: &Option<String>| mine.is_none() || mine == theirs;
        self != other
            // With its action unknown, a denial is ActionDenied only for want of knowing.
            && (self.category == other.category
                || self.is_anonymous()
                || (self.action.is_none() && self.category == Category::ActionDenied))
            && !other.is_anonymous()
            && part(&self.principal, &other.principal)
            && part(&self.action, &other.action)
            && part(&self.resource, &other.resource)
            && part(&self.kms_key, &other.kms_key)
    }

    /// Among the keys of one NodeClaim's incidents, the one key that tells this failure more
    /// fully and is told more fully by none of them; `None` when there is none, or several
    /// (which one the failure was is then not known).
    fn fuller(&self, keys: &BTreeSet<&Key>) -> Option<Key> {
        let fuller: Vec<&&Key> = keys
            .iter()
            .filter(|k| self.told_more_fully_by(k))
            .filter(|k| !keys.iter().any(|o| k.told_more_fully_by(o)))
            .collect();
        match fuller.as_slice() {
            [only] => Some((**only).clone()),
            _ => None,
        }
    }
}

/// The incidents of one root cause, oldest first.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub key: Key,
    pub incidents: Vec<Incident<'a>>,
}

impl Group<'_> {
    /// The latest incident (by time, then by input order).
    pub fn latest(&self) -> &Incident<'_> {
        self.incidents.last().expect("a group has incidents")
    }

    /// How many incidents were sighted after `until_ms` (one without a time cannot be told
    /// apart from one sighted before, so it is not counted again).
    pub fn sighted_after(&self, until_ms: i64) -> u64 {
        let after = self.incidents.iter().filter(|i| i.time_ms > Some(until_ms));
        after.count() as u64
    }

    /// The NodePools of its failures, by name.
    pub fn node_pools(&self) -> Vec<String> {
        let pools: BTreeSet<&String> = self
            .incidents
            .iter()
            .filter_map(|i| i.node_pool.as_ref())
            .collect();
        pools.into_iter().cloned().collect()
    }

    /// The pending pods waiting on its NodeClaims (`waiting`: by NodeClaim), each once, in
    /// order, with the NodePool of the NodeClaim each waits on.
    pub fn blocked(
        &self,
        waiting: &BTreeMap<&str, Vec<&crate::signal::PodRef>>,
    ) -> Vec<super::model::BlockedPod> {
        let mut pools: BTreeMap<&str, Option<&String>> = BTreeMap::new();
        for i in &self.incidents {
            if let Some(claim) = i.signal.node_claim.as_deref() {
                let pool = pools.entry(claim).or_default();
                *pool = i.node_pool.as_ref().or(*pool);
            }
        }
        let mut out: Vec<super::model::BlockedPod> =
            pools
                .into_iter()
                .flat_map(|(claim, pool)| {
                    waiting.get(claim).into_iter().flatten().map(move |pod| {
                        super::model::BlockedPod {
                            pod: (*pod).clone(),
                            node_pool: pool.cloned(),
                        }
                    })
                })
                .collect();
        out.sort();
        out.dedup_by(|a, b| a.pod == b.pod);
        out
    }

    /// Up to `n` distinct NodeClaim names, most recent first.
    pub fn node_claims(&self, n: usize) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.incidents
            .iter()
            .rev()
            .filter_map(|i| i.signal.node_claim.clone())
            .filter(|name| seen.insert(name.clone()))
            .take(n)
            .collect()
    }
}

/// Groups incidents by key. Identical reports of one failure (the same time, NodeClaim and
/// message seen in two inputs) count once. An incident that tells less (a condition with no
/// principal, a text cut before its resource) joins the group of the one failure of the same
/// object (NodeClaim, else EC2NodeClass: `Incident::object`) that tells it fully, where there
/// is exactly one.
pub fn group(incidents: Vec<Incident<'_>>) -> Vec<Group<'_>> {
    let mut seen = BTreeSet::new();
    let incidents: Vec<Incident<'_>> = incidents
        .into_iter()
        .filter(|i| {
            i.time_ms.is_none()
                || seen.insert((
                    i.time_ms,
                    i.signal.node_claim.clone(),
                    i.signal.message.clone(),
                ))
        })
        .collect();
    // Per object, the distinct keys its incidents resolved to.
    let told: Vec<Key> = incidents.iter().map(Incident::told_less).collect();
    let mut by_object: BTreeMap<(u8, &str), BTreeSet<&Key>> = BTreeMap::new();
    for (i, key) in incidents.iter().zip(&told) {
        if let Some(object) = i.object() {
            by_object.entry(object).or_default().insert(key);
        }
    }
    let joined: Vec<Key> = incidents
        .iter()
        .zip(&told)
        .map(|(i, key)| {
            i.object()
                .and_then(|o| key.fuller(&by_object[&o]))
                .unwrap_or_else(|| i.key.clone())
        })
        .collect();
    // AWS's decoded messages given as input: a failure that carries an encoded message joins
    // the one decoded failure it is told less fully than (the message decoded is its own).
    let decoded: BTreeSet<&Key> = incidents
        .iter()
        .filter(|i| is_decoded(i))
        .map(|i| &i.key)
        .collect();
    let joined: Vec<Key> = incidents
        .iter()
        .zip(&told)
        .zip(joined)
        .map(|((i, told), key)| {
            if decoded.is_empty()
                || is_decoded(i)
                || i.signal.encoded_message.is_none()
                || decoded.contains(&key)
            {
                return key;
            }
            let fuller: Vec<&&Key> = decoded
                .iter()
                .filter(|d| key.told_more_fully_by(d))
                .collect();
            match (fuller.as_slice(), decoded.len()) {
                ([only], _) => (**only).clone(),
                ([], 1) if told.is_anonymous() => (*decoded.first().expect("one")).clone(),
                _ => key,
            }
        })
        .collect();
    let mut groups: BTreeMap<Key, Vec<Incident<'_>>> = BTreeMap::new();
    for (incident, key) in incidents.into_iter().zip(joined) {
        groups.entry(key).or_default().push(incident);
    }
    groups
        .into_iter()
        .map(|(key, mut incidents)| {
            // AWS's record of a failure Karpenter wrote is no second occurrence of it (it is
            // read as AWS's evaluation: `diagnose::decoded_of`).
            if incidents.iter().any(|i| !is_decoded(i)) {
                incidents.retain(|i| !is_decoded(i));
            }
            // Where Karpenter (or AWS) told of it, a text anyone may write (an Event of
            // another reporter) adds nothing: it neither counts nor steers the reasoning.
            if incidents.iter().any(|i| i.signal.author.is_none()) {
                incidents.retain(|i| i.signal.author.is_none());
            }
            // Stable: input order breaks ties, and incidents without a time sort first.
            incidents.sort_by_key(|i| i.time_ms);
            Group { key, incidents }
        })
        .collect()
}

/// Whether an incident is AWS's decoded authorization message given as input.
fn is_decoded(i: &Incident<'_>) -> bool {
    i.signal.rule == crate::signal::DECODED_RULE
}

/// The `cap` groups with the most incidents (ties by name, so the same input keeps the same
/// ones), those Karpenter told of before those only texts anyone may write tell of, so that
/// such texts never crowd out a genuine failure; in name order.
pub fn most_frequent(mut groups: Vec<Group<'_>>, cap: usize) -> Vec<Group<'_>> {
    if groups.len() > cap {
        groups.sort_by_cached_key(|g| {
            (
                g.incidents.iter().all(|i| i.signal.author.is_some()),
                std::cmp::Reverse(g.incidents.len()),
                g.key.name(),
            )
        });
        groups.truncate(cap);
    }
    groups
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::signal::{Origin, Source};

    /// A signal of `claim` with `message`, every other field empty (for the diagnose tests).
    pub(crate) fn signal(claim: Option<&str>, message: &str) -> Signal {
        let origin = Origin {
            file: "f".into(),
            line: 1,
        };
        Signal {
            node_claim: claim.map(str::to_string),
            ..Signal::new(Source::Log, origin, "r", Category::PassRoleDenied, message)
        }
    }

    fn key(principal: Option<&str>) -> Key {
        Key {
            category: Category::PassRoleDenied,
            principal: principal.map(str::to_string),
            action: principal.map(|_| "iam:PassRole".to_string()),
            resource: None,
            kms_key: None,
        }
    }

    #[test]
    fn names_are_stable_kebab_case_and_differ_by_key() {
        let a = key(Some("arn:aws:iam::1:role/a"));
        assert_eq!(a.name(), key(Some("arn:aws:iam::1:role/a")).name());
        assert!(a.name().starts_with("pass-role-denied-"));
        assert_eq!(a.name().len(), "pass-role-denied-".len() + 10);
        assert_ne!(a.name(), key(Some("arn:aws:iam::1:role/b")).name());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn anonymous_incidents_join_the_named_failure_of_their_node_claim() {
        let named = signal(Some("nc-1"), "named");
        let anonymous = signal(Some("nc-1"), "Unauthorized");
        let elsewhere = signal(Some("nc-2"), "Unauthorized");
        let incident = |s, k, t| Incident {
            signal: s,
            key: k,
            node_pool: None,
            node_class: None,
            time_ms: Some(t),
            cut: Vec::new(),
            resource_by_class: false,
        };
        let groups = group(vec![
            incident(&anonymous, key(None), 2),
            incident(&named, key(Some("arn:aws:iam::1:role/a")), 1),
            incident(&elsewhere, key(None), 3),
            incident(&anonymous, key(None), 2),
        ]);
        assert_eq!(groups.len(), 2);
        let named_group = groups.iter().find(|g| g.key.principal.is_some()).unwrap();
        assert_eq!(
            named_group.incidents.len(),
            2,
            "the duplicate report counts once"
        );
        assert_eq!(named_group.latest().signal.message, "Unauthorized");
        assert_eq!(named_group.node_claims(20), ["nc-1"]);
    }

    /// EC2NodeClass validation makes no NodeClaim: its condition (no principal, no resource)
    /// joins the one failure its log line tells fully for the same EC2NodeClass.
    #[test]
    fn a_validation_condition_joins_the_failure_of_its_ec2nodeclass() {
        let condition = signal(None, "Controller isn't authorized to call ec2:RunInstances");
        let line = signal(None, "… is not authorized to perform: ec2:RunInstances …");
        let other = signal(None, "Controller isn't authorized to call ec2:RunInstances");
        let run_instances = |principal: Option<&str>, resource: Option<&str>| Key {
            category: Category::ActionDenied,
            principal: principal.map(str::to_string),
            action: Some("ec2:RunInstances".into()),
            resource: resource.map(str::to_string),
            kms_key: None,
        };
        let incident = |s, k, class: &str| Incident {
            signal: s,
            key: k,
            node_pool: None,
            node_class: Some(class.into()),
            time_ms: None,
            cut: Vec::new(),
            resource_by_class: false,
        };
        let whole = run_instances(
            Some("arn:aws:iam::1:role/ctrl"),
            Some("arn:aws:ec2:us-east-1:1:volume/*"),
        );
        let groups = group(vec![
            incident(&condition, run_instances(None, None), "default"),
            incident(&line, whole.clone(), "default"),
            incident(&other, run_instances(None, None), "gpu"),
        ]);
        assert_eq!(groups.len(), 2, "{groups:?}");
        let joined = groups.iter().find(|g| g.key == whole).unwrap();
        assert_eq!(joined.incidents.len(), 2);
        assert!(groups.iter().any(|g| g.key == run_instances(None, None)));
    }

    #[test]
    fn a_text_anyone_may_write_neither_counts_nor_steers_nor_crowds_out_karpenters() {
        let karpenters = signal(Some("nc-1"), "Karpenter's");
        let forged = Signal {
            author: Some("an Event of reporter mallory in namespace team-a".into()),
            ..signal(Some("nc-1"), "forged, and later")
        };
        let incident = |s, k, t| Incident {
            signal: s,
            key: k,
            node_pool: None,
            node_class: None,
            time_ms: t,
            cut: Vec::new(),
            resource_by_class: false,
        };
        let role = key(Some("arn:aws:iam::1:role/a"));
        let groups = group(vec![
            incident(&karpenters, role.clone(), Some(1)),
            incident(&forged, role.clone(), Some(2)),
        ]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].incidents.len(), 1);
        assert_eq!(groups[0].latest().signal.message, "Karpenter's");
        // Alone, the forged text is still a group (a hint), but never before Karpenter's.
        let many: Vec<Signal> = (0..5)
            .map(|n| Signal {
                author: forged.author.clone(),
                ..signal(Some(&format!("forged-{n}")), "forged")
            })
            .collect();
        let mut incidents: Vec<Incident<'_>> = many
            .iter()
            .flat_map(|s| {
                (0..3).map(move |t| incident(s, key(Some(&s.node_claim.clone().unwrap())), Some(t)))
            })
            .collect();
        incidents.push(incident(&karpenters, role.clone(), Some(1)));
        let kept = most_frequent(group(incidents), 1);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].key, role);
    }

    #[test]
    fn only_incidents_sighted_after_what_was_counted_count_again() {
        let (a, b, c) = (
            signal(Some("nc-1"), "a"),
            signal(Some("nc-2"), "b"),
            signal(None, "c"),
        );
        let incident = |s, t| Incident {
            signal: s,
            key: key(None),
            node_pool: None,
            node_class: None,
            time_ms: t,
            cut: Vec::new(),
            resource_by_class: false,
        };
        let groups = group(vec![
            incident(&a, Some(1)),
            incident(&b, Some(2)),
            incident(&c, None),
        ]);
        assert_eq!(groups[0].incidents.len(), 3);
        assert_eq!(
            groups[0].sighted_after(0),
            2,
            "a time-less one is not told apart"
        );
        assert_eq!(groups[0].sighted_after(1), 1, "lastSeen 1 counted a");
        assert_eq!(groups[0].sighted_after(2), 0);
    }

    #[test]
    fn a_failure_told_less_joins_the_one_failure_of_its_node_claim_that_tells_it_fully() {
        let role = Some("arn:aws:iam::1:role/a");
        let with_resource = |r: &str| Key {
            resource: Some(r.to_string()),
            ..key(role)
        };
        let cut = signal(Some("nc-1"), "cut before the resource");
        let whole = signal(Some("nc-1"), "whole");
        let incident = |s, k| Incident {
            signal: s,
            key: k,
            node_pool: None,
            node_class: None,
            time_ms: None,
            cut: Vec::new(),
            resource_by_class: false,
        };
        let groups = group(vec![
            incident(&cut, key(role)),
            incident(&whole, with_resource("arn:aws:iam::1:role/node")),
        ]);
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].incidents.len(), 2);
        // Two fuller failures of the same NodeClaim: which one it was is not known.
        let other = signal(Some("nc-1"), "another whole");
        let groups = group(vec![
            incident(&cut, key(role)),
            incident(&whole, with_resource("arn:aws:iam::1:role/node")),
            incident(&other, with_resource("arn:aws:iam::1:role/other")),
        ]);
        assert_eq!(groups.len(), 3);
        // Another principal's failure never absorbs it.
        let groups = group(vec![
            incident(&cut, key(role)),
            incident(
                &whole,
                Key {
                    resource: Some("arn:aws:iam::1:role/node".into()),
                    ..key(Some("arn:aws:iam::1:role/b"))
                },
            ),
        ]);
        assert_eq!(groups.len(), 2);
    }
}
