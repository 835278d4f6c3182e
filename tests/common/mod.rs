//! Shared test helpers: a seeded random generator and the location of the oracle install.
#![allow(dead_code)]

pub mod apiserver;
pub mod double;
pub mod live;
pub mod moto;
pub mod oracle;
pub mod rng;
