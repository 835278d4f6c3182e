//! The Karpenter controller policies people really deploy, rendered from their sources
//! (tests/fixtures/policies/README.md, real/README-*.md): listed once for every test that reads them.

use serde_json::Value;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const ACCOUNT: &str = "111122223333";

/// Every rendered controller policy: (file name, partition, document).
pub fn policies() -> Vec<(String, &'static str, Value)> {
    let mut out = Vec::new();
    for dir in ["tests/fixtures/policies", "tests/fixtures/policies/real"] {
        let Ok(entries) = std::fs::read_dir(format!("{ROOT}/{dir}")) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        for name in names {
            let controller = name.starts_with("karpenter-controller.")
                || name.starts_with("tf-eks-")
                || dir.ends_with("real");
            if !controller {
                continue;
            }
            let partition = if name.contains(".aws-cn.") {
                "aws-cn"
            } else {
                "aws"
            };
            let text = std::fs::read_to_string(format!("{ROOT}/{dir}/{name}")).unwrap();
            out.push((name, partition, serde_json::from_str(&text).unwrap()));
        }
    }
    out
}

/// The node role the policy's PassRole statement names (a pattern's literal prefix works too).
pub fn node_role(doc: &Value, partition: &str) -> String {
    let statements = match &doc["Statement"] {
        Value::Array(s) => s.clone(),
        one => vec![one.clone()],
    };
    let names_pass_role = |s: &Value| {
        let actions = match &s["Action"] {
            Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        actions.iter().any(|a| a == "iam:PassRole")
    };
    let resource = statements
        .iter()
        .find(|s| names_pass_role(s))
        .map(|s| match &s["Resource"] {
            Value::Array(r) => r[0].as_str().unwrap_or("*").to_string(),
            one => one.as_str().unwrap_or("*").to_string(),
        })
        .unwrap_or_else(|| "*".into());
    if resource.contains(":role/") && !resource.contains('*') {
        resource
    } else {
        format!("arn:{partition}:iam::{ACCOUNT}:role/KarpenterNodeRole-demo")
    }
}
