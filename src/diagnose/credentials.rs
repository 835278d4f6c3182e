//! Root cause of a credentials failure (Karpenter gets no AWS identity: IRSA or EKS Pod
//! Identity not in effect). Proven where the facts allow: the role's trust policy evaluated for
//! the token STS was given (the cluster's provider, Karpenter's `sub`, `aud`) and the account's
//! OIDC providers, or for EKS Auth (`pods.eks.amazonaws.com`: sts:AssumeRole, sts:TagSession);
//! else inferred, saying what is missing.

use super::finding::{CredentialsFix, CredentialsPath, Finding, Fix, TokenFault, evidence};
use super::model::ReasonCode;
use super::premise::{Premise, What};
use crate::facts::{Facts, Lookup};
use crate::partition::Partition;
use crate::policy::arn::Arn;
use crate::policy::statement::{ConditionTrace, StatementTrace};
use crate::policy::{Decision, Effect, Explanation, PolicySet, PolicyType, Request, StatementRef};
use crate::signal::{AccountInfo, Observations, PodIdentityInfo, PolicyLayer, RoleTrust, Signal};
use serde_json::{Map, Value, json};

/// One credentials failure to explain.
pub struct CredentialsCase<'a> {
    /// The role Karpenter was to run as: the ServiceAccount's, `--controller-role`, or the
    /// role the message names.
    pub role: Option<&'a str>,
    /// Karpenter's ServiceAccount (the token's `sub`).
    pub account: Option<&'a AccountInfo>,
    /// The cluster's OIDC issuer URL (the token's `iss`).
    pub issuer: Option<&'a str>,
    /// The account's IAM OIDC providers, where listed.
    pub providers: Option<&'a [String]>,
    /// Karpenter's EKS Pod Identity association, where one is given.
    pub association: Option<&'a PodIdentityInfo>,
    /// Trust policies given as `aws iam get-role` output (the facts' win).
    pub trusts: &'a [RoleTrust],
    pub partition: &'static Partition,
}

impl<'a> CredentialsCase<'a> {
    /// The case of Karpenter's `role` from the observations; `named_issuer` is the issuer the
    /// failure's text names, if any.
    pub fn of(
        obs: &'a Observations,
        role: Option<&'a str>,
        named_issuer: Option<&'a str>,
        partition: &'static Partition,
    ) -> CredentialsCase<'a> {
        CredentialsCase {
            role,
            // The ServiceAccount that names the role (else the only one there is).
            account: obs
                .accounts
                .iter()
                .find(|a| Some(a.role.as_str()) == role)
                .or_else(|| obs.accounts.first().filter(|_| obs.accounts.len() == 1)),
            // The issuer the message names, else the cluster's: only when one cluster was
            // described (with several, which token STS was given is not known).
            issuer: named_issuer.or(match obs.oidc_issuers.as_slice() {
                [only] => Some(only.as_str()),
                _ => None,
            }),
            providers: obs.oidc_providers.as_deref(),
            association: karpenter_association(obs),
            trusts: &obs.role_trusts,
            partition,
        }
    }
}

/// Karpenter's Pod Identity association among those given: the one for the ServiceAccount a
/// Karpenter pod runs as; else the only one, among those naming a role, whose namespace or
/// ServiceAccount says Karpenter. An association of another workload is never taken for it.
pub fn karpenter_association(obs: &Observations) -> Option<&PodIdentityInfo> {
    let ran_as = |a: &&PodIdentityInfo| {
        obs.karpenter_pods
            .iter()
            .any(|p| p.namespace == a.namespace && p.service_account == a.service_account)
    };
    let says_karpenter = |a: &&PodIdentityInfo| {
        [&a.namespace, &a.service_account]
            .iter()
            .any(|s| s.to_ascii_lowercase().contains("karpenter"))
    };
    let by_pod: Vec<_> = obs.pod_identities.iter().filter(ran_as).collect();
    let by_name: Vec<_> = obs
        .pod_identities
        .iter()
        .filter(says_karpenter)
        .filter(|a| a.role.is_some())
        .collect();
    match (by_pod.as_slice(), by_name.as_slice()) {
        ([only], _) | ([], [only]) => Some(only),
        _ => None,
    }
}

/// The service principal EKS Pod Identity assumes roles as (the China regions too).
const POD_IDENTITY: &str = "pods.eks.amazonaws.com";
/// What EKS Auth asks of the role's trust policy, both needed.
const POD_IDENTITY_ACTIONS: [&str; 2] = ["sts:AssumeRole", "sts:TagSession"];

/// The audience EKS gives IRSA tokens unless the ServiceAccount names another.
const AUDIENCE: &str = "sts.amazonaws.com";
const WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";
/// STS's error when the account has not activated STS in the region of the endpoint called.
const REGION_DISABLED: &str = "RegionDisabledException";

/// Codes of STS and EKS Auth that refuse the token or the credentials, never by a policy:
/// no trust policy or OIDC provider proof applies (`InvalidIdentityToken` only by its
/// sentence: `token_fault`).
const NOT_TRUST: [&str; 7] = [
    REGION_DISABLED,
    "ExpiredToken",
    "ExpiredTokenException",
    "IDPCommunicationError",
    "IDPCommunicationErrorException",
    "InvalidTokenException",
    "ResourceNotFoundException",
];
const POD_IDENTITY_CALL: &str = "eks-auth:AssumeRoleForPodIdentity";

/// What STS or EKS Auth said of Karpenter's token or credentials, when the failure is no
/// policy's refusal: from AWS's code, the call and the sentence. `None`: a policy denial, the
/// missing OIDC provider (`No OpenIDConnect provider found`), or STS off in the region.
pub fn token_fault(s: &Signal) -> Option<TokenFault> {
    let code = s.error_code.as_deref()?;
    let pod_identity = s
        .action
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case(POD_IDENTITY_CALL));
    let said = |phrase: &str| s.message.contains(phrase);
    Some(match code {
        "IDPCommunicationError" | "IDPCommunicationErrorException" => TokenFault::IdpUnreachable,
        "ExpiredTokenException" if pod_identity => TokenFault::PodTokenExpired,
        "InvalidTokenException" if pod_identity => TokenFault::PodTokenInvalid,
        "ResourceNotFoundException" if pod_identity => TokenFault::NoAssociation,
        "ExpiredToken" | "ExpiredTokenException" => {
            let web = s
                .action
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(WEB_IDENTITY));
            if web || said("Token expired: current date/time") {
                TokenFault::WebIdentityTokenExpired
            } else {
                TokenFault::SessionExpired
            }
        }
        c if c.starts_with("InvalidIdentityToken") => {
            if said("No OpenIDConnect provider found") {
                return None;
            } else if said("Incorrect token audience") {
                TokenFault::Audience
            } else if said("verification key") {
                TokenFault::VerificationKey
            } else if said("thumbprint") {
                TokenFault::Thumbprint
            } else {
                TokenFault::IdentityToken
            }
        }
        _ => return None,
    })
}

/// How Karpenter was to get its credentials, as a credentials failure says; `None`: it does
/// not say, or the failure is no trust policy's (`token_fault`).
pub fn path_of(s: &Signal) -> Option<CredentialsPath> {
    if token_fault(s).is_some() {
        return None;
    }
    path(
        s.action.as_deref(),
        s.error_code.as_deref(),
        s.oidc_issuer.is_some(),
        s.layer,
    )
}

/// `path_of` for a stored Diagnosis: its action and error code.
pub fn path_of_spec(action: Option<&str>, error_code: Option<&str>) -> Option<CredentialsPath> {
    path(action, error_code, false, None)
}

/// `path_of` from what is known of the failure: the refused action, AWS's error code, whether
/// the text names an OIDC issuer, the policy layer it names.
fn path(
    action: Option<&str>,
    error_code: Option<&str>,
    names_issuer: bool,
    layer: Option<PolicyLayer>,
) -> Option<CredentialsPath> {
    let action = action.unwrap_or("");
    if error_code.is_some_and(|c| NOT_TRUST.contains(&c)) {
        // Not the trust policy nor the provider: STS off in the region, a token or
        // credentials expired, not verifiable, no association.
        return None;
    }
    let oidc = error_code.is_some_and(|c| c.starts_with("InvalidIdentityToken")) || names_issuer;
    if oidc {
        Some(CredentialsPath::OidcProvider)
    } else if action.eq_ignore_ascii_case(WEB_IDENTITY) {
        Some(CredentialsPath::WebIdentity)
    } else if action.eq_ignore_ascii_case("eks-auth:AssumeRoleForPodIdentity") {
        Some(CredentialsPath::PodIdentity)
    } else if action.to_ascii_lowercase().starts_with("sts:assumerole")
        // Session tags on an assumed role are asked with the AssumeRole call: the same chain.
        || action.eq_ignore_ascii_case("sts:TagSession")
        || matches!(
            layer,
            Some(PolicyLayer::NoTrustPolicy | PolicyLayer::TrustExplicitDeny)
        )
    {
        Some(CredentialsPath::AssumeRole)
    } else {
        None
    }
}

/// Re-checks a credentials root cause (a Diagnosis's action and error code) with the facts
/// of now: `Ok(true)` when the trust policy (and, for IRSA, the account's OIDC providers) now
/// let Karpenter in, `Ok(false)` when they still refuse it; `Err`: what is missing to tell.
pub fn recheck(
    action: Option<&str>,
    error_code: Option<&str>,
    case: &CredentialsCase<'_>,
    facts: &dyn Facts,
) -> Result<bool, String> {
    let how = path_of_spec(action, error_code)
        .ok_or_else(|| "a credentials failure the doctor cannot re-check".to_string())?;
    let fix = CredentialsFix {
        how,
        role: case.role.map(str::to_string),
        issuer: None,
        caller: None,
        account: None,
        trust: None,
    };
    let proven = prove(how, case, facts, &fix)
        .unwrap_or_else(|| Err(vec!["the caller that assumes the role".into()]));
    match proven {
        Ok(f) => Ok(f.reason == ReasonCode::Undetermined),
        Err(missing) => Err(missing.join(", ")),
    }
}

/// The proof `how` allows from the facts: IRSA's (web identity, OIDC provider) or Pod
/// Identity's; `None` for another role's sts:AssumeRole, which the doctor does not evaluate.
fn prove(
    how: CredentialsPath,
    case: &CredentialsCase<'_>,
    facts: &dyn Facts,
    fix: &CredentialsFix,
) -> Option<Result<Finding, Vec<String>>> {
    match how {
        CredentialsPath::WebIdentity | CredentialsPath::OidcProvider => {
            Some(web_identity(case, facts, fix))
        }
        CredentialsPath::PodIdentity => Some(pod_identity(case, facts, fix)),
        CredentialsPath::AssumeRole => None,
    }
}

/// STS's `RegionDisabledException`: no trust or policy question, one cause per principal.
fn is_region_disabled(s: &Signal) -> bool {
    s.error_code.as_deref() == Some(REGION_DISABLED)
}

/// A credentials failure that is one cause whichever call met it: STS off in the region, or
/// the temporary credentials a call was signed with expired.
pub fn whatever_call(s: &Signal) -> bool {
    is_region_disabled(s) || token_fault(s) == Some(TokenFault::SessionExpired)
}

/// Whether a stored credentials root cause is one the doctor cannot re-check from facts: its
/// code is no trust policy's, or an `InvalidIdentityToken` it left `Undetermined` (the
/// sentence told another fault than the missing provider).
pub fn not_recheckable(error_code: Option<&str>, reason: Option<ReasonCode>) -> bool {
    error_code.is_some_and(|c| {
        NOT_TRUST.contains(&c)
            || (c.starts_with("InvalidIdentityToken") && reason == Some(ReasonCode::Undetermined))
    })
}

pub fn reason(s: &Signal, case: &CredentialsCase<'_>, facts: &dyn Facts) -> Finding {
    if is_region_disabled(s) {
        return region_disabled(s, case);
    }
    if let Some(fault) = token_fault(s) {
        return token(s, fault, case);
    }
    let action = s.action.as_deref().unwrap_or("");
    let role = case.role.map(str::to_string);
    let path = path_of(s);
    let (reason, how, summary) = if path == Some(CredentialsPath::OidcProvider) {
        (
            ReasonCode::OidcProviderMissing,
            CredentialsPath::OidcProvider,
            format!(
                "STS knows no OpenID Connect provider for the cluster's issuer{}: IRSA cannot work until it is registered in IAM",
                s.oidc_issuer
                    .as_deref()
                    .map(|i| format!(" {i}"))
                    .unwrap_or_default()
            ),
        )
    } else if path == Some(CredentialsPath::WebIdentity) {
        (
            ReasonCode::TrustPolicyMismatch,
            CredentialsPath::WebIdentity,
            format!(
                "STS refused sts:AssumeRoleWithWebIdentity for Karpenter's ServiceAccount token: the trust policy of {} does not let it in (issuer, sub or aud)",
                case.role.unwrap_or("the controller role")
            ),
        )
    } else if path == Some(CredentialsPath::PodIdentity) {
        (
            ReasonCode::TrustPolicyMismatch,
            CredentialsPath::PodIdentity,
            format!(
                "EKS Pod Identity could not assume {} for Karpenter: its trust policy must allow pods.eks.amazonaws.com sts:AssumeRole and sts:TagSession",
                case.role.unwrap_or("the associated role")
            ),
        )
    } else if path == Some(CredentialsPath::AssumeRole) {
        (
            ReasonCode::TrustPolicyMismatch,
            CredentialsPath::AssumeRole,
            format!(
                "{} may not assume {}: the role's trust policy does not allow it",
                s.principal.as_deref().unwrap_or("the caller"),
                s.resource.as_deref().or(case.role).unwrap_or("the role")
            ),
        )
    } else {
        return Finding {
            reason: ReasonCode::Undetermined,
            premises: vec![Premise::undecided(What::Sentence, action.to_string())],
            summary: format!("Karpenter cannot get its AWS credentials ({action})"),
            evidence: vec![evidence(
                "error message",
                "a credentials failure the doctor has no reason code for",
            )],
            statement: None,
            fix: Fix::Investigate {
                role,
                action: s.action.clone(),
                resource: None,
            },
        };
    };
    let pod_account = case
        .association
        .filter(|_| how == CredentialsPath::PodIdentity)
        .map(|a| (a.namespace.clone(), a.service_account.clone()));
    let fix = CredentialsFix {
        how,
        role: s
            .resource
            .clone()
            .filter(|_| how == CredentialsPath::AssumeRole)
            .or(role),
        issuer: case.issuer.map(str::to_string),
        caller: s.principal.clone(),
        account: pod_account
            .or_else(|| case.account.map(|a| (a.namespace.clone(), a.name.clone()))),
        trust: None,
    };
    let proven = prove(how, case, facts, &fix).unwrap_or_else(|| {
        Err(vec![
            "the role's trust policy (it would name the statement at fault)".into(),
        ])
    });
    let missing = match proven {
        Ok(proven) => return proven,
        Err(missing) => format!("{} would confirm it", missing.join(", ")),
    };
    Finding {
        reason,
        premises: vec![Premise::undecided(What::Credentials, missing.clone())],
        summary,
        evidence: vec![evidence(
            "error message",
            format!(
                "{} was refused; the cause is inferred, not proven: {missing}",
                if action.is_empty() {
                    "Karpenter's credentials"
                } else {
                    action
                }
            ),
        )],
        statement: None,
        fix: Fix::Credentials(fix),
    }
}

/// IRSA from the facts: the account's OIDC providers lack the cluster's issuer
/// (`OidcProviderMissing`), or the trust policy refuses the token STS was given
/// (`TrustPolicyMismatch`): both `Confirmed`. `Err`: what is missing to tell.
fn web_identity(
    case: &CredentialsCase<'_>,
    facts: &dyn Facts,
    fix: &CredentialsFix,
) -> Result<Finding, Vec<String>> {
    let mut missing = Vec::new();
    let role = case.role.and_then(Arn::parse);
    if role.is_none() {
        missing
            .push("the controller role (Karpenter's ServiceAccount, or --controller-role)".into());
    }
    let host = case
        .issuer
        .map(|i| i.trim_start_matches("https://").trim_end_matches('/'));
    if host.is_none() {
        missing.push("the cluster's OIDC issuer (aws eks describe-cluster)".into());
    }
    let provider = role.as_ref().zip(host).map(|(r, host)| {
        format!(
            "arn:{}:iam::{}:oidc-provider/{host}",
            case.partition.id, r.account
        )
    });
    if let (Some(provider), Some(providers)) = (&provider, case.providers)
        && !providers.contains(provider)
    {
        return Ok(provider_missing(case, provider, providers, fix));
    }
    if fix.how == CredentialsPath::OidcProvider && case.providers.is_none() {
        missing
            .push("the account's OIDC providers (aws iam list-open-id-connect-providers)".into());
    }
    let trust = trust_policy(case.role, facts, case.trusts, &mut missing);
    if case.account.is_none() {
        missing.push("Karpenter's ServiceAccount (kubectl get serviceaccount -o yaml)".into());
    }
    let (Some((trust, source)), Some(provider), Some(host), Some(account), Some(role_arn)) =
        (trust, provider, host, case.account, case.role)
    else {
        return Err(missing);
    };
    let sub = format!(
        "system:serviceaccount:{}:{}",
        account.namespace, account.name
    );
    let audience = account.audience.as_deref().unwrap_or(AUDIENCE);
    let mut request = Request::new(&provider, WEB_IDENTITY, role_arn);
    request.context.insert(&format!("{host}:sub"), sub.clone());
    request.context.insert(&format!("{host}:aud"), audience);
    let set = PolicySet {
        resource: Some(trust.clone()),
        ..PolicySet::default()
    };
    let explanation = set.explain(&request);
    let token = format!(
        "the token of {}/{} ({host}:sub = {sub}, aud {audience}) from {provider}",
        account.namespace, account.name
    );
    if explanation.decision == Decision::Allowed {
        return match case.providers {
            Some(_) => Ok(Finding {
                reason: ReasonCode::Undetermined,
                premises: vec![Premise::undecided(What::Credentials, role_arn.to_string())],
                summary: format!(
                    "The trust policy of {role_arn} lets Karpenter's ServiceAccount in and the account has the cluster's OIDC provider, yet STS refused"
                ),
                evidence: vec![
                    evidence(source.as_str(), format!("the trust policy allows {token}")),
                    evidence("oidc providers", format!("{provider} is registered")),
                ],
                statement: None,
                fix: Fix::Credentials(fix.clone()),
            }),
            None => {
                missing.push(format!("the account's OIDC providers (aws iam list-open-id-connect-providers): the trust policy allows {token}, so the provider is the likely gap"));
                Err(missing)
            }
        };
    }
    let undecided = undecided_refusal(&explanation, "the token's sub and aud", &source);
    if !undecided.is_empty() {
        missing.extend(undecided);
        return Err(missing);
    }
    // The statements that name this provider for web identity: the one to correct.
    let naming: Vec<_> = explanation
        .statements
        .iter()
        .filter(|t| t.policy_type == PolicyType::ResourcePolicy && t.action_matched)
        .collect();
    let mut evidence_lines = vec![evidence(
        source.as_str(),
        format!("the trust policy of {role_arn} refuses {token}"),
    )];
    for t in &naming {
        let st = &trust.statements[t.index];
        let what = match t.principal_matched {
            Some(false) => format!(
                "names {} as Federated principal, not this cluster's provider",
                st.principals
                    .as_ref()
                    .map(|p| p.federated.join(", "))
                    .filter(|f| !f.is_empty())
                    .unwrap_or_else(|| "another principal".into())
            ),
            _ if t.matched && t.effect == Effect::Deny => "denies it explicitly".into(),
            _ => {
                let failed: Vec<String> = t
                    .conditions
                    .iter()
                    .filter(|c| !c.matched)
                    .map(|c| {
                        format!(
                            "{} {} {:?} is not met by {:?}",
                            c.operator,
                            c.key,
                            c.values,
                            c.request_values.clone().unwrap_or_default()
                        )
                    })
                    .collect();
                if failed.is_empty() {
                    "does not apply".into()
                } else {
                    failed.join("; ")
                }
            }
        };
        evidence_lines.push(evidence(
            source.as_str(),
            format!("{}: {what}", statement_label(t)),
        ));
    }
    let at_fault = naming.iter().find(|t| t.principal_matched != Some(false));
    let corrected = corrected_trust(
        &trust,
        at_fault.map(|t| t.index),
        &provider,
        host,
        &sub,
        audience,
    );
    Ok(Finding {
        reason: ReasonCode::TrustPolicyMismatch,
        premises: vec![Premise::decided(What::Credentials, role_arn.to_string())],
        summary: match at_fault {
            Some(_) => format!(
                "The trust policy of {role_arn} names the cluster's OIDC provider but its conditions refuse Karpenter's ServiceAccount {}/{}",
                account.namespace, account.name
            ),
            None => format!(
                "The trust policy of {role_arn} does not name the cluster's OIDC provider {provider}: Karpenter's ServiceAccount token is refused"
            ),
        },
        evidence: evidence_lines,
        statement: at_fault.map(|t| StatementRef {
            policy: "trust".into(),
            sid: t.sid.clone(),
            index: Some(t.index),
        }),
        fix: Fix::Credentials(CredentialsFix {
            trust: Some(corrected),
            ..fix.clone()
        }),
    })
}

/// The trust policy of `role` and where it was read (the facts, else `aws iam get-role`
/// output); what is missing otherwise.
pub(crate) fn trust_policy(
    role: Option<&str>,
    facts: &dyn Facts,
    trusts: &[RoleTrust],
    missing: &mut Vec<String>,
) -> Option<(crate::policy::Policy, String)> {
    let role = role?;
    let looked = facts.principal(role);
    if let Lookup::Found(p) = &looked
        && let Some(trust) = &p.trust
    {
        return Some((trust.clone(), p.source.clone()));
    }
    if let Some(t) = trusts.iter().find(|t| t.arn == role) {
        let read = crate::facts::iam_snapshot::trust_document(
            &t.document,
            "$.Role.AssumeRolePolicyDocument",
        );
        return match read {
            Ok(policy) => Some((policy, "aws iam get-role".to_string())),
            Err(e) => {
                missing.push(format!(
                    "a readable trust policy of {} (aws iam get-role: {e})",
                    t.arn
                ));
                None
            }
        };
    }
    match looked {
        Lookup::Found(p) => missing.push(format!(
            "the trust policy of {} ({} has none)",
            p.arn, p.source
        )),
        Lookup::Absent(why) | Lookup::Unknown(why) => {
            missing.push(format!("the role's trust policy ({why})"))
        }
    }
    None
}

/// EKS Pod Identity from the facts: the associated role's trust policy evaluated for EKS
/// Auth's two requests (`pods.eks.amazonaws.com`: sts:AssumeRole, sts:TagSession, with the
/// session tags EKS sets where the association names them). `Confirmed` where one is refused
/// on what is known; `Err`: what is missing to tell.
fn pod_identity(
    case: &CredentialsCase<'_>,
    facts: &dyn Facts,
    fix: &CredentialsFix,
) -> Result<Finding, Vec<String>> {
    let mut missing = Vec::new();
    let Some(role_arn) = case.role.filter(|r| Arn::parse(r).is_some()) else {
        return Err(vec![
            "the associated role (aws eks describe-pod-identity-association, or --controller-role)"
                .into(),
        ]);
    };
    // Proven only for the role EKS Auth assumed: the one Karpenter's association names.
    if case.association.and_then(|a| a.role.as_deref()) != Some(role_arn) {
        missing.push(format!(
            "Karpenter's Pod Identity association naming {role_arn} as its role (aws eks describe-pod-identity-association)"
        ));
    }
    let Some((trust, source)) = trust_policy(Some(role_arn), facts, case.trusts, &mut missing)
    else {
        return Err(missing);
    };
    let set = PolicySet {
        resource: Some(trust.clone()),
        ..PolicySet::default()
    };
    let mut refused = Vec::new();
    let mut evidence_lines = Vec::new();
    for action in POD_IDENTITY_ACTIONS {
        let mut request = Request::new(POD_IDENTITY, action, role_arn);
        if let Some(a) = case.association {
            let tags = [
                ("kubernetes-namespace", Some(&a.namespace)),
                ("kubernetes-service-account", Some(&a.service_account)),
                ("eks-cluster-name", a.cluster.as_ref()),
            ];
            for (tag, value) in tags {
                if let Some(v) = value {
                    request
                        .context
                        .insert(&format!("aws:RequestTag/{tag}"), v.clone());
                }
            }
        }
        let explanation = set.explain(&request);
        if explanation.decision == Decision::Allowed {
            evidence_lines.push(evidence(
                source.as_str(),
                format!("the trust policy of {role_arn} allows {POD_IDENTITY} {action}"),
            ));
            continue;
        }
        let undecided = undecided_refusal(&explanation, "the session tags EKS sets", &source);
        if !undecided.is_empty() {
            for line in undecided {
                if !missing.contains(&line) {
                    missing.push(line);
                }
            }
            continue;
        }
        let naming = explanation.statements.iter().find(|t| {
            t.policy_type == PolicyType::ResourcePolicy
                && t.principal_matched == Some(true)
                && t.effect == Effect::Allow
        });
        let why = match (explanation.decision, naming) {
            (Decision::ExplicitDeny, _) => "a Deny statement matches it".to_string(),
            (_, Some(t)) => format!(
                "{} names {POD_IDENTITY} but not this action",
                statement_label(t)
            ),
            (_, None) => format!("no statement names {POD_IDENTITY}"),
        };
        evidence_lines.push(evidence(
            source.as_str(),
            format!("the trust policy of {role_arn} refuses {POD_IDENTITY} {action}: {why}"),
        ));
        refused.push((
            action,
            explanation.decision,
            naming.map(|t| (t.index, t.sid.clone())),
        ));
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let Some((_, decision, at)) = refused.first().cloned() else {
        return Ok(Finding {
            reason: ReasonCode::Undetermined,
            premises: vec![Premise::undecided(What::Credentials, role_arn.to_string())],
            summary: format!(
                "The trust policy of {role_arn} lets EKS Pod Identity in ({}), yet EKS Auth refused: check the association's role and that Karpenter's pods were restarted after it was made",
                POD_IDENTITY_ACTIONS.join(", ")
            ),
            evidence: evidence_lines,
            statement: None,
            fix: Fix::Credentials(fix.clone()),
        });
    };
    let actions: Vec<&str> = refused.iter().map(|(a, ..)| *a).collect();
    let corrected = (decision != Decision::ExplicitDeny)
        .then(|| corrected_pod_trust(&trust, at.as_ref().map(|(i, _)| *i), &actions));
    Ok(Finding {
        reason: ReasonCode::TrustPolicyMismatch,
        premises: vec![Premise::decided(What::Credentials, role_arn.to_string())],
        summary: format!(
            "The trust policy of {role_arn} does not let EKS Pod Identity ({POD_IDENTITY}) {}: EKS Auth cannot give Karpenter its credentials",
            actions.join(" or ")
        ),
        evidence: evidence_lines,
        statement: at.map(|(index, sid)| StatementRef {
            policy: "trust".into(),
            sid,
            index: Some(index),
        }),
        fix: Fix::Credentials(CredentialsFix {
            trust: corrected,
            ..fix.clone()
        }),
    })
}

/// The trust policy with EKS Pod Identity's `actions` allowed, every other statement kept: the
/// statement `at` (it names `pods.eks.amazonaws.com`) gets them; with none, one is added.
fn corrected_pod_trust(
    trust: &crate::policy::Policy,
    at: Option<usize>,
    actions: &[&str],
) -> Value {
    let added = json!({"Effect": "Allow", "Principal": {"Service": POD_IDENTITY},
        "Action": POD_IDENTITY_ACTIONS});
    corrected(trust, at, added, |source| {
        let mut all: Vec<Value> = match source.remove("Action") {
            Some(Value::Array(a)) => a,
            Some(one) => vec![one],
            None => Vec::new(),
        };
        for a in actions {
            if !all
                .iter()
                .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(a)))
            {
                all.push(json!(a));
            }
        }
        source.insert("Action".into(), Value::Array(all));
    })
}

/// A trust policy corrected: every statement kept as written (without the `Resource` the
/// parser may have read: IAM refuses it in a trust policy), `edit` applied to statement `at`;
/// with none, `added` appended.
fn corrected(
    trust: &crate::policy::Policy,
    at: Option<usize>,
    added: Value,
    edit: impl Fn(&mut Map<String, Value>),
) -> Value {
    let mut statements: Vec<Value> = trust
        .statements
        .iter()
        .map(|st| {
            let mut source = st.source.clone();
            source.remove("Resource");
            if Some(st.index) == at {
                edit(&mut source);
            }
            Value::Object(source)
        })
        .collect();
    if at.is_none() {
        statements.push(added);
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Where a trust policy's refusal rests only on conditions the doctor cannot decide (a key
/// STS's request may carry that the doctor does not know of, an unknown operator): what would
/// decide each. Empty when the refusal is proven by what is known.
pub(crate) fn undecided_refusal(
    explanation: &Explanation,
    known: &str,
    source: &str,
) -> Vec<String> {
    let trust = explanation.statements.iter().filter(|t| {
        t.policy_type == PolicyType::ResourcePolicy && t.action_matched && t.resource_matched
    });
    let open: Vec<(&StatementTrace, Vec<&ConditionTrace>)> =
        if explanation.decision == Decision::ExplicitDeny {
            let denies: Vec<_> = trust
                .filter(|t| t.matched && t.effect == Effect::Deny)
                .collect();
            if denies
                .iter()
                .any(|t| t.conditions.iter().all(|c| !c.undecided()))
            {
                return Vec::new();
            }
            denies
                .into_iter()
                .map(|t| (t, t.conditions.iter().filter(|c| c.undecided()).collect()))
                .collect()
        } else {
            // Refused for sure where each statement that could let the token in fails on its
            // principal or on a condition the doctor can decide.
            trust
                .filter(|t| t.effect == Effect::Allow && t.principal_matched != Some(false))
                .filter_map(|t| {
                    let failed: Vec<_> = t.conditions.iter().filter(|c| !c.matched).collect();
                    failed.iter().all(|c| c.undecided()).then_some((t, failed))
                })
                .collect()
        };
    let mut what: Vec<String> = Vec::new();
    for (t, conditions) in open {
        for c in conditions {
            let line = match &c.warning {
                Some(w) => format!(
                    "how AWS reads {} {} in {} of the trust policy read from {source} ({w})",
                    c.operator,
                    c.key,
                    statement_label(t)
                ),
                None => format!(
                    "the value of {} in STS's request (the trust policy read from {source} refuses it only there: {} tests it with {}; the doctor knows only {known})",
                    c.key,
                    statement_label(t),
                    c.operator
                ),
            };
            if !what.contains(&line) {
                what.push(line);
            }
        }
    }
    what
}

/// `statement N (Sid)` of a trust policy.
pub(crate) fn statement_label(t: &StatementTrace) -> String {
    format!(
        "statement {}{}",
        t.index,
        t.sid
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    )
}

fn provider_missing(
    case: &CredentialsCase<'_>,
    provider: &str,
    providers: &[String],
    fix: &CredentialsFix,
) -> Finding {
    Finding {
        reason: ReasonCode::OidcProviderMissing,
        premises: vec![Premise::decided(
            What::Credentials,
            "iam:ListOpenIDConnectProviders",
        )],
        summary: format!(
            "The cluster's OIDC issuer {} is not an IAM OIDC provider of the role's account: IRSA cannot work until it is registered",
            case.issuer.unwrap_or_default()
        ),
        evidence: vec![evidence(
            "oidc providers",
            format!(
                "{provider} is not among the account's {} OIDC provider(s){}",
                providers.len(),
                if providers.is_empty() {
                    String::new()
                } else {
                    format!(": {}", providers.join(", "))
                }
            ),
        )],
        statement: None,
        fix: Fix::Credentials(CredentialsFix {
            how: CredentialsPath::OidcProvider,
            ..fix.clone()
        }),
    }
}

/// The trust policy with Karpenter's web identity allowed, every other statement kept: the
/// statement `at` (it names the provider) gets the right `sub` and `aud`; with none, one is
/// added.
fn corrected_trust(
    trust: &crate::policy::Policy,
    at: Option<usize>,
    provider: &str,
    host: &str,
    sub: &str,
    audience: &str,
) -> Value {
    let (sub_key, aud_key) = (format!("{host}:sub"), format!("{host}:aud"));
    let added = json!({"Effect": "Allow", "Principal": {"Federated": provider},
        "Action": WEB_IDENTITY,
        "Condition": {"StringEquals": {&sub_key: sub, &aud_key: audience}}});
    corrected(trust, at, added, |source| {
        let mut conditions = match source.remove("Condition") {
            Some(Value::Object(c)) => c,
            _ => Map::new(),
        };
        // The keys of this provider move to StringEquals with the right values; other keys
        // (other tests the owner wrote) stay.
        for (_, keys) in conditions.iter_mut() {
            if let Value::Object(keys) = keys {
                keys.retain(|k, _| {
                    !k.eq_ignore_ascii_case(&sub_key) && !k.eq_ignore_ascii_case(&aud_key)
                });
            }
        }
        conditions.retain(|_, keys| keys.as_object().is_none_or(|k| !k.is_empty()));
        let equals = conditions
            .entry("StringEquals")
            .or_insert_with(|| json!({}));
        if let Value::Object(equals) = equals {
            equals.insert(sub_key.clone(), json!(sub));
            equals.insert(aud_key.clone(), json!(audience));
        }
        source.insert("Condition".into(), Value::Object(conditions));
    })
}

/// `RegionDisabledException`: STS answered that it is not activated in the region Karpenter
/// called for the account it names. AWS's own verdict on the request, so `Confirmed` when the
/// sentence is whole (it ends with the account); cut before the account, `Inferred`. No policy
/// or trust statement is at fault, and no lookup could add anything: STS activation per region
/// is an account setting no API reads.
fn region_disabled(s: &Signal, case: &CredentialsCase<'_>) -> Finding {
    let account = region_disabled_account(&s.message);
    let call = s
        .action
        .as_deref()
        .filter(|a| a.starts_with("sts:"))
        .unwrap_or("its STS call");
    // AWS's own verdict on the request, whole where the text names the account.
    let sentence = |whole| Premise {
        whole,
        ..Premise::decided(What::Sentence, "RegionDisabledException")
    };
    let (premise, detail) = match &account {
        Some(a) => (
            sentence(true),
            format!(
                "STS refused {call} with RegionDisabledException: STS is not activated in the region Karpenter called for account {a} (AWS's own verdict on the request)"
            ),
        ),
        None => (
            sentence(false),
            format!(
                "STS refused {call} with RegionDisabledException, but the text is cut before the account it names: the whole message (Karpenter's log) would confirm it"
            ),
        ),
    };
    Finding {
        reason: ReasonCode::StsRegionDisabled,
        premises: vec![premise],
        summary: format!(
            "STS is not activated in the region Karpenter calls{}: Karpenter gets no credentials until the region is activated or it uses an active STS endpoint",
            account
                .as_deref()
                .map(|a| format!(" for account {a}"))
                .unwrap_or_default()
        ),
        evidence: vec![evidence("error message", detail)],
        statement: None,
        fix: Fix::StsRegion {
            account,
            role: case.role.map(str::to_string),
            namespace: case.account.map(|a| a.namespace.clone()),
        },
    }
}

/// A token or credentials failure (`token_fault`): AWS's code and sentence say what failed but
/// not why, and no fact the doctor reads decides it (the token's claims, the node's clock, the
/// issuer's reachability from STS, the OIDC provider's client IDs): `Undetermined`, with what
/// AWS said and what is known of Karpenter's identity as evidence.
fn token(s: &Signal, fault: TokenFault, case: &CredentialsCase<'_>) -> Finding {
    let code = s.error_code.as_deref().unwrap_or("its error");
    let call = s.action.as_deref().unwrap_or("a call");
    let issuer = case.issuer.unwrap_or("the cluster's OIDC issuer");
    let audience = case
        .account
        .and_then(|a| a.audience.as_deref())
        .unwrap_or(AUDIENCE);
    let (summary, said) = match fault {
        TokenFault::SessionExpired => (
            "Karpenter signed its AWS calls with temporary credentials that had expired".to_string(),
            format!("AWS refused {call} with {code}: the security token in the request is expired (Karpenter's SDK did not refresh its credentials in time, or the clock of its node is off)"),
        ),
        TokenFault::WebIdentityTokenExpired => (
            "STS refused Karpenter's ServiceAccount token as expired: IRSA exchanged a token past its exp".to_string(),
            format!("STS refused sts:AssumeRoleWithWebIdentity with {code}: the web identity token's exp had passed (the projected token was not refreshed, or the clock of Karpenter's node is off)"),
        ),
        TokenFault::Audience => (
            format!("STS refused Karpenter's ServiceAccount token: its audience is not a client ID of the IAM OIDC provider for {issuer}"),
            format!("STS refused sts:AssumeRoleWithWebIdentity with {code}: Incorrect token audience (the token asks for aud {audience}; the IAM OIDC provider must list it among its client IDs)"),
        ),
        TokenFault::VerificationKey => (
            format!("STS could not fetch the signing keys of {issuer} to verify Karpenter's ServiceAccount token"),
            format!("STS refused sts:AssumeRoleWithWebIdentity with {code}: it could not retrieve the verification key from the identity provider (the issuer's keys not publicly reachable, or the issuer of a cluster that no longer exists)"),
        ),
        TokenFault::Thumbprint => (
            format!("STS does not trust the HTTPS certificate of {issuer}: the IAM OIDC provider's thumbprint does not match"),
            format!("STS refused sts:AssumeRoleWithWebIdentity with {code}: the OpenID Connect provider's HTTPS certificate does not match the thumbprint configured on the IAM OIDC provider"),
        ),
        TokenFault::IdentityToken => (
            "STS could not validate Karpenter's ServiceAccount token".to_string(),
            format!("STS refused sts:AssumeRoleWithWebIdentity with {code}: the web identity token could not be validated (issuer, signature or claims); AWS's sentence says which"),
        ),
        TokenFault::IdpUnreachable => (
            format!("STS could not reach {issuer} to verify Karpenter's ServiceAccount token"),
            format!("STS refused sts:AssumeRoleWithWebIdentity with {code}: the identity provider that verifies the token could not be reached (often transient; if it persists the issuer is down or not reachable from AWS)"),
        ),
        TokenFault::PodTokenExpired => (
            "EKS Auth refused Karpenter's Pod Identity token as expired".to_string(),
            format!("EKS Auth refused eks-auth:AssumeRoleForPodIdentity with {code}: the Kubernetes ServiceAccount token is expired (not refreshed, or the clock of Karpenter's node is off)"),
        ),
        TokenFault::PodTokenInvalid => (
            "EKS Auth refused Karpenter's Pod Identity token as invalid".to_string(),
            format!("EKS Auth refused eks-auth:AssumeRoleForPodIdentity with {code}: the Kubernetes ServiceAccount token is invalid (not issued by this cluster, or not for the audience pods.eks.amazonaws.com)"),
        ),
        TokenFault::NoAssociation => (
            "EKS Auth found no Pod Identity association for Karpenter's pod".to_string(),
            format!("EKS Auth refused eks-auth:AssumeRoleForPodIdentity with {code}: no Pod Identity association answers for the cluster, namespace and ServiceAccount of Karpenter's pod (deleted after the pod started, or made for another ServiceAccount or cluster)"),
        ),
    };
    let mut lines = vec![evidence("error message", said)];
    // Karpenter's ServiceAccount: its Pod Identity association's for EKS Auth's faults, else
    // the one IRSA names.
    let pod_identity = matches!(
        fault,
        TokenFault::PodTokenExpired | TokenFault::PodTokenInvalid | TokenFault::NoAssociation
    );
    let account = case
        .association
        .filter(|_| pod_identity)
        .map(|a| (a.namespace.clone(), a.service_account.clone()))
        .or_else(|| case.account.map(|a| (a.namespace.clone(), a.name.clone())));
    let known = match (case.role, &account) {
        (Some(r), Some((ns, sa))) => Some(format!("Karpenter runs as {ns}/{sa} for {r}")),
        (Some(r), None) => Some(format!("Karpenter's controller role is {r}")),
        (None, Some((ns, sa))) => Some(format!("Karpenter runs as {ns}/{sa}")),
        (None, None) => None,
    };
    if let Some(known) = known {
        lines.push(evidence("karpenter", known));
    }
    if fault == TokenFault::NoAssociation
        && let Some(a) = case.association
    {
        lines.push(evidence(
            "pod identity associations",
            format!(
                "an association for {}/{} is listed{}: EKS Auth did not find it for the pod that called (another cluster, or one made after the pod started)",
                a.namespace,
                a.service_account,
                a.role
                    .as_deref()
                    .map(|r| format!(" (role {r})"))
                    .unwrap_or_default()
            ),
        ));
    }
    lines.push(evidence(
        "doctor",
        "no policy or trust statement is at fault, and no fact the doctor reads decides the cause: contract §5 has no reason for it",
    ));
    Finding {
        reason: ReasonCode::Undetermined,
        premises: vec![Premise::undecided(What::Sentence, code.to_string())],
        summary,
        evidence: lines,
        statement: None,
        fix: Fix::Token {
            fault,
            role: case.role.map(str::to_string),
            account,
            issuer: case.issuer.map(str::to_string),
            audience: case.account.and_then(|a| a.audience.clone()),
        },
    }
}

/// The 12-digit account a `RegionDisabledException` names (`… for account:123456789012.`),
/// only when the digits are whole (followed by the sentence's end).
fn region_disabled_account(message: &str) -> Option<String> {
    const MARK: &str = "not activated in this region for account:";
    let rest = message[message.find(MARK)? + MARK.len()..].trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = rest[digits.len()..].chars().next();
    (digits.len() == 12 && matches!(after, Some('.' | ' ' | '\n' | '"' | ','))).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn association(namespace: &str, account: &str, role: Option<&str>) -> PodIdentityInfo {
        PodIdentityInfo {
            cluster: Some("prod".into()),
            namespace: namespace.into(),
            service_account: account.into(),
            role: role.map(str::to_string),
        }
    }

    #[test]
    fn only_karpenters_own_association_names_its_role() {
        let mut obs = Observations {
            pod_identities: vec![association(
                "kube-system",
                "ebs-csi-controller-sa",
                Some("arn:aws:iam::1:role/ebs"),
            )],
            ..Observations::default()
        };
        assert_eq!(karpenter_association(&obs), None, "another workload's");
        obs.pod_identities.push(association(
            "kube-system",
            "karpenter",
            Some("arn:aws:iam::1:role/k"),
        ));
        assert_eq!(
            karpenter_association(&obs).and_then(|a| a.role.as_deref()),
            Some("arn:aws:iam::1:role/k")
        );
        // The ServiceAccount Karpenter's pod runs as decides, whatever it is called.
        obs.pod_identities.push(association(
            "autoscaling",
            "provisioner",
            Some("arn:aws:iam::1:role/p"),
        ));
        obs.karpenter_pods.push(crate::signal::PodInfo {
            namespace: "autoscaling".into(),
            name: "karpenter-0".into(),
            service_account: "provisioner".into(),
            credentials: crate::signal::PodCredentials::PodIdentity,
        });
        assert_eq!(
            karpenter_association(&obs).and_then(|a| a.role.as_deref()),
            Some("arn:aws:iam::1:role/p")
        );
        // Two Karpenter-named ones and no pod: which is not known.
        obs.karpenter_pods.clear();
        obs.pod_identities.push(association(
            "karpenter",
            "karpenter",
            Some("arn:aws:iam::1:role/k2"),
        ));
        assert_eq!(karpenter_association(&obs), None);
    }

    fn refused(code: &str, action: Option<&str>, message: &str) -> Signal {
        let origin = crate::signal::Origin {
            file: "t".into(),
            line: 1,
        };
        Signal {
            error_code: Some(code.into()),
            action: action.map(str::to_string),
            ..Signal::new(
                crate::signal::Source::Log,
                origin,
                "r",
                crate::signal::Category::CredentialsDenied,
                message,
            )
        }
    }

    #[test]
    fn token_faults_are_read_from_code_call_and_sentence() {
        let web = Some(WEB_IDENTITY);
        let pod = Some(POD_IDENTITY_CALL);
        for (code, action, message, want) in [
            (
                "InvalidIdentityToken",
                web,
                "InvalidIdentityToken: No OpenIDConnect provider found in your account for https://x",
                None,
            ),
            (
                "InvalidIdentityToken",
                web,
                "InvalidIdentityToken: Incorrect token audience",
                Some(TokenFault::Audience),
            ),
            (
                "InvalidIdentityTokenException",
                web,
                "Couldn't retrieve verification key from your identity provider",
                Some(TokenFault::VerificationKey),
            ),
            (
                "InvalidIdentityToken",
                web,
                "OpenIDConnect provider's HTTPS certificate doesn't match configured thumbprint",
                Some(TokenFault::Thumbprint),
            ),
            (
                "InvalidIdentityToken",
                web,
                "Missing a required claim: aud",
                Some(TokenFault::IdentityToken),
            ),
            (
                "IDPCommunicationError",
                web,
                "IDPCommunicationError: …",
                Some(TokenFault::IdpUnreachable),
            ),
            (
                "ExpiredTokenException",
                web,
                "Token expired: current date/time 1 must be before",
                Some(TokenFault::WebIdentityTokenExpired),
            ),
            (
                "ExpiredToken",
                Some("ec2:CreateFleet"),
                "The security token included in the request is expired",
                Some(TokenFault::SessionExpired),
            ),
            (
                "ExpiredTokenException",
                pod,
                "token is expired",
                Some(TokenFault::PodTokenExpired),
            ),
            (
                "InvalidTokenException",
                pod,
                "…",
                Some(TokenFault::PodTokenInvalid),
            ),
            (
                "ResourceNotFoundException",
                pod,
                "…",
                Some(TokenFault::NoAssociation),
            ),
            // Not EKS Auth's: not a token fault.
            (
                "ResourceNotFoundException",
                Some("ec2:CreateFleet"),
                "…",
                None,
            ),
            (
                "AccessDenied",
                web,
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                None,
            ),
        ] {
            let s = refused(code, action, message);
            assert_eq!(token_fault(&s), want, "{code} {message}");
            if want.is_some() {
                assert_eq!(path_of(&s), None, "{code}: no trust policy proof");
            }
        }
        // A stored InvalidIdentityToken is re-checked as the missing provider unless the
        // doctor left it Undetermined.
        assert!(!not_recheckable(
            Some("InvalidIdentityToken"),
            Some(ReasonCode::OidcProviderMissing)
        ));
        assert!(not_recheckable(
            Some("InvalidIdentityToken"),
            Some(ReasonCode::Undetermined)
        ));
        assert!(not_recheckable(Some("ExpiredToken"), None));
        assert_eq!(
            path_of_spec(Some(POD_IDENTITY_CALL), Some("ResourceNotFoundException")),
            None
        );
    }

    #[test]
    fn region_disabled_names_the_account_only_when_whole() {
        let whole = "RegionDisabledException: STS is not activated in this region for account:111122223333. Your account administrator can activate STS";
        assert_eq!(
            region_disabled_account(whole).as_deref(),
            Some("111122223333")
        );
        for cut in [
            "RegionDisabledException: STS is not activated in this region for account:1111222233",
            "RegionDisabledException: STS is not activated in this region for account:111122223333",
            "RegionDisabledException: STS is not activated in this region for acc",
        ] {
            assert_eq!(region_disabled_account(cut), None, "{cut}");
        }
    }
}
