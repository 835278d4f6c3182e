//! KMS snapshots (contract §4): `{"Keys": [{"KeyMetadata", "Grants"?, "Policy"?}]}` with the
//! fields as the AWS CLI prints them. An absent `Grants` or `Policy` is unknown, not empty.

use crate::policy::{ParseError, Policy};
use serde::Deserialize;

/// What is known of one key.
#[derive(Debug, Clone)]
pub struct KeyFacts {
    pub arn: String,
    pub key_id: String,
    pub account: String,
    /// `Creating`, `Enabled`, `Disabled`, `PendingDeletion`, `PendingImport`, …
    pub state: String,
    /// `AWS` or `CUSTOMER`.
    pub manager: Option<String>,
    pub deletion_date: Option<String>,
    /// `None`: the grants could not be read.
    pub grants: Option<Vec<Grant>>,
    /// `None`: the key policy could not be read (GetKeyPolicy is same-account only).
    pub policy: Option<Policy>,
    /// Where the facts come from (`kms snapshot FILE`, `live KMS`), for evidence lines.
    pub source: String,
    /// Why the grants or the policy are unknown, where a lookup failed (live facts).
    pub unreadable: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Grant {
    #[serde(default)]
    pub grant_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub grantee_principal: String,
    #[serde(default)]
    pub operations: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Snapshot {
    keys: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    key_metadata: Metadata,
    #[serde(default)]
    grants: Option<Vec<Grant>>,
    #[serde(default)]
    policy: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    key_id: String,
    arn: String,
    #[serde(rename = "AWSAccountId")]
    aws_account_id: Option<String>,
    key_state: String,
    #[serde(default)]
    key_manager: Option<String>,
    #[serde(default)]
    deletion_date: Option<serde_json::Value>,
}

/// Parses a KMS snapshot; errors name the JSON path.
pub fn parse(text: &str) -> Result<Vec<KeyFacts>, ParseError> {
    let snapshot: Snapshot = serde_json::from_str(text).map_err(|e| ParseError {
        path: format!("$ (line {}, column {})", e.line(), e.column()),
        message: e.to_string(),
    })?;
    snapshot
        .keys
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let m = entry.key_metadata;
            let policy = match entry.policy {
                Some(text) => Some(
                    Policy::parse(&format!("key policy of {}", m.arn), &text).map_err(|e| {
                        ParseError {
                            path: format!("$.Keys[{i}].Policy{}", e.path.trim_start_matches('$')),
                            message: e.message,
                        }
                    })?,
                ),
                None => None,
            };
            let account = m
                .aws_account_id
                .or_else(|| crate::policy::arn::Arn::parse(&m.arn).map(|a| a.account.to_string()))
                .unwrap_or_default();
            Ok(KeyFacts {
                account,
                state: m.key_state,
                manager: m.key_manager,
                deletion_date: m.deletion_date.map(|d| match d {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                }),
                grants: entry.grants,
                policy,
                source: "kms snapshot".into(),
                unreadable: Vec::new(),
                arn: m.arn,
                key_id: m.key_id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_with_and_without_grants_and_policy() {
        let text = r#"{"Keys": [
          {"KeyMetadata": {"AWSAccountId": "222233334444", "KeyId": "k1", "Arn": "arn:aws:kms:us-east-1:222233334444:key/k1",
             "KeyState": "Enabled", "KeyManager": "CUSTOMER"},
           "Grants": [{"GrantId": "g", "GranteePrincipal": "arn:aws:iam::111122223333:role/ctrl", "Operations": ["Decrypt"]}],
           "Policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::222233334444:root\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"},
          {"KeyMetadata": {"KeyId": "k2", "Arn": "arn:aws:kms:us-east-1:222233334444:key/k2", "KeyState": "PendingDeletion", "DeletionDate": "2026-12-01T00:00:00Z"}}
        ]}"#;
        let keys = parse(text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].grants.as_ref().unwrap()[0].operations, ["Decrypt"]);
        assert!(keys[0].policy.is_some());
        assert_eq!(keys[1].account, "222233334444");
        assert!(
            keys[1].grants.is_none() && keys[1].policy.is_none(),
            "absent is unknown"
        );
        assert_eq!(
            keys[1].deletion_date.as_deref(),
            Some("2026-12-01T00:00:00Z")
        );
    }

    #[test]
    fn invalid_snapshots_name_where() {
        assert!(parse("{").unwrap_err().path.starts_with("$ (line"));
        assert!(
            parse(r#"{"Keys": [{"KeyMetadata": {}}]}"#)
                .unwrap_err()
                .message
                .contains("missing field")
        );
        let bad_policy = r#"{"Keys": [{"KeyMetadata": {"KeyId": "k", "Arn": "arn:aws:kms:us-east-1:1:key/k", "KeyState": "Enabled"}, "Policy": "{\"Statement\": []}"}]}"#;
        assert_eq!(
            parse(bad_policy).unwrap_err().path,
            "$.Keys[0].Policy.Statement"
        );
    }
}
