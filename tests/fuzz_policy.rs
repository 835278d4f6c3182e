//! Property-based fuzzing of the policy parser and evaluator: arbitrary bytes and policy-shaped
//! JSON never panic; whatever parses evaluates, and the fast path agrees with the explanation.
//! `make fuzz` raises the case count (PROPTEST_CASES); the normal suite runs a modest number.

use karpenter_doctor::policy::{Context, Decision, Policy, PolicySet, Request};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use std::cell::Cell;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// Strings that exercise the matchers: wildcards, variables, ARNs, unicode, junk.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("arn:aws:iam::111111111111:role/*".to_string()),
        Just("arn:aws-cn:iam::*:role/node".to_string()),
        Just("${aws:username}".to_string()),
        Just("${aws:PrincipalTag/x, 'd'}".to_string()),
        Just("${".to_string()),
        Just("10.0.0.0/8".to_string()),
        Just("2024-06-01T10:00:00Z".to_string()),
        Just("iam:PassRole".to_string()),
        Just("ec2:*".to_string()),
        "[a-z*?:/${}.0-9-]{0,24}",
        any::<String>(),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => text().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null)
    ]
}

/// Mostly what a policy holds (a string or a list of strings), sometimes junk.
fn one_or_many() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => text().prop_map(Value::from),
        3 => prop::collection::vec(text(), 1..4).prop_map(Value::from),
        1 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(Value::from),
        1 => Just(json!({}))
    ]
}

fn operator() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        Just("StringEquals"),
        Just("StringNotLike"),
        Just("ArnLike"),
        Just("NumericLessThan"),
        Just("DateGreaterThan"),
        Just("Bool"),
        Just("IpAddress"),
        Just("NotIpAddress"),
        Just("Null"),
        Just("BinaryEquals"),
        Just("Bogus"),
    ];
    (
        prop_oneof![
            Just(""),
            Just("ForAnyValue:"),
            Just("ForAllValues:"),
            Just("ForSome:")
        ],
        base,
        prop_oneof![Just(""), Just("IfExists")],
    )
        .prop_map(|(set, base, suffix)| format!("{set}{base}{suffix}"))
}

fn condition() -> impl Strategy<Value = Value> {
    prop::collection::vec((operator(), text(), one_or_many()), 0..3).prop_map(|items| {
        let mut block = serde_json::Map::new();
        for (op, key, values) in items {
            block
                .entry(op)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|m| m.insert(key, values));
        }
        Value::Object(block)
    })
}

fn statement() -> impl Strategy<Value = Value> {
    (
        prop_oneof![5 => Just(json!("Allow")), 4 => Just(json!("Deny")), 1 => scalar()],
        prop_oneof![Just("Action"), Just("NotAction")],
        one_or_many(),
        prop_oneof![6 => Just("Resource"), 3 => Just("NotResource"), 1 => Just("Sid")],
        one_or_many(),
        prop::option::weighted(
            0.2,
            prop_oneof![
                Just(json!("*")),
                Just(json!({"AWS": "111111111111"})),
                one_or_many().prop_map(|v| json!({"AWS": v}))
            ],
        ),
        prop::option::of(condition()),
    )
        .prop_map(
            |(effect, action_key, action, resource_key, resource, principal, condition)| {
                let mut st = json!({"Effect": effect, action_key: action, resource_key: resource});
                if let Some(p) = principal {
                    st["Principal"] = p;
                }
                if let Some(c) = condition {
                    st["Condition"] = c;
                }
                st
            },
        )
}

fn policy() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            5 => Just(json!("2012-10-17")),
            3 => Just(json!("2008-10-17")),
            1 => scalar()
        ],
        prop_oneof![
            2 => statement(),
            5 => prop::collection::vec(statement(), 0..4).prop_map(Value::from)
        ],
    )
        .prop_map(|(version, statement)| json!({"Version": version, "Statement": statement}))
}

fn request() -> impl Strategy<Value = Request> {
    (
        text(),
        text(),
        text(),
        prop::collection::vec((text(), text()), 0..4),
    )
        .prop_map(|(principal, action, resource, ctx)| {
            let mut context = Context::default();
            for (k, v) in ctx {
                context.insert(&k, v);
            }
            Request::new(&principal, &action, &resource).with_context(context)
        })
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

#[test]
fn arbitrary_bytes_never_panic_the_parser() {
    let parsed = Cell::new(0);
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
            parsed.set(
                parsed.get()
                    + usize::from(Policy::parse("fuzz", &String::from_utf8_lossy(&bytes)).is_ok()),
            );
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz_policy bytes: {} cases, {} parsed, 0 panics",
        cases(),
        parsed.get()
    );
}

#[test]
fn policy_shaped_json_parses_or_errors_and_evaluates_consistently() {
    let (parsed, rejected) = (Cell::new(0), Cell::new(0));
    let strategy = (
        policy(),
        prop::option::of(policy()),
        prop::option::of(policy()),
        request(),
    );
    runner()
        .run(&strategy, |(identity, boundary, resource, req)| {
            let parse = |v: &Value| Policy::from_value("fuzz", v);
            let Ok(identity) = parse(&identity) else {
                rejected.set(rejected.get() + 1);
                return Ok(());
            };
            parsed.set(parsed.get() + 1);
            let boundary = boundary.as_ref().and_then(|b| parse(b).ok());
            let resource = resource.as_ref().and_then(|r| parse(r).ok());
            let set = PolicySet {
                identity: vec![identity],
                boundary,
                scps: None,
                resource,
            };
            let decision = set.decide(&req);
            let explanation = set.explain(&req);
            prop_assert_eq!(decision, explanation.decision);
            prop_assert_eq!(explanation.denial.is_some(), decision != Decision::Allowed);
            serde_json::to_string(&explanation).expect("explanations serialize");
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz_policy json: {} cases, {} parsed and evaluated, {} rejected with an error, 0 panics",
        cases(),
        parsed.get(),
        rejected.get()
    );
}
