//! Validation is not launch: Karpenter's EC2NodeClass validation calls RunInstances itself (a
//! dry run), while a launch's RunInstances is EC2 Fleet's, on its behalf. Pure.
//!
//! What differs (karpenter-provider-aws `pkg/controllers/nodeclass/validation.go`; #8190,
//! #9018): the dry run is a direct call (`aws:ViaAWSService` is false, as the IAM guide says of
//! direct calls) and, since Karpenter references its launch template there (v1.6+), carries no
//! request-level `MetadataOptions`, so `ec2:MetadataHttpTokens` is absent. The launch's
//! RunInstances is made by EC2 Fleet with the controller's credentials (CloudTrail
//! `invokedBy: ec2fleet.amazonaws.com`) from the launch template, which asks for the EC2NodeClass's
//! `metadataOptions.httpTokens` (`required` unless set). AWS documents neither value for the
//! fleet's call, so a refusal of the dry run alone is never more than `Inferred`.

use crate::policy::Context;

/// An IAM denial that EC2NodeClass validation met, with what the launch would carry.
#[derive(Debug, Clone, Copy)]
pub struct Validation<'a> {
    /// The EC2NodeClass validated.
    pub node_class: Option<&'a str>,
    /// Its `spec.metadataOptions.httpTokens`, where the input shows it.
    pub http_tokens: Option<&'a str>,
    /// Karpenter's namespace (its pod's, else its ServiceAccount's): where its Helm release is.
    pub namespace: Option<&'a str>,
}

/// Whether the dry run and the launch make different requests of `action`: only RunInstances
/// (validation's CreateFleet dry run sends what a launch sends; its launch template is real).
pub fn differs(action: &str) -> bool {
    action.eq_ignore_ascii_case("ec2:RunInstances")
}

/// The dry run's context: a direct call.
pub fn dry_run_context() -> Context {
    let mut ctx = Context::default();
    ctx.insert("aws:ViaAWSService", "false");
    ctx
}

/// The launch's context as far as it differs: made by EC2 Fleet with the controller's
/// credentials, from a launch template with the EC2NodeClass's IMDS token setting.
pub fn launch_context(v: &Validation<'_>) -> Context {
    let mut ctx = Context::default();
    ctx.insert("aws:ViaAWSService", "true");
    ctx.insert(
        "ec2:MetadataHttpTokens",
        v.http_tokens.unwrap_or("required").to_string(),
    );
    ctx
}

/// The evidence line that says what the dry run lacks and the launch carries.
pub fn difference(v: &Validation<'_>) -> String {
    format!(
        "EC2NodeClass{} validation calls ec2:RunInstances itself as a dry run (aws:ViaAWSService=false, no ec2:MetadataHttpTokens: Karpenter v1.6+ sends no MetadataOptions with it); a launch's RunInstances is made by EC2 Fleet for Karpenter's CreateFleet, from the launch template (ec2:MetadataHttpTokens={}{}). AWS does not document the fleet's values, so they are assumed",
        v.node_class.map(|n| format!(" {n}")).unwrap_or_default(),
        v.http_tokens.unwrap_or("required"),
        if v.http_tokens.is_none() {
            ", Karpenter's default"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launch_asks_for_the_node_class_tokens_or_karpenters_default() {
        let unset = Validation {
            node_class: Some("default"),
            http_tokens: None,
            namespace: None,
        };
        let ctx = launch_context(&unset);
        assert_eq!(
            ctx.get("ec2:metadatahttptokens"),
            Some(&["required".to_string()][..])
        );
        assert_eq!(
            ctx.get("aws:ViaAWSService"),
            Some(&["true".to_string()][..])
        );
        let optional = Validation {
            http_tokens: Some("optional"),
            ..unset
        };
        assert_eq!(
            launch_context(&optional).get("ec2:MetadataHttpTokens"),
            Some(&["optional".to_string()][..])
        );
        assert_eq!(
            dry_run_context().get("aws:ViaAWSService"),
            Some(&["false".to_string()][..])
        );
        assert!(dry_run_context().get("ec2:MetadataHttpTokens").is_none());
        assert!(differs("ec2:runinstances") && !differs("ec2:CreateFleet"));
    }
}
