//! # Berth
//!
//! Durable container workloads on Azure Container Instances, as an Azure Functions custom handler.
//!
//! # Layout
//! - [`azure`]: Azure Storage plumbing: connection strings, Shared Key signing, credentials, blob and
//!   queue operations with transaction counts.
//! - [`functions`]: the Functions custom-handler wire protocol: invocation payloads in, responses out.

pub mod azure;
pub mod functions;
