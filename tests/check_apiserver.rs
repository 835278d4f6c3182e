//! `karpenter-doctor check` end to end: the real binary against a real kube-apiserver and etcd
//! (tests/common/kubeapi.rs) and moto, as a user bound to the chart's triage roles only (a
//! ClusterRole for the cluster-scoped objects, Roles in Karpenter's namespace and in `default`):
//! every request check makes is one of their rules, in the namespace the rule is granted in, and
//! every rule is used.
//! The seed-1 story from a pod's current log; a credentials failure only in the previous
//! container of a restarted pod; the seed-2 story on v1beta1 CRDs through DescribeInstances; a
//! user forbidden to read logs (said, and the rest still diagnosed); no Karpenter at all (exit
//! 1); `--exit-code`; the doctor's own Diagnoses listed beside check's findings.

mod common;

use common::karpenter::{at, cluster, feed, kms_cluster, log_line, seed_1_cluster};
use common::kubeapi::KubeApi;
use common::live::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of `check` printed, and its exit status.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn items(&self) -> Vec<Value> {
        let list: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr));
        list["items"].as_array().cloned().unwrap_or_default()
    }
}

fn check(kubeconfig: &Path, endpoint: &str, region: &str, args: &[&str]) -> Run {
    doctor(
        "check",
        kubeconfig,
        &[&["--endpoint-url", endpoint, "--region", region], args].concat(),
    )
}

/// One run of `command` with the cluster's kubeconfig and AWS's test credentials, nothing of
/// the environment's AWS profile, region or kubeconfig.
fn doctor(command: &str, kubeconfig: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg(command)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The chart's triage roles bound to `group`, Karpenter in `namespace`, as `helm template`
/// renders them.
fn triage_roles(group: &str, namespace: &str) -> String {
    let tools = format!("{ROOT}/.tools");
    let status = Command::new("bash")
        .arg(format!("{ROOT}/tests/chart/install-tools.sh"))
        .args([&tools, "helm"])
        .status()
        .unwrap();
    assert!(status.success(), "installing helm");
    let out = Command::new(format!("{tools}/bin/helm"))
        .args(["template", "karpenter-doctor"])
        .arg(format!("{ROOT}/charts/karpenter-doctor"))
        .args(["--namespace", "karpenter-doctor"])
        .args(["--show-only", "templates/rbac-triage.yaml"])
        .args(["--set", "rbac.triage.create=true"])
        .args(["--set", &format!("rbac.triage.groups={{{group}}}")])
        .args(["--set", &format!("karpenter.namespace={namespace}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A person on call: the ServiceAccount `alice` of namespace `oncall`, whose group
/// `system:serviceaccounts:oncall` the triage roles are bound to; nothing else.
fn on_call(kube: &KubeApi, karpenter_namespace: &str) -> PathBuf {
    kube.apply(&triage_roles(ONCALL, karpenter_namespace));
    kube.namespace("oncall");
    kube.service_account("oncall", "alice");
    kube.service_account_kubeconfig("oncall", "alice")
}

const ONCALL: &str = "system:serviceaccounts:oncall";
const ALICE: &str = "system:serviceaccount:oncall:alice";

/// A request, or a permission: (verb, namespace (empty: cluster-wide), resource[/subresource]).
type Access = (String, String, String);

/// Every request `user` made, and those refused.
fn requests(kube: &KubeApi, user: &str) -> (Vec<Access>, Vec<String>) {
    let mut made = Vec::new();
    let mut refused = Vec::new();
    for e in kube.audit() {
        if e["user"]["username"] != user || e["stage"] != "ResponseComplete" {
            continue;
        }
        let resource = match (
            e["objectRef"]["resource"].as_str(),
            e["objectRef"]["subresource"].as_str(),
        ) {
            (Some(r), Some(s)) if !s.is_empty() => format!("{r}/{s}"),
            (Some(r), _) => r.to_string(),
            (None, _) => continue, // discovery and /version: every authenticated user may
        };
        let verb = e["verb"].as_str().unwrap_or("").to_string();
        if e["responseStatus"]["code"] == 403 {
            refused.push(format!("{verb} {}", e["requestURI"]));
        }
        let namespace = e["objectRef"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        made.push((verb, namespace, resource));
    }
    made.sort();
    made.dedup();
    (made, refused)
}

#[test]
fn check_as_the_triage_role_diagnoses_the_seed_1_log_and_agrees_with_the_controller() {
    let Some((kube, moto)) = seed_1_cluster("check") else {
        return;
    };
    feed(&kube, 0, 3);
    let alice = on_call(&kube, "kube-system");

    // The doctor's controller has written the same Diagnosis (here: explain's, applied).
    let dir = scratch("check-seed-1");
    let log = format!("{dir}/karpenter.log");
    std::fs::write(&log, format!("{}\n", log_line(&at(0), "default-000"))).unwrap();
    let (explained, _) = explain_live(&moto, "cn-northwest-1", &[&log]);
    let mut written = explained["items"][0].clone();
    let name = written["metadata"]["name"].as_str().unwrap().to_string();
    written.as_object_mut().unwrap().remove("status");
    kube.apply(&written.to_string());

    let run = check(&alice, &moto.endpoint, "cn-northwest-1", &["-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let items = run.items();
    assert_eq!(items.len(), 1, "{items:#?}\n{}", run.stderr);
    let d = &items[0];
    assert_eq!(d["metadata"]["name"], name.as_str(), "{d:#}");
    assert_eq!(d["spec"]["category"], "PassRoleDenied");
    assert_eq!(
        d["status"]["rootCause"]["reason"],
        "PassedToServiceMismatch"
    );
    assert_eq!(d["status"]["rootCause"]["confidence"], "Confirmed");
    assert_eq!(d["status"]["occurrences"], 3, "{d:#}");
    // What was read heads the report; with -o json it is on standard error, stdout is the list.
    let (_, accounts) = kube
        .get("/api/v1/namespaces/kube-system/serviceaccounts")
        .unwrap();
    let accounts: Value = serde_json::from_str(&accounts).unwrap();
    let accounts = format!(
        "{} ServiceAccounts in kube-system",
        accounts["items"].as_array().unwrap().len()
    );
    for said in [
        "Cluster: context ",
        "Kubernetes v1.37.2",
        "0 NodeClaims, 0 NodePools, 0 EC2NodeClasses (karpenter.sh/v1)",
        &accounts,
        "Karpenter: Deployment karpenter 1/2 ready (ServiceAccount karpenter)\n",
        "Logs:    3 lines of the last 1h from 1 pod in kube-system (karpenter-7d9f/controller)",
        "AWS:     live lookups",
        &format!("The doctor's controller runs here: 1 active Diagnosis (1 in all): {name}"),
    ] {
        assert!(run.stderr.contains(said), "{said:?} in\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("Not read"), "{}", run.stderr);

    // Text: the same head, then explain's report. --exit-code: 3 for a root cause found.
    let text = check(
        &alice,
        &moto.endpoint,
        "cn-northwest-1",
        &["--exit-code", "--since", "10m"],
    );
    assert_eq!(text.code, 3, "{}", text.stderr);
    assert!(
        text.stdout.starts_with("Cluster: context "),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("of the last 10m")
            && text.stdout.contains("\n1 root cause found (3 signals)"),
        "{}",
        text.stdout
    );

    // check --pod: a pod Karpenter nominated for the failing NodeClaim is blocked by it; one it
    // could not place is pending for another reason, which its Event says in one line.
    kube.namespace("team-a");
    kube.apply(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "team-a"}})
            .to_string(),
    );
    for pod in ["web-1", "web-2"] {
        kube.apply(
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": "team-a"},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
            .to_string(),
        );
    }
    // As Karpenter v1.15.0 records them (its Nominated Event in
    // tests/fixtures/karpenter/v1.15.0/passrole-fleet/events.json; its FailedScheduling note
    // from sigs.k8s.io/karpenter scheduling/events.go PodFailedToScheduleEvent).
    let karpenters = |name: &str, pod: &str, reason: &str, message: &str| {
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "team-a"},
            "involvedObject": {"kind": "Pod", "namespace": "team-a", "name": pod, "apiVersion": "v1"},
            "reason": reason, "message": message, "source": {"component": "karpenter"},
            "reportingComponent": "karpenter", "reportingInstance": "", "type": "Normal",
            "firstTimestamp": at(1), "lastTimestamp": at(1), "count": 1})
        .to_string()
    };
    kube.apply(&karpenters(
        "web-1.nominated",
        "web-1",
        "Nominated",
        "Pod should schedule on: nodeclaim/default-000",
    ));
    let incompatible = r#"Failed to schedule pod, incompatible with nodepool "default", daemonset overhead={"cpu":"150m","pods":"3"}, did not tolerate taint (key=team, value=b, effect=NoSchedule)"#;
    kube.apply(&karpenters(
        "web-2.failed",
        "web-2",
        "FailedScheduling",
        incompatible,
    ));
    let blocked = check(
        &alice,
        &moto.endpoint,
        "cn-northwest-1",
        &["--pod", "team-a/web-1", "-o", "json", "--exit-code"],
    );
    assert_eq!(
        blocked.code, 3,
        "{}
{}",
        blocked.stdout, blocked.stderr
    );
    let answer: Value = serde_json::from_str(&blocked.stdout).unwrap();
    assert_eq!(answer["pending"], true, "{answer:#}");
    assert_eq!(answer["nodeClaim"], "default-000", "{answer:#}");
    assert_eq!(answer["items"].as_array().unwrap().len(), 1, "{answer:#}");
    assert_eq!(answer["items"][0]["metadata"]["name"], name.as_str());
    assert_eq!(answer["items"][0]["status"]["blockedPods"], 1);
    assert_eq!(
        answer["answer"],
        json!([format!(
            "pod team-a/web-1 is pending on nodeclaim/default-000: no node can launch for this pod: iam:PassRole refused (PassedToServiceMismatch, Confirmed); kubectl get diagnosis {name}"
        )])
    );
    let other = check(
        &alice,
        &moto.endpoint,
        "cn-northwest-1",
        &["--pod", "team-a/web-2", "--exit-code"],
    );
    assert_eq!(
        other.code, 0,
        "{}
{}",
        other.stdout, other.stderr
    );
    let line = format!(
        "pod team-a/web-2 is pending for another reason (Karpenter nominated it for no NodeClaim): {incompatible} (karpenter)\n"
    );
    assert!(
        other.stdout.ends_with(&line),
        "{line:?} in
{}",
        other.stdout
    );
    let missing = check(
        &alice,
        &moto.endpoint,
        "cn-northwest-1",
        &["--pod", "team-a/nope"],
    );
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("cannot read pod team-a/nope"),
        "{}",
        missing.stderr
    );
    let usage = check(
        &alice,
        &moto.endpoint,
        "cn-northwest-1",
        &["--pod", "web-1"],
    );
    assert_eq!(usage.code, 2, "{}", usage.stderr);

    // Exactly what the triage roles grant was used, each where it is granted (the ClusterRole
    // cluster-wide — for a namespaced resource, in any namespace — the Roles in their
    // namespace), and nothing was refused but the pod that does not exist.
    let (made, refused) = requests(&kube, ALICE);
    let refused: Vec<String> = refused
        .into_iter()
        .filter(|r| !r.contains("/pods/nope"))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:#?}");
    let rendered = triage_roles(ONCALL, "kube-system");
    let roles: Vec<Value> = serde_norway::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &Value| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .collect();
    let mut granted: Vec<Access> = Vec::new();
    for role in &roles {
        let namespace = role["metadata"]["namespace"].as_str().unwrap_or("");
        for rule in role["rules"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    granted.push((
                        verb.as_str().unwrap().into(),
                        namespace.into(),
                        resource.as_str().unwrap().into(),
                    ));
                }
            }
        }
    }
    granted.sort();
    let mut made: Vec<Access> = made
        .into_iter()
        .map(|(verb, ns, resource)| {
            let cluster_wide = (verb.clone(), String::new(), resource.clone());
            if !granted.contains(&(verb.clone(), ns.clone(), resource.clone()))
                && granted.contains(&cluster_wide)
            {
                cluster_wide
            } else {
                (verb, ns, resource)
            }
        })
        .collect();
    made.sort();
    made.dedup();
    assert_eq!(
        made, granted,
        "check's requests are the triage roles' rules"
    );

    // Without pods/log: said, and what the objects show is still diagnosed (a NodeClaim whose
    // Launched condition holds the same failure, as Karpenter v1.0 cuts it).
    let mut role = roles
        .into_iter()
        .find(|r| r["metadata"]["name"] == "karpenter-doctor-triage-karpenter")
        .unwrap();
    role["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["resources"] != json!(["pods/log"]));
    kube.apply(&role.to_string());
    let error = log_line(&at(0), "default-000");
    let error: Value = serde_json::from_str(&error).unwrap();
    let message: String = error["error"]
        .as_str()
        .unwrap()
        .trim_start_matches("launching nodeclaim, ")
        .chars()
        .take(300)
        .collect();
    kube.apply(
        &json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": "default-000", "labels": {"karpenter.sh/nodepool": "default"}},
            "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]},
            "status": {"conditions": [{"type": "Launched", "status": "Unknown", "reason": "LaunchFailed",
                "message": message, "lastTransitionTime": at(0)}]}})
        .to_string(),
    );
    let before = requests(&kube, ALICE).1.len();
    let denied = check(&alice, &moto.endpoint, "cn-northwest-1", &["-o", "json"]);
    assert_eq!(denied.code, 0, "{}", denied.stderr);
    assert!(
        denied
            .stderr
            .contains("Not read:\n  - the log of karpenter-7d9f/controller: forbidden"),
        "{}",
        denied.stderr
    );
    assert!(denied.stderr.contains("1 NodeClaim,"), "{}", denied.stderr);
    let items = denied.items();
    assert_eq!(items.len(), 1, "{items:#?}\n{}", denied.stderr);
    assert_eq!(items[0]["spec"]["category"], "PassRoleDenied");
    assert_eq!(
        items[0]["status"]["affectedNodeClaims"],
        json!(["default-000"])
    );
    assert_eq!(
        requests(&kube, ALICE).1.len(),
        before + 1,
        "only the log refused"
    );
}

#[test]
fn a_credentials_failure_only_in_the_previous_container_of_a_restarted_pod_is_found() {
    let Some(mut kube) = cluster("check-credentials") else {
        return;
    };
    kube.start_kubelet("node-a");
    let node = kube.node().to_string();
    kube.namespace("karpenter");
    kube.apply(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "karpenter", "namespace": "karpenter",
            "annotations": {"eks.amazonaws.com/role-arn": format!("arn:aws:iam::{ACCOUNT}:role/{CONTROLLER}")}}})
        .to_string(),
    );
    // Karpenter v1 crash-looping: its container restarted 4 times; the current one has only
    // started, the previous one said why it exited (aws-sdk-go-v2's credential chain).
    kube.apply(
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "karpenter-5b8c", "namespace": "karpenter",
            "labels": {"app.kubernetes.io/name": "karpenter"}},
            "spec": {"nodeName": node, "serviceAccountName": "karpenter",
                "containers": [{"name": "controller", "image": "public.ecr.aws/karpenter/controller:1.15.2"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "controller", "ready": false, "restartCount": 4,
                "image": "public.ecr.aws/karpenter/controller:1.15.2", "imageID": "",
                "state": {"running": {"startedAt": at(30)}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": at(0), "finishedAt": at(2)}}}]}})
        .to_string(),
    );
    let started = json!({"level": "INFO", "time": at(30), "logger": "controller", "message": "discovered karpenter version", "version": "1.15.2"});
    kube.feed_log(
        "karpenter",
        "karpenter-5b8c",
        "controller",
        &at(30),
        &started.to_string(),
    );
    let failed = json!({"level": "ERROR", "time": at(1), "logger": "controller", "message": "ec2 api connectivity check failed", "commit": "62a726c",
        "error": "operation error EC2: DescribeInstanceTypes, get identity: get credentials: failed to refresh cached credentials, failed to retrieve credentials, operation error STS: AssumeRoleWithWebIdentity, https response error StatusCode: 403, RequestID: 5c3f9ce5-ba7d-495e-98b1-ffcd5cf85133, api error AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity"});
    kube.feed_previous_log(
        "karpenter",
        "karpenter-5b8c",
        "controller",
        &at(1),
        &failed.to_string(),
    );
    let alice = on_call(&kube, "karpenter");
    let run = check(
        &alice,
        "http://127.0.0.1:9",
        "us-east-1",
        &[
            "--offline",
            "--karpenter-namespace",
            "karpenter",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let items = run.items();
    assert_eq!(items.len(), 1, "{items:#?}\n{}", run.stderr);
    assert_eq!(items[0]["spec"]["category"], "CredentialsDenied");
    assert_eq!(items[0]["spec"]["action"], "sts:AssumeRoleWithWebIdentity");
    assert!(
        run.stderr.contains(
            "Logs:    2 lines of the last 1h from 1 pod in karpenter (karpenter-5b8c/controller, karpenter-5b8c/controller (previous))"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("AWS:     not asked (--offline)"));
    let (_, refused) = requests(&kube, ALICE);
    assert!(refused.is_empty(), "refused: {refused:#?}");
}

#[test]
fn the_seed_2_story_on_v1beta1_crds_is_traced_to_its_key_without_karpenters_pods() {
    let Some((kube, _moto, double, key)) = kms_cluster("check-kms") else {
        return;
    };
    let alice = on_call(&kube, "kube-system");
    let run = check(&alice, &double.endpoint, "us-east-1", &["-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let items = run.items();
    assert_eq!(items.len(), 1, "{items:#?}\n{}", run.stderr);
    let d = &items[0];
    assert_eq!(d["spec"]["category"], "KmsKeyUnusable", "{d:#}");
    assert_eq!(d["spec"]["kmsKeyArn"], key.as_str());
    assert_eq!(d["status"]["rootCause"]["reason"], "KeyPendingDeletion");
    assert_eq!(d["status"]["rootCause"]["confidence"], "Confirmed");
    for said in [
        "1 NodeClaim, 0 NodePools, 1 EC2NodeClass (karpenter.sh/v1beta1); 1 Event regarding them",
        "Logs:    0 lines of the last 1h from 0 pods in kube-system (none read)",
        "Karpenter: no Deployment matches app.kubernetes.io/name=karpenter in kube-system\n",
        "Not read:\n  - no pods match app.kubernetes.io/name=karpenter in kube-system",
        "The doctor's controller runs here: 0 active Diagnoses (0 in all)",
    ] {
        assert!(run.stderr.contains(said), "{said:?} in\n{}", run.stderr);
    }
    assert_eq!(double.count("DescribeInstances"), 1);
}

#[test]
fn without_karpenter_or_without_a_cluster_check_says_so_and_exits_1() {
    let dir = scratch("check-nothing");
    // Nothing listens on the cluster's address.
    let nowhere = format!("{dir}/kubeconfig");
    std::fs::write(
        &nowhere,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:{}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\ncurrent-context: gone\n",
            common::free_port()
        ),
    )
    .unwrap();
    let run = check(
        Path::new(&nowhere),
        "http://127.0.0.1:9",
        "us-east-1",
        &["--offline"],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("context gone (https://127.0.0.1:")
            && run.stderr.contains("cannot read the cluster"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // Usage errors: 2.
    let usage = check(
        Path::new(&nowhere),
        "http://127.0.0.1:9",
        "us-east-1",
        &["--since", "soon"],
    );
    assert_eq!(usage.code, 2, "{}", usage.stderr);

    // A real cluster without Karpenter: neither its API group nor its pods.
    let Some(kube) = KubeApi::start("check-nothing") else {
        return;
    };
    let run = check(
        &kube.kubeconfig,
        "http://127.0.0.1:9",
        "us-east-1",
        &["--offline"],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no Karpenter here: the API group karpenter.sh is not served and no Deployment or pod matches app.kubernetes.io/name=karpenter in kube-system"),
        "{}",
        run.stderr
    );
}

/// `preflight` on the current kube context with AWS's endpoint, nothing else.
fn preflight(kubeconfig: &Path, endpoint: &str, args: &[&str]) -> Run {
    doctor(
        "preflight",
        kubeconfig,
        &[
            &["--endpoint-url", endpoint, "--aws-max-attempts", "1"],
            args,
        ]
        .concat(),
    )
}

/// Seed 1 before any launch, from the cluster alone: the version is Karpenter's image tag, the
/// region, cluster name and interruption queue its container's settings (a flag winning over
/// the env), the controller role its ServiceAccount's, the node role the EC2NodeClass's, the
/// policies live IAM's. Only configuration is read: no NodeClaim, Event or log.
#[test]
fn preflight_reads_the_running_karpenter_and_predicts_seed_1_before_any_launch() {
    let Some((kube, moto)) = seed_1_cluster("preflight") else {
        return;
    };
    kube.apply(
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "karpenter", "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "karpenter"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": "karpenter"}},
                    "spec": {"serviceAccountName": "karpenter",
                        "containers": [{"name": "controller",
                            "image": "public.ecr.aws/karpenter/controller:1.0.8@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                            "args": ["--interruption-queue=demo-interruptions"],
                            "env": [{"name": "AWS_REGION", "value": "cn-northwest-1"},
                                    {"name": "CLUSTER_NAME", "value": "demo"},
                                    {"name": "INTERRUPTION_QUEUE", "value": "overridden"},
                                    {"name": "FEATURE_GATES", "value": "SpotToSpotConsolidation=false"}]}]}}}})
        .to_string(),
    );
    kube.apply(
        &json!({"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "default"},
            "spec": {"role": NODE_ROLE, "amiFamily": "AL2023", "amiSelectorTerms": [{"alias": "al2023@latest"}],
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}],
                "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}]}})
        .to_string(),
    );
    kube.apply(
        &json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
            "spec": {"template": {"spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}}}})
        .to_string(),
    );
    feed(&kube, 0, 3); // a log with failures in it: preflight does not read it.
    let alice = on_call(&kube, "kube-system");
    let run = preflight(&alice, &moto.endpoint, &["-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let items = run.items();
    let pass_role: Vec<&Value> = items
        .iter()
        .filter(|d| d["spec"]["action"] == "iam:PassRole")
        .collect();
    assert_eq!(pass_role.len(), 1, "{items:#?}\n{}", run.stderr);
    let d = pass_role[0];
    assert_eq!(
        d["status"]["rootCause"]["reason"],
        "PassedToServiceMismatch"
    );
    assert_eq!(d["status"]["rootCause"]["confidence"], "Predicted");
    assert_eq!(
        d["spec"]["resourceArn"],
        format!("arn:aws-cn:iam::{ACCOUNT}:role/{NODE_ROLE}")
    );
    assert_eq!(
        d["spec"]["principalArn"],
        format!("arn:aws-cn:iam::{ACCOUNT}:role/{CONTROLLER}")
    );
    assert_eq!(d["spec"]["nodeClass"], "default");
    for said in [
        "Karpenter: Deployment karpenter (ServiceAccount karpenter, image public.ecr.aws/karpenter/controller:1.0.8@sha256:",
        "Read:    1 NodePool(s), 1 EC2NodeClass(es); 2 ServiceAccount(s) and 1 pod(s) in kube-system",
        "Evaluated: Karpenter v1.0.8 (the image's tag), controller role arn:aws-cn:iam::",
        "aws-cn cn-northwest-1, cluster demo, interruption queue demo-interruptions\n",
        "AWS:     live lookups",
    ] {
        assert!(run.stderr.contains(said), "{said:?} in\n{}", run.stderr);
    }
    // The matrix: the queue's requests are made (the flag's queue), in the container's region.
    let text = preflight(
        &alice,
        &moto.endpoint,
        &["--target-version", "v1.15.0", "--exit-code"],
    );
    assert_eq!(text.code, 3, "{}", text.stderr);
    for said in [
        "Upgrade v1.0.8 -> v1.15.0:",
        "Karpenter v1.0.8: ",
        ":sqs:cn-northwest-1:",
        ":demo-interruptions",
        "REFUSED  iam:PassRole",
    ] {
        assert!(text.stdout.contains(said), "{said:?} in\n{}", text.stdout);
    }
    // An image named by its digest alone: the chart's labels on the Deployment name the version.
    kube.apply(
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "karpenter", "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "karpenter", "helm.sh/chart": "karpenter-1.8.2", "app.kubernetes.io/version": "1.8.2"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": "karpenter"}},
                    "spec": {"serviceAccountName": "karpenter",
                        "containers": [{"name": "controller",
                            "image": "public.ecr.aws/karpenter/controller@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                            "env": [{"name": "AWS_REGION", "value": "cn-northwest-1"}]}]}}}})
        .to_string(),
    );
    let digest = preflight(&alice, &moto.endpoint, &["-o", "json"]);
    let said = "Evaluated: Karpenter v1.8.2 (the Deployment's label app.kubernetes.io/version)";
    assert!(
        digest.stderr.contains(said),
        "{said:?} in\n{}",
        digest.stderr
    );
    let (made, refused) = requests(&kube, ALICE);
    assert!(refused.is_empty(), "{refused:#?}");
    for (_, _, resource) in &made {
        assert!(
            !["nodeclaims", "events", "pods/log", "diagnoses"].contains(&resource.as_str()),
            "preflight read {resource}: {made:#?}"
        );
    }
}
