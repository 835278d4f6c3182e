//! Following the Karpenter controller's logs: every pod matching the selector, across restarts
//! and replicas, resuming after a reconnect from the last line's time; only lines that may hold
//! a failure are kept, within a byte budget.

use super::metrics::Metrics;
use crate::signal::Scanner;
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
/// The kept lines' total size; older ones fall off (a Karpenter failure line is ~1 KiB).
pub const MAX_BYTES: usize = 8 << 20;

/// The lines kept so far, oldest first, with the pod they came from.
#[derive(Default)]
pub struct LogBuffer {
    pub lines: VecDeque<(String, String)>,
    bytes: usize,
}

impl LogBuffer {
    fn push(&mut self, pod: &str, line: String) {
        self.bytes += pod.len() + line.len();
        self.lines.push_back((pod.to_string(), line));
        while self.bytes > MAX_BYTES {
            let Some((pod, line)) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= pod.len() + line.len();
        }
    }
}

/// Where followed lines go: the buffer (lines the scanner may recognise), the wake-up, and the
/// count of failed reads.
#[derive(Clone)]
pub struct Sink {
    pub buffer: Arc<Mutex<LogBuffer>>,
    pub notify: Arc<Notify>,
    pub scanner: Arc<Scanner>,
    pub metrics: Arc<Metrics>,
}

/// Follows the logs of the pods `selector` picks in `namespace` until the task is dropped;
/// each line the scanner may recognise is kept and wakes `notify` (the others, most of them,
/// are dropped). `since` is where reading starts (a restart resumes there).
pub async fn follow(pods: Api<Pod>, selector: String, since: Option<Timestamp>, sink: Sink) {
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
                    let task =
                        tokio::spawn(follow_pod(pods.clone(), name.clone(), since, sink.clone()));
                    followed.insert(name, task);
                }
            }
            Err(e) => {
                sink.metrics.kube_error("pods", &e);
                tracing_warn(&format!("listing Karpenter pods: {e}"));
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// One pod's log, followed; after a break, resumed from the last line's timestamp.
async fn follow_pod(pods: Api<Pod>, name: String, mut since: Option<Timestamp>, sink: Sink) {
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
                sink.metrics.kube_error("pods/log", &e);
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
                    if sink.scanner.may_recognise(text) {
                        let text = crate::signal::text::cut(text, MAX_LINE);
                        sink.buffer.lock().expect("log buffer").push(&name, text);
                        sink.notify.notify_one();
                    }
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

#[cfg(test)]
mod tests {
    use super::{LogBuffer, MAX_BYTES};
    use crate::signal::{Observations, Scanner};

    #[test]
    fn the_buffer_keeps_the_newest_lines_within_its_byte_budget() {
        let mut buffer = LogBuffer::default();
        let line = |i: usize| format!("{i:08}{}", "x".repeat(1016));
        let n = 3 * MAX_BYTES / 1024;
        for i in 0..n {
            buffer.push("karpenter-1", line(i));
        }
        let size: usize = buffer.lines.iter().map(|(p, l)| p.len() + l.len()).sum();
        assert!(size <= MAX_BYTES && size > MAX_BYTES - 2048, "{size}");
        assert_eq!(buffer.bytes, size);
        assert_eq!(buffer.lines.back().unwrap().1, line(n - 1));
        let first = n - buffer.lines.len();
        assert_eq!(buffer.lines.front().unwrap().1, line(first));
    }

    /// Dropping the lines the scanner cannot recognise loses no signal.
    #[test]
    fn only_lines_that_may_hold_a_failure_are_kept_and_no_signal_is_lost() {
        let scanner = Scanner::new().unwrap();
        for file in [
            "karpenter-v1.jsonl",
            "karpenter-v03x-console.log",
            "seed-passrole.txt",
        ] {
            let path = format!(
                "{}/tests/fixtures/signals/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(path).unwrap();
            let kept: String = text
                .lines()
                .filter(|l| scanner.may_recognise(l))
                .map(|l| format!("{l}\n"))
                .collect();
            let signals = |text: &str| {
                let mut out = Observations::default();
                scanner
                    .scan(file, text.as_bytes(), &mut out, &mut |_| {})
                    .unwrap();
                out.signals
                    .into_iter()
                    .map(|s| (s.rule, s.message, s.node_claim))
                    .collect::<Vec<_>>()
            };
            let all = signals(&text);
            assert!(!all.is_empty(), "{file}");
            assert_eq!(signals(&kept), all, "{file}");
            if file.ends_with(".jsonl") {
                assert!(
                    kept.lines().count() < text.lines().count(),
                    "{file}: info lines dropped"
                );
            }
        }
    }
}
