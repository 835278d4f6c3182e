//! The fact options `explain` and `controller` share: IAM and KMS snapshot files and the
//! controller role, loaded into the core's `SnapshotFacts` (errors name the file).

use super::{Failure, read_file};
use crate::facts::SnapshotFacts;
use crate::facts::iam_snapshot::IamSnapshot;
use crate::facts::kms_snapshot;
use clap::Args;

#[derive(Debug, Args)]
pub struct FactArgs {
    /// `aws iam get-account-authorization-details` output for one account (repeatable).
    #[arg(long = "iam-snapshot", value_name = "FILE")]
    pub iam_snapshots: Vec<String>,
    /// KMS facts, contract §4 (repeatable).
    #[arg(long = "kms-snapshot", value_name = "FILE")]
    pub kms_snapshots: Vec<String>,
    /// The role Karpenter's controller runs as, where no input names it.
    #[arg(long, value_name = "ARN")]
    pub controller_role: Option<String>,
}

impl FactArgs {
    /// Loads the snapshot files; an unreadable or invalid one is an error naming it.
    pub fn load(&self) -> Result<SnapshotFacts, Failure> {
        let mut facts = SnapshotFacts::default();
        for path in &self.iam_snapshots {
            let snapshot = IamSnapshot::parse(&read_file(path)?)
                .map_err(|e| Failure(format!("{path}: invalid IAM snapshot: {e}")))?;
            facts.iam.push((path.clone(), snapshot));
        }
        for path in &self.kms_snapshots {
            let keys = kms_snapshot::parse(&read_file(path)?)
                .map_err(|e| Failure(format!("{path}: invalid KMS snapshot: {e}")))?;
            facts.kms.push((path.clone(), keys));
        }
        Ok(facts)
    }
}
