//! `explain --live` against a real AWS emulator (moto, server mode, on loopback) through the
//! real SDK clients: the seed stories set up in moto, request amplification measured in moto's
//! own request log, and AWS faults. moto lacks SimulatePrincipalPolicy: the engine decides.

mod common;

use common::live::*;
use common::moto::Moto;
use serde_json::Value;
use std::process::Command;

#[test]
fn the_china_story_is_confirmed_from_live_iam_through_the_engine_fallback() {
    let moto = Moto::start("china");
    seed_china(&moto);
    let dir = scratch("china");
    let log = china_log(&dir, 3);
    let (list, stderr) = explain_live(&moto, "cn-northwest-1", &[&log, "--verbose"]);
    assert!(
        stderr.contains("karpenter-doctor: AWS caller arn:aws")
            && stderr.contains("karpenter-doctor: aws iam:GetRole ok x1"),
        "--verbose says who the doctor is and what it asked: {stderr}"
    );
    let d = &list["items"][0];
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        d["spec"]["principalArn"],
        format!("arn:aws-cn:iam::{ACCOUNT}:role/{CONTROLLER}")
    );
    let rc = &d["status"]["rootCause"];
    assert_eq!(rc["reason"], "PassedToServiceMismatch");
    assert_eq!(rc["confidence"], "Confirmed");
    assert_eq!(rc["statement"]["sid"], "AllowPassingInstanceRole");
    let evidence = rc["evidence"].to_string();
    assert!(evidence.contains("live IAM"), "{evidence}");
    assert!(
        evidence.contains("iam:SimulatePrincipalPolicy") && evidence.contains("unavailable"),
        "the fallback is said: {evidence}"
    );
    let patch = d["status"]["remediation"]["policyPatch"].as_str().unwrap();
    assert!(patch.contains("ec2.amazonaws.com.cn"), "{patch}");
}

#[test]
fn six_hundred_failures_of_one_cause_cost_a_bounded_number_of_aws_requests() {
    let moto = Moto::start("amplification");
    seed_china(&moto);
    let before = moto.requests().len();
    let dir = scratch("amplification");
    let log = china_log(&dir, 600);
    let (list, _) = explain_live(&moto, "cn-northwest-1", &[&log]);
    let requests = moto.requests().len() - before;
    println!(
        "amplification: 600 failures of one cause -> {requests} AWS requests (1 attempt per call)"
    );
    assert_eq!(list["items"][0]["status"]["occurrences"], 600);
    // GetRole, ListRolePolicies, ListAttachedRolePolicies, GetPolicy, GetPolicyVersion and one
    // SimulatePrincipalPolicy per EC2 principal: 7.
    assert!(
        (7..=25).contains(&requests),
        "{requests} requests:\n{}",
        moto.requests()[before..].join("\n")
    );
    // With the default retries: moto answers SimulatePrincipalPolicy with a 500, retried.
    let before = moto.requests().len();
    let (list, _) = explain_at(&moto.endpoint, "cn-northwest-1", &[&log]);
    let requests = moto.requests().len() - before;
    println!(
        "amplification: 600 failures of one cause -> {requests} AWS requests (default 3 attempts)"
    );
    assert_eq!(
        list["items"][0]["status"]["rootCause"]["confidence"],
        "Confirmed"
    );
    assert!((7..=25).contains(&requests), "{requests} requests");
}

#[test]
fn a_key_pending_deletion_named_by_the_node_class_is_confirmed_from_live_kms() {
    let moto = Moto::start("kms");
    let key = pending_deletion_key(&moto, "us-east-1");
    let dir = scratch("kms");
    let class = seed2_node_class(&dir, Some(&key));
    let cmk = format!("{ROOT}/examples/cross-account-cmk");
    let instances = format!("{cmk}/describe-instances.json");
    let sa = format!("{cmk}/serviceaccount.yaml");
    let (list, _) = explain_live(&moto, "us-east-1", &[&class, &instances, &sa]);
    let d = &list["items"][0];
    assert_eq!(d["spec"]["kmsKeyArn"], key.as_str());
    assert_eq!(d["status"]["rootCause"]["reason"], "KeyPendingDeletion");
    assert_eq!(d["status"]["rootCause"]["confidence"], "Confirmed");
    let commands = d["status"]["remediation"]["commands"].to_string();
    assert!(
        commands.contains(&format!(
            "aws kms cancel-key-deletion --region us-east-1 --key-id {key}"
        )),
        "{commands}"
    );
}

#[test]
fn a_denied_or_unreachable_aws_leaves_the_diagnosis_inferred_and_says_why() {
    // Nothing listens on this port: every lookup fails fast, nothing panics, the text decides.
    let port = common::free_port();
    let dir = scratch("unreachable");
    let log = china_log(&dir, 2);
    let out = Command::new(BIN)
        .args([
            "explain",
            &log,
            "--live",
            "--region",
            "cn-northwest-1",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
            "--aws-max-attempts",
            "1",
            "-o",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rc = &list["items"][0]["status"]["rootCause"];
    assert_eq!(rc["reason"], "PassedToServiceMismatch");
    assert_eq!(rc["confidence"], "Inferred");
    assert!(
        rc["evidence"].to_string().contains("iam:GetRole error"),
        "{}",
        rc["evidence"]
    );
}

fn doctor(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

#[test]
fn snapshots_written_from_live_aws_give_the_same_diagnosis_offline() {
    let moto = Moto::start("snapshot");
    seed_china(&moto);
    let key = pending_deletion_key(&moto, "cn-northwest-1");
    let dir = scratch("snapshot");
    let log = china_log(&dir, 3);
    let (live, _) = explain_live(&moto, "cn-northwest-1", &[&log]);
    let aws = [
        "--region",
        "cn-northwest-1",
        "--endpoint-url",
        &moto.endpoint,
    ];
    // The roles come from the log, as `explain --live` would fetch them.
    let iam = format!("{dir}/iam.json");
    let out = doctor(&[&["snapshot", "iam", &log, "--out", &iam][..], &aws].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kms = format!("{dir}/kms.json");
    let out = doctor(&[&["snapshot", "kms", "--key", &key, "--out", &kms][..], &aws].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot: Value = serde_json::from_str(&std::fs::read_to_string(&kms).unwrap()).unwrap();
    assert_eq!(
        snapshot["Keys"][0]["KeyMetadata"]["KeyState"],
        "PendingDeletion"
    );
    assert!(snapshot["Keys"][0]["Policy"].is_string(), "{snapshot:#}");

    let out = doctor(&[
        "explain",
        &log,
        "--iam-snapshot",
        &iam,
        "--kms-snapshot",
        &kms,
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (a, b) = (&live["items"][0], &offline["items"][0]);
    assert_eq!(a["metadata"]["name"], b["metadata"]["name"]);
    for field in ["reason", "confidence", "statement", "summary"] {
        assert_eq!(
            a["status"]["rootCause"][field], b["status"]["rootCause"][field],
            "{field}"
        );
    }
    assert_eq!(a["status"]["remediation"], b["status"]["remediation"]);

    // Nothing to fetch, or nothing fetched: exit 1 with the reason.
    let out = doctor(&[&["snapshot", "iam"][..], &aws].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to fetch"));
    let missing = format!("arn:aws-cn:iam::{ACCOUNT}:role/NoSuchRole");
    let out = doctor(&[&["snapshot", "iam", "--role", &missing][..], &aws].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("iam:GetRole error: NoSuchEntity"));
}

#[test]
fn a_key_of_another_account_is_read_through_the_assumed_role() {
    let moto = Moto::start("assume");
    const OTHER: &str = "444455556666";
    let reader = format!("arn:aws:iam::{OTHER}:role/karpenter-doctor-kms-reader");
    let key = runtime().block_on(async {
        let sts = aws_sdk_sts::Client::new(&config(&moto, "us-east-1").await);
        let assumed = sts
            .assume_role()
            .role_arn(&reader)
            .role_session_name("setup")
            .send()
            .await
            .unwrap();
        let c = assumed.credentials().unwrap();
        let other = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&moto.endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "assumed",
            ))
            .load()
            .await;
        let kms = aws_sdk_kms::Client::new(&other);
        let key = kms
            .create_key()
            .description("shared ebs")
            .send()
            .await
            .unwrap();
        let meta = key.key_metadata().unwrap();
        kms.disable_key()
            .key_id(meta.key_id())
            .send()
            .await
            .unwrap();
        meta.arn().unwrap().to_string()
    });
    assert!(
        key.contains(&format!(":{OTHER}:key/")),
        "moto made the key in the other account: {key}"
    );
    let dir = scratch("assume");
    let cmk = format!("{ROOT}/examples/cross-account-cmk");
    let inputs = [
        seed2_node_class(&dir, Some(&key)),
        format!("{cmk}/describe-instances.json"),
        format!("{cmk}/serviceaccount.yaml"),
    ];
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let spec = format!("{OTHER}={reader}");
    let (list, _) = explain_live(
        &moto,
        "us-east-1",
        &[&inputs[..], &["--assume-role", &spec]].concat(),
    );
    let rc = &list["items"][0]["status"]["rootCause"];
    assert_eq!(rc["reason"], "KeyDisabled", "{rc:#}");
    assert_eq!(rc["confidence"], "Confirmed");
    assert!(
        rc["evidence"]
            .to_string()
            .contains(&format!("live KMS as {reader}")),
        "{rc:#}"
    );
    // With the doctor's own credentials the other account's key cannot be read.
    let (list, _) = explain_live(&moto, "us-east-1", &inputs);
    let rc = &list["items"][0]["status"]["rootCause"];
    assert_eq!(rc["confidence"], "Inferred", "{rc:#}");
    assert!(
        rc["evidence"].to_string().contains("kms:DescribeKey"),
        "{rc:#}"
    );
}

#[test]
fn a_role_of_another_account_is_not_read_from_the_doctors_own() {
    // GetRole takes a name: moto's account answers for the role of account 999999999999.
    let moto = Moto::start("other-account");
    seed_china(&moto);
    let dir = scratch("other-account");
    let log = china_log(&dir, 1);
    let text = std::fs::read_to_string(&log)
        .unwrap()
        .replace(ACCOUNT, "999999999999");
    std::fs::write(&log, text).unwrap();
    let (list, _) = explain_live(&moto, "cn-northwest-1", &[&log]);
    let rc = &list["items"][0]["status"]["rootCause"];
    assert_eq!(rc["confidence"], "Inferred", "{rc:#}");
    assert!(
        rc["evidence"].to_string().contains("arn:aws-cn:iam::999999999999:role/KarpenterController-demo is in another account than the doctor's credentials"),
        "{rc:#}"
    );
}
