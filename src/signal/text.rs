//! Small byte and text helpers for the scanners: counting newlines fast, cutting a message to
//! its size cap on a character boundary.

/// Counts `\n` bytes. Written so the compiler vectorises it: byte-wide counters per lane,
/// folded before they can overflow.
pub(crate) fn count_newlines(bytes: &[u8]) -> usize {
    const LANES: usize = 32;
    // 255 rounds of at most 1 per lane fit in a u8.
    const BLOCK: usize = LANES * 255;
    let mut total = 0;
    for block in bytes.chunks(BLOCK) {
        let mut lanes = [0u8; LANES];
        let mut chunks = block.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (lane, &b) in lanes.iter_mut().zip(chunk) {
                *lane += u8::from(b == b'\n');
            }
        }
        total += lanes.iter().map(|&n| usize::from(n)).sum::<usize>();
        total += chunks.remainder().iter().filter(|&&b| b == b'\n').count();
    }
    total
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> String {
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
    fn counts_newlines_across_blocks_and_remainders() {
        for len in [0, 1, 31, 32, 33, 8159, 8160, 8161, 20_000] {
            let bytes: Vec<u8> = (0..len)
                .map(|i| if i % 7 == 3 { b'\n' } else { b'x' })
                .collect();
            let naive = bytes.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(count_newlines(&bytes), naive, "length {len}");
        }
        // Every byte a newline: the per-lane counters must not overflow.
        assert_eq!(count_newlines(&[b'\n'; 100_000]), 100_000);
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
