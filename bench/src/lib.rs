//! # Berth's benchmarks
//!
//! A harness that prints numbers (never a timed test): `bench/run.sh` builds everything and runs
//! the `berth-bench` binary, which prints a table and writes `target/bench/results.json`.
//!
//! # Layout
//! - [`watch`]: Berth's store wrapped to count storage operations and to signal `Done` saves.
//! - [`berth`]: Berth assembled in-process from a configuration, as `handler serve` does.
//! - [`load`]: the closed-loop load generator and its statistics.
//! - [`throughput`]: one-group jobs through the API at a concurrency (items 1 and 4).
//! - [`throughput`] is driven by [`suite`], which also runs [`duroxide`] (item 2, in a child
//!   process), [`floor`] (item 3), [`footprint`] (item 5), [`live`] (1,000 live deployments:
//!   items 4 and 5), [`sweep_scale`] (item 6), [`fanout`] (item 7) and [`looks`] (detection
//!   under the ARM read budget, item 8), prices item 4 with [`orchestration`], and writes
//!   [`report`]s.
//! - [`procs`]: child processes (emulator, handler, hello-world, duroxide), RSS and readiness.

pub mod berth;
pub mod duroxide;
pub mod fanout;
pub mod floor;
pub mod footprint;
pub mod live;
pub mod load;
pub mod looks;
pub mod orchestration;
pub mod procs;
pub mod report;
pub mod suite;
pub mod sweep_scale;
pub mod throughput;
pub mod watch;
