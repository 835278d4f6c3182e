//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team}`, `${key, 'default'}` and the
//! escapes `${*}`, `${?}`, `${$}`, substituted from the request context.

use super::request::Context;
use std::borrow::Cow;

/// `text` with every variable replaced from `ctx`, or `None` when a variable has no single value
/// in the request and no default: such a pattern matches nothing. Text without `${` is borrowed.
pub fn substitute<'a>(text: &'a str, ctx: &Context) -> Option<Cow<'a, str>> {
    if !text.contains("${") {
        return Some(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + len];
        out.push_str(&resolve(inner, ctx)?);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

fn resolve<'c>(inner: &str, ctx: &'c Context) -> Option<Cow<'c, str>> {
    let (key, default) = match inner.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let quoted = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))?;
            (key.trim(), Some(quoted.to_string()))
        }
        None => (inner.trim(), None),
    };
    match key {
        "*" | "?" | "$" => return Some(Cow::Owned(key.to_string())),
        _ => {}
    }
    match ctx.get(key) {
        Some([single]) => Some(Cow::Borrowed(single.as_str())),
        _ => default.map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::default();
        c.insert("aws:username", "alice");
        c.insert("aws:PrincipalTag/team", "infra");
        c.insert("aws:TagKeys", "a");
        c.insert("aws:TagKeys", "b");
        c
    }

    #[test]
    fn substitutes_keys_case_insensitively() {
        let c = ctx();
        assert_eq!(
            substitute("home/${aws:username}/*", &c).unwrap(),
            "home/alice/*"
        );
        assert_eq!(
            substitute("${aws:principaltag/team}-${AWS:UserName}", &c).unwrap(),
            "infra-alice"
        );
        assert!(matches!(
            substitute("plain", &c),
            Some(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn missing_or_multi_valued_keys_fail_unless_defaulted() {
        let c = ctx();
        assert_eq!(substitute("${aws:userid}", &c), None);
        assert_eq!(substitute("${aws:TagKeys}", &c), None);
        assert_eq!(substitute("${aws:userid, 'nobody'}", &c).unwrap(), "nobody");
        assert_eq!(substitute("${aws:userid, nobody}", &c), None);
    }

    #[test]
    fn escapes_and_unclosed_variables_stay_literal() {
        let c = ctx();
        assert_eq!(substitute("a${*}b${?}${$}", &c).unwrap(), "a*b?$");
        assert_eq!(substitute("a${unclosed", &c).unwrap(), "a${unclosed");
    }
}
