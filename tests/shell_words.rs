//! `diagnose::shell`, the builder of remediation commands, against outside parsers: for
//! arbitrary values (control characters, quotes, shell syntax, any Unicode), a built command
//! split by a POSIX shell-words parser (shlex) gives back exactly the argv intended, each value
//! one word (and inside AWS CLI shorthand, the value awscli's own grammar reads); bash, run on
//! it with stub programs, passes the same argv. PROPTEST_CASES raises the default.

#[path = "common/shell.rs"]
mod shell;

use karpenter_doctor::diagnose::shell::{Command, Piece, Placeholder, shorthand};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use shell::{Sandbox, Word};

fn runner(default: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// Literals as the remediation code writes them, with the words each stands for.
const LITERALS: [(&str, &[&str]); 5] = [
    ("iam get-role", &["iam", "get-role"]),
    ("--role-name", &["--role-name"]),
    (
        "--query 'Events[].[EventTime,EventName]' --output text",
        &[
            "--query",
            "Events[].[EventTime,EventName]",
            "--output",
            "text",
        ],
    ),
    (
        "-o jsonpath='{.metadata.annotations.eks\\.amazonaws\\.com/role-arn}'",
        &[
            "-o",
            "jsonpath={.metadata.annotations.eks\\.amazonaws\\.com/role-arn}",
        ],
    ),
    (
        "--policy-document file://policy-fixed.json",
        &["--policy-document", "file://policy-fixed.json"],
    ),
];

const HOLES: [Placeholder; 2] = [
    Placeholder::new("CLUSTER", "the EKS cluster name"),
    Placeholder::new(
        "KEY_STORE_ID",
        "the custom key store id from the command above",
    ),
];

/// One part of a generated command.
#[derive(Debug, Clone)]
enum Part {
    Literal(usize),
    Value(String),
    /// `Key=` then a value in AWS CLI shorthand, then `,Type=string`.
    Shorthand(String),
    /// A literal prefix, a value, a placeholder, in one word.
    Mixed(String, usize),
    Hole(usize),
    Output(Vec<Part>),
}

/// Strings that go for the shell's and the parsers' corners: arbitrary ones, ones made of
/// special characters, plain ones with one special character in them, and the empty one.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => "[a-z'\"$`;|&<>(){}*?~#!^%=,:@+ \t\n\r\\\\\u{1}\u{1b}\u{7f}\u{85}\u{a0}é-]{0,16}",
        3 => "[a-z0-9:/._=@,+-]{0,6}[ ;|&<>()'\"$`*?~#!\n\\\\]?[a-z0-9:/._=@,+-]{0,6}",
        1 => Just(String::new()),
    ]
}

fn part(depth: u32) -> BoxedStrategy<Part> {
    let leaf = prop_oneof![
        (0..LITERALS.len()).prop_map(Part::Literal),
        value().prop_map(Part::Value),
        value().prop_map(Part::Shorthand),
        (value(), 0..HOLES.len()).prop_map(|(v, h)| Part::Mixed(v, h)),
        (0..HOLES.len()).prop_map(Part::Hole),
    ];
    if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![
            4 => leaf,
            1 => prop::collection::vec(part(depth - 1), 0..4).prop_map(Part::Output),
        ]
        .boxed()
    }
}

/// The value as an argument can hold it (no program argument holds a NUL).
fn as_argument(v: &str) -> String {
    v.replace('\0', "\u{FFFD}")
}

fn hole_text(p: Placeholder) -> String {
    format!("${{{}:?set {} to {}}}", p.name, p.name, p.what)
}

/// The command and the words the parser must give back.
fn build(program: &'static str, parts: &[Part]) -> (Command, Vec<Word>) {
    let mut c = Command::new(program);
    let mut words = vec![Word::Text(program.into())];
    for p in parts {
        match p {
            Part::Literal(i) => {
                c = c.lit(LITERALS[*i].0);
                words.extend(LITERALS[*i].1.iter().map(|w| Word::Text(w.to_string())));
            }
            Part::Value(v) => {
                c = c.arg(v.as_str());
                words.push(Word::Text(as_argument(v)));
            }
            Part::Shorthand(v) => {
                c = c.word(&[
                    Piece::Lit("Key="),
                    Piece::Shorthand(v),
                    Piece::Lit(",Type=string"),
                ]);
                words.push(Word::Text(format!(
                    "Key={},Type=string",
                    shorthand(&as_argument(v))
                )));
            }
            Part::Mixed(v, h) => {
                c = c.word(&[Piece::Lit("x="), Piece::Value(v), Piece::Hole(HOLES[*h])]);
                words.push(Word::Text(format!(
                    "x={}{}",
                    as_argument(v),
                    hole_text(HOLES[*h])
                )));
            }
            Part::Hole(h) => {
                c = c.arg(HOLES[*h]);
                words.push(Word::Text(hole_text(HOLES[*h])));
            }
            Part::Output(inner) => {
                let (sub, sub_words) = build("aws", inner);
                c = c.output(&sub);
                words.push(Word::Output(sub_words));
            }
        }
    }
    (c, words)
}

#[test]
fn a_built_command_splits_into_exactly_the_intended_words() {
    runner(512)
        .run(&prop::collection::vec(part(2), 0..8), |parts| {
            let (command, words) = build("aws", &parts);
            let parsed = shell::split(command.as_str());
            prop_assert_eq!(&parsed.words, &words, "{}", command.as_str());
            // Outside quotes only plain characters: no redirect, pipe, list, expansion, glob.
            let plain = |c: char| c.is_ascii_alphanumeric() || ":/._=@,+- ".contains(c);
            prop_assert!(
                parsed.unquoted.chars().all(plain),
                "shell syntax outside quotes: {}",
                command.as_str()
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_value_in_shorthand_is_what_awscli_reads() {
    runner(1024)
        .run(&value(), |v| {
            let v = as_argument(&v);
            let encoded = shorthand(&v);
            prop_assert_eq!(
                shell::shorthand_value(&encoded),
                Some(v.clone()),
                "{:?}",
                encoded
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn bash_passes_each_value_as_one_argument() {
    let sandbox = Sandbox::new("shell-words");
    let vars: Vec<(String, String)> = HOLES
        .iter()
        .map(|h| (h.name.to_string(), shell::placeholder_value(h.name)))
        .collect();
    runner(256)
        .run(&prop::collection::vec(part(1), 0..6), |parts| {
            sandbox.reset();
            let (command, words) = build("aws", &parts);
            let out = sandbox.bash(&[], command.as_str(), &vars);
            prop_assert!(
                out.status.success() && out.stderr.is_empty(),
                "{}: {}",
                command.as_str(),
                String::from_utf8_lossy(&out.stderr)
            );
            prop_assert_eq!(
                sandbox.calls(),
                shell::expected_calls(&words),
                "{}",
                command.as_str()
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn an_unset_placeholder_stops_the_command_with_its_message() {
    let sandbox = Sandbox::new("shell-words-unset");
    let c = Command::new("aws")
        .lit("eks describe-cluster")
        .opt("--name", HOLES[0]);
    let out = sandbox.bash(&[], c.as_str(), &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("CLUSTER: set CLUSTER to the EKS cluster name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sandbox.calls().is_empty(), "the program did not run");
}
