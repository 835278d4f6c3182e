//! karpenter-doctor: tells why Karpenter cannot launch nodes on AWS and what to change.
//! Pure core: `policy`, `partition`, `signal`, `facts`, `diagnose`; edges: `aws`, `cluster`, `cli`.

pub mod aws;
pub mod cli;
pub mod cluster;
pub mod diagnose;
pub mod facts;
pub mod partition;
pub mod policy;
pub mod preflight;
pub mod signal;
