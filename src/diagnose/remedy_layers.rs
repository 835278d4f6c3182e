//! Remediation for what lies outside the role's own policies: organization SCPs and RCPs, VPC
//! endpoint, session and resource policies, and Karpenter's credentials (IRSA, Pod Identity).

use super::finding::{CredentialsFix, CredentialsPath, OrgPolicy};
use super::model::Remediation;
use super::remedy::{pretty, region_flag, role_name, shell_arg};
use crate::partition::Partition;
use crate::policy::arn::{Arn, role_arn_of};
use serde_json::{Value, json};

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
            r.commands.push(format!(
                "aws organizations describe-policy --policy-id {id} --query Policy.Content --output text"
            ));
            r.commands.push(format!(
                "aws organizations list-targets-for-policy --policy-id {id}"
            ));
        }
        None => {
            r.steps.push(format!("In the organization's management account (or a delegated administrator), find the {name} attached to account {account} or to one of its parent OUs that denies {action}, and exempt Karpenter's controller role or the action."));
            r.commands.push(format!(
                "aws organizations list-policies-for-target --target-id {account} --filter {filter}"
            ));
            r.commands.push(format!(
                "aws organizations list-parents --child-id {account}"
            ));
            r.commands.push(format!("aws organizations list-policies-for-target --target-id <parent OU id from the command above> --filter {filter}"));
            r.commands.push(
                "aws organizations describe-policy --policy-id <policy id from the command above>"
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
    let region_arg = region
        .map(|reg| format!(" --region {reg}"))
        .unwrap_or_default();
    r.summary = format!("Let the VPC endpoint policy for {service} allow {action}");
    r.steps.push(format!("Karpenter reaches {service} through a VPC endpoint whose policy does not allow {action}. Allow it for Karpenter's controller role (or remove the Deny that matches) in the endpoint's policy; the policy applies to every caller that uses the endpoint."));
    let id = endpoint
        .and_then(|e| e.rsplit('/').next())
        .filter(|id| id.starts_with("vpce-"));
    match id {
        Some(id) => r.commands.push(format!(
            "aws ec2 describe-vpc-endpoints{region_arg} --vpc-endpoint-ids {id} --query 'VpcEndpoints[0].PolicyDocument' --output text"
        )),
        None => r.commands.push(format!(
            "aws ec2 describe-vpc-endpoints{region_arg} --filters Name=vpc-id,Values=<the cluster's VPC id> --query 'VpcEndpoints[].[VpcEndpointId,ServiceName,PolicyDocument]' --output text"
        )),
    }
    r.commands.push(format!(
        "aws ec2 modify-vpc-endpoint{region_arg} --vpc-endpoint-id {} --policy-document file://endpoint-policy.json",
        id.unwrap_or("<endpoint id from the command above>")
    ));
}

pub(super) fn session(r: &mut Remediation, role: &str, action: &str) {
    r.summary = format!("Widen (or drop) the session policy of Karpenter's session as {role}");
    r.steps.push(format!("The credentials Karpenter uses carry a session policy that does not allow {action}: it only narrows what {role}'s own policies allow. Whoever creates the session sets it — an EKS Pod Identity association's policy, or a tool that calls sts:AssumeRole with --policy: allow {action} there, or pass none."));
    r.commands.push("aws eks list-pod-identity-associations --cluster-name <cluster> --namespace <karpenter namespace>".into());
    r.commands.push("aws eks describe-pod-identity-association --cluster-name <cluster> --association-id <id from the command above> --query association.policy".into());
    r.commands
        .push("kubectl -n <karpenter namespace> rollout restart deployment/karpenter".into());
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
            r.commands.push(format!(
                "aws kms get-key-policy{} --key-id {key} --policy-name default --output text",
                region_flag(key)
            ));
            r.commands.push(format!("aws kms put-key-policy{} --key-id {key} --policy-name default --policy file://key-policy.json", region_flag(key)));
        }
        Some(("sqs", a)) => {
            let url = format!("https://sqs.{}.amazonaws.com/{}/{}", a.region, a.account, a.resource);
            r.commands.push(format!("aws sqs get-queue-attributes --queue-url {} --attribute-names Policy --query Attributes.Policy --output text", shell_arg(&url)));
        }
        _ => r.commands.push(format!(
            "karpenter-doctor simulate --policy <identity policy> --resource-policy <the resource's policy> --principal {principal} --action {action}{}",
            resource.map(|res| format!(" --resource {}", shell_arg(res))).unwrap_or_default()
        )),
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
        Some((ns, name)) => (ns.as_str(), name.as_str()),
        None => ("<karpenter namespace>", "<service account>"),
    };
    let role_label = role.unwrap_or("Karpenter's controller role");
    let role_arg = role.map_or("<controller role name>", role_name);
    let restart = format!("kubectl -n {namespace} rollout restart deployment/karpenter");
    match how {
        CredentialsPath::OidcProvider => {
            r.summary = format!(
                "Register the cluster's OIDC issuer{} as an IAM OIDC provider",
                issuer.map(|i| format!(" {i}")).unwrap_or_default()
            );
            r.steps.push("IRSA needs the cluster's OIDC issuer registered as an IAM OIDC identity provider in the controller role's account; STS found none for it.".into());
            r.commands.push(
                "aws eks describe-cluster --name <cluster> --query cluster.identity.oidc.issuer --output text"
                    .into(),
            );
            r.commands.push(format!(
                "aws iam create-open-id-connect-provider --url {} --client-id-list sts.amazonaws.com",
                issuer.unwrap_or("<issuer URL from the command above>")
            ));
            r.commands.push(
                "eksctl utils associate-iam-oidc-provider --cluster <cluster> --approve".into(),
            );
            r.steps.push("Check that the controller role's trust policy names this provider (a trust policy copied from another cluster names that cluster's issuer).".into());
        }
        CredentialsPath::WebIdentity => {
            r.summary = format!(
                "Let Karpenter's ServiceAccount assume {role_label}: correct its trust policy"
            );
            let host = issuer.map_or("<issuer>", |i| i.trim_start_matches("https://"));
            r.steps.push(format!("STS refused sts:AssumeRoleWithWebIdentity: the trust policy of {role_label} must name the cluster's OIDC provider as Federated principal, with {host}:sub = system:serviceaccount:{namespace}:{account} and {host}:aud = sts.amazonaws.com. Compare it with the cluster's issuer and Karpenter's ServiceAccount."));
            let statement = web_identity_statement(role, issuer, fix.account.as_ref(), partition);
            trust_patch(r, fix, &statement);
            r.commands.push(format!("kubectl -n {namespace} get serviceaccount {} -o jsonpath='{{.metadata.annotations.eks\\.amazonaws\\.com/role-arn}}'", if fix.account.is_some() { account } else { "karpenter" }));
            r.commands.push(
                "aws eks describe-cluster --name <cluster> --query cluster.identity.oidc.issuer --output text"
                    .into(),
            );
            r.commands.push(format!(
                "aws iam get-role --role-name {role_arg} --query Role.AssumeRolePolicyDocument"
            ));
            r.commands.push(format!("aws iam update-assume-role-policy --role-name {role_arg} --policy-document file://trust.json"));
        }
        CredentialsPath::PodIdentity => {
            r.summary = format!(
                "Let EKS Pod Identity assume {role_label}: trust pods.eks.amazonaws.com for sts:AssumeRole and sts:TagSession"
            );
            r.steps.push(format!("EKS Auth could not assume {role_label} for Karpenter's pod: its trust policy must allow the service principal pods.eks.amazonaws.com (in the China regions too) both sts:AssumeRole and sts:TagSession, and an association must exist for Karpenter's namespace and ServiceAccount."));
            let statement = json!({"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"]});
            trust_patch(r, fix, &statement);
            r.commands.push(format!(
                "aws iam get-role --role-name {role_arg} --query Role.AssumeRolePolicyDocument"
            ));
            r.commands.push(format!("aws iam update-assume-role-policy --role-name {role_arg} --policy-document file://trust.json"));
            r.commands.push(format!("aws eks list-pod-identity-associations --cluster-name <cluster> --namespace {namespace}"));
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
            r.commands.push(format!(
                "aws iam get-role --role-name {role_arg} --query Role.AssumeRolePolicyDocument"
            ));
            r.commands.push(format!("aws iam update-assume-role-policy --role-name {role_arg} --policy-document file://trust.json"));
        }
    }
    r.steps
        .push("Restart Karpenter so that its pods pick up the credentials at once.".into());
    r.commands.push(restart);
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
    r.commands.push(format!(
        "kubectl -n {namespace} set env deployment/karpenter --list"
    ));
    r.commands.push("aws sts get-caller-identity --region \"${REGION:?set REGION to the AWS_REGION of Karpenter}\"".into());
    r.commands.push(format!(
        "kubectl -n {namespace} rollout restart deployment karpenter"
    ));
}
