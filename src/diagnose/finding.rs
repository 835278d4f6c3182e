//! What reasoning concludes about one root cause: the reason code, how sure, the evidence,
//! and the fix it calls for, with the data the remediation needs to be concrete.

use super::model::{Confidence, Evidence, ReasonCode};
use crate::policy::StatementRef;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub reason: ReasonCode,
    pub confidence: Confidence,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub statement: Option<StatementRef>,
    pub fix: Fix,
}

/// The change a finding calls for.
#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    /// Replace a statement of one of the role's policies with `patched`.
    PatchStatement {
        role: String,
        policy: String,
        statement: Map<String, Value>,
        patched: Map<String, Value>,
    },
    /// Remove (or narrow) a Deny statement of one of the role's policies.
    RemoveDeny {
        role: String,
        policy: String,
        statement: Map<String, Value>,
    },
    /// Add a statement to the role (no statement of its policies comes close).
    AddStatement { role: String, statement: Value },
    /// Let the permissions boundary allow the action (or, when AWS named an explicit deny
    /// there, narrow the boundary's Deny: no Allow overrides it).
    Boundary {
        role: String,
        boundary: Option<String>,
        action: String,
        resource: String,
        explicit_deny: bool,
    },
    /// An organization SCP must change.
    Scp { account: String, action: String },
    /// Karpenter runs as the wrong principal: IRSA / Pod Identity not in effect.
    Principal {
        caller: String,
        controller: Option<String>,
    },
    /// The KMS key's state must change.
    KeyState { key: String, state: String },
    /// The key's account must let the launching principal use the key.
    KeyAccess {
        key: String,
        grantee: String,
        region: Option<String>,
        missing: Vec<String>,
    },
    /// The principal's IAM policies must allow the KMS actions on the key.
    KmsIdentity {
        role: String,
        key: String,
        missing: Vec<String>,
    },
    /// Nothing proven: the remediation says how to find out.
    Investigate {
        role: Option<String>,
        action: Option<String>,
        resource: Option<String>,
    },
}

pub fn evidence(source: impl Into<String>, detail: impl Into<String>) -> Evidence {
    Evidence {
        source: source.into(),
        detail: detail.into(),
    }
}
