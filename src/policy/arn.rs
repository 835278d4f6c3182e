//! Amazon Resource Names: parsing into their six parts, principal conversions, and the
//! part-by-part wildcard matching IAM uses for `Resource` and the `Arn*` condition operators.

use super::glob;

/// A parsed ARN, borrowing from its text: `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Parses `text` when it has the `arn:` prefix and all six parts; `None` otherwise.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        Some(Arn {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        })
    }
}

/// A `Resource` pattern compiled once: split into ARN parts when it is an ARN, with a flag for
/// policy variables (which must be substituted per request before matching).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnPattern {
    pub text: String,
    pub has_variables: bool,
    parts: Option<[glob::Pattern; 5]>,
    whole: glob::Pattern,
}

impl ArnPattern {
    pub fn new(text: String) -> ArnPattern {
        let parts = Arn::parse(&text).map(|a| {
            [a.partition, a.service, a.region, a.account, a.resource]
                .map(|p| glob::Pattern::new(p.to_string()))
        });
        ArnPattern {
            has_variables: text.contains("${"),
            parts,
            whole: glob::Pattern::new(text.clone()),
            text,
        }
    }

    /// Matches `value` (already parsed as `arn` where it is one), as [`arn_like`] does.
    pub fn matches(&self, value: &str, arn: Option<&Arn<'_>>) -> bool {
        match (&self.parts, arn) {
            (Some([p, s, r, a, res]), Some(v)) => {
                p.matches(v.partition)
                    && s.matches(v.service)
                    && r.matches(v.region)
                    && a.matches(v.account)
                    && res.matches(v.resource)
            }
            _ => self.whole.matches(value),
        }
    }
}

/// IAM's ARN matching: each of the six colon-separated parts is matched on its own, with `*` and
/// `?` wildcards that cannot cross a part; the resource part keeps any further colons. When either
/// side is not an ARN the two are matched as plain wildcard strings.
pub fn arn_like(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match (Arn::parse(pattern), Arn::parse(value)) {
        (Some(p), Some(v)) => {
            glob::matches(p.partition, v.partition)
                && glob::matches(p.service, v.service)
                && glob::matches(p.region, v.region)
                && glob::matches(p.account, v.account)
                && glob::matches(p.resource, v.resource)
        }
        _ => glob::matches(pattern, value),
    }
}

/// Whether `pattern` matches some resource that `placeholder` (a resource the request does not
/// name, itself written with wildcards: `arn:aws:ec2:*:111122223333:instance/*`, or `*`) may
/// stand for: part by part, either side's wildcards may cover the other's text.
pub fn arn_overlaps(pattern: &str, placeholder: &str) -> bool {
    let overlap = |a: &str, b: &str| glob::matches(a, b) || glob::matches(b, a);
    match (Arn::parse(pattern), Arn::parse(placeholder)) {
        (Some(p), Some(v)) => {
            overlap(p.partition, v.partition)
                && overlap(p.service, v.service)
                && overlap(p.region, v.region)
                && overlap(p.account, v.account)
                && overlap(p.resource, v.resource)
        }
        _ => overlap(pattern, placeholder),
    }
}

/// The IAM role ARN behind a principal: an assumed-role session
/// `arn:P:sts::A:assumed-role/NAME/SESSION` becomes `arn:P:iam::A:role/NAME` (the role's path is
/// not in the session ARN: resolve it from facts where known). Other ARNs are returned unchanged.
pub fn role_arn_of(principal: &str) -> String {
    if let Some(arn) = Arn::parse(principal)
        && arn.service == "sts"
        && let Some(rest) = arn.resource.strip_prefix("assumed-role/")
    {
        let name = rest.split('/').next().unwrap_or(rest);
        return format!("arn:{}:iam::{}:role/{}", arn.partition, arn.account, name);
    }
    principal.to_string()
}

/// The session name of an assumed-role ARN (`…/assumed-role/ROLE/SESSION` → `SESSION`).
pub fn session_name_of(principal: &str) -> Option<&str> {
    let arn = Arn::parse(principal)?;
    let rest = arn.resource.strip_prefix("assumed-role/")?;
    rest.split_once('/').map(|(_, session)| session)
}

/// The bare role name of a role ARN or assumed-role session ARN, ignoring any path.
pub fn role_name_of(principal: &str) -> Option<&str> {
    let arn = Arn::parse(principal)?;
    if let Some(rest) = arn.resource.strip_prefix("assumed-role/") {
        return rest.split('/').next();
    }
    arn.resource.strip_prefix("role/")?.rsplit('/').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placeholder_overlaps_patterns_that_may_match_what_it_stands_for() {
        let placeholder = "arn:aws:ec2:*:111122223333:instance/*";
        assert!(arn_overlaps("arn:aws:ec2:eu-west-1:*:*", placeholder));
        assert!(arn_overlaps("arn:aws:ec2:*:*:instance/i-0abc", placeholder));
        assert!(!arn_overlaps("arn:aws:ec2:eu-west-1::image/*", placeholder));
        assert!(!arn_overlaps("arn:aws:s3:::bucket", placeholder));
        assert!(!arn_overlaps("arn:aws-cn:ec2:*:*:*", placeholder));
        assert!(arn_overlaps("arn:aws:s3:::bucket", "*"));
    }

    #[test]
    fn parses_six_parts_and_keeps_colons_in_the_resource() {
        let arn = Arn::parse("arn:aws-cn:logs:cn-north-1:111122223333:log-group:/a:b").unwrap();
        assert_eq!(arn.partition, "aws-cn");
        assert_eq!(arn.service, "logs");
        assert_eq!(arn.region, "cn-north-1");
        assert_eq!(arn.account, "111122223333");
        assert_eq!(arn.resource, "log-group:/a:b");
        assert_eq!(Arn::parse("arn:aws:s3:::bucket").unwrap().account, "");
        assert!(Arn::parse("arn:aws:s3").is_none());
        assert!(Arn::parse("*").is_none());
        assert!(Arn::parse("urn:aws:s3:::b").is_none());
    }

    #[test]
    fn wildcards_do_not_cross_arn_parts() {
        assert!(arn_like(
            "arn:aws:ec2:*:*:instance/*",
            "arn:aws:ec2:us-east-1:1:instance/i-1"
        ));
        assert!(arn_like(
            "arn:*:iam::*:role/*",
            "arn:aws-cn:iam::1:role/a/b"
        ));
        assert!(!arn_like(
            "arn:aws:iam::*:role/*",
            "arn:aws-cn:iam::1:role/a"
        ));
        assert!(arn_like("*", "anything"));
        assert!(!arn_like("arn:aws:iam::1:role/A", "arn:aws:iam::1:role/a"));
    }

    #[test]
    fn compiled_patterns_agree_with_arn_like() {
        let values = [
            "arn:aws:ec2:us-east-1:1:instance/i-1",
            "arn:aws-cn:iam::1:role/a/b",
            "*",
            "abc",
            "arn:aws:s3:::b/k:x",
        ];
        for p in [
            "*",
            "arn:aws:ec2:*:*:instance/*",
            "arn:*:iam::*:role/*",
            "ab*",
            "arn:aws:s3:::b/*",
            "arn:aws:ec2:*",
        ] {
            let compiled = ArnPattern::new(p.to_string());
            for v in values {
                assert_eq!(
                    compiled.matches(v, Arn::parse(v).as_ref()),
                    arn_like(p, v),
                    "{p} vs {v}"
                );
            }
        }
    }

    #[test]
    fn non_arn_sides_fall_back_to_plain_wildcards() {
        assert!(arn_like("ab*", "abc"));
        assert!(!arn_like("arn:aws:s3:::b", "b"));
    }

    #[test]
    fn assumed_role_sessions_map_to_their_role() {
        let session = "arn:aws-cn:sts::111122223333:assumed-role/demo-karpenter/1700000000";
        assert_eq!(
            role_arn_of(session),
            "arn:aws-cn:iam::111122223333:role/demo-karpenter"
        );
        assert_eq!(session_name_of(session), Some("1700000000"));
        assert_eq!(role_name_of(session), Some("demo-karpenter"));
        assert_eq!(
            role_name_of("arn:aws:iam::1:role/path/x/Name"),
            Some("Name")
        );
        let role = "arn:aws:iam::1:role/x";
        assert_eq!(role_arn_of(role), role);
        assert_eq!(session_name_of(role), None);
    }
}
