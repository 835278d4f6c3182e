//! Remediation text: deterministic steps, the corrected statement, and ready-to-run AWS CLI
//! commands with the real ARNs, rendered from a finding's fix.

use super::finding::{Finding, Fix};
use super::model::{ReasonCode, Remediation};
use super::remedy_layers as layers;
use crate::partition::Partition;
use crate::policy::arn::{Arn, role_name_of};
use serde_json::{Map, Value, json};

/// The runbook of a reason code, relative to the repository root.
pub fn runbook(reason: ReasonCode) -> String {
    format!("docs/runbooks/{}.md", reason.as_str())
}

pub fn remediation(f: &Finding, partition: &Partition) -> Remediation {
    let mut r = Remediation {
        summary: String::new(),
        steps: Vec::new(),
        policy_patch: None,
        commands: Vec::new(),
        runbook: runbook(f.reason),
    };
    render(&mut r, f, &f.fix, partition);
    if matches!(f.reason, ReasonCode::PassedToServiceMismatch) && partition.id == "aws-cn" {
        r.steps.push(terraform_hint(&f.fix));
    }
    r.steps.push(format!(
        "Karpenter retries the launch by itself; watch `kubectl get nodeclaims` and see {}.",
        r.runbook
    ));
    r
}

/// The remediation of one fix, into `r`; for several layers, each in turn (the first one's
/// summary and policyPatch lead).
fn render(r: &mut Remediation, f: &Finding, fix: &Fix, partition: &Partition) {
    match fix {
        Fix::PatchStatement {
            role,
            policy,
            statement,
            patched,
        } => {
            let label = statement_label(statement, f);
            r.summary = format!("Correct {label} of {policy} as in policyPatch");
            r.steps.push(format!(
                "{label} of {policy} (attached to {role}) now reads: {}",
                compact(&Value::Object(statement.clone()))
            ));
            r.steps.push(
                "Replace it with policyPatch, keeping the rest of the policy as it is.".into(),
            );
            r.policy_patch = Some(pretty(&Value::Object(patched.clone())));
            edit_policy(r, role, policy, &jq_replace(statement, f, patched));
        }
        Fix::RemoveDeny {
            role,
            policy,
            statement,
        } => {
            let label = statement_label(statement, f);
            r.summary = format!("Remove or narrow the Deny {label} of {policy}");
            let attached = if f.reason == ReasonCode::PermissionsBoundaryDeny {
                "the permissions boundary of"
            } else {
                "attached to"
            };
            r.steps.push(format!(
                "{label} of {policy} ({attached} {role}) denies the request: {}",
                compact(&Value::Object(statement.clone()))
            ));
            r.steps.push("Remove it, or narrow its Action, Resource or Condition so that it no longer matches Karpenter's calls.".into());
            edit_policy(r, role, policy, &jq_delete(statement, f));
        }
        Fix::AddStatement { role, statement } => {
            r.summary = format!("Allow the call in an identity policy of {role}");
            if f.reason == ReasonCode::PassedToServiceMismatch {
                r.steps.push(format!(
                    "Find the iam:PassRole statement among {role}'s policies and make its iam:PassedToService condition list {}.",
                    statement["Condition"]["StringEquals"]["iam:PassedToService"]
                ));
                r.commands.extend(simulate_pass_role(role, statement));
            } else {
                r.steps.push(format!("Add policyPatch to {role}'s policies (or the Karpenter controller policy your IaC manages)."));
            }
            r.policy_patch = Some(pretty(statement));
            r.commands.push(format!(
                "aws iam put-role-policy --role-name {} --policy-name karpenter-doctor-{} --policy-document {}",
                role_name(role),
                statement["Sid"].as_str().unwrap_or("fix").to_ascii_lowercase(),
                shell_quote(&compact(&json!({"Version": "2012-10-17", "Statement": [statement]})))
            ));
        }
        Fix::Boundary {
            role,
            action,
            resource,
            explicit_deny: true,
            ..
        } => {
            r.summary = format!(
                "Narrow the Deny in the permissions boundary of {role} that matches {action}"
            );
            r.steps.push(format!("AWS named an explicit deny in the permissions boundary: no Allow can override it. In the boundary policy the first command names, find the Deny statement whose Action and Resource match {action} on {resource}, and remove it or narrow it so that Karpenter's call no longer matches."));
            r.commands.push(format!(
                "aws iam get-role --role-name {} --query Role.PermissionsBoundary.PermissionsBoundaryArn --output text",
                role_name(role)
            ));
            r.commands.push("aws iam get-policy-version --policy-arn <boundary ARN from the command above> --version-id \"$(aws iam get-policy --policy-arn <boundary ARN> --query Policy.DefaultVersionId --output text)\" --query 'PolicyVersion.Document.Statement[?Effect==`Deny`]'".into());
        }
        Fix::Boundary {
            role,
            boundary,
            action,
            resource,
            ..
        } => {
            r.summary = format!("Let the permissions boundary of {role} allow {action}");
            let statement = json!({"Sid": "KarpenterDoctorBoundary", "Effect": "Allow", "Action": action, "Resource": resource});
            r.policy_patch = Some(pretty(&statement));
            r.commands.push(format!(
                "aws iam get-role --role-name {} --query Role.PermissionsBoundary",
                role_name(role)
            ));
            match boundary {
                Some(b) => {
                    r.steps
                        .push(format!("Add policyPatch to the boundary policy {b}."));
                    edit_policy(
                        r,
                        role,
                        b,
                        &format!("{} '.Statement += [$patch]'", jq_patch_arg(&statement)),
                    );
                }
                None => r
                    .steps
                    .push("Add policyPatch to the boundary policy the command above names.".into()),
            }
        }
        Fix::Organization {
            kind,
            account,
            action,
            policy,
        } => {
            // The statement at fault, where the policy's document was read.
            let statement = f.statement.as_ref().filter(|s| {
                Some(&s.policy) == policy.as_ref() && (s.sid.is_some() || s.index.is_some())
            });
            layers::organization(r, *kind, account, action, policy.as_deref(), statement)
        }
        Fix::VpcEndpoint {
            action,
            region,
            endpoint,
        } => layers::vpc_endpoint(r, action, region.as_deref(), endpoint.as_deref()),
        Fix::SessionPolicy { role, action } => layers::session(r, role, action),
        Fix::ResourcePolicy {
            action,
            resource,
            principal,
            explicit_deny,
        } => layers::resource_policy(r, action, resource.as_deref(), principal, *explicit_deny),
        Fix::Credentials(fix) => layers::credentials(r, fix, partition),
        Fix::StsRegion {
            account,
            role,
            namespace,
        } => layers::sts_region(
            r,
            account.as_deref(),
            role.as_deref(),
            namespace.as_deref(),
            partition,
        ),
        Fix::Principal {
            caller,
            controller,
            account,
            cluster,
        } => {
            let (ns, sa) = account
                .as_ref()
                .map_or(("kube-system", "karpenter"), |(n, s)| {
                    (n.as_str(), s.as_str())
                });
            let cluster = cluster.as_deref().unwrap_or("<cluster>");
            r.summary =
                "Make Karpenter run as its controller role (IRSA or EKS Pod Identity)".into();
            r.steps.push(format!(
                "The calls are made as {caller}: the pod falls back to the node's instance profile."
            ));
            r.steps.push(format!("Give the {ns}/{sa} ServiceAccount its role, either by IRSA (the eks.amazonaws.com/role-arn annotation) or by an EKS Pod Identity association, then restart the Karpenter deployment so new pods get the credentials."));
            r.commands.push(format!("kubectl -n {ns} get serviceaccount {sa} -o jsonpath='{{.metadata.annotations.eks\\.amazonaws\\.com/role-arn}}'"));
            if let Some(c) = controller {
                r.commands.push(format!(
                    "kubectl -n {ns} annotate serviceaccount {sa} eks.amazonaws.com/role-arn={c} --overwrite"
                ));
            }
            r.commands.push(format!(
                "aws eks list-pod-identity-associations --cluster-name {cluster} --namespace {ns}"
            ));
            if let Some(c) = controller {
                r.commands.push(format!("aws eks create-pod-identity-association --cluster-name {cluster} --namespace {ns} --service-account {sa} --role-arn {c}"));
            }
            r.commands.push(format!(
                "kubectl -n {ns} rollout restart deployment karpenter"
            ));
        }
        Fix::KeyState { key, state } => key_state(r, key, state),
        Fix::KeyStateRestored { key, was } => {
            r.summary = format!("Nothing to change: KMS key {key} is Enabled again");
            r.steps.push(format!(
                "KMS refused the key while it was {was}. Find who changed its state, and when, in CloudTrail (DisableKey, ScheduleKeyDeletion, EnableKey, CancelKeyDeletion, DeleteImportedKeyMaterial)."
            ));
            r.commands.push(format!(
                "aws cloudtrail lookup-events{} --lookup-attributes AttributeKey=ResourceName,AttributeValue={key} --query 'Events[].[EventTime,EventName,Username]' --output text",
                region_flag(key)
            ));
        }
        Fix::KeyAccess {
            key,
            grantee,
            region,
            missing,
        } => key_access(r, key, grantee, region.as_deref(), missing, partition),
        Fix::KmsIdentity { role, key, missing } => {
            r.summary = format!(
                "Allow {} on {key} in {role}'s IAM policies",
                missing.join(", ")
            );
            let statement = json!({"Sid": "AllowUseOfTheEbsKey", "Effect": "Allow", "Action": missing, "Resource": key});
            r.steps.push("EBS uses the key on the launching principal's behalf: its IAM policies must allow the KMS actions too.".into());
            r.policy_patch = Some(pretty(&statement));
            r.commands
                .push(put_inline(role, "karpenter-doctor-kms", &statement));
        }
        Fix::Layers(fixes) => {
            for (i, each) in fixes.iter().enumerate() {
                let (summary, patch) = (r.summary.clone(), r.policy_patch.clone());
                if i > 0 {
                    r.steps.push(format!(
                        "Then change {} of {} (another layer or principal that refuses):",
                        i + 1,
                        fixes.len()
                    ));
                }
                render(r, f, each, partition);
                if i > 0 {
                    r.summary = summary;
                    r.policy_patch = patch.or(r.policy_patch.take());
                }
            }
        }
        Fix::DryRun {
            cause,
            launch_allowed,
            node_class,
            namespace,
        } => dry_run(
            r,
            f,
            cause,
            *launch_allowed,
            node_class.as_deref(),
            namespace.as_deref(),
            partition,
        ),
        Fix::Investigate {
            role,
            action,
            resource,
        } => {
            r.summary = if f.confidence == super::model::Confidence::Confirmed {
                "Change the statement the evidence names; the facts at hand do not hold its text"
            } else {
                "Confirm the cause by hand; the facts at hand do not prove it"
            }
            .into();
            r.steps.push("Decode any 'Encoded authorization failure message' with sts decode-authorization-message: it names the deciding statements.".into());
            r.commands.push("aws sts decode-authorization-message --encoded-message <the encoded message> --query DecodedMessage --output text".into());
            if let (Some(role), Some(action)) = (role, action) {
                r.steps.push(format!(
                    "Simulate {action} for {role}, and read its policies."
                ));
                r.commands.push(format!(
                    "aws iam simulate-principal-policy --policy-source-arn {role} --action-names {action}{}",
                    resource.as_deref().map(|res| format!(" --resource-arns {}", shell_arg(res))).unwrap_or_default()
                ));
                r.commands.push(format!(
                    "aws iam list-attached-role-policies --role-name {}",
                    role_name(role)
                ));
                r.commands.push(format!(
                    "aws iam list-role-policies --role-name {}",
                    role_name(role)
                ));
            } else if let Some(key) = resource {
                let region = region_flag(key);
                r.commands
                    .push(format!("aws kms describe-key{region} --key-id {key}"));
                r.commands
                    .push(format!("aws kms list-grants{region} --key-id {key}"));
            }
        }
    }
}

/// Karpenter's documented way out of a refused validation dry run (the chart's
/// `settings.disableDryRun`, karpenter-provider-aws #8350), then the refusing layer's own fix.
fn dry_run(
    r: &mut Remediation,
    f: &Finding,
    cause: &Fix,
    launch_allowed: bool,
    node_class: Option<&str>,
    namespace: Option<&str>,
    partition: &Partition,
) {
    let class = node_class
        .map(|n| format!("EC2NodeClass {n}"))
        .unwrap_or_else(|| "the EC2NodeClass".into());
    if launch_allowed {
        r.summary = "Only EC2NodeClass validation's dry run is refused: turn the dry run off, or let it through too".into();
        r.steps.push(format!(
            "The launch itself is allowed, but ValidationSucceeded=False keeps {class} not Ready: Karpenter launches nothing with it until validation passes."
        ));
    } else {
        r.summary = "Tell whether only EC2NodeClass validation's dry run is refused: if so, turn the dry run off; else change the layer that refuses it".into();
        r.steps.push("Read the policy that refuses it: one that denies ec2:RunInstances unless an AWS service calls it (aws:ViaAWSService), or without ec2:MetadataHttpTokens=required, refuses validation's direct dry run but not the launch, which EC2 Fleet makes from the launch template (karpenter-provider-aws #8190, #9018).".into());
    }
    r.steps.push(format!(
        "To turn validation's dry run off, set the Helm value settings.disableDryRun=true (Karpenter 1.6 and later): ValidationSucceeded then stays True.{}",
        if namespace.is_none() {
            " The command assumes Karpenter's release `karpenter` in kube-system."
        } else {
            " The command assumes Karpenter's Helm release is named `karpenter`."
        }
    ));
    r.commands.push(format!(
        "helm upgrade karpenter oci://public.ecr.aws/karpenter/karpenter --namespace {} --reuse-values --set settings.disableDryRun=true",
        namespace.unwrap_or("kube-system")
    ));
    let summary = r.summary.clone();
    r.steps.push(if launch_allowed {
        "Or let the dry run through as well:".into()
    } else {
        "Otherwise the launch is refused too; change the layer that refuses it:".into()
    });
    render(r, f, cause, partition);
    r.summary = summary;
}

fn key_state(r: &mut Remediation, key: &str, state: &str) {
    let region = region_flag(key);
    r.steps.push(format!(
        "Run these with credentials of the key's account ({}).",
        Arn::parse(key).map_or("", |a| a.account)
    ));
    match state {
        "Disabled" => {
            r.summary = format!("Enable KMS key {key}");
            r.commands
                .push(format!("aws kms enable-key{region} --key-id {key}"));
        }
        "PendingDeletion" | "PendingReplicaDeletion" => {
            r.summary = format!("Cancel the scheduled deletion of KMS key {key}, then enable it");
            r.steps.push(
                "Cancelling a deletion leaves the key Disabled: enable it afterwards.".into(),
            );
            r.commands.push(format!(
                "aws kms cancel-key-deletion{region} --key-id {key}"
            ));
            r.commands
                .push(format!("aws kms enable-key{region} --key-id {key}"));
        }
        "PendingImport" => {
            r.summary = format!("Import key material into KMS key {key}");
            r.commands.push(format!("aws kms get-parameters-for-import{region} --key-id {key} --wrapping-algorithm RSAES_OAEP_SHA_256 --wrapping-key-spec RSA_2048"));
            r.commands.push(format!("aws kms import-key-material{region} --key-id {key} --encrypted-key-material fileb://EncryptedKeyMaterial.bin --import-token fileb://ImportToken.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE"));
        }
        _ => {
            r.summary = format!("Reconnect the custom key store of KMS key {key}");
            r.steps.push("A store whose ConnectionState is FAILED must be disconnected before it can connect again; connecting takes several minutes (watch ConnectionState until CONNECTED).".into());
            r.commands.push(format!("aws kms describe-custom-key-stores{region} --query 'CustomKeyStores[].[CustomKeyStoreId,ConnectionState,ConnectionErrorCode]'"));
            r.commands.push(format!("aws kms disconnect-custom-key-store{region} --custom-key-store-id <id from the command above>"));
            r.commands.push(format!("aws kms connect-custom-key-store{region} --custom-key-store-id <id from the command above>"));
        }
    }
}

fn key_access(
    r: &mut Remediation,
    key: &str,
    grantee: &str,
    region: Option<&str>,
    missing: &[String],
    partition: &Partition,
) {
    let key_account = Arn::parse(key).map_or(String::new(), |a| a.account.to_string());
    let grantee_account = Arn::parse(grantee).map_or(String::new(), |a| a.account.to_string());
    let service_role = grantee.contains(":role/aws-service-role/");
    r.summary = format!("Let {grantee} use KMS key {key}: create a grant in the key's account");
    if service_role {
        // AWS's Spot and EC2 Fleet guides: the key policy lets the launching account use the
        // key, and a grant for the service-linked role is created from that account.
        r.steps.push(format!(
            "{grantee} is a service-linked role (its policies cannot be changed): AWS documents that it must be able to use a customer managed key for Spot Instances. Let account {grantee_account} use the key in the key policy{}, then create the grant below from account {grantee_account}.",
            if key_account == grantee_account { " (it is the key's own account)" } else { "" }
        ));
    } else {
        r.steps.push(format!(
            "In account {key_account} (the key's owner), create a grant for {grantee}, the principal that launches the instances (Karpenter's controller role: it calls CreateFleet itself)."
        ));
    }
    r.steps.push(format!(
        "The grant must cover {}; the command below grants what EBS needs.",
        missing.join(", ")
    ));
    r.steps
        .push("Or add policyPatch to the key policy, so that new grants are not needed.".into());
    let via = region.map(|reg| format!("ec2.{reg}.{}", partition.dns_suffix));
    let mut statement = json!({"Sid": "AllowKarpenterToUseTheKeyForEbs", "Effect": "Allow", "Principal": {"AWS": grantee},
        "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"], "Resource": "*"});
    if let Some(via) = &via {
        statement["Condition"] =
            json!({"StringEquals": {"kms:ViaService": via, "kms:CallerAccount": grantee_account}});
    }
    r.policy_patch = Some(pretty(&statement));
    r.commands.push(format!(
        "aws kms create-grant{} --key-id {key} --grantee-principal {grantee} --operations Encrypt Decrypt ReEncryptFrom ReEncryptTo GenerateDataKey GenerateDataKeyWithoutPlaintext DescribeKey CreateGrant",
        region_flag(key)
    ));
    if key_account != grantee_account && !service_role {
        r.steps.push(format!("Cross-account: {grantee}'s own IAM policies must also allow the KMS actions on the key."));
        let identity = json!({"Sid": "AllowUseOfTheEbsKey", "Effect": "Allow",
            "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"], "Resource": key});
        r.commands
            .push(put_inline(grantee, "karpenter-doctor-kms", &identity));
    }
}

/// Where terraform-aws-eks's karpenter module renders a PassRole condition that breaks China
/// (domain.md §1a), narrowed to the releases that render the statement in hand when it is known.
fn terraform_hint(fix: &Fix) -> String {
    const COM: &str = "before v20.26.1, or from v21.6.0 with an AWS provider whose aws_service_principal predates hashicorp/terraform-provider-aws PR #47141 (merged 2026-03-30): ec2.amazonaws.com only, so CreateFleet is denied";
    const CN: &str = "from v20.26.1 to v20.37.1: ec2.${dns_suffix} only, so the EC2NodeClass instance-profile step (AddRoleToInstanceProfile) is denied";
    let values = match fix {
        Fix::PatchStatement { statement, .. } => passed_to_service(&statement["Condition"]),
        _ => Vec::new(),
    };
    let when = match values.as_slice() {
        ["ec2.amazonaws.com"] => format!("renders this PassRole condition in aws-cn {COM}"),
        ["ec2.amazonaws.com.cn"] => format!("renders this PassRole condition in aws-cn {CN}"),
        _ => format!("renders a PassRole condition that breaks aws-cn {COM}; and {CN}"),
    };
    format!(
        "terraform-aws-eks users: the karpenter submodule {when}. Both values render with v20.37.2 or later on the v20 line, v21.0 to v21.5, or v21.6.0 and later with an AWS provider that carries #47141 (terraform init -upgrade, then check .terraform.lock.hcl); until then, add policyPatch's statement through the module's iam_policy_statements."
    )
}

/// The `iam:PassedToService` values a PassRole statement's `Condition` names under
/// `StringEquals` (one string or a list).
fn passed_to_service(condition: &Value) -> Vec<&str> {
    match &condition["StringEquals"]["iam:PassedToService"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `aws iam simulate-principal-policy` for each service principal of a PassRole statement.
fn simulate_pass_role(role: &str, statement: &Value) -> Vec<String> {
    let resource = statement["Resource"].as_str().unwrap_or("*");
    passed_to_service(&statement["Condition"])
        .into_iter()
        .map(|svc| {
            format!(
                "aws iam simulate-principal-policy --policy-source-arn {role} --action-names iam:PassRole --resource-arns {} --context-entries ContextKeyName=iam:PassedToService,ContextKeyValues={svc},ContextKeyType=string --query 'EvaluationResults[].EvalDecision'",
                shell_arg(resource)
            )
        })
        .collect()
}

/// Fetch, edit with `jq_program`, and write back a managed or inline policy of `role`: the
/// commands, and the steps that keep them from failing (AWS managed policies, version limit).
fn edit_policy(r: &mut Remediation, role: &str, policy: &str, jq_program: &str) {
    let (get, put) = if let Some(arn) = Arn::parse(policy) {
        let get = format!(
            "aws iam get-policy-version --policy-arn {policy} --version-id \"$(aws iam get-policy --policy-arn {policy} --query Policy.DefaultVersionId --output text)\" --query PolicyVersion.Document --output json > policy.json"
        );
        if arn.account == "aws" {
            r.steps.push(format!("{policy} is an AWS managed policy and cannot be edited: create a customer managed policy with the corrected document, attach it to {role}, and detach {policy}."));
            (get, None)
        } else {
            r.steps.push("A managed policy keeps at most 5 versions: if create-policy-version fails with LimitExceeded, delete the oldest non-default version first (aws iam list-policy-versions, aws iam delete-policy-version).".into());
            let put = format!(
                "aws iam create-policy-version --policy-arn {policy} --policy-document file://policy-fixed.json --set-as-default"
            );
            (get, Some(put))
        }
    } else if let Some(name) = policy.strip_prefix("inline:") {
        let role = role_name(role);
        (
            format!(
                "aws iam get-role-policy --role-name {role} --policy-name {name} --query PolicyDocument --output json > policy.json"
            ),
            Some(format!(
                "aws iam put-role-policy --role-name {role} --policy-name {name} --policy-document file://policy-fixed.json"
            )),
        )
    } else {
        return;
    };
    r.commands.push(get);
    r.commands
        .push(format!("jq {jq_program} policy.json > policy-fixed.json"));
    r.commands.extend(put);
}

fn jq_patch_arg(patched: &Value) -> String {
    format!("--argjson patch {}", shell_quote(&compact(patched)))
}

/// A jq program replacing the statement (by Sid, else by position) with `$patch`.
fn jq_replace(statement: &Map<String, Value>, f: &Finding, patched: &Map<String, Value>) -> String {
    let arg = jq_patch_arg(&Value::Object(patched.clone()));
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) => {
            format!("{arg} '.Statement |= map(if .Sid == \"{sid}\" then $patch else . end)'")
        }
        None => format!(
            "{arg} '.Statement[{}] = $patch'",
            f.statement.as_ref().and_then(|s| s.index).unwrap_or(0)
        ),
    }
}

fn jq_delete(statement: &Map<String, Value>, f: &Finding) -> String {
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) => format!("'.Statement |= map(select(.Sid != \"{sid}\"))'"),
        None => format!(
            "'del(.Statement[{}])'",
            f.statement.as_ref().and_then(|s| s.index).unwrap_or(0)
        ),
    }
}

fn put_inline(role: &str, name: &str, statement: &Value) -> String {
    format!(
        "aws iam put-role-policy --role-name {} --policy-name {name} --policy-document {}",
        role_name(role),
        shell_quote(&compact(
            &json!({"Version": "2012-10-17", "Statement": [statement]})
        ))
    )
}

fn statement_label(statement: &Map<String, Value>, f: &Finding) -> String {
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) => format!("statement \"{sid}\""),
        None => format!(
            "statement #{}",
            f.statement.as_ref().and_then(|s| s.index).unwrap_or(0)
        ),
    }
}

pub(super) fn role_name(role: &str) -> &str {
    role_name_of(role).unwrap_or(role)
}

pub(super) fn region_flag(arn: &str) -> String {
    Arn::parse(arn)
        .filter(|a| !a.region.is_empty())
        .map(|a| format!(" --region {}", a.region))
        .unwrap_or_default()
}

pub(super) fn compact(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON values serialize")
}

/// Single-quotes for a POSIX shell.
/// `text` as one shell word: as it is when it has no characters the shell treats specially.
pub(super) fn shell_arg(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || ":/._-=@,+".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        shell_quote(text)
    }
}

pub(super) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}
