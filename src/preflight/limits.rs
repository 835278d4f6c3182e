//! IAM's size limits on the controller role's policies (IAM quotas; whitespace is not counted):
//! a managed policy document holds at most 6,144 characters, a role's inline policies together
//! 10,240, and a role has at most 10 managed policies attached (the default quota, 20 on
//! request). IAM refuses a policy over them, so an upgrade that adds statements fails to deploy:
//! 90 % or more is reported as near the limit, more as refused. From the facts (a snapshot or
//! live IAM record each policy's kind and size: `facts::iam_snapshot::PolicySize`), or from
//! `--policy` documents before deploy (`given`). Pure.

use super::{Check, Settings, Status};
use crate::facts::iam_snapshot::{PolicyKind, PolicySize};
use crate::facts::{Facts, Lookup};

/// A managed policy document's limit, in characters without whitespace.
pub const MANAGED_CHARS: usize = 6_144;
/// The limit of a role's inline policies together.
pub const INLINE_CHARS: usize = 10_240;
/// Managed policies attached to a role: the default quota, and the most it can be raised to.
pub const ATTACHED: usize = 10;
pub const ATTACHED_MAX: usize = 20;

const MANAGED: &str = "managed policy size";
const INLINE: &str = "inline policies size";
const COUNT: &str = "managed policies attached";

/// Whether `check` is one of this module's.
pub fn is_limit(check: &Check) -> bool {
    [MANAGED, INLINE, COUNT].contains(&check.what)
}

/// `n` against `limit`: over it refused, 90 % or more near.
fn status(n: usize, limit: usize) -> Status {
    if n > limit {
        Status::Refused
    } else if n * 10 >= limit * 9 {
        Status::Near
    } else {
        Status::Allowed
    }
}

/// `6144` as `6,144`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn check(subject: &str, what: &'static str, status: Status, detail: String) -> Check {
    Check {
        node_class: None,
        what,
        subject: subject.to_string(),
        status,
        detail,
    }
}

/// The size of one managed policy (or a document that may become one).
fn managed(name: &str, chars: usize, given: bool) -> Check {
    let s = status(chars, MANAGED_CHARS);
    let verb = match s {
        Status::Refused => "over",
        Status::Near => "near",
        _ => "within",
    };
    check(
        name,
        MANAGED,
        s,
        format!(
            "{} characters without whitespace, {verb} IAM's limit of {} for a managed policy document{}",
            thousands(chars),
            thousands(MANAGED_CHARS),
            if given {
                " (as a managed policy; inline, the role's inline policies may hold 10,240 together)"
            } else {
                ""
            }
        ),
    )
}

/// The role's inline policies together.
fn inline(role: &str, chars: usize, count: usize) -> Check {
    check(
        role,
        INLINE,
        status(chars, INLINE_CHARS),
        format!(
            "{} characters without whitespace in {count} inline {}, of IAM's {} for a role's inline policies together",
            thousands(chars),
            if count == 1 { "policy" } else { "policies" },
            thousands(INLINE_CHARS)
        ),
    )
}

/// The managed policies attached to a role IAM holds: IAM attached them all, so its quota is at
/// least their number; at the default quota one more is refused.
fn attached(role: &str, n: usize) -> Check {
    let (s, detail) = if n > ATTACHED_MAX {
        (
            Status::Refused,
            format!("{n} attached, over the most a quota may allow ({ATTACHED_MAX})"),
        )
    } else if n > ATTACHED {
        (
            status(n, ATTACHED_MAX),
            format!(
                "{n} attached: the account's quota was raised above the default {ATTACHED} (at most {ATTACHED_MAX})"
            ),
        )
    } else if n == ATTACHED {
        (
            Status::Near,
            format!(
                "{n} attached, the default quota: one more is refused unless the quota is raised (at most {ATTACHED_MAX})"
            ),
        )
    } else {
        (
            status(n, ATTACHED),
            format!("{n} attached, of the default quota of {ATTACHED}"),
        )
    };
    check(role, COUNT, s, detail)
}

/// The limits of a role's policies as the facts record them: each managed policy near or over
/// its limit (else the largest), the inline policies together, the number attached.
pub fn of_sizes(role: &str, sizes: &[PolicySize], source: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let managed_sizes: Vec<&PolicySize> = sizes
        .iter()
        .filter(|p| p.kind == PolicyKind::Managed)
        .collect();
    let known: Vec<(&str, usize)> = managed_sizes
        .iter()
        .filter_map(|p| p.chars.map(|c| (p.name.as_str(), c)))
        .collect();
    let flagged: Vec<Check> = known
        .iter()
        .map(|(name, chars)| managed(name, *chars, false))
        .filter(|c| c.status != Status::Allowed)
        .collect();
    if flagged.is_empty() {
        if let Some((name, chars)) = known.iter().max_by_key(|(_, c)| *c) {
            let mut c = managed(name, *chars, false);
            c.detail = format!("the largest: {}", c.detail);
            checks.push(c);
        }
    } else {
        checks.extend(flagged);
    }
    let not_held = managed_sizes.len() - known.len();
    if not_held > 0 {
        checks.push(check(
            role,
            MANAGED,
            Status::Unknown,
            format!("the size of {not_held} attached managed {} is not known: {source} does not hold {}", if not_held == 1 { "policy" } else { "policies" }, if not_held == 1 { "it" } else { "them" }),
        ));
    }
    let inlines: Vec<usize> = sizes
        .iter()
        .filter(|p| p.kind == PolicyKind::Inline)
        .filter_map(|p| p.chars)
        .collect();
    if !inlines.is_empty() {
        checks.push(inline(role, inlines.iter().sum(), inlines.len()));
    }
    checks.push(attached(role, managed_sizes.len()));
    checks
}

/// The controller role's limits, from the facts.
pub fn controller_role(settings: &Settings, facts: &dyn Facts) -> Vec<Check> {
    let role = &settings.controller_role;
    match facts.principal(role) {
        Lookup::Found(p) => match &p.sizes {
            Some(sizes) => of_sizes(&p.arn, sizes, &p.source),
            None => vec![check(
                &p.arn,
                MANAGED,
                Status::Unknown,
                format!("{} records no policy sizes", p.source),
            )],
        },
        Lookup::Absent(why) | Lookup::Unknown(why) => vec![check(
            role,
            MANAGED,
            Status::Unknown,
            format!("the controller role's policies are not known: {why}"),
        )],
    }
}

/// A `--policy` document, before deploy: its name, how it is to be attached (`None`: not
/// known, a plain document or `aws_iam_policy_document`), its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub name: String,
    pub kind: Option<PolicyKind>,
    pub chars: usize,
}

/// The limits of the `--policy` documents: each managed one (or one whose kind is not known)
/// against a managed policy's limit, the inline ones together against the role's.
pub fn given(role: &str, documents: &[Given]) -> Vec<Check> {
    let mut checks: Vec<Check> = documents
        .iter()
        .filter(|d| d.kind != Some(PolicyKind::Inline))
        .map(|d| managed(&d.name, d.chars, d.kind.is_none()))
        .collect();
    let inlines: Vec<usize> = documents
        .iter()
        .filter(|d| d.kind == Some(PolicyKind::Inline))
        .map(|d| d.chars)
        .collect();
    if !inlines.is_empty() {
        checks.push(inline(role, inlines.iter().sum(), inlines.len()));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::111122223333:role/KarpenterController";

    fn size(name: &str, kind: PolicyKind, chars: Option<usize>) -> PolicySize {
        PolicySize {
            name: name.into(),
            kind,
            chars,
        }
    }

    fn statuses(checks: &[Check]) -> Vec<(&str, Status)> {
        checks.iter().map(|c| (c.what, c.status)).collect()
    }

    #[test]
    fn a_managed_policy_is_refused_over_6144_and_near_from_90_percent() {
        assert_eq!(status(6_144, MANAGED_CHARS), Status::Near);
        assert_eq!(status(6_145, MANAGED_CHARS), Status::Refused);
        assert_eq!(status(5_530, MANAGED_CHARS), Status::Near);
        assert_eq!(status(5_529, MANAGED_CHARS), Status::Allowed);
        let c = managed("p", 6_500, false);
        assert_eq!(c.status, Status::Refused);
        assert!(c.detail.starts_with("6,500 characters"), "{}", c.detail);
        assert!(
            c.detail.contains("over IAM's limit of 6,144"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn inline_policies_count_together() {
        let sizes = [
            size("inline:a", PolicyKind::Inline, Some(6_000)),
            size("inline:b", PolicyKind::Inline, Some(4_300)),
        ];
        let checks = of_sizes(ROLE, &sizes, "s");
        assert_eq!(
            statuses(&checks),
            [(INLINE, Status::Refused), (COUNT, Status::Allowed)]
        );
        assert!(
            checks[0].detail.starts_with("10,300 characters"),
            "{}",
            checks[0].detail
        );
        // Each alone is within a managed policy's limit, and inline they are not held to it.
        assert!(checks.iter().all(|c| c.what != MANAGED));
    }

    #[test]
    fn only_the_managed_policies_near_or_over_are_named_else_the_largest() {
        let sizes = [
            size("arn:small", PolicyKind::Managed, Some(1_000)),
            size("arn:big", PolicyKind::Managed, Some(5_600)),
            size("arn:aws:iam::aws:policy/X", PolicyKind::Managed, None),
        ];
        let checks = of_sizes(ROLE, &sizes, "iam snapshot s.json");
        assert_eq!(
            statuses(&checks),
            [
                (MANAGED, Status::Near),
                (MANAGED, Status::Unknown),
                (COUNT, Status::Allowed)
            ]
        );
        assert_eq!(checks[0].subject, "arn:big");
        assert!(
            checks[1].detail.contains("1 attached managed"),
            "{}",
            checks[1].detail
        );
        assert!(
            checks[2].detail.starts_with("3 attached"),
            "{}",
            checks[2].detail
        );
        let fine = of_sizes(ROLE, &sizes[..1], "s");
        assert_eq!(fine[0].subject, "arn:small");
        assert_eq!(fine[0].status, Status::Allowed);
    }

    #[test]
    fn the_attached_count_is_near_at_the_default_quota() {
        let n = |n: usize| attached(ROLE, n).status;
        assert_eq!(n(8), Status::Allowed);
        assert_eq!(n(9), Status::Near);
        assert_eq!(n(10), Status::Near);
        // IAM attached 12: the quota was raised.
        assert_eq!(n(12), Status::Allowed);
        assert_eq!(n(18), Status::Near);
        assert_eq!(n(21), Status::Refused);
    }

    #[test]
    fn given_documents_are_held_to_their_kinds_limit() {
        let doc = |name: &str, kind, chars| Given {
            name: name.into(),
            kind,
            chars,
        };
        let checks = given(
            ROLE,
            &[
                doc("controller.json", None, 7_000),
                doc("aws_iam_policy.c", Some(PolicyKind::Managed), 3_000),
                doc("aws_iam_role_policy.i", Some(PolicyKind::Inline), 7_000),
            ],
        );
        assert_eq!(
            statuses(&checks),
            [
                (MANAGED, Status::Refused),
                (MANAGED, Status::Allowed),
                (INLINE, Status::Allowed)
            ]
        );
        assert!(
            checks[0].detail.contains("as a managed policy"),
            "{}",
            checks[0].detail
        );
        assert!(!checks[1].detail.contains("as a managed policy"));
    }

    #[test]
    fn numbers_have_thousands_separators() {
        assert_eq!(thousands(6_144), "6,144");
        assert_eq!(thousands(10_240), "10,240");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
