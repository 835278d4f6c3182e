//! Organization policies given as documents (`aws organizations describe-policy`): the SCP or
//! RCP Deny statement that matches the request. Premises: the documents (whole, as given), the
//! layer AWS names, the request's context.

use super::*;

/// An SCP or RCP named as denying, with its document given: the Deny statement that matches the
/// request proves the layer (`Confirmed`, the statement named), unless it rests on a key the
/// request may carry; for validation's dry run, whether it denies the launch too.
pub(super) fn org_documented(case: &IamCase<'_>, mut finding: Finding) -> Finding {
    let kind = match case.layer {
        Some(PolicyLayer::ScpExplicitDeny) => organization::SCP,
        Some(PolicyLayer::RcpExplicitDeny) => organization::RCP,
        _ => return finding,
    };
    if !case.org_policies.iter().any(|d| d.kind == kind) {
        return finding;
    }
    let resources = organization::resources(
        case.action,
        case.resource,
        case.partition.id,
        &account_of(case.role),
    );
    // One group per request the failure could be (the call unknown: each iam:PassedToService),
    // each with one request per resource it touches.
    let requests = |extra: &Context| -> Vec<Vec<Request>> {
        request_contexts(case.action, case.partition, case.call)
            .into_iter()
            .map(|(_, mut ctx)| {
                merge_over(&mut ctx, extra);
                resources
                    .iter()
                    .map(|r| Request::new(case.caller, case.action, r).with_context(ctx.clone()))
                    .collect()
            })
            .collect()
    };
    let mut failing = region_context(case);
    if dry_run_differs(case) {
        merge(&mut failing, &validation::dry_run_context());
    }
    let groups = requests(&failing);
    let (found, errors) =
        organization::denies(case.org_policies, kind, case.policy_arn, &groups.concat());
    // Proven only if it refuses every request the failure could be.
    let for_each = groups.iter().all(|g| {
        organization::denies(case.org_policies, kind, case.policy_arn, g)
            .0
            .is_some_and(|d| !d.undecided)
    });
    for e in errors {
        finding
            .evidence
            .push(evidence("organization policy", format!("not read: {e}")));
    }
    let Some(found) = found else {
        let given: Vec<&str> = case
            .org_policies
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.arn.as_str())
            .collect();
        finding.evidence.push(evidence(
            "organization policy",
            format!(
                "no Deny statement of the given {} ({}) matches {} on {}: another policy of the organization refuses it",
                if kind == organization::SCP { "SCPs" } else { "RCPs" },
                given.join(", "),
                case.action,
                case.resource()
            ),
        ));
        return finding;
    };
    finding.evidence.push(evidence(
        format!("organization policy {}", found.statement.policy),
        found.summary.clone(),
    ));
    finding.statement = Some(found.statement.clone());
    if let Fix::Organization { policy, .. } = &mut finding.fix {
        *policy = Some(found.statement.policy.clone());
    }
    let mut finding = match case.validation.filter(|_| dry_run_differs(case)) {
        Some(v) => {
            let (launch, _) = organization::denies(
                case.org_policies,
                kind,
                Some(&found.statement.policy),
                &requests(&validation::launch_context(&v)).concat(),
            );
            match launch {
                None => {
                    finding.summary = found.summary;
                    return dry_run_only(case, finding, &v, "the organization policy allows");
                }
                Some(l) if !l.undecided => launch_refused_too(
                    case,
                    &mut finding,
                    &v,
                    "organization policy",
                    "the organization policy refuses",
                ),
                Some(l) => launch_unknown(case, &mut finding, &v, &l.summary),
            }
            finding
        }
        None => finding,
    };
    finding.summary = found.summary;
    // What leaves the Deny's refusal of the failing request open, if anything.
    let open = if found.undecided {
        Some(
            "the Deny matches on a condition key the request as the doctor knows it does not carry, or on a resource the input does not name: the real request may differ, so this is not proven",
        )
    } else if !for_each {
        Some(
            "the text does not say which call failed, and the Deny refuses only some of the requests it could be: not proven for the request that failed",
        )
    } else {
        None
    };
    if let Some(why) = open {
        finding.evidence.push(evidence("organization policy", why));
    }
    finding.premises = vec![Premise::of(
        What::Organization,
        "organization policy",
        open.is_none(),
    )];
    finding
}
