//! `preflight --live` against moto through the real SDK clients: the controller role's
//! policies read from live IAM (seed 1 predicted before any launch), and an EC2NodeClass key
//! read from live KMS (a key pending deletion predicted to kill every launch).

mod common;

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
