//! Karpenter's objects as they are read from the cluster and kept (failing NodeClaims, NodePools,
//! EC2NodeClasses in `cluster::index`): only the fields the signal readers use (signal/kube.rs).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use kube::core::{DynamicResourceScope, Resource, TypeMeta};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// A NodeClaim, NodePool or EC2NodeClass (any version) reduced to what the doctor reads.
/// Fields of an unexpected JSON type are left out, never an error: one odd object must not
/// break the watch of all the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Slim {
    #[serde(flatten)]
    pub types: Option<TypeMeta>,
    pub metadata: ObjectMeta,
    pub spec: Spec,
    pub status: Status,
}

/// NodeClaim `nodeClassRef` (v0.3x Machine `machineTemplateRef`); EC2NodeClass `role`,
/// `instanceProfile`, `amiFamily`, `amiSelectorTerms[].alias`,
/// `blockDeviceMappings[].ebs.{kmsKeyID,encrypted}`, `metadataOptions.httpTokens`,
/// `capacityReservationSelectorTerms` (how many); NodePool `template`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub node_class_ref: Name,
    pub machine_template_ref: Name,
    pub role: Option<String>,
    pub instance_profile: Option<String>,
    pub ami_family: Option<String>,
    pub ami_selector_terms: Vec<AmiTerm>,
    pub block_device_mappings: Vec<BlockDeviceMapping>,
    pub metadata_options: MetadataOptions,
    pub capacity_reservation_selector_terms: Vec<Term>,
    /// A NodePool's NodeClaim template: its `spec.nodeClassRef` and requirements.
    pub template: Template,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AmiTerm {
    pub alias: Option<String>,
}

/// A selector term, kept only to be counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Term {}

/// A NodePool requirement (`karpenter.sh/capacity-type In [spot]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Requirement {
    pub key: Option<String>,
    pub operator: Option<String>,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Template {
    pub spec: TemplateSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    pub node_class_ref: Name,
    pub requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Name {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOptions {
    pub http_tokens: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlockDeviceMapping {
    pub ebs: Ebs,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ebs {
    #[serde(rename = "kmsKeyID")]
    pub kms_key_id: Option<String>,
    pub encrypted: Option<bool>,
}

/// NodeClaim `providerID`, `imageID`; EC2NodeClass `instanceProfile`, `amis[].id`; conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(rename = "providerID")]
    pub provider_id: Option<String>,
    #[serde(rename = "imageID")]
    pub image_id: Option<String>,
    pub instance_profile: Option<String>,
    pub amis: Vec<Ami>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ami {
    pub id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<String>,
}

/// The string at `path`.
fn text(value: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))?
        .as_str()
        .map(String::from)
}

/// The items of the array at `path`, each read by `read`.
fn items<T>(value: &Value, path: &[&str], read: impl Fn(&Value) -> T) -> Vec<T> {
    match path.iter().try_fold(value, |v, key| v.get(key)) {
        Some(Value::Array(items)) => items.iter().map(read).collect(),
        _ => Vec::new(),
    }
}

impl<'de> Deserialize<'de> for Slim {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Slim, D::Error> {
        let mut v = Value::deserialize(d)?;
        let metadata = v
            .get_mut("metadata")
            .map(Value::take)
            .and_then(|m| serde_json::from_value(m).ok())
            .unwrap_or_default();
        let types = match (text(&v, &["apiVersion"]), text(&v, &["kind"])) {
            (Some(api_version), Some(kind)) => Some(TypeMeta { api_version, kind }),
            _ => None,
        };
        let name = |path: &[&str]| Name {
            name: text(&v, path),
        };
        Ok(Slim {
            types,
            metadata,
            spec: Spec {
                node_class_ref: name(&["spec", "nodeClassRef", "name"]),
                machine_template_ref: name(&["spec", "machineTemplateRef", "name"]),
                role: text(&v, &["spec", "role"]),
                instance_profile: text(&v, &["spec", "instanceProfile"]),
                ami_family: text(&v, &["spec", "amiFamily"]),
                ami_selector_terms: items(&v, &["spec", "amiSelectorTerms"], |t| AmiTerm {
                    alias: text(t, &["alias"]),
                }),
                block_device_mappings: items(&v, &["spec", "blockDeviceMappings"], |m| {
                    BlockDeviceMapping {
                        ebs: Ebs {
                            kms_key_id: text(m, &["ebs", "kmsKeyID"]),
                            encrypted: m
                                .get("ebs")
                                .and_then(|e| e.get("encrypted"))
                                .and_then(Value::as_bool),
                        },
                    }
                }),
                metadata_options: MetadataOptions {
                    http_tokens: text(&v, &["spec", "metadataOptions", "httpTokens"]),
                },
                capacity_reservation_selector_terms: items(
                    &v,
                    &["spec", "capacityReservationSelectorTerms"],
                    |_| Term {},
                ),
                template: Template {
                    spec: TemplateSpec {
                        node_class_ref: name(&["spec", "template", "spec", "nodeClassRef", "name"]),
                        requirements: items(
                            &v,
                            &["spec", "template", "spec", "requirements"],
                            |r| Requirement {
                                key: text(r, &["key"]),
                                operator: text(r, &["operator"]),
                                values: items(r, &["values"], |x| {
                                    x.as_str().unwrap_or_default().to_string()
                                }),
                            },
                        ),
                    },
                },
            },
            status: Status {
                provider_id: text(&v, &["status", "providerID"]),
                image_id: text(&v, &["status", "imageID"]),
                instance_profile: text(&v, &["status", "instanceProfile"]),
                amis: items(&v, &["status", "amis"], |a| Ami {
                    id: text(a, &["id"]),
                }),
                conditions: items(&v, &["status", "conditions"], |c| Condition {
                    type_: text(c, &["type"]),
                    status: text(c, &["status"]),
                    reason: text(c, &["reason"]),
                    message: text(c, &["message"]),
                    last_transition_time: text(c, &["lastTransitionTime"]),
                }),
            },
        })
    }
}

/// The labels the readers use: the NodeClaim's NodePool (v1, v0.3x) and capacity type.
const KEPT_LABELS: [&str; 3] = [
    "karpenter.sh/nodepool",
    "karpenter.sh/provisioner-name",
    "karpenter.sh/capacity-type",
];

impl Slim {
    /// Drops the metadata no reader uses (managed fields, annotations, owners, other labels);
    /// applied to every object before it is cached.
    pub fn trim(&mut self) {
        let meta = &mut self.metadata;
        meta.managed_fields = None;
        meta.annotations = None;
        meta.owner_references = None;
        meta.finalizers = None;
        if let Some(labels) = &mut meta.labels {
            labels.retain(|k, _| KEPT_LABELS.contains(&k.as_str()));
        }
    }
}

impl Resource for Slim {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::Slim;
    use crate::signal::{Observations, Scanner};
    use serde::Deserialize;
    use serde_json::{Value, json};

    /// Every object in a fixture (YAML or JSON, single objects, lists, several documents),
    /// with the kind its list implies.
    fn objects(file: &str) -> Vec<Value> {
        let path = format!(
            "{}/tests/fixtures/signals/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = Vec::new();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc = Value::deserialize(doc).unwrap();
            let list_kind = doc["kind"].as_str().and_then(|k| k.strip_suffix("List"));
            match doc.get("items").and_then(Value::as_array) {
                Some(items) => out.extend(items.iter().map(|item| {
                    let mut item = item.clone();
                    if item.get("kind").is_none() {
                        item["kind"] = json!(list_kind.unwrap_or_default());
                    }
                    item
                })),
                None => out.push(doc),
            }
        }
        out
    }

    /// What the readers see in an object kept slim is what they see in the whole object.
    #[test]
    fn the_readers_see_the_same_in_a_slim_object_as_in_the_whole_one() {
        let scanner = Scanner::new().unwrap();
        let mut seen = Observations::default();
        for file in [
            "nodeclaims.json",
            "nodeclaims.yaml",
            "nodeclaim-v1beta1.yaml",
            "ec2nodeclasses.yaml",
            "awsnodetemplate-v1alpha1.yaml",
            "nodepools.yaml",
            "ec2nodeclasses-launch-settings.yaml",
        ] {
            for (i, whole) in objects(file).into_iter().enumerate() {
                let mut slim: Slim = serde_json::from_value(whole.clone()).unwrap();
                slim.trim();
                let mut slim = serde_json::to_value(&slim).unwrap();
                slim["kind"] = whole["kind"].clone();
                let (mut a, mut b) = (Observations::default(), Observations::default());
                scanner.read_objects(file, [whole], &mut a);
                scanner.read_objects(file, [slim], &mut b);
                assert_eq!(a, b, "{file} object {i}");
                seen.signals.extend(a.signals);
                seen.node_claims.extend(a.node_claims);
                seen.node_classes.extend(a.node_classes);
            }
        }
        let nonempty = |n: usize| n > 1;
        assert!(
            nonempty(seen.signals.len())
                && nonempty(seen.node_claims.len())
                && nonempty(seen.node_classes.len()),
            "the fixtures exercise the readers: {seen:?}"
        );
        assert!(
            seen.node_classes
                .iter()
                .any(|c| !c.kms_key_ids.is_empty() && !c.ami_ids.is_empty())
        );
        assert!(
            seen.node_claims
                .iter()
                .any(|c| c.lost && c.instance_id.is_some())
        );
    }

    #[test]
    fn fields_of_an_unexpected_type_are_left_out_not_an_error() {
        let odd = json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": "odd"},
            "spec": {"nodeClassRef": "default", "requirements": 7},
            "status": {"providerID": 42, "imageID": "ami-1", "conditions": [
                {"type": "Launched", "status": "False", "message": {"not": "text"}}, "junk",
                {"type": "Registered", "status": "True"}]}});
        let slim: Slim = serde_json::from_value(odd).unwrap();
        assert_eq!(slim.spec.node_class_ref.name, None);
        assert_eq!(slim.status.provider_id, None);
        assert_eq!(slim.status.image_id.as_deref(), Some("ami-1"));
        let conditions: Vec<_> = slim
            .status
            .conditions
            .iter()
            .map(|c| (c.type_.as_deref(), c.message.as_deref()))
            .collect();
        assert_eq!(
            conditions,
            [
                (Some("Launched"), None),
                (None, None),
                (Some("Registered"), None)
            ]
        );
        let scalar: Slim =
            serde_json::from_value(json!({"metadata": 5, "spec": "?", "status": []})).unwrap();
        assert_eq!(scalar, Slim::default());
    }

    #[test]
    fn trimming_keeps_the_name_deletion_and_node_pool_label_only() {
        let full = json!({"metadata": {"name": "n", "deletionTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"karpenter.sh/nodepool": "default", "team": "a"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "finalizers": ["karpenter.sh/termination"],
            "managedFields": [{"manager": "karpenter", "operation": "Update"}]}});
        let mut slim: Slim = serde_json::from_value(full).unwrap();
        slim.trim();
        let meta = &slim.metadata;
        assert_eq!(meta.name.as_deref(), Some("n"));
        assert!(meta.deletion_timestamp.is_some());
        assert_eq!(
            meta.labels.as_ref().unwrap().keys().collect::<Vec<_>>(),
            ["karpenter.sh/nodepool"]
        );
        assert_eq!(
            (&meta.annotations, &meta.finalizers, &meta.managed_fields),
            (&None, &None, &None)
        );
    }
}
