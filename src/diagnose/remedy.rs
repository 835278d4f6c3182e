//! Remediation text: deterministic steps, the corrected statement, and ready-to-run AWS CLI
//! commands with the real ARNs, rendered from a finding's fix.

use super::finding::{Finding, Fix};
use super::model::{ReasonCode, Remediation};
use super::remedy_layers as layers;
use super::shell::{Command, Piece, Placeholder};
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
    if let Some(warning) = super::documented::beyond(&f.fix) {
        r.steps.insert(0, warning);
    }
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
            edit_policy(r, role, policy, jq_replace(statement, f, patched));
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
            edit_policy(r, role, policy, jq_delete(statement, f));
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
            let sid = statement["Sid"]
                .as_str()
                .unwrap_or("fix")
                .to_ascii_lowercase();
            r.commands.push(put_inline(
                role,
                &[Piece::Lit("karpenter-doctor-"), Piece::Value(&sid)],
                statement,
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
            r.commands.push(
                get_role(role_name(role).into())
                    .lit("--query Role.PermissionsBoundary.PermissionsBoundaryArn --output text")
                    .into(),
            );
            r.commands.push(
                default_version(BOUNDARY_ARN.into())
                    .lit("--query 'PolicyVersion.Document.Statement[?Effect==`Deny`]'")
                    .into(),
            );
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
            r.commands.push(
                get_role(role_name(role).into())
                    .lit("--query Role.PermissionsBoundary")
                    .into(),
            );
            match boundary {
                Some(b) => {
                    r.steps
                        .push(format!("Add policyPatch to the boundary policy {b}."));
                    edit_policy(
                        r,
                        role,
                        b,
                        jq_patch(&statement).arg(".Statement += [$patch]"),
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
        Fix::Token {
            fault,
            role,
            account,
            issuer,
            audience,
        } => layers::token(
            r,
            *fault,
            role.as_deref(),
            account.as_ref(),
            issuer.as_deref(),
            audience.as_deref(),
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
            let cluster = cluster.as_deref().map_or(CLUSTER.into(), Piece::Value);
            r.summary =
                "Make Karpenter run as its controller role (IRSA or EKS Pod Identity)".into();
            r.steps.push(format!(
                "The calls are made as {caller}: the pod falls back to the node's instance profile."
            ));
            r.steps.push(format!("Give the {ns}/{sa} ServiceAccount its role, either by IRSA (the eks.amazonaws.com/role-arn annotation) or by an EKS Pod Identity association, then restart the Karpenter deployment so new pods get the credentials."));
            r.commands
                .push(role_annotation(ns.into(), sa.into()).into());
            if let Some(c) = controller {
                r.commands.push(
                    Command::new("kubectl")
                        .opt("-n", ns)
                        .lit("annotate serviceaccount")
                        .arg(sa)
                        .word(&[Piece::Lit("eks.amazonaws.com/role-arn="), Piece::Value(c)])
                        .lit("--overwrite")
                        .into(),
                );
            }
            r.commands
                .push(list_associations(cluster, ns.into()).into());
            if let Some(c) = controller {
                r.commands.push(
                    Command::new("aws")
                        .lit("eks create-pod-identity-association")
                        .opt("--cluster-name", cluster)
                        .opt("--namespace", ns)
                        .opt("--service-account", sa)
                        .opt("--role-arn", c.as_str())
                        .into(),
                );
            }
            r.commands
                .push(restart(ns.into(), "deployment karpenter").into());
        }
        Fix::KeyState { key, state } => key_state(r, key, state),
        Fix::KeyStateRestored { key, was } => {
            r.summary = format!("Nothing to change: KMS key {key} is Enabled again");
            r.steps.push(format!(
                "KMS refused the key while it was {was}. Find who changed its state, and when, in CloudTrail (DisableKey, ScheduleKeyDeletion, EnableKey, CancelKeyDeletion, DeleteImportedKeyMaterial)."
            ));
            r.commands.push(
                Command::new("aws")
                    .lit("cloudtrail lookup-events")
                    .opt_some("--region", region_of(key))
                    .lit("--lookup-attributes")
                    .word(&[
                        Piece::Lit("AttributeKey=ResourceName,AttributeValue="),
                        Piece::Shorthand(key),
                    ])
                    .lit("--query 'Events[].[EventTime,EventName,Username]' --output text")
                    .into(),
            );
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
            r.commands.push(put_inline(
                role,
                &[Piece::Lit("karpenter-doctor-kms")],
                &statement,
            ));
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
            r.summary = if super::premise::confidence(&f.premises)
                == super::model::Confidence::Confirmed
            {
                "Change the statement the evidence names; the facts at hand do not hold its text"
            } else {
                "Confirm the cause by hand; the facts at hand do not prove it"
            }
            .into();
            r.steps.push("Decode any 'Encoded authorization failure message' with sts decode-authorization-message: it names the deciding statements.".into());
            r.commands.push(
                Command::new("aws")
                    .lit("sts decode-authorization-message")
                    .opt("--encoded-message", ENCODED_MESSAGE)
                    .lit("--query DecodedMessage --output text")
                    .into(),
            );
            if let (Some(role), Some(action)) = (role, action) {
                r.steps.push(format!(
                    "Simulate {action} for {role}, and read its policies."
                ));
                r.commands.push(
                    simulate(role, action)
                        .opt_some("--resource-arns", resource.as_deref())
                        .into(),
                );
                for list in ["iam list-attached-role-policies", "iam list-role-policies"] {
                    r.commands.push(
                        Command::new("aws")
                            .lit(list)
                            .opt("--role-name", role_name(role))
                            .into(),
                    );
                }
            } else if let Some(key) = resource {
                r.commands.push(kms("kms describe-key", key).into());
                r.commands.push(kms("kms list-grants", key).into());
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
    r.commands.push(
        Command::new("helm")
            .lit("upgrade karpenter oci://public.ecr.aws/karpenter/karpenter")
            .opt("--namespace", namespace.unwrap_or("kube-system"))
            .lit("--reuse-values --set settings.disableDryRun=true")
            .into(),
    );
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
    r.steps.push(format!(
        "Run these with credentials of the key's account ({}).",
        Arn::parse(key).map_or("", |a| a.account)
    ));
    match state {
        "Disabled" => {
            r.summary = format!("Enable KMS key {key}");
            r.commands.push(kms("kms enable-key", key).into());
        }
        "PendingDeletion" | "PendingReplicaDeletion" => {
            r.summary = format!("Cancel the scheduled deletion of KMS key {key}, then enable it");
            r.steps.push(
                "Cancelling a deletion leaves the key Disabled: enable it afterwards.".into(),
            );
            r.commands.push(kms("kms cancel-key-deletion", key).into());
            r.commands.push(kms("kms enable-key", key).into());
        }
        "PendingImport" => {
            r.summary = format!("Import key material into KMS key {key}");
            r.commands.push(
                kms("kms get-parameters-for-import", key)
                    .lit("--wrapping-algorithm RSAES_OAEP_SHA_256 --wrapping-key-spec RSA_2048")
                    .into(),
            );
            r.commands.push(
                kms("kms import-key-material", key)
                    .lit("--encrypted-key-material fileb://EncryptedKeyMaterial.bin --import-token fileb://ImportToken.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE")
                    .into(),
            );
        }
        _ => {
            r.summary = format!("Reconnect the custom key store of KMS key {key}");
            r.steps.push("A store whose ConnectionState is FAILED must be disconnected before it can connect again; connecting takes several minutes (watch ConnectionState until CONNECTED).".into());
            let region = region_of(key);
            r.commands.push(
                Command::new("aws")
                    .lit("kms describe-custom-key-stores")
                    .opt_some("--region", region)
                    .lit("--query 'CustomKeyStores[].[CustomKeyStoreId,ConnectionState,ConnectionErrorCode]'")
                    .into(),
            );
            for step in [
                "kms disconnect-custom-key-store",
                "kms connect-custom-key-store",
            ] {
                r.commands.push(
                    Command::new("aws")
                        .lit(step)
                        .opt_some("--region", region)
                        .opt("--custom-key-store-id", KEY_STORE_ID)
                        .into(),
                );
            }
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
    r.commands.push(
        kms("kms create-grant", key)
            .opt("--grantee-principal", grantee)
            .lit("--operations Encrypt Decrypt ReEncryptFrom ReEncryptTo GenerateDataKey GenerateDataKeyWithoutPlaintext DescribeKey CreateGrant")
            .into(),
    );
    if key_account != grantee_account && !service_role {
        r.steps.push(format!("Cross-account: {grantee}'s own IAM policies must also allow the KMS actions on the key."));
        let identity = json!({"Sid": "AllowUseOfTheEbsKey", "Effect": "Allow",
            "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"], "Resource": key});
        r.commands.push(put_inline(
            grantee,
            &[Piece::Lit("karpenter-doctor-kms")],
            &identity,
        ));
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
            simulate(role, "iam:PassRole")
                .opt("--resource-arns", resource)
                .lit("--context-entries")
                .word(&[
                    Piece::Lit("ContextKeyName=iam:PassedToService,ContextKeyValues="),
                    Piece::Shorthand(svc),
                    Piece::Lit(",ContextKeyType=string"),
                ])
                .lit("--query 'EvaluationResults[].EvalDecision'")
                .into()
        })
        .collect()
}

/// Fetch, edit with `jq` (its options and program; the file names are added), and write back a
/// managed or inline policy of `role`: the commands, and the steps that keep them from failing
/// (AWS managed policies, version limit).
fn edit_policy(r: &mut Remediation, role: &str, policy: &str, jq: Command) {
    let (get, put) = if let Some(arn) = Arn::parse(policy) {
        let get = default_version(policy.into())
            .lit("--query PolicyVersion.Document --output json > policy.json");
        if arn.account == "aws" {
            r.steps.push(format!("{policy} is an AWS managed policy and cannot be edited: create a customer managed policy with the corrected document, attach it to {role}, and detach {policy}."));
            (get, None)
        } else {
            r.steps.push("A managed policy keeps at most 5 versions: if create-policy-version fails with LimitExceeded, delete the oldest non-default version first (aws iam list-policy-versions, aws iam delete-policy-version).".into());
            let put = Command::new("aws")
                .lit("iam create-policy-version")
                .opt("--policy-arn", policy)
                .lit("--policy-document file://policy-fixed.json --set-as-default");
            (get, Some(put))
        }
    } else if let Some(name) = policy.strip_prefix("inline:") {
        let inline = |verb: &'static str| {
            Command::new("aws")
                .lit(verb)
                .opt("--role-name", role_name(role))
                .opt("--policy-name", name)
        };
        (
            inline("iam get-role-policy").lit("--query PolicyDocument --output json > policy.json"),
            Some(inline("iam put-role-policy").lit("--policy-document file://policy-fixed.json")),
        )
    } else {
        return;
    };
    r.commands.push(get.into());
    r.commands
        .push(jq.lit("policy.json > policy-fixed.json").into());
    r.commands.extend(put.map(String::from));
}

/// `jq --argjson patch <the patched statement>`: the start of a jq command that edits with it.
fn jq_patch(patched: &Value) -> Command {
    Command::new("jq").opt("--argjson patch", compact(patched).as_str())
}

/// `value` as a jq string literal: a JSON string (jq reads JSON's escapes, and a JSON string
/// never holds the `\(` of jq's interpolation, since its backslashes are escaped).
fn jq_string(value: &str) -> String {
    compact(&Value::String(value.to_string()))
}

/// The jq command replacing the statement (by Sid, else by position) with `$patch`.
fn jq_replace(
    statement: &Map<String, Value>,
    f: &Finding,
    patched: &Map<String, Value>,
) -> Command {
    let jq = jq_patch(&Value::Object(patched.clone()));
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) => jq.arg(
            format!(
                ".Statement |= map(if .Sid == {} then $patch else . end)",
                jq_string(sid)
            )
            .as_str(),
        ),
        None => jq.arg(format!(".Statement[{}] = $patch", statement_index(f)).as_str()),
    }
}

/// The jq command deleting the statement (by Sid, else by position).
fn jq_delete(statement: &Map<String, Value>, f: &Finding) -> Command {
    let program = match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) => format!(".Statement |= map(select(.Sid != {}))", jq_string(sid)),
        None => format!("del(.Statement[{}])", statement_index(f)),
    };
    Command::new("jq").arg(program.as_str())
}

/// `aws iam put-role-policy` of `statement` as an inline policy of `role`, named by `name`.
fn put_inline(role: &str, name: &[Piece<'_>], statement: &Value) -> String {
    Command::new("aws")
        .lit("iam put-role-policy")
        .opt("--role-name", role_name(role))
        .lit("--policy-name")
        .word(name)
        .opt(
            "--policy-document",
            compact(&json!({"Version": "2012-10-17", "Statement": [statement]})).as_str(),
        )
        .into()
}

/// The position of the statement at fault (0 when unknown).
fn statement_index(f: &Finding) -> usize {
    f.statement.as_ref().and_then(|s| s.index).unwrap_or(0)
}

fn statement_label(statement: &Map<String, Value>, f: &Finding) -> String {
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) => format!("statement \"{sid}\""),
        None => format!("statement #{}", statement_index(f)),
    }
}

pub(super) fn role_name(role: &str) -> &str {
    role_name_of(role).unwrap_or(role)
}

/// The region of an ARN, when it names one.
pub(super) fn region_of(arn: &str) -> Option<&str> {
    Arn::parse(arn)
        .map(|a| a.region)
        .filter(|region| !region.is_empty())
}

pub(super) fn compact(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON values serialize")
}

// What the commands need that the doctor cannot know: set before pasting.
pub(super) const CLUSTER: Placeholder = Placeholder::new("CLUSTER", "the EKS cluster name");
pub(super) const NAMESPACE: Placeholder =
    Placeholder::new("NAMESPACE", "the namespace of Karpenter");
pub(super) const SERVICE_ACCOUNT: Placeholder =
    Placeholder::new("SERVICE_ACCOUNT", "the ServiceAccount of Karpenter");
pub(super) const ROLE_NAME: Placeholder =
    Placeholder::new("ROLE_NAME", "the name of the Karpenter controller role");
const BOUNDARY_ARN: Placeholder =
    Placeholder::new("BOUNDARY_ARN", "the boundary ARN from the command above");
const ENCODED_MESSAGE: Placeholder = Placeholder::new(
    "ENCODED_MESSAGE",
    "the encoded authorization failure message",
);
const KEY_STORE_ID: Placeholder = Placeholder::new(
    "KEY_STORE_ID",
    "the custom key store id from the command above",
);

/// `aws <service command> [--region <the key's>] --key-id <key>`.
pub(super) fn kms(command: &'static str, key: &str) -> Command {
    Command::new("aws")
        .lit(command)
        .opt_some("--region", region_of(key))
        .opt("--key-id", key)
}

/// `aws iam get-role --role-name <name>`.
pub(super) fn get_role(name: Piece<'_>) -> Command {
    Command::new("aws")
        .lit("iam get-role")
        .opt("--role-name", name)
}

/// `aws iam simulate-principal-policy` of `action` for `role`.
fn simulate(role: &str, action: &str) -> Command {
    Command::new("aws")
        .lit("iam simulate-principal-policy")
        .opt("--policy-source-arn", role)
        .opt("--action-names", action)
}

/// `aws iam get-policy-version` of the default version of `policy`.
fn default_version(policy: Piece<'_>) -> Command {
    let default = Command::new("aws")
        .lit("iam get-policy")
        .opt("--policy-arn", policy)
        .lit("--query Policy.DefaultVersionId --output text");
    Command::new("aws")
        .lit("iam get-policy-version")
        .opt("--policy-arn", policy)
        .lit("--version-id")
        .output(&default)
}

/// The IRSA role annotation of a ServiceAccount.
pub(super) fn role_annotation(namespace: Piece<'_>, account: Piece<'_>) -> Command {
    Command::new("kubectl")
        .opt("-n", namespace)
        .lit("get serviceaccount")
        .arg(account)
        .lit("-o jsonpath='{.metadata.annotations.eks\\.amazonaws\\.com/role-arn}'")
}

/// The EKS Pod Identity associations of a namespace.
pub(super) fn list_associations(cluster: Piece<'_>, namespace: Piece<'_>) -> Command {
    Command::new("aws")
        .lit("eks list-pod-identity-associations")
        .opt("--cluster-name", cluster)
        .opt("--namespace", namespace)
}

/// `kubectl -n <namespace> rollout restart <target>`.
pub(super) fn restart(namespace: Piece<'_>, target: &'static str) -> Command {
    Command::new("kubectl")
        .opt("-n", namespace)
        .lit("rollout restart")
        .lit(target)
}
