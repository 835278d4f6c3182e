//! How `check` and `preflight` reach a cluster, as kubectl does: the kubeconfig file and its
//! context.

use clap::Args;

#[derive(Debug, Args)]
pub struct KubeArgs {
    /// The kubeconfig file [default: $KUBECONFIG, else ~/.kube/config, else in-cluster].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context [default: its current context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl KubeArgs {
    /// Whether either was given.
    pub fn given(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some()
    }

    /// A client (`check::connect`), how to name the cluster, and its URL.
    pub async fn connect(&self) -> Result<(kube::Client, String, String), super::Failure> {
        super::check::connect(self.kubeconfig.as_deref(), self.context.as_deref()).await
    }
}
