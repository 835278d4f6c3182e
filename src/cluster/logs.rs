//! Following the Karpenter controller's logs: every pod matching the selector, across restarts
//! and replicas, resuming after a reconnect from the last line's time; only lines that may hold
//! a failure are kept, within a byte budget.

use super::metrics::Metrics;
use crate::signal::Scanner;
use futures_util::io::{AsyncBufRead, AsyncBufReadExt};
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

/// Where followed lines go: the buffer (lines the scanner may recognise), the wake-up, the
/// count of failed reads; and the pods last listed.
#[derive(Clone)]
pub struct Sink {
    pub buffer: Arc<Mutex<LogBuffer>>,
    pub notify: Arc<Notify>,
    pub scanner: Arc<Scanner>,
    pub metrics: Arc<Metrics>,
    /// Karpenter's pods as last listed (how each gets its AWS credentials is evidence).
    pub pods: Arc<Mutex<Vec<Pod>>>,
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
                *sink.pods.lock().expect("pods") = list.items.clone();
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
        let read = read_into(stream, &name, &sink).await;
        if read.last.is_some() {
            // Resume after the last line: sinceTime is inclusive, so step past it.
            since = read.last.map(|at| at + Duration::from_nanos(1));
        }
        if let Some(e) = read.error {
            tracing_warn(&format!("reading the log of {name}: {e}"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What reading one log stream came to.
#[derive(Debug, Default)]
pub struct Read {
    /// Lines read (kept or not).
    pub lines: u64,
    /// The time of the last stamped line.
    pub last: Option<Timestamp>,
    /// The error that ended the stream early.
    pub error: Option<std::io::Error>,
}

/// Reads a log stream (`timestamps=true`) to its end into the sink: each line the scanner may
/// recognise is kept (cut at `MAX_LINE`, however long the line is on the wire) and wakes
/// `notify`. Bytes that are not UTF-8 are replaced, never an end: one bad line loses nothing else.
pub async fn read_into(stream: impl AsyncBufRead, pod: &str, sink: &Sink) -> Read {
    let mut stream = std::pin::pin!(stream);
    let mut read = Read::default();
    let mut line = Vec::new();
    let keep = |line: &[u8], read: &mut Read| {
        read.lines += 1;
        let line = String::from_utf8_lossy(line);
        let (at, text) = split_timestamp(line.trim_end_matches('\r'));
        if at.is_some() {
            read.last = at;
        }
        if sink.scanner.may_recognise(text) {
            let text = crate::signal::text::cut(text, MAX_LINE);
            sink.buffer.lock().expect("log buffer").push(pod, text);
            sink.notify.notify_one();
        }
    };
    loop {
        let (end, used) = match stream.as_mut().fill_buf().await {
            Ok([]) => {
                if !line.is_empty() {
                    keep(&line, &mut read);
                }
                return read;
            }
            Ok(buf) => {
                let (end, used) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (true, i),
                    None => (false, buf.len()),
                };
                // A line past the cap is cut: what is beyond it is skipped, not held
                // (timestamp and message come first).
                let room = (MAX_LINE + TIMESTAMP).saturating_sub(line.len());
                line.extend_from_slice(&buf[..used.min(room)]);
                (end, used)
            }
            Err(e) => {
                read.error = Some(e);
                return read;
            }
        };
        stream.as_mut().consume(used + usize::from(end));
        if end {
            keep(&line, &mut read);
            line.clear();
        }
    }
}

/// Room for the RFC 3339 time `timestamps=true` puts before each line.
const TIMESTAMP: usize = 40;

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
    use super::{LogBuffer, MAX_BYTES, MAX_LINE, Sink, read_into};
    use crate::signal::{Observations, Scanner};
    use std::sync::{Arc, Mutex};

    fn sink() -> Sink {
        Sink {
            buffer: Arc::new(Mutex::new(LogBuffer::default())),
            notify: Arc::default(),
            scanner: Arc::new(Scanner::new().unwrap()),
            metrics: Arc::default(),
            pods: Arc::default(),
        }
    }

    const DENIED: &str = r#"{"level":"ERROR","message":"failed launching nodeclaim","error":"UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/KarpenterController/1 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/KarpenterNode"}"#;

    /// A byte that is not UTF-8, a line of 1 MiB, a line without its newline: each is read as
    /// one line (replaced, cut, ended), and none of them costs the lines around it.
    #[tokio::test]
    async fn bad_lines_in_a_log_stream_cost_nothing_else() {
        let mut wire = Vec::new();
        wire.extend_from_slice(format!("2026-12-01T10:00:00.000000001Z {DENIED}\n").as_bytes());
        wire.extend_from_slice(b"2026-12-01T10:00:01Z caf\xe9 \xff\xfe ");
        wire.extend_from_slice(format!("{DENIED}\n").as_bytes());
        wire.extend_from_slice(b"2026-12-01T10:00:02Z ");
        wire.extend(std::iter::repeat_n(b'A', 1 << 20));
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(format!("2026-12-01T10:00:03Z {DENIED}").as_bytes());
        let sink = sink();
        // Served in small pieces, as a network stream is.
        let pieces = wire
            .chunks(777)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>();
        let stream =
            futures_util::TryStreamExt::into_async_read(futures_util::stream::iter(pieces));
        let read = read_into(stream, "karpenter-1", &sink).await;
        assert!(read.error.is_none(), "{:?}", read.error);
        assert_eq!(read.lines, 4);
        assert_eq!(
            read.last,
            Some("2026-12-01T10:00:03Z".parse().unwrap()),
            "the last line's time"
        );
        let buffer = sink.buffer.lock().unwrap();
        let kept: Vec<&str> = buffer.lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            kept.len(),
            3,
            "the two denials and the replaced line: {:?}",
            kept.iter()
                .map(|l| &l[..40.min(l.len())])
                .collect::<Vec<_>>()
        );
        assert_eq!(kept[0], DENIED);
        assert_eq!(kept[1], format!("caf\u{fffd} \u{fffd}\u{fffd} {DENIED}"));
        assert_eq!(kept[2], DENIED);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_cap_is_kept_cut() {
        let long = format!(
            "2026-12-01T10:00:00Z {DENIED} {}\n",
            "x".repeat(2 * MAX_LINE)
        );
        let sink = sink();
        let read = read_into(long.as_bytes(), "karpenter-1", &sink).await;
        assert_eq!(read.lines, 1);
        let buffer = sink.buffer.lock().unwrap();
        let (_, kept) = &buffer.lines[0];
        assert!(
            kept.starts_with(DENIED) && kept.len() <= MAX_LINE,
            "{}",
            kept.len()
        );
    }

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
