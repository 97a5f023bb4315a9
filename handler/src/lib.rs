//! # Berth
//!
//! Durable container workloads on Azure Container Instances, as an Azure Functions custom handler.
//!
//! # Layout
//! - [`azure`]: Azure Storage plumbing: connection strings, Shared Key signing, credentials, blob and
//!   queue operations with transaction counts.
//! - [`spec`]: the deployment spec: model, JSON and ACI YAML parsing, validation, secrets.
//! - [`engine`]: the pure workflow engine: `apply(state, event, now) -> Transition`.
//! - [`api`]: the HTTP API (axum), problem+json errors, API key and callback tokens.
//! - [`dashboard`]: the HTML dashboard over the driver: pages, live updates, actions.
//! - [`arm`]: the ARM client for container groups (Azure or the emulator), typed and classified.
//! - [`driver`]: runs steps: load, apply, save with compare-and-swap, act, feed results back.
//! - [`worker`]: the step worker of `dev` and `serve`.
//! - [`sweep`]: the cleanup sweep: orphans, re-drives, retention.
//! - [`schedule`]: schedules: cron in a time zone, the tick that starts their runs.
//! - [`runtime`]: assembling Berth from its configuration.
//! - [`config`]: typed configuration from the environment.
//! - [`store`]: checkpoints with compare-and-swap, logs and the step queue; SQLite backend.
//! - [`clock`]: injected time.
//! - [`crypto`]: sealing secrets at rest and callback tokens.
//! - [`functions`]: the Functions custom-handler wire protocol: invocation payloads in, responses out.

pub mod api;
pub mod arm;
pub mod azure_storage;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dashboard;
pub mod driver;
pub mod engine;
pub mod functions;
pub mod metrics;
pub mod notify;
pub mod runtime;
pub mod saved_log;
pub mod schedule;
pub mod server;
pub mod spec;
pub mod store;
pub mod submit;
pub mod sweep;
pub mod trace;
pub mod worker;
