use kube::api::DynamicObject;
use serde_json::json;
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}
fn node_claim(i: usize) -> String {
    let conditions: Vec<_> = ["Launched", "Registered", "Initialized", "Ready"]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "reason": t, "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}))
        .collect();
    json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": format!("default-{i:05}"), "labels": {"karpenter.sh/nodepool": "default"}, "uid": "7f3c0b8e-1a2b-4c5d-9e8f-0123456789ab", "resourceVersion": "123456", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]},
        "status": {"providerID": format!("aws:///cn-northwest-1a/i-{i:017x}"), "imageID": "ami-0123456789abcdef0",
            "nodeName": format!("ip-10-0-{}-{}.cn-northwest-1.compute.internal", i / 250, i % 250),
            "conditions": conditions}
    }).to_string()
}
#[test]
fn mem() {
    let texts: Vec<String> = (0..5000).map(node_claim).collect();
    let total: usize = texts.iter().map(|t| t.len()).sum();
    let a = rss();
    let objs: Vec<DynamicObject> = texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let b = rss();
    eprintln!(
        "json {} KiB; 5000 DynamicObject: {} KiB",
        total / 1024,
        b - a
    );
    let arcs: Vec<std::sync::Arc<DynamicObject>> =
        objs.iter().cloned().map(std::sync::Arc::new).collect();
    let c = rss();
    eprintln!("clone into arcs {} KiB", c - b);
    let mut n = 0;
    for o in &arcs {
        n += serde_json::to_vec(&**o).unwrap().len();
    }
    let t = std::time::Instant::now();
    for o in &arcs {
        n += serde_json::to_vec(&**o).unwrap().len();
    }
    eprintln!("serialize all: {:?} ({n})", t.elapsed());
}
