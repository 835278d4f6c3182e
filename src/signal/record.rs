//! Where one log record begins and ends around a line the prefilter picked: the line itself, a
//! JSON record pretty-printed over several lines, or a paragraph of wrapped text. Pure.
//!
//! Pastes wrap: `jq` and GitHub `<pre>` blocks print a record over many lines, AWS's own
//! documentation and terminals break the denial sentence, and a user may keep only one member
//! (`"error": "…"`). The scanner reads the whole record so that the sentence is whole again.

use super::logline;

/// How far a record may reach from the line the prefilter picked.
const MAX_RECORD_LINES: usize = 400;
const MAX_RECORD_BYTES: usize = 256 << 10;
/// How many lines of wrapped text make one paragraph, at most, on each side.
const MAX_PARAGRAPH_LINES: usize = 8;
/// Lines at least this long, all of one width, were wrapped by a terminal (mid-word).
const MIN_HARD_WRAP: usize = 60;

/// What the span holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One line.
    Line,
    /// A JSON record over several lines, from its `{` line to its `}` line.
    PrettyJson,
    /// Wrapped text: lines to be joined into one.
    Paragraph,
}

/// The line before the one starting at `line_start`, as a `(start, end)` byte range (the end
/// excludes the newline).
fn line_before(region: &[u8], line_start: usize) -> Option<(usize, usize)> {
    if line_start == 0 {
        return None;
    }
    let end = line_start - 1;
    let start = region[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |nl| nl + 1);
    Some((start, end))
}

/// The line after the one ending at `line_end`.
fn line_after(region: &[u8], line_end: usize) -> Option<(usize, usize)> {
    let start = line_end + 1;
    if start >= region.len() {
        return None;
    }
    let end = region[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(region.len(), |nl| start + nl);
    Some((start, end))
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("").trim()
}

/// `"key": …`: one member of a pretty-printed JSON object.
fn is_member(line: &str) -> bool {
    line.strip_prefix('"').is_some_and(|rest| {
        rest.find('"')
            .is_some_and(|q| q > 0 && rest[q + 1..].trim_start().starts_with(':'))
    })
}

/// The byte span of the record around the candidate line `line_start..line_end` of `region`,
/// reaching back no further than `floor` (where the previous record ended).
pub(crate) fn span(
    region: &[u8],
    floor: usize,
    line_start: usize,
    line_end: usize,
) -> (usize, usize, Shape) {
    let line = text(&region[line_start..line_end]);
    if is_member(line) {
        if let Some(found) = pretty_json(region, floor, line_start, line_end) {
            return found;
        }
        return (line_start, line_end, Shape::Line);
    }
    if logline::is_record(line) {
        return (line_start, line_end, Shape::Line);
    }
    // A line of a member's string a user re-wrapped over lines: the record around the member.
    if let Some((s, e)) = open_member_before(region, floor, line_start)
        && let Some(found) = pretty_json(region, floor, s, e)
    {
        return found;
    }
    paragraph(region, floor, line_start, line_end)
}

/// The member line a few lines above `line_start` whose string value is still open at its end
/// (`"error": "launching …, UnauthorizedOperation: You are not` and the rest on the next lines),
/// with no other member, brace or blank line between.
fn open_member_before(region: &[u8], floor: usize, line_start: usize) -> Option<(usize, usize)> {
    let mut start = line_start;
    for _ in 0..MAX_PARAGRAPH_LINES {
        let (s, e) = line_before(region, start).filter(|&(s, _)| s >= floor)?;
        let t = text(&region[s..e]);
        if is_member(t) {
            return string_open(t).then_some((s, e));
        }
        if t.is_empty() || t.starts_with(['{', '}', '"']) || t.ends_with(['{', '}']) {
            return None;
        }
        start = s;
    }
    None
}

/// Whether a member line's string value does not end on it: `"key": "…` with no closing quote.
fn string_open(member: &str) -> bool {
    let Some(rest) = member[1..].find('"').map(|q| &member[q + 2..]) else {
        return false;
    };
    let Some(value) = rest.trim_start().strip_prefix(':').map(str::trim_start) else {
        return false;
    };
    let Some(mut chars) = value.strip_prefix('"').map(str::chars) else {
        return false;
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return false,
            _ => {}
        }
    }
    true
}

/// The `{ … }` record whose member the candidate line is, if its first and last lines are in
/// reach.
fn pretty_json(
    region: &[u8],
    floor: usize,
    line_start: usize,
    line_end: usize,
) -> Option<(usize, usize, Shape)> {
    let mut start = line_start;
    let mut open = None;
    for _ in 0..MAX_RECORD_LINES {
        let (s, e) = line_before(region, start).filter(|&(s, _)| s >= floor)?;
        if line_start - s > MAX_RECORD_BYTES {
            return None;
        }
        let t = text(&region[s..e]);
        if t.is_empty() {
            return None;
        }
        start = s;
        if t.ends_with('{') && !is_member(t) {
            open = Some(indent(&region[s..e]));
            break;
        }
    }
    let open = open?;
    let mut end = line_end;
    for _ in 0..MAX_RECORD_LINES {
        let (s, e) = line_after(region, end)?;
        if e - start > MAX_RECORD_BYTES {
            return None;
        }
        end = e;
        let t = text(&region[s..e]);
        if (t == "}" || t == "},") && indent(&region[s..e]) <= open {
            return Some((start, end, Shape::PrettyJson));
        }
    }
    None
}

/// Leading whitespace, in bytes.
fn indent(line: &[u8]) -> usize {
    line.iter().take_while(|b| b.is_ascii_whitespace()).count()
}

/// Whether `next` continues `prev` (both trimmed): `prev` stops mid-sentence (`…perform:`,
/// `…operation:`, `…,`), `next` opens with a part of AWS's denial sentence, or a terminal cut a
/// long line mid-word.
fn continues(prev: &str, wrapped: bool, next: &str) -> bool {
    const OPENINGS: [&str; 12] = [
        "is not authorized",
        "perform: ",
        "on resource",
        "on this resource",
        "with an explicit deny",
        "because no",
        ", with policy ARN",
        "with policy ARN",
        "Go to https://",
        "or call the GetRequestAuthorizationDetails",
        "caused by:",
        "status code:",
    ];
    if prev.ends_with([':', ','])
        || OPENINGS.iter().any(|o| next.starts_with(o))
        || opens_sentence(next)
    {
        return true;
    }
    // `s3:GetObject because …`: the action on a line of its own.
    let action = next.split_whitespace().next().unwrap_or("");
    if action.split_once(':').is_some_and(|(svc, op)| {
        !svc.is_empty()
            && svc
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && op.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
    }) {
        return true;
    }
    wrapped && prev.ends_with(|c: char| c.is_alphanumeric()) && !next.is_empty()
}

/// Whether `line` opens a part of AWS's denial sentence that can also begin one (`User: …`, an
/// ARN), rather than only go on with it.
fn opens_sentence(line: &str) -> bool {
    ["User: ", "arn:", "\"arn:"]
        .iter()
        .any(|o| line.starts_with(o))
}

/// Two full lines of one terminal width: a wrap, when long enough.
fn same_width(a: usize, b: usize) -> bool {
    a == b && a >= MIN_HARD_WRAP
}

/// Lines that belong to the candidate's paragraph: the lines before and after it that
/// continue it (see `continues`). A record line (a JSON line, a console-format line) may begin
/// the paragraph, as a terminal wraps it; none is taken after the candidate.
fn paragraph(
    region: &[u8],
    floor: usize,
    line_start: usize,
    line_end: usize,
) -> (usize, usize, Shape) {
    let width = |s: usize, e: usize| {
        std::str::from_utf8(&region[s..e]).map_or(0, |t| t.trim_end().chars().count())
    };
    let (mut start, mut end) = (line_start, line_end);
    for _ in 0..MAX_PARAGRAPH_LINES {
        let Some((s, e)) = line_before(region, start).filter(|&(s, _)| s >= floor) else {
            break;
        };
        let t = text(&region[s..e]);
        let first_end = region[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(region.len(), |i| start + i);
        let first = text(&region[start..first_end]);
        let wrapped = same_width(width(s, e), width(start, first_end));
        // A complete record line (not cut by a terminal, not stopping mid-sentence) is not the
        // start of a sentence that opens on the next line (`User: …`); an error chain it
        // carries over real newlines (`caused by:`, `perform: …`) still continues it.
        let record = logline::is_record(t);
        if t.is_empty()
            || is_member(t)
            || t == "{"
            || t == "}"
            || !continues(t, wrapped, first)
            || (record && opens_sentence(first) && !wrapped && !t.ends_with([':', ',']))
        {
            break;
        }
        start = s;
        if record {
            break;
        }
    }
    for _ in 0..MAX_PARAGRAPH_LINES {
        let Some((s, e)) = line_after(region, end) else {
            break;
        };
        let t = text(&region[s..e]);
        let last_start = region[..end]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
            .max(start);
        let last = text(&region[last_start..end]);
        let wrapped = line_before(region, last_start)
            .is_some_and(|(ps, pe)| same_width(width(ps, pe), width(last_start, end)));
        if t.is_empty()
            || is_member(t)
            || t == "{"
            || t == "}"
            || logline::is_record(t)
            || !continues(last, wrapped, t)
        {
            break;
        }
        end = e;
    }
    let shape = if (start, end) == (line_start, line_end) {
        Shape::Line
    } else {
        Shape::Paragraph
    };
    (start, end, shape)
}

/// A paragraph's lines as one: where a terminal wrapped them (at least two full lines of one
/// width before the last) a line that ends mid-word runs on without a separator; elsewhere the
/// lines are joined with a space.
pub(crate) fn join(paragraph: &str) -> String {
    let lines: Vec<&str> = paragraph
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
    let hard = lines.len() > 2
        && widths[0] >= MIN_HARD_WRAP
        && widths[..widths.len() - 1].iter().all(|&w| w == widths[0]);
    let mut out = String::with_capacity(paragraph.len());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            let prev = lines[i - 1];
            if !(hard && prev.ends_with(|c: char| c.is_alphanumeric())) {
                out.truncate(out.trim_end().len());
                out.push(' ');
            }
        }
        out.push_str(if hard { line } else { line.trim() });
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str, candidate: &str) -> (String, Shape) {
        let at = text.find(candidate).unwrap();
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let (s, e, shape) = span(text.as_bytes(), 0, line_start, line_end);
        (text[s..e].to_string(), shape)
    }

    /// The span around `candidate`, which must be its whole pretty-printed record.
    fn whole_record(text: &str, candidate: &str) -> String {
        let (got, shape) = spans(text, candidate);
        assert_eq!(shape, Shape::PrettyJson);
        assert!(got.starts_with('{') && got.ends_with('}'), "{got}");
        got
    }

    #[test]
    fn a_member_line_reaches_out_to_its_record() {
        let text = "before\n<pre>\n{\n  \"level\": \"ERROR\",\n  \"NodeClaim\": {\n    \"name\": \"a\"\n  },\n  \"error\": \"boom\"\n}\nafter\n";
        let got = whole_record(text, "\"error\"");
        assert!(got.contains("\"level\""));
        // No opening line in reach: the member alone.
        let (got, shape) = spans("\"error\": \"boom\"\nnext\n", "\"error\"");
        assert_eq!((got.as_str(), shape), ("\"error\": \"boom\"", Shape::Line));
        // An opening line but no closing one.
        let (got, shape) = spans("{\n  \"error\": \"boom\"\n", "\"error\"");
        assert_eq!(
            (got.as_str(), shape),
            ("  \"error\": \"boom\"", Shape::Line)
        );
    }

    #[test]
    fn a_string_rewrapped_inside_a_pretty_record_reaches_out_to_its_record() {
        let text = "{\n   \"level\": \"ERROR\",\n   \"error\": \"launching nodeclaim, with fleet error(s),\n      UnauthorizedOperation: You are not authorized to perform this\n      operation.\"\n}\nnext\n";
        whole_record(text, "UnauthorizedOperation: You are not");
        assert!(string_open(
            "\"error\": \"launching, with \\\"fleet\\\" error(s),"
        ));
        assert!(!string_open("\"error\": \"launching\","));
        assert!(!string_open("\"level\": 3,"));
    }

    #[test]
    fn wrapped_text_becomes_one_paragraph() {
        let text = "intro\n\nAn error occurred (AccessDenied):\nUser: arn:aws:iam::1:user/a is not authorized to perform:\ns3:GetObject because no VPC endpoint policy allows it\n{\"level\":\"INFO\"}\n";
        let (got, shape) = spans(text, "not authorized");
        assert_eq!(shape, Shape::Paragraph);
        assert_eq!(
            join(&got),
            "An error occurred (AccessDenied): User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject because no VPC endpoint policy allows it"
        );
        // A record line begins a paragraph when a terminal cut it, and never continues one.
        let long = format!(
            "2024-04-18T16:45:11.384Z    ERROR    controller    Reconciler error    {{\"error\": \"laun{}",
            "x".repeat(60)
        );
        let next = format!(
            "ching, not authorized to perform: ec2:A {}",
            "y".repeat(long.len() - 40)
        );
        assert_eq!(long.len(), next.len());
        let text = format!("{long}\n{next}\ndone\n2024-01-01T00:00:00Z ERROR next\n");
        let (got, _) = spans(&text, "ching");
        assert_eq!(got, format!("{long}\n{next}\ndone"));
        // A complete record line before a wrapped sentence is not its first line (found by
        // cargo-fuzz: the sentence was dated and sourced by the record before it).
        let text = "2024-06-01T10:00:00.000Z\tINFO\tcontroller\tstart\nUser: arn:aws:sts::1:assumed-role/n/i-1 is not authorized to\nperform: secretsmanager:GetSecretValue\n";
        let (got, shape) = spans(text, "User: ");
        assert_eq!(shape, Shape::Paragraph);
        assert!(got.starts_with("User: "), "{got}");
        // Complete lines side by side stay lines of their own.
        let text = "one\nAccessDenied: User: a is not authorized to perform: iam:PassRole\nthree\n";
        let (got, shape) = spans(text, "AccessDenied");
        assert_eq!(shape, Shape::Line, "{got}");
        // A JSON line is its own record.
        let (got, shape) = spans("a\n{\"error\":\"not authorized\"}\nb\n", "not authorized");
        assert_eq!(
            (got.as_str(), shape),
            ("{\"error\":\"not authorized\"}", Shape::Line)
        );
    }

    #[test]
    fn terminal_wraps_join_without_a_space() {
        let a = format!("{}laun", "x".repeat(70));
        let b = format!("{}ched", "y".repeat(70));
        assert_eq!(join(&format!("{a}\n{b}\nend   ")), format!("{a}{b}end"));
        // Lines of different widths are words on lines of their own.
        assert_eq!(
            join("is not authorized to perform:\ns3:GetObject"),
            "is not authorized to perform: s3:GetObject"
        );
    }

    #[test]
    fn the_floor_stops_the_reach_back() {
        let text = "{\n  \"level\": \"ERROR\",\n  \"error\": \"boom\"\n}\n";
        let at = text.find("\"error\"").unwrap();
        let line_start = text[..at].rfind('\n').unwrap() + 1;
        let line_end = line_start + text[line_start..].find('\n').unwrap();
        let (s, e, shape) = span(text.as_bytes(), line_start, line_start, line_end);
        assert_eq!((s, e, shape), (line_start, line_end, Shape::Line));
    }
}
