//! What IAM's Access Troubleshooter says of one denied request (`GetRequestAuthorizationDetails`,
//! as the API or the AWS CLI prints it): the request context, and each evaluated policy's verdict.

use crate::policy::ParseError;
use crate::signal::PolicyLayer;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One request's authorization details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizationDetails {
    /// The authorization id, where known (a live lookup; a pasted file does not carry it).
    pub id: Option<String>,
    /// The request context AWS evaluated: key → values (lists flattened, scalars as text).
    pub context: BTreeMap<String, Vec<String>>,
    pub evaluations: Vec<Evaluation>,
    pub policies: Vec<PolicyInfo>,
    /// Where the details come from (`file F`, `live iam-toolbox`), for evidence lines.
    pub source: String,
}

/// One action on one resource, as AWS evaluated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub action: String,
    pub resource: String,
    /// `ALLOW`, `EXPLICIT_DENY`, `IMPLICIT_DENY` (or a value AWS adds later).
    pub effect: String,
    pub context: BTreeMap<String, Vec<String>>,
    pub matched: Vec<MatchedPolicy>,
}

/// A policy with statements that matched the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedPolicy {
    pub uri: String,
    /// (Sid, `ALLOW` or `DENY`) of each matched statement.
    pub statements: Vec<(Option<String>, String)>,
}

/// A policy AWS evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    /// `IDENTITY_BASED_POLICY`, `SERVICE_CONTROL_POLICY`, … (as AWS spells it).
    pub kind: String,
    pub inline: bool,
    pub uri: String,
    pub attached_to: Vec<String>,
}

/// A layer that refused the request, as AWS evaluated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub layer: PolicyLayer,
    /// The policy's URI (an ARN for managed and organization policies), where one matched.
    pub policy: Option<String>,
    /// The Sids of the matched Deny statements (explicit denies only).
    pub sids: Vec<String>,
    pub attached_to: Vec<String>,
}

/// What the details prove of one denial: every refusing layer (explicit denies first), in
/// AWS's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub effect: String,
    pub refusals: Vec<Refusal>,
    /// The evaluation's context over the request's (the evaluation's own keys win).
    pub context: BTreeMap<String, Vec<String>>,
}

impl AuthorizationDetails {
    /// Whether `value` looks like authorization details (the API's or the CLI's output).
    pub fn is_details(value: &Value) -> bool {
        value.get("evaluations").is_some_and(Value::is_array)
            && (value.get("policies").is_some_and(Value::is_array)
                || value.get("requestContext").is_some_and(Value::is_object))
    }

    /// Reads the API's JSON; the error names the JSON path of the first malformed part.
    pub fn from_value(
        value: &Value,
        id: Option<String>,
        source: &str,
    ) -> Result<AuthorizationDetails, ParseError> {
        if !value.is_object() {
            return Err(err("$", "must be a JSON object"));
        }
        let mut evaluations = Vec::new();
        for (i, e) in list(value, "evaluations", "$")?.iter().enumerate() {
            let path = format!("$.evaluations[{i}]");
            let mut matched = Vec::new();
            for (j, m) in list(e, "matchedPolicies", &path)?.iter().enumerate() {
                let mpath = format!("{path}.matchedPolicies[{j}]");
                let mut statements = Vec::new();
                for (k, s) in list(m, "matchedStatements", &mpath)?.iter().enumerate() {
                    let spath = format!("{mpath}.matchedStatements[{k}]");
                    statements.push((
                        optional_text(s, "sid", &spath)?,
                        text(s, "evaluatedEffect", &spath)?,
                    ));
                }
                matched.push(MatchedPolicy {
                    uri: text(m, "uri", &mpath)?,
                    statements,
                });
            }
            evaluations.push(Evaluation {
                action: text(e, "action", &path)?,
                resource: text(e, "resource", &path)?,
                effect: optional_text(e, "evaluatedEffect", &path)?.unwrap_or_default(),
                context: context(e.get("context"), &format!("{path}.context"))?,
                matched,
            });
        }
        let mut policies = Vec::new();
        for (i, p) in list(value, "policies", "$")?.iter().enumerate() {
            let path = format!("$.policies[{i}]");
            let mut attached_to = Vec::new();
            for (j, a) in list(p, "attachedTo", &path)?.iter().enumerate() {
                attached_to.extend(optional_text(a, "arn", &format!("{path}.attachedTo[{j}]"))?);
            }
            policies.push(PolicyInfo {
                kind: optional_text(p, "type", &path)?.unwrap_or_default(),
                inline: p.get("inline").and_then(Value::as_bool).unwrap_or(false),
                uri: optional_text(p, "uri", &path)?.unwrap_or_default(),
                attached_to,
            });
        }
        Ok(AuthorizationDetails {
            id,
            context: context(value.get("requestContext"), "$.requestContext")?,
            evaluations,
            policies,
            source: source.to_string(),
        })
    }

    /// The principal the request was made as (`aws:PrincipalArn`), where the context says.
    pub fn principal(&self) -> Option<&str> {
        self.context
            .get("aws:PrincipalArn")
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// The evaluation of `action` (the prefix optional, as decoded messages sometimes drop
    /// it) on `resource` (any, when the denial names none).
    pub fn evaluation(&self, action: &str, resource: Option<&str>) -> Option<&Evaluation> {
        let bare = |a: &str| a.rsplit(':').next().unwrap_or(a).to_ascii_lowercase();
        let same_action = |e: &Evaluation| {
            e.action.eq_ignore_ascii_case(action)
                || ((!e.action.contains(':') || !action.contains(':'))
                    && bare(&e.action) == bare(action))
        };
        let candidates: Vec<&Evaluation> =
            self.evaluations.iter().filter(|e| same_action(e)).collect();
        match resource {
            Some(r) => candidates
                .iter()
                .find(|e| e.resource == r)
                .or_else(|| candidates.iter().find(|e| e.resource == "*"))
                .copied(),
            None if candidates.len() == 1 => candidates.first().copied(),
            None => None,
        }
    }

    /// What AWS's evaluation of `action` on `resource` says refused it; `None` when no
    /// evaluation matches, or AWS allowed it.
    pub fn verdict(&self, action: &str, resource: Option<&str>) -> Option<Verdict> {
        let e = self.evaluation(action, resource)?;
        let explicit = e.effect.eq_ignore_ascii_case("EXPLICIT_DENY");
        if !explicit && !e.effect.eq_ignore_ascii_case("IMPLICIT_DENY") {
            return None;
        }
        let kind_of = |uri: &str| {
            self.policies
                .iter()
                .find(|p| p.uri == uri)
                .map(|p| (p.kind.as_str(), p.attached_to.clone()))
        };
        let mut refusals = Vec::new();
        if explicit {
            for m in &e.matched {
                let sids: Vec<String> = m
                    .statements
                    .iter()
                    .filter(|(_, effect)| effect.eq_ignore_ascii_case("DENY"))
                    .map(|(sid, _)| sid.clone().unwrap_or_default())
                    .collect();
                if sids.is_empty() {
                    continue;
                }
                if let Some((kind, attached_to)) = kind_of(&m.uri)
                    && let Some(layer) = layer_of(kind, true)
                {
                    refusals.push(Refusal {
                        layer,
                        policy: Some(m.uri.clone()),
                        sids,
                        attached_to,
                    });
                }
            }
        }
        // Each evaluated policy type none of whose policies has a matched Allow statement
        // refuses implicitly (the identity and resource layers together: either may allow).
        let allowed_kinds: Vec<&str> = e
            .matched
            .iter()
            .filter(|m| {
                m.statements
                    .iter()
                    .any(|(_, effect)| effect.eq_ignore_ascii_case("ALLOW"))
            })
            .filter_map(|m| kind_of(&m.uri).map(|(k, _)| k))
            .collect();
        let mut kinds: Vec<&str> = self.policies.iter().map(|p| p.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let across = cross_account(self);
        for kind in kinds {
            if allowed_kinds.contains(&kind) {
                continue;
            }
            // In one account either an identity or a resource policy may allow (AWS then
            // names the identity side); across accounts both must.
            let refuses = match kind {
                "IDENTITY_BASED_POLICY" => {
                    across || !allowed_kinds.contains(&"RESOURCE_BASED_POLICY")
                }
                "RESOURCE_BASED_POLICY" => across,
                _ => true,
            };
            if !refuses {
                continue;
            }
            let Some(layer) = layer_of(kind, false) else {
                continue;
            };
            if refusals.iter().any(|r: &Refusal| same_type(r.layer, layer)) {
                continue;
            }
            let of_kind: Vec<&PolicyInfo> =
                self.policies.iter().filter(|p| p.kind == kind).collect();
            refusals.push(Refusal {
                layer,
                policy: (of_kind.len() == 1).then(|| of_kind[0].uri.clone()),
                sids: Vec::new(),
                attached_to: of_kind.iter().fold(Vec::new(), |mut all, p| {
                    for a in &p.attached_to {
                        if !all.contains(a) {
                            all.push(a.clone());
                        }
                    }
                    all
                }),
            });
        }
        let mut context = self.context.clone();
        context.extend(e.context.clone());
        Some(Verdict {
            effect: e.effect.to_ascii_uppercase(),
            refusals,
            context,
        })
    }
}

/// The denial-sentence layer of an Access Troubleshooter policy type.
pub fn layer_of(kind: &str, explicit: bool) -> Option<PolicyLayer> {
    use PolicyLayer as L;
    Some(match (kind, explicit) {
        ("IDENTITY_BASED_POLICY", true) => L::IdentityExplicitDeny,
        ("IDENTITY_BASED_POLICY", false) => L::NoIdentityPolicy,
        ("PERMISSIONS_BOUNDARY", true) => L::BoundaryExplicitDeny,
        ("PERMISSIONS_BOUNDARY", false) => L::NoBoundary,
        ("RESOURCE_BASED_POLICY", true) => L::ResourceExplicitDeny,
        ("RESOURCE_BASED_POLICY", false) => L::NoResourcePolicy,
        ("RESOURCE_CONTROL_POLICY", true) => L::RcpExplicitDeny,
        ("RESOURCE_CONTROL_POLICY", false) => L::NoRcp,
        ("SERVICE_CONTROL_POLICY", true) => L::ScpExplicitDeny,
        ("SERVICE_CONTROL_POLICY", false) => L::NoScp,
        ("SESSION_POLICY", true) => L::SessionExplicitDeny,
        ("SESSION_POLICY", false) => L::NoSessionPolicy,
        ("VPC_ENDPOINT_POLICY", true) => L::VpcEndpointExplicitDeny,
        ("VPC_ENDPOINT_POLICY", false) => L::NoVpcEndpointPolicy,
        _ => return None,
    })
}

/// Whether two layers are the same policy type (an explicit and an implicit refusal).
fn same_type(a: PolicyLayer, b: PolicyLayer) -> bool {
    let kind = |l| {
        [
            "IDENTITY_BASED_POLICY",
            "PERMISSIONS_BOUNDARY",
            "RESOURCE_BASED_POLICY",
            "RESOURCE_CONTROL_POLICY",
            "SERVICE_CONTROL_POLICY",
            "SESSION_POLICY",
            "VPC_ENDPOINT_POLICY",
        ]
        .into_iter()
        .find(|k| layer_of(k, true) == Some(l) || layer_of(k, false) == Some(l))
    };
    kind(a).is_some() && kind(a) == kind(b)
}

/// Whether the principal and the resource are in different accounts.
fn cross_account(d: &AuthorizationDetails) -> bool {
    let account = |key: &str| {
        d.context
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    };
    match (
        account("aws:PrincipalAccount"),
        account("aws:ResourceAccount"),
    ) {
        (Some(p), Some(r)) => p != r,
        _ => false,
    }
}

fn list<'a>(value: &'a Value, key: &str, path: &str) -> Result<&'a [Value], ParseError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be an array")),
    }
}

fn text(value: &Value, key: &str, path: &str) -> Result<String, ParseError> {
    optional_text(value, key, path)?.ok_or_else(|| err(&format!("{path}.{key}"), "missing"))
}

fn optional_text(value: &Value, key: &str, path: &str) -> Result<Option<String>, ParseError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be a string")),
    }
}

/// A context map: each value a string, number, boolean or a list of them.
fn context(value: Option<&Value>, path: &str) -> Result<BTreeMap<String, Vec<String>>, ParseError> {
    let mut out = BTreeMap::new();
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(out);
    };
    let map = value
        .as_object()
        .ok_or_else(|| err(path, "must be an object"))?;
    for (key, v) in map {
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let values = match v {
            Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>(),
            other => scalar(other).map(|s| vec![s]),
        }
        .ok_or_else(|| {
            err(
                &format!("{path}.{key}"),
                "must be a string, number, boolean or a list of them",
            )
        })?;
        out.insert(key.clone(), values);
    }
    Ok(out)
}

fn err(path: &str, message: &str) -> ParseError {
    ParseError {
        path: path.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCP: &str =
        "arn:aws:organizations::987654321098:policy/o-qv5af4abcd/service_control_policy/p-2kgnabcd";
    const ROLE_POLICY: &str = "arn:aws:iam::111122223333:policy/KarpenterControllerPolicy";

    fn details(effect: &str, matched: Value) -> AuthorizationDetails {
        AuthorizationDetails::from_value(
            &json!({
                "requestContext": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/KarpenterController",
                                   "aws:PrincipalAccount": "111122223333", "aws:ViaAWSService": false},
                "evaluations": [{"action": "ec2:CreateFleet", "resource": "*", "evaluatedEffect": effect,
                                 "context": {"ec2:Region": "us-east-1"}, "matchedPolicies": matched}],
                "policies": [
                    {"type": "IDENTITY_BASED_POLICY", "inline": false, "uri": ROLE_POLICY,
                     "attachedTo": [{"arn": "arn:aws:iam::111122223333:role/KarpenterController"}]},
                    {"type": "SERVICE_CONTROL_POLICY", "inline": false, "uri": SCP,
                     "attachedTo": [{"arn": "ou-abcd-11111111"}, {"arn": "111122223333"}]}
                ]
            }),
            None,
            "test",
        )
        .unwrap()
    }

    #[test]
    fn an_explicit_deny_names_its_policy_type_policy_and_sids() {
        let d = details(
            "EXPLICIT_DENY",
            json!([{"uri": SCP, "matchedStatements": [{"sid": "DenyFleetOutsideRegions", "evaluatedEffect": "DENY"}]},
                   {"uri": ROLE_POLICY, "matchedStatements": [{"sid": "AllowFleet", "evaluatedEffect": "ALLOW"}]}]),
        );
        let v = d.verdict("ec2:CreateFleet", None).unwrap();
        assert_eq!(v.refusals.len(), 1);
        assert_eq!(v.refusals[0].layer, PolicyLayer::ScpExplicitDeny);
        assert_eq!(v.refusals[0].policy.as_deref(), Some(SCP));
        assert_eq!(v.refusals[0].sids, ["DenyFleetOutsideRegions"]);
        assert_eq!(
            v.refusals[0].attached_to,
            ["ou-abcd-11111111", "111122223333"]
        );
        assert_eq!(v.context["ec2:Region"], ["us-east-1"]);
        assert_eq!(v.context["aws:ViaAWSService"], ["false"]);
    }

    #[test]
    fn an_implicit_deny_names_each_type_with_no_matched_allow() {
        let only_identity = details(
            "IMPLICIT_DENY",
            json!([{"uri": ROLE_POLICY, "matchedStatements": [{"sid": "AllowFleet", "evaluatedEffect": "ALLOW"}]}]),
        );
        let v = only_identity.verdict("CreateFleet", Some("*")).unwrap();
        assert_eq!(
            v.refusals.iter().map(|r| r.layer).collect::<Vec<_>>(),
            [PolicyLayer::NoScp]
        );
        let nothing = details("IMPLICIT_DENY", json!([]));
        let v = nothing.verdict("ec2:CreateFleet", None).unwrap();
        assert_eq!(
            v.refusals.iter().map(|r| r.layer).collect::<Vec<_>>(),
            [PolicyLayer::NoIdentityPolicy, PolicyLayer::NoScp]
        );
    }

    #[test]
    fn an_allowed_or_other_request_has_no_verdict() {
        let d = details("ALLOW", json!([]));
        assert!(d.verdict("ec2:CreateFleet", None).is_none());
        assert!(
            details("IMPLICIT_DENY", json!([]))
                .verdict("iam:PassRole", None)
                .is_none()
        );
    }

    #[test]
    fn malformed_details_name_the_path() {
        let bad = json!({"evaluations": [{"action": "ec2:CreateFleet", "resource": 7}]});
        let e = AuthorizationDetails::from_value(&bad, None, "t").unwrap_err();
        assert_eq!(e.path, "$.evaluations[0].resource");
        let bad = json!({"evaluations": [], "requestContext": {"k": {"nested": 1}}});
        let e = AuthorizationDetails::from_value(&bad, None, "t").unwrap_err();
        assert_eq!(e.path, "$.requestContext.k");
        assert!(AuthorizationDetails::from_value(&json!([]), None, "t").is_err());
    }
}
