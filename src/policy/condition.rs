//! Condition operators: parsing `{"ForAnyValue:StringLikeIfExists": {"key": [...]}}` blocks and
//! evaluating them against a request context with IAM's missing-key and multi-value rules.

use super::arn::{Arn, arn_like};
use super::document::{ParseError, err};
use super::request::Context;
use super::{glob, typed, variables};
use serde_json::Value;

/// One condition: an operator applied to one key with the policy's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub operator: Operator,
    pub key: String,
    pub values: Vec<String>,
    /// `key` in lower case, for the context lookup.
    key_lower: String,
    /// Whether any value holds a `${…}` policy variable.
    has_variables: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The operator as written in the policy.
    pub name: String,
    pub set: Option<SetQualifier>,
    pub base: Base,
    pub if_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// The operator families. `Unknown` never matches; the explanation warns about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
    Unknown,
}

const BASES: [(&str, Base); 27] = [
    ("StringEquals", Base::StringEquals),
    ("StringNotEquals", Base::StringNotEquals),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Base::StringNotEqualsIgnoreCase),
    ("StringLike", Base::StringLike),
    ("StringNotLike", Base::StringNotLike),
    ("NumericEquals", Base::NumericEquals),
    ("NumericNotEquals", Base::NumericNotEquals),
    ("NumericLessThan", Base::NumericLessThan),
    ("NumericLessThanEquals", Base::NumericLessThanEquals),
    ("NumericGreaterThan", Base::NumericGreaterThan),
    ("NumericGreaterThanEquals", Base::NumericGreaterThanEquals),
    ("DateEquals", Base::DateEquals),
    ("DateNotEquals", Base::DateNotEquals),
    ("DateLessThan", Base::DateLessThan),
    ("DateLessThanEquals", Base::DateLessThanEquals),
    ("DateGreaterThan", Base::DateGreaterThan),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals),
    ("Bool", Base::Bool),
    ("BinaryEquals", Base::BinaryEquals),
    ("IpAddress", Base::IpAddress),
    ("NotIpAddress", Base::NotIpAddress),
    ("ArnEquals", Base::ArnEquals),
    ("ArnLike", Base::ArnLike),
    ("ArnNotEquals", Base::ArnNotEquals),
    ("ArnNotLike", Base::ArnNotLike),
    ("Null", Base::Null),
];

/// Every operator family name, for documentation and test generators.
pub fn operator_names() -> impl Iterator<Item = &'static str> {
    BASES.iter().map(|(name, _)| *name)
}

impl Base {
    /// Negated operators are true when no policy value matches, and true on a missing key.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Base::StringNotEquals
                | Base::StringNotEqualsIgnoreCase
                | Base::StringNotLike
                | Base::NumericNotEquals
                | Base::DateNotEquals
                | Base::NotIpAddress
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }

    /// Whether policy variables are substituted in this operator's values.
    fn takes_variables(self) -> bool {
        matches!(
            self,
            Base::Bool
                | Base::StringEquals
                | Base::StringNotEquals
                | Base::StringEqualsIgnoreCase
                | Base::StringNotEqualsIgnoreCase
                | Base::StringLike
                | Base::StringNotLike
                | Base::ArnEquals
                | Base::ArnLike
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }
}

impl Operator {
    pub fn parse(name: &str) -> Operator {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else {
            (None, name)
        };
        let (if_exists, rest) = match rest.strip_suffix("IfExists") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let base = BASES
            .iter()
            .find(|(n, _)| *n == rest)
            .map_or(Base::Unknown, |(_, b)| *b);
        let base = if base == Base::Null && (if_exists || set.is_some()) {
            Base::Unknown
        } else {
            base
        };
        Operator {
            name: name.to_string(),
            set,
            base,
            if_exists,
        }
    }
}

impl Condition {
    /// Parses a statement's `Condition` block into one condition per operator and key, in the
    /// order written.
    pub fn parse_block(block: &Value, path: &str) -> Result<Vec<Condition>, ParseError> {
        let ops = block
            .as_object()
            .ok_or_else(|| err(path, "must be an object of condition operators"))?;
        let mut out = Vec::new();
        for (op, keys) in ops {
            let op_path = format!("{path}.{op}");
            let keys = keys
                .as_object()
                .ok_or_else(|| err(&op_path, "must be an object of condition keys"))?;
            if keys.is_empty() {
                return Err(err(&op_path, "has no condition keys"));
            }
            let operator = Operator::parse(op);
            for (key, values) in keys {
                let key_path = format!("{op_path}.{key}");
                let values = scalar_list(values, &key_path)?;
                out.push(Condition {
                    operator: operator.clone(),
                    key: key.clone(),
                    key_lower: key.to_ascii_lowercase(),
                    has_variables: values.iter().any(|v| v.contains("${")),
                    values,
                });
            }
        }
        Ok(out)
    }

    /// Whether the condition holds for `ctx`. `variables` says whether policy variables apply.
    pub fn evaluate(&self, ctx: &Context, variables: bool) -> bool {
        let op = &self.operator;
        let present = ctx.get_lower(&self.key_lower);
        match op.base {
            Base::Unknown => return false,
            Base::Null => {
                return self
                    .values
                    .iter()
                    .any(|v| match v.to_ascii_lowercase().as_str() {
                        "true" => present.is_none(),
                        "false" => present.is_some(),
                        _ => false,
                    });
            }
            _ => {}
        }
        let multi_valued =
            present.is_some_and(|v| v.len() > 1) || is_multi_valued_key(&self.key_lower);
        let request = present.filter(|v| !v.is_empty());
        let negated = op.base.is_negated();
        // A policy value whose variable cannot be resolved satisfies neither form of the operator.
        let holds = |value: &str| {
            let mut outcomes = self
                .values
                .iter()
                .map(|p| self.value_matches(p, value, ctx, variables));
            if negated {
                outcomes.all(|o| o == Some(false))
            } else {
                outcomes.any(|o| o == Some(true))
            }
        };
        match (op.set, request) {
            // Multivalued keys require a set operator; without one the condition never holds.
            (None, _) if multi_valued && present.is_some() => false,
            (None, None) => op.if_exists || negated,
            (None, Some(values)) => values.iter().any(|v| holds(v)),
            (Some(SetQualifier::ForAnyValue), None) => op.if_exists,
            (Some(SetQualifier::ForAnyValue), Some(values)) => values.iter().any(|v| holds(v)),
            (Some(SetQualifier::ForAllValues), None) => true,
            (Some(SetQualifier::ForAllValues), Some(values)) => values.iter().all(|v| holds(v)),
        }
    }

    /// The positive comparison of one policy value (variables substituted) with one request
    /// value; `None` when a variable in the policy value has no value in the request.
    fn value_matches(
        &self,
        policy_value: &str,
        value: &str,
        ctx: &Context,
        variables: bool,
    ) -> Option<bool> {
        let base = self.operator.base;
        if variables && self.has_variables && base.takes_variables() {
            compare(base, &variables::substitute(policy_value, ctx)?, value)
        } else {
            compare(base, policy_value, value)
        }
    }
}

/// Condition keys that are multivalued (`ArrayOf…` in the Service Authorization Reference, or
/// "multivalued" among the global keys), in lower case. A request key with several values is
/// multivalued whatever its name.
const MULTI_VALUED_KEYS: &[&str] = &[
    "aws:calledvia",
    "aws:principalorgpaths",
    "aws:principalservicenameslist",
    "aws:resourceorgpaths",
    "aws:sourceorgpaths",
    "aws:tagkeys",
    "aws:vpceorgpaths",
    "kms:encryptioncontextkeys",
    "kms:grantoperations",
    "kms:resourcealiases",
];

fn is_multi_valued_key(lower: &str) -> bool {
    MULTI_VALUED_KEYS.contains(&lower)
}

/// The positive comparison of one policy value with one request value; `None` when either is
/// not of the operator's type (a number, a date, an IP, a boolean, an ARN): such a pair satisfies
/// neither the operator nor its negation.
fn compare(base: Base, policy: &str, request: &str) -> Option<bool> {
    use Base::*;
    match base {
        StringEquals | StringNotEquals | BinaryEquals => Some(policy == request),
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
            Some(policy.to_lowercase() == request.to_lowercase())
        }
        StringLike | StringNotLike => Some(glob::matches(policy, request)),
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => {
            let (r, p) = (typed::number(request)?, typed::number(policy)?);
            Some(ordered(base, r.partial_cmp(&p)?))
        }
        DateEquals
        | DateNotEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => {
            let (r, p) = (typed::date(request)?, typed::date(policy)?);
            Some(ordered(base, r.cmp(&p)))
        }
        Bool => {
            let boolean =
                |v: &str| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
            (boolean(policy) && boolean(request)).then(|| policy.eq_ignore_ascii_case(request))
        }
        IpAddress | NotIpAddress => typed::ip_in_range(policy, request),
        ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => {
            Arn::parse(request).map(|_| arn_like(policy, request))
        }
        Null | Unknown => None,
    }
}

/// Applies a Numeric*/Date* operator to the ordering of request against policy value.
fn ordered(base: Base, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match base {
        Base::NumericEquals | Base::NumericNotEquals | Base::DateEquals | Base::DateNotEquals => {
            ord == Equal
        }
        Base::NumericLessThan | Base::DateLessThan => ord == Less,
        Base::NumericLessThanEquals | Base::DateLessThanEquals => ord != Greater,
        Base::NumericGreaterThan | Base::DateGreaterThan => ord == Greater,
        Base::NumericGreaterThanEquals | Base::DateGreaterThanEquals => ord != Less,
        _ => false,
    }
}

/// A condition's values: a scalar or an array of scalars (strings, numbers, booleans).
fn scalar_list(value: &Value, path: &str) -> Result<Vec<String>, ParseError> {
    let one = |v: &Value, p: &str| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(err(p, "must be a string, number or boolean")),
    };
    match value {
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| one(v, &format!("{path}[{i}]")))
            .collect(),
        v => Ok(vec![one(v, path)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(op: &str, key: &str, values: Value) -> Condition {
        Condition::parse_block(&json!({ op: { key: values } }), "$")
            .unwrap()
            .remove(0)
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::default();
        for (k, v) in pairs {
            c.insert(k, *v);
        }
        c
    }

    #[test]
    fn operator_names_split_into_qualifier_base_and_if_exists() {
        let op = Operator::parse("ForAllValues:StringLikeIfExists");
        assert_eq!(
            (op.set, op.base, op.if_exists),
            (Some(SetQualifier::ForAllValues), Base::StringLike, true)
        );
        assert_eq!(Operator::parse("StringEqualsX").base, Base::Unknown);
        assert_eq!(Operator::parse("stringequals").base, Base::Unknown);
        assert_eq!(Operator::parse("NullIfExists").base, Base::Unknown);
        assert_eq!(operator_names().count(), 27);
    }

    #[test]
    fn passed_to_service_in_china_needs_the_cn_principal() {
        let c = cond(
            "StringEquals",
            "iam:PassedToService",
            json!(["ec2.amazonaws.com"]),
        );
        assert!(!c.evaluate(
            &ctx(&[("iam:PassedToService", "ec2.amazonaws.com.cn")]),
            true
        ));
        assert!(c.evaluate(&ctx(&[("iam:passedtoservice", "ec2.amazonaws.com")]), true));
    }

    #[test]
    fn missing_keys_fail_positive_operators_and_pass_negated_ones() {
        let empty = Context::default();
        assert!(!cond("StringEquals", "k", json!("v")).evaluate(&empty, true));
        assert!(cond("StringEqualsIfExists", "k", json!("v")).evaluate(&empty, true));
        assert!(cond("StringNotEquals", "k", json!("v")).evaluate(&empty, true));
        assert!(cond("NotIpAddress", "aws:SourceIp", json!("10.0.0.0/8")).evaluate(&empty, true));
        assert!(!cond("ForAnyValue:StringEquals", "k", json!("v")).evaluate(&empty, true));
        assert!(cond("ForAllValues:StringEquals", "k", json!("v")).evaluate(&empty, true));
        assert!(cond("Null", "k", json!("true")).evaluate(&empty, true));
        assert!(!cond("Null", "k", json!(false)).evaluate(&empty, true));
    }

    #[test]
    fn set_qualifiers_quantify_over_request_values() {
        let tags = ctx(&[("aws:TagKeys", "env"), ("aws:TagKeys", "team")]);
        assert!(
            cond(
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                json!(["env", "team", "x"])
            )
            .evaluate(&tags, true)
        );
        assert!(
            !cond("ForAllValues:StringEquals", "aws:TagKeys", json!(["env"])).evaluate(&tags, true)
        );
        assert!(
            cond("ForAnyValue:StringEquals", "aws:TagKeys", json!(["env"])).evaluate(&tags, true)
        );
        assert!(
            cond("ForAnyValue:StringNotEquals", "aws:TagKeys", json!(["env"]))
                .evaluate(&tags, true)
        );
        assert!(
            !cond(
                "ForAllValues:StringNotEquals",
                "aws:TagKeys",
                json!(["env"])
            )
            .evaluate(&tags, true)
        );
    }

    #[test]
    fn multivalued_keys_require_a_set_operator() {
        let one_tag = ctx(&[("aws:TagKeys", "env")]);
        assert!(!cond("StringEquals", "aws:TagKeys", json!("env")).evaluate(&one_tag, true));
        assert!(!cond("StringNotEquals", "aws:TagKeys", json!("x")).evaluate(&one_tag, true));
        assert!(
            cond("ForAnyValue:StringEquals", "aws:TagKeys", json!("env")).evaluate(&one_tag, true)
        );
        let two = ctx(&[("k", "a"), ("k", "b")]);
        assert!(!cond("StringEquals", "k", json!(["a", "b"])).evaluate(&two, true));
        let mut empty = Context::default();
        empty.set("aws:TagKeys", vec![]);
        assert!(!cond("Null", "aws:TagKeys", json!("true")).evaluate(&empty, true));
        assert!(
            cond("ForAllValues:StringEquals", "aws:TagKeys", json!("x")).evaluate(&empty, true)
        );
        assert!(
            !cond("ForAnyValue:StringEquals", "aws:TagKeys", json!("x")).evaluate(&empty, true)
        );
    }

    #[test]
    fn unresolved_variables_satisfy_neither_positive_nor_negated_operators() {
        let c = ctx(&[("s", "x")]);
        assert!(!cond("StringEquals", "s", json!("${aws:username}")).evaluate(&c, true));
        assert!(!cond("StringNotEquals", "s", json!("${aws:username}")).evaluate(&c, true));
        assert!(cond("StringEquals", "s", json!(["${aws:username}", "x"])).evaluate(&c, true));
        assert!(!cond("StringNotEquals", "s", json!(["${aws:username}", "y"])).evaluate(&c, true));
        let tagged = ctx(&[("b", "true"), ("aws:PrincipalTag/flag", "true")]);
        assert!(cond("Bool", "b", json!("${aws:PrincipalTag/flag}")).evaluate(&tagged, true));
    }

    #[test]
    fn each_family_compares_by_its_type() {
        let c = ctx(&[
            ("n", "10"),
            ("d", "2024-06-01T10:00:00Z"),
            ("ip", "10.1.2.3"),
            ("b", "TRUE"),
            ("arn", "arn:aws:iam::1:role/x"),
            ("s", "Hello"),
        ]);
        let holds = |op: &str, key: &str, v: Value| cond(op, key, v).evaluate(&c, true);
        assert!(holds("NumericLessThan", "n", json!(11)));
        assert!(!holds("NumericLessThan", "n", json!("10")));
        assert!(holds("NumericGreaterThanEquals", "n", json!("10.0")));
        assert!(!holds("NumericEquals", "n", json!("ten")));
        assert!(holds("DateGreaterThan", "d", json!("2024-01-01")));
        assert!(holds("DateEquals", "d", json!("1717236000")));
        assert!(holds(
            "IpAddress",
            "ip",
            json!(["192.168.0.0/16", "10.0.0.0/8"])
        ));
        assert!(!holds("NotIpAddress", "ip", json!("10.0.0.0/8")));
        assert!(holds("Bool", "b", json!(true)));
        assert!(holds("ArnLike", "arn", json!("arn:aws:iam::*:role/*")));
        assert!(holds("ArnEquals", "arn", json!("arn:aws:iam::1:role/?")));
        assert!(!holds("ArnLike", "s", json!("*")));
        assert!(
            !holds("ArnNotLike", "s", json!("arn:aws:iam::1:role/x")),
            "a non-ARN satisfies neither form"
        );
        assert!(
            !holds("NotIpAddress", "s", json!("10.0.0.0/8")),
            "a non-IP satisfies neither form"
        );
        assert!(
            !holds("NumericNotEquals", "s", json!(5)),
            "a non-number satisfies neither form"
        );
        assert!(
            !holds("DateNotEquals", "s", json!("2024-01-01")),
            "a non-date satisfies neither form"
        );
        assert!(!holds("Bool", "n", json!("true")) && !holds("Bool", "b", json!("yes")));
        assert!(holds("StringEqualsIgnoreCase", "s", json!("hello")));
        assert!(!holds("StringEquals", "s", json!("hello")));
        assert!(holds("StringLike", "s", json!("H*o")));
        assert!(holds("StringNotLike", "s", json!("h*")));
        assert!(holds("BinaryEquals", "s", json!("Hello")));
        assert!(!holds("SomethingNew", "s", json!("Hello")));
    }

    #[test]
    fn variables_substitute_into_string_and_arn_values_only() {
        let c = ctx(&[
            ("aws:username", "alice"),
            ("s3:prefix", "home/alice/x"),
            ("n", "${aws:username}"),
        ]);
        assert!(
            cond("StringLike", "s3:prefix", json!("home/${aws:username}/*")).evaluate(&c, true)
        );
        assert!(
            !cond("StringLike", "s3:prefix", json!("home/${aws:username}/*")).evaluate(&c, false)
        );
        assert!(!cond("StringLike", "s3:prefix", json!("home/${aws:userid}/*")).evaluate(&c, true));
        assert!(!cond("NumericEquals", "n", json!("${aws:username}")).evaluate(&c, true));
    }

    #[test]
    fn blocks_with_bad_shapes_are_errors_with_paths() {
        assert_eq!(
            Condition::parse_block(&json!([]), "$.C").unwrap_err().path,
            "$.C"
        );
        assert_eq!(
            Condition::parse_block(&json!({"StringEquals": "x"}), "$.C")
                .unwrap_err()
                .path,
            "$.C.StringEquals"
        );
        assert_eq!(
            Condition::parse_block(&json!({"StringEquals": {}}), "$.C")
                .unwrap_err()
                .path,
            "$.C.StringEquals"
        );
        assert_eq!(
            Condition::parse_block(&json!({"StringEquals": {"k": [null]}}), "$.C")
                .unwrap_err()
                .path,
            "$.C.StringEquals.k[0]"
        );
    }
}
