//! The AWS adapters moto cannot exercise, and AWS faults: an HTTP double in front of moto serves
//! AWS's documented SimulatePrincipalPolicy, DecodeAuthorizationMessage and EC2 responses, and
//! injects throttling, 500s, AccessDenied and slowness into any lookup. The real SDK clients
//! talk to it; every run must end with a diagnosis whose evidence says what happened.

mod common;

use common::double::{
    Call, Double, Reply, ec2_error, form_value, json_error, kms_ec2, query_error, response, xml,
};
use common::live::*;
use common::moto::Moto;
use serde_json::Value;
use std::time::Duration;

/// SimulatePrincipalPolicy as IAM answers it for the seed-1 policy: PassRole is allowed for
/// `ec2.amazonaws.com` only (AWS's simulation agrees with the engine).
fn china_simulation(call: &Call) -> Reply {
    let service = form_value(
        &call.body,
        "ContextEntries.member.1.ContextKeyValues.member.1",
    );
    let allowed = service.as_deref() == Some("ec2.amazonaws.com");
    let matched = if allowed {
        response(
            "MatchedStatement",
            &[("policy", "KarpenterController-demo")],
        )
    } else {
        String::new()
    };
    xml(response(
        "SimulatePrincipalPolicy",
        &[
            (
                "resource",
                &form_value(&call.body, "ResourceArns.member.1").unwrap_or_default(),
            ),
            ("decision", if allowed { "allowed" } else { "implicitDeny" }),
            ("matched", &matched),
            ("organizations", "true"),
            ("missing", ""),
            ("action", "iam:PassRole"),
        ],
    ))
}

/// What STS decodes the seed-1 blob to (the documented JSON, escaped into the XML).
fn china_decoded() -> Reply {
    let decoded = serde_json::json!({
        "allowed": false, "explicitDeny": false,
        "matchedStatements": {"items": []}, "failures": {"items": []},
        "context": {
            "principal": {"id": "AROAEXAMPLEID:1717236000", "arn": format!("arn:aws-cn:sts::{ACCOUNT}:assumed-role/{CONTROLLER}/1717236000")},
            "action": "iam:PassRole",
            "resource": format!("arn:aws-cn:iam::{ACCOUNT}:role/{NODE_ROLE}"),
            "conditions": {"items": [
                {"key": "iam:PassedToService", "values": {"items": [{"value": "ec2.amazonaws.com.cn"}]}},
                {"key": "aws:Region", "values": {"items": [{"value": "cn-northwest-1"}]}}]}}
    })
    .to_string();
    let escaped = decoded
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    xml(response(
        "DecodeAuthorizationMessage",
        &[("decoded", &escaped)],
    ))
}

fn china_log_with_blob(dir: &str) -> String {
    let error = format!(
        "launching nodeclaim, creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws-cn:sts::{ACCOUNT}:assumed-role/{CONTROLLER}/1717236000 is not authorized to perform: iam:PassRole on resource: arn:aws-cn:iam::{ACCOUNT}:role/{NODE_ROLE} because no identity-based policy allows the iam:PassRole action. Encoded authorization failure message: kZ8xQm2vT5rY9bE3hK6nQ1tW4zC7fI0lO3rU6xA9dG2jM5pS8vY1bE4hK7nQ0tW3zC6fI9lO2rU5xA8dG1jM4pS7vY0bE3h"
    );
    let line = serde_json::json!({"level": "ERROR", "time": "2024-06-04T09:31:02.000Z", "logger": "controller",
        "message": "Reconciler error", "controller": "nodeclaim.lifecycle", "NodeClaim": {"name": "default-x2x7k"}, "error": error});
    let path = format!("{dir}/karpenter.log");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    path
}

fn root_cause(list: &Value) -> &Value {
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list:#}");
    &list["items"][0]["status"]["rootCause"]
}

#[test]
fn simulation_and_decoded_message_answers_become_evidence() {
    let moto = Moto::start("faults-simulate");
    seed_china(&moto);
    let double = Double::start(&moto.endpoint, |call| match call.operation.as_str() {
        "SimulatePrincipalPolicy" => china_simulation(call),
        "DecodeAuthorizationMessage" => china_decoded(),
        _ => Reply::Forward,
    });
    let dir = scratch("faults-simulate");
    let log = china_log_with_blob(&dir);
    let (list, _) = explain_at(&double.endpoint, "cn-northwest-1", &[&log]);
    let rc = root_cause(&list);
    assert_eq!(rc["reason"], "PassedToServiceMismatch");
    assert_eq!(rc["confidence"], "Confirmed");
    let evidence = rc["evidence"].to_string();
    for expected in [
        "EvalDecision=implicitDeny with iam:PassedToService=ec2.amazonaws.com.cn; allowed by organizations: yes",
        // The failing call is CreateFleet: the request AWS evaluated is the .cn one alone.
        "the failing call is ec2:CreateFleet",
        "action=iam:PassRole",
        "context: iam:PassedToService=ec2.amazonaws.com.cn, aws:Region=cn-northwest-1",
    ] {
        assert!(evidence.contains(expected), "{expected}\nnot in {evidence}");
    }
    assert!(!evidence.contains("unavailable"), "{evidence}");
    assert_eq!(
        double.count("SimulatePrincipalPolicy"),
        2,
        "one per EC2 principal"
    );
    assert_eq!(double.count("DecodeAuthorizationMessage"), 1);
}

#[test]
fn a_simulation_that_disagrees_with_the_engine_leaves_the_cause_unproven() {
    let moto = Moto::start("faults-disagree");
    seed_china(&moto);
    // IAM says both principals are allowed (say, the policy was fixed a second ago).
    let double = Double::start(&moto.endpoint, |call| match call.operation.as_str() {
        "SimulatePrincipalPolicy" => xml(response(
            "SimulatePrincipalPolicy",
            &[
                ("resource", "*"),
                ("decision", "allowed"),
                (
                    "matched",
                    &response(
                        "MatchedStatement",
                        &[("policy", "KarpenterController-demo")],
                    ),
                ),
                ("organizations", "true"),
                ("missing", ""),
                ("action", "iam:PassRole"),
            ],
        )),
        _ => Reply::Forward,
    });
    let dir = scratch("faults-disagree");
    let log = china_log(&dir, 1);
    let (list, _) = explain_at(&double.endpoint, "cn-northwest-1", &[&log]);
    let rc = root_cause(&list);
    assert_eq!(rc["reason"], "PassedToServiceMismatch");
    assert_eq!(rc["confidence"], "Inferred", "{rc:#}");
    assert!(
        rc["evidence"].to_string().contains("IAM's simulation with iam:PassedToService=ec2.amazonaws.com.cn (allowed) disagrees with the engine's evaluation of the fetched documents (implicit deny)"),
        "{rc:#}"
    );
}

/// The root cause of an SCP denial IAM's simulation reports (`missing`: the context keys it
/// says it lacked, as `<member>` elements).
fn scp_simulated(name: &str, missing: &'static str) -> serde_json::Value {
    let moto = Moto::start(name);
    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&config(&moto, "us-east-1").await);
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        iam.create_role().role_name(CONTROLLER).assume_role_policy_document(trust).send().await.unwrap();
        let allow = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Launch","Effect":"Allow","Action":["ec2:RunInstances","ec2:CreateFleet"],"Resource":"*"}]}"#;
        iam.put_role_policy().role_name(CONTROLLER).policy_name("launch").policy_document(allow).send().await.unwrap();
    });
    let double = Double::start(&moto.endpoint, |call| match call.operation.as_str() {
        "SimulatePrincipalPolicy" => xml(response(
            "SimulatePrincipalPolicy",
            &[
                ("resource", "*"),
                ("decision", "explicitDeny"),
                ("matched", ""),
                ("organizations", "false"),
                ("missing", missing),
                ("action", "ec2:RunInstances"),
            ],
        )),
        _ => Reply::Forward,
    });
    let dir = scratch(name);
    let error = format!(
        "UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::{ACCOUNT}:assumed-role/{CONTROLLER}/1717236000 is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1:{ACCOUNT}:instance/* with an explicit deny in a service control policy."
    );
    let line = serde_json::json!({"level": "ERROR", "time": "2024-06-04T09:31:02.000Z", "message": "failed launching nodeclaim",
        "NodeClaim": {"name": "default-abcde"}, "error": format!("creating instance, {error}")});
    let log = format!("{dir}/karpenter.log");
    std::fs::write(&log, format!("{line}\n")).unwrap();
    let (list, _) = explain_at(&double.endpoint, "us-east-1", &[&log]);
    root_cause(&list).clone()
}

#[test]
fn an_scp_deny_that_simulation_reports_is_confirmed() {
    let rc = scp_simulated("faults-scp", "");
    assert_eq!(rc["reason"], "ServiceControlPolicyDeny");
    assert_eq!(rc["confidence"], "Confirmed");
    assert!(
        rc["evidence"]
            .to_string()
            .contains("allowed by organizations: no"),
        "{}",
        rc["evidence"]
    );
}

#[test]
fn an_scp_deny_simulated_without_the_keys_it_needs_is_not_proven() {
    let rc = scp_simulated("faults-scp-missing", "<member>aws:RequestTag/team</member>");
    assert_eq!(rc["reason"], "ServiceControlPolicyDeny");
    assert_eq!(rc["confidence"], "Inferred", "{}", rc["evidence"]);
    assert!(
        rc["evidence"].to_string().contains("not proven"),
        "{}",
        rc["evidence"]
    );
}

#[test]
fn throttling_is_retried_with_backoff_until_aws_answers() {
    let moto = Moto::start("faults-retry");
    seed_china(&moto);
    let throttled = std::sync::atomic::AtomicUsize::new(0);
    let double = Double::start(&moto.endpoint, move |call| {
        if call.operation == "GetRole"
            && throttled.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
        {
            query_error(400, "Throttling", "Rate exceeded")
        } else {
            Reply::Forward
        }
    });
    let dir = scratch("faults-retry");
    let log = china_log(&dir, 2);
    let (list, _) = explain_at(
        &double.endpoint,
        "cn-northwest-1",
        &[&log, "--aws-max-attempts", "3"],
    );
    assert_eq!(root_cause(&list)["confidence"], "Confirmed");
    assert_eq!(
        double.count("GetRole"),
        3,
        "two throttled attempts, then the answer"
    );
}

/// One fault on one lookup: the diagnosis still comes, with the expected confidence and an
/// evidence line naming the lookup and what happened to it.
struct Case {
    operation: &'static str,
    fault: fn() -> Reply,
    /// Requests the faulty operation gets with `--aws-max-attempts 2`: throttling and 5xx are
    /// retried once; a denial is final; a slow answer hits the time limit after one try;
    /// SimulatePrincipalPolicy is asked once per EC2 principal.
    attempts: usize,
    confidence: &'static str,
    evidence: &'static str,
}

fn denied() -> Reply {
    query_error(
        403,
        "AccessDenied",
        "User: arn:aws:sts::123456789012:assumed-role/karpenter-doctor/1 is not authorized to perform this action",
    )
}

fn throttled() -> Reply {
    query_error(400, "Throttling", "Rate exceeded")
}

fn internal() -> Reply {
    query_error(
        500,
        "ServiceFailure",
        "The request processing has failed because of an unknown error",
    )
}

fn slow() -> Reply {
    Reply::Slow(Duration::from_secs(4), Box::new(Reply::Forward))
}

#[test]
fn faults_on_each_iam_and_sts_lookup_end_in_a_clear_evidence_line() {
    let moto = Moto::start("faults-iam");
    seed_china(&moto);
    let dir = scratch("faults-iam");
    let log = china_log_with_blob(&dir);
    let cases = [
        Case {
            operation: "GetRole",
            fault: denied,
            attempts: 1,
            confidence: "Inferred",
            evidence: "iam:GetRole denied: AccessDenied",
        },
        Case {
            operation: "ListRolePolicies",
            fault: denied,
            attempts: 1,
            confidence: "Inferred",
            evidence: "iam:ListRolePolicies denied: AccessDenied",
        },
        Case {
            operation: "ListAttachedRolePolicies",
            fault: denied,
            attempts: 1,
            confidence: "Inferred",
            evidence: "iam:ListAttachedRolePolicies denied",
        },
        Case {
            operation: "GetPolicy",
            fault: denied,
            attempts: 1,
            confidence: "Inferred",
            evidence: "iam:GetPolicy denied",
        },
        Case {
            operation: "GetPolicyVersion",
            fault: denied,
            attempts: 1,
            confidence: "Inferred",
            evidence: "iam:GetPolicyVersion denied",
        },
        Case {
            operation: "GetRole",
            fault: throttled,
            attempts: 2,
            confidence: "Inferred",
            evidence: "iam:GetRole throttled: Throttling: Rate exceeded",
        },
        Case {
            operation: "GetRole",
            fault: internal,
            attempts: 2,
            confidence: "Inferred",
            evidence: "iam:GetRole error: ServiceFailure",
        },
        Case {
            operation: "GetPolicyVersion",
            fault: slow,
            attempts: 1,
            confidence: "Inferred",
            evidence: "iam:GetPolicyVersion error: request has timed out: operation timeout (all attempts including retries) occurred after 1.5s",
        },
        // Without simulation the engine decides on the fetched documents: still proven.
        Case {
            operation: "SimulatePrincipalPolicy",
            fault: denied,
            attempts: 2,
            confidence: "Confirmed",
            evidence: "unavailable (iam:SimulatePrincipalPolicy denied: AccessDenied",
        },
        Case {
            operation: "SimulatePrincipalPolicy",
            fault: internal,
            attempts: 4,
            confidence: "Confirmed",
            evidence: "unavailable (iam:SimulatePrincipalPolicy error: ServiceFailure",
        },
        Case {
            operation: "DecodeAuthorizationMessage",
            fault: denied,
            attempts: 1,
            confidence: "Confirmed",
            evidence: "not decoded: sts:DecodeAuthorizationMessage denied: AccessDenied",
        },
        Case {
            operation: "DecodeAuthorizationMessage",
            fault: slow,
            attempts: 1,
            confidence: "Confirmed",
            evidence: "not decoded: sts:DecodeAuthorizationMessage error: request has timed out",
        },
    ];
    for case in cases {
        let fault = case.fault;
        let operation = case.operation;
        let double = Double::start(&moto.endpoint, move |call| {
            if call.operation == operation {
                fault()
            } else if call.operation == "SimulatePrincipalPolicy" {
                china_simulation(call)
            } else if call.operation == "DecodeAuthorizationMessage" {
                china_decoded()
            } else {
                Reply::Forward
            }
        });
        let (list, stderr) = explain_at(
            &double.endpoint,
            "cn-northwest-1",
            &[&log, "--aws-max-attempts", "2", "--aws-timeout", "1.5"],
        );
        let rc = root_cause(&list);
        let label = format!("{operation} / {}", case.evidence);
        assert_eq!(rc["reason"], "PassedToServiceMismatch", "{label}");
        assert_eq!(
            rc["confidence"], case.confidence,
            "{label}: {}",
            rc["evidence"]
        );
        let evidence = rc["evidence"].to_string();
        assert!(
            evidence.contains(case.evidence),
            "{label}: {evidence}\n{stderr}"
        );
        assert_eq!(double.count(operation), case.attempts, "{label}: attempts");
    }
}

/// The seed-2 inputs with the EC2NodeClass's kmsKeyID removed: only the AMI names the key.
fn kms_inputs(dir: &str) -> Vec<String> {
    let cmk = format!("{ROOT}/examples/cross-account-cmk");
    vec![
        seed2_node_class(dir, None),
        format!("{cmk}/nodeclaims.json"),
        format!("{cmk}/serviceaccount.yaml"),
    ]
}

#[test]
fn the_kms_path_finds_the_instance_by_its_nodeclaim_and_the_key_by_its_ami() {
    let moto = Moto::start("faults-ami");
    let key = pending_deletion_key(&moto, "us-east-1");
    let dir = scratch("faults-ami");
    let inputs = kms_inputs(&dir);
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let served = key.clone();
    let double = Double::start(&moto.endpoint, move |call| kms_ec2(call, &served));
    let (list, _) = explain_at(&double.endpoint, "us-east-1", &inputs);
    let d = &list["items"][0];
    assert_eq!(d["spec"]["kmsKeyArn"], key.as_str(), "{list:#}");
    assert_eq!(d["status"]["rootCause"]["reason"], "KeyPendingDeletion");
    assert_eq!(d["status"]["rootCause"]["confidence"], "Confirmed");
    assert_eq!(double.count("DescribeInstances"), 1);
    assert_eq!(double.count("DescribeImages"), 1);
    assert_eq!(double.count("DescribeSnapshots"), 1);
}

/// (operation, fault, reason, confidence, evidence or warning)
type KmsCase = (
    &'static str,
    fn() -> Reply,
    &'static str,
    &'static str,
    &'static str,
);

#[test]
fn faults_on_each_kms_and_ec2_lookup_end_in_a_clear_evidence_line() {
    let moto = Moto::start("faults-kms");
    let key = pending_deletion_key(&moto, "us-east-1");
    let dir = scratch("faults-kms");
    let inputs = kms_inputs(&dir);
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let kms_denied = || {
        json_error(
            400,
            "AccessDeniedException",
            "not authorized to perform kms action",
        )
    };
    let kms_throttled = || json_error(400, "ThrottlingException", "Rate exceeded");
    let ec2_denied = || {
        ec2_error(
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        )
    };
    // Without the key's facts the text decides: the key is in another account than the controller role (seed 2).
    let cases: [KmsCase; 4] = [
        (
            "DescribeKey",
            kms_denied,
            "KeyAccessNotGranted",
            "Inferred",
            "kms:DescribeKey denied: AccessDeniedException",
        ),
        (
            "DescribeKey",
            kms_throttled,
            "KeyAccessNotGranted",
            "Inferred",
            "kms:DescribeKey throttled: ThrottlingException",
        ),
        (
            "DescribeImages",
            ec2_denied,
            "Undetermined",
            "Inferred",
            "the KMS key of ami-0a1b2c3d4e5f60718 is unknown: ec2:DescribeImages denied: UnauthorizedOperation",
        ),
        (
            "DescribeSnapshots",
            internal_ec2,
            "Undetermined",
            "Inferred",
            "ec2:DescribeSnapshots error: InternalError",
        ),
    ];
    for (operation, fault, reason, confidence, evidence) in cases {
        let served = key.clone();
        let double = Double::start(&moto.endpoint, move |call| {
            if call.operation == operation {
                fault()
            } else {
                kms_ec2(call, &served)
            }
        });
        let (list, stderr) = explain_at(
            &double.endpoint,
            "us-east-1",
            &[&inputs[..], &["--aws-max-attempts", "1"]].concat(),
        );
        let rc = root_cause(&list);
        assert_eq!(rc["reason"], reason, "{operation}: {rc:#}");
        assert_eq!(rc["confidence"], confidence, "{operation}: {rc:#}");
        let said = format!("{rc}{stderr}");
        assert!(
            said.contains(evidence),
            "{operation}: {evidence}\nnot in {said}"
        );
        assert!(
            double.count(operation) >= 1,
            "{operation}: the fault was served"
        );
    }
    // An enabled key: whether the key side allows depends on grants and policy; unreadable
    // ones leave the answer unproven and say why.
    let enabled = runtime().block_on(async {
        let kms = aws_sdk_kms::Client::new(&config(&moto, "us-east-1").await);
        let key = kms.create_key().description("ami").send().await.unwrap();
        key.key_metadata().unwrap().arn().unwrap().to_string()
    });
    for operation in ["ListGrants", "GetKeyPolicy"] {
        let served = enabled.clone();
        let double = Double::start(&moto.endpoint, move |call| {
            if call.operation == operation {
                json_error(
                    400,
                    "AccessDeniedException",
                    "not authorized to perform kms action",
                )
            } else {
                kms_ec2(call, &served)
            }
        });
        let (list, _) = explain_at(
            &double.endpoint,
            "us-east-1",
            &[&inputs[..], &["--aws-max-attempts", "1"]].concat(),
        );
        let rc = root_cause(&list);
        assert_eq!(rc["reason"], "KeyAccessNotGranted", "{operation}: {rc:#}");
        assert_eq!(rc["confidence"], "Inferred", "{operation}: {rc:#}");
        let expected = format!("kms:{operation} denied: AccessDeniedException");
        assert!(
            rc["evidence"].to_string().contains(&expected),
            "{expected}\nnot in {rc:#}"
        );
        assert_eq!(double.count(operation), 1);
    }
    // DescribeInstances denied: no StateReason, so no KMS signal; the run says why and ends well.
    let served = key.clone();
    let double = Double::start(&moto.endpoint, move |call| {
        if call.operation == "DescribeInstances" {
            ec2_denied()
        } else {
            kms_ec2(call, &served)
        }
    });
    let (list, stderr) = explain_at(
        &double.endpoint,
        "us-east-1",
        &[&inputs[..], &["--aws-max-attempts", "1"]].concat(),
    );
    assert!(
        stderr.contains(
            "ec2:DescribeInstances:0: ec2:DescribeInstances denied: UnauthorizedOperation"
        ),
        "{stderr}"
    );
    assert_eq!(
        list["items"],
        serde_json::json!([]),
        "nothing to diagnose without the instance"
    );
}

fn internal_ec2() -> Reply {
    ec2_error(500, "InternalError", "An internal error has occurred.")
}

/// Serves `first` as the first page of `operation`, once; its later requests must carry `token`
/// (then `next` answers them), else they get an error: an adapter that does not follow the
/// token gets no second page (and cannot loop on the first).
fn paged(
    first: impl Fn() -> Reply + Send + Sync + 'static,
    token: impl Fn(&Call) -> Option<String> + Send + Sync + 'static,
    next: impl Fn(&Call) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Call) -> Reply + Send + Sync + 'static {
    let served = std::sync::atomic::AtomicBool::new(false);
    move |call| {
        if !served.swap(true, std::sync::atomic::Ordering::SeqCst) {
            first()
        } else if token(call).as_deref() == Some("0") {
            next(call)
        } else {
            query_error(
                400,
                "InvalidInput",
                "a later page was asked without the marker",
            )
        }
    }
}

#[test]
fn paginated_listings_are_read_to_the_last_page() {
    let moto = Moto::start("faults-pages");
    seed_china(&moto);
    // moto's IAM markers are offsets: "0" asks it for everything, so the policy comes on page 2.
    let marker = |call: &Call| form_value(&call.body, "Marker");
    let inline = paged(
        || xml(response("ListRolePolicies-first-page", &[("marker", "0")])),
        marker,
        |_| Reply::Forward,
    );
    let attached = paged(
        || {
            xml(response(
                "ListAttachedRolePolicies-first-page",
                &[("marker", "0")],
            ))
        },
        marker,
        |_| Reply::Forward,
    );
    let double = Double::start(&moto.endpoint, move |call| match call.operation.as_str() {
        "ListRolePolicies" => inline(call),
        "ListAttachedRolePolicies" => attached(call),
        _ => Reply::Forward,
    });
    let dir = scratch("faults-pages");
    let log = china_log(&dir, 2);
    let (list, _) = explain_at(&double.endpoint, "cn-northwest-1", &[&log]);
    let rc = root_cause(&list);
    assert_eq!(rc["reason"], "PassedToServiceMismatch", "{rc:#}");
    assert_eq!(rc["confidence"], "Confirmed");
    assert_eq!(double.count("ListRolePolicies"), 2);
    assert_eq!(double.count("ListAttachedRolePolicies"), 2);

    // KMS grants (JSON protocol, NextMarker) and EC2 instances (nextToken) too.
    let key = pending_deletion_key(&moto, "us-east-1");
    let grants = paged(
        || {
            Reply::Respond(
                200,
                "application/x-amz-json-1.1",
                r#"{"Grants":[],"NextMarker":"0","Truncated":true}"#.into(),
            )
        },
        |call| {
            let body: Value = serde_json::from_str(&call.body).ok()?;
            body["Marker"].as_str().map(str::to_string)
        },
        |_| Reply::Forward,
    );
    let served = key.clone();
    let instances = paged(
        || xml(response("DescribeInstances-first-page", &[("token", "0")])),
        |call| form_value(&call.body, "NextToken"),
        move |call| kms_ec2(call, &served),
    );
    let served = key.clone();
    let double = Double::start(&moto.endpoint, move |call| match call.operation.as_str() {
        "ListGrants" => grants(call),
        "DescribeInstances" => instances(call),
        _ => kms_ec2(call, &served),
    });
    let inputs = kms_inputs(&dir);
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let (list, _) = explain_at(&double.endpoint, "us-east-1", &inputs);
    let rc = root_cause(&list);
    assert_eq!(rc["reason"], "KeyPendingDeletion", "{rc:#}");
    assert_eq!(rc["confidence"], "Confirmed");
    assert!(
        !rc["evidence"].to_string().contains("unavailable"),
        "{rc:#}"
    );
    assert_eq!(double.count("ListGrants"), 2);
    assert_eq!(double.count("DescribeInstances"), 2);
}
