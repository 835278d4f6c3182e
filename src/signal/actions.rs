//! The action a failure concerns when AWS's message names none (`UnauthorizedOperation: You are
//! not authorized to perform this operation.`): from the SDK's operation, or Karpenter's wrapper.
//!
//! Both tables are data in rules/signals.json: `services` maps aws-sdk-go-v2's service ids
//! (`operation error EC2: DescribeImages`) to IAM prefixes, and `wrappers` lists the texts
//! Karpenter writes before an AWS call (`describing images`), each with the action it needs, the
//! Karpenter versions and source it comes from, and a golden example.

use regex::Regex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One wrapper as the rules file lists it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWrapper {
    /// The text as Karpenter writes it; `%q` stands for a quoted value, `%s`/`%v` for a word.
    pub text: String,
    pub action: String,
    /// The SDK operation (`EC2.DescribeImages`), so an `aws-operation-name` field maps too.
    #[serde(default)]
    pub operation: Option<String>,
    /// The Karpenter versions that write it, e.g. `v0.32–v1.14`.
    pub versions: String,
    /// Where in Karpenter's source it is written.
    pub source: String,
    /// What else evidence should say (other permissions the call needs).
    #[serde(default)]
    pub note: Option<String>,
    /// A full error text with this wrapper; the action must be recognised from it.
    pub example: String,
}

/// An action inferred from the text around a failure, and what it was inferred from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Inferred {
    pub action: String,
    pub from: String,
}

/// The compiled tables.
#[derive(Debug)]
pub(crate) struct Operations {
    /// aws-sdk-go-v2's `operation error SERVICE: OPERATION,`.
    sdk: Regex,
    /// Service id (`EC2`, `IAM`, `SSM`, …) → IAM action prefix.
    services: HashMap<String, String>,
    /// Every wrapper as one alternative with its own capture group, longest first, so that
    /// `creating instance profile` wins over `creating instance` where both match.
    wrappers: Option<Regex>,
    /// Per capture group (from 1): the wrapper's action and how evidence names it.
    wrapper_actions: Vec<Inferred>,
    /// SDK operation name (`DescribeImages`) → action, from the wrappers' `operation`.
    by_operation: HashMap<String, String>,
    /// Every action Karpenter is known to call, lowercase: its wrappers' and its requests'
    /// (rules/requests.json), so that an action a text ends inside (`ec2:Run`) is told from one.
    known: HashSet<String>,
}

/// The actions of rules/requests.json, every Karpenter version's requests.
const REQUESTS: &str = include_str!("../../rules/requests.json");

/// Regex source of a wrapper text: literal, with Go's verbs as the values they print.
fn wrapper_pattern(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('%').enumerate() {
        if i == 0 {
            out += &regex::escape(part);
            continue;
        }
        let (verb, rest) = part.split_at(part.chars().next().map_or(0, char::len_utf8));
        out += match verb {
            "q" => r#""[^"]*""#,
            "s" | "v" => r"\S+",
            "d" => r"\d+",
            other => return format!("(?:invalid verb %{other})\u{0}"),
        };
        out += &regex::escape(rest);
    }
    format!(r"\b{out}")
}

impl Operations {
    pub(crate) fn compile(
        services: &BTreeMap<String, String>,
        wrappers: &[RawWrapper],
    ) -> Result<Operations, String> {
        let mut sorted: Vec<&RawWrapper> = wrappers.iter().collect();
        sorted.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.text.cmp(&b.text)));
        let mut alternatives = Vec::new();
        let mut wrapper_actions = Vec::new();
        let mut by_operation = HashMap::new();
        for w in sorted {
            let pattern = wrapper_pattern(&w.text);
            if pattern.contains('\u{0}') {
                return Err(format!("wrapper {:?}: only %q, %s, %v and %d", w.text));
            }
            if !is_action(&w.action) {
                return Err(format!(
                    "wrapper {:?}: action {:?} is not service:Action",
                    w.text, w.action
                ));
            }
            alternatives.push(format!("({pattern})"));
            wrapper_actions.push(Inferred {
                action: w.action.clone(),
                from: format!(
                    "Karpenter's wrapper \"{}\" (Karpenter {}, {}) calls {}{}",
                    w.text,
                    w.versions,
                    w.source,
                    w.action,
                    w.note
                        .as_ref()
                        .map(|n| format!("; {n}"))
                        .unwrap_or_default()
                ),
            });
            if let Some(op) = &w.operation {
                let name = op.rsplit('.').next().unwrap_or(op);
                by_operation
                    .entry(name.to_string())
                    .or_insert_with(|| w.action.clone());
            }
        }
        let wrappers = if alternatives.is_empty() {
            None
        } else {
            Some(
                super::rules::regex(&alternatives.join("|"))
                    .map_err(|e| format!("wrappers: {e}"))?,
            )
        };
        Ok(Operations {
            sdk: super::rules::regex(r"operation error ([A-Za-z0-9 ]{1,40}): ([A-Za-z0-9]{1,80}),")
                .expect("a valid regex"),
            services: services
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            known: wrapper_actions
                .iter()
                .map(|w| w.action.to_ascii_lowercase())
                .chain(requested_actions())
                .collect(),
            wrappers,
            wrapper_actions,
            by_operation,
        })
    }

    /// Whether `action` is the start of an action Karpenter is known to call and not that
    /// action itself (`ec2:Run`, `ec2:RunInst` of `ec2:RunInstances`): a word a cut ended inside.
    /// Case is not significant, as in IAM.
    pub(crate) fn cut_inside(&self, action: &str) -> bool {
        let action = action.to_ascii_lowercase();
        !self.known.contains(&action) && self.known.iter().any(|k| k.starts_with(&action))
    }

    /// The action of the last SDK operation named in `before`, else of Karpenter's last wrapper.
    pub(crate) fn infer(&self, before: &str) -> Option<Inferred> {
        let sdk = self.sdk.captures_iter(before).last().and_then(|c| {
            let prefix = self.services.get(&c[1].to_ascii_lowercase())?;
            Some(Inferred {
                action: format!("{prefix}:{}", &c[2]),
                from: format!(
                    "aws-sdk-go-v2 names the call: \"operation error {}: {}\"",
                    &c[1], &c[2]
                ),
            })
        });
        sdk.or_else(|| self.wrapper(before))
    }

    /// The action of Karpenter's last wrapper in `before`, whatever SDK operation follows it.
    pub(crate) fn wrapper(&self, before: &str) -> Option<Inferred> {
        let caps = self.wrappers.as_ref()?.captures_iter(before).last()?;
        let group = (1..caps.len()).find(|&i| caps.get(i).is_some())?;
        self.wrapper_actions.get(group - 1).cloned()
    }

    /// The action of an `aws-operation-name` log field's operation, where a wrapper names it.
    pub(crate) fn of_field(&self, operation: &str) -> Option<Inferred> {
        let action = self.by_operation.get(operation)?;
        Some(Inferred {
            action: action.clone(),
            from: format!("the log line's aws-operation-name field names the call {operation}"),
        })
    }
}

/// `service:Action`: a lower-case service prefix and an action name.
fn is_action(text: &str) -> bool {
    text.split_once(':').is_some_and(|(svc, name)| {
        !svc.is_empty()
            && svc
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The actions rules/requests.json names, lowercase (none if it does not parse: its own
/// loader reports that).
fn requested_actions() -> impl Iterator<Item = String> {
    let doc: serde_json::Value = serde_json::from_str(REQUESTS).unwrap_or_default();
    let actions: Vec<String> = doc["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["action"].as_str())
        .map(str::to_ascii_lowercase)
        .collect();
    actions.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(wrappers: &[(&str, &str)]) -> Operations {
        let services = BTreeMap::from([("EC2".to_string(), "ec2".to_string())]);
        let raw: Vec<RawWrapper> = wrappers
            .iter()
            .map(|(text, action)| RawWrapper {
                text: text.to_string(),
                action: action.to_string(),
                operation: None,
                versions: "v1".into(),
                source: "x.go".into(),
                note: None,
                example: String::new(),
            })
            .collect();
        Operations::compile(&services, &raw).unwrap()
    }

    #[test]
    fn the_sdk_operation_wins_and_the_last_one_counts() {
        let o = ops(&[("describing images", "ec2:DescribeImages")]);
        let got = o
            .infer("describing images, operation error EC2: DescribeImages, https response error, operation error EC2: CreateFleet, https")
            .unwrap();
        assert_eq!(got.action, "ec2:CreateFleet");
        assert!(
            got.from.contains("operation error EC2: CreateFleet"),
            "{}",
            got.from
        );
        // A service the table does not know gives no action, and no guess.
        assert_eq!(o.infer("operation error Mystery: Op, x"), None);
    }

    #[test]
    fn the_last_and_longest_wrapper_counts() {
        let o = ops(&[
            ("creating instance", "ec2:CreateFleet"),
            ("creating instance profile", "iam:CreateInstanceProfile"),
            (
                "adding role %q to instance profile %q",
                "iam:AddRoleToInstanceProfile",
            ),
        ]);
        assert_eq!(
            o.infer("creating instance profile, ").unwrap().action,
            "iam:CreateInstanceProfile"
        );
        assert_eq!(
            o.infer("launching nodeclaim, creating instance, ")
                .unwrap()
                .action,
            "ec2:CreateFleet"
        );
        let got = o
            .infer(r#"creating instance profile, adding role "KarpenterNodeRole-x" to instance profile "p_1", "#)
            .unwrap();
        assert_eq!(got.action, "iam:AddRoleToInstanceProfile");
        assert!(got.from.contains("Karpenter's wrapper"), "{}", got.from);
        assert_eq!(
            o.infer("recreating instances"),
            None,
            "a wrapper starts at a word"
        );
        assert_eq!(o.infer("nothing here"), None);
    }

    #[test]
    fn bad_wrappers_are_refused() {
        let services = BTreeMap::new();
        let raw = |text: &str, action: &str| RawWrapper {
            text: text.into(),
            action: action.into(),
            operation: None,
            versions: "v1".into(),
            source: "x.go".into(),
            note: None,
            example: String::new(),
        };
        assert!(Operations::compile(&services, &[raw("getting %x", "ec2:A")]).is_err());
        assert!(Operations::compile(&services, &[raw("getting", "DescribeImages")]).is_err());
        assert!(Operations::compile(&services, &[raw("getting", "EC2:DescribeImages")]).is_err());
        assert!(
            Operations::compile(&services, &[])
                .unwrap()
                .infer("getting")
                .is_none()
        );
    }
}
