//! EC2NodeClass validation's dry run beside the launch it stands for: a refusal proven for the
//! dry run is a launch's only where the launch's request is refused too. Premises: the dry
//! run's request (what validation carries), the launch's (what the NodeClass would launch).

use super::*;

/// Validation's dry run and the launch it stands for are both refused (`source`, `refuses`: what
/// says so): no artefact.
pub(super) fn launch_refused_too(
    case: &IamCase<'_>,
    finding: &mut Finding,
    v: &Validation<'_>,
    source: &str,
    refuses: &str,
) {
    finding.evidence.push(evidence(
        "ec2nodeclass validation",
        validation::difference(v),
    ));
    finding.evidence.push(evidence(
        source,
        format!(
            "{refuses} the launch's {} too: this is no validation artefact",
            case.action
        ),
    ));
}

/// Whether the denial is a validation dry run whose request differs from the launch's.
pub(super) fn dry_run_differs(case: &IamCase<'_>) -> bool {
    case.validation.is_some() && validation::differs(case.action)
}

/// A refusal of validation's dry run alone: `allows` (what allows) the launch's request. Never
/// `Confirmed` (AWS does not document the fleet's request context); the fix is Karpenter's way
/// out first, then the layer's own.
pub(super) fn dry_run_only(
    case: &IamCase<'_>,
    mut finding: Finding,
    v: &Validation<'_>,
    allows: &str,
) -> Finding {
    // Proven for the dry run only: whether the launch is refused too stays open.
    finding
        .premises
        .push(Premise::undecided(What::Policies, "the launch's request"));
    finding.summary = format!(
        "only EC2NodeClass validation's dry run of {} is refused ({}); {allows} the launch's request, but ValidationSucceeded=False keeps the EC2NodeClass not Ready",
        case.action, finding.summary
    );
    finding.evidence.push(evidence(
        "ec2nodeclass validation",
        validation::difference(v),
    ));
    finding.evidence.push(evidence(
        "policy evaluation",
        format!("{allows} the launch's {} (aws:ViaAWSService=true, ec2:MetadataHttpTokens={}): only the dry run is refused", case.action, v.http_tokens.unwrap_or("required")),
    ));
    finding.fix = Fix::DryRun {
        cause: Box::new(finding.fix),
        launch_allowed: true,
        node_class: v.node_class.map(str::to_string),
        namespace: v.namespace.map(str::to_string),
    };
    finding
}

/// Validation's dry run is refused, and the launch's request may be too, on a key or resource
/// the doctor does not know (`why`: the engine's sentence): Karpenter's way out beside the fix.
pub(super) fn launch_unknown(
    case: &IamCase<'_>,
    finding: &mut Finding,
    v: &Validation<'_>,
    why: &str,
) {
    finding.evidence.push(evidence(
        "ec2nodeclass validation",
        validation::difference(v),
    ));
    finding.evidence.push(evidence(
        "policy evaluation",
        format!(
            "whether the launch's {} is refused too is not known: {why}, but only on a condition key or resource the doctor does not know",
            case.action
        ),
    ));
    finding.fix = Fix::DryRun {
        cause: Box::new(finding.fix.clone()),
        launch_allowed: false,
        node_class: v.node_class.map(str::to_string),
        namespace: v.namespace.map(str::to_string),
    };
}

/// Validation's dry run of RunInstances, refused by a layer the facts do not show: whether only
/// the dry run is refused is not known, so the fix offers Karpenter's way out beside the layer's.
/// Its dry run of CreateFleet (or CreateLaunchTemplate) makes the launch's own request.
pub(super) fn validated(case: &IamCase<'_>, mut finding: Finding) -> Finding {
    let Some(v) = case.validation else {
        return finding;
    };
    if matches!(finding.fix, Fix::DryRun { .. })
        || finding
            .evidence
            .iter()
            .any(|e| e.source == "ec2nodeclass validation")
    {
        return finding;
    }
    if !validation::differs(case.action) {
        finding.evidence.push(evidence(
            "ec2nodeclass validation",
            format!(
                "validation's {} makes the request a launch makes: the launch is refused too",
                case.action
            ),
        ));
        return finding;
    }
    finding.evidence.push(evidence(
        "ec2nodeclass validation",
        validation::difference(&v),
    ));
    if matches!(
        finding.fix,
        Fix::Organization { .. }
            | Fix::Layers(_)
            | Fix::Boundary { .. }
            | Fix::SessionPolicy { .. }
            | Fix::VpcEndpoint { .. }
    ) {
        finding.evidence.push(evidence(
            "ec2nodeclass validation",
            "a policy that denies ec2:RunInstances unless an AWS service calls it, or without ec2:MetadataHttpTokens=required, refuses the dry run but not the launch (karpenter-provider-aws #8190, #9018): give its document (aws organizations describe-policy for an SCP) to tell",
        ));
        finding.fix = Fix::DryRun {
            cause: Box::new(finding.fix),
            launch_allowed: false,
            node_class: v.node_class.map(str::to_string),
            namespace: v.namespace.map(str::to_string),
        };
    }
    finding
}
