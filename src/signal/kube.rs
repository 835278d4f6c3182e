//! Kubernetes objects as kubectl prints them: NodeClaims (and v0.3x Machines), NodePools,
//! EC2NodeClasses (and AWSNodeTemplates), Events, ServiceAccounts, Karpenter's Pods, pending
//! pods and Karpenter's nominations of them; failure texts and links.

use super::sink::{Context, Sink};
use super::{DefaultKeyUse, NodeClaimInfo, NodeClassInfo, NodePoolInfo, ROLE_ANNOTATION, Source};
use serde_json::Value;

/// Reads one object; objects of other kinds are ignored. `list` is set when the object is a
/// list's item, to the kind the list implies for items that do not state theirs.
pub(crate) fn object(value: &Value, line: usize, list: Option<&str>, sink: &mut Sink<'_>) {
    let kind = str_at(value, &["kind"]).or(list).unwrap_or("");
    match kind {
        "NodeClaim" | "Machine" => node_claim(value, line, sink),
        "EC2NodeClass" | "AWSNodeTemplate" => node_class(value, line, sink),
        "Event" => event(value, line, sink),
        "ServiceAccount" => service_account(value, list.is_some(), sink),
        "Pod" => pod(value, list.is_some(), sink),
        "NodePool" => node_pool(value, line, sink),
        // v0.3x Provisioners carry no failure text the rules know, nor registration health.
        _ => {}
    }
}

/// The value at `path`.
fn value_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// The items of the array at `path`; none where there is no array.
fn items_at<'v>(value: &'v Value, path: &[&str]) -> &'v [Value] {
    match value_at(value, path) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// The string at `path`, if it is a non-empty string.
pub(crate) fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    value_at(value, path)?.as_str().filter(|s| !s.is_empty())
}

fn owned(value: &Value, path: &[&str]) -> Option<String> {
    str_at(value, path).map(String::from)
}

fn name(value: &Value) -> Option<String> {
    owned(value, &["metadata", "name"])
}

/// `aws:///us-east-1a/i-0abc…` → `i-0abc…`.
pub(crate) fn instance_from_provider_id(provider_id: &str) -> Option<String> {
    let id = provider_id.rsplit('/').next()?;
    (id.starts_with("i-") && id.len() > 2).then(|| id.to_string())
}

/// Every condition that is not `True` and has a message: `(message, lastTransitionTime)`.
fn failing_conditions(value: &Value) -> Vec<(&str, Option<String>, bool)> {
    let Some(Value::Array(conditions)) = value.get("status").and_then(|s| s.get("conditions"))
    else {
        return Vec::new();
    };
    conditions
        .iter()
        .filter(|c| str_at(c, &["status"]) != Some("True"))
        .filter_map(|c| {
            Some((
                str_at(c, &["message"])?,
                owned(c, &["lastTransitionTime"]),
                // EC2NodeClass validation dry-runs the calls a launch makes.
                str_at(c, &["type"]) == Some("ValidationSucceeded"),
            ))
        })
        .collect()
}

/// The message of EC2NodeClass validation's `ValidationSucceeded=False` with reason
/// `InstanceProfileNotFound` (v1.15: `Instance profile "<name>" not found`, written when
/// `spec.instanceProfile` names a profile RunInstances' dry run does not know,
/// pkg/controllers/nodeclass/validation.go:450-458).
fn instance_profile_not_found(value: &Value) -> Option<&str> {
    value
        .get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| {
            str_at(c, &["type"]) == Some("ValidationSucceeded")
                && str_at(c, &["status"]) == Some("False")
                && str_at(c, &["reason"]) == Some("InstanceProfileNotFound")
        })
        .map(|c| str_at(c, &["message"]).unwrap_or("no message"))
}

/// The status of the condition `type_`, if the object has it.
fn condition<'v>(value: &'v Value, type_: &str) -> Option<&'v str> {
    value
        .get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| str_at(c, &["type"]) == Some(type_))
        .and_then(|c| str_at(c, &["status"]))
}

/// Launched, but never registered as a node, or being deleted.
fn lost(value: &Value) -> bool {
    let launched = condition(value, "Launched") == Some("True");
    let deleting = str_at(value, &["metadata", "deletionTimestamp"]).is_some();
    launched && (deleting || condition(value, "Registered").is_some_and(|s| s != "True"))
}

/// Karpenter's Event reasons for a NodeClaim whose instance is going away.
const TERMINATING: [&str; 2] = ["InstanceTerminating", "TerminatingOnInterruption"];

fn time_of(text: Option<String>) -> Option<String> {
    text.and_then(|t| super::time::normalize(&t))
}

fn node_claim(value: &Value, line: usize, sink: &mut Sink<'_>) {
    let Some(name) = name(value) else { return };
    let labels = ["metadata", "labels"];
    let info = NodeClaimInfo {
        node_pool: owned(value, &[labels[0], labels[1], "karpenter.sh/nodepool"]).or_else(|| {
            owned(
                value,
                &[labels[0], labels[1], "karpenter.sh/provisioner-name"],
            )
        }),
        node_class: owned(value, &["spec", "nodeClassRef", "name"])
            .or_else(|| owned(value, &["spec", "machineTemplateRef", "name"])),
        instance_id: str_at(value, &["status", "providerID"]).and_then(instance_from_provider_id),
        image_id: owned(value, &["status", "imageID"]),
        capacity_type: owned(value, &[labels[0], labels[1], "karpenter.sh/capacity-type"]),
        lost: lost(value),
        name,
    };
    for (message, time, _) in failing_conditions(value) {
        let context = Context {
            time: time_of(time),
            node_claim: Some(info.name.clone()),
            node_pool: info.node_pool.clone(),
            node_class: info.node_class.clone(),
            instance_id: info.instance_id.clone(),
            ..Context::new(Source::NodeClaim, line)
        };
        sink.recognise(&context, message);
    }
    sink.node_claim(info);
}

fn node_pool(value: &Value, line: usize, sink: &mut Sink<'_>) {
    let Some(name) = name(value) else { return };
    // `NodeRegistrationHealthy=False` (v1.4+) copies its NodeClaims' Launched reason and
    // message: read as theirs would be.
    for (message, time, _) in failing_conditions(value) {
        let context = Context {
            time: time_of(time),
            node_pool: Some(name.clone()),
            node_class: owned(value, &["spec", "template", "spec", "nodeClassRef", "name"]),
            ..Context::new(Source::NodeClaim, line)
        };
        sink.recognise(&context, message);
    }
    sink.node_pool(NodePoolInfo {
        node_class: owned(value, &["spec", "template", "spec", "nodeClassRef", "name"]),
        registration_unhealthy: condition(value, "NodeRegistrationHealthy") == Some("False"),
        capacity_types: capacity_types(value),
        name,
    });
}

/// The capacity types a NodePool allows: every `karpenter.sh/capacity-type` requirement
/// narrows Karpenter's three (`In`, `NotIn`, `Exists`, `DoesNotExist`); without one, Karpenter
/// launches on-demand.
fn capacity_types(value: &Value) -> Vec<String> {
    const ALL: [&str; 3] = ["on-demand", "reserved", "spot"];
    let on_capacity: Vec<&Value> = items_at(value, &["spec", "template", "spec", "requirements"])
        .iter()
        .filter(|r| str_at(r, &["key"]) == Some("karpenter.sh/capacity-type"))
        .collect();
    if on_capacity.is_empty() {
        return vec!["on-demand".into()];
    }
    ALL.iter()
        .filter(|t| {
            on_capacity.iter().all(|r| {
                let listed = match r.get("values") {
                    Some(Value::Array(v)) => v.iter().any(|x| x.as_str() == Some(**t)),
                    _ => false,
                };
                match str_at(r, &["operator"]) {
                    Some("In") => listed,
                    Some("NotIn") => !listed,
                    Some("DoesNotExist") => false,
                    _ => true,
                }
            })
        })
        .map(|t| t.to_string())
        .collect()
}

fn node_class(value: &Value, line: usize, sink: &mut Sink<'_>) {
    let Some(name) = name(value) else { return };
    let kms_key_ids = list_at(
        value,
        &["spec", "blockDeviceMappings"],
        &["ebs", "kmsKeyID"],
    );
    let ami_ids = list_at(value, &["status", "amis"], &["id"]);
    if let Some(message) = instance_profile_not_found(value) {
        sink.warn(
            line,
            format!(
                "EC2NodeClass {name}: ValidationSucceeded=False InstanceProfileNotFound ({message}): no authorization failure but a missing instance profile; create it, or correct spec.instanceProfile"
            ),
        );
    }
    for (message, time, dry_run) in failing_conditions(value) {
        let context = Context {
            time: time_of(time),
            node_class: Some(name.clone()),
            dry_run,
            ..Context::new(Source::NodeClass, line)
        };
        sink.recognise(&context, message);
    }
    sink.node_class(NodeClassInfo {
        role: owned(value, &["spec", "role"]),
        instance_profile: owned(value, &["spec", "instanceProfile"])
            .or_else(|| owned(value, &["status", "instanceProfile"])),
        kms_key_ids,
        ami_ids,
        http_tokens: owned(value, &["spec", "metadataOptions", "httpTokens"]),
        default_ebs_key: default_key_use(value),
        ami_aliases: ami_aliases(value),
        capacity_reservations: matches!(
            value.get("spec").and_then(|s| s.get("capacityReservationSelectorTerms")),
            Some(Value::Array(terms)) if !terms.is_empty()
        ),
        name,
    });
}

/// The AMI aliases an EC2NodeClass selects by (`amiSelectorTerms[].alias`, v1); without AMI
/// selector terms, its `amiFamily`'s latest (v0.3x/v1beta1: the family's SSM parameters),
/// unless Custom.
fn ami_aliases(value: &Value) -> Vec<String> {
    if !items_at(value, &["spec", "amiSelectorTerms"]).is_empty() {
        return list_at(value, &["spec", "amiSelectorTerms"], &["alias"]);
    }
    match str_at(value, &["spec", "amiFamily"]) {
        Some(family) if family != "Custom" => vec![format!("{}@latest", family.to_lowercase())],
        _ => Vec::new(),
    }
}

/// The strings at `field` of each item of the array at `path`, in order, without duplicates.
fn list_at(value: &Value, path: &[&str], field: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for item in items_at(value, path).iter().filter_map(|i| owned(i, field)) {
        if !found.contains(&item) {
            found.push(item);
        }
    }
    found
}

/// Whether an EC2NodeClass's volumes use the default EBS key (`DefaultKeyUse`): its mappings
/// that name no key; without mappings, Karpenter's default root volume (encrypted, no key), or
/// for the Custom family the AMI's own volumes.
fn default_key_use(value: &Value) -> DefaultKeyUse {
    let mappings = items_at(value, &["spec", "blockDeviceMappings"]);
    if mappings.is_empty() {
        return match str_at(value, &["spec", "amiFamily"]) {
            Some("Custom") => DefaultKeyUse::WhenEncryptedByDefault,
            _ => DefaultKeyUse::Always,
        };
    }
    mappings
        .iter()
        .filter_map(|m| m.get("ebs"))
        .filter(|ebs| ebs.get("kmsKeyID").is_none_or(Value::is_null))
        .map(|ebs| match ebs.get("encrypted") {
            Some(Value::Bool(true)) => DefaultKeyUse::Always,
            Some(Value::String(s)) if s == "true" => DefaultKeyUse::Always,
            _ => DefaultKeyUse::WhenEncryptedByDefault,
        })
        .max()
        .unwrap_or_default()
}

/// core/v1 (`involvedObject`, `message`) and events.k8s.io/v1 (`regarding`, `note`) events.
fn event(value: &Value, line: usize, sink: &mut Sink<'_>) {
    let Some(text) = str_at(value, &["message"]).or_else(|| str_at(value, &["note"])) else {
        return;
    };
    let object = value
        .get("involvedObject")
        .or_else(|| value.get("regarding"))
        .unwrap_or(&Value::Null);
    let object_name = owned(object, &["name"]);
    let kind = str_at(object, &["kind"]).unwrap_or("");
    if let (Some(name), true) = (&object_name, matches!(kind, "NodeClaim" | "Machine")) {
        let reason = str_at(value, &["reason"]).unwrap_or("");
        if TERMINATING.contains(&reason) {
            sink.node_claim(NodeClaimInfo {
                name: name.clone(),
                node_pool: None,
                node_class: None,
                instance_id: None,
                image_id: None,
                capacity_type: None,
                lost: true,
            });
        }
    }
    let time = event_time(value);
    if kind == "Pod" {
        nomination(value, object, text, time.clone(), sink);
    }
    let mut context = Context::new(Source::Event, line);
    // An Event on a pod is in the pod's namespace, where any user of it may write one: never
    // Karpenter's evidence (its author is named), whatever its reporter says.
    context.author = event_author(value);
    match kind {
        "NodeClaim" | "Machine" => context.node_claim = object_name,
        // v1.15+: a pending pod is told of its nominated NodeClaim's launch failure.
        "Pod" => {
            let reason = str_at(value, &["reason"]).unwrap_or("");
            context.node_claim = super::pending::nominated_claim(reason, text).map(str::to_string);
        }
        "NodePool" | "Provisioner" => context.node_pool = object_name,
        "EC2NodeClass" | "AWSNodeTemplate" => context.node_class = object_name,
        _ => {}
    }
    context.time = time;
    sink.recognise(&context, text);
}

/// When an Event last happened (normalized RFC 3339), where it says.
fn event_time(value: &Value) -> Option<String> {
    [
        &["lastTimestamp"][..],
        &["series", "lastObservedTime"],
        &["eventTime"],
        &["deprecatedLastTimestamp"],
        &["firstTimestamp"],
        &["metadata", "creationTimestamp"],
    ]
    .iter()
    .find_map(|path| str_at(value, path).and_then(super::time::normalize))
}

/// Karpenter's Event on a pod naming the NodeClaim it nominated the pod for (`pending`). Such
/// Events are in the pod's namespace, so only the reporter tells Karpenter's.
fn nomination(value: &Value, pod: &Value, text: &str, time: Option<String>, sink: &mut Sink<'_>) {
    if reporter(value) != Some(KARPENTER_REPORTER) {
        return;
    }
    let reason = str_at(value, &["reason"]).unwrap_or("");
    let namespace =
        str_at(pod, &["namespace"]).or_else(|| str_at(value, &["metadata", "namespace"]));
    if let (Some(namespace), Some(name), Some(claim)) = (
        namespace,
        str_at(pod, &["name"]),
        super::pending::nominated_claim(reason, text),
    ) {
        sink.nomination(super::Nomination {
            pod: super::PodRef {
                namespace: namespace.into(),
                name: name.into(),
            },
            node_claim: claim.into(),
            time,
        });
    }
}

/// The component Karpenter reports its Events as (client-go's recorder: `reportingController`,
/// `reportingComponent`, `source.component`).
pub const KARPENTER_REPORTER: &str = "karpenter";
/// Where Karpenter's Events about its cluster-scoped objects are (client-go records them in
/// `default`, as it does every cluster-scoped object's).
pub const KARPENTER_EVENTS_NAMESPACE: &str = "default";

/// Who reported an Event, when it is not Karpenter where Karpenter records its Events: anyone
/// who may create Events can write any text "regarding" any object, so only the reporter, its
/// instance and the namespace tell Karpenter's from a forgery. `None`: Karpenter's.
pub fn event_author(event: &Value) -> Option<String> {
    let instance = first_at(
        event,
        &[
            &["reportingInstance"],
            &["source", "host"],
            &["deprecatedSource", "host"],
        ],
    );
    author(
        reporter(event),
        instance,
        str_at(event, &["metadata", "namespace"]),
    )
}

/// The component that reported an Event: its first non-empty reporting field.
fn reporter(event: &Value) -> Option<&str> {
    first_at(
        event,
        &[
            &["reportingController"],
            &["reportingComponent"],
            &["source", "component"],
            &["deprecatedSource", "component"],
        ],
    )
}

/// The first of an Event's fields at `paths` that is there and not empty (core/v1 and
/// events.k8s.io/v1 name the reporter and its instance in several places).
fn first_at<'v>(event: &'v Value, paths: &[&[&str]]) -> Option<&'v str> {
    paths.iter().find_map(|path| str_at(event, path))
}

/// `event_author` from the Event's reporter (its first non-empty reporting field), its
/// reporting instance (non-empty) and namespace, for readers that hold the Event typed.
/// Karpenter's recorder (client-go's, `EventSource{Component: "karpenter"}`) names no instance:
/// every Event of the real v1.0.8, v1.8.2 and v1.15.0 recordings has `reportingInstance: ""`,
/// so one that names an instance is someone else's.
pub fn author(
    reporter: Option<&str>,
    instance: Option<&str>,
    namespace: Option<&str>,
) -> Option<String> {
    let here = namespace.is_none_or(|n| n == KARPENTER_EVENTS_NAMESPACE);
    match (reporter, instance, here) {
        (Some(KARPENTER_REPORTER), None, true) => None,
        (reporter, instance, _) => Some(format!(
            "an Event reported by {}{} in namespace {}",
            reporter.map_or("no component".into(), |r| format!("{r:?}")),
            instance.map_or(String::new(), |i| format!(" (instance {i:?})")),
            namespace.unwrap_or("(none)")
        )),
    }
}

/// Whether an object's name, namespace or a label value says Karpenter.
fn names_karpenter(metadata: &Value) -> bool {
    let karpenter = |s: &str| s.to_ascii_lowercase().contains("karpenter");
    str_at(metadata, &["name"]).is_some_and(karpenter)
        || str_at(metadata, &["namespace"]).is_some_and(karpenter)
        || metadata
            .get("labels")
            .and_then(Value::as_object)
            .is_some_and(|labels| labels.values().filter_map(Value::as_str).any(karpenter))
}

/// The Karpenter version an object of Karpenter's chart is labelled with (the chart's
/// `karpenter.labels`): `app.kubernetes.io/version` (its appVersion), else the version in
/// `helm.sh/chart` (`karpenter-1.15.0`); only where `helm.sh/chart` names Karpenter's chart, so
/// that another chart's version is never taken for Karpenter's.
pub fn chart_version<'a>(label: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
    let chart = label("helm.sh/chart")?.strip_prefix("karpenter-")?;
    Some(
        label("app.kubernetes.io/version")
            .unwrap_or(chart)
            .to_string(),
    )
}

/// A Karpenter pod (alone, or a list item that names Karpenter): the credentials the EKS
/// webhooks gave its containers.
fn pod(value: &Value, in_list: bool, sink: &mut Sink<'_>) {
    let Some(metadata) = value.get("metadata") else {
        return;
    };
    let unbound = str_at(value, &["spec", "nodeName"]).is_none();
    if let (Some("Pending"), true, Some(namespace), Some(name)) = (
        str_at(value, &["status", "phase"]),
        unbound,
        str_at(metadata, &["namespace"]),
        str_at(metadata, &["name"]),
    ) {
        sink.pending_pod(super::PodRef {
            namespace: namespace.into(),
            name: name.into(),
        });
    }
    if in_list && !names_karpenter(metadata) {
        return;
    }
    let (Some(namespace), Some(name)) = (
        str_at(metadata, &["namespace"]),
        str_at(metadata, &["name"]),
    ) else {
        return;
    };
    let vars: Vec<&Value> = value
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("env").and_then(Value::as_array))
        .flatten()
        .collect();
    let env: Vec<&str> = vars.iter().filter_map(|e| str_at(e, &["name"])).collect();
    // Karpenter's chart sets its cluster's name (settings.clusterName) as CLUSTER_NAME.
    if let Some(cluster) = vars
        .iter()
        .find(|e| str_at(e, &["name"]) == Some("CLUSTER_NAME"))
        .and_then(|e| str_at(e, &["value"]))
    {
        sink.cluster_name(cluster);
    }
    let credentials = if env.contains(&"AWS_WEB_IDENTITY_TOKEN_FILE") {
        super::PodCredentials::WebIdentity
    } else if env.contains(&"AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        super::PodCredentials::PodIdentity
    } else {
        super::PodCredentials::None
    };
    sink.karpenter_pod(super::PodInfo {
        namespace: namespace.to_string(),
        name: name.to_string(),
        service_account: str_at(value, &["spec", "serviceAccountName"])
            .unwrap_or("default")
            .to_string(),
        credentials,
    });
}

/// The controller role from IRSA's annotation. In a list only Karpenter's own service account
/// counts (its name, namespace or a label says karpenter); a lone object was chosen by the user.
fn service_account(value: &Value, in_list: bool, sink: &mut Sink<'_>) {
    let Some(metadata) = value.get("metadata") else {
        return;
    };
    let Some(role) = metadata
        .get("annotations")
        .and_then(|a| a.get(ROLE_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|r| r.starts_with("arn:"))
    else {
        // Karpenter's own, without IRSA's annotation: evidence when calls come as the node.
        if let (true, Some(namespace), Some(name)) = (
            names_karpenter(metadata),
            str_at(metadata, &["namespace"]),
            str_at(metadata, &["name"]),
        ) {
            sink.unannotated_account(format!("{namespace}/{name}"));
        }
        return;
    };
    if names_karpenter(metadata) || !in_list {
        sink.controller_role(role);
        if let (Some(namespace), Some(name)) = (
            str_at(metadata, &["namespace"]),
            str_at(metadata, &["name"]),
        ) {
            sink.account(super::AccountInfo {
                namespace: namespace.to_string(),
                name: name.to_string(),
                role: role.to_string(),
                audience: metadata
                    .get("annotations")
                    .and_then(|a| a.get("eks.amazonaws.com/audience"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                chart_version: chart_version(|key| {
                    metadata
                        .get("labels")
                        .and_then(|l| l.get(key))
                        .and_then(Value::as_str)
                }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instance_ids_from_provider_ids() {
        let id = |s| instance_from_provider_id(s);
        assert_eq!(
            id("aws:///us-east-1a/i-0abc1234def567890").as_deref(),
            Some("i-0abc1234def567890")
        );
        assert_eq!(id("aws:///us-east-1a/"), None);
        assert_eq!(id("kind://docker/x/node"), None);
        assert_eq!(id("i-"), None);
    }

    #[test]
    fn an_event_on_a_pod_is_never_karpenters_evidence_whoever_reports_it() {
        let event = |namespace: &str, reporter: &str| serde_json::json!({"metadata": {"namespace": namespace}, "reportingComponent": reporter});
        // A pod's Events are in its namespace, where its users may write any: named, never
        // Karpenter's (nominations only link a pod to a NodeClaim, `pending`).
        assert!(event_author(&event("shop", "karpenter")).is_some());
        assert!(event_author(&event("shop", "someone")).is_some());
        assert_eq!(event_author(&event("default", "karpenter")), None);
        // Karpenter's recorder names no instance, in any of the places an Event keeps one.
        let host = |h: &str| serde_json::json!({"host": h});
        for (field, named, empty) in [
            (
                "reportingInstance",
                serde_json::json!("mallory-laptop"),
                serde_json::json!(""),
            ),
            ("source", host("mallory-laptop"), host("")),
            ("deprecatedSource", host("mallory-laptop"), host("")),
        ] {
            let mut e = event("default", "karpenter");
            e[field] = named;
            assert!(event_author(&e).is_some(), "{field}");
            e[field] = empty;
            assert_eq!(event_author(&e), None, "{field} empty");
        }
    }

    #[test]
    fn validation_tells_a_missing_instance_profile_apart() {
        let class = |reason: &str| {
            serde_json::json!({"status": {"conditions": [{"type": "ValidationSucceeded",
                "status": "False", "reason": reason,
                "message": "Instance profile \"KarpenterNodeInstanceProfile-prod\" not found"}]}})
        };
        assert_eq!(
            instance_profile_not_found(&class("InstanceProfileNotFound")),
            Some("Instance profile \"KarpenterNodeInstanceProfile-prod\" not found")
        );
        assert_eq!(
            instance_profile_not_found(&class("RunInstancesAuthCheckFailed")),
            None
        );
    }

    #[test]
    fn paths_only_yield_non_empty_strings() {
        let v = serde_json::json!({"a": {"b": "x", "e": "", "n": 1}});
        assert_eq!(str_at(&v, &["a", "b"]), Some("x"));
        assert_eq!(str_at(&v, &["a", "e"]), None);
        assert_eq!(str_at(&v, &["a", "n"]), None);
        assert_eq!(str_at(&v, &["a", "b", "c"]), None);
    }
}
