//! The binary as a kubectl plugin (krew's name `kubectl-karpenter_doctor`: `kubectl
//! karpenter-doctor check`) and its shell completion scripts.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");

#[test]
fn named_kubectl_karpenter_doctor_it_answers_as_a_kubectl_plugin() {
    let dir = format!("{}/check-cli", env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = format!("{dir}/kubectl-karpenter_doctor");
    std::os::unix::fs::symlink(BIN, &plugin).unwrap();
    let help = Command::new(&plugin)
        .args(["check", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("Usage: kubectl karpenter-doctor check [OPTIONS]"),
        "{text}"
    );
    for flag in [
        "--kubeconfig",
        "--context",
        "--since",
        "--offline",
        "--exit-code",
    ] {
        assert!(text.contains(flag), "{flag} in\n{text}");
    }
    // Its own name, run directly.
    let help = Command::new(BIN)
        .args(["check", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("Usage: karpenter-doctor check [OPTIONS]"),
        "{text}"
    );
    // A usage error is exit 2, under either name.
    let bad = Command::new(&plugin)
        .args(["check", "--since", "soon"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected a duration"));
}

#[test]
fn completion_scripts_know_the_commands_and_flags() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef karpenter-doctor"),
        ("fish", "complete -c karpenter-doctor"),
    ] {
        let out = Command::new(BIN)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(marker),
            "{shell}: {marker}\n{}",
            &text[..text.len().min(400)]
        );
        for word in ["check", "explain", "--karpenter-namespace", "--exit-code"] {
            assert!(
                text.contains(word.trim_start_matches('-')),
                "{shell}: {word}"
            );
        }
    }
    let bad = Command::new(BIN)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
