//! Credentials failures diagnosed with `explain --live` through the real SDK clients: the
//! cluster's OIDC issuer from `eks:DescribeCluster` and the account's providers from
//! `iam:ListOpenIDConnectProviders` (moto serves both), Karpenter's Pod Identity association
//! from `eks:ListPodIdentityAssociations` / `DescribePodIdentityAssociation` (moto lacks them:
//! the double answers in the EKS API Reference's shapes), the role's trust policy from GetRole.

mod common;

use common::credentials::*;
use common::double::{Double, Reply};
use common::live::*;
use common::moto::Moto;
use serde_json::{Value, json};

/// Karpenter's ServiceAccount (IRSA) and its pod, whose CLUSTER_NAME names the cluster.
fn karpenter_objects(dir: &str, pod_env: &[(&str, &str)]) -> String {
    let env: Vec<Value> = [("CLUSTER_NAME", "prod")]
        .iter()
        .chain(pod_env)
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "karpenter", "namespace": "kube-system",
            "annotations": {"eks.amazonaws.com/role-arn": role_arn()}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "karpenter-6c9d8b7f54-x2k4q", "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "karpenter"}},
            "spec": {"serviceAccountName": "karpenter", "containers": [{"name": "controller",
                "image": "public.ecr.aws/karpenter/controller:1.2.1", "env": env}]}}]});
    let path = format!("{dir}/karpenter-objects.json");
    std::fs::write(&path, list.to_string()).unwrap();
    path
}

fn root_cause(list: &Value) -> &Value {
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list:#}");
    &list["items"][0]["status"]["rootCause"]
}

#[test]
fn a_cluster_whose_issuer_is_no_iam_provider_is_confirmed_from_live_eks_and_iam() {
    let moto = Moto::start("credentials-oidc");
    let issuer = create_cluster(&moto);
    let host = issuer.trim_start_matches("https://");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}")},
        "Action": "sts:AssumeRoleWithWebIdentity"}]});
    create_role(&moto, &trust, None);
    let dir = scratch("credentials-oidc");
    let log = web_identity_log(&dir);
    let objects = karpenter_objects(&dir, &[]);
    // The cluster by --cluster-name here (Karpenter's CLUSTER_NAME in the next test).
    let (list, stderr) = explain_live(
        &moto,
        REGION,
        &[&log, &objects, "--cluster-name", "prod", "--verbose"],
    );
    let rc = root_cause(&list);
    assert_eq!(rc["reason"], "OidcProviderMissing", "{rc:#}\n{stderr}");
    assert_eq!(rc["confidence"], "Confirmed");
    assert!(
        rc["evidence"].to_string().contains(&format!(
            "oidc-provider/{host} is not among the account's 0 OIDC provider(s)"
        )),
        "{rc:#}"
    );
    let commands = list["items"][0]["status"]["remediation"]["commands"].to_string();
    assert!(
        commands.contains(&format!(
            "aws iam create-open-id-connect-provider --url {issuer}"
        )),
        "{commands}"
    );
    // What the doctor asked, as --verbose counts it: each lookup once.
    for operation in ["eks:DescribeCluster", "iam:ListOpenIDConnectProviders"] {
        assert!(
            stderr.contains(&format!("karpenter-doctor: aws {operation} ok x1")),
            "{operation} once: {stderr}"
        );
    }
}

#[test]
fn a_trust_policy_for_another_namespace_is_confirmed_from_live_iam() {
    let moto = Moto::start("credentials-trust");
    let issuer = create_cluster(&moto);
    let host = issuer.trim_start_matches("https://");
    create_role(&moto, &irsa_trust(&issuer, "karpenter"), Some(&issuer));
    let dir = scratch("credentials-trust");
    let log = web_identity_log(&dir);
    let objects = karpenter_objects(&dir, &[]);
    let (list, stderr) = explain_live(&moto, REGION, &[&log, &objects]);
    let rc = root_cause(&list);
    assert_eq!(rc["reason"], "TrustPolicyMismatch", "{rc:#}\n{stderr}");
    assert_eq!(rc["confidence"], "Confirmed", "{rc:#}");
    assert_eq!(rc["statement"]["sid"], "KarpenterIRSA");
    let evidence = rc["evidence"].to_string();
    assert!(evidence.contains("live IAM"), "{evidence}");
    assert!(
        evidence.contains("system:serviceaccount:kube-system:karpenter"),
        "the token's sub is named: {evidence}"
    );
    let patch = list["items"][0]["status"]["remediation"]["policyPatch"]
        .as_str()
        .unwrap()
        .to_string();
    let patch: Value = serde_json::from_str(&patch).unwrap();
    assert_eq!(
        patch["Statement"][0]["Condition"]["StringEquals"][format!("{host}:sub")],
        "system:serviceaccount:kube-system:karpenter"
    );
}

#[test]
fn pod_identity_without_tag_session_is_confirmed_from_the_live_association_and_trust_policy() {
    let moto = Moto::start("credentials-pod-identity");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Sid": "AllowEksAuthToAssumeRoleForPodIdentity",
        "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    create_role(&moto, &trust, None);
    const ID: &str = "a-1b2c3d4e5f6a7b8c9";
    let association = |role: bool| {
        let mut a = json!({"clusterName": "prod", "namespace": "kube-system", "serviceAccount": "karpenter",
            "associationArn": format!("arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/prod/{ID}"),
            "associationId": ID});
        if role {
            a["roleArn"] = json!(role_arn());
            a["createdAt"] = json!(1768035912.345);
            a["modifiedAt"] = json!(1768035912.345);
            a["tags"] = json!({});
            a["disableSessionTags"] = json!(false);
        }
        a
    };
    let (list_page, described) = (
        json!({"associations": [association(false)]}).to_string(),
        json!({"association": association(true)}).to_string(),
    );
    let double = Double::start(&moto.endpoint, move |call| match call.operation.as_str() {
        "GET /clusters/prod/pod-identity-associations" => {
            Reply::Respond(200, "application/json", list_page.clone())
        }
        o if o == format!("GET /clusters/prod/pod-identity-associations/{ID}") => {
            Reply::Respond(200, "application/json", described.clone())
        }
        _ => Reply::Forward,
    });
    let dir = scratch("credentials-pod-identity");
    let paste = format!("{dir}/pod-credentials.txt");
    std::fs::write(&paste, "Error when retrieving credentials from container-role: Error retrieving metadata: Received non 200 response 500 from container metadata: unable to fetch credentials from EKS Auth: operation error EKS Auth: AssumeRoleForPodIdentity, https response error StatusCode: 400, RequestID: 3b1f6a2c-9d4e-4f7a-8c21-5e6d7f8a9b0c, AccessDeniedException: Unauthorized Exception! EKS does not have permissions to assume the associated role.\n").unwrap();
    // Karpenter's pod as Pod Identity's webhook leaves it; its ServiceAccount names no role.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "karpenter-6c9d8b7f54-x2k4q", "namespace": "kube-system"},
        "spec": {"serviceAccountName": "karpenter", "containers": [{"name": "controller", "env": [
            {"name": "CLUSTER_NAME", "value": "prod"},
            {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://169.254.170.23/v1/credentials"}]}]}});
    let objects = format!("{dir}/pod.json");
    std::fs::write(&objects, pod.to_string()).unwrap();
    let (list, stderr) = explain_at(
        &double.endpoint,
        REGION,
        &[&paste, &objects, "--aws-max-attempts", "1"],
    );
    let rc = root_cause(&list);
    assert_eq!(rc["reason"], "TrustPolicyMismatch", "{rc:#}\n{stderr}");
    assert_eq!(rc["confidence"], "Confirmed", "{rc:#}");
    assert_eq!(
        rc["statement"]["sid"],
        "AllowEksAuthToAssumeRoleForPodIdentity"
    );
    assert_eq!(list["items"][0]["spec"]["principalArn"], role_arn());
    let evidence = rc["evidence"].to_string();
    assert!(
        evidence.contains("refuses pods.eks.amazonaws.com sts:TagSession")
            && evidence.contains("allows pods.eks.amazonaws.com sts:AssumeRole"),
        "{evidence}"
    );
    assert_eq!(
        double.count("GET /clusters/prod/pod-identity-associations"),
        1
    );
    assert_eq!(
        double.count(&format!(
            "GET /clusters/prod/pod-identity-associations/{ID}"
        )),
        1
    );
}

/// `preflight --live` checks the credential path before Karpenter runs: the trust policy (live
/// IAM) refuses the token of Karpenter's ServiceAccount (the cluster's issuer from live EKS),
/// so the failure `explain` later confirms is predicted, under the same name.
#[test]
fn preflight_predicts_the_irsa_trust_mismatch_from_live_eks_and_iam() {
    let moto = Moto::start("credentials-preflight");
    let issuer = create_cluster(&moto);
    create_role(&moto, &irsa_trust(&issuer, "karpenter"), Some(&issuer));
    let dir = scratch("credentials-preflight");
    let objects = karpenter_objects(&dir, &[]);
    let (predicted, stderr) = live_at(
        "preflight",
        &moto.endpoint,
        REGION,
        &[
            &objects,
            "--cluster-name",
            "prod",
            "--aws-max-attempts",
            "1",
        ],
    );
    let credentials: Vec<&Value> = predicted["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["spec"]["category"] == "CredentialsDenied")
        .collect();
    assert_eq!(credentials.len(), 1, "{predicted:#}\n{stderr}");
    let rc = &credentials[0]["status"]["rootCause"];
    assert_eq!(rc["reason"], "TrustPolicyMismatch", "{rc:#}");
    assert_eq!(rc["confidence"], "Predicted", "{rc:#}");
    assert_eq!(rc["statement"]["sid"], "KarpenterIRSA");
    let log = web_identity_log(&dir);
    let (failure, _) = explain_live(&moto, REGION, &[&log, &objects]);
    assert_eq!(
        credentials[0]["metadata"]["name"], failure["items"][0]["metadata"]["name"],
        "the name of the failure it predicts"
    );
}
