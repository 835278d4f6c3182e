//! Text from the input made printable: every control character (C0, DEL, C1: what a terminal
//! obeys rather than shows) written as a visible escape (`\n`, `\r`, `\t`, else `\u{1b}`), so
//! that a crafted log line cannot move the cursor, recolour or rewrite the screen of whoever
//! reads a Diagnosis (the text report, `kubectl describe`). Backslashes are left as they are:
//! escaping twice changes nothing. JSON output is serde's business; this is about what the
//! strings hold.

use super::model::Diagnosis;
use std::borrow::Cow;

/// `text` with each control character escaped; borrowed when it holds none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes `text` where it stands.
pub fn escape_in_place(text: &mut String) {
    if let Cow::Owned(escaped) = escape(text) {
        *text = escaped;
    }
}

/// Escapes the free text of a Diagnosis that can carry the input: the root cause's summary,
/// evidence and statement, the conditions' messages, the remediation's summary and steps, the
/// NodeClaim names and the last message. Not the spec (what the re-check looks up, by name),
/// the policy patch (JSON text, its control characters escaped by serde) nor the commands,
/// whose values must reach the program exactly, each one quoted shell word.
pub fn diagnosis(d: &mut Diagnosis) {
    let status = &mut d.status;
    let root = &mut status.root_cause;
    escape_in_place(&mut root.summary);
    for e in &mut root.evidence {
        escape_in_place(&mut e.source);
        escape_in_place(&mut e.detail);
    }
    if let Some(st) = &mut root.statement {
        escape_in_place(&mut st.policy);
        if let Some(sid) = &mut st.sid {
            escape_in_place(sid);
        }
    }
    for c in &mut status.conditions {
        escape_in_place(&mut c.message);
    }
    escape_in_place(&mut status.remediation.summary);
    status
        .remediation
        .steps
        .iter_mut()
        .for_each(escape_in_place);
    status
        .affected_node_claims
        .iter_mut()
        .chain(&mut status.node_pools)
        .for_each(escape_in_place);
    escape_in_place(&mut status.last_message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes_and_the_rest_stays() {
        assert_eq!(escape("plain ünïcode \\n"), "plain ünïcode \\n");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\nb\rc\td\u{1b}[2Je\u{7f}f\u{9b}g\0"),
            "a\\nb\\rc\\td\\u{1b}[2Je\\u{7f}f\\u{9b}g\\u{0}"
        );
        let once = escape("x\u{1b}]0;title\u{7}").into_owned();
        assert_eq!(escape(&once), once, "escaping twice changes nothing");
    }
}
