//! `karpenter-doctor preflight` end to end: both seed stories caught before the failure, with
//! the fingerprint (Diagnosis name), reason and fix of the failure `explain` later diagnoses;
//! before deploy from a rendered Terraform policy; the exit status; usage errors.

use serde_json::{Value, json};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs the binary with no cluster to reach (preflight without inputs reads one).
fn run(command: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(ROOT)
        .arg(command)
        .args(args)
        .env("KUBECONFIG", format!("{ROOT}/tests/no-such-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("run karpenter-doctor")
}

fn items(command: &str, args: &[&str]) -> Vec<Value> {
    let out = run(command, &[args, &["-o", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// The failure `explain` diagnoses from `inputs`, the one `pick` selects.
fn failure(inputs: &[&str], pick: impl Fn(&Value) -> bool) -> Value {
    let found = items("explain", inputs);
    found
        .into_iter()
        .find(|d| pick(d))
        .expect("explain diagnoses it")
}

fn cause(d: &Value) -> (&str, &str) {
    let rc = &d["status"]["rootCause"];
    (
        rc["reason"].as_str().unwrap(),
        rc["confidence"].as_str().unwrap(),
    )
}

const CHINA_NODE_ROLE: &str =
    "arn:aws-cn:iam::111122223333:role/Karpenter-demo-20240604092512345600000001";

/// Seed 1's cluster before any launch: the ServiceAccount, the controller role's snapshot and
/// the node role; no log.
fn china_before() -> Vec<&'static str> {
    vec![
        "examples/china-passrole/serviceaccount.yaml",
        "--iam-snapshot",
        "examples/china-passrole/iam-snapshot.json",
        "--node-role",
        CHINA_NODE_ROLE,
        "--region",
        "cn-northwest-1",
        "--cluster-name",
        "demo",
    ]
}

#[test]
fn seed_1_is_predicted_with_the_name_and_fix_of_the_failure_it_becomes() {
    let predicted = items("preflight", &china_before());
    let pass_role: Vec<&Value> = predicted
        .iter()
        .filter(|d| d["spec"]["action"] == "iam:PassRole")
        .collect();
    assert_eq!(pass_role.len(), 1, "{predicted:#?}");
    let p = pass_role[0];
    assert_eq!(cause(p), ("PassedToServiceMismatch", "Predicted"));
    assert_eq!(p["spec"]["resourceArn"], CHINA_NODE_ROLE);
    assert_eq!(p["status"]["occurrences"], 0);
    assert_eq!(p["status"]["affectedNodeClaims"], json!([]));
    let evidence = p["status"]["rootCause"]["evidence"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(
        evidence.contains("will call ec2:")
            && evidence.contains("iam:PassedToService=ec2.amazonaws.com.cn"),
        "{evidence}"
    );
    // The failure, when Karpenter meets it: the same Diagnosis name and the same patch.
    let f = failure(
        &[
            "examples/china-passrole/karpenter.log",
            "examples/china-passrole/serviceaccount.yaml",
            "--iam-snapshot",
            "examples/china-passrole/iam-snapshot.json",
        ],
        |d| d["spec"]["action"] == "iam:PassRole",
    );
    assert_eq!(cause(&f), ("PassedToServiceMismatch", "Confirmed"));
    assert_eq!(p["metadata"]["name"], f["metadata"]["name"]);
    assert_eq!(
        p["status"]["remediation"]["policyPatch"],
        f["status"]["remediation"]["policyPatch"]
    );
}

#[test]
fn seed_2_is_predicted_from_the_node_class_key_before_any_instance_launches() {
    let cmk_before = [
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
    ];
    let predicted = items("preflight", &cmk_before);
    let kms: Vec<&Value> = predicted
        .iter()
        .filter(|d| d["spec"]["category"] == "KmsKeyUnusable")
        .collect();
    assert_eq!(kms.len(), 1, "{predicted:#?}");
    assert_eq!(cause(kms[0]), ("KeyAccessNotGranted", "Predicted"));
    let with_failure = [
        &[
            "examples/cross-account-cmk/describe-instances.json",
            "examples/cross-account-cmk/nodeclaims.json",
        ],
        &cmk_before[..6],
    ]
    .concat();
    let f = failure(&with_failure, |d| d["spec"]["category"] == "KmsKeyUnusable");
    assert_eq!(cause(&f), ("KeyAccessNotGranted", "Confirmed"));
    assert_eq!(kms[0]["metadata"]["name"], f["metadata"]["name"]);
    assert_eq!(kms[0]["spec"]["kmsKeyArn"], f["spec"]["kmsKeyArn"]);
    // Without the key's facts the proof rests on an unknown: Inferred, saying which.
    let blind: Vec<&str> = cmk_before
        .iter()
        .copied()
        .filter(|a| !a.contains("kms-snapshot"))
        .collect();
    let unknown = items("preflight", &blind);
    let k = unknown
        .iter()
        .find(|d| d["spec"]["category"] == "KmsKeyUnusable")
        .expect("the key is still a finding");
    assert_eq!(cause(k), ("KeyAccessNotGranted", "Inferred"), "{k:#}");
    let evidence = k["status"]["rootCause"]["evidence"].to_string();
    assert!(
        evidence.contains("no KMS snapshot given (--kms-snapshot)"),
        "the missing premise is named: {evidence}"
    );
}

/// `terraform show -json` of a plan holding terraform-aws-eks v21.19's rendered China policy
/// (with an AWS provider before #47141, which renders `ec2.amazonaws.com` only)
/// (Terraform's documented JSON output format: planned_values, child_modules; the node role
/// policy beside it must not be taken for the controller's).
fn plan_with(policy: &Value) -> Value {
    let node = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["ec2:DescribeInstances"], "Resource": "*"}]});
    json!({"format_version": "1.2", "terraform_version": "1.9.8", "planned_values": {
        "root_module": {"child_modules": [{"address": "module.karpenter",
            "resources": [
                {"address": "module.karpenter.aws_iam_policy.controller[0]", "mode": "managed",
                 "type": "aws_iam_policy", "name": "controller", "index": 0,
                 "provider_name": "registry.terraform.io/hashicorp/aws",
                 "values": {"name_prefix": "KarpenterController-", "policy": policy.to_string()}},
                {"address": "module.karpenter.aws_iam_role_policy.node[0]", "mode": "managed",
                 "type": "aws_iam_role_policy", "name": "node", "index": 0,
                 "provider_name": "registry.terraform.io/hashicorp/aws",
                 "values": {"policy": node.to_string()}}]}]}}})
}

#[test]
fn seed_1_is_caught_before_deploy_from_the_rendered_terraform_policy() {
    let file = "tests/fixtures/policies/real/tf-eks-v21.19.aws-cn.provider-pre-47141.json";
    let policy: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("preflight-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.json");
    std::fs::write(&plan, plan_with(&policy).to_string()).unwrap();
    let node_role = CHINA_NODE_ROLE;
    let before_deploy = |policy_file: &str| {
        vec![
            "--policy".to_string(),
            policy_file.to_string(),
            "--controller-role".into(),
            "arn:aws-cn:iam::111122223333:role/KarpenterController-demo".into(),
            "--node-role".into(),
            node_role.into(),
            "--region".into(),
            "cn-northwest-1".into(),
            "--cluster-name".into(),
            "demo".into(),
        ]
    };
    for source in [file.to_string(), plan.to_string_lossy().to_string()] {
        let args = before_deploy(&source);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let found = items("preflight", &args);
        let p = found
            .iter()
            .find(|d| d["spec"]["action"] == "iam:PassRole")
            .unwrap_or_else(|| panic!("{source}: {found:#?}"));
        assert_eq!(
            cause(p),
            ("PassedToServiceMismatch", "Predicted"),
            "{source}"
        );
        assert_eq!(p["spec"]["resourceArn"], node_role);
        // CI's gate: exit 3.
        let gated = run("preflight", &[args.as_slice(), &["--exit-code"]].concat());
        assert_eq!(gated.status.code(), Some(3), "{source}");
        let text = String::from_utf8_lossy(&gated.stdout);
        assert!(
            text.contains("REFUSED") && text.contains("iam:PassRole"),
            "{text}"
        );
    }
    // The same module with a fixed provider renders both principals: PassRole passes.
    let fixed = before_deploy("tests/fixtures/policies/real/tf-eks-v21.19.aws-cn.json");
    let args: Vec<&str> = fixed.iter().map(String::as_str).collect();
    let found = items("preflight", &args);
    assert!(
        !found.iter().any(|d| d["spec"]["action"] == "iam:PassRole"),
        "{found:#?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn what_preflight_cannot_know_is_a_usage_error_naming_it() {
    for (args, says) in [
        (vec![], "without a cluster, give EC2NodeClass"),
        (
            vec!["examples/china-passrole/serviceaccount.yaml"],
            "give --region",
        ),
        (
            vec![
                "--policy",
                "tests/fixtures/policies/real/cfn-v1.14.aws.json",
                "--region",
                "us-east-1",
            ],
            "--controller-role",
        ),
        (
            vec![
                "--policy",
                "Cargo.toml",
                "--controller-role",
                "arn:aws:iam::111122223333:role/K",
                "--region",
                "us-east-1",
            ],
            "not valid JSON",
        ),
    ] {
        let out = run("preflight", &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = run("preflight", &["--karpenter-version", "latest"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let a = run(
        "preflight",
        &[china_before().as_slice(), &["-o", "yaml"]].concat(),
    );
    let b = run(
        "preflight",
        &[china_before().as_slice(), &["-o", "yaml"]].concat(),
    );
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
}

/// `aws organizations describe-policy` output for an SCP holding `document`.
fn scp(name: &str, document: &Value) -> String {
    organization_policy(name, "SERVICE_CONTROL_POLICY", document)
}

/// `aws organizations describe-policy` output for a policy of `kind`, in a scratch file.
fn organization_policy(name: &str, kind: &str, document: &Value) -> String {
    let path = std::env::temp_dir().join(format!("karpenter-doctor-preflight-{name}.json"));
    let out = json!({"Policy": {
        "PolicySummary": {"Id": "p-examplescp", "Arn": format!("arn:aws:organizations::111122223333:policy/o-example/{}/p-{name}", kind.to_lowercase()),
            "Name": name, "Type": kind, "AwsManaged": false},
        "Content": document.to_string()}});
    std::fs::write(&path, out.to_string()).unwrap();
    path.display().to_string()
}

/// An SCP given is one more layer: what it denies is refused. One the engine cannot read is
/// said, with what it means (its refusals are not predicted), never dropped in silence.
#[test]
fn an_scp_refuses_what_it_denies_and_one_that_cannot_be_read_is_said() {
    let deny = scp(
        "deny-fleet",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:CreateFleet", "Resource": "*"}]}),
    );
    let broken = scp(
        "broken",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Perhaps", "Action": "ec2:RunInstances", "Resource": "*"}]}),
    );
    let before = run("preflight", &china_before());
    let before = String::from_utf8_lossy(&before.stdout);
    assert!(
        !before
            .lines()
            .any(|l| l.contains("REFUSED  ec2:CreateFleet")),
        "{before}"
    );
    let out = run(
        "preflight",
        &[china_before().as_slice(), &[&deny, &broken]].concat(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains("REFUSED  ec2:CreateFleet")),
        "{text}"
    );
    assert!(
        text.contains("note: SCP arn:aws:organizations::111122223333:policy/o-example/service_control_policy/p-broken is not a policy the engine reads")
            && text.contains("a refusal it makes is not predicted"),
        "{text}"
    );
    // An RCP is not applied to the controller's requests: said, not dropped in silence.
    let rcp = organization_policy(
        "deny-kms",
        "RESOURCE_CONTROL_POLICY",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}),
    );
    let out = run("preflight", &[china_before().as_slice(), &[&rcp]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("note: RCP arn:aws:organizations::111122223333:policy/o-example/resource_control_policy/p-deny-kms is not applied"),
        "{text}"
    );
}

/// The seed-2 EC2NodeClass with `edit` applied, in a scratch directory; its path.
fn node_class_edited(name: &str, edit: impl Fn(&str) -> String) -> String {
    let dir = std::env::temp_dir().join(format!("preflight-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(format!(
        "{ROOT}/examples/cross-account-cmk/ec2nodeclass.yaml"
    ))
    .unwrap();
    let path = dir.join("ec2nodeclass.yaml");
    std::fs::write(&path, edit(&text)).unwrap();
    path.to_string_lossy().into_owned()
}

/// A volume that is encrypted and names no key is encrypted with the region's default EBS key
/// (Karpenter's default root volume is one): a disabled default key kills every launch, and
/// preflight says so before the first. A volume naming its key, or a Custom AMI's own volumes
/// where encryption by default is not known to be on, do not use it.
#[test]
fn a_disabled_default_ebs_key_is_predicted_where_a_volume_names_no_key() {
    const DEFAULT_KEY: &str =
        "arn:aws:kms:us-east-1:111122223333:key/6f0d9a4e-2c1b-4e8f-a7d3-5b9c0e1f2a34";
    let dir = std::env::temp_dir().join(format!("preflight-cli-ebs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kms = dir.join("kms-snapshot.json");
    let disabled = std::fs::read_to_string(format!(
        "{ROOT}/tests/fixtures/explain/KeyDisabled/kms-snapshot.json"
    ))
    .unwrap()
    .replace("315690842217", "111122223333")
    .replace("eu-north-1", "us-east-1");
    std::fs::write(&kms, disabled).unwrap();
    let kms = kms.to_string_lossy().into_owned();
    let no_key = node_class_edited("no-key", |t| {
        t.lines()
            .filter(|l| !l.contains("kmsKeyID"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let keyed = node_class_edited("keyed", |t| t.to_string());
    let custom = node_class_edited("custom", |t| {
        let head = &t[..t.find("  blockDeviceMappings:").unwrap()];
        head.replace("spec:\n", "spec:\n  amiFamily: Custom\n")
    });
    let run_with = |class: &str, flag: bool| {
        let mut args = vec![
            class,
            "examples/cross-account-cmk/serviceaccount.yaml",
            "--iam-snapshot",
            "examples/cross-account-cmk/iam-snapshot.json",
            "--kms-snapshot",
            &kms,
            "--region",
            "us-east-1",
            "--cluster-name",
            "demo",
        ];
        if flag {
            args.extend(["--ebs-default-key", DEFAULT_KEY]);
        }
        items("preflight", &args)
            .into_iter()
            .filter(|d| d["spec"]["kmsKeyArn"] == DEFAULT_KEY)
            .collect::<Vec<Value>>()
    };
    let found = run_with(&no_key, true);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(cause(&found[0]), ("KeyDisabled", "Predicted"));
    assert!(
        found[0].to_string().contains("default EBS key"),
        "{:#}",
        found[0]
    );
    for (class, flag, why) in [
        (&no_key, false, "the default key is not known"),
        (&keyed, true, "every volume names its key"),
        (
            &custom,
            true,
            "a Custom AMI's volumes, encryption by default not known",
        ),
    ] {
        let found = run_with(class, flag);
        assert!(found.is_empty(), "{why}: {found:#?}");
    }
}

/// The credentials Diagnoses `preflight` predicts from an explain fixture's cluster objects and
/// facts (its log left out: no failure yet).
fn predicted_credentials(fixture: &str) -> Vec<Value> {
    let dir = format!("tests/fixtures/explain/{fixture}");
    let mut args: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/{dir}")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        match name.as_str() {
            "iam-snapshot.json" => args.extend(["--iam-snapshot".into(), format!("{dir}/{name}")]),
            "args" | "expect.json" | "expected-output.json" | "pod-credentials.txt" => {}
            _ if name.ends_with(".log") => {}
            _ => args.push(format!("{dir}/{name}")),
        }
    }
    args.extend(["--region", "us-east-1", "--cluster-name", "prod"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    items("preflight", &args)
        .into_iter()
        .filter(|d| d["spec"]["category"] == "CredentialsDenied")
        .collect()
}

/// The credential path is checked before Karpenter runs: IRSA (the trust policy against
/// Karpenter's ServiceAccount token, the issuer among the account's OIDC providers) and Pod
/// Identity (the association's role trusting pods.eks.amazonaws.com with sts:TagSession). A
/// refusal the facts prove is predicted under the name of the failure `explain` confirms; a
/// path the facts allow, or cannot check, predicts nothing.
#[test]
fn the_credential_path_is_predicted_where_the_facts_prove_it_refused() {
    for (fixture, reason) in [
        ("TrustPolicyMismatch-wrong-namespace", "TrustPolicyMismatch"),
        ("TrustPolicyMismatch-wrong-audience", "TrustPolicyMismatch"),
        ("OidcProviderMissing-confirmed", "OidcProviderMissing"),
        (
            "TrustPolicyMismatch-pod-identity-no-tagsession",
            "TrustPolicyMismatch",
        ),
        (
            "TrustPolicyMismatch-pod-identity-get-role",
            "TrustPolicyMismatch",
        ),
    ] {
        let predicted = predicted_credentials(fixture);
        assert_eq!(predicted.len(), 1, "{fixture}: {predicted:#?}");
        assert_eq!(cause(&predicted[0]), (reason, "Predicted"), "{fixture}");
        let args = std::fs::read_to_string(format!("{ROOT}/tests/fixtures/explain/{fixture}/args"))
            .unwrap();
        let inputs: Vec<String> = args
            .split_whitespace()
            .map(|a| match a.starts_with("--") {
                true => a.to_string(),
                false => format!("tests/fixtures/explain/{fixture}/{a}"),
            })
            .collect();
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let f = failure(&inputs, |d| d["spec"]["category"] == "CredentialsDenied");
        assert_eq!(cause(&f).1, "Confirmed", "{fixture}");
        assert_eq!(
            predicted[0]["metadata"]["name"], f["metadata"]["name"],
            "{fixture}"
        );
    }
    for fixture in [
        // The trust policy lets the token in: nothing to predict.
        "Undetermined-irsa-annotated-audience-trusted",
        // No trust policy known: not checked, not predicted.
        "TrustPolicyMismatch-pod-identity-inferred",
        "TrustPolicyMismatch-inferred",
    ] {
        let predicted = predicted_credentials(fixture);
        assert!(predicted.is_empty(), "{fixture}: {predicted:#?}");
    }
}

/// A cluster in aws-cn whose controller role allows everything, with the node role snapshot
/// `snapshot` (tests/fixtures/preflight): only the node role's trust can be refused.
fn node_trust(snapshot: &str) -> Vec<String> {
    [
        "--iam-snapshot",
        &format!("tests/fixtures/preflight/{snapshot}"),
        "--controller-role",
        "arn:aws-cn:iam::111122223333:role/KarpenterController-demo",
        "--node-role",
        "KarpenterNodeRole-demo",
        "--region",
        "cn-northwest-1",
        "--cluster-name",
        "demo",
        "--exit-code",
    ]
    .map(str::to_string)
    .to_vec()
}

/// The lines of the matrix's checks (after its `Checks:` heading) that name `what`.
fn check_line<'a>(text: &'a str, what: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with("Checks:"))
        .skip(1)
        .filter(|l| l.contains(what))
        .collect()
}

#[test]
fn a_node_role_trusting_only_the_global_ec2_principal_is_refused_in_aws_cn() {
    let args = node_trust("node-role-trusts-global-ec2.aws-cn.json");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("preflight", &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    // No request is refused: the trust alone fails the run.
    assert!(text.contains(" 0 refused, "), "{text}");
    let line = check_line(&text, "node role trust");
    assert_eq!(line.len(), 1, "{text}");
    assert!(
        line[0].trim_start().starts_with("REFUSED")
            && line[0].contains("arn:aws-cn:iam::111122223333:role/KarpenterNodeRole-demo")
            && line[0].contains("ec2.amazonaws.com.cn may not sts:AssumeRole")
            && line[0].contains("statement 0 (EKSNodeAssumeRole) names Service ec2.amazonaws.com,"),
        "{text}"
    );
    // No Diagnosis for it (no contract reason names it); standard error says why it exits 3.
    let json = run("preflight", &[args.as_slice(), &["-o", "json"]].concat());
    assert_eq!(json.status.code(), Some(3));
    let list: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(list["items"], json!([]));
    let err = String::from_utf8_lossy(&json.stderr);
    assert!(
        err.contains("REFUSED") && err.contains("node role trust"),
        "{err}"
    );
}

#[test]
fn a_node_role_trusting_the_partitions_ec2_principal_is_allowed() {
    let args = node_trust("node-role-trusts-both-ec2.aws-cn.json");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("preflight", &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = check_line(&text, "node role trust");
    assert_eq!(line.len(), 1, "{text}");
    assert!(
        line[0].trim_start().starts_with("allowed")
            && line[0].contains("statement 0 (EKSNodeAssumeRole)")
            && line[0].contains("lets ec2.amazonaws.com.cn sts:AssumeRole"),
        "{text}"
    );
    // Seed 1's example: its node role trusts aws-cn's EC2 principal.
    let out = run("preflight", &china_before());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = check_line(&text, "node role trust");
    assert!(
        line.len() == 1 && line[0].trim_start().starts_with("allowed"),
        "{text}"
    );
}

/// An allow-all controller policy padded with `n` more actions, pretty-printed when `pretty`.
fn padded_policy(name: &str, n: usize, pretty: bool) -> (String, usize) {
    let pad: Vec<String> = (0..n)
        .map(|i| format!("ec2:DescribePadding{i:04}"))
        .collect();
    let doc = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "Padding", "Effect": "Allow", "Action": pad, "Resource": "*"}]});
    let compact = doc.to_string().len();
    let text = if pretty {
        serde_json::to_string_pretty(&doc).unwrap()
    } else {
        doc.to_string()
    };
    let path = std::env::temp_dir().join(format!(
        "karpenter-doctor-limits-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(&path, &text).unwrap();
    (path.display().to_string(), compact)
}

#[test]
fn a_policy_over_6144_characters_without_whitespace_is_refused_before_deploy() {
    let args = |file: &str| {
        run(
            "preflight",
            &[
                "--policy",
                file,
                "--controller-role",
                "arn:aws:iam::111122223333:role/KarpenterController-demo",
                "--node-role",
                "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo",
                "--region",
                "us-east-1",
                "--cluster-name",
                "demo",
                "--exit-code",
            ],
        )
    };
    // 250 actions of 26 characters and their quotes: well over 6,144 characters.
    let (over, size) = padded_policy("over", 250, false);
    assert!(size > 6_144, "{size}");
    let out = args(&over);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let line = check_line(&text, "managed policy size");
    assert_eq!(line.len(), 1, "{text}");
    assert!(
        line[0].trim_start().starts_with("REFUSED")
            && line[0].contains("over IAM's limit of 6,144"),
        "{text}"
    );
    // Whitespace is not counted: pretty-printed, its text is over the limit, its policy not.
    let (under, size) = padded_policy("under", 190, true);
    assert!(size < 6_144 * 9 / 10, "{size}");
    assert!(std::fs::read_to_string(&under).unwrap().len() > 6_144);
    let out = args(&under);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = check_line(&text, "managed policy size");
    assert!(
        line.len() == 1 && line[0].trim_start().starts_with("allowed"),
        "{text}"
    );
    std::fs::remove_file(over).ok();
    std::fs::remove_file(under).ok();
}

/// Spot launches need the key for the Spot service-linked role as well as the caller, so the
/// capacity types the EC2NodeClass's NodePools allow decide: a key granted to the caller
/// alone is predicted to kill the spot launches only.
#[test]
fn a_key_the_spot_role_cannot_use_is_predicted_only_where_a_node_pool_allows_spot() {
    const FIXTURE: &str = "tests/fixtures/explain/KeyAccessNotGranted-spot";
    let dir = std::env::temp_dir().join(format!("preflight-cli-spot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The fixture's cross-account key, granted to the controller role too.
    let mut kms: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/{FIXTURE}/kms-snapshot.json")).unwrap(),
    )
    .unwrap();
    let mut grant = kms["Keys"][0]["Grants"][0].clone();
    grant["GrantId"] = json!("0c0ffee0");
    grant["GranteePrincipal"] =
        json!("arn:aws:iam::381492650173:role/KarpenterController-payments");
    kms["Keys"][0]["Grants"].as_array_mut().unwrap().push(grant);
    let snapshot = dir.join("kms-snapshot.json");
    std::fs::write(&snapshot, kms.to_string()).unwrap();
    let pool = |capacity: &str| {
        let path = dir.join(format!("nodepool-{capacity}.yaml"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: payments\nspec:\n  template:\n    spec:\n      nodeClassRef:\n        group: karpenter.k8s.aws\n        kind: EC2NodeClass\n        name: pci-encrypted\n      requirements:\n        - key: karpenter.sh/capacity-type\n          operator: In\n          values: [{capacity}]\n"
            ),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let kms_predicted = |pool: Option<String>| {
        let snapshot = snapshot.to_string_lossy().into_owned();
        let class = format!("{FIXTURE}/ec2nodeclass.yaml");
        let account = format!("{FIXTURE}/serviceaccount.yaml");
        let mut args = vec![class, account, "--kms-snapshot".into(), snapshot];
        args.extend(pool);
        args.extend(["--region", "us-west-2", "--cluster-name", "payments"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        items("preflight", &args)
            .into_iter()
            .filter(|d| d["spec"]["category"] == "KmsKeyUnusable")
            .filter(|d| d["status"]["rootCause"]["confidence"] == "Predicted")
            .collect::<Vec<Value>>()
    };
    let spot = kms_predicted(Some(pool("spot")));
    assert_eq!(spot.len(), 1, "{spot:#?}");
    assert_eq!(cause(&spot[0]).0, "KeyAccessNotGranted");
    let commands = spot[0]["status"]["remediation"]["commands"].to_string();
    assert!(
        commands.contains("--grantee-principal arn:aws:iam::381492650173:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"),
        "{commands}"
    );
    let on_demand = kms_predicted(Some(pool("on-demand")));
    assert!(
        on_demand.is_empty(),
        "the caller may use the key: {on_demand:#?}"
    );
}
