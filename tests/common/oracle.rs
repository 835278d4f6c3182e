//! Where the independent IAM evaluator lives: `$ORACLE_DIR`, else `.oracle/` in the repository,
//! installed there on first use by tests/oracle/install.sh (pinned versions).

use std::path::PathBuf;
use std::process::Command;

pub fn dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("ORACLE_DIR").map_or_else(|| root.join(".oracle"), PathBuf::from);
    let status = Command::new("bash")
        .arg(root.join("tests/oracle/install.sh"))
        .arg(&dir)
        .status()
        .expect("run tests/oracle/install.sh");
    assert!(
        status.success(),
        "installing the oracle into {} failed",
        dir.display()
    );
    dir
}
