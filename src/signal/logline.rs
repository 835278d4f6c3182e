//! One log line reduced to the error text worth recognising and what surrounds it: Karpenter's
//! JSON lines (zap), its console format (v0.3x), or a bare pasted error.

use super::time;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// What a log line says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LogLine<'a> {
    /// The error text: the `error` field where there is one, else the message, else the line.
    pub text: Cow<'a, str>,
    pub time: Option<String>,
    pub node_claim: Option<String>,
    pub node_pool: Option<String>,
    pub node_class: Option<String>,
    pub error_code: Option<String>,
    /// `aws-operation-name`: the SDK operation that failed.
    pub operation: Option<String>,
    /// Why the record was read only in part (a JSON record cut short or broken), if it was.
    pub salvaged: Option<String>,
    /// The record is EC2NodeClass validation's (`unauthorized to call ec2:…`, Karpenter
    /// v1.6+): its error is a dry run's.
    pub dry_run: bool,
}

/// Reads one record: a line without its newline, or a pretty-printed JSON record. A JSON record
/// cut short or broken is read for what it holds (`salvaged` says so); `Err` explains why a
/// JSON log line yields nothing.
pub(crate) fn parse(line: &str) -> Result<LogLine<'static>, String> {
    let line = undecorate(line);
    let trimmed = line.trim();
    if let Some(json) = json_part(trimmed) {
        return match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(fields)) => Ok(from_fields(&fields, None).into_owned()),
            Ok(_) => Err("a JSON log line must be an object".into()),
            Err(e) => salvaged(json, &format!("malformed JSON log record ({e})")),
        };
    }
    if trimmed.starts_with('"') {
        // One member of a record, pasted alone (`"error": "…"`, a CloudTrail
        // `"errorMessage": "…"`): nothing is broken, so no warning. A quoted sentence that
        // holds no member is plain text.
        match salvaged(trimmed, "a JSON member without its record") {
            Ok(line) => {
                return Ok(LogLine {
                    salvaged: None,
                    ..line
                });
            }
            // A member that carries no error text (`"errorCode": "…"`): nothing to read.
            Err(_) if super::salvage::members(trimmed).len() == 1 => return Ok(LogLine::default()),
            Err(_) => {}
        }
    }
    Ok(console(trimmed)
        .unwrap_or_else(|| bare(trimmed))
        .into_owned())
}

/// What a broken JSON record holds, or `Err` when it holds no text.
fn salvaged(json: &str, why: &str) -> Result<LogLine<'static>, String> {
    let fields = super::salvage::members(json);
    let parsed = from_fields(&fields, None).into_owned();
    if parsed.text.is_empty() {
        return Err(format!("{why}: no error text in it"));
    }
    Ok(LogLine {
        salvaged: Some(format!("{why}: read what it holds")),
        ..parsed
    })
}

/// Whether `line` opens a JSON log record (behind its prefix), whole or not.
pub(crate) fn opens_json(line: &str) -> bool {
    json_part(undecorate(line).trim()).is_some()
}

/// Whether `line` is a log record of its own: a JSON log line (behind its prefix) or a
/// console-format line.
pub(crate) fn is_record(line: &str) -> bool {
    let line = undecorate(line);
    let trimmed = line.trim();
    json_part(trimmed).is_some() || console(trimmed).is_some()
}

/// The line without what a terminal or a paste puts around it: ANSI colours (stern), k9s
/// borders, Markdown quotes and backticks.
fn undecorate(line: &str) -> Cow<'_, str> {
    let line = if line.contains('\u{1b}') {
        Cow::Owned(strip_ansi(line))
    } else {
        Cow::Borrowed(line)
    };
    const BORDER: &[char] = &['│', '┃', '║', '|', '`', ' ', '\t'];
    let trimmed = line.trim_matches(BORDER);
    let trimmed = trimmed
        .strip_prefix("> ")
        .unwrap_or(trimmed)
        .trim_matches(BORDER);
    if trimmed.len() == line.len() {
        line
    } else {
        Cow::Owned(trimmed.to_string())
    }
}

/// `line` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.clone().next() == Some('[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out
}

/// The JSON object of a JSON log line, also behind what tools put before it: `kubectl logs
/// --prefix` (`[pod/karpenter-…/controller] {…}`), stern (`POD CONTAINER {…}`), `--timestamps`.
fn json_part(line: &str) -> Option<&str> {
    if line.starts_with('{') {
        return Some(line);
    }
    let at = line.find("{\"")?;
    let prefix = line[..at].trim_end();
    if at > 512 || prefix.is_empty() || !line[..at].ends_with(char::is_whitespace) {
        return None;
    }
    let tokens: Vec<&str> = prefix.split_whitespace().collect();
    let tool_prefix = tokens.len() <= 3
        && tokens.iter().all(|t| {
            (t.starts_with("[pod/") && t.ends_with(']'))
                || time::normalize(t).is_some()
                || t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        });
    tool_prefix.then_some(&line[at..])
}

impl LogLine<'_> {
    fn into_owned(self) -> LogLine<'static> {
        LogLine {
            text: Cow::Owned(self.text.into_owned()),
            time: self.time,
            node_claim: self.node_claim,
            node_pool: self.node_pool,
            node_class: self.node_class,
            error_code: self.error_code,
            operation: self.operation,
            salvaged: self.salvaged,
            dry_run: self.dry_run,
        }
    }
}

/// Console format: `TIME LEVEL LOGGER MESSAGE {fields}`, tab- or space-separated, possibly
/// behind a pod/container prefix. `None` when the line has no timestamp and level up front.
fn console(line: &str) -> Option<LogLine<'_>> {
    let tokens = tokens(line, 6);
    let (at, stamp) = tokens
        .iter()
        .take(4)
        .enumerate()
        .find_map(|(i, &(_, t))| time::normalize(t).map(|s| (i, s)))?;
    let &(_, level) = tokens.get(at + 1)?;
    if !is_level(level) {
        return None;
    }
    // Message (and fields) start after the logger; a line may lack the logger.
    let rest_at = match tokens.get(at + 2) {
        Some(&(start, token)) if looks_like_logger(token) => match tokens.get(at + 3) {
            Some(&(start, _)) => start,
            None => start + token.len(),
        },
        Some(&(start, _)) => start,
        None => line.len(),
    };
    let rest = &line[rest_at..];
    let (message, fields) = split_fields(rest);
    let mut parsed = match &fields {
        Some(fields) => from_fields(fields, Some(message)),
        None => LogLine {
            text: Cow::Borrowed(message),
            ..LogLine::default()
        },
    };
    if parsed.time.is_none() {
        parsed.time = Some(stamp);
    }
    Some(parsed)
}

/// A pasted error with no log framing: the whole line is the text.
fn bare(line: &str) -> LogLine<'_> {
    LogLine {
        node_claim: bare_node_claim(line),
        text: Cow::Borrowed(line),
        ..LogLine::default()
    }
}

/// `nodeclaim/NAME` (kubectl's object notation) or `NodeClaim NAME event:` (Karpenter's event
/// text) in a pasted line.
fn bare_node_claim(line: &str) -> Option<String> {
    let name_at = |rest: &str| {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
            .collect();
        (!name.is_empty()).then_some(name)
    };
    if let Some(at) = line.find("nodeclaim/") {
        return name_at(&line[at + "nodeclaim/".len()..]);
    }
    let at = line.find("NodeClaim ")?;
    let rest = &line[at + "NodeClaim ".len()..];
    let name = name_at(rest)?;
    rest[name.len()..].starts_with(" event:").then_some(name)
}

/// The first `max` whitespace-separated tokens with their byte offsets.
fn tokens(line: &str, max: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
                if out.len() == max {
                    return out;
                }
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

fn is_level(token: &str) -> bool {
    [
        "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "DPANIC", "PANIC", "FATAL",
    ]
    .iter()
    .any(|l| l.eq_ignore_ascii_case(token))
}

/// zap logger names: `controller`, `controller.machine.lifecycle`, `controller.provisioner`.
fn looks_like_logger(token: &str) -> bool {
    token.starts_with("controller") || token.starts_with("webhook") || token == "karpenter"
}

/// Splits `MESSAGE {fields}` at the trailing JSON object, if the line ends with one.
fn split_fields(rest: &str) -> (&str, Option<Map<String, Value>>) {
    if rest.ends_with('}') {
        let starts = rest
            .match_indices("\t{")
            .chain(rest.match_indices(" {\""))
            .map(|(i, _)| i);
        for at in starts {
            if let Ok(Value::Object(fields)) = serde_json::from_str(rest[at..].trim_start()) {
                return (rest[..at].trim(), Some(fields));
            }
        }
    }
    (rest.trim(), None)
}

/// A field naming an object: `"NodeClaim": {"name": "x"}` or `"machine": "x"`.
fn named(fields: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| match fields.get(*key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => o
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from),
        _ => None,
    })
}

fn string<'f>(fields: &'f Map<String, Value>, key: &str) -> Option<&'f str> {
    fields.get(key).and_then(Value::as_str)
}

/// The context of a JSON log line or console-format field object. `message` is the console
/// line's message column, used when the fields carry no error. CloudTrail's `errorMessage`
/// counts as an error (users paste CloudTrail records too).
fn from_fields<'a>(fields: &Map<String, Value>, message: Option<&'a str>) -> LogLine<'a> {
    let text = ["error", "err", "errorMessage"]
        .iter()
        .find_map(|k| string(fields, k))
        .map(|s| Cow::Owned(s.to_string()))
        .or_else(|| message.map(Cow::Borrowed))
        .or_else(|| {
            ["message", "msg"]
                .iter()
                .find_map(|k| string(fields, k))
                .map(|s| Cow::Owned(s.to_string()))
        })
        .unwrap_or_default();
    let time = ["time", "ts", "timestamp", "@timestamp"]
        .iter()
        .find_map(|k| match fields.get(*k)? {
            Value::String(s) => time::normalize(s),
            Value::Number(n) => time::from_epoch(n.as_f64()?),
            _ => None,
        });
    // controller-runtime's `name` is the reconciled object's; it is a NodeClaim's when the
    // controller reconciles NodeClaims (or v0.3x Machines).
    let kind = string(fields, "controllerKind").unwrap_or("");
    let controller = string(fields, "controller").unwrap_or("");
    let reconciles_claims = matches!(kind, "NodeClaim" | "Machine")
        || controller.starts_with("nodeclaim")
        || controller.starts_with("machine");
    let node_claim = named(
        fields,
        &["NodeClaim", "nodeclaim", "nodeClaim", "Machine", "machine"],
    )
    .or_else(|| {
        reconciles_claims
            .then(|| {
                string(fields, "name")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
            })
            .flatten()
    });
    LogLine {
        text,
        time,
        node_claim,
        node_pool: named(
            fields,
            &[
                "NodePool",
                "nodepool",
                "nodePool",
                "Provisioner",
                "provisioner",
            ],
        ),
        node_class: named(
            fields,
            &[
                "EC2NodeClass",
                "ec2nodeclass",
                "nodeclass",
                "AWSNodeTemplate",
            ],
        ),
        error_code: string(fields, "aws-error-code").map(String::from),
        operation: string(fields, "aws-operation-name").map(String::from),
        salvaged: None,
        dry_run: ["message", "msg"]
            .iter()
            .find_map(|k| string(fields, k))
            .is_some_and(|m| m.starts_with("unauthorized to call ec2:")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_records_are_dry_runs_and_launch_records_are_not() {
        // PR #8432's record (Karpenter v1.6+), as its description shows it.
        let validation = r#"{"level":"ERROR","time":"2025-08-29T17:02:11.482Z","logger":"controller","caller":"nodeclass/validation.go:257","message":"unauthorized to call ec2:CreateFleet","commit":"1ad0d78","controller":"nodeclass","controllerGroup":"karpenter.k8s.aws","controllerKind":"EC2NodeClass","EC2NodeClass":{"name":"default"},"aws-error-code":"UnauthorizedOperation","aws-operation-name":"CreateFleet","aws-status-code":403,"error":"operation error EC2: CreateFleet, https response error StatusCode: 403, api error UnauthorizedOperation: You are not authorized to perform this operation."}"#;
        let parsed = parse(validation).unwrap();
        assert!(parsed.dry_run);
        assert_eq!(parsed.node_class.as_deref(), Some("default"));
        let launch = r#"{"level":"ERROR","message":"failed launching nodeclaim","controller":"nodeclaim.lifecycle","error":"launching nodeclaim, creating instance, x"}"#;
        assert!(!parse(launch).unwrap().dry_run);
    }

    #[test]
    fn reads_a_v1_json_line() {
        let line = r#"{"level":"ERROR","time":"2024-06-01T10:00:00.000Z","logger":"controller","message":"Reconciler error","commit":"f0eb822","controller":"nodeclaim.lifecycle","controllerGroup":"karpenter.sh","controllerKind":"NodeClaim","NodeClaim":{"name":"bottlerocket-wts6g"},"namespace":"","name":"bottlerocket-wts6g","reconcileID":"7b1c","error":"launching nodeclaim, creating instance, boom"}"#;
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.text, "launching nodeclaim, creating instance, boom");
        assert_eq!(parsed.time.as_deref(), Some("2024-06-01T10:00:00.000Z"));
        assert_eq!(parsed.node_claim.as_deref(), Some("bottlerocket-wts6g"));
        assert_eq!(parsed.node_pool, None);
    }

    #[test]
    fn reads_the_reconciled_name_only_for_nodeclaim_controllers() {
        let claim = parse(r#"{"message":"m","controller":"nodeclaim.lifecycle","name":"a-1"}"#);
        assert_eq!(claim.unwrap().node_claim.as_deref(), Some("a-1"));
        let other = parse(r#"{"message":"m","controller":"nodeclass.status","name":"default"}"#);
        assert_eq!(other.unwrap().node_claim, None);
    }

    #[test]
    fn reads_machine_era_json_with_epoch_time() {
        let line = r#"{"level":"error","ts":1696500000.5,"logger":"controller.machine.lifecycle","msg":"launching machine, x","machine":"default-abc","provisioner":"default","aws-error-code":"UnauthorizedOperation"}"#;
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.text, "launching machine, x");
        assert_eq!(parsed.time.as_deref(), Some("2023-10-05T10:00:00.500Z"));
        assert_eq!(parsed.node_claim.as_deref(), Some("default-abc"));
        assert_eq!(parsed.node_pool.as_deref(), Some("default"));
        assert_eq!(parsed.error_code.as_deref(), Some("UnauthorizedOperation"));
    }

    #[test]
    fn reads_console_format_with_tabs_and_fields() {
        let line = "2023-10-05T10:00:00.000Z\tERROR\tcontroller.machine.lifecycle\tlaunching machine, creating instance, x\t{\"commit\": \"5a2fe84\", \"machine\": \"default-abc\", \"provisioner\": \"default\"}";
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.text, "launching machine, creating instance, x");
        assert_eq!(parsed.time.as_deref(), Some("2023-10-05T10:00:00.000Z"));
        assert_eq!(parsed.node_claim.as_deref(), Some("default-abc"));
        assert_eq!(parsed.node_pool.as_deref(), Some("default"));
    }

    #[test]
    fn reads_console_format_with_the_error_in_the_fields_and_a_pod_prefix() {
        let line = "karpenter-5f9869988f-czcvj manager 2021-10-18T20:20:54.437Z\tERROR\tcontroller.controller.Allocation\tReconciler error\t{\"commit\": \"8dd6b65\", \"name\": \"default\", \"error\": \"launching 1 instance(s), boom\"}";
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.text, "launching 1 instance(s), boom");
        assert_eq!(parsed.time.as_deref(), Some("2021-10-18T20:20:54.437Z"));
    }

    #[test]
    fn reads_space_separated_console_lines_without_fields() {
        let line = "2021-12-03T23:45:29.257Z        ERROR   controller.provisioning Provisioning failed, launching capacity, boom";
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.text, "Provisioning failed, launching capacity, boom");
        assert_eq!(parsed.time.as_deref(), Some("2021-12-03T23:45:29.257Z"));
    }

    #[test]
    fn reads_prefixed_json_lines() {
        let line = r#"[pod/karpenter-6b8f/controller] {"level":"ERROR","message":"m","error":"e"}"#;
        assert_eq!(parse(line).unwrap().text, "e");
    }

    #[test]
    fn a_bare_line_is_its_own_text() {
        let line = "  launching nodeclaim, creating instance, boom  ";
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.text, "launching nodeclaim, creating instance, boom");
        assert_eq!(parsed.time, None);
        let event = "3m7s  Warning  FailedLaunch  nodeclaim/spot-p-d8rwv  NodeClaim spot-p-d8rwv event: boom";
        assert_eq!(
            parse(event).unwrap().node_claim.as_deref(),
            Some("spot-p-d8rwv")
        );
        let event = "NodeClaim spot-p-d8rwv event: boom";
        assert_eq!(
            parse(event).unwrap().node_claim.as_deref(),
            Some("spot-p-d8rwv")
        );
        assert_eq!(parse("NodeClaim is odd").unwrap().node_claim, None);
    }

    #[test]
    fn broken_json_records_are_read_for_what_they_hold() {
        let cut = parse(r#"{"level":"ERROR","time":"2025-08-29T20:55:48.007Z","NodeClaim":{"name":"a-1"},"aws-operation-name":"CreateFleet","error":"launching nodeclaim, cre"#).unwrap();
        assert_eq!(cut.text, "launching nodeclaim, cre");
        assert_eq!(cut.time.as_deref(), Some("2025-08-29T20:55:48.007Z"));
        assert_eq!(cut.node_claim.as_deref(), Some("a-1"));
        assert_eq!(cut.operation.as_deref(), Some("CreateFleet"));
        let why = cut.salvaged.unwrap();
        assert!(why.starts_with("malformed JSON log record (EOF"), "{why}");
        // A member pasted alone.
        let member = parse(r#"  "error": "creating instance, boom\n\tstatus code: 403","#).unwrap();
        assert_eq!(member.text, "creating instance, boom\n\tstatus code: 403");
        assert_eq!(member.salvaged, None);
        // A quoted sentence is no member: plain text.
        let quoted = r#""You are not authorized to perform this operation.""#;
        assert_eq!(parse(quoted).unwrap().text, quoted);
        // A member without error text yields no text to recognise, and no warning.
        let code = parse(r#"  "errorCode": "Client.UnauthorizedOperation","#).unwrap();
        assert_eq!((code.text.as_ref(), code.salvaged), ("", None));
        // Nothing to read: an error naming why.
        let e = parse(r#"{"level":"ERROR","ts":1"#).unwrap_err();
        assert!(e.contains("no error text"), "{e}");
    }

    #[test]
    fn prefixes_and_decorations_are_taken_off() {
        let json = r#"{"level":"ERROR","message":"m","error":"e"}"#;
        for line in [
            format!("karpenter-667c975c47-qf427 controller {json}"),
            format!("2024-06-01T10:00:00.123456789Z {json}"),
            format!("[pod/karpenter-6b8f/controller] {json}"),
            format!("\u{1b}[32mkarpenter-6b8f\u{1b}[0m controller {json}"),
            format!("│ {json} │"),
            format!("`{json}`"),
            format!("> `{json}`"),
        ] {
            let parsed = parse(&line).unwrap();
            assert_eq!(parsed.text, "e", "{line}");
            assert!(is_record(&line), "{line}");
        }
        // Words before the JSON that no tool writes: the line is bare text.
        let line = format!("see the error below {json}");
        assert_eq!(parse(&line).unwrap().text, line);
        assert!(!is_record("plain words"));
    }

    #[test]
    fn malformed_json_lines_are_errors() {
        assert!(
            parse("[1, 2]").is_ok(),
            "not a JSON line: read as bare text"
        );
        assert!(parse("{}").is_ok());
        assert!(parse(r#"{"a":1} {"b":2}"#).is_err());
    }
}
