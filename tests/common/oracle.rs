//! Where the independent IAM evaluator lives: `$ORACLE_DIR`, else `.oracle/` in the repository,
//! installed there on first use by tests/oracle/install.sh (pinned versions), and one batch of
//! cases run through it (tests/oracle/runner.mjs, JSON Lines).

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub fn dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("ORACLE_DIR").map_or_else(|| root.join(".oracle"), PathBuf::from);
    super::install("oracle/install.sh", &dir);
    dir
}

/// The oracle's answer to each case, in order (`decision`, or `error` where it rejects one).
pub fn evaluate(cases: &[Value]) -> Vec<Value> {
    let oracle = dir();
    let mut child = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/oracle/runner.mjs"
        ))
        .env("ORACLE_DIR", &oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run node tests/oracle/runner.mjs");
    let mut stdin = child.stdin.take().unwrap();
    let input: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let answers: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success(), "the oracle runner failed");
    assert_eq!(
        answers.len(),
        cases.len(),
        "the oracle answered a different number of cases"
    );
    answers
}
