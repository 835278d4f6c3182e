//! Every root-cause reason code of contract §5 on realistic fixtures, through the real binary.
//!
//! Each directory `tests/fixtures/explain/<Reason>[-variant]/` holds the inputs of one story
//! (Karpenter logs, kubectl objects, `aws ec2 describe-instances`, IAM and KMS snapshots), the
//! `explain` arguments in `args` (one per line, paths relative to the directory, which is the
//! working directory of the run), `expect.json` (what the diagnosis must say) and the golden
//! `expected-output.json` (the full `-o json` output, reviewed by hand).
//!
//! `expect.json`: `items` (how many Diagnoses), `reason`, `confidence`, `category`, and optionally
//! `principalArn`, `kmsKeyArn`, `statementSid`, `commandsContain` (substrings each found in some
//! remediation command). `knownBug` (one line): the case shows what the doctor SHOULD say but does
//! not yet; it is skipped with a note. `remediationBug`: the reason is right (checked) but the
//! remediation is wrong, so no golden is kept.
//!
//! Regenerate goldens with `UPDATE_GOLDEN=1 cargo test --test explain_reasons`, then read them.

use karpenter_doctor::diagnose::model::ReasonCode;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const GOLDEN: &str = "expected-output.json";

/// The root-cause reasons of contract §5, as the contract lists them.
const CONTRACT_REASONS: [&str; 23] = [
    "PassedToServiceMismatch",
    "ConditionNotSatisfied",
    "ResourcePartitionMismatch",
    "ResourceNotCovered",
    "ActionNotAllowed",
    "IdentityPolicyExplicitDeny",
    "PermissionsBoundaryDeny",
    "ServiceControlPolicyDeny",
    "ResourceControlPolicyDeny",
    "VpcEndpointPolicyDeny",
    "SessionPolicyDeny",
    "ResourcePolicyDeny",
    "WrongPrincipal",
    "KeyDisabled",
    "KeyPendingDeletion",
    "KeyPendingImport",
    "KeyUnavailable",
    "KeyAccessNotGranted",
    "IdentityPolicyMissingKmsPermissions",
    "TrustPolicyMismatch",
    "OidcProviderMissing",
    "StsRegionDisabled",
    "Undetermined",
];

fn cases_root() -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/explain")
}

/// Every case directory, sorted by name.
fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(cases_root())
        .expect("tests/fixtures/explain exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no case directories under tests/fixtures/explain"
    );
    dirs
}

fn name_of(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// The reason a directory is named for: its name up to the first `-`.
fn reason_of(dir: &Path) -> String {
    name_of(dir).split('-').next().unwrap().to_string()
}

fn expect_of(dir: &Path) -> Value {
    let text = fs::read_to_string(dir.join("expect.json"))
        .unwrap_or_else(|e| panic!("{}: expect.json: {e}", name_of(dir)));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: expect.json: {e}", name_of(dir)))
}

fn args_of(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("args"))
        .unwrap_or_else(|e| panic!("{}: args: {e}", name_of(dir)))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn explain(dir: &Path) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .arg("explain")
        .args(args_of(dir))
        .args(["-o", "json"])
        .output()
        .expect("run karpenter-doctor")
}

/// The first few paths where two JSON values differ, for a readable failure.
fn differences(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    if out.len() >= 8 {
        return;
    }
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => differences(&format!("{path}.{k}"), wv, gv, out),
                    None => out.push(format!("{path}.{k}: missing (golden: {wv})")),
                }
            }
            for k in g.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("{path}.{k}: not in the golden (got: {})", g[k]));
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                differences(&format!("{path}[{i}]"), wv, gv, out);
            }
        }
        _ if want != got => out.push(format!("{path}: golden {want}, got {got}")),
        _ => {}
    }
}

/// `ActionDenied` → `action-denied`.
fn kebab(category: &str) -> String {
    let mut out = String::new();
    for (i, c) in category.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks one case; returns its problems (empty when it passes).
fn check(dir: &Path, expect: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fail = |p: String| problems.push(p);
    let out = explain(dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return vec![format!(
            "exit status {:?}; stderr: {stderr}",
            out.status.code()
        )];
    }
    if !stderr.trim().is_empty() {
        fail(format!(
            "inputs not fully recognised, warnings on stderr: {stderr}"
        ));
    }
    let list: Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => return vec![format!("stdout is not JSON: {e}")],
    };
    if list["apiVersion"] != "v1" || list["kind"] != "List" {
        fail("not a kubectl-style v1 List".into());
    }
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let want_items = expect["items"].as_u64().expect("expect.json: items") as usize;
    if items.len() != want_items {
        fail(format!("{} items, expected {want_items}", items.len()));
    }
    let Some(d) = items.first() else {
        return problems;
    };
    let root = &d["status"]["rootCause"];
    let eq = |what: &str, got: &Value, want: &Value, fail: &mut dyn FnMut(String)| {
        if got != want {
            fail(format!("{what}: got {got}, expected {want}"));
        }
    };
    eq(
        "rootCause.reason",
        &root["reason"],
        &expect["reason"],
        &mut fail,
    );
    eq(
        "rootCause.confidence",
        &root["confidence"],
        &expect["confidence"],
        &mut fail,
    );
    eq(
        "spec.category",
        &d["spec"]["category"],
        &expect["category"],
        &mut fail,
    );
    if let Some(p) = expect.get("principalArn") {
        eq(
            "spec.principalArn",
            &d["spec"]["principalArn"],
            p,
            &mut fail,
        );
    }
    if let Some(k) = expect.get("kmsKeyArn") {
        eq("spec.kmsKeyArn", &d["spec"]["kmsKeyArn"], k, &mut fail);
    }
    if let Some(sid) = expect.get("statementSid") {
        eq(
            "rootCause.statement.sid",
            &root["statement"]["sid"],
            sid,
            &mut fail,
        );
    }
    let commands: Vec<&str> = d["status"]["remediation"]["commands"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for needle in expect["commandsContain"].as_array().into_iter().flatten() {
        let needle = needle.as_str().expect("commandsContain holds strings");
        if !commands.iter().any(|c| c.contains(needle)) {
            fail(format!(
                "no remediation command contains {needle:?}; commands: {commands:#?}"
            ));
        }
    }
    // Contract §3: the Diagnosed condition agrees with the root cause, and the name is
    // `<category in kebab-case>-<10 hex digits>`.
    let diagnosed = d["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Diagnosed"))
        .cloned()
        .unwrap_or(Value::Null);
    let undetermined = root["reason"] == "Undetermined";
    let want_status = if undetermined { "False" } else { "True" };
    if diagnosed["status"] != want_status
        || (!undetermined && diagnosed["reason"] != root["reason"])
    {
        fail(format!(
            "Diagnosed condition {diagnosed} does not match root cause {}",
            root["reason"]
        ));
    }
    let name = d["metadata"]["name"].as_str().unwrap_or("");
    let prefix = format!("{}-", kebab(d["spec"]["category"].as_str().unwrap_or("")));
    let hex = name.strip_prefix(&prefix).unwrap_or("");
    if hex.len() != 10
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        fail(format!(
            "metadata.name {name:?} is not {prefix}<10 hex digits>"
        ));
    }
    // Deterministic: the same input gives the same bytes.
    let again = explain(dir);
    if again.stdout != out.stdout {
        fail("a second run printed different bytes".into());
    }
    // The golden, unless the remediation is known to be wrong.
    if expect.get("remediationBug").is_some() {
        println!(
            "{}: reason checked; golden skipped (remediationBug: {})",
            name_of(dir),
            expect["remediationBug"].as_str().unwrap_or("")
        );
        return problems;
    }
    let golden = dir.join(GOLDEN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&golden, &out.stdout).unwrap();
        println!(
            "{}: wrote {GOLDEN}; read it before keeping it",
            name_of(dir)
        );
        return problems;
    }
    match fs::read_to_string(&golden) {
        Err(_) => fail(format!(
            "no {GOLDEN} (regenerate with UPDATE_GOLDEN=1, then review it)"
        )),
        Ok(text) => {
            let want: Value = serde_json::from_str(&text).expect("golden is JSON");
            if want != list {
                let mut diffs = Vec::new();
                differences("$", &want, &list, &mut diffs);
                fail(format!(
                    "differs from {GOLDEN}:\n    {}",
                    diffs.join("\n    ")
                ));
            }
        }
    }
    problems
}

#[test]
fn every_case_diagnoses_the_reason_it_is_named_for() {
    let mut failures = Vec::new();
    let mut passed = 0;
    for dir in cases() {
        let name = name_of(&dir);
        let expect = expect_of(&dir);
        if let Some(bug) = expect.get("knownBug") {
            let out = explain(&dir);
            let got: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let root = &got["items"][0]["status"]["rootCause"];
            println!(
                "SKIP {name} (knownBug: {}); expected {} ({}), currently {} ({})",
                bug.as_str().unwrap_or(""),
                expect["reason"],
                expect["confidence"],
                root["reason"],
                root["confidence"]
            );
            continue;
        }
        let problems = check(&dir, &expect);
        if problems.is_empty() {
            passed += 1;
        } else {
            failures.push(format!("{name}:\n  - {}", problems.join("\n  - ")));
        }
    }
    println!("{passed} cases passed");
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_case_directory_is_complete_and_named_for_its_reason() {
    for dir in cases() {
        let name = name_of(&dir);
        let reason = reason_of(&dir);
        assert!(
            CONTRACT_REASONS.contains(&reason.as_str()),
            "{name}: the name must start with a reason code of contract §5"
        );
        let expect = expect_of(&dir);
        assert_eq!(
            expect["reason"],
            reason.as_str(),
            "{name}: expect.json names another reason"
        );
        for key in ["items", "confidence", "category"] {
            assert!(expect.get(key).is_some(), "{name}: expect.json lacks {key}");
        }
        assert!(
            ["Confirmed", "Inferred"].contains(&expect["confidence"].as_str().unwrap_or("")),
            "{name}: confidence must be Confirmed or Inferred"
        );
        let args = args_of(&dir);
        assert!(!args.is_empty(), "{name}: args is empty");
        // Every argument that is a file name (not an option, not an ARN) exists in the directory.
        let mut options = args.iter().peekable();
        while let Some(a) = options.next() {
            if a == "--controller-role" {
                options.next();
            } else if !a.starts_with('-') {
                assert!(
                    dir.join(a).is_file(),
                    "{name}: args names {a}, which is not in the directory"
                );
            }
        }
        let bug = expect.get("knownBug").or(expect.get("remediationBug"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            continue; // goldens are being written by the other test right now
        }
        assert_eq!(
            dir.join(GOLDEN).is_file(),
            bug.is_none(),
            "{name}: a golden is kept exactly for the cases without a known bug"
        );
    }
}

#[test]
fn every_reason_code_of_contract_section_5_has_a_passing_case() {
    let dirs = cases();
    let mut codes: Vec<String> = CONTRACT_REASONS.iter().map(|c| c.to_string()).collect();
    // A code added to the engine (and so to the contract) without a fixture fails here too.
    for code in ReasonCode::ALL {
        if !codes.iter().any(|c| c == code.as_str()) {
            codes.push(code.as_str().to_string());
        }
    }
    let missing: Vec<&String> = codes
        .iter()
        .filter(|code| {
            !dirs
                .iter()
                .any(|d| reason_of(d) == **code && expect_of(d).get("knownBug").is_none())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "reason codes without a (non-knownBug) case under tests/fixtures/explain: {missing:?}"
    );
}

#[test]
fn the_cases_cover_both_partitions_and_both_confidences() {
    // The suite as a whole must not collapse onto one partition or one confidence.
    let mut partitions = std::collections::BTreeSet::new();
    let mut confidences = std::collections::BTreeSet::new();
    for dir in cases() {
        let expect = expect_of(&dir);
        confidences.insert(expect["confidence"].as_str().unwrap_or("").to_string());
        if let Some(p) = expect["principalArn"]
            .as_str()
            .or(expect["kmsKeyArn"].as_str())
        {
            partitions.insert(p.split(':').nth(1).unwrap_or("").to_string());
        }
    }
    for p in ["aws", "aws-cn"] {
        assert!(partitions.contains(p), "no case in partition {p}");
    }
    for c in ["Confirmed", "Inferred"] {
        assert!(confidences.contains(c), "no case with confidence {c}");
    }
}

/// Reason codes that lack a case of one confidence, and why; the test below keeps the list
/// exact, so a gap closed must leave it. `Undetermined` is never `Confirmed` by its meaning.
const ONE_CONFIDENCE_ONLY: [(&str, &str, &str); 1] = [(
    "Undetermined",
    "Confirmed",
    "nothing is proven by definition",
)];

#[test]
fn every_reason_code_has_an_inferred_and_a_confirmed_case() {
    let mut seen = std::collections::BTreeSet::new();
    for dir in cases() {
        let expect = expect_of(&dir);
        seen.insert((
            reason_of(&dir),
            expect["confidence"].as_str().unwrap_or("").to_string(),
        ));
    }
    let mut missing = Vec::new();
    for reason in CONTRACT_REASONS {
        for confidence in ["Inferred", "Confirmed"] {
            let has = seen.contains(&(reason.to_string(), confidence.to_string()));
            let excused = ONE_CONFIDENCE_ONLY
                .iter()
                .any(|(r, c, _)| *r == reason && *c == confidence);
            if has == excused {
                missing.push(format!(
                    "{reason} {confidence}: {}",
                    if has {
                        "has a case now: drop it from ONE_CONFIDENCE_ONLY"
                    } else {
                        "no case"
                    }
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
