//! IRSA and Pod Identity set up in moto (us-west-2): an EKS cluster `prod` and its OIDC
//! issuer, Karpenter's controller role with a given trust policy, the account's OIDC provider;
//! and the line Karpenter logs when STS refuses its ServiceAccount token.

use super::live::{ACCOUNT, config, runtime};
use super::moto::Moto;
use serde_json::{Value, json};

pub const REGION: &str = "us-west-2";
pub const ROLE: &str = "KarpenterController-prod";

pub fn role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}")
}

/// An EKS cluster `prod` in moto; its OIDC issuer URL.
pub fn create_cluster(moto: &Moto) -> String {
    runtime().block_on(async {
        let eks = aws_sdk_eks::Client::new(&config(moto, REGION).await);
        let vpc = aws_sdk_eks::types::VpcConfigRequest::builder()
            .subnet_ids("subnet-0a1b2c3d4e5f60718")
            .build();
        let out = eks
            .create_cluster()
            .name("prod")
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/eks-cluster"))
            .resources_vpc_config(vpc)
            .send()
            .await
            .unwrap();
        out.cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .expect("moto gives the cluster an issuer")
            .to_string()
    })
}

/// The controller role with `trust` as its trust policy; with `provider`, the IAM OIDC
/// provider of that issuer URL too.
pub fn create_role(moto: &Moto, trust: &Value, provider: Option<&str>) {
    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&config(moto, REGION).await);
        iam.create_role()
            .role_name(ROLE)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .unwrap();
        if let Some(url) = provider {
            iam.create_open_id_connect_provider()
                .url(url)
                .client_id_list("sts.amazonaws.com")
                .thumbprint_list("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
                .send()
                .await
                .unwrap();
        }
    });
}

/// A Karpenter v1 log line at `time` from its `controller` (nodeclass, interruption, …): IRSA
/// refused, as aws-sdk-go-v2 says it.
pub fn web_identity_line(time: &str, controller: &str) -> String {
    json!({"level": "ERROR", "time": time, "logger": "controller",
        "message": "Reconciler error", "controller": controller,
        "error": "describing instance types, operation error EC2: DescribeInstanceTypes, get identity: get credentials: failed to refresh cached credentials, failed to retrieve credentials, operation error STS: AssumeRoleWithWebIdentity, https response error StatusCode: 403, RequestID: 552909e8-e4c8-43ad-bd34-0dbcbbe18d60, api error AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity"})
    .to_string()
}

/// One such line in `dir`/karpenter.log; its path.
pub fn web_identity_log(dir: &str) -> String {
    let path = format!("{dir}/karpenter.log");
    let line = web_identity_line("2026-02-09T17:21:05.331Z", "nodeclass");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    path
}

/// The role's trust policy, replaced (the fix).
pub fn update_trust(moto: &Moto, trust: &Value) {
    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&config(moto, REGION).await);
        iam.update_assume_role_policy()
            .role_name(ROLE)
            .policy_document(trust.to_string())
            .send()
            .await
            .unwrap();
    });
}

/// A trust policy for Karpenter's ServiceAccount `namespace`/karpenter through `issuer`'s
/// provider (the audience EKS gives tokens).
pub fn irsa_trust(issuer: &str, namespace: &str) -> Value {
    let host = issuer.trim_start_matches("https://");
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "KarpenterIRSA", "Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{host}:sub"): format!("system:serviceaccount:{namespace}:karpenter"),
            format!("{host}:aud"): "sts.amazonaws.com"}}}]})
}
