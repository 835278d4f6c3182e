//! Being polite with AWS: every call passes one guard that spaces requests per service (IAM
//! is strict), classifies failures (throttled, denied, error) and counts calls by outcome.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How a call ended (the `outcome` label of `karpenter_doctor_aws_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Ok,
    Throttled,
    Denied,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Throttled => "throttled",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// A failed lookup: which call, how it ended, and AWS's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub outcome: Outcome,
    pub message: String,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} {}: {}",
            self.service,
            self.operation,
            self.outcome.as_str(),
            self.message
        )
    }
}

/// Requests per second each service gets by default.
pub fn default_rate(service: &str) -> f64 {
    match service {
        "iam" => 5.0,
        "sts" => 10.0,
        _ => 20.0,
    }
}

/// Spaces calls of one service at most `per_second` apart.
struct Limiter {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Limiter {
    fn new(per_second: f64) -> Limiter {
        Limiter {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.001)),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// The guard every AWS call goes through.
pub struct Guard {
    limiters: BTreeMap<&'static str, Limiter>,
    counts: Mutex<BTreeMap<(&'static str, &'static str, Outcome), u64>>,
}

impl Guard {
    /// A guard with a rate per service (`iam`, `kms`, `sts`, `ec2`).
    pub fn new(rates: &[(&'static str, f64)]) -> Guard {
        Guard {
            limiters: rates.iter().map(|(s, r)| (*s, Limiter::new(*r))).collect(),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs one AWS call: waits its turn, then classifies and counts the result.
    pub async fn call<T, E, Fut>(
        &self,
        service: &'static str,
        operation: &'static str,
        call: impl FnOnce() -> Fut,
    ) -> Result<T, AwsError>
    where
        Fut: Future<Output = Result<T, E>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if let Some(limiter) = self.limiters.get(service) {
            limiter.acquire().await;
        }
        let result = call().await.map_err(|e| {
            let outcome = classify(e.code());
            let message = match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => chain(&e),
            };
            AwsError {
                service,
                operation,
                outcome,
                message,
            }
        });
        let outcome = result.as_ref().map_or_else(|e| e.outcome, |_| Outcome::Ok);
        *self
            .counts
            .lock()
            .expect("counts lock")
            .entry((service, operation, outcome))
            .or_default() += 1;
        result
    }

    /// Calls made so far, by service, operation and outcome.
    pub fn counts(&self) -> BTreeMap<(&'static str, &'static str, Outcome), u64> {
        self.counts.lock().expect("counts lock").clone()
    }
}

/// An error and its sources, outermost first: `request has timed out: operation timeout …`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The outcome an AWS error code stands for.
pub fn classify(code: Option<&str>) -> Outcome {
    match code {
        Some(
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "SlowDown",
        ) => Outcome::Throttled,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "AuthFailure"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "OptInRequired",
        ) => Outcome::Denied,
        _ => Outcome::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::error::ErrorMetadata;

    #[test]
    fn error_codes_map_to_outcomes() {
        assert_eq!(classify(Some("Throttling")), Outcome::Throttled);
        assert_eq!(classify(Some("AccessDenied")), Outcome::Denied);
        assert_eq!(classify(Some("UnauthorizedOperation")), Outcome::Denied);
        assert_eq!(classify(Some("InternalFailure")), Outcome::Error);
        assert_eq!(classify(None), Outcome::Error);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_spaces_calls_of_one_service() {
        let guard = Guard::new(&[("iam", 5.0)]);
        let start = Instant::now();
        for _ in 0..6 {
            guard
                .call("iam", "GetRole", || async { Ok::<(), ErrorMetadata>(()) })
                .await
                .unwrap();
        }
        // Six calls at 5/s: the sixth starts one second after the first.
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        assert_eq!(guard.counts()[&("iam", "GetRole", Outcome::Ok)], 6);
    }

    #[tokio::test]
    async fn failures_are_classified_and_counted() {
        let guard = Guard::new(&[]);
        let throttled = ErrorMetadata::builder()
            .code("Throttling")
            .message("Rate exceeded")
            .build();
        let e = guard
            .call("iam", "GetRole", || async { Err::<(), _>(throttled) })
            .await
            .unwrap_err();
        assert_eq!(
            (e.outcome, e.message.as_str()),
            (Outcome::Throttled, "Throttling: Rate exceeded")
        );
        let denied = ErrorMetadata::builder().code("AccessDenied").build();
        let e = guard
            .call("kms", "ListGrants", || async { Err::<(), _>(denied) })
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "kms:ListGrants denied: AccessDenied");
        assert_eq!(guard.counts().values().sum::<u64>(), 2);
    }
}
