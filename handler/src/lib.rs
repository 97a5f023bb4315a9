//! # Berth
//!
//! Durable container workloads on Azure Container Instances.
