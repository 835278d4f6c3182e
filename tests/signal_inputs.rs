//! Every input kind `explain` reads, from realistic fixtures (tests/fixtures/signals/): what
//! each yields as signals and objects, and how bad input becomes warnings, never a crash.

use karpenter_doctor::signal::{
    Category, DefaultKeyUse, InstanceInfo, NodeClaimInfo, NodeClassInfo, NodePoolInfo,
    Observations, PolicyLayer, Scanner, Signal, Source,
};

const CTRL: &str = "arn:aws:sts::111122223333:assumed-role/KarpenterController-demo/1717236000";
const NODE_ROLE: &str = "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/signals/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn scan_bytes(name: &str, bytes: &[u8]) -> Observations {
    let mut out = Observations::default();
    Scanner::new()
        .unwrap()
        .scan(name, bytes, &mut out, &mut |_| {})
        .unwrap();
    out
}

fn scan(name: &str) -> Observations {
    scan_bytes(name, &fixture(name))
}

fn clean(name: &str) -> Observations {
    let out = scan(name);
    assert!(out.warnings.is_empty(), "{name}: {:?}", out.warnings);
    out
}

/// The fields the diagnosis reads, for compact assertions.
#[derive(Debug, PartialEq)]
struct Seen<'a> {
    line: usize,
    rule: &'a str,
    category: Category,
    code: Option<&'a str>,
    layer: Option<PolicyLayer>,
    principal: Option<&'a str>,
    action: Option<&'a str>,
    resource: Option<&'a str>,
}

fn seen(s: &Signal) -> Seen<'_> {
    Seen {
        line: s.origin.line,
        rule: &s.rule,
        category: s.category,
        code: s.error_code.as_deref(),
        layer: s.layer,
        principal: s.principal.as_deref(),
        action: s.action.as_deref(),
        resource: s.resource.as_deref(),
    }
}

#[test]
fn v1_json_log_lines() {
    let out = clean("karpenter-v1.jsonl");
    let got: Vec<Seen> = out.signals.iter().map(seen).collect();
    assert_eq!(
        got,
        vec![
            Seen {
                line: 4,
                rule: "aws-not-authorized",
                category: Category::PassRoleDenied,
                code: Some("UnauthorizedOperation"),
                layer: Some(PolicyLayer::NoIdentityPolicy),
                // The user's `…` elided it: not a principal (issue 26 §1).
                principal: None,
                action: Some("iam:PassRole"),
                resource: Some("arn:aws:iam::111111111111:role/KarpenterNodeRole-…"),
            },
            Seen {
                line: 6,
                rule: "aws-not-authorized",
                category: Category::ActionDenied,
                code: Some("UnauthorizedOperation"),
                layer: Some(PolicyLayer::ScpExplicitDeny),
                principal: Some(CTRL),
                action: Some("ec2:RunInstances"),
                resource: Some("arn:aws:ec2:us-east-2:111122223333:instance/*"),
            },
            Seen {
                line: 7,
                rule: "aws-not-authorized",
                category: Category::ActionDenied,
                code: Some("UnauthorizedOperation"),
                layer: Some(PolicyLayer::NoIdentityPolicy),
                principal: Some(CTRL),
                action: Some("ec2:CreateFleet"),
                resource: Some("arn:aws:ec2:us-west-2:111122223333:launch-template/*"),
            },
            Seen {
                line: 7,
                rule: "aws-not-authorized",
                category: Category::PassRoleDenied,
                code: Some("UnauthorizedOperation"),
                layer: Some(PolicyLayer::NoIdentityPolicy),
                principal: Some(CTRL),
                action: Some("iam:PassRole"),
                resource: Some(NODE_ROLE),
            },
            Seen {
                line: 8,
                rule: "aws-not-authorized",
                category: Category::PassRoleDenied,
                code: Some("AccessDenied"),
                layer: Some(PolicyLayer::NoIdentityPolicy),
                principal: Some(CTRL),
                action: Some("iam:PassRole"),
                resource: Some(NODE_ROLE),
            },
            Seen {
                line: 10,
                rule: "spot-slr-not-permitted",
                category: Category::ActionDenied,
                code: Some("AuthFailure.ServiceLinkedRoleCreationNotPermitted"),
                layer: None,
                principal: None,
                action: Some("iam:CreateServiceLinkedRole"),
                resource: None,
            },
            Seen {
                line: 11,
                rule: "aws-not-authorized",
                category: Category::ActionDenied,
                code: Some("UnauthorizedOperation"),
                layer: Some(PolicyLayer::NoIdentityPolicy),
                principal: Some(CTRL),
                action: Some("ec2:CreateFleet"),
                resource: Some("arn:aws:ec2:us-west-2:111122223333:fleet/*"),
            },
        ]
    );
    let s = &out.signals;
    // The domain's placeholder "…" is not an encoded message; real blobs are kept.
    assert_eq!(s[0].encoded_message, None);
    assert_eq!(s[1].encoded_message.as_deref(), Some("Yq3k-Z_9xW2"));
    assert_eq!(
        (
            s[2].encoded_message.as_deref(),
            s[3].encoded_message.as_deref()
        ),
        (Some("QUJD"), Some("REVG"))
    );
    // Context from the line's fields.
    assert_eq!(s[0].node_claim.as_deref(), Some("bottlerocket-wts6g"));
    assert_eq!(s[0].time.as_deref(), Some("2024-06-01T10:00:00.000Z"));
    assert_eq!(s[1].node_claim.as_deref(), Some("default-x7k2q"));
    assert_eq!(s[1].node_pool.as_deref(), Some("default"));
    assert_eq!(s[4].node_class.as_deref(), Some("default"));
    assert_eq!(
        s[4].node_claim, None,
        "a NodeClass controller's name is not a claim"
    );
    assert_eq!(s[5].node_claim.as_deref(), Some("spot-p-d8rwv"));
    assert!(
        s.iter()
            .all(|x| x.source == Source::Log && x.origin.file == "karpenter-v1.jsonl")
    );
    // The message is the raw error text, status-code tail included.
    assert!(
        s[4].message
            .starts_with("creating instance profile, adding role")
    );
    assert!(
        s[4].message
            .ends_with("request id: 5a0c1f4e-6f1e-4a52-9d2b-0c1c8f0e9a11")
    );
    assert_eq!(s[0].message.matches("UnauthorizedOperation").count(), 1);
    // Log lines carry no objects.
    assert!(out.node_claims.is_empty() && out.instances.is_empty());
}

#[test]
fn machine_era_json_log_lines() {
    let out = clean("karpenter-v03x-machine.jsonl");
    assert_eq!(out.signals.len(), 1);
    let s = &out.signals[0];
    assert_eq!(s.origin.line, 2);
    assert_eq!(s.category, Category::PassRoleDenied);
    assert_eq!(
        s.principal.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/KarpenterControllerRole-demo/1696499000")
    );
    assert_eq!(s.encoded_message.as_deref(), Some("b3JpZ2luYWw"));
    assert_eq!(s.node_claim.as_deref(), Some("default-abc12"));
    assert_eq!(s.node_pool.as_deref(), Some("default"));
    assert_eq!(s.time.as_deref(), Some("2023-10-05T10:00:01.250Z"));
}

#[test]
fn console_format_log_lines() {
    let out = clean("karpenter-v03x-console.log");
    let got: Vec<(usize, &str, Option<&str>, Option<PolicyLayer>)> = out
        .signals
        .iter()
        .map(|s| (s.origin.line, s.rule.as_str(), s.action.as_deref(), s.layer))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                3,
                "aws-not-authorized",
                Some("ec2:CreateFleet"),
                Some(PolicyLayer::BoundaryExplicitDeny)
            ),
            (
                4,
                "spot-slr-not-permitted",
                Some("iam:CreateServiceLinkedRole"),
                None
            ),
            (
                5,
                "aws-not-authorized",
                Some("ec2:DescribeImages"),
                Some(PolicyLayer::NoIdentityPolicy)
            ),
        ]
    );
    let s = &out.signals;
    assert_eq!(s[0].node_claim.as_deref(), Some("default-abc12"));
    assert_eq!(s[0].node_pool.as_deref(), Some("default"));
    assert_eq!(s[0].time.as_deref(), Some("2023-10-05T10:00:00.000Z"));
    assert_eq!(s[0].encoded_message.as_deref(), Some("cGVybQ"));
    // The message column, without the field object.
    assert!(s[0].message.ends_with("Encoded Failure: cGVybQ"));
    assert_eq!(s[1].time.as_deref(), Some("2021-10-18T20:20:54.437Z"));
    assert!(s[1].message.starts_with("launching 1 instance(s)"));
    // The wrong principal: a node role session, named as written.
    assert_eq!(
        s[2].principal.as_deref(),
        Some(
            "arn:aws:sts::111122223333:assumed-role/demo-eks-node-group-20231005/i-0feec0ffee1234567"
        )
    );
}

#[test]
fn a_bare_pasted_error_line() {
    let out = clean("seed-passrole.txt");
    assert_eq!(out.signals.len(), 1);
    let s = &out.signals[0];
    assert_eq!(
        seen(s),
        Seen {
            line: 1,
            rule: "aws-not-authorized",
            category: Category::PassRoleDenied,
            code: Some("UnauthorizedOperation"),
            layer: Some(PolicyLayer::NoIdentityPolicy),
            principal: Some(
                "arn:aws-cn:sts::xxxxx:assumed-role/xxxx-karpenter-controller-role/xxxxx"
            ),
            action: Some("iam:PassRole"),
            resource: Some("arn:aws-cn:iam::xxxx:role/xxxxx-karpenter-node-role"),
        }
    );
    assert_eq!(s.time, None);
    assert_eq!(
        s.message,
        String::from_utf8(fixture("seed-passrole.txt"))
            .unwrap()
            .trim()
    );

    // The instance-profile variant, whose status-code tail is on a line of its own.
    let out = clean("instance-profile-passrole.txt");
    assert_eq!(out.signals.len(), 1);
    assert_eq!(out.signals[0].error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(
        out.signals[0].resource.as_deref(),
        Some("arn:aws-cn:iam::XXX:role/…")
    );
}

#[test]
fn nodeclaims_as_a_json_list() {
    let out = clean("nodeclaims.json");
    assert_eq!(out.signals.len(), 1, "{:?}", out.signals);
    let s = &out.signals[0];
    assert_eq!(
        (s.source, s.rule.as_str(), s.category),
        (
            Source::NodeClaim,
            "nodeclaim-unauthorized",
            Category::ActionDenied
        )
    );
    assert_eq!(
        (s.principal.as_deref(), s.action.as_deref(), s.layer),
        (None, None, None)
    );
    assert_eq!(s.node_claim.as_deref(), Some("default-x7k2q"));
    assert_eq!(s.node_pool.as_deref(), Some("default"));
    assert_eq!(s.node_class.as_deref(), Some("default"));
    assert_eq!(s.time.as_deref(), Some("2024-06-01T10:00:00Z"));
    assert_eq!(s.origin.line, 1);
    assert_eq!(
        out.node_claims,
        vec![
            NodeClaimInfo {
                name: "default-x7k2q".into(),
                node_pool: Some("default".into()),
                node_class: Some("default".into()),
                instance_id: None,
                image_id: None,
                capacity_type: None,
                lost: false,
            },
            NodeClaimInfo {
                name: "encrypted-9fj2k".into(),
                node_pool: Some("encrypted".into()),
                node_class: Some("encrypted".into()),
                instance_id: Some("i-0abc1234def567890".into()),
                image_id: Some("ami-0a1b2c3d4e5f60718".into()),
                capacity_type: None,
                lost: true,
            },
        ]
    );
}

#[test]
fn nodeclaims_as_yaml_documents() {
    let out = clean("nodeclaims.yaml");
    assert_eq!(out.signals.len(), 1);
    let s = &out.signals[0];
    assert_eq!(s.layer, Some(PolicyLayer::ScpExplicitDeny));
    assert_eq!(s.node_claim.as_deref(), Some("default-b1"));
    // The second `---` document starts on line 2 of the file.
    assert_eq!(s.origin.line, 2);
    let names: Vec<&str> = out.node_claims.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["default-b1", "default-b2"]);
    assert_eq!(
        out.node_claims[1].instance_id.as_deref(),
        Some("i-0123456789abcdef0")
    );

    let out = clean("nodeclaim-v1beta1.yaml");
    assert_eq!(out.signals.len(), 1);
    let s = &out.signals[0];
    assert_eq!(s.rule, "nodeclaim-spot-slr-failed");
    assert_eq!(s.action.as_deref(), Some("iam:CreateServiceLinkedRole"));
    assert_eq!(s.node_pool.as_deref(), Some("spot"));
    assert_eq!(s.node_class.as_deref(), Some("default"));
}

#[test]
fn ec2nodeclasses() {
    let out = clean("ec2nodeclasses.yaml");
    assert_eq!(out.signals.len(), 1);
    let s = &out.signals[0];
    assert_eq!(
        (s.source, s.rule.as_str(), s.action.as_deref()),
        (
            Source::NodeClass,
            "nodeclass-auth-check-failed",
            Some("ec2:CreateFleet")
        )
    );
    assert_eq!(s.node_class.as_deref(), Some("default"));
    assert_eq!(s.time.as_deref(), Some("2024-06-01T10:10:00Z"));
    let key = "arn:aws:kms:us-west-2:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    assert_eq!(
        out.node_classes,
        vec![
            NodeClassInfo {
                name: "default".into(),
                role: Some("KarpenterNodeRole-demo".into()),
                instance_profile: Some("demo_1234567890".into()),
                kms_key_ids: vec![],
                ami_ids: vec![
                    "ami-0123456789abcdef0".into(),
                    "ami-0fedcba9876543210".into()
                ],
                http_tokens: None,
                // No mappings: Karpenter's default root volume, encrypted, names no key.
                default_ebs_key: DefaultKeyUse::Always,
                ami_aliases: vec!["al2023@latest".into()],
                capacity_reservations: false,
            },
            NodeClassInfo {
                name: "encrypted".into(),
                role: None,
                instance_profile: Some("KarpenterNodeInstanceProfile-demo".into()),
                kms_key_ids: vec![key.into()],
                ami_ids: vec!["ami-0a1b2c3d4e5f60718".into()],
                http_tokens: None,
                default_ebs_key: DefaultKeyUse::Never,
                ami_aliases: vec!["bottlerocket@latest".into()],
                capacity_reservations: false,
            },
        ]
    );

    let out = clean("awsnodetemplate-v1alpha1.yaml");
    assert!(out.signals.is_empty());
    assert_eq!(out.node_classes[0].kms_key_ids, ["alias/ebs-cmk"]);
    assert_eq!(out.node_classes[0].default_ebs_key, DefaultKeyUse::Never);
}

#[test]
fn core_v1_events() {
    type Got<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let out = clean("events.json");
    let got: Vec<Got> = out
        .signals
        .iter()
        .map(|s| {
            (
                s.rule.as_str(),
                s.action.as_deref(),
                s.node_claim.as_deref(),
                s.node_pool.as_deref(),
            )
        })
        .collect();
    // The capacity error and the termination notice are not failures the rules know.
    assert_eq!(
        got,
        vec![
            (
                "aws-not-authorized",
                Some("iam:PassRole"),
                Some("default-x7k2q"),
                None
            ),
            (
                "spot-slr-not-permitted",
                Some("iam:CreateServiceLinkedRole"),
                None,
                Some("spot")
            ),
        ]
    );
    let s = &out.signals[0];
    assert_eq!(s.source, Source::Event);
    assert_eq!(s.time.as_deref(), Some("2024-06-01T10:20:00Z"));
    assert_eq!(s.encoded_message.as_deref(), Some("ZXZlbnQ"));
}

#[test]
fn events_k8s_io_v1() {
    let out = clean("events-k8s-io-v1.yaml");
    assert_eq!(out.signals.len(), 1);
    let s = &out.signals[0];
    assert_eq!(s.source, Source::Event);
    assert_eq!(s.layer, Some(PolicyLayer::IdentityExplicitDeny));
    assert_eq!(s.action.as_deref(), Some("ec2:RunInstances"));
    assert_eq!(s.node_class.as_deref(), Some("default"));
    assert_eq!(s.time.as_deref(), Some("2024-06-01T10:40:00.000000Z"));
}

#[test]
fn service_accounts() {
    // In a list, only Karpenter's own account names the controller role.
    let out = clean("serviceaccounts.json");
    assert_eq!(
        out.controller_roles,
        ["arn:aws:iam::111122223333:role/KarpenterController-demo"]
    );
    // A lone object is taken as the user's choice, whatever its name.
    let out = clean("serviceaccount-karpenter.yaml");
    assert_eq!(
        out.controller_roles,
        ["arn:aws-cn:iam::111122223333:role/demo-karpenter-controller-role"]
    );
}

#[test]
fn describe_instances() {
    let out = clean("describe-instances.json");
    let got: Vec<(&str, Category, Option<&str>, Option<&str>)> = out
        .signals
        .iter()
        .map(|s| {
            (
                s.rule.as_str(),
                s.category,
                s.instance_id.as_deref(),
                s.error_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "kms-key-invalid-state",
                Category::KmsKeyUnusable,
                Some("i-0abc1234def567890"),
                Some("Client.InvalidKMSKey.InvalidState")
            ),
            (
                "ec2-client-error-on-launch",
                Category::KmsKeyUnusable,
                Some("i-0fedcba9876543210"),
                Some("Client.InternalError")
            ),
        ]
    );
    let s = &out.signals[0];
    assert_eq!(s.source, Source::Instance);
    assert_eq!(s.node_claim.as_deref(), Some("encrypted-9fj2k"));
    assert_eq!(s.node_pool.as_deref(), Some("encrypted"));
    assert_eq!(s.node_class.as_deref(), Some("encrypted"));
    assert_eq!(s.time.as_deref(), Some("2024-06-01T11:00:02+00:00"));
    assert_eq!(
        s.message,
        "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state"
    );
    assert_eq!(out.instances.len(), 3);
    assert_eq!(
        out.instances[0],
        InstanceInfo {
            instance_id: "i-0abc1234def567890".into(),
            image_id: Some("ami-0a1b2c3d4e5f60718".into()),
            state: Some("terminated".into()),
            state_reason_code: Some("Client.InvalidKMSKey.InvalidState".into()),
            state_reason_message: Some(
                "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state"
                    .into()
            ),
            node_claim: Some("encrypted-9fj2k".into()),
            node_pool: Some("encrypted".into()),
            node_class: Some("encrypted".into()),
            region: Some("us-west-2".into()),
            launch_time: Some("2024-06-01T11:00:02+00:00".into()),
            capacity_type: "on-demand".into(),
        }
    );
    // A healthy instance is an object, not a signal.
    assert_eq!(out.instances[1].state.as_deref(), Some("running"));
}

#[test]
fn describe_instances_flattened_by_a_query() {
    // `--query 'Reservations[].Instances[]'` prints a bare array of instances.
    let text = r#"[{"InstanceId": "i-0abc1234def567890", "StateReason": {"Code": "Client.InvalidKMSKey.InvalidState"}}]"#;
    let out = scan_bytes("q.json", text.as_bytes());
    assert_eq!(out.instances.len(), 1);
    assert_eq!(out.signals.len(), 1);
    assert_eq!(out.signals[0].category, Category::KmsKeyUnusable);
}

#[test]
fn typed_lists_lend_their_kind_to_items() {
    // `kubectl get --raw /api/v1/events` prints an EventList whose items carry no kind.
    let text = r#"{"kind": "EventList", "apiVersion": "v1", "items": [
        {"involvedObject": {"kind": "NodeClaim", "name": "default-x7k2q"},
         "reason": "FailedLaunch",
         "message": "AuthFailure.ServiceLinkedRoleCreationNotPermitted: The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances."}]}"#;
    let out = scan_bytes("raw.json", text.as_bytes());
    assert_eq!(out.signals.len(), 1);
    assert_eq!(out.signals[0].source, Source::Event);
    assert_eq!(out.signals[0].node_claim.as_deref(), Some("default-x7k2q"));
    // A plain List lends nothing: an item without a kind is not guessed at.
    let text = text.replace("EventList", "List");
    assert!(scan_bytes("raw.json", text.as_bytes()).signals.is_empty());
}

#[test]
fn nodepools_give_their_node_class_and_registration_health_but_no_signal() {
    let out = clean("nodepools.yaml");
    assert_eq!(
        out.node_pools,
        [NodePoolInfo {
            name: "default".into(),
            node_class: Some("default".into()),
            registration_unhealthy: true,
            capacity_types: vec!["on-demand".into()],
        }]
    );
    assert_eq!(
        Observations {
            node_pools: Vec::new(),
            ..out
        },
        Observations::default()
    );
    let healthy = String::from_utf8(fixture("nodepools.yaml"))
        .unwrap()
        .replace("status: \"False\"", "status: \"True\"");
    let out = scan_bytes("nodepools.yaml", healthy.as_bytes());
    assert!(!out.node_pools[0].registration_unhealthy);
}

#[test]
fn all_fixtures_together_accumulate() {
    let scanner = Scanner::new().unwrap();
    let mut out = Observations::default();
    for name in [
        "nodeclaims.json",
        "describe-instances.json",
        "ec2nodeclasses.yaml",
    ] {
        scanner
            .scan(name, &fixture(name)[..], &mut out, &mut |_| {})
            .unwrap();
    }
    assert_eq!(out.signals.len(), 4);
    // The NodeClaim seen as an object and the instance's tags agree on the links the
    // diagnosis follows for the KMS story: claim → instance → class → key.
    let claim = out
        .node_claims
        .iter()
        .find(|c| c.name == "encrypted-9fj2k")
        .unwrap();
    let instance = out
        .instances
        .iter()
        .find(|i| Some(&i.instance_id) == claim.instance_id.as_ref())
        .unwrap();
    let class = out
        .node_classes
        .iter()
        .find(|c| Some(&c.name) == instance.node_class.as_ref())
        .unwrap();
    assert_eq!(class.kms_key_ids.len(), 1);
}

// ---- bad input -------------------------------------------------------------------------

#[test]
fn an_empty_input_is_one_warning() {
    for text in ["", "\n\n   \t\n"] {
        let out = scan_bytes("empty.log", text.as_bytes());
        assert_eq!(out.signals.len(), 0);
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(out.warnings[0].origin.file, "empty.log");
        assert_eq!(out.warnings[0].message, "empty input");
    }
}

#[test]
fn truncated_and_malformed_json_lines_are_read_for_what_they_hold_with_warnings() {
    let v1 = String::from_utf8(fixture("karpenter-v1.jsonl")).unwrap();
    let lines: Vec<&str> = v1.lines().collect();
    // Line 4 cut in the middle of its error (after the words the prefilter looks for: a line
    // cut before them is as irrelevant as any other); line 6 missing a colon.
    let mut broken: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let cut_at = lines[3].find("iam:PassRole on").unwrap();
    broken[3] = lines[3][..cut_at].to_string();
    broken[2] = lines[3][..lines[3].find("not authorized").unwrap()].to_string();
    broken[5] = lines[5].replacen("\"error\":", "\"error\"", 1);
    let out = scan_bytes("cut.jsonl", broken.join("\n").as_bytes());
    let warned: Vec<usize> = out.warnings.iter().map(|w| w.origin.line).collect();
    assert_eq!(warned, vec![3, 4, 6]);
    assert!(
        out.warnings
            .iter()
            .all(|w| w.message.starts_with("malformed JSON log record"))
    );
    assert!(out.warnings[0].message.ends_with("read what it holds"));
    assert!(out.warnings[2].message.ends_with("; read as text"));
    // Line 3, a Karpenter error record cut before its error, is looked at (a re-wrapped record
    // opens so): what it holds names no failure, so it yields only its warning. Line 4 still says EC2 refused
    // something, its sentence cut before the action: one signal whose action is unknown, not
    // the enclosing call's (issue 26 §2), though the call is known. Line 6's members no longer
    // hold its error, but the record is still text: read as written (issue 26 §1). The rest is
    // still read: lines 7, 8, 10, 11.
    let lines: Vec<usize> = out.signals.iter().map(|s| s.origin.line).collect();
    assert_eq!(lines, vec![4, 6, 7, 7, 8, 10, 11]);
    assert_eq!(out.signals[1].action.as_deref(), Some("ec2:RunInstances"));
    assert_eq!(out.signals[0].principal, None);
    assert_eq!(out.signals[0].action, None);
    assert_eq!(out.signals[0].action_from, None);
    assert!(out.signals[0].call.is_some());
}

#[test]
fn invalid_utf8_and_binary_garbage_are_warnings() {
    let mut input = b"\x00\x01\x02\xff\xfe binary header\n".to_vec();
    input.extend_from_slice(b"\xc3\x28 User is not authorized to perform this operation because no identity-based policy allows it\n");
    input.extend_from_slice(&fixture("seed-passrole.txt"));
    let out = scan_bytes("bin.log", &input);
    assert_eq!(out.signals.len(), 1);
    assert_eq!(out.signals[0].origin.line, 3);
    let warnings: Vec<(usize, &str)> = out
        .warnings
        .iter()
        .map(|w| (w.origin.line, w.message.as_str()))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(warnings[0].0, 0);
    assert!(
        warnings[0]
            .1
            .starts_with("binary data (a NUL byte at offset 0)")
    );
    assert_eq!(warnings[1].0, 2);
    assert!(warnings[1].1.contains("not valid UTF-8"));
}

#[test]
fn an_overlong_line_is_skipped_with_a_warning() {
    let seed = String::from_utf8(fixture("seed-passrole.txt")).unwrap();
    let long = format!("{}{seed}", "x".repeat(2 << 20));
    let input = format!("{seed}{long}{seed}");
    let out = scan_bytes("long.log", input.as_bytes());
    let lines: Vec<usize> = out.signals.iter().map(|s| s.origin.line).collect();
    assert_eq!(lines, vec![1, 3]);
    assert_eq!(out.warnings.len(), 1);
    assert_eq!(out.warnings[0].origin.line, 2);
    assert!(out.warnings[0].message.contains("longer than 1 MiB"));
}

#[test]
fn an_invalid_json_document_is_one_warning_with_its_position() {
    let text = String::from_utf8(fixture("nodeclaims.json")).unwrap();
    let cut = &text[..text.len() / 2];
    let out = scan_bytes("nodeclaims.json", cut.as_bytes());
    assert!(out.signals.is_empty() && out.node_claims.is_empty());
    assert_eq!(out.warnings.len(), 1);
    let w = &out.warnings[0];
    assert_eq!(w.origin.file, "nodeclaims.json");
    assert_eq!(w.origin.line, cut.lines().count());
    assert!(
        w.message.starts_with("not valid JSON, skipped: EOF"),
        "{}",
        w.message
    );
}

#[test]
fn a_broken_yaml_document_spoils_only_itself() {
    let good = String::from_utf8(fixture("nodeclaims.yaml")).unwrap();
    let text = format!("{good}---\nkind: NodeClaim\nmetadata: {{name: [unclosed\n");
    let out = scan_bytes("mixed.yaml", text.as_bytes());
    assert_eq!(out.node_claims.len(), 2);
    assert_eq!(out.warnings.len(), 1);
    let w = &out.warnings[0];
    assert!(
        w.message.starts_with("not valid YAML, skipped"),
        "{}",
        w.message
    );
    let broken_doc_line = good.lines().count() + 1;
    assert!(
        w.origin.line > broken_doc_line && w.origin.line <= broken_doc_line + 3,
        "line {} for a document starting at {broken_doc_line}",
        w.origin.line
    );
}

#[test]
fn warnings_are_capped_per_input() {
    let bad = "{\"level\":\"ERROR\",\"error\":\"UnauthorizedOperation: You are not authorized to perform this operation. trunc\n";
    let out = scan_bytes("many.jsonl", bad.repeat(1000).as_bytes());
    assert_eq!(out.warnings.len(), 101);
    assert_eq!(
        out.warnings[100].message,
        "900 more warnings not shown (at most 100 per input)"
    );
    assert_eq!(out.warnings[100].origin.line, 101);
}

#[test]
fn progress_reports_every_byte_consumed() {
    let bytes = fixture("karpenter-v1.jsonl");
    let mut last = 0;
    let mut out = Observations::default();
    Scanner::new()
        .unwrap()
        .scan("p", &bytes[..], &mut out, &mut |n| {
            assert!(n >= last);
            last = n;
        })
        .unwrap();
    assert_eq!(last, bytes.len() as u64);
    let yaml = fixture("ec2nodeclasses.yaml");
    Scanner::new()
        .unwrap()
        .scan("p", &yaml[..], &mut out, &mut |n| last = n)
        .unwrap();
    assert_eq!(last, yaml.len() as u64);
}

#[test]
fn read_errors_are_returned_after_what_was_read() {
    struct Failing<'a>(&'a [u8]);
    impl std::io::Read for Failing<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let seed = fixture("seed-passrole.txt");
    let mut out = Observations::default();
    let e = Scanner::new()
        .unwrap()
        .scan("f", Failing(&seed), &mut out, &mut |_| {})
        .unwrap_err();
    assert_eq!(e.to_string(), "disk on fire");
}

#[test]
fn a_registered_nodeclaim_is_lost_only_once_an_event_says_its_instance_is_terminating() {
    let claim = r#"{"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "default-a1"},
        "status": {"providerID": "aws:///us-east-1a/i-0123456789abcdef0", "conditions": [
            {"type": "Launched", "status": "True"}, {"type": "Registered", "status": "True"}]}}"#;
    let healthy = scan_bytes("nodeclaim.json", claim.as_bytes());
    assert!(!healthy.node_claims[0].lost, "{:?}", healthy.node_claims);
    for reason in ["InstanceTerminating", "TerminatingOnInterruption"] {
        let event = format!(
            r#"{{"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {{"name": "e1"}}, "reason": "{reason}",
                "note": "Instance is terminating", "regarding": {{"kind": "NodeClaim", "name": "default-a1"}}}}"#
        );
        let both = scan_bytes("both.json", format!("{claim}\n{event}").as_bytes());
        assert_eq!(both.node_claims.len(), 1, "one NodeClaim, merged by name");
        assert!(both.node_claims[0].lost, "{reason}");
        assert_eq!(
            both.node_claims[0].instance_id.as_deref(),
            Some("i-0123456789abcdef0")
        );
    }
    let other = r#"{"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e2"}, "reason": "Nominated",
        "note": "Pod should schedule", "regarding": {"kind": "NodeClaim", "name": "default-a1"}}"#;
    let nominated = scan_bytes("nominated.json", format!("{claim}\n{other}").as_bytes());
    assert!(!nominated.node_claims[0].lost);
}

#[test]
fn a_nodepool_whose_registrations_fail_reports_its_claims_launch_failure() {
    // Karpenter v1.4+ copies the Launched reason and message into NodeRegistrationHealthy.
    let yaml = r#"apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: general
spec:
  template:
    spec:
      nodeClassRef:
        group: karpenter.k8s.aws
        kind: EC2NodeClass
        name: default
status:
  conditions:
  - lastTransitionTime: "2026-05-11T13:05:00Z"
    message: User is not authorized to perform this operation due to a service control policy
    reason: Unauthorized
    status: "False"
    type: NodeRegistrationHealthy
"#;
    let out = scan_bytes("nodepools.yaml", yaml.as_bytes());
    assert_eq!(out.signals.len(), 1, "{:?}", out.signals);
    let s = &out.signals[0];
    assert_eq!(s.node_pool.as_deref(), Some("general"));
    assert_eq!(s.node_class.as_deref(), Some("default"));
    assert_eq!(
        s.layer,
        Some(karpenter_doctor::signal::PolicyLayer::ScpExplicitDeny)
    );
    assert!(out.node_pools[0].registration_unhealthy);
}

/// Bounded whatever comes in (issue 24 §5): past `MAX_SIGNALS` failures are counted in one
/// warning, not kept.
#[test]
fn failures_past_the_cap_are_counted_not_kept() {
    use karpenter_doctor::signal::{MAX_SIGNALS, Observations, Scanner};
    let extra = 7;
    let log: String = (0..MAX_SIGNALS + extra)
        .map(|i| format!("UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/K-{i}/1 is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1:111122223333:instance/* because no identity-based policy allows the ec2:RunInstances action.\n"))
        .collect();
    let mut obs = Observations::default();
    Scanner::new()
        .unwrap()
        .scan("big.log", log.as_bytes(), &mut obs, &mut |_| {})
        .unwrap();
    assert_eq!(obs.signals.len(), MAX_SIGNALS);
    let warning = obs
        .warnings
        .iter()
        .find(|w| w.message.contains("counted, not read"))
        .expect("a warning counts the rest");
    assert!(
        warning
            .message
            .starts_with(&format!("{extra} more failures")),
        "{warning:?}"
    );
    assert_eq!(warning.origin.line, MAX_SIGNALS + 1);
}

#[test]
fn a_sentence_cut_before_its_action_keeps_its_principal_and_infers_no_action() {
    // Issue 26 §1 and §2: however the sentence was cut before AWS named the action (Karpenter's
    // `...`, a JSON line cut short, a console line or a bare paste cut with no marker), the
    // principal before the cut is kept and the action stays unknown: never the enclosing
    // call's (`with fleet error(s)` would say ec2:CreateFleet).
    let sentence = format!(
        "launching nodeclaim, creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: {CTRL} is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-2:111122223333:instance/*"
    );
    let at = sentence.find("is not authorized to perform:").unwrap();
    for end in [
        "is not authorized",
        "is not authorized to p",
        "is not authorized to perfor",
        "is not authorized to perform:",
        "is not authorized to perform: ",
    ] {
        let cut = &sentence[..at + end.len()];
        for text in [
            format!("{cut}...\n"),
            format!("{cut}\n"),
            format!("2024-06-01T10:00:00.000Z\tERROR\tcontroller\t{cut}\n"),
            format!(
                "{{\"level\":\"ERROR\",\"message\":\"Reconciler error\",\"NodeClaim\":{{\"name\":\"default-x\"}},\"error\":\"{cut}"
            ),
        ] {
            let out = scan_bytes("cut.log", text.as_bytes());
            assert_eq!(out.signals.len(), 1, "{text}: {:?}", out.signals);
            let s = &out.signals[0];
            assert_eq!(s.principal.as_deref(), Some(CTRL), "{text}");
            assert_eq!((&s.action, &s.action_from), (&None, &None), "{text}");
        }
    }
    // With the principal elided too, nothing is known but the refusal.
    let out = scan_bytes(
        "elided.log",
        "creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: … is not authorized to perfor...\n".as_bytes(),
    );
    assert_eq!(out.signals.len(), 1, "{:?}", out.signals);
    assert_eq!(
        (&out.signals[0].principal, &out.signals[0].action),
        (&None, &None)
    );
}

#[test]
fn an_elided_principal_is_never_the_principal() {
    for (text, prefix) in [
        (
            "AccessDenied: User: … is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo",
            None,
        ),
        (
            "AccessDenied: User: ... is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo",
            None,
        ),
        (
            "AccessDenied: xxx/... is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo",
            None,
        ),
        (
            "AccessDenied: User: arn:aws:sts::***:assumed-role/... is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo",
            Some("arn:aws:sts::***:assumed-role/"),
        ),
        (
            "AccessDenied: User: ...assumed-role/KarpenterController/x is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo",
            None,
        ),
    ] {
        let out = scan_bytes("elided.log", format!("{text}\n").as_bytes());
        assert_eq!(out.signals.len(), 1, "{text}");
        let s = &out.signals[0];
        assert_eq!(s.principal, None, "{text}");
        assert_eq!(s.partial.principal.as_deref(), prefix, "{text}");
        assert_eq!(s.action.as_deref(), Some("iam:PassRole"), "{text}");
        assert_eq!(
            s.resource.as_deref(),
            Some("arn:aws:iam::111122223333:role/KarpenterNodeRole-demo")
        );
    }
}

/// What changes the keys, AMIs and capacity a launch uses: a volume encrypted with no key uses
/// the region's default EBS key, an unencrypted one only where encryption by default is on, a
/// Custom AMI family's own volumes likewise; an alias (or, without AMI terms, the family)
/// means SSM parameters; the capacity-type requirements narrow Karpenter's three, and none
/// means on-demand.
#[test]
fn launch_settings_of_node_classes_and_node_pools() {
    let out = clean("ec2nodeclasses-launch-settings.yaml");
    let class = |name: &str| {
        out.node_classes
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let summary = |name: &str| {
        let c = class(name);
        (
            c.default_ebs_key,
            c.ami_aliases.clone(),
            c.capacity_reservations,
        )
    };
    assert_eq!(
        summary("keyless"),
        (
            DefaultKeyUse::Always,
            vec!["bottlerocket@latest".to_string()],
            true
        )
    );
    assert_eq!(class("keyless").kms_key_ids, ["alias/ebs-cmk"]);
    assert_eq!(
        summary("unencrypted"),
        (
            DefaultKeyUse::WhenEncryptedByDefault,
            vec!["al2023@latest".to_string()],
            false
        )
    );
    assert_eq!(
        summary("custom"),
        (DefaultKeyUse::WhenEncryptedByDefault, vec![], false)
    );
    assert_eq!(
        summary("legacy"),
        (DefaultKeyUse::Always, vec!["al2@latest".to_string()], false)
    );
    let pools: Vec<(&str, Vec<&str>)> = out
        .node_pools
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.capacity_types.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        pools,
        [
            ("spot-only", vec!["spot"]),
            ("not-spot", vec!["on-demand", "reserved"]),
            ("unsaid", vec!["on-demand"]),
        ]
    );
}
