//! Recognition rules as data (rules/signals.json): compiled and checked against their golden
//! examples at load, then applied to one error text to extract the failures it reports.

use super::actions::{Operations, RawWrapper};
use super::{Category, Partial, PolicyLayer, Source};
use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Captures, Regex, RegexBuilder};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A rules file that cannot be used; names the rule (and example) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rules file: {0}")]
    File(String),
    #[error("rule {rule}: {message}")]
    Rule { rule: String, message: String },
    #[error("rule {rule}, example {example}: {message}")]
    Example {
        rule: String,
        /// 1-based position in the rule's `examples`.
        example: usize,
        message: String,
    },
}

/// What one rule extracted from one match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Finding {
    /// Index of the rule in the set.
    pub rule: usize,
    pub category: Category,
    pub error_code: Option<String>,
    pub layer: Option<PolicyLayer>,
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub encoded_message: Option<String>,
    pub kms_key: Option<String>,
    /// The ARN of the policy AWS names as denying (`… service control policy: arn:…`).
    pub policy_arn: Option<String>,
    /// The IAM Access Troubleshooter's authorization id (`… authorization id: ID`).
    pub authorization_id: Option<String>,
    /// The OIDC issuer URL a credentials failure names.
    pub oidc_issuer: Option<String>,
    /// The KMS key state a KMS error names (`… is pending deletion.`), as DescribeKey spells it.
    pub key_state: Option<String>,
    /// The failed call was a dry run (the rule's `dryRun`).
    pub dry_run: bool,
    /// Where the action comes from when AWS's message names none (an SDK operation, a log
    /// field, Karpenter's wrapper text); `None` when the message names it.
    pub action_from: Option<String>,
    /// The AWS call that failed as the text around the message names it (the SDK operation or
    /// Karpenter's wrapper), whether or not AWS names the action it refused.
    pub call: Option<super::actions::Inferred>,
    /// What the text held only in part: it was cut inside these values.
    pub partial: Partial,
    /// The text is cut within this failure's own sentence (after the match, before any
    /// joined error): an action AWS did not name before the cut may have come after it.
    pub sentence_cut: bool,
}

/// At most this many findings are read from one text (real fleet errors join a handful).
pub(crate) const MAX_FINDINGS: usize = 100;

/// The compiled rules.
#[derive(Debug)]
pub(crate) struct RuleSet {
    rules: Vec<Rule>,
    /// Every distinct literal of every rule; a text is worth matching only if it holds one.
    /// Standard semantics, to list every literal present (overlapping).
    literals: AhoCorasick,
    /// The same literals, leftmost-first: only that kind gets the SIMD (Teddy) searcher,
    /// which is what makes scanning raw input fast.
    prefilter: AhoCorasick,
    layers: HashMap<String, PolicyLayer>,
    /// What AWS appends after a denial sentence, each with the one group it captures.
    trailers: Vec<(Trailer, Regex)>,
    /// The action of a failure whose message names none.
    operations: Operations,
}

/// A trailer's field.
#[derive(Debug, Clone, Copy)]
enum Trailer {
    Encoded,
    AuthorizationId,
}

/// Where Karpenter v1.0 cut a NodeClaim condition's message (its `LaunchFailed` reason).
const NODECLAIM_CUT: usize = 300;

/// How far after a denial sentence its trailers are looked for.
const MAX_TRAILER: usize = 2048;

#[derive(Debug)]
struct Rule {
    id: String,
    sources: Vec<Source>,
    /// Indices into the set's literals.
    literals: Vec<usize>,
    regex: Regex,
    category: CategoryRule,
    fallback: bool,
    infer_action: bool,
    /// What the rule recognises is a dry run (EC2NodeClass validation), not a launch.
    dry_run: bool,
    set: Constants,
    /// Groups the sentence always goes on after (EC2's `Not authorized for images: [ami-…]`):
    /// one running right up to the end of a text is cut.
    continues_after: Vec<String>,
    /// Action groups a text may end with, cut where they are the start of an action Karpenter
    /// is known to call and not that action (`…perform: ec2:Run`; `ec2:RunInstances` and an
    /// action Karpenter never calls, `secretsmanager:GetSecretValue`, are whole).
    known_at_end: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum CategoryRule {
    Fixed(Category),
    /// `iam:PassRole` → PassRoleDenied, any other (or no) action → ActionDenied.
    FromAction,
}

/// Values a rule sets when its regex does not capture them.
#[derive(Debug, Default)]
struct Constants {
    error_code: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    layer: Option<PolicyLayer>,
}

/// Named groups a pattern may use.
const GROUPS: [&str; 11] = [
    "code",
    "principal",
    "action",
    "resource",
    "layer",
    "encoded",
    "kms",
    "policy",
    "authz",
    "issuer",
    "keystate",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "$comment")]
    _comment: Option<serde_json::Value>,
    layers: BTreeMap<String, String>,
    /// `encoded` / `authz` → a regex whose one group is the value.
    #[serde(default)]
    trailers: BTreeMap<String, String>,
    /// aws-sdk-go-v2 service id → IAM action prefix.
    #[serde(default)]
    services: BTreeMap<String, String>,
    #[serde(default)]
    wrappers: Vec<RawWrapper>,
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    #[serde(default)]
    description: String,
    sources: Vec<String>,
    literals: Vec<String>,
    pattern: String,
    category: String,
    #[serde(default)]
    fallback: bool,
    /// Whether the action may be inferred from around the text when the match has none
    /// (default true; false where the refusal is no IAM action, as an AMI's launch permission).
    #[serde(default = "yes", rename = "inferAction")]
    infer_action: bool,
    /// The text reports a dry run (Karpenter's EC2NodeClass validation), not a launch.
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
    #[serde(default)]
    set: BTreeMap<String, String>,
    /// Groups the sentence always goes on after (see `Rule::continues_after`).
    #[serde(default, rename = "continuesAfter")]
    continues_after: Vec<String>,
    /// Action groups whole at a text's end only when known (see `Rule::known_at_end`).
    #[serde(default, rename = "knownAtEnd")]
    known_at_end: Vec<String>,
    examples: Vec<RawExample>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExample {
    text: String,
    #[serde(default)]
    source: Option<String>,
    expect: Vec<Expect>,
}

/// One expected finding; an absent field must be absent from the finding.
#[derive(Deserialize, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expect {
    category: String,
    error_code: Option<String>,
    layer: Option<String>,
    principal: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    encoded_message: Option<String>,
    kms_key: Option<String>,
    policy_arn: Option<String>,
    authorization_id: Option<String>,
    oidc_issuer: Option<String>,
    key_state: Option<String>,
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
    action_from: Option<String>,
}

pub(crate) fn source_from_name(name: &str) -> Option<Source> {
    Some(match name {
        "log" => Source::Log,
        "event" => Source::Event,
        "nodeClaim" => Source::NodeClaim,
        "nodeClass" => Source::NodeClass,
        "instance" => Source::Instance,
        _ => return None,
    })
}

fn category_from_name(name: &str) -> Option<Category> {
    Some(match name {
        "PassRoleDenied" => Category::PassRoleDenied,
        "ActionDenied" => Category::ActionDenied,
        "KmsKeyUnusable" => Category::KmsKeyUnusable,
        "CredentialsDenied" => Category::CredentialsDenied,
        _ => return None,
    })
}

fn layer_from_name(name: &str) -> Option<PolicyLayer> {
    use PolicyLayer::*;
    Some(match name {
        "NoIdentityPolicy" => NoIdentityPolicy,
        "IdentityExplicitDeny" => IdentityExplicitDeny,
        "ScpExplicitDeny" => ScpExplicitDeny,
        "NoScp" => NoScp,
        "NoBoundary" => NoBoundary,
        "BoundaryExplicitDeny" => BoundaryExplicitDeny,
        "NoSessionPolicy" => NoSessionPolicy,
        "SessionExplicitDeny" => SessionExplicitDeny,
        "ResourceExplicitDeny" => ResourceExplicitDeny,
        "NoResourcePolicy" => NoResourcePolicy,
        "RcpExplicitDeny" => RcpExplicitDeny,
        "NoRcp" => NoRcp,
        "VpcEndpointExplicitDeny" => VpcEndpointExplicitDeny,
        "NoVpcEndpointPolicy" => NoVpcEndpointPolicy,
        "NoTrustPolicy" => NoTrustPolicy,
        "TrustExplicitDeny" => TrustExplicitDeny,
        _ => return None,
    })
}

/// `iam:PassRole` → PassRoleDenied; taking on a role (`sts:AssumeRole*`, `sts:TagSession`,
/// Pod Identity's `eks-auth:AssumeRoleForPodIdentity`) → CredentialsDenied: Karpenter gets no
/// credentials; any other (or no) action → ActionDenied.
fn category_from_action(action: Option<&str>) -> Category {
    let action = action.unwrap_or("").to_ascii_lowercase();
    if action == "iam:passrole" {
        Category::PassRoleDenied
    } else if action.starts_with("sts:assumerole")
        || action == "sts:tagsession"
        || action == "eks-auth:assumeroleforpodidentity"
    {
        Category::CredentialsDenied
    } else {
        Category::ActionDenied
    }
}

/// A layer phrase as the layers table keys it: lower case, single spaces.
fn phrase_key(phrase: &str) -> String {
    phrase
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Keys only AWS's decoded authorization message has: a text holding one is read as it.
pub(crate) const DECODED_LITERALS: [&str; 2] = ["DecodedMessage", "explicitDeny"];

/// How Karpenter's JSON error records open (zap, every version: `{"level":"ERROR","time":"…`):
/// a record re-wrapped at a width may have every rule literal it holds cut in two by a line
/// end, and is still read (`record::span`). Not `{"level":"`, which opens every line and would
/// slow the prefilter on all of them.
const RECORD_OPENERS: [&str; 1] = ["ERROR\",\"time\":\""];

impl RuleSet {
    /// Parses, compiles and validates a rules file, then checks every rule against its
    /// examples.
    pub(crate) fn compile(json: &str) -> Result<RuleSet, RuleError> {
        let raw: RawFile =
            serde_json::from_str(json).map_err(|e| RuleError::File(e.to_string()))?;
        let mut layers = HashMap::new();
        for (phrase, name) in &raw.layers {
            let layer = layer_from_name(name)
                .ok_or_else(|| RuleError::File(format!("layer {phrase:?}: unknown {name:?}")))?;
            layers.insert(phrase_key(phrase), layer);
        }
        let mut literal_texts: Vec<String> = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        for (index, r) in raw.rules.iter().enumerate() {
            let rule = compile_rule(index, r, &mut literal_texts)?;
            if rules.iter().any(|other| other.id == rule.id) {
                return Err(rule_err(&r.id, "duplicate id"));
            }
            rules.push(rule);
        }
        if rules.is_empty() {
            return Err(RuleError::File("no rules".into()));
        }
        let literals = AhoCorasick::new(&literal_texts)
            .map_err(|e| RuleError::File(format!("literals: {e}")))?;
        // AWS's decoded authorization message pasted among log lines is read too
        // (`logs::candidate`): its keys are literals of the prefilter, no rule's; and so is
        // every Karpenter error record.
        let prefilter = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(
                literal_texts
                    .iter()
                    .map(String::as_str)
                    .chain(DECODED_LITERALS)
                    .chain(RECORD_OPENERS),
            )
            .map_err(|e| RuleError::File(format!("literals: {e}")))?;
        let mut trailers = Vec::new();
        for (name, pattern) in &raw.trailers {
            let trailer = match name.as_str() {
                "encoded" => Trailer::Encoded,
                "authz" => Trailer::AuthorizationId,
                _ => {
                    return Err(RuleError::File(format!(
                        "trailer {name:?}: only encoded, authz"
                    )));
                }
            };
            let regex =
                regex(pattern).map_err(|e| RuleError::File(format!("trailer {name:?}: {e}")))?;
            if regex.captures_len() != 2 {
                return Err(RuleError::File(format!(
                    "trailer {name:?}: needs exactly one group"
                )));
            }
            trailers.push((trailer, regex));
        }
        let operations =
            Operations::compile(&raw.services, &raw.wrappers).map_err(RuleError::File)?;
        let set = RuleSet {
            rules,
            literals,
            prefilter,
            layers,
            trailers,
            operations,
        };
        for w in &raw.wrappers {
            set.check_wrapper(w).map_err(|message| RuleError::Rule {
                rule: format!("wrapper {:?}", w.text),
                message,
            })?;
        }
        for (index, (rule, r)) in set.rules.iter().zip(&raw.rules).enumerate() {
            for (i, example) in r.examples.iter().enumerate() {
                set.check_example(index, example)
                    .map_err(|message| RuleError::Example {
                        rule: rule.id.clone(),
                        example: i + 1,
                        message,
                    })?;
            }
        }
        Ok(set)
    }

    /// The distinct literals of all rules: the prefilter for scanning raw input.
    pub(crate) fn prefilter(&self) -> &AhoCorasick {
        &self.prefilter
    }

    /// Whether `rule` is a fallback (used only when no other rule matched).
    pub(crate) fn is_fallback(&self, rule: usize) -> bool {
        self.rules.get(rule).is_some_and(|r| r.fallback)
    }

    pub(crate) fn id(&self, rule: usize) -> &str {
        &self.rules[rule].id
    }

    /// Every failure the rules recognise in `text` seen in `source`, at most `MAX_FINDINGS`.
    /// Rules run in file order; a match overlapping an earlier rule's match is dropped;
    /// fallback rules run only when no other rule matched; identical findings count once.
    pub(crate) fn recognise(&self, source: Source, text: &str, cut: bool) -> Vec<Finding> {
        let mut present = vec![false; self.literals.patterns_len()];
        let mut any = false;
        for m in self.literals.find_overlapping_iter(text) {
            present[m.pattern().as_usize()] = true;
            any = true;
        }
        let mut found = Vec::new();
        if !any {
            return found;
        }
        let cut_at = cut_point(source, text, cut);
        // Matched spans, sorted and disjoint; and the findings already reported.
        let mut claimed: Vec<(usize, usize)> = Vec::new();
        let mut seen = HashSet::new();
        for fallback in [false, true] {
            if fallback && !found.is_empty() {
                break;
            }
            for (index, rule) in self.rules.iter().enumerate() {
                if rule.fallback != fallback
                    || !rule.sources.contains(&source)
                    || !rule.literals.iter().any(|&l| present[l])
                {
                    continue;
                }
                for caps in rule.regex.captures_iter(text) {
                    if found.len() == MAX_FINDINGS {
                        return found;
                    }
                    let Some(m) = caps.get(0) else { continue };
                    if m.is_empty() || overlaps(&claimed, m.start(), m.end()) {
                        continue;
                    }
                    let at = claimed.partition_point(|&(s, _)| s < m.start());
                    // Where this failure's own text begins: after the previous failure's
                    // match, and after the `; ` that joins errors.
                    let from = claimed[..at].last().map_or(0, |&(_, e)| e);
                    let from = text[from..m.start()]
                        .rfind("; ")
                        .map_or(from, |i| from + i + 2);
                    claimed.insert(at, (m.start(), m.end()));
                    let mut finding = self.finding(index, rule, &caps, text, cut_at);
                    // Cut within this failure's own sentence: whatever AWS went on to name
                    // (the action first) is unknown, not the enclosing call's.
                    finding.sentence_cut = cut_at.1 && !text[m.end()..].contains([';', '\n']);
                    self.complete(
                        &mut finding,
                        &text[from..m.start()],
                        &text[..m.start()],
                        &text[m.end()..],
                    );
                    if seen.insert(finding.clone()) {
                        found.push(finding);
                    }
                }
            }
        }
        found
    }

    /// The finding of one match. `cut_at`: where a text cut short ends; a group running up to
    /// it may be cut mid-word (`iam:Pa`, `…:role/Karp`), so it stays unknown and its prefix is
    /// kept as partial.
    fn finding(
        &self,
        index: usize,
        rule: &Rule,
        caps: &Captures<'_>,
        text: &str,
        cut_at: (usize, bool),
    ) -> Finding {
        let continues = |name: &str| rule.continues_after.iter().any(|g| g == name);
        // A text's end not known to be a cut still cuts a value the sentence goes on after,
        // and an action it ends inside (`…perform: ec2:Run`).
        let unknown_at_end = |name: &str, m: &regex::Match<'_>| {
            rule.known_at_end.iter().any(|g| g == name) && self.operations.cut_inside(m.as_str())
        };
        let is_cut = |name: &str, m: &regex::Match<'_>| match cut_at {
            (at, true) => runs_into_cut(text, m, at),
            (at, false) => m.end() >= at && (continues(name) || unknown_at_end(name, m)),
        };
        // A value in inline code (`` `arn:…` ``, or a code span that opened earlier,
        // `` `User: … resource: arn:…` ``) without its closing backtick: a trailing backtick with
        // no partner in the value (a placeholder such as `` `role-name` `` has its pair).
        let unquoted = |m: regex::Match<'_>| {
            let v = m.as_str();
            match v.strip_suffix('`') {
                Some(inner)
                    if text[..m.start()].ends_with('`') || inner.matches('`').count() % 2 == 0 =>
                {
                    inner.to_string()
                }
                _ => v.to_string(),
            }
        };
        let group = |name: &str| caps.name(name).filter(|m| !is_cut(name, m)).map(unquoted);
        // As written, whole or not: codes and key states are words of a fixed set, and an
        // encoded message or authorization id cut short fails its lookup, naming nothing.
        let raw = |name: &str| caps.name(name).map(|m| m.as_str().to_string());
        let cut_group = |name: &str| {
            caps.name(name)
                .filter(|m| is_cut(name, m))
                .map(|m| m.as_str().to_string())
        };
        // A principal the user elided (`User: … is`, `…assumed-role/...`) is not a value: only
        // what comes before the elision is known, as a prefix.
        let (principal, elided) = match group("principal") {
            Some(p) => match elision(&p) {
                Some(at) => (None, Some(p[..at].to_string()).filter(|p| !p.is_empty())),
                None => (Some(p), None),
            },
            None => (None, None),
        };
        let partial = Partial {
            principal: cut_group("principal").or(elided),
            action: cut_group("action"),
            resource: cut_group("resource"),
            kms_key: cut_group("kms"),
        };
        let action = group("action").or_else(|| rule.set.action.clone());
        let resource = group("resource").or_else(|| rule.set.resource.clone());
        let layer = match caps.name("layer") {
            Some(m) => self.layers.get(&phrase_key(m.as_str())).copied(),
            None => rule.set.layer,
        };
        let category = self.category_of(index, action.as_deref());
        // A KMS action refused on a key: the resource is the key.
        let kms_key = group("kms").or_else(|| match (&action, &resource) {
            (Some(a), Some(r))
                if a.to_ascii_lowercase().starts_with("kms:") && r.contains(":kms:") =>
            {
                Some(r.clone())
            }
            _ => None,
        });
        Finding {
            rule: index,
            category,
            error_code: raw("code").or_else(|| rule.set.error_code.clone()),
            layer,
            principal,
            action,
            resource,
            encoded_message: raw("encoded"),
            kms_key,
            // Kept as written: diagnosis names a policy ARN with parts left out (`p-...`) as
            // such, and never uses it.
            policy_arn: raw("policy"),
            authorization_id: raw("authz"),
            oidc_issuer: group("issuer"),
            key_state: raw("keystate").as_deref().and_then(key_state_of),
            dry_run: rule.dry_run,
            action_from: None,
            call: None,
            partial,
            sentence_cut: false,
        }
    }

    /// Fills in what the match itself did not capture: the trailers AWS appends after the
    /// sentence (`after`, up to the next joined error or line), and the call (and the action,
    /// when AWS names none) from the text before it: this failure's own part (`own`), else all
    /// before it (`before`: joined fleet errors share Karpenter's `with fleet error(s),`).
    fn complete(&self, finding: &mut Finding, own: &str, before: &str, after: &str) {
        let after = &after[..after.find([';', '\n']).unwrap_or(after.len())];
        let after = &after[..super::text::floor(after, MAX_TRAILER)];
        for (trailer, regex) in &self.trailers {
            let slot = match trailer {
                Trailer::Encoded => &mut finding.encoded_message,
                Trailer::AuthorizationId => &mut finding.authorization_id,
            };
            if slot.is_none() {
                *slot = regex
                    .captures(after)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().to_string());
            }
        }
        finding.call = self
            .operations
            .infer(own)
            .or_else(|| self.operations.infer(before));
        if self.may_infer(finding)
            && let Some(inferred) = finding.call.clone()
        {
            self.adopt(finding, inferred);
        }
    }

    /// Whether `finding` lacks an action that may be inferred (its rule allows it; KMS
    /// failures concern a key, not an action).
    fn may_infer(&self, finding: &Finding) -> bool {
        // AWS named an action the text was cut inside: it is unknown, not the wrapper's call.
        finding.action.is_none()
            && finding.partial.action.is_none()
            && !finding.sentence_cut
            && self.rules[finding.rule].infer_action
            && finding.category != Category::KmsKeyUnusable
    }

    fn adopt(&self, finding: &mut Finding, inferred: super::actions::Inferred) {
        finding.category = self.category_of(finding.rule, Some(&inferred.action));
        finding.action = Some(inferred.action);
        finding.action_from = Some(inferred.from);
    }

    /// A rule's category for a finding whose action is `action`.
    fn category_of(&self, rule: usize, action: Option<&str>) -> Category {
        match self.rules[rule].category {
            CategoryRule::Fixed(c) => c,
            CategoryRule::FromAction => category_from_action(action),
        }
    }

    /// Takes the action of an `aws-operation-name` log field, for a finding with no action
    /// whose rule lets the action be inferred.
    pub(crate) fn infer_from_field(&self, finding: &mut Finding, operation: &str) {
        let Some(inferred) = self.operations.of_field(operation) else {
            return;
        };
        if finding.call.is_none() {
            finding.call = Some(inferred.clone());
        }
        if self.may_infer(finding) {
            self.adopt(finding, inferred);
        }
    }

    /// A wrapper's example yields a failure whose call is the wrapper's action (read from the
    /// wrapper, or from the SDK operation aws-sdk-go-v2 names after it), the wrapper being the
    /// last in the text before the failure (and whose action, when AWS names none, is the
    /// call's).
    fn check_wrapper(&self, w: &RawWrapper) -> Result<(), String> {
        let found = self.recognise(Source::Log, &w.example, false);
        let quoted = format!("\"{}\"", w.text);
        let last = self
            .operations
            .wrapper(&w.example)
            .is_some_and(|c| c.action == w.action && c.from.contains(&quoted));
        if last
            && found.iter().any(|f| {
                f.call.as_ref().is_some_and(|c| c.action == w.action)
                    && (f.action_from.is_none() || f.action.as_deref() == Some(w.action.as_str()))
            })
        {
            Ok(())
        } else {
            Err(format!(
                "its example must yield {} inferred from it, got {:?}",
                w.action,
                found
                    .iter()
                    .map(|f| (&f.action, &f.call))
                    .collect::<Vec<_>>()
            ))
        }
    }

    fn check_example(&self, index: usize, example: &RawExample) -> Result<(), String> {
        let rule = &self.rules[index];
        let source = match &example.source {
            None => rule.sources[0],
            Some(name) => {
                source_from_name(name).ok_or_else(|| format!("unknown source {name:?}"))?
            }
        };
        if !rule.sources.contains(&source) {
            return Err(format!(
                "source {source:?} is not one of the rule's sources"
            ));
        }
        let found = self.recognise(source, &example.text, false);
        let got: Vec<Expect> = found
            .iter()
            .map(|f| Expect {
                category: format!("{:?}", f.category),
                error_code: f.error_code.clone(),
                layer: f.layer.map(|l| format!("{l:?}")),
                principal: f.principal.clone(),
                action: f.action.clone(),
                resource: f.resource.clone(),
                encoded_message: f.encoded_message.clone(),
                kms_key: f.kms_key.clone(),
                policy_arn: f.policy_arn.clone(),
                authorization_id: f.authorization_id.clone(),
                oidc_issuer: f.oidc_issuer.clone(),
                key_state: f.key_state.clone(),
                dry_run: f.dry_run,
                action_from: f.action_from.as_ref().map(|_| "inferred".to_string()),
            })
            .collect();
        if let Some(other) = found.iter().find(|f| f.rule != index) {
            return Err(format!(
                "recognised by rule {} instead",
                self.rules[other.rule].id
            ));
        }
        if got != example.expect {
            return Err(format!("expected {:?}, got {got:?}", example.expect));
        }
        Ok(())
    }
}

/// Where a value holds a user's elision (`...`, `…`), if it does.
fn elision(value: &str) -> Option<usize> {
    [value.find("..."), value.find('…')]
        .into_iter()
        .flatten()
        .min()
}

/// A key state as KMS's error messages word it (`disabled`, `pending deletion`, `pending
/// import`, `unavailable`: the KMS developer guide's key-state table), as DescribeKey spells it.
fn key_state_of(words: &str) -> Option<String> {
    let state = match words.to_ascii_lowercase().as_str() {
        "disabled" => "Disabled",
        "pending deletion" => "PendingDeletion",
        "pending import" => "PendingImport",
        "unavailable" => "Unavailable",
        _ => return None,
    };
    Some(state.to_string())
}

/// Whether `start..end` overlaps one of the sorted, disjoint `claimed` spans: only the last
/// span starting before `end` can, as it ends last among those.
fn overlaps(claimed: &[(usize, usize)], start: usize, end: usize) -> bool {
    let before = claimed.partition_point(|&(s, _)| s < end);
    before > 0 && claimed[before - 1].1 > start
}

fn rule_err(id: &str, message: impl Into<String>) -> RuleError {
    RuleError::Rule {
        rule: id.to_string(),
        message: message.into(),
    }
}

/// The most each rule regex's lazy DFA caches (the regex crate's default is 2 MiB each): the
/// caches only grow, with the variety of the text read, so this bounds what they hold.
const DFA_CACHE: usize = 1 << 18;

/// A rule's regex, its caches bounded (`DFA_CACHE`).
pub(crate) fn regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern).dfa_size_limit(DFA_CACHE).build()
}

fn compile_rule(
    index: usize,
    r: &RawRule,
    literal_texts: &mut Vec<String>,
) -> Result<Rule, RuleError> {
    let valid_id = r.id.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && r.id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_id {
        return Err(rule_err(
            &format!("#{} {:?}", index + 1, r.id),
            "id must be lower-case letters, digits and dashes",
        ));
    }
    let id = r.id.as_str();
    if r.description.trim().is_empty() {
        return Err(rule_err(id, "needs a description"));
    }
    if r.sources.is_empty() {
        return Err(rule_err(id, "needs at least one source"));
    }
    let mut sources = Vec::new();
    for name in &r.sources {
        let source = source_from_name(name)
            .ok_or_else(|| rule_err(id, format!("unknown source {name:?}")))?;
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    if r.literals.is_empty() {
        return Err(rule_err(id, "needs at least one literal"));
    }
    let mut literals = Vec::new();
    for literal in &r.literals {
        if literal.is_empty() || literal.contains(['\n', '\r']) {
            return Err(rule_err(
                id,
                format!("literal {literal:?} must be non-empty and on one line"),
            ));
        }
        let at = match literal_texts.iter().position(|l| l == literal) {
            Some(at) => at,
            None => {
                literal_texts.push(literal.clone());
                literal_texts.len() - 1
            }
        };
        literals.push(at);
    }
    let regex = regex(&r.pattern).map_err(|e| rule_err(id, format!("pattern: {e}")))?;
    if let Some(name) = regex
        .capture_names()
        .flatten()
        .find(|n| !GROUPS.contains(n))
    {
        return Err(rule_err(
            id,
            format!("unknown group {name:?} (known: {})", GROUPS.join(", ")),
        ));
    }
    for (field, groups) in [
        ("continuesAfter", &r.continues_after),
        ("knownAtEnd", &r.known_at_end),
    ] {
        if let Some(g) = groups
            .iter()
            .find(|g| !regex.capture_names().flatten().any(|n| n == g.as_str()))
        {
            return Err(rule_err(
                id,
                format!("{field} names {g:?}, no group of the pattern"),
            ));
        }
    }
    let continues_after = r.continues_after.clone();
    let category = match r.category.as_str() {
        "fromAction" => CategoryRule::FromAction,
        name => CategoryRule::Fixed(
            category_from_name(name)
                .ok_or_else(|| rule_err(id, format!("unknown category {name:?}")))?,
        ),
    };
    let mut set = Constants::default();
    for (key, value) in &r.set {
        match key.as_str() {
            "errorCode" => set.error_code = Some(value.clone()),
            "action" => set.action = Some(value.clone()),
            "resource" => set.resource = Some(value.clone()),
            "layer" => {
                set.layer = Some(
                    layer_from_name(value)
                        .ok_or_else(|| rule_err(id, format!("unknown layer {value:?}")))?,
                )
            }
            _ => return Err(rule_err(id, format!("cannot set {key:?}"))),
        }
    }
    if r.examples.is_empty() {
        return Err(rule_err(id, "needs at least one example"));
    }
    for (i, example) in r.examples.iter().enumerate() {
        if !r.literals.iter().any(|l| example.text.contains(l.as_str())) {
            return Err(RuleError::Example {
                rule: id.to_string(),
                example: i + 1,
                message: "holds none of the rule's literals, so the prefilter would skip it".into(),
            });
        }
    }
    Ok(Rule {
        id: id.to_string(),
        sources,
        literals,
        regex,
        category,
        fallback: r.fallback,
        infer_action: r.infer_action,
        dry_run: r.dry_run,
        set,
        continues_after,
        known_at_end: r.known_at_end.clone(),
    })
}

/// Where a text cut short ends, and whether it is known to be cut there: before Karpenter's
/// `...` (v1.0–v1.14 after 300 bytes of a NodeClaim message; v1.15 after 1021 bytes of
/// conditions and Event notes) or an ellipsis `…` at its very end; at its end when the reader
/// knows it ends early (`cut`: a JSON string cut short) or when it is a NodeClaim message of
/// Karpenter v1.0's 300 characters with the marker lost. Else the text's end, not known to be a
/// cut: a value the sentence always goes on after (`Rule::continues_after`) running right up
/// to it is cut all the same.
fn cut_point(source: Source, text: &str, cut: bool) -> (usize, bool) {
    let trimmed = text.trim_end();
    let bare = trimmed.trim_end_matches(['.', '…']);
    if trimmed.ends_with("...") || trimmed.ends_with('…') {
        (bare.len(), true)
    } else {
        let known =
            cut || (source == Source::NodeClaim && text.chars().count() >= NODECLAIM_CUT - 5);
        (trimmed.len(), known)
    }
}

/// Whether the group `m` of a match in `text` runs into the cut at `cut_at`: only punctuation
/// a value may hold lies between its end and the cut, so the value may go on.
fn runs_into_cut(text: &str, m: &regex::Match<'_>, cut_at: usize) -> bool {
    m.end() >= cut_at
        || text
            .get(m.end()..cut_at)
            .is_some_and(|gap| gap.chars().all(|c| ".,:;-_/'\")]}".contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../rules/signals.json");

    fn minimal(rule: serde_json::Value) -> String {
        serde_json::json!({"layers": {"because no identity-based policy allows": "NoIdentityPolicy"},
                           "rules": [rule]})
        .to_string()
    }

    fn good_rule() -> serde_json::Value {
        serde_json::json!({
            "id": "denied",
            "description": "a denial",
            "sources": ["log"],
            "literals": ["not authorized"],
            "pattern": "User: (?P<principal>\\S+) is not authorized to perform: (?P<action>\\S+)",
            "category": "fromAction",
            "examples": [{"text": "User: arn:aws:iam::1:user/a is not authorized to perform: iam:PassRole",
                          "expect": [{"category": "PassRoleDenied", "principal": "arn:aws:iam::1:user/a",
                                      "action": "iam:PassRole"}]}]
        })
    }

    #[test]
    fn shipped_rules_compile_and_pass_their_examples() {
        let set = RuleSet::compile(SHIPPED).unwrap_or_else(|e| panic!("{e}"));
        assert!(set.rules.len() >= 8);
    }

    #[test]
    fn a_minimal_rule_compiles() {
        RuleSet::compile(&minimal(good_rule())).unwrap();
    }

    fn broken(edit: impl FnOnce(&mut serde_json::Value)) -> RuleError {
        let mut rule = good_rule();
        edit(&mut rule);
        RuleSet::compile(&minimal(rule)).unwrap_err()
    }

    #[test]
    fn a_bad_rule_fails_naming_it() {
        let e = broken(|r| r["pattern"] = "(unclosed".into());
        assert!(
            matches!(&e, RuleError::Rule { rule, message } if rule == "denied" && message.starts_with("pattern")),
            "{e}"
        );
        let e = broken(|r| r["pattern"] = "(?P<who>x)".into());
        assert!(e.to_string().contains("unknown group \"who\""), "{e}");
        let e = broken(|r| r["sources"] = serde_json::json!(["syslog"]));
        assert!(e.to_string().contains("unknown source"), "{e}");
        let e = broken(|r| r["category"] = "Capacity".into());
        assert!(e.to_string().contains("unknown category"), "{e}");
        let e = broken(|r| r["literals"] = serde_json::json!([]));
        assert!(e.to_string().contains("literal"), "{e}");
        let e = broken(|r| r["literals"] = serde_json::json!(["a\nb"]));
        assert!(e.to_string().contains("one line"), "{e}");
        let e = broken(|r| r["examples"] = serde_json::json!([]));
        assert!(e.to_string().contains("example"), "{e}");
        let e = broken(|r| r["id"] = "Bad Id".into());
        assert!(e.to_string().contains("lower-case"), "{e}");
        let e = broken(|r| r["set"] = serde_json::json!({"principal": "x"}));
        assert!(e.to_string().contains("cannot set"), "{e}");
        let e = broken(|r| r["typo"] = true.into());
        assert!(matches!(e, RuleError::File(_)), "{e}");
    }

    #[test]
    fn a_wrong_example_fails_naming_rule_and_example() {
        let e = broken(|r| r["examples"][0]["expect"][0]["action"] = "iam:GetRole".into());
        assert!(
            matches!(&e, RuleError::Example { rule, example: 1, .. } if rule == "denied"),
            "{e}"
        );
        // An example the prefilter would never let through.
        let e = broken(|r| r["examples"][0]["text"] = "User: a is refused".into());
        assert!(e.to_string().contains("none of the rule's literals"), "{e}");
        // Expecting nothing where the rule finds something.
        let e = broken(|r| r["examples"][0]["expect"] = serde_json::json!([]));
        assert!(matches!(e, RuleError::Example { .. }), "{e}");
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let text =
            serde_json::json!({"layers": {}, "rules": [good_rule(), good_rule()]}).to_string();
        let e = RuleSet::compile(&text).unwrap_err();
        assert!(e.to_string().contains("duplicate"), "{e}");
    }

    #[test]
    fn earlier_rules_claim_their_span_and_fallbacks_wait() {
        let set = RuleSet::compile(SHIPPED).unwrap();
        // The detailed sentence and the NodeClass summary in one text: only the detail counts.
        let text = "Controller isn't authorized to call ec2:CreateFleet: UnauthorizedOperation: \
                    You are not authorized to perform this operation. User: arn:aws:sts::1:assumed-role/K/s \
                    is not authorized to perform: ec2:CreateFleet on resource: arn:aws:ec2:us-east-1:1:fleet/* \
                    because no identity-based policy allows the ec2:CreateFleet action.";
        let found = set.recognise(Source::NodeClass, text, false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(set.id(found[0].rule), "aws-not-authorized");
        assert_eq!(
            found[0].principal.as_deref(),
            Some("arn:aws:sts::1:assumed-role/K/s")
        );
        // Alone, the summary is recognised.
        let found = set.recognise(
            Source::NodeClass,
            "Controller isn't authorized to call ec2:CreateFleet",
            false,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].action.as_deref(), Some("ec2:CreateFleet"));
    }

    #[test]
    fn overlap_against_sorted_spans() {
        let claimed = [(10, 20), (30, 40)];
        for (start, end, expected) in [
            (0, 10, false),
            (0, 11, true),
            (19, 25, true),
            (20, 30, false),
            (25, 35, true),
            (40, 50, false),
            (5, 45, true),
            (15, 16, true),
        ] {
            assert_eq!(overlaps(&claimed, start, end), expected, "{start}..{end}");
        }
        assert!(!overlaps(&[], 0, 5));
    }

    #[test]
    fn a_value_karpenters_cut_ends_inside_of_is_partial_never_a_value() {
        let set = RuleSet::compile(SHIPPED).unwrap();
        let full = "creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws-cn:sts::111122223333:assumed-role/KarpenterController-demo/1717236000123456789 is not authorized to perform: iam:PassRole on resource: arn:aws-cn:iam::111122223333:role/Karpenter-demo-20240604092512345600000001 because no identity-based policy allows the iam:PassRole action.";
        // Karpenter v1.0–v1.14: the first 300 bytes, then `...`, from any source.
        let cut = format!("{}...", &full[..300]);
        for source in [Source::NodeClaim, Source::Event, Source::Log] {
            let found = set.recognise(source, &cut, false);
            assert_eq!(found[0].resource, None, "{source:?}");
            assert_eq!(
                found[0].partial.resource.as_deref(),
                Some("arn:aws-cn:iam::111122223333:role/Karp")
            );
            assert_eq!(found[0].action.as_deref(), Some("iam:PassRole"));
        }
        // Cut inside the action: unknown, not the wrapper's ec2:CreateFleet.
        let at = full.find("iam:PassRole on").unwrap() + 6;
        let found = set.recognise(Source::Event, &format!("{}...", &full[..at]), false);
        assert_eq!(found[0].action, None);
        assert_eq!(found[0].partial.action.as_deref(), Some("iam:Pa"));
        assert!(
            found[0].principal.is_some(),
            "the principal before the cut is kept"
        );
        // With no marker and nothing known of a cut, a text is read as whole (AWS's older
        // sentences do end in the action or the resource); a whole sentence keeps every value.
        let found = set.recognise(Source::Log, full, false);
        assert!(found[0].partial.is_empty() && found[0].resource.is_some());
        // A JSON string known to end early: a value followed by punctuation only is cut.
        let found = set.recognise(Source::Log, &format!("{}.", &full[..300]), true);
        assert_eq!(found[0].resource, None);
    }

    #[test]
    fn a_nodeclaim_message_cut_at_300_characters_invents_no_action() {
        let set = RuleSet::compile(SHIPPED).unwrap();
        let full = "launching nodeclaim, creating instance, with fleet error(s), UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/KarpenterController-demo/1717236000123456789 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo because no identity-based policy allows the iam:PassRole action.";
        let cut: String = full.chars().take(NODECLAIM_CUT).collect();
        assert!(cut.ends_with("arn:aws:iam::1111222"), "{cut}");
        let found = set.recognise(Source::NodeClaim, &cut, false);
        assert_eq!(found[0].action.as_deref(), Some("iam:PassRole"));
        assert_eq!(found[0].resource, None, "a cut resource is not a resource");
        let cut: String = full
            .chars()
            .take(full.find("iam:PassRole on").unwrap() + 6)
            .collect();
        let padded = format!("{}{cut}", " ".repeat(NODECLAIM_CUT - cut.len()));
        let found = set.recognise(Source::NodeClaim, &padded, false);
        assert_ne!(found[0].action.as_deref(), Some("iam:Pa"));
        assert_eq!(
            found[0].principal.as_deref(),
            Some(
                "arn:aws:sts::111122223333:assumed-role/KarpenterController-demo/1717236000123456789"
            )
        );
    }

    #[test]
    fn rules_apply_only_to_their_sources() {
        let set = RuleSet::compile(SHIPPED).unwrap();
        let text = "Client.InternalError: Client error on launch";
        assert_eq!(set.recognise(Source::Instance, text, false).len(), 1);
        assert!(set.recognise(Source::NodeClaim, text, false).is_empty());
    }

    #[test]
    fn irrelevant_text_finds_nothing() {
        let set = RuleSet::compile(SHIPPED).unwrap();
        for text in [
            "",
            "launched nodeclaim",
            "not authorized",
            "User: x is not authorized to perform:",
        ] {
            assert!(
                set.recognise(Source::Log, text, false).is_empty(),
                "{text:?}"
            );
        }
    }
}
