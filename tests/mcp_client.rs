//! `karpenter-doctor mcp` end to end with the official MCP client SDK (PyPI `mcp`, pinned in
//! tests/mcp/install.sh, installed on first use into `.venv-mcp/`, or `MCP_VENV`): the real
//! binary over stdio is initialized, its tools listed and each one called, and its answers
//! compared with `-o json` of the same commands; check and get_diagnoses with no cluster and bad
//! arguments get clear errors. The checks are in tests/mcp/client.py; it fails this test by
//! exiting non-zero.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn venv() -> PathBuf {
    let venv = std::env::var_os("MCP_VENV")
        .map_or_else(|| Path::new(ROOT).join(".venv-mcp"), PathBuf::from);
    let status = Command::new("bash")
        .arg(Path::new(ROOT).join("tests/mcp/install.sh"))
        .arg(&venv)
        .status()
        .expect("run tests/mcp/install.sh");
    assert!(
        status.success(),
        "installing the MCP client into {venv:?} failed"
    );
    venv
}

#[test]
fn the_official_mcp_client_calls_every_tool_and_gets_what_the_commands_print() {
    let venv = venv();
    let out = Command::new(venv.join("bin/python"))
        .arg(Path::new(ROOT).join("tests/mcp/client.py"))
        .args([BIN, ROOT])
        .env_remove("KUBECONFIG")
        .output()
        .expect("run tests/mcp/client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the MCP client failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("mcp client: all checks passed"), "{stdout}");
}
