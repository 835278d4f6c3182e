//! The Access Troubleshooter's authorization id looked up with `explain --live` through the real
//! `aws-sdk-iamtoolbox` client: moto lacks `GetRequestAuthorizationDetails`, so the double serves
//! its documented shape (two pages), and its faults: throttling, AccessDenied, an expired id.

mod common;

use common::credentials::{REGION, ROLE, role_arn};
use common::double::{Double, Reply, json_error};
use common::live::*;
use common::moto::Moto;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const ID: &str = "k2m4n6p8q0r2s4t6v8x0z2b4d";
const SCP: &str =
    "arn:aws:organizations::999988887777:policy/o-a1b2c3d4e5/service_control_policy/p-9zq8region";

/// The controller role, whose own policy allows CreateFleet: only the SCP refuses.
fn create_controller(moto: &Moto) {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]});
    common::credentials::create_role(moto, &trust, None);
    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&config(moto, REGION).await);
        iam.put_role_policy()
            .role_name(ROLE)
            .policy_name("KarpenterControllerPolicy")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Sid": "AllowFleet", "Effect": "Allow",
                    "Action": ["ec2:CreateFleet", "ec2:RunInstances", "ec2:CreateTags"], "Resource": "*"}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
    });
}

/// Two NodeClaims' launches refused by the SCP, each message with the same authorization id.
fn scp_log(dir: &str) -> String {
    let line = |claim: &str, time: &str| {
        json!({"level": "ERROR", "time": time, "logger": "controller", "message": "Reconciler error",
            "controller": "nodeclaim.lifecycle", "NodeClaim": {"name": claim},
            "error": format!("launching nodeclaim, creating instance, creating nodeclaim, creating fleet request, operation error EC2: CreateFleet, https response error StatusCode: 403, RequestID: 1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f, api error UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/1730807313228843775 is not authorized to perform: ec2:CreateFleet on resource: arn:aws:ec2:{REGION}:{ACCOUNT}:fleet/* with an explicit deny in a service control policy: {SCP}. Go to https://{REGION}.console.aws.amazon.com/iam/home?region={REGION}#/authorization-details/{ID} for complete details, or call the GetRequestAuthorizationDetails API with the following authorization id: {ID}")})
        .to_string()
    };
    let path = format!("{dir}/karpenter.log");
    std::fs::write(
        &path,
        [
            line("default-a1b2c", "2026-09-14T06:21:08.412Z"),
            line("default-d3e4f", "2026-09-14T06:21:19.007Z"),
        ]
        .join("\n"),
    )
    .unwrap();
    path
}

/// Page `n` of the documented response, its `{placeholders}` filled (all of them).
fn page(n: u8) -> String {
    let path = format!("{ROOT}/tests/aws/responses/GetRequestAuthorizationDetails-{n}.json");
    let role = role_arn();
    let text = [
        ("{role}", role.as_str()),
        ("{account}", ACCOUNT),
        ("{region}", REGION),
        ("{scp}", SCP),
    ]
    .iter()
    .fold(std::fs::read_to_string(path).unwrap(), |t, (k, v)| {
        t.replace(k, v)
    });
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(
        !text.contains("\"{") && !text.contains("}\""),
        "a placeholder is left: {text}"
    );
    value.to_string()
}

fn operation() -> String {
    format!("GET /authorization-details/{ID}")
}

/// `explain --live` with the double answering the lookup by `reply` (the how-many-th call).
fn explain_with(
    name: &str,
    reply: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> (Value, Double) {
    let moto = Moto::start(name);
    create_controller(&moto);
    let calls = Arc::new(AtomicUsize::new(0));
    let double = Double::start(&moto.endpoint, move |call| {
        if call.operation == operation() {
            reply(calls.fetch_add(1, Ordering::SeqCst))
        } else {
            Reply::Forward
        }
    });
    let dir = scratch(name);
    let log = scp_log(&dir);
    let (list, stderr) = explain_at(
        &double.endpoint,
        REGION,
        &[
            &log,
            "--controller-role",
            &role_arn(),
            "--aws-max-attempts",
            "3",
        ],
    );
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "{list:#}\n{stderr}"
    );
    (list, double)
}

fn root_cause(list: &Value) -> &Value {
    &list["items"][0]["status"]["rootCause"]
}

#[test]
fn the_authorization_id_confirms_the_scp_and_names_its_deny_statement() {
    let (list, double) = explain_with("authz-confirmed", |n| {
        Reply::Respond(200, "application/json", page(if n == 0 { 1 } else { 2 }))
    });
    let rc = root_cause(&list);
    assert_eq!(rc["reason"], "ServiceControlPolicyDeny", "{rc:#}");
    assert_eq!(rc["confidence"], "Confirmed", "{rc:#}");
    assert_eq!(rc["statement"]["policy"], SCP);
    assert_eq!(rc["statement"]["sid"], "DenyFleetOutsideApprovedRegions");
    let evidence = rc["evidence"].to_string();
    assert!(
        evidence.contains(&format!("authorization id {ID} (live iam-toolbox)"))
            && evidence.contains("attached to ou-a1b2-5c6d7e8f"),
        "{evidence}"
    );
    // Both pages, once: two failures carry the same id.
    assert_eq!(double.count(&operation()), 2, "{:?}", double.calls());
    let commands = list["items"][0]["status"]["remediation"]["commands"].to_string();
    assert!(
        commands.contains("aws organizations describe-policy --policy-id p-9zq8region"),
        "{commands}"
    );
}

#[test]
fn a_throttled_lookup_is_retried() {
    let (list, double) = explain_with("authz-throttled", |n| match n {
        0 => json_error(400, "ThrottlingException", "Rate exceeded"),
        1 => Reply::Respond(200, "application/json", page(1)),
        _ => Reply::Respond(200, "application/json", page(2)),
    });
    let rc = root_cause(&list);
    assert_eq!(rc["confidence"], "Confirmed", "{rc:#}");
    assert_eq!(rc["statement"]["sid"], "DenyFleetOutsideApprovedRegions");
    assert_eq!(double.count(&operation()), 3);
}

#[test]
fn a_denied_or_expired_lookup_leaves_the_layer_inferred_and_says_why() {
    for (name, status, code, said) in [
        ("authz-denied", 403, "AccessDeniedException", "denied"),
        (
            "authz-expired",
            404,
            "ResourceNotFoundException",
            "ResourceNotFoundException",
        ),
    ] {
        let (list, double) = explain_with(name, move |_| {
            json_error(
                status,
                code,
                "The authorization id was not found or has expired",
            )
        });
        let rc = root_cause(&list);
        assert_eq!(rc["reason"], "ServiceControlPolicyDeny", "{name}: {rc:#}");
        assert_eq!(rc["confidence"], "Inferred", "{name}: {rc:#}");
        assert_eq!(rc["statement"]["policy"], SCP, "{name}");
        assert!(rc["statement"]["sid"].is_null(), "{name}: {rc:#}");
        let evidence = rc["evidence"].to_string();
        assert!(
            evidence.contains(&format!(
                "authorization id {ID}; its details could not be fetched"
            )) && evidence.contains(said),
            "{name}: {evidence}"
        );
        // Not retried (neither is transient), and asked once for both failures.
        assert_eq!(double.count(&operation()), 1, "{name}");
        let remediation = &list["items"][0]["status"]["remediation"];
        assert!(
            remediation["commands"][0]
                .as_str()
                .unwrap()
                .starts_with(&format!(
                    "aws iam-toolbox get-request-authorization-details --authorization-id {ID}"
                )),
            "{name}: {remediation:#}"
        );
    }
}
