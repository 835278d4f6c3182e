//! Where one log record begins and ends around a line the prefilter picked: the line itself, a
//! JSON record pretty-printed over several lines, a one-line JSON record re-wrapped over several,
//! or a paragraph of wrapped text. Pure.
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
    /// A one-line JSON record re-wrapped over lines: joined as they were cut (`spaced`: at
    /// spaces, which the newlines replaced; else anywhere, at one width).
    WrappedJson { spaced: bool },
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
    if let Some(found) = wrapped_json(region, floor, line_start, line_end) {
        return found;
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
    if !value.starts_with('"') {
        return false;
    }
    let mut nesting = Nesting::default();
    nesting.closes(value.as_bytes());
    nesting.string
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

/// Where a JSON text stands after some of its bytes: in a string (after a backslash), and how
/// deep in objects and arrays.
#[derive(Debug, Default)]
struct Nesting {
    depth: usize,
    string: bool,
    escaped: bool,
}

impl Nesting {
    /// Reads `bytes` on; whether the outermost value closed in them.
    fn closes(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// A JSON record written on one line and re-wrapped over several, the candidate line among
/// them: from the line that opens it (and does not close it) to the line that closes it, where
/// the lines joined (as cut anywhere at one width, else at spaces) are JSON. The reach back
/// goes through lines of one width (a terminal's, `fold`'s), else a paragraph's few lines.
fn wrapped_json(
    region: &[u8],
    floor: usize,
    line_start: usize,
    line_end: usize,
) -> Option<(usize, usize, Shape)> {
    // Columns as the wrap counted them (untrimmed, as `cut_at_one_width` counts them).
    let width = |(s, e): (usize, usize)| columns(std::str::from_utf8(&region[s..e]).unwrap_or(""));
    let mut open = (line_start, line_end);
    let mut reach = 0;
    while !logline::opens_json(text(&region[open.0..open.1])) {
        let before = line_before(region, open.0).filter(|&(s, _)| s >= floor)?;
        reach += 1;
        let same = width(before) >= MIN_HARD_WRAP && (reach == 1 || width(before) == width(open));
        if text(&region[before.0..before.1]).is_empty()
            || (!same && reach > MAX_PARAGRAPH_LINES)
            || line_start - before.0 > MAX_RECORD_BYTES
        {
            return None;
        }
        open = before;
    }
    // A record written on one line opens with members on its first line (`{` alone opens a
    // pretty-printed one) and, re-wrapped, does not close on it.
    let first = text(&region[open.0..open.1]);
    if first.ends_with(['{', '}']) {
        return None;
    }
    let mut nesting = Nesting::default();
    if nesting.closes(&first.as_bytes()[first.find('{')?..]) {
        return None;
    }
    // On to the line that closes it; a blank line, or a record line not of the opener's width
    // (a record cut short, the next one after it), ends the reach.
    let mut end = open.1;
    for lines in 0.. {
        let (s, e) = line_after(region, end)?;
        let t = text(&region[s..e]);
        if lines == MAX_RECORD_LINES
            || e - open.0 > MAX_RECORD_BYTES
            || t.is_empty()
            || (logline::is_record(t) && width((s, e)) != width(open))
        {
            return None;
        }
        end = e;
        if nesting.closes(&region[s..e]) {
            break;
        }
    }
    if end < line_end {
        return None;
    }
    let lines = std::str::from_utf8(&region[open.0..end]).ok()?;
    // Lines of one width were cut anywhere; others at spaces. Either way the text must be JSON.
    // Two lines are of one width whatever cut them: where the spaced join reads more of AWS's
    // sentence (`…is not authorized` / `to perform: …` broken by hand), it was a space.
    let split = split_lines(lines);
    let hard = cut_at_one_width(&split, 2)
        && !(split.len() == 2
            && sentence_phrases(&join_wrapped(lines, true))
                > sentence_phrases(&join_wrapped(lines, false)));
    [!hard, hard].into_iter().find_map(|spaced| {
        let joined = join_wrapped(lines, spaced);
        let json = &joined[joined.find('{')?..];
        serde_json::from_str::<serde::de::IgnoredAny>(json)
            .is_ok()
            .then_some((open.0, end, Shape::WrappedJson { spaced }))
    })
}

/// How many of the phrases of AWS's denial sentence that span a space `text` holds.
fn sentence_phrases(text: &str) -> usize {
    const PHRASES: [&str; 5] = [
        "is not authorized to perform",
        "not authorized to perform this operation",
        "on resource: ",
        "because no ",
        "with an explicit deny",
    ];
    PHRASES.iter().map(|p| text.matches(p).count()).sum()
}

/// `text`'s lines, without their line ends.
fn split_lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// A line's width in characters, its line end left out and nothing trimmed.
fn columns(line: &str) -> usize {
    line.strip_suffix('\r').unwrap_or(line).chars().count()
}

/// Whether a terminal (or `fold`) cut `lines` anywhere at one width: at least `count` lines,
/// every one but the last of one width, long enough.
fn cut_at_one_width(lines: &[&str], count: usize) -> bool {
    let widths: Vec<usize> = lines.iter().map(|l| columns(l)).collect();
    widths.len() >= count
        && widths[0] >= MIN_HARD_WRAP
        && widths[..widths.len() - 1].iter().all(|&w| w == widths[0])
}

/// A re-wrapped one-line record's lines as one: run on (cut anywhere), or `spaced` (each
/// newline stood for a space).
pub(crate) fn join_wrapped(lines: &str, spaced: bool) -> String {
    let lines = split_lines(lines);
    if spaced {
        lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
    } else {
        lines.concat()
    }
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
    let lines = split_lines(paragraph);
    let hard = cut_at_one_width(&lines, 3);
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

    /// Karpenter v1.15's log line for seed 1 (tests/fixtures/karpenter), shortened.
    const RECORD: &str = r#"{"level":"ERROR","time":"2026-12-06T23:37:50.709Z","logger":"controller","message":"Reconciler error","controller":"nodeclaim.lifecycle","NodeClaim":{"name":"default-vjsdn"},"aws-error-code":"UnfulfillableCapacity","error":"launching nodeclaim, creating instance, creating nodeclaim, UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws-cn:sts::123456789012:assumed-role/KarpenterController-prod/1717492800123456789 is not authorized to perform: iam:PassRole on resource: arn:aws-cn:iam::123456789012:role/Karpenter-prod-20240604092512345600000001 because no identity-based policy allows the iam:PassRole action."}"#;

    /// `fold -w width`: cut anywhere.
    fn fold(line: &str, width: usize) -> String {
        let chars: Vec<char> = line.chars().collect();
        let lines: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
        lines.join("\n")
    }

    /// `fmt -w width`: cut at spaces (a word longer than the width keeps its line).
    fn fmt(line: &str, width: usize) -> String {
        let mut lines: Vec<String> = vec![String::new()];
        for word in line.split(' ') {
            let last = lines.last_mut().unwrap();
            if !last.is_empty() && last.len() + 1 + word.len() > width {
                lines.push(word.to_string());
            } else {
                if !last.is_empty() {
                    last.push(' ');
                }
                last.push_str(word);
            }
        }
        lines.join("\n")
    }

    #[test]
    fn a_one_line_record_rewrapped_is_one_record_again() {
        for (wrapped, spaced) in [(fold(RECORD, 80), false), (fmt(RECORD, 72), true)] {
            let text =
                format!("$ kubectl logs deploy/karpenter\n{wrapped}\n{{\"level\":\"INFO\"}}\n");
            // From any of its lines, the whole record.
            let first = text.find('\n').unwrap() + 1;
            let mut line_start = first;
            while line_start < first + wrapped.len() {
                let line_end = line_start + text[line_start..].find('\n').unwrap();
                let (s, e, shape) = span(text.as_bytes(), 0, line_start, line_end);
                let line = &text[line_start..line_end];
                assert_eq!(shape, Shape::WrappedJson { spaced }, "{line}");
                assert_eq!(join_wrapped(&text[s..e], spaced), RECORD, "{line}");
                line_start = line_end + 1;
            }
        }
        // Cut short (it never closes), or whole on its line: no re-wrapped record.
        let cut = fold(&RECORD[..400], 80);
        let (_, shape) = spans(&format!("{cut}\n\nnext\n"), "horized to");
        assert_ne!(shape, Shape::WrappedJson { spaced: false });
        let (got, shape) = spans(&format!("{RECORD}\nUser: x\n"), "horized to");
        assert_eq!((got.as_str(), shape), (RECORD, Shape::Line));
    }

    /// Two lines are of one width whatever cut them. Broken by hand where a space was (inside
    /// AWS's sentence), they join at a space; cut by a terminal mid-word, they run on.
    #[test]
    fn a_record_in_two_lines_joins_as_the_sentence_reads() {
        let at = RECORD.find("authorized to perform").unwrap() + "authorized".len();
        assert_eq!(&RECORD[at..at + 1], " ");
        let by_hand = format!("{}\n{}", &RECORD[..at], &RECORD[at + 1..]);
        let (got, shape) = spans(&format!("{by_hand}\n"), "to perform");
        assert_eq!(shape, Shape::WrappedJson { spaced: true });
        assert_eq!(join_wrapped(&got, true), RECORD);
        let mid_word = at - 4;
        let by_terminal = format!("{}\n{}", &RECORD[..mid_word], &RECORD[mid_word..]);
        let (got, shape) = spans(&format!("{by_terminal}\n"), "to perform");
        assert_eq!(shape, Shape::WrappedJson { spaced: false });
        assert_eq!(join_wrapped(&got, false), RECORD);
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
