//! # End-to-end test support
//!
//! Harnesses shared by the end-to-end tests in `tests/tests/`.
//!
//! # Layout
//! - [`host`]: a Functions-host simulator that runs `handler` as the Azure Functions host runs a
//!   custom handler.
//! - [`chaos`]: the chaos harness behind `tests/chaos.sh` (the `chaos` binary).

pub mod chaos;
pub mod host;
