//! Every shipped recognition rule against its golden examples, end to end: each example goes
//! in the input its source reads (log line, condition, Event, state reason) and is scanned.

use karpenter_doctor::signal::{Observations, RuleError, Scanner, Signal};
use serde_json::{Value, json};

const RULES: &str = include_str!("../rules/signals.json");

/// The input a source's text arrives in.
fn wrap(source: &str, text: &str) -> String {
    let condition = |kind: &str, api: &str| {
        json!({"apiVersion": api, "kind": kind, "metadata": {"name": "example"},
               "status": {"conditions": [{"type": "Launched", "status": "False",
                                          "reason": "Example", "message": text,
                                          "lastTransitionTime": "2024-06-01T10:00:00Z"}]}})
    };
    let value = match source {
        "log" => json!({"level": "ERROR", "time": "2024-06-01T10:00:00.000Z",
                        "logger": "controller", "message": "Reconciler error", "error": text}),
        "nodeClaim" => condition("NodeClaim", "karpenter.sh/v1"),
        "nodeClass" => condition("EC2NodeClass", "karpenter.k8s.aws/v1"),
        "event" => json!({"apiVersion": "v1", "kind": "Event", "reason": "FailedLaunch",
                          "involvedObject": {"kind": "NodeClaim", "name": "example"},
                          "message": text}),
        "instance" => json!({"Reservations": [{"Instances": [
                                {"InstanceId": "i-0123456789abcdef0",
                                 "StateReason": {"Code": "Example", "Message": text}}]}]}),
        other => panic!("unknown source {other}"),
    };
    // Log lines are one line each; documents are printed the way kubectl prints them.
    if source == "log" {
        value.to_string()
    } else {
        serde_json::to_string_pretty(&value).unwrap()
    }
}

fn field(s: &Signal, name: &str) -> Value {
    let v = match name {
        "category" => return json!(format!("{:?}", s.category)),
        "errorCode" => s.error_code.clone(),
        "layer" => s.layer.map(|l| format!("{l:?}")),
        "principal" => s.principal.clone(),
        "action" => s.action.clone(),
        "resource" => s.resource.clone(),
        "encodedMessage" => s.encoded_message.clone(),
        "kmsKey" => s.kms_key.clone(),
        other => panic!("unknown expected field {other}"),
    };
    v.map_or(Value::Null, Value::String)
}

const FIELDS: [&str; 8] = [
    "category",
    "errorCode",
    "layer",
    "principal",
    "action",
    "resource",
    "encodedMessage",
    "kmsKey",
];

#[test]
fn every_shipped_rule_recognises_its_examples_through_its_input() {
    let rules: Value = serde_json::from_str(RULES).unwrap();
    let scanner = Scanner::new().unwrap_or_else(|e| panic!("shipped rules: {e}"));
    let mut checked = 0;
    for rule in rules["rules"].as_array().unwrap() {
        let id = rule["id"].as_str().unwrap();
        let examples = rule["examples"].as_array().unwrap();
        assert!(!examples.is_empty(), "rule {id} has no example");
        for (i, example) in examples.iter().enumerate() {
            let source = example["source"]
                .as_str()
                .unwrap_or_else(|| rule["sources"][0].as_str().unwrap());
            let text = example["text"].as_str().unwrap();
            let mut out = Observations::default();
            scanner
                .scan(
                    "example",
                    wrap(source, text).as_bytes(),
                    &mut out,
                    &mut |_| {},
                )
                .unwrap();
            let at = format!("rule {id}, example {}", i + 1);
            assert!(out.warnings.is_empty(), "{at}: {:?}", out.warnings);
            let expected = example["expect"].as_array().unwrap();
            assert_eq!(out.signals.len(), expected.len(), "{at}: {:?}", out.signals);
            for (signal, expect) in out.signals.iter().zip(expected) {
                assert_eq!(signal.rule, id, "{at}");
                for name in FIELDS {
                    let want = expect.get(name).cloned().unwrap_or(Value::Null);
                    assert_eq!(field(signal, name), want, "{at}: field {name}");
                }
                assert_eq!(
                    format!("{:?}", signal.source).to_lowercase(),
                    source.to_lowercase()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} examples");
}

#[test]
fn the_shipped_rules_cover_the_required_failures() {
    let rules: Value = serde_json::from_str(RULES).unwrap();
    let ids: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [
        "aws-not-authorized",
        "ec2-unauthorized-operation",
        "spot-slr-not-permitted",
        "kms-key-invalid-state",
        "nodeclass-auth-check-failed",
        "nodeclaim-unauthorized",
        "nodeclaim-spot-slr-failed",
    ] {
        assert!(ids.contains(&id), "missing rule {id}");
    }
    // Every layer phrase of the denial sentence has a golden example somewhere.
    for layer in [
        "NoIdentityPolicy",
        "IdentityExplicitDeny",
        "ScpExplicitDeny",
        "NoScp",
        "NoBoundary",
        "BoundaryExplicitDeny",
        "NoSessionPolicy",
        "ResourceExplicitDeny",
    ] {
        assert!(
            RULES.contains(&format!("\"layer\": \"{layer}\"")),
            "no example for layer {layer}"
        );
    }
}

#[test]
fn a_bad_rules_file_fails_at_load_naming_the_rule() {
    let mut rules: Value = serde_json::from_str(RULES).unwrap();
    rules["rules"][2]["pattern"] = json!("(?P<code>unclosed");
    let e = Scanner::with_rules(&rules.to_string()).unwrap_err();
    let id = rules["rules"][2]["id"].as_str().unwrap();
    assert!(
        matches!(&e, RuleError::Rule { rule, .. } if rule == id),
        "{e}"
    );

    let mut rules: Value = serde_json::from_str(RULES).unwrap();
    rules["rules"][0]["examples"][1]["expect"][0]["action"] = json!("iam:GetRole");
    let e = Scanner::with_rules(&rules.to_string()).unwrap_err();
    assert_eq!(
        e.to_string().split(':').next().unwrap(),
        "rule aws-not-authorized, example 2"
    );

    assert!(matches!(
        Scanner::with_rules("{not json"),
        Err(RuleError::File(_))
    ));
}
