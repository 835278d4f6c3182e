//! The controller's view of time, as pure functions: re-checking a Diagnosis's root cause
//! against fresh facts (the seed stories before and after their fix), and the Resolved and
//! metav1 transition rules.

use karpenter_doctor::diagnose::lifecycle::{
    Kept, NOT_RECURRING_AFTER_MS, Verification, expired, ongoing, resolved, transition, verify,
};
use karpenter_doctor::diagnose::model::{Condition, DiagnosisSpec, ReasonCode};
use karpenter_doctor::facts::SnapshotFacts;
use karpenter_doctor::facts::iam_snapshot::IamSnapshot;
use karpenter_doctor::facts::kms_snapshot;
use karpenter_doctor::signal::{Category, Observations, Scanner};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn spec(category: Category, fields: &[(&str, &str)]) -> DiagnosisSpec {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(f, _)| *f == k)
            .map(|(_, v)| v.to_string())
    };
    DiagnosisSpec {
        category,
        error_code: None,
        principal_arn: get("principal"),
        action: get("action"),
        resource_arn: get("resource"),
        kms_key_arn: get("key"),
        partition: get("partition"),
        region: get("region"),
        node_pool: None,
        node_class: None,
    }
}

fn china() -> DiagnosisSpec {
    spec(
        Category::PassRoleDenied,
        &[
            (
                "principal",
                "arn:aws-cn:iam::111122223333:role/KarpenterController-demo",
            ),
            ("action", "iam:PassRole"),
            (
                "resource",
                "arn:aws-cn:iam::111122223333:role/Karpenter-demo-20240604092512345600000001",
            ),
            ("partition", "aws-cn"),
        ],
    )
}

fn iam_facts(text: &str) -> SnapshotFacts {
    SnapshotFacts {
        iam: vec![("iam.json".into(), IamSnapshot::parse(text).unwrap())],
        ..SnapshotFacts::default()
    }
}

fn seed(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/examples/{path}")).unwrap()
}

#[test]
fn the_china_story_is_still_failing_until_both_principals_are_allowed() {
    let before = seed("china-passrole/iam-snapshot.json");
    let v = verify(
        &china(),
        None,
        &iam_facts(&before),
        &Observations::default(),
    );
    assert!(
        matches!(&v, Verification::StillFailing(d) if d.contains("with iam:PassedToService=ec2.amazonaws.com.cn")),
        "{v:?}"
    );
    // The fix of the remediation: both principals in the condition.
    let fixed = before.replace(
        r#""iam:PassedToService": "ec2.amazonaws.com""#,
        r#""iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]"#,
    );
    assert_ne!(fixed, before, "the fixture still has the broken condition");
    let v = verify(&china(), None, &iam_facts(&fixed), &Observations::default());
    assert!(matches!(v, Verification::Fixed(_)), "{v:?}");
    // Only the China principal: still broken, the instance-profile step needs the other.
    let half = before.replace(
        r#""iam:PassedToService": "ec2.amazonaws.com""#,
        r#""iam:PassedToService": "ec2.amazonaws.com.cn""#,
    );
    let v = verify(&china(), None, &iam_facts(&half), &Observations::default());
    assert!(
        matches!(&v, Verification::StillFailing(d) if d.ends_with("with iam:PassedToService=ec2.amazonaws.com")),
        "{v:?}"
    );
    let v = verify(
        &china(),
        None,
        &SnapshotFacts::default(),
        &Observations::default(),
    );
    assert!(matches!(v, Verification::Unknown(_)), "no facts: {v:?}");
}

#[test]
fn a_refusal_by_a_layer_the_doctor_does_not_read_is_never_verified_by_the_roles_policies() {
    // The role's own policies allow the request (the fixed China policy), but an SCP refused it:
    // that the identity side allows says nothing of the SCP.
    let fixed = seed("china-passrole/iam-snapshot.json").replace(
        r#""iam:PassedToService": "ec2.amazonaws.com""#,
        r#""iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]"#,
    );
    let facts = iam_facts(&fixed);
    let none = Observations::default();
    assert!(matches!(
        verify(&china(), None, &facts, &none),
        Verification::Fixed(_)
    ));
    for layer in [
        ReasonCode::ServiceControlPolicyDeny,
        ReasonCode::ResourceControlPolicyDeny,
        ReasonCode::VpcEndpointPolicyDeny,
        ReasonCode::SessionPolicyDeny,
        ReasonCode::ResourcePolicyDeny,
    ] {
        let v = verify(&china(), Some(layer), &facts, &none);
        assert!(
            matches!(&v, Verification::Unknown(why) if why.contains(layer.as_str())),
            "{layer:?}: {v:?}"
        );
    }
    let v = verify(
        &china(),
        Some(ReasonCode::PassedToServiceMismatch),
        &facts,
        &none,
    );
    assert!(matches!(v, Verification::Fixed(_)), "{v:?}");
}

fn cmk() -> DiagnosisSpec {
    spec(
        Category::KmsKeyUnusable,
        &[
            (
                "principal",
                "arn:aws:iam::111122223333:role/KarpenterController-demo",
            ),
            (
                "key",
                "arn:aws:kms:us-east-1:444455556666:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            ),
            ("partition", "aws"),
            ("region", "us-east-1"),
        ],
    )
}

fn kms_facts(text: &str) -> SnapshotFacts {
    SnapshotFacts {
        kms: vec![("kms.json".into(), kms_snapshot::parse(text).unwrap())],
        ..SnapshotFacts::default()
    }
}

#[test]
fn the_cross_account_key_is_fixed_by_a_grant_to_the_controller_role() {
    let before = seed("cross-account-cmk/kms-snapshot.json");
    let v = verify(&cmk(), None, &kms_facts(&before), &Observations::default());
    assert!(matches!(v, Verification::StillFailing(_)), "{v:?}");
    let mut doc: serde_json::Value = serde_json::from_str(&before).unwrap();
    doc["Keys"][0]["Grants"].as_array_mut().unwrap().push(serde_json::json!({
        "GrantId": "g-fix", "GranteePrincipal": "arn:aws:iam::111122223333:role/KarpenterController-demo",
        "Operations": ["Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKeyWithoutPlaintext", "CreateGrant", "DescribeKey"]}));
    let v = verify(
        &cmk(),
        None,
        &kms_facts(&doc.to_string()),
        &Observations::default(),
    );
    assert!(matches!(v, Verification::Fixed(_)), "{v:?}");
    doc["Keys"][0]["KeyMetadata"]["KeyState"] = serde_json::json!("Disabled");
    let v = verify(
        &cmk(),
        None,
        &kms_facts(&doc.to_string()),
        &Observations::default(),
    );
    assert!(
        matches!(&v, Verification::StillFailing(d) if d.ends_with("is Disabled")),
        "{v:?}"
    );
}

fn condition(status: &str, at: &str) -> Condition {
    Condition {
        type_: "Resolved".into(),
        status: status.into(),
        reason: String::new(),
        message: String::new(),
        last_transition_time: at.into(),
        observed_generation: None,
    }
}

const T0: i64 = 1_717_491_600_000; // 2024-06-04T09:00:00Z

#[test]
fn resolved_follows_the_fix_the_quiet_hour_and_recurrences() {
    let fixed = Verification::Fixed("allowed now".into());
    let failing = Verification::StillFailing("still refused".into());
    let (s, r, _) = resolved(&failing, None, Some(T0), false, T0 + 60_000);
    assert_eq!((s, r), ("False", "FailureObserved"));
    let (s, r, m) = resolved(&fixed, None, Some(T0), false, T0 + 60_000);
    assert_eq!((s, r, m.as_str()), ("True", "FixVerified", "allowed now"));
    let (s, r, m) = resolved(&failing, None, Some(T0), false, T0 + NOT_RECURRING_AFTER_MS);
    assert_eq!((s, r), ("True", "NotRecurring"));
    assert_eq!(m, "not seen since 2024-06-04T09:00:00Z");
    let (s, r, _) = resolved(
        &failing,
        None,
        Some(T0),
        false,
        T0 + NOT_RECURRING_AFTER_MS - 1,
    );
    assert_eq!((s, r), ("False", "FailureObserved"));
    // A condition that still says it fails is no quiet hour, however old its transition.
    let (s, r, _) = resolved(
        &failing,
        None,
        Some(T0),
        true,
        T0 + 10 * NOT_RECURRING_AFTER_MS,
    );
    assert_eq!((s, r), ("False", "FailureObserved"));
    let (s, r, _) = resolved(
        &fixed,
        None,
        Some(T0),
        true,
        T0 + 10 * NOT_RECURRING_AFTER_MS,
    );
    assert_eq!((s, r), ("True", "FixVerified"));
    // Resolved at 09:30, seen again at 09:40: reopened, even though the facts look fixed.
    let was = condition("True", "2024-06-04T09:30:00Z");
    let (s, r, m) = resolved(
        &fixed,
        Some(&was),
        Some(T0 + 40 * 60_000),
        false,
        T0 + 45 * 60_000,
    );
    assert_eq!((s, r), ("False", "Recurred"));
    assert_eq!(
        m,
        "seen again at 2024-06-04T09:40:00Z after it was resolved"
    );
    // Seen before the resolution: it stays resolved.
    let (s, r, _) = resolved(
        &fixed,
        Some(&was),
        Some(T0 + 20 * 60_000),
        false,
        T0 + 45 * 60_000,
    );
    assert_eq!((s, r), ("True", "FixVerified"));
}

#[test]
fn last_transition_time_changes_only_when_the_status_flips() {
    let previous = vec![condition("False", "2024-06-04T09:00:00Z")];
    let same = transition(
        &previous,
        vec![condition("False", "")],
        "2024-06-04T10:00:00Z",
    );
    assert_eq!(same[0].last_transition_time, "2024-06-04T09:00:00Z");
    let flipped = transition(
        &previous,
        vec![condition("True", "")],
        "2024-06-04T10:00:00Z",
    );
    assert_eq!(flipped[0].last_transition_time, "2024-06-04T10:00:00Z");
    let mut other = condition("True", "");
    other.type_ = "Diagnosed".into();
    let new = transition(&previous, vec![other], "2024-06-04T10:00:00Z");
    assert_eq!(
        new[0].last_transition_time, "2024-06-04T10:00:00Z",
        "a new type starts now"
    );
}

const DAY: i64 = 86_400_000;

fn kept(name: &str, resolved_days_ago: Option<i64>, seen_days_ago: i64) -> Kept {
    let now = 100 * DAY;
    Kept {
        name: name.into(),
        resolved_since_ms: resolved_days_ago.map(|d| now - d * DAY),
        last_seen_ms: Some(now - seen_days_ago * DAY),
    }
}

#[test]
fn resolved_diagnoses_are_deleted_after_the_retention_and_active_ones_never() {
    let all = [
        kept("active-old", None, 30),
        kept("resolved-8d", Some(8), 9),
        kept("resolved-6d", Some(6), 7),
        kept("resolved-7d-exactly", Some(7), 8),
    ];
    assert_eq!(expired(&all, 100 * DAY, 7 * DAY, 100), ["resolved-8d"]);
    assert!(expired(&all, 100 * DAY, 30 * DAY, 100).is_empty());
}

#[test]
fn over_the_cap_the_least_recently_seen_resolved_diagnoses_go_first() {
    let all = [
        kept("a-active", None, 50),
        kept("b-resolved-seen-3d", Some(1), 3),
        kept("c-resolved-seen-1d", Some(1), 1),
        kept("d-resolved-seen-2d", Some(1), 2),
        kept("e-active", None, 60),
    ];
    assert_eq!(
        expired(&all, 100 * DAY, 7 * DAY, 3),
        ["b-resolved-seen-3d", "d-resolved-seen-2d"]
    );
    // Active ones stay even when they alone exceed the cap.
    assert_eq!(expired(&all, 100 * DAY, 7 * DAY, 1).len(), 3);
    assert!(expired(&all, 100 * DAY, 7 * DAY, 5).is_empty());
}

fn scanned(text: &str) -> Observations {
    let mut out = Observations::default();
    Scanner::new()
        .unwrap()
        .scan("objects.yaml", text.as_bytes(), &mut out, &mut |_| {})
        .unwrap();
    out
}

fn scanned_fixture(name: &str) -> Observations {
    scanned(&std::fs::read_to_string(format!("{ROOT}/tests/fixtures/signals/{name}")).unwrap())
}

#[test]
fn a_failure_is_ongoing_while_an_object_still_reports_it() {
    let mut kms = cmk();
    kms.node_pool = Some("default".into());
    let pool = |status: &str| {
        format!(
            "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nstatus:\n  conditions:\n  - type: NodeRegistrationHealthy\n    status: \"{status}\"\n"
        )
    };
    // The NodePool's nodes do not register: an unusable key is a state, not a past event.
    let unhealthy = scanned(&pool("False"));
    assert!(ongoing(&kms, &[], &unhealthy));
    assert!(!ongoing(&kms, &[], &scanned(&pool("True"))));
    // Only for the Diagnosis's own NodePool, and only for the KMS failure (instances that die).
    let mut elsewhere = kms.clone();
    elsewhere.node_pool = Some("gpu".into());
    assert!(!ongoing(&elsewhere, &[], &unhealthy));
    let mut pass_role = china();
    pass_role.node_pool = Some("default".into());
    assert!(!ongoing(&pass_role, &[], &unhealthy));
    // An EC2NodeClass whose validation fails now.
    let validation = scanned_fixture("ec2nodeclasses.yaml");
    let failing = validation
        .signals
        .iter()
        .find(|s| s.node_class.is_some())
        .expect("a failing EC2NodeClass in the fixture");
    let mut by_class = spec(failing.category, &[]);
    by_class.node_class = failing.node_class.clone();
    assert!(ongoing(&by_class, &[], &validation));
    by_class.node_class = Some("another".into());
    assert!(!ongoing(&by_class, &[], &validation));
    // A NodeClaim the Diagnosis names whose condition still reports the failure.
    let claims = scanned_fixture("nodeclaims.yaml");
    let failing = claims
        .signals
        .iter()
        .find(|s| s.node_claim.is_some())
        .expect("a failing NodeClaim in the fixture");
    let by_claim = spec(failing.category, &[]);
    let name = failing.node_claim.clone().unwrap();
    assert!(ongoing(&by_claim, &[name], &claims));
    assert!(!ongoing(&by_claim, &["other".into()], &claims));
}

/// What the doctor knows of Karpenter's identity in a cluster: its inputs scanned.
fn observed(inputs: &[&str]) -> Observations {
    let scanner = Scanner::new().unwrap();
    let mut obs = Observations::default();
    for path in inputs {
        let text = std::fs::read(format!("{ROOT}/tests/fixtures/explain/{path}")).unwrap();
        scanner
            .scan(path, &text[..], &mut obs, &mut |_| {})
            .unwrap();
    }
    obs
}

#[test]
fn an_irsa_diagnosis_resolves_once_the_trust_policy_lets_the_service_account_in() {
    const CASE: &str = "TrustPolicyMismatch-wrong-namespace";
    let spec = spec(
        Category::CredentialsDenied,
        &[
            (
                "principal",
                "arn:aws:iam::111122223333:role/KarpenterController-prod",
            ),
            ("action", "sts:AssumeRoleWithWebIdentity"),
            ("partition", "aws"),
        ],
    );
    let before = std::fs::read_to_string(format!(
        "{ROOT}/tests/fixtures/explain/{CASE}/iam-snapshot.json"
    ))
    .unwrap();
    let everything = observed(&[
        &format!("{CASE}/serviceaccount.yaml"),
        &format!("{CASE}/describe-cluster.json"),
        &format!("{CASE}/oidc-providers.json"),
    ]);
    let v = verify(&spec, None, &iam_facts(&before), &everything);
    assert!(matches!(v, Verification::StillFailing(_)), "{v:?}");
    let fixed = before.replace(
        "system:serviceaccount:karpenter:karpenter",
        "system:serviceaccount:kube-system:karpenter",
    );
    assert_ne!(fixed, before);
    let v = verify(&spec, None, &iam_facts(&fixed), &everything);
    assert!(matches!(v, Verification::Fixed(_)), "{v:?}");
    // Without the account's providers the fixed trust policy proves nothing yet.
    let no_providers = observed(&[
        &format!("{CASE}/serviceaccount.yaml"),
        &format!("{CASE}/describe-cluster.json"),
    ]);
    let v = verify(&spec, None, &iam_facts(&fixed), &no_providers);
    assert!(
        matches!(&v, Verification::Unknown(why) if why.contains("OIDC providers")),
        "{v:?}"
    );
    let v = verify(&spec, None, &iam_facts(&fixed), &Observations::default());
    assert!(matches!(v, Verification::Unknown(_)), "{v:?}");
}

#[test]
fn a_pod_identity_diagnosis_resolves_once_the_trust_policy_allows_tag_session() {
    const CASE: &str = "TrustPolicyMismatch-pod-identity-no-tagsession";
    let spec = spec(
        Category::CredentialsDenied,
        &[
            (
                "principal",
                "arn:aws:iam::111122223333:role/KarpenterController-prod",
            ),
            ("action", "eks-auth:AssumeRoleForPodIdentity"),
            ("partition", "aws"),
        ],
    );
    let before = std::fs::read_to_string(format!(
        "{ROOT}/tests/fixtures/explain/{CASE}/iam-snapshot.json"
    ))
    .unwrap();
    let obs = observed(&[&format!("{CASE}/pod-identity-association.json")]);
    let v = verify(&spec, None, &iam_facts(&before), &obs);
    assert!(matches!(v, Verification::StillFailing(_)), "{v:?}");
    let fixed = before.replace(
        r#""Action": "sts:AssumeRole""#,
        r#""Action": ["sts:AssumeRole", "sts:TagSession"]"#,
    );
    assert_ne!(fixed, before);
    let v = verify(&spec, None, &iam_facts(&fixed), &obs);
    assert!(matches!(v, Verification::Fixed(_)), "{v:?}");
    let v = verify(&spec, None, &SnapshotFacts::default(), &obs);
    assert!(
        matches!(v, Verification::Unknown(_)),
        "no trust policy: {v:?}"
    );
}
