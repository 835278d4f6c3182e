//! Where Karpenter runs, for `controller` and `check` alike (contract §1): its namespace and
//! the selector of the pods whose logs are read.

use clap::Args;

#[derive(Debug, Args)]
pub struct KarpenterArgs {
    /// The namespace Karpenter runs in.
    #[arg(
        long = "karpenter-namespace",
        default_value = "kube-system",
        value_name = "NS"
    )]
    pub namespace: String,
    /// The pods whose logs are read.
    #[arg(
        long = "karpenter-selector",
        default_value = "app.kubernetes.io/name=karpenter",
        value_name = "SELECTOR"
    )]
    pub selector: String,
}
