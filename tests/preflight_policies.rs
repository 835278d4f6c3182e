//! `preflight` on the controller policies people really deploy (tests/common/real.rs):
//! - every request of every version, as the engine decides it, agrees with the independent
//!   evaluator;
//! - its PassRole verdict agrees with the real-policy differential: the CreateFleet path is
//!   refused exactly where the policy's PassRole statement (read as text) lacks the
//!   partition's EC2 principal, and that refusal is `PassedToServiceMismatch Predicted`;
//! - Karpenter's own CloudFormation policy of a version allows every request that version
//!   makes (where its PassRole statement names one EC2 principal only, that path aside);
//! - the upgrade v1.0 → v1.15 names what the v1.0 policy lacks, and nothing for v1.14's; every
//!   real policy's answer is on record (tests/fixtures/policies/UPGRADE-v1.0-v1.15.md).

mod common;

use common::real::{ACCOUNT, node_role, policies};
use karpenter_doctor::diagnose::model::{Confidence, ReasonCode};
use karpenter_doctor::facts::SnapshotFacts;
use karpenter_doctor::facts::iam_snapshot::IamSnapshot;
use karpenter_doctor::partition::Partition;
use karpenter_doctor::policy::Decision;
use karpenter_doctor::preflight::catalog::{Catalogue, Version};
use karpenter_doctor::preflight::{self, Matrix, Settings, Verdict, policy_file};
use karpenter_doctor::signal::Observations;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn region(partition: &str) -> &'static str {
    if partition == "aws-cn" {
        "cn-northwest-1"
    } else {
        "us-east-1"
    }
}

fn controller(partition: &str) -> String {
    format!("arn:{partition}:iam::{ACCOUNT}:role/KarpenterController-demo")
}

/// The policy's cluster as the fixtures render it (README: cluster and queue `demo`).
fn settings(partition: &str, doc: &Value, version: Version) -> Settings {
    Settings {
        version,
        partition: Partition::by_id(partition).unwrap(),
        region: region(partition).into(),
        cluster_name: Some("demo".into()),
        controller_role: controller(partition),
        node_role: Some(node_role(doc, partition)),
        interruption_queue: Some("demo".into()),
        cluster_endpoint: false,
        isolated_vpc: false,
        disable_dry_run: false,
        feature_gates: Vec::new(),
    }
}

fn facts(partition: &str, name: &str, doc: &Value) -> SnapshotFacts {
    let snapshot = policy_file::snapshot(&controller(partition), &[(name.into(), doc.clone())]);
    SnapshotFacts {
        iam: vec![(
            name.into(),
            IamSnapshot::parse(&snapshot.to_string()).unwrap(),
        )],
        ..SnapshotFacts::default()
    }
}

fn matrix(file: &str, partition: &str, doc: &Value, version: Version) -> Matrix {
    preflight::evaluate(
        &Catalogue::shipped(),
        &Observations::default(),
        &settings(partition, doc, version),
        &facts(partition, file, doc),
    )
}

const VERSIONS: [Version; 5] = [
    Version(0, 32, 10),
    Version(1, 0, 8),
    Version(1, 6, 4),
    Version(1, 8, 2),
    Version(1, 15, 0),
];

fn decision_name(v: &Verdict) -> Option<&'static str> {
    match v {
        Verdict::Allowed(_) => Some("allowed"),
        Verdict::Refused(Decision::ExplicitDeny, _) => Some("explicitDeny"),
        Verdict::Refused(_, _) => Some("implicitDeny"),
        Verdict::Unknown(_) => None,
    }
}

#[test]
fn every_request_of_every_version_agrees_with_the_independent_evaluator() {
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for (file, partition, doc) in policies() {
        for version in VERSIONS {
            for row in matrix(&file, partition, &doc, version).rows {
                let (Some(req), Some(decision)) = (&row.request, decision_name(&row.verdict))
                else {
                    panic!("{file} {version} {}: not decided", row.template.id);
                };
                let context: BTreeMap<&str, &[String]> = req.context.iter().collect();
                cases.push(
                    json!({"id": format!("{file}@{version}#{}", row.template.id),
                    "principal": req.principal, "action": req.action, "resource": req.resource,
                    "context": context, "identityPolicies": [doc], "boundary": null,
                    "scps": null, "resourcePolicy": null}),
                );
                ours.push(decision);
            }
        }
    }
    let answers = common::oracle::evaluate(&cases);
    let mut disagreements = Vec::new();
    let mut rejected = 0;
    let mut mix: BTreeMap<&str, usize> = BTreeMap::new();
    for ((case, answer), ours) in cases.iter().zip(&answers).zip(&ours) {
        match answer["decision"].as_str() {
            Some(theirs) if theirs == *ours => *mix.entry(ours).or_default() += 1,
            Some(theirs) => {
                disagreements.push(format!("{}: ours {ours}, oracle {theirs}", case["id"]))
            }
            None => rejected += 1,
        }
    }
    println!(
        "preflight requests on real policies: {} cases, agreed {mix:?}, rejected by the oracle {rejected}",
        cases.len()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(
        rejected * 10 <= cases.len(),
        "the oracle took too few cases"
    );
    assert!(mix.get("implicitDeny") > Some(&0) && mix.get("allowed") > Some(&0));
}

/// The services the policy lets the node role be passed to, read from the text (not by the
/// engine): `None` where an Allow statement naming iam:PassRole has no iam:PassedToService
/// condition.
fn passed_to(doc: &Value) -> Option<BTreeSet<String>> {
    let statements = match &doc["Statement"] {
        Value::Array(s) => s.clone(),
        one => vec![one.clone()],
    };
    let mut services = BTreeSet::new();
    for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
        let actions = match &s["Action"] {
            Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        if !actions.iter().any(|a| a == "iam:PassRole") {
            continue;
        }
        match &s["Condition"]["StringEquals"]["iam:PassedToService"] {
            Value::Null => return None,
            Value::Array(list) => {
                services.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_string))
            }
            one => services.extend(one.as_str().map(str::to_string)),
        }
    }
    Some(services)
}

/// Whether passing the role to `service` is refused, by the text.
fn refuses_passing_to(doc: &Value, service: &str) -> bool {
    passed_to(doc).is_some_and(|s| !s.contains(service))
}

#[test]
fn the_pass_role_verdicts_agree_with_the_real_policy_differential() {
    let mut refused_files = Vec::new();
    for (file, partition, doc) in policies() {
        let version = Version(1, 15, 0);
        let m = matrix(&file, partition, &doc, version);
        let launch = m
            .rows
            .iter()
            .find(|r| r.template.id == "launch-pass-role")
            .unwrap();
        let refused = matches!(launch.verdict, Verdict::Refused(..));
        let ec2 = if partition == "aws-cn" {
            "ec2.amazonaws.com.cn"
        } else {
            "ec2.amazonaws.com"
        };
        let expected = refuses_passing_to(&doc, ec2);
        assert_eq!(refused, expected, "{file}: {:?}", launch.verdict);
        let predicted = preflight::predicted(
            &m,
            &Observations::default(),
            &facts(partition, &file, &doc),
            &settings(partition, &doc, version),
        );
        let pass_role: Vec<_> = predicted
            .iter()
            .filter(|d| d.spec.action.as_deref() == Some("iam:PassRole"))
            .collect();
        // The instance-profile path passes the role to ec2.amazonaws.com in every partition.
        if expected || refuses_passing_to(&doc, "ec2.amazonaws.com") {
            refused_files.push(file.clone());
            assert_eq!(pass_role.len(), 1, "{file}");
            let rc = &pass_role[0].status.root_cause;
            assert_eq!(
                (rc.reason, rc.confidence),
                (ReasonCode::PassedToServiceMismatch, Confidence::Predicted),
                "{file}"
            );
        } else {
            assert!(pass_role.is_empty(), "{file}: {pass_role:#?}");
        }
    }
    // China's mismatch is in the fixtures (terraform-aws-eks ranges, a CloudFormation commit).
    assert!(refused_files.len() >= 4, "{refused_files:?}");
}

/// Karpenter's CloudFormation policies and the versions they were published for.
const OWN: [(&str, Version); 6] = [
    ("cfn-v0.32", Version(0, 32, 10)),
    ("cfn-v0.37", Version(0, 37, 0)),
    ("cfn-v1.0", Version(1, 0, 8)),
    ("cfn-v1.1", Version(1, 1, 0)),
    ("cfn-v1.14", Version(1, 14, 0)),
    ("karpenter-controller", Version(1, 9, 0)),
];

#[test]
fn karpenters_own_policy_of_a_version_allows_what_that_version_makes() {
    let mut checked = 0;
    for (file, partition, doc) in policies() {
        let Some((_, version)) = OWN.iter().find(|(prefix, _)| {
            file.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(".aws"))
        }) else {
            continue;
        };
        checked += 1;
        let refused: Vec<String> = matrix(&file, partition, &doc, *version)
            .refused()
            .map(|r| format!("{} {}", r.template.id, r.template.action))
            .collect();
        // Some templates pass the role to one EC2 name only (domain.md §5b): in China one of
        // the two paths is refused.
        let ec2 = Partition::by_id(partition)
            .unwrap()
            .service_principal("ec2");
        let gap = refuses_passing_to(&doc, &ec2) || refuses_passing_to(&doc, "ec2.amazonaws.com");
        let expected: Vec<&str> = if gap {
            vec!["iam:PassRole"]
        } else {
            Vec::new()
        };
        let refused_actions: BTreeSet<&str> = refused
            .iter()
            .map(|r| r.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            refused_actions,
            expected.into_iter().collect(),
            "{file} at {version}: {refused:#?}"
        );
    }
    assert_eq!(checked, 2 * OWN.len());
}

/// The actions `target` newly needs that the policy refuses.
fn newly_refused(
    file: &str,
    partition: &str,
    doc: &Value,
    from: Version,
    target: Version,
) -> BTreeSet<String> {
    let before = matrix(file, partition, doc, from);
    matrix(file, partition, doc, target)
        .newly_refused(&before)
        .map(|r| r.template.action.clone())
        .collect()
}

#[test]
fn the_upgrade_check_names_what_each_policy_lacks() {
    let policies = policies();
    let doc_of = |name: &str| {
        policies
            .iter()
            .find(|(f, _, _)| f == name)
            .map(|(_, _, d)| d.clone())
            .unwrap()
    };
    let upgrade = |file: &str, from: Version| {
        let doc = doc_of(file);
        let lacks = newly_refused(file, "aws", &doc, from, Version(1, 15, 0));
        (doc, lacks)
    };
    let (v1_0, lacks) = upgrade("cfn-v1.0.aws.json", Version(1, 0, 8));
    // v1.7 lists instance profiles (garbage collection), v1.12 reads instance status; the
    // v1.0 template grants neither.
    for action in ["iam:ListInstanceProfiles", "ec2:DescribeInstanceStatus"] {
        assert!(
            !v1_0.to_string().contains(action),
            "the fixture grants {action}"
        );
        assert!(lacks.contains(action), "{action} not named: {lacks:?}");
    }
    // v1.14's template was written for what v1.14 makes; v1.15 adds only the gated reboot.
    let (_, lacks) = upgrade("cfn-v1.14.aws.json", Version(1, 14, 0));
    assert!(lacks.is_empty(), "{lacks:?}");
}

/// The upgrade answer v1.0.8 → v1.15.0 for every real policy, on record in
/// tests/fixtures/policies/UPGRADE-v1.0-v1.15.md (reviewed by hand; `UPDATE_GOLDEN=1` writes
/// it): what v1.15 newly needs that the policy refuses, by action.
#[test]
fn every_real_policy_has_its_upgrade_answer_on_record() {
    let mut table = String::from(
        "# What Karpenter v1.15.0 newly needs that each real policy refuses (from v1.0.8)\n\n\
         Written by `tests/preflight_policies.rs` (`UPDATE_GOLDEN=1`), reviewed by hand: for each\n\
         controller policy in this directory and `real/`, the requests v1.15.0 makes and v1.0.8\n\
         did not (for the same EC2NodeClass) that the policy refuses, by action.\n\n\
         | policy | partition | newly needed and refused |\n|---|---|---|\n",
    );
    for (file, partition, doc) in policies() {
        let lacks = newly_refused(&file, partition, &doc, Version(1, 0, 8), Version(1, 15, 0));
        let lacks: Vec<String> = lacks.into_iter().map(|a| format!("`{a}`")).collect();
        table += &format!(
            "| {file} | {partition} | {} |\n",
            if lacks.is_empty() {
                "nothing".to_string()
            } else {
                lacks.join(", ")
            }
        );
    }
    let path = format!(
        "{}/tests/fixtures/policies/UPGRADE-v1.0-v1.15.md",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &table).unwrap();
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        recorded, table,
        "{path} differs (UPDATE_GOLDEN=1 rewrites it)"
    );
}
