//! The `Diagnosis` CRD: generated from the Rust types, kept in sync under `manifests/`,
//! structural as Kubernetes requires, and describing every object `explain` writes.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_karpenter-doctor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn printed() -> String {
    let out = Command::new(BIN).arg("crd").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn schema() -> Value {
    let crd: Value = serde_norway::from_str(&printed()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn the_manifest_copy_is_what_the_binary_prints() {
    let kept = std::fs::read_to_string(format!("{ROOT}/manifests/crd.yaml")).unwrap();
    assert!(
        kept == printed(),
        "manifests/crd.yaml is out of date: run `make crd`"
    );
}

#[test]
fn the_crd_has_the_contract_names_and_columns() {
    let crd: CustomResourceDefinition = serde_norway::from_str(&printed()).unwrap();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("diagnoses.karpenter-doctor.io")
    );
    let spec = &crd.spec;
    assert_eq!(
        (spec.group.as_str(), spec.scope.as_str()),
        ("karpenter-doctor.io", "Cluster")
    );
    assert_eq!(spec.names.kind, "Diagnosis");
    assert_eq!(spec.names.plural, "diagnoses");
    assert_eq!(
        spec.names.short_names.as_deref(),
        Some(&["diag".to_string()][..])
    );
    assert_eq!(
        spec.names.categories.as_deref(),
        Some(&["karpenter".to_string()][..])
    );
    let version = &spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(version.served && version.storage);
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<(&str, i32)> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.priority.unwrap_or(0)))
        .collect();
    assert_eq!(
        columns,
        [
            ("Category", 0),
            ("Reason", 0),
            ("Confidence", 0),
            ("Resolved", 0),
            ("Occurrences", 0),
            ("Age", 0),
            ("Principal", 1),
            ("Resource", 1)
        ]
    );
}

/// The keys a Kubernetes JSONSchemaProps may hold that this schema uses.
const ALLOWED: [&str; 9] = [
    "description",
    "type",
    "format",
    "properties",
    "items",
    "required",
    "enum",
    "nullable",
    "additionalProperties",
];

/// Structural schema rules (Kubernetes CRD docs): every node has a type, no `$ref`, `const`,
/// `oneOf`/`anyOf` or unknown keywords, and every node is described for `kubectl explain`.
fn check_structural(path: &str, node: &Value, problems: &mut Vec<String>) {
    let map = node.as_object().unwrap();
    for key in map.keys() {
        if !ALLOWED.contains(&key.as_str()) {
            problems.push(format!("{path}: keyword {key}"));
        }
    }
    let Some(ty) = map.get("type").and_then(Value::as_str) else {
        problems.push(format!("{path}: no type"));
        return;
    };
    if path != "metadata" && !path.ends_with("[]") && !map.contains_key("description") {
        problems.push(format!("{path}: no description"));
    }
    match ty {
        "object" => {
            for (name, child) in map
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                check_structural(&format!("{path}.{name}"), child, problems);
            }
        }
        "array" => check_structural(&format!("{path}[]"), &map["items"], problems),
        "string" | "integer" | "boolean" => {}
        other => problems.push(format!("{path}: type {other}")),
    }
}

#[test]
fn the_schema_is_structural_and_described() {
    let s = schema();
    let mut problems = Vec::new();
    for part in ["spec", "status"] {
        check_structural(part, &s["properties"][part], &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let reasons =
        &s["properties"]["status"]["properties"]["rootCause"]["properties"]["reason"]["enum"];
    let mut reasons: Vec<&str> = reasons
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 23, "every reason code of contract §5");
    // Against the contract itself, where this checkout has it beside it.
    let contract =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/docs/contract.md");
    if let Ok(text) = std::fs::read_to_string(&contract) {
        let section = &text[text.find("Root-cause reasons").unwrap()..];
        let section = &section[..section.find("## 6").unwrap()];
        let mut named: Vec<&str> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| {
                l.split('|')
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .map(|c| c.trim().trim_matches('`'))
            })
            .collect();
        named.sort();
        assert_eq!(reasons, named, "the CRD's reason codes are contract §5's");
    }
    assert_eq!(
        s["properties"]["spec"]["properties"]["category"]["enum"],
        serde_json::json!([
            "PassRoleDenied",
            "ActionDenied",
            "KmsKeyUnusable",
            "CredentialsDenied"
        ])
    );
}

/// Whether `value` fits `schema` (types, properties, required, enums); problems by path.
fn check_value(path: &str, schema: &Value, value: &Value, problems: &mut Vec<String>) {
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        problems.push(format!("{path}: {value} not in {allowed:?}"));
    }
    match (schema["type"].as_str(), value) {
        (Some("object"), Value::Object(map)) => {
            let props = schema["properties"].as_object().unwrap();
            for (k, v) in map {
                match props.get(k) {
                    Some(s) => check_value(&format!("{path}.{k}"), s, v, problems),
                    None => problems.push(format!("{path}.{k}: not in the schema")),
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                if !map.contains_key(r.as_str().unwrap()) {
                    problems.push(format!("{path}.{r}: required but absent"));
                }
            }
        }
        (Some("array"), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_value(&format!("{path}[{i}]"), &schema["items"], item, problems);
            }
        }
        (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => {}
        (Some("integer"), Value::Number(n)) if n.is_u64() || n.is_i64() => {}
        (ty, v) => problems.push(format!("{path}: {v} is not a {ty:?}")),
    }
}

#[test]
fn every_diagnosis_explain_writes_fits_the_schema() {
    let s = schema();
    let mut checked = 0;
    for entry in std::fs::read_dir(format!("{ROOT}/tests/fixtures/explain")).unwrap() {
        let golden = entry.unwrap().path().join("expected-output.json");
        let Ok(text) = std::fs::read_to_string(&golden) else {
            continue;
        };
        let list: Value = serde_json::from_str(&text).unwrap();
        for item in list["items"].as_array().unwrap() {
            let mut problems = Vec::new();
            for part in ["spec", "status"] {
                check_value(part, &s["properties"][part], &item[part], &mut problems);
            }
            assert!(problems.is_empty(), "{}: {problems:#?}", golden.display());
            checked += 1;
        }
    }
    assert!(checked >= 29, "only {checked} diagnoses checked");
    // The check itself can fail: a reason code the contract does not know.
    let mut bogus = serde_json::json!({"reason": "Bogus", "confidence": "Confirmed", "summary": "", "evidence": []});
    let mut problems = Vec::new();
    check_value(
        "rootCause",
        &s["properties"]["status"]["properties"]["rootCause"],
        &bogus,
        &mut problems,
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    bogus["reason"] = serde_json::json!("KeyDisabled");
    problems.clear();
    check_value(
        "rootCause",
        &s["properties"]["status"]["properties"]["rootCause"],
        &bogus,
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:?}");
}
