//! What a root cause rests on, and the one rule that derives its confidence (issue 24 §1).
//!
//! Reasoning (`iam`, `kms`, `credentials`, `authorization`) records the premises of the cause
//! it finds; `render` adds the failure itself (who wrote it, whether AWS named the action). No
//! code sets a confidence: `confidence` derives it, and nothing else does.
//!
//! `Confirmed` needs a failure Karpenter wrote, and every premise trusted, whole and decided;
//! `Predicted` the same of a request `preflight` says Karpenter will make (no failure seen);
//! anything less is `Inferred`, and the evidence says which premise fell short.

use super::model::Confidence;

/// What a premise is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The failure as a text tells it: a log line, a NodeClaim's condition, an Event.
    Failure,
    /// A request Karpenter will make, as `preflight` derives it from its version and the
    /// cluster's objects: no failure has been seen.
    Prediction,
    /// AWS's words in the failure: the layer that refused, the action, the key's state.
    Sentence,
    /// The principal's policies evaluated by the engine (identity, boundary, session).
    Policies,
    /// Organization policies (SCP, RCP) evaluated from their documents or a simulation.
    Organization,
    /// A KMS key's state, policy and grants.
    Key,
    /// How Karpenter gets its credentials: its pods, ServiceAccount, trust policy, OIDC provider.
    Credentials,
    /// AWS's own evaluation of the request (IAM Access Troubleshooter).
    AwsEvaluation,
}

/// One premise of a root cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Premise {
    pub what: What,
    /// Where it came from: an input's file and line, an AWS API, a snapshot.
    pub source: String,
    /// Who wrote it, when it is not Karpenter or AWS: then it proves nothing.
    pub author: Option<String>,
    /// Whether it is whole (no value of it was cut).
    pub whole: bool,
    /// Whether it decides the question (no value it lacks could change the answer).
    pub decided: bool,
}

impl Premise {
    /// A trusted, whole premise, decided or not.
    pub fn of(what: What, source: impl Into<String>, decided: bool) -> Premise {
        Premise {
            what,
            source: source.into(),
            author: None,
            whole: true,
            decided,
        }
    }

    /// A trusted, whole premise that decides.
    pub fn decided(what: What, source: impl Into<String>) -> Premise {
        Premise::of(what, source, true)
    }

    /// A premise that is missing, or leaves the question open.
    pub fn undecided(what: What, source: impl Into<String>) -> Premise {
        Premise::of(what, source, false)
    }

    /// Whether it may found a proof.
    pub fn holds(&self) -> bool {
        self.author.is_none() && self.whole && self.decided
    }
}

/// Whether the facts prove the cause: every premise holds (the failure aside).
pub fn proven(premises: &[Premise]) -> bool {
    premises.iter().all(Premise::holds)
}

/// The rule id of the signals `preflight` makes of the requests it predicts refused.
pub const PREDICTED_RULE: &str = "preflight";

/// The confidence of a root cause: `Confirmed` when Karpenter wrote the failure and every
/// premise holds, `Predicted` when a predicted request stands for the failure, else `Inferred`.
pub fn confidence(premises: &[Premise]) -> Confidence {
    let founded = |what| premises.iter().any(|p| p.what == what && p.holds());
    match (
        founded(What::Failure),
        founded(What::Prediction),
        proven(premises),
    ) {
        (true, _, true) => Confidence::Confirmed,
        (false, true, true) => Confidence::Predicted,
        _ => Confidence::Inferred,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(author: Option<&str>) -> Premise {
        Premise {
            author: author.map(str::to_string),
            ..Premise::decided(What::Failure, "karpenter.log:1")
        }
    }

    #[test]
    fn a_prediction_proves_only_predicted() {
        let predicted = Premise::decided(What::Prediction, "(preflight):0");
        let policies = Premise::decided(What::Policies, "iam snapshot");
        assert_eq!(
            confidence(&[predicted.clone(), policies.clone()]),
            Confidence::Predicted
        );
        let open = Premise::undecided(What::Policies, "no snapshot");
        assert_eq!(confidence(&[predicted, open]), Confidence::Inferred);
        assert_eq!(confidence(&[policies]), Confidence::Inferred);
    }

    #[test]
    fn confirmed_needs_karpenters_failure_and_every_premise_whole_and_decided() {
        let policies = Premise::decided(What::Policies, "iam-snapshot.json");
        assert_eq!(
            confidence(&[failure(None), policies.clone()]),
            Confidence::Confirmed
        );
        // No failure at all, or one anyone may write: not proof.
        assert_eq!(
            confidence(std::slice::from_ref(&policies)),
            Confidence::Inferred
        );
        assert_eq!(
            confidence(&[failure(Some("Event by mallory-bot")), policies.clone()]),
            Confidence::Inferred
        );
        // A premise undecided, or cut.
        let open = Premise::undecided(What::Policies, "iam-snapshot.json");
        assert_eq!(confidence(&[failure(None), open]), Confidence::Inferred);
        let cut = Premise {
            whole: false,
            ..Premise::decided(What::Sentence, "karpenter.log:1")
        };
        assert_eq!(
            confidence(&[failure(None), cut.clone()]),
            Confidence::Inferred
        );
        assert!(proven(std::slice::from_ref(&policies)) && !proven(&[policies, cut]));
    }
}
