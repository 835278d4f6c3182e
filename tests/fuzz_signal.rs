//! Property-based fuzzing of the signal scanner: random bytes, mutated fixtures and huge lines
//! never panic and only become capped warnings. PROPTEST_CASES raises the modest default.

use karpenter_doctor::signal::{Observations, Scanner};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::cell::Cell;
use std::sync::OnceLock;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new().unwrap())
}

const FIXTURES: [&str; 13] = [
    "karpenter-v1.jsonl",
    "karpenter-v03x-console.log",
    "karpenter-v03x-machine.jsonl",
    "seed-passrole.txt",
    "nodeclaims.json",
    "nodeclaims.yaml",
    "nodeclaim-v1beta1.yaml",
    "ec2nodeclasses.yaml",
    "events.json",
    "events-k8s-io-v1.yaml",
    "serviceaccounts.json",
    "describe-instances.json",
    "nodepools.yaml",
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/signals/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Scans and checks what must hold for any input whatsoever.
fn scan_checked(bytes: &[u8]) -> Result<Observations, TestCaseError> {
    let mut out = Observations::default();
    let mut last = 0;
    scanner()
        .scan("fuzz.in", bytes, &mut out, &mut |n| last = n)
        .map_err(|e| TestCaseError::fail(format!("I/O error from a slice: {e}")))?;
    prop_assert!(last <= bytes.len() as u64);
    prop_assert!(out.warnings.len() <= 101, "{} warnings", out.warnings.len());
    for w in &out.warnings {
        prop_assert_eq!(&w.origin.file, "fuzz.in");
    }
    let lines = 1 + bytes.iter().filter(|&&b| b == b'\n').count();
    for s in &out.signals {
        prop_assert!(s.message.len() <= 4096);
        prop_assert!(s.origin.line >= 1 && s.origin.line <= lines);
        prop_assert!(!s.rule.is_empty());
    }
    Ok(out)
}

#[test]
fn random_bytes_never_panic() {
    let n = cases(512);
    let warned = Cell::new(0);
    runner(n)
        .run(&prop::collection::vec(any::<u8>(), 0..2048), |bytes| {
            let out = scan_checked(&bytes)?;
            warned.set(warned.get() + usize::from(!out.warnings.is_empty()));
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz_signal bytes: {n} cases, {} with warnings, 0 panics",
        warned.get()
    );
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"---\n".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"\x00".to_vec()),
        Just(b": [".to_vec()),
        Just(b"&a *a".to_vec()),
        Just(b"is not authorized to perform: ".to_vec()),
        Just(b"\n  \"error\": \"".to_vec()),
        Just(b"{\n".to_vec()),
        Just(b"[pod/karpenter-x/controller] ".to_vec()),
        Just(b"karpenter-5f98 controller ".to_vec()),
        Just(b"\\n\\t".to_vec()),
        Just(b"\x1b[32m".to_vec()),
        Just(b" with an explicit deny in a resource control policy: arn:aws:organizations::1:policy/o-a/resource_control_policy/p-b".to_vec()),
        Just(b" Go to https://x#/authorization-details/ID for complete details, or call the GetRequestAuthorizationDetails API with the following authorization id: ID".to_vec()),
        Just(b"operation error EC2: DescribeImages, ".to_vec()),
        Just(b"adding role \"".to_vec()),
        Just(b"Not authorized to perform sts:AssumeRoleWithWebIdentity".to_vec()),
        Just(
            b"; UnauthorizedOperation: You are not authorized to perform this operation. ".to_vec()
        ),
        // AWS's decoded authorization message, in the forms the CLI prints it.
        Just(b"{\"DecodedMessage\": \"{\\\"allowed\\\":false,\\\"explicitDeny\\\":true,".to_vec()),
        Just(b"\\\"context\\\":{\\\"principal\\\":{\\\"arn\\\":\\\"".to_vec()),
        Just(b"\"matchedStatements\": {\"items\": [{\"statementId\": \"S\", \"effect\": \"DENY\"}]},".to_vec()),
        Just(b"DecodedMessage: '{\"allowed\":false,".to_vec()),
        Just(b"\n...\n".to_vec()),
        prop::collection::vec(any::<u8>(), 1..16),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Flip(at, b)),
        (any::<usize>(), 1..64usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), interesting).prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1..256usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len().max(1);
    match edit {
        Edit::Flip(at, b) => {
            if !bytes.is_empty() {
                bytes[at % len] = *b;
            }
        }
        Edit::Delete(at, n) => {
            let at = at % len;
            let end = (at + n).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
        Edit::Insert(at, insert) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, insert.iter().copied());
        }
        Edit::Truncate(at) => bytes.truncate(at % len),
        Edit::Duplicate(at, n) => {
            let at = at % len;
            let end = (at + n).min(bytes.len());
            let copy = bytes[at.min(end)..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

/// The real pastes of tests/fixtures/pastes.
fn pastes() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fixtures/pastes", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn mutated_fixtures_never_panic() {
    let n = cases(1024);
    let mut fixtures: Vec<Vec<u8>> = FIXTURES.iter().map(|f| fixture(f)).collect();
    fixtures.extend(pastes());
    let (signals, warned) = (Cell::new(0), Cell::new(0));
    let strategy = (0..fixtures.len(), prop::collection::vec(edit(), 1..6));
    runner(n)
        .run(&strategy, |(which, edits)| {
            let mut bytes = fixtures[which].clone();
            for e in &edits {
                apply(&mut bytes, e);
            }
            let out = scan_checked(&bytes)?;
            signals.set(signals.get() + out.signals.len());
            warned.set(warned.get() + usize::from(!out.warnings.is_empty()));
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz_signal mutations: {n} cases, {} signals, {} with warnings, 0 panics",
        signals.get(),
        warned.get()
    );
}

#[test]
fn huge_lines_are_skipped_not_crashed_on() {
    let n = cases(12).min(64);
    let seed = fixture("seed-passrole.txt");
    let strategy = (
        (1usize << 20) - 64..(3 << 20),
        prop::option::of(0.0f64..1.0),
        prop::bool::ANY,
        0u8..4,
    );
    runner(n)
        .run(&strategy, |(len, candidate_at, json, filler)| {
            let mut line = vec![b"xy \t{"[usize::from(filler)]; len];
            if json {
                line[0] = b'{';
            }
            if let Some(f) = candidate_at {
                let at = ((len as f64 * f) as usize).min(len - 1);
                line.splice(at..at, seed.iter().copied().filter(|&b| b != b'\n'));
            }
            let mut input = seed.clone();
            input.extend_from_slice(&line);
            input.push(b'\n');
            input.extend_from_slice(&seed);
            let out = scan_checked(&input)?;
            // The lines around the huge one are always read.
            let lines: Vec<usize> = out.signals.iter().map(|s| s.origin.line).collect();
            prop_assert_eq!(lines.first(), Some(&1));
            prop_assert_eq!(lines.last(), Some(&3));
            // A huge line holding a candidate is skipped with a warning, or read when it
            // fits the cap.
            let total = line.len();
            if candidate_at.is_some() && total > (1 << 20) {
                prop_assert!(
                    out.warnings
                        .iter()
                        .any(|w| w.origin.line == 2 && w.message.contains("longer than"))
                );
            }
            Ok(())
        })
        .unwrap();
    println!("fuzz_signal huge lines: {n} cases, 0 panics");
}

/// What a signal says, without where it was seen.
fn said(out: &Observations) -> Vec<String> {
    out.signals
        .iter()
        .map(|s| {
            format!(
                "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                s.rule,
                s.category,
                s.action,
                s.principal,
                s.resource,
                s.layer,
                s.policy_arn,
                s.encoded_message,
                s.node_claim,
                s.time
            )
        })
        .collect()
}

#[test]
fn pasted_shapes_of_a_record_say_what_the_record_says() {
    // Every JSON log line of the fixtures, as jq prints it, behind tool prefixes, and cut
    // short after its denial sentence: the same signals (a cut line warns, once).
    let mut checked = 0;
    for name in ["karpenter-v1.jsonl", "karpenter-v03x-machine.jsonl"] {
        let text = String::from_utf8(fixture(name)).unwrap();
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let whole = scan_checked(line.as_bytes()).unwrap();
            if whole.signals.is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            assert_eq!(
                said(&scan_checked(pretty.as_bytes()).unwrap()),
                said(&whole),
                "{pretty}"
            );
            let pre = format!("<pre class=\"notranslate\">\n{pretty}\n</pre>\n");
            assert_eq!(
                said(&scan_checked(pre.as_bytes()).unwrap()),
                said(&whole),
                "{pre}"
            );
            for prefix in [
                "[pod/karpenter-6b8f/controller] ",
                "karpenter-6b8f-x controller ",
                "2024-06-01T10:00:00.123Z ",
            ] {
                let prefixed = format!("{prefix}{line}");
                assert_eq!(
                    said(&scan_checked(prefixed.as_bytes()).unwrap()),
                    said(&whole),
                    "{prefixed}"
                );
            }
            // Re-wrapped by a terminal at its width (cut anywhere, as `fold` does): one record
            // again, the same signals and no warning (issue 26 §1).
            for width in [60, 80, 100, 132] {
                let chars: Vec<char> = line.chars().collect();
                let rows: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
                let folded = rows.join("\n");
                let out = scan_checked(folded.as_bytes()).unwrap();
                assert_eq!(said(&out), said(&whole), "{folded}");
                assert!(out.warnings.is_empty(), "{:?}", out.warnings);
            }
            // Broken as JSON (a member's colon lost, as a user re-wrapping it may): still read
            // as text, for the same failures (issue 26 §1), with a warning.
            if let Some(at) = line.find("\"error\":").or(line.find("\"msg\":")) {
                let key_end = line[at + 1..].find('"').map(|q| at + 2 + q);
                if let Some(colon) = key_end {
                    let broken = format!("{} {}", &line[..colon], &line[colon + 1..]);
                    let out = scan_checked(broken.as_bytes()).unwrap();
                    let told = |o: &Observations| {
                        o.signals
                            .iter()
                            .map(|s| (s.action.clone(), s.principal.clone(), s.layer))
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(told(&out), told(&whole), "{broken}");
                    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
                }
            }
            // Cut right after the last signal's sentence (its message is the whole error).
            let error = value["error"]
                .as_str()
                .or(value["msg"].as_str())
                .unwrap_or("");
            if let Some(end) = error
                .find(" because no ")
                .map(|at| at + " because no identity-based policy allows".len())
            {
                let keep = line.find(&error[..end.min(error.len())]).map(|at| at + end);
                if let Some(keep) = keep.filter(|&k| k < line.len() && line.is_char_boundary(k)) {
                    let cut = scan_checked(&line.as_bytes()[..keep]).unwrap();
                    let first = |o: &Observations| {
                        o.signals
                            .first()
                            .map(|s| (s.action.clone(), s.principal.clone(), s.layer))
                    };
                    assert_eq!(first(&cut), first(&whole), "{}", &line[..keep]);
                    assert_eq!(cut.warnings.len(), 1, "{:?}", cut.warnings);
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} records checked");
    println!("fuzz_signal shapes: {checked} records, each pretty-printed, prefixed and cut");
}

/// AWS's decoded authorization messages (pastes of shape 8) cut at any byte: a principal, action
/// or resource read from one is the whole value or nothing, never the prefix the cut left.
#[test]
fn decoded_messages_cut_anywhere_never_give_a_cut_value() {
    let n = cases(512);
    let dir = format!("{}/tests/fixtures/pastes", env!("CARGO_MANIFEST_DIR"));
    let whole: Vec<(Vec<u8>, Observations)> = ["135-8.txt", "136-8.txt", "137-8.txt", "138-8.txt"]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(format!("{dir}/{f}")).unwrap();
            let out = scan_checked(&bytes).unwrap();
            assert_eq!(out.signals.len(), 1, "{f}");
            (bytes, out)
        })
        .collect();
    let read = Cell::new(0);
    runner(n)
        .run(&(0..whole.len(), any::<usize>()), |(which, at)| {
            let (bytes, full) = &whole[which];
            let cut = &bytes[..at % bytes.len()];
            let out = scan_checked(cut)?;
            let want = &full.signals[0];
            for s in out
                .signals
                .iter()
                .filter(|s| s.rule == "decoded-authorization-message")
            {
                read.set(read.get() + 1);
                for (got, whole) in [
                    (&s.principal, &want.principal),
                    (&s.action, &want.action),
                    (&s.resource, &want.resource),
                ] {
                    prop_assert!(
                        got.is_none() || got == whole,
                        "{got:?} from {} bytes",
                        cut.len()
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz_signal decoded cuts: {n} cases, {} signals read",
        read.get()
    );
}
