//! Tells what an input is from its first non-blank line, without being told: JSON log lines,
//! JSON documents, YAML documents, or plain (console-format or pasted) log lines.

use serde_json::{Map, Value};
use std::io::{self, Read};

/// How to read an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing but whitespace.
    Empty,
    /// One JSON object per line, with log keys (`level`, `message`, …).
    JsonLines,
    /// One or more JSON documents (kubectl, aws CLI output).
    Json,
    /// YAML documents, possibly several separated by `---`.
    Yaml,
    /// Anything else: console-format log lines or pasted error text.
    Lines,
}

/// How much of the input detection may look at.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Reads the input's head: at least through its first meaningful line (or `MAX_HEAD` bytes,
/// or everything when shorter). Returns the bytes and whether the input ended.
pub(crate) fn read_head(input: &mut dyn Read) -> io::Result<(Vec<u8>, bool)> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if head.len() >= MAX_HEAD || first_line(&head).is_some_and(|l| l.complete) {
            return Ok((head, false));
        }
        match input.read(&mut chunk) {
            Ok(0) => return Ok((head, true)),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The first line that is neither blank nor a `#` comment.
struct FirstLine<'a> {
    text: &'a [u8],
    /// A newline ends it within the head.
    complete: bool,
}

fn first_line(head: &[u8]) -> Option<FirstLine<'_>> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut rest = head;
    loop {
        let (line, complete, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => (&rest[..nl], true, &rest[nl + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        let text = line.trim_ascii();
        if !text.is_empty() && !text.starts_with(b"#") {
            return Some(FirstLine { text, complete });
        }
        if !complete {
            return None;
        }
        rest = next;
    }
}

/// Decides the kind from the head read by [`read_head`].
pub(crate) fn classify(head: &[u8], eof: bool) -> Kind {
    let Some(first) = first_line(head) else {
        let blank = head
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(head)
            .iter()
            .all(u8::is_ascii_whitespace);
        return if eof && blank {
            Kind::Empty
        } else {
            Kind::Lines
        };
    };
    let text = first.text;
    if text == b"{" && pretty_log_record(head, first.text) {
        // A log record pretty-printed over lines (`jq`, a GitHub <pre>): read as lines, so
        // that a record whose strings a user broke is still read for what it holds.
        return Kind::Lines;
    }
    if text.starts_with(b"{") {
        return if is_log_object(text) {
            Kind::JsonLines
        } else {
            Kind::Json
        };
    }
    if text.starts_with(b"[") {
        // `kubectl logs --prefix` tags lines `[pod/NAME/CONTAINER]`.
        return if text.starts_with(b"[pod/") {
            Kind::Lines
        } else {
            Kind::Json
        };
    }
    const YAML: [&[u8]; 10] = [
        b"---",
        // `aws sts decode-authorization-message --output yaml`, or the document as YAML.
        b"DecodedMessage:",
        b"allowed:",
        b"explicitDeny:",
        b"%YAML",
        b"apiVersion:",
        b"kind:",
        b"items:",
        b"metadata:",
        b"Reservations:",
    ];
    if YAML.iter().any(|m| text.starts_with(m)) {
        return Kind::Yaml;
    }
    Kind::Lines
}

/// Whether the line after `first` (a lone `{`) is a log record's member (`"level": …`).
fn pretty_log_record(head: &[u8], first: &[u8]) -> bool {
    let at = first.as_ptr() as usize - head.as_ptr() as usize + first.len();
    let Some(next) = first_line(&head[at..]) else {
        return false;
    };
    let Some(rest) = next.text.strip_prefix(b"\"") else {
        return false;
    };
    let key_end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
    LOG_KEYS.iter().any(|k| k.as_bytes() == &rest[..key_end])
}

/// Keys a log line starts with or carries; kubectl objects and AWS output have none of them at
/// the top level, and a line with `apiVersion`, `kind`, `items` or `Reservations` is a document.
const LOG_KEYS: [&str; 9] = [
    "level",
    "severity",
    "time",
    "ts",
    "timestamp",
    "logger",
    "msg",
    "message",
    "caller",
];
const DOCUMENT_KEYS: [&str; 4] = ["apiVersion", "kind", "items", "Reservations"];

fn is_log_object(line: &[u8]) -> bool {
    match serde_json::from_slice::<Map<String, Value>>(line) {
        Ok(fields) => {
            !DOCUMENT_KEYS.iter().any(|k| fields.contains_key(*k))
                && ["level", "severity", "msg", "message"]
                    .iter()
                    .any(|k| fields.contains_key(*k))
        }
        // Truncated or over-long: judge by the first key.
        Err(_) => {
            let Some(rest) = line.strip_prefix(b"{\"") else {
                return false;
            };
            let key_end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
            LOG_KEYS.iter().any(|k| k.as_bytes() == &rest[..key_end])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Kind {
        classify(text.as_bytes(), true)
    }

    #[test]
    fn tells_json_log_lines_from_json_documents() {
        assert_eq!(
            kind("{\"level\":\"INFO\",\"time\":\"t\",\"message\":\"m\"}\n{\"level\":"),
            Kind::JsonLines
        );
        // A truncated first line still reads as a log line by its first key.
        assert_eq!(
            kind("{\"level\":\"ERROR\",\"error\":\"launch"),
            Kind::JsonLines
        );
        assert_eq!(kind("{\n  \"apiVersion\": \"v1\",\n"), Kind::Json);
        assert_eq!(
            kind("{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"message\":\"m\"}"),
            Kind::Json
        );
        assert_eq!(kind("{\"Reservations\": []}"), Kind::Json);
        // A log record pretty-printed over lines is read as lines; a document is not.
        assert_eq!(kind("{\n   \"level\":\"ERROR\",\n"), Kind::Lines);
        assert_eq!(kind("{\n  \"Reservations\": []\n}"), Kind::Json);
        assert_eq!(kind("{\n"), Kind::Json);
        assert_eq!(kind("\u{feff}  \n[\n {}\n]"), Kind::Json);
    }

    #[test]
    fn tells_yaml_and_lines() {
        assert_eq!(kind("apiVersion: v1\nkind: List\n"), Kind::Yaml);
        assert_eq!(kind("# comment\n---\nkind: Event\n"), Kind::Yaml);
        assert_eq!(kind("Reservations:\n- Instances: []\n"), Kind::Yaml);
        assert_eq!(
            kind("2023-10-05T10:00:00.000Z\tERROR\tcontroller\tboom\n"),
            Kind::Lines
        );
        assert_eq!(
            kind("launching nodeclaim, creating instance, boom"),
            Kind::Lines
        );
        assert_eq!(
            kind("[pod/karpenter-x/controller] {\"level\":\"INFO\"}"),
            Kind::Lines
        );
    }

    #[test]
    fn empty_means_only_whitespace_to_the_end() {
        assert_eq!(kind(""), Kind::Empty);
        assert_eq!(kind(" \n\t\r\n"), Kind::Empty);
        assert_eq!(classify(b"   ", false), Kind::Lines);
        // Only comments is not empty: there is text, none of it recognisable.
        assert_eq!(kind("# just a comment\n"), Kind::Lines);
    }

    #[test]
    fn reads_the_head_through_the_first_meaningful_line() {
        /// Hands out one line per read, like a slow pipe.
        struct Lines<'a>(&'a [u8]);
        impl Read for Lines<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let line = self
                    .0
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.0.len(), |i| i + 1);
                let n = line.min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let text = b"\n\n# c\nfirst line\nsecond line\n";
        let (head, eof) = read_head(&mut Lines(text)).unwrap();
        assert_eq!(head, b"\n\n# c\nfirst line\n");
        assert!(!eof);
        let (head, eof) = read_head(&mut Lines(b"\n\nonly, no newline")).unwrap();
        assert_eq!(head, b"\n\nonly, no newline");
        assert!(eof);
        // A first line longer than the head limit stops the reading at the limit.
        let big = vec![b'x'; MAX_HEAD * 3];
        let (head, eof) = read_head(&mut &big[..]).unwrap();
        assert!(!eof);
        assert!(head.len() >= MAX_HEAD && head.len() < MAX_HEAD + 8192);
    }
}
