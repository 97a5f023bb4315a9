//! The chaos harness: runs deployments on real processes while it kills handlers, tampers with the
//! step queue, injects ARM faults and restarts Azurite; then checks that nothing was lost,
//! duplicated or left behind.
//!
//! # Layout
//! - [`procs`]: the child processes (all killed on exit, panic or signal).
//! - [`cluster`]: Azurite, the emulator and the `handler serve` processes.
//! - [`workload`]: the deployments submitted.
//! - [`tamper`]: queue duplicates and delays, emulator faults.
//! - [`hooks`]: the webhook receiver the notifying deployments call.
//! - [`run`]: one run: submit, disturb, wait, sweep.
//! - [`schedules`]: the run's schedule, ticked by every handler, and its accounting.
//! - [`verify`]: the checks and the findings.
//! - [`rng`]: the seeded generator behind every random moment.

pub mod cluster;
pub mod hooks;
pub mod procs;
pub mod rng;
pub mod run;
pub mod schedules;
pub mod tamper;
pub mod verify;
pub mod workload;

use std::path::PathBuf;
use std::time::Duration;

/// What a run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// Deployments submitted.
    pub deployments: usize,
    /// Handler processes SIGKILLed (each started again).
    pub kills: usize,
    /// Deployments in flight at once.
    pub concurrency: usize,
    /// Azurite restarts.
    pub azurite_restarts: usize,
    /// The seed of every random choice.
    pub seed: u64,
    /// How long the whole run may take before unfinished deployments count as lost.
    pub deadline: Duration,
    /// Handler processes sharing the storage.
    pub handlers: usize,
    /// Where the run keeps its data (a fresh temporary folder when `None`).
    pub dir: Option<PathBuf>,
    /// Keep the data folder even when the run passes.
    pub keep: bool,
    pub binaries: cluster::Binaries,
}

/// The one line a run prints.
pub fn line(
    deployments: usize,
    kills: usize,
    lost: usize,
    duplicates: usize,
    orphans: usize,
    missing_logs: usize,
    quota_holds: usize,
) -> String {
    format!(
        "chaos: {deployments} deployments, {kills} kills, {lost} lost, {duplicates} duplicate creates, \
         {orphans} orphans, {missing_logs} missing logs, {quota_holds} quota holds"
    )
}

/// The end of the line: Spot evictions and region fallbacks Berth handled.
pub fn capacity_counts(evictions: usize, fallbacks: usize) -> String {
    format!(", {evictions} evictions, {fallbacks} fallbacks")
}

/// After that: deployments whose notification arrived (signed, of their outcome), and
/// deliveries beyond the first accepted one (at least once: a receiver dedupes them by id).
pub fn notify_counts(notified: usize, redelivered: usize) -> String {
    format!(", {notified} notified ({redelivered} redelivered)")
}

/// Last: the schedule's runs, and the scheduled times Berth counted missed.
pub fn schedule_counts(runs: usize, missed: u64) -> String {
    format!(", {runs} scheduled runs ({missed} missed)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line_has_the_documented_shape() {
        assert_eq!(
            super::line(200, 50, 0, 1, 2, 3, 4)
                + &super::capacity_counts(5, 6)
                + &super::notify_counts(7, 8)
                + &super::schedule_counts(9, 10),
            "chaos: 200 deployments, 50 kills, 0 lost, 1 duplicate creates, 2 orphans, 3 missing logs, \
             4 quota holds, 5 evictions, 6 fallbacks, 7 notified (8 redelivered), 9 scheduled runs \
             (10 missed)"
        );
    }
}
