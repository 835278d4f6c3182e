//! The controller's preflight (`--preflight-interval`): the requests the running Karpenter
//! will make, evaluated with live IAM and KMS facts every interval and whenever what it reads
//! changes (EC2NodeClasses, NodePools, ServiceAccounts, Karpenter's pods: their image, env and
//! args). Each proven refusal is a `Predicted` Diagnosis (`preflight::predicted`), which the
//! one writer writes when the prediction changes; the same object becomes `Confirmed` when the
//! failure it predicts happens. A run whose controller role's policies cannot be read keeps
//! the last prediction.

use super::check::controller_container;
use crate::aws::live::Live;
use crate::diagnose::model::{Confidence, Diagnosis};
use crate::facts::{Facts, Lookup, Overlay, SnapshotFacts};
use crate::preflight::catalog::Catalogue;
use crate::preflight::running::{self, Given};
use crate::signal::Observations;
use k8s_openapi::api::core::v1::Pod;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

/// The preflight's state between reconciles.
#[derive(Debug)]
pub struct Preflight {
    interval: Option<Duration>,
    due: Instant,
    /// What the last run read (`key`).
    read: Option<u64>,
    /// The last good run's predictions; `None` before one.
    pub predicted: Option<Vec<Diagnosis>>,
    /// Whether `predicted` is newer than what was written.
    pub fresh: bool,
}

impl Preflight {
    /// Off when `interval` is `None`; else the first run is due now.
    pub fn new(interval: Option<Duration>) -> Preflight {
        Preflight {
            interval,
            due: Instant::now(),
            read: None,
            predicted: None,
            fresh: false,
        }
    }

    pub fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// When the next periodic run is due (a day away when off).
    pub fn due(&self) -> Instant {
        match self.interval {
            Some(_) => self.due,
            None => Instant::now() + Duration::from_secs(86_400),
        }
    }

    /// Runs when due, or when what it reads changed since the last run; `Err` says why a run
    /// could not predict (the last prediction stands).
    pub async fn run_if_needed(
        &mut self,
        live: &Live,
        snapshots: &SnapshotFacts,
        obs: &Observations,
        pods: &[Pod],
        given: &Given,
    ) -> Result<(), String> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let read = key(obs, pods);
        let now = Instant::now();
        if now < self.due && self.read == Some(read) {
            return Ok(());
        }
        self.due = now + super::controller::jittered(interval);
        self.read = Some(read);
        let predicted = predict(live, snapshots, obs, pods, given).await?;
        if self.predicted.as_ref() != Some(&predicted) {
            self.predicted = Some(predicted);
            self.fresh = true;
        }
        Ok(())
    }
}

/// One run: the settings from Karpenter's pods (`running`) and the controller's own, the
/// controller role's policies and the keys from live AWS (snapshots first), the refusals
/// diagnosed; only `Predicted` ones (an `Inferred` prediction rests on an unknown: not written).
async fn predict(
    live: &Live,
    snapshots: &SnapshotFacts,
    obs: &Observations,
    pods: &[Pod],
    given: &Given,
) -> Result<Vec<Diagnosis>, String> {
    let running = pods
        .iter()
        .find_map(|p| p.spec.as_ref().and_then(controller_container))
        .map(|c| running::read(&c))
        .unwrap_or_default();
    let settings = running::settings(given, &running, None, obs)?;
    // The credential path's facts (the cluster's issuer, the OIDC providers, the association)
    // are read into a copy, as `check` reads them into its inputs.
    let obs = &mut obs.clone();
    let fetched = crate::aws::gather::gather_for_preflight(
        live,
        crate::preflight::roles(obs, &settings),
        obs,
    )
    .await;
    let facts = Overlay {
        first: snapshots,
        then: &fetched,
    };
    if let Lookup::Unknown(why) | Lookup::Absent(why) = facts.principal(&settings.controller_role) {
        return Err(format!(
            "the policies of {} cannot be read: {why}",
            settings.controller_role
        ));
    }
    let matrix = crate::preflight::evaluate(&Catalogue::shipped(), obs, &settings, &facts);
    let mut items = crate::preflight::predicted(&matrix, obs, &facts, &settings);
    items.retain(|d| d.status.root_cause.confidence == Confidence::Predicted);
    Ok(items)
}

/// What a run reads, hashed: a change re-runs it.
fn key(obs: &Observations, pods: &[Pod]) -> u64 {
    let mut h = DefaultHasher::new();
    format!(
        "{:?}{:?}{:?}{:?}",
        obs.node_classes, obs.node_pools, obs.accounts, obs.karpenter_pods
    )
    .hash(&mut h);
    for p in pods {
        format!("{:?}", p.spec.as_ref().and_then(controller_container)).hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::NodePoolInfo;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn pod(image: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "controller".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn pools(capacity: &str) -> Observations {
        Observations {
            node_pools: vec![NodePoolInfo {
                name: "default".into(),
                node_class: Some("default".into()),
                registration_unhealthy: false,
                capacity_types: vec![capacity.into()],
            }],
            ..Observations::default()
        }
    }

    /// A run re-runs when what it reads changes: a NodePool's capacity types (spot requests,
    /// the Spot role's key access), the controller's image (the version), not otherwise.
    #[test]
    fn a_node_pool_or_an_image_change_re_runs_the_preflight() {
        let image = "public.ecr.aws/karpenter/controller:1.8.2";
        let before = key(&pools("on-demand"), &[pod(image)]);
        assert_eq!(before, key(&pools("on-demand"), &[pod(image)]));
        assert_ne!(before, key(&pools("spot"), &[pod(image)]));
        assert_ne!(
            before,
            key(
                &pools("on-demand"),
                &[pod("public.ecr.aws/karpenter/controller:1.15.0")]
            )
        );
    }
}
