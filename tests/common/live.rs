//! What the live-AWS tests share: SDK configuration for the emulator, the seed-1 story set up
//! in moto, its Karpenter log, and `explain --live` run as a process.

use super::moto::Moto;
use aws_config::BehaviorVersion;
use serde_json::Value;
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

pub async fn config(moto: &Moto, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "static",
        ))
        .load()
        .await
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn scratch(name: &str) -> String {
    let dir = format!("{}/live-{name}", env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn explain_live(moto: &Moto, region: &str, args: &[&str]) -> (Value, String) {
    explain_at(
        &moto.endpoint,
        region,
        &[args, &["--aws-max-attempts", "1"]].concat(),
    )
}

/// `explain --live -o json` against `endpoint`; it must exit 0.
pub fn explain_at(endpoint: &str, region: &str, args: &[&str]) -> (Value, String) {
    live_at("explain", endpoint, region, args)
}

/// `COMMAND --live -o json` against `endpoint` with static credentials; it must exit 0.
pub fn live_at(command: &str, endpoint: &str, region: &str, args: &[&str]) -> (Value, String) {
    let out = Command::new(BIN)
        .arg(command)
        .args(args)
        .args([
            "--live",
            "--region",
            region,
            "--endpoint-url",
            endpoint,
            "-o",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

pub const CONTROLLER: &str = "KarpenterController-demo";
pub const NODE_ROLE: &str = "Karpenter-demo-20240604092512345600000001";

/// The seed-1 story in cn-northwest-1: the terraform-aws-eks v20.13 controller policy whose
/// PassRole condition names only ec2.amazonaws.com.
pub fn seed_china(moto: &Moto) {
    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&config(moto, "cn-northwest-1").await);
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com.cn"},"Action":"sts:AssumeRole"}]}"#;
        for role in [CONTROLLER, NODE_ROLE] {
            iam.create_role().role_name(role).assume_role_policy_document(trust).send().await.unwrap();
        }
        let doc = std::fs::read_to_string(format!("{ROOT}/tests/fixtures/policies/tf-eks-v20.13-karpenter-controller.aws-cn.json")).unwrap().replace("111122223333", ACCOUNT);
        let policy = iam.create_policy().policy_name("KarpenterController-demo").policy_document(doc).send().await.unwrap();
        let arn = policy.policy().unwrap().arn().unwrap().to_string();
        assert!(arn.starts_with("arn:aws-cn:iam::"), "moto keeps a separate aws-cn IAM: {arn}");
        iam.attach_role_policy().role_name(CONTROLLER).policy_arn(arn).send().await.unwrap();
    });
}

pub fn china_log(dir: &str, failures: usize) -> String {
    let mut text = String::new();
    for i in 0..failures {
        let claim = format!("default-{:05}", i % 40);
        let error = format!(
            "launching nodeclaim, creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws-cn:sts::{ACCOUNT}:assumed-role/{CONTROLLER}/1717236000 is not authorized to perform: iam:PassRole on resource: arn:aws-cn:iam::{ACCOUNT}:role/{NODE_ROLE} because no identity-based policy allows the iam:PassRole action."
        );
        let line = serde_json::json!({"level": "ERROR", "time": format!("2024-06-04T09:{:02}:{:02}.000Z", 30 + i / 60 % 30, i % 60), "logger": "controller",
            "message": "Reconciler error", "controller": "nodeclaim.lifecycle", "NodeClaim": {"name": claim}, "error": error});
        text += &format!("{line}\n");
    }
    let path = format!("{dir}/karpenter.log");
    std::fs::write(&path, text).unwrap();
    path
}

/// A KMS key in moto's default account, scheduled for deletion; its ARN.
pub fn pending_deletion_key(moto: &Moto, region: &str) -> String {
    runtime().block_on(async {
        let kms = aws_sdk_kms::Client::new(&config(moto, region).await);
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
    })
}

/// The seed-2 EC2NodeClass written into `dir` with its kmsKeyID set to `key`, or without one
/// (only the AMI then names the key); its path.
pub fn seed2_node_class(dir: &str, key: Option<&str>) -> String {
    const SEED_KEY: &str =
        "arn:aws:kms:us-east-1:444455556666:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    let text = std::fs::read_to_string(format!(
        "{ROOT}/examples/cross-account-cmk/ec2nodeclass.yaml"
    ))
    .unwrap();
    let class: String = match key {
        Some(key) => text.replace(SEED_KEY, key),
        None => text
            .lines()
            .filter(|l| !l.contains("kmsKeyID"))
            .map(|l| format!("{l}\n"))
            .collect(),
    };
    let path = format!("{dir}/ec2nodeclass.yaml");
    std::fs::write(&path, class).unwrap();
    path
}

/// The port a controller started with `127.0.0.1:0` says (in its log) it serves `what` on
/// ("metrics", "health probes"); none before it listens. Ports chosen by the kernel at bind time
/// cannot be taken by another process between asking and binding, as a port asked for in advance
/// can.
pub fn served_port(log: &std::path::Path, what: &str) -> Option<u16> {
    let marker = format!("serving {what} on ");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let rest = &l[l.find(&marker)? + marker.len()..];
            let address: String = rest.chars().take_while(|c| *c != '"').collect();
            address.rsplit(':').next()?.parse().ok()
        })
}

/// The text a controller serves on `/metrics` at `port` (empty when it does not answer).
pub fn scrape(port: Option<u16>) -> String {
    http_get(port, "/metrics")
}

/// The whole HTTP/1.1 response (status line, headers, body) to `GET path` on a loopback port;
/// empty when there is no port or nothing answers.
pub fn http_get(port: Option<u16>, path: &str) -> String {
    use std::io::{Read, Write};
    let Some(Ok(mut conn)) = port.map(|p| std::net::TcpStream::connect(("127.0.0.1", p))) else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let _ = conn.write_all(request.as_bytes());
    let mut text = String::new();
    let _ = conn.read_to_string(&mut text);
    text
}
