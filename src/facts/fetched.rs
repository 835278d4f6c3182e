//! Facts fetched from live AWS, held as plain data so diagnosis stays pure: what each lookup
//! returned, or why it failed (denied, throttled, unavailable), per principal, key and request.

use super::authorization::AuthorizationDetails;
use super::iam_snapshot::PrincipalPolicies;
use super::kms_snapshot::KeyFacts;
use super::{Facts, Lookup};
use std::collections::BTreeMap;

/// The answer of `iam:SimulatePrincipalPolicy` for one request (domain.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub decision: String,
    pub allowed_by_organizations: Option<bool>,
    pub allowed_by_boundary: Option<bool>,
    /// Source policy ids of the deciding statements (empty for an implicit deny).
    pub matched_statements: Vec<String>,
    pub missing_context_values: Vec<String>,
}

/// One simulated request: role, action, resource, and the context entries (key, value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SimulationKey {
    pub role: String,
    pub action: String,
    pub resource: String,
    pub context: Vec<(String, String)>,
}

/// Everything the live lookups found. A key missing from a map was never asked for.
#[derive(Debug, Clone, Default)]
pub struct FetchedFacts {
    pub principals: BTreeMap<String, Result<PrincipalPolicies, String>>,
    pub keys: BTreeMap<String, Result<KeyFacts, String>>,
    pub simulations: BTreeMap<SimulationKey, Result<Simulation, String>>,
    /// Decoded `Encoded authorization failure message` blobs (STS), by blob.
    pub decoded: BTreeMap<String, Result<String, String>>,
    /// The KMS keys of each AMI's encrypted snapshots, by image id.
    pub images: BTreeMap<String, Result<Vec<String>, String>>,
    /// Access Troubleshooter details, by authorization id.
    pub authorizations: BTreeMap<String, Result<AuthorizationDetails, String>>,
    /// The region's default EBS key, where asked.
    pub ebs_default: Option<Result<super::EbsDefault, String>>,
}

fn lookup<T: Clone>(found: Option<&Result<T, String>>, what: &str) -> Lookup<T> {
    match found {
        Some(Ok(v)) => Lookup::Found(v.clone()),
        Some(Err(why)) => Lookup::Unknown(why.clone()),
        None => Lookup::Unknown(format!("{what} was not looked up")),
    }
}

impl Facts for FetchedFacts {
    fn principal(&self, arn: &str) -> Lookup<PrincipalPolicies> {
        let role = crate::policy::arn::role_arn_of(arn);
        let found = self.principals.get(&role).or_else(|| {
            // Sessions name no path: match the fetched role by account and name.
            let name = crate::policy::arn::role_name_of(&role)?;
            self.principals
                .iter()
                .find(|(k, _)| {
                    crate::policy::arn::role_name_of(k) == Some(name)
                        && k.split(':').nth(4) == role.split(':').nth(4)
                })
                .map(|(_, v)| v)
        });
        lookup(found, &format!("role {role}"))
    }

    fn key(&self, key: &str) -> Lookup<KeyFacts> {
        let found = self.keys.get(key).or_else(|| {
            let id = key.rsplit('/').next().unwrap_or(key);
            self.keys
                .iter()
                .find(|(_, v)| v.as_ref().is_ok_and(|k| k.key_id == id || k.arn == key))
                .map(|(_, v)| v)
        });
        lookup(found, &format!("key {key}"))
    }

    fn simulation(&self, key: &SimulationKey) -> Lookup<Simulation> {
        lookup(self.simulations.get(key), "the simulation")
    }

    fn decoded(&self, encoded: &str) -> Lookup<String> {
        lookup(self.decoded.get(encoded), "the encoded message")
    }

    fn image_keys(&self, image: &str) -> Lookup<Vec<String>> {
        lookup(self.images.get(image), &format!("image {image}"))
    }

    fn authorization(&self, id: &str) -> Lookup<AuthorizationDetails> {
        lookup(
            self.authorizations.get(id),
            &format!("authorization id {id}"),
        )
    }

    fn ebs_default(&self) -> Lookup<super::EbsDefault> {
        lookup(self.ebs_default.as_ref(), "the account's default EBS key")
    }
}
