//! The Kubernetes resources the controller reads and writes, by group, version and plural:
//! Karpenter's NodeClaims, NodePools and EC2NodeClasses (v1 or v1beta1), and Diagnoses.

use kube::api::{Api, ApiResource, ListParams};
use kube::core::GroupVersionKind;

/// Objects a list asks for at once (as the controller's watches page their lists).
pub const PAGE: u32 = 500;

/// Every object `api` lists with `params`, page by page.
pub async fn list_all<K>(api: &Api<K>, params: ListParams) -> kube::Result<Vec<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut params = params.limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Karpenter's API groups: NodeClaims and NodePools; EC2NodeClasses.
pub const KARPENTER_GROUP: &str = "karpenter.sh";
pub const AWS_GROUP: &str = "karpenter.k8s.aws";

/// The version of a Karpenter group to watch, from those the cluster serves: v1 (Karpenter
/// 1.x), else v1beta1 (0.32 to 0.37); v1 when discovery shows neither (the watch then
/// reports what is missing).
pub fn karpenter_version<'a>(served: impl IntoIterator<Item = &'a str>) -> &'static str {
    let served: Vec<&str> = served.into_iter().collect();
    ["v1", "v1beta1"]
        .into_iter()
        .find(|v| served.contains(v))
        .unwrap_or("v1")
}

pub fn node_claims(version: &str) -> ApiResource {
    resource(KARPENTER_GROUP, version, "NodeClaim", "nodeclaims")
}

pub fn node_pools(version: &str) -> ApiResource {
    resource(KARPENTER_GROUP, version, "NodePool", "nodepools")
}

pub fn node_classes(version: &str) -> ApiResource {
    resource(AWS_GROUP, version, "EC2NodeClass", "ec2nodeclasses")
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

#[cfg(test)]
mod tests {
    use super::karpenter_version;

    #[test]
    fn v1_is_preferred_and_v1beta1_clusters_are_served() {
        assert_eq!(karpenter_version(["v1beta1", "v1"]), "v1");
        assert_eq!(karpenter_version(["v1beta1"]), "v1beta1");
        assert_eq!(karpenter_version(["v1alpha5"]), "v1");
        assert_eq!(karpenter_version([]), "v1");
    }
}
