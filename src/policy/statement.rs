//! Matching one statement against one request: action, resource, principal and conditions,
//! either short-circuiting (fast path) or recording every part for the explanation.

use super::arn::{Arn, ArnPattern, arn_like, arn_overlaps, role_name_of};
use super::document::{Patterns, Policy, Principals, Statement};
use super::glob::Pattern;
use super::request::Request;
use super::variables;
use serde::Serialize;

/// How a resource policy's `Principal` names the caller. The kind matters: a grant to the
/// account only delegates to the account's identity policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PrincipalMatch {
    /// Names the caller's account (`111122223333`, `arn:aws:iam::111122223333:root`).
    Account,
    /// `*`: everyone.
    Everyone,
    /// Names the caller's role ARN (or the caller itself when it is no session), or is a
    /// `NotPrincipal` that leaves the caller out.
    Role,
    /// Names the caller's exact assumed-role session ARN.
    Session,
}

/// Everything checked for one statement, for the explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementTrace {
    pub policy: String,
    pub policy_type: super::PolicyType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub index: usize,
    pub effect: super::Effect,
    pub matched: bool,
    pub action_matched: bool,
    pub resource_matched: bool,
    /// The resource did not match, but would with the pattern's partition set to the request's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resource_other_partition: bool,
    /// The request names no real resource (a placeholder with wildcards stands for it), and
    /// whether the statement's `Resource` / `NotResource` covers the real one cannot be told.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resource_undecided: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_matched: Option<bool>,
    pub conditions: Vec<ConditionTrace>,
}

/// One condition as evaluated: the policy's values and the request's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionTrace {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
    /// The request's values for the key; `None` when the key is not in the request.
    pub request_values: Option<Vec<String>>,
    /// The key is not in the request, and the facts show it cannot be (`Context::mark_absent`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub known_absent: bool,
    pub matched: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl StatementTrace {
    /// The doctor cannot tell whether AWS matched this statement as traced: a condition is
    /// undecided, or the resource is a placeholder the statement's resources only partly cover.
    pub fn undecided(&self) -> bool {
        self.resource_undecided || self.conditions.iter().any(ConditionTrace::undecided)
    }
}

impl ConditionTrace {
    /// The doctor cannot tell how AWS decided this condition: its key is not in the request as
    /// the doctor knows it (the real request may carry it, unless the facts show it cannot), or
    /// its operator is unknown.
    pub fn undecided(&self) -> bool {
        (self.request_values.is_none() && !self.known_absent) || self.warning.is_some()
    }
}

/// The outcome of matching a statement: `None` when it does not apply; otherwise how the
/// principal matched (`Role` for statements without a `Principal`).
pub type Applies = Option<PrincipalMatch>;

/// Matches without recording: stops at the first part that fails.
pub fn applies(policy: &Policy, st: &Statement, req: &Request) -> Applies {
    if !action_matches(&st.actions, req) || !resource_matches(policy, &st.resources, req) {
        return None;
    }
    let principal = principal_match(st.principals.as_ref(), req)?;
    st.conditions
        .iter()
        .all(|c| c.evaluate(&req.context, policy.variables))
        .then_some(principal)
}

/// Matches recording every part, for explanations and near-miss analysis.
pub fn trace(
    policy: &Policy,
    kind: super::PolicyType,
    st: &Statement,
    req: &Request,
) -> (Applies, StatementTrace) {
    let action_matched = action_matches(&st.actions, req);
    let resource_matched = resource_matches(policy, &st.resources, req);
    let principal = principal_match(st.principals.as_ref(), req);
    let conditions: Vec<ConditionTrace> = st
        .conditions
        .iter()
        .map(|c| {
            let unknown = c.operator.base == super::condition::Base::Unknown;
            ConditionTrace {
                operator: c.operator.name.clone(),
                key: c.key.clone(),
                values: c.values.clone(),
                request_values: req.context.get(&c.key).map(<[String]>::to_vec),
                known_absent: req.context.known_absent(&c.key),
                matched: c.evaluate(&req.context, policy.variables),
                warning: unknown.then(|| {
                    format!(
                        "unknown condition operator {}: it never matches",
                        c.operator.name
                    )
                }),
            }
        })
        .collect();
    let matched = action_matched
        && resource_matched
        && principal.is_some()
        && conditions.iter().all(|c| c.matched);
    let trace = StatementTrace {
        policy: policy.name.clone(),
        policy_type: kind,
        sid: st.sid.clone(),
        index: st.index,
        effect: st.effect,
        matched,
        action_matched,
        resource_matched,
        resource_other_partition: !resource_matched && other_partition_matches(&st.resources, req),
        resource_undecided: resource_undecided(policy, &st.resources, req),
        principal_matched: st.principals.as_ref().map(|_| principal.is_some()),
        conditions,
    };
    (if matched { principal } else { None }, trace)
}

fn action_matches(actions: &Patterns<Pattern>, req: &Request) -> bool {
    let action = req.action_lower();
    actions.items.iter().any(|p| p.matches(action)) != actions.negated
}

fn resource_matches(policy: &Policy, resources: &Patterns<ArnPattern>, req: &Request) -> bool {
    let target = Arn::parse(&req.resource);
    resources.items.iter().any(|p| {
        if policy.variables && p.has_variables {
            variables::substitute(&p.text, &req.context)
                .is_some_and(|p| arn_like(&p, &req.resource))
        } else {
            p.matches(&req.resource, target.as_ref())
        }
    }) != resources.negated
}

/// Whether the request's resource is a placeholder (it has wildcards) that the patterns neither
/// cover whole nor miss whole: then the real resource may match or not.
fn resource_undecided(policy: &Policy, resources: &Patterns<ArnPattern>, req: &Request) -> bool {
    if !req.resource.contains(['*', '?']) {
        return false;
    }
    let variable = |p: &ArnPattern| policy.variables && p.has_variables;
    let covers = resources
        .items
        .iter()
        .any(|p| !variable(p) && arn_like(&p.text, &req.resource));
    !covers
        && resources
            .items
            .iter()
            .any(|p| variable(p) || arn_overlaps(&p.text, &req.resource))
}

/// Whether some (positive) resource pattern in another partition would match in the request's.
fn other_partition_matches(resources: &Patterns<ArnPattern>, req: &Request) -> bool {
    let Some(target) = Arn::parse(&req.resource) else {
        return false;
    };
    !resources.negated
        && resources.items.iter().any(|p| {
            Arn::parse(&p.text).is_some_and(|a| {
                a.partition != target.partition && {
                    let moved = format!(
                        "arn:{}:{}:{}:{}:{}",
                        target.partition, a.service, a.region, a.account, a.resource
                    );
                    arn_like(&moved, &req.resource)
                }
            })
        })
}

/// How `principals` names the request's principal; statements without one name the caller.
fn principal_match(principals: Option<&Principals>, req: &Request) -> Option<PrincipalMatch> {
    let Some(p) = principals else {
        return Some(PrincipalMatch::Role);
    };
    let found = if p.everyone {
        Some(PrincipalMatch::Everyone)
    } else {
        let aws = p
            .aws
            .iter()
            .filter_map(|v| aws_principal_match(v, &req.principal))
            .max();
        // A service principal, or a federated one (an OIDC or SAML provider's ARN, as
        // `sts:AssumeRoleWithWebIdentity` names the caller), is named exactly.
        let named = (p.service.contains(&req.principal) || p.federated.contains(&req.principal))
            .then_some(PrincipalMatch::Role);
        aws.max(named)
    };
    // `NotPrincipal` leaving the caller out names it no more specifically than its role: a grant
    // through it is capped by a permissions boundary like a grant to the role ARN.
    match (p.negated, found) {
        (false, found) => found,
        (true, None) => Some(PrincipalMatch::Role),
        (true, Some(_)) => None,
    }
}

fn aws_principal_match(value: &str, principal: &str) -> Option<PrincipalMatch> {
    let caller = Arn::parse(principal)?;
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        return (value == caller.account).then_some(PrincipalMatch::Account);
    }
    if value == principal {
        let session = caller.service == "sts";
        return Some(if session {
            PrincipalMatch::Session
        } else {
            PrincipalMatch::Role
        });
    }
    let named = Arn::parse(value)?;
    if named.partition != caller.partition || named.account != caller.account {
        return None;
    }
    if named.service == "iam" && named.resource == "root" {
        return Some(PrincipalMatch::Account);
    }
    let is_session = caller.service == "sts" && caller.resource.starts_with("assumed-role/");
    let names_role = named.service == "iam" && named.resource.starts_with("role/");
    (is_session && names_role && role_name_of(value) == role_name_of(principal))
        .then_some(PrincipalMatch::Role)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Context, PolicyType};

    fn policy(json: &str) -> Policy {
        Policy::parse("p", json).unwrap()
    }

    const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/ctrl/s1";

    #[test]
    fn a_placeholder_resource_is_undecided_unless_covered_or_missed_whole() {
        let placeholder = "arn:aws:ec2:*:111122223333:instance/*";
        let undecided = |resource: &str| {
            let p = policy(&format!(
                r#"{{"Statement": {{"Effect": "Deny", "Action": "ec2:RunInstances", {resource}}}}}"#
            ));
            let req = Request::new(SESSION, "ec2:RunInstances", placeholder);
            trace(&p, PolicyType::Identity, &p.statements[0], &req)
                .1
                .undecided()
        };
        assert!(undecided(r#""NotResource": "arn:aws:ec2:eu-west-1:*:*""#));
        assert!(undecided(
            r#""Resource": "arn:aws:ec2:eu-west-1:*:instance/*""#
        ));
        assert!(!undecided(r#""Resource": "arn:aws:ec2:*:*:instance/*""#));
        assert!(!undecided(r#""Resource": "*""#));
        assert!(!undecided(r#""NotResource": "arn:aws:ec2:*::image/*""#));
        // A named resource is never a placeholder.
        let p = policy(
            r#"{"Statement": {"Effect": "Deny", "Action": "ec2:RunInstances", "NotResource": "arn:aws:ec2:eu-west-1:*:*"}}"#,
        );
        let req = Request::new(
            SESSION,
            "ec2:RunInstances",
            "arn:aws:ec2:us-east-1:1:instance/i-1",
        );
        assert!(
            !trace(&p, PolicyType::Identity, &p.statements[0], &req)
                .1
                .undecided()
        );
    }

    #[test]
    fn a_key_the_facts_show_absent_decides_its_condition() {
        let p = policy(
            r#"{"Statement": {"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "infra"}}}}"#,
        );
        let traced = |ctx: Context| {
            let req = Request::new(SESSION, "ec2:RunInstances", "*").with_context(ctx);
            let (applied, t) = trace(&p, PolicyType::Identity, &p.statements[0], &req);
            assert_eq!(applied, applies(&p, &p.statements[0], &req));
            (t.matched, t.undecided())
        };
        // Not in the request as the doctor knows it: the real one may carry it.
        assert_eq!(traced(Context::default()), (true, true));
        // The role's tags read whole, and a credential path that adds none.
        let mut absent = Context::default();
        absent.mark_absent("aws:PrincipalTag/");
        assert_eq!(traced(absent.clone()), (true, false));
        // A tag the session carries with a value not known stays undecided.
        let mut unknown = absent.clone();
        unknown.mark_unknown("aws:principaltag/TEAM");
        assert_eq!(traced(unknown), (true, true));
        // A value the request carries is decided as ever, whatever the marks.
        let mut tagged = absent;
        tagged.insert("aws:PrincipalTag/team", "infra");
        assert_eq!(traced(tagged), (false, false));
        // One key marked absent leaves the others open.
        let mut other = Context::default();
        other.mark_absent("aws:PrincipalTag/owner");
        assert_eq!(traced(other), (true, true));
    }

    #[test]
    fn principals_are_classified_by_how_they_name_the_caller() {
        let cases = [
            (r#""*""#, Some(PrincipalMatch::Everyone)),
            (r#"{"AWS":"111122223333"}"#, Some(PrincipalMatch::Account)),
            (
                r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
                Some(PrincipalMatch::Account),
            ),
            (r#"{"AWS":"arn:aws-cn:iam::111122223333:root"}"#, None),
            (
                r#"{"AWS":"arn:aws:iam::111122223333:role/ctrl"}"#,
                Some(PrincipalMatch::Role),
            ),
            (
                r#"{"AWS":"arn:aws:iam::111122223333:role/path/ctrl"}"#,
                Some(PrincipalMatch::Role),
            ),
            (r#"{"AWS":"arn:aws:iam::111122223333:role/other"}"#, None),
            (
                r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/ctrl/s1"}"#,
                Some(PrincipalMatch::Session),
            ),
            (r#"{"AWS":"444455556666"}"#, None),
            (r#"{"Service":"ec2.amazonaws.com"}"#, None),
            (
                r#"{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"}"#,
                None,
            ),
        ];
        for (principal, expected) in cases {
            let p = policy(&format!(
                r#"{{"Statement":{{"Effect":"Allow","Principal":{principal},"Action":"kms:*","Resource":"*"}}}}"#
            ));
            let req = Request::new(
                SESSION,
                "kms:Decrypt",
                "arn:aws:kms:us-east-1:111122223333:key/k",
            );
            assert_eq!(applies(&p, &p.statements[0], &req), expected, "{principal}");
        }
    }

    /// IRSA: the trust policy names the cluster's OIDC provider as a federated principal, and
    /// the web identity request is made by that provider's ARN.
    #[test]
    fn a_federated_principal_is_the_provider_named_exactly() {
        let provider = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
        let p = policy(&format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":{{"Federated":"{provider}"}},"Action":"sts:AssumeRoleWithWebIdentity","Resource":"*"}}}}"#
        ));
        let role = "arn:aws:iam::111122223333:role/KarpenterController";
        let req = Request::new(provider, "sts:AssumeRoleWithWebIdentity", role);
        assert_eq!(
            applies(&p, &p.statements[0], &req),
            Some(PrincipalMatch::Role)
        );
        let other = provider.replace("EXAMPLED539", "0THERCLUSTER");
        let req = Request::new(&other, "sts:AssumeRoleWithWebIdentity", role);
        assert_eq!(applies(&p, &p.statements[0], &req), None);
    }

    #[test]
    fn not_principal_applies_to_everyone_else() {
        let p = policy(
            r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:role/ctrl"},"Action":"*","Resource":"*"}}"#,
        );
        let me = Request::new(SESSION, "s3:GetObject", "*");
        let other = Request::new("arn:aws:iam::111122223333:role/x", "s3:GetObject", "*");
        assert_eq!(applies(&p, &p.statements[0], &me), None);
        assert_eq!(
            applies(&p, &p.statements[0], &other),
            Some(PrincipalMatch::Role)
        );
    }

    #[test]
    fn trace_records_each_part_and_agrees_with_the_fast_path() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":{"Sid":"Pass","Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws-cn:iam::1:role/node","Condition":{"StringEquals":{"iam:PassedToService":"ec2.amazonaws.com"},"Bogus":{"k":"v"}}}}"#,
        );
        let mut ctx = Context::default();
        ctx.insert("iam:PassedToService", "ec2.amazonaws.com.cn");
        let req = Request::new(
            "arn:aws-cn:sts::1:assumed-role/c/s",
            "IAM:PassRole",
            "arn:aws-cn:iam::1:role/node",
        )
        .with_context(ctx);
        let (applied, t) = trace(&p, PolicyType::Identity, &p.statements[0], &req);
        assert_eq!(applied, applies(&p, &p.statements[0], &req));
        assert!(t.action_matched && t.resource_matched && !t.matched);
        assert_eq!(t.principal_matched, None);
        assert_eq!(
            t.conditions[0].request_values.as_deref(),
            Some(&["ec2.amazonaws.com.cn".to_string()][..])
        );
        assert!(!t.conditions[0].matched);
        assert!(
            t.conditions[1]
                .warning
                .as_deref()
                .unwrap()
                .contains("Bogus")
        );
    }

    #[test]
    fn resource_variables_apply_only_in_version_2012() {
        let new = policy(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#,
        );
        let old = policy(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#,
        );
        let mut ctx = Context::default();
        ctx.insert("aws:username", "alice");
        let req = Request::new(
            "arn:aws:iam::1:user/alice",
            "s3:GetObject",
            "arn:aws:s3:::b/alice/k",
        )
        .with_context(ctx);
        assert!(applies(&new, &new.statements[0], &req).is_some());
        assert!(applies(&old, &old.statements[0], &req).is_none());
    }
}
