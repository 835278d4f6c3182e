//! The lookups, one method per fact: a role's policies (GetRole, ListRolePolicies,
//! GetRolePolicy, ListAttachedRolePolicies, GetPolicy, GetPolicyVersion), SimulatePrincipalPolicy,
//! a key's state, grants and policy, STS identity and decoding, EC2 instances, and for
//! credentials failures a cluster's OIDC issuer, the OIDC providers, Pod Identity associations.

use super::cache::Cache;
use super::guard::{AwsError, Guard};
use super::{AwsOptions, sdk_config};
use crate::facts::authorization::AuthorizationDetails;
use crate::facts::fetched::{Simulation, SimulationKey};
use crate::facts::iam_snapshot::{PolicyKind, PolicySize, PrincipalPolicies};
use crate::facts::kms_snapshot::{Grant, KeyFacts};
use crate::policy::Policy;
use crate::policy::arn::{Arn, role_name_of};
use crate::signal::PodIdentityInfo;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum};
use aws_smithy_types::Document;
use serde_json::json;
use std::collections::BTreeMap;

/// Every AWS operation the doctor can call, as `service:Operation` (the IAM action it needs).
/// `manifests/iam-policy.json` must allow exactly these (a test checks).
pub const OPERATIONS: [&str; 23] = [
    "iam:GetRole",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:SimulatePrincipalPolicy",
    "kms:DescribeKey",
    "kms:ListGrants",
    "kms:GetKeyPolicy",
    "sts:GetCallerIdentity",
    "sts:DecodeAuthorizationMessage",
    "ec2:DescribeInstances",
    "ec2:DescribeImages",
    "ec2:DescribeSnapshots",
    "ec2:GetEbsEncryptionByDefault",
    "ec2:GetEbsDefaultKmsKeyId",
    "iam:ListOpenIDConnectProviders",
    "eks:DescribeCluster",
    "eks:ListPodIdentityAssociations",
    "eks:DescribePodIdentityAssociation",
    "iam:GetRequestAuthorizationDetails",
    // Only with --assume-role, by the SDK's credential provider (see `Live::connect`).
    "sts:AssumeRole",
];

/// At most this many Pod Identity associations are described per cluster and namespace.
const MAX_ASSOCIATIONS: usize = 20;

/// A handle on live AWS.
pub struct Live {
    iam: aws_sdk_iam::Client,
    kms: aws_sdk_kms::Client,
    /// KMS as the role assumed in each other account (--assume-role), with the role's ARN.
    kms_in: BTreeMap<String, (String, aws_sdk_kms::Client)>,
    sts: aws_sdk_sts::Client,
    ec2: aws_sdk_ec2::Client,
    eks: aws_sdk_eks::Client,
    toolbox: aws_sdk_iamtoolbox::Client,
    /// `--cluster-name`.
    pub cluster_name: Option<String>,
    /// The region the clients call (`--region`, else the default chain's).
    pub region: Option<String>,
    pub guard: Guard,
    principals: Cache<PrincipalPolicies>,
    keys: Cache<KeyFacts>,
    simulations: Cache<Simulation>,
    decoded: Cache<String>,
    images: Cache<Vec<String>>,
    instances: Cache<serde_json::Value>,
    issuers: Cache<String>,
    providers: Cache<Vec<String>>,
    associations: Cache<Vec<PodIdentityInfo>>,
    authorizations: Cache<AuthorizationDetails>,
    ebs_defaults: Cache<crate::facts::EbsDefault>,
}

impl Live {
    pub async fn connect(options: &AwsOptions) -> Live {
        let config = sdk_config(options).await;
        let (ttl, error_ttl) = (options.ttl, options.ttl / 10);
        let mut kms_in = BTreeMap::new();
        for (account, role) in &options.assume_roles {
            // The provider calls sts:AssumeRole, and again before the credentials expire.
            let credentials = AssumeRoleProvider::builder(role)
                .session_name("karpenter-doctor")
                .configure(&config)
                .build()
                .await;
            let assumed = config
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(credentials))
                .build();
            kms_in.insert(
                account.clone(),
                (role.clone(), aws_sdk_kms::Client::new(&assumed)),
            );
        }
        Live {
            iam: aws_sdk_iam::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            kms_in,
            sts: aws_sdk_sts::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            eks: aws_sdk_eks::Client::new(&config),
            toolbox: aws_sdk_iamtoolbox::Client::new(&config),
            cluster_name: options.cluster_name.clone(),
            region: config.region().map(|r| r.to_string()),
            guard: Guard::new(&options.rates),
            principals: Cache::new(ttl, error_ttl),
            keys: Cache::new(ttl, error_ttl),
            simulations: Cache::new(ttl, error_ttl),
            decoded: Cache::new(ttl, error_ttl),
            images: Cache::new(ttl, error_ttl),
            instances: Cache::new(ttl, error_ttl),
            issuers: Cache::new(ttl, error_ttl),
            providers: Cache::new(ttl, error_ttl),
            associations: Cache::new(ttl, error_ttl),
            authorizations: Cache::new(ttl, error_ttl),
            ebs_defaults: Cache::new(ttl, error_ttl),
        }
    }

    /// Forgets the answers that a fix changes (policies, keys, simulations, OIDC providers,
    /// Pod Identity associations), so that a re-check sees AWS as it is now.
    pub fn forget_answers(&self) {
        self.principals.clear();
        self.keys.clear();
        self.simulations.clear();
        self.providers.clear();
        self.associations.clear();
        self.ebs_defaults.clear();
    }

    /// The region's default EBS key, and whether EBS encryption by default is on
    /// (`ec2:GetEbsDefaultKmsKeyId`, `ec2:GetEbsEncryptionByDefault`).
    pub async fn ebs_default(&self) -> Result<crate::facts::EbsDefault, AwsError> {
        self.ebs_defaults
            .get("", || async {
                let on = self
                    .guard
                    .call("ec2", "GetEbsEncryptionByDefault", || {
                        self.ec2.get_ebs_encryption_by_default().send()
                    })
                    .await?;
                let key = self
                    .guard
                    .call("ec2", "GetEbsDefaultKmsKeyId", || {
                        self.ec2.get_ebs_default_kms_key_id().send()
                    })
                    .await?;
                Ok(crate::facts::EbsDefault {
                    // Until an account sets one, EC2 uses the AWS managed key.
                    key: key.kms_key_id().unwrap_or("alias/aws/ebs").to_string(),
                    by_default: on.ebs_encryption_by_default(),
                })
            })
            .await
    }

    /// The OIDC issuer of an EKS cluster's ServiceAccount tokens (`eks:DescribeCluster`).
    pub async fn cluster_issuer(&self, cluster: &str) -> Result<String, AwsError> {
        self.issuers
            .get(cluster, || async {
                let out = self
                    .guard
                    .call("eks", "DescribeCluster", || {
                        self.eks.describe_cluster().name(cluster).send()
                    })
                    .await?;
                out.cluster()
                    .and_then(|c| c.identity())
                    .and_then(|i| i.oidc())
                    .and_then(|o| o.issuer())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        missing("eks", "DescribeCluster", "cluster.identity.oidc.issuer")
                    })
            })
            .await
    }

    /// The ARNs of the account's IAM OIDC providers (`iam:ListOpenIDConnectProviders`).
    pub async fn oidc_providers(&self) -> Result<Vec<String>, AwsError> {
        self.providers
            .get("", || async {
                let out = self
                    .guard
                    .call("iam", "ListOpenIDConnectProviders", || {
                        self.iam.list_open_id_connect_providers().send()
                    })
                    .await?;
                Ok(out
                    .open_id_connect_provider_list()
                    .iter()
                    .filter_map(|p| p.arn().map(str::to_string))
                    .collect())
            })
            .await
    }

    /// The Pod Identity associations of `cluster` (in `namespace`, where given), each described
    /// for its role (`eks:ListPodIdentityAssociations`, `eks:DescribePodIdentityAssociation`;
    /// at most `MAX_ASSOCIATIONS` described).
    pub async fn pod_identities(
        &self,
        cluster: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<PodIdentityInfo>, AwsError> {
        let key = format!("{cluster}/{}", namespace.unwrap_or(""));
        self.associations
            .get(&key, || async {
                let listed = every_page(|token| async move {
                    let out = self
                        .guard
                        .call("eks", "ListPodIdentityAssociations", || {
                            self.eks
                                .list_pod_identity_associations()
                                .cluster_name(cluster)
                                .set_namespace(namespace.map(str::to_string))
                                .set_next_token(token)
                                .send()
                        })
                        .await?;
                    let ids: Vec<String> = out
                        .associations()
                        .iter()
                        .filter_map(|a| a.association_id().map(str::to_string))
                        .collect();
                    Ok((ids, out.next_token().map(str::to_string)))
                })
                .await?;
                let mut found = Vec::new();
                for id in listed.iter().take(MAX_ASSOCIATIONS) {
                    let out = self
                        .guard
                        .call("eks", "DescribePodIdentityAssociation", || {
                            self.eks
                                .describe_pod_identity_association()
                                .cluster_name(cluster)
                                .association_id(id)
                                .send()
                        })
                        .await?;
                    if let Some(a) = out.association()
                        && let (Some(namespace), Some(account)) =
                            (a.namespace(), a.service_account())
                    {
                        found.push(PodIdentityInfo {
                            cluster: Some(cluster.to_string()),
                            namespace: namespace.to_string(),
                            service_account: account.to_string(),
                            role: a.role_arn().map(str::to_string),
                        });
                    }
                }
                Ok(found)
            })
            .await
    }

    /// What IAM's Access Troubleshooter recorded of a denied request
    /// (`iam:GetRequestAuthorizationDetails`, every page). The record does not change, so it
    /// is kept until it ages out of the cache.
    pub async fn authorization(&self, id: &str) -> Result<AuthorizationDetails, AwsError> {
        self.authorizations
            .get(id, || async {
                let pages = every_page(|token| async move {
                    let out = self
                        .guard
                        .call("iam", "GetRequestAuthorizationDetails", || {
                            self.toolbox
                                .get_request_authorization_details()
                                .authorization_id(id)
                                .set_next_token(token.clone())
                                .send()
                        })
                        .await?;
                    Ok((vec![out.clone()], out.next_token().map(str::to_string)))
                })
                .await?;
                let mut doc = json!({"requestContext": {}, "evaluations": [], "policies": []});
                for out in &pages {
                    toolbox_page(out, &mut doc);
                }
                AuthorizationDetails::from_value(&doc, Some(id.to_string()), "live iam-toolbox")
                    .map_err(|e| AwsError {
                        service: "iam",
                        operation: "GetRequestAuthorizationDetails",
                        outcome: super::guard::Outcome::Error,
                        message: format!("unreadable answer: {e}"),
                    })
            })
            .await
    }

    /// Who the doctor is (`sts:GetCallerIdentity`).
    pub async fn caller(&self) -> Result<String, AwsError> {
        let out = self
            .guard
            .call("sts", "GetCallerIdentity", || {
                self.sts.get_caller_identity().send()
            })
            .await?;
        Ok(out.arn().unwrap_or_default().to_string())
    }

    /// A role's identity policies and permissions boundary, as IAM holds them now.
    pub async fn principal(&self, role_arn: &str) -> Result<PrincipalPolicies, AwsError> {
        self.principals
            .get(role_arn, || self.fetch_principal(role_arn))
            .await
    }

    async fn fetch_principal(&self, role_arn: &str) -> Result<PrincipalPolicies, AwsError> {
        let name = role_name_of(role_arn).unwrap_or(role_arn).to_string();
        let role = self
            .guard
            .call("iam", "GetRole", || {
                self.iam.get_role().role_name(&name).send()
            })
            .await?;
        let role = role
            .role()
            .ok_or_else(|| missing("iam", "GetRole", "Role"))?;
        let arn = role.arn().to_string();
        let account = |a: &str| Arn::parse(a).map(|a| a.account.to_string());
        if account(role_arn).is_some() && account(&arn) != account(role_arn) {
            // GetRole takes a name: the doctor's own account answered for another one.
            return Err(AwsError {
                service: "iam",
                operation: "GetRole",
                outcome: super::guard::Outcome::Denied,
                message: format!(
                    "{role_arn} is in another account than the doctor's credentials ({arn} answered); read it with a snapshot or credentials of that account"
                ),
            });
        }
        // The trust policy matters to credentials failures only: one that cannot be read is
        // unknown there, and costs the identity policies nothing.
        let trust = role.assume_role_policy_document().and_then(|doc| {
            let text = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
            let value = serde_json::from_str(&text).ok()?;
            Policy::trust_from_value("trust", &value).ok()
        });
        let boundary = role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string);
        let tags: Vec<(String, String)> = role
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        let name = name.as_str();
        let inline = every_page(|marker| async move {
            let page = self
                .guard
                .call("iam", "ListRolePolicies", || {
                    self.iam
                        .list_role_policies()
                        .role_name(name)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let next = next_marker(page.marker(), page.is_truncated());
            Ok((page.policy_names().to_vec(), next))
        })
        .await?;
        let mut identity = Vec::new();
        let mut sizes = Vec::new();
        for policy_name in inline {
            let doc = self
                .guard
                .call("iam", "GetRolePolicy", || {
                    self.iam
                        .get_role_policy()
                        .role_name(name)
                        .policy_name(&policy_name)
                        .send()
                })
                .await?;
            let (policy, chars) = document(
                &format!("inline:{policy_name}"),
                doc.policy_document(),
                "GetRolePolicy",
            )?;
            sizes.push(PolicySize::inline(&policy, chars));
            identity.push(policy);
        }
        let attached = every_page(|marker| async move {
            let page = self
                .guard
                .call("iam", "ListAttachedRolePolicies", || {
                    self.iam
                        .list_attached_role_policies()
                        .role_name(name)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let next = next_marker(page.marker(), page.is_truncated());
            let arns = page.attached_policies().iter();
            Ok((
                arns.filter_map(|p| p.policy_arn().map(str::to_string))
                    .collect(),
                next,
            ))
        })
        .await?;
        for policy_arn in attached {
            let (policy, chars) = self.managed_policy(&policy_arn).await?;
            sizes.push(PolicySize {
                name: policy_arn.clone(),
                kind: PolicyKind::Managed,
                chars: Some(chars),
            });
            identity.push(policy);
        }
        let boundary = match boundary {
            Some(b) => Some(self.managed_policy(&b).await?.0),
            None => None,
        };
        Ok(PrincipalPolicies {
            arn,
            identity,
            boundary,
            trust,
            // GetRole answers with every tag of the role (none listed: it has none).
            tags: Some(tags),
            source: "live IAM".into(),
            sizes: Some(sizes),
        })
    }

    /// A managed policy's default version, and its size.
    async fn managed_policy(&self, policy_arn: &str) -> Result<(Policy, usize), AwsError> {
        let policy = self
            .guard
            .call("iam", "GetPolicy", || {
                self.iam.get_policy().policy_arn(policy_arn).send()
            })
            .await?;
        let version = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .ok_or_else(|| missing("iam", "GetPolicy", "DefaultVersionId"))?
            .to_string();
        let out = self
            .guard
            .call("iam", "GetPolicyVersion", || {
                self.iam
                    .get_policy_version()
                    .policy_arn(policy_arn)
                    .version_id(&version)
                    .send()
            })
            .await?;
        let doc = out
            .policy_version()
            .and_then(|v| v.document())
            .ok_or_else(|| missing("iam", "GetPolicyVersion", "Document"))?;
        document(policy_arn, doc, "GetPolicyVersion")
    }

    /// `iam:SimulatePrincipalPolicy` for one request.
    pub async fn simulate(&self, key: &SimulationKey) -> Result<Simulation, AwsError> {
        let cache_key = format!("{key:?}");
        self.simulations
            .get(&cache_key, || self.fetch_simulation(key))
            .await
    }

    async fn fetch_simulation(&self, key: &SimulationKey) -> Result<Simulation, AwsError> {
        let entries: Vec<ContextEntry> = key
            .context
            .iter()
            .map(|(k, v)| {
                ContextEntry::builder()
                    .context_key_name(k)
                    .context_key_values(v)
                    .context_key_type(ContextKeyTypeEnum::String)
                    .build()
            })
            .collect();
        let out = self
            .guard
            .call("iam", "SimulatePrincipalPolicy", || {
                self.iam
                    .simulate_principal_policy()
                    .policy_source_arn(&key.role)
                    .action_names(&key.action)
                    .resource_arns(&key.resource)
                    .set_context_entries(Some(entries.clone()))
                    .send()
            })
            .await?;
        let result = out
            .evaluation_results()
            .first()
            .ok_or_else(|| missing("iam", "SimulatePrincipalPolicy", "EvaluationResults"))?;
        Ok(Simulation {
            decision: result.eval_decision().as_str().to_string(),
            allowed_by_organizations: result
                .organizations_decision_detail()
                .map(|d| d.allowed_by_organizations()),
            allowed_by_boundary: result
                .permissions_boundary_decision_detail()
                .map(|d| d.allowed_by_permissions_boundary()),
            matched_statements: result
                .matched_statements()
                .iter()
                .filter_map(|s| s.source_policy_id().map(str::to_string))
                .collect(),
            missing_context_values: result.missing_context_values().to_vec(),
        })
    }

    /// A KMS key's metadata, grants and policy. Grants and policy that cannot be read (another
    /// account's key) are unknown, not empty.
    pub async fn key(&self, key: &str) -> Result<KeyFacts, AwsError> {
        self.keys.get(key, || self.fetch_key(key)).await
    }

    /// The KMS client for a key: as the role assumed in the key's account, if one was given.
    fn kms_for(&self, key: &str) -> (&aws_sdk_kms::Client, String) {
        match Arn::parse(key).and_then(|a| self.kms_in.get(a.account)) {
            Some((role, client)) => (client, format!("live KMS as {role}")),
            None => (&self.kms, "live KMS".into()),
        }
    }

    async fn fetch_key(&self, key: &str) -> Result<KeyFacts, AwsError> {
        let (kms, source) = self.kms_for(key);
        let out = self
            .guard
            .call("kms", "DescribeKey", || {
                kms.describe_key().key_id(key).send()
            })
            .await?;
        let m = out
            .key_metadata()
            .ok_or_else(|| missing("kms", "DescribeKey", "KeyMetadata"))?;
        let arn = m.arn().unwrap_or(key).to_string();
        let account = m
            .aws_account_id()
            .map(str::to_string)
            .or_else(|| Arn::parse(&arn).map(|a| a.account.to_string()))
            .unwrap_or_default();
        let mut unreadable = Vec::new();
        let key_arn = arn.as_str();
        let listed = every_page(|marker| async move {
            let page = self
                .guard
                .call("kms", "ListGrants", || {
                    kms.list_grants()
                        .key_id(key_arn)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let grants = page.grants().iter().map(|g| Grant {
                grant_id: g.grant_id().map(str::to_string),
                name: g.name().map(str::to_string),
                grantee_principal: g.grantee_principal().unwrap_or_default().to_string(),
                operations: g
                    .operations()
                    .iter()
                    .map(|o| o.as_str().to_string())
                    .collect(),
            });
            Ok((
                grants.collect(),
                next_marker(page.next_marker(), page.truncated()),
            ))
        })
        .await;
        let grants = match listed {
            Ok(grants) => Some(grants),
            Err(e) => {
                unreadable.push(e.to_string());
                None
            }
        };
        let policy = match self
            .guard
            .call("kms", "GetKeyPolicy", || {
                kms.get_key_policy()
                    .key_id(&arn)
                    .policy_name("default")
                    .send()
            })
            .await
        {
            Ok(out) => match out
                .policy()
                .map(|p| Policy::parse(&format!("key policy of {arn}"), p))
            {
                Some(Ok(policy)) => Some(policy),
                Some(Err(e)) => {
                    unreadable.push(format!("kms:GetKeyPolicy: unreadable key policy: {e}"));
                    None
                }
                None => None,
            },
            Err(e) => {
                unreadable.push(e.to_string());
                None
            }
        };
        Ok(KeyFacts {
            key_id: m.key_id().to_string(),
            account,
            state: m.key_state().map_or("Unknown", |s| s.as_str()).to_string(),
            manager: m.key_manager().map(|k| k.as_str().to_string()),
            deletion_date: m.deletion_date().map(|d| d.to_string()),
            grants,
            policy,
            source,
            unreadable,
            arn,
        })
    }

    /// `sts:DecodeAuthorizationMessage`.
    pub async fn decode(&self, encoded: &str) -> Result<String, AwsError> {
        self.decoded
            .get(encoded, || async {
                let out = self
                    .guard
                    .call("sts", "DecodeAuthorizationMessage", || {
                        self.sts
                            .decode_authorization_message()
                            .encoded_message(encoded)
                            .send()
                    })
                    .await?;
                Ok(out.decoded_message().unwrap_or_default().to_string())
            })
            .await
    }

    /// `ec2:DescribeInstances` as the AWS CLI prints it, so the scanner reads it like a file.
    /// The same set of instances is described once per TTL (a dead instance stays dead).
    pub async fn describe_instances(&self, ids: &[String]) -> Result<serde_json::Value, AwsError> {
        self.instances
            .get(&ids.join(","), || self.fetch_instances(ids))
            .await
    }

    async fn fetch_instances(&self, ids: &[String]) -> Result<serde_json::Value, AwsError> {
        // A filter, not InstanceIds: one instance gone must not fail the whole batch.
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("instance-id")
            .set_values(Some(ids.to_vec()))
            .build();
        let found = every_page(|token| {
            let filter = filter.clone();
            async move {
                let out = self
                    .guard
                    .call("ec2", "DescribeInstances", || {
                        self.ec2
                            .describe_instances()
                            .filters(filter.clone())
                            .set_next_token(token.clone())
                            .send()
                    })
                    .await?;
                let next = out.next_token().map(str::to_string);
                Ok((out.reservations().to_vec(), next))
            }
        })
        .await?;
        let reservations: Vec<serde_json::Value> = found
            .iter()
            .map(|r| {
                let instances: Vec<serde_json::Value> = r
                    .instances()
                    .iter()
                    .map(|i| {
                        serde_json::json!({
                            "InstanceId": i.instance_id(),
                            "ImageId": i.image_id(),
                            "State": {"Name": i.state().and_then(|s| s.name()).map(|n| n.as_str())},
                            "StateReason": i.state_reason().map(|s| serde_json::json!({"Code": s.code(), "Message": s.message()})),
                            "Placement": {"AvailabilityZone": i.placement().and_then(|p| p.availability_zone())},
                            "LaunchTime": i.launch_time().map(|t| t.to_string()),
                            "Tags": i.tags().iter().map(|t| serde_json::json!({"Key": t.key(), "Value": t.value()})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                serde_json::json!({"Instances": instances})
            })
            .collect();
        Ok(serde_json::json!({"Reservations": reservations}))
    }

    /// The KMS keys of an AMI's encrypted EBS snapshots (`ec2:DescribeImages`, then
    /// `ec2:DescribeSnapshots`), sorted; empty for an unencrypted AMI.
    pub async fn image_keys(&self, image: &str) -> Result<Vec<String>, AwsError> {
        self.images
            .get(image, || async {
                let out = self
                    .guard
                    .call("ec2", "DescribeImages", || {
                        self.ec2.describe_images().image_ids(image).send()
                    })
                    .await?;
                let snapshots: Vec<String> = out
                    .images()
                    .iter()
                    .flat_map(|i| i.block_device_mappings())
                    .filter_map(|m| m.ebs())
                    .filter(|ebs| ebs.encrypted() != Some(false))
                    .filter_map(|ebs| ebs.snapshot_id().map(str::to_string))
                    .collect();
                if snapshots.is_empty() {
                    return Ok(Vec::new());
                }
                let out = self
                    .guard
                    .call("ec2", "DescribeSnapshots", || {
                        self.ec2
                            .describe_snapshots()
                            .set_snapshot_ids(Some(snapshots.clone()))
                            .send()
                    })
                    .await?;
                let keys: std::collections::BTreeSet<String> = out
                    .snapshots()
                    .iter()
                    .filter(|s| s.encrypted() == Some(true))
                    .filter_map(|s| s.kms_key_id().map(str::to_string))
                    .collect();
                Ok(keys.into_iter().collect())
            })
            .await
    }
}

/// A policy document as the raw API returns it: URL-encoded JSON.
/// A policy document as IAM answers it (URL-encoded JSON), and its size
/// (`iam_snapshot::chars_without_whitespace`).
fn document(
    name: &str,
    encoded: &str,
    operation: &'static str,
) -> Result<(Policy, usize), AwsError> {
    let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
    let unreadable = |e: String| AwsError {
        service: "iam",
        operation,
        outcome: super::guard::Outcome::Error,
        message: format!("{name}: unreadable policy document: {e}"),
    };
    let policy = Policy::parse(name, &decoded).map_err(|e| unreadable(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&decoded).map_err(|e| unreadable(e.to_string()))?;
    Ok((
        policy,
        crate::facts::iam_snapshot::chars_without_whitespace(&value),
    ))
}

/// Every item of a paginated listing: `page(token)` fetches the page `token` names (the first
/// when `None`) and returns its items and the next page's token (`None` after the last).
async fn every_page<T, Fut>(mut page: impl FnMut(Option<String>) -> Fut) -> Result<Vec<T>, AwsError>
where
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), AwsError>>,
{
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (got, next) = page(token).await?;
        items.extend(got);
        token = next;
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// One page of `GetRequestAuthorizationDetails` added to `doc`, in the API's JSON shape.
fn toolbox_page(
    out: &aws_sdk_iamtoolbox::operation::get_request_authorization_details::GetRequestAuthorizationDetailsOutput,
    doc: &mut serde_json::Value,
) {
    let context = object_json;
    if let Some(serde_json::Value::Object(into)) = doc.get_mut("requestContext")
        && let serde_json::Value::Object(page) = context(out.request_context())
    {
        into.extend(page);
    }
    let evaluations = out.evaluations().iter().map(|e| {
        json!({
            "action": e.action(),
            "resource": e.resource(),
            "evaluatedEffect": e.evaluated_effect().map(|x| x.as_str()),
            "context": e.context().map(context),
            "matchedPolicies": e.matched_policies().iter().map(|m| json!({
                "uri": m.uri(),
                "matchedStatements": m.matched_statements().iter().map(|st| json!({
                    "sid": st.sid(),
                    "evaluatedEffect": st.evaluated_effect().map(|x| x.as_str()),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    });
    if let Some(serde_json::Value::Array(into)) = doc.get_mut("evaluations") {
        into.extend(evaluations);
    }
    let policies = out.policies().iter().map(|p| {
        json!({
            "type": p.r#type().map(|t| t.as_str()),
            "inline": p.inline(),
            "uri": p.uri(),
            "attachedTo": p.attached_to().iter().map(|a| json!({"arn": a.arn()})).collect::<Vec<_>>(),
        })
    });
    if let Some(serde_json::Value::Array(into)) = doc.get_mut("policies") {
        into.extend(policies);
    }
}

/// A map of smithy `Document`s as a JSON object, its keys sorted.
fn object_json(map: &std::collections::HashMap<String, Document>) -> serde_json::Value {
    let mut sorted: Vec<_> = map.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    serde_json::Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), document_json(v)))
            .collect(),
    )
}

/// A smithy `Document` as JSON.
fn document_json(d: &Document) -> serde_json::Value {
    match d {
        Document::Object(map) => object_json(map),
        Document::Array(items) => {
            serde_json::Value::Array(items.iter().map(document_json).collect())
        }
        Document::Number(n) => match *n {
            aws_smithy_types::Number::PosInt(i) => json!(i),
            aws_smithy_types::Number::NegInt(i) => json!(i),
            aws_smithy_types::Number::Float(f) => json!(f),
        },
        Document::String(s) => json!(s),
        Document::Bool(b) => json!(b),
        Document::Null => serde_json::Value::Null,
    }
}

/// The marker of the next page, when the listing says there is one.
fn next_marker(marker: Option<&str>, truncated: bool) -> Option<String> {
    marker.filter(|_| truncated).map(str::to_string)
}

fn missing(service: &'static str, operation: &'static str, field: &str) -> AwsError {
    AwsError {
        service,
        operation,
        outcome: super::guard::Outcome::Error,
        message: format!("the answer has no {field}"),
    }
}
