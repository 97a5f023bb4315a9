//! The engine: `apply(state, event, now) -> Transition { next, actions }`, a pure function.
//!
//! It first records what the event says (`record`), then decides from the whole state what must
//! happen next (`decide`), kube-controller style. Because decisions are taken from the state and not
//! from the event, duplicated, reordered and early events land in the same place.

use super::event::{Action, ActionKind, Event};
use super::names::{aci_name, instance_name};
use super::placement;
use super::policy::{self, CALLBACK_GRACE_MS, CREATE_CLAIM_MS};

/// Options of a new deployment that come from configuration rather than from its spec.
#[derive(Clone, Debug)]
pub struct StartOptions {
    pub callback_base: String,
    pub create_claim_ms: Millis,
    /// The deployment's random identity, hashed into its groups' names (see
    /// [`super::names::aci_name`]); `None` names them as before it existed.
    pub uid: Option<String>,
    /// Publish its outcomes to the operator's Event Grid topic (see [`Deployment::event_grid`]).
    pub event_grid: bool,
}

impl StartOptions {
    /// Options with the default create claim.
    pub fn new(callback_base: impl Into<String>) -> Self {
        StartOptions {
            callback_base: callback_base.into(),
            create_claim_ms: CREATE_CLAIM_MS,
            uid: None,
            event_grid: false,
        }
    }
}
use super::flow::{self, GroupState, Task};
use super::state::{
    Completed, Cost, Deployment, Hold, Instance, Millis, Outcome, Phase, Raised, RuntimeStatus,
    Verdict, Wake,
};
use crate::spec::{CleanupWhen, IsoDuration, Mode, Priority, Spec};

/// The result of applying one event: the state to save, then the actions to perform.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub next: Deployment,
    pub actions: Vec<Action>,
}

impl Transition {
    /// Whether the state changed and must be saved.
    pub fn changed(&self, before: &Deployment) -> bool {
        self.next.seq != before.seq
    }
}

/// An event that cannot apply to this deployment.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("invalid transition: deployment '{deployment}' has no container group '{instance}'")]
    UnknownInstance {
        deployment: String,
        instance: String,
    },
}

/// Most raised events kept in a deployment's inbox.
pub const MAX_INBOX: usize = 100;
/// Most bytes of payload (as JSON) the events in a deployment's inbox hold together.
pub const MAX_INBOX_BYTES: usize = 256 * 1024;

/// Whether `d`'s inbox has room for an event `name` with `payload`. `completed`, `heartbeat` and
/// `teardown` are acted on, not kept, and always fit. A full inbox refuses (the API answers 429):
/// the checkpoint is rewritten with every event, so an unbounded inbox would let a caller grow it
/// without end, and dropping old events would lose them silently.
pub fn inbox_has_room(d: &Deployment, name: &str, payload: &serde_json::Value) -> bool {
    if matches!(name, "completed" | "heartbeat" | "teardown") {
        return true;
    }
    let size = |p: &serde_json::Value| serde_json::to_string(p).map_or(usize::MAX, |t| t.len());
    let held: usize = d.inbox.iter().map(|r| size(&r.payload)).sum();
    d.inbox.len() < MAX_INBOX && held.saturating_add(size(payload)) <= MAX_INBOX_BYTES
}

/// A new deployment, and its first step, due now.
pub fn start(
    spec: Spec,
    sealed: Option<String>,
    digest: String,
    options: StartOptions,
    now: Millis,
) -> Transition {
    let deadline = spec.timeout.map(|t| now + t.millis() as Millis);
    let mut deployment = Deployment {
        schema_version: super::state::SCHEMA_VERSION,
        id: spec.id.clone(),
        spec,
        sealed,
        digest,
        callback_key: None,
        notify_key: None,
        notify_urls: None,
        event_grid: options.event_grid,
        uid: options.uid,
        callback_base: options.callback_base,
        seq: 1,
        create_claim_ms: options.create_claim_ms,
        status: RuntimeStatus::Pending,
        phase: Phase::Pending,
        created: now,
        updated: now,
        attempt: 1,
        instances: Vec::new(),
        deadline,
        outcome: None,
        retry_at: None,
        completed: None,
        teardown: false,
        last_heartbeat: None,
        inbox: Vec::new(),
        wake: Some(Wake { at: now, seq: 1 }),
        cost: Cost::default(),
        history: Vec::new(),
        history_archived: 0,
        stages_started: 0,
        stages_ended: 0,
        notifications: Vec::new(),
    };
    deployment.schema_version = super::state::schema_version(&deployment);
    let groups = format!("{} group(s)", deployment.spec.groups.len());
    note(&mut deployment, now, "DeploymentAccepted", groups);
    Transition {
        next: deployment,
        actions: vec![Action::Schedule { at: now, seq: 1 }],
    }
}

/// Who does the work an applied event leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deciding {
    /// Whoever applies the event performs the work: a create is claimed for it.
    Perform,
    /// A later step does it (an API call records and hands over): nothing is claimed, and the
    /// deployment is due now.
    HandOver,
    /// More events follow in the same round, which decides on the final state: nothing is
    /// claimed (a claim taken here would hold a create nobody sends until it ran out) and the
    /// wake is left as it is.
    Batched,
}

/// Applies one event. Terminal deployments absorb every event unchanged.
pub fn apply(state: &Deployment, event: Event, now: Millis) -> Result<Transition, EngineError> {
    let deciding = match event.is_external() {
        true => Deciding::HandOver,
        false => Deciding::Perform,
    };
    apply_as(state, event, now, deciding)
}

/// [`apply`], with the work decided as `deciding` says.
pub(super) fn apply_as(
    state: &Deployment,
    event: Event,
    now: Millis,
    deciding: Deciding,
) -> Result<Transition, EngineError> {
    if state.phase == Phase::Done {
        return Ok(Transition {
            next: state.clone(),
            actions: Vec::new(),
        });
    }
    let mut next = state.clone();
    migrate(&mut next);
    let beat = matches!(event, Event::Heartbeat { .. }).then(|| next.clone());
    record(&mut next, event, now)?;
    if beat.is_some_and(|before| before == next) {
        // A beat that moves no deadline (see `policy::beat_worth_saving`): nothing to save, and
        // no step to hand work to, whatever is due.
        return Ok(Transition {
            next: state.clone(),
            actions: Vec::new(),
        });
    }
    // API calls record and hand the work to a step: they perform nothing, so they take no create
    // claim either (the step would wait for it to run out before creating).
    let mut plan = Plan {
        hand_over: deciding != Deciding::Perform,
        ..Plan::default()
    };
    decide(&mut next, now, &mut plan);
    derive_phase_and_status(&mut next);
    super::notify::decide(&mut next, now, &mut plan);
    if plan.hand_over && !plan.work.is_empty() {
        plan.work.clear();
        plan.wait = Some(now);
    }

    let new_seq = state.seq + 1;
    let mut actions = Vec::new();
    if next.phase == Phase::Done {
        next.wake = None;
    } else if deciding == Deciding::Batched {
        plan.work.clear();
    } else if plan.work.is_empty() {
        let at = plan.wait.unwrap_or(now + policy::IDLE_WAKE_MS);
        if next.wake.is_none_or(|w| w.at != at) {
            next.wake = Some(Wake { at, seq: new_seq });
            actions.push(Action::Schedule { at, seq: new_seq });
        }
    }
    actions.splice(0..0, plan.work);

    let mut compare = next.clone();
    compare.seq = state.seq;
    compare.updated = state.updated;
    if compare != *state {
        next.seq = new_seq;
        next.updated = now;
    } else {
        next = state.clone();
    }
    Ok(Transition { next, actions })
}

/// What `decide` found: work to do now, and the earliest time to look again otherwise.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) work: Vec<Action>,
    wait: Option<Millis>,
    /// The work is handed to a step rather than performed by whoever applies this event, so
    /// nothing is claimed for it.
    hand_over: bool,
}

impl Plan {
    pub(super) fn wait_until(&mut self, at: Millis) {
        self.wait = Some(self.wait.map_or(at, |w| w.min(at)));
    }
}

pub(super) fn note(d: &mut Deployment, at: Millis, kind: &str, detail: impl Into<String>) {
    d.history.push(super::state::HistoryEntry {
        at,
        kind: kind.to_owned(),
        detail: detail.into(),
    });
}

fn find(d: &Deployment, instance: &str) -> Result<usize, EngineError> {
    d.instances
        .iter()
        .position(|i| i.aci_name == instance)
        .ok_or_else(|| EngineError::UnknownInstance {
            deployment: d.id.clone(),
            instance: instance.to_owned(),
        })
}

/// Marks the end of an instance's compute and adds it to the cost.
fn end_compute(d: &mut Deployment, index: usize, at: Millis) {
    let inst = &d.instances[index];
    let (Some(created), None) = (inst.created, inst.ended) else {
        return;
    };
    let at = at.max(created);
    let shape = d.spec.groups[inst.slot].shape();
    let seconds = (at - created) as f64 / 1000.0;
    d.cost.vcpu_seconds += shape.cpu * seconds;
    d.cost.memory_gb_seconds += shape.memory_gb * seconds;
    if inst.priority == Some(Priority::Spot) {
        d.cost.spot_seconds += seconds;
    } else {
        d.cost.regular_seconds += seconds;
    }
    d.instances[index].ended = Some(at);
}

fn conclude(d: &mut Deployment, status: RuntimeStatus, error: Option<String>, now: Millis) {
    if d.outcome.is_some() {
        return;
    }
    let detail = error.clone().unwrap_or_default();
    note(d, now, status.as_str(), detail);
    d.outcome = Some(Outcome {
        status,
        error,
        at: now,
    });
}

fn record(d: &mut Deployment, event: Event, now: Millis) -> Result<(), EngineError> {
    match event {
        Event::Wake => {}
        Event::Created { instance } => {
            let i = find(d, &instance)?;
            let slot = d.instances[i].slot;
            let callback_only =
                d.spec.mode == Mode::Job && !d.spec.completion_of(slot).watches_exit();
            let inst = &mut d.instances[i];
            inst.claim_until = None;
            inst.failures = 0;
            inst.blocked_until = None;
            inst.held = None;
            if inst.created.is_none() {
                inst.created = Some(now);
                inst.next_look = Some(now + policy::first_look_delay(callback_only));
                note(d, now, "GroupCreated", instance);
            }
        }
        Event::Observed {
            instance,
            observation,
            at,
        } => {
            let i = find(d, &instance)?;
            let service = d.spec.mode == Mode::Service;
            let watching = d.spec.completion_of(d.instances[i].slot).watches_exit();
            let inst = &mut d.instances[i];
            if inst.deleted || inst.observed_at.is_some_and(|last| at < last) {
                // Gone, or a look older than the one recorded (a slow worker's late answer).
                return Ok(());
            }
            inst.observed_at = Some(at);
            inst.failures = 0;
            inst.blocked_until = None;
            if inst.created.is_none() {
                // Found by a look after a claim expired: an earlier worker did create it.
                inst.created = Some(now);
                inst.claim_until = None;
                inst.held = None;
            }
            let changed = inst.observed.as_ref() != Some(&observation);
            inst.quiet_looks = if changed { 0 } else { inst.quiet_looks + 1 };
            let delay = match inst.look_plan.as_ref().filter(|_| watching && !service) {
                Some(plan) => policy::planned_look_delay(plan, now - inst.created.unwrap_or(now)),
                None => policy::next_look_delay(watching, service, inst.quiet_looks),
            };
            inst.next_look = Some(now + delay);
            let finished = observation.all_terminated().then(|| {
                observation
                    .containers
                    .iter()
                    .filter_map(|c| c.finish)
                    .max()
                    .unwrap_or(now)
            });
            if changed {
                note(
                    d,
                    now,
                    "GroupObserved",
                    format!("{instance}: {}", summary(&observation)),
                );
            }
            d.instances[i].observed = Some(observation);
            if let Some(at) = finished {
                end_compute(d, i, at);
            }
        }
        Event::LookDeferred { instance, until } => {
            let i = find(d, &instance)?;
            let inst = &mut d.instances[i];
            if !inst.deleted {
                // Before its exit window, a look waits at most until the window opens.
                let until = match inst.created {
                    Some(created) => {
                        created
                            + policy::deferred_look_until(
                                inst.look_plan.as_ref(),
                                now - created,
                                until - created,
                            )
                    }
                    None => until,
                };
                inst.next_look = Some(inst.next_look.map_or(until, |at| at.max(until)));
            }
        }
        Event::Missing { instance } => {
            let i = find(d, &instance)?;
            if !d.instances[i].deleted {
                d.instances[i].deleted = true;
                d.instances[i].claim_until = None;
                end_compute(d, i, now);
                let retiring = d.instances[i].retiring;
                let detail = if retiring {
                    "gone before cleanup"
                } else {
                    "deleted outside Berth"
                };
                note(d, now, "GroupMissing", format!("{instance}: {detail}"));
            }
        }
        Event::Stopped { instance } => {
            let i = find(d, &instance)?;
            if !d.instances[i].stopped {
                d.instances[i].stopped = true;
                d.instances[i].failures = 0;
                end_compute(d, i, now);
                note(d, now, "GroupStopped", instance);
            }
        }
        Event::LogsSaved {
            instance,
            note: remark,
        } => {
            let i = find(d, &instance)?;
            if !d.instances[i].logs_saved {
                d.instances[i].logs_saved = true;
                d.instances[i].failures = 0;
                let detail = match remark {
                    Some(remark) => format!("{instance}: {remark}"),
                    None => instance,
                };
                note(d, now, "LogsSaved", detail);
            }
        }
        Event::LogsGrowing { instance, within } => {
            let i = find(d, &instance)?;
            let inst = &mut d.instances[i];
            if !inst.deleted && !inst.retiring {
                let due = now + within.max(policy::LOG_READ_MIN_MS);
                inst.next_look = Some(inst.next_look.map_or(due, |at| at.min(due)));
            }
        }
        Event::LogsTruncated {
            instance,
            container,
            detail,
        } => {
            let i = find(d, &instance)?;
            let entry = format!("{container}: {detail}");
            let inst = &mut d.instances[i];
            let kept = inst.logs_truncated.len();
            if kept > policy::MOST_TRUNCATIONS_KEPT || inst.logs_truncated.contains(&entry) {
                // Known, or past the most the checkpoint lists (it is rewritten at every save):
                // the saved log notes every gap where it is.
            } else if kept == policy::MOST_TRUNCATIONS_KEPT {
                inst.logs_truncated
                    .push("…and more: the saved logs note each where it is".into());
                note(
                    d,
                    now,
                    "LogsTruncated",
                    format!("{instance}: more gaps, noted in the saved logs"),
                );
            } else {
                inst.logs_truncated.push(entry);
                note(
                    d,
                    now,
                    "LogsTruncated",
                    format!("{instance}/{container}: {detail}"),
                );
            }
        }
        Event::Deleted { instance } => {
            let i = find(d, &instance)?;
            if !d.instances[i].deleted {
                d.instances[i].deleted = true;
                end_compute(d, i, now);
                note(d, now, "GroupDeleted", instance);
            }
        }
        Event::Failed {
            instance,
            action,
            error,
            transient,
        } => {
            let i = find(d, &instance)?;
            let inst = &mut d.instances[i];
            if inst.deleted {
                return Ok(());
            }
            inst.failures += 1;
            inst.blocked_until = Some(now + policy::failure_delay(inst.failures));
            if action == ActionKind::Create {
                inst.claim_until = None;
            }
            let permanent_create = action == ActionKind::Create && !transient;
            note(
                d,
                now,
                "ActionFailed",
                format!("{action:?} {instance}: {error}"),
            );
            if permanent_create {
                let message = format!("creating container group {instance} failed: {error}");
                d.instances[i].deleted = true;
                match d.spec.mode {
                    Mode::Job => judged(d, i, false, message, None, now),
                    Mode::Service => conclude(d, RuntimeStatus::Failed, Some(message), now),
                }
            }
        }
        Event::Raised { name, payload } => {
            if d.outcome.is_some() {
                return Ok(());
            }
            // Something happened out there: look at the groups again now rather than at the
            // next scheduled look.
            for inst in d
                .instances
                .iter_mut()
                .filter(|i| !i.retiring && i.created.is_some())
            {
                inst.next_look = Some(now);
            }
            match name.as_str() {
                "completed" => {
                    // Raised on the deployment, not by one instance's URL: it completes every
                    // instance under way.
                    let exit_code = payload.get("exitCode").and_then(serde_json::Value::as_i64);
                    let output = payload.get("output").cloned();
                    let mut any = false;
                    for inst in d
                        .instances
                        .iter_mut()
                        .filter(|i| !i.retiring && i.completed.is_none())
                    {
                        inst.completed = Some(Completed {
                            exit_code,
                            at: now,
                            output: output.clone(),
                        });
                        any = true;
                    }
                    if any {
                        let detail = exit_code
                            .map(|c| format!("exitCode {c}"))
                            .unwrap_or_default();
                        note(d, now, "CompletedReceived", detail);
                    } else if d.instances.iter().all(|i| i.retiring) {
                        // Before the first create (or between attempts): kept for the next.
                        d.completed = Some(Completed {
                            exit_code,
                            at: now,
                            output,
                        });
                    }
                }
                "heartbeat" => {
                    // Raised on the deployment: every instance under way is alive.
                    d.last_heartbeat = Some(now);
                    for inst in d.instances.iter_mut().filter(|i| !i.retiring) {
                        inst.last_beat = Some(now);
                    }
                }
                "teardown" => {
                    if d.spec.mode == Mode::Service {
                        if !d.teardown {
                            d.teardown = true;
                            note(d, now, "TeardownReceived", "");
                        }
                    } else {
                        conclude(
                            d,
                            RuntimeStatus::Terminated,
                            Some("teardown event".into()),
                            now,
                        );
                    }
                }
                _ => {
                    // Bounded by the caller: `inbox_has_room` is asked before an event is raised.
                    note(d, now, "EventReceived", name.clone());
                    d.inbox.push(Raised {
                        name,
                        at: now,
                        payload,
                    });
                }
            }
        }
        Event::InstanceCompleted {
            instance,
            exit_code,
            output,
        } => {
            let i = find(d, &instance)?;
            let inst = &mut d.instances[i];
            if d.outcome.is_none() && inst.verdict.is_none() && inst.completed.is_none() {
                inst.completed = Some(Completed {
                    exit_code,
                    at: now,
                    output,
                });
                inst.next_look = Some(now);
                let detail = match exit_code {
                    Some(code) => format!("{instance}: exitCode {code}"),
                    None => instance,
                };
                note(d, now, "CompletedReceived", detail);
            }
        }
        Event::LooksPlanned { instance, plan } => {
            let i = find(d, &instance)?;
            d.instances[i].look_plan = Some(plan);
        }
        Event::Terminate { reason } => {
            conclude(
                d,
                RuntimeStatus::Terminated,
                Some(format!("terminated: {reason}")),
                now,
            );
        }
        Event::Evicted { instance, reason } => {
            let i = find(d, &instance)?;
            placement::evicted(d, i, reason, now);
        }
        Event::CapacityRefused { instance, reason } => {
            let i = find(d, &instance)?;
            if let Some(message) = placement::refused(d, i, &reason, now) {
                note(
                    d,
                    now,
                    "ActionFailed",
                    format!("Create {instance}: {message}"),
                );
                d.instances[i].deleted = true;
                match d.spec.mode {
                    Mode::Job => judged(d, i, false, message, None, now),
                    Mode::Service => conclude(d, RuntimeStatus::Failed, Some(message), now),
                }
            }
        }
        Event::CreateHeld {
            instance,
            reason,
            retry_at,
        } => {
            let i = find(d, &instance)?;
            let inst = &mut d.instances[i];
            if inst.created.is_some() || inst.deleted {
                return Ok(());
            }
            if inst.claim_until.take().is_some() {
                // The claim sent nothing (the driver holds before its PUT): it does not count as
                // a try, so the next one is admitted before any look, as a first try is, and a
                // held first try ends without a look should the deployment end.
                inst.create_tries = inst.create_tries.saturating_sub(1);
            }
            let first = inst.held.is_none();
            let since = inst.held.as_ref().map_or(now, |h| h.since);
            inst.held = Some(Hold {
                since,
                reason: reason.clone(),
                retry_at,
            });
            // Once per instance, not at every try: the status shows the latest reason.
            if first {
                note(d, now, "CreateHeld", format!("{instance}: {reason}"));
            }
        }
        Event::NotifySent { id, status } => super::notify::sent(d, &id, status, now),
        Event::NotifyFailed {
            id,
            error,
            permanent,
        } => super::notify::failed(d, &id, &error, permanent, now),
        Event::Heartbeat { instance } => {
            let i = find(d, &instance)?;
            let timeout = d.spec.heartbeat_timeout_of(d.instances[i].slot);
            let inst = &mut d.instances[i];
            // Recorded only when it moves the deadline enough to be worth a save; without a
            // `heartbeatTimeout` nothing waits for it.
            if let Some(timeout) = timeout
                && !inst.retiring
                && policy::beat_worth_saving(inst.last_beat, now, timeout.millis() as Millis)
            {
                inst.last_beat = Some(now);
            }
        }
    }
    Ok(())
}

/// Whether a look at `inst` began at or after `at`: silence is judged hung only on a look taken
/// once the deadline passed, since the containers may have exited meanwhile (a job that ends
/// stops beating) without a look having seen it yet.
fn seen_since(inst: &Instance, at: Millis) -> bool {
    inst.observed_at.is_some_and(|seen| seen >= at)
}

/// Asks for a look at every instance whose heartbeat deadline passed since its last look (see
/// [`seen_since`]).
fn look_after_silence(d: &mut Deployment, now: Millis) {
    for i in 0..d.instances.len() {
        let inst = &d.instances[i];
        if let Some((at, _)) = hung_at(d, inst)
            && !inst.retiring
            && now >= at
            && !seen_since(inst, at)
        {
            let inst = &mut d.instances[i];
            inst.next_look = Some(inst.next_look.map_or(now, |next| next.min(now)));
        }
    }
}

/// When instance `inst` counts as hung unless it beats, and its heartbeat timeout: the timeout
/// after its last recorded beat, or after its containers started (`None` before they have, and
/// once they have ended, or without a `heartbeatTimeout`).
fn hung_at(d: &Deployment, inst: &Instance) -> Option<(Millis, IsoDuration)> {
    let timeout = d.spec.heartbeat_timeout_of(inst.slot)?;
    if inst.created.is_none() || inst.deleted {
        return None;
    }
    let observed = inst.observed.as_ref();
    if observed.is_some_and(|o| o.all_terminated() || o.provisioning_failed()) {
        return None;
    }
    let started = observed.and_then(|o| o.containers.iter().filter_map(|c| c.start).max());
    let since = match (inst.last_beat, started) {
        (Some(beat), Some(start)) => beat.max(start),
        (beat, start) => beat.or(start)?,
    };
    Some((since + timeout.millis() as Millis, timeout))
}

fn summary(o: &super::state::Observation) -> String {
    let containers: Vec<String> = o
        .containers
        .iter()
        .map(|c| match c.exit_code {
            Some(code) => format!("{} {}({code})", c.name, c.state),
            None => format!("{} {}", c.name, c.state),
        })
        .collect();
    format!(
        "{} / {}; {}",
        o.provisioning_state,
        o.state,
        containers.join(", ")
    )
}

/// Brings a checkpoint written before instances were judged one by one up to date: a `completed`
/// kept on the deployment moves to its instances under way, and a pending retry of the whole
/// deployment becomes failed verdicts on the attempt it retires. Idempotent.
fn migrate(d: &mut Deployment) {
    d.schema_version = super::state::schema_version(d);
    if d.spec.mode != Mode::Job {
        return;
    }
    if let Some(completed) = d.completed.clone()
        && d.instances.iter().any(|i| !i.retiring)
    {
        for inst in d.instances.iter_mut().filter(|i| !i.retiring) {
            inst.completed.get_or_insert_with(|| completed.clone());
        }
        d.completed = None;
    }
    if let Some(at) = d.retry_at.take() {
        let backoff = d.spec.retry.backoff.millis();
        let failed_at = at - policy::retry_delay(backoff, d.attempt);
        for inst in d.instances.iter_mut() {
            if inst.retiring && inst.verdict.is_none() && inst.generation + 1 == d.attempt {
                inst.verdict = Some(Verdict {
                    succeeded: false,
                    error: Some("the attempt failed".into()),
                    exit_code: None,
                    at: failed_at,
                    evicted: false,
                });
            }
        }
    }
}

/// Records instance `i`'s verdict and winds it down.
fn judged(
    d: &mut Deployment,
    i: usize,
    succeeded: bool,
    error: String,
    exit_code: Option<i64>,
    now: Millis,
) {
    let inst = &mut d.instances[i];
    if inst.verdict.is_some() {
        return;
    }
    inst.verdict = Some(Verdict {
        succeeded,
        error: (!succeeded).then(|| error.clone()),
        exit_code,
        at: now,
        evicted: false,
    });
    inst.retiring = true;
    let name = inst.aci_name.clone();
    let (generation, slot) = (inst.generation, inst.slot);
    if succeeded {
        note(d, now, "InstanceSucceeded", name);
    } else {
        // A failure the retry answers is an attempt's; the last one is the instance's.
        // Evicted attempts do not count against the retry.
        let counted = generation - placement::evictions(d, slot, d.instances[i].index);
        if counted < d.spec.retry_of(slot).max_attempts {
            let detail = format!("{name}: {error}; attempt {} follows", generation + 1);
            note(d, now, "AttemptFailed", detail);
        } else {
            note(d, now, "InstanceFailed", format!("{name}: {error}"));
        }
    }
}

fn decide(d: &mut Deployment, now: Millis, plan: &mut Plan) {
    if d.outcome.is_none()
        && let Some(deadline) = d.deadline
    {
        if now >= deadline {
            let after = d.spec.timeout.map(|t| t.to_string()).unwrap_or_default();
            conclude(
                d,
                RuntimeStatus::TimedOut,
                Some(format!("timed out after {after}")),
                now,
            );
        } else {
            plan.wait_until(deadline);
        }
    }
    if d.outcome.is_none() {
        look_after_silence(d, now);
        match d.spec.mode {
            Mode::Job => judge_job(d, now, plan),
            Mode::Service => judge_service(d, now, plan),
        }
    }
    if d.outcome.is_some() {
        for inst in d.instances.iter_mut() {
            inst.retiring = true;
        }
    } else {
        plan_instances(d, now, plan);
    }
    for index in 0..d.instances.len() {
        act_on(d, index, now, plan);
    }
}

/// Judges each job instance under way, then the groups, then the deployment: it ends when every
/// group has, `Succeeded` when none failed.
fn judge_job(d: &mut Deployment, now: Millis, plan: &mut Plan) {
    for i in 0..d.instances.len() {
        if d.instances[i].retiring || d.instances[i].verdict.is_some() {
            continue;
        }
        let verdict = judge_instance(d, i, now, plan);
        // An eviction ends the attempt unless the group still completed successfully (ACI
        // restarts an evicted group in place, and it may have run to the end before a look).
        let success = matches!(verdict, Some((true, _, _)));
        if !success && let Some(reason) = d.instances[i].evicted.clone() {
            placement::judge(d, i, &reason, now);
        } else if let Some((succeeded, error, exit_code)) = verdict {
            judged(d, i, succeeded, error, exit_code, now);
        }
    }
    let states = flow::states(d);
    for (slot, state) in states.iter().enumerate() {
        if state.has_ended() && d.stages_ended & (1 << slot) == 0 {
            d.stages_ended |= 1 << slot;
            let group = d.spec.groups[slot].name.clone();
            note(d, now, "StageEnded", format!("{group}: {state:?}"));
            if *state == GroupState::Failed {
                super::notify::queue(d, crate::spec::NotifyOn::GroupFailed, Some(&group), now);
            }
        }
    }
    // A group failed past its tolerance: its instances still under way are stopped.
    for (slot, state) in states.iter().enumerate() {
        if *state != GroupState::Failed {
            continue;
        }
        for i in 0..d.instances.len() {
            let inst = &d.instances[i];
            if inst.slot == slot && !inst.retiring {
                let group = d.spec.groups[slot].name.clone();
                judged(
                    d,
                    i,
                    false,
                    format!("stopped: group {group} failed"),
                    None,
                    now,
                );
            }
        }
    }
    if states.iter().all(|s| s.has_ended()) {
        let failed = states.iter().position(|s| *s == GroupState::Failed);
        match failed {
            None => conclude(d, RuntimeStatus::Succeeded, None, now),
            Some(slot) => {
                let error = group_error(d, slot);
                conclude(d, RuntimeStatus::Failed, Some(error), now);
            }
        }
    }
}

/// Why group `slot` failed: its first failed instance's last error.
fn group_error(d: &Deployment, slot: usize) -> String {
    let name = &d.spec.groups[slot].name;
    let error = flow::latest(d, slot)
        .into_iter()
        .flatten()
        .filter_map(|i| d.instances[i].verdict.as_ref())
        .find(|v| !v.succeeded)
        .and_then(|v| v.error.clone())
        .unwrap_or_else(|| "failed".into());
    if d.spec.groups.len() == 1 && !d.spec.groups[slot].fans_out() {
        error
    } else {
        format!("group {name}: {error}")
    }
}

/// How instance `i` ended, if it has: `(succeeded, error, exit code)`.
fn judge_instance(
    d: &Deployment,
    i: usize,
    now: Millis,
    plan: &mut Plan,
) -> Option<(bool, String, Option<i64>)> {
    let inst = &d.instances[i];
    let completion = d.spec.completion_of(inst.slot);
    if completion.takes_callback()
        && let Some(completed) = &inst.completed
    {
        return Some(match completed.exit_code.unwrap_or(0) {
            0 => (true, String::new(), None),
            code => (false, format!("completed with exitCode {code}"), Some(code)),
        });
    }
    let created = inst.created?;
    if let Some(timeout) = d.spec.groups[inst.slot].timeout {
        let until = created + timeout.millis() as Millis;
        if now >= until {
            return Some((false, format!("timed out after {timeout}"), None));
        }
        plan.wait_until(until);
    }
    if let Some((at, timeout)) = hung_at(d, inst) {
        if now < at {
            plan.wait_until(at);
        } else if seen_since(inst, at) {
            return Some((false, format!("hung: no heartbeat within {timeout}"), None));
        }
    }
    if inst.deleted {
        let error = format!("container group {} disappeared while it ran", inst.aci_name);
        return Some((false, error, None));
    }
    let observed = inst.observed.as_ref()?;
    if observed.provisioning_failed() {
        let why = observed
            .problem
            .clone()
            .unwrap_or_else(|| "provisioning failed".into());
        let error = format!("container group {} failed to start: {why}", inst.aci_name);
        return Some((false, error, None));
    }
    if !observed.all_terminated() {
        return None;
    }
    let failed_exit = observed.failed_exit().map(|(container, code)| {
        (
            format!(
                "container {container} of {} exited with code {code}",
                inst.aci_name
            ),
            code,
        )
    });
    if completion.watches_exit() {
        return Some(match failed_exit {
            Some((error, code)) => (false, error, Some(code)),
            None => (true, String::new(), None),
        });
    }
    // Completion by callback only: the containers exited; the callback may still be on its way.
    let ended = inst.ended.unwrap_or(now);
    if now >= ended + CALLBACK_GRACE_MS {
        Some(match failed_exit {
            Some((error, code)) => (false, error, Some(code)),
            None => (
                false,
                "the containers exited without the completed callback".into(),
                None,
            ),
        })
    } else {
        plan.wait_until(ended + CALLBACK_GRACE_MS);
        None
    }
}

fn judge_service(d: &mut Deployment, now: Millis, plan: &mut Plan) {
    if d.teardown {
        return conclude(d, RuntimeStatus::Succeeded, None, now);
    }
    for index in 0..d.instances.len() {
        let inst = &d.instances[index];
        if inst.retiring {
            continue;
        }
        let reason = if inst.deleted {
            Some("it disappeared".to_owned())
        } else {
            match &inst.observed {
                Some(o) if o.provisioning_failed() => {
                    let why = o
                        .problem
                        .clone()
                        .unwrap_or_else(|| "provisioning failed".into());
                    let error = format!("container group {} failed to start: {why}", inst.aci_name);
                    return conclude(d, RuntimeStatus::Failed, Some(error), now);
                }
                Some(o) if matches!(o.state.as_str(), "Failed" | "Stopped" | "Succeeded") => {
                    Some(format!("it was {}", o.state))
                }
                _ => match hung_at(d, inst) {
                    Some((at, timeout)) if now >= at && seen_since(inst, at) => {
                        Some(format!("it was hung (no heartbeat within {timeout})"))
                    }
                    Some((at, _)) if now < at => {
                        plan.wait_until(at);
                        None
                    }
                    _ => None,
                },
            }
        };
        if let Some(reason) = reason {
            let name = inst.aci_name.clone();
            d.instances[index].retiring = true;
            note(d, now, "Healing", format!("{name}: {reason}; recreating"));
        }
    }
}

/// Starts the instances that may start now: for a job, each index of a group whose
/// dependencies allow it that has no attempt yet or whose retry is due, within the group's
/// `parallelism`; for a service, a group whose dependencies run and that has no current instance
/// (after a start or a heal).
fn plan_instances(d: &mut Deployment, now: Millis, plan: &mut Plan) {
    for (slot, state) in flow::states(d).into_iter().enumerate() {
        if !matches!(state, GroupState::Pending | GroupState::Running) {
            continue;
        }
        match d.spec.mode {
            Mode::Job => plan_job_group(d, slot, now, plan),
            Mode::Service => {
                if !d.instances.iter().any(|i| i.slot == slot && !i.retiring) {
                    let generation = d
                        .instances
                        .iter()
                        .filter(|i| i.slot == slot)
                        .map(|i| i.generation)
                        .max()
                        .unwrap_or(0)
                        + 1;
                    let heals = generation.saturating_sub(1);
                    let blocked = (heals > 0).then(|| now + policy::failure_delay(heals));
                    add_instance(d, slot, 0, generation, blocked, now);
                }
            }
        }
    }
    d.attempt = d
        .instances
        .iter()
        .map(|i| i.generation)
        .max()
        .unwrap_or(1)
        .max(d.attempt);
}

fn plan_job_group(d: &mut Deployment, slot: usize, now: Millis, plan: &mut Plan) {
    let group = &d.spec.groups[slot];
    let count = group.instance_count();
    let most = group.parallelism.unwrap_or(count);
    let latest = flow::latest(d, slot);
    let mut running = latest
        .iter()
        .flatten()
        .filter(|&&i| !d.instances[i].retiring)
        .count() as u32;
    let mut start = Vec::new();
    for (index, at) in latest.iter().enumerate() {
        if running >= most {
            break;
        }
        match flow::task(d, slot, at.map(|i| &d.instances[i])) {
            Task::New => start.push((index as u32, 1)),
            Task::Retry { at, next } if at <= now => start.push((index as u32, next)),
            Task::Retry { at, .. } => {
                plan.wait_until(at);
                continue;
            }
            _ => continue,
        }
        running += 1;
    }
    for (index, generation) in start {
        add_instance(d, slot, index, generation, None, now);
    }
}

fn add_instance(
    d: &mut Deployment,
    slot: usize,
    index: u32,
    generation: u32,
    blocked_until: Option<Millis>,
    now: Millis,
) {
    let group = &d.spec.groups[slot];
    let name = if group.fans_out() {
        instance_name(&d.id, d.uid.as_deref(), &group.name, index, generation)
    } else {
        aci_name(&d.id, d.uid.as_deref(), &group.name, generation)
    };
    if d.stages_started & (1 << slot) == 0 {
        d.stages_started |= 1 << slot;
        let name = d.spec.groups[slot].name.clone();
        note(d, now, "StageStarted", name);
    }
    // A deployment-wide `completed` that came before this instance existed.
    let completed = d.completed.take();
    let (priority, location) = placement::place(d, slot, index, &name, now);
    let mut instance = Instance::new(slot, index, generation, name);
    instance.priority = priority;
    instance.location = location;
    instance.blocked_until = blocked_until;
    instance.completed = completed;
    d.instances.push(instance);
}

/// Whether a retiring instance is to be deleted (else kept), and from when.
fn delete_from(d: &Deployment) -> Option<Millis> {
    match &d.outcome {
        None => (d.spec.cleanup.when != CleanupWhen::Never).then_some(0),
        Some(outcome) => {
            let delete = match d.spec.cleanup.when {
                CleanupWhen::Always => true,
                CleanupWhen::OnSuccess => outcome.status == RuntimeStatus::Succeeded,
                CleanupWhen::Never => false,
            };
            delete.then(|| outcome.at + d.spec.cleanup.keep_for.millis() as Millis)
        }
    }
}

fn act_on(d: &mut Deployment, index: usize, now: Millis, plan: &mut Plan) {
    let capture_logs = d.spec.capture_logs;
    let claim_ms = d.create_claim_ms;
    let delete_from = delete_from(d);
    let containers = d.spec.groups[d.instances[index].slot].shape().containers;
    let inst = &mut d.instances[index];
    if inst.deleted || inst.kept {
        return;
    }
    if let Some(until) = inst.blocked_until {
        if now < until {
            plan.wait_until(until);
            return;
        }
        inst.blocked_until = None;
    }
    let name = inst.aci_name.clone();
    if let Some(until) = inst.claim_until.filter(|until| now < *until) {
        // A worker is creating it; do nothing with it before the claim runs out.
        plan.wait_until(until);
        return;
    }
    if let Some(hold) = inst.held.as_ref().filter(|h| now < h.retry_at)
        && inst.created.is_none()
        && !inst.retiring
    {
        // Held for capacity: tried again then (or sooner, should another step come).
        plan.wait_until(hold.retry_at);
        return;
    }
    if inst.created.is_none() {
        if inst.retiring {
            if inst.create_tries == 0 {
                inst.deleted = true;
            } else if let Some(at) = inst.next_look.filter(|at| *at > now) {
                plan.wait_until(at);
            } else {
                // An expired claim: the create may or may not have happened. Look.
                plan.work.push(Action::Observe { instance: name });
            }
            return;
        }
        if !plan.hand_over {
            inst.claim_until = Some(now + claim_ms);
            inst.create_tries += 1;
        }
        let check_first = inst.create_tries > 1;
        let (slot, index) = (inst.slot, inst.index);
        plan.work.push(Action::Create {
            instance: name,
            slot,
            index,
            check_first,
        });
        return;
    }
    if !inst.retiring {
        match inst.next_look {
            Some(at) if at > now => plan.wait_until(at),
            _ => plan.work.push(Action::Observe { instance: name }),
        }
        return;
    }
    let running = inst.observed.as_ref().is_none_or(|o| !o.all_terminated());
    if running && !inst.stopped {
        plan.work.push(Action::Stop { instance: name });
    } else if capture_logs && !inst.logs_saved {
        plan.work.push(Action::CaptureLogs {
            instance: name,
            containers,
        });
    } else {
        match delete_from {
            Some(at) if at <= now => plan.work.push(Action::Delete { instance: name }),
            Some(at) => plan.wait_until(at),
            None => inst.kept = true,
        }
    }
}

/// Sets `phase` and `status` from the rest of the state.
fn derive_phase_and_status(d: &mut Deployment) {
    // An instance whose create is held for capacity has not started.
    let started = d
        .instances
        .iter()
        .any(|i| i.create_tries > 0 && (i.held.is_none() || i.created.is_some()));
    match d.outcome.clone() {
        Some(outcome) => {
            let open: Vec<&Instance> = d
                .instances
                .iter()
                .filter(|i| !i.deleted && !i.kept)
                .collect();
            let stopping = open.iter().any(|i| {
                i.created.is_some()
                    && !i.stopped
                    && i.observed.as_ref().is_none_or(|o| !o.all_terminated())
            });
            let logs =
                d.spec.capture_logs && open.iter().any(|i| i.created.is_some() && !i.logs_saved);
            d.phase = if open.is_empty() {
                Phase::Done
            } else if stopping {
                Phase::Stopping
            } else if logs {
                Phase::CapturingLogs
            } else {
                Phase::CleaningUp
            };
            let settled = matches!(d.phase, Phase::Done | Phase::CleaningUp);
            d.status = if settled {
                outcome.status
            } else if started {
                RuntimeStatus::Running
            } else {
                RuntimeStatus::Pending
            };
        }
        None => {
            let retrying = d.current().next().is_none()
                && d.instances
                    .iter()
                    .any(|i| i.verdict.as_ref().is_some_and(|v| !v.succeeded));
            d.phase = if started && retrying {
                Phase::Retrying
            } else if !started {
                Phase::Pending
            } else if d.current().any(|i| i.created.is_none()) {
                Phase::Creating
            } else {
                Phase::Waiting
            };
            d.status = if started {
                RuntimeStatus::Running
            } else {
                RuntimeStatus::Pending
            };
        }
    }
}
