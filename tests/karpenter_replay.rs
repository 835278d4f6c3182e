//! The doctor on what real Karpenter wrote (fast, no Go, no cluster): every recording under
//! tests/fixtures/karpenter/<version>/<scenario>/ (made by tests/karpenter_live.rs with
//! KARPENTER_RECORD=1: Karpenter's log, its NodeClaims, EC2NodeClass, NodePool and Events as
//! the API server returned them, the AWS CLI outputs a person would add) is given to the real
//! binary, `explain -o json`, and its Diagnoses must be exactly the ones the scenario should give
//! (tests/common/karpenter_scenarios.rs): reason, confidence, category, principal, resource, key,
//! no extra one, and no cut value as a resource. Scenarios failing today for the doctor's
//! cut-ARN bug are listed in `KNOWN_BUG` (skipped with a note; an entry that passes fails).

mod common;

use common::karpenter_scenarios::{
    KNOWN_BUG, differences, explain, known_bug, scenario, scenarios,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/karpenter")
}

/// (version, scenario, directory) of every recording.
fn recordings() -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    for version in std::fs::read_dir(root()).unwrap() {
        let version = version.unwrap().path();
        if !version.is_dir() {
            continue;
        }
        for dir in std::fs::read_dir(&version).unwrap() {
            let dir = dir.unwrap().path();
            if dir.is_dir() {
                out.push((
                    version.file_name().unwrap().to_string_lossy().into_owned(),
                    dir.file_name().unwrap().to_string_lossy().into_owned(),
                    dir,
                ));
            }
        }
    }
    out.sort();
    out
}

fn manifest(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_recording_is_whole_and_says_what_made_it() {
    let all = recordings();
    assert!(!all.is_empty(), "no recordings under {}", root().display());
    for (version, name, dir) in &all {
        let m = manifest(dir);
        assert_eq!(m["scenario"], name.as_str(), "{}", dir.display());
        assert_eq!(
            m["karpenter"]["version"],
            version.as_str(),
            "{}",
            dir.display()
        );
        assert_eq!(
            m["karpenter"]["module"],
            "github.com/aws/karpenter-provider-aws",
            "{}",
            dir.display()
        );
        let sum = m["karpenter"]["sum"].as_str().unwrap_or("");
        assert!(
            sum.starts_with("h1:") && sum.len() > 40,
            "{}: sum {sum:?}",
            dir.display()
        );
        // The sum is the one the build's wrapper module pins (go.sum verified the download).
        let go_sum = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/karpenter/modules/{version}/go.sum")),
        )
        .unwrap_or_else(|e| panic!("the wrapper module of {version}: {e}"));
        assert!(
            go_sum.contains(&format!(
                "github.com/aws/karpenter-provider-aws {version} {sum}"
            )),
            "{}: {sum} is not {version}'s sum in its go.sum",
            dir.display()
        );
        assert!(m["injected"]["operation"].is_string(), "{}", dir.display());
        for file in [
            "karpenter.log",
            "nodeclaims.json",
            "ec2nodeclass.json",
            "nodepool.json",
            "events.json",
        ] {
            assert!(dir.join(file).is_file(), "{}: no {file}", dir.display());
        }
        // Karpenter wrote the log: its own JSON lines, the version's controllers.
        let log = std::fs::read_to_string(dir.join("karpenter.log")).unwrap();
        let (lines, json) = (
            log.lines().count(),
            log.lines().filter(|l| l.starts_with("{\"level\":")).count(),
        );
        assert!(
            json > 0 && json * 10 >= lines * 9,
            "{}: not Karpenter's log ({json} of {lines} lines its JSON)",
            dir.display()
        );
        // As the API server returned them (kubectl's List, no managedFields).
        let claims: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("nodeclaims.json")).unwrap())
                .unwrap();
        assert_eq!(claims["kind"], "List");
        for claim in claims["items"].as_array().unwrap() {
            assert_eq!(claim["kind"], "NodeClaim");
            assert!(claim["metadata"]["uid"].is_string());
            assert!(claim["metadata"].get("managedFields").is_none());
        }
    }
    // Every scenario was recorded on the newest version `make test` runs live.
    for s in scenarios() {
        assert!(
            all.iter().any(|(v, n, _)| v == "v1.15.0" && n == s.name),
            "no v1.15.0 recording of {}",
            s.name
        );
    }
    // A known bug names a recording there is.
    for (version, name, _) in KNOWN_BUG {
        assert!(
            all.iter().any(|(v, n, _)| v == version && n == name),
            "KNOWN_BUG names {version}/{name}, which is not recorded"
        );
    }
}

#[test]
fn the_doctor_says_what_it_should_on_what_real_karpenter_wrote() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (version, name, dir) in recordings() {
        let s = scenario(&name);
        let mut cases = vec![(false, s.want.clone())];
        if let Some(want) = &s.want_with_snapshot {
            assert!(
                dir.join("iam-snapshot.json").is_file(),
                "{}: no iam-snapshot.json",
                dir.display()
            );
            cases.push((true, want.clone()));
        }
        for (snapshot, want) in cases {
            let label = format!(
                "{version}/{name}{}",
                if snapshot {
                    " (with iam-snapshot.json)"
                } else {
                    ""
                }
            );
            let items = explain(&dir, snapshot);
            let diff = differences(&items, &want);
            checked += 1;
            if known_bug(&version, &name, snapshot) {
                if diff.is_empty() {
                    failures.push(format!(
                        "{label}: listed in KNOWN_BUG but now as it should be: remove it from the list"
                    ));
                } else {
                    eprintln!(
                        "KNOWN BUG (Karpenter's cut NodeClaim message), skipped: {label}: {diff:?}"
                    );
                }
                continue;
            }
            if !diff.is_empty() {
                failures.push(format!("{label}: {diff:#?}"));
            }
        }
    }
    assert!(checked > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What people do to a log before pasting it: a terminal or `fold` cuts every line at one width,
/// an editor or `fmt` re-wraps at spaces. Run through the real tools (coreutils), every recorded
/// log still gives what the scenario should.
#[test]
fn a_recorded_log_rewrapped_by_fold_or_fmt_says_the_same() {
    let mut failures = Vec::new();
    for (version, name, dir) in recordings() {
        let s = scenario(&name);
        if known_bug(&version, &name, false) {
            continue;
        }
        for tool in [["fold", "-w", "80"], ["fmt", "-w", "72"]] {
            let out = std::process::Command::new(tool[0])
                .args(&tool[1..])
                .arg(dir.join("karpenter.log"))
                .output()
                .unwrap_or_else(|e| panic!("{}: {e}", tool[0]));
            assert!(out.status.success(), "{tool:?}");
            let copy = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("rewrapped-{}/{version}/{name}", tool[0]));
            let _ = std::fs::remove_dir_all(&copy);
            std::fs::create_dir_all(&copy).unwrap();
            for file in std::fs::read_dir(&dir).unwrap() {
                let file = file.unwrap().path();
                std::fs::copy(&file, copy.join(file.file_name().unwrap())).unwrap();
            }
            std::fs::write(copy.join("karpenter.log"), &out.stdout).unwrap();
            let diff = differences(&explain(&copy, false), &s.want);
            if !diff.is_empty() {
                failures.push(format!("{version}/{name} through {tool:?}: {diff:#?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
