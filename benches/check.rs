//! Benchmark: `karpenter-doctor check` (release build) against a real kube-apiserver and etcd
//! holding 5 000 NodeClaims and an hour of Karpenter's debug log (20 lines a second, one
//! PassRole failure a minute), with moto answering the AWS lookups: wall time and peak memory.

#[path = "../tests/common/mod.rs"]
mod common;

use common::karpenter::{create_healthy_node_claims, log_line, seed_1_cluster};
use common::live::*;
use common::peak_rss_until_exit;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Instant;

const NODE_CLAIMS: usize = 5_000;
const SECONDS: i64 = 3_540;
const LINES_PER_SECOND: usize = 20;

/// The debug lines Karpenter writes all the time (none of them a failure).
fn chatter(time: &str, n: usize) -> String {
    let line = match n % 4 {
        0 => {
            json!({"level": "DEBUG", "time": time, "logger": "controller", "caller": "disruption/controller.go:91", "message": "waiting on cluster sync", "commit": "62a726c", "controller": "disruption"})
        }
        1 => {
            json!({"level": "DEBUG", "time": time, "logger": "controller", "caller": "subnet/subnet.go:86", "message": "discovered subnets", "commit": "62a726c", "controller": "nodeclass", "EC2NodeClass": {"name": "default"}, "subnets": ["subnet-0a1b2c3d4e5f60718 (cn-northwest-1a)", "subnet-0b1c2d3e4f5a60718 (cn-northwest-1b)"]})
        }
        2 => {
            json!({"level": "DEBUG", "time": time, "logger": "controller", "caller": "pricing/controller.go:51", "message": "updated spot pricing with instance types and offerings", "commit": "62a726c", "controller": "pricing", "instance-type-count": 734, "offering-count": 1921})
        }
        _ => {
            json!({"level": "INFO", "time": time, "logger": "controller", "caller": "provisioner.go:196", "message": "found provisionable pod(s)", "commit": "62a726c", "controller": "provisioner", "Pods": "default/inflate-66fb68585c-xvs86", "duration": "13.2ms"})
        }
    };
    line.to_string()
}

fn main() {
    let Some((kube, moto)) = seed_1_cluster("bench-check") else {
        panic!("kube-apiserver cannot be built here");
    };
    let started = Instant::now();
    create_healthy_node_claims(&kube, NODE_CLAIMS);
    let base = k8s_openapi::jiff::Timestamp::now().as_second() - SECONDS;
    let mut bytes = 0;
    for s in 0..SECONDS {
        let t = k8s_openapi::jiff::Timestamp::from_second(base + s).unwrap();
        let time = t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut lines: Vec<String> = (0..LINES_PER_SECOND)
            .map(|n| chatter(&time, n + s as usize))
            .collect();
        if s % 60 == 0 {
            lines[0] = log_line(&time, &format!("default-{:05}", s / 60));
        }
        let text = lines.join("\n");
        bytes += text.len() + 1;
        kube.feed_log("kube-system", "karpenter-7d9f", "controller", &time, &text);
    }
    let lines = SECONDS as usize * LINES_PER_SECOND;
    eprintln!(
        "created {NODE_CLAIMS} NodeClaims and {lines} log lines ({:.1} MiB) in {:.1} s",
        bytes as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut child = Command::new(BIN)
            .args(["check", "-o", "json", "--region", "cn-northwest-1"])
            .args(["--endpoint-url", &moto.endpoint])
            .arg("--kubeconfig")
            .arg(&kube.kubeconfig)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let peak = peak_rss_until_exit(&mut child);
        let out = child.wait_with_output().unwrap();
        let wall = t.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(items[0]["status"]["occurrences"], SECONDS / 60);
        runs.push((wall, peak));
    }
    runs.sort();
    let (wall, peak) = runs[runs.len() / 2];
    println!(
        "check with {NODE_CLAIMS} NodeClaims and an hour of logs ({lines} lines), release build, median of {}:",
        runs.len()
    );
    println!(
        "  wall time {:.2} s, peak resident memory {:.1} MiB (runs: {})",
        wall.as_secs_f64(),
        peak as f64 / 1024.0,
        runs.iter()
            .map(|(w, p)| format!("{:.2} s / {:.1} MiB", w.as_secs_f64(), *p as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
