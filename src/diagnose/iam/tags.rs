//! The caller's `aws:PrincipalTag/*` keys, where the facts show them whole: the role's tags as
//! the snapshot or GetRole lists them, plus the session tags its credential path adds. IRSA
//! (`AssumeRoleWithWebIdentity` with EKS's token, which has no `https://aws.amazon.com/tags`
//! claim) adds none; EKS Pod Identity adds six documented ones, which replace a role tag of the
//! same key, unless the association disables them (`disableSessionTags`, which the doctor does
//! not read): those six stay unknown, whatever their values would be. A tag key the role lacks
//! and the path cannot add is then a known absence, so a condition on it is decided. Where the
//! path is not known (no pod, or pods that differ), or the tags were not read, nothing is known
//! and every such key stays open.

use super::*;

/// Every principal tag's condition key begins so.
const PRINCIPAL_TAG: &str = "aws:PrincipalTag/";

/// EKS Pod Identity's session tags (EKS User Guide, "Tag EKS Pod Identity sessions").
const POD_IDENTITY_TAGS: [&str; 6] = [
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
];

/// The role's tags and the credential path (IRSA or Pod Identity) all of Karpenter's pods get
/// the caller's session by, where both are known and the caller is Karpenter's own role.
fn known<'p>(
    case: &IamCase<'_>,
    policies: &'p PrincipalPolicies,
) -> Option<(&'p [(String, String)], PodCredentials)> {
    let tags = policies.tags.as_deref()?;
    let own = case
        .controller_role
        .is_some_and(|c| role_name_of(c) == role_name_of(&policies.arn))
        && role_name_of(case.caller) == role_name_of(&policies.arn);
    let path = case.pods.first()?.credentials;
    (own && path != PodCredentials::None && case.pods.iter().all(|p| p.credentials == path))
        .then_some((tags, path))
}

/// The principal-tag keys of `case`'s caller as the facts show them, with the absence of
/// every other one marked; an empty context when they are not known.
pub(super) fn principal_tags(case: &IamCase<'_>, policies: &PrincipalPolicies) -> Context {
    let mut ctx = Context::default();
    let Some((tags, path)) = known(case, policies) else {
        return ctx;
    };
    let key = |k: &str| format!("{PRINCIPAL_TAG}{k}");
    let session = |k: &str| {
        path == PodCredentials::PodIdentity
            && POD_IDENTITY_TAGS.iter().any(|t| t.eq_ignore_ascii_case(k))
    };
    // A session tag replaces the role's tag of the same key.
    for (k, v) in tags.iter().filter(|(k, _)| !session(k)) {
        ctx.set(&key(k), vec![v.clone()]);
    }
    if path == PodCredentials::PodIdentity {
        // Present with values the doctor could guess, or absent where the association
        // disables session tags: not known either way.
        for tag in POD_IDENTITY_TAGS {
            ctx.mark_unknown(&key(tag));
        }
    }
    ctx.mark_absent(PRINCIPAL_TAG);
    ctx
}

/// Evidence of what `principal_tags` knew, where a condition of `set` asks for a principal tag.
pub(super) fn principal_tags_evidence(
    case: &IamCase<'_>,
    set: &PolicySet,
    policies: &PrincipalPolicies,
) -> Option<Evidence> {
    let asks = set
        .identity
        .iter()
        .chain(&set.boundary)
        .flat_map(|p| &p.statements)
        .flat_map(|s| &s.conditions)
        .any(|c| {
            c.key
                .get(..PRINCIPAL_TAG.len())
                .is_some_and(|k| k.eq_ignore_ascii_case(PRINCIPAL_TAG))
        });
    let (tags, path) = known(case, policies).filter(|_| asks)?;
    let n = tags.len();
    let path = match path {
        PodCredentials::PodIdentity => {
            "EKS Pod Identity, which adds its six documented session tags (eks-cluster-arn, eks-cluster-name, kubernetes-namespace, kubernetes-service-account, kubernetes-pod-name, kubernetes-pod-uid; unknown here, as an association may disable them)"
        }
        _ => "IRSA, which adds no session tags",
    };
    Some(evidence(
        policies.source.as_str(),
        format!(
            "{} has {n} tag{}, and Karpenter's pods get its credentials through {path}: any other principal tag is absent from the request, not unknown",
            policies.arn,
            if n == 1 { "" } else { "s" }
        ),
    ))
}
