//! Organization policies given as documents (`aws organizations describe-policy`): the Deny
//! statement of an SCP or RCP that refuses a request, found by evaluating the document. Pure.

use crate::policy::statement::StatementTrace;
use crate::policy::{Decision, Policy, PolicySet, PolicyType, Request, StatementRef};
use crate::signal::OrgPolicyInfo;
use serde_json::json;

/// What AWS prints as an organization policy's type.
pub const SCP: &str = "SERVICE_CONTROL_POLICY";
pub const RCP: &str = "RESOURCE_CONTROL_POLICY";

/// A Deny statement of an organization policy that matches a request.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgDeny {
    /// The policy's ARN as `policy`, with the statement's Sid and index.
    pub statement: StatementRef,
    /// The engine's sentence: which statement denies what.
    pub summary: String,
    /// The match rests on a condition key the request as the doctor knows it does not carry
    /// (a negated operator on an absent key matches): the real request may carry it; or on a
    /// resource the doctor only has a placeholder for.
    pub undecided: bool,
}

/// A policy that allows everything: what every other level or layer is assumed to say when
/// one organization policy document is read alone (only its explicit denies then count).
pub fn allow_all() -> Policy {
    Policy::from_value(
        "(every other layer assumed to allow)",
        &json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
    )
    .expect("a constant policy parses")
}

/// What the given documents of type `kind` say of the requests (each must be allowed: one
/// request per resource the call touches): the first Deny that matches, or none. Only explicit
/// denies are read: whether an allow-list SCP allows needs every level's policies, which one
/// document does not give. `named`: the policy AWS named, where it did (only it is read).
/// Documents that do not parse are returned as errors, each naming its policy.
pub fn denies(
    docs: &[OrgPolicyInfo],
    kind: &str,
    named: Option<&str>,
    requests: &[Request],
) -> (Option<OrgDeny>, Vec<String>) {
    let allow_all = allow_all();
    let mut errors = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| d.kind == kind && named.is_none_or(|n| n == d.arn))
    {
        let policy = match Policy::from_value(&doc.arn, &doc.document) {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("{}: {e}", doc.arn));
                continue;
            }
        };
        let set = PolicySet {
            identity: vec![allow_all.clone()],
            boundary: None,
            scps: Some(vec![vec![policy, allow_all.clone()]]),
            resource: None,
        };
        for req in requests {
            let e = set.explain(req);
            let Some(denial) = e.denial.filter(|d| {
                e.decision == Decision::ExplicitDeny && d.layer == PolicyType::ServiceControlPolicy
            }) else {
                continue;
            };
            let Some(statement) = denial.statement else {
                continue;
            };
            let undecided = e
                .statements
                .iter()
                .find(|t| t.policy == statement.policy && Some(t.index) == statement.index)
                .is_some_and(StatementTrace::undecided);
            return (
                Some(OrgDeny {
                    statement,
                    summary: denial.summary,
                    undecided,
                }),
                errors,
            );
        }
    }
    (None, errors)
}

/// The resources a request names for the engine: the one AWS named, else, for the launch calls
/// (whose message often names none), one of each kind the launch touches in the caller's
/// `account` (any id: `*`), so that a statement scoped to any of them is found; else `*`.
pub fn resources(
    action: &str,
    resource: Option<&str>,
    partition: &str,
    account: &str,
) -> Vec<String> {
    if let Some(r) = resource {
        return vec![r.to_string()];
    }
    let launch = ["ec2:runinstances", "ec2:createfleet"];
    if !launch.contains(&action.to_ascii_lowercase().as_str()) {
        return vec!["*".to_string()];
    }
    [
        "instance",
        "volume",
        "network-interface",
        "launch-template",
        "image",
        "snapshot",
        "security-group",
        "subnet",
    ]
    .iter()
    .map(|kind| match *kind {
        // AMIs and their snapshots may be another account's (Amazon's, for EKS AMIs).
        "image" | "snapshot" => format!("arn:{partition}:ec2:*::{kind}/*"),
        _ => format!("arn:{partition}:ec2:*:{account}:{kind}/*"),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Context;

    fn doc(kind: &str, document: serde_json::Value) -> OrgPolicyInfo {
        OrgPolicyInfo {
            arn:
                "arn:aws:organizations::999999999999:policy/o-a1b2c3/service_control_policy/p-imds"
                    .into(),
            kind: kind.into(),
            name: "imds".into(),
            document,
        }
    }

    /// karpenter-provider-aws #9018's SCP, as its reporter quotes it.
    fn imds() -> OrgPolicyInfo {
        doc(
            SCP,
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "IMDSxx", "Effect": "Deny",
                "Action": "ec2:RunInstances", "Resource": "arn:aws:ec2:*:*:launch-template/*",
                "Condition": {"StringNotEquals": {"ec2:MetadataHttpTokens": "required"}}}]}),
        )
    }

    fn requests(ctx: &Context) -> Vec<Request> {
        resources("ec2:RunInstances", None, "aws", "1")
            .iter()
            .map(|r| {
                Request::new("arn:aws:sts::1:assumed-role/K/s", "ec2:RunInstances", r)
                    .with_context(ctx.clone())
            })
            .collect()
    }

    #[test]
    fn the_imdsv2_scp_denies_a_request_without_the_key_and_not_one_requiring_tokens() {
        let (found, errors) = denies(&[imds()], SCP, None, &requests(&Context::default()));
        assert!(errors.is_empty());
        let found = found.expect("the Deny matches: StringNotEquals on an absent key");
        assert_eq!(found.statement.sid.as_deref(), Some("IMDSxx"));
        assert_eq!(found.statement.index, Some(0));
        assert!(
            found.undecided,
            "it rests on a key the request does not carry"
        );
        let mut tokens = Context::default();
        tokens.insert("ec2:MetadataHttpTokens", "required");
        assert_eq!(denies(&[imds()], SCP, None, &requests(&tokens)).0, None);
        let mut optional = Context::default();
        optional.insert("ec2:MetadataHttpTokens", "optional");
        let decided = denies(&[imds()], SCP, None, &requests(&optional))
            .0
            .unwrap();
        assert!(!decided.undecided);
    }

    #[test]
    fn only_the_named_policy_and_type_are_read_and_broken_documents_are_reported() {
        let reqs = requests(&Context::default());
        assert_eq!(denies(&[imds()], RCP, None, &reqs).0, None, "another type");
        assert_eq!(
            denies(
                &[imds()],
                SCP,
                Some("arn:aws:organizations::9:policy/o-x/service_control_policy/p-other"),
                &reqs
            )
            .0,
            None,
            "another policy named"
        );
        let broken = doc(SCP, json!({"Statement": [{"Effect": "Deny", "Action": 7}]}));
        let (found, errors) = denies(&[broken, imds()], SCP, None, &reqs);
        assert!(found.is_some(), "the good document is still read");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("arn:aws:organizations::999999999999:policy/"));
    }

    #[test]
    fn a_named_resource_is_the_only_one_and_other_calls_without_one_are_star() {
        assert_eq!(
            resources("ec2:RunInstances", Some("arn:x"), "aws", "1"),
            ["arn:x"]
        );
        assert_eq!(resources("ssm:GetParameter", None, "aws", "1"), ["*"]);
        let kinds = resources("ec2:CreateFleet", None, "aws-cn", "111122223333");
        assert!(kinds.contains(&"arn:aws-cn:ec2:*:111122223333:launch-template/*".to_string()));
        assert!(kinds.contains(&"arn:aws-cn:ec2:*::image/*".to_string()));
    }
}
