//! Where one input's findings go: turns rule findings plus their context into `Signal`s, merges
//! objects into `Observations`, and caps the warnings a single file can produce.

use super::rules::{MAX_FINDINGS, RuleSet};
use super::text::cut;
use super::{
    InstanceInfo, NodeClaimInfo, NodeClassInfo, NodePoolInfo, Observations, Origin, Signal, Source,
    Warning, push_new,
};
use std::collections::HashMap;

/// At most this many warnings per file; the rest are counted in one summary warning.
pub(crate) const MAX_WARNINGS: usize = 100;
/// `Signal.message` is cut to this many bytes.
pub(crate) const MAX_MESSAGE: usize = 4096;
/// At most this many signals are kept across all inputs; failures beyond are counted in a
/// warning, not kept, so memory stays bounded whatever comes in (an hour of a failing
/// cluster's log holds a few thousand).
pub const MAX_SIGNALS: usize = 20_000;

/// What surrounds an error text: where it was seen and the objects it concerns.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub source: Source,
    pub line: usize,
    pub time: Option<String>,
    pub node_claim: Option<String>,
    pub node_pool: Option<String>,
    pub node_class: Option<String>,
    pub instance_id: Option<String>,
    /// An error code the input states beside the text (`aws-error-code`), used when the text's
    /// own match names none.
    pub error_code: Option<String>,
    /// The SDK operation the input states beside the text (`aws-operation-name`), for the
    /// action when neither the text nor its wrappers name one.
    pub operation: Option<String>,
    /// The input says the text reports a dry run (EC2NodeClass validation).
    pub dry_run: bool,
    /// The text is known to end early (a JSON string cut short): a value running up to its
    /// end is partial.
    pub cut: bool,
    /// Who wrote the text, when not Karpenter (`Signal::author`).
    pub author: Option<String>,
}

impl Context {
    pub(crate) fn new(source: Source, line: usize) -> Context {
        Context {
            source,
            line,
            time: None,
            node_claim: None,
            node_pool: None,
            node_class: None,
            instance_id: None,
            error_code: None,
            operation: None,
            dry_run: false,
            cut: false,
            author: None,
        }
    }
}

/// Collects what one input yields.
pub(crate) struct Sink<'a> {
    file: &'a str,
    rules: &'a RuleSet,
    out: &'a mut Observations,
    shown: usize,
    suppressed: usize,
    first_suppressed_line: usize,
    /// Where each NodeClaim is in `out.node_claims`: a cluster has thousands.
    claims: HashMap<String, usize>,
    /// Failures recognised past `MAX_SIGNALS`, and the line of the first.
    beyond: usize,
    first_beyond_line: usize,
    /// Pending pods and nominations past `pending::MAX_PODS`.
    beyond_pods: usize,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(file: &'a str, rules: &'a RuleSet, out: &'a mut Observations) -> Sink<'a> {
        let claims = out
            .node_claims
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Sink {
            file,
            rules,
            out,
            shown: 0,
            suppressed: 0,
            first_suppressed_line: 0,
            claims,
            beyond: 0,
            first_beyond_line: 0,
            beyond_pods: 0,
        }
    }

    /// The input's name.
    pub(crate) fn file(&self) -> &'a str {
        self.file
    }

    pub(crate) fn rules(&self) -> &'a RuleSet {
        self.rules
    }

    fn origin(&self, line: usize) -> Origin {
        Origin {
            file: self.file.to_string(),
            line,
        }
    }

    /// Records that something at `line` was skipped, and why.
    pub(crate) fn warn(&mut self, line: usize, message: impl Into<String>) {
        if self.shown < MAX_WARNINGS {
            self.shown += 1;
            let origin = self.origin(line);
            self.out.warnings.push(Warning {
                origin,
                message: message.into(),
            });
        } else {
            if self.suppressed == 0 {
                self.first_suppressed_line = line;
            }
            self.suppressed += 1;
        }
    }

    /// Recognises `text` in `context` and records a signal per finding; returns how many.
    pub(crate) fn recognise(&mut self, context: &Context, text: &str) -> usize {
        let text = super::text::unescape_controls(text);
        let mut findings = self.rules.recognise(context.source, &text, context.cut);
        if let Some(op) = &context.operation {
            for f in &mut findings {
                self.rules.infer_from_field(f, op);
            }
        }
        for f in &findings {
            if self.out.signals.len() >= MAX_SIGNALS {
                if self.beyond == 0 {
                    self.first_beyond_line = context.line;
                }
                self.beyond += 1;
                continue;
            }
            let signal = Signal {
                source: context.source,
                origin: self.origin(context.line),
                rule: self.rules.id(f.rule).to_string(),
                category: f.category,
                time: context.time.clone(),
                error_code: f.error_code.clone().or_else(|| context.error_code.clone()),
                layer: f.layer,
                principal: named(&f.principal),
                action: named(&f.action),
                resource: named(&f.resource),
                encoded_message: f.encoded_message.clone(),
                node_claim: context.node_claim.clone(),
                node_pool: context.node_pool.clone(),
                node_class: context.node_class.clone(),
                instance_id: context.instance_id.clone(),
                kms_key: named(&f.kms_key),
                key_state: f.key_state.clone(),
                partial: f.partial.clone(),
                author: context.author.clone(),
                dry_run: f.dry_run || context.dry_run,
                policy_arn: named(&f.policy_arn),
                authorization_id: f.authorization_id.clone(),
                oidc_issuer: named(&f.oidc_issuer),
                action_from: f.action_from.clone(),
                call: f.call.as_ref().map(|c| c.action.clone()),
                message: cut(text.trim(), MAX_MESSAGE),
            };
            if [
                &f.principal,
                &f.action,
                &f.resource,
                &f.kms_key,
                &f.policy_arn,
                &f.oidc_issuer,
            ]
            .into_iter()
            .any(|v| v.is_some() && named(v).is_none())
            {
                self.warn(
                    context.line,
                    "a value of this failure holds a control character, which no AWS name does: it is not read as a name",
                );
            }
            self.out.signals.push(signal);
        }
        if findings.len() == MAX_FINDINGS {
            self.warn(
                context.line,
                format!("only the first {MAX_FINDINGS} failures of this text were read"),
            );
        }
        findings.len()
    }

    /// Adds a NodeClaim, or fills in what an earlier sighting of the same name left unknown.
    pub(crate) fn node_claim(&mut self, info: NodeClaimInfo) {
        match self.claims.get(&info.name) {
            Some(&i) => {
                let known = &mut self.out.node_claims[i];
                fill(&mut known.node_pool, info.node_pool);
                fill(&mut known.node_class, info.node_class);
                fill(&mut known.instance_id, info.instance_id);
                fill(&mut known.image_id, info.image_id);
                fill(&mut known.capacity_type, info.capacity_type);
                known.lost |= info.lost;
            }
            None => {
                self.claims
                    .insert(info.name.clone(), self.out.node_claims.len());
                self.out.node_claims.push(info);
            }
        }
    }

    /// Adds an EC2NodeClass, or merges it into an earlier sighting of the same name.
    pub(crate) fn node_class(&mut self, info: NodeClassInfo) {
        match self
            .out
            .node_classes
            .iter_mut()
            .find(|c| c.name == info.name)
        {
            Some(known) => {
                fill(&mut known.role, info.role);
                fill(&mut known.instance_profile, info.instance_profile);
                fill(&mut known.http_tokens, info.http_tokens);
                extend_unique(&mut known.kms_key_ids, info.kms_key_ids);
                extend_unique(&mut known.ami_ids, info.ami_ids);
                known.default_ebs_key = known.default_ebs_key.max(info.default_ebs_key);
                extend_unique(&mut known.ami_aliases, info.ami_aliases);
                known.capacity_reservations |= info.capacity_reservations;
            }
            None => self.out.node_classes.push(info),
        }
    }

    /// Adds a NodePool, or merges it into an earlier sighting of the same name.
    pub(crate) fn node_pool(&mut self, info: NodePoolInfo) {
        match self.out.node_pools.iter_mut().find(|p| p.name == info.name) {
            Some(known) => {
                fill(&mut known.node_class, info.node_class);
                known.registration_unhealthy |= info.registration_unhealthy;
                extend_unique(&mut known.capacity_types, info.capacity_types);
                known.capacity_types.sort();
            }
            None => self.out.node_pools.push(info),
        }
    }

    /// Adds an instance, or merges it into an earlier sighting of the same id.
    pub(crate) fn instance(&mut self, info: InstanceInfo) {
        match self
            .out
            .instances
            .iter_mut()
            .find(|i| i.instance_id == info.instance_id)
        {
            Some(known) => {
                fill(&mut known.image_id, info.image_id);
                fill(&mut known.state, info.state);
                fill(&mut known.state_reason_code, info.state_reason_code);
                fill(&mut known.state_reason_message, info.state_reason_message);
                fill(&mut known.node_claim, info.node_claim);
                fill(&mut known.node_pool, info.node_pool);
                fill(&mut known.node_class, info.node_class);
                fill(&mut known.region, info.region);
                fill(&mut known.launch_time, info.launch_time);
            }
            None => self.out.instances.push(info),
        }
    }

    pub(crate) fn controller_role(&mut self, arn: &str) {
        push_new(&mut self.out.controller_roles, arn.to_string());
    }

    pub(crate) fn account(&mut self, account: super::AccountInfo) {
        push_new(&mut self.out.accounts, account);
    }

    pub(crate) fn oidc_issuer(&mut self, issuer: &str) {
        self.out.add_oidc_issuer(issuer);
    }

    pub(crate) fn oidc_providers(&mut self, arns: Vec<String>) {
        extend_unique(self.out.oidc_providers.get_or_insert_with(Vec::new), arns);
    }

    /// A Pod Identity association; a described one (naming its role) replaces the same one
    /// listed.
    pub(crate) fn pod_identity(&mut self, info: super::PodIdentityInfo) {
        self.out.add_pod_identity(info);
    }

    pub(crate) fn unannotated_account(&mut self, account: String) {
        push_new(&mut self.out.unannotated_accounts, account);
    }

    pub(crate) fn org_policy(&mut self, policy: super::OrgPolicyInfo) {
        if !self.out.org_policies.iter().any(|p| p.arn == policy.arn) {
            self.out.org_policies.push(policy);
        }
    }

    pub(crate) fn role_trust(&mut self, trust: super::RoleTrust) {
        if !self.out.role_trusts.iter().any(|t| t.arn == trust.arn) {
            self.out.role_trusts.push(trust);
        }
    }

    pub(crate) fn authorization(
        &mut self,
        details: crate::facts::authorization::AuthorizationDetails,
    ) {
        push_new(&mut self.out.authorizations, details);
    }

    /// AWS's decoded authorization message (`aws sts decode-authorization-message`): kept as
    /// AWS's evaluation of the request, and, where it records a refusal and names its action,
    /// a failure in its own right (AWS wrote it: `author` stays `None`, as for a CloudTrail
    /// record). A record cut before its action is no failure: only a warning says what it held.
    pub(crate) fn decoded(&mut self, line: usize, decoded: crate::facts::decoded::Decoded) {
        let action = decoded.qualified_action();
        if decoded.allowed == Some(true) {
            self.warn(
                line,
                "decoded authorization message: AWS allowed this request, so it records no failure",
            );
        } else if action.is_none() {
            self.warn(
                line,
                format!(
                    "decoded authorization message without a whole action (cut before its request context, or AWS's action without a service the resource names): {}",
                    decoded.line()
                ),
            );
        } else if self.out.signals.len() >= MAX_SIGNALS {
            if self.beyond == 0 {
                self.first_beyond_line = line;
            }
            self.beyond += 1;
        } else {
            let pass_role = action
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("iam:PassRole"));
            let category = if pass_role {
                super::Category::PassRoleDenied
            } else {
                super::Category::ActionDenied
            };
            let or_cut = |v: &Option<String>, p: &Option<String>| {
                v.clone()
                    .or_else(|| p.as_ref().map(|p| format!("{p}…")))
                    .unwrap_or_else(|| "?".into())
            };
            let message = format!(
                "AWS's decoded authorization message: {} of {} on {} to {}",
                decoded.verdict(),
                action.as_deref().unwrap_or("?"),
                or_cut(&decoded.resource, &decoded.partial.resource),
                or_cut(&decoded.principal, &decoded.partial.principal),
            );
            let mut signal = Signal::new(
                Source::Log,
                self.origin(line),
                super::DECODED_RULE,
                category,
                &cut(&message, MAX_MESSAGE),
            );
            signal.principal = decoded.principal.clone();
            signal.action = action;
            signal.resource = decoded.resource.clone();
            signal.partial = decoded.partial.clone();
            self.out.signals.push(signal);
        }
        push_new(&mut self.out.decoded, decoded);
    }

    pub(crate) fn cluster_name(&mut self, name: &str) {
        push_new(&mut self.out.cluster_names, name.to_string());
    }

    pub(crate) fn karpenter_pod(&mut self, pod: super::PodInfo) {
        push_new(&mut self.out.karpenter_pods, pod);
    }

    /// A pod waiting for a node: from now on the input's pending pods are known. At most
    /// `MAX_PODS` (duplicates are told apart where they are read, `pending::waiting_on`).
    pub(crate) fn pending_pod(&mut self, pod: super::PodRef) {
        let pods = self.out.pending_pods.get_or_insert_default();
        if pods.len() < super::pending::MAX_PODS {
            pods.push(pod);
        } else {
            self.beyond_pods += 1;
        }
    }

    /// A nomination of a pod for a NodeClaim; at most `MAX_PODS`.
    pub(crate) fn nomination(&mut self, nomination: super::Nomination) {
        if self.out.nominations.len() < super::pending::MAX_PODS {
            self.out.nominations.push(nomination);
        } else {
            self.beyond_pods += 1;
        }
    }

    /// Ends the input: reports how many warnings were held back.
    pub(crate) fn finish(self) {
        let summaries = [
            (
                self.beyond,
                self.first_beyond_line,
                format!(
                    "{} more failures from here on were counted, not read: at most {MAX_SIGNALS} are kept across all inputs",
                    self.beyond
                ),
            ),
            (
                self.beyond_pods,
                0,
                format!(
                    "{} more pending pods and nominations were counted, not read: at most {} of each are kept",
                    self.beyond_pods,
                    super::pending::MAX_PODS
                ),
            ),
            (
                self.suppressed,
                self.first_suppressed_line,
                format!(
                    "{} more warnings not shown (at most {MAX_WARNINGS} per input)",
                    self.suppressed
                ),
            ),
        ];
        for (count, line, message) in summaries {
            if count > 0 {
                let origin = self.origin(line);
                self.out.warnings.push(Warning { origin, message });
            }
        }
    }
}

fn fill(known: &mut Option<String>, new: Option<String>) {
    if known.is_none() {
        *known = new;
    }
}

fn extend_unique(known: &mut Vec<String>, new: Vec<String>) {
    for item in new {
        push_new(known, item);
    }
}

/// A name the text gave (an ARN, an action): `None` where it holds a control character, which
/// no AWS name does, so that a crafted text never puts one into a Diagnosis's spec or a
/// command (escaping it there would change the name the re-check looks up).
fn named(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RuleSet {
        RuleSet::compile(include_str!("../../rules/signals.json")).unwrap()
    }

    #[test]
    fn warnings_are_capped_with_one_summary() {
        let rules = rules();
        let mut out = Observations::default();
        let mut sink = Sink::new("f.log", &rules, &mut out);
        for line in 1..=MAX_WARNINGS + 50 {
            sink.warn(line, "bad");
        }
        sink.finish();
        assert_eq!(out.warnings.len(), MAX_WARNINGS + 1);
        let last = out.warnings.last().unwrap();
        assert_eq!(last.origin.line, MAX_WARNINGS + 1);
        assert!(
            last.message.starts_with("50 more warnings"),
            "{}",
            last.message
        );
    }

    /// A crafted text with terminal escapes inside its ARNs: the failure is read, the names
    /// are not (none reaches a spec or a command), and a warning says why.
    #[test]
    fn a_name_with_a_control_character_is_no_name() {
        let rules = rules();
        let mut out = Observations::default();
        let mut sink = Sink::new("f.log", &rules, &mut out);
        let text = "UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/Karp\u{1b}]0;PWN\u{7}enter/1 is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/Node\u{1b}[31mRole";
        assert_eq!(sink.recognise(&Context::new(Source::Log, 1), text), 1);
        sink.finish();
        let s = &out.signals[0];
        assert_eq!((&s.principal, &s.resource), (&None, &None));
        assert_eq!(s.action.as_deref(), Some("iam:PassRole"));
        assert!(out.warnings[0].message.contains("control character"));
        // The same text without them names both.
        let clean = text.replace(['\u{1b}', '\u{7}'], "");
        let mut out = Observations::default();
        let mut sink = Sink::new("f.log", &rules, &mut out);
        sink.recognise(&Context::new(Source::Log, 1), &clean);
        sink.finish();
        assert!(out.signals[0].principal.is_some() && out.signals[0].resource.is_some());
        assert!(out.warnings.is_empty());
    }

    #[test]
    fn signals_carry_context_and_a_capped_message() {
        let rules = rules();
        let mut out = Observations::default();
        let mut sink = Sink::new("f.log", &rules, &mut out);
        let mut context = Context::new(Source::Log, 7);
        context.node_claim = Some("default-abc".into());
        context.error_code = Some("FromField".into());
        let tail = "é".repeat(3000);
        let text = format!(
            "User is not authorized to perform this operation because no identity-based policy allows it {tail}"
        );
        assert_eq!(sink.recognise(&context, &text), 1);
        let s = &out.signals[0];
        assert_eq!(
            s.origin,
            Origin {
                file: "f.log".into(),
                line: 7
            }
        );
        assert_eq!(s.node_claim.as_deref(), Some("default-abc"));
        assert_eq!(s.error_code.as_deref(), Some("FromField"));
        assert!(s.message.len() <= MAX_MESSAGE && s.message.len() > MAX_MESSAGE - 2);
        assert_eq!(s.rule, "nodeclaim-unauthorized");
    }

    #[test]
    fn findings_per_text_are_capped_with_a_warning() {
        let rules = rules();
        let mut out = Observations::default();
        let mut sink = Sink::new("f.log", &rules, &mut out);
        let text: String = (0..MAX_FINDINGS + 5)
            .map(|i| format!("User: arn:aws:sts::1:assumed-role/K/s is not authorized to perform: iam:PassRole on resource: arn:aws:iam::1:role/N{i}; "))
            .collect();
        assert_eq!(
            sink.recognise(&Context::new(Source::Log, 3), &text),
            MAX_FINDINGS
        );
        assert_eq!(out.signals.len(), MAX_FINDINGS);
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(out.warnings[0].origin.line, 3);
        // Distinct resources: the cap, not the deduplication, stopped the reading.
        assert_eq!(
            out.signals[99].resource.as_deref(),
            Some("arn:aws:iam::1:role/N99")
        );
    }

    #[test]
    fn objects_seen_twice_are_merged() {
        let rules = rules();
        let mut out = Observations::default();
        let mut sink = Sink::new("f", &rules, &mut out);
        let claim = |pool: Option<&str>, instance: Option<&str>, lost| NodeClaimInfo {
            name: "a".into(),
            node_pool: pool.map(String::from),
            node_class: None,
            instance_id: instance.map(String::from),
            image_id: None,
            capacity_type: None,
            lost,
        };
        sink.node_claim(claim(Some("p"), None, false));
        sink.node_claim(claim(Some("q"), Some("i-1"), true));
        sink.node_claim(claim(None, None, false));
        sink.controller_role("arn:aws:iam::1:role/k");
        sink.controller_role("arn:aws:iam::1:role/k");
        assert_eq!(out.node_claims, vec![claim(Some("p"), Some("i-1"), true)]);
        assert_eq!(out.controller_roles.len(), 1);
    }
}
