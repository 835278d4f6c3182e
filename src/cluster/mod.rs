//! The edge to Kubernetes: the `Diagnosis` CRD generated from the core's Rust types, and the
//! controller that watches Karpenter's objects and logs and writes Diagnoses.

pub mod check;
pub mod controller;
pub mod crd;
pub mod http;
pub mod index;
pub mod leader;
pub mod log;
pub mod logs;
pub mod metrics;
#[cfg(test)]
mod mock;
pub mod observe;
pub mod pod;
pub mod pods;
pub mod preflight;
pub mod resources;
pub mod slim;
pub mod table;
pub mod writer;
