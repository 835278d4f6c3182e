//! The scenarios real Karpenter is run through (tests/karpenter_live.rs) and what the doctor
//! should say about what it wrote (there, and on the recordings in tests/karpenter_replay.rs).
//! The expectations are the contract's, not today's output: one Diagnosis per root cause, a
//! value Karpenter cut (300 bytes + `...`) is never a resource, and no `Confirmed` rests on one.

use super::live::ACCOUNT;
use super::real_karpenter::{CONTROLLER_ROLE, Fault, NODE_ROLE, Setup, role_arn, session_arn};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The cross-account key of seed 2 (account 444455556666 owns it; moto is 123456789012).
pub const SEED2_KEY: &str =
    "arn:aws:kms:us-east-1:444455556666:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
/// The organization's management account and SCP, as AWS names a denying SCP.
pub const SCP: &str = "arn:aws-cn:organizations::210987654321:policy/o-9f2k3b7x1q/service_control_policy/p-4hd8e2mxqa";
/// An encoded authorization failure message (its shape: base64url-ish, long).
const ENCODED: &str = "Z2W8rVr0CT1yPd7x_mQ4kH3nLz9sB6eJ2uF5aG8cT1wY4oR7iN0vK3pX6dS9hM2qE5jU8lA1fC4bW7zO0gI3tV6yD9kP2nH5sL8xQ1eJ4uG7aR0cF3mZ6oB9iT2wK5vE8dY1hN4qS7jX0lU3pA6fC9rM2gO5tW8zI1bD4kV7yH0nE3sL6xQ9jP2uF5aG8cT1wR4oK7iN0vM3pX6dS9hB2qZ5jU8lA1fC4eW7yO0gI3tV6kD9nP2rH5sL8xQ1mJ4uG7aR0cF3bZ6oE9iT2wK5vY8dN1hS4qX7jU0lA3pM6fC9rO2gI5tW8zB1eD4kV7yH0nL3sQ6xP9jF2uA5aG8cT1wR4o";

/// One Diagnosis the doctor should write.
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    pub category: String,
    pub reason: String,
    pub confidence: String,
    pub principal: Option<String>,
    /// `spec.resourceArn`: the whole ARN, or none when no input names it whole.
    pub resource: Option<String>,
    pub kms_key: Option<String>,
}

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    /// The first Karpenter version that makes the call the fault is in (older ones skip it).
    pub since: Option<(u32, u32)>,
    pub setup: Setup,
    /// What the doctor should write from Karpenter's log, objects and Events alone.
    pub want: Vec<Want>,
    /// With the IAM snapshot (iam-snapshot.json in the recording), where there is one.
    pub want_with_snapshot: Option<Vec<Want>>,
}

/// Scenarios known to fail today because of the doctor's cut-ARN bug (a NodeClaim message
/// Karpenter cut at 300 bytes + `...` can yield a false `Confirmed` on the cut ARN, or a second
/// Diagnosis): `(version, scenario, with_snapshot)`. The tests fail on an entry that passes, so
/// it cannot go stale.
pub const KNOWN_BUG: &[(&str, &str, bool)] = &[
    // Empty since the cut-value fix (issue 24 §2): v1.0.8's NodeClaim `...role/Karp...` (a second
    // Diagnosis on `role/Karp`, ResourceNotCovered Confirmed with the IAM snapshot) and its cut
    // inside the SCP scenario's instance ARN now join the log line's whole failure.
];

pub fn known_bug(version: &str, scenario: &str, snapshot: bool) -> bool {
    KNOWN_BUG.contains(&(version, scenario, snapshot))
}

pub fn scenarios() -> Vec<Scenario> {
    let china = "cn-northwest-1";
    let controller = role_arn(china, CONTROLLER_ROLE);
    vec![
        Scenario {
            name: "passrole-fleet",
            since: None,
            about: "seed 1: EC2 Fleet refuses the launch because the controller may not pass the node role (aws-cn; the controller policy's iam:PassedToService names only ec2.amazonaws.com)",
            setup: Setup {
                region: china,
                kms_key: None,
                fault: Fault::FleetError {
                    code: "UnauthorizedOperation".into(),
                    message: format!(
                        "You are not authorized to perform this operation. User: {} is not authorized to perform: iam:PassRole on resource: {} because no identity-based policy allows the iam:PassRole action. Encoded authorization failure message: {ENCODED}",
                        session_arn(china),
                        role_arn(china, NODE_ROLE)
                    ),
                },
            },
            want: vec![want("PassRoleDenied", "PassedToServiceMismatch", "Inferred", Some(controller.clone()), Some(role_arn(china, NODE_ROLE)), None)],
            want_with_snapshot: Some(vec![want("PassRoleDenied", "PassedToServiceMismatch", "Confirmed", Some(controller.clone()), Some(role_arn(china, NODE_ROLE)), None)]),
        },
        Scenario {
            name: "passrole-instance-profile",
            since: None,
            about: "seed 1's other path: IAM refuses AddRoleToInstanceProfile for the EC2NodeClass's instance profile because the controller may not pass the node role (aws-cn)",
            setup: Setup {
                region: china,
                kms_key: None,
                fault: Fault::IamError {
                    operation: "AddRoleToInstanceProfile".into(),
                    status: 403,
                    code: "AccessDenied".into(),
                    message: format!(
                        "User: {} is not authorized to perform: iam:PassRole on resource: {} because no identity-based policy allows the iam:PassRole action",
                        session_arn(china),
                        role_arn(china, NODE_ROLE)
                    ),
                },
            },
            want: vec![want(
                "PassRoleDenied",
                "PassedToServiceMismatch",
                "Inferred",
                Some(controller.clone()),
                Some(role_arn(china, NODE_ROLE)),
                None,
            )],
            want_with_snapshot: None,
        },
        Scenario {
            name: "kms-terminated",
            since: None,
            about: "seed 2: the instance launches, then DescribeInstances reports it terminated with StateReason Client.InvalidKMSKey.InvalidState (the EC2NodeClass's root volume uses another account's key)",
            setup: Setup {
                region: "us-east-1",
                kms_key: Some(SEED2_KEY.into()),
                fault: Fault::InstanceTerminated {
                    code: "Client.InvalidKMSKey.InvalidState".into(),
                    message: "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state".into(),
                },
            },
            // No key facts: the key's state or its grants are unknown, so the cause is not
            // pinned (Undetermined), the key is named.
            want: vec![want("KmsKeyUnusable", "Undetermined", "Inferred", None, None, Some(SEED2_KEY.into()))],
            want_with_snapshot: None,
        },
        Scenario {
            name: "scp-deny",
            since: None,
            about: "an organization SCP explicitly denies ec2:RunInstances, the policy's ARN in AWS's message (aws-cn)",
            setup: Setup {
                region: china,
                kms_key: None,
                fault: Fault::FleetError {
                    code: "UnauthorizedOperation".into(),
                    message: format!(
                        "You are not authorized to perform this operation. User: {} is not authorized to perform: ec2:RunInstances on resource: arn:aws-cn:ec2:{china}:{ACCOUNT}:instance/* with an explicit deny in a service control policy: {SCP}. Encoded authorization failure message: {ENCODED}",
                        session_arn(china)
                    ),
                },
            },
            want: vec![want("ActionDenied", "ServiceControlPolicyDeny", "Inferred", Some(controller.clone()), Some(format!("arn:aws-cn:ec2:{china}:{ACCOUNT}:instance/*")), None)],
            want_with_snapshot: None,
        },
        Scenario {
            name: "validation-dry-run",
            since: Some((1, 3)),
            about: "EC2NodeClass validation (v1.3+): only the dry run of ec2:RunInstances is refused, by an SCP whose ARN AWS leaves out (as in karpenter-provider-aws#7953); no NodeClaim is made (aws-cn)",
            setup: Setup {
                region: china,
                kms_key: None,
                fault: Fault::DryRunRefused {
                    operation: "RunInstances".into(),
                    code: "UnauthorizedOperation".into(),
                    message: format!(
                        "You are not authorized to perform this operation. User: {} is not authorized to perform: ec2:RunInstances on resource: arn:aws-cn:ec2:{china}:{ACCOUNT}:volume/* with an explicit deny in a service control policy. Encoded authorization failure message: {ENCODED}",
                        session_arn(china)
                    ),
                },
            },
            want: vec![want("ActionDenied", "ServiceControlPolicyDeny", "Inferred", Some(controller.clone()), Some(format!("arn:aws-cn:ec2:{china}:{ACCOUNT}:volume/*")), None)],
            want_with_snapshot: None,
        },
        Scenario {
            name: "irsa-trust-mismatch",
            since: None,
            about: "IRSA: STS refuses Karpenter's AssumeRoleWithWebIdentity because the controller role's trust policy names the ServiceAccount karpenter/karpenter while Karpenter runs as kube-system/karpenter; Karpenter exits before any launch (aws-cn)",
            setup: Setup {
                region: china,
                kms_key: None,
                fault: Fault::WebIdentityRefused {
                    code: "AccessDenied".into(),
                    message: "Not authorized to perform sts:AssumeRoleWithWebIdentity".into(),
                },
            },
            // AWS's message gives no cause: with the cluster's issuer (aws eks describe-cluster)
            // the trust policy is the likely one (Inferred); the trust policy in the IAM
            // snapshot refuses the token of kube-system/karpenter: Confirmed.
            want: vec![want("CredentialsDenied", "TrustPolicyMismatch", "Inferred", Some(controller.clone()), None, None)],
            want_with_snapshot: Some(vec![want("CredentialsDenied", "TrustPolicyMismatch", "Confirmed", Some(controller.clone()), None, None)]),
        },
        Scenario {
            name: "capacity-only",
            since: None,
            about: "a negative: every override refused for capacity (InsufficientInstanceCapacity), nothing to diagnose",
            setup: Setup {
                region: china,
                kms_key: None,
                fault: Fault::FleetError {
                    code: "InsufficientInstanceCapacity".into(),
                    message: "We currently do not have sufficient {instanceType} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {instanceType} capacity by not specifying an Availability Zone in your request or choosing cn-northwest-1c.".into(),
                },
            },
            want: vec![],
            want_with_snapshot: None,
        },
    ]
}

pub fn scenario(name: &str) -> Scenario {
    scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

fn want(
    category: &str,
    reason: &str,
    confidence: &str,
    principal: Option<String>,
    resource: Option<String>,
    kms_key: Option<String>,
) -> Want {
    Want {
        category: category.into(),
        reason: reason.into(),
        confidence: confidence.into(),
        principal,
        resource,
        kms_key,
    }
}

/// What one Diagnosis says, in the terms of `Want`.
pub fn got(d: &Value) -> Want {
    let s = |v: &Value| v.as_str().map(str::to_string);
    Want {
        category: s(&d["spec"]["category"]).unwrap_or_default(),
        reason: s(&d["status"]["rootCause"]["reason"]).unwrap_or_default(),
        confidence: s(&d["status"]["rootCause"]["confidence"]).unwrap_or_default(),
        principal: s(&d["spec"]["principalArn"]),
        resource: s(&d["spec"]["resourceArn"]),
        kms_key: s(&d["spec"]["kmsKeyArn"]),
    }
}

/// The recording's input files, in the order given to `explain`.
pub fn inputs(dir: &Path) -> Vec<String> {
    [
        "karpenter.log",
        "nodeclaims.json",
        "ec2nodeclass.json",
        "nodepool.json",
        "events.json",
        "serviceaccount.json",
        "describe-instances.json",
        "describe-cluster.json",
    ]
    .iter()
    .map(|f| dir.join(f))
    .filter(|p| p.exists())
    .map(|p| p.display().to_string())
    .collect()
}

/// `karpenter-doctor explain -o json` (offline) on a recording's files, with its IAM snapshot
/// when `snapshot`: the Diagnoses.
pub fn explain(dir: &Path, snapshot: bool) -> Vec<Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_karpenter-doctor"));
    command
        .arg("explain")
        .args(inputs(dir))
        .args(["-o", "json"]);
    if snapshot {
        command
            .arg("--iam-snapshot")
            .arg(dir.join("iam-snapshot.json"));
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "explain on {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// How the doctor's Diagnoses differ from `want` (empty: as they should be). Besides the
/// fields: no resource that is a cut value (ends in `...` or is a prefix of the whole one),
/// and no `Confirmed` whose resource is not whole.
pub fn differences(items: &[Value], want: &[Want]) -> Vec<String> {
    let mut out = Vec::new();
    let mut got: Vec<Want> = items.iter().map(got).collect();
    for w in want {
        match got.iter().position(|g| g == w) {
            Some(i) => {
                got.remove(i);
            }
            None => out.push(format!("missing: {w:?}")),
        }
    }
    for g in got {
        out.push(format!("extra: {g:?}"));
    }
    for d in items {
        let resource = d["spec"]["resourceArn"].as_str().unwrap_or("");
        let whole = want.iter().any(|w| w.resource.as_deref() == Some(resource));
        if !resource.is_empty() && !whole {
            let cut = resource.ends_with("...")
                || want
                    .iter()
                    .filter_map(|w| w.resource.as_deref())
                    .any(|r| r.starts_with(resource));
            if cut {
                out.push(format!(
                    "{}: a cut value as its resource: {resource}",
                    d["metadata"]["name"]
                ));
                if d["status"]["rootCause"]["confidence"] == "Confirmed" {
                    out.push(format!(
                        "{}: Confirmed on the cut resource {resource}",
                        d["metadata"]["name"]
                    ));
                }
            }
        }
    }
    out
}
