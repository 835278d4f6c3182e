//! `WrongPrincipal`: the caller AWS names is not Karpenter's controller role. Premises: the
//! caller, from AWS's sentence (whole); the controller role, from Karpenter's own ServiceAccount
//! or `--controller-role`; how Karpenter's pods get their credentials (their environment).
//! Confirmed only when the caller is a node role an EC2NodeClass names.

use super::*;

/// The caller is not the controller role: a node role (session named after an instance), or
/// another role than the one Karpenter's ServiceAccount names.
pub(super) fn wrong_principal(case: &IamCase<'_>) -> Option<Finding> {
    let session = session_name_of(case.caller).unwrap_or("");
    let instance_session = session
        .strip_prefix("i-")
        .is_some_and(|h| h.len() >= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let name = role_name_of(case.role);
    let node_role = case
        .node_roles
        .iter()
        .any(|r| role_name_of(r).or(Some(r.as_str())) == name);
    let other_than_controller = case.controller_role.filter(|c| role_name_of(c) != name);
    let detail = if instance_session {
        format!(
            "the session name {session} is an EC2 instance id: the call was made with the node's instance profile role {}",
            case.role
        )
    } else if node_role {
        format!(
            "{} is the node role of an EC2NodeClass, not Karpenter's controller role",
            case.role
        )
    } else if let Some(controller) = other_than_controller {
        format!(
            "Karpenter's service account names {controller}, but the call was made as {}",
            case.role
        )
    } else {
        return None;
    };
    let mut lines = vec![evidence("error message", detail)];
    // Proven where AWS's own message names an instance-profile session and Karpenter's role is
    // known to be another: the request was evaluated as the node, not as Karpenter.
    let confirmed = match (instance_session, other_than_controller) {
        (true, Some(controller)) => {
            lines.push(evidence(
                "service account",
                format!("Karpenter's controller role is {controller}: the request AWS evaluated was not made as it"),
            ));
            true
        }
        (true, None) => {
            lines.push(evidence(
                "error message",
                "Karpenter's controller role (its ServiceAccount's annotation, its Pod Identity association, or --controller-role) would confirm it",
            ));
            false
        }
        _ => false,
    };
    for account in case.unannotated_accounts {
        lines.push(evidence(
            format!("serviceaccount {account}"),
            format!("it has no {ROLE_ANNOTATION} annotation: IRSA gives its pods no role (unless an EKS Pod Identity association does)"),
        ));
    }
    for pod in case.pods {
        let said = match pod.credentials {
            PodCredentials::None => {
                "its containers have neither AWS_WEB_IDENTITY_TOKEN_FILE (IRSA) nor AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity): the SDK falls back to the node's instance profile. A pod created before its ServiceAccount was annotated (or its association made) gets them only when restarted"
            }
            PodCredentials::WebIdentity => {
                "it has IRSA's token (AWS_WEB_IDENTITY_TOKEN_FILE), yet the call was made as another role: look for a credentials error before this one"
            }
            PodCredentials::PodIdentity => {
                "it has EKS Pod Identity's AWS_CONTAINER_CREDENTIALS_FULL_URI, yet the call was made as another role: look for a credentials error before this one"
            }
        };
        lines.push(evidence(
            format!("pod {}/{}", pod.namespace, pod.name),
            format!("ServiceAccount {}: {said}", pod.service_account),
        ));
    }
    Some(Finding {
        reason: ReasonCode::WrongPrincipal,
        // Proven when the caller is a node role an EC2NodeClass names.
        premises: vec![Premise::of(
            What::Credentials,
            "EC2NodeClass roles",
            confirmed,
        )],
        summary: format!(
            "Karpenter called {} as {} instead of its controller role: IRSA or EKS Pod Identity is not in effect for the Karpenter pod",
            case.action, case.role
        ),
        evidence: lines,
        statement: None,
        fix: Fix::Principal {
            caller: case.role.to_string(),
            controller: case.controller_role.map(str::to_string),
            account: case
                .pods
                .first()
                .map(|p| (p.namespace.clone(), p.service_account.clone())),
            cluster: case.cluster.map(str::to_string),
        },
    })
}
