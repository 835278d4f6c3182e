//! What a pasted command does, seen from outside the doctor: a word splitter (shlex, a POSIX
//! shell-words parser, with `"$(…)"` and redirects taken apart first, since shlex knows
//! neither), the decoders of the languages values are nested in (JSON, jq string literals, AWS
//! CLI shorthand), and a sandbox that runs a command in bash with a PATH of stub programs that
//! record their argv.
#![allow(dead_code)]

use regex::Regex;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One word of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// A word as the shell passes it (a placeholder `${NAME:?…}` left unexpanded).
    Text(String),
    /// `"$(…)"`: what the inner command prints.
    Output(Vec<Word>),
    /// An unquoted `>`: the next word is a file the output goes to.
    Redirect,
}

/// A command line split into words, with the text that stood outside any quotes (where `<`,
/// `>`, `|`, `;`, `&` would be shell syntax).
#[derive(Debug, Default)]
pub struct Parsed {
    pub words: Vec<Word>,
    pub unquoted: String,
}

const MARK: char = '\0';

/// Splits `line`; panics where it is not one well-formed command.
pub fn split(line: &str) -> Parsed {
    let chars: Vec<char> = line.chars().collect();
    let (parsed, end) = scan(&chars, 0, false);
    assert_eq!(end, chars.len(), "unbalanced `)` in {line:?}");
    parsed
}

/// Scans from `i` to the end, or (inside `$(`) to its closing `)`; returns the words and the
/// index where it stopped.
fn scan(chars: &[char], mut i: usize, inner: bool) -> (Parsed, usize) {
    let mut text = String::new();
    let mut subs = Vec::new();
    let mut unquoted = String::new();
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        match c {
            '\'' => {
                let end = (i + 1..chars.len())
                    .find(|&j| chars[j] == '\'')
                    .unwrap_or_else(|| panic!("unclosed ' in {:?}", String::from_iter(chars)));
                text.extend(&chars[i..=end]);
                i = end + 1;
            }
            '\\' => {
                // An escaped character is quoted.
                text.extend(&chars[i..(i + 2).min(chars.len())]);
                i += 2;
            }
            '"' if at(i + 1) == Some('$') && at(i + 2) == Some('(') => {
                let (sub, end) = scan(chars, i + 3, true);
                assert_eq!(at(end + 1), Some('"'), "`$(…)` must be double-quoted");
                unquoted.push_str(&sub.unquoted);
                text.push_str(&format!(" {MARK}SUB{}{MARK} ", subs.len()));
                subs.push(sub.words);
                i = end + 2;
            }
            '"' => {
                let mut j = i + 1;
                while at(j).is_some_and(|c| c != '"') {
                    j += if at(j) == Some('\\') { 2 } else { 1 };
                }
                assert!(
                    at(j).is_some(),
                    "unclosed \" in {:?}",
                    String::from_iter(chars)
                );
                text.extend(&chars[i..=j]);
                i = j + 1;
            }
            ')' if inner => break,
            '>' => {
                text.push_str(&format!(" {MARK}REDIRECT{MARK} "));
                unquoted.push('>');
                i += 1;
            }
            c => {
                text.push(c);
                unquoted.push(c);
                i += 1;
            }
        }
    }
    let words = shlex::split(&text)
        .unwrap_or_else(|| panic!("shlex cannot split {text:?}"))
        .into_iter()
        .map(|w| {
            if w == format!("{MARK}REDIRECT{MARK}") {
                Word::Redirect
            } else if let Some(n) = w
                .strip_prefix(&format!("{MARK}SUB"))
                .and_then(|r| r.strip_suffix(MARK))
            {
                Word::Output(subs[n.parse::<usize>().unwrap()].clone())
            } else {
                assert!(!w.contains(MARK), "a `$(…)` or `>` inside a word: {w:?}");
                Word::Text(w)
            }
        })
        .collect();
    (Parsed { words, unquoted }, i)
}

/// `${NAME:?…}` placeholders, as a word holds them before the shell expands them.
pub fn placeholders() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\$\{([A-Z][A-Z0-9_]*):\?([^}]*)\}").unwrap())
}

/// The value the sandbox gives placeholder `name`.
pub fn placeholder_value(name: &str) -> String {
    format!("value-of-{name}")
}

/// What the stub of a command prints (so what `"$(…)"` becomes).
pub const STUB_OUTPUT: &str = "stub-output";

/// The programs a command runs, in the order they run (command substitutions first), each
/// with the argv bash must give it: placeholders set by the sandbox, `"$(…)"` replaced by
/// what the stub prints, redirects left out.
pub fn expected_calls(words: &[Word]) -> Vec<Vec<String>> {
    let mut calls = Vec::new();
    let mut argv = Vec::new();
    let mut words = words.iter();
    while let Some(w) = words.next() {
        match w {
            Word::Text(t) => argv.push(
                placeholders()
                    .replace_all(t, |c: &regex::Captures| placeholder_value(&c[1]))
                    .into_owned(),
            ),
            Word::Output(inner) => {
                calls.extend(expected_calls(inner));
                argv.push(STUB_OUTPUT.to_string());
            }
            Word::Redirect => {
                words.next();
            }
        }
    }
    calls.push(argv);
    calls
}

/// Every string `arg` can carry a value in: itself, the strings of the JSON document it is,
/// the JSON (or jq) string literals in it, and the double-quoted values of AWS CLI shorthand
/// in it, each decoded.
pub fn decoded_strings(arg: &str) -> Vec<String> {
    let mut out = vec![arg.to_string()];
    if let Ok(doc) = serde_json::from_str::<Value>(arg) {
        json_strings(&doc, &mut out);
    }
    static LITERAL: OnceLock<Regex> = OnceLock::new();
    let literal = LITERAL.get_or_init(|| Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap());
    for m in literal.find_iter(arg) {
        if let Ok(Value::String(s)) = serde_json::from_str(m.as_str()) {
            out.push(s);
        }
    }
    for (i, _) in arg.match_indices("=\"") {
        if let Some((value, _)) = shorthand_quoted(&arg[i + 1..]) {
            out.push(value);
        }
    }
    out
}

fn json_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            json_strings(x, out)
        }),
        _ => {}
    }
}

/// A double-quoted AWS CLI shorthand value at the start of `text` as awscli/shorthand.py
/// reads it (`_DOUBLE_QUOTED`, then `\"` and `\\` unescaped): the value and its length there.
pub fn shorthand_quoted(text: &str) -> Option<(String, usize)> {
    static QUOTED: OnceLock<Regex> = OnceLock::new();
    let quoted = QUOTED.get_or_init(|| Regex::new(r#"^"(?:\\\\|\\"|[^"])*""#).unwrap());
    let m = quoted.find(text)?;
    let inner = &m.as_str()[1..m.len() - 1];
    Some((inner.replace("\\\"", "\"").replace("\\\\", "\\"), m.len()))
}

/// A shorthand value as awscli reads the whole of `text`: quoted, or a bare first value
/// (`_FIRST_VALUE`, `\,` unescaped); None when awscli would read something else.
pub fn shorthand_value(text: &str) -> Option<String> {
    if text.starts_with('"') {
        return shorthand_quoted(text)
            .filter(|(_, n)| *n == text.len())
            .map(|(v, _)| v);
    }
    static FIRST: OnceLock<Regex> = OnceLock::new();
    let first = FIRST.get_or_init(|| {
        Regex::new(
            r"^(?:(?:\\,)|[!#-&(-+\--<>-Z\\-z|-\x{ffff}])(?:(?:\\,)|[!#-&(-+\--\\^-|~-\x{ffff}])*",
        )
        .unwrap()
    });
    let m = first.find(text)?;
    (m.len() == text.len()).then(|| text.replace("\\,", ","))
}

/// The programs the sandbox stubs: those the remediation commands run, and `touch`, which an
/// injected command would (it creates its files, so the canary shows either way).
pub const STUBS: [&str; 8] = [
    "aws",
    "kubectl",
    "eksctl",
    "jq",
    "helm",
    "karpenter-doctor",
    "curl",
    "touch",
];

/// A directory with `bin/` (the stubs, the only PATH), `calls/` (one file per stub run: its
/// name and argv, NUL-terminated) and `work/` (the working directory).
pub struct Sandbox {
    pub root: PathBuf,
}

const STUB: &str = r#"#!/bin/bash
n=0
while [ -e "$CALLS/$n" ]; do n=$((n + 1)); done
printf '%s\0' "${0##*/}" "$@" > "$CALLS/$n"
if [ "${0##*/}" = touch ]; then for f in "$@"; do : > "$f"; done; fi
echo stub-output
"#;

impl Sandbox {
    pub fn new(label: &str) -> Sandbox {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "karpenter-doctor-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["bin", "calls", "work"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for name in STUBS {
            let path = root.join("bin").join(name);
            std::fs::write(&path, STUB).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sandbox { root }
    }

    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    /// Empties `calls/` and `work/`.
    pub fn reset(&self) {
        for d in ["calls", "work"] {
            let dir = self.root.join(d);
            std::fs::remove_dir_all(&dir).unwrap();
            std::fs::create_dir(&dir).unwrap();
        }
    }

    /// `bash -c line` (with `-n`: parse only) in `work/`, with the stubs as the only PATH and
    /// `vars` as the only other variables.
    pub fn bash(&self, flags: &[&str], line: &str, vars: &[(String, String)]) -> Output {
        std::process::Command::new("/bin/bash")
            .args(flags)
            .arg("-c")
            .arg(line)
            .env_clear()
            .env("PATH", self.root.join("bin"))
            .env("CALLS", self.root.join("calls"))
            .env("HOME", self.work())
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.work())
            .output()
            .expect("run bash")
    }

    /// The stub runs recorded since the last reset, in order: program name, then argv.
    pub fn calls(&self) -> Vec<Vec<String>> {
        let dir = self.root.join("calls");
        let mut n = 0;
        let mut calls = Vec::new();
        while let Ok(bytes) = std::fs::read(dir.join(n.to_string())) {
            let text = String::from_utf8(bytes).expect("argv is UTF-8");
            let mut argv: Vec<String> = text.split('\0').map(String::from).collect();
            assert_eq!(argv.pop().as_deref(), Some(""), "NUL-terminated");
            calls.push(argv);
            n += 1;
        }
        calls
    }

    /// Whether `work/` holds `name`.
    pub fn has(&self, name: &str) -> bool {
        self.work().join(name).exists()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
