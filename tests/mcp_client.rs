//! `karpenter-doctor mcp` end to end with the official MCP client SDK (PyPI `mcp`, pinned in
//! tests/mcp/install.sh, installed on first use into `.venv-mcp/`, or `MCP_VENV`): the real
//! binary over stdio is initialized, its tools listed and each one called, and its answers
//! compared with `-o json` of the same commands; check and get_diagnoses with no cluster and bad
//! arguments get clear errors; against the real kube-apiserver (tests/common/kubeapi.rs),
//! get_diagnoses returns the Diagnoses it serves, and check says Karpenter is not there. The
//! checks are in tests/mcp/client.py; it fails these tests by exiting non-zero.

mod common;

use common::kubeapi::KubeApi;
use common::live::{BIN, ROOT};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The client's venv, installed on first use.
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

/// Runs tests/mcp/client.py with `args` after the binary and the repository root; fails the
/// test when it fails.
fn client(args: &[&str]) {
    let venv = venv();
    let out = Command::new(venv.join("bin/python"))
        .arg(Path::new(ROOT).join("tests/mcp/client.py"))
        .args([BIN, ROOT])
        .args(args)
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
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn the_official_mcp_client_calls_every_tool_and_gets_what_the_commands_print() {
    client(&[]);
}

#[test]
fn get_diagnoses_returns_what_a_real_kube_apiserver_serves_and_check_finds_no_karpenter_there() {
    let Some(kube) = KubeApi::start("mcp") else {
        return;
    };
    kube.apply_file(Path::new(ROOT).join("manifests/crd.yaml"));
    // The China story's Diagnosis, as explain writes it, stored in the cluster.
    let china = format!("{ROOT}/examples/china-passrole");
    let out = Command::new(BIN)
        .args(["explain", "-o", "json", "--iam-snapshot"])
        .arg(format!("{china}/iam-snapshot.json"))
        .arg(format!("{china}/karpenter.log"))
        .arg(format!("{china}/serviceaccount.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = kube.apply(&String::from_utf8(out.stdout).unwrap());
    assert!(!stored.is_empty());
    let (code, served) = kube
        .get("/apis/karpenter-doctor.io/v1alpha1/diagnoses")
        .unwrap();
    assert_eq!(code, 200, "{served}");
    let served_path = kube.dir.join("served-diagnoses.json");
    std::fs::write(&served_path, served).unwrap();
    client(&[
        "cluster",
        kube.kubeconfig.to_str().unwrap(),
        served_path.to_str().unwrap(),
    ]);
}
