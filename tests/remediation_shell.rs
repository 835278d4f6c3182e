//! Issue 24 §4, "safe to paste, safe to print": every remediation command of every fixture's
//! golden, and of crafted inputs, run the way an on-call engineer runs it. Each command must
//! parse in bash (`bash -n`), hold no `<`, `>`, `|`, `;`, `&`, `$`, backtick or newline outside
//! quotes but its own redirect to a policy file, stop with its message while a placeholder is
//! unset, and, with the placeholders set and a PATH of stub programs that record their argv
//! (tests/common/shell.rs), run exactly the programs a shell-words parser reads in it, each with
//! exactly those words: no injected command runs (the canary file `pwned-canary` never appears),
//! no word splits.
//!
//! Crafted inputs are made here from real fixtures by replacing one identifier (a role or policy
//! name, an account, a region, a key id, an SCP id, a Sid, a namespace, a ServiceAccount, a VPC
//! endpoint) with itself followed by a payload (command substitution, backticks, `;`, quotes,
//! newlines, redirects, pipes, `&`, terminal escapes), in JSON, YAML and log lines alike (each in
//! its own escaping). The doctor may cut or refuse such a value; whatever reaches a command must
//! reach the program as one argument, intact (directly, or inside the JSON, jq or AWS CLI
//! shorthand it is part of), and every identifier and every payload must reach some command, so
//! the test cannot pass by finding nothing. The free text of the Diagnoses and the text report
//! hold no control character (`diagnose::printable`).

#[path = "common/shell.rs"]
mod shell;

use serde_json::Value;
use shell::{Sandbox, Word};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The file an injected command would create (relative: the working directory is the sandbox's,
/// and a path with no `/` survives the ARN patterns that would cut at one).
const CANARY: &str = "pwned-canary";

/// What follows an identifier in a crafted input (`CANARY` stands for the canary file).
const PAYLOADS: [&str; 9] = [
    "$(touch${IFS}CANARY)",
    "`touch${IFS}CANARY`",
    ";touch${IFS}CANARY;",
    "'$(touch CANARY)'",
    "\"$(touch CANARY)\"",
    "\ntouch CANARY\n",
    "<CANARY>CANARY",
    "|touch${IFS}CANARY&",
    "\u{1b}]0;CANARY\u{7}\u{1b}[2J\r",
];

/// An identifier of a fixture to craft: in every file, or only after `key` in one file.
struct Target {
    fixture: &'static str,
    only: Option<(&'static str, &'static str)>,
    text: &'static str,
}

const fn target(fixture: &'static str, text: &'static str) -> Target {
    Target {
        fixture,
        only: None,
        text,
    }
}

const TARGETS: [Target; 19] = [
    // PassRole in aws-cn: the Sid in a jq program and in --argjson, the managed policy's ARN.
    target("PassedToServiceMismatch", "AllowPassingInstanceRole"),
    target(
        "PassedToServiceMismatch",
        "KarpenterController-20241021034412876500000002",
    ),
    target("PassedToServiceMismatch", "406713552093"),
    // The node role passed, in --resource-arns and in the policy document.
    target("PassedToServiceMismatch-inferred", "karpenter-node-bj-data"),
    // A key inside AWS CLI shorthand (--lookup-attributes).
    target(
        "KeyDisabled-enabled-since",
        "6f0d9a4e-2c1b-4e8f-a7d3-5b9c0e1f2a34",
    ),
    // KMS across accounts: key id, key account, region, the controller role.
    target(
        "KeyAccessNotGranted",
        "c2a7e6b1-8d4f-4a3e-9b5c-0d1e2f3a4b5c",
    ),
    target("KeyAccessNotGranted", "927461830552"),
    target("KeyAccessNotGranted", "us-west-2"),
    target("KeyAccessNotGranted", "KarpenterController-payments"),
    // Organizations: the account, the SCP id.
    target("ServiceControlPolicyDeny", "381492650173"),
    target("ServiceControlPolicyDeny-describe-policy", "p-gpudeny1"),
    // Credentials: the ServiceAccount's name and namespace, the role, the issuer.
    Target {
        fixture: "TrustPolicyMismatch-wrong-serviceaccount",
        only: Some(("serviceaccount.yaml", "name: ")),
        text: "karpenter",
    },
    Target {
        fixture: "TrustPolicyMismatch-wrong-serviceaccount",
        only: Some(("serviceaccount.yaml", "namespace: ")),
        text: "kube-system",
    },
    target(
        "TrustPolicyMismatch-wrong-serviceaccount",
        "KarpenterController-prod",
    ),
    target(
        "OidcProviderMissing-confirmed",
        "C5F2A1B3D4E5F60718293A4B5C6D7E8F",
    ),
    target("WrongPrincipal", "KarpenterController-main"),
    // The VPC endpoint and its region.
    target(
        "VpcEndpointPolicyDeny-authorization-details",
        "vpce-0a1b2c3d4e5f67890",
    ),
    target(
        "VpcEndpointPolicyDeny-authorization-details",
        "eu-central-1",
    ),
    // A Sid in a jq program that deletes a statement, an inline policy's name.
    target("IdentityPolicyExplicitDeny", "DenySpotCapacity"),
];

fn fixtures() -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/explain")
}

fn explain(dir: &Path, output: &str) -> Output {
    let args: Vec<String> = fs::read_to_string(dir.join("args"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    std::process::Command::new(BIN)
        .current_dir(dir)
        .arg("explain")
        .args(args)
        .args(["-o", output])
        .output()
        .expect("run karpenter-doctor")
}

/// Whether the sandbox's working directory holds a file `command` may write: the policy
/// documents of an edit, an authorization's details.
fn allowed_output(name: &str) -> bool {
    ["policy.json", "policy-fixed.json"].contains(&name)
        || (name.starts_with("authorization-") && name.ends_with(".json"))
}

/// Runs one command as a reader would paste it; returns the argv of every program it ran, or
/// what is wrong with it.
fn check(sandbox: &Sandbox, line: &str) -> Result<Vec<Vec<String>>, String> {
    let parse = sandbox.bash(&["-n"], line, &[]);
    if !parse.status.success() {
        return Err(format!(
            "bash -n: {}",
            String::from_utf8_lossy(&parse.stderr)
        ));
    }
    let parsed = std::panic::catch_unwind(|| shell::split(line))
        .map_err(|_| "the shell-words parser cannot split it".to_string())?;
    // Outside quotes: plain words, and `>` only to a policy file.
    let plain = |c: char| c.is_ascii_alphanumeric() || ":/._=@,+- >".contains(c);
    if !parsed.unquoted.chars().all(plain) {
        return Err(format!(
            "shell syntax outside quotes: {:?}",
            parsed.unquoted
        ));
    }
    let mut words = parsed.words.iter();
    while let Some(w) = words.next() {
        if *w == Word::Redirect {
            match words.next() {
                Some(Word::Text(file)) if allowed_output(file) => {}
                other => return Err(format!("a redirect to {other:?}")),
            }
        }
    }
    let names: Vec<String> = shell::placeholders()
        .captures_iter(line)
        .map(|c| c[1].to_string())
        .collect();
    if !names.is_empty() {
        sandbox.reset();
        let out = sandbox.bash(&[], line, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains(&format!("{}: set {}", names[0], names[0])) {
            return Err(format!(
                "with {} unset it did not stop with its message: {stderr}",
                names[0]
            ));
        }
        if !sandbox.calls().is_empty() || sandbox.has(CANARY) {
            return Err(format!("with {} unset something still ran", names[0]));
        }
    }
    sandbox.reset();
    let vars: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), shell::placeholder_value(n)))
        .collect();
    let out = sandbox.bash(&[], line, &vars);
    if !out.status.success() || !out.stderr.is_empty() {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if sandbox.has(CANARY) {
        return Err("the canary file appeared: an injected command ran".into());
    }
    let written: Vec<String> = fs::read_dir(sandbox.work())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !allowed_output(n))
        .collect();
    if !written.is_empty() {
        return Err(format!("it wrote {written:?}"));
    }
    let calls = sandbox.calls();
    let want = shell::expected_calls(&parsed.words);
    if calls != want {
        return Err(format!("bash ran {calls:?}\n    the words say {want:?}"));
    }
    Ok(calls)
}

fn commands_of(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["status"]["remediation"]["commands"].as_array().cloned())
        .flatten()
        .filter_map(|c| c.as_str().map(String::from))
        .collect()
}

#[test]
fn every_golden_command_parses_stops_on_an_unset_placeholder_and_runs_as_its_words() {
    let sandbox = Sandbox::new("golden-commands");
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected-output.json").is_file())
        .collect();
    dirs.sort();
    let (mut checked, mut failures) = (0, Vec::new());
    for dir in &dirs {
        let golden: Value =
            serde_json::from_str(&fs::read_to_string(dir.join("expected-output.json")).unwrap())
                .unwrap();
        for line in commands_of(&golden) {
            checked += 1;
            if let Err(e) = check(&sandbox, &line) {
                failures.push(format!("{}: {line}\n    {e}", dir.display()));
            }
        }
    }
    println!("{checked} commands of {} goldens checked", dirs.len());
    assert!(
        checked > 200,
        "only {checked} commands: did the goldens move?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `text` with `from` replaced by `to` in every string of a JSON value, a JSON document held
/// in a string (an SCP's Content) included, each in its own escaping.
fn replace_json(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(inner @ (Value::Object(_) | Value::Array(_))) => {
                Value::String(replace_json(&inner, from, to).to_string())
            }
            _ => Value::String(s.replace(from, to)),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_json(x, from, to)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.replace(from, to), replace_json(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One file of a fixture with `from` replaced by `to`: JSON documents structurally, YAML lines
/// as double-quoted scalars, log lines as JSON records where they are, else as text.
fn craft_file(name: &str, text: &str, from: &str, to: &str) -> String {
    if name.ends_with(".json") {
        let doc: Value = serde_json::from_str(text).unwrap();
        return serde_json::to_string_pretty(&replace_json(&doc, from, to)).unwrap();
    }
    let yaml = name.ends_with(".yaml");
    text.lines()
        .map(|line| {
            if !line.contains(from) {
                line.to_string()
            } else if yaml {
                let crafted = line.replace(from, to);
                let (key, value) = crafted
                    .split_once(": ")
                    .expect("a YAML line to craft is `key: value`");
                format!("{key}: {}", Value::String(value.trim().to_string()))
            } else {
                match serde_json::from_str::<Value>(line) {
                    Ok(record @ Value::Object(_)) => replace_json(&record, from, to).to_string(),
                    _ => line.replace(from, to),
                }
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A copy of the target's fixture under `into`, the identifier followed by `payload`; returns
/// the crafted value.
fn craft(t: &Target, payload: &str, into: &Path) -> String {
    let value = format!("{}{}", t.text, payload.replace("CANARY", CANARY));
    let (file, key) = t.only.map_or((None, ""), |(f, k)| (Some(f), k));
    let (from, to) = (format!("{key}{}", t.text), format!("{key}{value}"));
    let _ = fs::remove_dir_all(into);
    fs::create_dir_all(into).unwrap();
    let mut found = false;
    for entry in fs::read_dir(fixtures().join(t.fixture)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).unwrap();
        let craftable = !["args", "expect.json", "expected-output.json"].contains(&name.as_str())
            && file.is_none_or(|f| f == name);
        let out = if craftable && text.contains(&from) {
            found = true;
            craft_file(&name, &text, &from, &to)
        } else {
            text
        };
        fs::write(into.join(&name), out).unwrap();
    }
    assert!(found, "{}: no file holds {from:?}", t.fixture);
    value
}

/// Whether some argument of `calls` carries `value` whole.
fn carried(calls: &[Vec<String>], value: &str) -> bool {
    calls.iter().flatten().any(|arg| {
        shell::decoded_strings(arg)
            .iter()
            .any(|s| s.contains(value))
    })
}

/// The free text of a Diagnosis, where no control character may stay.
fn free_text(d: &Value) -> Vec<&str> {
    let status = &d["status"];
    let root = &status["rootCause"];
    let mut out = vec![
        &root["summary"],
        &status["remediation"]["summary"],
        &status["lastMessage"],
    ];
    for e in root["evidence"].as_array().into_iter().flatten() {
        out.extend([&e["source"], &e["detail"]]);
    }
    out.extend(
        status["remediation"]["steps"]
            .as_array()
            .into_iter()
            .flatten(),
    );
    out.extend(
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["message"]),
    );
    out.into_iter().filter_map(Value::as_str).collect()
}

#[test]
fn crafted_values_reach_the_programs_as_one_intact_argument_and_run_nothing() {
    let sandbox = Sandbox::new("crafted-commands");
    let case_dir = sandbox.root.join("case");
    let (mut cases, mut commands, mut failures) = (0, 0, Vec::new());
    // Per target and per payload: the cases whose value reached a program intact.
    let mut by_target: BTreeMap<usize, usize> = BTreeMap::new();
    let mut by_payload: BTreeMap<usize, usize> = BTreeMap::new();
    for (ti, t) in TARGETS.iter().enumerate() {
        for (pi, payload) in PAYLOADS.iter().enumerate() {
            cases += 1;
            let value = craft(t, payload, &case_dir);
            let name = format!("{} {:?} + payload {pi}", t.fixture, t.text);
            let out = explain(&case_dir, "json");
            if !out.status.success() {
                failures.push(format!(
                    "{name}: explain failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
                continue;
            }
            let list: Value = serde_json::from_slice(&out.stdout).unwrap();
            for d in list["items"].as_array().into_iter().flatten() {
                for text in free_text(d) {
                    if text.chars().any(char::is_control) {
                        failures.push(format!("{name}: a control character in {text:?}"));
                    }
                }
            }
            let mut calls = Vec::new();
            for line in commands_of(&list) {
                commands += 1;
                match check(&sandbox, &line) {
                    Ok(c) => calls.extend(c),
                    Err(e) => failures.push(format!("{name}: {line}\n    {e}")),
                }
            }
            if carried(&calls, &value) {
                *by_target.entry(ti).or_default() += 1;
                *by_payload.entry(pi).or_default() += 1;
            }
            if payload.chars().any(char::is_control) {
                let text = explain(&case_dir, "text");
                let report = String::from_utf8_lossy(&text.stdout);
                if let Some(c) = report.chars().find(|&c| c.is_control() && c != '\n') {
                    failures.push(format!("{name}: the text report prints {c:?}"));
                }
            }
        }
    }
    println!(
        "{cases} crafted cases, {commands} commands checked; intact values by target {by_target:?}, by payload {by_payload:?}"
    );
    for (ti, t) in TARGETS.iter().enumerate() {
        if !by_target.contains_key(&ti) {
            failures.push(format!(
                "{} {:?}: no crafted value reached a program intact",
                t.fixture, t.text
            ));
        }
    }
    for (pi, p) in PAYLOADS.iter().enumerate() {
        if !by_payload.contains_key(&pi) {
            failures.push(format!("payload {p:?} never reached a program intact"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_harness_catches_an_injection_a_redirect_a_bare_placeholder_and_a_split_value() {
    let sandbox = Sandbox::new("harness");
    let safe = "aws iam get-role --role-name 'a;touch pwned-canary'";
    assert!(check(&sandbox, safe).is_ok(), "{:?}", check(&sandbox, safe));
    for unsafe_line in [
        "aws iam get-role --role-name a;touch pwned-canary",
        "aws iam get-role --role-name a$(touch pwned-canary)",
        "aws iam get-role --role-name a>pwned-canary",
        "aws eks describe-cluster --name <cluster>",
        "aws ec2 describe-vpc-endpoints --filters Name=vpc-id,Values=<the cluster's VPC id>",
        "aws iam get-role --role-name $ROLE",
    ] {
        assert!(
            check(&sandbox, unsafe_line).is_err(),
            "not caught: {unsafe_line}"
        );
    }
    let calls = check(&sandbox, "aws iam get-role --role-name a b").unwrap();
    assert!(
        !carried(&calls, "a b"),
        "a value split in two is not carried"
    );
    assert!(carried(&calls, "a"));
}
