//! The doctor's own IAM policy, scoped to one cluster. `manifests/iam-policy.json` allows the
//! doctor's reads on every role, key and cluster; this renders the same statements (same Sids,
//! same actions) with the resources of one cluster only: Karpenter's controller role and its
//! EC2NodeClasses' node roles, the keys their launches use (the classes' keys and the AMIs'
//! snapshot keys, resolved to key ARNs), the cluster and its Pod Identity associations, and
//! the reader roles of the accounts those keys live in. What cannot be named (a key alias
//! not resolved, a role inside an instance profile) is a note, never a wildcard. Pure.

use super::{Settings, classes, node_role};
use crate::facts::{Facts, Lookup};
use crate::policy::arn::Arn;
use crate::signal::Observations;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The shipped policy: the statements, the actions and their order.
const SHIPPED: &str = include_str!("../../manifests/iam-policy.json");

/// What one cluster's policy names.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub partition: String,
    pub account: String,
    pub region: String,
    pub cluster_name: Option<String>,
    /// Karpenter's controller role and the node roles (ARNs).
    pub roles: BTreeSet<String>,
    /// The keys the launches use (key ARNs).
    pub keys: BTreeSet<String>,
    /// What could not be named, and what the doctor will not read for it.
    pub notes: Vec<String>,
}

/// The rendered policy and the notes on what it leaves out.
pub struct Rendered {
    pub policy: Value,
    pub notes: Vec<String>,
}

/// What the policy of the cluster `obs` describes names: the controller role of `settings`,
/// each EC2NodeClass's node role, and each key its launches use, as `facts` resolve them.
pub fn scope(obs: &Observations, settings: &Settings, facts: &dyn Facts) -> Result<Scope, String> {
    let controller = Arn::parse(&settings.controller_role)
        .filter(|a| a.service == "iam" && a.resource.starts_with("role/"))
        .ok_or_else(|| {
            format!(
                "the controller role {} is not a role's ARN",
                settings.controller_role
            )
        })?;
    let mut scope = Scope {
        partition: settings.partition.id.to_string(),
        account: controller.account.to_string(),
        region: settings.region.clone(),
        cluster_name: settings.cluster_name.clone(),
        roles: BTreeSet::from([settings.controller_role.clone()]),
        keys: BTreeSet::new(),
        notes: Vec::new(),
    };
    for class in classes(obs, settings) {
        match node_role(&class, settings, facts) {
            Some(role) => {
                scope.roles.insert(role);
            }
            None => scope.notes.push(format!(
                "EC2NodeClass {}: its node role is not named (an instance profile{}): the doctor will not read it",
                class.name,
                class
                    .instance_profile
                    .as_deref()
                    .map_or(String::new(), |p| format!(" {p}"))
            )),
        }
        let of = format!("EC2NodeClass {}", class.name);
        for key in &class.kms_key_ids {
            add_key(&mut scope, facts, key, &of);
        }
        match super::default_ebs_key(&class, facts) {
            Some(key) => add_key(
                &mut scope,
                facts,
                &key,
                &format!("{of} (the default EBS key)"),
            ),
            None if class.default_ebs_key != crate::signal::DefaultKeyUse::Never => {
                if let Lookup::Absent(why) | Lookup::Unknown(why) = facts.ebs_default() {
                    scope.notes.push(format!(
                        "{of}: a volume names no kmsKeyID, and the region's default EBS key is not known ({why}): the doctor will not read it"
                    ));
                }
            }
            None => {}
        }
        for image in &class.ami_ids {
            match facts.image_keys(image) {
                Lookup::Found(keys) => keys
                    .iter()
                    .for_each(|k| add_key(&mut scope, facts, k, &format!("the AMI {image}"))),
                Lookup::Absent(why) | Lookup::Unknown(why) => scope.notes.push(format!(
                    "the AMI {image} (EC2NodeClass {}): its snapshots' keys are not known ({why}): the doctor will not read them",
                    class.name
                )),
            }
        }
    }
    Ok(scope)
}

/// Adds `key` as a key ARN: as the facts resolve it, else as written where it is a key's ARN
/// or id; an alias no fact resolves is a note.
fn add_key(scope: &mut Scope, facts: &dyn Facts, key: &str, of: &str) {
    if let Lookup::Found(found) = facts.key(key) {
        scope.keys.insert(found.arn);
        return;
    }
    let arn = match Arn::parse(key) {
        Some(a) if a.service == "kms" && a.resource.starts_with("key/") => Some(key.to_string()),
        Some(_) => None,
        None if !key.starts_with("alias/") && !key.is_empty() => Some(format!(
            "arn:{}:kms:{}:{}:key/{key}",
            scope.partition, scope.region, scope.account
        )),
        None => None,
    };
    match arn {
        Some(arn) => {
            scope.keys.insert(arn);
        }
        None => scope.notes.push(format!(
            "{of}: the key {key} is not resolved to a key ARN (look it up live, or give --kms-snapshot): the doctor will not read it"
        )),
    }
}

/// The shipped statements with this scope's resources, by Sid. A statement that names nothing
/// here (no key, no cluster name) is left out, with a note.
pub fn render(scope: &Scope) -> Result<Rendered, String> {
    let shipped: Value = serde_json::from_str(SHIPPED).map_err(|e| e.to_string())?;
    let p = &scope.partition;
    let a = &scope.account;
    let mut notes = scope.notes.clone();
    let mut statements = Vec::new();
    for statement in shipped["Statement"].as_array().into_iter().flatten() {
        let sid = statement["Sid"].as_str().unwrap_or_default();
        let resources: Vec<String> = match sid {
            "ReadRoles" => scope.roles.iter().cloned().collect(),
            // Attached policies change with every Karpenter upgrade: the account's and AWS's.
            "ReadManagedPolicies" => {
                vec![
                    format!("arn:{p}:iam::{a}:policy/*"),
                    format!("arn:{p}:iam::aws:policy/*"),
                ]
            }
            "ReadKmsKeys" => scope.keys.iter().cloned().collect(),
            "ReadClusterIdentity" => cluster(scope, "cluster/{}").into_iter().collect(),
            "ReadPodIdentityAssociations" => cluster(scope, "podidentityassociation/{}/*")
                .into_iter()
                .collect(),
            "ReadKeysOfOtherAccounts" => other_accounts(scope)
                .map(|acct| format!("arn:{p}:iam::{acct}:role/karpenter-doctor-*"))
                .collect(),
            _ if statement["Resource"] == "*" => vec!["*".to_string()],
            other => {
                return Err(format!(
                    "manifests/iam-policy.json: statement {other:?} has no scoping rule"
                ));
            }
        };
        if resources.is_empty() {
            notes.push(format!(
                "statement {sid} is left out: this cluster names nothing it reads{}",
                match sid {
                    "ReadKmsKeys" => " (no key)",
                    "ReadKeysOfOtherAccounts" => " (no key in another account)",
                    _ => " (no cluster name: --cluster-name)",
                }
            ));
            continue;
        }
        let mut scoped = statement.clone();
        scoped["Resource"] = match resources.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        statements.push(scoped);
    }
    Ok(Rendered {
        policy: json!({"Version": shipped["Version"], "Statement": statements}),
        notes,
    })
}

/// The cluster's EKS ARN with `pattern`'s `{}` as its name, where the name is known.
fn cluster(scope: &Scope, pattern: &str) -> Option<String> {
    let name = scope.cluster_name.as_deref()?;
    Some(format!(
        "arn:{}:eks:{}:{}:{}",
        scope.partition,
        scope.region,
        scope.account,
        pattern.replace("{}", name)
    ))
}

/// The accounts, other than the controller role's, whose keys the launches use.
fn other_accounts(scope: &Scope) -> impl Iterator<Item = String> + '_ {
    scope
        .keys
        .iter()
        .filter_map(|k| Arn::parse(k).map(|a| a.account.to_string()))
        .filter(|acct| acct != &scope.account)
        .collect::<BTreeSet<_>>()
        .into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::iam_snapshot::PrincipalPolicies;
    use crate::facts::kms_snapshot::KeyFacts;
    use crate::signal::NodeClassInfo;

    const CONTROLLER: &str = "arn:aws:iam::111122223333:role/KarpenterController-demo";
    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1a2b3c4d";
    const OTHER_KEY: &str = "arn:aws:kms:us-east-1:444455556666:key/9f8e7d6c";

    /// What live AWS would answer: the node role has a path, the alias and the AMI resolve.
    struct Answers;

    impl Facts for Answers {
        fn principal(&self, arn: &str) -> Lookup<PrincipalPolicies> {
            match arn.ends_with(":role/NodeRole-demo") {
                true => Lookup::Found(PrincipalPolicies {
                    arn: "arn:aws:iam::111122223333:role/karpenter/NodeRole-demo".into(),
                    identity: Vec::new(),
                    boundary: None,
                    trust: None,
                    tags: None,
                    source: "live IAM".into(),
                    sizes: None,
                }),
                false => Lookup::Unknown("not asked".into()),
            }
        }
        fn key(&self, key: &str) -> Lookup<KeyFacts> {
            match key {
                "alias/ebs-demo" => Lookup::Found(KeyFacts {
                    arn: KEY.into(),
                    key_id: "1a2b3c4d".into(),
                    account: "111122223333".into(),
                    state: "Enabled".into(),
                    manager: None,
                    deletion_date: None,
                    grants: None,
                    policy: None,
                    source: "live KMS".into(),
                    unreadable: Vec::new(),
                }),
                _ => Lookup::Unknown("not asked".into()),
            }
        }
        fn image_keys(&self, image: &str) -> Lookup<Vec<String>> {
            match image {
                "ami-shared" => Lookup::Found(vec![OTHER_KEY.into()]),
                _ => Lookup::Unknown(format!("image {image} was not looked up")),
            }
        }
    }

    fn class(name: &str, role: Option<&str>, keys: &[&str], amis: &[&str]) -> NodeClassInfo {
        NodeClassInfo {
            name: name.into(),
            role: role.map(str::to_string),
            instance_profile: role
                .is_none()
                .then(|| "KarpenterNodeInstanceProfile".into()),
            kms_key_ids: keys.iter().map(|k| k.to_string()).collect(),
            ami_ids: amis.iter().map(|a| a.to_string()).collect(),
            http_tokens: None,
            default_ebs_key: crate::signal::DefaultKeyUse::Never,
            ami_aliases: Vec::new(),
            capacity_reservations: false,
        }
    }

    fn settings(cluster: Option<&str>) -> Settings {
        Settings {
            cluster_name: cluster.map(str::to_string),
            ..Settings::example("aws", "us-east-1", CONTROLLER)
        }
    }

    fn observations(classes: Vec<NodeClassInfo>) -> Observations {
        Observations {
            node_classes: classes,
            ..Observations::default()
        }
    }

    fn statement<'a>(policy: &'a Value, sid: &str) -> Option<&'a Value> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
    }

    #[test]
    fn the_scope_names_the_roles_and_keys_as_aws_resolves_them() {
        let obs = observations(vec![
            class(
                "default",
                Some("NodeRole-demo"),
                &["alias/ebs-demo", "5e6f7a8b"],
                &["ami-shared"],
            ),
            class("gpu", None, &["alias/unknown"], &["ami-private"]),
        ]);
        let scope = scope(&obs, &settings(Some("demo")), &Answers).unwrap();
        assert_eq!(
            scope.roles,
            BTreeSet::from([
                CONTROLLER.to_string(),
                "arn:aws:iam::111122223333:role/karpenter/NodeRole-demo".to_string(),
            ])
        );
        assert_eq!(
            scope.keys,
            BTreeSet::from([
                KEY.to_string(),
                OTHER_KEY.to_string(),
                "arn:aws:kms:us-east-1:111122223333:key/5e6f7a8b".to_string(),
            ])
        );
        // What cannot be named is said, and is not a wildcard.
        let notes = scope.notes.join("\n");
        for said in [
            "EC2NodeClass gpu: its node role is not named (an instance profile KarpenterNodeInstanceProfile)",
            "EC2NodeClass gpu: the key alias/unknown is not resolved",
            "the AMI ami-private (EC2NodeClass gpu): its snapshots' keys are not known",
        ] {
            assert!(notes.contains(said), "{notes}");
        }
        assert_eq!(scope.notes.len(), 3, "{notes}");
    }

    #[test]
    fn the_rendered_policy_keeps_the_shipped_statements_with_this_clusters_resources() {
        let obs = observations(vec![class(
            "default",
            Some("NodeRole-demo"),
            &["alias/ebs-demo"],
            &["ami-shared"],
        )]);
        let scope = scope(&obs, &settings(Some("demo")), &Answers).unwrap();
        let rendered = render(&scope).unwrap();
        let shipped: Value = serde_json::from_str(SHIPPED).unwrap();
        for s in shipped["Statement"].as_array().unwrap() {
            let mine = statement(&rendered.policy, s["Sid"].as_str().unwrap()).unwrap();
            assert_eq!(mine["Action"], s["Action"]);
            assert_eq!(mine["Effect"], "Allow");
        }
        let p = &rendered.policy;
        assert_eq!(
            statement(p, "ReadKmsKeys").unwrap()["Resource"],
            json!([KEY, OTHER_KEY])
        );
        assert_eq!(
            statement(p, "ReadClusterIdentity").unwrap()["Resource"],
            "arn:aws:eks:us-east-1:111122223333:cluster/demo"
        );
        assert_eq!(
            statement(p, "ReadKeysOfOtherAccounts").unwrap()["Resource"],
            "arn:aws:iam::444455556666:role/karpenter-doctor-*"
        );
        assert!(!p.to_string().contains("arn:*"), "{p:#}");
        assert!(
            crate::policy::Policy::from_value("rendered", p).is_ok(),
            "the engine reads it"
        );
    }

    #[test]
    fn a_statement_with_nothing_to_name_is_left_out_and_said() {
        let obs = observations(vec![class("default", Some("NodeRole-demo"), &[], &[])]);
        let rendered = render(&scope(&obs, &settings(None), &Answers).unwrap()).unwrap();
        for sid in [
            "ReadKmsKeys",
            "ReadClusterIdentity",
            "ReadPodIdentityAssociations",
            "ReadKeysOfOtherAccounts",
        ] {
            assert!(statement(&rendered.policy, sid).is_none(), "{sid}");
            assert!(
                rendered
                    .notes
                    .iter()
                    .any(|n| n.starts_with(&format!("statement {sid} is left out"))),
                "{sid}: {:?}",
                rendered.notes
            );
        }
        assert!(statement(&rendered.policy, "ReadRoles").is_some());
    }

    #[test]
    fn a_controller_role_that_is_no_role_is_an_error() {
        let mut s = settings(Some("demo"));
        s.controller_role = "arn:aws:iam::111122223333:user/karpenter".into();
        let err = scope(&observations(Vec::new()), &s, &Answers).unwrap_err();
        assert!(err.contains("is not a role's ARN"), "{err}");
    }
}
