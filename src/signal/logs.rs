//! Streams log lines in large chunks: a literal prefilter finds candidate lines over the whole
//! buffer, and only those are validated and parsed. Memory stays bounded whatever the size.

use super::Source;
use super::logline;
use super::record::{self, Shape};
use super::rules::RuleSet;
use super::sink::{Context, Sink};
use super::text::count_newlines;
use aho_corasick::AhoCorasick;
use std::io::{self, Read};

/// Lines longer than this are skipped (with a warning when they hold a candidate).
pub(crate) const MAX_LINE: usize = 1 << 20;
/// Target size of one read.
const CHUNK: usize = 1 << 20;

/// An over-long line being skipped.
struct Skipping {
    line: usize,
    candidate: bool,
}

/// Scans `input` as log lines.
pub(crate) fn scan(
    input: &mut dyn Read,
    sink: &mut Sink<'_>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let prefilter = sink.rules().prefilter();
    // Longest literal, less one: how much of a skipped line to keep so that a literal split
    // across two reads is still seen.
    let overlap = prefilter.max_pattern_len().saturating_sub(1);
    let mut buf = vec![0u8; MAX_LINE + CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    let mut line = 1usize;
    let mut consumed = 0u64;
    let mut eof = false;
    let mut skipping: Option<Skipping> = None;
    loop {
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        while end < buf.len() && !eof {
            match input.read(&mut buf[end..]) {
                Ok(0) => eof = true,
                Ok(n) => {
                    end += n;
                    consumed += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        progress(consumed);
        if let Some(skip) = &mut skipping {
            let data = &buf[start..end];
            match data.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    skip.candidate |= prefilter.is_match(&data[..nl]);
                    warn_long(sink, skip);
                    skipping = None;
                    line += 1;
                    start += nl + 1;
                }
                None => {
                    skip.candidate |= prefilter.is_match(data);
                    if eof {
                        warn_long(sink, skip);
                        return Ok(());
                    }
                    start = end - data.len().min(overlap);
                    continue;
                }
            }
        }
        let data = &buf[start..end];
        let complete = if eof {
            data.len()
        } else {
            data.iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |nl| nl + 1)
        };
        line = scan_region(&data[..complete], line, prefilter, sink);
        start += complete;
        if eof {
            return Ok(());
        }
        if end - start > MAX_LINE {
            // The unfinished line is already too long: drop it up to its newline.
            skipping = Some(Skipping {
                line,
                candidate: prefilter.is_match(&buf[start..end]),
            });
            start = end - (end - start).min(overlap);
        }
    }
}

fn warn_long(sink: &mut Sink<'_>, skip: &Skipping) {
    if skip.candidate {
        sink.warn(
            skip.line,
            format!("line longer than {} MiB, skipped", MAX_LINE >> 20),
        );
    }
}

/// Handles the candidate lines among the complete lines of `region` (whose first line is
/// `line`); returns the number of the line after the region.
fn scan_region(
    region: &[u8],
    mut line: usize,
    prefilter: &AhoCorasick,
    sink: &mut Sink<'_>,
) -> usize {
    let mut pos = 0;
    let mut counted = 0;
    while pos < region.len() {
        let Some(hit) = prefilter.find(&region[pos..]) else {
            break;
        };
        let hit = pos + hit.start();
        let line_start = region[pos..hit]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(pos, |nl| pos + nl + 1);
        let line_end = region[hit..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(region.len(), |nl| hit + nl);
        // The whole record around the line: a pretty-printed JSON record, wrapped text.
        let (start, end, shape) = record::span(region, pos, line_start, line_end);
        line += count_newlines(&region[counted..start]);
        counted = start;
        candidate(&region[start..end], shape, line, sink);
        pos = end + 1;
    }
    line + count_newlines(&region[counted..])
}

/// One record holding a prefilter literal; `line` is its first line.
fn candidate(bytes: &[u8], shape: Shape, line: usize, sink: &mut Sink<'_>) {
    if bytes.len() > MAX_LINE {
        sink.warn(
            line,
            format!("line longer than {} MiB, skipped", MAX_LINE >> 20),
        );
        return;
    }
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            sink.warn(
                line,
                format!(
                    "not valid UTF-8 (at byte {} of the line), skipped",
                    e.valid_up_to()
                ),
            );
            return;
        }
    };
    let joined;
    let text = match shape {
        Shape::Paragraph => {
            joined = record::join(text);
            joined.as_str()
        }
        Shape::WrappedJson { spaced } => {
            joined = record::join_wrapped(text, spaced);
            joined.as_str()
        }
        Shape::Line | Shape::PrettyJson => text,
    };
    if super::rules::DECODED_LITERALS
        .iter()
        .any(|k| text.contains(k))
        && let Some(decoded) = decoded(text, sink)
    {
        sink.decoded(line, decoded);
        return;
    }
    match logline::parse(text) {
        Ok(parsed) => {
            let context = Context {
                time: parsed.time,
                node_claim: parsed.node_claim,
                node_pool: parsed.node_pool,
                node_class: parsed.node_class,
                error_code: parsed.error_code,
                operation: parsed.operation,
                dry_run: parsed.dry_run,
                cut: parsed.salvaged.is_some(),
                ..Context::new(Source::Log, line)
            };
            // A record that fails as JSON is still text (a user re-wrapped it, broke a
            // member): where its members tell less than the record as written (no failure,
            // or only what a fallback rule reads), it is read as written (issue 26 §1).
            match parsed.salvaged {
                Some(why) if tells_more(sink.rules(), text, &parsed.text) => {
                    sink.recognise(
                        &Context {
                            cut: false,
                            ..context
                        },
                        text,
                    );
                    sink.warn(line, format!("{why}; read as text"));
                }
                Some(why) => {
                    sink.recognise(&context, &parsed.text);
                    sink.warn(line, why);
                }
                None => {
                    sink.recognise(&context, &parsed.text);
                }
            }
        }
        Err(message) => {
            if sink.recognise(&Context::new(Source::Log, line), text) > 0 {
                sink.warn(line, format!("{message}; read as text"));
            } else {
                sink.warn(line, message);
            }
        }
    }
}

/// AWS's decoded authorization message among log lines: its record pretty-printed (the CLI's
/// `{ "DecodedMessage": "…" }`), its member alone on a line, or the document on one line.
fn decoded(text: &str, sink: &Sink<'_>) -> Option<crate::facts::decoded::Decoded> {
    let source = format!("file {}", sink.file());
    let trimmed = text.trim();
    let record = if trimmed.starts_with('{') {
        trimmed.to_string()
    } else {
        format!("{{{}}}", trimmed.trim_end_matches(','))
    };
    crate::facts::decoded::Decoded::from_text(&record, &source)
        .filter(|d| d.allowed.is_some() || d.explicit_deny.is_some())
}

/// Whether `raw`, a broken record read as written, tells more than `salvaged`, what its members
/// held: more failures a rule of its own reads (not a fallback), else more failures.
fn tells_more(rules: &RuleSet, raw: &str, salvaged: &str) -> bool {
    let told = |text: &str, cut: bool| {
        let found = rules.recognise(Source::Log, &super::text::unescape_controls(text), cut);
        let own = found.iter().filter(|f| !rules.is_fallback(f.rule)).count();
        (own, found.len())
    };
    told(raw, false) > told(salvaged, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Observations;
    use crate::signal::rules::RuleSet;

    const DENIAL: &str = "AccessDenied: User: arn:aws:sts::1:assumed-role/K/s is not authorized to perform: iam:PassRole on resource: arn:aws:iam::1:role/N because no identity-based policy allows the iam:PassRole action";

    fn run(input: &[u8]) -> Observations {
        let rules = RuleSet::compile(include_str!("../../rules/signals.json")).unwrap();
        let mut out = Observations::default();
        let mut sink = Sink::new("t.log", &rules, &mut out);
        scan(&mut &input[..], &mut sink, &mut |_| {}).unwrap();
        sink.finish();
        out
    }

    fn lines(out: &Observations) -> Vec<usize> {
        out.signals.iter().map(|s| s.origin.line).collect()
    }

    #[test]
    fn finds_candidates_with_their_line_numbers() {
        let input = format!("a\nb\n{DENIAL}\nc\r\n{DENIAL}\r\n\n{DENIAL}");
        let out = run(input.as_bytes());
        assert_eq!(lines(&out), vec![3, 5, 7]);
        assert!(out.warnings.is_empty());
        assert!(!out.signals[1].message.ends_with('\r'));
    }

    #[test]
    fn line_numbers_survive_chunk_boundaries() {
        // Enough filler lines to cross several reads.
        let filler = "x".repeat(99);
        let mut input = String::new();
        let mut expected = Vec::new();
        for i in 1..=60_000 {
            if i % 7_001 == 0 {
                input.push_str(DENIAL);
                expected.push(i);
            } else {
                input.push_str(&filler);
            }
            input.push('\n');
        }
        assert_eq!(lines(&run(input.as_bytes())), expected);
    }

    #[test]
    fn reads_from_a_reader_that_returns_little_at_a_time() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(out.len()).min(3);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let input = format!("one\n{DENIAL}\nthree\n");
        let rules = RuleSet::compile(include_str!("../../rules/signals.json")).unwrap();
        let mut out = Observations::default();
        let mut sink = Sink::new("t", &rules, &mut out);
        let mut seen = 0;
        scan(&mut Trickle(input.as_bytes()), &mut sink, &mut |n| seen = n).unwrap();
        assert_eq!(lines(&out), vec![2]);
        assert_eq!(seen, input.len() as u64);
    }

    #[test]
    fn overlong_lines_are_skipped_with_a_warning_only_when_they_hold_a_candidate() {
        let long_plain = "y".repeat(3 * MAX_LINE);
        let long_candidate = format!("{}{DENIAL}{}", "z".repeat(MAX_LINE), "z".repeat(MAX_LINE));
        // Just over the cap and short enough to be a complete line in one buffer.
        let just_over = format!("{DENIAL}{}", "w".repeat(MAX_LINE));
        let input = format!(
            "{long_plain}\n{DENIAL}\n{long_candidate}\n{just_over}\n{DENIAL}\n{long_candidate}"
        );
        let out = run(input.as_bytes());
        assert_eq!(lines(&out), vec![2, 5]);
        let warned: Vec<usize> = out.warnings.iter().map(|w| w.origin.line).collect();
        assert_eq!(warned, vec![3, 4, 6], "{:?}", out.warnings);
        assert!(out.warnings[0].message.contains("longer than 1 MiB"));
    }

    #[test]
    fn invalid_utf8_is_a_warning_and_a_cut_json_line_is_read_with_one() {
        let mut input = Vec::new();
        input.extend_from_slice(b"\xff\xfe ");
        input.extend_from_slice(DENIAL.as_bytes());
        input.extend_from_slice(b"\n{\"level\":\"ERROR\",\"error\":\"");
        input.extend_from_slice(DENIAL.as_bytes());
        input.extend_from_slice(b"\n");
        input.extend_from_slice(DENIAL.as_bytes());
        let out = run(&input);
        // The cut JSON line still holds the whole denial: its signal is kept.
        assert_eq!(lines(&out), vec![2, 3]);
        assert_eq!(out.signals[0].action.as_deref(), Some("iam:PassRole"));
        assert_eq!(out.warnings.len(), 2);
        assert!(out.warnings[0].message.contains("UTF-8"));
        assert_eq!(out.warnings[1].origin.line, 2);
        assert!(out.warnings[1].message.contains("malformed JSON"));
        assert!(out.warnings[1].message.contains("read what it holds"));
    }

    #[test]
    fn a_pretty_printed_record_is_one_signal_with_its_context() {
        let input = format!(
            "<pre>\n{{\n  \"level\": \"ERROR\",\n  \"time\": \"2024-05-30T14:40:34.966Z\",\n  \"NodeClaim\": {{\n    \"name\": \"bottlerocket-wts6g\"\n  }},\n  \"error\": \"launching nodeclaim, {DENIAL}\"\n}}\n</pre>\n"
        );
        let out = run(input.as_bytes());
        assert_eq!(lines(&out), vec![2]);
        let s = &out.signals[0];
        assert_eq!(s.node_claim.as_deref(), Some("bottlerocket-wts6g"));
        assert_eq!(s.time.as_deref(), Some("2024-05-30T14:40:34.966Z"));
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn the_operation_field_names_the_action_when_nothing_else_does() {
        let line = br#"{"level":"ERROR","aws-operation-name":"DescribeImages","aws-error-code":"UnauthorizedOperation","error":"UnauthorizedOperation: You are not authorized to perform this operation."}"#;
        let out = run(line);
        let s = &out.signals[0];
        assert_eq!(s.action.as_deref(), Some("ec2:DescribeImages"));
        assert!(
            s.action_from
                .as_deref()
                .unwrap()
                .contains("aws-operation-name"),
            "{s:?}"
        );
        // The text's own SDK operation wins over the field.
        let line = br#"{"level":"ERROR","aws-operation-name":"DescribeImages","error":"operation error EC2: CreateFleet, api error UnauthorizedOperation: You are not authorized to perform this operation."}"#;
        assert_eq!(
            run(line).signals[0].action.as_deref(),
            Some("ec2:CreateFleet")
        );
    }

    #[test]
    fn a_sentence_wrapped_over_lines_is_read_whole() {
        let input = "intro\n\nUser: arn:aws:iam::123456789012:user/John is not authorized to perform:\ncodecommit:ListRepositories because no VPC endpoint policy allows the codecommit:ListRepositories action\n";
        let out = run(input.as_bytes());
        assert_eq!(lines(&out), vec![3]);
        assert_eq!(
            out.signals[0].action.as_deref(),
            Some("codecommit:ListRepositories")
        );
        assert_eq!(
            out.signals[0].layer,
            Some(crate::signal::PolicyLayer::NoVpcEndpointPolicy)
        );
    }

    #[test]
    fn irrelevant_lines_produce_nothing() {
        let out = run(b"\xff\xff garbage\n{not json\nplain\n");
        assert_eq!(out, Observations::default());
    }
}
