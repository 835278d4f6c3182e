//! One IAM request to evaluate: principal, action, resource, and the request context
//! (condition keys, case-insensitive, each single- or multi-valued).

use super::arn::Arn;

/// The request context: condition keys with their values. Keys compare case-insensitively, as
/// IAM's do; a key with several values is a multi-valued key. A key not in it is absent from
/// the request as the doctor knows it: the real request may carry it, unless the facts show it
/// does not (`mark_absent`: a role's tags read whole, and a credential path that adds none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    entries: Vec<ContextEntry>,
    /// Keys known to be absent, in lower case; one ending in `/` stands for every key it
    /// begins (`aws:principaltag/`).
    absent: Vec<String>,
    /// Keys the request carries with values the doctor does not know: never known absent.
    unknown: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ContextEntry {
    key: String,
    lower: String,
    values: Vec<String>,
}

impl Context {
    /// Adds `value` to `key`; a key inserted twice becomes multi-valued.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        let lower = key.to_ascii_lowercase();
        match self.entries.iter_mut().find(|e| e.lower == lower) {
            Some(entry) => entry.values.push(value.into()),
            None => self.entries.push(ContextEntry {
                key: key.to_string(),
                lower,
                values: vec![value.into()],
            }),
        }
    }

    /// Sets `key` to exactly `values` (replacing what it had); an empty list keeps the key present
    /// with no values.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        let lower = key.to_ascii_lowercase();
        self.entries.retain(|e| e.lower != lower);
        self.entries.push(ContextEntry {
            key: key.to_string(),
            lower,
            values,
        });
    }

    /// The values of `key` (any case), or `None` when the key is not in the request.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|e| e.lower.eq_ignore_ascii_case(key))
            .map(|e| e.values.as_slice())
    }

    /// The values of a key already in lower case: the fast path for compiled conditions.
    pub fn get_lower(&self, lower: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|e| e.lower == lower)
            .map(|e| e.values.as_slice())
    }

    /// Marks `key` (or, ending in `/`, every key it begins) as known to be absent: the facts
    /// show the request cannot carry it. Keys inserted, or marked unknown, stay as they are.
    pub fn mark_absent(&mut self, key: &str) {
        let lower = key.to_ascii_lowercase();
        if !self.absent.contains(&lower) {
            self.absent.push(lower);
        }
    }

    /// Marks `key` as carried with values the doctor does not know (a session tag it cannot
    /// read): never known absent, whatever `mark_absent` covers.
    pub fn mark_unknown(&mut self, key: &str) {
        let lower = key.to_ascii_lowercase();
        if !self.unknown.contains(&lower) {
            self.unknown.push(lower);
        }
    }

    /// Whether the facts show the request does not carry `key`.
    pub fn known_absent(&self, key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        self.get_lower(&lower).is_none()
            && !self.unknown.contains(&lower)
            && self
                .absent
                .iter()
                .any(|a| *a == lower || (a.ends_with('/') && lower.starts_with(a.as_str())))
    }

    /// Takes `other`'s absent and unknown marks (its keys are merged by the caller).
    pub fn mark_as(&mut self, other: &Context) {
        other.absent.iter().for_each(|k| self.mark_absent(k));
        other.unknown.iter().for_each(|k| self.mark_unknown(k));
    }

    /// The keys and values as given, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries
            .iter()
            .map(|e| (e.key.as_str(), e.values.as_slice()))
    }
}

/// A request: who (`principal`, an IAM ARN or a service principal), what (`action`), on what
/// (`resource`, `*` for actions without resource-level permissions), with which context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// The account that owns the resource, where its ARN does not say (S3 buckets, say).
    pub resource_account: Option<String>,
    pub context: Context,
    action_lower: String,
}

impl Request {
    pub fn new(principal: &str, action: &str, resource: &str) -> Self {
        Request {
            principal: principal.to_string(),
            action: action.to_string(),
            resource: resource.to_string(),
            resource_account: None,
            context: Context::default(),
            action_lower: action.to_ascii_lowercase(),
        }
    }

    pub fn with_context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    pub fn with_resource_account(mut self, account: Option<String>) -> Self {
        self.resource_account = account;
        self
    }

    /// The action in lower case, as action patterns are stored.
    pub fn action_lower(&self) -> &str {
        &self.action_lower
    }

    /// The principal's account: from its ARN, or empty for service principals.
    pub fn principal_account(&self) -> &str {
        Arn::parse(&self.principal).map_or("", |a| a.account)
    }

    /// The account owning the resource: given explicitly, else from the ARN, else the principal's.
    /// An AWS managed policy (`arn:aws:iam::aws:policy/…`) is every account's own: reading it
    /// takes the identity policy alone.
    pub fn resource_owner(&self) -> &str {
        if let Some(account) = &self.resource_account {
            return account;
        }
        match Arn::parse(&self.resource) {
            Some(arn) if !arn.account.is_empty() && arn.account != "aws" => arn.account,
            _ => self.principal_account(),
        }
    }

    /// Whether the caller is an AWS service principal (`pods.eks.amazonaws.com`), not an ARN.
    pub fn is_service_principal(&self) -> bool {
        Arn::parse(&self.principal).is_none() && self.principal.contains(".amazonaws.com")
    }

    /// Whether the resource lives in another account than the principal.
    pub fn is_cross_account(&self) -> bool {
        self.resource_owner() != self.principal_account()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keys_are_case_insensitive_and_repeat_into_multi_values() {
        let mut ctx = Context::default();
        ctx.insert("iam:PassedToService", "ec2.amazonaws.com.cn");
        ctx.insert("IAM:passedtoservice", "ec2.amazonaws.com");
        assert_eq!(
            ctx.get("iam:passedToService").unwrap(),
            ["ec2.amazonaws.com.cn", "ec2.amazonaws.com"]
        );
        assert!(ctx.get("aws:SourceIp").is_none());
        ctx.set("aws:TagKeys", vec![]);
        assert_eq!(ctx.get("aws:tagkeys").unwrap().len(), 0);
        assert_eq!(ctx.iter().count(), 2);
    }

    #[test]
    fn resource_owner_comes_from_the_arn_or_the_principal() {
        let p = "arn:aws:iam::111111111111:role/app";
        let same = Request::new(p, "S3:GetObject", "arn:aws:s3:::bucket/key");
        assert_eq!(same.action_lower(), "s3:getobject");
        assert!(!same.is_cross_account());
        let other = Request::new(p, "kms:Decrypt", "arn:aws:kms:us-east-1:222222222222:key/k");
        assert!(other.is_cross_account());
        let bucket = Request::new(p, "s3:GetObject", "arn:aws:s3:::b/k")
            .with_resource_account(Some("222222222222".into()));
        assert!(bucket.is_cross_account());
        let managed = Request::new(
            p,
            "iam:GetPolicyVersion",
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        );
        assert!(!managed.is_cross_account());
    }
}
