//! A cut value is not a fact (issue 24 §2): every failure message of every `explain` fixture
//! (NodeClaim condition messages, Event messages and notes, the `error` of JSON log lines) is
//! cut at every byte, as
//! Karpenter cuts it (the first bytes, then `...`: 300 bytes in v1.0–v1.14, 1021 in v1.15) and
//! with no marker where the input shows the cut (a log line as a terminal cuts it, the record's
//! text ending inside the message; a NodeClaim message of Karpenter v1.0's 300 characters), and
//! diagnosed with the fixture's other inputs and snapshots, in process. For every cut:
//! - no Diagnosis names a partial value (a value the cut ends inside of) in `spec`, its
//!   `policyPatch` or its `commands`: whatever is there continues as the whole value did;
//! - no NodeClaim gets more Diagnoses than it had with the whole message;
//! - no Diagnosis is `Confirmed` in a category the whole input does not confirm (a cut proves
//!   nothing the whole text does not).
//!
//! `CUT_STEP` (default 1) takes every n-th byte instead, for a quicker local run.

use karpenter_doctor::diagnose::{self, model::Diagnosis};
use karpenter_doctor::facts::SnapshotFacts;
use karpenter_doctor::facts::iam_snapshot::IamSnapshot;
use karpenter_doctor::facts::kms_snapshot;
use karpenter_doctor::signal::{Observations, Scanner};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One fixture: its inputs (name, bytes), snapshots and controller role.
struct Case {
    inputs: Vec<(String, Vec<u8>)>,
    facts: SnapshotFacts,
    controller_role: Option<String>,
}

fn load(dir: &Path) -> Case {
    let args = fs::read_to_string(dir.join("args")).unwrap();
    let mut words = args.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut case = Case {
        inputs: Vec::new(),
        facts: SnapshotFacts::default(),
        controller_role: None,
    };
    while let Some(w) = words.next() {
        match w {
            "--iam-snapshot" => {
                let f = words.next().unwrap();
                let text = fs::read_to_string(dir.join(f)).unwrap();
                case.facts
                    .iam
                    .push((f.to_string(), IamSnapshot::parse(&text).unwrap()));
            }
            "--kms-snapshot" => {
                let f = words.next().unwrap();
                let text = fs::read_to_string(dir.join(f)).unwrap();
                case.facts
                    .kms
                    .push((f.to_string(), kms_snapshot::parse(&text).unwrap()));
            }
            "--controller-role" => case.controller_role = words.next().map(str::to_string),
            flag if flag.starts_with("--") => {
                words.next();
            }
            file => case
                .inputs
                .push((file.to_string(), fs::read(dir.join(file)).unwrap())),
        }
    }
    case
}

fn diagnose(scanner: &Scanner, case: &Case, inputs: &[(String, Vec<u8>)]) -> Vec<Diagnosis> {
    let mut obs = Observations::default();
    for (name, bytes) in inputs {
        scanner
            .scan(name, bytes.as_slice(), &mut obs, &mut |_| {})
            .unwrap();
    }
    diagnose::diagnose(&obs, &case.facts, case.controller_role.as_deref())
}

/// Where a failure message sits in one input, and how to put a cut one back.
enum Slot {
    /// A JSON log line (`line` of the input) whose `error` is the message.
    LogLine { line: usize, record: Value },
    /// A NodeClaim condition's message, or an Event's `message` (core/v1) or `note`
    /// (events.k8s.io/v1), in a JSON or YAML document or an item of a List: at `pointer`.
    Field {
        doc: Value,
        yaml: bool,
        pointer: String,
    },
}

/// Every failure message of an input, with its slot.
fn messages(bytes: &[u8]) -> Vec<(String, Slot)> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let trimmed = text.trim_start();
    let (doc, yaml) = if trimmed.starts_with('{') && text.lines().count() > 1 && !is_jsonl(text) {
        (serde_json::from_str::<Value>(text).ok(), false)
    } else if !trimmed.starts_with('{') {
        (serde_norway::from_str::<Value>(text).ok(), true)
    } else {
        (None, false)
    };
    if let Some(doc) = doc {
        let objects: Vec<(String, &Value)> = match doc["items"].as_array() {
            Some(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("/items/{i}"), v))
                .collect(),
            None => vec![(String::new(), &doc)],
        };
        for (at, obj) in objects {
            let fields: Vec<String> = match obj["kind"].as_str() {
                Some("NodeClaim") => {
                    (0..obj["status"]["conditions"].as_array().map_or(0, Vec::len))
                        .map(|c| format!("{at}/status/conditions/{c}/message"))
                        .collect()
                }
                Some("Event") => vec![format!("{at}/message"), format!("{at}/note")],
                _ => Vec::new(),
            };
            for pointer in fields {
                if let Some(m) = doc
                    .pointer(&pointer)
                    .and_then(Value::as_str)
                    .filter(|m| m.len() > 40)
                {
                    out.push((
                        m.to_string(),
                        Slot::Field {
                            doc: doc.clone(),
                            yaml,
                            pointer,
                        },
                    ));
                }
            }
        }
        return out;
    }
    for (line, l) in text.lines().enumerate() {
        if let Ok(record) = serde_json::from_str::<Value>(l)
            && let Some(m) = record["error"].as_str()
        {
            out.push((m.to_string(), Slot::LogLine { line, record }));
        }
    }
    out
}

fn is_jsonl(text: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .all(|l| serde_json::from_str::<Value>(l).is_ok())
}

/// The input with the message in `slot` replaced by `message`.
fn with_message(bytes: &[u8], slot: &Slot, message: &str) -> Vec<u8> {
    match slot {
        Slot::LogLine { line, record } => {
            let mut record = record.clone();
            record["error"] = Value::String(message.to_string());
            let mut written = record.to_string();
            if !message.ends_with("...") {
                // Without Karpenter's marker, a log line is cut as a terminal or a paste cuts
                // it: the record's text ends inside the message.
                let quoted = Value::String(message.to_string()).to_string();
                let field = format!("\"error\":{}", &quoted[..quoted.len() - 1]);
                let at = written.find(&field).expect("the error field") + field.len();
                written.truncate(at);
            }
            let text = std::str::from_utf8(bytes).unwrap();
            let lines: Vec<String> = text
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    if i == *line {
                        written.clone()
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            (lines.join("\n") + "\n").into_bytes()
        }
        Slot::Field { doc, yaml, pointer } => {
            let mut doc = doc.clone();
            *doc.pointer_mut(pointer).unwrap() = Value::String(message.to_string());
            if *yaml {
                serde_norway::to_string(&doc).unwrap().into_bytes()
            } else {
                serde_json::to_vec_pretty(&doc).unwrap()
            }
        }
    }
}

/// Where the run of characters a value (an ARN, an action, a name) is made of around byte `at`
/// of `text` starts and ends.
fn value_around(text: &str, at: usize) -> (usize, usize) {
    let part = |c: char| c.is_ascii_alphanumeric() || ":/-_.@+=,*${}".contains(c);
    let start = text[..at]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| part(c))
        .last()
        .map_or(at, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .find(|&(_, c)| !part(c))
        .map_or(text.len(), |(i, _)| at + i);
    (start, end)
}

/// The value the cut at `at` ends inside of, as (the prefix kept, the whole value): a run of
/// characters a value (an ARN, an action, a name) is made of, around `at`.
fn cut_token(message: &str, at: usize) -> Option<(&str, &str)> {
    let (start, end) = value_around(message, at);
    let whole = message[start..end].trim_end_matches(['.', ',']);
    let kept = &message[start..at];
    // Values the doctor reads: ARNs, actions, ids with a prefix (`ami-`, `i-`, `p-`).
    // An ARN cut before its resource part names nothing yet (`arn:aws:` is every ARN's start).
    let value = if whole.starts_with("arn:") {
        kept.matches(':').count() >= 5
    } else {
        // An action (`service:Name`), an AMI or an instance.
        let action = whole.split_once(':').is_some_and(|(service, name)| {
            !service.is_empty()
                && !name.is_empty()
                && service
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '*')
        });
        action || whole.starts_with("ami-") || whole.starts_with("i-")
    };
    (value && at > start && at < start + whole.len() && kept.len() >= 6).then_some((kept, whole))
}

/// The fields of a Diagnosis that must hold only whole values.
fn fields(d: &Diagnosis) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let s = &d.spec;
    for (name, v) in [
        ("spec.principalArn", &s.principal_arn),
        ("spec.resourceArn", &s.resource_arn),
        ("spec.kmsKeyArn", &s.kms_key_arn),
        ("spec.action", &s.action),
    ] {
        if let Some(v) = v {
            out.push((name.to_string(), v.clone()));
        }
    }
    let r = &d.status.remediation;
    if let Some(p) = &r.policy_patch {
        out.push(("remediation.policyPatch".into(), p.clone()));
    }
    for (i, c) in r.commands.iter().enumerate() {
        out.push((format!("remediation.commands[{i}]"), c.clone()));
    }
    out
}

/// The category of a Confirmed Diagnosis. Not its reason: a cut may prove another true
/// cause than the whole text names first (a PassRole statement that both misses the role and
/// requires the wrong iam:PassedToService: whole, `ResourceNotCovered`; cut inside the role,
/// `PassedToServiceMismatch`, which holds whatever the role).
fn confirmed(d: &Diagnosis) -> Option<String> {
    let root = &d.status.root_cause;
    (root.confidence == diagnose::model::Confidence::Confirmed)
        .then(|| format!("{:?}", d.spec.category))
}

/// Whether `field` holds a cut form of `whole`: at some occurrence of `kept`, the value there
/// (the run of value characters around it) is a strict prefix of `whole`, or that prefix made a
/// pattern (`…/Karp*`). Another whole value that begins the same (`role/KarpenterController`
/// beside a cut `role/Karpent`) is no cut form.
fn holds_partial(field: &str, kept: &str, whole: &str) -> bool {
    field.match_indices(kept).any(|(i, _)| {
        let (start, end) = value_around(field, i);
        let token = field[start..end].trim_end_matches(['.', ',']);
        let pattern = token.strip_suffix('*').unwrap_or(token);
        token != whole && whole.starts_with(pattern) && pattern.len() >= kept.len()
    })
}

fn per_claim(items: &[Diagnosis]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for d in items {
        for c in &d.status.affected_node_claims {
            *out.entry(c.clone()).or_default() += 1;
        }
    }
    out
}

fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("tests/fixtures/explain"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("args").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn no_partial_value_becomes_a_fact_whatever_byte_the_cut_falls_on() {
    let step: usize = std::env::var("CUT_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let scanner = Scanner::new().unwrap();
    let (mut runs, mut messages_cut, mut problems) = (0usize, 0usize, Vec::new());
    let mut events_cut = 0usize;
    for dir in case_dirs() {
        let case = load(&dir);
        let whole = diagnose(&scanner, &case, &case.inputs);
        let whole_claims = per_claim(&whole);
        // What the whole input already gives (a policy's own values, `role/X` beside a cut
        // `role/X-v2`): the same field from the cut input is no cut form.
        let whole_fields: std::collections::BTreeSet<String> =
            whole.iter().flat_map(fields).map(|(_, v)| v).collect();
        let whole_confirmed: std::collections::BTreeSet<String> =
            whole.iter().filter_map(confirmed).collect();
        for (input, (name, bytes)) in case.inputs.iter().enumerate() {
            for (message, slot) in messages(bytes) {
                messages_cut += 1;
                events_cut += usize::from(
                    matches!(&slot, Slot::Field { pointer, .. } if !pointer.contains("/conditions/")),
                );
                let bounds: Vec<usize> = (1..message.len())
                    .filter(|&b| message.is_char_boundary(b))
                    .step_by(step)
                    .collect();
                for at in bounds {
                    // Without a marker, a cut shows only where something says so: a log line's
                    // record broken off (a terminal), a NodeClaim message of Karpenter v1.0's
                    // 300 characters. A shorter message cut by hand reads as whole: AWS's older
                    // sentences do end in the action or the resource.
                    // An Event's text shows a cut only by Karpenter's marker.
                    let markers: &[&str] = match &slot {
                        Slot::Field { pointer, .. } if !pointer.contains("/conditions/") => {
                            &["..."]
                        }
                        Slot::Field { .. } if message[..at].chars().count() < 295 => &["..."],
                        _ => &["...", ""],
                    };
                    for &marker in markers {
                        let cut = format!("{}{marker}", &message[..at]);
                        let mut inputs = case.inputs.clone();
                        inputs[input].1 = with_message(bytes, &slot, &cut);
                        let items = diagnose(&scanner, &case, &inputs);
                        runs += 1;
                        let what = || {
                            format!(
                                "{} {name}: cut at byte {at}{}",
                                dir.file_name().unwrap().to_string_lossy(),
                                if marker.is_empty() { "" } else { " + ..." }
                            )
                        };
                        if let Some((kept, whole)) = cut_token(&message, at) {
                            for d in &items {
                                for (field, value) in fields(d) {
                                    if !whole_fields.contains(&value)
                                        && holds_partial(&value, kept, whole)
                                    {
                                        problems.push(format!(
                                            "{}: {} {} holds the partial {kept:?} (whole {whole:?}): {value}",
                                            what(),
                                            d.metadata.name,
                                            field
                                        ));
                                    }
                                }
                            }
                        }
                        // A cut never proves what the whole text does not.
                        for d in &items {
                            if let Some(c) = confirmed(d).filter(|c| !whole_confirmed.contains(c)) {
                                problems.push(format!(
                                    "{}: {} is Confirmed ({c}), which the whole text is not",
                                    what(),
                                    d.metadata.name
                                ));
                            }
                        }
                        for (claim, n) in per_claim(&items) {
                            let before = whole_claims.get(&claim).copied().unwrap_or(0);
                            if n > before.max(1) {
                                problems.push(format!(
                                    "{}: NodeClaim {claim} has {n} Diagnoses, {before} whole",
                                    what()
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    println!("{messages_cut} messages cut ({events_cut} of Events), {runs} diagnoses run");
    assert!(messages_cut >= 20, "the fixtures hold failure messages");
    assert!(events_cut >= 2, "the fixtures hold Events' failure texts");
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} problems, first 30:\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_cut_token_is_the_value_the_cut_ends_inside_of() {
    let m = "on resource: arn:aws:iam::111122223333:role/KarpenterNode because no";
    let at = m.find("Node").unwrap();
    assert_eq!(
        cut_token(m, at),
        Some((
            "arn:aws:iam::111122223333:role/Karpenter",
            "arn:aws:iam::111122223333:role/KarpenterNode"
        ))
    );
    assert_eq!(
        cut_token(m, m.find(" because").unwrap()),
        None,
        "a whole value"
    );
    assert!(holds_partial(
        "--role-name Karpenter'",
        "Karpenter",
        "KarpenterNode"
    ));
    assert!(holds_partial(
        "'role/Karpenter*'",
        "role/Karpenter",
        "role/KarpenterNode"
    ));
    assert!(!holds_partial(
        "--role-name KarpenterNode",
        "Karpenter",
        "KarpenterNode"
    ));
    assert!(!holds_partial(
        " role/KarpenterController",
        "role/Karpenter",
        "role/KarpenterNode"
    ));
    assert!(!holds_partial("a/*", "a", "a/*"), "a whole pattern");
}
