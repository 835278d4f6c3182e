//! The node role's trust: instances get each EC2NodeClass's node role through its instance
//! profile, and EC2 assumes it as this partition's EC2 service principal (`ec2.amazonaws.com`,
//! `ec2.amazonaws.com.cn` in aws-cn). The role's trust policy (the facts', else `aws iam
//! get-role` output given as input) is evaluated by the policy engine as the resource policy of
//! `sts:AssumeRole` on the role, as `diagnose::credentials` evaluates Karpenter's own trust. A
//! refused trust gives nodes no credentials: they never join. Pure.

use super::{Check, Settings, Status};
use crate::diagnose::credentials::{statement_label, trust_policy, undecided_refusal};
use crate::facts::Facts;
use crate::policy::{Decision, Effect, PolicySet, PolicyType, Request};
use crate::signal::{NodeClassInfo, Observations};

const WHAT: &str = "node role trust";

/// Whether EC2 may assume `class`'s node role, per the role's trust policy.
pub fn check(
    class: &NodeClassInfo,
    obs: &Observations,
    settings: &Settings,
    facts: &dyn Facts,
) -> Check {
    let principal = settings.partition.service_principal("ec2");
    let result = |subject: String, status: Status, detail: String| Check {
        node_class: Some(class.name.clone()),
        what: WHAT,
        subject,
        status,
        detail,
    };
    let Some(role) = super::node_role(class, settings, facts) else {
        let why = match &class.instance_profile {
            Some(profile) => format!(
                "the EC2NodeClass names the instance profile {profile}, whose role is not known (--node-role)"
            ),
            None => "the EC2NodeClass names no role, and no --node-role is given".to_string(),
        };
        return result(String::new(), Status::Unknown, why);
    };
    let mut missing = Vec::new();
    let Some((trust, source)) = trust_policy(Some(&role), facts, &obs.role_trusts, &mut missing)
    else {
        return result(
            role,
            Status::Unknown,
            format!("not known: {}", missing.join("; ")),
        );
    };
    let set = PolicySet {
        resource: Some(trust.clone()),
        ..PolicySet::default()
    };
    let explanation = set.explain(&Request::new(&principal, "sts:AssumeRole", &role));
    let trusts = |t: &&crate::policy::statement::StatementTrace| {
        t.policy_type == PolicyType::ResourcePolicy && t.action_matched
    };
    if explanation.decision == Decision::Allowed {
        let by = explanation
            .statements
            .iter()
            .filter(trusts)
            .find(|t| t.matched && t.effect == Effect::Allow)
            .map_or("the trust policy".to_string(), statement_label);
        return result(
            role,
            Status::Allowed,
            format!("{by} of the trust policy ({source}) lets {principal} sts:AssumeRole"),
        );
    }
    let undecided = undecided_refusal(&explanation, "no condition key of EC2's request", &source);
    if !undecided.is_empty() {
        return result(
            role,
            Status::Unknown,
            format!("not known: {}", undecided.join("; ")),
        );
    }
    let why = if explanation.decision == Decision::ExplicitDeny {
        let deny = explanation
            .statements
            .iter()
            .filter(trusts)
            .find(|t| t.matched && t.effect == Effect::Deny);
        format!(
            "{} of the trust policy denies it",
            deny.map_or("a statement".to_string(), statement_label)
        )
    } else {
        let near: Vec<String> = explanation
            .statements
            .iter()
            .filter(trusts)
            .filter(|t| t.effect == Effect::Allow)
            .map(|t| {
                let names = trust.statements[t.index]
                    .principals
                    .as_ref()
                    .map(|p| p.service.join(", "))
                    .filter(|s| !s.is_empty());
                match (t.principal_matched, names) {
                    (Some(false), Some(names)) => {
                        format!(
                            "{} names Service {names}, not {principal}",
                            statement_label(t)
                        )
                    }
                    (Some(false), None) => {
                        format!(
                            "{} names other principals, not {principal}",
                            statement_label(t)
                        )
                    }
                    _ => format!("{}'s conditions refuse it", statement_label(t)),
                }
            })
            .collect();
        if near.is_empty() {
            format!("no statement of the trust policy lets {principal} sts:AssumeRole")
        } else {
            near.join("; ")
        }
    };
    result(
        role,
        Status::Refused,
        format!(
            "{principal} may not sts:AssumeRole ({source}): {why}; instances of this class get no credentials and never join"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::SnapshotFacts;
    use crate::facts::iam_snapshot::IamSnapshot;
    use serde_json::{Value, json};

    const NODE_ROLE: &str = "arn:aws-cn:iam::111122223333:role/KarpenterNodeRole-demo";

    fn settings(partition: &str) -> Settings {
        Settings::example(
            partition,
            "cn-northwest-1",
            "arn:aws-cn:iam::111122223333:role/KarpenterController-demo",
        )
    }

    fn class(role: Option<&str>) -> NodeClassInfo {
        NodeClassInfo {
            name: "default".into(),
            role: role.map(str::to_string),
            instance_profile: None,
            kms_key_ids: Vec::new(),
            ami_ids: Vec::new(),
            http_tokens: None,
            default_ebs_key: crate::signal::DefaultKeyUse::Never,
            ami_aliases: Vec::new(),
            capacity_reservations: false,
        }
    }

    /// A snapshot holding the node role with `trust` (none: `Value::Null`).
    fn facts(trust: Value) -> SnapshotFacts {
        let doc = json!({"RoleDetailList": [{"Arn": NODE_ROLE, "RoleName": "KarpenterNodeRole-demo",
            "AssumeRolePolicyDocument": trust}]});
        SnapshotFacts {
            iam: vec![(
                "s.json".into(),
                IamSnapshot::parse(&doc.to_string()).unwrap(),
            )],
            ..SnapshotFacts::default()
        }
    }

    fn trusting(service: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "EC2", "Effect": "Allow",
            "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
    }

    fn run(partition: &str, class: &NodeClassInfo, facts: &SnapshotFacts) -> Check {
        check(class, &Observations::default(), &settings(partition), facts)
    }

    #[test]
    fn ec2_of_the_partition_must_be_trusted() {
        let global = facts(trusting(json!("ec2.amazonaws.com")));
        let role = class(Some("KarpenterNodeRole-demo"));
        let cn = run("aws-cn", &role, &global);
        assert_eq!(cn.status, Status::Refused, "{cn:?}");
        assert_eq!(cn.subject, NODE_ROLE);
        assert!(
            cn.detail.contains(
                "statement 0 (EC2) names Service ec2.amazonaws.com, not ec2.amazonaws.com.cn"
            ),
            "{}",
            cn.detail
        );
        let both = facts(trusting(json!([
            "ec2.amazonaws.com",
            "ec2.amazonaws.com.cn"
        ])));
        let ok = run("aws-cn", &role, &both);
        assert_eq!(ok.status, Status::Allowed, "{ok:?}");
        assert!(ok.detail.starts_with("statement 0 (EC2)"), "{}", ok.detail);
    }

    #[test]
    fn a_deny_or_another_action_refuses() {
        let role = class(Some(NODE_ROLE));
        let mut denied = trusting(json!("ec2.amazonaws.com.cn"));
        denied["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Sid": "No", "Effect": "Deny",
            "Principal": "*", "Action": "sts:AssumeRole"}));
        let c = run("aws-cn", &role, &facts(denied));
        assert_eq!(c.status, Status::Refused);
        assert!(
            c.detail
                .contains("statement 1 (No) of the trust policy denies it"),
            "{}",
            c.detail
        );
        let web = json!({"Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com.cn"},
            "Action": "sts:AssumeRoleWithWebIdentity"}});
        let c = run("aws-cn", &role, &facts(web));
        assert_eq!(c.status, Status::Refused);
        assert!(
            c.detail.contains("no statement of the trust policy"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_condition_on_what_ec2_sends_is_not_decided() {
        let mut conditioned = trusting(json!("ec2.amazonaws.com.cn"));
        conditioned["Statement"][0]["Condition"] =
            json!({"StringEquals": {"aws:SourceAccount": "111122223333"}});
        let c = run("aws-cn", &class(Some(NODE_ROLE)), &facts(conditioned));
        assert_eq!(c.status, Status::Unknown, "{c:?}");
        assert!(c.detail.contains("aws:SourceAccount"), "{}", c.detail);
    }

    #[test]
    fn what_is_not_known_is_unknown_and_says_why() {
        let c = run("aws-cn", &class(Some(NODE_ROLE)), &facts(Value::Null));
        assert_eq!(c.status, Status::Unknown);
        assert!(c.detail.contains("has none"), "{}", c.detail);
        let c = run("aws-cn", &class(Some(NODE_ROLE)), &SnapshotFacts::default());
        assert_eq!(c.status, Status::Unknown);
        assert!(c.detail.contains("--iam-snapshot"), "{}", c.detail);
        let c = run("aws-cn", &class(None), &SnapshotFacts::default());
        assert_eq!((c.status, c.subject.as_str()), (Status::Unknown, ""));
        assert!(c.detail.contains("no --node-role"), "{}", c.detail);
    }
}
