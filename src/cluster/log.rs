//! The controller's own log: one JSON object per line on standard error, filtered by level
//! (`--log-level`), so log pipelines can parse it.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(2);

/// `error`, `warn`, `info` or `debug`; anything else is an error.
pub fn set_level(level: &str) -> Result<(), String> {
    let n = match level {
        "error" => 0,
        "warn" => 1,
        "info" => 2,
        "debug" => 3,
        other => {
            return Err(format!(
                "unknown log level {other}: error, warn, info or debug"
            ));
        }
    };
    LEVEL.store(n, Ordering::Relaxed);
    Ok(())
}

fn emit(level: u8, name: &str, message: &str) {
    if level <= LEVEL.load(Ordering::Relaxed) {
        let line = serde_json::json!({
            "level": name,
            "time": k8s_openapi::jiff::Timestamp::now().to_string(),
            "logger": "karpenter-doctor",
            "message": message,
        });
        eprintln!("{line}");
    }
}

pub fn error(message: &str) {
    emit(0, "error", message);
}

pub fn warn(message: &str) {
    emit(1, "warn", message);
}

pub fn info(message: &str) {
    emit(2, "info", message);
}

pub fn debug(message: &str) {
    emit(3, "debug", message);
}
