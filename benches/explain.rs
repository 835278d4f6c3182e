//! Benchmark: `karpenter-doctor explain` (release build) on Karpenter v1 JSON logs in which every
//! line is a distinct denial (its own controller role and node role: its own root cause), at
//! 256 MiB and at `BENCH_EXPLAIN_MIB` (2 048 unless set): wall time, throughput and peak
//! resident memory, which must stay flat (signals and root causes beyond their caps are counted,
//! not kept; issue 24 §5). The reference in the same run is `grep -c` on the same file.

#[path = "../tests/common/mod.rs"]
mod common;

use common::peak_rss_until_exit;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
/// Bump when the generator changes, so a stale file is not reused.
const GENERATOR: u32 = 1;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A log of at least `mib` MiB, each line a distinct PassRole denial; reused when present.
fn log(mib: u64) -> PathBuf {
    let path = target_dir().join(format!("bench-explain-distinct-v{GENERATOR}-{mib}.log"));
    let want = mib << 20;
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= want) {
        return path;
    }
    let started = Instant::now();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let (mut written, mut i) = (0u64, 0u64);
    while written < want {
        let line = format!(
            r#"{{"level":"ERROR","time":"2024-06-04T09:{:02}:{:02}.{:03}Z","logger":"controller","message":"Reconciler error","commit":"62a726c","controller":"nodeclaim.lifecycle","controllerGroup":"karpenter.sh","controllerKind":"NodeClaim","NodeClaim":{{"name":"default-{i:09}"}},"namespace":"","name":"default-{i:09}","reconcileID":"{i:016x}-0000-4000-8000-000000000000","error":"launching nodeclaim, creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/KarpenterController-{i:09}/1717491600 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/KarpenterNode-{i:09} because no identity-based policy allows the iam:PassRole action. Encoded authorization failure message: {i:x}"}}"#,
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000
        );
        out.write_all(line.as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
        written += line.len() as u64 + 1;
        i += 1;
    }
    out.flush().unwrap();
    eprintln!(
        "generated {path:?}: {i} lines, {:.0} MiB in {:.1} s",
        written as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    path
}

/// `explain FILE -o json`: (wall time, peak RSS KiB, Diagnoses written, its warnings).
fn explain(path: &Path) -> (Duration, u64, usize, String) {
    let dir = target_dir();
    let (out, err) = (
        dir.join("bench-explain.json"),
        dir.join("bench-explain.err"),
    );
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .args(["explain", "-o", "json"])
        .arg(path)
        .env("KUBECONFIG", "/nonexistent")
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
        .spawn()
        .unwrap();
    let peak = peak_rss_until_exit(&mut child);
    let wall = t.elapsed();
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.success(), "{stderr}");
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).expect("explain -o json");
    let items = list["items"].as_array().map_or(0, Vec::len);
    let warnings = stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect::<Vec<_>>()
        .join(" | ");
    (wall, peak, items, warnings)
}

fn grep(path: &Path) -> Duration {
    let t = Instant::now();
    let out = Command::new("grep")
        .args(["-c", "not authorized to perform"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    t.elapsed()
}

fn main() {
    let big: u64 = std::env::var("BENCH_EXPLAIN_MIB")
        .ok()
        .map(|n| n.parse().expect("BENCH_EXPLAIN_MIB: a number of MiB"))
        .unwrap_or(2048);
    println!("explain on distinct denials (release build; one root cause per line):");
    let mut peaks = Vec::new();
    for mib in [256, big] {
        let path = log(mib);
        let bytes = std::fs::metadata(&path).unwrap().len() as f64;
        let reference = grep(&path);
        let (wall, peak, items, warnings) = explain(&path);
        println!(
            "  {:>5.0} MiB: {:.1} s ({:.0} MiB/s), grep -c {:.1} s ({:.2}x grep), peak RSS {:.1} MiB, {items} Diagnoses; {warnings}",
            bytes / (1 << 20) as f64,
            wall.as_secs_f64(),
            bytes / (1 << 20) as f64 / wall.as_secs_f64(),
            reference.as_secs_f64(),
            wall.as_secs_f64() / reference.as_secs_f64(),
            peak as f64 / 1024.0,
        );
        peaks.push(peak);
    }
    println!(
        "  peak memory at {big} MiB against 256 MiB: {:.2}x (flat: at most 1.25x)",
        peaks[1] as f64 / peaks[0] as f64
    );
}
