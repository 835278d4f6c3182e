//! IAM policy documents: the typed model and a strict parser over JSON that names the JSON path
//! of whatever it rejects (`$.Statement[2].Condition.StringEquals`).

use super::arn::ArnPattern;
use super::condition::Condition;
use super::glob::Pattern;
use serde_json::{Map, Value};
use std::fmt;

/// A parsed policy document with the name it is reported under.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    /// `Version` is `2012-10-17`: policy variables are substituted (older versions take `${…}`
    /// literally).
    pub variables: bool,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or (for `NotAction`, `NotResource`) the list it must not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns<T> {
    pub negated: bool,
    pub items: Vec<T>,
}

/// `Principal` / `NotPrincipal` of a resource policy statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principals {
    pub negated: bool,
    /// `"*"` or `{"AWS": "*"}`: everyone.
    pub everyone: bool,
    pub aws: Vec<String>,
    pub service: Vec<String>,
    pub federated: Vec<String>,
    pub canonical_user: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    /// Position in the policy's `Statement` list (0 for a lone statement object).
    pub index: usize,
    pub effect: Effect,
    /// Action patterns, stored in lower case (actions compare case-insensitively).
    pub actions: Patterns<Pattern>,
    pub resources: Patterns<ArnPattern>,
    pub principals: Option<Principals>,
    pub conditions: Vec<Condition>,
    /// The statement as written, for remediations that quote or correct it.
    pub source: Map<String, Value>,
}

/// A policy that cannot be parsed: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ParseError {}

pub(super) fn err(path: &str, message: impl Into<String>) -> ParseError {
    ParseError {
        path: path.to_string(),
        message: message.into(),
    }
}

impl Policy {
    /// Parses policy JSON text.
    pub fn parse(name: &str, text: &str) -> Result<Policy, ParseError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| err("$", format!("not valid JSON: {e}")))?;
        Policy::from_value(name, &value)
    }

    /// Parses a role's trust policy: its statements name no resource (the role is the resource),
    /// read as `"Resource": "*"`.
    pub fn trust_from_value(name: &str, value: &Value) -> Result<Policy, ParseError> {
        let mut value = value.clone();
        let statements = match value.get_mut("Statement") {
            Some(Value::Array(list)) => list.iter_mut().collect::<Vec<_>>(),
            Some(one) => vec![one],
            None => Vec::new(),
        };
        for st in statements {
            if let Some(st) = st.as_object_mut()
                && !st.contains_key("Resource")
                && !st.contains_key("NotResource")
            {
                st.insert("Resource".into(), Value::String("*".into()));
            }
        }
        Policy::from_value(name, &value)
    }

    /// Parses an already decoded policy document.
    pub fn from_value(name: &str, value: &Value) -> Result<Policy, ParseError> {
        let doc = value
            .as_object()
            .ok_or_else(|| err("$", "a policy must be a JSON object"))?;
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(err(&format!("$.{key}"), "unknown policy element"));
            }
        }
        let variables = match doc.get("Version") {
            None => false,
            Some(Value::String(v)) if v == "2012-10-17" => true,
            Some(Value::String(v)) if v == "2008-10-17" => false,
            Some(_) => {
                return Err(err("$.Version", "must be \"2012-10-17\" or \"2008-10-17\""));
            }
        };
        let statements = match doc.get("Statement") {
            None => return Err(err("$", "missing Statement")),
            Some(Value::Object(st)) => vec![parse_statement(st, 0, "$.Statement")?],
            Some(Value::Array(list)) if list.is_empty() => {
                return Err(err("$.Statement", "Statement is empty"));
            }
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let path = format!("$.Statement[{i}]");
                    let st = v
                        .as_object()
                        .ok_or_else(|| err(&path, "a statement must be a JSON object"))?;
                    parse_statement(st, i, &path)
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(err(
                    "$.Statement",
                    "must be a statement object or an array of them",
                ));
            }
        };
        Ok(Policy {
            name: name.to_string(),
            variables,
            statements,
        })
    }

    /// Whether any statement has a `Principal` or `NotPrincipal` (only resource policies may).
    pub fn has_principals(&self) -> bool {
        self.statements.iter().any(|s| s.principals.is_some())
    }
}

fn parse_statement(
    st: &Map<String, Value>,
    index: usize,
    path: &str,
) -> Result<Statement, ParseError> {
    for key in st.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Principal"
                | "NotPrincipal"
                | "Condition"
        ) {
            return Err(err(&format!("{path}.{key}"), "unknown statement element"));
        }
    }
    let sid = match st.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(err(&format!("{path}.Sid"), "must be a string")),
    };
    let effect = match st.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(_) => {
            return Err(err(
                &format!("{path}.Effect"),
                "must be \"Allow\" or \"Deny\"",
            ));
        }
        None => return Err(err(path, "missing Effect")),
    };
    let actions = either(st, path, "Action", "NotAction", |a| {
        Pattern::new(a.to_ascii_lowercase())
    })?;
    let resources = either(st, path, "Resource", "NotResource", ArnPattern::new)?;
    let principals = match (st.get("Principal"), st.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            return Err(err(path, "has both Principal and NotPrincipal"));
        }
        (Some(p), None) => Some(parse_principals(p, false, &format!("{path}.Principal"))?),
        (None, Some(p)) => Some(parse_principals(p, true, &format!("{path}.NotPrincipal"))?),
        (None, None) => None,
    };
    let conditions = match st.get("Condition") {
        None => Vec::new(),
        Some(c) => Condition::parse_block(c, &format!("{path}.Condition"))?,
    };
    Ok(Statement {
        sid,
        index,
        effect,
        actions,
        resources,
        principals,
        conditions,
        source: st.clone(),
    })
}

fn either<T>(
    st: &Map<String, Value>,
    path: &str,
    name: &str,
    not_name: &str,
    compile: impl Fn(String) -> T,
) -> Result<Patterns<T>, ParseError> {
    let (negated, key, value) = match (st.get(name), st.get(not_name)) {
        (Some(_), Some(_)) => return Err(err(path, format!("has both {name} and {not_name}"))),
        (Some(v), None) => (false, name, v),
        (None, Some(v)) => (true, not_name, v),
        (None, None) => return Err(err(path, format!("missing {name} or {not_name}"))),
    };
    let items = strings(value, &format!("{path}.{key}"))?
        .into_iter()
        .map(compile)
        .collect();
    Ok(Patterns { negated, items })
}

/// A string or a non-empty array of strings.
fn strings(value: &Value, path: &str) -> Result<Vec<String>, ParseError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(list) if list.is_empty() => Err(err(path, "must not be empty")),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(err(&format!("{path}[{i}]"), "must be a string")),
            })
            .collect(),
        _ => Err(err(path, "must be a string or an array of strings")),
    }
}

fn parse_principals(value: &Value, negated: bool, path: &str) -> Result<Principals, ParseError> {
    let mut p = Principals {
        negated,
        ..Principals::default()
    };
    match value {
        Value::String(s) if s == "*" => p.everyone = true,
        Value::Object(map) if !map.is_empty() => {
            for (kind, v) in map {
                let sub = format!("{path}.{kind}");
                let list = strings(v, &sub)?;
                match kind.as_str() {
                    "AWS" if list.iter().any(|s| s == "*") => p.everyone = true,
                    "AWS" => p.aws = list,
                    "Service" => p.service = list,
                    "Federated" => p.federated = list,
                    "CanonicalUser" => p.canonical_user = list,
                    _ => return Err(err(&sub, "unknown principal type")),
                }
            }
        }
        _ => return Err(err(path, "must be \"*\" or an object of principal types")),
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, ParseError> {
        Policy::parse("p", text)
    }

    #[test]
    fn statement_may_be_a_lone_object_or_an_array() {
        let one = parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"EC2:Run*","Resource":"*"}}"#).unwrap();
        assert_eq!(one.statements.len(), 1);
        assert_eq!(one.statements[0].actions.items[0].text, "ec2:run*");
        assert!(one.variables);
        let many = parse(r#"{"Statement":[{"Sid":"A","Effect":"Deny","NotAction":["s3:*","kms:*"],"NotResource":"arn:aws:s3:::b"},{"Effect":"Allow","Action":"*","Resource":"*"}]}"#).unwrap();
        assert!(!many.variables);
        let s = &many.statements[0];
        assert_eq!(
            (
                s.sid.as_deref(),
                s.effect,
                s.actions.negated,
                s.resources.negated
            ),
            (Some("A"), Effect::Deny, true, true)
        );
        assert_eq!(many.statements[1].index, 1);
    }

    #[test]
    fn principals_of_every_kind_parse() {
        let p = parse(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::1:role/r"],"Service":"ec2.amazonaws.com"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","NotPrincipal":"*","Action":"kms:*","Resource":"*"},{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}"#).unwrap();
        let first = p.statements[0].principals.as_ref().unwrap();
        assert_eq!(first.aws.len(), 2);
        assert_eq!(first.service, ["ec2.amazonaws.com"]);
        assert!(p.statements[1].principals.as_ref().unwrap().negated);
        assert!(p.statements[2].principals.as_ref().unwrap().everyone);
        assert!(p.has_principals());
    }

    #[test]
    fn errors_name_the_json_path() {
        let cases = [
            ("[]", "$", "JSON object"),
            ("{", "$", "not valid JSON"),
            (r#"{"Statement":[]}"#, "$.Statement", "empty"),
            (r#"{"Version":"2012-10-17"}"#, "$", "missing Statement"),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},7]}"#,
                "$.Statement[1]",
                "object",
            ),
            (
                r#"{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}"#,
                "$.Statement.Effect",
                "Allow",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":[1],"Resource":"*"}}"#,
                "$.Statement.Action[0]",
                "string",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
                "$.Statement",
                "missing Action",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}}"#,
                "$.Statement",
                "both",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":[]}}"#,
                "$.Statement.Resource",
                "empty",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Foo":1}}"#,
                "$.Statement.Foo",
                "unknown",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Principal":{"Bogus":"x"}}}"#,
                "$.Statement.Principal.Bogus",
                "unknown principal",
            ),
            (
                r#"{"Version":"1","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
                "$.Version",
                "2012",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}}"#,
                "$.Statement.Condition.StringEquals.k",
                "string",
            ),
        ];
        for (text, path, words) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.path, path, "{text}: {e}");
            assert!(e.message.contains(words), "{text}: {e}");
        }
    }
}
