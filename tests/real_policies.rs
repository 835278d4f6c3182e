//! The Karpenter controller policies people really deploy (rendered from their sources:
//! tests/fixtures/policies/README.md and real/README-*.md), in both partitions, on both paths
//! that pass the node role: CreateFleet (EC2's principal of the partition) and the EC2NodeClass
//! instance-profile step (AddRoleToInstanceProfile: always `ec2.amazonaws.com`). For each, the
//! failure Karpenter would log is diagnosed with the policy as the role's only policy:
//! `Confirmed` only where the engine denies the request that failed (and then the patch allows
//! both paths); where the policy allows that request, never `Confirmed`.

mod common;

use common::real::{ACCOUNT, ROOT, node_role, policies};
use karpenter_doctor::diagnose::diagnose;
use karpenter_doctor::diagnose::model::Confidence;
use karpenter_doctor::facts::SnapshotFacts;
use karpenter_doctor::facts::iam_snapshot::IamSnapshot;
use karpenter_doctor::policy::{Context, Decision, Policy, PolicySet, Request};
use karpenter_doctor::signal::{Observations, Scanner};
use serde_json::{Value, json};

/// The two paths: (name, the service the role is passed to, Karpenter's log line).
fn paths(partition: &str, role: &str) -> Vec<(&'static str, &'static str, String)> {
    let caller =
        format!("arn:{partition}:sts::{ACCOUNT}:assumed-role/KarpenterController-demo/1717236000");
    let fleet = json!({"level": "ERROR", "time": "2024-06-04T09:30:00.000Z", "logger": "controller",
        "message": "Reconciler error", "controller": "nodeclaim.lifecycle", "NodeClaim": {"name": "default-00001"},
        "error": format!("launching nodeclaim, creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: {caller} is not authorized to perform: iam:PassRole on resource: {role} because no identity-based policy allows the iam:PassRole action.")});
    let name = role.rsplit('/').next().unwrap_or(role);
    let profile = json!({"level": "ERROR", "time": "2024-06-04T09:30:00.000Z", "logger": "controller",
        "message": "Reconciler error", "controller": "nodeclass", "EC2NodeClass": {"name": "default"},
        "error": format!("creating instance profile, adding role \"{name}\" to instance profile \"demo_14529573185526392175\", operation error IAM: AddRoleToInstanceProfile, https response error StatusCode: 403, RequestID: 5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a, api error AccessDenied: User: {caller} is not authorized to perform: iam:PassRole on resource: {role} because no identity-based policy allows the iam:PassRole action")});
    let ec2 = if partition == "aws-cn" {
        "ec2.amazonaws.com.cn"
    } else {
        "ec2.amazonaws.com"
    };
    vec![
        ("CreateFleet", ec2, fleet.to_string()),
        (
            "AddRoleToInstanceProfile",
            "ec2.amazonaws.com",
            profile.to_string(),
        ),
    ]
}

fn engine_allows(policy: &Policy, partition: &str, role: &str, service: &str) -> bool {
    let set = PolicySet {
        identity: vec![policy.clone()],
        ..PolicySet::default()
    };
    let mut context = Context::default();
    context.insert("iam:PassedToService", service);
    let caller =
        format!("arn:{partition}:sts::{ACCOUNT}:assumed-role/KarpenterController-demo/1717236000");
    set.decide(&Request::new(&caller, "iam:PassRole", role).with_context(context))
        == Decision::Allowed
}

/// The terraform-aws-eks release ranges whose karpenter module breaks China (domain.md §1a).
const TF_RANGES: [&str; 3] = [
    "before v20.26.1",
    "from v20.26.1 to v20.37.1",
    "from v21.6.0",
];

/// The range a `tf-eks-v<version>` fixture falls in, if it is one that breaks China.
fn terraform_range(file: &str) -> Option<&'static str> {
    let version = file.strip_prefix("tf-eks-v")?;
    let version: Vec<u32> = version
        .split(['.', '-'])
        .map_while(|p| p.parse().ok())
        .collect();
    match version.as_slice() {
        [20, minor, ..] if *minor < 26 => Some(TF_RANGES[0]),
        [20, 26, 0] => Some(TF_RANGES[0]),
        [20, minor, ..] if *minor < 37 => Some(TF_RANGES[1]),
        [20, 37, patch] if *patch < 2 => Some(TF_RANGES[1]),
        [21, minor, ..] if *minor >= 6 => Some(TF_RANGES[2]),
        _ => None,
    }
}

#[test]
fn confirmed_only_where_the_real_policy_denies_the_request_that_failed() {
    let scanner = Scanner::new().unwrap();
    let mut seen = 0;
    let mut outcomes = Vec::new();
    for (file, partition, doc) in policies() {
        let policy = Policy::from_value(&file, &doc).unwrap();
        let role = node_role(&doc, partition);
        let controller = format!("arn:{partition}:iam::{ACCOUNT}:role/KarpenterController-demo");
        let snapshot = json!({"RoleDetailList": [{"Path": "/", "RoleName": "KarpenterController-demo",
            "Arn": controller, "RolePolicyList": [{"PolicyName": "controller", "PolicyDocument": doc}],
            "AttachedManagedPolicies": []}], "Policies": []});
        let facts = SnapshotFacts {
            iam: vec![(
                "iam.json".into(),
                IamSnapshot::parse(&snapshot.to_string()).unwrap(),
            )],
            ..SnapshotFacts::default()
        };
        for (path, service, line) in paths(partition, &role) {
            seen += 1;
            let allowed = engine_allows(&policy, partition, &role, service);
            let mut obs = Observations::default();
            scanner
                .scan("karpenter.log", line.as_bytes(), &mut obs, &mut |_| {})
                .unwrap();
            let items = diagnose(&obs, &facts, None);
            assert_eq!(items.len(), 1, "{file} {path}: {items:#?}");
            let rc = &items[0].status.root_cause;
            let case = format!(
                "{file} {path} (PassedToService {service}): {} {:?} {:?}",
                if allowed { "allowed" } else { "denied" },
                rc.reason,
                rc.confidence
            );
            if allowed {
                // The other path's defect, where there is one, is said: not the cause, a warning.
                let other_denied = paths(partition, &role)
                    .into_iter()
                    .any(|(_, s, _)| !engine_allows(&policy, partition, &role, s));
                let said = serde_json::to_string(&rc.evidence).unwrap();
                assert!(
                    !other_denied || said.contains("warning"),
                    "{case}: the other path's defect is not said:\n{said}"
                );
                assert_ne!(
                    rc.confidence,
                    Confidence::Confirmed,
                    "a false Confirmed: {case}\n{:#?}",
                    rc.evidence
                );
            } else {
                assert_eq!(
                    rc.confidence,
                    Confidence::Confirmed,
                    "{case}\n{:#?}",
                    rc.evidence
                );
                assert!(rc.statement.is_some(), "the statement is named: {case}");
                // The patch lets both paths through.
                let patch = items[0].status.remediation.policy_patch.clone().unwrap();
                let patched: Value = serde_json::from_str(&patch).unwrap();
                let patched = Policy::from_value("patched", &patched)
                    .or_else(|_| {
                        Policy::from_value(
                            "patched",
                            &json!({"Version": "2012-10-17", "Statement": [patched]}),
                        )
                    })
                    .unwrap();
                if let Some(expected) = terraform_range(&file).filter(|_| partition == "aws-cn") {
                    let steps = items[0].status.remediation.steps.join("\n");
                    // Ranges that render another statement are not named.
                    let other_rendering =
                        |r: &str| (r == TF_RANGES[1]) != (expected == TF_RANGES[1]);
                    for range in TF_RANGES.into_iter().filter(|r| other_rendering(r)) {
                        assert!(
                            !steps.contains(range),
                            "{case}: the Terraform hint names {range:?}:\n{steps}"
                        );
                    }
                    assert!(
                        steps.contains(expected),
                        "{case}: no {expected:?}:\n{steps}"
                    );
                }
                for (other, service, _) in paths(partition, &role) {
                    assert!(
                        engine_allows(&patched, partition, &role, service),
                        "{case}: the patch does not allow {other} ({service}):\n{patch}"
                    );
                }
            }
            outcomes.push(case);
        }
    }
    std::fs::create_dir_all(format!("{ROOT}/target/tmp")).unwrap();
    std::fs::write(
        format!("{ROOT}/target/tmp/real-policies.txt"),
        outcomes.join("\n") + "\n",
    )
    .unwrap();
    assert!(seen >= 6, "the fixtures are there: {seen} cases");
}
