//! The evaluation semantics AWS documents with examples (IAM User Guide: policy evaluation
//! logic, condition operators, set operators, IfExists, policy variables, KMS key policies,
//! permissions boundaries, SCPs, cross-account access), one test per documented rule.

use karpenter_doctor::policy::{Context, Decision, Policy, PolicySet, Reason, Request};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::111122223333:role/app";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/s";

fn policy(v: Value) -> Policy {
    Policy::from_value("p", &v).unwrap()
}

fn allow(action: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": action, "Resource": resource}})
}

fn req(action: &str, resource: &str, ctx: &[(&str, &str)]) -> Request {
    let mut c = Context::default();
    for (k, v) in ctx {
        c.insert(k, *v);
    }
    Request::new(SESSION, action, resource).with_context(c)
}

fn identity(policies: Vec<Value>) -> PolicySet {
    PolicySet {
        identity: policies.into_iter().map(policy).collect(),
        ..PolicySet::default()
    }
}

#[test]
fn by_default_every_request_is_implicitly_denied() {
    let set = identity(vec![]);
    let e = set.explain(&req("s3:GetObject", "arn:aws:s3:::b/k", &[]));
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.denial.unwrap().reason, Reason::ActionNotAllowed);
}

#[test]
fn an_explicit_deny_overrides_any_allow() {
    let set = identity(vec![
        allow("s3:*", "*"),
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}}),
    ]);
    assert_eq!(
        set.decide(&req("s3:GetObject", "arn:aws:s3:::b", &[])),
        Decision::Allowed
    );
    let e = set.explain(&req("s3:DeleteBucket", "arn:aws:s3:::b", &[]));
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(e.denial.unwrap().reason, Reason::IdentityPolicyExplicitDeny);
}

#[test]
fn not_action_with_allow_allows_everything_else() {
    // IAM User Guide, NotAction: "Allow NotAction iam:*" allows all but IAM.
    let set = identity(vec![
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}),
    ]);
    assert_eq!(
        set.decide(&req("ec2:RunInstances", "*", &[])),
        Decision::Allowed
    );
    assert_eq!(
        set.decide(&req("iam:CreateUser", "*", &[])),
        Decision::ImplicitDeny
    );
}

#[test]
fn actions_compare_case_insensitively_and_resources_do_not() {
    let set = identity(vec![allow(
        "EC2:runinstances",
        "arn:aws:ec2:*:*:instance/*",
    )]);
    assert_eq!(
        set.decide(&req(
            "ec2:RunInstances",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
            &[]
        )),
        Decision::Allowed
    );
    assert_eq!(
        set.decide(&req(
            "ec2:RunInstances",
            "arn:aws:ec2:us-east-1:111122223333:INSTANCE/i-1",
            &[]
        )),
        Decision::ImplicitDeny
    );
}

#[test]
fn several_keys_are_anded_and_several_values_ored() {
    // IAM User Guide, "Creating a condition with multiple keys or values".
    let set = identity(vec![
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
        "Condition": {"StringEquals": {"aws:RequestTag/env": ["dev", "test"], "aws:RequestTag/team": "infra"}}}}),
    ]);
    let ok = req(
        "ec2:CreateTags",
        "*",
        &[
            ("aws:RequestTag/env", "test"),
            ("aws:RequestTag/team", "infra"),
        ],
    );
    let wrong_team = req(
        "ec2:CreateTags",
        "*",
        &[
            ("aws:RequestTag/env", "dev"),
            ("aws:RequestTag/team", "web"),
        ],
    );
    assert_eq!(set.decide(&ok), Decision::Allowed);
    let e = set.explain(&wrong_team);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.denial.unwrap().reason, Reason::ConditionNotSatisfied);
}

#[test]
fn if_exists_passes_when_the_key_is_absent() {
    // IAM User Guide, "...IfExists condition operators": StringLikeIfExists ec2:InstanceType.
    let set = identity(vec![
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
        "Condition": {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}}}),
    ]);
    assert_eq!(
        set.decide(&req(
            "ec2:RunInstances",
            "*",
            &[("ec2:InstanceType", "t2.micro")]
        )),
        Decision::Allowed
    );
    assert_eq!(
        set.decide(&req(
            "ec2:RunInstances",
            "*",
            &[("ec2:InstanceType", "r5.large")]
        )),
        Decision::ImplicitDeny
    );
    assert_eq!(
        set.decide(&req("ec2:CreateTags", "*", &[])),
        Decision::Allowed
    );
}

#[test]
fn for_all_values_is_true_for_a_missing_key_so_pair_it_with_null() {
    // IAM User Guide, ForAllValues: "returns true if there are no context keys in the request".
    let only_env = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}}});
    let set = identity(vec![only_env]);
    assert_eq!(
        set.decide(&req("ec2:CreateTags", "*", &[])),
        Decision::Allowed
    );
    assert_eq!(
        set.decide(&req(
            "ec2:CreateTags",
            "*",
            &[("aws:TagKeys", "env"), ("aws:TagKeys", "owner")]
        )),
        Decision::ImplicitDeny
    );
    let guarded = identity(vec![
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}, "Null": {"aws:TagKeys": "false"}}}}),
    ]);
    assert_eq!(
        guarded.decide(&req("ec2:CreateTags", "*", &[])),
        Decision::ImplicitDeny
    );
}

#[test]
fn a_negated_operator_on_a_missing_key_matches() {
    // Condition operators: StringNotEquals is true when the key is absent, so a Deny applies.
    let set = identity(vec![
        allow("s3:*", "*"),
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}}}),
    ]);
    assert_eq!(
        set.decide(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
        Decision::ExplicitDeny
    );
    assert_eq!(
        set.decide(&req(
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            &[("aws:RequestedRegion", "eu-west-1")]
        )),
        Decision::Allowed
    );
}

#[test]
fn policy_variables_scope_a_home_folder() {
    // IAM User Guide, policy variables: arn:aws:s3:::bucket/home/${aws:username}/*.
    let set = identity(vec![allow(
        "s3:*",
        "arn:aws:s3:::bucket/home/${aws:username}/*",
    )]);
    let own = req(
        "s3:GetObject",
        "arn:aws:s3:::bucket/home/alice/f",
        &[("aws:username", "alice")],
    );
    let other = req(
        "s3:GetObject",
        "arn:aws:s3:::bucket/home/bob/f",
        &[("aws:username", "alice")],
    );
    assert_eq!(set.decide(&own), Decision::Allowed);
    assert_eq!(set.decide(&other), Decision::ImplicitDeny);
}

#[test]
fn date_and_ip_conditions_compare_by_type() {
    let set = identity(vec![
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"DateLessThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}, "IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}}}),
    ]);
    assert_eq!(
        set.decide(&req(
            "s3:ListBucket",
            "*",
            &[
                ("aws:CurrentTime", "2024-06-01T10:00:00Z"),
                ("aws:SourceIp", "203.0.113.7")
            ]
        )),
        Decision::Allowed
    );
    assert_eq!(
        set.decide(&req(
            "s3:ListBucket",
            "*",
            &[
                ("aws:CurrentTime", "2024-06-01T10:00:00Z"),
                ("aws:SourceIp", "2001:db8::9")
            ]
        )),
        Decision::Allowed
    );
    assert_eq!(
        set.decide(&req(
            "s3:ListBucket",
            "*",
            &[
                ("aws:CurrentTime", "2025-06-01T10:00:00Z"),
                ("aws:SourceIp", "203.0.113.7")
            ]
        )),
        Decision::ImplicitDeny
    );
}

#[test]
fn the_permissions_boundary_caps_identity_policies() {
    // IAM User Guide, permissions boundaries: effective permissions are the intersection.
    let mut set = identity(vec![allow("s3:*", "*")]);
    set.boundary = Some(policy(allow("s3:GetObject", "*")));
    assert_eq!(
        set.decide(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
        Decision::Allowed
    );
    let e = set.explain(&req("s3:PutObject", "arn:aws:s3:::b/k", &[]));
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.denial.unwrap().reason, Reason::PermissionsBoundaryDeny);
}

#[test]
fn every_scp_level_must_allow_and_an_scp_deny_wins() {
    let full = json!([allow("*", "*")]);
    let deny_region = json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}}}});
    let mut set = identity(vec![allow("*", "*")]);
    set.scps = Some(vec![
        vec![policy(full[0].clone()), policy(deny_region)],
        vec![policy(allow("ec2:*", "*"))],
    ]);
    assert_eq!(
        set.decide(&req(
            "ec2:RunInstances",
            "*",
            &[("aws:RequestedRegion", "us-east-1")]
        )),
        Decision::Allowed
    );
    let e = set.explain(&req(
        "ec2:RunInstances",
        "*",
        &[("aws:RequestedRegion", "eu-west-1")],
    ));
    assert_eq!(
        (e.decision, e.denial.unwrap().reason),
        (Decision::ExplicitDeny, Reason::ServiceControlPolicyDeny)
    );
    let e = set.explain(&req(
        "s3:GetObject",
        "*",
        &[("aws:RequestedRegion", "us-east-1")],
    ));
    assert_eq!(
        (e.decision, e.denial.unwrap().reason),
        (Decision::ImplicitDeny, Reason::ServiceControlPolicyDeny)
    );
}

#[test]
fn a_kms_key_policy_must_allow_before_identity_policies_count() {
    // KMS Developer Guide, "Default key policy": the root statement enables IAM policies.
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let root = json!({"Version": "2012-10-17", "Statement": {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}});
    let mut set = identity(vec![allow("kms:Decrypt", key)]);
    set.resource = Some(policy(root));
    assert_eq!(set.decide(&req("kms:Decrypt", key, &[])), Decision::Allowed);
    let other_admin = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:role/admin"}, "Action": "kms:*", "Resource": "*"}});
    set.resource = Some(policy(other_admin));
    let e = set.explain(&req("kms:Decrypt", key, &[]));
    assert_eq!(
        (e.decision, e.denial.unwrap().reason),
        (Decision::ImplicitDeny, Reason::ResourcePolicyNotAllowing)
    );
    let direct = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*"}});
    let set = PolicySet {
        resource: Some(policy(direct)),
        ..PolicySet::default()
    };
    assert_eq!(
        set.decide(&req("kms:Decrypt", key, &[])),
        Decision::Allowed,
        "a key policy naming the role needs no IAM policy"
    );
}

#[test]
fn cross_account_access_needs_both_sides() {
    // IAM User Guide, cross-account policy evaluation logic.
    let key = "arn:aws:kms:us-east-1:444455556666:key/0987dcba-09fe-87dc-65ba-ab0987654321";
    let grant_account = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": ["kms:Decrypt", "kms:CreateGrant"], "Resource": "*"}});
    let only_key_side = PolicySet {
        resource: Some(policy(grant_account.clone())),
        ..PolicySet::default()
    };
    let e = only_key_side.explain(&req("kms:Decrypt", key, &[]));
    assert_eq!(
        (e.decision, e.denial.unwrap().reason),
        (Decision::ImplicitDeny, Reason::ActionNotAllowed)
    );
    let only_identity = identity(vec![allow("kms:*", "*")]);
    let e = only_identity.explain(&req("kms:Decrypt", key, &[]));
    assert_eq!(
        (e.decision, e.denial.unwrap().reason),
        (Decision::ImplicitDeny, Reason::ResourcePolicyNotAllowing)
    );
    let mut both = identity(vec![allow("kms:*", "*")]);
    both.resource = Some(policy(grant_account));
    assert_eq!(
        both.decide(&req("kms:Decrypt", key, &[])),
        Decision::Allowed
    );
}

#[test]
fn a_same_account_resource_policy_naming_the_role_needs_no_identity_policy() {
    let bucket_policy = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
    let set = PolicySet {
        resource: Some(policy(bucket_policy)),
        ..PolicySet::default()
    };
    assert_eq!(
        set.decide(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
        Decision::Allowed
    );
    let account_only = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
    let set = PolicySet {
        resource: Some(policy(account_only)),
        ..PolicySet::default()
    };
    assert_eq!(
        set.decide(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
        Decision::ImplicitDeny,
        "naming the account delegates to IAM"
    );
}

#[test]
fn the_china_pass_role_near_miss_names_the_missing_service_principal() {
    let set = identity(vec![
        json!({"Version": "2012-10-17", "Statement": {"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Action": "iam:PassRole",
        "Resource": "arn:aws-cn:iam::111122223333:role/node", "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}}}),
    ]);
    let mut c = Context::default();
    c.insert("iam:PassedToService", "ec2.amazonaws.com.cn");
    let r = Request::new(
        "arn:aws-cn:sts::111122223333:assumed-role/ctrl/1",
        "iam:PassRole",
        "arn:aws-cn:iam::111122223333:role/node",
    )
    .with_context(c);
    let d = set.explain(&r).denial.unwrap();
    assert_eq!(d.reason, Reason::PassedToServiceMismatch);
    assert_eq!(
        d.statement.unwrap().sid.as_deref(),
        Some("AllowPassingInstanceRole")
    );
    assert_eq!(
        d.failed_conditions[0].request_values.as_deref(),
        Some(&["ec2.amazonaws.com.cn".to_string()][..])
    );
}

#[test]
fn a_resource_in_the_wrong_partition_is_named_as_such() {
    let set = identity(vec![allow(
        "iam:PassRole",
        "arn:aws:iam::111122223333:role/node",
    )]);
    let r = Request::new(
        "arn:aws-cn:sts::111122223333:assumed-role/ctrl/1",
        "iam:PassRole",
        "arn:aws-cn:iam::111122223333:role/node",
    );
    assert_eq!(
        set.explain(&r).denial.unwrap().reason,
        Reason::ResourcePartitionMismatch
    );
    let other = Request::new(
        "arn:aws:sts::111122223333:assumed-role/ctrl/1",
        "iam:PassRole",
        "arn:aws:iam::111122223333:role/other",
    );
    assert_eq!(
        set.explain(&other).denial.unwrap().reason,
        Reason::ResourceNotCovered
    );
}

#[test]
fn a_statement_covering_the_resource_in_another_partition_beats_an_unrelated_one() {
    // The unrelated statement comes first and has no conditions; the near miss is still the
    // statement that names the same resource in the commercial partition.
    let set = identity(vec![json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Images", "Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "arn:aws-cn:ec2:*::image/*"},
        {"Sid": "Fleets", "Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "arn:aws:ec2:*:*:fleet/*",
         "Condition": {"StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}}]})]);
    let r = Request::new(
        "arn:aws-cn:sts::111122223333:assumed-role/ctrl/1",
        "ec2:RunInstances",
        "arn:aws-cn:ec2:cn-north-1:111122223333:fleet/fleet-1",
    );
    let d = set.explain(&r).denial.unwrap();
    assert_eq!(d.reason, Reason::ResourcePartitionMismatch);
    assert_eq!(d.statement.unwrap().sid.as_deref(), Some("Fleets"));
}

#[test]
fn an_unknown_operator_never_matches_and_is_reported() {
    let set = identity(vec![
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"StringEqualz": {"aws:username": "alice"}}}}),
    ]);
    let e = set.explain(&req("s3:GetObject", "*", &[("aws:username", "alice")]));
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert!(
        e.warnings.iter().any(|w| w.contains("StringEqualz")),
        "{:?}",
        e.warnings
    );
}

/// IAM User Guide, "Role trust policies" and EKS User Guide, "EKS Pod Identity": a service
/// principal taking a role is allowed by the role's trust policy alone (it has no identity
/// policy or boundary of its own); an action the trust policy does not name is refused; a Deny
/// still wins.
#[test]
fn a_service_principal_is_let_in_by_the_trust_policy_alone() {
    const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/KarpenterController";
    // A trust policy names no Resource: the role it belongs to is the resource.
    let trust = |statements: Value| PolicySet {
        resource: Some(
            Policy::trust_from_value(
                "trust",
                &json!({"Version": "2012-10-17", "Statement": statements}),
            )
            .unwrap(),
        ),
        ..PolicySet::default()
    };
    let eks = |action: &str| Request::new("pods.eks.amazonaws.com", action, ROLE_ARN);
    let set = trust(
        json!([{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]),
    );
    assert_eq!(set.decide(&eks("sts:AssumeRole")), Decision::Allowed);
    assert_eq!(set.decide(&eks("sts:TagSession")), Decision::ImplicitDeny);
    let other = Request::new("ec2.amazonaws.com", "sts:AssumeRole", ROLE_ARN);
    assert_eq!(
        set.decide(&other),
        Decision::ImplicitDeny,
        "another service"
    );
    let set = trust(json!([
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]},
        {"Effect": "Deny", "Principal": "*", "Action": "sts:TagSession"}]));
    assert_eq!(set.decide(&eks("sts:AssumeRole")), Decision::Allowed);
    assert_eq!(set.decide(&eks("sts:TagSession")), Decision::ExplicitDeny);
}
