//! Where the independent IAM evaluator lives: `$ORACLE_DIR`, else `.oracle/` in the repository,
//! installed there on first use by tests/oracle/install.sh (pinned versions).

use std::path::PathBuf;

pub fn dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("ORACLE_DIR").map_or_else(|| root.join(".oracle"), PathBuf::from);
    super::install("oracle/install.sh", &dir);
    dir
}
