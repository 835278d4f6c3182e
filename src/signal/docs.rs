//! Whole documents: reads JSON (one or several values) or YAML (`---`-separated) up to a size
//! cap, then hands every object, list item and reservation to the readers that know its kind.

use super::sink::Sink;
use super::text::count_newlines;
use super::{instances, kube};
use serde_json::Value;
use std::io::{self, Read};

/// Documents larger than this are skipped with a warning.
pub(crate) const MAX_DOCUMENT: u64 = 256 << 20;

/// Reads all of `input` (up to the cap) and scans it as JSON or YAML.
pub(crate) fn scan(
    input: &mut dyn Read,
    yaml: bool,
    sink: &mut Sink<'_>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let Some(bytes) = read_capped(input, MAX_DOCUMENT, progress)? else {
        sink.warn(
            0,
            format!("document larger than {} MiB, skipped", MAX_DOCUMENT >> 20),
        );
        return Ok(());
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if yaml {
        scan_yaml(bytes, sink);
    } else {
        scan_json(bytes, sink);
    }
    Ok(())
}

/// All of `input`, or `None` when it is longer than `cap` bytes.
fn read_capped(
    input: &mut dyn Read,
    cap: u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        match input.read(&mut chunk) {
            Ok(0) => return Ok(Some(bytes)),
            Ok(n) => {
                if (bytes.len() + n) as u64 > cap {
                    return Ok(None);
                }
                bytes.extend_from_slice(&chunk[..n]);
                progress(bytes.len() as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One or more JSON values, one after the other.
fn scan_json(bytes: &[u8], sink: &mut Sink<'_>) {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    loop {
        let before = values.byte_offset();
        match values.next() {
            None => return,
            Some(Ok(value)) => {
                let skipped = bytes[before..]
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                let line = 1 + count_newlines(&bytes[..before + skipped]);
                walk(&value, line, None, sink);
            }
            Some(Err(e)) => {
                // AWS's decoded message cut short, or re-wrapped: read for what it holds.
                let rest = String::from_utf8_lossy(&bytes[before..]);
                let line = 1 + count_newlines(&bytes[..before]);
                match decoded_text(&rest, sink) {
                    Some(decoded) => sink.decoded(line, decoded),
                    None => sink.warn(e.line(), format!("not valid JSON, skipped: {e}")),
                }
                return;
            }
        }
    }
}

/// The flow nesting (`[`, `{`) beyond which a YAML document is not parsed: the parser's cost
/// per token grows with the open flow levels (quadratic in all), and its recursion limit (128)
/// refuses deeper documents anyway. Brackets inside scalars count too: a Kubernetes object or
/// a decoded message never comes near.
const MAX_FLOW_DEPTH: usize = 256;

/// YAML documents. Split at `---` lines first, so that each document's line numbers are
/// known and a broken document spoils only itself. Each document is parsed alone (linear in
/// the file), and the parser's line is moved to the file's.
fn scan_yaml(bytes: &[u8], sink: &mut Sink<'_>) {
    for (first_line, doc) in yaml_documents(bytes) {
        if flow_depth(doc) > MAX_FLOW_DEPTH {
            sink.warn(
                first_line,
                format!("YAML nested deeper than {MAX_FLOW_DEPTH} flow levels ([ or {{), skipped"),
            );
            continue;
        }
        match serde_norway::from_slice::<Value>(doc) {
            Ok(value) => walk(&value, first_line, None, sink),
            Err(e) => match decoded_yaml(doc, sink) {
                Some(decoded) => sink.decoded(first_line, decoded),
                None => {
                    let line = e
                        .location()
                        .map_or(first_line, |l| first_line + l.line() - 1);
                    sink.warn(
                        line,
                        format!(
                            "not valid YAML, skipped (the document from line {first_line}): {e}"
                        ),
                    );
                }
            },
        }
    }
}

/// The deepest nesting of `[`/`{` in `doc`, counted without regard to quoting.
fn flow_depth(doc: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in doc {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Whether a text is (the start of) AWS's decoded authorization message: the CLI's key, or
/// the verdict keys the document opens with.
fn looks_decoded(text: &str) -> bool {
    text.contains("DecodedMessage") || (text.contains("explicitDeny") && text.contains("allowed"))
}

/// A decoded message that is not valid JSON as it stands: cut short, or with its strings
/// re-wrapped over lines.
fn decoded_text(text: &str, sink: &Sink<'_>) -> Option<Decoded> {
    looks_decoded(text)
        .then(|| Decoded::from_text(text, &format!("file {}", sink.file())))
        .flatten()
}

/// A YAML document that does not parse, read as AWS's decoded message where it is one: with a
/// user's `...` lines (an elision, not a document end) left out, or the CLI's
/// `DecodedMessage: '{…}'` whose quoted scalar was cut short.
fn decoded_yaml(doc: &[u8], sink: &Sink<'_>) -> Option<Decoded> {
    let text = std::str::from_utf8(doc).ok()?;
    if !looks_decoded(text) {
        return None;
    }
    let source = format!("file {}", sink.file());
    let is_elision = |l: &str| l.trim() == "..." || l.trim() == "…";
    if text.lines().any(is_elision) {
        let kept: String = text
            .lines()
            .filter(|l| !is_elision(l))
            .map(|l| format!("{l}\n"))
            .collect();
        if let Ok(value) = serde_norway::from_str::<Value>(&kept) {
            return Decoded::from_value(&value, &source).map(Decoded::elided);
        }
    }
    // `DecodedMessage: '…` cut short: the scalar's text as far as it goes (YAML's folded
    // lines joined by a space, `''` read as `'`).
    let at = text.find("DecodedMessage:")? + "DecodedMessage:".len();
    let scalar = text[at..].trim_start();
    let (quote, body) = match scalar.chars().next()? {
        q @ ('\'' | '"') => (Some(q), &scalar[1..]),
        _ => (None, scalar),
    };
    let joined = body.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let inner = match quote {
        Some('\'') => joined.replace("''", "'"),
        _ => joined,
    };
    Decoded::from_text(&inner, &source).map(Decoded::elided)
}

/// Each YAML document with the line it starts on, its `---` marker included.
fn yaml_documents(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    let mut docs = Vec::new();
    let (mut start, mut start_line) = (0, 1);
    let (mut pos, mut line) = (0, 1);
    while pos < bytes.len() {
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |nl| pos + nl + 1);
        let text = &bytes[pos..end];
        let marker =
            text.starts_with(b"---") && text.get(3).is_none_or(|b| b.is_ascii_whitespace());
        if marker && pos > start {
            docs.push((start_line, &bytes[start..pos]));
            (start, start_line) = (pos, line);
        }
        pos = end;
        line += 1;
    }
    if start < bytes.len() {
        docs.push((start_line, &bytes[start..]));
    }
    docs.retain(|(_, doc)| has_content(doc));
    docs
}

/// Anything but blank lines, comments and markers.
fn has_content(doc: &[u8]) -> bool {
    doc.split(|&b| b == b'\n').any(|line| {
        let line = line.trim_ascii();
        !(line.is_empty() || line.starts_with(b"#") || line == b"---" || line == b"...")
    })
}

/// Dispatches a value by what it is. `list` is set for a list's items: the kind items of a
/// typed list (`EventList`) have without saying so, empty for a plain `List` or array.
use crate::facts::authorization::AuthorizationDetails;
use crate::facts::decoded::Decoded;

fn walk(value: &Value, line: usize, list: Option<&str>, sink: &mut Sink<'_>) {
    match value {
        Value::Array(items) => {
            for item in items {
                walk(item, line, Some(list.unwrap_or("")), sink);
            }
        }
        Value::Object(map) => {
            if let Some(Value::Array(reservations)) = map.get("Reservations") {
                for reservation in reservations {
                    instances::reservation(reservation, line, sink);
                }
            } else if map.contains_key("Instances") {
                instances::reservation(value, line, sink);
            } else if map.contains_key("InstanceId") {
                instances::instance(value, line, sink);
            } else if let Some(issuer) = value
                .pointer("/cluster/identity/oidc/issuer")
                .and_then(Value::as_str)
            {
                // `aws eks describe-cluster`: the issuer of the cluster's ServiceAccount tokens.
                sink.oidc_issuer(issuer);
                if let Some(name) = value.pointer("/cluster/name").and_then(Value::as_str) {
                    sink.cluster_name(name);
                }
            } else if let Some(Value::Array(list)) = map.get("OpenIDConnectProviderList") {
                // `aws iam list-open-id-connect-providers`: the account's providers.
                let arns = list
                    .iter()
                    .filter_map(|p| p.get("Arn").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect();
                sink.oidc_providers(arns);
            } else if let Some((arn, document)) = map
                .get("Role")
                .and_then(|r| Some((r.get("Arn")?.as_str()?, r.get("AssumeRolePolicyDocument")?)))
            {
                // `aws iam get-role`: the role's trust policy.
                sink.role_trust(super::RoleTrust {
                    arn: arn.to_string(),
                    document: document.clone(),
                });
            } else if Decoded::is_decoded(value) {
                // `aws sts decode-authorization-message` (JSON, YAML), or what it decodes to.
                match Decoded::from_value(value, &format!("file {}", sink.file())) {
                    Some(decoded) => sink.decoded(line, decoded),
                    None => sink.warn(
                        line,
                        "decoded authorization message: DecodedMessage holds no evaluation, skipped",
                    ),
                }
            } else if AuthorizationDetails::is_details(value) {
                // `aws iam-toolbox get-request-authorization-details`.
                match AuthorizationDetails::from_value(
                    value,
                    None,
                    &format!("file {}", sink.file()),
                ) {
                    Ok(details) => sink.authorization(details),
                    Err(e) => sink.warn(line, format!("authorization details: {e}")),
                }
            } else if let Some(policy) = map
                .get("Policy")
                .filter(|p| p.get("PolicySummary").is_some() && p.get("Content").is_some())
            {
                // `aws organizations describe-policy`: an SCP or RCP and its document.
                org_policy(policy, line, sink);
            } else if super::cloudtrail::is_record(map) {
                super::cloudtrail::record(value, line, sink);
            } else if let Some(Value::Array(records)) = map.get("Records") {
                // A CloudTrail log file.
                for record in records {
                    walk(record, line, list, sink);
                }
            } else if let Some(Value::Array(events)) = map.get("Events").filter(|e| {
                e.as_array()
                    .is_some_and(|l| l.iter().any(|x| x.get("CloudTrailEvent").is_some()))
            }) {
                super::cloudtrail::lookup_events(events, line, sink);
            } else if let Some(association) = map.get("association").filter(|a| a.is_object()) {
                // `aws eks describe-pod-identity-association`.
                pod_identity(association, sink);
            } else if let Some(Value::Array(list)) = map.get("associations") {
                // `aws eks list-pod-identity-associations` (no role named).
                for association in list {
                    pod_identity(association, sink);
                }
            } else if let Some(Value::Array(items)) = map.get("items") {
                let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
                let item_kind = kind.strip_suffix("List").unwrap_or("");
                for item in items {
                    walk(item, line, Some(item_kind), sink);
                }
            } else {
                kube::object(value, line, list, sink);
            }
        }
        _ => {}
    }
}

/// An organization policy: its summary names it, its `Content` is the document as a JSON string.
fn org_policy(policy: &Value, line: usize, sink: &mut Sink<'_>) {
    let text = |k: &str| {
        policy
            .pointer(&format!("/PolicySummary/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (Some(arn), Some(kind)) = (text("Arn"), text("Type")) else {
        sink.warn(
            line,
            "organization policy without PolicySummary.Arn and .Type: skipped",
        );
        return;
    };
    let document = match policy.get("Content") {
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(d) => d,
            Err(e) => {
                sink.warn(
                    line,
                    format!("organization policy {arn}: Content is not JSON: {e}"),
                );
                return;
            }
        },
        Some(d @ Value::Object(_)) => d.clone(),
        _ => {
            sink.warn(line, format!("organization policy {arn}: no Content"));
            return;
        }
    };
    sink.org_policy(super::OrgPolicyInfo {
        name: text("Name").unwrap_or_default(),
        arn,
        kind,
        document,
    });
}

/// One Pod Identity association as the EKS API prints it; one without a namespace and
/// ServiceAccount is no association.
fn pod_identity(value: &Value, sink: &mut Sink<'_>) {
    let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
    if let (Some(namespace), Some(service_account)) = (text("namespace"), text("serviceAccount")) {
        sink.pod_identity(super::PodIdentityInfo {
            cluster: text("clusterName"),
            namespace,
            service_account,
            role: text("roleArn"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document nested past the flow limit is skipped with a warning at its first line; the
    /// documents around it are read, and a broken one later in the file is placed on the
    /// file's line, not its document's.
    #[test]
    fn deep_flow_nesting_is_skipped_and_lines_are_the_files() {
        let scanner = crate::signal::Scanner::new().unwrap();
        let mut obs = crate::signal::Observations::default();
        let account = |n: usize| {
            format!(
                "---\nkind: ServiceAccount\napiVersion: v1\nmetadata: {{name: karpenter-{n}, namespace: kube-system, annotations: {{eks.amazonaws.com/role-arn: 'arn:aws:iam::1:role/K{n}'}}}}\n"
            )
        };
        let text = format!(
            "{}---\nkind: X\nspec: {}\n{}---\nkind: X\nspec: [unclosed\n",
            account(1),
            "[".repeat(MAX_FLOW_DEPTH + 1),
            account(2)
        );
        scanner
            .scan("deep.yaml", text.as_bytes(), &mut obs, &mut |_| {})
            .unwrap();
        assert_eq!(obs.accounts.len(), 2, "{:?}", obs.warnings);
        let warned: Vec<(usize, &str)> = obs
            .warnings
            .iter()
            .map(|w| (w.origin.line, w.message.as_str()))
            .collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert_eq!(warned[0].0, 5);
        assert!(warned[0].1.contains("nested deeper than 256"), "{warned:?}");
        // The last document opens at line 12; the parser finds it unclosed at its line 4.
        assert_eq!(warned[1].0, 15, "{warned:?}");
        assert!(
            warned[1].1.contains("the document from line 12"),
            "{warned:?}"
        );
        assert_eq!(flow_depth(b"a: [b, {c: [d]}], e: '[' "), 3);
    }

    #[test]
    fn pod_identity_associations_listed_then_described_name_their_role_once() {
        let scanner = crate::signal::Scanner::new().unwrap();
        let mut obs = crate::signal::Observations::default();
        let listed = br#"{"associations": [
            {"clusterName": "prod", "namespace": "kube-system", "serviceAccount": "karpenter", "associationId": "a-1"},
            {"clusterName": "prod", "namespace": "apps", "serviceAccount": "web", "associationId": "a-2"},
            {"clusterName": "prod", "associationId": "a-3"}]}"#;
        let described = br#"{"association": {"clusterName": "prod", "namespace": "kube-system",
            "serviceAccount": "karpenter", "roleArn": "arn:aws:iam::111122223333:role/K"}}"#;
        for (name, text) in [
            ("list.json", &listed[..]),
            ("describe.json", &described[..]),
        ] {
            scanner.scan(name, text, &mut obs, &mut |_| {}).unwrap();
        }
        let got: Vec<_> = obs
            .pod_identities
            .iter()
            .map(|a| {
                (
                    a.namespace.as_str(),
                    a.service_account.as_str(),
                    a.role.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "kube-system",
                    "karpenter",
                    Some("arn:aws:iam::111122223333:role/K")
                ),
                ("apps", "web", None)
            ],
            "one without namespace and ServiceAccount is none"
        );
    }

    #[test]
    fn cloudtrail_records_give_their_failures_and_a_broken_event_a_warning() {
        let scanner = crate::signal::Scanner::new().unwrap();
        let mut obs = crate::signal::Observations::default();
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let failed = format!(
            r#"{{"eventSource": "kms.amazonaws.com", "eventName": "CreateGrant", "eventTime": "2024-06-05T09:40:13Z", "errorCode": "DisabledException", "errorMessage": "{key} is disabled."}}"#
        );
        let ok = r#"{"eventSource": "kms.amazonaws.com", "eventName": "CreateGrant", "eventTime": "2024-06-05T09:41:13Z"}"#;
        let file = format!(r#"{{"Records": [{failed}, {ok}]}}"#);
        let lookup = serde_json::json!({"Events": [
            {"EventName": "CreateGrant", "CloudTrailEvent": failed},
            {"EventName": "CreateGrant", "CloudTrailEvent": "{\"eventSource\": \"kms.amazonaws.com\", \"errorCo"},
        ]})
        .to_string();
        for (name, text) in [("trail.json", file.as_str()), ("lookup.json", &lookup)] {
            scanner
                .scan(name, text.as_bytes(), &mut obs, &mut |_| {})
                .unwrap();
        }
        let got: Vec<_> = obs
            .signals
            .iter()
            .map(|s| {
                (
                    s.origin.file.as_str(),
                    s.error_code.as_deref(),
                    s.kms_key.as_deref(),
                    s.key_state.as_deref(),
                    s.time.as_deref(),
                )
            })
            .collect();
        let one = |file| {
            (
                file,
                Some("DisabledException"),
                Some(key),
                Some("Disabled"),
                Some("2024-06-05T09:40:13Z"),
            )
        };
        assert_eq!(got, [one("trail.json"), one("lookup.json")]);
        assert_eq!(obs.warnings.len(), 1, "{:?}", obs.warnings);
        assert!(
            obs.warnings[0]
                .message
                .contains("CloudTrailEvent is not JSON"),
            "{:?}",
            obs.warnings
        );
    }

    #[test]
    fn decoded_messages_cut_or_elided_are_read_in_part_and_garbage_is_skipped() {
        let scanner = crate::signal::Scanner::new().unwrap();
        let scan = |name: &str, text: &str| {
            let mut obs = crate::signal::Observations::default();
            scanner
                .scan(name, text.as_bytes(), &mut obs, &mut |_| {})
                .unwrap();
            obs
        };
        let yaml = include_str!("../../tests/fixtures/pastes/138-8.txt");
        // `--output yaml` cut inside its quoted scalar, mid-resource: a YAML error, read in part.
        let at = yaml.find("instance/*").unwrap();
        let obs = scan("cut.yaml", &yaml[..at]);
        assert_eq!(obs.signals.len(), 1, "{:?}", obs.warnings);
        let s = &obs.signals[0];
        assert_eq!(s.action.as_deref(), Some("ec2:RunInstances"));
        assert_eq!(s.resource, None);
        assert!(s.partial.resource.is_some());
        assert!(!obs.decoded[0].whole);
        // The document as YAML with a user's `...` line: read, held only in part.
        let obs = scan(
            "elided.yaml",
            include_str!("../../tests/fixtures/pastes/139-8.txt"),
        );
        assert_eq!(obs.signals.len(), 1, "{:?}", obs.warnings);
        assert!(!obs.decoded[0].whole);
        // The document as YAML cut at a line's end: whatever it holds, never a panic, and no
        // value it was cut inside.
        let doc = include_str!("../../tests/fixtures/pastes/139-8.txt");
        for end in doc.match_indices('\n').map(|(i, _)| i) {
            let obs = scan("cut.yaml", &doc[..end]);
            for s in &obs.signals {
                assert!(
                    s.resource.is_none()
                        || s.resource.as_deref()
                            == Some("arn:aws:ec2:us-east-1:111122223333:instance/*")
                );
            }
        }
        // Broken JSON that only mentions the keys: skipped with a warning.
        let obs = scan("broken.json", "{\"explicitDeny\": tru, \"allowed\" 1}\n");
        assert!(obs.signals.is_empty());
        assert_eq!(obs.warnings.len(), 1, "{:?}", obs.warnings);
    }

    #[test]
    fn documents_over_the_cap_are_refused_without_reading_on() {
        let text = vec![b' '; 5000];
        let mut seen = 0;
        let all = read_capped(&mut &text[..], 5000, &mut |n| seen = n).unwrap();
        assert_eq!(all.map(|b| b.len()), Some(5000));
        assert_eq!(seen, 5000);
        let mut input = &text[..];
        assert_eq!(read_capped(&mut input, 4999, &mut |_| {}).unwrap(), None);
    }

    #[test]
    fn splits_yaml_documents_keeping_their_first_lines() {
        let text = b"# c\napiVersion: v1\n---\nkind: A\n--- \nkind: B\n---\n...\n---x: 1\n";
        let docs = yaml_documents(text);
        let got: Vec<(usize, &str)> = docs
            .iter()
            .map(|(l, d)| (*l, std::str::from_utf8(d).unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "# c\napiVersion: v1\n"),
                (3, "---\nkind: A\n"),
                (5, "--- \nkind: B\n"),
                // `---x: 1` is a key, not a marker: it stays in the document.
                (7, "---\n...\n---x: 1\n"),
            ]
        );
        assert!(yaml_documents(b"---\n# only a comment\n").is_empty());
    }
}
