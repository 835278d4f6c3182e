//! Remediation for what lies outside the role's own policies: organization SCPs and RCPs, VPC
//! endpoint, session and resource policies, and Karpenter's credentials (IRSA, Pod Identity).

use super::finding::{CredentialsFix, CredentialsPath, OrgPolicy, TokenFault};
use super::model::Remediation;
use super::remedy::{
    CLUSTER, NAMESPACE, ROLE_NAME, SERVICE_ACCOUNT, get_role, kms, list_associations, pretty,
    restart, role_annotation, role_name,
};
use super::shell::{Command, Piece, Placeholder};
use crate::partition::Partition;
use crate::policy::arn::{Arn, role_arn_of};
use serde_json::{Value, json};

// What the commands need that the doctor cannot know: set before pasting.
const PARENT_ID: Placeholder =
    Placeholder::new("PARENT_ID", "the parent OU id from the command above");
const POLICY_ID: Placeholder =
    Placeholder::new("POLICY_ID", "the policy id from the command above");
const VPC_ID: Placeholder = Placeholder::new("VPC_ID", "the VPC id of the cluster");
const ENDPOINT_ID: Placeholder =
    Placeholder::new("ENDPOINT_ID", "the endpoint id from the command above");
const ASSOCIATION_ID: Placeholder = Placeholder::new(
    "ASSOCIATION_ID",
    "the association id from the command above",
);
const IDENTITY_POLICY: Placeholder =
    Placeholder::new("IDENTITY_POLICY", "a file holding the identity policy");
const RESOURCE_POLICY: Placeholder = Placeholder::new(
    "RESOURCE_POLICY",
    "a file holding the policy of the resource",
);
const ISSUER_URL: Placeholder =
    Placeholder::new("ISSUER_URL", "the issuer URL from the command above");
const REGION: Placeholder = Placeholder::new("REGION", "the AWS_REGION of Karpenter");
const PROVIDER_ARN: Placeholder = Placeholder::new(
    "PROVIDER_ARN",
    "the ARN of the IAM OIDC provider of the cluster issuer",
);
const ROLE_ARN: Placeholder =
    Placeholder::new("ROLE_ARN", "the ARN of the Karpenter controller role");

/// `p-…` of an Organizations policy ARN (`…/service_control_policy/p-2kgnabcd`).
fn policy_id(arn: &str) -> Option<&str> {
    arn.rsplit('/')
        .next()
        .filter(|id| id.starts_with("p-") && id.len() > 2)
}

pub(super) fn organization(
    r: &mut Remediation,
    kind: OrgPolicy,
    account: &str,
    action: &str,
    policy: Option<&str>,
    statement: Option<&crate::policy::StatementRef>,
) {
    let (name, filter) = match kind {
        OrgPolicy::ServiceControl => ("SCP", "SERVICE_CONTROL_POLICY"),
        OrgPolicy::ResourceControl => ("RCP", "RESOURCE_CONTROL_POLICY"),
    };
    let whose = match kind {
        OrgPolicy::ServiceControl => format!("for account {account}"),
        OrgPolicy::ResourceControl => format!("on the resources of account {account}"),
    };
    r.summary = format!("Have the organization's {name}s allow {action} {whose}");
    match policy.and_then(|p| policy_id(p).map(|id| (p, id))) {
        Some((arn, id)) => {
            let which = match statement {
                Some(st) => format!(
                    "The denying {name} is {arn}; its statement {} matches {action}.",
                    [
                        st.sid.as_deref().map(|s| format!("\"{s}\"")),
                        st.index.map(|i| format!("#{i}"))
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
                ),
                None => format!(
                    "AWS names the denying {name}: {arn}. Find its statement that matches {action}."
                ),
            };
            r.steps.push(format!("{which} It lives in the organization's management account (or a delegated administrator): only its owners can change it. Exempt Karpenter's controller role from that statement, or make Karpenter's request comply."));
            r.commands.push(
                Command::new("aws")
                    .lit("organizations describe-policy")
                    .opt("--policy-id", id)
                    .lit("--query Policy.Content --output text")
                    .into(),
            );
            r.commands.push(
                Command::new("aws")
                    .lit("organizations list-targets-for-policy")
                    .opt("--policy-id", id)
                    .into(),
            );
        }
        None => {
            r.steps.push(format!("In the organization's management account (or a delegated administrator), find the {name} attached to account {account} or to one of its parent OUs that denies {action}, and exempt Karpenter's controller role or the action."));
            let for_target = |target: Piece<'_>| {
                Command::new("aws")
                    .lit("organizations list-policies-for-target")
                    .opt("--target-id", target)
                    .lit("--filter")
                    .lit(filter)
            };
            r.commands.push(for_target(account.into()).into());
            r.commands.push(
                Command::new("aws")
                    .lit("organizations list-parents")
                    .opt("--child-id", account)
                    .into(),
            );
            r.commands.push(for_target(PARENT_ID.into()).into());
            r.commands.push(
                Command::new("aws")
                    .lit("organizations describe-policy")
                    .opt("--policy-id", POLICY_ID)
                    .into(),
            );
        }
    }
}

pub(super) fn vpc_endpoint(
    r: &mut Remediation,
    action: &str,
    region: Option<&str>,
    endpoint: Option<&str>,
) {
    let service = action.split(':').next().unwrap_or("");
    let endpoints = |command: &'static str| {
        Command::new("aws")
            .lit(command)
            .opt_some("--region", region)
    };
    r.summary = format!("Let the VPC endpoint policy for {service} allow {action}");
    r.steps.push(format!("Karpenter reaches {service} through a VPC endpoint whose policy does not allow {action}. Allow it for Karpenter's controller role (or remove the Deny that matches) in the endpoint's policy; the policy applies to every caller that uses the endpoint."));
    let id = endpoint
        .and_then(|e| e.rsplit('/').next())
        .filter(|id| id.starts_with("vpce-"));
    let describe = endpoints("ec2 describe-vpc-endpoints");
    r.commands.push(
        match id {
            Some(id) => describe
                .opt("--vpc-endpoint-ids", id)
                .lit("--query 'VpcEndpoints[0].PolicyDocument' --output text"),
            None => describe
                .lit("--filters")
                .word(&[Piece::Lit("Name=vpc-id,Values="), Piece::Hole(VPC_ID)])
                .lit("--query 'VpcEndpoints[].[VpcEndpointId,ServiceName,PolicyDocument]' --output text"),
        }
        .into(),
    );
    r.commands.push(
        endpoints("ec2 modify-vpc-endpoint")
            .opt(
                "--vpc-endpoint-id",
                id.map_or(ENDPOINT_ID.into(), Piece::Value),
            )
            .lit("--policy-document file://endpoint-policy.json")
            .into(),
    );
}

pub(super) fn session(r: &mut Remediation, role: &str, action: &str) {
    r.summary = format!("Widen (or drop) the session policy of Karpenter's session as {role}");
    r.steps.push(format!("The credentials Karpenter uses carry a session policy that does not allow {action}: it only narrows what {role}'s own policies allow. Whoever creates the session sets it — an EKS Pod Identity association's policy, or a tool that calls sts:AssumeRole with --policy: allow {action} there, or pass none."));
    r.commands
        .push(list_associations(CLUSTER.into(), NAMESPACE.into()).into());
    r.commands.push(
        Command::new("aws")
            .lit("eks describe-pod-identity-association")
            .opt("--cluster-name", CLUSTER)
            .opt("--association-id", ASSOCIATION_ID)
            .lit("--query association.policy")
            .into(),
    );
    r.commands
        .push(restart(NAMESPACE.into(), "deployment/karpenter").into());
}

pub(super) fn resource_policy(
    r: &mut Remediation,
    action: &str,
    resource: Option<&str>,
    principal: &str,
    explicit_deny: bool,
) {
    let target = resource.unwrap_or("the resource");
    let owner = resource
        .and_then(Arn::parse)
        .map(|a| a.account.to_string())
        .filter(|a| !a.is_empty());
    r.summary = if explicit_deny {
        format!("Narrow the Deny in the resource policy of {target} that matches {action}")
    } else {
        format!("Let the resource policy of {target} allow {action} for {principal}")
    };
    r.steps.push(format!(
        "Change the policy of {target} in its owner's account{}: {}.",
        owner.map(|o| format!(" ({o})")).unwrap_or_default(),
        if explicit_deny {
            "remove or narrow the Deny statement that matches Karpenter's role and action"
        } else {
            "across accounts the resource's policy must allow the role as well as the role's own policies"
        }
    ));
    if !explicit_deny {
        let statement = json!({"Sid": "AllowKarpenter", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"});
        r.policy_patch = Some(pretty(&statement));
    }
    match resource.and_then(Arn::parse).map(|a| (a.service, a)) {
        Some(("kms", _)) => {
            let key = resource.unwrap_or_default();
            r.commands.push(
                kms("kms get-key-policy", key)
                    .lit("--policy-name default --output text")
                    .into(),
            );
            r.commands.push(
                kms("kms put-key-policy", key)
                    .lit("--policy-name default --policy file://key-policy.json")
                    .into(),
            );
        }
        Some(("sqs", a)) => {
            let url = format!(
                "https://sqs.{}.amazonaws.com/{}/{}",
                a.region, a.account, a.resource
            );
            r.commands.push(
                Command::new("aws")
                    .lit("sqs get-queue-attributes")
                    .opt("--queue-url", url.as_str())
                    .lit("--attribute-names Policy --query Attributes.Policy --output text")
                    .into(),
            );
        }
        _ => r.commands.push(
            Command::new("karpenter-doctor")
                .lit("simulate")
                .opt("--policy", IDENTITY_POLICY)
                .opt("--resource-policy", RESOURCE_POLICY)
                .opt("--principal", principal)
                .opt("--action", action)
                .opt_some("--resource", resource)
                .into(),
        ),
    }
}

pub(super) fn credentials(r: &mut Remediation, fix: &CredentialsFix, partition: &Partition) {
    let (how, role, issuer, caller) = (
        fix.how,
        fix.role.as_deref(),
        fix.issuer.as_deref(),
        fix.caller.as_deref(),
    );
    let (namespace, account) = match &fix.account {
        Some((ns, name)) => (Piece::Value(ns), Piece::Value(name)),
        None => (Piece::Hole(NAMESPACE), Piece::Hole(SERVICE_ACCOUNT)),
    };
    let role_label = role.unwrap_or("Karpenter's controller role");
    let role_arg = role.map_or(ROLE_NAME.into(), |r| Piece::Value(role_name(r)));
    let read_and_update_trust = [
        get_role(role_arg).lit("--query Role.AssumeRolePolicyDocument"),
        Command::new("aws")
            .lit("iam update-assume-role-policy")
            .opt("--role-name", role_arg)
            .lit("--policy-document file://trust.json"),
    ];
    let describe_issuer = Command::new("aws")
        .lit("eks describe-cluster")
        .opt("--name", CLUSTER)
        .lit("--query cluster.identity.oidc.issuer --output text");
    match how {
        CredentialsPath::OidcProvider => {
            r.summary = format!(
                "Register the cluster's OIDC issuer{} as an IAM OIDC provider",
                issuer.map(|i| format!(" {i}")).unwrap_or_default()
            );
            r.steps.push("IRSA needs the cluster's OIDC issuer registered as an IAM OIDC identity provider in the controller role's account; STS found none for it.".into());
            r.commands.push(describe_issuer.into());
            r.commands.push(
                Command::new("aws")
                    .lit("iam create-open-id-connect-provider")
                    .opt("--url", issuer.map_or(ISSUER_URL.into(), Piece::Value))
                    .lit("--client-id-list sts.amazonaws.com")
                    .into(),
            );
            r.commands.push(
                Command::new("eksctl")
                    .lit("utils associate-iam-oidc-provider")
                    .opt("--cluster", CLUSTER)
                    .lit("--approve")
                    .into(),
            );
            r.steps.push("Check that the controller role's trust policy names this provider (a trust policy copied from another cluster names that cluster's issuer).".into());
        }
        CredentialsPath::WebIdentity => {
            r.summary = format!(
                "Let Karpenter's ServiceAccount assume {role_label}: correct its trust policy"
            );
            let host = issuer.map_or("<issuer>", |i| i.trim_start_matches("https://"));
            let (ns, sa) = fix.account.as_ref().map_or(
                ("<karpenter namespace>", "<service account>"),
                |(ns, sa)| (ns.as_str(), sa.as_str()),
            );
            r.steps.push(format!("STS refused sts:AssumeRoleWithWebIdentity: the trust policy of {role_label} must name the cluster's OIDC provider as Federated principal, with {host}:sub = system:serviceaccount:{ns}:{sa} and {host}:aud = sts.amazonaws.com. Compare it with the cluster's issuer and Karpenter's ServiceAccount."));
            let statement = web_identity_statement(role, issuer, fix.account.as_ref(), partition);
            trust_patch(r, fix, &statement);
            let named = if fix.account.is_some() {
                account
            } else {
                Piece::Lit("karpenter")
            };
            r.commands.push(role_annotation(namespace, named).into());
            r.commands.push(describe_issuer.into());
            r.commands.extend(read_and_update_trust.map(String::from));
        }
        CredentialsPath::PodIdentity => {
            r.summary = format!(
                "Let EKS Pod Identity assume {role_label}: trust pods.eks.amazonaws.com for sts:AssumeRole and sts:TagSession"
            );
            r.steps.push(format!("EKS Auth could not assume {role_label} for Karpenter's pod: its trust policy must allow the service principal pods.eks.amazonaws.com (in the China regions too) both sts:AssumeRole and sts:TagSession, and an association must exist for Karpenter's namespace and ServiceAccount."));
            let statement = json!({"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"]});
            trust_patch(r, fix, &statement);
            r.commands.extend(read_and_update_trust.map(String::from));
            r.commands
                .push(list_associations(CLUSTER.into(), namespace).into());
        }
        CredentialsPath::AssumeRole => {
            let caller_role = caller.map(role_arn_of);
            r.summary = format!(
                "Let {} assume {role_label}: correct the trust policy",
                caller_role.as_deref().unwrap_or("the caller")
            );
            r.steps.push(format!("The trust policy of {role_label} does not let {} call sts:AssumeRole on it (and its own policies must allow sts:AssumeRole on {role_label}).", caller_role.as_deref().unwrap_or("the caller")));
            if let Some(c) = &caller_role {
                let statement =
                    json!({"Effect": "Allow", "Principal": {"AWS": c}, "Action": "sts:AssumeRole"});
                r.policy_patch = Some(pretty(&statement));
            }
            r.commands.extend(read_and_update_trust.map(String::from));
        }
    }
    r.steps
        .push("Restart Karpenter so that its pods pick up the credentials at once.".into());
    r.commands
        .push(restart(namespace, "deployment/karpenter").into());
}

/// The policy patch of a trust policy fix: the corrected whole document where the trust
/// policy was read, else the `statement` to add.
fn trust_patch(r: &mut Remediation, fix: &CredentialsFix, statement: &Value) {
    r.policy_patch = Some(pretty(fix.trust.as_ref().unwrap_or(statement)));
    if fix.trust.is_some() {
        r.steps.push("The corrected trust policy below is the whole document: its other statements are kept. Save it as trust.json.".into());
    }
}

/// The trust statement IRSA needs for Karpenter's ServiceAccount, with what is known filled in.
pub(super) fn web_identity_statement(
    role: Option<&str>,
    issuer: Option<&str>,
    account: Option<&(String, String)>,
    partition: &Partition,
) -> Value {
    let owner = role
        .and_then(Arn::parse)
        .map_or("<account>".to_string(), |a| a.account.to_string());
    let host = issuer.map_or("<issuer host and path>", |i| {
        i.trim_start_matches("https://")
    });
    let sub = account.map_or(
        "system:serviceaccount:<karpenter namespace>:<service account>".to_string(),
        |(ns, name)| format!("system:serviceaccount:{ns}:{name}"),
    );
    json!({"Effect": "Allow",
        "Principal": {"Federated": format!("arn:{}:iam::{owner}:oidc-provider/{host}", partition.id)},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{host}:sub"): sub, format!("{host}:aud"): "sts.amazonaws.com"}}})
}

/// STS is not activated in the region Karpenter calls (`RegionDisabledException`): activate it
/// in the account's IAM settings (no API does), or give Karpenter an endpoint that is active.
pub(super) fn sts_region(
    r: &mut Remediation,
    account: Option<&str>,
    role: Option<&str>,
    namespace: Option<&str>,
    partition: &Partition,
) {
    let account = account.unwrap_or("the account of Karpenter's controller role");
    let namespace = namespace.unwrap_or("kube-system");
    r.summary = format!("Activate AWS STS in Karpenter's region for {account}");
    r.steps.push(format!(
        "Find the region Karpenter calls STS in: its pod's AWS_REGION (IRSA's web identity token is exchanged at that region's endpoint, sts.<region>.{}).",
        partition.dns_suffix
    ));
    r.steps.push(format!(
        "In {account}, open IAM → Account settings → Security Token Service (STS) → Endpoints and activate that region (an account setting: no API or CLI changes it, and the doctor changes nothing)."
    ));
    if partition.id == "aws" {
        r.steps.push("Or, where the region must stay deactivated, give Karpenter the global endpoint (https://sts.amazonaws.com, served from us-east-1, which cannot be deactivated) through its chart's controller.env, AWS_ENDPOINT_URL_STS.".into());
    }
    r.steps.push(format!(
        "Restart Karpenter so it asks for credentials again{}.",
        role.map(|r| format!(" (it assumes {r})"))
            .unwrap_or_default()
    ));
    r.commands.push(
        Command::new("kubectl")
            .opt("-n", namespace)
            .lit("set env deployment/karpenter --list")
            .into(),
    );
    r.commands.push(
        Command::new("aws")
            .lit("sts get-caller-identity")
            .opt("--region", REGION)
            .into(),
    );
    r.commands
        .push(restart(namespace.into(), "deployment karpenter").into());
}

/// A token or credentials failure that is no policy's (`TokenFault`): what to check and change
/// for the fault STS or EKS Auth named. The doctor proves none of it, so the steps say where to
/// look first; every command reads, except restarting Karpenter and, for a missing client ID or
/// association, the one change AWS's sentence asks for.
pub(super) fn token(
    r: &mut Remediation,
    fault: TokenFault,
    role: Option<&str>,
    account: Option<&(String, String)>,
    issuer: Option<&str>,
    audience: Option<&str>,
    partition: &Partition,
) {
    let (namespace, service_account) = match account {
        Some((ns, name)) => (Piece::Value(ns), Piece::Value(name)),
        None => (Piece::Hole(NAMESPACE), Piece::Hole(SERVICE_ACCOUNT)),
    };
    let issuer_arg = issuer
        .map(|i| i.trim_end_matches('/'))
        .map_or(ISSUER_URL.into(), Piece::Value);
    let describe_issuer = Command::new("aws")
        .lit("eks describe-cluster")
        .opt("--name", CLUSTER)
        .lit("--query cluster.identity.oidc.issuer --output text");
    // The IAM OIDC provider of the issuer in the role's account, where both are known.
    let provider = role.and_then(Arn::parse).zip(issuer).map(|(r, i)| {
        format!(
            "arn:{}:iam::{}:oidc-provider/{}",
            partition.id,
            r.account,
            i.trim_start_matches("https://").trim_end_matches('/')
        )
    });
    let provider_arg = provider
        .as_deref()
        .map_or(PROVIDER_ARN.into(), Piece::Value);
    let get_provider = Command::new("aws")
        .lit("iam get-open-id-connect-provider")
        .opt("--open-id-connect-provider-arn", provider_arg);
    let env = Command::new("kubectl")
        .opt("-n", namespace)
        .lit("set env deployment/karpenter --list");
    let audience = audience.unwrap_or("sts.amazonaws.com");
    match fault {
        TokenFault::SessionExpired => {
            r.summary = "Give Karpenter credentials it refreshes: no static session credentials, a node clock in sync".into();
            r.steps.push("AWS refused a call signed with temporary credentials past their expiry. Check that Karpenter's pod has no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN in its environment or a mounted credentials file (static session credentials are never refreshed): it should get them from IRSA (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) or EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI).".into());
            r.steps.push("Check the clock of the node Karpenter runs on (chronyd / Amazon Time Sync): with a clock behind, the SDK refreshes too late.".into());
            r.commands.push(env.into());
        }
        TokenFault::WebIdentityTokenExpired | TokenFault::PodTokenExpired => {
            r.summary = "Let Karpenter present a fresh ServiceAccount token: the kubelet refreshes it, the node's clock must be right".into();
            r.steps.push("The ServiceAccount token Karpenter presented had expired. The kubelet rewrites the projected token before it expires; a token that is stale means the kubelet could not (node trouble) or the token came from elsewhere (a copied file, a long-lived Secret). Check the clock of Karpenter's node too: STS and EKS Auth compare exp with their own time.".into());
            r.commands.push(env.into());
            r.commands.push(
                Command::new("kubectl")
                    .opt("-n", namespace)
                    .lit("get pods -l app.kubernetes.io/name=karpenter -o wide")
                    .into(),
            );
        }
        TokenFault::Audience => {
            r.summary = format!(
                "Add the token's audience {audience} to the client IDs of the cluster's IAM OIDC provider"
            );
            r.steps.push(format!("STS compares the token's aud with the client IDs of the IAM OIDC provider for the cluster's issuer: Karpenter's token asks for {audience} (the ServiceAccount's eks.amazonaws.com/audience annotation, else sts.amazonaws.com), and the provider does not list it. Add it there, or remove a wrong audience annotation."));
            r.commands.push(describe_issuer.into());
            r.commands.push(get_provider.into());
            r.commands.push(
                Command::new("aws")
                    .lit("iam add-client-id-to-open-id-connect-provider")
                    .opt("--open-id-connect-provider-arn", provider_arg)
                    .opt("--client-id", audience)
                    .into(),
            );
        }
        TokenFault::VerificationKey | TokenFault::IdpUnreachable | TokenFault::IdentityToken => {
            r.summary = "Make the cluster's OIDC issuer verifiable by STS: the issuer Karpenter's token names must serve its discovery document and keys publicly".into();
            r.steps.push("STS fetches <issuer>/.well-known/openid-configuration and the keys it points to, over the internet, to verify the token. An EKS issuer serves them while the cluster exists; a self-managed issuer (an S3 bucket, kops, a private endpoint) must be reachable publicly. Check that the issuer in Karpenter's token is the cluster's (a token from another or a re-created cluster names another issuer) and that the IAM OIDC provider names that issuer.".into());
            if fault == TokenFault::IdpUnreachable {
                r.steps.push("IDPCommunicationError is often transient: if it stops within minutes, nothing needs to change.".into());
            }
            r.commands.push(describe_issuer.into());
            r.commands.push(
                Command::new("curl")
                    .lit("-fsS")
                    .word(&[issuer_arg, Piece::Lit("/.well-known/openid-configuration")])
                    .into(),
            );
            r.commands.push(get_provider.into());
        }
        TokenFault::Thumbprint => {
            r.summary = "Correct the thumbprint of the cluster's IAM OIDC provider to the issuer's certificate".into();
            r.steps.push("STS checks the issuer's HTTPS certificate against the thumbprints of the IAM OIDC provider. Read the provider's ThumbprintList and replace it with the thumbprint of the issuer's top intermediate CA (for EKS issuers, recreating the provider with eksctl or the console computes it).".into());
            r.commands.push(describe_issuer.into());
            r.commands.push(get_provider.into());
        }
        TokenFault::PodTokenInvalid => {
            r.summary = "Let Karpenter present a valid Pod Identity token: EKS Pod Identity Agent running, the token for pods.eks.amazonaws.com".into();
            r.steps.push("EKS Auth found the ServiceAccount token of Karpenter's pod invalid: it must be issued by this cluster for the audience pods.eks.amazonaws.com (the projected eks-pod-identity-token). Check that the EKS Pod Identity Agent runs on Karpenter's node and that the pod's token volume was not replaced.".into());
            r.commands.push(
                Command::new("kubectl")
                    .lit("-n kube-system get daemonset eks-pod-identity-agent")
                    .into(),
            );
            r.commands.push(env.into());
        }
        TokenFault::NoAssociation => {
            r.summary =
                "Create the EKS Pod Identity association for Karpenter's ServiceAccount".into();
            r.steps.push("EKS Auth found no Pod Identity association for the cluster, namespace and ServiceAccount of Karpenter's pod. List the associations; create one for Karpenter's namespace and ServiceAccount with the controller role (or, where Karpenter uses IRSA, remove Pod Identity's environment from its pod).".into());
            r.commands
                .push(list_associations(CLUSTER.into(), namespace).into());
            r.commands.push(
                Command::new("aws")
                    .lit("eks create-pod-identity-association")
                    .opt("--cluster-name", CLUSTER)
                    .opt("--namespace", namespace)
                    .opt("--service-account", service_account)
                    .opt("--role-arn", role.map_or(ROLE_ARN.into(), Piece::Value))
                    .into(),
            );
        }
    }
    r.steps
        .push("Restart Karpenter so that it asks for credentials again.".into());
    r.commands
        .push(restart(namespace, "deployment/karpenter").into());
}
