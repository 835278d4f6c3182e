//! Wildcard matching as IAM does it: `*` matches any run of characters, `?` exactly one.
//! Byte-wise, allocation-free; callers lower-case both sides for case-insensitive matching.

/// A wildcard pattern compiled once: most IAM patterns are `*`, literal, or `prefix*`, and
/// those skip the general matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    Literal,
    Prefix,
    General,
}

impl Pattern {
    pub fn new(text: String) -> Pattern {
        let wild = |s: &str| s.contains(['*', '?']);
        let kind = if text == "*" {
            Kind::Any
        } else if !wild(&text) {
            Kind::Literal
        } else if text.ends_with('*') && !wild(&text[..text.len() - 1]) {
            Kind::Prefix
        } else {
            Kind::General
        };
        Pattern { text, kind }
    }

    pub fn matches(&self, text: &str) -> bool {
        match self.kind {
            Kind::Any => true,
            Kind::Literal => self.text == text,
            Kind::Prefix => text.starts_with(&self.text[..self.text.len() - 1]),
            Kind::General => matches(&self.text, text),
        }
    }
}

/// Whether `text` matches `pattern`, where `*` matches any sequence (also empty) and `?` any one
/// character. Linear in practice: the classic greedy algorithm with one backtrack point.
pub fn matches(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    if !pattern.contains(['*', '?']) {
        return p == t;
    }
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            // `?` matches a whole UTF-8 character: skip its continuation bytes.
            if p[pi] == b'?' {
                ti += utf8_len(t[ti]) - 1;
            }
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::{Pattern, matches};

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(matches("ec2:*", "ec2:runinstances"));
        assert!(matches("ec2:*", "ec2:"));
        assert!(matches("*instances", "ec2:runinstances"));
        assert!(matches("ec2:*Instance*", "ec2:RunInstances"));
        assert!(!matches("ec2:*", "ec3:runinstances"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("a**", "a"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(matches("ec2:?unInstances", "ec2:RunInstances"));
        assert!(!matches("ab?", "ab"));
        assert!(matches("ab?", "abé"));
        assert!(!matches("ab?", "abcd"));
    }

    #[test]
    fn literal_patterns_compare_exactly() {
        assert!(matches("iam:passrole", "iam:passrole"));
        assert!(!matches("iam:passrole", "iam:PassRole"));
        assert!(!matches("", "x"));
        assert!(matches("", ""));
    }

    #[test]
    fn compiled_patterns_agree_with_the_general_matcher() {
        let texts = ["", "a", "ab", "abc", "ec2:runinstances", "ec2:", "x*y", "é"];
        for p in [
            "*", "", "a", "ab*", "a*c", "?", "ec2:*", "ec2:run*", "*:*", "x\\*y", "??*", "é",
        ] {
            let compiled = Pattern::new(p.to_string());
            for t in texts {
                assert_eq!(compiled.matches(t), matches(p, t), "{p} vs {t}");
            }
        }
    }

    #[test]
    fn backtracking_finds_the_later_match() {
        assert!(matches("*aab", "aaaab"));
        assert!(matches("*a?b", "xaab"));
        assert!(!matches("*a?b", "xab"));
    }
}
