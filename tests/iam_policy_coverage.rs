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

/// `preflight --doctor-policy` on the seed-2 cluster (offline): the shipped policy's reads,
/// scoped to that cluster's roles, key and EKS cluster.
fn rendered_for_seed_2() -> (serde_json::Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_karpenter-doctor"))
        .current_dir(ROOT)
        .args([
            "preflight",
            "--doctor-policy",
            "examples/cross-account-cmk/ec2nodeclass.yaml",
            "examples/cross-account-cmk/serviceaccount.yaml",
            "--iam-snapshot",
            "examples/cross-account-cmk/iam-snapshot.json",
            "--kms-snapshot",
            "examples/cross-account-cmk/kms-snapshot.json",
            "--region",
            "us-east-1",
            "--cluster-name",
            "demo",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn the_policy_rendered_for_one_cluster_reads_only_its_roles_keys_and_cluster() {
    let (rendered, notes) = rendered_for_seed_2();
    // Across accounts the other side allows (a key policy, a reader role's trust), so that the
    // identity side decides.
    let other_side = Policy::parse(
        "allows-the-doctor",
        r#"{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*", "Resource": "*"}]}"#,
    )
    .unwrap();
    let decide = |identity: &Policy, request: &Request| {
        PolicySet {
            identity: vec![identity.clone()],
            resource: request.is_cross_account().then(|| other_side.clone()),
            ..PolicySet::default()
        }
        .decide(request)
    };
    let scoped = Policy::from_value("rendered", &rendered).unwrap();
    let (shipped, declared) = manifest();
    let actions: BTreeSet<String> = rendered["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions, declared,
        "the same operations as the shipped policy"
    );
    let doctor = "arn:aws:sts::111122223333:assumed-role/karpenter-doctor/1";
    let controller = "arn:aws:iam::111122223333:role/KarpenterController-demo";
    let node = "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo";
    let key = "arn:aws:kms:us-east-1:444455556666:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    let cluster = "arn:aws:eks:us-east-1:111122223333:cluster/demo";
    let reader = "arn:aws:iam::444455556666:role/karpenter-doctor-kms-reader";
    let allowed = [
        ("iam:GetRole", controller),
        ("iam:SimulatePrincipalPolicy", controller),
        ("iam:ListAttachedRolePolicies", node),
        (
            "iam:GetPolicyVersion",
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        ),
        ("kms:DescribeKey", key),
        ("kms:ListGrants", key),
        ("eks:DescribeCluster", cluster),
        ("eks:ListPodIdentityAssociations", cluster),
        ("ec2:DescribeImages", "*"),
        ("sts:AssumeRole", reader),
    ];
    let refused = [
        ("iam:GetRole", "arn:aws:iam::111122223333:role/Admin"),
        (
            "iam:SimulatePrincipalPolicy",
            "arn:aws:iam::999988887777:role/KarpenterController-demo",
        ),
        (
            "kms:DescribeKey",
            "arn:aws:kms:us-east-1:111122223333:key/another",
        ),
        (
            "eks:DescribeCluster",
            "arn:aws:eks:us-east-1:111122223333:cluster/prod",
        ),
        (
            "sts:AssumeRole",
            "arn:aws:iam::999988887777:role/karpenter-doctor-kms-reader",
        ),
        ("iam:GetPolicy", "arn:aws:iam::999988887777:policy/Other"),
    ];
    for (action, resource) in allowed.iter().chain(&refused) {
        let request = Request::new(doctor, action, resource);
        let scoped_says = decide(&scoped, &request);
        // Never more than the shipped policy allows.
        if scoped_says == Decision::Allowed {
            assert_eq!(
                decide(&shipped, &request),
                Decision::Allowed,
                "{action} {resource}"
            );
        }
        assert_eq!(
            scoped_says == Decision::Allowed,
            allowed.contains(&(action, resource)),
            "{action} on {resource}"
        );
    }
    // The AMI's snapshot keys are not known offline: said, not widened to key/*.
    assert!(notes.contains("the AMI ami-0a1b2c3d4e5f60718"), "{notes}");
    assert!(!rendered.to_string().contains("key/*"), "{rendered:#}");
}
