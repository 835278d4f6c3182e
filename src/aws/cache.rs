//! Facts cached by key with a time to live, and single-flight: concurrent lookups of the same
//! key share one AWS round trip. Failures are kept for a shorter time than answers.

use super::guard::AwsError;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

type Cell<V> = Arc<OnceCell<Result<V, AwsError>>>;

pub struct Cache<V> {
    ttl: Duration,
    error_ttl: Duration,
    cells: Mutex<HashMap<String, (Instant, Cell<V>)>>,
}

impl<V: Clone> Cache<V> {
    pub fn new(ttl: Duration, error_ttl: Duration) -> Cache<V> {
        Cache {
            ttl,
            error_ttl,
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value of `key`, or the result of `fetch` (run once however many ask at once).
    pub async fn get<Fut>(&self, key: &str, fetch: impl FnOnce() -> Fut) -> Result<V, AwsError>
    where
        Fut: Future<Output = Result<V, AwsError>>,
    {
        let cell = {
            let mut cells = self.cells.lock().expect("cache lock");
            let now = Instant::now();
            let fresh = cells.get(key).filter(|(at, cell)| match cell.get() {
                None => true,
                Some(Ok(_)) => now - *at < self.ttl,
                Some(Err(_)) => now - *at < self.error_ttl,
            });
            match fresh {
                Some((_, cell)) => cell.clone(),
                None => {
                    let cell: Cell<V> = Arc::new(OnceCell::new());
                    cells.insert(key.to_string(), (now, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_init(fetch).await.clone()
    }

    /// Forgets every answer: the next lookups ask AWS again.
    pub fn clear(&self) {
        self.cells.lock().expect("cache lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::guard::Outcome;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn concurrent_lookups_share_one_fetch_until_the_ttl_expires() {
        let cache: Cache<u32> = Cache::new(Duration::from_secs(300), Duration::from_secs(30));
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(7)
        };
        let (a, b, c) = tokio::join!(
            cache.get("k", fetch),
            cache.get("k", fetch),
            cache.get("k", fetch)
        );
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (7, 7, 7));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(299)).await;
        cache.get("k", fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        cache.get("k", fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_after_the_shorter_error_ttl() {
        let cache: Cache<u32> = Cache::new(Duration::from_secs(300), Duration::from_secs(30));
        let fetches = AtomicUsize::new(0);
        let fail = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Err(AwsError {
                service: "iam",
                operation: "GetRole",
                outcome: Outcome::Denied,
                message: "AccessDenied".into(),
            })
        };
        assert!(cache.get("k", fail).await.is_err());
        assert!(cache.get("k", fail).await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(cache.get("k", fail).await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }
}
