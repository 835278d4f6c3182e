//! A real API server set up as a Karpenter cluster with the doctor installed: Karpenter's v1
//! CRDs, the doctor's rendered manifests, and (seed 1) Karpenter's pod whose log the test feeds.

use super::kubeapi::KubeApi;
use super::live::{ACCOUNT, CONTROLLER, seed_china};
use super::moto::Moto;
use serde_json::json;

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
    kube.apply(
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "karpenter-7d9f", "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "karpenter"}},
            "spec": {"nodeName": node, "serviceAccountName": "karpenter",
                "containers": [{"name": "controller", "image": "public.ecr.aws/karpenter/controller:1.15.2"}]}})
        .to_string(),
    );
    Some((kube, moto))
}
