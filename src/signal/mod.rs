//! Recognising Karpenter's failures in text and objects: log lines, kubectl output and
//! `aws ec2 describe-instances` become `Signal`s plus the cluster objects they refer to. Pure.

mod actions;
mod cloudtrail;
mod detect;
mod docs;
mod instances;
mod kube;
mod logline;
mod logs;
pub mod pending;
mod record;
mod rules;
mod salvage;
mod scanner;
mod sink;
pub mod text;
mod time;

pub use self::kube::{
    KARPENTER_EVENTS_NAMESPACE, KARPENTER_REPORTER, author, chart_version, event_author,
};
pub use rules::RuleError;
pub use scanner::Scanner;
pub use sink::MAX_SIGNALS;

use serde::Serialize;

/// What kind of failure a signal reports (contract §5 categories).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum Category {
    /// `iam:PassRole` refused.
    PassRoleDenied,
    /// Any other action refused.
    ActionDenied,
    /// An instance or volume could not use its KMS key.
    KmsKeyUnusable,
    /// Karpenter cannot obtain its own AWS credentials (IRSA or EKS Pod Identity not in
    /// effect, `sts:AssumeRoleWithWebIdentity` refused, no OIDC provider).
    CredentialsDenied,
}

/// Where a signal was seen (the `source` label of `karpenter_doctor_signals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    Log,
    Event,
    NodeClaim,
    NodeClass,
    Instance,
}

/// Which policy layer the denial sentence blames (`because no identity-based policy allows…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PolicyLayer {
    /// `because no identity-based policy allows the X action`
    NoIdentityPolicy,
    /// `with an explicit deny in an identity-based policy`
    IdentityExplicitDeny,
    /// `with an explicit deny in a service control policy`
    ScpExplicitDeny,
    /// `because no service control policy allows` (rare, but AWS prints it)
    NoScp,
    /// `because no permissions boundary allows the X action`
    NoBoundary,
    /// `with an explicit deny in a permissions boundary`
    BoundaryExplicitDeny,
    /// `because no session policy allows the X action`
    NoSessionPolicy,
    /// `with an explicit deny in a session policy`
    SessionExplicitDeny,
    /// `with an explicit deny in a resource-based policy`
    ResourceExplicitDeny,
    /// `because no resource-based policy allows the X action`
    NoResourcePolicy,
    /// `with an explicit deny in a resource control policy`
    RcpExplicitDeny,
    /// `because no resource control policy allows the X action`
    NoRcp,
    /// `with an explicit deny in a VPC endpoint policy`
    VpcEndpointExplicitDeny,
    /// `because no VPC endpoint policy allows the X action`
    NoVpcEndpointPolicy,
    /// `because no role trust policy allows the sts:AssumeRole action`
    NoTrustPolicy,
    /// `with an explicit deny in the role trust policy`
    TrustExplicitDeny,
}

/// Where in the input a signal or warning comes from: file name and 1-based line (0 when a
/// warning concerns the file as a whole). For a JSON or YAML document, the line where the
/// document starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

/// One recognised failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    pub source: Source,
    pub origin: Origin,
    /// The id of the recognition rule that matched (rules/signals.json).
    pub rule: String,
    pub category: Category,
    /// RFC 3339 time of the failure where the input says.
    pub time: Option<String>,
    /// `UnauthorizedOperation`, `AccessDenied`, `Client.InvalidKMSKey.InvalidState`, …
    pub error_code: Option<String>,
    pub layer: Option<PolicyLayer>,
    /// The caller as the message names it (often an assumed-role session ARN).
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    /// The blob after `Encoded authorization failure message:` / `Encoded Failure:`.
    pub encoded_message: Option<String>,
    /// The ARN of the policy AWS names as denying (2026 messages, same account or
    /// organization only).
    pub policy_arn: Option<String>,
    /// The IAM Access Troubleshooter's authorization id (`GetRequestAuthorizationDetails`).
    pub authorization_id: Option<String>,
    /// The OIDC issuer URL a credentials failure names.
    pub oidc_issuer: Option<String>,
    /// Where the action comes from when AWS's message names none (an SDK operation, a log
    /// field, Karpenter's wrapper text); `None` when the message names it.
    pub action_from: Option<String>,
    /// The AWS call that failed (`ec2:CreateFleet`, `iam:AddRoleToInstanceProfile`), where the
    /// text around the message names it: it decides the request context AWS evaluated.
    pub call: Option<String>,
    pub node_claim: Option<String>,
    pub node_pool: Option<String>,
    pub node_class: Option<String>,
    /// EC2 instance id (`i-…`), from a provider ID or describe-instances.
    pub instance_id: Option<String>,
    /// KMS key ARN or id, where the input names it.
    pub kms_key: Option<String>,
    /// The key's state as a KMS error names it (`Disabled`, `PendingDeletion`, `PendingImport`,
    /// `Unavailable`), at the time of the failure.
    pub key_state: Option<String>,
    /// Values the text held only in part, because it was cut inside them: never a value.
    pub partial: Partial,
    /// Who wrote the text when it is not Karpenter's own (an Event another component or a
    /// user reported, or one not where Karpenter records them): such a text never proves a
    /// failure. `None`: Karpenter's log, its objects' status, its Events.
    pub author: Option<String>,
    /// The failed call was a dry run: Karpenter's EC2NodeClass validation (`ValidationSucceeded`),
    /// which calls RunInstances directly where a launch goes through CreateFleet.
    pub dry_run: bool,
    /// The raw error text, at most 4 KiB (cut on a character boundary).
    pub message: String,
}

impl Signal {
    /// A signal of `category` told by `message`, every other field empty.
    pub fn new(
        source: Source,
        origin: Origin,
        rule: &str,
        category: Category,
        message: &str,
    ) -> Signal {
        Signal {
            source,
            origin,
            rule: rule.into(),
            category,
            time: None,
            error_code: None,
            layer: None,
            principal: None,
            action: None,
            resource: None,
            encoded_message: None,
            policy_arn: None,
            authorization_id: None,
            oidc_issuer: None,
            action_from: None,
            call: None,
            node_claim: None,
            node_pool: None,
            node_class: None,
            instance_id: None,
            kms_key: None,
            key_state: None,
            partial: Partial::default(),
            author: None,
            dry_run: false,
            message: message.into(),
        }
    }
}

/// The rule id of the failures AWS's decoded authorization messages record (`Sink::decoded`):
/// AWS's own record of a refused request, joined to the failure Karpenter wrote of it.
pub const DECODED_RULE: &str = "decoded-authorization-message";

/// What a text cut short held of a value it was cut inside: Karpenter's `...` after 300 bytes
/// (v1.0–v1.14 NodeClaim messages) or 1021 bytes (v1.15 conditions and Event notes), a JSON
/// string that ends early, a terminal's or a user's cut. Each is the prefix that was read: a
/// value that begins so, not the value. It never becomes a resource, principal, action or
/// key, a fingerprint part, a premise or part of a patch; it is said in the evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Partial {
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub kms_key: Option<String>,
}

impl Partial {
    pub fn is_empty(&self) -> bool {
        self == &Partial::default()
    }
}

/// An EC2NodeClass as `kubectl get ec2nodeclasses -o json|yaml` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeClassInfo {
    pub name: String,
    /// `spec.role` (a role name or ARN) or `spec.instanceProfile`.
    pub role: Option<String>,
    pub instance_profile: Option<String>,
    /// `spec.blockDeviceMappings[].ebs.kmsKeyID`, in order, without duplicates.
    pub kms_key_ids: Vec<String>,
    /// AMI ids from `status.amis[].id`.
    pub ami_ids: Vec<String>,
    /// `spec.metadataOptions.httpTokens` (`required` or `optional`; Karpenter's default, when
    /// unset, is `required`): what its launch template asks of IMDS.
    pub http_tokens: Option<String>,
    /// Whether its launches encrypt a volume with the region's default EBS key.
    pub default_ebs_key: DefaultKeyUse,
    /// `spec.amiSelectorTerms[].alias` (`al2023@latest`): the AMIs come from SSM parameters.
    pub ami_aliases: Vec<String>,
    /// `spec.capacityReservationSelectorTerms` selects capacity reservations.
    pub capacity_reservations: bool,
}

/// Whether an EC2NodeClass's launches use the region's default EBS key: a volume that names
/// no `kmsKeyID` is encrypted with it where the mapping says `encrypted: true` (Karpenter's
/// default root volume of every AMI family but Custom, pkg/providers/amifamily `DefaultEBS`,
/// is one), and where EBS encryption by default is on otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum DefaultKeyUse {
    /// Every volume names its key.
    #[default]
    Never,
    /// Only where encryption by default is on.
    WhenEncryptedByDefault,
    /// A volume is encrypted and names no key.
    Always,
}

/// A NodePool as `kubectl get nodepools -o json|yaml` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolInfo {
    pub name: String,
    /// `spec.template.spec.nodeClassRef.name`.
    pub node_class: Option<String>,
    /// `NodeRegistrationHealthy` is `False`: its recent NodeClaims launched but their nodes
    /// never joined (as when the instances die of an unusable KMS key).
    pub registration_unhealthy: bool,
    /// The capacity types its requirements allow (`karpenter.sh/capacity-type`; Karpenter's
    /// default, without one, is on-demand), sorted.
    pub capacity_types: Vec<String>,
}

/// A NodeClaim's links: its NodePool, EC2NodeClass and instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimInfo {
    pub name: String,
    pub node_pool: Option<String>,
    pub node_class: Option<String>,
    pub instance_id: Option<String>,
    /// `status.imageID`.
    pub image_id: Option<String>,
    /// `spot`, `on-demand`, `reserved`: the `karpenter.sh/capacity-type` label Karpenter sets
    /// on a launched NodeClaim.
    pub capacity_type: Option<String>,
    /// Launched, then lost its instance: never registered (`Registered` not True), being
    /// deleted, or named by an `InstanceTerminating`/`TerminatingOnInterruption` Event. Only
    /// such NodeClaims' instances are described (their StateReason tells why they died).
    pub lost: bool,
}

/// An EC2 instance from `aws ec2 describe-instances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    pub instance_id: String,
    pub image_id: Option<String>,
    pub state: Option<String>,
    /// `StateReason.Code` and `.Message`.
    pub state_reason_code: Option<String>,
    pub state_reason_message: Option<String>,
    /// Karpenter's tags: `karpenter.sh/nodeclaim`, `karpenter.sh/nodepool`,
    /// `karpenter.k8s.aws/ec2nodeclass`.
    pub node_claim: Option<String>,
    pub node_pool: Option<String>,
    pub node_class: Option<String>,
    pub region: Option<String>,
    /// `spot` (`InstanceLifecycle`), `capacity-block`, else `on-demand`.
    pub capacity_type: String,
    /// `BlockDeviceMappings[].Ebs.VolumeId` are not keys; the KMS key comes from elsewhere.
    pub launch_time: Option<String>,
}

/// Input that could not be read, skipped with this warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub origin: Origin,
    pub message: String,
}

/// Everything recognised in the inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    pub signals: Vec<Signal>,
    pub node_classes: Vec<NodeClassInfo>,
    pub node_claims: Vec<NodeClaimInfo>,
    pub node_pools: Vec<NodePoolInfo>,
    pub instances: Vec<InstanceInfo>,
    /// The Karpenter controller role ARN from a ServiceAccount's `eks.amazonaws.com/role-arn`.
    pub controller_roles: Vec<String>,
    /// Karpenter's ServiceAccounts that name a role: what its web identity token's `sub` is.
    pub accounts: Vec<AccountInfo>,
    /// The cluster's OIDC issuer URLs (`aws eks describe-cluster`).
    pub oidc_issuers: Vec<String>,
    /// The account's IAM OIDC providers (`aws iam list-open-id-connect-providers`); `None`:
    /// not given.
    pub oidc_providers: Option<Vec<String>>,
    /// EKS Pod Identity associations (`aws eks describe-pod-identity-association`, or
    /// `list-pod-identity-associations`, which does not name the role).
    pub pod_identities: Vec<PodIdentityInfo>,
    /// Karpenter's ServiceAccounts that name no role (`namespace/name`): IRSA is not set up.
    pub unannotated_accounts: Vec<String>,
    /// Karpenter's pods (`kubectl get pod -o yaml`): how each gets its AWS credentials.
    pub karpenter_pods: Vec<PodInfo>,
    /// Roles' trust policies as `aws iam get-role` prints them (the role's ARN, the document).
    pub role_trusts: Vec<RoleTrust>,
    /// IAM Access Troubleshooter details of denied requests
    /// (`aws iam-toolbox get-request-authorization-details`, or fetched live).
    pub authorizations: Vec<crate::facts::authorization::AuthorizationDetails>,
    /// AWS's decoded authorization messages (`aws sts decode-authorization-message` output, or
    /// the document it decodes to): AWS's own evaluation of a refused request.
    pub decoded: Vec<crate::facts::decoded::Decoded>,
    /// The EKS cluster's name: `--cluster-name`, Karpenter's `CLUSTER_NAME`, or
    /// `aws eks describe-cluster` output.
    pub cluster_names: Vec<String>,
    /// Organization policies (SCPs, RCPs) as `aws organizations describe-policy` prints them.
    pub org_policies: Vec<OrgPolicyInfo>,
    /// The pods waiting for a node (phase Pending, bound to none); `None`: pods were not read.
    pub pending_pods: Option<Vec<PodRef>>,
    /// Karpenter's nominations of pods for NodeClaims (`pending`).
    pub nominations: Vec<Nomination>,
    pub warnings: Vec<Warning>,
}

/// A pod, by namespace and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

/// Karpenter nominated a pod for a NodeClaim (`pending::nominated_claim`), at `time`
/// (normalized RFC 3339, where the Event says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Nomination {
    pub pod: PodRef,
    pub node_claim: String,
    pub time: Option<String>,
}

/// An organization policy from `aws organizations describe-policy`: its ARN, type
/// (`SERVICE_CONTROL_POLICY`, `RESOURCE_CONTROL_POLICY`) and document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgPolicyInfo {
    pub arn: String,
    pub kind: String,
    pub name: String,
    pub document: serde_json::Value,
}

/// A role's trust policy from `aws iam get-role`: the document as printed (a JSON object, or
/// the API's URL-encoded string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleTrust {
    pub arn: String,
    pub document: serde_json::Value,
}

/// One Karpenter pod and the AWS credentials its containers were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub service_account: String,
    pub credentials: PodCredentials,
}

/// What the EKS webhooks put into a pod's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PodCredentials {
    /// IRSA: `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` (a projected token).
    WebIdentity,
    /// EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    PodIdentity,
    /// Neither: the SDK falls back to the node's instance profile.
    None,
}

/// Appends `item` unless `list` already holds it: the observations keep each fact once, in
/// the order first seen.
pub(crate) fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

impl Observations {
    /// A cluster's OIDC issuer, once.
    pub fn add_oidc_issuer(&mut self, issuer: &str) {
        push_new(&mut self.oidc_issuers, issuer.to_string());
    }

    /// A Pod Identity association; a described one (naming its role) replaces the same one
    /// listed.
    pub fn add_pod_identity(&mut self, info: PodIdentityInfo) {
        let same = |k: &PodIdentityInfo| {
            k.namespace == info.namespace
                && k.service_account == info.service_account
                && k.cluster == info.cluster
        };
        match self.pod_identities.iter_mut().find(|k| same(k)) {
            Some(known) if known.role.is_none() => *known = info,
            Some(_) => {}
            None => self.pod_identities.push(info),
        }
    }

    /// A warning about an AWS lookup (`file` names the call).
    pub fn warn(&mut self, file: &str, message: String) {
        self.warnings.push(Warning {
            origin: Origin {
                file: file.into(),
                line: 0,
            },
            message,
        });
    }
}

/// An EKS Pod Identity association: the role EKS Auth gives a namespace's ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentityInfo {
    pub cluster: Option<String>,
    pub namespace: String,
    pub service_account: String,
    /// `None` where only listed.
    pub role: Option<String>,
}

/// The ServiceAccount annotation IRSA reads the role from.
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// A ServiceAccount with the role it names (`eks.amazonaws.com/role-arn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountInfo {
    pub namespace: String,
    pub name: String,
    pub role: String,
    /// `eks.amazonaws.com/audience`: the token's `aud`, where it is not `sts.amazonaws.com`.
    pub audience: Option<String>,
    /// The Karpenter version its chart labelled it with (`kube::chart_version`).
    pub chart_version: Option<String>,
}
