//! From observations to fetched facts: ask the pure core which lookups its root causes need,
//! run them concurrently through `Live` (once per distinct question), and keep every answer.

use super::live::Live;
use crate::diagnose::{self, Questions};
use crate::facts::fetched::FetchedFacts;
use crate::signal::{Observations, Scanner};
use std::future::Future;

/// At most this many instances are described per run (one DescribeInstances call).
const MAX_INSTANCES: usize = 200;

/// Fetches what diagnosing `obs` needs. Instances of NodeClaims that no input describes are
/// described first and scanned like a file, so their StateReason becomes a signal.
pub async fn gather(
    live: &Live,
    scanner: &Scanner,
    obs: &mut Observations,
    controller_role: Option<&str>,
) -> FetchedFacts {
    let mut facts = FetchedFacts::default();
    with_cluster_name(live, obs);
    let first = diagnose::questions(obs, &facts, controller_role);
    if !first.instances.is_empty() {
        let ids: Vec<String> = first
            .instances
            .iter()
            .take(MAX_INSTANCES)
            .cloned()
            .collect();
        match live.describe_instances(&ids).await {
            Ok(doc) => {
                let text = doc.to_string();
                let _ = scanner.scan("ec2:DescribeInstances", text.as_bytes(), obs, &mut |_| {});
            }
            Err(e) => obs.warn("ec2:DescribeInstances", e.to_string()),
        }
    }
    credential_facts(live, obs, &first).await;
    let Questions {
        principals,
        images,
        authorizations,
        ..
    } = diagnose::questions(obs, &facts, controller_role);
    (facts.principals, facts.images, facts.authorizations) = tokio::join!(
        all(principals, |p| async move { live.principal(&p).await }),
        all(images, |i| async move { live.image_keys(&i).await }),
        all(
            authorizations,
            |id| async move { live.authorization(&id).await }
        ),
    );
    let Questions {
        keys,
        simulations,
        encoded,
        ..
    } = diagnose::questions(obs, &facts, controller_role);
    let (keys, simulations, decoded) = tokio::join!(
        all(keys, |k| async move { live.key(&k).await }),
        all(simulations, |s| async move { live.simulate(&s).await }),
        all(encoded, |m| async move { live.decode(&m).await }),
    );
    facts.keys = keys;
    facts.simulations = simulations;
    facts.decoded = decoded;
    facts
}

/// `--cluster-name` first among the cluster names the inputs give.
fn with_cluster_name(live: &Live, obs: &mut Observations) {
    if let Some(name) = &live.cluster_name
        && !obs.cluster_names.contains(name)
    {
        obs.cluster_names.insert(0, name.clone());
    }
}

/// What a credentials failure needs from AWS, into the observations as if given as inputs:
/// the cluster's OIDC issuer, the account's OIDC providers, Karpenter's Pod Identity
/// associations. A lookup that fails is a warning.
async fn credential_facts(live: &Live, obs: &mut Observations, q: &Questions) {
    let (issuers, providers, associations) = tokio::join!(
        all(q.clusters.clone(), |c| async move {
            live.cluster_issuer(&c).await
        }),
        async {
            match q.oidc_providers {
                true => Some(live.oidc_providers().await),
                false => None,
            }
        },
        all(q.pod_identities.clone(), |(c, ns)| async move {
            live.pod_identities(&c, ns.as_deref()).await
        }),
    );
    for (cluster, issuer) in issuers {
        match issuer {
            Ok(issuer) => obs.add_oidc_issuer(&issuer),
            Err(e) => obs.warn("eks:DescribeCluster", format!("{cluster}: {e}")),
        }
    }
    match providers {
        Some(Ok(arns)) => obs.oidc_providers = Some(arns),
        Some(Err(e)) => obs.warn("iam:ListOpenIDConnectProviders", e.to_string()),
        None => {}
    }
    for ((cluster, _), found) in associations {
        match found {
            Ok(found) => found.into_iter().for_each(|a| obs.add_pod_identity(a)),
            Err(e) => obs.warn("eks:ListPodIdentityAssociations", format!("{cluster}: {e}")),
        }
    }
}

/// Fetches what re-checking stored Diagnoses needs: each one's principal and KMS key; for
/// credentials ones, what `diagnose::recheck_questions` asks, into `obs`.
pub async fn gather_for_specs<'a>(
    live: &Live,
    specs: impl Iterator<Item = &'a crate::diagnose::model::DiagnosisSpec>,
    obs: &mut Observations,
) -> FetchedFacts {
    let (mut principals, mut keys) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    let specs: Vec<_> = specs.collect();
    for spec in &specs {
        principals.extend(spec.principal_arn.clone());
        keys.extend(spec.kms_key_arn.clone());
    }
    with_cluster_name(live, obs);
    let q = diagnose::recheck_questions(obs, specs.into_iter());
    credential_facts(live, obs, &q).await;
    let mut facts = FetchedFacts::default();
    (facts.principals, facts.keys) = tokio::join!(
        all(principals, |p| async move { live.principal(&p).await }),
        all(keys, |k| async move { live.key(&k).await }),
    );
    facts
}

/// Fetches what `preflight` evaluates: the policies of `roles` (the controller role's, and
/// the node roles with their paths), the AMIs' snapshot keys of the EC2NodeClasses and the
/// region's default EBS key, then every key their launches use (each once); into `obs`, what
/// Karpenter's credential path needs (`diagnose::preflight_questions`).
pub async fn gather_for_preflight(
    live: &Live,
    roles: std::collections::BTreeSet<String>,
    obs: &mut Observations,
) -> FetchedFacts {
    with_cluster_name(live, obs);
    credential_facts(live, obs, &diagnose::preflight_questions(obs)).await;
    let images: std::collections::BTreeSet<String> = obs
        .node_classes
        .iter()
        .flat_map(|c| c.ami_ids.iter().cloned())
        .collect();
    let mut facts = FetchedFacts::default();
    let ebs_default;
    (facts.principals, facts.images, ebs_default) = tokio::join!(
        all(roles, |p| async move { live.principal(&p).await }),
        all(images, |i| async move { live.image_keys(&i).await }),
        live.ebs_default(),
    );
    facts.ebs_default = Some(ebs_default.map_err(|e| e.to_string()));
    let keys: std::collections::BTreeSet<String> = obs
        .node_classes
        .iter()
        .flat_map(|c| c.kms_key_ids.iter().cloned())
        .chain(facts.images.values().flatten().flatten().cloned())
        .chain(facts.ebs_default.iter().flatten().map(|d| d.key.clone()))
        .collect();
    facts.keys = all(keys, |k| async move { live.key(&k).await }).await;
    facts
}

/// Looks every question up concurrently; the answers (failures as their text) by question.
async fn all<K, V, E, F>(
    questions: impl IntoIterator<Item = K>,
    lookup: impl Fn(K) -> F,
) -> std::collections::BTreeMap<K, Result<V, String>>
where
    K: Ord + Clone,
    E: std::fmt::Display,
    F: Future<Output = Result<V, E>>,
{
    let lookups = questions.into_iter().map(|k| {
        let answer = lookup(k.clone());
        async move { (k, answer.await.map_err(|e| e.to_string())) }
    });
    futures_util::future::join_all(lookups)
        .await
        .into_iter()
        .collect()
}
