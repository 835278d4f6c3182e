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
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
