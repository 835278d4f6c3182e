//! karpenter-doctor: tells why Karpenter cannot launch nodes on AWS and what to change.
//! `policy` is the pure IAM engine; `partition` the AWS partition table; `cli` the commands.

pub mod aws;
pub mod cli;
pub mod diagnose;
pub mod facts;
pub mod partition;
pub mod policy;
pub mod signal;
