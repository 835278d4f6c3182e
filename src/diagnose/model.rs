//! The `Diagnosis` resource of contract §3 as plain data: spec, status, conditions, root cause
//! and remediation. `explain -o json|yaml` prints it; the controller will write the same object.

use crate::signal::Category;
use serde::Serialize;

pub const API_VERSION: &str = "karpenter-doctor.io/v1alpha1";
pub const KIND: &str = "Diagnosis";

/// Root-cause reason codes (contract §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ReasonCode {
    PassedToServiceMismatch,
    ConditionNotSatisfied,
    ResourcePartitionMismatch,
    ResourceNotCovered,
    ActionNotAllowed,
    IdentityPolicyExplicitDeny,
    PermissionsBoundaryDeny,
    ServiceControlPolicyDeny,
    WrongPrincipal,
    KeyDisabled,
    KeyPendingDeletion,
    KeyPendingImport,
    KeyUnavailable,
    KeyAccessNotGranted,
    IdentityPolicyMissingKmsPermissions,
    Undetermined,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 16] = [
        ReasonCode::PassedToServiceMismatch,
        ReasonCode::ConditionNotSatisfied,
        ReasonCode::ResourcePartitionMismatch,
        ReasonCode::ResourceNotCovered,
        ReasonCode::ActionNotAllowed,
        ReasonCode::IdentityPolicyExplicitDeny,
        ReasonCode::PermissionsBoundaryDeny,
        ReasonCode::ServiceControlPolicyDeny,
        ReasonCode::WrongPrincipal,
        ReasonCode::KeyDisabled,
        ReasonCode::KeyPendingDeletion,
        ReasonCode::KeyPendingImport,
        ReasonCode::KeyUnavailable,
        ReasonCode::KeyAccessNotGranted,
        ReasonCode::IdentityPolicyMissingKmsPermissions,
        ReasonCode::Undetermined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::PassedToServiceMismatch => "PassedToServiceMismatch",
            ReasonCode::ConditionNotSatisfied => "ConditionNotSatisfied",
            ReasonCode::ResourcePartitionMismatch => "ResourcePartitionMismatch",
            ReasonCode::ResourceNotCovered => "ResourceNotCovered",
            ReasonCode::ActionNotAllowed => "ActionNotAllowed",
            ReasonCode::IdentityPolicyExplicitDeny => "IdentityPolicyExplicitDeny",
            ReasonCode::PermissionsBoundaryDeny => "PermissionsBoundaryDeny",
            ReasonCode::ServiceControlPolicyDeny => "ServiceControlPolicyDeny",
            ReasonCode::WrongPrincipal => "WrongPrincipal",
            ReasonCode::KeyDisabled => "KeyDisabled",
            ReasonCode::KeyPendingDeletion => "KeyPendingDeletion",
            ReasonCode::KeyPendingImport => "KeyPendingImport",
            ReasonCode::KeyUnavailable => "KeyUnavailable",
            ReasonCode::KeyAccessNotGranted => "KeyAccessNotGranted",
            ReasonCode::IdentityPolicyMissingKmsPermissions => {
                "IdentityPolicyMissingKmsPermissions"
            }
            ReasonCode::Undetermined => "Undetermined",
        }
    }
}

/// How sure the root cause is: proven by AWS facts, or read from the error text alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Confidence {
    Confirmed,
    Inferred,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: DiagnosisSpec,
    pub status: DiagnosisStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
}

/// What failed; set when the Diagnosis is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisSpec {
    pub category: Category,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The IAM role ARN (converted from an assumed-role session ARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisStatus {
    pub conditions: Vec<Condition>,
    pub root_cause: RootCause,
    pub remediation: Remediation,
    pub occurrences: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    pub affected_node_claims: Vec<String>,
    pub last_message: String,
}

/// A `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootCause {
    pub reason: ReasonCode,
    pub confidence: Confidence,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<crate::policy::StatementRef>,
}

/// One fact behind the root cause: where it comes from, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub source: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    pub summary: String,
    pub steps: Vec<String>,
    /// The corrected policy statement, as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_patch: Option<String>,
    /// Ready-to-run AWS CLI commands with the real ARNs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The runbook for this reason (docs/runbooks/<reason>.md).
    pub runbook: String,
}

/// The `kubectl`-style list `explain -o json|yaml` prints (contract §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<Diagnosis>,
}

impl List {
    /// Items sorted by `metadata.name`.
    pub fn new(mut items: Vec<Diagnosis>) -> List {
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        List {
            api_version: "v1",
            kind: "List",
            items,
        }
    }
}

/// The kebab-case category used in names: `PassRoleDenied` → `pass-role-denied`.
pub fn category_kebab(category: Category) -> &'static str {
    match category {
        Category::PassRoleDenied => "pass-role-denied",
        Category::ActionDenied => "action-denied",
        Category::KmsKeyUnusable => "kms-key-unusable",
    }
}
