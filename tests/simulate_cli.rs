//! `karpenter-doctor simulate` end to end: the real binary on the policy fixtures, its JSON
//! contract (§1), exit codes, and error messages that name the file and JSON path.

use serde_json::Value;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/policies");
const SESSION: &str =
    "arn:aws-cn:sts::111122223333:assumed-role/KarpenterController-demo/1700000000";

fn simulate(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("simulate")
        .args(args)
        .output()
        .expect("run karpenter-doctor")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn pass_role(policy: &str, node_role: &str, service: &str, output: &str) -> Output {
    let policy = format!("{FIXTURES}/{policy}");
    let context = format!("iam:PassedToService={service}");
    simulate(&[
        "--policy",
        &policy,
        "--principal",
        SESSION,
        "--action",
        "iam:PassRole",
        "--resource",
        node_role,
        "--context",
        &context,
        "-o",
        output,
    ])
}

const TF_NODE_ROLE: &str =
    "arn:aws-cn:iam::111122223333:role/Karpenter-demo-20240604092512345600000001";

#[test]
fn the_broken_terraform_policy_denies_pass_role_to_the_china_ec2_principal() {
    let v = json(&pass_role(
        "tf-eks-v20.13-karpenter-controller.aws-cn.json",
        TF_NODE_ROLE,
        "ec2.amazonaws.com.cn",
        "json",
    ));
    assert_eq!(v["decision"], "implicitDeny");
    assert_eq!(v["denial"]["reason"], "PassedToServiceMismatch");
    assert_eq!(v["denial"]["statement"]["sid"], "AllowPassingInstanceRole");
    let statements = v["statements"].as_array().unwrap();
    let pass = statements
        .iter()
        .find(|s| s["sid"] == "AllowPassingInstanceRole")
        .unwrap();
    assert_eq!(pass["actionMatched"], true);
    assert_eq!(pass["resourceMatched"], true);
    assert_eq!(
        pass["conditions"][0]["requestValues"][0],
        "ec2.amazonaws.com.cn"
    );
    assert_eq!(pass["conditions"][0]["matched"], false);
    assert_eq!(
        statements.len(),
        15,
        "every statement of the policy is explained"
    );
}

#[test]
fn the_same_policy_allows_the_global_ec2_principal() {
    let v = json(&pass_role(
        "tf-eks-v20.13-karpenter-controller.aws-cn.json",
        TF_NODE_ROLE,
        "ec2.amazonaws.com",
        "json",
    ));
    assert_eq!(v["decision"], "allowed");
    assert!(v.get("denial").is_none());
}

#[test]
fn karpenters_own_policy_allows_both_principals_in_china() {
    let node_role = "arn:aws-cn:iam::111122223333:role/KarpenterNodeRole-demo";
    for service in ["ec2.amazonaws.com.cn", "ec2.amazonaws.com"] {
        let v = json(&pass_role(
            "karpenter-v1-iam-integration.aws-cn.json",
            node_role,
            service,
            "json",
        ));
        assert_eq!(v["decision"], "allowed", "{service}");
    }
}

#[test]
fn text_output_explains_the_near_miss_in_words() {
    let out = pass_role(
        "tf-eks-v20.13-karpenter-controller.aws-cn.json",
        TF_NODE_ROLE,
        "ec2.amazonaws.com.cn",
        "text",
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("DENIED (implicit deny"), "{text}");
    assert!(text.contains("Reason: PassedToServiceMismatch"), "{text}");
    assert!(text.contains("\"AllowPassingInstanceRole\""), "{text}");
    assert!(text.contains("request: [ec2.amazonaws.com.cn]"), "{text}");
}

#[test]
fn a_boundary_an_scp_level_and_a_resource_policy_are_all_taken_into_account() {
    let dir = tempdir("layers");
    let write = |name: &str, body: &str| {
        let path = format!("{dir}/{name}");
        std::fs::write(&path, body).unwrap();
        path
    };
    let identity = write(
        "id.json",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#,
    );
    let boundary = write(
        "b.json",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}}"#,
    );
    let scp = write(
        "scp.json",
        r#"[{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}},{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"kms:ScheduleKeyDeletion","Resource":"*"}}]"#,
    );
    let key_policy = write(
        "key.json",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}}"#,
    );
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let run = |action: &str| {
        json(&simulate(&[
            "--policy",
            &identity,
            "--boundary",
            &boundary,
            "--scp",
            &scp,
            "--resource-policy",
            &key_policy,
            "--principal",
            "arn:aws:sts::111122223333:assumed-role/app/s",
            "--action",
            action,
            "--resource",
            key,
            "-o",
            "json",
        ]))
    };
    assert_eq!(run("kms:Decrypt")["decision"], "allowed");
    let encrypt = run("kms:Encrypt");
    assert_eq!(
        (
            encrypt["decision"].as_str(),
            encrypt["denial"]["reason"].as_str()
        ),
        (Some("implicitDeny"), Some("PermissionsBoundaryDeny"))
    );
    let delete = run("kms:ScheduleKeyDeletion");
    assert_eq!(
        (
            delete["decision"].as_str(),
            delete["denial"]["reason"].as_str()
        ),
        (Some("explicitDeny"), Some("ServiceControlPolicyDeny"))
    );
}

#[test]
fn a_principals_policies_come_from_an_iam_snapshot() {
    let dir = tempdir("snapshot");
    let doc = std::fs::read_to_string(format!(
        "{FIXTURES}/tf-eks-v20.13-karpenter-controller.aws-cn.json"
    ))
    .unwrap();
    let encoded: String = doc
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let snapshot = serde_json::json!({
        "RoleDetailList": [{"RoleName": "KarpenterController-demo", "Path": "/", "Arn": "arn:aws-cn:iam::111122223333:role/KarpenterController-demo",
            "RolePolicyList": [{"PolicyName": "controller", "PolicyDocument": encoded}], "AttachedManagedPolicies": []}],
        "Policies": []
    });
    let path = format!("{dir}/auth.json");
    std::fs::write(&path, snapshot.to_string()).unwrap();
    let v = json(&simulate(&[
        "--iam-snapshot",
        &path,
        "--principal",
        SESSION,
        "--action",
        "iam:PassRole",
        "--resource",
        TF_NODE_ROLE,
        "--context",
        "iam:PassedToService=ec2.amazonaws.com.cn",
        "-o",
        "json",
    ]));
    assert_eq!(v["denial"]["reason"], "PassedToServiceMismatch");
    assert_eq!(v["denial"]["statement"]["policy"], "inline:controller");
}

#[test]
fn unreadable_or_invalid_inputs_exit_1_naming_the_file_and_path() {
    let missing = simulate(&[
        "--policy",
        "/nonexistent/p.json",
        "--principal",
        SESSION,
        "--action",
        "iam:PassRole",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/p.json"));

    let dir = tempdir("invalid");
    let bad = format!("{dir}/bad.json");
    std::fs::write(&bad, r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Permit","Action":"*","Resource":"*"}]}"#).unwrap();
    let out = simulate(&[
        "--policy",
        &bad,
        "--principal",
        SESSION,
        "--action",
        "iam:PassRole",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json") && err.contains("$.Statement[1].Effect"),
        "{err}"
    );

    let identity_with_principal = format!("{dir}/principal.json");
    std::fs::write(
        &identity_with_principal,
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#,
    )
    .unwrap();
    let out = simulate(&[
        "--policy",
        &identity_with_principal,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only resource policies may have Principal")
    );

    let not_utf8 = format!("{dir}/binary.json");
    std::fs::write(&not_utf8, [0xff, 0xfe, 0x00, 0x7b]).unwrap();
    let out = simulate(&[
        "--policy",
        &not_utf8,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"));
}

#[test]
fn usage_errors_exit_2() {
    let out = simulate(&[
        "--principal",
        SESSION,
        "--action",
        "iam:PassRole",
        "--context",
        "no-equals-sign",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = simulate(&["--action", "iam:PassRole"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A fresh scratch directory under the target dir, for one test.
fn tempdir(name: &str) -> String {
    let dir = format!("{}/simulate-cli-{name}", env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
