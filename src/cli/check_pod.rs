//! `check --pod NAMESPACE/NAME`: the answer for one pod (`diagnose::pods::answer`) above the
//! report of the root causes that block it; `-o json|yaml` prints the answer as an object.

use super::explain::print as report;
use super::{Failure, Output};
use crate::cluster::pod::PodReading;
use crate::diagnose::model::Diagnosis;
use crate::signal::{Observations, PodRef};
use serde::Serialize;
use std::io::Write;

/// `NAMESPACE/NAME`.
pub fn parse(text: &str) -> Result<PodRef, String> {
    match text.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Ok(PodRef {
                namespace: namespace.into(),
                name: name.into(),
            })
        }
        _ => Err(format!("{text:?} is not NAMESPACE/NAME")),
    }
}

/// The answer as `-o json|yaml` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    pod: String,
    pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_claim: Option<&'a str>,
    answer: Vec<String>,
    /// The Diagnoses of the root causes that block it.
    items: Vec<&'a Diagnosis>,
}

/// Prints the answer for `asked`; `Ok(true)` when a root cause blocks it.
pub fn print(
    asked: &PodRef,
    read: &PodReading,
    items: &[Diagnosis],
    obs: &Observations,
    output: Output,
    out: &mut impl Write,
) -> Result<bool, Failure> {
    let waiting = crate::signal::pending::waiting_on(obs.pending_pods.as_deref(), &obs.nominations);
    let nominated = waiting
        .iter()
        .find(|(_, pods)| pods.contains(&asked))
        .map(|(claim, _)| *claim);
    let blocking: Vec<&Diagnosis> = items
        .iter()
        .filter(|d| d.blocked.iter().any(|b| &b.pod == asked))
        .collect();
    let mut state = read.state(asked);
    state.nominated = nominated;
    let lines = crate::diagnose::pods::answer(&state, &blocking);
    let answer = Answer {
        pod: format!("{}/{}", asked.namespace, asked.name),
        pending: state.pending(),
        node_claim: nominated,
        answer: lines.clone(),
        items: blocking.clone(),
    };
    let written = match output {
        Output::Json => serde_json::to_writer_pretty(&mut *out, &answer)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Output::Yaml => {
            let text = serde_norway::to_string(&answer)
                .map_err(|e| Failure(format!("cannot render YAML: {e}")))?;
            out.write_all(text.as_bytes())
        }
        Output::Text => {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            out.write_all(text.as_bytes())
        }
    };
    super::finish(written)?;
    if output == Output::Text && !blocking.is_empty() {
        let blocking: Vec<Diagnosis> = blocking.iter().map(|d| (*d).clone()).collect();
        report(&blocking, obs, output, out)?;
    }
    Ok(!answer.items.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pod_is_named_namespace_slash_name() {
        let pod = super::parse("team-a/web-1").unwrap();
        assert_eq!(
            (pod.namespace.as_str(), pod.name.as_str()),
            ("team-a", "web-1")
        );
        for bad in ["web-1", "/web-1", "team-a/", "a/b/c", ""] {
            assert!(super::parse(bad).is_err(), "{bad}");
        }
    }
}
