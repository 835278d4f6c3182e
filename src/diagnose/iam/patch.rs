//! The fixes an IAM finding calls for: the patched statement (every EC2 principal of the
//! partition, the partition, the resource, condition values), the statement to add, the
//! organization policy to change, or an investigation; and the evidence lines of simulations.

use super::*;

pub(super) fn patch_or_investigate(
    case: &IamCase<'_>,
    role: &str,
    policy: String,
    source: Option<Map<String, Value>>,
    patch: impl Fn(&Map<String, Value>) -> Option<Map<String, Value>>,
) -> Fix {
    match source
        .as_ref()
        .and_then(|st| Some((st.clone(), patch(st)?)))
    {
        Some((statement, patched)) => Fix::PatchStatement {
            role: role.into(),
            policy,
            statement,
            patched,
        },
        None => investigate(case, role),
    }
}

/// ` (ARN)` after a policy's kind, where the message names the policy.
pub(super) fn named(policy: Option<&str>) -> String {
    policy.map(|p| format!(" ({p})")).unwrap_or_default()
}

pub(super) fn organization(case: &IamCase<'_>, kind: OrgPolicy, account: String) -> Fix {
    Fix::Organization {
        kind,
        account,
        action: case.action.into(),
        policy: case.policy_arn.map(str::to_string),
    }
}

pub(super) fn investigate(case: &IamCase<'_>, role: &str) -> Fix {
    Fix::Investigate {
        role: Some(role.into()),
        action: Some(case.action.into()),
        resource: case.resource.map(str::to_string),
    }
}

/// The statement with `Condition[op][key]` extended by the missing `values` (existing first).
pub(super) fn with_condition_values(
    st: &Map<String, Value>,
    op: &str,
    key: &str,
    values: &[String],
) -> Map<String, Value> {
    let mut patched = st.clone();
    if let Some(slot) = patched
        .get_mut("Condition")
        .and_then(|c| c.get_mut(op))
        .and_then(|o| o.get_mut(key))
    {
        let mut merged: Vec<String> = match slot {
            Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        };
        for v in values {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        *slot = json!(merged);
    }
    patched
}

/// A PassRole statement whose `iam:PassedToService` condition names some EC2 principals,
/// widened to every one of `partition` (aws-cn: `ec2.amazonaws.com.cn` for CreateFleet and
/// `ec2.amazonaws.com` for the instance profile); as it is without such a condition.
pub(super) fn with_every_ec2_principal(
    st: &Map<String, Value>,
    partition: &Partition,
) -> Map<String, Value> {
    let found = st
        .get("Condition")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .find_map(|(op, keys)| {
            let key = keys
                .as_object()?
                .keys()
                .find(|k| k.eq_ignore_ascii_case("iam:PassedToService"))?;
            Some((op.clone(), key.clone()))
        });
    match found {
        Some((op, key)) => with_condition_values(st, &op, &key, &ec2_principals(partition)),
        None => st.clone(),
    }
}

/// Every EC2 service principal of `partition`, sorted (aws-cn: `ec2.amazonaws.com` and
/// `ec2.amazonaws.com.cn`): what a PassRole statement must allow for both of Karpenter's paths.
pub(super) fn ec2_principals(partition: &Partition) -> Vec<String> {
    let mut services = partition.service_principals("ec2");
    services.sort();
    services
}

/// The statement with each Resource ARN moved into `partition`.
pub(super) fn with_partition(st: &Map<String, Value>, partition: &str) -> Map<String, Value> {
    let mut patched = st.clone();
    let rewrite = |v: &str| match Arn::parse(v) {
        Some(a) => format!(
            "arn:{partition}:{}:{}:{}:{}",
            a.service, a.region, a.account, a.resource
        ),
        None => v.to_string(),
    };
    if let Some(resource) = patched.get_mut("Resource") {
        let rewritten = match &*resource {
            Value::String(s) => json!(rewrite(s)),
            Value::Array(list) => json!(
                list.iter()
                    .map(|v| v.as_str().map_or(v.clone(), |s| json!(rewrite(s))))
                    .collect::<Vec<_>>()
            ),
            other => other.clone(),
        };
        *resource = rewritten;
    }
    patched
}

/// The statement with `resource` added to its Resource list.
pub(super) fn with_resource(st: &Map<String, Value>, resource: &str) -> Map<String, Value> {
    let mut patched = st.clone();
    let mut list: Vec<Value> = match patched.get("Resource") {
        Some(Value::Array(list)) => list.clone(),
        Some(v) => vec![v.clone()],
        None => Vec::new(),
    };
    list.push(json!(resource));
    patched.insert("Resource".into(), json!(list));
    patched
}

/// Karpenter's recommended PassRole statement, for this partition.
pub(super) fn pass_role_statement(case: &IamCase<'_>) -> Value {
    let services = ec2_principals(case.partition);
    json!({"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": case.resource(),
           "Condition": {"StringEquals": {"iam:PassedToService": services}}})
}

pub(super) fn allow_statement(case: &IamCase<'_>) -> Value {
    if case.is_pass_role() {
        return pass_role_statement(case);
    }
    let sid: String = case
        .action
        .split(':')
        .map(|p| {
            p.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .collect();
    json!({"Sid": format!("KarpenterDoctorAllow{sid}"), "Effect": "Allow", "Action": case.action, "Resource": case.resource()})
}

pub(super) fn account_of(arn: &str) -> String {
    Arn::parse(arn)
        .map(|a| a.account.to_string())
        .unwrap_or_default()
}

pub(super) fn simulation_line(sim: &Simulation, label: &str) -> String {
    let flag = |b: Option<bool>| b.map_or("not reported", |b| if b { "yes" } else { "no" });
    let mut line = format!(
        "EvalDecision={}{label}; allowed by organizations: {}; allowed by the permissions boundary: {}",
        sim.decision,
        flag(sim.allowed_by_organizations),
        flag(sim.allowed_by_boundary)
    );
    if !sim.matched_statements.is_empty() {
        line += &format!(
            "; matched statements: {}",
            sim.matched_statements.join(", ")
        );
    }
    if !sim.missing_context_values.is_empty() {
        line += &format!(
            "; missing context values: {}",
            sim.missing_context_values.join(", ")
        );
    }
    line
}

pub(super) fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Allowed => "allowed",
        Decision::ExplicitDeny => "explicit deny",
        Decision::ImplicitDeny => "implicit deny",
    }
}
