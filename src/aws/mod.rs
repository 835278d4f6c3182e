//! Live AWS facts: the official SDK clients behind one `Live` handle (caching, single-flight,
//! rate limits, retries, timeouts), answering the questions diagnosis asks. Reads only.

pub mod cache;
pub mod gather;
pub mod guard;
pub mod live;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// How to reach AWS.
#[derive(Debug, Clone)]
pub struct AwsOptions {
    pub region: Option<String>,
    /// A local emulator or a VPC endpoint (tests: moto on 127.0.0.1).
    pub endpoint_url: Option<String>,
    /// Attempts per call, retries included (exponential backoff with jitter on throttling and
    /// 5xx, by the SDK's standard retry strategy).
    pub max_attempts: u32,
    /// Time limit of one call, retries included.
    pub timeout: Duration,
    /// How long answers are kept (failures: a tenth of it).
    pub ttl: Duration,
    /// Requests per second per service.
    pub rates: Vec<(&'static str, f64)>,
    /// Static credentials (tests); `None` uses the default credential chain.
    pub static_credentials: Option<(String, String)>,
    /// Roles to assume to read KMS keys of other accounts: (account id, role ARN).
    pub assume_roles: Vec<(String, String)>,
    /// The EKS cluster whose OIDC issuer and Pod Identity associations credentials failures
    /// need (else what the inputs name: Karpenter's CLUSTER_NAME).
    pub cluster_name: Option<String>,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            region: None,
            endpoint_url: None,
            max_attempts: 3,
            cluster_name: None,
            timeout: Duration::from_secs(10),
            ttl: Duration::from_secs(300),
            rates: ["iam", "kms", "sts", "ec2"]
                .iter()
                .map(|s| (*s, guard::default_rate(s)))
                .collect(),
            static_credentials: None,
            assume_roles: Vec::new(),
        }
    }
}

/// The SDK configuration for `options`.
pub async fn sdk_config(options: &AwsOptions) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(options.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(options.timeout)
                .connect_timeout(Duration::from_secs(3))
                .build(),
        );
    if let Some(region) = &options.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some((id, secret)) = &options.static_credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            id, secret, None, None, "static",
        ));
    }
    loader.load().await
}
