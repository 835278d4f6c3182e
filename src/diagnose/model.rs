//! The `Diagnosis` resource of contract §3 as plain data: spec, status, conditions, root cause
//! and remediation. `explain -o json|yaml` prints it; the controller will write the same object.

use crate::signal::Category;
use schemars::JsonSchema;
use serde::Serialize;

pub const API_VERSION: &str = "karpenter-doctor.io/v1alpha1";
pub const KIND: &str = "Diagnosis";

/// Root-cause reason codes (contract §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
pub enum ReasonCode {
    PassedToServiceMismatch,
    ConditionNotSatisfied,
    ResourcePartitionMismatch,
    ResourceNotCovered,
    ActionNotAllowed,
    IdentityPolicyExplicitDeny,
    PermissionsBoundaryDeny,
    ServiceControlPolicyDeny,
    ResourceControlPolicyDeny,
    VpcEndpointPolicyDeny,
    SessionPolicyDeny,
    ResourcePolicyDeny,
    WrongPrincipal,
    KeyDisabled,
    KeyPendingDeletion,
    KeyPendingImport,
    KeyUnavailable,
    KeyAccessNotGranted,
    IdentityPolicyMissingKmsPermissions,
    TrustPolicyMismatch,
    OidcProviderMissing,
    StsRegionDisabled,
    Undetermined,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 23] = [
        ReasonCode::PassedToServiceMismatch,
        ReasonCode::ConditionNotSatisfied,
        ReasonCode::ResourcePartitionMismatch,
        ReasonCode::ResourceNotCovered,
        ReasonCode::ActionNotAllowed,
        ReasonCode::IdentityPolicyExplicitDeny,
        ReasonCode::PermissionsBoundaryDeny,
        ReasonCode::ServiceControlPolicyDeny,
        ReasonCode::ResourceControlPolicyDeny,
        ReasonCode::VpcEndpointPolicyDeny,
        ReasonCode::SessionPolicyDeny,
        ReasonCode::ResourcePolicyDeny,
        ReasonCode::WrongPrincipal,
        ReasonCode::KeyDisabled,
        ReasonCode::KeyPendingDeletion,
        ReasonCode::KeyPendingImport,
        ReasonCode::KeyUnavailable,
        ReasonCode::KeyAccessNotGranted,
        ReasonCode::IdentityPolicyMissingKmsPermissions,
        ReasonCode::TrustPolicyMismatch,
        ReasonCode::OidcProviderMissing,
        ReasonCode::StsRegionDisabled,
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
            ReasonCode::ResourceControlPolicyDeny => "ResourceControlPolicyDeny",
            ReasonCode::VpcEndpointPolicyDeny => "VpcEndpointPolicyDeny",
            ReasonCode::SessionPolicyDeny => "SessionPolicyDeny",
            ReasonCode::ResourcePolicyDeny => "ResourcePolicyDeny",
            ReasonCode::WrongPrincipal => "WrongPrincipal",
            ReasonCode::KeyDisabled => "KeyDisabled",
            ReasonCode::KeyPendingDeletion => "KeyPendingDeletion",
            ReasonCode::KeyPendingImport => "KeyPendingImport",
            ReasonCode::KeyUnavailable => "KeyUnavailable",
            ReasonCode::KeyAccessNotGranted => "KeyAccessNotGranted",
            ReasonCode::IdentityPolicyMissingKmsPermissions => {
                "IdentityPolicyMissingKmsPermissions"
            }
            ReasonCode::TrustPolicyMismatch => "TrustPolicyMismatch",
            ReasonCode::OidcProviderMissing => "OidcProviderMissing",
            ReasonCode::StsRegionDisabled => "StsRegionDisabled",
            ReasonCode::Undetermined => "Undetermined",
        }
    }
}

/// How sure the root cause is: `Confirmed` (a failure Karpenter wrote, proven by AWS facts,
/// live or snapshot), `Inferred` (something is missing, and the evidence names it) or
/// `Predicted` (no failure seen yet, but the facts prove a request Karpenter will make is
/// refused: `preflight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Confidence {
    Confirmed,
    Inferred,
    Predicted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: DiagnosisSpec,
    pub status: DiagnosisStatus,
    /// The pending pods this cause blocks (`status.blockedPods` counts them): for the
    /// controller's Events on them and its metrics, never written.
    #[serde(skip)]
    pub blocked: Vec<BlockedPod>,
}

/// A pending pod a root cause blocks, and the NodePool of the NodeClaim it waits on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockedPod {
    pub pod: crate::signal::PodRef,
    pub node_pool: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
}

/// What failed; set when the Diagnosis is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisSpec {
    /// The kind of failure: PassRoleDenied (iam:PassRole refused), ActionDenied (any other
    /// action refused), KmsKeyUnusable (an instance or volume could not use its KMS key),
    /// CredentialsDenied (Karpenter cannot obtain its own AWS credentials).
    pub category: Category,
    /// The AWS error code, e.g. UnauthorizedOperation, AccessDenied,
    /// Client.InvalidKMSKey.InvalidState.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The IAM role ARN that was refused (converted from an assumed-role session ARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_arn: Option<String>,
    /// The refused IAM action, e.g. iam:PassRole, ec2:CreateFleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The ARN of the resource the action was refused on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
    /// The KMS key the instance or volume could not use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// The AWS partition: aws, aws-cn, aws-us-gov.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The AWS region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The Karpenter NodePool whose launches failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<String>,
    /// The EC2NodeClass whose launches failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_class: Option<String>,
}

/// What the doctor found, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisStatus {
    /// Diagnosed (True when a root cause was determined; reason = the root-cause code) and
    /// Resolved (True once the fix is verified or the failure stopped recurring).
    pub conditions: Vec<Condition>,
    /// Why the failure happens.
    pub root_cause: RootCause,
    /// What to change.
    pub remediation: Remediation,
    /// How many times the failure was seen.
    pub occurrences: u64,
    /// When the failure was first seen (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// When the failure was last seen (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// The NodeClaims that failed, most recent first (at most 20).
    pub affected_node_claims: Vec<String>,
    /// The latest raw error message (at most 4 KiB).
    pub last_message: String,
    /// How many pending pods wait on NodeClaims this cause blocks (Karpenter nominated them for
    /// those NodeClaims); absent where pending pods were not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_pods: Option<u64>,
    /// The NodePools whose NodeClaims this cause blocks, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_pools: Vec<String>,
}

/// A metav1.Condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Diagnosed or Resolved.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// A CamelCase reason: the root-cause code, LookupFailed, FixVerified, NotRecurring,
    /// NotYetSeen, NoLongerPredicted, ….
    pub reason: String,
    /// A human-readable message.
    pub message: String,
    /// When status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The Diagnosis's metadata.generation the condition was set for (the controller's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The root cause of the failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootCause {
    /// The root-cause code (contract §5), e.g. PassedToServiceMismatch, KeyAccessNotGranted.
    pub reason: ReasonCode,
    /// Confirmed (a failure Karpenter wrote, proven by AWS facts), Inferred (something is
    /// missing, and the evidence names it) or Predicted (no failure seen yet; preflight proves
    /// a request Karpenter will make is refused).
    pub confidence: Confidence,
    /// One sentence.
    pub summary: String,
    /// The facts behind the root cause.
    pub evidence: Vec<Evidence>,
    /// The policy statement at fault, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<crate::policy::StatementRef>,
}

/// One fact behind the root cause: where it comes from, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Evidence {
    /// Where the fact comes from: a log line, an IAM lookup, a snapshot, the policy evaluation.
    pub source: String,
    /// What it says.
    pub detail: String,
}

/// What to change, with the real ARNs filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    /// One sentence.
    pub summary: String,
    /// What to do, in order.
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
        Category::CredentialsDenied => "credentials-denied",
    }
}
