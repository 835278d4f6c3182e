//! Real Karpenter, built from source, as the producer of the doctor's input (issue 25). Each
//! test runs one scenario (tests/common/karpenter_scenarios.rs) on one Karpenter version: a real
//! kube-apiserver, etcd and kube-scheduler with that version's own CRDs, moto behind the double
//! answering the injected call as AWS documents it, Karpenter as a process whose output is its
//! pod log. A pending pod makes Karpenter launch; the test waits for what Karpenter writes about
//! the failure, checks that it wrote what the scenario injected, then runs the doctor's real
//! binary on the log, objects and Events and checks its Diagnoses against what it should say.
//!
//! Versions: `KARPENTER_LIVE_VERSIONS` (comma-separated, default the newest built here,
//! v1.15.0; `make test` runs that). `KARPENTER_RECORD=1` writes the recordings to
//! tests/fixtures/karpenter/<version>/<scenario>/ (tests/karpenter_replay.rs replays them);
//! otherwise they go to target/tmp. Tests skip, saying so, when the Go module proxy is out of
//! reach (never under CI).

mod common;

use common::karpenter_scenarios::{Scenario, differences, explain, known_bug, scenario};
use common::live::ACCOUNT;
use common::real_karpenter::{
    CONTROLLER_ROLE, Fault, Live, NODE_ROLE, ROOT, aws_cli, build, role_arn, summarize,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

fn versions() -> Vec<String> {
    std::env::var("KARPENTER_LIVE_VERSIONS")
        .unwrap_or_else(|_| "v1.15.0".into())
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn recording_dir(version: &str, scenario: &str) -> PathBuf {
    if std::env::var_os("KARPENTER_RECORD").is_some() {
        PathBuf::from(ROOT).join(format!("tests/fixtures/karpenter/{version}/{scenario}"))
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("karpenter-{version}/{scenario}"))
    }
}

/// The Launched condition of a NodeClaim.
fn launched(claim: &Value) -> Option<&Value> {
    claim["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Launched")
}

/// NodeClaims whose launch Karpenter has reported failed (Launched not True, a reason other
/// than the initial one).
fn failed_claims(claims: &Value) -> Vec<Value> {
    claims["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            launched(c).is_some_and(|l| {
                l["status"] != "True"
                    && !l["reason"].as_str().unwrap_or("").is_empty()
                    && l["reason"] != "AwaitingReconciliation"
            })
        })
        .cloned()
        .collect()
}

/// Karpenter's log lines (JSON) of level ERROR that name `text`.
fn error_lines(live: &Live, text: &str) -> Vec<Value> {
    live.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "ERROR" && l.to_string().contains(text))
        .collect()
}

/// Asserts that Karpenter logged `message` (AWS's, from `who`) whole, JSON-escaped as its
/// logger writes it, in an error line that says `under`.
fn logged_whole(live: &Live, version: &str, under: &str, message: &str, who: &str) {
    assert!(
        error_lines(live, under)
            .iter()
            .any(|l| l.to_string().contains(&json_escaped(message))),
        "Karpenter {version} did not log {who}'s message whole under {under:?}:\n{}",
        live.log_tail(20)
    );
}

/// Runs `name` on every version asked for.
fn run_everywhere(name: &str) {
    for version in versions() {
        run(&version, &scenario(name));
    }
}

/// `v1.8.2` as (1, 8).
fn minor(version: &str) -> (u32, u32) {
    let mut parts = version.trim_start_matches('v').split('.');
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

fn run(version: &str, s: &Scenario) {
    if let Some(since) = s.since.filter(|since| minor(version) < *since) {
        eprintln!(
            "Karpenter {version} does not make the call of scenario {} (v{}.{}+): skipped",
            s.name, since.0, since.1
        );
        return;
    }
    let Some(build) = build(version) else { return };
    eprintln!(
        "Karpenter {version} ({}), scenario {}: {}",
        build.info["sum"].as_str().unwrap_or("?"),
        s.name,
        s.about
    );
    let Some(mut live) = Live::start(&format!("{}-{version}", s.name), &build, s.setup.clone())
    else {
        return;
    };
    live.pending_pod();
    let mut aws: Vec<(&str, Value)> = Vec::new();
    let mut extra = json!({});
    let claims = match &s.setup.fault {
        Fault::FleetError { code, message } if code == "InsufficientInstanceCapacity" => {
            // Capacity: Karpenter records it as an Event and deletes the NodeClaim.
            let events = live.wait_for(
                "InsufficientCapacityError Event",
                Duration::from_secs(180),
                |live| {
                    let events = live.events();
                    events["items"]
                        .as_array()?
                        .iter()
                        .any(|e| e["reason"] == "InsufficientCapacityError")
                        .then_some(events)
                },
            );
            let note = message.split('{').next().unwrap();
            assert!(
                events.to_string().contains(note) || live.log_text().contains(note),
                "AWS's capacity message is in neither the Events nor the log"
            );
            std::thread::sleep(Duration::from_secs(2));
            live.node_claims()
        }
        Fault::FleetError { code, message } => {
            let claims = live.wait_for(
                "NodeClaim whose launch failed, and its log line",
                Duration::from_secs(180),
                |live| {
                    let claims = live.node_claims();
                    (!failed_claims(&claims).is_empty()
                        && !error_lines(live, "launching nodeclaim").is_empty())
                    .then_some(claims)
                },
            );
            // What Karpenter wrote: AWS's whole message in its log.
            logged_whole(&live, version, "launching nodeclaim", message, code);
            // Events Karpenter publishes about the failure come with it; let them land.
            std::thread::sleep(Duration::from_secs(2));
            let claims_now = live.node_claims();
            extra["nodeClaimLaunched"] = json!(
                failed_claims(&claims_now)
                    .iter()
                    .filter_map(|c| launched(c).cloned())
                    .collect::<Vec<_>>()
            );
            if failed_claims(&claims_now).is_empty() {
                claims
            } else {
                claims_now
            }
        }
        Fault::IamError { message, .. } => {
            // The EC2NodeClass cannot get its instance profile: no NodeClaim is made.
            live.wait_for(
                "log line of the refused IAM call, and the EC2NodeClass not ready",
                Duration::from_secs(180),
                |live| {
                    let class = live.get("/apis/karpenter.k8s.aws/v1/ec2nodeclasses/default");
                    let ready = class["status"]["conditions"]
                        .as_array()?
                        .iter()
                        .find(|c| c["type"] == "InstanceProfileReady")?;
                    (ready["status"] != "True"
                        && !error_lines(live, &json_escaped(message)).is_empty())
                    .then_some(())
                },
            );
            std::thread::sleep(Duration::from_secs(2));
            live.node_claims()
        }
        Fault::DryRunRefused {
            operation, message, ..
        } => {
            // Validation fails: the EC2NodeClass is not ready, so no NodeClaim is made.
            let said = format!("unauthorized to call ec2:{operation}");
            live.wait_for(
                "EC2NodeClass ValidationSucceeded=False, and its log line",
                Duration::from_secs(180),
                |live| {
                    let class = live.get("/apis/karpenter.k8s.aws/v1/ec2nodeclasses/default");
                    let valid = class["status"]["conditions"]
                        .as_array()?
                        .iter()
                        .find(|c| c["type"] == "ValidationSucceeded")?;
                    (valid["status"] == "False" && !error_lines(live, &said).is_empty())
                        .then_some(())
                },
            );
            logged_whole(&live, version, &said, message, "EC2");
            std::thread::sleep(Duration::from_secs(2));
            let claims = live.node_claims();
            assert!(
                failed_claims(&claims).is_empty(),
                "no launch was tried: {claims:#}"
            );
            claims
        }
        Fault::WebIdentityRefused { message, .. } => {
            // No credentials: Karpenter's first AWS call failed and it exited (`Live::start`
            // waited for it), before any NodeClaim.
            let said = "ec2 api connectivity check failed";
            logged_whole(&live, version, said, message, "STS");
            // What the person on call runs next (the remediation's first AWS command).
            let cluster = aws_cli(
                &live.double.endpoint,
                s.setup.region,
                "eks",
                "describe_cluster",
                json!({"name": "prod"}),
            );
            aws.push(("describe-cluster.json", cluster));
            live.node_claims()
        }
        Fault::InstanceTerminated { code, .. } => {
            let claims = live.wait_for("launched NodeClaim", Duration::from_secs(180), |live| {
                let claims = live.node_claims();
                let launched_one = claims["items"].as_array()?.iter().any(|c| {
                    launched(c).is_some_and(|l| l["status"] == "True")
                        && c["status"]["providerID"].as_str().is_some()
                });
                launched_one.then_some(claims)
            });
            let provider = claims["items"][0]["status"]["providerID"]
                .as_str()
                .unwrap()
                .to_string();
            let instance = provider.rsplit('/').next().unwrap().to_string();
            // The instance dies at launch: terminated in moto, its reason AWS's (the double).
            aws_cli(
                &live.moto.endpoint,
                s.setup.region,
                "ec2",
                "terminate_instances",
                json!({"InstanceIds": [instance]}),
            );
            // EventBridge tells Karpenter's interruption queue; Karpenter deletes the NodeClaim.
            live.instance_state_change(&instance, "terminated");
            live.wait_for("NodeClaim deleted", Duration::from_secs(180), |live| {
                let now = live.node_claims();
                let gone = !now["items"]
                    .as_array()?
                    .iter()
                    .any(|c| c["status"]["providerID"] == provider.as_str());
                gone.then_some(())
            });
            std::thread::sleep(Duration::from_secs(2));
            // What the person on call runs next: the instance, through the double.
            let described = aws_cli(
                &live.double.endpoint,
                s.setup.region,
                "ec2",
                "describe_instances",
                json!({"InstanceIds": [instance]}),
            );
            assert!(
                described.to_string().contains(code.as_str())
                    && *live.rewritten.lock().unwrap() > 0,
                "DescribeInstances does not give the injected state reason: {described:#}"
            );
            aws.push(("describe-instances.json", described));
            extra["nodeClaimsAfter"] = live.node_claims();
            claims
        }
    };
    if s.want_with_snapshot.is_some() {
        aws.push(("iam-snapshot.json", iam_snapshot(&live)));
    }
    let dir = recording_dir(version, s.name);
    extra["calls"] = json!(summarize(&live.double.calls()));
    extra["seconds"] = json!(live.started.elapsed().as_secs());
    live.record(&dir, s.name, &claims, &aws, extra);
    eprintln!("recorded into {}", dir.display());
    drop(live);
    check_doctor(version, s, &dir);
}

/// `text` as it appears inside a JSON string (Karpenter's log is JSON).
fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap();
    quoted[1..quoted.len() - 1].to_string()
}

/// The account's IAM as `aws iam get-account-authorization-details` prints it, the controller
/// role holding the seed-1 policy (terraform-aws-eks v20.13's Karpenter controller policy for
/// aws-cn: iam:PassRole on the node role only with iam:PassedToService ec2.amazonaws.com).
fn iam_snapshot(live: &Live) -> Value {
    let region = live.setup.region;
    let policy = std::fs::read_to_string(format!(
        "{ROOT}/tests/fixtures/policies/tf-eks-v20.13-karpenter-controller.aws-cn.json"
    ))
    .unwrap()
    .replace("111122223333", ACCOUNT)
    .replace("Karpenter-demo-20240604092512345600000001", NODE_ROLE)
    .replace("cluster/demo", "cluster/prod");
    let created = aws_cli(
        &live.moto.endpoint,
        region,
        "iam",
        "create_policy",
        json!({"PolicyName": CONTROLLER_ROLE, "PolicyDocument": policy}),
    );
    aws_cli(
        &live.moto.endpoint,
        region,
        "iam",
        "attach_role_policy",
        json!({"RoleName": CONTROLLER_ROLE, "PolicyArn": created["Policy"]["Arn"]}),
    );
    let snapshot = aws_cli(
        &live.moto.endpoint,
        region,
        "iam",
        "get_account_authorization_details",
        json!({}),
    );
    assert!(
        snapshot
            .to_string()
            .contains(&role_arn(region, CONTROLLER_ROLE)),
        "the snapshot holds the controller role"
    );
    snapshot
}

/// The doctor on what Karpenter wrote, against what it should say (known bugs skipped, but an
/// entry that passes fails: the list cannot go stale).
fn check_doctor(version: &str, s: &Scenario, dir: &std::path::Path) {
    let mut cases = vec![(false, s.want.clone())];
    if let Some(want) = &s.want_with_snapshot {
        cases.push((true, want.clone()));
    }
    for (snapshot, want) in cases {
        let items = explain(dir, snapshot);
        let diff = differences(&items, &want);
        let label = format!(
            "{version} {}{}",
            s.name,
            if snapshot {
                " with the IAM snapshot"
            } else {
                ""
            }
        );
        if known_bug(version, s.name, snapshot) {
            assert!(
                !diff.is_empty(),
                "{label} is listed in KNOWN_BUG but the doctor now says what it should: remove it from the list"
            );
            eprintln!("KNOWN BUG (cut ARN), not failing: {label}: {diff:#?}");
            continue;
        }
        assert!(
            diff.is_empty(),
            "{label}: the doctor's Diagnoses are not what they should be: {diff:#?}\n{items:#?}"
        );
    }
}

#[test]
fn seed_1_pass_role_refused_by_ec2_fleet() {
    run_everywhere("passrole-fleet");
}

#[test]
fn seed_1_pass_role_refused_for_the_instance_profile() {
    run_everywhere("passrole-instance-profile");
}

#[test]
fn seed_2_instance_terminated_by_its_kms_key() {
    run_everywhere("kms-terminated");
}

#[test]
fn an_scp_explicit_deny_named_by_its_policy_arn() {
    run_everywhere("scp-deny");
}

#[test]
fn an_ec2nodeclass_validation_refused_only_as_a_dry_run() {
    run_everywhere("validation-dry-run");
}

#[test]
fn irsa_refused_by_the_controller_roles_trust_policy() {
    run_everywhere("irsa-trust-mismatch");
}

#[test]
fn capacity_errors_alone_are_no_diagnosis() {
    run_everywhere("capacity-only");
}
