//! `karpenter-doctor check`: connect like kubectl, read the cluster once (cluster::check),
//! look facts up in AWS unless `--offline`, and print what was read, then the report.

use super::explain::{gather_live, print};
use super::{Failure, Output};
use crate::cluster::check::{self, Reading, Request};
use crate::cluster::observe;
use crate::diagnose;
use crate::facts::Overlay;
use crate::signal::Scanner;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub kube: super::kube_args::KubeArgs,
    #[command(flatten)]
    pub karpenter: super::karpenter_args::KarpenterArgs,
    /// How far back to read the logs: 90s, 30m, 1h, 2h30m, 1d.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration)]
    pub since: Duration,
    #[command(flatten)]
    pub facts: super::fact_args::FactArgs,
    /// No AWS lookups: diagnose from the cluster and the snapshots only.
    #[arg(long)]
    pub offline: bool,
    /// How to reach AWS (live lookups are the default).
    #[command(flatten)]
    pub aws: super::aws_args::AwsArgs,
    /// Print who the doctor is in AWS and what it asked, on standard error.
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: Output,
    /// Exit with status 3 when at least one root cause was found (with --pod: one that
    /// blocks the pod).
    #[arg(long)]
    pub exit_code: bool,
    /// Answer for one pod: whether it is pending because Karpenter cannot launch, and which
    /// root cause blocks it (or why it is pending otherwise).
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = super::check_pod::parse)]
    pub pod: Option<crate::signal::PodRef>,
}

/// Runs `check`; `Ok(true)` when a root cause was found.
pub fn run(args: &CheckArgs, out: &mut impl Write) -> Result<bool, Failure> {
    let found = findings(args)?;
    let written = match args.output {
        Output::Text => out.write_all(format!("{}\n", found.head).as_bytes()),
        // Standard output is the Diagnosis list only; what was read goes to standard error.
        Output::Json | Output::Yaml => std::io::stderr().write_all(found.head.as_bytes()),
    };
    super::finish(written)?;
    if let (Some(asked), Some(read)) = (&args.pod, &found.pod) {
        return super::check_pod::print(asked, read, &found.items, &found.obs, args.output, out);
    }
    print(&found.items, &found.obs, args.output, out)?;
    Ok(!found.items.is_empty())
}

/// What `check` found: the Diagnoses (`-o json`/`yaml` print them as a `List`), the
/// observations they came from, and what was read (the head of the report).
pub struct Found {
    pub items: Vec<diagnose::model::Diagnosis>,
    pub obs: crate::signal::Observations,
    pub head: String,
    /// The pod `--pod` asked about, as read.
    pub pod: Option<crate::cluster::pod::PodReading>,
}

/// Connects, reads the cluster once, looks facts up (unless `--offline`) and diagnoses.
/// Warnings go to standard error. The one function behind `check` and the `mcp` tool.
pub fn findings(args: &CheckArgs) -> Result<Found, Failure> {
    let snapshots = args.facts.load()?;
    let scanner = Arc::new(
        Scanner::new()
            .map_err(|e| Failure(format!("the shipped recognition rules are invalid: {e}")))?,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let (client, cluster, _) = args.kube.connect().await?;
        let request = Request {
            namespace: args.karpenter.namespace.clone(),
            selector: args.karpenter.selector.clone(),
            since: args.since,
            scope: check::Scope::Failures,
        };
        let show = std::io::stderr().is_terminal();
        let mut progress = |what: &str| {
            if show {
                eprint!("\r\x1b[Kreading {what} …");
            }
        };
        let reading = check::read(&client, &request, scanner.clone(), &mut progress).await;
        if show {
            eprint!("\r\x1b[K");
        }
        let reading = reading.map_err(|e| Failure(format!("{cluster}: {e}")))?;
        if reading.karpenter_version.is_none()
            && reading.pods.is_empty()
            && reading.deployments.is_empty()
        {
            return Err(Failure(format!(
                "{cluster}: no Karpenter here: the API group karpenter.sh is not served and no \
                 Deployment or pod matches {} in {} (another context? --context, \
                 --karpenter-namespace, --karpenter-selector)",
                request.selector, request.namespace
            )));
        }
        let mut obs = observe::observe(
            &scanner,
            reading.kept.lines.iter().map(|(_, l)| l.as_str()),
            &reading.objects(),
        );
        let pod = match &args.pod {
            Some(pod) => Some(
                crate::cluster::pod::read(&client, pod)
                    .await
                    .map_err(|e| Failure(format!("{cluster}: {e}")))?,
            ),
            None => None,
        };
        if let Some(read) = &pod {
            read.observe(&scanner, &mut obs);
        }
        let scanned = obs.warnings.len();
        let role = args.facts.controller_role.as_deref();
        let fetched = if args.offline {
            Default::default()
        } else {
            gather_live(&args.aws, args.verbose, role, &scanner, &mut obs).await
        };
        let facts = Overlay {
            first: &snapshots,
            then: &fetched,
        };
        let items = diagnose::diagnose(&obs, &facts, role);
        for w in &obs.warnings[scanned..] {
            eprintln!("karpenter-doctor: warning: {}", w.message);
        }
        let head = header(&cluster, &request, &reading, args.offline);
        Ok(Found {
            items,
            obs,
            head,
            pod,
        })
    })
}

/// A client as kubectl would make it from `kubeconfig` (else `$KUBECONFIG`, `~/.kube/config`,
/// in-cluster) and `context` (else the current one), how to name the cluster:
/// `context NAME (URL)`, and its URL.
pub async fn connect(
    kubeconfig: Option<&str>,
    context: Option<&str>,
) -> Result<(kube::Client, String, String), Failure> {
    use kube::config::{Config, KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let fail = |e: &dyn std::fmt::Display| Failure(format!("cannot load the kube config: {e}"));
    let (config, context) = match (kubeconfig, context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| fail(&e))?;
            let context = context
                .map(str::to_string)
                .or_else(|| kubeconfig.current_context.clone());
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| fail(&e))?;
            (config, context)
        }
        (None, Some(context)) => (
            Config::from_kubeconfig(&options)
                .await
                .map_err(|e| fail(&e))?,
            Some(context.to_string()),
        ),
        (None, None) => {
            let context = Kubeconfig::read().ok().and_then(|k| k.current_context);
            (Config::infer().await.map_err(|e| fail(&e))?, context)
        }
    };
    let name = match context {
        Some(context) => format!("context {context} ({})", config.cluster_url),
        None => format!("in-cluster ({})", config.cluster_url),
    };
    let url = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| fail(&e))?;
    Ok((client, name, url))
}

/// What was read, for the top of the report.
fn header(cluster: &str, request: &Request, reading: &Reading, offline: bool) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut out = format!(
        "Cluster: {cluster}, Kubernetes {}\n",
        reading.server_version
    );
    out += &match reading.karpenter_version {
        Some(v) => format!(
            "Read:    {}, {}, {} (karpenter.sh/{v}); {} regarding them; {} in {}\n",
            plural(reading.node_claims.len(), "NodeClaim", "NodeClaims"),
            plural(reading.node_pools.len(), "NodePool", "NodePools"),
            plural(reading.node_classes.len(), "EC2NodeClass", "EC2NodeClasses"),
            plural(reading.events.len(), "Event", "Events"),
            plural(reading.accounts.len(), "ServiceAccount", "ServiceAccounts"),
            request.namespace
        ),
        None => format!(
            "Read:    no Karpenter objects; {}; {} in {}\n",
            plural(reading.events.len(), "Event", "Events"),
            plural(reading.accounts.len(), "ServiceAccount", "ServiceAccounts"),
            request.namespace
        ),
    };
    out += &if reading.deployments.is_empty() {
        format!(
            "Karpenter: no Deployment matches {} in {}\n",
            request.selector, request.namespace
        )
    } else {
        let each: Vec<String> = reading
            .deployments
            .iter()
            .map(|d| {
                format!(
                    "Deployment {} {}/{} ready (ServiceAccount {})",
                    d.name, d.ready, d.desired, d.service_account
                )
            })
            .collect();
        format!("Karpenter: {}\n", each.join(", "))
    };
    let lines: u64 = reading.logs.iter().map(|l| l.lines).sum();
    let from: Vec<String> = reading
        .logs
        .iter()
        .map(|l| {
            let previous = if l.previous { " (previous)" } else { "" };
            format!("{}/{}{previous}", l.pod, l.container)
        })
        .collect();
    out += &format!(
        "Logs:    {} of the last {} from {} in {} ({})\n",
        plural(lines as usize, "line", "lines"),
        humanize(request.since),
        plural(reading.pods.len(), "pod", "pods"),
        request.namespace,
        if from.is_empty() {
            "none read".to_string()
        } else {
            from.join(", ")
        }
    );
    out += if offline {
        "AWS:     not asked (--offline)\n"
    } else {
        "AWS:     live lookups (the default credential chain)\n"
    };
    if !reading.problems.is_empty() {
        out += "Not read:\n";
        for p in &reading.problems {
            out += &format!("  - {p}\n");
        }
    }
    if let Some(diagnoses) = &reading.diagnoses {
        let active: Vec<&str> = diagnoses
            .iter()
            .filter(|(_, active)| *active)
            .map(|(name, _)| name.as_str())
            .collect();
        out += &format!(
            "The doctor's controller runs here: {} ({} in all){}\n",
            plural(active.len(), "active Diagnosis", "active Diagnoses"),
            diagnoses.len(),
            if active.is_empty() {
                String::new()
            } else {
                format!(": {}", active.join(", "))
            }
        );
    }
    out
}

/// `--since`: whole seconds, minutes, hours or days, combined (`2h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?}: expected a duration such as 90s, 30m, 1h, 2h30m or 1d");
    let (mut total, mut digits) = (0u64, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A duration in the units `--since` takes, largest first: `1h`, `1m30s`, `2h30m`.
fn humanize(d: Duration) -> String {
    let mut left = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= size {
            out += &format!("{}{unit}", left / size);
            left %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_logs_since_takes_them() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("1h"), Ok(3600));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("2h30m"), Ok(9000));
        assert_eq!(secs("1d"), Ok(86_400));
        for bad in [
            "",
            "1",
            "h",
            "1x",
            "-1h",
            "0h",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        for t in ["1h", "2h30m", "1d", "1d2h3m4s", "45m"] {
            assert_eq!(humanize(parse_duration(t).unwrap()), t);
        }
        assert_eq!(humanize(Duration::from_secs(90)), "1m30s");
    }
}
