//! Facts back into snapshot files: IAM as `get-account-authorization-details` prints it, KMS
//! as contract §4 says, so facts fetched live can be replayed offline without credentials.

use super::iam_snapshot::PrincipalPolicies;
use super::kms_snapshot::KeyFacts;
use crate::policy::Policy;
use crate::policy::arn::Arn;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// An IAM snapshot holding these principals: their inline policies, attached managed policies
/// (default version only) and permissions boundaries. Roles are sorted by ARN, managed
/// policies by ARN, so the same facts give the same file.
pub fn iam_snapshot(principals: &[PrincipalPolicies]) -> Value {
    let mut roles: Vec<&PrincipalPolicies> = principals.iter().collect();
    roles.sort_by(|a, b| a.arn.cmp(&b.arn));
    roles.dedup_by(|a, b| a.arn == b.arn);
    let mut managed: BTreeMap<&str, &Policy> = BTreeMap::new();
    let details: Vec<Value> = roles
        .iter()
        .map(|p| {
            let (inline, attached): (Vec<&Policy>, Vec<&Policy>) = p
                .identity
                .iter()
                .partition(|pol| pol.name.starts_with("inline:"));
            for pol in attached.iter().chain(&p.boundary.as_ref()) {
                managed.insert(&pol.name, pol);
            }
            let arn = Arn::parse(&p.arn);
            let resource = arn.as_ref().map_or("", |a| a.resource);
            let (path, name) = match resource
                .strip_prefix("role/")
                .unwrap_or(resource)
                .rsplit_once('/')
            {
                Some((path, name)) => (format!("/{path}/"), name.to_string()),
                None => (
                    "/".to_string(),
                    resource
                        .strip_prefix("role/")
                        .unwrap_or(resource)
                        .to_string(),
                ),
            };
            let mut role = json!({
                "Path": path,
                "RoleName": name,
                "Arn": p.arn,
                "RolePolicyList": inline.iter().map(|pol| json!({
                    "PolicyName": pol.name.trim_start_matches("inline:"),
                    "PolicyDocument": document(pol),
                })).collect::<Vec<_>>(),
                "AttachedManagedPolicies": attached.iter().map(|pol| json!({
                    "PolicyName": policy_name(&pol.name),
                    "PolicyArn": pol.name,
                })).collect::<Vec<_>>(),
            });
            if let Some(b) = &p.boundary {
                role["PermissionsBoundary"] = json!({
                    "PermissionsBoundaryType": "Policy",
                    "PermissionsBoundaryArn": b.name,
                });
            }
            role
        })
        .collect();
    let policies: Vec<Value> = managed
        .values()
        .map(|pol| {
            json!({
                "PolicyName": policy_name(&pol.name),
                "Arn": pol.name,
                "DefaultVersionId": "v1",
                "PolicyVersionList": [{"Document": document(pol), "VersionId": "v1", "IsDefaultVersion": true}],
            })
        })
        .collect();
    json!({"RoleDetailList": details, "Policies": policies})
}

/// A KMS snapshot (contract §4) of these keys, sorted by ARN. Grants and policies that were
/// not readable stay absent: unknown, not empty.
pub fn kms_snapshot(keys: &[KeyFacts]) -> Value {
    let mut keys: Vec<&KeyFacts> = keys.iter().collect();
    keys.sort_by(|a, b| a.arn.cmp(&b.arn));
    keys.dedup_by(|a, b| a.arn == b.arn);
    let entries: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut metadata = json!({
                "AWSAccountId": k.account,
                "KeyId": k.key_id,
                "Arn": k.arn,
                "KeyState": k.state,
            });
            if let Some(m) = &k.manager {
                metadata["KeyManager"] = json!(m);
            }
            if let Some(d) = &k.deletion_date {
                metadata["DeletionDate"] = json!(d);
            }
            let mut entry = json!({"KeyMetadata": metadata});
            if let Some(grants) = &k.grants {
                entry["Grants"] = grants
                    .iter()
                    .map(|g| {
                        let mut grant = json!({
                            "GranteePrincipal": g.grantee_principal,
                            "Operations": g.operations,
                        });
                        if let Some(id) = &g.grant_id {
                            grant["GrantId"] = json!(id);
                        }
                        if let Some(name) = &g.name {
                            grant["Name"] = json!(name);
                        }
                        grant
                    })
                    .collect();
            }
            if let Some(policy) = &k.policy {
                entry["Policy"] = json!(document(policy).to_string());
            }
            entry
        })
        .collect();
    json!({"Keys": entries})
}

/// A policy's document, rebuilt from its statements as written.
fn document(policy: &Policy) -> Value {
    let version = if policy.variables {
        "2012-10-17"
    } else {
        "2008-10-17"
    };
    json!({
        "Version": version,
        "Statement": policy.statements.iter().map(|s| Value::Object(s.source.clone())).collect::<Vec<_>>(),
    })
}

fn policy_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::iam_snapshot::IamSnapshot;
    use crate::facts::kms_snapshot;

    const SNAPSHOT: &str = r#"{"RoleDetailList": [{"Path": "/eks/", "RoleName": "ctrl", "Arn": "arn:aws-cn:iam::111122223333:role/eks/ctrl",
        "RolePolicyList": [{"PolicyName": "pass", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Sid": "P", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}}]}}],
        "AttachedManagedPolicies": [{"PolicyName": "fleet", "PolicyArn": "arn:aws-cn:iam::111122223333:policy/fleet"}],
        "PermissionsBoundary": {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": "arn:aws-cn:iam::111122223333:policy/boundary"}}],
      "Policies": [
        {"PolicyName": "fleet", "Arn": "arn:aws-cn:iam::111122223333:policy/fleet", "DefaultVersionId": "v3", "PolicyVersionList": [
          {"VersionId": "v3", "IsDefaultVersion": true, "Document": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22ec2%3ACreateFleet%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"}]},
        {"PolicyName": "boundary", "Arn": "arn:aws-cn:iam::111122223333:policy/boundary", "DefaultVersionId": "v1", "PolicyVersionList": [
          {"VersionId": "v1", "IsDefaultVersion": true, "Document": {"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "iam:*", "NotResource": "arn:aws-cn:iam::*:role/nodes/*"}}}]}]}"#;

    fn summary(p: &PrincipalPolicies) -> Vec<(String, Vec<Value>)> {
        p.identity
            .iter()
            .chain(&p.boundary)
            .map(|pol| {
                let st = pol
                    .statements
                    .iter()
                    .map(|s| Value::Object(s.source.clone()));
                (pol.name.clone(), st.collect())
            })
            .collect()
    }

    #[test]
    fn an_iam_snapshot_written_reads_back_to_the_same_facts() {
        let arn = "arn:aws-cn:iam::111122223333:role/eks/ctrl";
        let original = IamSnapshot::parse(SNAPSHOT)
            .unwrap()
            .principal(arn)
            .unwrap();
        let written = iam_snapshot(&[original.clone(), original.clone()]);
        assert_eq!(written["RoleDetailList"].as_array().unwrap().len(), 1);
        assert_eq!(written["RoleDetailList"][0]["Path"], "/eks/");
        assert_eq!(written["RoleDetailList"][0]["RoleName"], "ctrl");
        let back = IamSnapshot::parse(&written.to_string())
            .unwrap()
            .principal(arn)
            .unwrap();
        assert_eq!(back.arn, original.arn);
        assert_eq!(summary(&back), summary(&original));
        assert_eq!(back.identity.len(), 2);
        assert!(back.boundary.is_some());
    }

    #[test]
    fn a_kms_snapshot_written_reads_back_and_keeps_unknown_unknown() {
        let text = r#"{"Keys": [
          {"KeyMetadata": {"AWSAccountId": "222233334444", "KeyId": "k1", "Arn": "arn:aws:kms:us-east-1:222233334444:key/k1", "KeyState": "PendingDeletion",
             "KeyManager": "CUSTOMER", "DeletionDate": "2026-12-01T00:00:00Z"},
           "Grants": [{"GrantId": "g", "Name": "n", "GranteePrincipal": "arn:aws:iam::111122223333:role/ctrl", "Operations": ["Decrypt", "CreateGrant"]}],
           "Policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::222233334444:root\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"},
          {"KeyMetadata": {"KeyId": "k0", "Arn": "arn:aws:kms:us-east-1:222233334444:key/k0", "KeyState": "Enabled"}}]}"#;
        let keys = kms_snapshot::parse(text).unwrap();
        let written = kms_snapshot(&keys);
        let back = kms_snapshot::parse(&written.to_string()).unwrap();
        assert_eq!(back.len(), 2);
        let k0 = back.iter().find(|k| k.key_id == "k0").unwrap();
        assert!(
            k0.grants.is_none() && k0.policy.is_none(),
            "absent stays absent"
        );
        let k1 = back.iter().find(|k| k.key_id == "k1").unwrap();
        let orig = keys.iter().find(|k| k.key_id == "k1").unwrap();
        assert_eq!(k1.grants, orig.grants);
        assert_eq!(
            (&k1.state, &k1.manager, &k1.deletion_date, &k1.account),
            (
                &orig.state,
                &orig.manager,
                &orig.deletion_date,
                &orig.account
            )
        );
        assert_eq!(
            k1.policy.as_ref().unwrap().statements[0].source,
            orig.policy.as_ref().unwrap().statements[0].source
        );
        assert_eq!(
            written["Keys"][0]["KeyMetadata"]["KeyId"], "k0",
            "sorted by ARN"
        );
    }
}
