//! Berth's ARM client, compiled from Berth's own source files so that both sides of the
//! comparison make the same HTTP calls with the same client settings (pool, timeouts, retries).

#![allow(dead_code)]

#[path = "../../../../handler/src/arm/budget.rs"]
pub mod budget;
#[path = "../../../../handler/src/arm/client.rs"]
pub mod client;
#[path = "../../../../handler/src/arm/error.rs"]
pub mod error;
#[path = "../../../../handler/src/arm/model.rs"]
pub mod model;

pub use client::{ArmClient, ArmTarget};
