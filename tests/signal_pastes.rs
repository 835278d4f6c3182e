//! Real pastes (tests/fixtures/pastes, sources in its README) through the pipeline `explain`
//! runs offline (scanner, diagnosis, the `-o json` List): each gives exactly the Diagnoses its
//! case names — category, action, principal, resource, error code, reason (the policy layer)
//! and the policy AWS names — and every negative gives none.

use karpenter_doctor::diagnose::{self, model::List};
use karpenter_doctor::facts::SnapshotFacts;
use karpenter_doctor::signal::{Observations, Scanner};
use serde_json::{Map, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `explain FILE -o json` without facts, in process.
fn explain(scanner: &Scanner, path: &str) -> Value {
    let mut obs = Observations::default();
    let file = std::fs::File::open(path).unwrap();
    scanner.scan(path, file, &mut obs, &mut |_| {}).unwrap();
    let items = diagnose::diagnose(&obs, &SnapshotFacts::default(), None);
    serde_json::to_value(List::new(items)).unwrap()
}

/// What a case compares of one Diagnosis.
fn projection(item: &Value) -> Value {
    let mut out = Map::new();
    out.insert("category".into(), item["spec"]["category"].clone());
    for key in ["action", "principalArn", "resourceArn", "errorCode"] {
        if let Some(v) = item["spec"].get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    out.insert(
        "reason".into(),
        item["status"]["rootCause"]["reason"].clone(),
    );
    if let Some(policy) = item["status"]["rootCause"]["statement"].get("policy") {
        out.insert("statementPolicy".into(), policy.clone());
    }
    Value::Object(out)
}

#[test]
fn every_real_paste_gives_the_diagnoses_its_case_names() {
    let dir = format!("{ROOT}/tests/fixtures/pastes");
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/cases.json")).unwrap())
            .unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "the corpus shrank: {}", cases.len());
    let scanner = Scanner::new().unwrap();
    let mut failures = Vec::new();
    let (mut positives, mut negatives) = (0, 0);
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let list = explain(&scanner, &format!("{dir}/{file}"));
        let got: Vec<Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(projection)
            .collect();
        let want = case["expect"].as_array().unwrap();
        if want.is_empty() {
            negatives += 1;
        } else {
            positives += 1;
        }
        if &got != want {
            failures.push(format!(
                "{file} ({}): want {want:?}\n    got {got:?}",
                case["shape"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Both sides of the corpus stay substantial.
    assert!(
        positives >= 80 && negatives >= 40,
        "{positives} positives, {negatives} negatives"
    );
}

#[test]
fn every_shape_of_the_issue_has_a_positive_paste() {
    let dir = format!("{ROOT}/tests/fixtures/pastes");
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/cases.json")).unwrap())
            .unwrap();
    for shape in [
        "pretty-printed JSON record",
        "cut short",
        "re-wrapped",
        "tool prefix",
        "tabs turned into spaces",
        "escapes left in text",
        "several errors on one line",
        "redactions",
        "AWS denial format",
        "EC2 with no action named",
        "KMS",
        "credentials",
        "Karpenter objects",
    ] {
        assert!(
            cases["cases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["shape"] == shape && !c["expect"].as_array().unwrap().is_empty()),
            "no positive paste of shape {shape}"
        );
    }
}
