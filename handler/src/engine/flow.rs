//! Workflows: where each group of a deployment stands, from its dependencies and its
//! instances' verdicts, and which of a group's instances may start now.
//!
//! A job group is `Waiting` until its dependencies ended as its `runWhen` asks (`Skipped` when
//! they cannot any more), then `Pending` until its first instance is created, `Running`, and
//! ends `Succeeded` (every instance succeeded, bar `tolerateFailures`) or `Failed` (more failed
//! than tolerated, each after its retries). A service group waits until the groups it depends
//! on are running (their container group seen `Running`), then runs until torn down.

use serde::Serialize;

use super::state::{Deployment, Instance, Millis};
use crate::spec::{Mode, RunWhen};

/// Where a group stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum GroupState {
    /// Its dependencies have not ended (jobs) or are not running (services).
    Waiting,
    /// It may run; nothing created yet.
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Its dependencies ended so that it must not run, or the deployment ended before it ran.
    Skipped,
}

impl GroupState {
    /// Whether nothing will change it any more.
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            GroupState::Succeeded | GroupState::Failed | GroupState::Skipped
        )
    }
}

/// Where one instance (one index of a group) stands, from its latest attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// No attempt yet.
    New,
    /// An attempt is under way (created or being created, not judged).
    Running,
    /// An attempt succeeded.
    Succeeded,
    /// The last attempt failed and the retry allows another one at `at`, as attempt `next`.
    Retry { at: Millis, next: u32 },
    /// The last attempt failed and no retry is left.
    Failed,
}

/// Each index of group `slot`: the position in `d.instances` of its latest attempt.
pub fn latest(d: &Deployment, slot: usize) -> Vec<Option<usize>> {
    let n = d.spec.groups[slot].instance_count() as usize;
    let mut latest: Vec<Option<usize>> = vec![None; n];
    for (at, inst) in d.instances.iter().enumerate() {
        if inst.slot != slot || inst.index as usize >= n {
            continue;
        }
        let entry = &mut latest[inst.index as usize];
        if entry.is_none_or(|e| d.instances[e].generation <= inst.generation) {
            *entry = Some(at);
        }
    }
    latest
}

/// Where an index stands, from its latest attempt.
pub fn task(d: &Deployment, slot: usize, latest: Option<&Instance>) -> Task {
    let Some(inst) = latest else {
        return Task::New;
    };
    match &inst.verdict {
        None if inst.retiring => Task::Failed,
        None => Task::Running,
        Some(v) if v.succeeded => Task::Succeeded,
        Some(v) => {
            let retry = d.spec.retry_of(slot);
            // Evicted attempts are retried at once, and do not count against `maxAttempts`.
            let evictions = if inst.generation == 1 {
                u32::from(v.evicted)
            } else {
                super::placement::evictions(d, slot, inst.index)
            };
            let next = inst.generation + 1;
            if v.evicted {
                if evictions <= super::placement::MAX_EVICTIONS {
                    Task::Retry { at: v.at, next }
                } else {
                    Task::Failed
                }
            } else if inst.generation - evictions < retry.max_attempts {
                let counted = inst.generation - evictions + 1;
                let at = v.at + super::policy::retry_delay(retry.backoff.millis(), counted);
                Task::Retry { at, next }
            } else {
                Task::Failed
            }
        }
    }
}

/// Counts of a group's tasks by how they stand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub failed: u32,
    pub new: u32,
    pub retrying: u32,
    pub running: u32,
    pub succeeded: u32,
}

/// How group `slot`'s tasks stand.
pub fn tally(d: &Deployment, slot: usize) -> Tally {
    let mut tally = Tally::default();
    for at in latest(d, slot) {
        match task(d, slot, at.map(|i| &d.instances[i])) {
            Task::New => tally.new += 1,
            Task::Running => tally.running += 1,
            Task::Retry { .. } => tally.retrying += 1,
            Task::Succeeded => tally.succeeded += 1,
            Task::Failed => tally.failed += 1,
        }
    }
    tally
}

/// Where every group stands, in spec order.
pub fn states(d: &Deployment) -> Vec<GroupState> {
    let groups = &d.spec.groups;
    let mut states: Vec<Option<GroupState>> = vec![None; groups.len()];
    // Dependencies are acyclic (checked at submit): resolve until every group has a state.
    for _ in 0..=groups.len() {
        for slot in 0..groups.len() {
            if states[slot].is_some() {
                continue;
            }
            let deps: Option<Vec<GroupState>> = groups[slot]
                .depends_on
                .iter()
                .map(|name| {
                    let dep = groups.iter().position(|g| &g.name == name)?;
                    states[dep]
                })
                .collect();
            if let Some(deps) = deps {
                states[slot] = Some(state_of(d, slot, &deps));
            }
        }
    }
    states
        .into_iter()
        .map(|s| s.unwrap_or(GroupState::Waiting))
        .collect()
}

fn state_of(d: &Deployment, slot: usize, deps: &[GroupState]) -> GroupState {
    let group = &d.spec.groups[slot];
    if d.spec.mode == Mode::Service {
        // Running once its current container group is seen running; a group that was started
        // keeps its place (a heal does not stop what depends on it).
        let started = d.instances.iter().any(|i| i.slot == slot);
        let running = d.instances.iter().any(|i| {
            i.slot == slot
                && !i.retiring
                && i.observed.as_ref().is_some_and(|o| o.state == "Running")
        });
        let deps_running = deps.iter().all(|s| *s == GroupState::Running);
        return if running {
            GroupState::Running
        } else if started || (deps_running && d.outcome.is_none()) {
            GroupState::Pending
        } else {
            GroupState::Waiting
        };
    }
    let tally = tally(d, slot);
    let started = tally.new < group.instance_count();
    if tally.failed > group.tolerate_failures {
        return GroupState::Failed;
    }
    if tally.succeeded + tally.failed == group.instance_count() {
        return GroupState::Succeeded;
    }
    if started {
        return GroupState::Running;
    }
    if d.outcome.is_some() {
        return GroupState::Skipped;
    }
    if deps.iter().any(|s| !s.has_ended()) {
        return GroupState::Waiting;
    }
    let runs = match group.run_when {
        RunWhen::Succeeded => deps.iter().all(|s| *s == GroupState::Succeeded),
        RunWhen::Failed => deps.contains(&GroupState::Failed),
        RunWhen::Always => true,
    };
    if runs {
        GroupState::Pending
    } else {
        GroupState::Skipped
    }
}
