//! What Karpenter's own IAM policy grants its controller, so that a remediation that would
//! grant more says so first, in words: an Event or a log line anyone can write must not turn
//! into a patch that quietly lets Karpenter attach policies to itself or pass an admin role.
//!
//! The actions are the union of the controller policies Karpenter and its installers render
//! (tests/fixtures/policies/real: CloudFormation v0.32–v1.14, terraform-aws-eks v20–v21,
//! eksctl, EKS Blueprints), plus what Karpenter's documentation adds for encrypted volumes
//! (the KMS operations EBS uses), the Spot service-linked role, and v1.15's reboot path.

use super::finding::Fix;
use serde_json::Value;

/// Every action some documented Karpenter controller policy allows.
const DOCUMENTED: &[&str] = &[
    "arc-zonal-shift:GetManagedResource",
    "ec2:CreateFleet",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateTags",
    "ec2:DeleteLaunchTemplate",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeCapacityReservations",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribePlacementGroups",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
    "ec2:RebootInstances",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
    "eks:DescribeCluster",
    "iam:AddRoleToInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:CreateServiceLinkedRole",
    "iam:DeleteInstanceProfile",
    "iam:GetInstanceProfile",
    "iam:ListInstanceProfiles",
    "iam:PassRole",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "pricing:GetProducts",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "ssm:GetParameter",
];

/// What a fix would let Karpenter do beyond its documented needs, in words, to lead its
/// steps: actions no documented policy grants, and roles it would newly be allowed to pass.
pub fn beyond(fix: &Fix) -> Option<String> {
    let (before, after) = match fix {
        Fix::PatchStatement {
            statement, patched, ..
        } => (Some(statement), patched),
        Fix::AddStatement {
            statement: Value::Object(added),
            ..
        } => (None, added),
        Fix::Layers(fixes) => return fixes.iter().find_map(beyond),
        _ => return None,
    };
    let list = |st: Option<&serde_json::Map<String, Value>>, key: &str| -> Vec<String> {
        match st.and_then(|s| s.get(key)) {
            Some(Value::String(v)) => vec![v.clone()],
            Some(Value::Array(vs)) => vs
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    };
    let actions = list(Some(after), "Action");
    let undocumented: Vec<&String> = actions
        .iter()
        .filter(|a| !list(before, "Action").contains(a))
        .filter(|a| !DOCUMENTED.iter().any(|d| d.eq_ignore_ascii_case(a)))
        .collect();
    let passes = actions
        .iter()
        .any(|a| a.eq_ignore_ascii_case("iam:PassRole"));
    let new_roles: Vec<String> = if passes {
        let was = list(before, "Resource");
        list(Some(after), "Resource")
            .into_iter()
            .filter(|r| !was.contains(r))
            .collect()
    } else {
        Vec::new()
    };
    let mut said = Vec::new();
    if !undocumented.is_empty() {
        said.push(format!(
            "it grants {}, which no controller policy Karpenter documents grants: Karpenter never needs it, so find out what made this request before you widen anything",
            undocumented.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    if !new_roles.is_empty() {
        said.push(format!(
            "it lets Karpenter pass {}: make sure that is a node role one of your EC2NodeClasses names (spec.role), since Karpenter passes no other role",
            new_roles.join(", ")
        ));
    }
    (!said.is_empty()).then(|| format!("Before you change anything: {}.", said.join("; and ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_fix_beyond_karpenters_documented_needs_says_so() {
        let add = |statement: Value| Fix::AddStatement {
            role: "arn:aws:iam::1:role/K".into(),
            statement,
        };
        let attach =
            add(json!({"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": "*"}));
        assert!(beyond(&attach).unwrap().contains("iam:AttachRolePolicy"));
        let describe =
            add(json!({"Effect": "Allow", "Action": "ec2:DescribeImages", "Resource": "*"}));
        assert_eq!(beyond(&describe), None);
        let pass = |resources: Value| Fix::PatchStatement {
            role: "arn:aws:iam::1:role/K".into(),
            policy: "p".into(),
            statement: json!({"Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/Node"})
                .as_object()
                .unwrap()
                .clone(),
            patched: json!({"Action": "iam:PassRole", "Resource": resources})
                .as_object()
                .unwrap()
                .clone(),
        };
        let admin = pass(json!([
            "arn:aws:iam::1:role/Node",
            "arn:aws:iam::1:role/Admin"
        ]));
        let said = beyond(&admin).unwrap();
        assert!(
            said.contains("role/Admin") && !said.contains("role/Node,"),
            "{said}"
        );
        assert_eq!(
            beyond(&pass(json!("arn:aws:iam::1:role/Node"))),
            None,
            "a condition fix"
        );
    }
}
