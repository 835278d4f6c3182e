//! What reasoning concludes about one root cause: the reason code, how sure, the evidence,
//! and the fix it calls for, with the data the remediation needs to be concrete.

use super::model::{Evidence, ReasonCode};
use super::premise::{self, Premise};
use crate::policy::StatementRef;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub reason: ReasonCode,
    /// What the reason rests on; its confidence is derived from them (`premise::confidence`).
    pub premises: Vec<Premise>,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub statement: Option<StatementRef>,
    pub fix: Fix,
}

impl Finding {
    /// Whether the facts prove the reason (every premise holds; the failure aside).
    pub fn proven(&self) -> bool {
        premise::proven(&self.premises)
    }
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
    /// An organization policy (SCP or RCP) must change, in the management account.
    Organization {
        kind: OrgPolicy,
        /// The account whose (or whose resources') policies deny.
        account: String,
        action: String,
        /// The policy's ARN, where AWS named it.
        policy: Option<String>,
    },
    /// The VPC endpoint policy the request went through must allow it.
    VpcEndpoint {
        action: String,
        region: Option<String>,
        /// The endpoint's ARN, where AWS named it.
        endpoint: Option<String>,
    },
    /// Whoever creates the session must pass a session policy that allows the action.
    SessionPolicy { role: String, action: String },
    /// The resource's own policy (a key policy, a queue policy) must allow the principal.
    ResourcePolicy {
        action: String,
        resource: Option<String>,
        principal: String,
        explicit_deny: bool,
    },
    /// Karpenter cannot get its credentials: the controller role's trust (or the account's
    /// OIDC provider) must let its ServiceAccount in.
    Credentials(CredentialsFix),
    /// STS is not activated in the region Karpenter calls: activate it (IAM account settings)
    /// or point Karpenter at an active endpoint.
    StsRegion {
        /// The account STS names.
        account: Option<String>,
        /// The controller role Karpenter assumes.
        role: Option<String>,
        /// Karpenter's namespace, where its ServiceAccount was seen.
        namespace: Option<String>,
    },
    /// STS or EKS Auth refused Karpenter's token or credentials for a reason no policy gives
    /// (expired, not verifiable, no association): what to check for the fault AWS named.
    Token {
        fault: TokenFault,
        /// The controller role Karpenter assumes.
        role: Option<String>,
        /// Karpenter's ServiceAccount, `(namespace, name)`, where it was seen.
        account: Option<(String, String)>,
        /// The cluster's OIDC issuer URL, where known.
        issuer: Option<String>,
        /// The audience Karpenter's ServiceAccount asks its token for, where it names one.
        audience: Option<String>,
    },
    /// Karpenter runs as the wrong principal: IRSA / Pod Identity not in effect.
    Principal {
        caller: String,
        controller: Option<String>,
        /// Karpenter's (namespace, ServiceAccount), where its pod was seen.
        account: Option<(String, String)>,
        /// The EKS cluster's name, where known.
        cluster: Option<String>,
    },
    /// The KMS key's state must change.
    KeyState { key: String, state: String },
    /// The key was in `was` when KMS refused it, and is usable again: nothing to change.
    KeyStateRestored { key: String, was: String },
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
    /// Several layers refuse: each must change, in this order.
    Layers(Vec<Fix>),
    /// Karpenter's EC2NodeClass validation (a dry run) is refused where the launch may not be:
    /// turn the dry run off, or let it through as well (`cause`, the fix of the refusing layer).
    DryRun {
        cause: Box<Fix>,
        /// The facts show the launch allowed; else it may be refused too.
        launch_allowed: bool,
        node_class: Option<String>,
        /// Karpenter's namespace, where its pod was seen.
        namespace: Option<String>,
    },
    /// Nothing proven: the remediation says how to find out.
    Investigate {
        role: Option<String>,
        action: Option<String>,
        resource: Option<String>,
    },
}

/// Which organization policy type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgPolicy {
    ServiceControl,
    ResourceControl,
}

/// What the credentials remediation fills in: each part where known.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialsFix {
    pub how: CredentialsPath,
    /// The controller role.
    pub role: Option<String>,
    /// The cluster's OIDC issuer URL.
    pub issuer: Option<String>,
    /// Who was refused `sts:AssumeRole` (role chaining), where the message names it.
    pub caller: Option<String>,
    /// Karpenter's ServiceAccount, `(namespace, name)`: the token's `sub`.
    pub account: Option<(String, String)>,
    /// The whole corrected trust policy (every other statement kept).
    pub trust: Option<serde_json::Value>,
}

/// A credentials failure that is no policy denial: what STS or EKS Auth said of the token or
/// the credentials Karpenter presented (contract §5 has no reason for these: `Undetermined`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    /// `ExpiredToken`: a call was signed with temporary credentials that had expired.
    SessionExpired,
    /// STS `ExpiredTokenException` (`Token expired: current date/time …`): the ServiceAccount
    /// token IRSA exchanged was past its `exp`.
    WebIdentityTokenExpired,
    /// `InvalidIdentityToken: Incorrect token audience`: the token's `aud` is none of the IAM
    /// OIDC provider's client IDs.
    Audience,
    /// `InvalidIdentityToken: Couldn't retrieve verification key from your identity provider`:
    /// STS could not fetch the issuer's signing keys.
    VerificationKey,
    /// `InvalidIdentityToken: OpenIDConnect provider's HTTPS certificate doesn't match
    /// configured thumbprint`.
    Thumbprint,
    /// Any other `InvalidIdentityToken` (issuer, signature, claims).
    IdentityToken,
    /// `IDPCommunicationError`: STS could not reach the issuer.
    IdpUnreachable,
    /// EKS Auth `ExpiredTokenException`: the Pod Identity token had expired.
    PodTokenExpired,
    /// EKS Auth `InvalidTokenException`: the Pod Identity token is not valid.
    PodTokenInvalid,
    /// EKS Auth `ResourceNotFoundException`: no Pod Identity association for the pod.
    NoAssociation,
}

/// How Karpenter was to get its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsPath {
    /// IRSA: `sts:AssumeRoleWithWebIdentity` refused by the trust policy.
    WebIdentity,
    /// IRSA: the issuer is no IAM OIDC provider of the account.
    OidcProvider,
    /// EKS Pod Identity: EKS Auth could not assume the role.
    PodIdentity,
    /// `sts:AssumeRole` of one role by another.
    AssumeRole,
}

pub fn evidence(source: impl Into<String>, detail: impl Into<String>) -> Evidence {
    Evidence {
        source: source.into(),
        detail: detail.into(),
    }
}
