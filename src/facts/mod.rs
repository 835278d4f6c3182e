//! The facts the engine decides from, behind one narrow interface: snapshot loaders (pure
//! parsers over files' text) now, live AWS lookups later, answering the same questions.

pub mod iam_snapshot;
pub mod kms_snapshot;

use iam_snapshot::{IamSnapshot, PrincipalPolicies};
use kms_snapshot::KeyFacts;

/// The answer to one fact lookup. Unknown is not empty: `Unknown` says why nothing is known.
#[derive(Debug, Clone)]
pub enum Lookup<T> {
    Found(T),
    /// The facts were looked at, and do not hold it.
    Absent(String),
    /// No facts to look at, or the lookup failed: the reason.
    Unknown(String),
}

/// The questions diagnosis asks of AWS facts.
pub trait Facts {
    /// The identity policies and boundary of a role (or the role behind a session ARN).
    fn principal(&self, arn: &str) -> Lookup<PrincipalPolicies>;
    /// A KMS key by ARN or id.
    fn key(&self, key: &str) -> Lookup<KeyFacts>;
}

/// Facts from snapshot files (`--iam-snapshot`, `--kms-snapshot`).
#[derive(Debug, Default)]
pub struct SnapshotFacts {
    pub iam: Vec<(String, IamSnapshot)>,
    pub kms: Vec<(String, Vec<KeyFacts>)>,
}

impl Facts for SnapshotFacts {
    fn principal(&self, arn: &str) -> Lookup<PrincipalPolicies> {
        if self.iam.is_empty() {
            return Lookup::Unknown("no IAM snapshot given (--iam-snapshot)".into());
        }
        let found = self.iam.iter().find_map(|(file, snapshot)| {
            let source = format!("iam snapshot {file}");
            snapshot
                .principal(arn)
                .map(|p| PrincipalPolicies { source, ..p })
        });
        match found {
            Some(p) => Lookup::Found(p),
            None => Lookup::Absent(format!(
                "{arn} is in none of the IAM snapshots ({})",
                names(&self.iam)
            )),
        }
    }

    fn key(&self, key: &str) -> Lookup<KeyFacts> {
        if self.kms.is_empty() {
            return Lookup::Unknown("no KMS snapshot given (--kms-snapshot)".into());
        }
        let id = key.rsplit('/').next().unwrap_or(key);
        let found = self.kms.iter().find_map(|(file, keys)| {
            let k = keys.iter().find(|k| k.arn == key || k.key_id == id)?;
            Some(KeyFacts {
                source: format!("kms snapshot {file}"),
                ..k.clone()
            })
        });
        match found {
            Some(k) => Lookup::Found(k),
            None => Lookup::Absent(format!(
                "{key} is in none of the KMS snapshots ({})",
                names(&self.kms)
            )),
        }
    }
}

fn names<T>(files: &[(String, T)]) -> String {
    files
        .iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
