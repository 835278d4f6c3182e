//! The controller end to end over HTTP: a Kubernetes API double (kmock) holding Karpenter's
//! ServiceAccount and pod, moto holding the seed-1 IAM story, and the real binary in between.
//! The pod's log is fed line by line; Diagnoses, metrics and restarts are checked.

mod common;

use common::apiserver::Kube;
use common::live::*;
use common::moto::Moto;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Controller {
    child: Child,
    metrics: u16,
}

impl Controller {
    fn start(kube: &Kube, moto: &Moto, log: &std::path::Path) -> Controller {
        let (metrics, health) = (free_port(), free_port());
        let child = Command::new(BIN)
            .args([
                "controller",
                "--region",
                "cn-northwest-1",
                "--endpoint-url",
                &moto.endpoint,
                "--aws-max-attempts",
                "1",
            ])
            .args(["--metrics-bind-address", &format!("127.0.0.1:{metrics}")])
            .args([
                "--health-probe-bind-address",
                &format!("127.0.0.1:{health}"),
            ])
            .args(["--debounce-ms", "100"])
            .env("KUBECONFIG", &kube.kubeconfig)
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
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.metrics)).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        text
    }
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
    let name = d["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("pass-role-denied-"), "{name}");

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
}
