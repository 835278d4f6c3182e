//! IAM snapshots: `aws iam get-account-authorization-details` output (documents decoded or
//! URL-encoded) indexed by role, resolving a principal to its identity policies and boundary.

use crate::policy::arn::{Arn, role_name_of};
use crate::policy::{ParseError, Policy};
use serde_json::Value;

/// One principal's policies as the snapshot shows them.
#[derive(Debug, Clone)]
pub struct PrincipalPolicies {
    /// The role or user ARN, with its path.
    pub arn: String,
    pub identity: Vec<Policy>,
    pub boundary: Option<Policy>,
    /// A role's trust policy (`AssumeRolePolicyDocument`); `None` for users, or when not given.
    pub trust: Option<Policy>,
    /// The principal's tags (key, value), where the source shows them (GetRole answers with
    /// every tag; a snapshot's `Tags` list, present); `None` when it does not.
    pub tags: Option<Vec<(String, String)>>,
    /// Where the facts come from (`iam snapshot FILE`, `live IAM`), for evidence lines.
    pub source: String,
    /// Every inline and attached managed policy with its size, for IAM's size limits
    /// (`preflight::limits`); `None` where the source does not record them.
    pub sizes: Option<Vec<PolicySize>>,
}

/// How a policy is attached to its principal: IAM limits each kind apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Inline,
    Managed,
}

/// One policy of a principal, as IAM counts it against its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySize {
    /// `inline:NAME`, or the managed policy's ARN (as `Policy::name`).
    pub name: String,
    pub kind: PolicyKind,
    /// Characters without whitespace (`chars_without_whitespace`); `None` where the document
    /// is not known (an AWS-managed policy a snapshot does not hold).
    pub chars: Option<usize>,
}

impl PolicySize {
    /// An inline policy of `chars` characters without whitespace.
    pub fn inline(policy: &Policy, chars: usize) -> PolicySize {
        PolicySize {
            name: policy.name.clone(),
            kind: PolicyKind::Inline,
            chars: Some(chars),
        }
    }
}

/// A policy document's size as IAM counts it against its limits: characters, whitespace not
/// counted (the document in its compact JSON form, so a JSON object and its text count alike).
pub fn chars_without_whitespace(doc: &Value) -> usize {
    doc.to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

/// A loaded snapshot: the raw detail lists, read lazily per principal.
#[derive(Debug, Clone)]
pub struct IamSnapshot {
    doc: Value,
}

impl IamSnapshot {
    /// Parses snapshot text; the error names the JSON path of the first malformed part.
    pub fn parse(text: &str) -> Result<IamSnapshot, ParseError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| err("$", format!("not valid JSON: {e}")))?;
        if !doc.is_object() {
            return Err(err("$", "must be a JSON object"));
        }
        for list in ["RoleDetailList", "UserDetailList", "Policies"] {
            match doc.get(list) {
                None | Some(Value::Array(_)) => {}
                Some(_) => return Err(err(&format!("$.{list}"), "must be an array")),
            }
        }
        let snapshot = IamSnapshot { doc };
        // Validate every document once, so a bad snapshot fails at load, naming the path.
        for (i, _) in snapshot.list("RoleDetailList").iter().enumerate() {
            snapshot.principal_at("RoleDetailList", i)?;
        }
        for (i, _) in snapshot.list("UserDetailList").iter().enumerate() {
            snapshot.principal_at("UserDetailList", i)?;
        }
        Ok(snapshot)
    }

    /// The policies of `principal`: a role ARN, a user ARN, or an assumed-role session ARN
    /// (matched by account and role name, whatever the role's path). `None` when not in the
    /// snapshot.
    pub fn principal(&self, principal: &str) -> Option<PrincipalPolicies> {
        let wanted = Arn::parse(principal)?;
        let name = role_name_of(principal);
        let roles = self
            .list("RoleDetailList")
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                let arn = r.get("Arn").and_then(Value::as_str).unwrap_or("");
                arn == principal
                    || (Arn::parse(arn).is_some_and(|a| {
                        a.account == wanted.account && a.partition == wanted.partition
                    }) && name.is_some()
                        && role_name_of(arn) == name)
            });
        if let Some((i, _)) = roles.into_iter().next() {
            return self.principal_at("RoleDetailList", i).ok();
        }
        let user = self
            .list("UserDetailList")
            .iter()
            .position(|u| u.get("Arn").and_then(Value::as_str) == Some(principal))?;
        self.principal_at("UserDetailList", user).ok()
    }

    /// Every role ARN in the snapshot, in the snapshot's order.
    pub fn role_arns(&self) -> Vec<String> {
        self.list("RoleDetailList")
            .iter()
            .filter_map(|r| r.get("Arn").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    fn list(&self, name: &str) -> &[Value] {
        self.doc
            .get(name)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn principal_at(&self, list: &str, i: usize) -> Result<PrincipalPolicies, ParseError> {
        let path = format!("$.{list}[{i}]");
        let entry = &self.list(list)[i];
        let arn = entry
            .get("Arn")
            .and_then(Value::as_str)
            .ok_or_else(|| err(&path, "missing Arn"))?
            .to_string();
        let inline_key = if list == "RoleDetailList" {
            "RolePolicyList"
        } else {
            "UserPolicyList"
        };
        let mut identity = Vec::new();
        let mut sizes = Vec::new();
        for (j, p) in array(entry, inline_key, &path)?.iter().enumerate() {
            let ppath = format!("{path}.{inline_key}[{j}]");
            let name = p
                .get("PolicyName")
                .and_then(Value::as_str)
                .ok_or_else(|| err(&ppath, "missing PolicyName"))?;
            let doc = p
                .get("PolicyDocument")
                .ok_or_else(|| err(&ppath, "missing PolicyDocument"))?;
            let (policy, chars) = document(
                &format!("inline:{name}"),
                doc,
                &format!("{ppath}.PolicyDocument"),
            )?;
            sizes.push(PolicySize::inline(&policy, chars));
            identity.push(policy);
        }
        for (j, a) in array(entry, "AttachedManagedPolicies", &path)?
            .iter()
            .enumerate()
        {
            let apath = format!("{path}.AttachedManagedPolicies[{j}]");
            let policy_arn = a
                .get("PolicyArn")
                .and_then(Value::as_str)
                .ok_or_else(|| err(&apath, "missing PolicyArn"))?;
            let found = self.managed(policy_arn)?;
            sizes.push(PolicySize {
                name: policy_arn.to_string(),
                kind: PolicyKind::Managed,
                chars: found.as_ref().map(|(_, chars)| *chars),
            });
            if let Some((p, _)) = found {
                identity.push(p);
            }
        }
        let boundary = match entry
            .get("PermissionsBoundary")
            .and_then(|b| b.get("PermissionsBoundaryArn"))
            .and_then(Value::as_str)
        {
            Some(b) => self.managed(b)?.map(|(p, _)| p),
            None => None,
        };
        let trust = match entry.get("AssumeRolePolicyDocument") {
            Some(doc) if !doc.is_null() => Some(trust_document(
                doc,
                &format!("{path}.AssumeRolePolicyDocument"),
            )?),
            _ => None,
        };
        let tags = match entry.get("Tags") {
            None | Some(Value::Null) => None,
            Some(_) => Some(
                array(entry, "Tags", &path)?
                    .iter()
                    .enumerate()
                    .map(|(j, t)| {
                        let text = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
                        text("Key")
                            .zip(text("Value"))
                            .ok_or_else(|| err(&format!("{path}.Tags[{j}]"), "needs Key and Value"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(PrincipalPolicies {
            arn,
            identity,
            boundary,
            trust,
            tags,
            source: "iam snapshot".into(),
            sizes: Some(sizes),
        })
    }

    /// The default version of a managed policy, named by its ARN; `None` when the snapshot does
    /// not hold it (AWS-managed policies are listed only with `--filter AWSManagedPolicy`);
    /// with its size (`chars_without_whitespace`).
    fn managed(&self, policy_arn: &str) -> Result<Option<(Policy, usize)>, ParseError> {
        let Some(i) = self
            .list("Policies")
            .iter()
            .position(|p| p.get("Arn").and_then(Value::as_str) == Some(policy_arn))
        else {
            return Ok(None);
        };
        let path = format!("$.Policies[{i}]");
        let entry = &self.list("Policies")[i];
        let versions = array(entry, "PolicyVersionList", &path)?;
        let default = entry.get("DefaultVersionId").and_then(Value::as_str);
        let found = versions.iter().enumerate().find(|(_, v)| {
            v.get("IsDefaultVersion").and_then(Value::as_bool) == Some(true)
                || (default.is_some() && v.get("VersionId").and_then(Value::as_str) == default)
        });
        let Some((j, version)) = found else {
            return Err(err(
                &format!("{path}.PolicyVersionList"),
                "no default version",
            ));
        };
        let vpath = format!("{path}.PolicyVersionList[{j}].Document");
        let doc = version
            .get("Document")
            .ok_or_else(|| err(&vpath, "missing"))?;
        document(policy_arn, doc, &vpath).map(Some)
    }
}

fn array<'a>(entry: &'a Value, key: &str, path: &str) -> Result<&'a [Value], ParseError> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be an array")),
    }
}

/// A trust policy given as a JSON object, a JSON string, or a URL-encoded JSON string
/// (`get-account-authorization-details` and `get-role` give either).
pub fn trust_document(doc: &Value, path: &str) -> Result<Policy, ParseError> {
    let decoded = match doc {
        Value::String(text) => {
            let text = percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map_err(|_| err(path, "URL-encoded document is not UTF-8"))?;
            serde_json::from_str(&text).map_err(|e| err(path, format!("not valid JSON: {e}")))?
        }
        v => v.clone(),
    };
    Policy::trust_from_value("trust", &decoded).map_err(|e| {
        err(
            &format!("{path}{}", e.path.trim_start_matches('$')),
            e.message,
        )
    })
}

/// A policy document given as a JSON object or a (URL-encoded) JSON string, and its size.
fn document(name: &str, doc: &Value, path: &str) -> Result<(Policy, usize), ParseError> {
    let reroot = |e: ParseError| {
        err(
            &format!("{path}{}", e.path.trim_start_matches('$')),
            e.message,
        )
    };
    match doc {
        Value::String(text) => {
            let decoded = percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map_err(|_| err(path, "URL-encoded document is not UTF-8"))?;
            let policy = Policy::parse(name, &decoded).map_err(reroot)?;
            let value: Value = serde_json::from_str(&decoded)
                .map_err(|e| err(path, format!("not valid JSON: {e}")))?;
            Ok((policy, chars_without_whitespace(&value)))
        }
        v => Ok((
            Policy::from_value(name, v).map_err(reroot)?,
            chars_without_whitespace(v),
        )),
    }
}

fn err(path: &str, message: impl Into<String>) -> ParseError {
    ParseError {
        path: path.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT: &str = r#"{
      "RoleDetailList": [{
        "RoleName": "ctrl", "Path": "/eks/", "Arn": "arn:aws-cn:iam::111122223333:role/eks/ctrl",
        "RolePolicyList": [{"PolicyName": "inline1",
          "PolicyDocument": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22ec2%3A*%22%2C%22Resource%22%3A%22*%22%7D%7D"}],
        "AttachedManagedPolicies": [{"PolicyName": "m", "PolicyArn": "arn:aws-cn:iam::111122223333:policy/m"},
                                    {"PolicyName": "aws", "PolicyArn": "arn:aws-cn:iam::aws:policy/NotInSnapshot"}],
        "PermissionsBoundary": {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": "arn:aws-cn:iam::111122223333:policy/b"}
      }],
      "Policies": [
        {"PolicyName": "m", "Arn": "arn:aws-cn:iam::111122223333:policy/m", "DefaultVersionId": "v2",
         "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": false, "Document": {"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}},
                               {"VersionId": "v2", "IsDefaultVersion": true, "Document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}}]},
        {"PolicyName": "b", "Arn": "arn:aws-cn:iam::111122223333:policy/b", "DefaultVersionId": "v1",
         "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true, "Document": {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}}]}
      ]}"#;

    #[test]
    fn resolves_a_session_to_its_role_with_path_and_all_its_policies() {
        let snap = IamSnapshot::parse(SNAPSHOT).unwrap();
        let p = snap
            .principal("arn:aws-cn:sts::111122223333:assumed-role/ctrl/12345")
            .unwrap();
        assert_eq!(p.arn, "arn:aws-cn:iam::111122223333:role/eks/ctrl");
        let names: Vec<_> = p.identity.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["inline:inline1", "arn:aws-cn:iam::111122223333:policy/m"]
        );
        assert_eq!(p.identity[0].statements[0].actions.items[0].text, "ec2:*");
        assert_eq!(
            p.identity[1].statements[0].actions.items[0].text,
            "iam:passrole"
        );
        assert_eq!(
            p.boundary.unwrap().name,
            "arn:aws-cn:iam::111122223333:policy/b"
        );
        assert!(
            snap.principal("arn:aws:sts::111122223333:assumed-role/ctrl/1")
                .is_none()
        );
        assert!(
            snap.principal("arn:aws-cn:iam::111122223333:role/other")
                .is_none()
        );
        assert_eq!(snap.role_arns().len(), 1);
    }

    #[test]
    fn a_roles_tags_are_known_only_where_the_snapshot_lists_them() {
        let session = "arn:aws-cn:sts::111122223333:assumed-role/ctrl/1";
        let tags = |snapshot: &str| {
            IamSnapshot::parse(snapshot)
                .unwrap()
                .principal(session)
                .unwrap()
                .tags
        };
        assert_eq!(tags(SNAPSHOT), None);
        let listed = |list: &str| {
            SNAPSHOT.replace(
                r#""Path": "/eks/","#,
                &format!(r#""Path": "/eks/", "Tags": {list},"#),
            )
        };
        assert_eq!(tags(&listed("[]")), Some(Vec::new()));
        assert_eq!(
            tags(&listed(r#"[{"Key": "team", "Value": "infra"}]"#)),
            Some(vec![("team".to_string(), "infra".to_string())])
        );
        let bad = listed(r#"[{"Key": "team"}]"#);
        let e = IamSnapshot::parse(&bad)
            .and_then(|s| s.principal_at("RoleDetailList", 0))
            .unwrap_err();
        assert_eq!(e.path, "$.RoleDetailList[0].Tags[0]");
    }

    #[test]
    fn each_policy_is_recorded_with_its_kind_and_size_without_whitespace() {
        let snap = IamSnapshot::parse(SNAPSHOT).unwrap();
        let sizes = snap
            .principal("arn:aws-cn:iam::111122223333:role/eks/ctrl")
            .unwrap()
            .sizes
            .unwrap();
        let inline = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*"}}"#;
        let managed = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"*"}]}"#;
        assert_eq!(
            sizes,
            [
                PolicySize {
                    name: "inline:inline1".into(),
                    kind: PolicyKind::Inline,
                    chars: Some(inline.len()),
                },
                PolicySize {
                    name: "arn:aws-cn:iam::111122223333:policy/m".into(),
                    kind: PolicyKind::Managed,
                    chars: Some(managed.len()),
                },
                // Attached, not held: counted, its size not known.
                PolicySize {
                    name: "arn:aws-cn:iam::aws:policy/NotInSnapshot".into(),
                    kind: PolicyKind::Managed,
                    chars: None,
                },
            ]
        );
        // Spaces and line breaks, inside strings too, are not counted; other characters are.
        let spaced = serde_json::json!({"Sid": "a b\nc", "x": "é"});
        assert_eq!(
            chars_without_whitespace(&spaced),
            r#"{"Sid":"ab\nc","x":"é"}"#.chars().count()
        );
    }

    #[test]
    fn bad_snapshots_fail_at_load_naming_the_path() {
        assert_eq!(IamSnapshot::parse("{").unwrap_err().path, "$");
        assert_eq!(
            IamSnapshot::parse(r#"{"RoleDetailList": {}}"#)
                .unwrap_err()
                .path,
            "$.RoleDetailList"
        );
        let bad_doc = SNAPSHOT.replace(r#""Action": "iam:PassRole""#, r#""Action": 5"#);
        let e = IamSnapshot::parse(&bad_doc).unwrap_err();
        assert_eq!(
            e.path,
            "$.Policies[0].PolicyVersionList[1].Document.Statement[0].Action"
        );
        let bad_inline =
            SNAPSHOT.replace("%22Effect%22%3A%22Allow%22", "%22Effect%22%3A%22Maybe%22");
        assert_eq!(
            IamSnapshot::parse(&bad_inline).unwrap_err().path,
            "$.RoleDetailList[0].RolePolicyList[0].PolicyDocument.Statement.Effect"
        );
    }
}
