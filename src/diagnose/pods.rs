//! What a pending pod is told of the root cause that blocks it: one line naming what AWS
//! refused, the cause and how sure the doctor is, and the Diagnosis to read (contract §3
//! `blockedPods`; the controller records it as an Event on the pod, `check --pod` prints it).

use super::model::Diagnosis;
use super::printable::escape;
use crate::signal::Category;

/// The most bytes of a note (an Event's note holds 1 KiB).
const MAX_NOTE: usize = 1000;

/// `no node can launch for this pod: iam:PassRole refused (PassedToServiceMismatch,
/// Confirmed); kubectl get diagnosis pass-role-denied-…`.
pub fn note(d: &Diagnosis) -> String {
    let spec = &d.spec;
    let what = match spec.category {
        Category::PassRoleDenied | Category::ActionDenied => format!(
            "{} refused",
            escape(spec.action.as_deref().unwrap_or("an AWS request"))
        ),
        Category::KmsKeyUnusable => format!(
            "its instances cannot use KMS key {}",
            escape(spec.kms_key_arn.as_deref().unwrap_or("(unknown)"))
        ),
        Category::CredentialsDenied => "Karpenter cannot get its AWS credentials".into(),
    };
    let root = &d.status.root_cause;
    let note = format!(
        "no node can launch for this pod: {what} ({}, {:?}); kubectl get diagnosis {}",
        root.reason.as_str(),
        root.confidence,
        d.metadata.name
    );
    crate::signal::text::cut(&note, MAX_NOTE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::diagnose;
    use crate::facts::SnapshotFacts;
    use crate::signal::{Observations, Scanner};

    fn diagnosed(text: &str) -> Diagnosis {
        let scanner = Scanner::new().unwrap();
        let mut obs = Observations::default();
        scanner
            .scan("karpenter.log", text.as_bytes(), &mut obs, &mut |_| {})
            .unwrap();
        diagnose(&obs, &SnapshotFacts::default(), None).remove(0)
    }

    #[test]
    fn a_pod_is_told_what_was_refused_why_and_where_to_read_more() {
        let d = diagnosed(
            "creating instance, UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/ctrl/1 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/node because no identity-based policy allows the iam:PassRole action.\n",
        );
        assert_eq!(
            note(&d),
            format!(
                "no node can launch for this pod: iam:PassRole refused (ActionNotAllowed, Inferred); kubectl get diagnosis {}",
                d.metadata.name
            )
        );
        let mut crafted = d.clone();
        crafted.spec.action = Some(format!("ec2:X\n\u{1b}[2J{}", "y".repeat(2000)));
        let told = note(&crafted);
        assert!(told.len() <= MAX_NOTE && !told.chars().any(char::is_control));
    }
}
