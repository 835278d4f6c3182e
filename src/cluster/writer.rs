//! The one writer of Diagnoses: server-side apply of spec and status (field manager
//! `karpenter-doctor`), counting on from what the cluster holds, re-checks, deletions, the cap,
//! and the Events that say when a root cause is found, changes, resolves or recurs.

use super::metrics::Metrics;
use super::resources;
use crate::diagnose::lifecycle::{self, Verification};
use crate::diagnose::model::{Condition, Confidence, Diagnosis, DiagnosisSpec, DiagnosisStatus};
use crate::signal::Observations;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "karpenter-doctor";

/// A write refused with 409 Conflict is tried this many times in all.
const CONFLICT_ATTEMPTS: usize = 3;

/// What this process knows of one Diagnosis in the cluster.
#[derive(Debug, Clone, Default)]
struct Known {
    /// The status when this process first met it: counting continues from there.
    baseline: Baseline,
    category: String,
    reason: String,
    resolved: bool,
    /// Its root cause is `Predicted`: no failure seen yet.
    predicted: bool,
    /// The NodePool whose launches failed (`spec.nodePool`), empty where none.
    node_pool: String,
}

#[derive(Debug, Clone, Default)]
struct Baseline {
    occurrences: u64,
    first_seen: Option<String>,
    affected: Vec<String>,
    /// Its `lastSeen` then (ms): the occurrences sighted up to it are in `occurrences`.
    counted_until: Option<i64>,
}

/// When `Resolved` last became True; `None` while it is not.
fn resolved_since(conditions: &[Condition]) -> Option<i64> {
    conditions
        .iter()
        .find(|c| c.type_ == "Resolved" && c.status == "True")
        .and_then(|c| crate::policy::typed::date(&c.last_transition_time))
}

/// A Diagnosis as listed from the cluster.
#[derive(Debug, Clone)]
pub struct Stored {
    pub name: String,
    pub uid: Option<String>,
    pub generation: Option<i64>,
    /// `None` when the stored spec is not one this version can read.
    pub spec: Option<DiagnosisSpec>,
    status: Value,
    view: DiagnosisStatusView,
}

impl Stored {
    /// What retention needs to know of it.
    pub fn kept(&self) -> lifecycle::Kept {
        lifecycle::Kept {
            name: self.name.clone(),
            resolved_since_ms: resolved_since(&self.view.conditions()),
            last_seen_ms: self.last_seen_ms(),
        }
    }

    /// The root cause's reason code, where the stored one is one this version knows.
    pub fn reason(&self) -> Option<crate::diagnose::model::ReasonCode> {
        crate::diagnose::model::ReasonCode::ALL
            .into_iter()
            .find(|r| r.as_str() == self.view.root_cause.reason)
    }

    /// Whether its root cause is `Predicted` (by the controller's preflight; no failure seen).
    pub fn predicted(&self) -> bool {
        self.view.root_cause.confidence == "Predicted"
    }

    /// Whether an object in `obs` still reports its failure (`lifecycle::ongoing`).
    pub fn ongoing(&self, obs: &Observations) -> bool {
        self.spec
            .as_ref()
            .is_some_and(|spec| lifecycle::ongoing(spec, &self.view.affected_node_claims, obs))
    }

    fn last_seen_ms(&self) -> Option<i64> {
        self.view
            .last_seen
            .as_deref()
            .and_then(crate::policy::typed::date)
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written; the conditions now held.
    Conditions(Vec<Condition>),
    /// Not created: the cluster already holds the maximum number of Diagnoses.
    AtCap,
}

pub struct Writer {
    api: Api<DynamicObject>,
    recorder: Recorder,
    known: BTreeMap<String, Known>,
    /// Per Diagnosis, the spec fields another field manager holds: left to it.
    yielded: BTreeMap<String, std::collections::BTreeSet<String>>,
    cap: usize,
    metrics: Arc<Metrics>,
}

impl Writer {
    /// `instance` names this replica in the Events it records; at most `cap` Diagnoses exist.
    pub fn new(
        client: kube::Client,
        instance: Option<String>,
        cap: usize,
        metrics: Arc<Metrics>,
    ) -> Writer {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance,
        };
        Writer {
            api: Api::all_with(client.clone(), &resources::diagnoses()),
            recorder: Recorder::new(client, reporter),
            known: BTreeMap::new(),
            yielded: BTreeMap::new(),
            cap,
            metrics,
        }
    }

    /// The Diagnoses in the cluster, by name; the ones met for the first time become known.
    pub async fn list(&mut self) -> Result<Vec<Stored>, kube::Error> {
        let list = self.api.list(&Default::default()).await?;
        let mut out = Vec::new();
        for obj in list.items {
            let Some(name) = obj.metadata.name.clone() else {
                continue;
            };
            let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
            let view: DiagnosisStatusView =
                serde_json::from_value(status.clone()).unwrap_or_default();
            let spec: Option<DiagnosisSpec> = obj
                .data
                .get("spec")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            self.known
                .entry(name.clone())
                .or_insert_with(|| known(&view, spec.as_ref()));
            out.push(Stored {
                name,
                uid: obj.metadata.uid.clone(),
                generation: obj.metadata.generation,
                spec,
                status,
                view,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Up to when (`lastSeen`, ms) the Diagnosis `name` had counted its occurrences when this
    /// process met it in the cluster (`diagnose::diagnose_counted`); `None` for one it created.
    pub fn counted_until(&self, name: &str) -> Option<i64> {
        self.known.get(name)?.baseline.counted_until
    }

    /// The latest `lastSeen` of the Diagnoses already in the cluster: where reading resumes.
    pub async fn resume_point(&mut self) -> Result<Option<String>, kube::Error> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter_map(|s| s.view.last_seen)
            .max())
    }

    /// Writes one Diagnosis: spec by server-side apply, then status, merged with what the
    /// cluster holds. A new one is not created at the cap.
    /// `stuck`: the NodeClaims that still carry the failure after a verified fix
    /// (`lifecycle::stuck`), named with the command that clears them.
    pub async fn write(
        &mut self,
        d: &Diagnosis,
        verification: &Verification,
        ongoing: bool,
        stuck: &[String],
        now_ms: i64,
    ) -> Result<Written, kube::Error> {
        let name = &d.metadata.name;
        if !self.known.contains_key(name) && self.known.len() >= self.cap {
            return Ok(Written::AtCap);
        }
        let body = json!({"apiVersion": d.api_version, "kind": d.kind, "metadata": {"name": name}, "spec": d.spec});
        let applied = self.apply_spec(name, body).await?;
        let held_raw = applied.data.get("status").cloned();
        let held: Option<DiagnosisStatusView> = held_raw
            .as_ref()
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        let base = self
            .known
            .entry(name.clone())
            .or_insert_with(|| {
                held.as_ref()
                    .map_or_else(Known::default, |h| known(h, Some(&d.spec)))
            })
            .baseline
            .clone();
        let merged = merge(
            &d.status,
            &base,
            held.as_ref(),
            verification,
            ongoing,
            now_ms,
        );
        let mut status = serde_json::to_value(&merged).unwrap_or_default();
        keep_verified_cause(&mut status, held_raw.as_ref(), verification);
        name_stuck(&mut status, stuck);
        observe_generation(&mut status, applied.metadata.generation);
        let view: DiagnosisStatusView = serde_json::from_value(status.clone()).unwrap_or_default();
        let body = json!({"apiVersion": d.api_version, "kind": d.kind, "metadata": {"name": name}, "status": status});
        let (patch, params) = (Patch::Apply(&body), status_params());
        retry_conflicts(|| self.api.patch_status(name, &params, &patch)).await?;
        let previous = held
            .as_ref()
            .map(DiagnosisStatusView::conditions)
            .unwrap_or_default();
        let conditions = view.conditions();
        self.note(name, applied.metadata.uid, &previous, &conditions)
            .await;
        if let Some(k) = self.known.get_mut(name) {
            k.category = category_label(d.spec.category).into();
            // As stored: another manager may hold the field (`yielded`).
            k.node_pool = applied.data["spec"]["nodePool"]
                .as_str()
                .unwrap_or_default()
                .into();
            k.reason = view.root_cause.reason.clone();
            k.resolved = is_true(&conditions, "Resolved");
            k.predicted = view.root_cause.confidence == "Predicted";
        }
        Ok(Written::Conditions(conditions))
    }

    /// Re-checks a Diagnosis no current signal produced: its Resolved condition from the
    /// verification now (`ongoing`: an object still reports the failure); written only when it
    /// changed. Returns what retention needs to know of it now.
    pub async fn recheck(
        &mut self,
        stored: &Stored,
        verification: &Verification,
        ongoing: bool,
        now_ms: i64,
    ) -> Result<lifecycle::Kept, kube::Error> {
        let previous = stored.view.conditions();
        let (status, reason, message) = lifecycle::resolved(
            verification,
            previous.iter().find(|c| c.type_ == "Resolved"),
            stored.last_seen_ms(),
            ongoing,
            now_ms,
        );
        let desired: Vec<Condition> = previous
            .iter()
            .cloned()
            .map(|mut c| {
                if c.type_ == "Resolved" {
                    (c.status, c.reason, c.message) =
                        (status.into(), reason.into(), message.clone());
                }
                c
            })
            .collect();
        let now = crate::diagnose::time::format(now_ms);
        let conditions = lifecycle::transition(&previous, desired, &now);
        let kept = lifecycle::Kept {
            resolved_since_ms: resolved_since(&conditions),
            ..stored.kept()
        };
        if conditions == previous {
            return Ok(kept);
        }
        let mut full = stored.status.clone();
        full["conditions"] = serde_json::to_value(&conditions).unwrap_or_default();
        observe_generation(&mut full, stored.generation);
        let body = json!({"apiVersion": crate::diagnose::model::API_VERSION, "kind": crate::diagnose::model::KIND,
            "metadata": {"name": stored.name}, "status": full});
        let (patch, params) = (Patch::Apply(&body), status_params());
        retry_conflicts(|| self.api.patch_status(&stored.name, &params, &patch)).await?;
        self.note(&stored.name, stored.uid.clone(), &previous, &conditions)
            .await;
        if let Some(k) = self.known.get_mut(&stored.name) {
            k.resolved = is_true(&conditions, "Resolved");
        }
        Ok(kept)
    }

    /// Server-side apply of a Diagnosis's spec, never forced: a field another field manager
    /// holds (the server's 409 names it) is left out of this and every later apply by this
    /// process and stays theirs, logged and counted once
    /// (`kube_errors_total{error="conflict",resource="diagnoses"}`).
    async fn apply_spec(
        &mut self,
        name: &str,
        mut body: Value,
    ) -> Result<DynamicObject, kube::Error> {
        let params = PatchParams::apply(FIELD_MANAGER);
        let yielded = self.yielded.entry(name.to_string()).or_default();
        for field in yielded.iter() {
            drop_field(&mut body, field);
        }
        let mut attempt = 1;
        loop {
            let e = match self.api.patch(name, &params, &Patch::Apply(&body)).await {
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < CONFLICT_ATTEMPTS => e,
                other => return other,
            };
            attempt += 1;
            let held = held_by_others(&e);
            if held.is_empty() {
                conflict_backoff(attempt).await;
                continue;
            }
            self.metrics
                .kube_error("diagnoses", &kube::Error::Api(e.clone()));
            for (field, manager) in held {
                super::log::warn(&format!(
                    "Diagnosis {name}: {field} is held by field manager {manager}; left to it, not forced"
                ));
                drop_field(&mut body, &field);
                yielded.insert(field);
            }
        }
    }

    /// Deletes a Diagnosis (retention, the cap); one already gone is fine.
    pub async fn delete(&mut self, name: &str) -> Result<(), kube::Error> {
        match self.api.delete(name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
        self.known.remove(name);
        self.yielded.remove(name);
        Ok(())
    }

    /// (category, reason, state, nodepool) of every Diagnosis known, for the diagnoses gauge:
    /// `state` is `resolved`, `predicted` (no failure seen yet) or `active`.
    pub fn states(&self) -> impl Iterator<Item = [&str; 4]> {
        self.known
            .values()
            .filter(|k| !k.reason.is_empty())
            .map(|k| {
                let state = match (k.resolved, k.predicted) {
                    (true, _) => "resolved",
                    (false, true) => "predicted",
                    (false, false) => "active",
                };
                [
                    k.category.as_str(),
                    k.reason.as_str(),
                    state,
                    k.node_pool.as_str(),
                ]
            })
    }

    /// Whether the Diagnosis `name` is known with a failure seen (not only predicted): a
    /// prediction never overwrites it.
    pub fn seen(&self, name: &str) -> bool {
        self.known
            .get(name)
            .is_some_and(|k| !k.reason.is_empty() && !k.predicted)
    }

    /// Records an Event on the Diagnosis when a root cause is found or changes (Warning),
    /// resolves (Normal) or recurs (Warning). A failure to record is logged, never fatal.
    async fn note(
        &self,
        name: &str,
        uid: Option<String>,
        before: &[Condition],
        after: &[Condition],
    ) {
        let Some((type_, reason, note)) = change(before, after) else {
            return;
        };
        let reference = ObjectReference {
            api_version: Some(crate::diagnose::model::API_VERSION.into()),
            kind: Some(crate::diagnose::model::KIND.into()),
            name: Some(name.into()),
            uid,
            ..Default::default()
        };
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(crate::signal::text::cut(&note, 1000).to_string()),
            action: "Diagnose".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            self.metrics.kube_error("events", &e);
            super::log::warn(&format!("recording an Event on Diagnosis {name}: {e}"));
        }
    }
}

/// metav1: each condition names the generation of the spec it was computed for.
fn observe_generation(status: &mut Value, generation: Option<i64>) {
    let Some(generation) = generation else { return };
    for c in status["conditions"].as_array_mut().into_iter().flatten() {
        c["observedGeneration"] = json!(generation);
    }
}

/// Once a fix is verified, the failures seen before it no longer have a cause in the facts of
/// now (diagnosed afresh they are `Undetermined`): the cause found before the fix is kept.
fn keep_verified_cause(status: &mut Value, held: Option<&Value>, verification: &Verification) {
    let Some(held) = held else { return };
    let reason = |s: &Value| s["rootCause"]["reason"].as_str().unwrap_or("").to_string();
    let undetermined = crate::diagnose::model::ReasonCode::Undetermined.as_str();
    if !matches!(verification, Verification::Fixed(_))
        || reason(status) != undetermined
        || reason(held).is_empty()
        || reason(held) == undetermined
    {
        return;
    }
    status["rootCause"] = held["rootCause"].clone();
    status["remediation"] = held["remediation"].clone();
    let diagnosed = held["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Diagnosed"))
        .cloned();
    if let (Some(diagnosed), Some(conditions)) = (diagnosed, status["conditions"].as_array_mut()) {
        for c in conditions.iter_mut().filter(|c| c["type"] == "Diagnosed") {
            *c = diagnosed.clone();
        }
    }
}

/// Names the NodeClaims stuck after a verified fix: first in the steps, their deletion in the
/// commands, and in the Resolved condition's message.
fn name_stuck(status: &mut Value, stuck: &[String]) {
    let Some((step, command)) = lifecycle::delete_stuck(stuck) else {
        return;
    };
    let remediation = &mut status["remediation"];
    if let Some(steps) = remediation["steps"].as_array_mut() {
        steps.insert(0, json!(step));
    }
    match remediation["commands"].as_array_mut() {
        Some(commands) => commands.push(json!(command)),
        None => remediation["commands"] = json!([command]),
    }
    for c in status["conditions"].as_array_mut().into_iter().flatten() {
        if c["type"] == "Resolved"
            && let Some(message) = c["message"].as_str()
        {
            c["message"] = json!(format!(
                "{message}; {} NodeClaim(s) still carry the old failure (see remediation)",
                stuck.len()
            ));
        }
    }
}

/// The Event a change of conditions deserves: (type, reason, note).
fn change(before: &[Condition], after: &[Condition]) -> Option<(EventType, &'static str, String)> {
    let find = |list: &[Condition], t: &str| list.iter().find(|c| c.type_ == t).cloned();
    let diagnosed = find(after, "Diagnosed")?;
    let resolved = find(after, "Resolved");
    match (find(before, "Diagnosed"), find(before, "Resolved")) {
        (None, _) => Some((
            EventType::Warning,
            "RootCauseFound",
            format!("{}: {}", diagnosed.reason, diagnosed.message),
        )),
        (Some(old), _) if old.reason != diagnosed.reason => Some((
            EventType::Warning,
            "RootCauseChanged",
            format!(
                "{} (was {}): {}",
                diagnosed.reason, old.reason, diagnosed.message
            ),
        )),
        (_, Some(old)) => match resolved {
            Some(new) if new.status == "True" && old.status != "True" => Some((
                EventType::Normal,
                "Resolved",
                format!("{}: {}", new.reason, new.message),
            )),
            Some(new) if new.status != "True" && old.status == "True" => Some((
                EventType::Warning,
                "Recurred",
                format!("{}: {}", new.reason, new.message),
            )),
            _ => None,
        },
        _ => None,
    }
}

fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Runs a write again when the API server answers 409 Conflict (another writer got there
/// first), a few times with a short pause.
/// How status is applied: forced. The status subresource is the doctor's alone (the CRD's
/// one writer of status), so what a status editor wrote over it is taken back; spec and
/// metadata are never forced (`Writer::apply_spec`).
fn status_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// The fields a server-side apply conflict names, with the manager holding each
/// (`conflict with "kubectl" using …`), from the 409's causes.
fn held_by_others(status: &kube::core::Status) -> Vec<(String, String)> {
    let causes = status.details.as_ref().map(|d| d.causes.as_slice());
    causes
        .unwrap_or_default()
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict" && c.field.starts_with('.'))
        .map(|c| {
            let manager = c.message.split('"').nth(1).unwrap_or("another manager");
            (c.field.clone(), manager.to_string())
        })
        .collect()
}

/// Removes the field at `path` (`.spec.category`; from a list element on, `.spec.x[…]`, the
/// whole list) from an apply body; a path not in it changes nothing.
fn drop_field(body: &mut Value, path: &str) {
    let path = path.split('[').next().unwrap_or_default();
    let mut keys: Vec<&str> = path.split('.').filter(|k| !k.is_empty()).collect();
    let Some(last) = keys.pop() else { return };
    let mut at = body;
    for k in keys {
        match at.get_mut(k) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(map) = at.as_object_mut() {
        map.remove(last);
    }
}

/// The wait before attempt `attempt` of a write refused with 409.
async fn conflict_backoff(attempt: usize) {
    tokio::time::sleep(Duration::from_millis(100 * attempt as u64)).await;
}

async fn retry_conflicts<T, Fut>(mut write: impl FnMut() -> Fut) -> Result<T, kube::Error>
where
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < CONFLICT_ATTEMPTS => {
                attempt += 1;
                conflict_backoff(attempt).await;
            }
            other => return other,
        }
    }
}

/// The parts of a stored status the writer reads back (tolerant of older or partial objects).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DiagnosisStatusView {
    occurrences: u64,
    first_seen: Option<String>,
    last_seen: Option<String>,
    affected_node_claims: Vec<String>,
    conditions: Vec<ConditionView>,
    root_cause: RootCauseView,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RootCauseView {
    reason: String,
    confidence: String,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ConditionView {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    reason: String,
    message: String,
    last_transition_time: String,
    observed_generation: Option<i64>,
}

impl DiagnosisStatusView {
    fn condition(&self, type_: &str) -> Option<&ConditionView> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    fn conditions(&self) -> Vec<Condition> {
        self.conditions
            .iter()
            .map(|c| Condition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: c.last_transition_time.clone(),
                observed_generation: c.observed_generation,
            })
            .collect()
    }
}

fn known(held: &DiagnosisStatusView, spec: Option<&DiagnosisSpec>) -> Known {
    Known {
        baseline: Baseline {
            occurrences: held.occurrences,
            first_seen: held.first_seen.clone(),
            affected: held.affected_node_claims.clone(),
            counted_until: held
                .last_seen
                .as_deref()
                .and_then(crate::policy::typed::date),
        },
        category: spec.map_or("", |s| category_label(s.category)).into(),
        node_pool: spec.and_then(|s| s.node_pool.clone()).unwrap_or_default(),
        reason: held.root_cause.reason.clone(),
        resolved: held
            .condition("Resolved")
            .is_some_and(|c| c.status == "True"),
        predicted: held.root_cause.confidence == "Predicted",
    }
}

/// The `category` label value of a Diagnosis's category.
pub fn category_label(c: crate::signal::Category) -> &'static str {
    use crate::signal::Category;
    match c {
        Category::PassRoleDenied => "PassRoleDenied",
        Category::ActionDenied => "ActionDenied",
        Category::KmsKeyUnusable => "KmsKeyUnusable",
        Category::CredentialsDenied => "CredentialsDenied",
    }
}

/// The status to write: this process's count (of what the baseline had not counted) on top of
/// the baseline, the earliest first and latest last sighting, the NodeClaims merged (most
/// recent first, at most 20), Resolved from the re-check, and lastTransitionTime kept where a
/// status did not flip.
fn merge(
    fresh: &DiagnosisStatus,
    base: &Baseline,
    held: Option<&DiagnosisStatusView>,
    verification: &Verification,
    ongoing: bool,
    now_ms: i64,
) -> DiagnosisStatus {
    let mut status = fresh.clone();
    status.occurrences = base.occurrences + fresh.occurrences;
    status.first_seen = match (&base.first_seen, &fresh.first_seen) {
        (Some(a), Some(b)) => Some(a.min(b).clone()),
        (a, b) => a.clone().or(b.clone()),
    };
    status.last_seen = match (held.and_then(|h| h.last_seen.clone()), &fresh.last_seen) {
        (Some(a), Some(b)) => Some(a.max(b.clone())),
        (a, b) => a.or(b.clone()),
    };
    let mut affected = fresh.affected_node_claims.clone();
    for n in &base.affected {
        if !affected.contains(n) {
            affected.push(n.clone());
        }
    }
    affected.truncate(20);
    status.affected_node_claims = affected;
    let previous = held
        .map(DiagnosisStatusView::conditions)
        .unwrap_or_default();
    let last_seen_ms = status
        .last_seen
        .as_deref()
        .and_then(crate::policy::typed::date);
    // A prediction keeps its own `Resolved` (False, NotYetSeen): no failure to verify yet.
    if fresh.root_cause.confidence != Confidence::Predicted {
        let (resolved, reason, message) = lifecycle::resolved(
            verification,
            previous.iter().find(|c| c.type_ == "Resolved"),
            last_seen_ms,
            ongoing,
            now_ms,
        );
        for c in status
            .conditions
            .iter_mut()
            .filter(|c| c.type_ == "Resolved")
        {
            c.status = resolved.into();
            c.reason = reason.into();
            c.message = message.clone();
        }
    }
    let now = crate::diagnose::time::format(now_ms);
    status.conditions = lifecycle::transition(&previous, status.conditions, &now);
    status
}

#[cfg(test)]
mod tests {
    //! The writer against kube's mocked HTTP service (the ApiServerVerifier pattern of
    //! kube-rs/controller-rs): each request is checked, each answer scripted.

    use super::*;
    use crate::cluster::mock::answer;
    use crate::facts::SnapshotFacts;
    use crate::signal::{Observations, Scanner};
    use ::http::{Request, Response};
    use kube::client::Body;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn diagnosis() -> Diagnosis {
        let scanner = Scanner::new().unwrap();
        let mut obs = Observations::default();
        let log = include_bytes!("../../examples/china-passrole/karpenter.log");
        let _ = scanner.scan("karpenter.log", &log[..], &mut obs, &mut |_| {});
        crate::diagnose::diagnose(&obs, &SnapshotFacts::default(), None).remove(0)
    }

    fn writer() -> (Writer, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        (
            Writer::new(client, Some("doctor-0".into()), 10, Default::default()),
            handle,
        )
    }

    fn conflict() -> Response<Body> {
        answer(
            409,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the object has been modified", "reason": "Conflict", "code": 409}),
        )
    }

    /// The next request: (method, path and query, body as JSON), answered with `response`.
    async fn expect(handle: &mut Handle, response: Response<Body>) -> (String, String, Value) {
        let (request, send) = handle.next_request().await.expect("a request");
        let (method, uri) = (request.method().to_string(), request.uri().to_string());
        let bytes = request.into_body().collect_bytes().await.unwrap();
        send.send_response(response);
        (
            method,
            uri,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn a_new_diagnosis_is_applied_its_status_retried_on_conflict_and_a_warning_recorded() {
        let d = diagnosis();
        let name = d.metadata.name.clone();
        let seen = d.status.occurrences;
        assert!(seen > 1, "the seed log fails more than once");
        let (mut writer, mut handle) = writer();
        let server = tokio::spawn(async move {
            let applied = json!({"apiVersion": "karpenter-doctor.io/v1alpha1", "kind": "Diagnosis",
                "metadata": {"name": "x", "uid": "u-1"}, "spec": {}});
            let (method, uri, body) = expect(&mut handle, answer(200, applied.clone())).await;
            assert_eq!(method, "PATCH");
            assert!(
                uri.contains("/diagnoses/") && !uri.contains("/status"),
                "{uri}"
            );
            assert!(
                uri.contains("fieldManager=karpenter-doctor") && !uri.contains("force=true"),
                "the spec is never forced: {uri}"
            );
            assert!(
                body.get("status").is_none(),
                "the spec apply carries no status"
            );
            let (_, uri, _) = expect(&mut handle, conflict()).await;
            assert!(
                uri.contains("/status?") && uri.contains("force=true"),
                "{uri}"
            );
            let (method, uri, body) = expect(&mut handle, answer(200, applied)).await;
            assert_eq!(method, "PATCH");
            assert!(uri.contains("/status?"), "the conflict is retried: {uri}");
            assert_eq!(
                body["status"]["occurrences"], seen,
                "a new one counts from 0"
            );
            let (method, uri, event) = expect(&mut handle, answer(201, json!({}))).await;
            assert_eq!(method, "POST");
            assert!(
                uri.starts_with("/apis/events.k8s.io/v1/namespaces/default/events"),
                "{uri}"
            );
            (
                event["type"].clone(),
                event["reason"].clone(),
                event["regarding"]["uid"].clone(),
            )
        });
        let written = writer
            .write(
                &d,
                &Verification::Unknown("no facts".into()),
                false,
                &[],
                1_717_493_000_000,
            )
            .await
            .unwrap();
        let Written::Conditions(conditions) = written else {
            panic!("written")
        };
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "Resolved" && c.status == "False")
        );
        let (type_, reason, uid) = server.await.unwrap();
        assert_eq!(
            (type_, reason, uid),
            (json!("Warning"), json!("RootCauseFound"), json!("u-1"))
        );
        let states: Vec<_> = writer.states().collect();
        assert_eq!(
            states,
            [[
                "PassRoleDenied",
                d.status.root_cause.reason.as_str(),
                "active",
                d.spec.node_pool.as_deref().unwrap_or("")
            ]]
        );
        assert!(name.starts_with("pass-role-denied-"));
    }

    #[tokio::test]
    async fn a_spec_field_another_manager_holds_is_left_to_it_not_forced() {
        let d = diagnosis();
        let code = d.spec.error_code.clone();
        assert!(code.is_some(), "the seed names its error code");
        let (mut writer, mut handle) = writer();
        let held = answer(
            409,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Apply failed with 1 conflict: conflict with \"kubectl\" using karpenter-doctor.io/v1alpha1: .spec.errorCode",
                "reason": "Conflict", "code": 409, "details": {"causes": [{"reason": "FieldManagerConflict",
                    "message": "conflict with \"kubectl\" using karpenter-doctor.io/v1alpha1", "field": ".spec.errorCode"}]}}),
        );
        let server = tokio::spawn(async move {
            let applied = json!({"apiVersion": "karpenter-doctor.io/v1alpha1", "kind": "Diagnosis",
                "metadata": {"name": "x", "uid": "u-1"}, "spec": {}});
            let (_, _, first) = expect(&mut handle, held).await;
            let (method, uri, second) = expect(&mut handle, answer(200, applied.clone())).await;
            assert_eq!(method, "PATCH");
            assert!(
                !uri.contains("/status") && !uri.contains("force=true"),
                "{uri}"
            );
            let (_, uri, _) = expect(&mut handle, answer(200, applied.clone())).await;
            assert!(uri.contains("/status?"), "{uri}");
            let _ = expect(&mut handle, answer(201, json!({}))).await;
            // The next write leaves the field out from the start: no second conflict.
            let (_, uri, third) = expect(&mut handle, answer(200, applied.clone())).await;
            assert!(!uri.contains("/status"), "{uri}");
            let _ = expect(&mut handle, answer(200, applied)).await;
            let _ = expect(&mut handle, answer(201, json!({}))).await;
            (first, second, third)
        });
        for _ in 0..2 {
            writer
                .write(&d, &Verification::Unknown(String::new()), false, &[], 0)
                .await
                .unwrap();
        }
        let (first, second, third) = server.await.unwrap();
        assert_eq!(third, second);
        assert_eq!(first["spec"]["errorCode"], json!(code));
        assert!(second["spec"].get("errorCode").is_none(), "{second:#}");
        let mut rest = first.clone();
        rest["spec"].as_object_mut().unwrap().remove("errorCode");
        assert_eq!(second, rest, "only the held field is left out");
        let metrics = writer.metrics.encode();
        assert!(
            metrics.contains(
                r#"karpenter_doctor_kube_errors_total{error="conflict",resource="diagnoses"} 1"#
            ),
            "{metrics}"
        );
    }

    #[test]
    fn a_held_field_is_dropped_from_the_apply_body_by_its_path() {
        let mut body = json!({"spec": {"a": 1, "list": [1, 2], "deep": {"b": 2, "c": 3}}});
        for path in [
            ".spec.deep.b",
            ".spec.list[0]",
            ".spec.missing.x",
            ".status",
            "",
            ".",
        ] {
            drop_field(&mut body, path);
        }
        assert_eq!(body, json!({"spec": {"a": 1, "deep": {"c": 3}}}));
        let status: kube::core::Status = serde_json::from_value(json!({"code": 409,
            "details": {"causes": [
                {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl\" using v1", "field": ".spec.a"},
                {"reason": "FieldManagerConflict", "message": "no manager named", "field": ".spec.b"},
                {"reason": "FieldValueInvalid", "message": "x", "field": "spec.c"}]}}))
        .unwrap();
        assert_eq!(
            held_by_others(&status),
            [
                (".spec.a".to_string(), "kubectl".to_string()),
                (".spec.b".to_string(), "another manager".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn conflicts_that_persist_end_in_an_error_not_a_loop() {
        let (mut writer, mut handle) = writer();
        let server = tokio::spawn(async move {
            for _ in 0..CONFLICT_ATTEMPTS {
                let (method, _, _) = expect(&mut handle, conflict()).await;
                assert_eq!(method, "PATCH");
            }
        });
        let error = writer
            .write(
                &diagnosis(),
                &Verification::Unknown(String::new()),
                false,
                &[],
                0,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, kube::Error::Api(ref e) if e.code == 409),
            "{error}"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_quiet_diagnosis_resolves_as_not_recurring_unless_its_node_pool_still_fails() {
        let (mut writer, mut handle) = writer();
        let at = |t: &str| crate::policy::typed::date(t).unwrap();
        let listed = json!({"apiVersion": "karpenter-doctor.io/v1alpha1", "kind": "DiagnosisList", "metadata": {},
            "items": [{"apiVersion": "karpenter-doctor.io/v1alpha1", "kind": "Diagnosis",
                "metadata": {"name": "kms-key-unusable-0123456789", "uid": "u-1", "generation": 1},
                "spec": {"category": "KmsKeyUnusable", "nodePool": "default"},
                "status": {"occurrences": 3, "lastSeen": "2026-01-01T01:00:00Z", "conditions": [
                    {"type": "Diagnosed", "status": "True", "reason": "KeyPendingDeletion", "message": "m",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "Resolved", "status": "False", "reason": "FailureObserved",
                        "message": "the fix could not be verified: the key cannot be read",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}]});
        let server = tokio::spawn(async move {
            let (method, uri, _) = expect(&mut handle, answer(200, listed)).await;
            assert_eq!((method.as_str(), uri.contains("/diagnoses")), ("GET", true));
            let (method, uri, body) = expect(&mut handle, answer(200, json!({}))).await;
            assert_eq!(method, "PATCH");
            assert!(uri.contains("/status?"), "{uri}");
            let resolved = &body["status"]["conditions"][1];
            assert_eq!(
                (&resolved["status"], &resolved["reason"]),
                (&json!("True"), &json!("NotRecurring")),
                "{body:#}"
            );
            let (_, uri, event) = expect(&mut handle, answer(201, json!({}))).await;
            assert!(uri.contains("/events"), "{uri}");
            assert_eq!(event["reason"], "Resolved", "{event:#}");
        });
        let stored = writer.list().await.unwrap();
        // A restart counts on only from what it held: occurrences up to its lastSeen.
        assert_eq!(
            writer.counted_until("kms-key-unusable-0123456789"),
            Some(at("2026-01-01T01:00:00Z"))
        );
        assert_eq!(writer.counted_until("pass-role-denied-0123456789"), None);
        let pool = |status: &str| {
            let mut obs = Observations::default();
            let yaml = format!(
                "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nstatus:\n  conditions:\n  - type: NodeRegistrationHealthy\n    status: \"{status}\"\n"
            );
            let _ = Scanner::new()
                .unwrap()
                .scan("p.yaml", yaml.as_bytes(), &mut obs, &mut |_| {});
            obs
        };
        let (unhealthy, healthy) = (pool("False"), pool("True"));
        assert!(stored[0].ongoing(&unhealthy) && !stored[0].ongoing(&healthy));
        let unknown = Verification::Unknown("the key cannot be read".into());
        let now = at("2026-01-01T03:00:00Z");
        // Two hours quiet, but the NodePool's nodes still do not register: nothing is written.
        let kept = writer
            .recheck(&stored[0], &unknown, true, now)
            .await
            .unwrap();
        assert_eq!(kept.resolved_since_ms, None);
        let kept = writer
            .recheck(&stored[0], &unknown, false, now)
            .await
            .unwrap();
        assert_eq!(
            kept.resolved_since_ms,
            Some(now),
            "resolved now: retention counts from here"
        );
        assert_eq!(kept.last_seen_ms, Some(at("2026-01-01T01:00:00Z")));
        server.await.unwrap();
    }

    #[tokio::test]
    async fn no_new_diagnosis_is_created_at_the_cap() {
        let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let mut writer = Writer::new(
            kube::Client::new(service, "default"),
            None,
            0,
            Default::default(),
        );
        let written = writer
            .write(
                &diagnosis(),
                &Verification::Unknown(String::new()),
                false,
                &[],
                0,
            )
            .await
            .unwrap();
        assert_eq!(written, Written::AtCap);
    }

    fn held(resolved: &str) -> Vec<Condition> {
        ["Diagnosed", "Resolved"]
            .iter()
            .map(|t| Condition {
                type_: (*t).into(),
                status: if *t == "Diagnosed" { "True" } else { resolved }.into(),
                reason: "PassedToServiceMismatch".into(),
                message: String::new(),
                last_transition_time: String::new(),
                observed_generation: None,
            })
            .collect()
    }

    #[test]
    fn events_say_found_resolved_and_recurred_and_nothing_else() {
        let reason = |e: Option<(EventType, &'static str, String)>| e.map(|(t, r, _)| (t, r));
        assert_eq!(
            reason(change(&[], &held("False"))),
            Some((EventType::Warning, "RootCauseFound"))
        );
        assert_eq!(reason(change(&held("False"), &held("False"))), None);
        assert_eq!(
            reason(change(&held("False"), &held("True"))),
            Some((EventType::Normal, "Resolved"))
        );
        assert_eq!(
            reason(change(&held("True"), &held("False"))),
            Some((EventType::Warning, "Recurred"))
        );
        let mut other = held("False");
        other[0].reason = "ConditionNotSatisfied".into();
        assert_eq!(
            reason(change(&held("False"), &other)),
            Some((EventType::Warning, "RootCauseChanged"))
        );
    }
}
