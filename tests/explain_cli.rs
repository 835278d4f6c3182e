//! `karpenter-doctor explain` end to end on the bundled stories: the seed diagnoses with their
//! fixes, the contract §2 list shape, byte-for-byte determinism, and bad input handling.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn explain(args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(ROOT)
        .arg("explain")
        .args(args)
        .output()
        .expect("run karpenter-doctor")
}

const CHINA: [&str; 4] = [
    "examples/china-passrole/karpenter.log",
    "examples/china-passrole/serviceaccount.yaml",
    "--iam-snapshot",
    "examples/china-passrole/iam-snapshot.json",
];

const CMK: [&str; 8] = [
    "examples/cross-account-cmk/describe-instances.json",
    "examples/cross-account-cmk/nodeclaims.json",
    "examples/cross-account-cmk/ec2nodeclass.yaml",
    "examples/cross-account-cmk/serviceaccount.yaml",
    "--iam-snapshot",
    "examples/cross-account-cmk/iam-snapshot.json",
    "--kms-snapshot",
    "examples/cross-account-cmk/kms-snapshot.json",
];

fn items(args: &[&str]) -> Vec<Value> {
    let out = explain(&[args, &["-o", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("List"))
    );
    list["items"].as_array().unwrap().clone()
}

#[test]
fn the_china_story_is_a_confirmed_passed_to_service_mismatch_with_the_cn_principal_in_the_fix() {
    let items = items(&CHINA);
    assert_eq!(items.len(), 1, "four log lines, one root cause");
    let d = &items[0];
    assert_eq!(d["apiVersion"], "karpenter-doctor.io/v1alpha1");
    assert_eq!(d["kind"], "Diagnosis");
    assert!(
        d["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("pass-role-denied-")
    );
    assert_eq!(d["spec"]["category"], "PassRoleDenied");
    assert_eq!(
        d["spec"]["principalArn"], "arn:aws-cn:iam::111122223333:role/KarpenterController-demo",
        "the role, not the session"
    );
    assert_eq!(d["spec"]["partition"], "aws-cn");
    let status = &d["status"];
    assert_eq!(status["rootCause"]["reason"], "PassedToServiceMismatch");
    assert_eq!(status["rootCause"]["confidence"], "Confirmed");
    assert_eq!(
        status["rootCause"]["statement"]["sid"],
        "AllowPassingInstanceRole"
    );
    assert_eq!(status["occurrences"], 4);
    assert_eq!(status["firstSeen"], "2024-06-04T09:30:01Z");
    assert_eq!(status["lastSeen"], "2024-06-04T09:31:02Z");
    assert_eq!(
        status["affectedNodeClaims"],
        serde_json::json!(["default-8x2kq", "default-q4m7z"])
    );
    let patch: Value =
        serde_json::from_str(status["remediation"]["policyPatch"].as_str().unwrap()).unwrap();
    assert_eq!(
        patch["Condition"]["StringEquals"]["iam:PassedToService"],
        serde_json::json!(["ec2.amazonaws.com", "ec2.amazonaws.com.cn"])
    );
    let commands = status["remediation"]["commands"].as_array().unwrap();
    assert!(commands.iter().any(|c| c.as_str().unwrap().starts_with(
        "aws iam create-policy-version --policy-arn arn:aws-cn:iam::111122223333:policy/KarpenterController-20240604092512345600000002"
    )));
    let conditions = status["conditions"].as_array().unwrap();
    assert_eq!(conditions[0]["type"], "Diagnosed");
    assert_eq!(conditions[0]["status"], "True");
    assert_eq!(conditions[0]["reason"], "PassedToServiceMismatch");
}

#[test]
fn without_facts_the_china_story_is_only_inferred() {
    let items = items(&CHINA[..2]);
    assert_eq!(
        items[0]["status"]["rootCause"]["reason"],
        "PassedToServiceMismatch"
    );
    assert_eq!(items[0]["status"]["rootCause"]["confidence"], "Inferred");
    assert!(items[0]["status"]["rootCause"].get("statement").is_none());
}

#[test]
fn the_cross_account_key_story_is_a_confirmed_key_access_not_granted_with_a_grant_command() {
    let items = items(&CMK);
    assert_eq!(items.len(), 1);
    let d = &items[0];
    assert_eq!(d["spec"]["category"], "KmsKeyUnusable");
    assert_eq!(d["spec"]["errorCode"], "Client.InvalidKMSKey.InvalidState");
    assert_eq!(
        d["spec"]["kmsKeyArn"],
        "arn:aws:kms:us-east-1:444455556666:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    );
    assert_eq!(
        d["spec"]["principalArn"],
        "arn:aws:iam::111122223333:role/KarpenterController-demo"
    );
    assert_eq!(d["status"]["rootCause"]["reason"], "KeyAccessNotGranted");
    assert_eq!(d["status"]["rootCause"]["confidence"], "Confirmed");
    assert_eq!(
        d["status"]["affectedNodeClaims"],
        serde_json::json!(["encrypted-m9x4c", "encrypted-7k2lp"])
    );
    let grant = d["status"]["remediation"]["commands"][0].as_str().unwrap();
    assert!(grant.starts_with("aws kms create-grant --region us-east-1 --key-id arn:aws:kms:us-east-1:444455556666:key/"), "{grant}");
    assert!(
        grant.contains(
            "--grantee-principal arn:aws:iam::111122223333:role/KarpenterController-demo"
        ),
        "{grant}"
    );
}

#[test]
fn the_same_input_gives_the_same_bytes_whatever_the_input_order() {
    let run = |args: &[&str]| explain(&[args, &["-o", "yaml"]].concat()).stdout;
    let first = run(&CMK);
    assert!(!first.is_empty());
    assert_eq!(first, run(&CMK));
    let mut reordered = CMK;
    reordered.swap(0, 3);
    reordered.swap(1, 2);
    assert_eq!(first, run(&reordered));
}

#[test]
fn the_text_report_names_reason_fix_and_commands() {
    let out = explain(&CHINA);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "1 root cause found (4 signals)",
        "PassedToServiceMismatch (Confirmed)",
        "Fix:",
        "aws iam create-policy-version",
        "Runbook: docs/runbooks/PassedToServiceMismatch.md",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(!text.contains('\x1b'), "no colour when not on a terminal");
}

#[test]
fn standard_input_is_read_when_no_input_or_dash_is_given() {
    let log = std::fs::read(format!("{ROOT}/examples/china-passrole/karpenter.log")).unwrap();
    for args in [vec!["-o", "json"], vec!["-", "-o", "json"]] {
        let mut child = Command::new(BIN)
            .arg("explain")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&log).unwrap();
        let out = child.wait_with_output().unwrap();
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list["items"][0]["status"]["occurrences"], 4, "{args:?}");
    }
}

#[test]
fn bad_lines_are_skipped_with_a_warning_naming_file_and_line_and_the_rest_is_diagnosed() {
    let dir = format!("{}/explain-cli-bad", env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::read(format!("{ROOT}/examples/china-passrole/karpenter.log")).unwrap();
    // A candidate line cut short (a truncated paste), then one with invalid UTF-8.
    let mut mixed = br#"{"level":"ERROR","time":"2024-06-04T09:29:00Z","error":"launching nodeclaim, creating instance, UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws-cn:sts::111122223333:assumed-role/KarpenterController-demo/1 is not auth"#.to_vec();
    mixed.push(b'\n');
    mixed.extend_from_slice(
        b"UnauthorizedOperation: \xff\xfe is not authorized to perform: iam:PassRole\n",
    );
    mixed.extend_from_slice(&log);
    let path = format!("{dir}/mixed.log");
    std::fs::write(&path, mixed).unwrap();
    let out = explain(&[&path, "-o", "json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    let by = |category: &str| {
        items
            .iter()
            .find(|i| i["spec"]["category"] == category)
            .unwrap()
    };
    assert_eq!(by("PassRoleDenied")["status"]["occurrences"], 4);
    // The cut line still says EC2 refused something: recognised, its cause undetermined.
    let cut = by("ActionDenied");
    assert_eq!(cut["status"]["rootCause"]["reason"], "Undetermined");
    assert_eq!(items.len(), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mixed.log:1: malformed JSON log record"),
        "{err}"
    );
    assert!(err.contains("read what it holds"), "{err}");
    assert!(err.contains("mixed.log:2: not valid UTF-8"), "{err}");
}

#[test]
fn unreadable_inputs_and_invalid_snapshots_exit_1_naming_the_file() {
    let out = explain(&["/nonexistent/karpenter.log"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/karpenter.log"));

    let dir = format!("{}/explain-cli-snap", env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_iam = format!("{dir}/iam.json");
    std::fs::write(&bad_iam, r#"{"RoleDetailList": [{"Arn": "arn:aws:iam::1:role/r", "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": {"Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}}]}]}"#).unwrap();
    let out = explain(&[
        "examples/china-passrole/karpenter.log",
        "--iam-snapshot",
        &bad_iam,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("iam.json")
            && err
                .contains("$.RoleDetailList[0].RolePolicyList[0].PolicyDocument.Statement.Effect"),
        "{err}"
    );

    let bad_kms = format!("{dir}/kms.json");
    std::fs::write(&bad_kms, r#"{"Keys": [{"KeyMetadata": {"KeyId": "k"}}]}"#).unwrap();
    let out = explain(&[
        "examples/china-passrole/karpenter.log",
        "--kms-snapshot",
        &bad_kms,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kms.json"));

    let out = explain(&["--output", "html"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_empty_input_diagnoses_nothing_and_exits_0() {
    let out = explain(&["/dev/null", "-o", "json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["items"], serde_json::json!([]));
}
