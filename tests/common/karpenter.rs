//! A real API server set up as a Karpenter cluster with the doctor installed: Karpenter's v1
//! CRDs, the doctor's rendered manifests; the seed-1 story (Karpenter's pod whose log the test
//! feeds) and the seed-2 story (a lost NodeClaim on v1beta1 CRDs, its key pending deletion).

use super::double::{Double, kms_ec2};
use super::kubeapi::KubeApi;
use super::live::{
    ACCOUNT, CONTROLLER, NODE_ROLE, ROOT, pending_deletion_key, scratch, seed_china,
    seed2_node_class,
};
use super::moto::Moto;
use serde_json::{Value, json};

pub const CRDS: [&str; 3] = [
    "tests/fixtures/kube/crds/karpenter.sh_nodeclaims.yaml",
    "tests/fixtures/kube/crds/karpenter.sh_nodepools.yaml",
    "tests/fixtures/kube/crds/karpenter.k8s.aws_ec2nodeclasses.yaml",
];
/// The doctor's ServiceAccount, as the chart names it (manifests/karpenter-doctor.yaml).
pub const DOCTOR_NS: &str = "karpenter-doctor";
pub const DOCTOR_SA: &str = "karpenter-doctor";
pub const DOCTOR_USER: &str = "system:serviceaccount:karpenter-doctor:karpenter-doctor";

/// A cluster with Karpenter's CRDs and the doctor's manifests (CRD, namespace, RBAC,
/// ServiceAccount, Deployment, … as `kubectl apply -f manifests/karpenter-doctor.yaml`).
pub fn cluster(name: &str) -> Option<KubeApi> {
    let kube = KubeApi::start(name)?;
    for crd in CRDS {
        kube.apply_file(crd);
    }
    kube.apply_file("manifests/karpenter-doctor.yaml");
    Some(kube)
}

/// A cluster holding the seed-1 story: moto with the aws-cn IAM of seed 1, Karpenter's
/// ServiceAccount (IRSA) and its running pod on the kubelet double's Node, whose log the test
/// feeds.
pub fn seed_1_cluster(name: &str) -> Option<(KubeApi, Moto)> {
    let mut kube = cluster(name)?;
    let moto = Moto::start(&format!("kubeapi-{name}"));
    seed_china(&moto);
    kube.start_kubelet("node-a");
    let node = kube.node().to_string();
    kube.apply(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "karpenter", "namespace": "kube-system",
            "annotations": {"eks.amazonaws.com/role-arn": format!("arn:aws-cn:iam::{ACCOUNT}:role/{CONTROLLER}")}}})
        .to_string(),
    );
    // Its Deployment as the chart makes it (one of two replicas ready, as kube-controller-manager
    // would say: it is not running here, so the status is applied as it would write it).
    kube.apply(
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "karpenter", "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "karpenter"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": "karpenter"}},
                    "spec": {"serviceAccountName": "karpenter",
                        "containers": [{"name": "controller", "image": "public.ecr.aws/karpenter/controller:1.15.2"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1}})
        .to_string(),
    );
    karpenter_pod(&kube, &node, json!([]));
    Some((kube, moto))
}

/// Karpenter's pod karpenter-7d9f in kube-system on `node`, its container's `env` as given.
pub fn karpenter_pod(kube: &KubeApi, node: &str, env: Value) {
    kube.apply(
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "karpenter-7d9f", "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "karpenter"}},
            "spec": {"nodeName": node, "serviceAccountName": "karpenter",
                "containers": [{"name": "controller", "image": "public.ecr.aws/karpenter/controller:1.15.2", "env": env}]}})
        .to_string(),
    );
}

/// An AMI's requirements as Karpenter v1 writes them in an EC2NodeClass's status.
pub fn ami_requirements() -> Value {
    json!([{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}])
}

/// Log times: a minute ago plus `second`.
pub fn at(second: u32) -> String {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| k8s_openapi::jiff::Timestamp::now().as_second() - 60);
    let t = k8s_openapi::jiff::Timestamp::from_second(base + i64::from(second)).unwrap();
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn log_line(time: &str, claim: &str) -> String {
    let error = format!(
        "launching nodeclaim, creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws-cn:sts::{ACCOUNT}:assumed-role/{CONTROLLER}/1717236000 is not authorized to perform: iam:PassRole on resource: arn:aws-cn:iam::{ACCOUNT}:role/{NODE_ROLE} because no identity-based policy allows the iam:PassRole action."
    );
    json!({"level": "ERROR", "time": time, "logger": "controller",
        "message": "Reconciler error", "controller": "nodeclaim.lifecycle", "NodeClaim": {"name": claim}, "error": error})
    .to_string()
}

/// Karpenter's log lines at seconds `from..to` (one failure each, NodeClaim default-SSS).
pub fn feed(kube: &KubeApi, from: u32, to: u32) {
    for s in from..to {
        feed_at(kube, s, |time| log_line(time, &format!("default-{s:03}")));
    }
}

/// The line `line(time)` in Karpenter's log at `second`.
pub fn feed_at(kube: &KubeApi, second: u32, line: impl Fn(&str) -> String) {
    let time = at(second);
    kube.feed_log(
        "kube-system",
        "karpenter-7d9f",
        "controller",
        &time,
        &line(&time),
    );
}

pub fn v1beta1_crds() -> Vec<String> {
    let dir = format!("{ROOT}/tests/fixtures/kube/crds-v1.0.8");
    [
        "karpenter.sh_nodeclaims.yaml",
        "karpenter.sh_nodepools.yaml",
        "karpenter.k8s.aws_ec2nodeclasses.yaml",
    ]
    .iter()
    .map(|f| {
        let mut crd: Value =
            serde_norway::from_str(&std::fs::read_to_string(format!("{dir}/{f}")).unwrap())
                .unwrap();
        let spec = crd["spec"].as_object_mut().unwrap();
        spec.remove("conversion");
        let versions = spec["versions"].as_array_mut().unwrap();
        versions.retain(|v| v["name"] == "v1beta1");
        assert_eq!(versions.len(), 1, "{f}: a v1beta1 version");
        versions[0]["storage"] = json!(true);
        crd.to_string()
    })
    .collect()
}

/// The seed-2 story on v1beta1 CRDs (only: Karpenter 0.3x), as its objects are: a NodeClaim lost
/// right after launch, its EC2NodeClass, the Event of its termination; moto holds the key, pending
/// deletion, and the double in front of it the dead instance (DescribeInstances) and its AMI.
pub fn kms_cluster(name: &str) -> Option<(KubeApi, Moto, Double, String)> {
    let kube = KubeApi::start(name)?;
    for crd in v1beta1_crds() {
        kube.apply(&crd);
    }
    kube.apply_file("manifests/karpenter-doctor.yaml");
    let (code, body) = kube.get("/apis/karpenter.sh").unwrap();
    assert_eq!(code, 200, "{body}");
    let group: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        group["versions"].as_array().unwrap().len(),
        1,
        "only v1beta1: {group:#}"
    );
    let moto = Moto::start(&format!("kubeapi-{name}"));
    let key = pending_deletion_key(&moto, "us-east-1");
    let served = key.clone();
    let double = Double::start(&moto.endpoint, move |call| kms_ec2(call, &served));
    kube.apply(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "karpenter", "namespace": "kube-system",
            "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/KarpenterController-demo"}}})
        .to_string(),
    );
    let dir = scratch(&format!("kubeapi-{name}"));
    // The seed-2 objects as Karpenter 0.3x writes them, under its v1beta1 schemas (strict: a
    // field v1beta1 does not have is an error): the NodeClaim right after launch (Launched
    // only), its nodeClassRef by apiVersion (v1: by group); the EC2NodeClass with the
    // amiFamily v1beta1 requires (v1: an alias), its AMIs' requirements.
    let cmk = format!("{ROOT}/examples/cross-account-cmk");
    let claims: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{cmk}/nodeclaims.json")).unwrap())
            .unwrap();
    let mut claim = claims["items"][0].clone();
    claim["apiVersion"] = json!("karpenter.sh/v1beta1");
    claim["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("creationTimestamp");
    claim["spec"].as_object_mut().unwrap().remove("expireAfter");
    claim["spec"]["nodeClassRef"] = json!({"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass", "name": "encrypted"});
    claim["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["type"] == "Launched");
    let stored = kube.apply(&claim.to_string()).remove(0);
    assert_eq!(
        stored["status"]["providerID"], claim["status"]["providerID"],
        "the status went through its subresource: {stored:#}"
    );
    let mut class: Value =
        serde_norway::from_str(&std::fs::read_to_string(seed2_node_class(&dir, None)).unwrap())
            .unwrap();
    class["apiVersion"] = json!("karpenter.k8s.aws/v1beta1");
    class["spec"]["amiFamily"] = json!("AL2023");
    class["spec"]["amiSelectorTerms"] = json!([{"id": "ami-0a1b2c3d4e5f60718"}]);
    class["status"]["amis"][0]["requirements"] = ami_requirements();
    kube.apply(&class.to_string());
    kube.apply(
        // As Karpenter's recorder (client-go's, core/v1) writes it: no eventTime, no instance.
        &json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "encrypted-7k2lp.17d", "namespace": "default"},
            "involvedObject": {"apiVersion": "karpenter.sh/v1beta1", "kind": "NodeClaim", "name": "encrypted-7k2lp"},
            "reason": "InstanceTerminating", "message": "Instance is terminating", "source": {"component": "karpenter"},
            "firstTimestamp": "2024-06-01T10:00:40Z", "lastTimestamp": "2024-06-01T10:00:40Z", "count": 1,
            "type": "Normal", "eventTime": null, "reportingComponent": "karpenter", "reportingInstance": ""})
        .to_string(),
    );
    Some((kube, moto, double, key))
}

/// A healthy NodeClaim `default-NNNNN` as Karpenter 1.x writes it (the benchmarks' thousands).
pub fn healthy_node_claim(i: usize) -> kube::api::DynamicObject {
    let conditions: Vec<_> = ["Launched", "Registered", "Initialized", "Ready"]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "reason": t, "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": format!("default-{i:05}"), "labels": {"karpenter.sh/nodepool": "default"}},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]},
        "status": {"providerID": format!("aws:///cn-northwest-1a/i-{i:017x}"), "imageID": "ami-0123456789abcdef0",
            "nodeName": format!("ip-10-0-{}-{}.cn-northwest-1.compute.internal", i / 250, i % 250),
            "conditions": conditions}
    }))
    .unwrap()
}

/// Creates `n` healthy NodeClaims (`healthy_node_claim`), 16 requests at a time.
pub fn create_healthy_node_claims(kube: &KubeApi, n: usize) {
    use futures_util::StreamExt;
    use kube::api::{Api, DynamicObject, PostParams};
    super::live::runtime().block_on(async {
        let api: Api<DynamicObject> = Api::all_with(
            kube.client().await,
            &karpenter_doctor::cluster::resources::node_claims("v1"),
        );
        let mut pending = futures_util::stream::iter((0..n).map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &healthy_node_claim(i))
                    .await
                    .unwrap()
            }
        }))
        .buffer_unordered(16);
        while pending.next().await.is_some() {}
    });
}

/// Karpenter's `Nominated` Event on a pod, as Karpenter v1.15.0 recorded it in
/// tests/fixtures/karpenter/v1.15.0/passrole-fleet/events.json (client-go's recorder: core/v1,
/// `source.component` and `reportingComponent` karpenter), for `pod` in `ns` and `claim`.
pub fn nominated(ns: &str, pod: &str, uid: &str, claim: &str, reporter: &str) -> Value {
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/tests/fixtures/karpenter/v1.15.0/passrole-fleet/events.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut e = recorded["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "Nominated")
        .expect("Karpenter v1.15.0 nominated the pod")
        .clone();
    e["metadata"] = json!({"name": format!("{pod}.nominated"), "namespace": ns});
    e["involvedObject"] =
        json!({"kind": "Pod", "namespace": ns, "name": pod, "uid": uid, "apiVersion": "v1"});
    e["message"] = json!(format!("Pod should schedule on: nodeclaim/{claim}"));
    e["source"] = json!({"component": reporter});
    e["reportingComponent"] = json!(reporter);
    e
}
