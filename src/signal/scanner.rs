//! The entry point: compiles the shipped rules once, then reads each input — detecting its
//! kind from its first bytes — into `Observations`.

use super::detect::{self, Kind};
use super::rules::{RuleError, RuleSet};
use super::sink::Sink;
use super::{Observations, docs, logs};
use std::io::{self, Read};

/// The recognition rules shipped with the binary.
const SHIPPED_RULES: &str = include_str!("../../rules/signals.json");

/// Recognises failures in inputs with compiled rules.
#[derive(Debug)]
pub struct Scanner {
    rules: RuleSet,
}

impl Scanner {
    /// Compiles and validates the shipped rules (rules/signals.json), each against its
    /// examples.
    pub fn new() -> Result<Scanner, RuleError> {
        Scanner::with_rules(SHIPPED_RULES)
    }

    /// Compiles and validates rules given as the text of a rules file.
    pub fn with_rules(json: &str) -> Result<Scanner, RuleError> {
        Ok(Scanner {
            rules: RuleSet::compile(json)?,
        })
    }

    /// Reads one input (a file's bytes, streamed) and adds what it recognises to `out`.
    /// `name` is the file name used in Origins and warnings ("-" for stdin). `progress` is
    /// called now and then with the number of bytes consumed so far. Unreadable parts become
    /// warnings; only an I/O error from `input` ends the scan early with `Err`.
    pub fn scan(
        &self,
        name: &str,
        mut input: impl Read,
        out: &mut Observations,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        let mut sink = Sink::new(name, &self.rules, out);
        let result = self.scan_into(&mut input, &mut sink, progress);
        sink.finish();
        result
    }

    /// Whether `text` holds a literal of some rule: a line without one is never recognised.
    pub fn may_recognise(&self, text: &str) -> bool {
        self.rules.prefilter().is_match(text)
    }

    /// Reads Kubernetes objects (as the controller caches them) into `out`, as `scan` would
    /// read them from `kubectl get -o json`; in Origins, `name` and the object's place (from 1).
    pub fn read_objects(
        &self,
        name: &str,
        objects: impl IntoIterator<Item = serde_json::Value>,
        out: &mut Observations,
    ) {
        let mut sink = Sink::new(name, &self.rules, out);
        for (i, object) in objects.into_iter().enumerate() {
            super::kube::object(&object, i + 1, None, &mut sink);
        }
        sink.finish();
    }

    fn scan_into(
        &self,
        input: &mut dyn Read,
        sink: &mut Sink<'_>,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        let (head, eof) = detect::read_head(input)?;
        let kind = detect::classify(&head, eof);
        let mut rest = io::Cursor::new(head).chain(input);
        match kind {
            Kind::Empty => {
                sink.warn(0, "empty input");
                Ok(())
            }
            Kind::Json => docs::scan(&mut rest, false, sink, progress),
            Kind::Yaml => docs::scan(&mut rest, true, sink, progress),
            // Each log line says what it is ({…} or not), so JSON and console lines (even
            // mixed in one file) share the streaming path.
            Kind::JsonLines | Kind::Lines => {
                if let Some(at) = rest.get_ref().0.get_ref().iter().position(|&b| b == 0) {
                    sink.warn(
                        0,
                        format!(
                            "binary data (a NUL byte at offset {at}): only its text lines are read"
                        ),
                    );
                }
                logs::scan(&mut rest, sink, progress)
            }
        }
    }
}
