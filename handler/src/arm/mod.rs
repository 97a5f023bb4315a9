//! Azure Resource Manager for container groups: the client, its response shapes and its errors.

pub mod budget;
pub mod client;
pub mod error;
pub mod model;

pub use client::{ArmCalls, ArmClient, ArmTarget, CoreUsage, Look, StaticToken, USAGES_TTL};
pub use error::ArmError;
pub use model::ContainerGroup;
