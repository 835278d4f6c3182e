//! What STS's `DecodeAuthorizationMessage` says of one refused request: AWS's own record of
//! how it evaluated it (`allowed`, `explicitDeny`, the `matchedStatements`, and the request
//! `context`: principal, action, resource, condition keys). One reader for every way it comes:
//! fetched live (`aws::live`, the decoded string), or pasted into `explain` as the AWS CLI
//! prints it (`{"DecodedMessage": "…"}` JSON or YAML, `--output text`'s one line) or as the
//! document itself (pretty-printed with `jq`, or YAML).
//!
//! A text cut short is read for what it holds: the JSON is closed where it stops, and the value
//! the cut fell inside is a `signal::Partial` prefix, never a value; what the text never
//! reached is unknown. Pure: no I/O.

use crate::signal::Partial;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// How a cut string value is marked inside the closed JSON: a NUL, which AWS never writes.
const CUT: char = '\u{0}';

/// Reading a text longer than this is not attempted (AWS's own are a few KiB).
pub const MAX_DECODED: usize = 1 << 20;

/// One statement AWS says matched the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedStatement {
    pub sid: Option<String>,
    /// `ALLOW` or `DENY`, as AWS spells it.
    pub effect: String,
}

/// AWS's decoded record of one refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decoded {
    pub allowed: Option<bool>,
    pub explicit_deny: Option<bool>,
    /// `context.principal.arn`: the caller (a session ARN, usually).
    pub principal: Option<String>,
    /// `context.action`, as AWS wrote it (EC2 may drop the `ec2:` prefix).
    pub action: Option<String>,
    pub resource: Option<String>,
    /// `context.conditions`: the request's condition keys and their values, in AWS's order.
    pub conditions: Vec<(String, Vec<String>)>,
    pub statements: Vec<MatchedStatement>,
    /// Values the text was cut inside of: prefixes, never values.
    pub partial: Partial,
    /// Whether the record is whole: not cut, nothing elided, every part AWS always writes there.
    pub whole: bool,
    /// Where it comes from (`file F`, `live sts`), for evidence lines.
    pub source: String,
}

impl Decoded {
    /// Whether `value` is the decoded document (its `context` names the action, beside AWS's
    /// verdict) or the AWS CLI's `{"DecodedMessage": "…"}`.
    pub fn is_decoded(value: &Value) -> bool {
        value.get("DecodedMessage").is_some_and(Value::is_string)
            || (value.pointer("/context/action").is_some()
                && (value.get("explicitDeny").is_some() || value.get("allowed").is_some()))
    }

    /// Reads the document, or the CLI's wrapper around it (its string read as a text, cut or
    /// not). `None` when `value` is neither.
    pub fn from_value(value: &Value, source: &str) -> Option<Decoded> {
        if let Some(text) = value.get("DecodedMessage").and_then(Value::as_str) {
            return Decoded::from_text(text, source);
        }
        Decoded::is_decoded(value).then(|| Decoded::read(value, true, source))
    }

    /// Reads a decoded message's text: whole JSON, or JSON cut short (closed where it stops).
    /// `None` when it is not one, or too long to read.
    pub fn from_text(text: &str, source: &str) -> Option<Decoded> {
        if text.len() > MAX_DECODED {
            return None;
        }
        Decoded::read_text(text, source).or_else(|| {
            // A JSON string a user or a page wrapped over lines.
            let joined = rejoined(text);
            (joined != text)
                .then(|| Decoded::read_text(&joined, source))
                .flatten()
        })
    }

    fn read_text(text: &str, source: &str) -> Option<Decoded> {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            return value
                .get("DecodedMessage")
                .and_then(Value::as_str)
                .map_or_else(
                    || Decoded::is_decoded(&value).then(|| Decoded::read(&value, true, source)),
                    |inner| Decoded::from_text(inner, source),
                );
        }
        let closed = close(text.trim())?;
        let value = serde_json::from_str::<Value>(&closed).ok()?;
        if let Some(inner) = value.get("DecodedMessage").and_then(Value::as_str) {
            // The CLI's wrapper cut inside its string: the string is the cut document.
            return Decoded::from_text(inner.trim_end_matches(CUT), source).map(|d| d.cut_short());
        }
        // A record of AWS's verdict: it opens with `allowed` or `explicitDeny`.
        let verdict = value.get("allowed").is_some() || value.get("explicitDeny").is_some();
        (verdict || Decoded::is_decoded(&value)).then(|| Decoded::read(&value, false, source))
    }

    fn cut_short(mut self) -> Decoded {
        self.whole = false;
        self
    }

    /// Marks the record as shown in part (a user's `...` in place of some of it).
    pub fn elided(self) -> Decoded {
        self.cut_short()
    }

    fn read(value: &Value, whole: bool, source: &str) -> Decoded {
        let mut partial = Partial::default();
        // A string the cut fell inside is a prefix: into `partial`, out of the values.
        let mut text = |pointer: &str, slot: fn(&mut Partial) -> &mut Option<String>| {
            let s = value.pointer(pointer).and_then(Value::as_str)?;
            match s.strip_suffix(CUT) {
                Some(prefix) => {
                    *slot(&mut partial) = Some(prefix.to_string()).filter(|p| !p.is_empty());
                    None
                }
                None => Some(s.to_string()),
            }
        };
        let principal = text("/context/principal/arn", |p| &mut p.principal);
        let action = text("/context/action", |p| &mut p.action);
        let resource = text("/context/resource", |p| &mut p.resource);
        let items = |v: Option<&Value>| -> Vec<Value> {
            v.and_then(|v| v.get("items").or(Some(v)))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let whole_text = |v: &Value| v.as_str().filter(|s| !s.ends_with(CUT)).map(str::to_string);
        let mut conditions: Vec<(String, Vec<String>)> = Vec::new();
        let mut cut_inside = false;
        for c in items(value.pointer("/context/conditions")) {
            let (Some(key), values) = (c.get("key").and_then(whole_text), c.get("values")) else {
                cut_inside = true;
                continue;
            };
            let read: Vec<Option<String>> = items(values)
                .iter()
                .map(|v| v.get("value").and_then(whole_text))
                .collect();
            cut_inside |= values.is_none() || read.iter().any(Option::is_none);
            let read = read.into_iter().flatten();
            match conditions.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.extend(read),
                None => conditions.push((key, read.collect())),
            }
        }
        let statements: Vec<MatchedStatement> = items(value.get("matchedStatements"))
            .iter()
            .filter_map(|s| {
                Some(MatchedStatement {
                    sid: s.get("statementId").and_then(whole_text),
                    effect: s.get("effect").and_then(whole_text)?,
                })
            })
            .collect();
        let complete = ["/allowed", "/explicitDeny", "/context/conditions"]
            .iter()
            .all(|p| value.pointer(p).is_some())
            && [&principal, &action, &resource].iter().all(|v| v.is_some());
        Decoded {
            allowed: value.get("allowed").and_then(Value::as_bool),
            explicit_deny: value.get("explicitDeny").and_then(Value::as_bool),
            principal,
            action,
            resource,
            conditions,
            statements,
            whole: whole && complete && !cut_inside && partial.is_empty(),
            partial,
            source: source.to_string(),
        }
    }

    /// The request context AWS recorded: key → values (the engine's `Recorded`).
    pub fn context(&self) -> BTreeMap<String, Vec<String>> {
        self.conditions.iter().cloned().collect()
    }

    /// The Sids of the matched Deny statements (empty when AWS names none).
    pub fn deny_sids(&self) -> Vec<String> {
        self.statements
            .iter()
            .filter(|s| s.effect.eq_ignore_ascii_case("DENY"))
            .filter_map(|s| s.sid.clone())
            .collect()
    }

    /// The action with its service prefix: AWS's own, else the resource ARN's service (EC2
    /// writes `RunInstances` for `ec2:RunInstances`); `None` when neither says.
    pub fn qualified_action(&self) -> Option<String> {
        let action = self.action.as_deref()?;
        if action.contains(':') {
            return Some(action.to_string());
        }
        let service = self
            .resource
            .as_deref()
            .or(self.partial.resource.as_deref())
            .and_then(|r| r.strip_prefix("arn:"))
            .and_then(|r| {
                let mut parts = r.splitn(3, ':');
                let _partition = parts.next()?;
                let service = parts.next()?;
                // The service is read only where the text goes on after it.
                parts.next().map(|_| service)
            })
            .filter(|s| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })?;
        Some(format!("{service}:{action}"))
    }

    /// AWS's verdict in words: `explicit deny`, `implicit deny`, `allowed`, or `unknown`.
    pub fn verdict(&self) -> &'static str {
        match (self.allowed, self.explicit_deny) {
            (Some(true), _) => "allowed",
            (_, Some(true)) => "explicit deny",
            (Some(false), Some(false)) => "implicit deny",
            _ => "unknown (the text does not say)",
        }
    }

    /// The verdict, action, resource, context and matched statements, in one line (evidence).
    pub fn line(&self) -> String {
        let or_cut = |v: &Option<String>, p: &Option<String>| match (v, p) {
            (Some(v), _) => v.clone(),
            (None, Some(p)) => format!("{p}… (cut)"),
            (None, None) => "?".to_string(),
        };
        let mut line = format!(
            "allowed={}, explicitDeny={}, action={}, resource={}",
            self.allowed.map_or("?".into(), |b| b.to_string()),
            self.explicit_deny.map_or("?".into(), |b| b.to_string()),
            or_cut(&self.action, &self.partial.action),
            or_cut(&self.resource, &self.partial.resource),
        );
        if !self.conditions.is_empty() {
            let keys: Vec<String> = self
                .conditions
                .iter()
                .map(|(k, v)| format!("{k}={}", v.join("|")))
                .collect();
            line += &format!("; context: {}", cut(&keys.join(", "), 1024));
        }
        if !self.statements.is_empty() {
            let statements: Vec<String> = self
                .statements
                .iter()
                .map(|s| format!("{} {}", s.effect, s.sid.as_deref().unwrap_or("(no Sid)")))
                .collect();
            line += &format!(
                "; matched statements: {}",
                cut(&statements.join(", "), 1024)
            );
        }
        if !self.whole {
            line += "; the input holds it only in part (cut short or elided)";
        }
        line
    }
}

fn cut(text: &str, max: usize) -> String {
    crate::signal::text::cut(text, max)
}

/// Where a JSON text is, one character after the other: inside a string or not.
#[derive(Default)]
struct Strings {
    inside: bool,
    escaped: bool,
}

/// What a character is to [`Strings`].
enum At {
    /// The quote that opens a string.
    Open,
    /// Inside a string (its escapes included).
    Inside,
    /// The quote that closes a string.
    Close,
    Outside,
}

impl Strings {
    fn step(&mut self, c: char) -> At {
        if !self.inside {
            self.inside = c == '"';
            return if self.inside { At::Open } else { At::Outside };
        }
        if self.escaped {
            self.escaped = false;
        } else if c == '\\' {
            self.escaped = true;
        } else if c == '"' {
            self.inside = false;
            return At::Close;
        }
        At::Inside
    }
}

/// `text` with the line breaks (and the indentation after them) inside JSON strings dropped:
/// a JSON string a user or a page wrapped over lines.
fn rejoined(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut strings = Strings::default();
    let mut skip_indent = false;
    for c in text.chars() {
        if skip_indent && (c == ' ' || c == '\t') {
            continue;
        }
        skip_indent = false;
        if strings.inside && (c == '\n' || c == '\r') {
            skip_indent = c == '\n';
            continue;
        }
        strings.step(c);
        out.push(c);
    }
    out
}

/// Where an object is between its members.
#[derive(Clone, Copy, PartialEq)]
enum Member {
    Key,
    /// A key was read; its colon not yet.
    Colon,
    /// The colon was read; the value not yet.
    Value,
    Done,
}

/// `text` (JSON cut short) closed where it stops: an open string value ends with the `CUT`
/// mark, a value the cut left unread (`"key":`, a literal or number cut short) is `null`, and
/// every open object and array is closed. `None` when it is no JSON object, or not cut.
fn close(text: &str) -> Option<String> {
    if !text.starts_with('{') {
        return None;
    }
    // Per open object its state (`None` for an array).
    let mut frames: Vec<Option<Member>> = Vec::new();
    let mut strings = Strings::default();
    let mut string_is_key = false;
    // Where the scalar (literal or number) being read started.
    let mut scalar_at: Option<usize> = None;
    let done = |frames: &mut Vec<Option<Member>>| {
        if let Some(Some(m)) = frames.last_mut() {
            *m = Member::Done;
        }
    };
    for (i, c) in text.char_indices() {
        match strings.step(c) {
            At::Inside => continue,
            At::Close => {
                if string_is_key {
                    if let Some(Some(m)) = frames.last_mut() {
                        *m = Member::Colon;
                    }
                } else {
                    done(&mut frames);
                }
                continue;
            }
            At::Open | At::Outside => {}
        }
        if scalar_at.is_some() && !c.is_ascii_alphanumeric() && !matches!(c, '-' | '+' | '.') {
            scalar_at = None;
            done(&mut frames);
        }
        match c {
            '"' => string_is_key = frames.last() == Some(&Some(Member::Key)),
            '{' => frames.push(Some(Member::Key)),
            '[' => frames.push(None),
            '}' | ']' => {
                frames.pop()?;
                if frames.is_empty() {
                    return None;
                }
                done(&mut frames);
            }
            ',' => {
                if let Some(Some(m)) = frames.last_mut() {
                    *m = Member::Key;
                }
            }
            ':' => {
                if let Some(Some(m)) = frames.last_mut() {
                    *m = Member::Value;
                }
            }
            c if c.is_whitespace() => {}
            _ => {
                scalar_at.get_or_insert(i);
            }
        }
    }
    let mut out = String::with_capacity(text.len() + frames.len() + 8);
    if strings.inside {
        let mut body = text;
        // A cut escape (`\`, `\u00`) is dropped whole.
        if let Some(at) = body.rfind('\\')
            && (strings.escaped || (body[at..].starts_with("\\u") && body.len() - at < 6))
        {
            body = &body[..at];
        }
        out.push_str(body);
        if string_is_key {
            out.push_str("\":null");
        } else {
            // The mark, as JSON writes a NUL.
            out.push_str("\\u0000\"");
        }
    } else {
        let mut body = text;
        if let Some(at) = scalar_at {
            // Only a literal that cannot go on is whole; a number may have been longer.
            if !matches!(&text[at..], "true" | "false" | "null") {
                body = &text[..at];
                if let Some(Some(m)) = frames.last_mut() {
                    *m = Member::Value;
                }
            }
        }
        let body = body.trim_end();
        out.push_str(body.strip_suffix(',').unwrap_or(body));
        match frames.last() {
            Some(Some(Member::Colon)) => out.push_str(":null"),
            Some(Some(Member::Value)) => out.push_str("null"),
            _ => {}
        }
    }
    for frame in frames.iter().rev() {
        out.push(if frame.is_some() { '}' } else { ']' });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS CLI's documented example (aws-cli `examples/sts/decode-authorization-message`).
    const INNER: &str = include_str!("../../tests/fixtures/pastes/136-8.txt");
    const WRAPPED: &str = include_str!("../../tests/fixtures/pastes/135-8.txt");

    #[test]
    fn reads_the_cli_answer_and_the_document_alike() {
        let a = Decoded::from_text(WRAPPED, "f").unwrap();
        let b = Decoded::from_text(INNER.trim(), "f").unwrap();
        assert_eq!(a, b);
        assert!(a.whole);
        assert_eq!(a.verdict(), "explicit deny");
        assert_eq!(a.qualified_action().as_deref(), Some("ec2:RunInstances"));
        assert_eq!(a.deny_sids(), ["VisualEditor0"]);
        assert_eq!(
            a.principal.as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/Developer/Ana")
        );
        assert_eq!(a.conditions.len(), 18);
        assert_eq!(a.context()["ec2:InstanceType"], ["t2.micro"]);
    }

    #[test]
    fn a_text_cut_at_any_byte_never_yields_a_cut_value() {
        let full = Decoded::from_text(WRAPPED, "f").unwrap();
        for text in [WRAPPED, INNER] {
            let text = text.trim_end();
            for end in (1..text.len()).filter(|&e| text.is_char_boundary(e)) {
                let Some(d) = Decoded::from_text(&text[..end], "f") else {
                    continue;
                };
                assert!(!d.whole, "cut at {end} reads as whole");
                for (got, want) in [
                    (&d.principal, &full.principal),
                    (&d.action, &full.action),
                    (&d.resource, &full.resource),
                ] {
                    assert!(got.is_none() || got == want, "cut at {end}: {got:?}");
                }
                for (key, values) in &d.conditions {
                    let whole = full.context();
                    assert!(
                        whole
                            .get(key)
                            .is_some_and(|w| values.iter().all(|v| w.contains(v))),
                        "cut at {end}: {key}={values:?}"
                    );
                }
                for p in [&d.partial.principal, &d.partial.action, &d.partial.resource]
                    .into_iter()
                    .flatten()
                {
                    assert!(!p.contains(CUT), "cut at {end}: the mark leaked: {p:?}");
                }
                let _ = d.line();
            }
        }
    }

    #[test]
    fn the_value_a_cut_falls_in_is_a_prefix() {
        let at = INNER.find("instance/*").unwrap();
        let d = Decoded::from_text(&INNER[..at], "f").unwrap();
        assert_eq!(d.resource, None);
        assert_eq!(
            d.partial.resource.as_deref(),
            Some("arn:aws:ec2:us-east-1:111122223333:")
        );
        // The service is read from the prefix, where the text goes on after it.
        assert_eq!(d.qualified_action().as_deref(), Some("ec2:RunInstances"));
        assert!(d.line().contains("(cut)"));
    }

    #[test]
    fn bad_input_is_none_or_partial_never_a_panic() {
        for text in [
            "",
            "{",
            "{]",
            "[1, 2",
            "{\"DecodedMessage\": 5}",
            "{\"DecodedMessage\": \"not json\"}",
            "{\"allowed\":",
            "{\"allowed\":fal",
            "{\"explicitDeny\":true,\"context\":{\"action\":\"a\\",
            "{\"explicitDeny\":true,\"context\":{\"action\":\"a\\u00",
            "{\"a\":1}}}",
            "\u{0}{\"allowed\":false",
        ] {
            if let Some(d) = Decoded::from_text(text, "f") {
                assert!(!d.whole, "{text:?}");
                assert_eq!(d.action, None, "{text:?}");
            }
        }
        let huge = format!(
            "{{\"allowed\":false,\"explicitDeny\":false,\"context\":{{\"action\":\"{}",
            "x".repeat(MAX_DECODED)
        );
        assert_eq!(Decoded::from_text(&huge, "f"), None);
        let long = format!(
            "{{\"allowed\":false,\"explicitDeny\":false,\"context\":{{\"action\":\"{}",
            "x".repeat(100_000)
        );
        let d = Decoded::from_text(&long, "f").unwrap();
        assert_eq!(d.partial.action.map(|a| a.len()), Some(100_000));
    }
}
