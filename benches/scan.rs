//! Benchmark: the signal scanner against `grep -cE` on a generated Karpenter v1 JSON log of at
//! least 256 MiB (0.1 % error lines), with the scanner's peak RSS and the signals it found.

use karpenter_doctor::signal::{Observations, Scanner};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SIZE: u64 = 256 << 20;
const GREP_PATTERN: &str = "UnauthorizedOperation|AccessDenied|InvalidKMSKey";
const ROUNDS: usize = 3;
/// Bump when the generator changes, so a stale file is not reused.
const GENERATION: u32 = 1;

const CTRL: &str = "arn:aws:sts::111122223333:assumed-role/KarpenterController-demo/1717236000";
const NODE_ROLE: &str = "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo";

/// xorshift64*: deterministic and fast.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn name(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len() as u64) as usize]))
            .collect()
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

fn time(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "2024-06-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + (s / 86_400) % 28,
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

fn info_line(out: &mut impl Write, rng: &mut Rng, t: &str) -> std::io::Result<()> {
    let pool = ["default", "spot", "gpu", "arm64"][rng.below(4) as usize];
    let claim = format!("{pool}-{}", rng.name());
    let id = rng.uuid();
    let zone = ["us-west-2a", "us-west-2b", "us-west-2c"][rng.below(3) as usize];
    let instance = format!("i-0{:016x}", rng.next() >> 4);
    let head = format!(r#"{{"level":"INFO","time":"{t}","logger":"controller","#);
    match rng.below(10) {
        0 | 1 => writeln!(
            out,
            r#"{head}"message":"found provisionable pod(s)","commit":"a2875e3","controller":"provisioner","namespace":"","name":"","reconcileID":"{id}","Pods":"default/inflate-66fb68585c-{}, default/inflate-66fb68585c-{}","duration":"{}.{}ms"}}"#,
            rng.name(),
            rng.name(),
            rng.below(90) + 10,
            rng.below(1000)
        ),
        2 => writeln!(
            out,
            r#"{head}"message":"computed new nodeclaim(s) to fit pod(s)","commit":"a2875e3","controller":"provisioner","namespace":"","name":"","reconcileID":"{id}","nodeclaims":1,"pods":{}}}"#,
            rng.below(20) + 1
        ),
        3 => writeln!(
            out,
            r#"{head}"message":"created nodeclaim","commit":"a2875e3","controller":"provisioner","namespace":"","name":"","reconcileID":"{id}","NodePool":{{"name":"{pool}"}},"NodeClaim":{{"name":"{claim}"}},"requests":{{"cpu":"{}m","memory":"{}Mi","pods":"{}"}},"instance-types":"c5.2xlarge, c5.4xlarge, c5a.2xlarge, c6i.2xlarge, m5.2xlarge and 55 other(s)"}}"#,
            rng.below(8000) + 100,
            rng.below(16000) + 256,
            rng.below(30) + 1
        ),
        4 => writeln!(
            out,
            r#"{head}"message":"launched nodeclaim","commit":"a2875e3","controller":"nodeclaim.lifecycle","controllerGroup":"karpenter.sh","controllerKind":"NodeClaim","NodeClaim":{{"name":"{claim}"}},"namespace":"","name":"{claim}","reconcileID":"{id}","provider-id":"aws:///{zone}/{instance}","instance-type":"c5.2xlarge","zone":"{zone}","capacity-type":"spot","allocatable":{{"cpu":"7910m","ephemeral-storage":"17Gi","memory":"14162Mi","pods":"58"}}}}"#
        ),
        5 => writeln!(
            out,
            r#"{head}"message":"registered nodeclaim","commit":"a2875e3","controller":"nodeclaim.lifecycle","controllerGroup":"karpenter.sh","controllerKind":"NodeClaim","NodeClaim":{{"name":"{claim}"}},"namespace":"","name":"{claim}","reconcileID":"{id}","provider-id":"aws:///{zone}/{instance}","Node":{{"name":"ip-192-168-{}-{}.us-west-2.compute.internal"}}}}"#,
            rng.below(256),
            rng.below(256)
        ),
        6 => writeln!(
            out,
            r#"{head}"message":"initialized nodeclaim","commit":"a2875e3","controller":"nodeclaim.lifecycle","controllerGroup":"karpenter.sh","controllerKind":"NodeClaim","NodeClaim":{{"name":"{claim}"}},"namespace":"","name":"{claim}","reconcileID":"{id}","provider-id":"aws:///{zone}/{instance}","Node":{{"name":"ip-192-168-{}-{}.us-west-2.compute.internal"}},"allocatable":{{"cpu":"7910m","ephemeral-storage":"17Gi","hugepages-1Gi":"0","hugepages-2Mi":"0","memory":"14162Mi","pods":"58"}}}}"#,
            rng.below(256),
            rng.below(256)
        ),
        7 => writeln!(
            out,
            r#"{head}"message":"disrupting node(s)","commit":"a2875e3","controller":"disruption","namespace":"","name":"","reconcileID":"{id}","command-id":"{}","reason":"underutilized","decision":"delete","disrupted-node-count":1,"replacement-node-count":0,"pod-count":{},"disrupted-nodes":[{{"Node":{{"name":"ip-192-168-{}-{}.us-west-2.compute.internal"}},"NodeClaim":{{"name":"{claim}"}},"capacity-type":"spot","instance-type":"m5.large"}}],"replacement-nodes":[]}}"#,
            rng.uuid(),
            rng.below(12),
            rng.below(256),
            rng.below(256)
        ),
        8 => writeln!(
            out,
            r#"{head}"message":"tainted node","commit":"a2875e3","controller":"node.termination","controllerGroup":"","controllerKind":"Node","Node":{{"name":"ip-192-168-{}-{}.us-west-2.compute.internal"}},"namespace":"","name":"ip-192-168-{}-{}.us-west-2.compute.internal","reconcileID":"{id}","taint.Key":"karpenter.sh/disrupted","taint.Value":"","taint.Effect":"NoSchedule"}}"#,
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        _ => writeln!(
            out,
            r#"{head}"message":"deleted nodeclaim","commit":"a2875e3","controller":"nodeclaim.lifecycle","controllerGroup":"karpenter.sh","controllerKind":"NodeClaim","NodeClaim":{{"name":"{claim}"}},"namespace":"","name":"{claim}","reconcileID":"{id}","Node":{{"name":"ip-192-168-{}-{}.us-west-2.compute.internal"}},"provider-id":"aws:///{zone}/{instance}"}}"#,
            rng.below(256),
            rng.below(256)
        ),
    }
}

fn error_line(out: &mut impl Write, rng: &mut Rng, t: &str) -> std::io::Result<()> {
    let claim = format!("default-{}", rng.name());
    let id = rng.uuid();
    let head = format!(
        r#"{{"level":"ERROR","time":"{t}","logger":"controller","message":"Reconciler error","commit":"a2875e3","controller":"nodeclaim.lifecycle","controllerGroup":"karpenter.sh","controllerKind":"NodeClaim","NodeClaim":{{"name":"{claim}"}},"namespace":"","name":"{claim}","reconcileID":"{id}","error":"#
    );
    let passrole = format!(
        "UnauthorizedOperation: You are not authorized to perform this operation. User: {CTRL} is not authorized to perform: iam:PassRole on resource: {NODE_ROLE} because no identity-based policy allows the iam:PassRole action. Encoded authorization failure message: {}",
        rng.uuid().replace('-', "")
    );
    let error = match rng.below(5) {
        0 => format!("launching nodeclaim, creating instance, with fleet error(s), {passrole}"),
        1 => format!(
            "creating instance, UnauthorizedOperation: You are not authorized to perform this operation. User: {CTRL} is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-west-2:111122223333:instance/* with an explicit deny in a service control policy. Encoded authorization failure message: {}",
            rng.uuid().replace('-', "")
        ),
        2 => format!(
            "creating instance, UnauthorizedOperation: You are not authorized to perform this operation. User: {CTRL} is not authorized to perform: ec2:CreateFleet on resource: arn:aws:ec2:us-west-2:111122223333:launch-template/* because no identity-based policy allows the ec2:CreateFleet action.; {passrole}"
        ),
        3 => "creating instance, AuthFailure.ServiceLinkedRoleCreationNotPermitted: The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances.".to_string(),
        _ => format!(
            "creating instance profile, adding role \\\"KarpenterNodeRole-demo\\\" to instance profile \\\"demo_1234567890\\\", AccessDenied: User: {CTRL} is not authorized to perform: iam:PassRole on resource: {NODE_ROLE} because no identity-based policy allows the iam:PassRole action\\n\\tstatus code: 403, request id: {id}"
        ),
    };
    writeln!(out, "{head}\"{error}\"}}")
}

fn generate(path: &Path) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut lines, mut ms) = (0u64, 0u64);
    let mut written = 0u64;
    let mut buf = Vec::with_capacity(4096);
    while written < SIZE {
        buf.clear();
        ms += rng.below(40);
        let t = time(ms);
        if lines % 1000 == 999 {
            error_line(&mut buf, &mut rng, &t)?;
        } else {
            info_line(&mut buf, &mut rng, &t)?;
        }
        out.write_all(&buf)?;
        written += buf.len() as u64;
        lines += 1;
    }
    out.flush()?;
    Ok(lines)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The process's peak resident set size in KiB (`VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn time_grep(path: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let output = Command::new("grep")
        .args(["-cE", GREP_PATTERN])
        .arg(path)
        .output()
        .expect("running grep");
    let elapsed = start.elapsed();
    let count = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("grep -c output");
    (elapsed, count)
}

fn time_scanner(scanner: &Scanner, path: &Path) -> (Duration, Observations) {
    let start = Instant::now();
    let file = File::open(path).expect("opening the log");
    let mut out = Observations::default();
    scanner
        .scan("bench.jsonl", file, &mut out, &mut |_| {})
        .expect("scanning");
    (start.elapsed(), out)
}

fn main() {
    let dir = target_dir().join("scan-bench");
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    let path = dir.join(format!("karpenter-v1-g{GENERATION}.jsonl"));
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if size < SIZE {
        let start = Instant::now();
        let lines = generate(&path).expect("generating the log");
        println!(
            "generated {} ({lines} lines) in {:.2?}",
            path.display(),
            start.elapsed()
        );
    }
    let size = std::fs::metadata(&path).expect("the log").len();
    let scanner = Scanner::new().expect("shipped rules");

    // Warm the page cache, then reset the peak-RSS mark so it measures the scanning alone.
    let _ = time_grep(&path);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (mut best_scan, mut best_grep) = (Duration::MAX, Duration::MAX);
    let (mut signals, mut warnings, mut grep_lines) = (0, 0, 0);
    for _ in 0..ROUNDS {
        let (t, out) = time_scanner(&scanner, &path);
        best_scan = best_scan.min(t);
        (signals, warnings) = (out.signals.len(), out.warnings.len());
        let (t, count) = time_grep(&path);
        best_grep = best_grep.min(t);
        grep_lines = count;
    }
    let mb = size as f64 / 1e6;
    println!("log:      {:.0} MB", mb);
    println!(
        "scanner:  {:>8.1} ms  ({:.0} MB/s)  {signals} signals, {warnings} warnings",
        best_scan.as_secs_f64() * 1e3,
        mb / best_scan.as_secs_f64()
    );
    println!(
        "grep -cE: {:>8.1} ms  ({:.0} MB/s)  {grep_lines} matching lines",
        best_grep.as_secs_f64() * 1e3,
        mb / best_grep.as_secs_f64()
    );
    println!(
        "ratio scanner/grep: {:.2} (target <= 1.0), best of {ROUNDS}",
        best_scan.as_secs_f64() / best_grep.as_secs_f64()
    );
    match peak_rss_kib() {
        Some(kib) => println!(
            "scanner peak RSS (VmHWM): {:.1} MiB (target < 64 MiB)",
            kib as f64 / 1024.0
        ),
        None => println!("scanner peak RSS: unavailable (no /proc/self/status)"),
    }
}
