//! `karpenter-doctor simulate`: load policies from files or an IAM snapshot, evaluate one
//! request, and print the decision with each statement's trace (text or JSON).

use super::{Failure, Output, read_file};
use crate::facts::iam_snapshot::IamSnapshot;
use crate::policy::statement::{ConditionTrace, StatementTrace};
use crate::policy::{Context, Decision, Explanation, Policy, PolicySet, Request};
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// An identity policy document (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<String>,
    /// The permissions boundary document.
    #[arg(long, value_name = "FILE")]
    pub boundary: Option<String>,
    /// A service control policy level (repeatable, organization root first): one policy document
    /// or a JSON array of the documents attached at that level.
    #[arg(long = "scp", value_name = "FILE")]
    pub scps: Vec<String>,
    /// The resource's policy (a KMS key policy for a key).
    #[arg(long, value_name = "FILE")]
    pub resource_policy: Option<String>,
    /// `aws iam get-account-authorization-details` output: the principal's own policies and
    /// boundary are taken from it (repeatable, one per account).
    #[arg(long = "iam-snapshot", value_name = "FILE")]
    pub iam_snapshots: Vec<String>,
    /// The caller: a role, user, or assumed-role session ARN.
    #[arg(long)]
    pub principal: String,
    /// The action, e.g. `iam:PassRole`.
    #[arg(long)]
    pub action: String,
    /// The resource ARN (`*` for actions without resource-level permissions).
    #[arg(long, default_value = "*")]
    pub resource: String,
    /// The account owning the resource where its ARN has none (S3 buckets).
    #[arg(long, value_name = "ACCOUNT")]
    pub resource_account: Option<String>,
    /// A request context entry (repeatable; a key given twice is multi-valued).
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_context)]
    pub context: Vec<(String, String)>,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: Output,
}

fn parse_context(entry: &str) -> Result<(String, String), String> {
    match entry.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {entry:?}")),
    }
}

pub fn run(args: &SimulateArgs, out: &mut impl Write) -> Result<(), Failure> {
    let (request, explanation) = evaluate(args)?;
    let written = match args.output {
        Output::Json => serde_json::to_writer_pretty(&mut *out, &explanation)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Output::Yaml => serde_norway::to_string(&explanation)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|text| out.write_all(text.as_bytes())),
        Output::Text => out.write_all(render_text(&request, &explanation).as_bytes()),
    };
    super::finish(written)
}

/// The request `args` describe and its decision with each statement's trace (the object
/// `-o json` prints). The one function behind `simulate` and the `mcp` tool.
pub fn evaluate(args: &SimulateArgs) -> Result<(Request, Explanation), Failure> {
    let set = load_policies(args)?;
    let mut context = Context::default();
    for (k, v) in &args.context {
        context.insert(k, v.clone());
    }
    let request = Request::new(&args.principal, &args.action, &args.resource)
        .with_context(context)
        .with_resource_account(args.resource_account.clone());
    let explanation = set.explain(&request);
    Ok((request, explanation))
}

fn load_policies(args: &SimulateArgs) -> Result<PolicySet, Failure> {
    let load = |path: &String| -> Result<Policy, Failure> {
        Policy::parse(path, &read_file(path)?).map_err(|e| Failure(format!("{path}: {e}")))
    };
    let mut set = PolicySet {
        identity: args.policies.iter().map(load).collect::<Result<_, _>>()?,
        boundary: args.boundary.as_ref().map(load).transpose()?,
        scps: None,
        resource: args.resource_policy.as_ref().map(load).transpose()?,
    };
    if !args.scps.is_empty() {
        set.scps = Some(
            args.scps
                .iter()
                .map(|path| load_scp_level(path))
                .collect::<Result<_, _>>()?,
        );
    }
    if !args.iam_snapshots.is_empty() {
        let found = args.iam_snapshots.iter().find_map(|path| {
            let snapshot = read_file(path).and_then(|text| {
                IamSnapshot::parse(&text).map_err(|e| Failure(format!("{path}: {e}")))
            });
            match snapshot {
                Ok(s) => s.principal(&args.principal).map(Ok),
                Err(e) => Some(Err(e)),
            }
        });
        let principal = found.ok_or_else(|| {
            Failure(format!(
                "{} is not in the given IAM snapshots",
                args.principal
            ))
        })??;
        set.identity.extend(principal.identity);
        if set.boundary.is_none() {
            set.boundary = principal.boundary;
        }
    }
    set.validate().map_err(|e| Failure(e.to_string()))?;
    Ok(set)
}

/// One SCP level: a policy document, or an array of the documents attached at that level.
fn load_scp_level(path: &str) -> Result<Vec<Policy>, Failure> {
    let text = read_file(path)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failure(format!("{path}: $: not valid JSON: {e}")))?;
    let docs = match &value {
        serde_json::Value::Array(list) => list.iter().collect(),
        single => vec![single],
    };
    docs.iter()
        .enumerate()
        .map(|(i, doc)| {
            let name = if docs.len() == 1 {
                path.to_string()
            } else {
                format!("{path}[{i}]")
            };
            Policy::from_value(&name, doc).map_err(|e| Failure(format!("{name}: {e}")))
        })
        .collect()
}

/// The decision in words: the verdict, the near miss, then the statements that name the action.
pub fn render_text(req: &Request, e: &Explanation) -> String {
    let mut s = String::new();
    let verdict = match e.decision {
        Decision::Allowed => "ALLOWED",
        Decision::ExplicitDeny => "DENIED (explicit deny)",
        Decision::ImplicitDeny => "DENIED (implicit deny: nothing allows it)",
    };
    s += &format!(
        "{verdict}\n  {} → {} on {}\n",
        req.principal, req.action, req.resource
    );
    for (key, values) in req.context.iter() {
        s += &format!("  context {key} = {}\n", values.join(", "));
    }
    if let Some(d) = &e.denial {
        s += &format!("\nReason: {:?}\n  {}\n", d.reason, d.summary);
        for c in &d.failed_conditions {
            s += &format!("  failed: {}\n", condition_line(c));
        }
    }
    let (relevant, others): (Vec<&StatementTrace>, Vec<&StatementTrace>) =
        e.statements.iter().partition(|t| t.action_matched);
    s += "\nStatements that name the action:\n";
    if relevant.is_empty() {
        s += "  (none)\n";
    }
    for t in relevant {
        let mark = |ok: bool| if ok { "yes" } else { "NO" };
        let sid = t
            .sid
            .as_deref()
            .map(|sid| format!(" \"{sid}\""))
            .unwrap_or_default();
        s += &format!(
            "  [{}] {} #{}{} {:?}: {} (resource {}",
            policy_type_word(t),
            t.policy,
            t.index,
            sid,
            t.effect,
            if t.matched {
                "APPLIES"
            } else {
                "does not apply"
            },
            mark(t.resource_matched)
        );
        if let Some(p) = t.principal_matched {
            s += &format!(", principal {}", mark(p));
        }
        s += ")\n";
        for c in &t.conditions {
            s += &format!(
                "      {} {}\n",
                if c.matched { "ok  " } else { "FAIL" },
                condition_line(c)
            );
        }
    }
    if !others.is_empty() {
        s += &format!(
            "  ({} other statements do not name {})\n",
            others.len(),
            req.action
        );
    }
    for w in &e.warnings {
        s += &format!("\nwarning: {w}\n");
    }
    s
}

fn condition_line(c: &ConditionTrace) -> String {
    let request = match &c.request_values {
        Some(v) => format!("[{}]", v.join(", ")),
        None => "absent".to_string(),
    };
    format!(
        "{} {} [{}]; request: {request}",
        c.operator,
        c.key,
        c.values.join(", ")
    )
}

fn policy_type_word(t: &StatementTrace) -> &'static str {
    use crate::policy::PolicyType::*;
    match t.policy_type {
        Identity => "identity",
        PermissionsBoundary => "boundary",
        ServiceControlPolicy => "scp",
        ResourcePolicy => "resource",
    }
}
