//! A Kubernetes API server double on loopback for end-to-end tests (kmock's emulator with the
//! shims of tests/kube/emulator.py), a kubeconfig that points at it, and its pod-log feed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Kube {
    child: Child,
    pub port: u16,
    pub kubeconfig: PathBuf,
    pub requests: PathBuf,
}

impl Kube {
    pub fn start(name: &str) -> Kube {
        Kube::start_serving(name, "v1")
    }

    /// An emulator serving Karpenter's groups at `karpenter_version` (v1, or v1beta1).
    pub fn start_serving(name: &str, karpenter_version: &str) -> Kube {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let venv = root.join(".venv-kmock");
        super::install("kube/install-kmock.sh", &venv);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kube-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let requests = dir.join("requests.log");
        let mut child = Command::new(venv.join("bin/python"))
            .arg(root.join("tests/kube/emulator.py"))
            .arg("0")
            .env("KMOCK_REQUEST_LOG", &requests)
            .env("KARPENTER_VERSION", karpenter_version)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("emulator.err")).unwrap())
            .spawn()
            .expect("start the emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the emulator did not start: {line:?}"));
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: test\n  user:\n    token: test\ncontexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: test\ncurrent-context: kmock\n"
            ),
        )
        .unwrap();
        Kube {
            child,
            port,
            kubeconfig,
            requests,
        }
    }

    /// A kube client for the test's own reads and writes.
    pub async fn client(&self) -> kube::Client {
        let config = kube::Config::new(format!("http://127.0.0.1:{}", self.port).parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// Appends log lines to a pod's log, stamped `time` (RFC 3339).
    pub fn feed_log(&self, namespace: &str, pod: &str, time: &str, lines: &str) {
        let path = format!("/_test/logs/{namespace}/{pod}?time={time}");
        let status = self.raw("POST", &path, lines);
        assert!(
            status.starts_with("HTTP/1.1 2"),
            "feeding the log: {status}"
        );
    }

    fn raw(&self, method: &str, path: &str, body: &str) -> String {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    }
}

impl Drop for Kube {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
