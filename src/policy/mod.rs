//! The IAM policy engine: parse policy documents, evaluate requests as AWS does, and explain
//! each decision statement by statement with a near-miss analysis. Pure: no I/O, no AWS, no kube.

pub mod arn;
pub mod condition;
pub mod document;
pub mod evaluate;
pub mod glob;
pub mod nearmiss;
pub mod request;
pub mod statement;
pub mod typed;
pub mod variables;

pub use document::{Effect, ParseError, Policy, Statement};
pub use evaluate::{Decision, Explanation, PolicySet, PolicyType};
pub use nearmiss::{Denial, Reason, StatementRef};
pub use request::{Context, Request};
