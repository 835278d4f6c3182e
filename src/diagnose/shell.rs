//! Shell commands built from parts, safe to paste into bash: text we wrote (the program, flags,
//! fixed words) goes in as it is; every value from the input becomes exactly one shell word
//! whatever it holds (single-quoted, `'\''` for a quote, when it holds anything outside a plain
//! set); what the doctor cannot know is a placeholder that stops a pasted command with a
//! message while its variable is unset (`"${CLUSTER:?set CLUSTER to the EKS cluster name}"`),
//! never `<…>` (a redirect). A value inside another language (AWS CLI shorthand here; jq
//! programs and JSON documents are built by their callers with JSON-encoded strings) is escaped
//! for that language first, then the whole word for the shell.

use std::borrow::Cow;

/// What the doctor cannot know, named by a shell variable the reader sets before pasting.
/// Rendered as `"${NAME:?set NAME to WHAT}"`: set, its value is one word; unset, the shell
/// refuses the command with the message. `WHAT` is plain words (checked when the constant is
/// built), so the message is no shell syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placeholder {
    pub name: &'static str,
    pub what: &'static str,
}

impl Placeholder {
    /// A placeholder `name` (`[A-Z][A-Z0-9_]*`) standing for `what` (letters, digits, spaces,
    /// `_ . , / -`); anything else fails to compile where the constant is defined.
    pub const fn new(name: &'static str, what: &'static str) -> Self {
        let n = name.as_bytes();
        assert!(
            !n.is_empty() && n[0].is_ascii_uppercase(),
            "placeholder name"
        );
        let mut i = 0;
        while i < n.len() {
            let c = n[i];
            assert!(
                c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_',
                "placeholder name: [A-Z][A-Z0-9_]*"
            );
            i += 1;
        }
        let w = what.as_bytes();
        assert!(!w.is_empty(), "placeholder message");
        let mut i = 0;
        while i < w.len() {
            let c = w[i];
            assert!(
                c.is_ascii_alphanumeric() || matches!(c, b' ' | b'_' | b'.' | b',' | b'/' | b'-'),
                "placeholder message: letters, digits, spaces and _ . , / - only"
            );
            i += 1;
        }
        Placeholder { name, what }
    }

    fn render(self, out: &mut String) {
        let Placeholder { name, what } = self;
        out.push_str(&format!("\"${{{name}:?set {name} to {what}}}\""));
    }
}

/// One piece of a shell word; the pieces of a word are written next to each other.
#[derive(Clone, Copy, Debug)]
pub enum Piece<'a> {
    /// Text we wrote, as it is.
    Lit(&'static str),
    /// A value from the input: exactly itself as (part of) one word.
    Value(&'a str),
    /// A value from the input inside AWS CLI shorthand syntax (`Key=value,Key=value`): quoted
    /// for the shorthand parser when it holds more than plain characters, then for the shell.
    Shorthand(&'a str),
    /// A placeholder.
    Hole(Placeholder),
}

impl<'a> From<&'a str> for Piece<'a> {
    fn from(value: &'a str) -> Self {
        Piece::Value(value)
    }
}

impl From<Placeholder> for Piece<'_> {
    fn from(p: Placeholder) -> Self {
        Piece::Hole(p)
    }
}

/// A command line, built word by word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    text: String,
}

impl Command {
    /// A command running `program`.
    pub fn new(program: &'static str) -> Self {
        Command {
            text: program.to_string(),
        }
    }

    /// Shell text we wrote, as it is: flags, fixed words, a quoted query, a redirect.
    pub fn lit(mut self, text: &'static str) -> Self {
        self.text.push(' ');
        self.text.push_str(text);
        self
    }

    /// One word: a value from the input, or a placeholder.
    pub fn arg<'a>(self, piece: impl Into<Piece<'a>>) -> Self {
        self.word(&[piece.into()])
    }

    /// `flag` then one word.
    pub fn opt<'a>(self, flag: &'static str, piece: impl Into<Piece<'a>>) -> Self {
        self.lit(flag).arg(piece)
    }

    /// `flag` then the value, when there is one.
    pub fn opt_some(self, flag: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.opt(flag, v),
            None => self,
        }
    }

    /// One word made of pieces.
    pub fn word(mut self, pieces: &[Piece<'_>]) -> Self {
        self.text.push(' ');
        for piece in pieces {
            match *piece {
                Piece::Lit(text) => self.text.push_str(text),
                Piece::Value(v) => self.text.push_str(&quote(v)),
                Piece::Shorthand(v) => self.text.push_str(&quote(&shorthand(v))),
                Piece::Hole(p) => p.render(&mut self.text),
            }
        }
        self
    }

    /// One word: what `command` prints (`"$(…)"`).
    pub fn output(mut self, command: &Command) -> Self {
        self.text.push_str(" \"$(");
        self.text.push_str(&command.text);
        self.text.push_str(")\"");
        self
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<Command> for String {
    fn from(c: Command) -> String {
        c.text
    }
}

/// Characters a word may hold unquoted: none is special to the shell anywhere but in a
/// command's first word (where no value goes).
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || ":/._=@,+-".contains(c)
}

/// `value` as one shell word: as it is when it holds only plain characters, else in single
/// quotes with each `'` written `'\''`. Newlines and control characters stay inside the quotes;
/// a NUL, which no program argument can hold, becomes U+FFFD.
pub fn quote(value: &str) -> Cow<'_, str> {
    if !value.is_empty() && value.chars().all(plain) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

/// `value` as one value of AWS CLI shorthand syntax (awscli/shorthand.py): as it is when its
/// characters cannot end or open anything there, else double-quoted with `\` and `"` escaped
/// (the parser's `_DOUBLE_QUOTED` form, which takes every other character as it is).
pub fn shorthand(value: &str) -> Cow<'_, str> {
    let bare = |c: char| c.is_ascii_alphanumeric() || ":/._@+*-".contains(c);
    if !value.is_empty() && value.chars().all(bare) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: Placeholder = Placeholder::new("CLUSTER", "the EKS cluster name");

    #[test]
    fn plain_values_stay_as_they_are_and_others_become_one_quoted_word() {
        let arn = "arn:aws:iam::123456789012:role/Karpenter+x=y,z@w_1.2-3";
        assert_eq!(quote(arn), arn);
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(touch x)"), "'$(touch x)'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote("fleet/*"), "'fleet/*'");
        assert_eq!(quote("~root"), "'~root'");
        assert_eq!(quote("a\0b"), "'a\u{FFFD}b'");
    }

    #[test]
    fn a_command_is_literals_values_and_placeholders() {
        let inner = Command::new("aws")
            .lit("iam get-policy")
            .opt("--policy-arn", "arn:x;y");
        let c = Command::new("aws")
            .lit("eks list-pod-identity-associations")
            .opt("--cluster-name", CLUSTER)
            .opt("--namespace", "kube system")
            .word(&[Piece::Lit("Key=a,Value="), Piece::Shorthand("b,\"c")])
            .lit("--version-id")
            .output(&inner)
            .opt_some("--region", None);
        assert_eq!(
            String::from(c),
            "aws eks list-pod-identity-associations --cluster-name \"${CLUSTER:?set CLUSTER to the EKS cluster name}\" --namespace 'kube system' Key=a,Value='\"b,\\\"c\"' --version-id \"$(aws iam get-policy --policy-arn 'arn:x;y')\""
        );
    }

    #[test]
    fn shorthand_quotes_what_its_parser_would_split_or_unescape() {
        assert_eq!(shorthand("ec2.amazonaws.com.cn"), "ec2.amazonaws.com.cn");
        assert_eq!(shorthand("a,b"), "\"a,b\"");
        assert_eq!(shorthand("a=b"), "\"a=b\"");
        assert_eq!(shorthand(r#"x\"y"#), r#""x\\\"y""#);
        assert_eq!(shorthand(""), "\"\"");
    }
}
