//! `preflight --policy FILE`: the controller role's policy before it is deployed, as a policy
//! document or as `terraform show -json` output (a plan's `planned_values`, or a state's
//! `values`; Terraform's documented JSON output format) that holds it. From a Terraform
//! document the controller's policies are those that allow `ec2:CreateFleet` (Karpenter's
//! launch; no node role or other policy does), each once. Pure.

use crate::facts::iam_snapshot::PolicyKind;
use serde_json::{Value, json};

/// The policies a file holds: (name, document).
pub fn policies(file: &str, text: &str) -> Result<Vec<(String, Value)>, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("{file}: not valid JSON: {e}"))?;
    if doc.get("Statement").is_some() {
        return Ok(vec![(name_of(file), doc)]);
    }
    let root = doc
        .pointer("/planned_values/root_module")
        .or_else(|| doc.pointer("/values/root_module"))
        .ok_or_else(|| {
            format!("{file}: neither a policy document (Statement) nor `terraform show -json` output (planned_values or values)")
        })?;
    let mut found: Vec<(String, Value)> = Vec::new();
    let mut all = Vec::new();
    walk(root, &mut |resource| {
        let address = resource["address"].as_str().unwrap_or("?");
        let text = match resource["type"].as_str() {
            Some("aws_iam_policy" | "aws_iam_role_policy") => resource["values"]["policy"].as_str(),
            Some("aws_iam_policy_document") => resource["values"]["json"].as_str(),
            _ => None,
        };
        let Some(policy) = text.and_then(|t| serde_json::from_str::<Value>(t).ok()) else {
            return;
        };
        all.push(address.to_string());
        if launches(&policy) && !found.iter().any(|(_, p)| p == &policy) {
            found.push((address.to_string(), policy));
        }
    });
    if found.is_empty() {
        return Err(format!(
            "{file}: no policy in it allows ec2:CreateFleet (policies found: {})",
            if all.is_empty() {
                "none".to_string()
            } else {
                all.join(", ")
            }
        ));
    }
    Ok(found)
}

/// Every resource of a module and its child modules, in order.
fn walk(module: &Value, visit: &mut impl FnMut(&Value)) {
    for resource in module["resources"].as_array().into_iter().flatten() {
        visit(resource);
    }
    for child in module["child_modules"].as_array().into_iter().flatten() {
        walk(child, visit);
    }
}

/// Whether a policy has an Allow statement naming `ec2:CreateFleet` (or a wildcard over it).
fn launches(policy: &Value) -> bool {
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .any(|s| {
            let actions = match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(list) => list
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            actions.iter().any(|a| {
                let a = a.to_ascii_lowercase();
                a == "*" || a == "ec2:*" || a == "ec2:createfleet" || a == "ec2:create*"
            })
        })
}

/// How a policy `policies` found is to be attached, by the Terraform resource type its address
/// names (`[module.M.]…TYPE.NAME`): `aws_iam_policy` managed, `aws_iam_role_policy` inline;
/// `None` for a document (a file, or `aws_iam_policy_document`, which may become either).
pub fn kind(name: &str) -> Option<PolicyKind> {
    let mut parts = name.split('.');
    let ty = loop {
        match parts.next()? {
            "module" => {
                parts.next()?;
            }
            "data" => return None,
            ty => break ty,
        }
    };
    parts.next()?;
    match ty {
        "aws_iam_policy" => Some(PolicyKind::Managed),
        "aws_iam_role_policy" => Some(PolicyKind::Inline),
        _ => None,
    }
}

fn name_of(file: &str) -> String {
    std::path::Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(file)
        .to_string()
}

/// An IAM snapshot (`get-account-authorization-details` shape) in which `role` has exactly
/// these policies, inline.
pub fn snapshot(role: &str, policies: &[(String, Value)]) -> Value {
    let name = role.rsplit('/').next().unwrap_or(role);
    json!({"RoleDetailList": [{
        "Arn": role,
        "RoleName": name,
        "RolePolicyList": policies
            .iter()
            .map(|(n, doc)| json!({"PolicyName": n, "PolicyDocument": doc}))
            .collect::<Vec<_>>(),
        "AttachedManagedPolicies": [],
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["ec2:CreateFleet", "ec2:RunInstances"], "Resource": "*"}]})
    }

    #[test]
    fn a_document_is_one_policy_named_by_its_file() {
        let found = policies("dir/controller.json", &controller().to_string()).unwrap();
        assert_eq!(found, vec![("controller.json".to_string(), controller())]);
    }

    #[test]
    fn a_plan_gives_the_launching_policies_once_from_every_module() {
        let node = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Action": "ec2:DescribeInstances", "Resource": "*"}});
        let plan = json!({"format_version": "1.2", "planned_values": {"root_module": {
            "resources": [{"address": "aws_iam_policy.node", "type": "aws_iam_policy",
                "values": {"policy": node.to_string()}}],
            "child_modules": [{"address": "module.karpenter", "resources": [
                {"address": "module.karpenter.data.aws_iam_policy_document.controller[0]",
                 "mode": "data", "type": "aws_iam_policy_document",
                 "values": {"json": controller().to_string()}},
                {"address": "module.karpenter.aws_iam_policy.controller[0]",
                 "type": "aws_iam_policy", "values": {"policy": controller().to_string()}}]}]}}});
        let found = policies("plan.json", &plan.to_string()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].0,
            "module.karpenter.data.aws_iam_policy_document.controller[0]"
        );
        let state = json!({"values": {"root_module": {"resources": [
            {"address": "aws_iam_role_policy.c", "type": "aws_iam_role_policy",
             "values": {"policy": controller().to_string()}}]}}});
        assert_eq!(policies("s.json", &state.to_string()).unwrap().len(), 1);
    }

    #[test]
    fn what_holds_no_controller_policy_is_refused_naming_what_it_holds() {
        for (text, says) in [
            ("{", "not valid JSON"),
            ("[1]", "neither a policy document"),
            (
                r#"{"planned_values": {"root_module": {"resources": [{"address": "aws_iam_policy.x", "type": "aws_iam_policy", "values": {"policy": "{\"Statement\": []}"}}]}}}"#,
                "policies found: aws_iam_policy.x",
            ),
            (r#"{"values": {"root_module": {}}}"#, "policies found: none"),
        ] {
            let e = policies("f.json", text).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn the_kind_is_the_terraform_resource_types() {
        assert_eq!(
            kind("module.karpenter.aws_iam_policy.controller[0]"),
            Some(PolicyKind::Managed)
        );
        assert_eq!(kind("aws_iam_role_policy.c"), Some(PolicyKind::Inline));
        assert_eq!(
            kind("module.aws_iam_role_policy.aws_iam_policy.c"),
            Some(PolicyKind::Managed)
        );
        assert_eq!(
            kind("module.karpenter.data.aws_iam_policy_document.controller[0]"),
            None
        );
        assert_eq!(kind("controller.json"), None);
        assert_eq!(kind("aws_iam_policy"), None);
    }

    #[test]
    fn the_snapshot_holds_the_role_with_its_policies() {
        let doc = snapshot(
            "arn:aws:iam::111122223333:role/KarpenterController",
            &[("c".into(), controller())],
        );
        let parsed = crate::facts::iam_snapshot::IamSnapshot::parse(&doc.to_string()).unwrap();
        let p = parsed
            .principal("arn:aws:sts::111122223333:assumed-role/KarpenterController/s")
            .unwrap();
        assert_eq!(p.identity.len(), 1);
    }
}
