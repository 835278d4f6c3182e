//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: take the Lease
//! when it is free or expired, renew it while leading, give it up on shutdown.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use std::time::Duration;

/// The Lease's name in its namespace.
pub const LEASE_NAME: &str = "karpenter-doctor";
/// A Lease not renewed for this long is free to take.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// The leader gives up when it could not renew for this long (before others may take over).
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the Lease is tried or renewed.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// The Lease as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub holder: Option<String>,
    pub renewed_ms: Option<i64>,
    pub duration_s: Option<i32>,
}

/// What to do with the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// There is none: create it, held by us.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free (no holder) or expired: take it over.
    TakeOver,
    /// Another replica holds it and renews it: wait.
    Wait,
}

/// Pure: the step for `me` given the Lease (if any) at `now_ms`.
pub fn step(lease: Option<&Held>, me: &str, now_ms: i64) -> Step {
    let Some(lease) = lease else {
        return Step::Create;
    };
    match lease.holder.as_deref() {
        Some(h) if h == me => Step::Renew,
        None | Some("") => Step::TakeOver,
        Some(_) => {
            let duration_ms =
                i64::from(lease.duration_s.unwrap_or(LEASE_DURATION.as_secs() as i32)) * 1000;
            match lease.renewed_ms {
                Some(renewed) if now_ms - renewed <= duration_ms => Step::Wait,
                _ => Step::TakeOver,
            }
        }
    }
}

#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    pub identity: String,
}

impl Elector {
    pub fn new(client: kube::Client, namespace: &str, identity: String) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            identity,
        }
    }

    /// One try: true when this replica holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = match self.api.get(LEASE_NAME).await {
            Ok(l) => Some(l),
            Err(kube::Error::Api(e)) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        let held = current.as_ref().map(|l| {
            let spec = l.spec.clone().unwrap_or_default();
            Held {
                holder: spec.holder_identity,
                renewed_ms: spec.renew_time.map(|t| t.0.as_millisecond()),
                duration_s: spec.lease_duration_seconds,
            }
        });
        let spec = current
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        let decided = step(held.as_ref(), &self.identity, now.as_millisecond());
        let result = match decided {
            Step::Wait => return Ok(false),
            Step::Create => {
                let mut lease = Lease::default();
                lease.metadata.name = Some(LEASE_NAME.into());
                lease.spec = Some(self.spec(now, None, 0));
                self.api.create(&PostParams::default(), &lease).await
            }
            Step::Renew => {
                let mut lease = current.expect("a held Lease exists");
                lease.spec = Some(LeaseSpec {
                    renew_time: Some(MicroTime(now)),
                    ..spec
                });
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
            }
            Step::TakeOver => {
                let mut lease = current.expect("a Lease to take over exists");
                let transitions = spec.lease_transitions.unwrap_or(0) + 1;
                lease.spec = Some(self.spec(now, Some(now), transitions));
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            // Another replica wrote first (409 on a stale resourceVersion or an existing name).
            // While renewing our own Lease, a 409 is someone else's write to it (a label, an
            // annotation): a failed attempt, retried until the renew deadline, not a loss.
            Err(kube::Error::Api(e)) if e.code == 409 && decided != Step::Renew => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, now: Timestamp, acquired: Option<Timestamp>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(MicroTime(acquired.unwrap_or(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Gives the Lease up (on shutdown) so that another replica takes over at once.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let mut lease = self.api.get(LEASE_NAME).await?;
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        self.api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

/// This replica's name in the Lease: the pod's name (downward API `POD_NAME`) or the host's,
/// with the process id, so that two processes on one host differ.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "karpenter-doctor".into());
    format!("{host}_{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(holder: Option<&str>, renewed_ms: Option<i64>) -> Held {
        Held {
            holder: holder.map(str::to_string),
            renewed_ms,
            duration_s: Some(15),
        }
    }

    #[test]
    fn a_missing_lease_is_created_and_ours_is_renewed() {
        assert_eq!(step(None, "a", 0), Step::Create);
        assert_eq!(
            step(Some(&held(Some("a"), Some(0))), "a", 99_000),
            Step::Renew
        );
    }

    #[test]
    fn another_holder_is_waited_for_until_its_lease_expires() {
        let lease = held(Some("b"), Some(100_000));
        assert_eq!(step(Some(&lease), "a", 100_000), Step::Wait);
        assert_eq!(step(Some(&lease), "a", 115_000), Step::Wait);
        assert_eq!(step(Some(&lease), "a", 115_001), Step::TakeOver);
        assert_eq!(
            step(Some(&held(Some("b"), None)), "a", 0),
            Step::TakeOver,
            "never renewed"
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        assert_eq!(
            step(Some(&held(None, Some(100_000))), "a", 100_000),
            Step::TakeOver
        );
        assert_eq!(
            step(Some(&held(Some(""), Some(100_000))), "a", 100_000),
            Step::TakeOver
        );
    }
}
