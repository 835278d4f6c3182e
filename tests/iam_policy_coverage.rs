//! The doctor's own IAM policy (manifests/iam-policy.json) allows exactly the AWS operations
//! its code can call, all of them reads, in any partition.

use karpenter_doctor::aws::live::OPERATIONS;
use karpenter_doctor::policy::{Decision, Policy, PolicySet, Request};
use std::collections::BTreeSet;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn manifest() -> (Policy, BTreeSet<String>) {
    let text = std::fs::read_to_string(format!("{ROOT}/manifests/iam-policy.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let actions = value["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
        })
        .collect();
    (
        Policy::parse("manifests/iam-policy.json", &text).unwrap(),
        actions,
    )
}

/// Every `guard.call("service", "Operation", …)` in src/aws, and `sts:AssumeRole` where the
/// SDK's assume-role credential provider is built.
fn called_in_code() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(format!("{ROOT}/src/aws")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if text.contains("AssumeRoleProvider::builder(") {
            found.insert("sts:AssumeRole".to_string());
        }
        for (i, _) in text.match_indices(".call(\"") {
            let args: Vec<&str> = text[i + 7..].splitn(4, '"').collect();
            if args.len() == 4 && args[1].trim() == "," {
                found.insert(format!("{}:{}", args[0], args[2]));
            }
        }
    }
    found
}

#[test]
fn the_policy_allows_exactly_the_operations_the_code_calls() {
    let (_, actions) = manifest();
    let declared: BTreeSet<String> = OPERATIONS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        called_in_code(),
        declared,
        "src/aws calls and OPERATIONS differ"
    );
    assert_eq!(
        actions, declared,
        "manifests/iam-policy.json and the code differ"
    );
}

#[test]
fn every_allowed_operation_only_reads() {
    let (_, actions) = manifest();
    for action in actions {
        if action == "sts:AssumeRole" {
            // Reads other accounts' keys with what the assumed role allows; checked below to
            // reach only roles named for the doctor.
            continue;
        }
        let name = action.split(':').nth(1).unwrap();
        assert!(
            ["Get", "List", "Describe", "Simulate", "Decode"]
                .iter()
                .any(|p| name.starts_with(p)),
            "{action} is not a read"
        );
    }
}

#[test]
fn the_policy_works_in_every_partition_and_grants_no_writes() {
    let (policy, _) = manifest();
    let set = PolicySet {
        identity: vec![policy],
        ..PolicySet::default()
    };
    for partition in ["aws", "aws-cn", "aws-us-gov"] {
        let doctor = format!("arn:{partition}:sts::111122223333:assumed-role/karpenter-doctor/1");
        let role = format!("arn:{partition}:iam::111122223333:role/KarpenterController");
        let key = format!("arn:{partition}:kms:cn-north-1:111122223333:key/k");
        let cluster = format!("arn:{partition}:eks:cn-north-1:111122223333:cluster/prod");
        let association = format!(
            "arn:{partition}:eks:cn-north-1:111122223333:podidentityassociation/prod/a-1b2c3d4e5f6a7b8c9"
        );
        for (action, resource) in [
            ("iam:GetRole", role.as_str()),
            ("iam:SimulatePrincipalPolicy", &role),
            ("kms:ListGrants", &key),
            ("ec2:DescribeInstances", "*"),
            ("iam:ListOpenIDConnectProviders", "*"),
            ("eks:DescribeCluster", &cluster),
            ("eks:ListPodIdentityAssociations", &cluster),
            ("eks:DescribePodIdentityAssociation", &association),
        ] {
            assert_eq!(
                set.decide(&Request::new(&doctor, action, resource)),
                Decision::Allowed,
                "{action} in {partition}"
            );
        }
        // The identity side only (across accounts the reader role's trust policy must allow too).
        let reader = format!("arn:{partition}:iam::111122223333:role/karpenter-doctor-kms-reader");
        assert_eq!(
            set.decide(&Request::new(&doctor, "sts:AssumeRole", &reader)),
            Decision::Allowed,
            "sts:AssumeRole of a doctor role in {partition}"
        );
        for (action, resource) in [
            ("sts:AssumeRole", role.as_str()),
            ("iam:PutRolePolicy", role.as_str()),
            ("kms:CreateGrant", &key),
            ("iam:CreatePolicyVersion", "*"),
            ("kms:CancelKeyDeletion", &key),
            ("eks:CreatePodIdentityAssociation", &cluster),
            ("iam:CreateOpenIDConnectProvider", "*"),
        ] {
            assert_ne!(
                set.decide(&Request::new(&doctor, action, resource)),
                Decision::Allowed,
                "{action} must not be allowed"
            );
        }
    }
}
