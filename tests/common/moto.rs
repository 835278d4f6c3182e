//! moto in server mode on a free loopback port, installed on first use into `.venv-moto/`
//! (tests/aws/install-moto.sh, pinned). Its request log counts what the doctor asked of AWS.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
    log: PathBuf,
}

impl Moto {
    pub fn start(name: &str) -> Moto {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let venv =
            std::env::var_os("MOTO_VENV").map_or_else(|| root.join(".venv-moto"), PathBuf::from);
        super::install("aws/install-moto.sh", &venv);
        // A port is free only when asked: another listener (a double, another test's server)
        // may take it before moto binds, and a connect would then reach that listener. So wait
        // for moto's own "Running on" line, and start again on another port if moto exits.
        for _ in 0..5 {
            let port = super::free_port();
            let log =
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{name}-{port}.log"));
            let mut child = Command::new(venv.join("bin/moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("start moto_server");
            let running = format!("Running on http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if std::fs::read_to_string(&log).is_ok_and(|l| l.contains(&running)) {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        log,
                    };
                }
                if child.try_wait().is_ok_and(|s| s.is_some()) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "moto did not start on port {port}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("moto exited five times at start; see target/tmp/moto-{name}-*.log")
    }

    /// Requests moto has served so far (its access log, one line per request).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("] \"") && l.contains("HTTP/1.1"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
