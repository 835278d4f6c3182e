//! The one writer of Diagnoses: server-side apply of metadata and spec with field manager
//! `karpenter-doctor`, then the status through its subresource, counting on from what the
//! cluster already holds (a restart continues, never duplicates) and keeping metav1 rules.

use super::resources;
use crate::diagnose::lifecycle::{self, Verification};
use crate::diagnose::model::{Condition, Diagnosis, DiagnosisStatus};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;

pub const FIELD_MANAGER: &str = "karpenter-doctor";

/// What a Diagnosis held when this process first met it.
#[derive(Debug, Clone, Default)]
struct Baseline {
    occurrences: u64,
    first_seen: Option<String>,
    affected: Vec<String>,
}

pub struct Writer {
    api: Api<DynamicObject>,
    baselines: BTreeMap<String, Baseline>,
}

impl Writer {
    pub fn new(client: kube::Client) -> Writer {
        Writer {
            api: Api::all_with(client, &resources::diagnoses()),
            baselines: BTreeMap::new(),
        }
    }

    /// The latest `lastSeen` of the Diagnoses already in the cluster: where reading resumes.
    pub async fn resume_point(&mut self) -> Result<Option<String>, kube::Error> {
        let list = self.api.list(&Default::default()).await?;
        let mut latest: Option<String> = None;
        for obj in list.items {
            let Some(name) = obj.metadata.name.clone() else {
                continue;
            };
            let status: Option<DiagnosisStatusView> = obj
                .data
                .get("status")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            if let Some(s) = &status
                && s.last_seen.as_ref() > latest.as_ref()
            {
                latest = s.last_seen.clone();
            }
            self.baselines.insert(name, baseline(status.as_ref()));
        }
        Ok(latest)
    }

    /// Writes one Diagnosis: spec by server-side apply, then status, merged with what the
    /// cluster holds. Returns the conditions written.
    pub async fn write(
        &mut self,
        d: &Diagnosis,
        verification: &Verification,
        now_ms: i64,
    ) -> Result<Vec<Condition>, kube::Error> {
        let name = &d.metadata.name;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let body = json!({"apiVersion": d.api_version, "kind": d.kind, "metadata": {"name": name}, "spec": d.spec});
        let applied = self.api.patch(name, &params, &Patch::Apply(&body)).await?;
        let held: Option<DiagnosisStatusView> = applied
            .data
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        let base = self
            .baselines
            .entry(name.clone())
            .or_insert_with(|| baseline(held.as_ref()))
            .clone();
        let status = merge(&d.status, &base, held.as_ref(), verification, now_ms);
        let conditions = status.conditions.clone();
        let body = json!({"apiVersion": d.api_version, "kind": d.kind, "metadata": {"name": name}, "status": status});
        self.api
            .patch_status(name, &params, &Patch::Apply(&body))
            .await?;
        Ok(conditions)
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
}

fn baseline(held: Option<&DiagnosisStatusView>) -> Baseline {
    held.map_or_else(Baseline::default, |s| Baseline {
        occurrences: s.occurrences,
        first_seen: s.first_seen.clone(),
        affected: s.affected_node_claims.clone(),
    })
}

/// The status to write: this process's count on top of the baseline, the earliest first and
/// latest last sighting, the NodeClaims merged (most recent first, at most 20), Resolved from
/// the re-check, and lastTransitionTime kept where a status did not flip.
fn merge(
    fresh: &DiagnosisStatus,
    base: &Baseline,
    held: Option<&DiagnosisStatusView>,
    verification: &Verification,
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
    let previous: Vec<Condition> = held
        .map(|h| {
            h.conditions
                .iter()
                .map(|c| Condition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let last_seen_ms = status
        .last_seen
        .as_deref()
        .and_then(crate::policy::typed::date);
    let (resolved, reason, message) = lifecycle::resolved(
        verification,
        previous.iter().find(|c| c.type_ == "Resolved"),
        last_seen_ms,
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
    let now = crate::diagnose::time::format(now_ms);
    status.conditions = lifecycle::transition(&previous, status.conditions, &now);
    status
}
