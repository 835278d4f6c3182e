//! Small byte and text helpers for the scanners: counting newlines fast, cutting a message to
//! its size cap on a character boundary.

/// Counts `\n` bytes, eight at a time (SWAR): XOR turns newlines into zero bytes, and an
/// exact zero-byte test sets one high bit per zero byte, which `count_ones` adds up.
pub(crate) fn count_newlines(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut words = bytes.chunks_exact(8);
    let mut total = 0;
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        let x = u64::from_le_bytes(le) ^ NEWLINES;
        // High bit of each byte set iff the byte is non-zero; no carry crosses bytes.
        let nonzero = ((x & !HIGH) + !HIGH) | x;
        total += (!nonzero & HIGH).count_ones() as usize;
    }
    total + words.remainder().iter().filter(|&&b| b == b'\n').count()
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    text[..floor(text, max)].to_string()
}

/// The largest character boundary of `text` at or below `max` (its length when shorter).
pub fn floor(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `text` with the escapes a paste leaves in plain text (`\\n`, `\\t`, `\\r` as two
/// characters, `\\"` from doubly encoded JSON) turned back into what they stand for, so that
/// they never run into an ARN (`…role/x\\n\\tstatus code`). Borrowed when there is none.
pub(crate) fn unescape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\\') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            // An escaped backslash stays as it is, and does not escape what follows.
            Some('\\') => out.push_str("\\\\"),
            _ => {
                out.push(c);
                continue;
            }
        }
        chars.next();
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_what_pastes_leave_in_text() {
        assert_eq!(
            unescape_controls(r#"role/x\n\tstatus code: 403, \"q\" a\\b \u00e9 c:\\new"#),
            "role/x\n\tstatus code: 403, \"q\" a\\\\b \\u00e9 c:\\\\new"
        );
        assert!(matches!(
            unescape_controls("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(unescape_controls("ends with \\"), "ends with \\");
    }

    #[test]
    fn counts_newlines_like_the_naive_count() {
        // Every byte value next to newlines, at every alignment and remainder length.
        let mut bytes: Vec<u8> = Vec::new();
        for b in 0..=255u8 {
            bytes.extend_from_slice(&[b, b'\n', b, b, b'\n' ^ 0x80, b'\n' ^ 1, b'\n']);
        }
        for start in 0..9 {
            for end in (bytes.len() - 9)..bytes.len() {
                let slice = &bytes[start..end];
                let naive = slice.iter().filter(|&&b| b == b'\n').count();
                assert_eq!(count_newlines(slice), naive, "{start}..{end}");
            }
        }
        assert_eq!(count_newlines(&[b'\n'; 100_003]), 100_003);
        assert_eq!(count_newlines(&[]), 0);
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("abcdef", 3), "abc");
        // "é" is two bytes: cutting inside it backs off to before it.
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("€€", 4), "€");
        assert_eq!(cut("", 0), "");
    }
}
