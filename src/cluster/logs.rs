//! Following the Karpenter controller's logs: every pod matching the selector, across restarts
//! and replicas, resuming after a reconnect from the last line's time; lines are bounded.

use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, LogParams};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Lines longer than this are cut (a log line of Karpenter's is a few KiB at most).
pub const MAX_LINE: usize = 64 * 1024;
/// Lines kept in memory; older ones fall off.
pub const MAX_LINES: usize = 50_000;

/// The lines read so far, oldest first, with the pod they came from.
#[derive(Default)]
pub struct LogBuffer {
    pub lines: VecDeque<(String, String)>,
}

impl LogBuffer {
    fn push(&mut self, pod: &str, line: String) {
        if self.lines.len() == MAX_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back((pod.to_string(), line));
    }
}

/// Follows the logs of the pods `selector` picks in `namespace` until the task is dropped;
/// each new line wakes `notify`. `since` is where reading starts (a restart resumes there).
pub async fn follow(
    pods: Api<Pod>,
    selector: String,
    since: Option<Timestamp>,
    buffer: Arc<Mutex<LogBuffer>>,
    notify: Arc<Notify>,
) {
    let mut followed: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    loop {
        followed.retain(|_, task| !task.is_finished());
        match pods.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => {
                for pod in list.items {
                    let Some(name) = pod.metadata.name else {
                        continue;
                    };
                    if followed.contains_key(&name) {
                        continue;
                    }
                    let task = tokio::spawn(follow_pod(
                        pods.clone(),
                        name.clone(),
                        since,
                        buffer.clone(),
                        notify.clone(),
                    ));
                    followed.insert(name, task);
                }
            }
            Err(e) => tracing_warn(&format!("listing Karpenter pods: {e}")),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// One pod's log, followed; after a break, resumed from the last line's timestamp.
async fn follow_pod(
    pods: Api<Pod>,
    name: String,
    mut since: Option<Timestamp>,
    buffer: Arc<Mutex<LogBuffer>>,
    notify: Arc<Notify>,
) {
    loop {
        let params = LogParams {
            follow: true,
            timestamps: true,
            since_time: since,
            ..LogParams::default()
        };
        let stream = match pods.log_stream(&name, &params).await {
            Ok(s) => s,
            Err(kube::Error::Api(e)) if e.code == 404 => return,
            Err(e) => {
                tracing_warn(&format!("reading the log of {name}: {e}"));
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let lines = stream.lines();
        futures_util::pin_mut!(lines);
        loop {
            match lines.next().await.transpose() {
                Ok(Some(line)) => {
                    let (at, text) = split_timestamp(&line);
                    if let Some(at) = at {
                        // Resume after this line: sinceTime is inclusive, so step past it.
                        since = Some(at + Duration::from_nanos(1));
                    }
                    let text = crate::signal::text::cut(text, MAX_LINE);
                    buffer.lock().expect("log buffer").push(&name, text);
                    notify.notify_one();
                }
                Ok(None) => break,
                Err(e) => {
                    tracing_warn(&format!("reading the log of {name}: {e}"));
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `2024-06-04T09:31:02.123456789Z text` → (the time, the text), as `timestamps=true` prints.
pub fn split_timestamp(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((ts, rest)) => match ts.parse::<Timestamp>() {
            Ok(at) => (Some(at), rest),
            Err(_) => (None, line),
        },
        None => (None, line),
    }
}

fn tracing_warn(message: &str) {
    super::log::warn(message);
}
