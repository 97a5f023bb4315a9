//! # ACI emulator
//!
//! Speaks the ARM REST API of `Microsoft.ContainerInstance/containerGroups` and runs each group's
//! containers as local processes under bubblewrap: the part Azurite plays for Storage, played for
//! Azure Container Instances. `handler dev` and the tests start it in-process with `start`; the
//! `aci-emulator` binary runs it alone.
//!
//! # Layout
//! From the wire inwards:
//! - `server`: `start`, `Running` (the handle; dropping it kills every container process).
//! - `http`: `router` (ARM paths parsed by `http::route`, plus `/_emulator/*`) and the accept loop.
//! - `aci`: the emulated service itself: the groups it holds, its ARM operations (changes in
//!   `aci::arm`, reads in `aci::reads`, long-running operations in `aci::operations`), and the
//!   containers it runs (`aci::launch`).
//! - `lifecycle`: the pure state machine of a group (provisioning, group and container states;
//!   its values in `lifecycle::states`, its inputs and actions in `lifecycle::signals`).
//! - `validate`: what ACI checks in a PUT, and the update rules; `rules`: the table of ACI's
//!   create-time rules about combinations of fields (the `aci-rules` crate, shared with Berth's
//!   spec validator).
//! - `record`: a group as held and persisted, rendered into ARM answers; `store`: records on disk.
//! - `sandbox` (bubblewrap arguments), `process` (processes and their logs), `cgroup` (limits),
//!   `logs` (log buffers), `images` (the image map).
//! - `auth`: the bearer token every route needs when one is configured.
//! - `faults`, `quotas`, `stats`: the knobs and counters for tests; `capacity`: ACI's capacity
//!   refusals the fault knobs ask for.
//! - `model`: the ARM wire types; `config`: `Config`; `error`: `ArmError` and `Error`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod aci;
pub mod api_versions;
pub mod auth;
pub mod capacity;
pub mod cgroup;
pub mod config;
pub mod error;
pub mod faults;
pub mod http;
pub mod images;
pub mod lifecycle;
pub mod logs;
pub mod model;
pub mod process;
pub mod quotas;
pub mod record;
pub mod sandbox;
pub mod server;
pub mod stats;
pub mod store;
pub mod validate;

pub use aci::Emulator;
/// ACI's create-time rules (the `aci-rules` crate, which Berth's spec validator also runs).
pub use aci_rules as rules;
pub use api_versions::API_VERSIONS;
pub use auth::Token;
pub use config::{Config, Timings};
pub use error::{ArmError, Error};
pub use faults::{FaultKind, Faults, NthFault};
pub use http::router;
pub use images::{ImageEntry, ImageMap};
pub use quotas::Quotas;
pub use server::{Running, start};
pub use stats::Stats;
