//! The `-o text` report an on-call engineer reads at 3 a.m.: per Diagnosis what failed, why,
//! the evidence and the fix. Colour only when asked (a terminal), otherwise plain text. Every
//! string from a Diagnosis is printed with its control characters escaped (a Diagnosis read
//! from the cluster may come from an older doctor, and spec and commands keep theirs).

use crate::diagnose::model::{Confidence, Diagnosis};
use crate::diagnose::printable::{self, escape_in_place};

/// ANSI styling, off unless the output is a terminal.
#[derive(Clone, Copy)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    fn red(self, t: &str) -> String {
        self.paint("1;31", t)
    }
    fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
}

/// The whole report: a headline, then one section per Diagnosis.
pub fn render(items: &[Diagnosis], signals: usize, skipped: usize, style: Style) -> String {
    let mut out = match items.len() {
        0 => format!("No Karpenter launch failure recognised ({signals} signals"),
        1 => format!("1 root cause found ({signals} signals"),
        n => format!("{n} root causes found ({signals} signals"),
    };
    out += &match skipped {
        0 => ").\n".to_string(),
        n => format!(
            "; {n} input warning{} (lines skipped, or read only in part), see standard error).\n",
            if n == 1 { "" } else { "s" }
        ),
    };
    out + &sections(items, style)
}

/// One section per Diagnosis, each after an empty line.
pub fn sections(items: &[Diagnosis], style: Style) -> String {
    items
        .iter()
        .map(|d| format!("\n{}", section(d, style)))
        .collect()
}

/// A copy of `d` whose every string is printable: the free text as the doctor writes it, and
/// the spec, the commands (a control character shown, not run: the pasted word stays one word)
/// and each line of the policy patch.
fn printable_copy(d: &Diagnosis) -> Diagnosis {
    let mut d = d.clone();
    printable::diagnosis(&mut d);
    escape_in_place(&mut d.metadata.name);
    let spec = &mut d.spec;
    for field in [
        &mut spec.error_code,
        &mut spec.principal_arn,
        &mut spec.action,
        &mut spec.resource_arn,
        &mut spec.kms_key_arn,
        &mut spec.partition,
        &mut spec.region,
        &mut spec.node_pool,
        &mut spec.node_class,
    ] {
        field.iter_mut().for_each(escape_in_place);
    }
    let r = &mut d.status.remediation;
    r.commands.iter_mut().for_each(escape_in_place);
    if let Some(patch) = &mut r.policy_patch {
        let lines: Vec<String> = patch
            .lines()
            .map(|l| printable::escape(l).into_owned())
            .collect();
        *patch = lines.join("\n");
    }
    d
}

fn section(d: &Diagnosis, style: Style) -> String {
    let d = &printable_copy(d);
    let (spec, status) = (&d.spec, &d.status);
    let rc = &status.root_cause;
    let confidence = match rc.confidence {
        Confidence::Confirmed => style.bold("Confirmed"),
        Confidence::Inferred => style.yellow("Inferred"),
        Confidence::Predicted => style.bold("Predicted"),
    };
    let mut s = format!(
        "{} {}\n{} {:?} · {} ({confidence})\n",
        style.red("●"),
        style.bold(&d.metadata.name),
        style.dim("  category"),
        spec.category,
        style.bold(rc.reason.as_str())
    );
    let what = match (&spec.action, &spec.resource_arn, &spec.kms_key_arn) {
        (Some(a), Some(r), _) => format!("{a} on {r}"),
        (Some(a), None, _) => a.clone(),
        (None, _, Some(k)) => format!("KMS key {k}"),
        _ => spec
            .error_code
            .clone()
            .unwrap_or_else(|| "an authorization check".into()),
    };
    s += &format!("  What failed  {what}\n");
    if let Some(p) = &spec.principal_arn {
        s += &format!("  As           {p}\n");
    }
    let place: Vec<String> = [
        spec.partition.clone(),
        spec.region.clone(),
        spec.node_pool.as_ref().map(|n| format!("nodepool {n}")),
        spec.node_class.as_ref().map(|n| format!("nodeclass {n}")),
        spec.error_code.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    s += &format!("  Where        {}\n", place.join(" · "));
    let when = match (&status.first_seen, &status.last_seen) {
        (Some(f), Some(l)) if f != l => format!(", {f} … {l}"),
        (Some(f), _) => format!(", {f}"),
        _ => String::new(),
    };
    s += &format!(
        "  Seen         {} time{}{when}\n",
        status.occurrences,
        if status.occurrences == 1 { "" } else { "s" }
    );
    if !status.affected_node_claims.is_empty() {
        s += &format!(
            "  NodeClaims   {}\n",
            status.affected_node_claims.join(", ")
        );
    }
    s += &format!("\n  Why: {}\n", rc.summary);
    if let Some(st) = &rc.statement {
        let sid = st
            .sid
            .as_deref()
            .map(|s| format!(" \"{s}\""))
            .unwrap_or_default();
        let index = st.index.map(|i| format!(" (#{i})")).unwrap_or_default();
        s += &format!("  Statement: {}{sid}{index}\n", st.policy);
    }
    s += "  Evidence:\n";
    for e in &rc.evidence {
        s += &format!(
            "    - {} {}\n",
            style.dim(&format!("[{}]", e.source)),
            e.detail
        );
    }
    let r = &status.remediation;
    s += &format!("\n  {} {}\n", style.bold("Fix:"), r.summary);
    for (i, step) in r.steps.iter().enumerate() {
        s += &format!("    {}. {step}\n", i + 1);
    }
    if let Some(patch) = &r.policy_patch {
        s += "    Corrected statement (policyPatch):\n";
        for line in patch.lines() {
            s += &format!("      {line}\n");
        }
    }
    if !r.commands.is_empty() {
        s += "    Commands:\n";
        for c in &r.commands {
            s += &format!("      $ {c}\n");
        }
    }
    s += &format!("    Runbook: {}\n", r.runbook);
    s
}
