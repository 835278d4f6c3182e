//! AWS's policy evaluation logic over a set of policies: explicit deny wins, SCPs and the
//! permissions boundary cap identity policies, resource policies (KMS key policies first) grant.

use super::Request;
use super::arn::Arn;
use super::document::{Effect, ParseError, Policy, err};
use super::nearmiss::{self, Denial};
use super::statement::{self, PrincipalMatch, StatementTrace};
use serde::Serialize;

/// Which kind of policy a statement comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyType {
    Identity,
    PermissionsBoundary,
    ServiceControlPolicy,
    ResourcePolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

/// All the policies that bear on one request.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// The principal's identity policies (inline and attached).
    pub identity: Vec<Policy>,
    pub boundary: Option<Policy>,
    /// Service control policies per level of the organization, root first; `None`: no SCPs apply.
    pub scps: Option<Vec<Vec<Policy>>>,
    /// The resource's policy (a KMS key policy for KMS keys); `None`: the resource has none, or,
    /// for a KMS key, it is unknown and only the identity side is evaluated.
    pub resource: Option<Policy>,
}

/// The layer at fault when a request is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    ExplicitDeny(PolicyType),
    ServiceControlPolicyNotAllowing,
    BoundaryNotAllowing,
    IdentityNotAllowing,
    ResourcePolicyNotAllowing,
}

/// A decision with every statement's trace and, for denials, the near-miss analysis.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub decision: Decision,
    pub statements: Vec<StatementTrace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denial: Option<Denial>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What one layer's statements say about the request.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    allow: Option<PrincipalMatch>,
    deny: bool,
}

struct Outcomes {
    identity: Outcome,
    boundary: Option<Outcome>,
    scp_levels: Vec<Outcome>,
    resource: Option<Outcome>,
}

impl PolicySet {
    /// Checks each policy is of its place: only a resource policy names principals, and it must.
    pub fn validate(&self) -> Result<(), ParseError> {
        let principal_free = self
            .identity
            .iter()
            .chain(&self.boundary)
            .chain(self.scps.iter().flatten().flatten());
        for policy in principal_free {
            if policy.has_principals() {
                return Err(err(
                    &format!("{}: $.Statement", policy.name),
                    "only resource policies may have Principal or NotPrincipal",
                ));
            }
        }
        if let Some(rp) = &self.resource
            && let Some(st) = rp.statements.iter().find(|s| s.principals.is_none())
        {
            return Err(err(
                &format!("{}: $.Statement[{}]", rp.name, st.index),
                "a resource policy statement needs Principal or NotPrincipal",
            ));
        }
        Ok(())
    }

    /// The decision alone: the fast path, no allocation beyond policy variables.
    pub fn decide(&self, req: &Request) -> Decision {
        let outcomes = self.outcomes(|policies, _| scan(policies, req));
        combine(&outcomes, req).0
    }

    /// The decision with every statement explained and, for a denial, its near miss.
    pub fn explain(&self, req: &Request) -> Explanation {
        let mut statements = Vec::new();
        let outcomes =
            self.outcomes(|policies, kind| scan_traced(policies, kind, req, &mut statements));
        let (decision, cause) = combine(&outcomes, req);
        let denial = cause.map(|cause| nearmiss::analyse(cause, &statements, req));
        let warnings = statements
            .iter()
            .flat_map(|s| &s.conditions)
            .filter_map(|c| c.warning.clone())
            .fold(Vec::new(), |mut seen, w| {
                if !seen.contains(&w) {
                    seen.push(w);
                }
                seen
            });
        Explanation {
            decision,
            statements,
            denial,
            warnings,
        }
    }

    fn outcomes(&self, mut scan: impl FnMut(&[Policy], PolicyType) -> Outcome) -> Outcomes {
        Outcomes {
            scp_levels: self
                .scps
                .iter()
                .flatten()
                .map(|level| scan(level, PolicyType::ServiceControlPolicy))
                .collect(),
            resource: self
                .resource
                .as_ref()
                .map(|p| scan(std::slice::from_ref(p), PolicyType::ResourcePolicy)),
            identity: scan(&self.identity, PolicyType::Identity),
            boundary: self
                .boundary
                .as_ref()
                .map(|p| scan(std::slice::from_ref(p), PolicyType::PermissionsBoundary)),
        }
    }
}

fn scan(policies: &[Policy], req: &Request) -> Outcome {
    let mut out = Outcome::default();
    for policy in policies {
        for st in &policy.statements {
            if let Some(how) = statement::applies(policy, st, req) {
                match st.effect {
                    Effect::Deny => {
                        return Outcome {
                            allow: None,
                            deny: true,
                        };
                    }
                    Effect::Allow => out.allow = out.allow.max(Some(how)),
                }
            }
        }
    }
    out
}

fn scan_traced(
    policies: &[Policy],
    kind: PolicyType,
    req: &Request,
    traces: &mut Vec<StatementTrace>,
) -> Outcome {
    let mut out = Outcome::default();
    for policy in policies {
        for st in &policy.statements {
            let (applied, trace) = statement::trace(policy, kind, st, req);
            traces.push(trace);
            if let Some(how) = applied {
                match st.effect {
                    Effect::Deny => out.deny = true,
                    Effect::Allow => out.allow = out.allow.max(Some(how)),
                }
            }
        }
    }
    if out.deny {
        out.allow = None;
    }
    out
}

/// AWS's evaluation flow over the layers' outcomes.
fn combine(o: &Outcomes, req: &Request) -> (Decision, Option<Cause>) {
    let deny = |cause| (Decision::ExplicitDeny, Some(Cause::ExplicitDeny(cause)));
    if o.scp_levels.iter().any(|l| l.deny) {
        return deny(PolicyType::ServiceControlPolicy);
    }
    if o.resource.is_some_and(|r| r.deny) {
        return deny(PolicyType::ResourcePolicy);
    }
    if o.identity.deny {
        return deny(PolicyType::Identity);
    }
    if o.boundary.is_some_and(|b| b.deny) {
        return deny(PolicyType::PermissionsBoundary);
    }
    let implicit = |cause| (Decision::ImplicitDeny, Some(cause));
    if o.scp_levels.iter().any(|l| l.allow.is_none()) {
        return implicit(Cause::ServiceControlPolicyNotAllowing);
    }
    let boundary_ok = o.boundary.is_none_or(|b| b.allow.is_some());
    let identity_ok = o.identity.allow.is_some() && boundary_ok;
    let identity_cause = if o.identity.allow.is_none() {
        Cause::IdentityNotAllowing
    } else {
        Cause::BoundaryNotAllowing
    };
    let granted = o.resource.and_then(|r| r.allow);
    let key_policy = Arn::parse(&req.resource)
        .is_some_and(|a| a.service == "kms" && a.resource.starts_with("key/"));
    let allowed = || (Decision::Allowed, None);
    // A service principal (EKS Auth taking a role) has no policies of its own: the resource's
    // policy (a trust policy) alone decides.
    if req.is_service_principal() {
        return match granted {
            Some(_) => allowed(),
            None => implicit(Cause::ResourcePolicyNotAllowing),
        };
    }
    if req.is_cross_account() {
        return match (granted, identity_ok) {
            (Some(_), true) => allowed(),
            (None, _) => implicit(Cause::ResourcePolicyNotAllowing),
            (Some(_), false) => implicit(identity_cause),
        };
    }
    // Same account: a grant to the exact session or to everyone stands on its own; a grant to
    // the role ARN is still capped by the boundary; a grant to the account delegates to IAM.
    match granted {
        Some(PrincipalMatch::Session | PrincipalMatch::Everyone) => allowed(),
        Some(PrincipalMatch::Role) if boundary_ok => allowed(),
        Some(PrincipalMatch::Role) => implicit(Cause::BoundaryNotAllowing),
        None if key_policy && o.resource.is_some() => implicit(Cause::ResourcePolicyNotAllowing),
        _ if identity_ok => allowed(),
        _ => implicit(identity_cause),
    }
}
