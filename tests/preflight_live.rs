//! `preflight --live` against moto through the real SDK clients: the controller role's
//! policies read from live IAM (seed 1 predicted before any launch), and an EC2NodeClass key
//! read from live KMS (a key pending deletion predicted to kill every launch).

mod common;

use common::double::{Double, Reply};
use common::live::*;
use common::moto::Moto;
use serde_json::Value;

fn preflight_live(moto: &Moto, region: &str, args: &[&str]) -> Vec<Value> {
    let extra = ["--aws-max-attempts", "1", "--cluster-name", "demo"];
    let (list, _) = live_at(
        "preflight",
        &moto.endpoint,
        region,
        &[args, &extra].concat(),
    );
    list["items"].as_array().unwrap().clone()
}

/// The predicted Diagnoses `pick` selects: exactly one, its root cause.
fn only(items: &[Value], pick: impl Fn(&Value) -> bool) -> Value {
    let found: Vec<&Value> = items.iter().filter(|d| pick(d)).collect();
    assert_eq!(found.len(), 1, "{items:#?}");
    found[0]["status"]["rootCause"].clone()
}

#[test]
fn seed_1_is_predicted_from_live_iam_before_any_launch() {
    let moto = Moto::start("preflight-china");
    seed_china(&moto);
    let before = moto.requests().len();
    let list = preflight_live(
        &moto,
        "cn-northwest-1",
        &[
            "--controller-role",
            &format!("arn:aws-cn:iam::{ACCOUNT}:role/{CONTROLLER}"),
            "--node-role",
            &format!("arn:aws-cn:iam::{ACCOUNT}:role/{NODE_ROLE}"),
        ],
    );
    let rc = only(&list, |d| d["spec"]["action"] == "iam:PassRole");
    assert_eq!(rc["reason"], "PassedToServiceMismatch");
    assert_eq!(rc["confidence"], "Predicted");
    assert!(rc["evidence"].to_string().contains("live IAM"), "{rc:#}");
    // One role's policies, whatever the number of requests evaluated.
    let requests = moto.requests().len() - before;
    assert!((4..=20).contains(&requests), "{requests} AWS requests");
}

#[test]
fn a_node_class_key_pending_deletion_is_predicted_from_live_kms() {
    let moto = Moto::start("preflight-kms");
    let key = pending_deletion_key(&moto, "us-east-1");
    let dir = scratch("preflight-kms");
    let class = seed2_node_class(&dir, Some(&key));
    let list = preflight_live(
        &moto,
        "us-east-1",
        &[
            &class,
            "--controller-role",
            &format!("arn:aws:iam::{ACCOUNT}:role/{CONTROLLER}"),
        ],
    );
    let rc = only(&list, |d| d["spec"]["kmsKeyArn"] == key.as_str());
    assert_eq!(rc["reason"], "KeyPendingDeletion");
    assert_eq!(rc["confidence"], "Predicted");
}

/// The doctor's policy for one cluster, rendered from live IAM and KMS: the node role with
/// the path IAM gives it (a role ARN without it would not match GetRole's resource), the
/// key the EC2NodeClass names by alias, as its ARN.
#[test]
fn the_doctors_policy_names_the_roles_and_keys_as_live_aws_resolves_them() {
    let moto = Moto::start("preflight-doctor-policy");
    let key = runtime().block_on(async {
        let aws = config(&moto, "us-east-1").await;
        let iam = aws_sdk_iam::Client::new(&aws);
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        for (role, path) in [(CONTROLLER, "/"), ("KarpenterNodeRole-demo", "/karpenter/")] {
            iam.create_role()
                .role_name(role)
                .path(path)
                .assume_role_policy_document(trust)
                .send()
                .await
                .unwrap();
        }
        let kms = aws_sdk_kms::Client::new(&aws);
        let key = kms.create_key().description("ebs").send().await.unwrap();
        let meta = key.key_metadata().unwrap();
        kms.create_alias()
            .alias_name("alias/ebs-demo")
            .target_key_id(meta.key_id())
            .send()
            .await
            .unwrap();
        meta.arn().unwrap().to_string()
    });
    let dir = scratch("preflight-doctor-policy");
    let class = seed2_node_class(&dir, Some("alias/ebs-demo"));
    let controller = format!("arn:aws:iam::{ACCOUNT}:role/{CONTROLLER}");
    let (policy, notes) = live_at(
        "preflight",
        &moto.endpoint,
        "us-east-1",
        &[
            "--doctor-policy",
            &class,
            "--controller-role",
            &controller,
            "--cluster-name",
            "demo",
            "--aws-max-attempts",
            "1",
        ],
    );
    let resources = |sid: &str| {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .map(|s| s["Resource"].clone())
    };
    assert_eq!(
        resources("ReadRoles"),
        Some(serde_json::json!([
            controller,
            format!("arn:aws:iam::{ACCOUNT}:role/karpenter/KarpenterNodeRole-demo")
        ])),
        "{policy:#}"
    );
    assert_eq!(
        resources("ReadKmsKeys"),
        Some(Value::String(key)),
        "{notes}"
    );
    // One account: no reader role of another account to assume.
    assert_eq!(resources("ReadKeysOfOtherAccounts"), None, "{policy:#}");
    assert!(notes.contains("the AMI ami-0a1b2c3d4e5f60718"), "{notes}");
}

/// The region's default EBS key, read live: EBS encryption by default is on (moto), and the
/// default key (`GetEbsDefaultKmsKeyId`, which moto lacks: a double answers with EC2's
/// documented shape) is pending deletion. An EC2NodeClass whose volume names no key is
/// predicted to die of it, and the doctor's policy names it.
#[test]
fn the_default_ebs_key_is_read_live_and_its_state_predicted() {
    let moto = Moto::start("preflight-ebs-default");
    let key = pending_deletion_key(&moto, "us-east-1");
    runtime().block_on(async {
        let ec2 = aws_sdk_ec2::Client::new(&config(&moto, "us-east-1").await);
        ec2.enable_ebs_encryption_by_default().send().await.unwrap();
    });
    let answer = format!(
        "<GetEbsDefaultKmsKeyIdResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>5e3bf8e2-0000-4e55-8d0c-000000000001</requestId><kmsKeyId>{key}</kmsKeyId></GetEbsDefaultKmsKeyIdResponse>"
    );
    let double = Double::start(&moto.endpoint, move |call| match call.operation.as_str() {
        "GetEbsDefaultKmsKeyId" => Reply::Respond(200, "text/xml;charset=UTF-8", answer.clone()),
        _ => Reply::Forward,
    });
    let dir = scratch("preflight-ebs-default");
    let class = seed2_node_class(&dir, None);
    let controller = format!("arn:aws:iam::{ACCOUNT}:role/{CONTROLLER}");
    let args = [
        "--controller-role",
        controller.as_str(),
        "--cluster-name",
        "demo",
    ];
    let (list, _) = live_at(
        "preflight",
        &double.endpoint,
        "us-east-1",
        &[&[class.as_str(), "--aws-max-attempts", "1"], &args[..]].concat(),
    );
    let items = list["items"].as_array().unwrap();
    let rc = only(items, |d| d["spec"]["kmsKeyArn"] == key.as_str());
    assert_eq!(rc["reason"], "KeyPendingDeletion");
    assert_eq!(rc["confidence"], "Predicted");
    assert!(rc.to_string().contains("default EBS key"), "{rc:#}");
    assert_eq!(double.count("GetEbsEncryptionByDefault"), 1);
    assert_eq!(double.count("GetEbsDefaultKmsKeyId"), 1);
    let (policy, _) = live_at(
        "preflight",
        &double.endpoint,
        "us-east-1",
        &[&["--doctor-policy", class.as_str()], &args[..]].concat(),
    );
    let keys = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "ReadKmsKeys")
        .map(|s| s["Resource"].clone());
    assert_eq!(keys, Some(Value::String(key)), "{policy:#}");
}

/// The AMI's snapshot key, read live before any launch: the EC2NodeClass names no key, its
/// AMI's snapshot is encrypted with a key pending deletion (DescribeImages and DescribeSnapshots
/// in EC2's documented shapes, from the double), so every launch is predicted to die of it.
#[test]
fn an_amis_snapshot_key_is_read_live_and_its_state_predicted() {
    let moto = Moto::start("preflight-ami-key");
    let key = pending_deletion_key(&moto, "us-east-1");
    let served = key.clone();
    let double = Double::start(&moto.endpoint, move |call| {
        common::double::kms_ec2(call, &served)
    });
    let dir = scratch("preflight-ami-key");
    let class = seed2_node_class(&dir, None);
    let controller = format!("arn:aws:iam::{ACCOUNT}:role/{CONTROLLER}");
    let (list, _) = live_at(
        "preflight",
        &double.endpoint,
        "us-east-1",
        &[
            &class,
            "--controller-role",
            &controller,
            "--cluster-name",
            "demo",
            "--aws-max-attempts",
            "1",
        ],
    );
    let items = list["items"].as_array().unwrap();
    let rc = only(items, |d| d["spec"]["kmsKeyArn"] == key.as_str());
    assert_eq!(rc["reason"], "KeyPendingDeletion");
    assert_eq!(rc["confidence"], "Predicted");
    assert!(
        rc.to_string()
            .contains("the snapshots of ami-0a1b2c3d4e5f60718"),
        "{rc:#}"
    );
    assert_eq!(double.count("DescribeImages"), 1);
    assert_eq!(double.count("DescribeSnapshots"), 1);
}

/// Live AWS requests grow with the distinct roles and keys, not with the EC2NodeClasses: ten
/// classes sharing one node role and one key ask AWS what one class asks.
#[test]
fn live_requests_grow_with_roles_and_keys_not_with_node_classes() {
    let moto = Moto::start("preflight-scale");
    seed_china(&moto);
    let dir = scratch("preflight-scale");
    let key = format!("arn:aws-cn:kms:cn-northwest-1:{ACCOUNT}:key/1a2b3c4d");
    let one = seed2_node_class(&dir, Some(&key));
    let text = std::fs::read_to_string(&one).unwrap();
    let ten: String = (0..10)
        .map(|i| text.replace("name: encrypted", &format!("name: encrypted-{i}")))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let many = format!("{dir}/ten-classes.yaml");
    std::fs::write(&many, ten).unwrap();
    let controller = format!("arn:aws-cn:iam::{ACCOUNT}:role/{CONTROLLER}");
    let asked = |class: &str| {
        let before = moto.requests().len();
        let (list, _) = live_at(
            "preflight",
            &moto.endpoint,
            "cn-northwest-1",
            &[
                class,
                "--controller-role",
                &controller,
                "--cluster-name",
                "demo",
                "--aws-max-attempts",
                "1",
            ],
        );
        assert!(list["items"].is_array(), "{list:#}");
        moto.requests().len() - before
    };
    let for_one = asked(&one);
    assert!(for_one > 0);
    assert_eq!(asked(&many), for_one, "ten classes, one role and key");
}
