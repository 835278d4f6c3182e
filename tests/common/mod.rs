//! Shared test helpers: moto, the real kube-apiserver and the oracle, installed or built on first
//! use, and a seeded random generator.
#![allow(dead_code)]

pub mod credentials;
pub mod double;
pub mod karpenter;
pub mod karpenter_scenarios;
pub mod kubeapi;
pub mod live;
pub mod moto;
pub mod oracle;
pub mod real;
pub mod real_karpenter;
pub mod rng;

/// Runs `tests/<script> <into>`, the pinned installer of a test tool (it does nothing when the
/// tool is already there); a failed install fails the test.
pub fn install(script: &str, into: &std::path::Path) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new("bash")
        .arg(root.join("tests").join(script))
        .arg(into)
        .status()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        status.success(),
        "{script}: installing into {} failed",
        into.display()
    );
}

/// A loopback port free at the time of asking, and never handed out twice in this process (tests
/// run in parallel threads; the kernel may offer a port again as soon as it is released). Where
/// the program under test can bind port 0 and say which port it got, prefer that.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The peak resident memory of `child` (KiB), sampled every 5 ms until it exits.
pub fn peak_rss_until_exit(child: &mut std::process::Child) -> u64 {
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(rss_kib(pid).1);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    peak
}

/// (current, peak) resident memory of a process, in KiB (`VmRSS`, `VmHWM`); 0 once it is gone.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
