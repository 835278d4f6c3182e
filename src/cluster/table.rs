//! One watched resource kept by name, fed by its watcher's events (`apply`/`delete`, as
//! linkerd2's policy-controller feeds its indexes): what a re-list no longer returns is swept
//! when it ends, so a re-list never holds two copies of the cache; optionally bounded in count.

use kube::Resource;
use kube::runtime::watcher;
use std::collections::{BTreeMap, HashMap};

/// The rows of one resource, by name (`namespace/name` when the watch spans namespaces).
#[derive(Debug)]
pub struct Table<V> {
    rows: HashMap<Box<str>, Row<V>>,
    /// Bumped when a re-list starts; rows the re-list does not stamp are swept at its end.
    epoch: u32,
    /// Bumped on every insertion: the lowest is the oldest row, the first to go over `cap`.
    seq: u64,
    cap: usize,
    /// The rows by insertion (`seq`), kept only when bounded: the first goes first.
    order: BTreeMap<u64, Box<str>>,
    synced: bool,
    /// Rows are named `namespace/name` (a watch of every namespace).
    namespaced: bool,
}

#[derive(Debug)]
struct Row<V> {
    value: V,
    epoch: u32,
    seq: u64,
}

impl<V> Default for Table<V> {
    fn default() -> Table<V> {
        Table::bounded(usize::MAX)
    }
}

impl<V: PartialEq> Table<V> {
    /// Applies one watcher event; `keep` turns an object into its row, `None` when it is not
    /// worth keeping (an object that stops being worth it leaves). Returns whether what the
    /// table holds changed.
    pub fn feed<K: Resource>(
        &mut self,
        event: watcher::Event<K>,
        keep: impl FnOnce(K) -> Option<V>,
    ) -> bool {
        match event {
            watcher::Event::Init => {
                self.epoch = self.epoch.wrapping_add(1);
                false
            }
            watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
                let Some(name) = self.key(&o) else {
                    return false;
                };
                match keep(o) {
                    Some(value) => self.insert(name, value),
                    None => self.remove(&name),
                }
            }
            watcher::Event::Delete(o) => self.key(&o).is_some_and(|name| self.remove(&name)),
            watcher::Event::InitDone => {
                let before = self.rows.len();
                let epoch = self.epoch;
                self.rows.retain(|_, row| row.epoch == epoch);
                let rows = &self.rows;
                self.order.retain(|_, name| rows.contains_key(name));
                let first = !self.synced;
                self.synced = true;
                first || self.rows.len() != before
            }
        }
    }

    /// An object's row name: its name, or `namespace/name` in a table of many namespaces.
    fn key<K: Resource>(&self, o: &K) -> Option<Box<str>> {
        let name = o.meta().name.as_deref()?;
        Some(match (self.namespaced, o.meta().namespace.as_deref()) {
            (true, Some(ns)) => format!("{ns}/{name}").into(),
            _ => name.into(),
        })
    }

    fn insert(&mut self, name: Box<str>, value: V) -> bool {
        let changed = self.rows.get(&name).is_none_or(|old| old.value != value);
        self.seq += 1;
        let row = Row {
            value,
            epoch: self.epoch,
            seq: self.seq,
        };
        if self.cap < usize::MAX {
            self.order.insert(self.seq, name.clone());
        }
        if let Some(old) = self.rows.insert(name, row) {
            self.order.remove(&old.seq);
        }
        if self.rows.len() > self.cap
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.rows.remove(&oldest);
        }
        changed
    }

    /// Removes the row `name`; whether there was one.
    fn remove(&mut self, name: &str) -> bool {
        match self.rows.remove(name) {
            Some(row) => {
                self.order.remove(&row.seq);
                true
            }
            None => false,
        }
    }
}

impl<V> Table<V> {
    /// A table that keeps at most `cap` rows: past it, the one inserted first goes.
    pub fn bounded(cap: usize) -> Table<V> {
        Table {
            rows: HashMap::new(),
            epoch: 0,
            seq: 0,
            cap,
            order: BTreeMap::new(),
            synced: false,
            namespaced: false,
        }
    }

    /// A table of a watch of every namespace, of at most `cap` rows: rows are named
    /// `namespace/name`.
    pub fn namespaced(cap: usize) -> Table<V> {
        Table {
            namespaced: true,
            ..Table::bounded(cap)
        }
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.rows.get(name).map(|row| &row.value)
    }

    /// The rows, by name (the same rows always come in the same order).
    pub fn sorted(&self) -> Vec<(&str, &V)> {
        self.sorted_where(|_| true)
    }

    /// The rows whose value `keep` takes, by name: only those are sorted.
    pub fn sorted_where(&self, keep: impl Fn(&V) -> bool) -> Vec<(&str, &V)> {
        let mut rows: Vec<_> = self
            .rows
            .iter()
            .filter(|(_, row)| keep(&row.value))
            .map(|(name, row)| (&**name, &row.value))
            .collect();
        rows.sort_unstable_by_key(|(name, _)| *name);
        rows
    }

    /// The rows, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &V> {
        self.rows.values().map(|row| &row.value)
    }

    /// Whether the first list has been applied whole.
    pub fn synced(&self) -> bool {
        self.synced
    }
}

#[cfg(test)]
mod tests {
    use super::Table;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher::Event;

    fn object(name: &str, value: &str) -> ConfigMap {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": name}, "data": {"v": value}}),
        )
        .unwrap()
    }

    fn feed(table: &mut Table<String>, event: Event<ConfigMap>) -> bool {
        table.feed(event, |o| {
            o.data
                .and_then(|d| d.get("v").cloned())
                .filter(|v| v != "skip")
        })
    }

    fn names(table: &Table<String>) -> Vec<(&str, &str)> {
        table
            .sorted()
            .into_iter()
            .map(|(n, v)| (n, v.as_str()))
            .collect()
    }

    #[test]
    fn a_relist_sweeps_what_it_no_longer_returns_and_says_what_changed() {
        let mut t = Table::default();
        assert!(!feed(&mut t, Event::Init));
        assert!(feed(&mut t, Event::InitApply(object("a", "1"))));
        assert!(feed(&mut t, Event::InitApply(object("b", "1"))));
        assert!(!t.synced());
        assert!(feed(&mut t, Event::InitDone), "the first list");
        assert!(t.synced());
        assert!(
            !feed(&mut t, Event::Apply(object("a", "1"))),
            "the same again"
        );
        assert!(feed(&mut t, Event::Apply(object("a", "2"))));
        assert!(feed(&mut t, Event::Apply(object("c", "1"))));
        assert!(
            feed(&mut t, Event::Apply(object("c", "skip"))),
            "no longer worth keeping"
        );
        assert!(!feed(&mut t, Event::Delete(object("c", "1"))));
        // A re-list (after 410 Gone) that no longer returns b.
        assert!(!feed(&mut t, Event::Init));
        assert!(!feed(&mut t, Event::InitApply(object("a", "2"))));
        assert_eq!(
            names(&t),
            [("a", "2"), ("b", "1")],
            "kept until the list is whole"
        );
        assert!(feed(&mut t, Event::InitDone));
        assert_eq!(names(&t), [("a", "2")]);
        assert!(!feed(&mut t, Event::Init));
        assert!(!feed(&mut t, Event::InitApply(object("a", "2"))));
        assert!(!feed(&mut t, Event::InitDone), "nothing changed");
        assert!(feed(&mut t, Event::Delete(object("a", "2"))));
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn a_bounded_table_lets_the_oldest_row_go() {
        let mut t = Table::bounded(2);
        feed(&mut t, Event::Apply(object("a", "1")));
        feed(&mut t, Event::Apply(object("b", "1")));
        feed(&mut t, Event::Apply(object("a", "2")));
        feed(&mut t, Event::Apply(object("c", "1")));
        assert_eq!(names(&t), [("a", "2"), ("c", "1")]);
        // A deleted row, or one the re-list swept, no longer counts as the oldest.
        feed(&mut t, Event::Delete(object("a", "2")));
        feed(&mut t, Event::Apply(object("d", "1")));
        assert_eq!(names(&t), [("c", "1"), ("d", "1")]);
        feed(&mut t, Event::Init);
        feed(&mut t, Event::InitApply(object("d", "1")));
        feed(&mut t, Event::InitDone);
        feed(&mut t, Event::Apply(object("e", "1")));
        feed(&mut t, Event::Apply(object("f", "1")));
        assert_eq!(names(&t), [("e", "1"), ("f", "1")]);
        assert_eq!(t.order.len(), t.rows.len());
        // Namespaced and bounded alike.
        let mut wide = Table::namespaced(1);
        let mut cm = object("g", "1");
        cm.metadata.namespace = Some("ns".into());
        feed(&mut wide, Event::Apply(cm));
        feed(&mut wide, Event::Apply(object("h", "1")));
        assert_eq!(names(&wide), [("h", "1")]);
    }
}
