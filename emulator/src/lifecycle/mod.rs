//! The container-group state machine, as a pure function: `Runtime::apply(input, now, timings)`
//! mutates the runtime view and returns the `Action`s `aci` must then perform. No I/O, no
//! clock reads, nothing async happens here, so every table of the contract can be tested directly.
//!
//! Three values move independently, as in ACI: `provisioningState` (the last operation),
//! the group's `instanceView.state` (derived by `Runtime::state`), and each container's
//! `currentState`/`previousState`/`restartCount`.
//!
//! A `generation` numbers each attempt to run the group (create, update, start, restart, stop).
//! Inputs carry the generation they belong to; inputs of an older generation are absorbed, so a
//! process that exits after its group was stopped or replaced changes nothing.

mod signals;
mod states;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{Event, RestartPolicy};

use signals::human_duration;
pub use signals::{Action, Backoff, Input, backoff_delay};
pub use states::{
    ContainerRun, Failure, GroupState, KILLED_EXIT_CODE, Phase, Provisioning, Slot, push_event,
};
use states::{running, terminated, waiting};

/// The group event of a Spot eviction. ACI documents that an evicted Spot group is restarted
/// automatically, not how its view shows it: this name is the emulator's.
pub const EVICTED_EVENT: &str = "SpotEvicted";

/// A run longer than this resets the crash-loop back-off, as the kubelet does.
const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// The runtime view of a group: everything GET shows that the PUT body did not say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Runtime {
    /// `provisioningState`.
    pub provisioning: Provisioning,
    /// Stopped by the user.
    pub stopped: bool,
    /// The current attempt.
    pub generation: u64,
    /// The group's restart policy.
    pub policy: RestartPolicy,
    /// Group-level events.
    pub events: Vec<Event>,
    /// One entry per container, in the spec's order.
    pub containers: Vec<ContainerRun>,
    /// One entry per init container, in the spec's order.
    #[serde(default)]
    pub init_containers: Vec<ContainerRun>,
    /// Why provisioning failed.
    pub failure: Option<Failure>,
}

fn new_run(name: &str, image: &str) -> ContainerRun {
    ContainerRun {
        name: name.to_string(),
        image: image.to_string(),
        phase: Phase::NotStarted,
        restart_count: 0,
        current: None,
        previous: None,
        events: Vec::new(),
        logs_available: false,
        backoff_step: 0,
    }
}

impl Runtime {
    /// A freshly accepted group: `Pending`, nothing started, in generation `generation`.
    /// Containers and init containers are given as (name, image).
    pub fn new(
        policy: RestartPolicy,
        containers: &[(String, String)],
        init_containers: &[(String, String)],
        generation: u64,
    ) -> Self {
        Runtime {
            provisioning: Provisioning::Pending,
            stopped: false,
            generation,
            policy,
            events: Vec::new(),
            containers: containers.iter().map(|(n, i)| new_run(n, i)).collect(),
            init_containers: init_containers.iter().map(|(n, i)| new_run(n, i)).collect(),
            failure: None,
        }
    }

    /// The actions that start a freshly accepted group.
    pub fn initial_actions(&self) -> Vec<Action> {
        vec![Action::Provision {
            generation: self.generation,
        }]
    }

    /// A group that completed at once without processes (`--instant`): `Succeeded`, every
    /// container `Terminated` with exit code 0.
    pub fn complete_instantly(&mut self, now: OffsetDateTime) {
        self.start_instantly(now);
        self.finish_instantly(self.generation, now);
    }

    /// A group of instant mode that runs for a while without processes (see
    /// [`Self::finish_instantly`]): `Succeeded` provisioning, init containers done at once, every
    /// container `Running` from `now`.
    pub fn start_instantly(&mut self, now: OffsetDateTime) {
        self.provisioning = Provisioning::Succeeded;
        for container in self.init_containers.iter_mut().chain(&mut self.containers) {
            container.logs_available = true;
            push_event(
                &mut container.events,
                now,
                "Started",
                "Started container",
                "Normal",
            );
        }
        for init in &mut self.init_containers {
            init.phase = Phase::Exited(0);
            init.current = Some(terminated(Some(now), now, 0, "Completed"));
        }
        for container in &mut self.containers {
            container.phase = Phase::Running;
            container.current = Some(running(now));
        }
    }

    /// The end of a run begun by [`Self::start_instantly`]: in attempt `generation`, unless it
    /// was stopped or replaced meanwhile, every container still running exits with code 0 at
    /// `now`. Whether anything changed.
    pub fn finish_instantly(&mut self, generation: u64, now: OffsetDateTime) -> bool {
        if self.generation != generation || self.stopped {
            return false;
        }
        let mut changed = false;
        for container in &mut self.containers {
            if container.phase == Phase::Running {
                let started = container.current.as_ref().and_then(|s| s.start_time);
                container.phase = Phase::Exited(0);
                container.current = Some(terminated(started, now, 0, "Completed"));
                changed = true;
            }
        }
        changed
    }

    /// The runtime view of a container.
    pub fn run(&self, slot: Slot) -> Option<&ContainerRun> {
        match slot {
            Slot::Init(index) => self.init_containers.get(index),
            Slot::Main(index) => self.containers.get(index),
        }
    }

    fn run_mut(&mut self, slot: Slot) -> Option<&mut ContainerRun> {
        match slot {
            Slot::Init(index) => self.init_containers.get_mut(index),
            Slot::Main(index) => self.containers.get_mut(index),
        }
    }

    /// Every container, init containers first, with its slot.
    pub fn slots(&self) -> impl Iterator<Item = (Slot, &ContainerRun)> {
        let inits = self
            .init_containers
            .iter()
            .enumerate()
            .map(|(index, run)| (Slot::Init(index), run));
        let mains = self
            .containers
            .iter()
            .enumerate()
            .map(|(index, run)| (Slot::Main(index), run));
        inits.chain(mains)
    }

    /// The group's `instanceView.state`, derived from the containers as the contract's tables say.
    pub fn state(&self) -> GroupState {
        if self.stopped {
            return GroupState::Stopped;
        }
        let init_failed = self
            .init_containers
            .iter()
            .any(|run| matches!(run.phase, Phase::Exited(code) if code != 0));
        if init_failed && self.policy == RestartPolicy::Never {
            return GroupState::Failed;
        }
        if self
            .containers
            .iter()
            .any(|container| container.phase == Phase::NotStarted)
        {
            return GroupState::Pending;
        }
        let finished: Option<Vec<i32>> = self
            .containers
            .iter()
            .map(|container| match container.phase {
                Phase::Exited(code) => Some(code),
                _ => None,
            })
            .collect();
        match finished {
            Some(codes) if codes.iter().all(|code| *code == 0) => GroupState::Succeeded,
            Some(_) if self.policy == RestartPolicy::Never => GroupState::Failed,
            _ => GroupState::Running,
        }
    }

    /// Whether any container has, or may soon have, a process.
    pub fn is_active(&self) -> bool {
        !self.stopped
            && self.provisioning != Provisioning::Failed
            && matches!(self.state(), GroupState::Pending | GroupState::Running)
    }

    /// Applies an input at `now`; returns what to do.
    pub fn apply(&mut self, input: Input, now: OffsetDateTime, backoff: Backoff) -> Vec<Action> {
        match input {
            Input::Begin { generation } => {
                if generation != self.generation || self.provisioning != Provisioning::Pending {
                    return Vec::new();
                }
                self.provisioning = Provisioning::Creating;
                for container in self.init_containers.iter_mut().chain(&mut self.containers) {
                    container.current = Some(waiting(""));
                    let message = format!("pulling image \"{}\"", container.image);
                    push_event(&mut container.events, now, "Pulling", &message, "Normal");
                }
                vec![Action::Launch { generation }]
            }
            Input::Pulled { generation } => {
                if generation == self.generation && self.provisioning == Provisioning::Creating {
                    for container in self.init_containers.iter_mut().chain(&mut self.containers) {
                        let message = format!("Successfully pulled image \"{}\"", container.image);
                        push_event(&mut container.events, now, "Pulled", &message, "Normal");
                    }
                }
                Vec::new()
            }
            Input::ImageUnavailable {
                generation,
                slot,
                message,
            } => {
                if generation != self.generation || self.provisioning.is_terminal() {
                    return Vec::new();
                }
                let Some(run) = self.run_mut(slot) else {
                    return Vec::new();
                };
                push_event(&mut run.events, now, "Failed", &message, "Warning");
                run.current = Some(waiting("ErrImagePull"));
                self.fail("InaccessibleImage", message);
                vec![Action::KillAll]
            }
            Input::MountFailed {
                generation,
                message,
            } => {
                if generation != self.generation || self.provisioning.is_terminal() {
                    return Vec::new();
                }
                push_event(&mut self.events, now, "FailedMount", &message, "Warning");
                self.fail("FailedMount", message);
                vec![Action::KillAll]
            }
            Input::Provided { generation } => {
                if generation != self.generation || self.provisioning != Provisioning::Creating {
                    return Vec::new();
                }
                self.next_after_init(generation, 0)
            }
            Input::Started {
                generation,
                slot,
                at,
            } => self.started(generation, slot, at, now),
            Input::StartFailed {
                generation,
                slot,
                message,
            } => {
                if generation != self.generation || self.stopped {
                    return Vec::new();
                }
                let Some(run) = self.run_mut(slot) else {
                    return Vec::new();
                };
                push_event(&mut run.events, now, "Failed", &message, "Warning");
                run.phase = Phase::Running;
                run.logs_available = true;
                run.current = Some(running(now));
                self.mark_provisioned_if_all_started();
                self.exited(generation, slot, 128, now, backoff, "StartError")
            }
            Input::Exited {
                generation,
                slot,
                code,
                at,
            } => {
                let detail = if code == 0 { "Completed" } else { "Error" };
                self.exited(generation, slot, code, at, backoff, detail)
            }
            Input::RestartDue { generation, slot } => {
                let due = generation == self.generation
                    && !self.stopped
                    && self
                        .run(slot)
                        .is_some_and(|run| run.phase == Phase::BackOff);
                if due {
                    vec![Action::Spawn { generation, slot }]
                } else {
                    Vec::new()
                }
            }
            Input::Stop => self.stop(now),
            Input::Start => self.restart_all(now, false),
            Input::Restart => self.restart_all(now, true),
            Input::Recovered => self.recovered(now, backoff),
            Input::Evicted { generation } => {
                if generation != self.generation || self.state() != GroupState::Running {
                    return Vec::new();
                }
                self.evicted(now)
            }
        }
    }

    /// What follows when the init containers before `next` are done: the next init container,
    /// or every container.
    fn next_after_init(&self, generation: u64, next: usize) -> Vec<Action> {
        if next < self.init_containers.len() {
            return vec![Action::Spawn {
                generation,
                slot: Slot::Init(next),
            }];
        }
        (0..self.containers.len())
            .map(|index| Action::Spawn {
                generation,
                slot: Slot::Main(index),
            })
            .collect()
    }

    fn started(
        &mut self,
        generation: u64,
        slot: Slot,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Vec<Action> {
        if generation != self.generation || self.stopped {
            return Vec::new();
        }
        let Some(run) = self.run_mut(slot) else {
            return Vec::new();
        };
        match run.phase {
            Phase::NotStarted => {
                push_event(
                    &mut run.events,
                    now,
                    "Created",
                    "Created container",
                    "Normal",
                );
            }
            Phase::BackOff => run.restart_count += 1,
            Phase::Running | Phase::Exited(_) => return Vec::new(),
        }
        push_event(
            &mut run.events,
            now,
            "Started",
            "Started container",
            "Normal",
        );
        run.phase = Phase::Running;
        run.logs_available = true;
        run.current = Some(running(at));
        self.mark_provisioned_if_all_started();
        Vec::new()
    }

    fn mark_provisioned_if_all_started(&mut self) {
        let all_started = self
            .containers
            .iter()
            .all(|container| container.phase != Phase::NotStarted);
        if all_started && self.provisioning == Provisioning::Creating {
            self.provisioning = Provisioning::Succeeded;
        }
    }

    fn exited(
        &mut self,
        generation: u64,
        slot: Slot,
        code: i32,
        at: OffsetDateTime,
        backoff: Backoff,
        detail: &str,
    ) -> Vec<Action> {
        if generation != self.generation || self.stopped {
            return Vec::new();
        }
        let policy = self.policy;
        let Some(run) = self.run_mut(slot) else {
            return Vec::new();
        };
        if run.phase != Phase::Running {
            return Vec::new();
        }
        let started = run.current.as_ref().and_then(|state| state.start_time);
        let finished = terminated(started, at, code, detail);
        let restart = match (slot, policy) {
            // An init container that succeeded is done; a failed one is retried unless Never.
            (Slot::Init(_), RestartPolicy::Never) => false,
            (Slot::Init(_), _) => code != 0,
            (Slot::Main(_), RestartPolicy::Never) => false,
            (Slot::Main(_), RestartPolicy::OnFailure) => code != 0,
            (Slot::Main(_), RestartPolicy::Always) => true,
        };
        if !restart {
            run.phase = Phase::Exited(code);
            run.current = Some(finished);
            return match slot {
                Slot::Init(index) if code == 0 => self.next_after_init(generation, index + 1),
                Slot::Init(_) => {
                    let message = format!(
                        "The init container '{}' exited with code {code}; the containers were not started",
                        run.name
                    );
                    self.fail("InitContainerFailed", message);
                    Vec::new()
                }
                Slot::Main(_) => Vec::new(),
            };
        }
        let ran_for = started.map(|start| at - start).unwrap_or_default();
        if ran_for > BACKOFF_RESET {
            run.backoff_step = 0;
        }
        let delay = backoff_delay(backoff, run.backoff_step);
        run.backoff_step = run.backoff_step.saturating_add(1);
        run.phase = Phase::BackOff;
        run.previous = Some(finished);
        run.current = Some(waiting(&format!(
            "CrashLoopBackOff: Back-off {} restarting failed container",
            human_duration(delay)
        )));
        push_event(
            &mut run.events,
            at,
            "BackOff",
            "Back-off restarting failed container",
            "Warning",
        );
        vec![Action::RestartAfter {
            generation,
            slot,
            delay,
        }]
    }

    fn stop(&mut self, now: OffsetDateTime) -> Vec<Action> {
        if self.stopped {
            return Vec::new();
        }
        self.stopped = true;
        self.generation += 1;
        if !self.provisioning.is_terminal() {
            self.provisioning = Provisioning::Succeeded;
        }
        for run in self.init_containers.iter_mut().chain(&mut self.containers) {
            if matches!(run.phase, Phase::Running | Phase::BackOff) {
                let started = run.current.as_ref().and_then(|state| state.start_time);
                let message = format!("Killing container {}", run.name);
                push_event(&mut run.events, now, "Killing", &message, "Normal");
                run.previous = run.current.take();
                run.current = Some(terminated(started, now, KILLED_EXIT_CODE, "Stopped"));
                run.phase = Phase::Exited(KILLED_EXIT_CODE);
            }
        }
        vec![Action::KillAll]
    }

    /// Start (fresh instances) or restart (in place: restart counts go on).
    fn restart_all(&mut self, now: OffsetDateTime, in_place: bool) -> Vec<Action> {
        self.stopped = false;
        self.generation += 1;
        self.provisioning = Provisioning::Pending;
        self.failure = None;
        for run in self.init_containers.iter_mut().chain(&mut self.containers) {
            if in_place {
                if run.logs_available {
                    run.restart_count += 1;
                }
                if let Some(current) = run.current.take() {
                    let was_running = current.state.as_deref() == Some("Running");
                    run.previous = Some(if was_running {
                        terminated(current.start_time, now, KILLED_EXIT_CODE, "Killed")
                    } else {
                        current
                    });
                }
            } else {
                run.restart_count = 0;
                run.previous = None;
                run.current = None;
                run.events.clear();
                run.logs_available = false;
            }
            run.phase = Phase::NotStarted;
            run.backoff_step = 0;
        }
        if !in_place {
            self.events.clear();
        }
        vec![
            Action::KillAll,
            Action::Provision {
                generation: self.generation,
            },
        ]
    }

    /// A Spot eviction: a `SpotEvicted` warning on the group, each running container killed
    /// (`Terminated`, exit code 137, `Evicted`), then a restart in place: restart counts go on,
    /// and the killed state becomes `previousState`.
    fn evicted(&mut self, now: OffsetDateTime) -> Vec<Action> {
        push_event(
            &mut self.events,
            now,
            EVICTED_EVENT,
            "The Spot container group was evicted: Azure needed the capacity back. It is restarted automatically.",
            "Warning",
        );
        for run in self.init_containers.iter_mut().chain(&mut self.containers) {
            if matches!(run.phase, Phase::Running | Phase::BackOff) {
                let started = run.current.as_ref().and_then(|state| state.start_time);
                let message = format!(
                    "Killing container {}: the Spot container group was evicted",
                    run.name
                );
                push_event(&mut run.events, now, "Killing", &message, "Warning");
                run.current = Some(terminated(started, now, KILLED_EXIT_CODE, "Evicted"));
                run.phase = Phase::Exited(KILLED_EXIT_CODE);
            }
        }
        self.restart_all(now, true)
    }

    fn recovered(&mut self, now: OffsetDateTime, backoff: Backoff) -> Vec<Action> {
        if self.stopped || self.provisioning == Provisioning::Failed {
            return Vec::new();
        }
        if matches!(
            self.provisioning,
            Provisioning::Pending | Provisioning::Creating
        ) {
            // The attempt (init containers included) was cut short: make it again, from the start.
            self.provisioning = Provisioning::Pending;
            self.generation += 1;
            for run in self.init_containers.iter_mut().chain(&mut self.containers) {
                run.phase = Phase::NotStarted;
                run.current = None;
            }
            return vec![Action::Provision {
                generation: self.generation,
            }];
        }
        let generation = self.generation;
        let mut actions = Vec::new();
        for index in 0..self.containers.len() {
            let slot = Slot::Main(index);
            let run = &mut self.containers[index];
            match run.phase {
                Phase::Running => {
                    let message = format!(
                        "The emulator restarted; the process of container {} was lost (exit code {KILLED_EXIT_CODE})",
                        run.name
                    );
                    push_event(&mut run.events, now, "Killing", &message, "Warning");
                    actions.extend(self.exited(
                        generation,
                        slot,
                        KILLED_EXIT_CODE,
                        now,
                        backoff,
                        "Killed: the emulator restarted and the process was lost",
                    ));
                }
                Phase::BackOff => actions.push(Action::RestartAfter {
                    generation,
                    slot,
                    delay: Duration::ZERO,
                }),
                Phase::NotStarted | Phase::Exited(_) => {}
            }
        }
        actions
    }

    fn fail(&mut self, code: &str, message: String) {
        self.provisioning = Provisioning::Failed;
        self.failure = Some(Failure {
            code: code.to_string(),
            message,
        });
    }
}

#[cfg(test)]
mod tests;
