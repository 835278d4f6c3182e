//! `check`'s one read of a cluster, read-only: Karpenter's objects (v1 or v1beta1 by discovery),
//! the Events regarding them (only in `default`, where Karpenter records them), its
//! ServiceAccounts and Deployment, the last `since` of every Karpenter pod's logs (a restarted
//! container's previous one too; all of these only in Karpenter's namespace), and the doctor's
//! own Diagnoses where its CRD is served. What cannot be read is said and the rest still read; only
//! a cluster that does not answer at all is an error.

use super::logs::{LogBuffer, Sink, read_into};
use super::observe::{Objects, about_karpenter};
use super::slim::Slim;
use super::{crd, resources};
use crate::preflight::running::Container;
use crate::signal::{KARPENTER_EVENTS_NAMESPACE, Scanner};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where Karpenter runs, how far back its logs are read, and what is read.
pub struct Request {
    pub namespace: String,
    pub selector: String,
    pub since: Duration,
    pub scope: Scope,
}

/// What one read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything `check` reads: failures (NodeClaims, Events, logs), configuration, Diagnoses.
    Failures,
    /// How Karpenter is set up, for `preflight`: NodePools, EC2NodeClasses, its ServiceAccounts,
    /// Deployment and pods; no NodeClaim, Event, log or Diagnosis.
    Configuration,
}

/// One container's log that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRead {
    pub pod: String,
    pub container: String,
    /// The container before its last restart (`kubectl logs --previous`).
    pub previous: bool,
    pub lines: u64,
}

/// One Karpenter Deployment: its replicas, the ServiceAccount its pods run as, and its
/// controller container (image, literal env values, args).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRead {
    pub name: String,
    pub ready: i32,
    pub desired: i32,
    pub service_account: String,
    pub controller: Option<Container>,
    /// The Karpenter version its chart labelled it with.
    pub chart_version: Option<String>,
}

impl DeploymentRead {
    fn of(d: &Deployment) -> DeploymentRead {
        let pod = d.spec.template.spec.as_ref();
        DeploymentRead {
            name: d.metadata.name.clone().unwrap_or_default(),
            ready: d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            desired: d.spec.replicas.unwrap_or(1),
            service_account: pod
                .and_then(|p| p.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            controller: pod.and_then(controller_container),
            chart_version: crate::signal::chart_version(|key| {
                d.metadata.labels.as_ref()?.get(key).map(String::as_str)
            }),
        }
    }
}

/// Karpenter's controller container in a pod spec (the one named `controller`, else the
/// first): its image, literal env values (a value from a Secret or ConfigMap is not known) and
/// args.
pub fn controller_container(spec: &k8s_openapi::api::core::v1::PodSpec) -> Option<Container> {
    let c = spec
        .containers
        .iter()
        .find(|c| c.name == "controller")
        .or(spec.containers.first())?;
    Some(Container {
        image: c.image.clone().unwrap_or_default(),
        env: c
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect(),
        args: c.args.clone().unwrap_or_default(),
    })
}

/// Everything one read found, and what it could not read.
#[derive(Default)]
pub struct Reading {
    /// `version` of kube-apiserver.
    pub server_version: String,
    /// The version of Karpenter's API that was read (`v1`, `v1beta1`); `None`: not served.
    pub karpenter_version: Option<&'static str>,
    pub node_claims: Vec<Slim>,
    pub node_pools: Vec<Slim>,
    pub node_classes: Vec<Slim>,
    pub events: Vec<Event>,
    pub accounts: Vec<ServiceAccount>,
    /// Karpenter's Deployments the selector found.
    pub deployments: Vec<DeploymentRead>,
    /// Karpenter's pods the selector found.
    pub pods: Vec<Pod>,
    pub logs: Vec<LogRead>,
    /// The log lines that may hold a failure, as the controller keeps them.
    pub kept: LogBuffer,
    /// The doctor's Diagnoses, (name, active), where its CRD is served.
    pub diagnoses: Option<Vec<(String, bool)>>,
    /// What could not be read, and why, one line each.
    pub problems: Vec<String>,
}

impl Reading {
    /// The objects, for `observe`.
    pub fn objects(&self) -> Objects<'_> {
        Objects {
            node_claims: self.node_claims.iter().collect(),
            node_pools: self.node_pools.iter().collect(),
            node_classes: self.node_classes.iter().collect(),
            events: self.events.iter().collect(),
            accounts: self.accounts.iter().collect(),
            pods: self.pods.iter().collect(),
        }
    }
}

/// Reads the cluster once; `progress` hears what is being read. An error only when the API
/// server does not answer (or refuses the credentials) at all.
pub async fn read(
    client: &kube::Client,
    request: &Request,
    scanner: Arc<Scanner>,
    progress: &mut dyn FnMut(&str),
) -> Result<Reading, String> {
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| format!("cannot read the cluster: {e}"))?;
    let mut reading = Reading {
        server_version: version.git_version,
        ..Reading::default()
    };
    read_objects(client, request, &mut reading, progress).await;
    read_karpenter(client, request, &mut reading, progress).await;
    if request.scope == Scope::Failures {
        read_logs(client, request, scanner, &mut reading, progress).await;
        read_diagnoses(client, &mut reading).await;
    }
    Ok(reading)
}

async fn read_objects(
    client: &kube::Client,
    request: &Request,
    reading: &mut Reading,
    progress: &mut dyn FnMut(&str),
) {
    let mut versions = Vec::new();
    for group in [resources::KARPENTER_GROUP, resources::AWS_GROUP] {
        match kube::discovery::group(client, group).await {
            Ok(g) => versions.push(Some(resources::karpenter_version(g.versions()))),
            Err(e) => {
                reading
                    .problems
                    .push(format!("API group {group}: not served ({})", short(&e)));
                versions.push(None);
            }
        }
    }
    reading.karpenter_version = versions[0];
    let failures = request.scope == Scope::Failures;
    if let Some(v) = versions[0] {
        if failures {
            progress("NodeClaims");
            reading.node_claims =
                list_slim(client, resources::node_claims(v), "nodeclaims", reading).await;
        }
        progress("NodePools");
        reading.node_pools =
            list_slim(client, resources::node_pools(v), "nodepools", reading).await;
    }
    if let Some(v) = versions[1] {
        progress("EC2NodeClasses");
        reading.node_classes = list_slim(
            client,
            resources::node_classes(v),
            "ec2nodeclasses",
            reading,
        )
        .await;
    }
    if failures {
        progress("Events");
        let events: Vec<Event> = list(
            Api::namespaced(client.clone(), KARPENTER_EVENTS_NAMESPACE),
            "events",
            reading,
        )
        .await;
        reading.events = events.into_iter().filter(about_karpenter).collect();
    }
    progress("ServiceAccounts");
    reading.accounts = list(
        Api::namespaced(client.clone(), &request.namespace),
        "serviceaccounts",
        reading,
    )
    .await;
}

async fn list_slim(
    client: &kube::Client,
    ar: kube::api::ApiResource,
    what: &str,
    reading: &mut Reading,
) -> Vec<Slim> {
    list(Api::<Slim>::all_with(client.clone(), &ar), what, reading).await
}

/// Every object `api` lists, page by page; a refusal is noted and reads as none.
async fn list<K>(api: Api<K>, what: &str, reading: &mut Reading) -> Vec<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    super::resources::list_all(&api, ListParams::default())
        .await
        .unwrap_or_else(|e| {
            reading.problems.push(format!("{what}: {}", short(&e)));
            Vec::new()
        })
}

/// Karpenter's Deployments and pods (the selector's, in its namespace).
async fn read_karpenter(
    client: &kube::Client,
    request: &Request,
    reading: &mut Reading,
    progress: &mut dyn FnMut(&str),
) {
    progress("Karpenter's Deployment");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &request.namespace);
    match deployments
        .list(&ListParams::default().labels(&request.selector))
        .await
    {
        Ok(list) => reading.deployments = list.items.iter().map(DeploymentRead::of).collect(),
        Err(e) => reading.problems.push(format!(
            "deployments in {}: {}",
            request.namespace,
            short(&e)
        )),
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &request.namespace);
    progress("Karpenter's pods");
    let logs = match request.scope {
        Scope::Failures => "Karpenter's logs are not read; ",
        Scope::Configuration => "",
    };
    match pods
        .list(&ListParams::default().labels(&request.selector))
        .await
    {
        Ok(list) => {
            reading.pods = list
                .items
                .into_iter()
                .filter(|p| p.metadata.name.is_some())
                .collect();
            if reading.pods.is_empty() {
                reading.problems.push(format!(
                    "no pods match {} in {} ({logs}--karpenter-namespace, --karpenter-selector)",
                    request.selector, request.namespace
                ));
            }
        }
        Err(e) => reading.problems.push(format!(
            "pods in {}: {} ({logs}--karpenter-namespace, --karpenter-selector)",
            request.namespace,
            short(&e)
        )),
    }
}

/// The logs of every container of every Karpenter pod since `request.since`, and of the
/// previous container where one restarted.
async fn read_logs(
    client: &kube::Client,
    request: &Request,
    scanner: Arc<Scanner>,
    reading: &mut Reading,
    progress: &mut dyn FnMut(&str),
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &request.namespace);
    let sink = Sink {
        buffer: Arc::new(Mutex::new(LogBuffer::default())),
        notify: Arc::default(),
        scanner,
        metrics: Arc::default(),
        pods: Arc::default(),
    };
    let since = i64::try_from(request.since.as_secs()).unwrap_or(i64::MAX);
    let list = reading.pods.clone();
    for pod in &list {
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        for (container, restarted) in containers(pod) {
            for previous in [false, true] {
                if previous && !restarted {
                    continue;
                }
                progress(&format!("the log of {name}/{container}"));
                let params = LogParams {
                    container: Some(container.clone()),
                    previous,
                    since_seconds: Some(since),
                    timestamps: true,
                    ..LogParams::default()
                };
                let which = if previous { " (previous)" } else { "" };
                match pods.log_stream(&name, &params).await {
                    Ok(stream) => {
                        let read = read_into(stream, &name, &sink).await;
                        if let Some(e) = read.error {
                            reading.problems.push(format!(
                                "the log of {name}/{container}{which}: cut short ({e})"
                            ));
                        }
                        reading.logs.push(LogRead {
                            pod: name.clone(),
                            container: container.clone(),
                            previous,
                            lines: read.lines,
                        });
                    }
                    Err(e) => reading.problems.push(format!(
                        "the log of {name}/{container}{which}: {}",
                        short(&e)
                    )),
                }
            }
        }
    }
    reading.kept = std::mem::take(&mut *sink.buffer.lock().expect("log buffer"));
}

/// A pod's containers, and whether each has restarted (so has a previous log).
fn containers(pod: &Pod) -> Vec<(String, bool)> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let restarted = |name: &str| {
        statuses.iter().find(|c| c.name == name).is_some_and(|c| {
            c.restart_count > 0
                || c.last_state
                    .as_ref()
                    .is_some_and(|l| l.terminated.is_some())
        })
    };
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c.name.clone(), restarted(&c.name)))
        .collect()
}

/// The doctor's Diagnoses, where its controller runs here (the CRD is served).
async fn read_diagnoses(client: &kube::Client, reading: &mut Reading) {
    if kube::discovery::group(client, crd::GROUP).await.is_err() {
        return;
    }
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resources::diagnoses());
    let items: Vec<DynamicObject> = list(api, "diagnoses", reading).await;
    let mut out: Vec<(String, bool)> = items
        .into_iter()
        .filter_map(|d| {
            let resolved = d.data["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Resolved" && c["status"] == "True");
            Some((d.metadata.name?, !resolved))
        })
        .collect();
    out.sort();
    reading.diagnoses = Some(out);
}

/// A Kubernetes error in one line: the server's message where it gave one.
fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("{} ({})", status.reason.to_lowercase(), status.message)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::containers;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn a_restarted_container_has_a_previous_log_to_read() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "karpenter-1"},
            "spec": {"containers": [{"name": "controller"}, {"name": "sidecar"}, {"name": "fresh"}]},
            "status": {"containerStatuses": [
                {"name": "controller", "restartCount": 4, "ready": false, "image": "i", "imageID": "",
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}},
                {"name": "sidecar", "restartCount": 0, "ready": true, "image": "i", "imageID": "",
                 "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}},
                {"name": "fresh", "restartCount": 0, "ready": true, "image": "i", "imageID": ""}]}
        }))
        .unwrap();
        assert_eq!(
            containers(&pod),
            [
                ("controller".to_string(), true),
                ("sidecar".to_string(), true),
                ("fresh".to_string(), false)
            ]
        );
        let bare: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}})).unwrap();
        assert!(containers(&bare).is_empty());
    }
}
