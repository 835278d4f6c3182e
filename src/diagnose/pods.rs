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

/// What is known of one pod (`check --pod`).
#[derive(Debug, Clone, Default)]
pub struct PodState<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// `status.phase`.
    pub phase: Option<&'a str>,
    /// The node it is bound to (`spec.nodeName`).
    pub node: Option<&'a str>,
    /// The NodeClaim Karpenter last nominated it for.
    pub nominated: Option<&'a str>,
    /// Why it cannot be scheduled otherwise: the latest `FailedScheduling` Event's message and
    /// reporter (Karpenter's first, else the scheduler's).
    pub unschedulable: Option<(&'a str, &'a str)>,
}

impl PodState<'_> {
    /// Waiting for a node: Pending, bound to none.
    pub fn pending(&self) -> bool {
        self.phase == Some("Pending") && self.node.is_none()
    }
}

/// The answer for one pod, one line each: whether it is pending because Karpenter cannot
/// launch (a line per root cause that blocks it, `blocking`), or why it is pending otherwise,
/// or that it is not waiting for a node at all.
pub fn answer(state: &PodState<'_>, blocking: &[&Diagnosis]) -> Vec<String> {
    let pod = format!("pod {}/{}", escape(state.namespace), escape(state.name));
    if !state.pending() {
        let on = state
            .node
            .map(|n| format!(", on node {}", escape(n)))
            .unwrap_or_default();
        let phase = escape(state.phase.unwrap_or("unknown"));
        return vec![format!(
            "{pod} is not waiting for a node: phase {phase}{on}"
        )];
    }
    match (state.nominated, blocking) {
        (Some(claim), [_, ..]) => blocking
            .iter()
            .map(|d| format!("{pod} is pending on nodeclaim/{claim}: {}", note(d)))
            .collect(),
        (Some(claim), []) => vec![format!(
            "{pod} is pending on nodeclaim/{claim}, which no root cause the doctor found blocks (Karpenter may still be launching it: kubectl get nodeclaim {claim})"
        )],
        (None, _) => vec![match state.unschedulable {
            Some((message, by)) => format!(
                "{pod} is pending for another reason (Karpenter nominated it for no NodeClaim): {} ({})",
                escape(message),
                escape(by)
            ),
            None => format!(
                "{pod} is pending, and no Event says why yet (Karpenter nominated it for no NodeClaim)"
            ),
        }],
    }
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

    #[test]
    fn a_pod_is_answered_for_by_what_holds_it() {
        let d = diagnosed(
            "creating instance, UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/ctrl/1 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/node because no identity-based policy allows the iam:PassRole action.\n",
        );
        let pending = PodState {
            namespace: "team-a",
            name: "web-1",
            phase: Some("Pending"),
            nominated: Some("default-x"),
            ..PodState::default()
        };
        assert_eq!(
            answer(&pending, &[&d]),
            [format!(
                "pod team-a/web-1 is pending on nodeclaim/default-x: {}",
                note(&d)
            )]
        );
        assert_eq!(
            answer(&pending, &[]),
            [
                "pod team-a/web-1 is pending on nodeclaim/default-x, which no root cause the doctor found blocks (Karpenter may still be launching it: kubectl get nodeclaim default-x)"
            ]
        );
        let other = PodState {
            nominated: None,
            unschedulable: Some((
                "Failed to schedule pod, incompatible with nodepool \"default\"\n\u{1b}[2J",
                "karpenter",
            )),
            ..pending.clone()
        };
        assert_eq!(
            answer(&other, &[&d]),
            [
                "pod team-a/web-1 is pending for another reason (Karpenter nominated it for no NodeClaim): Failed to schedule pod, incompatible with nodepool \"default\"\\n\\u{1b}[2J (karpenter)"
            ]
        );
        let quiet = PodState {
            unschedulable: None,
            ..other
        };
        assert!(
            answer(&quiet, &[])[0]
                .ends_with("no Event says why yet (Karpenter nominated it for no NodeClaim)")
        );
        let running = PodState {
            phase: Some("Running"),
            node: Some("ip-10-0-1-2"),
            ..pending.clone()
        };
        assert_eq!(
            answer(&running, &[&d]),
            ["pod team-a/web-1 is not waiting for a node: phase Running, on node ip-10-0-1-2"]
        );
        let bound = PodState {
            node: Some("ip-10-0-1-2"),
            ..pending
        };
        assert!(answer(&bound, &[&d])[0].contains("is not waiting for a node: phase Pending"));
    }
}
