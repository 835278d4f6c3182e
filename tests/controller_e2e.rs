//! The controller end to end over HTTP: a Kubernetes API double (kmock) holding Karpenter's
//! objects, pod and log; moto (behind the AWS double where moto lacks a call) holding the IAM
//! and KMS stories; the real binary in between. Diagnoses, Events, metrics, re-checks that
//! verify a fix, restarts, the KMS path through DescribeInstances, v1beta1, and the Lease.

mod common;

use common::apiserver::Kube;
use common::double::{Double, kms_ec2};
use common::free_port;
use common::live::*;
use common::moto::Moto;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Controller {
    child: Child,
    metrics: u16,
}

impl Controller {
    fn start(kube: &Kube, moto: &Moto, log: &std::path::Path) -> Controller {
        Controller::start_with(kube, &moto.endpoint, "cn-northwest-1", log, &[], "doctor-0")
    }

    /// The controller against `endpoint` (moto, or the double in front of it), with `extra`
    /// options; `pod` is its POD_NAME (its identity in the Lease).
    fn start_with(
        kube: &Kube,
        endpoint: &str,
        region: &str,
        log: &std::path::Path,
        extra: &[&str],
        pod: &str,
    ) -> Controller {
        let (metrics, health) = (free_port(), free_port());
        let child = Command::new(BIN)
            .args([
                "controller",
                "--region",
                region,
                "--endpoint-url",
                endpoint,
                "--aws-max-attempts",
                "1",
            ])
            .args(["--metrics-bind-address", &format!("127.0.0.1:{metrics}")])
            .args([
                "--health-probe-bind-address",
                &format!("127.0.0.1:{health}"),
            ])
            .args(["--debounce-ms", "100", "--recheck-interval-seconds", "2"])
            .args(extra)
            .env("KUBECONFIG", &kube.kubeconfig)
            .env("POD_NAME", pod)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Controller { child, metrics }
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the controller did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metrics(&self) -> String {
        scrape(self.metrics)
    }

    fn leads(&self) -> bool {
        self.metrics()
            .lines()
            .any(|l| l == "karpenter_doctor_leader 1")
    }
}

/// `probe`'s answer once it has one, polled for up to 30 s.
fn wait_for<T>(what: &str, probe: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Creates any object from its JSON (`plural` names its resource).
fn create(kube: &Kube, plural: &str, obj: Value) {
    let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            obj["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, obj["kind"].as_str().unwrap());
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
    let object: DynamicObject = serde_json::from_value(obj).unwrap();
    runtime().block_on(async {
        let client = kube.client().await;
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(client, ns, &ar),
            None => Api::all_with(client, &ar),
        };
        api.create(&PostParams::default(), &object).await.unwrap();
    });
}

/// The Events recorded on Diagnoses: (type, reason) in the order written.
fn diagnosis_events(kube: &Kube) -> Vec<(String, String)> {
    runtime().block_on(async {
        let api: Api<Event> = Api::all(kube.client().await);
        let mut events = api.list(&Default::default()).await.unwrap().items;
        events
            .retain(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Diagnosis"));
        events.sort_by_key(|e| {
            e.metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok())
        });
        events
            .into_iter()
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
            .collect()
    })
}

/// The Diagnoses once the first is `Resolved=True FixVerified` (asserted).
fn fix_verified(kube: &Kube) -> Vec<Value> {
    let verified = |d: &Value| condition(d, "Resolved") == ("True".into(), "FixVerified".into());
    let items = diagnoses(kube, |i| i.first().is_some_and(verified));
    assert!(items.first().is_some_and(verified), "{items:#?}");
    items
}

fn condition(d: &Value, type_: &str) -> (String, String) {
    let c = d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or_default();
    (
        c["status"].as_str().unwrap_or("").to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
    )
}

fn service_account(kube: &Kube, role_arn: &str) {
    create(
        kube,
        "serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "karpenter", "namespace": "kube-system",
            "annotations": {"eks.amazonaws.com/role-arn": role_arn}}}),
    );
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Log times: a minute ago plus `second` (a recent failure, so not yet `NotRecurring`).
fn at(second: u32) -> String {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| k8s_openapi::jiff::Timestamp::now().as_second() - 60);
    let t = k8s_openapi::jiff::Timestamp::from_second(base + i64::from(second)).unwrap();
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn log_line(time: &str, claim: &str) -> String {
    let error = format!(
        "launching nodeclaim, creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws-cn:sts::{ACCOUNT}:assumed-role/{CONTROLLER}/1717236000 is not authorized to perform: iam:PassRole on resource: arn:aws-cn:iam::{ACCOUNT}:role/{NODE_ROLE} because no identity-based policy allows the iam:PassRole action."
    );
    json!({"level": "ERROR", "time": time, "logger": "controller",
        "message": "Reconciler error", "controller": "nodeclaim.lifecycle", "NodeClaim": {"name": claim}, "error": error})
    .to_string()
}

/// The Diagnoses in the cluster, once `ready` holds for them (or after 30 s, as they are).
fn diagnoses(kube: &Kube, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items: Vec<Value> = runtime().block_on(async {
            let api: Api<DynamicObject> = Api::all_with(
                kube.client().await,
                &karpenter_doctor::cluster::resources::diagnoses(),
            );
            api.list(&Default::default())
                .await
                .map(|l| {
                    l.items
                        .into_iter()
                        .map(|o| serde_json::to_value(o).unwrap())
                        .collect()
                })
                .unwrap_or_default()
        });
        if ready(&items) || Instant::now() > deadline {
            return items;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn occurrences(items: &[Value]) -> u64 {
    items
        .first()
        .and_then(|d| d["status"]["occurrences"].as_u64())
        .unwrap_or(0)
}

#[test]
fn the_seed_1_log_stream_becomes_one_diagnosis_that_counts_on_across_restarts() {
    let moto = Moto::start("controller");
    seed_china(&moto);
    let kube = Kube::start("controller");
    runtime().block_on(async {
        let client = kube.client().await;
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "karpenter", "namespace": "kube-system",
            "annotations": {"eks.amazonaws.com/role-arn": format!("arn:aws-cn:iam::{ACCOUNT}:role/{CONTROLLER}")}}})).unwrap();
        Api::<ServiceAccount>::namespaced(client.clone(), "kube-system").create(&PostParams::default(), &sa).await.unwrap();
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "karpenter-7d9f", "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "karpenter"}}, "spec": {"containers": [{"name": "controller", "image": "karpenter"}]}})).unwrap();
        Api::<Pod>::namespaced(client, "kube-system").create(&PostParams::default(), &pod).await.unwrap();
    });
    let dir = scratch("controller");
    let first = at(0);
    let feed = |from: u32, to: u32| {
        for s in from..to {
            let time = at(s);
            kube.feed_log(
                "kube-system",
                "karpenter-7d9f",
                &time,
                &log_line(&time, &format!("default-{s:03}")),
            );
        }
    };
    feed(0, 3);
    let controller = Controller::start(
        &kube,
        &moto,
        std::path::Path::new(&format!("{dir}/controller-1.log")),
    );
    let items = diagnoses(&kube, |i| occurrences(i) == 3);
    assert_eq!(items.len(), 1, "{items:#?}");
    let d = &items[0];
    let rc = &d["status"]["rootCause"];
    assert_eq!(rc["reason"], "PassedToServiceMismatch", "{d:#}");
    assert_eq!(rc["confidence"], "Confirmed");
    assert_eq!(
        d["spec"]["principalArn"],
        format!("arn:aws-cn:iam::{ACCOUNT}:role/{CONTROLLER}")
    );
    assert_eq!(d["status"]["firstSeen"], first.as_str());
    let conditions = d["status"]["conditions"].to_string();
    assert!(
        conditions.contains("\"Resolved\"") && conditions.contains("FailureObserved"),
        "{conditions}"
    );
    for c in d["status"]["conditions"].as_array().unwrap() {
        assert_eq!(c["observedGeneration"], d["metadata"]["generation"], "{c}");
    }
    let name = d["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("pass-role-denied-"), "{name}");
    // Karpenter's objects are listed in pages, then watched, at the version discovery found.
    let requests = std::fs::read_to_string(&kube.requests).unwrap();
    for plural in [
        "karpenter.sh/v1/nodeclaims",
        "karpenter.sh/v1/nodepools",
        "karpenter.k8s.aws/v1/ec2nodeclasses",
    ] {
        let seen = |what: &str| {
            requests
                .lines()
                .any(|l| l.starts_with(&format!("GET /apis/{plural}?")) && l.contains(what))
        };
        assert!(
            seen("limit=500") && seen("watch=true"),
            "{plural}:\n{requests}"
        );
    }

    // Repeats: the same object counts on.
    feed(3, 5);
    let items = diagnoses(&kube, |i| occurrences(i) == 5);
    assert_eq!((items.len(), occurrences(&items)), (1, 5), "{items:#?}");
    let metrics = controller.metrics();
    assert!(
        metrics.contains("karpenter_doctor_diagnoses{category=\"PassRoleDenied\",reason=\"PassedToServiceMismatch\",state=\"active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "karpenter_doctor_signals_total{category=\"PassRoleDenied\",source=\"log\"} 5"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("karpenter_doctor_aws_requests_total{operation=\"GetRole\",outcome=\"ok\",service=\"iam\"} 1"), "{metrics}");
    assert!(
        controller.stop().success(),
        "SIGTERM ends the controller cleanly"
    );

    // A restart reads on from the last line it counted: no duplicate, no recount.
    let controller = Controller::start(
        &kube,
        &moto,
        std::path::Path::new(&format!("{dir}/controller-2.log")),
    );
    feed(5, 6);
    let items = diagnoses(&kube, |i| occurrences(i) == 6);
    assert_eq!((items.len(), occurrences(&items)), (1, 6), "{items:#?}");
    assert_eq!(items[0]["metadata"]["name"], name.as_str());

    assert!(controller.stop().success());

    // The policy is fixed in AWS. The next controller reads no new failure, so nothing derives
    // the Diagnosis afresh: the periodic re-check (every 2 s here) verifies the fix with fresh
    // facts and resolves it.
    fix_china_pass_role(&moto);
    let controller = Controller::start(
        &kube,
        &moto,
        std::path::Path::new(&format!("{dir}/controller-3.log")),
    );
    let items = fix_verified(&kube);
    assert_eq!(occurrences(&items), 6, "a re-check is no occurrence");
    let events = wait_for("the Resolved Event", || {
        let e = diagnosis_events(&kube);
        e.iter().any(|(_, r)| r == "Resolved").then_some(e)
    });
    assert_eq!(
        events,
        [
            ("Warning".to_string(), "RootCauseFound".to_string()),
            ("Normal".to_string(), "Resolved".to_string())
        ],
        "one Warning when found, one Normal when resolved"
    );
    let table = get_diagnoses(&items);
    std::fs::write(format!("{dir}/kubectl-get-diagnoses.txt"), &table).unwrap();
    assert!(
        table.contains("PassRoleDenied   PassedToServiceMismatch   Confirmed    True       6"),
        "every printer column resolves:\n{table}"
    );
    assert!(wait_for("the resolved gauge", || {
        let m = controller.metrics();
        m.contains("karpenter_doctor_diagnoses{category=\"PassRoleDenied\",reason=\"PassedToServiceMismatch\",state=\"resolved\"} 1")
            .then_some(true)
    }));
    assert!(controller.stop().success());
}

/// `kubectl get diagnoses` as a real API server prints it: the CRD's printer columns
/// (priority 0; AGE left out, it depends on the clock) evaluated on the objects.
fn get_diagnoses(items: &[Value]) -> String {
    let crd: Value = serde_norway::from_str(
        &std::fs::read_to_string(format!("{ROOT}/manifests/crd.yaml")).unwrap(),
    )
    .unwrap();
    let columns: Vec<(String, String)> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"].as_i64().unwrap_or(0) == 0 && c["type"] != "date")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_uppercase(),
                c["jsonPath"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let cell = |d: &Value, path: &str| -> String {
        let mut v = d.clone();
        // The one filter the columns use, `[?(@.type=="X")]`, holds a dot: keep it whole.
        let path = path.replace("[?(@.type==", "[?(@type==");
        for part in path.trim_start_matches('.').split('.') {
            v = match part.split_once("[?(@type==\"") {
                Some((field, rest)) => {
                    let wanted = rest.trim_end_matches("\")]");
                    v[field]
                        .as_array()
                        .and_then(|a| a.iter().find(|c| c["type"] == wanted))
                        .cloned()
                        .unwrap_or_default()
                }
                None => v[part].clone(),
            };
        }
        match v {
            Value::String(s) => s,
            Value::Null => "<none>".into(),
            other => other.to_string(),
        }
    };
    let mut rows = vec![
        std::iter::once("NAME".to_string())
            .chain(columns.iter().map(|(n, _)| n.clone()))
            .collect::<Vec<_>>(),
    ];
    for d in items {
        rows.push(
            std::iter::once(d["metadata"]["name"].as_str().unwrap().to_string())
                .chain(columns.iter().map(|(_, p)| cell(d, p)))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap())
        .collect();
    rows.iter()
        .map(|r| {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("{}\n", line.join("   ").trim_end())
        })
        .collect()
}

/// The seed-1 fix: PassRole allowed to EC2 under both of its names in aws-cn.
fn fix_china_pass_role(moto: &Moto) {
    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&config(moto, "cn-northwest-1").await);
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole",
            "Resource": format!("arn:aws-cn:iam::{ACCOUNT}:role/{NODE_ROLE}"),
            "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}}]});
        iam.put_role_policy()
            .role_name(CONTROLLER)
            .policy_name("PassNodeRole")
            .policy_document(doc.to_string())
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn a_lost_nodeclaim_on_a_v1beta1_cluster_is_traced_to_its_kms_key_through_describe_instances() {
    let moto = Moto::start("controller-kms");
    let key = pending_deletion_key(&moto, "us-east-1");
    let served = key.clone();
    let double = Double::start(&moto.endpoint, move |call| kms_ec2(call, &served));
    let kube = Kube::start_serving("controller-kms", "v1beta1");
    let cmk = format!("{ROOT}/examples/cross-account-cmk");
    service_account(
        &kube,
        "arn:aws:iam::111122223333:role/KarpenterController-demo",
    );
    let dir = scratch("controller-kms");
    // The seed-2 NodeClaim as Karpenter 0.3x shows it right after launch (Launched only); an
    // InstanceTerminating Event says its instance is going away.
    let claims: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{cmk}/nodeclaims.json")).unwrap())
            .unwrap();
    let mut claim = claims["items"][0].clone();
    claim["apiVersion"] = json!("karpenter.sh/v1beta1");
    claim["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["type"] == "Launched");
    create(&kube, "nodeclaims", claim);
    let class: Value =
        serde_norway::from_str(&std::fs::read_to_string(seed2_node_class(&dir, None)).unwrap())
            .unwrap();
    let mut class = class;
    class["apiVersion"] = json!("karpenter.k8s.aws/v1beta1");
    create(&kube, "ec2nodeclasses", class);
    create(
        &kube,
        "events",
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "encrypted-7k2lp.17d", "namespace": "default"},
            "eventTime": "2024-06-01T10:00:40.000000Z", "reportingController": "karpenter", "reportingInstance": "karpenter-7d9f",
            "action": "Terminating", "type": "Normal", "reason": "InstanceTerminating", "note": "Instance is terminating",
            "regarding": {"apiVersion": "karpenter.sh/v1beta1", "kind": "NodeClaim", "name": "encrypted-7k2lp"}}),
    );
    let controller = Controller::start_with(
        &kube,
        &double.endpoint,
        "us-east-1",
        std::path::Path::new(&format!("{dir}/controller.log")),
        &[],
        "doctor-0",
    );
    let items = diagnoses(&kube, |i| {
        i.first()
            .is_some_and(|d| d["status"]["rootCause"].is_object())
    });
    assert_eq!(items.len(), 1, "{items:#?}");
    let d = &items[0];
    assert_eq!(d["spec"]["category"], "KmsKeyUnusable", "{d:#}");
    assert_eq!(d["spec"]["kmsKeyArn"], key.as_str());
    assert_eq!(d["status"]["rootCause"]["reason"], "KeyPendingDeletion");
    assert_eq!(d["status"]["rootCause"]["confidence"], "Confirmed");
    assert_eq!(
        d["status"]["affectedNodeClaims"],
        json!(["encrypted-7k2lp"])
    );
    // Re-checks every 2 s and the Diagnosis's own Events wake reconciles; the dead instance
    // is described once (cached), its AMI and snapshot too.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(double.count("DescribeInstances"), 1, "{:?}", double.calls());
    assert_eq!(double.count("DescribeImages"), 1);
    let metrics = controller.metrics();
    assert!(
        metrics.contains(
            "karpenter_doctor_signals_total{category=\"KmsKeyUnusable\",source=\"instance\"} 1"
        ),
        "{metrics}"
    );
    assert!(controller.stop().success());
}

/// The EC2NodeClass of the validation story: Karpenter's dry run of RunInstances refused.
fn refused_node_class() -> Value {
    let text = std::fs::read_to_string(format!(
        "{ROOT}/tests/fixtures/explain/ActionNotAllowed-nodeclass-validation/ec2nodeclasses.yaml"
    ))
    .unwrap();
    let list: Value = serde_norway::from_str(&text).unwrap();
    list["items"][0].clone()
}

#[test]
fn two_replicas_elect_one_writer_which_diagnoses_the_node_class_and_verifies_the_fix() {
    let moto = Moto::start("controller-lease");
    let role = "edge-karpenter-irsa";
    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&config(&moto, "us-east-1").await);
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        iam.create_role().role_name(role).path("/eks/edge/").assume_role_policy_document(trust).send().await.unwrap();
        let fleet = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:CreateFleet","ec2:CreateLaunchTemplate"],"Resource":"*"}]}"#;
        iam.put_role_policy().role_name(role).policy_name("fleet").policy_document(fleet).send().await.unwrap();
    });
    let kube = Kube::start("controller-lease");
    service_account(
        &kube,
        &format!("arn:aws:iam::{ACCOUNT}:role/eks/edge/{role}"),
    );
    create(&kube, "ec2nodeclasses", refused_node_class());
    let dir = scratch("controller-lease");
    let elect = [
        "--leader-elect",
        "--leader-election-namespace",
        "karpenter-doctor",
    ];
    let start = |pod: &str| {
        Controller::start_with(
            &kube,
            &moto.endpoint,
            "us-east-1",
            std::path::Path::new(&format!("{dir}/{pod}.log")),
            &elect,
            pod,
        )
    };
    let (a, b) = (start("doctor-a"), start("doctor-b"));
    let holder = || {
        runtime().block_on(async {
            let api: Api<k8s_openapi::api::coordination::v1::Lease> =
                Api::namespaced(kube.client().await, "karpenter-doctor");
            api.get_opt("karpenter-doctor")
                .await
                .unwrap()
                .and_then(|l| l.spec?.holder_identity)
        })
    };
    let first = wait_for("a leader", holder);
    let items = diagnoses(&kube, |i| {
        i.first()
            .is_some_and(|d| d["status"]["rootCause"].is_object())
    });
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(
        items[0]["status"]["rootCause"]["reason"], "ActionNotAllowed",
        "{:#}",
        items[0]
    );
    assert_eq!(items[0]["status"]["rootCause"]["confidence"], "Confirmed");
    assert_eq!(items[0]["spec"]["nodeClass"], "default");
    let (leader, follower) = if first.starts_with("doctor-a_") {
        (a, b)
    } else {
        (b, a)
    };
    wait_for("the leader's gauge", || leader.leads().then_some(()));
    assert!(
        !follower.leads(),
        "only one replica writes: {}",
        follower.metrics()
    );

    // The fix lands in AWS; the leader's next re-check verifies it.
    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&config(&moto, "us-east-1").await);
        let run = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*"}]}"#;
        iam.put_role_policy().role_name(role).policy_name("run").policy_document(run).send().await.unwrap();
    });
    fix_verified(&kube);

    // The leader stops and gives the Lease up; the other replica takes over.
    assert!(leader.stop().success());
    let second = wait_for("a new leader", || holder().filter(|h| *h != first));
    assert!(second.starts_with("doctor-"), "{second}");
    wait_for("the follower to lead", || follower.leads().then_some(()));
    assert!(follower.stop().success());
}
