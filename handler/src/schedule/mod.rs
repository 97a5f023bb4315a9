//! Schedules: deployments started on a cron schedule in a time zone, as Kubernetes CronJobs.
//!
//! - [`cron`]: the expression and the instants it names in a time zone (DST as Kubernetes).
//! - [`document`]: the `PUT /api/schedules/{name}` body, read and checked, every problem naming
//!   its field.
//! - [`tick`]: [`tick::Scheduler`], what the `scheduler` timer (every minute) and `dev`/`serve`'s
//!   loop run: each due schedule starts at most one deployment per scheduled time.
//!
//! A schedule is stored as a JSON document ([`Schedule`]) in the [`crate::store::Schedules`] of
//! the backend, changed only by compare-and-swap on its version; its spec's secrets are sealed as
//! a deployment's are ([`crate::spec::secrets`]) and never shown.
//!
//! # Guarantees
//! - A run's deployment id derives from the schedule's name and the scheduled time
//!   ([`run_id`]), and a deployment is submitted idempotently: a duplicated, concurrent or late
//!   tick never starts a scheduled time twice.
//! - `considered` (every scheduled time at or before it is dealt with: started, missed, or
//!   skipped) only moves forward, saved by CAS after the run it covers was submitted; a crash in
//!   between submits the same id again on the next tick.
//! - A schedule never fires for a time before it was created or resumed.

pub mod cron;
pub mod document;
pub mod tick;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::engine::Millis;
use crate::spec::Spec;

pub use document::ScheduleRequest;
pub use tick::{Scheduler, TickReport};

/// Most schedules one Berth keeps (each tick reads them all).
pub const MAX_SCHEDULES: usize = 500;
/// The longest schedule name (its runs' ids are cut and hashed to fit 40 characters).
pub const MAX_NAME_LEN: usize = 63;
/// How often `dev` and `serve` tick (the `scheduler` function's own schedule is every minute).
pub const TICK_EVERY_MS: Millis = 60_000;
/// How long after a whole minute `dev` and `serve` tick, so the minute's times are due.
pub const TICK_AFTER_MINUTE_MS: Millis = 1_000;
/// The longest `startingDeadline`.
pub const MAX_STARTING_DEADLINE_MS: Millis = 7 * 86_400_000;
/// Most scheduled times one tick counts as missed for one schedule (a longer outage is counted
/// up to this many, then its start is found directly).
pub const MAX_COUNTED_MISSES: u64 = 10_000;

/// What a run does while the schedule's previous run is still live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConcurrencyPolicy {
    /// Start it anyway.
    #[default]
    Allow,
    /// Do not start it while the previous run is live (it may still start later within
    /// `startingDeadline`, as Kubernetes does).
    Forbid,
    /// Terminate the previous run and start this one.
    Replace,
}

impl ConcurrencyPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConcurrencyPolicy::Allow => "allow",
            ConcurrencyPolicy::Forbid => "forbid",
            ConcurrencyPolicy::Replace => "replace",
        }
    }
}

/// What a run starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Target {
    /// A spec, its secrets taken out and sealed in `sealed` (as a checkpoint keeps them); its
    /// `id` is replaced by each run's.
    Spec {
        spec: Box<Spec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sealed: Option<String>,
        /// Its `notify` URLs whole, sealed (the spec keeps their origins), as a checkpoint
        /// keeps them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notify_urls: Option<String>,
    },
    /// A template, expanded with `parameters` at each run (see [`tick::template_spec`]).
    Template {
        template: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        parameters: Map<String, Value>,
    },
}

/// A run a schedule started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The scheduled time.
    pub scheduled: Millis,
    pub deployment_id: String,
    /// When the tick started it.
    pub started: Millis,
}

/// A scheduled time held back by `forbid` while the previous run is live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    pub scheduled: Millis,
    pub reason: String,
}

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    pub time_zone: String,
    pub concurrency_policy: ConcurrencyPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_ms: Option<Millis>,
    pub target: Target,
    pub suspended: bool,
    pub created: Millis,
    pub updated: Millis,
    /// Every scheduled time at or before this was dealt with (started, missed, or passed while
    /// suspended).
    pub considered: Millis,
    /// The base URL runs' containers call back to (the one the `PUT` came through, as a `POST`'s).
    pub callback_base: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Run>,
    /// Scheduled times that never started: older than `startingDeadline` when looked at, or
    /// passed over for a later one in the same tick.
    #[serde(default)]
    pub missed_runs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_missed: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// The key its runs' notifications are signed with (`whsec_…`), sealed: made when the
    /// schedule is created (again by a `PUT` when no key of the ring opens it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_key: Option<String>,
    /// `notify_key` was told, in the answer to the first `PUT` whose target notifies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notify_key_told: bool,
}

impl Schedule {
    /// The stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a schedule serialises")
    }

    /// Reads stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes)
            .map_err(|e| format!("the stored schedule cannot be read: {e}"))
    }

    /// The next time it fires after `now`; `None` while suspended or beyond the search horizon.
    pub fn next_run(&self, now: Millis) -> Option<Millis> {
        if self.suspended {
            return None;
        }
        let cron = cron::Cron::parse(&self.cron).ok()?;
        let tz = cron::time_zone(&self.time_zone).ok()?;
        cron.next_after(&tz, now.max(self.considered))
    }
}

/// Whether `name` can name a schedule: 1 to [`MAX_NAME_LEN`] lowercase letters, digits and
/// hyphens, as a deployment id (it starts its runs' ids).
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a schedule name has 1 to {MAX_NAME_LEN} characters"
        ));
    }
    crate::spec::validate::group_name(name)
        .map_err(|e| e.replace("the group name", "the schedule name"))
}

/// The id of the run of schedule `name` for the scheduled time `at`: `{name}-{yyyyMMddHHmm}`
/// (UTC), or, past the 40 characters of an id, the name's first 18 characters and 8 hex digits
/// of its SHA-256 before the time.
pub fn run_id(name: &str, at: Millis) -> String {
    let stamp = cron::stamp(at);
    let max = crate::spec::validate::Limits::MAX_ID_LEN;
    if name.len() + 1 + stamp.len() <= max {
        return format!("{name}-{stamp}");
    }
    let hash = sha2::Sha256::digest(name.as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    let prefix = name[..18].trim_end_matches('-');
    format!("{prefix}-{hex}-{stamp}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_valid_ids_for_every_name_length() {
        let at = crate::clock::parse_rfc3339("2026-03-29T01:05:00Z").unwrap();
        assert_eq!(run_id("nightly", at), "nightly-202603290105");
        for len in 1..=MAX_NAME_LEN {
            let name = "a".repeat(len);
            let id = run_id(&name, at);
            crate::spec::validate::deployment_id(&id).unwrap();
        }
        let hyphen = format!("{}-{}", "a".repeat(17), "b".repeat(40));
        crate::spec::validate::deployment_id(&run_id(&hyphen, at)).unwrap();
        let (a, b) = ("x".repeat(30) + "a", "x".repeat(30) + "b");
        assert_ne!(
            run_id(&a, at),
            run_id(&b, at),
            "names cut alike differ by hash"
        );
    }

    #[test]
    fn names_are_refused_saying_why() {
        for bad in ["", "../x", "Nightly", "a/b", "-a", "a--b", &"a".repeat(64)] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
        assert!(valid_name("nightly-backup").is_ok());
    }
}
