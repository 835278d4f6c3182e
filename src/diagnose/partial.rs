//! Values a cut text held only in part (`signal::Partial`): Karpenter's `...` after 300 bytes of
//! a NodeClaim message (v1.0–v1.14) lands inside the node role's ARN for most role names. A
//! prefix is never a value. The whole value of the same failure wins where the input has it:
//! another signal about the same NodeClaim (its log line, a condition, an Event) that is whole
//! and begins with the prefix, or, for `iam:PassRole`, the node role of the NodeClaim's
//! EC2NodeClass (the role its instance profile holds: likely the role passed, not proven, as a
//! profile made before `spec.role` changed holds the old one). Else the value stays unknown.

use crate::policy::arn::Arn;
use crate::signal::{Category, Observations, Signal};
use std::collections::HashMap;

/// The whole values found for one signal's cut ones, and where each came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completed {
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub kms_key: Option<String>,
    /// The resource is the EC2NodeClass's node role, not a value any sighting of the failure
    /// holds whole: likely the role passed, not proven to be.
    pub resource_by_class: bool,
    /// For evidence: what was cut, and what completed it.
    pub notes: Vec<String>,
}

/// One field a text may be cut inside of: its name for evidence, the prefix read, where a
/// whole sighting holds it, and where its whole value goes.
type Field<'a> = (
    &'static str,
    &'a Option<String>,
    fn(&Signal) -> Option<&str>,
    &'a mut Option<String>,
);

/// Every signal of `obs` grouped by the NodeClaim it is about: only built when some signal
/// holds a cut value.
pub struct Sightings<'a> {
    by_claim: HashMap<&'a str, Vec<&'a Signal>>,
}

impl<'a> Sightings<'a> {
    pub fn of(obs: &'a Observations) -> Sightings<'a> {
        let mut by_claim: HashMap<&str, Vec<&Signal>> = HashMap::new();
        if obs.signals.iter().any(|s| !s.partial.is_empty()) {
            for s in &obs.signals {
                if let Some(claim) = s.node_claim.as_deref() {
                    by_claim.entry(claim).or_default().push(s);
                }
            }
        }
        Sightings { by_claim }
    }

    /// What the input holds whole of `s`'s cut values. `node_role`: the role of the
    /// EC2NodeClass `s`'s NodeClaim belongs to (a name or an ARN), where known.
    pub fn complete(&self, s: &Signal, node_role: Option<&str>) -> Completed {
        let mut out = Completed::default();
        if s.partial.is_empty() {
            return out;
        }
        let others: &[&Signal] = s
            .node_claim
            .as_deref()
            .and_then(|c| self.by_claim.get(c))
            .map_or(&[], Vec::as_slice);
        let whole = |prefix: &str, field: fn(&Signal) -> Option<&str>| -> Option<String> {
            let mut found = others
                .iter()
                .filter(|t| t.category == s.category || s.category == Category::ActionDenied)
                .filter_map(|t| field(t))
                .filter(|v| v.starts_with(prefix));
            let first = found.next()?;
            // The cut may fall right at the value's end (`iam:PassRole...`). Two whole values
            // that begin with the prefix: which one was cut is not known.
            found.all(|v| v == first).then(|| first.to_string())
        };
        let claim = s.node_claim.as_deref().unwrap_or("?");
        let p = &s.partial;
        // For `iam:PassRole` the NodeClaim's EC2NodeClass names the role every launch passes.
        let passes = s
            .action
            .clone()
            .or_else(|| whole(p.action.as_deref()?, |t| t.action.as_deref()))
            .is_some_and(|a| a.eq_ignore_ascii_case("iam:PassRole"));
        let fields: [Field<'_>; 4] = [
            (
                "principal",
                &p.principal,
                |t| t.principal.as_deref(),
                &mut out.principal,
            ),
            (
                "action",
                &p.action,
                |t| t.action.as_deref(),
                &mut out.action,
            ),
            (
                "resource",
                &p.resource,
                |t| t.resource.as_deref(),
                &mut out.resource,
            ),
            (
                "KMS key",
                &p.kms_key,
                |t| t.kms_key.as_deref(),
                &mut out.kms_key,
            ),
        ];
        for (name, prefix, field, slot) in fields {
            let Some(prefix) = prefix else { continue };
            let by_role = || {
                let role = node_role.filter(|_| passes && name == "resource")?;
                Some((role, node_role_arn(prefix, role)?))
            };
            let note = match (whole(prefix, field), by_role()) {
                (Some(v), _) => {
                    let note = format!(
                        "the text is cut inside the {name} ({prefix}…); the whole value, {v}, is another sighting of NodeClaim {claim}'s failure"
                    );
                    *slot = Some(v);
                    note
                }
                (None, Some((role, arn))) => {
                    let note = format!(
                        "the text is cut inside the role passed ({prefix}…); the NodeClaim's EC2NodeClass names its node role {role}, whose ARN {arn} begins so: likely the role passed (the class's instance profile holds it, unless spec.role changed since the profile was made), but no text of the failure names it whole, so a cause that depends on the role is not proven"
                    );
                    *slot = Some(arn);
                    out.resource_by_class = true;
                    note
                }
                (None, None) => format!(
                    "the text is cut inside the {name} ({prefix}…): a value that begins so, not the value, so it stays unknown"
                ),
            };
            out.notes.push(note);
        }
        out
    }
}

/// The ARN of the node role `role` (an EC2NodeClass's `spec.role`: a name or an ARN) in the
/// partition and account of the cut ARN `prefix`, where it begins with `prefix`.
fn node_role_arn(prefix: &str, role: &str) -> Option<String> {
    let arn = if role.starts_with("arn:") {
        role.to_string()
    } else {
        // `arn:PARTITION:iam::ACCOUNT:role/` of the prefix: a name gives no path.
        let head = &prefix[..prefix.find(":role/")? + ":role/".len()];
        Arn::parse(&format!("{head}x"))?;
        format!("{head}{role}")
    };
    (arn.len() > prefix.len() && arn.starts_with(prefix) && Arn::parse(&arn).is_some())
        .then_some(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Partial;

    fn signal(claim: &str, resource: Option<&str>, partial: Option<&str>) -> Signal {
        let mut s = crate::diagnose::group::tests::signal(Some(claim), "");
        s.category = Category::PassRoleDenied;
        s.action = Some("iam:PassRole".into());
        s.resource = resource.map(str::to_string);
        s.partial = Partial {
            resource: partial.map(str::to_string),
            ..Partial::default()
        };
        s
    }

    const WHOLE: &str =
        "arn:aws-cn:iam::111122223333:role/Karpenter-demo-20240604092512345600000001";
    const CUT: &str = "arn:aws-cn:iam::111122223333:role/Karp";

    #[test]
    fn the_whole_value_of_the_same_nodeclaim_wins() {
        let obs = Observations {
            signals: vec![
                signal("a", None, Some(CUT)),
                signal("a", Some(WHOLE), None),
                signal("b", Some("arn:aws-cn:iam::111122223333:role/Karpx"), None),
            ],
            ..Observations::default()
        };
        let sightings = Sightings::of(&obs);
        let done = sightings.complete(&obs.signals[0], None);
        assert_eq!(done.resource.as_deref(), Some(WHOLE));
        // Another NodeClaim's role never completes it.
        let alone = signal("b", None, Some(CUT));
        let obs = Observations {
            signals: vec![alone.clone(), signal("c", Some(WHOLE), None)],
            ..Observations::default()
        };
        assert_eq!(Sightings::of(&obs).complete(&alone, None).resource, None);
    }

    #[test]
    fn two_whole_values_that_fit_the_prefix_complete_nothing() {
        let obs = Observations {
            signals: vec![
                signal("a", None, Some(CUT)),
                signal("a", Some(WHOLE), None),
                signal(
                    "a",
                    Some("arn:aws-cn:iam::111122223333:role/Karpenter-other"),
                    None,
                ),
            ],
            ..Observations::default()
        };
        let done = Sightings::of(&obs).complete(&obs.signals[0], None);
        assert_eq!(done.resource, None);
        assert!(done.notes[0].contains("stays unknown"), "{:?}", done.notes);
    }

    #[test]
    fn the_node_classs_role_completes_a_cut_pass_role_resource_only_when_it_fits() {
        let s = signal("a", None, Some(CUT));
        let obs = Observations {
            signals: vec![s.clone()],
            ..Observations::default()
        };
        let sightings = Sightings::of(&obs);
        let name = "Karpenter-demo-20240604092512345600000001";
        assert_eq!(
            sightings.complete(&s, Some(name)).resource.as_deref(),
            Some(WHOLE)
        );
        assert_eq!(
            sightings.complete(&s, Some(WHOLE)).resource.as_deref(),
            Some(WHOLE)
        );
        assert_eq!(sightings.complete(&s, Some("OtherRole")).resource, None);
        assert_eq!(
            sightings
                .complete(&s, Some("arn:aws:iam::111122223333:role/Karpenter-x"))
                .resource,
            None,
            "another partition"
        );
    }
}
