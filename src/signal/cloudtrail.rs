//! CloudTrail records of failed calls (a console event record, a log file's `Records`, or
//! `aws cloudtrail lookup-events` with its `CloudTrailEvent` strings): `errorCode: errorMessage`.

use super::Source;
use super::kube::str_at;
use super::sink::{Context, Sink};
use serde_json::Value;

/// Whether `map` is one CloudTrail record.
pub(crate) fn is_record(map: &serde_json::Map<String, Value>) -> bool {
    map.contains_key("eventSource") && map.contains_key("eventName")
}

/// One record: a failed call is recognised as its error code and message read together, at the
/// event's time; a successful one says nothing.
pub(crate) fn record(value: &Value, line: usize, sink: &mut Sink<'_>) {
    let Some(code) = str_at(value, &["errorCode"]) else {
        return;
    };
    let text = match str_at(value, &["errorMessage"]) {
        Some(message) => format!("{code}: {message}"),
        None => code.to_string(),
    };
    let context = Context {
        time: str_at(value, &["eventTime"]).and_then(super::time::normalize),
        error_code: Some(code.to_string()),
        ..Context::new(Source::Log, line)
    };
    sink.recognise(&context, &text);
}

/// `aws cloudtrail lookup-events`: each event's record is a JSON string; one that does not
/// parse is skipped with a warning.
pub(crate) fn lookup_events(events: &[Value], line: usize, sink: &mut Sink<'_>) {
    for event in events {
        let Some(text) = str_at(event, &["CloudTrailEvent"]) else {
            continue;
        };
        match serde_json::from_str::<Value>(text) {
            Ok(record) => self::record(&record, line, sink),
            Err(e) => sink.warn(line, format!("CloudTrailEvent is not JSON: {e}")),
        }
    }
}
