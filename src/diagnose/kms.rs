//! Root cause of an instance that died of `Client.InvalidKMSKey.InvalidState`: the key's state,
//! then whether the key policy or a grant, and the principal's IAM policies, let it use the key.

use super::finding::{Finding, Fix, evidence};
use super::model::{Evidence, ReasonCode};
use super::premise::{Premise, What};
use crate::facts::kms_snapshot::KeyFacts;
use crate::facts::{Facts, Lookup};
use crate::partition::Partition;
use crate::policy::arn::{Arn, role_name_of};
use crate::policy::{Context, Decision, Policy, PolicySet, Request};
use serde_json::json;

/// The KMS operations EC2 needs, on behalf of the launching principal, to use a customer
/// managed key for EBS (AWS EBS documentation; the seed's working grant).
pub const EBS_OPERATIONS: [&str; 6] = [
    "CreateGrant",
    "Decrypt",
    "DescribeKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
];

pub struct KmsCase<'a> {
    /// The key (ARN or id) from the EC2NodeClass, the AMI, or the message.
    pub key: Option<&'a str>,
    /// The principal that launched the instance: Karpenter's controller role (instant
    /// CreateFleet calls with the caller's credentials).
    pub principal: Option<&'a str>,
    pub region: Option<&'a str>,
    pub partition: &'static Partition,
    /// `spot`, `on-demand`, …: which principals must be able to use the key.
    pub capacity_type: Option<&'a str>,
    /// The instance's state reason code (`Client.InvalidKMSKey.InvalidState`,
    /// `Client.InternalError`).
    pub error_code: Option<&'a str>,
    /// The key's state as a KMS error named it when the failure happened (`Disabled`, …), and
    /// where that error was read (`file:line`).
    pub said_state: Option<(&'a str, String)>,
}

/// The reason code of a key state that stops EBS from using the key.
fn state_reason(state: &str) -> Option<ReasonCode> {
    match state {
        "Disabled" => Some(ReasonCode::KeyDisabled),
        "PendingDeletion" | "PendingReplicaDeletion" => Some(ReasonCode::KeyPendingDeletion),
        "PendingImport" => Some(ReasonCode::KeyPendingImport),
        "Unavailable" => Some(ReasonCode::KeyUnavailable),
        _ => None,
    }
}

/// The Spot service-linked role of `account`. AWS: "If you specify an encrypted AMI or an
/// encrypted Amazon EBS snapshot for your Spot Instances and you use a customer managed key for
/// encryption, you must grant the AWSServiceRoleForEC2Spot role permission to use the customer
/// managed key" (EC2 User Guide, "Service-linked role for Spot Instance requests"). Whether an
/// `instant` fleet's Spot launch uses it, the documents leave open.
pub fn spot_service_role(partition: &Partition, account: &str) -> String {
    format!(
        "arn:{}:iam::{account}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
        partition.id
    )
}

pub fn reason(case: &KmsCase<'_>, facts: &dyn Facts) -> Finding {
    let Some(key) = case.key else {
        return undetermined(
            "the instance died of an unusable KMS key, but no input names the key: pass the EC2NodeClass (blockDeviceMappings[].ebs.kmsKeyID) or the AMI's snapshots".into(),
            Vec::new(),
            case,
        );
    };
    let found = match facts.key(key) {
        Lookup::Found(k) => k,
        Lookup::Absent(why) | Lookup::Unknown(why) => return inferred(case, key, why),
    };
    let source = found.source.clone();
    let mut lines = vec![evidence(
        source.clone(),
        format!(
            "DescribeKey {}: KeyState={}, KeyManager={}{}",
            found.arn,
            found.state,
            found.manager.as_deref().unwrap_or("unknown"),
            found
                .deletion_date
                .as_deref()
                .map(|d| format!(", DeletionDate={d}"))
                .unwrap_or_default()
        ),
    )];
    // The state KMS named at the failure, where DescribeKey now says another.
    let changed = case.said_state.as_ref().filter(|(s, _)| *s != found.state);
    if let Some((said, at)) = changed {
        lines.push(evidence(
            format!("error message {at}"),
            format!(
                "KMS said the key was {said} when the launch failed; DescribeKey says {} now: the state changed since",
                found.state
            ),
        ));
    }
    // The state AWS evaluated is the one KMS named then; today's, where it differs, is what
    // must change, not the proof.
    let then = changed.and_then(|(s, _)| Some((*s, state_reason(s)?)));
    if let Some(now) = state_reason(&found.state) {
        // The state KMS named then (not DescribeKey's now) is what decides.
        let (reason, decided, summary) = match then {
            Some((said, reason)) => (
                reason,
                false,
                format!(
                    "KMS key {} was {said} when the launch failed (KMS's error says so), and is {} now: EC2 cannot use it until it is Enabled",
                    found.arn, found.state
                ),
            ),
            None => (
                now,
                true,
                format!(
                    "KMS key {} is {}: EC2 cannot use it to encrypt or decrypt the instance's volumes",
                    found.arn, found.state
                ),
            ),
        };
        return Finding {
            reason,
            premises: vec![Premise::of(What::Key, "kms:DescribeKey", decided)],
            summary,
            evidence: lines,
            statement: None,
            fix: Fix::KeyState {
                key: found.arn.clone(),
                state: found.state.clone(),
            },
        };
    }
    if let Some((said, reason)) = then.filter(|_| found.state == "Enabled") {
        // The failure's cause is over: what KMS said then, not proven now.
        return Finding {
            reason,
            premises: vec![Premise::undecided(What::Key, "kms:DescribeKey")],
            summary: format!(
                "KMS key {} was {said} when the launch failed (KMS's error says so), and is {} now: launches can use it again",
                found.arn, found.state
            ),
            evidence: lines,
            statement: None,
            fix: Fix::KeyStateRestored {
                key: found.arn.clone(),
                was: said.to_string(),
            },
        };
    }
    let Some(principal) = case.principal else {
        return undetermined(
            format!(
                "KMS key {} is {}, and the principal that launched the instance is unknown: pass Karpenter's ServiceAccount or --controller-role",
                found.arn, found.state
            ),
            lines,
            case,
        );
    };
    let side = key_side(&found, principal, case);
    let denied = refused(&side);
    let unknown: Vec<String> = side
        .iter()
        .filter(|(_, a)| a.is_none())
        .map(|(op, _)| format!("kms:{op}"))
        .collect();
    lines.push(evidence(
        source.clone(),
        key_side_line(&found, principal, &denied, &unknown),
    ));
    // Spot: AWS documents a second principal that must be able to use the key.
    let spot_role = spot_service_role(case.partition, &account_of(principal));
    let spot_denied: Vec<String> = match case.capacity_type {
        Some("spot") => refused(&key_side(&found, &spot_role, case)),
        _ => Vec::new(),
    };
    lines.push(evidence(
        "capacity type",
        capacity_line(case, &spot_role, &spot_denied),
    ));
    let spot_fix = (!spot_denied.is_empty()).then(|| Fix::KeyAccess {
        key: found.arn.clone(),
        grantee: spot_role.clone(),
        region: case.region.map(str::to_string),
        missing: spot_denied.clone(),
    });
    if !denied.is_empty() || !unknown.is_empty() {
        let missing = if denied.is_empty() {
            unknown.clone()
        } else {
            denied.clone()
        };
        let cross = found.account != account_of(principal);
        return Finding {
            reason: ReasonCode::KeyAccessNotGranted,
            premises: vec![Premise::of(
                What::Key,
                "the key policy and grants",
                !denied.is_empty(),
            )],
            summary: format!(
                "neither the key policy nor a grant of {}{} lets {principal} use the key for {}",
                found.arn,
                if cross {
                    format!(" (account {})", found.account)
                } else {
                    String::new()
                },
                missing.join(", ")
            ),
            evidence: lines,
            statement: None,
            fix: with_spot(
                Fix::KeyAccess {
                    key: found.arn.clone(),
                    grantee: principal.to_string(),
                    region: case.region.map(str::to_string),
                    missing,
                },
                spot_fix,
            ),
        };
    }
    // The caller may use the key; for Spot, AWS requires the Spot service-linked role to as
    // well, and the key side refuses it.
    if let Some(spot) = spot_fix {
        return Finding {
            reason: ReasonCode::KeyAccessNotGranted,
            premises: vec![Premise::of(What::Key, "the key policy and grants", true)],
            summary: format!(
                "the key policy or grants of {} let {principal} use it, but not the Spot service-linked role {spot_role}, which AWS requires for Spot Instances: {}",
                found.arn,
                spot_denied.join(", ")
            ),
            evidence: lines,
            statement: None,
            fix: spot,
        };
    }
    match facts.principal(principal) {
        Lookup::Found(policies) => {
            let set = PolicySet {
                identity: policies.identity,
                boundary: policies.boundary,
                scps: None,
                resource: None,
            };
            let missing: Vec<String> = EBS_OPERATIONS
                .iter()
                .map(|op| format!("kms:{op}"))
                .filter(|action| {
                    let req = request(principal, action, &found.arn, case)
                        .with_resource_account(Some(account_of(principal)));
                    set.decide(&req) != Decision::Allowed
                })
                .collect();
            if missing.is_empty() {
                lines.push(evidence(
                    policies.source.clone(),
                    format!(
                        "{}'s IAM policies allow every KMS action EBS needs on the key",
                        policies.arn
                    ),
                ));
                return undetermined(
                    format!(
                        "the facts say {principal} may use {}: check the AMI's snapshot key, encryption-context or grant constraints",
                        found.arn
                    ),
                    lines,
                    case,
                );
            }
            lines.push(evidence(
                policies.source.clone(),
                format!(
                    "{}'s IAM policies do not allow {} on {}",
                    policies.arn,
                    missing.join(", "),
                    found.arn
                ),
            ));
            Finding {
                reason: ReasonCode::IdentityPolicyMissingKmsPermissions,
                premises: vec![Premise::decided(What::Policies, policies.arn.clone())],
                summary: format!(
                    "the key side allows {principal}, but its IAM policies lack {} on {}",
                    missing.join(", "),
                    found.arn
                ),
                evidence: lines,
                statement: None,
                fix: Fix::KmsIdentity {
                    role: policies.arn,
                    key: found.arn.clone(),
                    missing,
                },
            }
        }
        Lookup::Absent(why) | Lookup::Unknown(why) => {
            lines.push(evidence("facts", why));
            undetermined(
                format!(
                    "the key policy or grants of {} let {principal} use it; whether its IAM policies do is unknown",
                    found.arn
                ),
                lines,
                case,
            )
        }
    }
}

/// The caller's grant, then the Spot role's where it lacks one too.
fn with_spot(caller: Fix, spot: Option<Fix>) -> Fix {
    match spot {
        Some(spot) => Fix::Layers(vec![caller, spot]),
        None => caller,
    }
}

/// Which principals the launch needs the key for, by capacity type (AWS's documents: the EBS
/// encryption requirements for the caller; the Spot service-linked role for Spot Instances;
/// the EC2 Fleet role is not required by an instant fleet).
fn capacity_line(case: &KmsCase<'_>, spot_role: &str, spot_denied: &[String]) -> String {
    match case.capacity_type {
        Some("spot") if spot_denied.is_empty() => format!(
            "spot: the caller, and the Spot service-linked role {spot_role}, which the key side lets use the key (or which is unknown)"
        ),
        Some("spot") => format!(
            "spot: the caller, and the Spot service-linked role {spot_role}, which the key side does not let use the key for {}",
            spot_denied.join(", ")
        ),
        Some(other) => format!(
            "{other}: the caller's permissions are what EBS uses (Karpenter's CreateFleet is of type instant, which does not require the EC2 Fleet service-linked role)"
        ),
        None => format!(
            "unknown: the caller must be able to use the key; for Spot capacity, AWS also requires the Spot service-linked role {spot_role} (pass the NodeClaim or describe-instances to tell)"
        ),
    }
}

/// For each operation EBS needs, whether the key side lets `principal` call it (`None`:
/// unknown).
pub fn key_side(
    key: &KeyFacts,
    principal: &str,
    case: &KmsCase<'_>,
) -> Vec<(&'static str, Option<bool>)> {
    EBS_OPERATIONS
        .iter()
        .map(|op| (*op, key_side_allows(key, principal, op, case)))
        .collect()
}

/// The `kms:` actions a key side (from `key_side`) refuses.
pub fn refused(side: &[(&str, Option<bool>)]) -> Vec<String> {
    side.iter()
        .filter(|(_, a)| *a == Some(false))
        .map(|(op, _)| format!("kms:{op}"))
        .collect()
}

/// Whether the key policy or a grant lets `principal` call `kms:<op>`; `None` when no grant
/// covers it and the policy is unknown, or the policy does not allow it and the grants are
/// unknown.
fn key_side_allows(key: &KeyFacts, principal: &str, op: &str, case: &KmsCase<'_>) -> Option<bool> {
    let granted = key.grants.as_ref().map(|grants| {
        grants.iter().any(|g| {
            same_role(&g.grantee_principal, principal) && g.operations.iter().any(|o| o == op)
        })
    });
    if granted == Some(true) {
        return Some(true);
    }
    let policy = key.policy.as_ref()?;
    let assume_iam_allows = Policy::from_value("(IAM side assumed to allow)", &json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}}))
        .expect("a constant policy parses");
    let set = PolicySet {
        identity: vec![assume_iam_allows],
        boundary: None,
        scps: None,
        resource: Some(policy.clone()),
    };
    let by_policy = set.decide(&request(principal, &format!("kms:{op}"), &key.arn, case));
    match (by_policy, granted) {
        (Decision::Allowed, _) => Some(true),
        // Unknown grants may still allow what the key policy does not.
        (_, None) => None,
        (_, Some(_)) => Some(false),
    }
}

/// The request EC2 makes with the launching principal's credentials.
fn request(principal: &str, action: &str, key: &str, case: &KmsCase<'_>) -> Request {
    let mut ctx = Context::default();
    if let Some(region) = case.region {
        ctx.insert(
            "kms:ViaService",
            format!("ec2.{region}.{}", case.partition.dns_suffix),
        );
    }
    ctx.insert("kms:CallerAccount", account_of(principal));
    if action == "kms:CreateGrant" {
        ctx.insert("kms:GrantIsForAWSResource", "true");
    }
    Request::new(principal, action, key).with_context(ctx)
}

fn key_side_line(key: &KeyFacts, principal: &str, denied: &[String], unknown: &[String]) -> String {
    let grants = match &key.grants {
        None => "grants unknown".to_string(),
        Some(g) => {
            let to_principal = g
                .iter()
                .filter(|g| same_role(&g.grantee_principal, principal))
                .count();
            format!("{} grants, {to_principal} to {principal}", g.len())
        }
    };
    let policy = if key.policy.is_some() {
        "key policy read"
    } else {
        "key policy unknown"
    };
    let verdict = match (denied.is_empty(), unknown.is_empty()) {
        (true, true) => "the key side allows every operation EBS needs".to_string(),
        (false, _) => format!("the key side does not allow {}", denied.join(", ")),
        (true, false) => format!("no grant covers {}", unknown.join(", ")),
    };
    let mut line = format!("{grants}; {policy}; {verdict}");
    for why in &key.unreadable {
        line += &format!("; {why}");
    }
    line
}

/// No facts on the key: a key in another account than the launching principal is the classic
/// cross-account CMK (domain.md §1b); otherwise nothing can be said.
fn inferred(case: &KmsCase<'_>, key: &str, why: String) -> Finding {
    if let Some((said, reason, at)) = case
        .said_state
        .as_ref()
        .and_then(|(s, at)| Some((*s, state_reason(s)?, at)))
    {
        return Finding {
            reason,
            premises: vec![Premise::undecided(What::Key, key.to_string())],
            summary: format!(
                "KMS said key {key} was {said} when the launch failed: EC2 cannot use it to encrypt or decrypt the instance's volumes"
            ),
            evidence: vec![
                evidence(
                    format!("error message {at}"),
                    format!(
                        "KMS's error names the key's state: {said}; DescribeKey would confirm it is still so"
                    ),
                ),
                evidence("facts", why),
            ],
            statement: None,
            fix: Fix::KeyState {
                key: key.into(),
                state: said.into(),
            },
        };
    }
    let key_account = Arn::parse(key).map(|a| a.account.to_string());
    // `Client.InternalError: Client error on launch` is a KMS failure only if the key is
    // unusable: without facts on the key, it is not called one.
    let internal = case
        .error_code
        .is_some_and(|c| c.eq_ignore_ascii_case("Client.InternalError"));
    match (case.principal, key_account) {
        _ if internal => undetermined(
            format!(
                "the instance failed with Client.InternalError and its volumes use {key}: that is a KMS failure only if the key is unusable (its state, an AWS managed key used across accounts, missing grants), which the facts do not show"
            ),
            vec![evidence("facts", why)],
            case,
        ),
        (Some(principal), Some(account)) if account != account_of(principal) => Finding {
            reason: ReasonCode::KeyAccessNotGranted,
            premises: vec![Premise::undecided(What::Key, key.to_string())],
            summary: format!(
                "{key} belongs to account {account}, not to {principal}'s: a cross-account key needs a grant or key policy statement for the launching principal"
            ),
            evidence: vec![
                evidence(
                    "EC2NodeClass",
                    format!("the volumes are encrypted with {key}"),
                ),
                evidence("facts", why),
            ],
            statement: None,
            fix: Fix::KeyAccess {
                key: key.into(),
                grantee: principal.into(),
                region: case.region.map(str::to_string),
                missing: EBS_OPERATIONS.iter().map(|o| format!("kms:{o}")).collect(),
            },
        },
        _ => undetermined(
            format!(
                "the instance died of an unusable KMS key {key}; without facts on the key its cause is unknown"
            ),
            vec![evidence("facts", why)],
            case,
        ),
    }
}

fn undetermined(summary: String, evidence: Vec<Evidence>, case: &KmsCase<'_>) -> Finding {
    Finding {
        reason: ReasonCode::Undetermined,
        premises: vec![Premise::undecided(What::Key, "the key's facts")],
        summary,
        evidence,
        statement: None,
        fix: Fix::Investigate {
            role: case.principal.map(str::to_string),
            action: None,
            resource: case.key.map(str::to_string),
        },
    }
}

/// Grantees are role ARNs; compare by account and role name so paths and sessions agree.
fn same_role(a: &str, b: &str) -> bool {
    a == b
        || (account_of(a) == account_of(b)
            && role_name_of(a).is_some()
            && role_name_of(a) == role_name_of(b))
}

fn account_of(arn: &str) -> String {
    Arn::parse(arn)
        .map(|a| a.account.to_string())
        .unwrap_or_default()
}
