//! The Kubernetes resources the controller reads and writes, by group, version and plural:
//! Karpenter's NodeClaims, NodePools and EC2NodeClasses, and the doctor's own Diagnoses.

use kube::api::ApiResource;
use kube::core::GroupVersionKind;

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn node_claims() -> ApiResource {
    resource("karpenter.sh", "v1", "NodeClaim", "nodeclaims")
}

pub fn node_pools() -> ApiResource {
    resource("karpenter.sh", "v1", "NodePool", "nodepools")
}

pub fn node_classes() -> ApiResource {
    resource("karpenter.k8s.aws", "v1", "EC2NodeClass", "ec2nodeclasses")
}

pub fn diagnoses() -> ApiResource {
    let version = crate::diagnose::model::API_VERSION
        .rsplit('/')
        .next()
        .unwrap_or("v1alpha1");
    resource(
        super::crd::GROUP,
        version,
        crate::diagnose::model::KIND,
        super::crd::PLURAL,
    )
}
