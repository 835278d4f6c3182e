//! Differential test: ≥ 10 000 random policy/request cases decided by our engine and by the
//! independent evaluator `@cloud-copilot/iam-simulate` (run as a separate Node process, installed
//! into a scratch directory by tests/oracle/install.sh). Every disagreement is listed; the test
//! fails on any that is not a documented deviation of the oracle from AWS.

mod common;

use common::rng::Rng;
use karpenter_doctor::policy::{Context, Decision, Policy, PolicySet, Request};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const CASES: usize = 12_000;
const A: &str = "111111111111";
const B: &str = "222222222222";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyType {
    Str,
    StrArray,
    Arn,
    Bool,
    Num,
    Date,
    Ip,
}

/// A request shape the oracle knows: an action, resources it applies to, and the condition keys
/// (global and service ones) the oracle keeps for it, with their types.
struct Shape {
    action: &'static str,
    resources: &'static [&'static str],
    keys: &'static [(&'static str, KeyType)],
}

const GLOBAL: &[(&str, KeyType)] = &[
    ("aws:SourceIp", KeyType::Ip),
    ("aws:CurrentTime", KeyType::Date),
    ("aws:MultiFactorAuthAge", KeyType::Num),
    ("aws:TagKeys", KeyType::StrArray),
    ("aws:CalledVia", KeyType::StrArray),
    ("aws:MultiFactorAuthPresent", KeyType::Bool),
    ("aws:SecureTransport", KeyType::Bool),
    ("aws:PrincipalTag/team", KeyType::Str),
    ("aws:username", KeyType::Str),
    ("aws:PrincipalArn", KeyType::Arn),
    ("aws:SourceArn", KeyType::Arn),
];

const SHAPES: &[Shape] = &[
    Shape {
        action: "iam:PassRole",
        resources: &[
            "arn:aws:iam::111111111111:role/node",
            "arn:aws:iam::111111111111:role/path/app-role",
        ],
        keys: &[
            ("iam:PassedToService", KeyType::Str),
            ("iam:AssociatedResourceArn", KeyType::Arn),
        ],
    },
    Shape {
        action: "ec2:RunInstances",
        resources: &[
            "arn:aws:ec2:us-east-1:111111111111:instance/i-0abc",
            "arn:aws:ec2:us-east-1::image/ami-123",
        ],
        keys: &[
            ("aws:RequestTag/team", KeyType::Str),
            ("aws:TagKeys", KeyType::StrArray),
            ("ec2:InstanceType", KeyType::Str),
        ],
    },
    Shape {
        action: "ec2:CreateFleet",
        resources: &["arn:aws:ec2:us-east-1:111111111111:fleet/fleet-1"],
        keys: &[
            ("aws:RequestTag/team", KeyType::Str),
            ("aws:TagKeys", KeyType::StrArray),
        ],
    },
    Shape {
        action: "s3:GetObject",
        resources: &[
            "arn:aws:s3:::bucket/key",
            "arn:aws:s3:::bucket/home/alpha/file",
        ],
        keys: &[("s3:ExistingObjectTag/team", KeyType::Str)],
    },
    Shape {
        action: "kms:Decrypt",
        resources: &[
            "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:222222222222:key/0987dcba-09fe-87dc-65ba-ab0987654321",
        ],
        keys: &[
            ("kms:ViaService", KeyType::Str),
            ("kms:CallerAccount", KeyType::Str),
        ],
    },
    Shape {
        action: "kms:CreateGrant",
        resources: &[
            "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:222222222222:key/0987dcba-09fe-87dc-65ba-ab0987654321",
        ],
        keys: &[
            ("kms:GrantIsForAWSResource", KeyType::Bool),
            ("kms:ViaService", KeyType::Str),
            ("kms:GrantOperations", KeyType::StrArray),
        ],
    },
    Shape {
        action: "ssm:GetParameter",
        resources: &[
            "arn:aws:ssm:us-east-1::parameter/aws/service/eks/ami",
            "arn:aws:ssm:us-east-1:111111111111:parameter/app/db",
        ],
        keys: &[],
    },
    Shape {
        action: "sqs:ReceiveMessage",
        resources: &[
            "arn:aws:sqs:us-east-1:111111111111:queue",
            "arn:aws:sqs:us-east-1:222222222222:queue",
        ],
        keys: &[],
    },
];

fn string_values(rng: &mut Rng) -> &'static str {
    rng.pick(&[
        "alpha",
        "beta",
        "Alpha",
        "ec2.amazonaws.com",
        "ec2.amazonaws.com.cn",
        "111111111111",
        "t3.large",
    ])
}

/// A request value for a key of type `t`.
fn request_value(rng: &mut Rng, t: KeyType) -> String {
    match t {
        KeyType::Str | KeyType::StrArray => string_values(rng).to_string(),
        KeyType::Arn => rng
            .pick(&[
                "arn:aws:iam::111111111111:role/app",
                "arn:aws:iam::222222222222:role/other",
                "arn:aws:ec2:us-east-1:111111111111:instance/i-1",
            ])
            .to_string(),
        KeyType::Bool => rng.pick(&["true", "false"]).to_string(),
        KeyType::Num => rng.pick(&["0", "5", "10", "3600", "-1"]).to_string(),
        KeyType::Date => rng
            .pick(&[
                "2024-01-01T00:00:00Z",
                "2025-06-01T12:00:00Z",
                "2024-06-01T10:00:00Z",
            ])
            .to_string(),
        KeyType::Ip => rng
            .pick(&["10.1.2.3", "192.168.1.10", "203.0.113.9", "2001:db8::1"])
            .to_string(),
    }
}

/// Policy values for an operator of family `family` (possibly not the key's own type).
fn policy_values(rng: &mut Rng, family: &str) -> Value {
    let pool: &[&str] = match family {
        "String" => &[
            "alpha",
            "Alpha",
            "beta",
            "ec2.amazonaws.com",
            "ec2.amazonaws.com.cn",
            "111111111111",
            "alp*",
            "*.cn",
            "?eta",
            "${aws:username}",
            "t3.*",
        ],
        "Arn" => &[
            "arn:aws:iam::111111111111:role/app",
            "arn:aws:iam::*:role/*",
            "arn:aws:iam::222222222222:*",
            "arn:aws:ec2:*:*:instance/*",
            "arn:aws:iam::111111111111:role/ap?",
        ],
        "Bool" => &["true", "false"],
        "Numeric" => &["0", "5", "10", "3600", "-1", "10.5"],
        "Date" => &[
            "2024-01-01T00:00:00Z",
            "2025-01-01T00:00:00Z",
            "2024-06-01T10:00:00Z",
            "2024-06-01T10:00:00.000Z",
        ],
        "Ip" => &[
            "10.0.0.0/8",
            "192.168.1.0/24",
            "2001:db8::/32",
            "10.1.2.3/32",
            "203.0.113.0/24",
        ],
        "Null" => &["true", "false"],
        "Binary" => &["QmluYXJ5", "YWxwaGE=", "alpha"],
        _ => &["x"],
    };
    let n = 1 + rng.below(3);
    let values: Vec<Value> = (0..n).map(|_| json!(rng.pick(pool))).collect();
    if values.len() == 1 && rng.chance(0.5) {
        values[0].clone()
    } else {
        Value::Array(values)
    }
}

fn family_of(t: KeyType) -> &'static str {
    match t {
        KeyType::Str | KeyType::StrArray => "String",
        KeyType::Arn => "Arn",
        KeyType::Bool => "Bool",
        KeyType::Num => "Numeric",
        KeyType::Date => "Date",
        KeyType::Ip => "Ip",
    }
}

fn operators(family: &str) -> &'static [&'static str] {
    match family {
        "String" => &[
            "StringEquals",
            "StringNotEquals",
            "StringEqualsIgnoreCase",
            "StringNotEqualsIgnoreCase",
            "StringLike",
            "StringNotLike",
        ],
        "Arn" => &["ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"],
        "Bool" => &["Bool"],
        "Numeric" => &[
            "NumericEquals",
            "NumericNotEquals",
            "NumericLessThan",
            "NumericLessThanEquals",
            "NumericGreaterThan",
            "NumericGreaterThanEquals",
        ],
        "Date" => &[
            "DateEquals",
            "DateNotEquals",
            "DateLessThan",
            "DateLessThanEquals",
            "DateGreaterThan",
            "DateGreaterThanEquals",
        ],
        "Ip" => &["IpAddress", "NotIpAddress"],
        "Binary" => &["BinaryEquals"],
        _ => &["Null"],
    }
}

struct Generator {
    rng: Rng,
    operators: BTreeMap<String, usize>,
}

impl Generator {
    fn keys(&self, shape: &Shape) -> Vec<(&'static str, KeyType)> {
        GLOBAL.iter().chain(shape.keys).copied().collect()
    }

    fn condition(&mut self, shape: &Shape) -> (String, String, Value) {
        let keys = self.keys(shape);
        let (key, t) = self.rng.pick(&keys);
        let own = family_of(t);
        // Any family on any key (type mismatches), except Date on non-dates: the oracle compares
        // integer strings as epoch seconds against ISO dates in milliseconds (NOTES.md §8).
        // Any family on any key (type mismatches), except Date and Numeric on other types: the
        // oracle reads "10.1.2.3" as 10.1 and "2025-06-01T…" as 2025, and compares integer strings
        // as epoch seconds against ISO dates in milliseconds (tests/oracle/NOTES.md §8, §11).
        let family = if self.rng.chance(0.1) {
            self.rng.pick(&["String", "Arn", "Ip", "Bool", "Binary"])
        } else {
            own
        };
        let family = if self.rng.chance(0.08) {
            "Null"
        } else {
            family
        };
        let base = self.rng.pick(operators(family));
        let mut op = base.to_string();
        if base != "Null" {
            // The oracle ignores IfExists under a set operator (AWS does not): never combine them.
            if (t == KeyType::StrArray || self.rng.chance(0.05)) && self.rng.chance(0.8) {
                op = format!("{}:{op}", self.rng.pick(&["ForAnyValue", "ForAllValues"]));
            } else if self.rng.chance(0.2) {
                op.push_str("IfExists");
            }
        }
        if self.rng.chance(0.01) {
            op = "StringEqualsMaybe".to_string();
        }
        *self.operators.entry(op.clone()).or_default() += 1;
        (op, key.to_string(), policy_values(&mut self.rng, family))
    }

    fn action_pattern(&mut self, action: &str) -> String {
        let (service, name) = action.split_once(':').unwrap();
        match self.rng.below(9) {
            0 => "*".into(),
            1 => format!("{service}:*"),
            2 => action.to_ascii_lowercase(),
            3 => action.to_ascii_uppercase(),
            4 => format!("{service}:{}*", &name[..3]),
            5 => format!("{service}:?{}", &name[1..]),
            6 => self
                .rng
                .pick(&[
                    "ec2:Describe*",
                    "s3:PutObject",
                    "iam:GetRole",
                    "kms:Encrypt",
                    "sqs:*",
                ])
                .to_string(),
            _ => action.to_string(),
        }
    }

    fn resource_pattern(&mut self, resource: &str) -> String {
        match self.rng.below(8) {
            0 => "*".into(),
            1 => resource.replace("111111111111", "*"),
            2 => format!("{}*", &resource[..resource.len() - 3]),
            3 => resource.replacen("arn:aws:", "arn:aws-cn:", 1),
            4 => resource.replace("us-east-1", "*"),
            5 => self
                .rng
                .pick(&[
                    "arn:aws:s3:::bucket/home/${aws:username}/*",
                    "arn:aws:iam::111111111111:role/*",
                    "arn:aws:kms:*:111111111111:key/*",
                    "arn:aws:ec2:*:*:*",
                ])
                .to_string(),
            _ => resource.to_string(),
        }
    }

    fn statement(
        &mut self,
        shape: &Shape,
        resource: &str,
        principal: Option<Value>,
        boundary: bool,
    ) -> Value {
        let mut st = serde_json::Map::new();
        if self.rng.chance(0.5) {
            st.insert("Sid".into(), json!(format!("S{}", self.rng.below(100))));
        }
        let deny = self.rng.chance(0.22);
        st.insert("Effect".into(), json!(if deny { "Deny" } else { "Allow" }));
        if let Some(p) = principal {
            // The oracle applies a NotPrincipal Deny to everyone once a boundary exists (NOTES §6).
            let not = self.rng.chance(0.05) && !(deny && boundary);
            st.insert(if not { "NotPrincipal" } else { "Principal" }.into(), p);
        }
        let actions: Vec<String> = (0..1 + self.rng.below(2))
            .map(|_| self.action_pattern(shape.action))
            .collect();
        st.insert(
            if self.rng.chance(0.1) {
                "NotAction"
            } else {
                "Action"
            }
            .into(),
            json!(actions),
        );
        let resources: Vec<String> = (0..1 + self.rng.below(2))
            .map(|_| self.resource_pattern(resource))
            .collect();
        st.insert(
            if self.rng.chance(0.1) {
                "NotResource"
            } else {
                "Resource"
            }
            .into(),
            json!(resources),
        );
        let n = [0, 0, 1, 1, 1, 2, 3][self.rng.below(7)];
        if n > 0 {
            let mut block = serde_json::Map::new();
            for _ in 0..n {
                let (op, key, values) = self.condition(shape);
                block
                    .entry(op)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .unwrap()
                    .insert(key, values);
            }
            st.insert("Condition".into(), Value::Object(block));
        }
        Value::Object(st)
    }

    fn policy(
        &mut self,
        shape: &Shape,
        resource: &str,
        principals: Option<&[Value]>,
        boundary: bool,
    ) -> Value {
        let n = 1 + self.rng.below(3);
        let statements: Vec<Value> = (0..n)
            .map(|_| {
                let p = principals.map(|ps| ps[self.rng.below(ps.len())].clone());
                self.statement(shape, resource, p, boundary)
            })
            .collect();
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    fn case(&mut self, id: usize) -> Value {
        let shape = &SHAPES[self.rng.below(SHAPES.len())];
        let resource = self.rng.pick(shape.resources);
        let role = "arn:aws:iam::111111111111:role/app";
        let session = "arn:aws:sts::111111111111:assumed-role/app/session-1";
        let principal = if self.rng.chance(0.5) { role } else { session };
        let mut context = serde_json::Map::new();
        for (key, t) in self.keys(shape) {
            if self.rng.chance(0.45) {
                let n = if t == KeyType::StrArray {
                    self.rng.below(3)
                } else {
                    1
                };
                let values: Vec<String> = (0..n).map(|_| request_value(&mut self.rng, t)).collect();
                context.insert(key.to_string(), json!(values));
            }
        }
        let resource_account =
            (shape.action == "s3:GetObject" && self.rng.chance(0.3)).then_some(B);
        let identity: Vec<Value> = (0..self.rng.below(3) + usize::from(self.rng.chance(0.8)))
            .map(|_| self.policy(shape, resource, None, false))
            .collect();
        let boundary = self
            .rng
            .chance(0.25)
            .then(|| self.policy(shape, resource, None, false));
        let scps = self.rng.chance(0.2).then(|| {
            (0..1 + self.rng.below(2))
                .map(|_| {
                    let mut level = vec![json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})];
                    if self.rng.chance(0.6) {
                        level[0] = self.policy(shape, resource, None, false);
                    }
                    if self.rng.chance(0.3) {
                        level.push(self.policy(shape, resource, None, false));
                    }
                    json!(level)
                })
                .collect::<Vec<_>>()
        });
        let with_resource_policy = match shape.action.split(':').next().unwrap() {
            "kms" => true,
            "s3" | "sqs" => self.rng.chance(0.7),
            _ => false,
        };
        let principals = [
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": A}),
            json!({"AWS": format!("arn:aws:iam::{A}:root")}),
            json!({"AWS": role}),
            json!({"AWS": session}),
            json!({"AWS": format!("arn:aws:iam::{B}:root")}),
            json!({"AWS": [B, role]}),
            json!({"Service": "ec2.amazonaws.com"}),
        ];
        let resource_policy = with_resource_policy
            .then(|| self.policy(shape, resource, Some(&principals), boundary.is_some()));
        let mut case = json!({
            "id": format!("c{id}"),
            "principal": principal,
            "action": shape.action,
            "resource": resource,
            "context": context,
            "identityPolicies": identity,
            "boundary": boundary,
            "scps": scps,
            "resourcePolicy": resource_policy,
        });
        if let Some(account) = resource_account {
            case["resourceAccount"] = json!(account);
        }
        case
    }
}

/// Our decision for a case, or the parse error.
fn decide(case: &Value) -> Result<(Decision, PolicySet, Request), String> {
    let parse =
        |name: String, v: &Value| Policy::from_value(&name, v).map_err(|e| format!("{name}: {e}"));
    let identity = case["identityPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, p)| parse(format!("identity-{i}"), p))
        .collect::<Result<_, _>>()?;
    let boundary = match &case["boundary"] {
        Value::Null => None,
        b => Some(parse("boundary".into(), b)?),
    };
    let scps = match &case["scps"] {
        Value::Null => None,
        Value::Array(levels) => Some(
            levels
                .iter()
                .enumerate()
                .map(|(i, level)| {
                    level
                        .as_array()
                        .unwrap()
                        .iter()
                        .enumerate()
                        .map(|(j, p)| parse(format!("scp-{i}-{j}"), p))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<_, _>>()?,
        ),
        other => panic!("bad scps {other}"),
    };
    let resource = match &case["resourcePolicy"] {
        Value::Null => None,
        r => Some(parse("resource".into(), r)?),
    };
    let set = PolicySet {
        identity,
        boundary,
        scps,
        resource,
    };
    let mut ctx = Context::default();
    for (k, values) in case["context"].as_object().unwrap() {
        ctx.set(
            k,
            values
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect(),
        );
    }
    let req = Request::new(
        case["principal"].as_str().unwrap(),
        case["action"].as_str().unwrap(),
        case["resource"].as_str().unwrap(),
    )
    .with_context(ctx)
    .with_resource_account(case["resourceAccount"].as_str().map(str::to_string));
    Ok((set.decide(&req), set, req))
}

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Allowed => "allowed",
        Decision::ExplicitDeny => "explicitDeny",
        Decision::ImplicitDeny => "implicitDeny",
    }
}

#[test]
fn engine_agrees_with_the_independent_evaluator_on_random_cases() {
    let mut generator = Generator {
        rng: Rng::new(0x6b61_7270_656e_7465),
        operators: BTreeMap::new(),
    };
    let cases: Vec<Value> = (0..CASES).map(|i| generator.case(i)).collect();
    let answers = common::oracle::evaluate(&cases);

    let mut compared = 0;
    let mut rejected: BTreeMap<String, usize> = BTreeMap::new();
    let mut mix: BTreeMap<&str, usize> = BTreeMap::new();
    let mut features: BTreeMap<&str, usize> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for (case, answer) in cases.iter().zip(&answers) {
        assert_eq!(case["id"], answer["id"]);
        let ours = decide(case);
        match (&ours, answer.get("decision").and_then(Value::as_str)) {
            (Ok((d, set, req)), Some(theirs)) => {
                compared += 1;
                *mix.entry(decision_name(*d)).or_default() += 1;
                let present = [
                    ("boundary", set.boundary.is_some()),
                    ("scps", set.scps.is_some()),
                    ("resourcePolicy", set.resource.is_some()),
                    (
                        "kmsKeyPolicy",
                        set.resource.is_some() && req.action.starts_with("kms:"),
                    ),
                    ("crossAccount", req.is_cross_account()),
                    (
                        "assumedRoleSession",
                        req.principal.contains(":assumed-role/"),
                    ),
                ];
                for (name, on) in present {
                    *features.entry(name).or_default() += usize::from(on);
                }
                if decision_name(*d) != theirs {
                    let e = set.explain(req);
                    disagreements.push(format!(
                        "{case}\n  ours: {} ({:?})\n  oracle: {theirs}",
                        decision_name(*d),
                        e.denial.map(|d| d.summary)
                    ));
                }
            }
            (Err(e), Some(theirs)) => disagreements.push(format!(
                "{case}\n  ours: parse error {e}\n  oracle: {theirs}"
            )),
            (_, None) => {
                let why = answer["error"].as_str().unwrap_or("?");
                let why: String = why.chars().take(60).collect();
                *rejected.entry(why).or_default() += 1;
            }
        }
    }
    println!(
        "differential: {compared} cases compared, {} disagreements",
        disagreements.len()
    );
    println!("decision mix: {mix:?}");
    println!("cases with: {features:?}");
    println!(
        "operators used: {} distinct: {:?}",
        generator.operators.len(),
        generator.operators
    );
    println!("cases the oracle would not take: {rejected:?}");
    for d in disagreements.iter().take(15) {
        println!("DISAGREEMENT {d}\n");
    }
    assert!(compared >= 10_000, "only {compared} cases compared");
    assert!(
        disagreements.is_empty(),
        "{} disagreements",
        disagreements.len()
    );
}

/// The requests Karpenter's controller makes, as IAM sees them, for a policy of `partition`:
/// (action, resource, context). The PassRole ones carry each `iam:PassedToService` value. Not
/// here: ssm:GetParameter on public parameters (`arn:…:ssm:<region>::parameter/aws/service/…`,
/// no account), whose ARN the oracle does not recognise as a resource type.
fn karpenter_requests(partition: &str, node_role: &str) -> Vec<(&'static str, String, Value)> {
    use common::real::ACCOUNT;
    let region = if partition == "aws-cn" {
        "cn-northwest-1"
    } else {
        "us-east-1"
    };
    let ec2 = format!("arn:{partition}:ec2:{region}");
    let owned = json!({"aws:RequestedRegion": [region],
        "aws:RequestTag/kubernetes.io/cluster/demo": ["owned"],
        "aws:RequestTag/karpenter.sh/nodepool": ["default"],
        "aws:RequestTag/eks:eks-cluster-name": ["demo"],
        "aws:TagKeys": ["kubernetes.io/cluster/demo", "karpenter.sh/nodepool", "eks:eks-cluster-name"]});
    let tagged = json!({"aws:RequestedRegion": [region],
        "aws:ResourceTag/kubernetes.io/cluster/demo": ["owned"],
        "aws:ResourceTag/karpenter.sh/nodepool": ["default"]});
    let profile =
        format!("arn:{partition}:iam::{ACCOUNT}:instance-profile/demo_14529573185526392175");
    let profile_tags = json!({"aws:ResourceTag/kubernetes.io/cluster/demo": ["owned"],
        "aws:ResourceTag/topology.kubernetes.io/region": [region],
        "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": ["default"]});
    let region_only = json!({"aws:RequestedRegion": [region]});
    let with = |base: &Value, key: &str, value: &str| {
        let mut v = base.clone();
        v[key] = json!([value]);
        v
    };
    vec![
        (
            "iam:PassRole",
            node_role.into(),
            json!({"iam:PassedToService": ["ec2.amazonaws.com"]}),
        ),
        (
            "iam:PassRole",
            node_role.into(),
            json!({"iam:PassedToService": ["ec2.amazonaws.com.cn"]}),
        ),
        (
            "ec2:CreateFleet",
            format!("{ec2}:{ACCOUNT}:fleet/fleet-0123"),
            owned.clone(),
        ),
        (
            "ec2:CreateFleet",
            format!("{ec2}::image/ami-0123"),
            region_only.clone(),
        ),
        (
            "ec2:CreateFleet",
            format!("{ec2}:{ACCOUNT}:launch-template/lt-0123"),
            tagged.clone(),
        ),
        (
            "ec2:RunInstances",
            format!("{ec2}:{ACCOUNT}:instance/i-0123"),
            owned.clone(),
        ),
        (
            "ec2:CreateLaunchTemplate",
            format!("{ec2}:{ACCOUNT}:launch-template/lt-0123"),
            owned.clone(),
        ),
        (
            "ec2:CreateTags",
            format!("{ec2}:{ACCOUNT}:fleet/fleet-0123"),
            with(&owned, "ec2:CreateAction", "CreateFleet"),
        ),
        (
            "ec2:TerminateInstances",
            format!("{ec2}:{ACCOUNT}:instance/i-0123"),
            tagged,
        ),
        ("ec2:DescribeInstances", "*".into(), region_only.clone()),
        (
            "iam:AddRoleToInstanceProfile",
            profile.clone(),
            profile_tags.clone(),
        ),
        ("iam:GetInstanceProfile", profile, profile_tags),
        (
            "eks:DescribeCluster",
            format!("arn:{partition}:eks:{region}:{ACCOUNT}:cluster/demo"),
            region_only,
        ),
    ]
}

#[test]
fn engine_agrees_with_the_independent_evaluator_on_the_real_policies() {
    use common::real::{ACCOUNT, node_role, policies};
    let mut cases = Vec::new();
    for (file, partition, doc) in policies() {
        let role = node_role(&doc, partition);
        let principal = format!(
            "arn:{partition}:sts::{ACCOUNT}:assumed-role/KarpenterController-demo/1717236000"
        );
        for (i, (action, resource, context)) in
            karpenter_requests(partition, &role).into_iter().enumerate()
        {
            cases.push(
                json!({"id": format!("{file}#{i}"), "principal": principal, "action": action,
                "resource": resource, "context": context, "identityPolicies": [doc],
                "boundary": null, "scps": null, "resourcePolicy": null}),
            );
        }
    }
    let answers = common::oracle::evaluate(&cases);
    let mut mix: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rejected = Vec::new();
    let mut disagreements = Vec::new();
    for (case, answer) in cases.iter().zip(&answers) {
        let (ours, _, _) = decide(case).unwrap_or_else(|e| panic!("{}: {e}", case["id"]));
        match answer.get("decision").and_then(Value::as_str) {
            Some(theirs) if theirs == decision_name(ours) => {
                *mix.entry(decision_name(ours)).or_default() += 1
            }
            Some(theirs) => disagreements.push(format!(
                "{} {} {}: ours {}, oracle {theirs}",
                case["id"],
                case["action"],
                case["context"],
                decision_name(ours)
            )),
            None => rejected.push(format!("{}: {}", case["id"], answer["error"])),
        }
    }
    println!(
        "real policies: {} requests, agreed {mix:?}, rejected by the oracle {}",
        cases.len(),
        rejected.len()
    );
    for r in &rejected {
        println!("REJECTED {r}");
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(
        rejected.len() * 20 <= cases.len(),
        "the oracle took too few cases: {rejected:#?}"
    );
    // Both answers occur: the real policies deny some of these (China's PassRole).
    assert!(
        mix.get("allowed") > Some(&0) && mix.get("implicitDeny") > Some(&0),
        "{mix:?}"
    );
}
