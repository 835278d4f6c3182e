//! The options that say how to reach AWS (`explain --live`, `snapshot`): region, endpoint,
//! retries, time limit, and roles to assume for other accounts' KMS keys.

use crate::aws::AwsOptions;
use crate::policy::arn::Arn;
use clap::Args;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct AwsArgs {
    /// The AWS region (else the credential chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// An AWS endpoint (an emulator, in tests).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Attempts per AWS call, retries included (exponential backoff with jitter).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub aws_max_attempts: u32,
    /// Time limit of one AWS call, retries included, in seconds.
    #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = parse_seconds)]
    pub aws_timeout: Duration,
    /// Read KMS keys of ACCOUNT as ROLE_ARN (repeatable): ACCOUNT=ROLE_ARN.
    #[arg(long = "assume-role", value_name = "ACCOUNT=ROLE_ARN", value_parser = parse_assume_role)]
    pub assume_roles: Vec<(String, String)>,
    /// The EKS cluster, for credentials failures: its OIDC issuer (eks:DescribeCluster) and
    /// Pod Identity associations [default: Karpenter's CLUSTER_NAME where an input shows it].
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
}

impl AwsArgs {
    /// The SDK options these flags ask for.
    pub fn options(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            max_attempts: self.aws_max_attempts,
            timeout: self.aws_timeout,
            assume_roles: self.assume_roles.clone(),
            cluster_name: self.cluster_name.clone(),
            ..AwsOptions::default()
        }
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err("expected a positive number of seconds".into()),
    }
}

/// `ACCOUNT=ROLE_ARN`: a 12-digit account and a role ARN in that account.
fn parse_assume_role(spec: &str) -> Result<(String, String), String> {
    let (account, role) = spec.split_once('=').ok_or("expected ACCOUNT=ROLE_ARN")?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err("ACCOUNT must be a 12-digit AWS account id".into());
    }
    let arn = Arn::parse(role).ok_or("ROLE_ARN is not an ARN")?;
    if arn.service != "iam" || !arn.resource.starts_with("role/") || arn.account != account {
        return Err("ROLE_ARN must be an IAM role of ACCOUNT".into());
    }
    Ok((account.to_string(), role.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "NaN", "inf", "soon"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assume_role_specs_are_checked() {
        let ok = parse_assume_role("444455556666=arn:aws:iam::444455556666:role/doctor-reader");
        assert_eq!(
            ok.unwrap(),
            (
                "444455556666".into(),
                "arn:aws:iam::444455556666:role/doctor-reader".into()
            )
        );
        for bad in [
            "444455556666",
            "4444=arn:aws:iam::444455556666:role/r",
            "444455556666=role/r",
            "444455556666=arn:aws:iam::111122223333:role/r",
            "444455556666=arn:aws:iam::444455556666:user/u",
        ] {
            assert!(parse_assume_role(bad).is_err(), "{bad}");
        }
    }
}
