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
    let (list, _) = explain_live(&moto, "cn-northwest-1", &[&log]);
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
    println!("amplification: 600 failures of one cause -> {requests} AWS requests");
    assert_eq!(list["items"][0]["status"]["occurrences"], 600);
    assert!(
        requests <= 25,
        "{requests} requests:\n{}",
        moto.requests()[before..].join("\n")
    );
}

#[test]
fn a_key_pending_deletion_named_by_the_node_class_is_confirmed_from_live_kms() {
    let moto = Moto::start("kms");
    let key = runtime().block_on(async {
        let kms = aws_sdk_kms::Client::new(&config(&moto, "us-east-1").await);
        let key = kms.create_key().description("ebs").send().await.unwrap();
        let meta = key.key_metadata().unwrap();
        // moto's ScheduleKeyDeletion takes the key id only (real KMS takes either).
        kms.schedule_key_deletion()
            .key_id(meta.key_id())
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        meta.arn().unwrap().to_string()
    });
    let dir = scratch("kms");
    let cmk = format!("{ROOT}/examples/cross-account-cmk");
    let class = std::fs::read_to_string(format!("{cmk}/ec2nodeclass.yaml"))
        .unwrap()
        .replace(
            "arn:aws:kms:us-east-1:444455556666:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            &key,
        );
    std::fs::write(format!("{dir}/ec2nodeclass.yaml"), class).unwrap();
    let instances = format!("{cmk}/describe-instances.json");
    let sa = format!("{cmk}/serviceaccount.yaml");
    let (list, _) = explain_live(
        &moto,
        "us-east-1",
        &[&format!("{dir}/ec2nodeclass.yaml"), &instances, &sa],
    );
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
