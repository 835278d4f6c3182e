//! The edge to Kubernetes: the `Diagnosis` CustomResourceDefinition generated from the core's
//! Rust types (one source of truth for `kubectl explain` and the controller).

pub mod crd;
