//! The `Diagnosis` CustomResourceDefinition (contract §3), generated from the model's types so
//! the schema, its descriptions and the printer columns never drift from what is written.

use crate::diagnose::model::{API_VERSION, DiagnosisSpec, DiagnosisStatus, KIND};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

pub const GROUP: &str = "karpenter-doctor.io";
pub const PLURAL: &str = "diagnoses";

/// The CRD as a JSON value, keys in a fixed order.
pub fn definition() -> Value {
    let version = API_VERSION.rsplit('/').next().unwrap_or(API_VERSION);
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": format!("{KIND}List"),
                "plural": PLURAL,
                "singular": "diagnosis",
                "shortNames": ["diag"],
                "categories": ["karpenter"],
            },
            "scope": "Cluster",
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": printer_columns(),
                "schema": {"openAPIV3Schema": {
                    "description": "One root cause of Karpenter launch failures on AWS: what failed (spec), why, the evidence, and exactly what to change (status). One object per distinct root cause; repeated failures update it.",
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object.", "type": "string"},
                        "kind": {"description": "Kind is a string value representing the REST resource this object represents.", "type": "string"},
                        "metadata": {"type": "object"},
                        "spec": schema::<DiagnosisSpec>(),
                        "status": schema::<DiagnosisStatus>(),
                    },
                }},
            }],
        },
    })
}

/// The CRD as YAML, as `karpenter-doctor crd` prints it and `manifests/` keeps it.
pub fn yaml() -> String {
    serde_norway::to_string(&definition()).expect("a JSON value renders as YAML")
}

/// Columns of `kubectl get diagnoses` (Principal and Resource with `-o wide`).
fn printer_columns() -> Value {
    json!([
        {"name": "Category", "type": "string", "jsonPath": ".spec.category"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.rootCause.reason"},
        {"name": "Confidence", "type": "string", "jsonPath": ".status.rootCause.confidence"},
        {"name": "Resolved", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Resolved\")].status"},
        {"name": "Occurrences", "type": "integer", "jsonPath": ".status.occurrences"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Principal", "type": "string", "jsonPath": ".spec.principalArn", "priority": 1},
        {"name": "Resource", "type": "string", "jsonPath": ".spec.resourceArn", "priority": 1},
    ])
}

/// The OpenAPI v3 schema of `T`, inlined and reduced to what a structural Kubernetes schema
/// accepts.
fn schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut root = generator.into_root_schema_for::<T>().to_value();
    structural(&mut root);
    root
}

/// Rewrites what schemars emits into Kubernetes' structural subset: documented unit enums
/// (`oneOf` of `const`s) become string `enum`s; integer formats become `int64`; no `$schema`
/// or `definitions`; `title` becomes `description`, unwrapped.
fn structural(v: &mut Value) {
    let Value::Object(map) = v else {
        if let Value::Array(items) = v {
            items.iter_mut().for_each(structural);
        }
        return;
    };
    for key in ["$schema", "definitions", "$defs", "components"] {
        map.remove(key);
    }
    // A one-line doc comment may come out as `title`: Kubernetes shows `description`.
    if let Some(title) = map.remove("title") {
        map.entry("description").or_insert(title);
    }
    // Doc comments wrap at 100 columns; `kubectl explain` wraps by itself.
    if let Some(Value::String(d)) = map.get_mut("description") {
        *d = d
            .split("\n\n")
            .map(|para| para.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    if let Some(consts) = one_of_consts(map) {
        map.remove("oneOf");
        map.insert("type".into(), json!("string"));
        map.insert("enum".into(), Value::Array(consts));
    }
    if map.get("type") == Some(&json!("integer")) {
        map.insert("format".into(), json!("int64"));
        map.remove("minimum");
    }
    for (key, child) in map.iter_mut() {
        if key != "enum" {
            structural(child);
        }
    }
}

/// The values of a `oneOf` whose every branch is a `const` (or a one-value `enum`).
fn one_of_consts(map: &Map<String, Value>) -> Option<Vec<Value>> {
    let branches = map.get("oneOf")?.as_array()?;
    branches
        .iter()
        .map(|b| {
            b.get("const").cloned().or_else(|| {
                let e = b.get("enum")?.as_array()?;
                (e.len() == 1).then(|| e[0].clone())
            })
        })
        .collect()
}
