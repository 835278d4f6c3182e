//! The facts the engine decides from, behind one narrow interface: snapshot loaders (pure
//! parsers over files' text) now, live AWS lookups later, answering the same questions.

pub mod authorization;
pub mod decoded;
pub mod fetched;
pub mod iam_snapshot;
pub mod kms_snapshot;
pub mod write;

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
    /// What `iam:SimulatePrincipalPolicy` said of a request; only live facts know.
    fn simulation(&self, _key: &fetched::SimulationKey) -> Lookup<fetched::Simulation> {
        Lookup::Absent("no live AWS lookups (--live)".into())
    }
    /// An `Encoded authorization failure message` decoded by STS; only live facts know.
    fn decoded(&self, _encoded: &str) -> Lookup<String> {
        Lookup::Absent("no live AWS lookups (--live)".into())
    }
    /// The KMS keys of an AMI's encrypted EBS snapshots (DescribeImages, DescribeSnapshots);
    /// only live facts know.
    fn image_keys(&self, _image: &str) -> Lookup<Vec<String>> {
        Lookup::Absent("no live AWS lookups (--live)".into())
    }
    /// What IAM's Access Troubleshooter says of a denied request, by authorization id
    /// (`GetRequestAuthorizationDetails`); only live facts know.
    fn authorization(&self, _id: &str) -> Lookup<authorization::AuthorizationDetails> {
        Lookup::Absent("no live AWS lookups (--live)".into())
    }
    /// The region's default EBS key and whether EBS encryption by default is on
    /// (`ec2:GetEbsDefaultKmsKeyId`, `ec2:GetEbsEncryptionByDefault`).
    fn ebs_default(&self) -> Lookup<EbsDefault> {
        Lookup::Unknown("the account's default EBS key was not looked up (--live)".into())
    }
}

/// The key EC2 encrypts a volume with when the launch names none: the region's default EBS
/// key; every new volume is encrypted with it where encryption by default is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbsDefault {
    /// `GetEbsDefaultKmsKeyId`'s `KmsKeyId` (an ARN; `alias/aws/ebs` until one is set).
    pub key: String,
    /// `GetEbsEncryptionByDefault`; `None`: not known (the key given by hand).
    pub by_default: Option<bool>,
}

/// Facts from snapshot files (`--iam-snapshot`, `--kms-snapshot`), and the default EBS key
/// given by hand (`preflight --ebs-default-key`).
#[derive(Debug, Default)]
pub struct SnapshotFacts {
    pub iam: Vec<(String, IamSnapshot)>,
    pub kms: Vec<(String, Vec<KeyFacts>)>,
    pub ebs_default: Option<EbsDefault>,
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

    fn ebs_default(&self) -> Lookup<EbsDefault> {
        match &self.ebs_default {
            Some(d) => Lookup::Found(d.clone()),
            None => Lookup::Unknown(
                "the account's default EBS key was not looked up (--live, --ebs-default-key)"
                    .into(),
            ),
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

/// Facts from `first` where it knows them, else from `then` (snapshots over live lookups).
pub struct Overlay<'a> {
    pub first: &'a dyn Facts,
    pub then: &'a dyn Facts,
}

impl Facts for Overlay<'_> {
    fn principal(&self, arn: &str) -> Lookup<PrincipalPolicies> {
        match self.first.principal(arn) {
            Lookup::Found(p) => Lookup::Found(p),
            _ => self.then.principal(arn),
        }
    }

    fn key(&self, key: &str) -> Lookup<KeyFacts> {
        match self.first.key(key) {
            Lookup::Found(k) => Lookup::Found(k),
            _ => self.then.key(key),
        }
    }

    fn simulation(&self, key: &fetched::SimulationKey) -> Lookup<fetched::Simulation> {
        self.then.simulation(key)
    }

    fn decoded(&self, encoded: &str) -> Lookup<String> {
        self.then.decoded(encoded)
    }

    fn image_keys(&self, image: &str) -> Lookup<Vec<String>> {
        self.then.image_keys(image)
    }

    fn authorization(&self, id: &str) -> Lookup<authorization::AuthorizationDetails> {
        self.then.authorization(id)
    }

    fn ebs_default(&self) -> Lookup<EbsDefault> {
        match self.first.ebs_default() {
            Lookup::Found(d) => Lookup::Found(d),
            _ => self.then.ebs_default(),
        }
    }
}
