//! Real Karpenter as the producer of the doctor's input: `github.com/aws/karpenter-provider-aws`
//! `cmd/controller`, built from the Go module proxy (tests/karpenter/build.sh), run as a process
//! against a real kube-apiserver, etcd and kube-scheduler (tests/common/kubeapi.rs) with that
//! version's own CRDs, and AWS = moto behind the double (tests/common/double.rs), which answers
//! the call a scenario injects a fault into in AWS's documented response shape. What Karpenter
//! writes (its log, its objects, the Events) is collected as `kubectl get -o json` prints it.
//!
//! Karpenter v1.1+ (aws-sdk-go-v2) reaches the double through `AWS_ENDPOINT_URL`. v1.0.x uses
//! aws-sdk-go v1, which reads no endpoint setting: it reaches the double through `HTTPS_PROXY`
//! and `AWS_CA_BUNDLE` (tests/karpenter/aws-front, a CONNECT proxy with its own test CA).

use super::double::{Call, Double, Reply, ec2_error, form_value, query_error, sts_error, xml};
use super::kubeapi::KubeApi;
use super::live::{ACCOUNT, config, runtime};
use super::moto::Moto;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The EKS cluster Karpenter is told it runs in (`--cluster-name`), tagged on subnets and
/// security groups as `karpenter.sh/discovery`.
pub const CLUSTER: &str = "prod";
/// The controller's role: its assumed-role session is the principal AWS names in a denial.
pub const CONTROLLER_ROLE: &str = "KarpenterController-prod";
/// The web identity session IRSA names (a nanosecond timestamp, as the SDKs make it).
pub const SESSION: &str = "1717492800123456789";
/// The node role, as terraform-aws-eks's Karpenter module names it (name prefix + timestamp):
/// Karpenter v1.0's NodeClaim message for a PassRole denial of it is cut (300 bytes + `...`)
/// inside its ARN, after `role/Karp`.
pub const NODE_ROLE: &str = "Karpenter-prod-20240604092512345600000001";
/// An x86_64 Amazon Linux 2 AMI moto serves in every region (by id: moto has no SSM aliases).
pub const AMI: &str = "ami-04681a1dbd79675a5";
/// Instance types the NodePool allows (few: CreateFleet carries one override per type and zone).
pub const INSTANCE_TYPES: [&str; 2] = ["m5.large", "m5.xlarge"];

/// One built Karpenter: `.tools/karpenter-<version>/` (controller, crds/, aws-front,
/// build.json).
#[derive(Clone)]
pub struct Build {
    pub version: String,
    pub dir: PathBuf,
    /// build.json: module, version, sum (go.sum's `h1:`), go, seconds.
    pub info: Value,
}

impl Build {
    /// aws-sdk-go v1 (Karpenter v1.0.x) has no endpoint setting: reached through aws-front.
    pub fn needs_front(&self) -> bool {
        self.version.starts_with("v1.0.")
    }
}

/// Builds (or finds built) Karpenter `version`; `None` (and why) when the Go module proxy is out
/// of reach and CI is not set. Any other build failure fails the test.
pub fn build(version: &str) -> Option<Build> {
    static BUILT: Mutex<BTreeMap<String, Result<PathBuf, String>>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let result = built
        .entry(version.to_string())
        .or_insert_with(|| {
            let dir = std::env::var_os("KARPENTER_TOOLS_DIR")
                .map_or_else(|| Path::new(ROOT).join(".tools"), PathBuf::from)
                .join(format!("karpenter-{version}"));
            let status = Command::new("bash")
                .arg(Path::new(ROOT).join("tests/karpenter/build.sh"))
                .arg(version)
                .arg(&dir)
                .status()
                .unwrap_or_else(|e| panic!("run tests/karpenter/build.sh: {e}"));
            match status.code() {
                Some(0) => Ok(dir),
                Some(75) => Err(format!(
                    "Karpenter {version} cannot be built here: the Go module proxy is out of reach"
                )),
                _ => panic!("tests/karpenter/build.sh {version} failed ({status})"),
            }
        })
        .clone();
    match result {
        Ok(dir) => {
            let info = std::fs::read_to_string(dir.join("build.json")).unwrap();
            Some(Build {
                version: version.to_string(),
                info: serde_json::from_str(&info).unwrap(),
                dir,
            })
        }
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: {why}");
            None
        }
        Err(why) => panic!("{why} (CI is set: real Karpenter is required)"),
    }
}

/// What the double makes AWS say, beside forwarding the rest to moto.
#[derive(Clone, Debug)]
pub enum Fault {
    /// CreateFleet (type instant) answers 200 with no instance and one `errorSet` item per
    /// override it was asked for, each with this code and message (as EC2 Fleet reports a
    /// refused launch); `{instanceType}` and `{zone}` in the message are the override's.
    FleetError { code: String, message: String },
    /// CreateFleet is moto's (the instance launches); the test then terminates the instance in
    /// moto, and DescribeInstances gives a terminated instance this `stateReason` (moto's
    /// would be `Client.UserInitiatedShutdown`). Karpenter is given an interruption queue
    /// (`--interruption-queue`, SQS in moto), to which the test delivers the instance's
    /// state change as EventBridge does: without it, Karpenter deletes a NodeClaim whose
    /// instance died before registering only after its 15-minute registration timeout.
    InstanceTerminated { code: String, message: String },
    /// An IAM call (query protocol) answers `status` with IAM's error document.
    IamError {
        operation: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The dry run of an EC2 call (`DryRun=true`, as EC2NodeClass validation makes it, v1.3+)
    /// answers 403 with EC2's error document; the call itself is moto's.
    DryRunRefused {
        operation: String,
        code: String,
        message: String,
    },
    /// Karpenter runs with IRSA (`AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`, as EKS's pod
    /// identity webhook sets them; no static keys), and STS answers its
    /// `AssumeRoleWithWebIdentity` 403 with STS's error document: the controller role's trust
    /// policy names another namespace's ServiceAccount. Karpenter's first AWS call fails and it
    /// exits, as its pod would crash-loop.
    WebIdentityRefused { code: String, message: String },
}

impl Fault {
    /// What was injected, for the recording's manifest.
    pub fn describe(&self) -> Value {
        match self {
            Fault::FleetError { code, message } => json!({"operation": "ec2:CreateFleet",
                "answer": "HTTP 200, no instance, errorSet: one item per launch template override",
                "errorCode": code, "errorMessage": message}),
            Fault::InstanceTerminated { code, message } => {
                json!({"operation": "ec2:DescribeInstances",
                "answer": "moto launched the instance; once it was terminated, DescribeInstances gives it this stateReason",
                "stateReason": {"code": code, "message": message}})
            }
            Fault::IamError {
                operation,
                status,
                code,
                message,
            } => json!({"operation": format!("iam:{operation}"),
                "answer": format!("HTTP {status}, IAM's <ErrorResponse>"), "errorCode": code, "errorMessage": message}),
            Fault::WebIdentityRefused { code, message } => {
                json!({"operation": "sts:AssumeRoleWithWebIdentity",
                "answer": "HTTP 403, STS's <ErrorResponse>", "errorCode": code, "errorMessage": message})
            }
            Fault::DryRunRefused {
                operation,
                code,
                message,
            } => json!({"operation": format!("ec2:{operation}"),
                "answer": "DryRun=true only: HTTP 403, EC2's <Response><Errors>; without DryRun, moto's",
                "errorCode": code, "errorMessage": message}),
        }
    }
}

/// Where a scenario happens.
#[derive(Clone, Debug)]
pub struct Setup {
    pub region: &'static str,
    /// The EC2NodeClass's root volume key (`blockDeviceMappings[].ebs.kmsKeyID`), if any.
    pub kms_key: Option<String>,
    pub fault: Fault,
}

impl Setup {
    /// Whether Karpenter is given an interruption queue (the instance's state change reaches
    /// it there).
    pub fn interruption_queue(&self) -> bool {
        matches!(self.fault, Fault::InstanceTerminated { .. })
    }

    /// Whether Karpenter gets its credentials through IRSA (and cannot: it exits).
    pub fn web_identity(&self) -> bool {
        matches!(self.fault, Fault::WebIdentityRefused { .. })
    }
}

pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else {
        "aws"
    }
}

pub fn role_arn(region: &str, role: &str) -> String {
    format!("arn:{}:iam::{ACCOUNT}:role/{role}", partition(region))
}

/// The assumed-role session AWS names as the caller in a denial.
pub fn session_arn(region: &str) -> String {
    format!(
        "arn:{}:sts::{ACCOUNT}:assumed-role/{CONTROLLER_ROLE}/{SESSION}",
        partition(region)
    )
}

/// A running scenario: the cluster, AWS, Karpenter.
pub struct Live {
    pub build: Build,
    pub setup: Setup,
    pub kube: KubeApi,
    pub moto: Moto,
    pub double: Double,
    front: Option<Child>,
    karpenter: Option<Child>,
    /// Karpenter's standard output and error, as its container's log holds them.
    pub log: PathBuf,
    /// How many DescribeInstances answers the double rewrote.
    pub rewritten: Arc<Mutex<usize>>,
    /// The cluster's OIDC issuer, where Karpenter uses IRSA.
    pub issuer: Option<String>,
    pub started: Instant,
}

impl Live {
    /// A cluster (API server, etcd, scheduler) with the version's CRDs, moto seeded for a
    /// Karpenter cluster in `setup.region`, the double injecting `setup.fault`, the EC2NodeClass
    /// and NodePool applied, Karpenter running and healthy; no pod yet.
    pub fn start(name: &str, build: &Build, setup: Setup) -> Option<Live> {
        let started = Instant::now();
        let mut kube = KubeApi::start(name)?;
        kube.start_scheduler();
        let mut crds: Vec<PathBuf> = std::fs::read_dir(build.dir.join("crds"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        crds.sort();
        for crd in crds {
            kube.apply_file(crd);
        }
        let moto = Moto::start(&format!("karpenter-{name}"));
        seed_aws(&moto, setup.region);
        if setup.interruption_queue() {
            aws_cli(
                &moto.endpoint,
                setup.region,
                "sqs",
                "create_queue",
                json!({"QueueName": CLUSTER}),
            );
        }
        let rewritten = Arc::new(Mutex::new(0));
        let double = {
            let (setup, rewritten) = (setup.clone(), rewritten.clone());
            Double::start(&moto.endpoint, move |call| route(call, &setup, &rewritten))
        };
        let dir = kube.dir.clone();
        // aws-sdk-go-v2's web identity provider asks STS at its own host (no AWS_ENDPOINT_URL):
        // through aws-front too.
        let front = (build.needs_front() || setup.web_identity()).then(|| {
            let mut child = Command::new(build.dir.join("aws-front"))
                .arg(dir.join("aws-front"))
                .arg(&double.endpoint)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.join("aws-front.log")).unwrap())
                .spawn()
                .expect("start aws-front");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert!(
                line.starts_with("READY "),
                "aws-front did not start: {line:?}"
            );
            (child, line.trim()["READY ".len()..].to_string())
        });
        kube.apply(&node_class(&setup).to_string());
        kube.apply(&node_pool().to_string());
        let issuer = setup
            .web_identity()
            .then(|| irsa(&kube, &moto, setup.region));
        let log = dir.join("karpenter.log");
        let mut live = Live {
            build: build.clone(),
            setup,
            kube,
            moto,
            double,
            front: None,
            karpenter: None,
            log,
            rewritten,
            issuer,
            started,
        };
        let proxy_port = front.as_ref().map(|(_, port)| port.clone());
        live.front = front.map(|(child, _)| child);
        live.start_karpenter(proxy_port.as_deref());
        Some(live)
    }

    fn start_karpenter(&mut self, proxy_port: Option<&str>) {
        let file = std::fs::File::create(&self.log).unwrap();
        let (metrics, health) = (super::free_port(), super::free_port());
        let mut command = Command::new(self.build.dir.join("controller"));
        command
            .args(["--cluster-name", CLUSTER])
            .arg(format!(
                "--cluster-endpoint=https://127.0.0.1:{}",
                self.kube.port
            ))
            .args(["--disable-leader-election", "--isolated-vpc"])
            .arg(format!("--metrics-port={metrics}"))
            .arg(format!("--health-probe-port={health}"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.kube.dir)
            .env("KUBECONFIG", &self.kube.kubeconfig)
            .env("SYSTEM_NAMESPACE", KARPENTER_NAMESPACE)
            .env("AWS_REGION", self.setup.region)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        if self.build.version.starts_with("v1.0.") {
            // v1.0's conversion and validation webhooks need a Service and certificates.
            command.arg("--disable-webhook");
        }
        if self.setup.interruption_queue() {
            command.args(["--interruption-queue", CLUSTER]);
        }
        if self.setup.web_identity() {
            let token = self.kube.dir.join("token");
            let issuer = self.issuer.as_deref().expect("the cluster's issuer");
            std::fs::write(&token, web_identity_token(issuer)).unwrap();
            command
                .env("AWS_ROLE_ARN", role_arn(self.setup.region, CONTROLLER_ROLE))
                .env("AWS_WEB_IDENTITY_TOKEN_FILE", token);
        } else {
            command
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing");
        }
        if let Some(port) = proxy_port {
            command
                .env("HTTPS_PROXY", format!("http://127.0.0.1:{port}"))
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env("AWS_CA_BUNDLE", self.kube.dir.join("aws-front/ca.crt"));
        }
        if !self.build.needs_front() {
            command.env("AWS_ENDPOINT_URL", &self.double.endpoint);
        }
        self.karpenter = Some(command.spawn().expect("start Karpenter"));
        if self.setup.web_identity() {
            self.wait_for_exit(Duration::from_secs(90));
            return;
        }
        // Healthy: its health probe answers.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let answer = super::live::http_get(Some(health), "/healthz");
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "Karpenter {} not healthy after 90 s:\n{}",
                self.build.version,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Fails, with the end of its log, when Karpenter has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.karpenter.as_mut().and_then(|c| c.try_wait().unwrap()) {
            self.karpenter = None;
            panic!(
                "Karpenter {} exited ({status}):\n{}",
                self.build.version,
                self.log_tail(60)
            );
        }
    }

    /// Waits (at most `wait`) for Karpenter to exit, as it does when it gets no credentials.
    fn wait_for_exit(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        let child = self.karpenter.as_mut().expect("Karpenter started");
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "Karpenter {} still runs after {} s:\n{}",
                self.build.version,
                wait.as_secs(),
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        self.karpenter = None;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// A pod that fits on one of the NodePool's instance types and on no node (there is none):
    /// the scheduler marks it Unschedulable, Karpenter provisions for it.
    pub fn pending_pod(&self) {
        self.kube.apply(
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "inflate-7d9f8b6c5-x2kqp", "namespace": "default",
                "labels": {"app": "inflate"}},
                "spec": {"containers": [{"name": "inflate", "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.9",
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}})
            .to_string(),
        );
    }

    /// Waits (at most `wait`) until `probe` holds, Karpenter running throughout.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        wait: Duration,
        probe: impl Fn(&Live) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(found) = probe(self) {
                return found;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "Karpenter {}: no {what} after {} s; the double saw {:?}\nKarpenter's log:\n{}",
                self.build.version,
                wait.as_secs(),
                summarize(&self.double.calls()),
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A resource as the harness reads it: a list (`kind: List`, as `kubectl get -o json`
    /// prints one) or one object; `managedFields` left out, as kubectl does.
    pub fn get(&self, path: &str) -> Value {
        let (code, body) = self.kube.get(path).unwrap();
        assert_eq!(code, 200, "GET {path}: {body}");
        let mut value: Value = serde_json::from_str(&body).unwrap();
        // A typed list names its items' kind only in its own: kubectl puts it back.
        let api_version = value["apiVersion"].clone();
        let kind = value["kind"]
            .as_str()
            .unwrap_or("")
            .trim_end_matches("List")
            .to_string();
        if let Some(items) = value["items"].as_array_mut() {
            for item in items.iter_mut() {
                let object = item.as_object_mut().unwrap();
                let mut with_type = serde_json::Map::new();
                with_type.insert("apiVersion".into(), api_version.clone());
                with_type.insert("kind".into(), json!(kind));
                with_type.append(object);
                *object = with_type;
                strip(item);
            }
            json!({"apiVersion": "v1", "kind": "List", "items": items.clone(),
                "metadata": {"resourceVersion": ""}})
        } else {
            strip(&mut value);
            value
        }
    }

    /// EventBridge's `EC2 Instance State-change Notification` (schema
    /// aws.ec2@EC2InstanceStateChangeNotification) for `instance`, delivered to Karpenter's
    /// interruption queue as an EventBridge rule targeting SQS delivers it.
    pub fn instance_state_change(&self, instance: &str, state: &str) {
        let region = self.setup.region;
        let event = json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
            "account": ACCOUNT, "time": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": region,
            "resources": [format!("arn:{}:ec2:{region}:{ACCOUNT}:instance/{instance}", partition(region))],
            "detail": {"instance-id": instance, "state": state}});
        let queue = aws_cli(
            &self.moto.endpoint,
            region,
            "sqs",
            "get_queue_url",
            json!({"QueueName": CLUSTER}),
        );
        aws_cli(
            &self.moto.endpoint,
            region,
            "sqs",
            "send_message",
            json!({"QueueUrl": queue["QueueUrl"], "MessageBody": event.to_string()}),
        );
    }

    pub fn node_claims(&self) -> Value {
        self.get("/apis/karpenter.sh/v1/nodeclaims")
    }

    pub fn events(&self) -> Value {
        self.get("/api/v1/events")
    }

    /// Writes what Karpenter wrote into `dir` (karpenter.log, nodeclaims.json,
    /// ec2nodeclass.json, nodepool.json, events.json), the AWS CLI outputs in `aws`
    /// (file name, output), and manifest.json saying what made them.
    pub fn record(
        &self,
        dir: &Path,
        scenario: &str,
        node_claims: &Value,
        aws: &[(&str, Value)],
        extra: Value,
    ) {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let write = |name: &str, value: &Value| {
            std::fs::write(
                dir.join(name),
                serde_json::to_string_pretty(value).unwrap() + "\n",
            )
            .unwrap();
        };
        std::fs::write(dir.join("karpenter.log"), self.log_text()).unwrap();
        write("nodeclaims.json", node_claims);
        write(
            "ec2nodeclass.json",
            &self.get("/apis/karpenter.k8s.aws/v1/ec2nodeclasses/default"),
        );
        write(
            "nodepool.json",
            &self.get("/apis/karpenter.sh/v1/nodepools/default"),
        );
        write("events.json", &self.events());
        if self.setup.web_identity() {
            write(
                "serviceaccount.json",
                &self.get(&format!(
                    "/api/v1/namespaces/{KARPENTER_NAMESPACE}/serviceaccounts/karpenter"
                )),
            );
        }
        for (name, output) in aws {
            write(name, output);
        }
        let mut manifest = json!({
            "scenario": scenario,
            "karpenter": {"module": self.build.info["module"], "version": self.build.version,
                "sum": self.build.info["sum"], "go": self.build.info["go"],
                "flags": format!("--cluster-name {CLUSTER} --cluster-endpoint https://127.0.0.1:PORT --disable-leader-election --isolated-vpc{}{}",
                    if self.build.version.starts_with("v1.0.") { " --disable-webhook" } else { "" },
                    if self.setup.interruption_queue() { format!(" --interruption-queue {CLUSTER}") } else { String::new() }),
                "aws": match (self.build.needs_front(), self.setup.web_identity()) {
                    (true, _) => "HTTPS_PROXY + AWS_CA_BUNDLE (aws-front), aws-sdk-go v1",
                    (false, true) => "AWS_ENDPOINT_URL, aws-sdk-go-v2; STS (web identity) through HTTPS_PROXY + AWS_CA_BUNDLE (aws-front)",
                    (false, false) => "AWS_ENDPOINT_URL, aws-sdk-go-v2",
                },
                "credentials": if self.setup.web_identity() { "IRSA: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, as EKS's pod identity webhook sets them" } else { "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" }},
            "kubernetes": {"kube-apiserver": super::kubeapi::kube_version(), "kube-scheduler": super::kubeapi::kube_version()},
            "aws": {"emulator": "moto (server mode) behind tests/common/double.rs", "region": self.setup.region,
                "account": ACCOUNT, "caller": session_arn(self.setup.region)},
            "injected": self.setup.fault.describe(),
            "calls": summarize(&self.double.calls()),
            "stripped": "metadata.managedFields (as kubectl get -o json leaves them out); nothing else",
        });
        if let (Some(m), Some(e)) = (manifest.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        write("manifest.json", &manifest);
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        for child in [self.karpenter.take(), self.front.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn strip(object: &mut Value) {
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
}

/// The operations in order, runs of the same one counted: `DescribeSubnets x3`.
pub fn summarize(calls: &[String]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for c in calls {
        match out.last_mut() {
            Some((last, n)) if last == c => *n += 1,
            _ => out.push((c.clone(), 1)),
        }
    }
    out.into_iter()
        .map(|(c, n)| if n == 1 { c } else { format!("{c} x{n}") })
        .collect()
}

/// The EC2NodeClass `default` as a cluster operator writes it (the same v1 object for every
/// version).
fn node_class(setup: &Setup) -> Value {
    let discovery = json!([{"tags": {"karpenter.sh/discovery": CLUSTER}}]);
    let mut spec = json!({
        "role": NODE_ROLE,
        "amiFamily": "AL2023",
        "amiSelectorTerms": [{"id": AMI}],
        "subnetSelectorTerms": discovery,
        "securityGroupSelectorTerms": discovery,
    });
    if let Some(key) = &setup.kms_key {
        spec["blockDeviceMappings"] = json!([{"deviceName": "/dev/xvda", "ebs": {
            "volumeSize": "20Gi", "volumeType": "gp3", "encrypted": true, "kmsKeyID": key}}]);
    }
    json!({"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "default"}, "spec": spec})
}

fn node_pool() -> Value {
    json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
        "spec": {"template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": INSTANCE_TYPES}]}}}})
}

/// moto as a Karpenter cluster's account: a VPC, two subnets and a security group tagged for
/// discovery, the node role, and the EKS cluster (with its service CIDR: AL2023's user data
/// needs it).
pub fn seed_aws(moto: &Moto, region: &str) {
    runtime().block_on(async {
        let conf = config(moto, region).await;
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let tag = |kind: aws_sdk_ec2::types::ResourceType, name: &str| {
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(kind)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("karpenter.sh/discovery")
                        .value(CLUSTER)
                        .build(),
                )
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value(name)
                        .build(),
                )
                .build()
        };
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = Vec::new();
        for (i, zone) in ["a", "b"].iter().enumerate() {
            let subnet = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(format!("10.0.{}.0/20", i * 16))
                .availability_zone(format!("{region}{zone}"))
                .tag_specifications(tag(
                    aws_sdk_ec2::types::ResourceType::Subnet,
                    &format!("{CLUSTER}-private-{region}{zone}"),
                ))
                .send()
                .await
                .unwrap();
            subnets.push(subnet.subnet().unwrap().subnet_id().unwrap().to_string());
        }
        ec2.create_security_group()
            .group_name(format!("{CLUSTER}-node"))
            .description("EKS node shared security group")
            .vpc_id(&vpc)
            .tag_specifications(tag(
                aws_sdk_ec2::types::ResourceType::SecurityGroup,
                &format!("{CLUSTER}-node"),
            ))
            .send()
            .await
            .unwrap();
        let iam = aws_sdk_iam::Client::new(&conf);
        let service = if region.starts_with("cn-") {
            "ec2.amazonaws.com.cn"
        } else {
            "ec2.amazonaws.com"
        };
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]});
        for role in [NODE_ROLE, CONTROLLER_ROLE] {
            iam.create_role()
                .role_name(role)
                .assume_role_policy_document(trust.to_string())
                .send()
                .await
                .unwrap();
        }
        let eks = aws_sdk_eks::Client::new(&conf);
        eks.create_cluster()
            .name(CLUSTER)
            .role_arn(role_arn(region, "prod-cluster-20240604092512345600000003"))
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(subnets))
                    .build(),
            )
            .kubernetes_network_config(
                aws_sdk_eks::types::KubernetesNetworkConfigRequest::builder()
                    .service_ipv4_cidr("10.100.0.0/16")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
}

/// The namespace Karpenter runs in (`SYSTEM_NAMESPACE`), and its ServiceAccount's.
pub const KARPENTER_NAMESPACE: &str = "kube-system";
/// The cluster's OIDC issuer (an EKS issuer's shape), as IAM names its provider.
pub const OIDC_ISSUER: &str =
    "oidc.eks.cn-northwest-1.amazonaws.com.cn/id/5C3FE5B1D8E8E6E3F3C2A1B0D9E8F7A6";

/// IRSA as it is set up wrong: Karpenter's ServiceAccount (kube-system/karpenter) names the
/// controller role, whose trust policy lets the ServiceAccount karpenter/karpenter (the
/// namespace of Karpenter's getting-started guide) assume it through the cluster's OIDC
/// provider (registered in IAM). Returns the cluster's issuer URL (moto's EKS gives one).
fn irsa(kube: &KubeApi, moto: &Moto, region: &str) -> String {
    kube.apply(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "karpenter", "namespace": KARPENTER_NAMESPACE,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn(region, CONTROLLER_ROLE)}}})
        .to_string(),
    );
    let cluster = aws_cli(
        &moto.endpoint,
        region,
        "eks",
        "describe_cluster",
        json!({"name": CLUSTER}),
    );
    let issuer = cluster["cluster"]["identity"]["oidc"]["issuer"]
        .as_str()
        .expect("moto gives the cluster an issuer")
        .to_string();
    let host = issuer.trim_start_matches("https://");
    let provider = aws_cli(
        &moto.endpoint,
        region,
        "iam",
        "create_open_id_connect_provider",
        json!({"Url": issuer, "ClientIDList": ["sts.amazonaws.com"],
            "ThumbprintList": ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]}),
    );
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": provider["OpenIDConnectProviderArn"]},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            format!("{host}:sub"): "system:serviceaccount:karpenter:karpenter",
            format!("{host}:aud"): "sts.amazonaws.com"}}}]});
    aws_cli(
        &moto.endpoint,
        region,
        "iam",
        "update_assume_role_policy",
        json!({"RoleName": CONTROLLER_ROLE, "PolicyDocument": trust.to_string()}),
    );
    issuer
}

/// A projected ServiceAccount token as the kubelet writes it for IRSA (a JWT: header, claims,
/// signature, each base64url): STS here does not verify it.
fn web_identity_token(issuer: &str) -> String {
    let claims = json!({"aud": ["sts.amazonaws.com"], "exp": 1717496400, "iat": 1717492800,
        "iss": issuer, "sub": format!("system:serviceaccount:{KARPENTER_NAMESPACE}:karpenter"),
        "kubernetes.io": {"namespace": KARPENTER_NAMESPACE, "serviceaccount": {"name": "karpenter"}}});
    [
        json!({"alg": "RS256", "kid": "1a2b3c4d"}).to_string(),
        claims.to_string(),
        "not a signature".into(),
    ]
    .iter()
    .map(|part| base64url(part.as_bytes()))
    .collect::<Vec<_>>()
    .join(".")
}

/// RFC 4648 §5, without padding (as JWTs have it).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The double's answers: the scenario's fault, and what moto lacks for the China regions
/// (their instance type offerings: moto ships none), else moto's.
fn route(call: &Call, setup: &Setup, rewritten: &Arc<Mutex<usize>>) -> Reply {
    match (call.operation.as_str(), &setup.fault) {
        ("DescribeInstanceTypeOfferings", _) if setup.region.starts_with("cn-") => {
            xml(instance_type_offerings(setup.region, &call.body))
        }
        (
            op,
            Fault::IamError {
                operation,
                status,
                code,
                message,
            },
        ) if op == operation => query_error(*status, code, &escape(message)),
        (
            op,
            Fault::DryRunRefused {
                operation,
                code,
                message,
            },
        ) if op == operation && form_value(&call.body, "DryRun").as_deref() == Some("true") => {
            ec2_error(403, code, &escape(message))
        }
        ("AssumeRoleWithWebIdentity", Fault::WebIdentityRefused { code, message }) => {
            sts_error(403, code, &escape(message))
        }
        ("CreateFleet", Fault::FleetError { code, message }) => {
            xml(create_fleet_errors(&call.body, code, message))
        }
        ("DescribeInstances", Fault::InstanceTerminated { code, message }) => {
            let (code, message, seen) = (code.clone(), message.clone(), rewritten.clone());
            Reply::Rewrite(Box::new(move |body| {
                if !body.contains("<name>terminated</name>") {
                    return body;
                }
                *seen.lock().unwrap() += 1;
                state_reason(&body, &code, &message)
            }))
        }
        _ => Reply::Forward,
    }
}

/// Every `Key=Value` of a query-protocol body, URL-decoded.
fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(k, _)| Some((k.to_string(), form_value(body, k)?)))
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// EC2's CreateFleet response (API reference, CreateFleet: `fleetId`, `errorSet` items of
/// `launchTemplateAndOverrides`, `lifecycle`, `errorCode`, `errorMessage`; `fleetInstanceSet`)
/// for an instant fleet none of whose overrides launched.
pub fn create_fleet_errors(body: &str, code: &str, message: &str) -> String {
    let fields = form(body);
    let lifecycle = fields
        .get("TargetCapacitySpecification.DefaultTargetCapacityType")
        .cloned()
        .unwrap_or_else(|| "on-demand".into());
    let mut items = String::new();
    for n in 1.. {
        let config = format!("LaunchTemplateConfigs.{n}");
        let Some(template) = fields
            .get(&format!(
                "{config}.LaunchTemplateSpecification.LaunchTemplateName"
            ))
            .or_else(|| {
                fields.get(&format!(
                    "{config}.LaunchTemplateSpecification.LaunchTemplateId"
                ))
            })
        else {
            break;
        };
        let by_name = fields.contains_key(&format!(
            "{config}.LaunchTemplateSpecification.LaunchTemplateName"
        ));
        let version = fields
            .get(&format!("{config}.LaunchTemplateSpecification.Version"))
            .cloned()
            .unwrap_or_else(|| "$Latest".into());
        for o in 1.. {
            let over = format!("{config}.Overrides.{o}");
            let Some(instance_type) = fields.get(&format!("{over}.InstanceType")) else {
                break;
            };
            let field = |f: &str| {
                fields
                    .get(&format!("{over}.{f}"))
                    .cloned()
                    .unwrap_or_default()
            };
            items += &format!(
                "        <item>\n            <launchTemplateAndOverrides>\n                <launchTemplateSpecification>\n                    <{tag}>{template}</{tag}>\n                    <version>{version}</version>\n                </launchTemplateSpecification>\n                <overrides>\n                    <instanceType>{instance_type}</instanceType>\n                    <subnetId>{subnet}</subnetId>\n                    <availabilityZone>{zone}</availabilityZone>\n                </overrides>\n            </launchTemplateAndOverrides>\n            <lifecycle>{lifecycle}</lifecycle>\n            <errorCode>{code}</errorCode>\n            <errorMessage>{message}</errorMessage>\n        </item>\n",
                tag = if by_name {
                    "launchTemplateName"
                } else {
                    "launchTemplateId"
                },
                template = escape(template),
                version = escape(&version),
                subnet = field("SubnetId"),
                zone = field("AvailabilityZone"),
                message = escape(
                    &message
                        .replace("{instanceType}", instance_type)
                        .replace("{zone}", &field("AvailabilityZone"))
                ),
            );
        }
    }
    assert!(
        !items.is_empty(),
        "a CreateFleet request without overrides: {body}"
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateFleetResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n    <requestId>4e36a6e8-8a6a-4e8f-b6f1-0example</requestId>\n    <fleetId>fleet-7f3d2b1c-5e4a-4c8b-9d6e-0a1b2c3d4e5f</fleetId>\n    <errorSet>\n{items}    </errorSet>\n    <fleetInstanceSet/>\n</CreateFleetResponse>\n"
    )
}

/// EC2's DescribeInstanceTypeOfferings response (API reference) for the NodePool's instance
/// types in every zone of `region` that the request's filters do not leave out.
fn instance_type_offerings(region: &str, body: &str) -> String {
    let fields = form(body);
    let location_type = fields
        .get("LocationType")
        .cloned()
        .unwrap_or_else(|| "region".into());
    let locations: Vec<String> = if location_type == "availability-zone" {
        ["a", "b", "c"]
            .iter()
            .map(|z| format!("{region}{z}"))
            .collect()
    } else {
        vec![region.to_string()]
    };
    let mut items = String::new();
    for t in INSTANCE_TYPES {
        for l in &locations {
            items += &format!(
                "        <item>\n            <instanceType>{t}</instanceType>\n            <locationType>{location_type}</locationType>\n            <location>{l}</location>\n        </item>\n"
            );
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstanceTypeOfferingsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n    <requestId>f8b86168-d034-4e65-b48d-3b84cexample</requestId>\n    <instanceTypeOfferingSet>\n{items}    </instanceTypeOfferingSet>\n</DescribeInstanceTypeOfferingsResponse>\n"
    )
}

/// moto's DescribeInstances answer (its one instance terminated) with the `stateReason` AWS
/// gives an instance that died at launch.
fn state_reason(body: &str, code: &str, message: &str) -> String {
    let reason = regex::Regex::new(r"(?s)<stateReason>.*?</stateReason>").unwrap();
    let replacement = format!(
        "<stateReason>\n                        <code>{}</code>\n                        <message>{}</message>\n                    </stateReason>",
        escape(code),
        escape(message)
    );
    if reason.is_match(body) {
        reason.replace_all(body, replacement.as_str()).into_owned()
    } else {
        body.replace(
            "</instanceState>",
            &format!("</instanceState>\n                    {replacement}"),
        )
    }
}

/// What `aws SERVICE OPERATION` prints (JSON; pages merged as the CLI merges them) for the
/// botocore operation `operation` with `params`, asked of `endpoint` (the double, or moto) in
/// `region`: botocore is the AWS CLI's own request and response layer, here from moto's venv.
pub fn aws_cli(
    endpoint: &str,
    region: &str,
    service: &str,
    operation: &str,
    params: Value,
) -> Value {
    let venv = std::env::var_os("MOTO_VENV")
        .map_or_else(|| Path::new(ROOT).join(".venv-moto"), PathBuf::from);
    let script = r#"
import boto3, json, sys
service, op, region, endpoint, params = sys.argv[1:6]
c = boto3.client(service, region_name=region, endpoint_url=endpoint,
                 aws_access_key_id="testing", aws_secret_access_key="testing")
if c.can_paginate(op):
    result = c.get_paginator(op).paginate(**json.loads(params)).build_full_result()
else:
    result = getattr(c, op)(**json.loads(params))
result.pop("ResponseMetadata", None)
print(json.dumps(result, indent=4, default=lambda o: o.isoformat()))
"#;
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", script, service, operation, region, endpoint])
        .arg(params.to_string())
        .output()
        .expect("run botocore");
    assert!(
        out.status.success(),
        "aws {service} {operation}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
