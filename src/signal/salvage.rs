//! What a broken JSON log record still holds: a line cut short by a terminal, a record whose
//! strings a user re-wrapped, a member pasted alone. Reads its members leniently. Pure.

use serde_json::{Map, Number, Value};

/// At most this many members are read from one record.
const MAX_MEMBERS: usize = 256;

/// The members of `json` that can be read: strings (up to their end, or up to where the text
/// stops), numbers, and objects' `name` (`"NodeClaim": {"name": "x"}`). The first occurrence
/// of a key wins; nothing is invented for what the text lacks.
pub(crate) fn members(json: &str) -> Map<String, Value> {
    let bytes = json.as_bytes();
    let mut out = Map::new();
    let mut pos = 0;
    while pos < bytes.len() && out.len() < MAX_MEMBERS {
        let Some(quote) = json[pos..].find('"').map(|i| pos + i) else {
            break;
        };
        let Some((key, after_key)) = key_at(json, quote) else {
            pos = quote + 1;
            continue;
        };
        let value_at = skip_space(bytes, after_key);
        match bytes.get(value_at) {
            Some(b'"') => {
                let (value, end) = string_at(json, value_at + 1);
                out.entry(key).or_insert(Value::String(value));
                pos = end;
            }
            Some(b'{') => {
                // Nested objects are read only for their `name` (Karpenter's object refs).
                if let Some(name) = nested_name(json, value_at + 1) {
                    let mut o = Map::new();
                    o.insert("name".into(), Value::String(name));
                    out.entry(key).or_insert(Value::Object(o));
                }
                pos = value_at + 1;
            }
            Some(b) if b.is_ascii_digit() || *b == b'-' => {
                let end = value_at
                    + bytes[value_at..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit() || b"-+.eE".contains(b))
                        .count();
                if let Some(n) = json[value_at..end]
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                {
                    out.entry(key).or_insert(Value::Number(n));
                }
                pos = end;
            }
            _ => pos = value_at,
        }
    }
    out
}

/// A key starting at the quote at `at` and followed by `:`: the key and where its value starts.
fn key_at(json: &str, at: usize) -> Option<(String, usize)> {
    if json.as_bytes().get(at) != Some(&b'"') {
        return None;
    }
    let rest = &json[at + 1..];
    let len = rest
        .bytes()
        .take_while(|&b| b.is_ascii_alphanumeric() || b"_-.@/".contains(&b))
        .count();
    if len == 0 || len > 64 || rest.as_bytes().get(len) != Some(&b'"') {
        return None;
    }
    let after = skip_space(json.as_bytes(), at + 1 + len + 1);
    (json.as_bytes().get(after) == Some(&b':')).then(|| (rest[..len].to_string(), after + 1))
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// A JSON string's value from `start` (after its opening quote) to its closing quote or the
/// end of the text; a raw line break and the indentation after it read as one space.
fn string_at(json: &str, start: usize) -> (String, usize) {
    let mut out = String::new();
    let mut chars = json[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, start + i + 1),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 'b' | 'f')) => {}
                Some((_, 'u')) => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(c) => out.push(c),
                        None => out.push('\u{fffd}'),
                    }
                }
                Some((_, other)) => out.push(other),
                None => break,
            },
            '\n' | '\r' => {
                while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                    chars.next();
                }
                // A word a wrap broke after its hyphen (`…/karpenter-` `controller-role/…`,
                // `us-` `east-2`) runs on; elsewhere the lines are words apart.
                let hyphenated = out.ends_with('-')
                    && out[..out.len() - 1].ends_with(|c: char| c.is_ascii_alphanumeric());
                if !out.ends_with(' ') && !hyphenated {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    (out, json.len())
}

/// `"name": "x"` as the first member of the object starting at `start`.
fn nested_name(json: &str, start: usize) -> Option<String> {
    let at = skip_space(json.as_bytes(), start);
    let (key, value_at) = key_at(json, at)?;
    let value_at = skip_space(json.as_bytes(), value_at);
    (key == "name" && json.as_bytes().get(value_at) == Some(&b'"'))
        .then(|| string_at(json, value_at + 1).0)
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by cargo-fuzz (fuzz/, target `scan`): a nested object cut short right after its
    /// `{`, or followed by a character of more than one byte, made the key reader slice past
    /// the end or inside a character.
    #[test]
    fn an_object_cut_short_after_its_brace_is_no_panic() {
        for text in [
            r#"{"level":"ERROR","NodeClaim":{"#,
            r#"{"level":"ERROR","NodeClaim":{ "#,
            "{\"level\":\"ERROR\",\"NodeClaim\":{\u{e9}\"name\":\"x\"}}",
            "{\"NodeClaim\":{\u{ff}",
        ] {
            let m = members(text);
            assert_eq!(
                m.get("level").map(|v| v == "ERROR"),
                text.contains("level").then_some(true),
                "{text}"
            );
            assert!(m.get("NodeClaim").is_none(), "{text}: {m:?}");
        }
    }

    #[test]
    fn reads_a_line_cut_short() {
        let m = members(
            r#"{"level":"ERROR","time":"2025-08-29T20:55:48.007Z","aws-status-code":403,"EC2NodeClass":{"name":"toucan"},"error":"operation error EC2: CreateFleet, api error UnauthorizedOperation: You are not authorized to perform this op"#,
        );
        assert_eq!(m["level"], "ERROR");
        assert_eq!(m["aws-status-code"], 403.0);
        assert_eq!(m["EC2NodeClass"]["name"], "toucan");
        assert!(m["error"].as_str().unwrap().ends_with("perform this op"));
    }

    #[test]
    fn reads_strings_broken_over_lines_and_escapes() {
        let m = members(
            "{\n  \"error\":\"creating sqs provider,\n            operation error SQS: GetQueueUrl,\n  x \\\"q\\\" \\u00e9 \\ud83d\"\n}",
        );
        assert_eq!(
            m["error"],
            "creating sqs provider, operation error SQS: GetQueueUrl, x \"q\" \u{e9} \u{fffd}"
        );
    }

    #[test]
    fn the_first_key_wins_and_values_are_not_keys() {
        let m = members(r#""error": "a \"b\": c", "error": "second", "b": "d""#);
        assert_eq!(m["error"], "a \"b\": c");
        assert_eq!(m["b"], "d");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn garbage_gives_nothing_and_never_panics() {
        for text in [
            "",
            "\"",
            "{\"",
            "{\"a\"",
            "{\"a\":",
            "\"a\": \"\\",
            "\"a\": {\"name\"",
            "\"é\": 1",
            "{\"a\": -}",
            "\"a\":\"\\u12",
        ] {
            let _ = members(text);
        }
        assert!(members("no json here").is_empty());
    }
}
