//! The controller's HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (alive) and
//! `/readyz` (caches synced); a minimal HTTP/1.1 responder, one request per connection.

use super::metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `paths` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, ready) = (metrics.clone(), ready.clone());
        tokio::spawn(async move {
            let mut head = vec![0u8; 4096];
            let n = conn.read(&mut head).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&head[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path.split('?').next().unwrap_or(path) {
                "/metrics" => ("200 OK", metrics.encode()),
                "/healthz" => ("200 OK", "ok\n".to_string()),
                "/readyz" if ready.load(Ordering::SeqCst) => ("200 OK", "ok\n".to_string()),
                "/readyz" => ("503 Service Unavailable", "caches not synced\n".to_string()),
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        });
    }
}
