//! Benchmark: offline `karpenter-doctor preflight` (release build, pinned to one core) on 100
//! EC2NodeClasses (each its own node role, half with an EBS KMS key, each with its NodePool)
//! against a real controller policy (terraform-aws-eks v21.19, aws-cn: seed 1's story) before
//! deploy: wall time and peak memory, median of 5. Target (issue 27): under 1 s. The reference in
//! the same run is the same command on one EC2NodeClass: the cost of 99 more.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const POLICY: &str = "tests/fixtures/policies/real/tf-eks-v21.19.aws-cn.json";
const ACCOUNT: &str = "111122223333";
const CLASSES: usize = 100;
const RUNS: usize = 5;

/// `n` EC2NodeClasses and their NodePools as one YAML stream.
fn classes(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let key = if i % 2 == 0 {
            format!(
                "  blockDeviceMappings:\n    - deviceName: /dev/xvda\n      ebs:\n        encrypted: true\n        kmsKeyID: arn:aws-cn:kms:cn-northwest-1:{ACCOUNT}:key/00000000-0000-4000-8000-{i:012}\n"
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "---\napiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: class-{i:03}\nspec:\n  role: KarpenterNodeRole-team-{i:03}\n  amiSelectorTerms:\n    - alias: al2023@latest\n  subnetSelectorTerms:\n    - tags:\n        karpenter.sh/discovery: demo\n  securityGroupSelectorTerms:\n    - tags:\n        karpenter.sh/discovery: demo\n{key}---\napiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: pool-{i:03}\nspec:\n  template:\n    spec:\n      nodeClassRef:\n        group: karpenter.k8s.aws\n        kind: EC2NodeClass\n        name: class-{i:03}\n"
        );
    }
    out
}

/// One run on one core: (wall time, peak RSS KiB, requests evaluated, refused).
fn run(input: &Path) -> (Duration, u64, String) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "taskset", "-c", "0", BIN, "preflight"])
        .arg(input)
        .args(["--policy", POLICY])
        .args([
            "--controller-role",
            &format!("arn:aws-cn:iam::{ACCOUNT}:role/KarpenterController-demo"),
        ])
        .args(["--region", "cn-northwest-1", "--cluster-name", "demo"])
        .current_dir(ROOT)
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .expect("run preflight under /usr/bin/time and taskset");
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time: {stderr}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("Karpenter v"))
        .unwrap_or_else(|| panic!("no matrix: {stdout}\n{stderr}"))
        .to_string();
    (wall, rss, summary)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join("karpenter-doctor-bench-preflight");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rows = Vec::new();
    for n in [1, CLASSES] {
        let input = dir.join(format!("classes-{n}.yaml"));
        std::fs::write(&input, classes(n)).unwrap();
        let runs: Vec<(Duration, u64, String)> = (0..RUNS).map(|_| run(&input)).collect();
        let wall = median(runs.iter().map(|r| r.0).collect());
        let rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
        rows.push((n, wall, rss, runs[0].2.clone()));
    }
    println!("preflight offline, release build, one core (taskset -c 0), median of {RUNS}:");
    for (n, wall, rss, summary) in &rows {
        println!(
            "  {n:>3} EC2NodeClass(es): {:>7.1} ms, peak RSS {:.1} MiB ({summary})",
            wall.as_secs_f64() * 1000.0,
            *rss as f64 / 1024.0
        );
    }
    let (_, one, _, _) = rows[0];
    let (_, hundred, _, _) = rows[1];
    println!(
        "  {CLASSES} against 1: {:.2}x; target: {CLASSES} EC2NodeClasses under 1 s: {}",
        hundred.as_secs_f64() / one.as_secs_f64(),
        if hundred < Duration::from_secs(1) {
            "met"
        } else {
            "MISSED"
        }
    );
}
