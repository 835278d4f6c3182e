//! A real Kubernetes API server for end-to-end tests: kube-apiserver and etcd, built from source
//! on first use (tests/kube/build-apiserver.sh, pinned by tests/kube/apiserver/go.mod), on
//! loopback with random free ports, TLS (a test CA from kubeapi-pki), ServiceAccount tokens
//! signed by a key of its own, RBAC, and an audit log of every request. The harness is
//! `system:masters` (a static token); a process under test gets a kubeconfig of a
//! ServiceAccount (`service_account_kubeconfig`, a TokenRequest token), so it runs with exactly
//! the permissions its RBAC grants. Everything lives in `target/tmp/kubeapi-<name>/`, logs
//! kept for failures; dropping the [`KubeApi`] stops every process it started.
//!
//! Pod logs need a kubelet: `start_kubelet` runs the kubelet double (logs written by the test
//! in CRI format) and registers it as a Node, so the API server proxies `pods/NAME/log` to it.
//!
//! The methods block (each runs its own tokio runtime): call them outside `block_on`.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Who the harness is: in `system:masters`, allowed everything.
pub const ADMIN: &str = "karpenter-doctor-tests-admin";
/// The ServiceAccount token issuer (and, so, the default audience).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Exit status of build-apiserver.sh when the Go module proxy cannot be reached.
const NO_NETWORK: i32 = 75;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `k8s.io/kubernetes`'s version pinned in tests/kube/apiserver/go.mod, e.g. `v1.37.2`.
pub fn kube_version() -> String {
    let go_mod = std::fs::read_to_string(root().join("tests/kube/apiserver/go.mod")).unwrap();
    go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes v"))
        .map(|v| format!("v{}", v.split_whitespace().next().unwrap()))
        .expect("k8s.io/kubernetes in tests/kube/apiserver/go.mod")
}

/// The directory of the built binaries (`.tools/kube-<version>/`, built on first use), or why
/// they cannot be built here: only when the Go module proxy is out of reach. Any other build
/// failure fails the test.
pub fn binaries() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = std::env::var_os("KUBEAPI_BIN_DIR").map_or_else(
                || {
                    root()
                        .join(".tools")
                        .join(format!("kube-{}", kube_version()))
                },
                PathBuf::from,
            );
            let status = Command::new("bash")
                .arg(root().join("tests/kube/build-apiserver.sh"))
                .arg(&dir)
                .status()
                .unwrap_or_else(|e| panic!("run tests/kube/build-apiserver.sh: {e}"));
            match status.code() {
                Some(0) => Ok(dir),
                Some(NO_NETWORK) => Err(format!(
                    "kube-apiserver {} cannot be built here: the Go module proxy is out of reach",
                    kube_version()
                )),
                _ => panic!(
                    "tests/kube/build-apiserver.sh {} failed ({status})",
                    dir.display()
                ),
            }
        })
        .clone()
}

pub struct KubeApi {
    pub name: String,
    /// `target/tmp/kubeapi-<name>/`: pki/, etcd/, the logs, the kubeconfigs.
    pub dir: PathBuf,
    bin: PathBuf,
    /// kube-apiserver's secure port on 127.0.0.1.
    pub port: u16,
    /// etcd's client port on 127.0.0.1 (plain HTTP, gRPC and its JSON gateway).
    pub etcd_port: u16,
    etcd_peer_port: u16,
    etcd: Option<Child>,
    apiserver: Option<Child>,
    scheduler: Option<Child>,
    kubelet: Option<Kubelet>,
    token: String,
    /// The harness's kubeconfig (system:masters).
    pub kubeconfig: PathBuf,
    /// The audit log: one JSON event per request, at `Metadata` level.
    pub audit_log: PathBuf,
    /// When each kube-apiserver process started and when it was ready (`/readyz`): before
    /// that it serves, but may refuse what its RBAC will allow once its caches are filled.
    pub unready: Vec<(k8s_openapi::jiff::Timestamp, k8s_openapi::jiff::Timestamp)>,
}

struct Kubelet {
    child: Child,
    node: String,
    logs: PathBuf,
}

impl KubeApi {
    /// etcd and kube-apiserver, ready (`/readyz`), the harness's kubeconfig written; `None`
    /// (and why, on standard error) when the binaries cannot be built for lack of network.
    pub fn start(name: &str) -> Option<KubeApi> {
        let bin = match binaries() {
            Ok(bin) => bin,
            // Off the network a developer's run skips; CI never does.
            Err(why) if std::env::var_os("CI").is_none() => {
                eprintln!("SKIPPED: {why}");
                return None;
            }
            Err(why) => panic!("{why} (CI is set: the real API server is required)"),
        };
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kubeapi-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new(bin.join("kubeapi-pki"))
            .arg(dir.join("pki"))
            .status()
            .unwrap();
        assert!(status.success(), "kubeapi-pki failed");
        let token = random_hex();
        std::fs::write(
            dir.join("tokens.csv"),
            format!("{token},{ADMIN},{ADMIN},\"system:masters\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("audit-policy.yaml"),
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
        )
        .unwrap();
        let port = super::free_port();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_text(port, &dir, ADMIN, &token)).unwrap();
        let mut kube = KubeApi {
            name: name.to_string(),
            audit_log: dir.join("audit.log"),
            dir,
            bin,
            port,
            etcd_port: super::free_port(),
            etcd_peer_port: super::free_port(),
            etcd: None,
            apiserver: None,
            scheduler: None,
            kubelet: None,
            token,
            kubeconfig,
            unready: Vec::new(),
        };
        kube.start_etcd();
        kube.start_apiserver();
        // No kube-controller-manager runs: the `default` ServiceAccounts it would create (pods
        // need one in their namespace) are made here.
        for ns in ["default", "kube-system"] {
            kube.service_account(ns, "default");
        }
        Some(kube)
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(name))
            .unwrap()
    }

    /// The last lines of one of the logs in the data directory, for failure messages.
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts etcd (again: same data, same ports) and waits until it is healthy.
    pub fn start_etcd(&mut self) {
        assert!(self.etcd.is_none(), "etcd is already running");
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer = format!("http://127.0.0.1:{}", self.etcd_peer_port);
        let child = Command::new(self.bin.join("etcd"))
            .args(["--name", "kubeapi"])
            .arg("--data-dir")
            .arg(self.dir.join("etcd"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("kubeapi={peer}")])
            // A test cluster: speed over durability.
            .args(["--unsafe-no-fsync", "--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(self.log_file("etcd.log"))
            .spawn()
            .expect("start etcd");
        self.etcd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, body)) = http(self.etcd_port, "GET", "/health", "")
                && body.contains("\"true\"")
            {
                return;
            }
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "etcd is not healthy after 30 s:\n{}",
                self.log_tail("etcd.log", 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops etcd (SIGTERM); the API server, if running, loses its storage.
    pub fn stop_etcd(&mut self) {
        if let Some(child) = self.etcd.take() {
            terminate(child, "etcd");
        }
    }

    /// Compacts etcd's history up to a revision newer than any resourceVersion a client has
    /// seen (a key outside the API server's prefix is written first, through etcd's JSON
    /// gateway), as the API server does every 5 minutes: watches and lists from an older
    /// resourceVersion that reach etcd answer 410 Gone. The API server's watch cache keeps
    /// serving its own window: stop it first (`stop_apiserver`) and start it after, so that no
    /// bookmark of its shutdown moves a watch past the compaction. Returns the revision.
    pub fn compact_etcd(&self) -> i64 {
        // key "kubeapi-tests/compaction", value "1"
        let (code, body) = http(
            self.etcd_port,
            "POST",
            "/v3/kv/put",
            r#"{"key":"a3ViZWFwaS10ZXN0cy9jb21wYWN0aW9u","value":"MQ=="}"#,
        )
        .expect("etcd put");
        assert_eq!(code, 200, "etcd put: {body}");
        let (code, body) = http(
            self.etcd_port,
            "POST",
            "/v3/kv/range",
            r#"{"key":"AA==","limit":1}"#,
        )
        .expect("etcd range");
        assert_eq!(code, 200, "etcd range: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        let revision = &answer["header"]["revision"];
        let revision: i64 = revision
            .as_str()
            .map_or_else(|| revision.as_i64(), |s| s.parse().ok())
            .unwrap_or_else(|| panic!("no revision in {body}"));
        let (code, body) = http(
            self.etcd_port,
            "POST",
            "/v3/kv/compaction",
            &json!({"revision": revision.to_string(), "physical": true}).to_string(),
        )
        .expect("etcd compaction");
        assert_eq!(code, 200, "etcd compaction: {body}");
        revision
    }

    /// Starts kube-apiserver (again: same etcd, same port) and waits for `/readyz`.
    pub fn start_apiserver(&mut self) {
        assert!(
            self.apiserver.is_none(),
            "kube-apiserver is already running"
        );
        let started = k8s_openapi::jiff::Timestamp::now();
        let pki = |f: &str| self.dir.join("pki").join(f);
        let arg = |flag: &str, path: PathBuf| format!("--{flag}={}", path.display());
        let child = Command::new(self.bin.join("kube-apiserver"))
            .arg(format!(
                "--etcd-servers=http://127.0.0.1:{}",
                self.etcd_port
            ))
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            // The `kubernetes` Service's endpoints may not be loopback: none are kept.
            .arg("--endpoint-reconciler-type=none")
            .arg(format!("--secure-port={}", self.port))
            .arg(arg("cert-dir", self.dir.join("apiserver-certs")))
            .arg(arg("tls-cert-file", pki("serving.crt")))
            .arg(arg("tls-private-key-file", pki("serving.key")))
            .arg(arg("client-ca-file", pki("ca.crt")))
            .arg(arg("token-auth-file", self.dir.join("tokens.csv")))
            .arg(format!("--service-account-issuer={ISSUER}"))
            .arg(arg("service-account-key-file", pki("sa.pub")))
            .arg(arg("service-account-signing-key-file", pki("sa.key")))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .arg(arg("kubelet-client-certificate", pki("kubelet-client.crt")))
            .arg(arg("kubelet-client-key", pki("kubelet-client.key")))
            .arg(arg("kubelet-certificate-authority", pki("ca.crt")))
            .arg("--kubelet-preferred-address-types=InternalIP")
            .arg(arg("audit-policy-file", self.dir.join("audit-policy.yaml")))
            .arg(arg("audit-log-path", self.audit_log.clone()))
            .args(["--audit-log-mode=blocking", "--profiling=false", "--v=1"])
            .stdout(Stdio::null())
            .stderr(self.log_file("kube-apiserver.log"))
            .spawn()
            .expect("start kube-apiserver");
        self.apiserver = Some(child);
        self.wait_ready();
        self.unready
            .push((started, k8s_openapi::jiff::Timestamp::now()));
    }

    /// Stops kube-apiserver (SIGTERM: it drains, as in a rolling update of the control plane).
    pub fn stop_apiserver(&mut self) {
        if let Some(child) = self.apiserver.take() {
            terminate(child, "kube-apiserver");
        }
    }

    /// A new kube-apiserver process on the same port and etcd: watches break, the watch
    /// cache is rebuilt from etcd.
    pub fn restart_apiserver(&mut self) {
        self.stop_apiserver();
        self.start_apiserver();
    }

    /// Starts the real kube-scheduler (same `k8s.io/kubernetes` release, built beside the API
    /// server) as `system:masters`, no leader election, no serving port: it binds pods to
    /// Nodes, and marks those that fit on none `PodScheduled=False`, reason `Unschedulable`.
    pub fn start_scheduler(&mut self) {
        assert!(
            self.scheduler.is_none(),
            "kube-scheduler is already running"
        );
        let child = Command::new(self.bin.join("kube-scheduler"))
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["--leader-elect=false", "--secure-port=0", "--v=1"])
            .stdout(Stdio::null())
            .stderr(self.log_file("kube-scheduler.log"))
            .spawn()
            .expect("start kube-scheduler");
        self.scheduler = Some(child);
    }

    /// Fails, with the end of its log, when etcd or kube-apiserver has exited.
    fn assert_alive(&mut self) {
        let mut exited = None;
        if let Some(status) = self.etcd.as_mut().and_then(|c| c.try_wait().unwrap()) {
            self.etcd = None;
            exited = Some(("etcd", "etcd.log", status));
        }
        if let Some(status) = self.apiserver.as_mut().and_then(|c| c.try_wait().unwrap()) {
            self.apiserver = None;
            exited = exited.or(Some(("kube-apiserver", "kube-apiserver.log", status)));
        }
        if let Some((what, log, status)) = exited {
            panic!("{what} exited ({status}):\n{}", self.log_tail(log, 40));
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let last = match self.get("/readyz") {
                Ok((200, _)) => return,
                Ok((code, body)) => format!("{code}: {body}"),
                Err(e) => e,
            };
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "kube-apiserver is not ready after 90 s ({last}):\n{}",
                self.log_tail("kube-apiserver.log", 40)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A GET of any path as the harness: (status, body), or why no answer came.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        super::live::runtime().block_on(async {
            let client = self.client().await;
            let request = http::Request::get(path).body(Vec::new()).unwrap();
            let response = client.send(request.map(Into::into)).await;
            let response = response.map_err(|e| e.to_string())?;
            let code = response.status().as_u16();
            let body = response.into_body().collect_bytes().await;
            let body = body.map_err(|e| e.to_string())?;
            Ok((code, String::from_utf8_lossy(&body).into_owned()))
        })
    }

    /// A kube client for the harness's own reads and writes (system:masters).
    pub async fn client(&self) -> kube::Client {
        client_from(&self.kubeconfig).await
    }

    /// Server-side applies every object of a multi-document YAML or JSON text (the field
    /// manager `kubeapi-tests`, forced, strict field validation), each to the resource
    /// discovery finds for its kind, its `status` through the status subresource where there
    /// is one; waits for applied CRDs to be Established. Returns the objects as stored.
    pub fn apply(&self, yaml: &str) -> Vec<Value> {
        let docs: Vec<Value> = serde_norway::Deserializer::from_str(yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|d: &Value| d.is_object())
            // A `kind: List` (as `kubectl get -o yaml` prints) is its items.
            .flat_map(|d| match d["kind"].as_str() {
                Some("List") => d["items"].as_array().cloned().unwrap_or_default(),
                _ => vec![d],
            })
            .collect();
        let mut applied = Vec::new();
        for doc in docs {
            let object = self.apply_one(doc);
            if object["kind"] == "CustomResourceDefinition" {
                self.wait_established(object["metadata"]["name"].as_str().unwrap());
            }
            applied.push(object);
        }
        applied
    }

    fn apply_one(&self, doc: Value) -> Value {
        let api_version = doc["apiVersion"].as_str().expect("apiVersion").to_string();
        let (group, version) = api_version
            .split_once('/')
            .unwrap_or(("", api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().expect("kind"));
        let name = doc["metadata"]["name"].as_str().expect("name").to_string();
        let namespace = doc["metadata"]["namespace"].as_str().map(str::to_string);
        let object: DynamicObject = serde_json::from_value(doc).unwrap();
        super::live::runtime().block_on(async {
            let client = self.client().await;
            // A kind whose CRD was just established may take a moment to be discovered.
            let deadline = Instant::now() + Duration::from_secs(10);
            let (resource, caps) = loop {
                match kube::discovery::pinned_kind(&client, &gvk).await {
                    Ok(found) => break found,
                    Err(e) if Instant::now() > deadline => panic!("discover {gvk:?}: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            let api: Api<DynamicObject> = match caps.scope {
                kube::discovery::Scope::Namespaced => Api::namespaced_with(
                    client,
                    namespace.as_deref().unwrap_or("default"),
                    &resource,
                ),
                kube::discovery::Scope::Cluster => Api::all_with(client, &resource),
            };
            // Strict: a field the kind's schema does not know is an error, not a silent prune
            // (a v1 object relabelled v1beta1 fails here, as it would in a cluster).
            let params = PatchParams::apply("kubeapi-tests").force().validation_strict();
            let stored = api
                .patch(&name, &params, &Patch::Apply(&object))
                .await
                .unwrap_or_else(|e| panic!("apply {gvk:?} {name}: {e}"));
            // Where status is a subresource the main resource ignores it: apply it there.
            let status_subresource = caps.subresources.iter().any(|(r, _)| r.plural == "status");
            let stored = match object.data.get("status") {
                Some(status) if status_subresource => {
                    let body = json!({"apiVersion": object.types.as_ref().map(|t| t.api_version.clone()),
                        "kind": object.types.as_ref().map(|t| t.kind.clone()),
                        "metadata": {"name": name}, "status": status});
                    api.patch_status(&name, &params, &Patch::Apply(&body))
                        .await
                        .unwrap_or_else(|e| panic!("apply {gvk:?} {name}/status: {e}"))
                }
                _ => stored,
            };
            serde_json::to_value(stored).unwrap()
        })
    }

    /// Applies a YAML file (relative to the repository, or absolute).
    pub fn apply_file(&self, path: impl AsRef<Path>) -> Vec<Value> {
        let path = root().join(path);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        self.apply(&text)
    }

    /// Waits until the CRD `name` is Established (its resource is served), or fails.
    pub fn wait_established(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let crd: Value = super::live::runtime().block_on(async {
                let api: Api<
                    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
                > = Api::all(self.client().await);
                serde_json::to_value(api.get(name).await.unwrap()).unwrap()
            });
            let conditions = crd["status"]["conditions"].as_array().cloned();
            let holds = |t: &str| {
                conditions
                    .iter()
                    .flatten()
                    .any(|c| c["type"] == t && c["status"] == "True")
            };
            if holds("Established") && holds("NamesAccepted") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "CRD {name} not Established after 30 s: {:#}",
                crd["status"]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates the namespace (if missing) and its `default` ServiceAccount, as the namespace's
    /// controllers would.
    pub fn namespace(&self, name: &str) {
        super::live::runtime().block_on(async {
            let api: Api<Namespace> = Api::all(self.client().await);
            let ns: Namespace =
                serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
            match api.create(&PostParams::default(), &ns).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("create namespace {name}: {e}"),
            }
        });
        self.service_account(name, "default");
    }

    /// Creates the ServiceAccount if it is missing.
    pub fn service_account(&self, namespace: &str, name: &str) {
        super::live::runtime().block_on(async {
            let api: Api<ServiceAccount> = Api::namespaced(self.client().await, namespace);
            let sa: ServiceAccount =
                serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
            match api.create(&PostParams::default(), &sa).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("create serviceaccount {namespace}/{name}: {e}"),
            }
        });
    }

    /// A token of the ServiceAccount (a TokenRequest, valid for a day, for the API server's
    /// audience), the ServiceAccount (and its namespace) created if missing.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        self.namespace(namespace);
        self.service_account(namespace, name);
        super::live::runtime().block_on(async {
            let api: Api<ServiceAccount> = Api::namespaced(self.client().await, namespace);
            let request = TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(vec![ISSUER.to_string()]),
                    expiration_seconds: Some(24 * 3600),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let answer = api
                .create_token_request(name, &PostParams::default(), &request)
                .await
                .unwrap_or_else(|e| panic!("token of {namespace}/{name}: {e}"));
            answer
                .status
                .and_then(|s| s.token)
                .expect("a token in the TokenRequest's status")
        })
    }

    /// A kubeconfig that makes its user the ServiceAccount `namespace/name` (a token from
    /// `service_account_token`): `target/tmp/kubeapi-<name>/kubeconfig-<namespace>-<name>`.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let token = self.service_account_token(namespace, name);
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let path = self.dir.join(format!("kubeconfig-{namespace}-{name}"));
        std::fs::write(&path, kubeconfig_text(self.port, &self.dir, &user, &token)).unwrap();
        path
    }

    /// The audit events so far (one per request, after its response): `user.username`, `verb`,
    /// `requestURI`, `responseStatus.code`, …
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The requests `user` made: (verb, requestURI, response code), in order.
    pub fn requests_of(&self, user: &str) -> Vec<(String, String, u16)> {
        self.audit()
            .into_iter()
            .filter(|e| e["user"]["username"] == user && e["stage"] == "ResponseComplete")
            .map(|e| {
                (
                    e["verb"].as_str().unwrap_or("").to_string(),
                    e["requestURI"].as_str().unwrap_or("").to_string(),
                    e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                )
            })
            .collect()
    }

    /// Starts the kubelet double and registers it as the Node `node` (127.0.0.1, its port):
    /// pods bound to it (spec.nodeName) have the logs `feed_log` writes.
    pub fn start_kubelet(&mut self, node: &str) {
        assert!(
            self.kubelet.is_none(),
            "the kubelet double is already running"
        );
        let logs = self.dir.join("pod-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let pki = self.dir.join("pki");
        let mut child = Command::new(self.bin.join("kubelet-double"))
            .arg(&logs)
            .arg(pki.join("ca.crt"))
            .arg(pki.join("kubelet.crt"))
            .arg(pki.join("kubelet.key"))
            .stdout(Stdio::piped())
            .stderr(self.log_file("kubelet-double.log"))
            .spawn()
            .expect("start kubelet-double");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: i32 = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the kubelet double did not start: {line:?}"));
        self.kubelet = Some(Kubelet {
            child,
            node: node.to_string(),
            logs,
        });
        super::live::runtime().block_on(async {
            let api: Api<Node> = Api::all(self.client().await);
            let status = json!({"status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet double", "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}});
            let node_object: Node =
                serde_json::from_value(json!({"metadata": {"name": node}})).unwrap();
            api.create(&PostParams::default(), &node_object)
                .await
                .unwrap_or_else(|e| panic!("register node {node}: {e}"));
            api.patch_status(node, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .unwrap_or_else(|e| panic!("node {node} status: {e}"));
        });
    }

    /// The Node the kubelet double is registered as.
    pub fn node(&self) -> &str {
        &self.kubelet.as_ref().expect("start_kubelet first").node
    }

    fn pod_log(&self, namespace: &str, pod: &str, container: &str) -> PathBuf {
        let kubelet = self.kubelet.as_ref().expect("start_kubelet first");
        kubelet
            .logs
            .join(format!("{namespace}_{pod}_{container}.log"))
    }

    /// Appends lines to a container's log as the container runtime writes it, stamped `time`
    /// (RFC 3339, with or without fraction); the first call makes the container "running".
    pub fn feed_log(&self, namespace: &str, pod: &str, container: &str, time: &str, lines: &str) {
        self.append_log(self.pod_log(namespace, pod, container), time, lines);
    }

    /// Appends lines to the log of the container before its restart (`logs --previous`).
    pub fn feed_previous_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        time: &str,
        lines: &str,
    ) {
        let path = self
            .pod_log(namespace, pod, container)
            .with_extension("previous.log");
        self.append_log(path, time, lines);
    }

    fn append_log(&self, path: PathBuf, time: &str, lines: &str) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let text: String = lines
            .lines()
            .map(|l| format!("{time} stdout F {l}\n"))
            .collect();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// Ends a container's log: followers see the end of the stream, as when it exits.
    pub fn end_log(&self, namespace: &str, pod: &str, container: &str) {
        let mut path = self.pod_log(namespace, pod, container).into_os_string();
        path.push(".exited");
        std::fs::write(path, "").unwrap();
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        for child in [
            self.kubelet.take().map(|k| k.child),
            self.scheduler.take(),
            self.apiserver.take(),
            self.etcd.take(),
        ]
        .into_iter()
        .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM (a graceful stop), then after 5 s a second SIGTERM (which ends kube-apiserver at
/// once: its graceful stop waits on streams such as a followed pods/log), then SIGKILL.
fn terminate(mut child: Child, what: &str) {
    let signal = |child: &Child| {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    };
    signal(&child);
    let start = Instant::now();
    let mut again = false;
    while child.try_wait().unwrap().is_none() {
        if !again && start.elapsed() > Duration::from_secs(5) {
            eprintln!("{what} still running 5 s after SIGTERM: a second SIGTERM");
            signal(&child);
            again = true;
        }
        if start.elapsed() > Duration::from_secs(15) {
            eprintln!("{what} did not stop on SIGTERM in 15 s: killed");
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> kube::Client {
    let file = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn kubeconfig_text(port: u16, dir: &Path, user: &str, token: &str) -> String {
    let ca = dir.join("pki/ca.crt");
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubeapi\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: kubeapi\n  context:\n    cluster: kubeapi\n    user: {user}\ncurrent-context: kubeapi\n",
        ca.display()
    )
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// 128 random bits, hex (a bearer token).
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..2)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// One plain-HTTP request to 127.0.0.1:`port` (etcd): (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, rest) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        text = rest[n..].trim_start_matches("\r\n");
    }
    out
}
