//! Engine tests: scenarios run against a small simulated ARM world, fresh and resumed from every
//! intermediate checkpoint, with duplicated and reordered events.

use serde_json::json;

use super::*;
use crate::engine::state::{ContainerObservation, Observation, Wake};
use crate::spec::{Format, parse};

const T0: Millis = 1_800_000_000_000;

fn spec(extra: serde_json::Value) -> crate::spec::Spec {
    let mut body = json!({
        "id": "job-1",
        "groups": [{ "name": "work", "properties": { "containers": [
            { "name": "main", "properties": { "image": "busybox", "resources": { "requests": { "cpu": 1, "memoryInGB": 2 } } } }
        ] } }]
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    parse(body.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap()
}

fn started(extra: serde_json::Value) -> Deployment {
    start(
        spec(extra),
        None,
        "digest".into(),
        StartOptions::new("http://127.0.0.1:7071"),
        T0,
    )
    .next
}

/// A deployment whose first step claimed and created its group (`job-1-work-1`) at `T0 + 1`.
fn created(extra: serde_json::Value) -> Transition {
    let claimed = apply(&started(extra), Event::Wake, T0).unwrap().next;
    let instance = "job-1-work-1".into();
    apply(&claimed, Event::Created { instance }, T0 + 1).unwrap()
}

fn observation(state: &str, containers: &[(&str, &str, Option<i64>)]) -> Observation {
    Observation {
        provisioning_state: "Succeeded".into(),
        state: state.into(),
        containers: containers
            .iter()
            .map(|(name, state, exit)| ContainerObservation {
                name: (*name).into(),
                state: (*state).into(),
                exit_code: *exit,
                restart_count: 0,
                detail: None,
                start: None,
                finish: None,
            })
            .collect(),
        problem: None,
    }
}

/// What a look at an instance answers, by instance name and look count.
type Script = Box<dyn Fn(&str, u32) -> Observation>;

/// Whether the Nth create of, or look at, an instance meets a fault, and why.
type Fault = Box<dyn Fn(&str, u32) -> Option<String>>;

/// A simulated ARM world: how each instance answers looks, with a clock.
struct World {
    now: Millis,
    /// What a look at a created instance answers, by how many looks it has had.
    script: Script,
    looks: std::collections::HashMap<String, u32>,
    created: std::collections::BTreeSet<String>,
    creates: u32,
    /// PUTs per group name (a second PUT of a name would recreate or restart it).
    puts: std::collections::HashMap<String, u32>,
    /// Whether the Nth create of a name (from 1) is refused for capacity, and why.
    refuse: Fault,
    /// Whether the Nth look at a name reports a Spot eviction, and why.
    evict: Fault,
    /// Creates refused, per name.
    refusals: std::collections::HashMap<String, u32>,
    /// What the receiver of a notification answers its Nth attempt (from 1): a status, or
    /// nothing (unreachable).
    receiver: Box<dyn Fn(u32) -> Option<u16>>,
    /// Every notification attempt: its id and when.
    notified: Vec<(String, Millis)>,
}

impl World {
    fn new(script: impl Fn(&str, u32) -> Observation + 'static) -> Self {
        World {
            now: T0,
            script: Box::new(script),
            looks: Default::default(),
            created: Default::default(),
            creates: 0,
            puts: Default::default(),
            refuse: Box::new(|_, _| None),
            evict: Box::new(|_, _| None),
            refusals: Default::default(),
            receiver: Box::new(|_| Some(200)),
            notified: Vec::new(),
        }
    }

    fn perform(&mut self, action: &Action) -> Vec<Event> {
        match action {
            Action::Create {
                instance,
                check_first,
                ..
            } => {
                if *check_first && self.created.contains(instance) {
                    let n = self.looks.entry(instance.clone()).or_default();
                    *n += 1;
                    return vec![Event::Observed {
                        instance: instance.clone(),
                        observation: (self.script)(instance, *n),
                        at: self.now,
                    }];
                }
                let tries = self.puts.get(instance).copied().unwrap_or(0)
                    + self.refusals.get(instance).copied().unwrap_or(0);
                if let Some(reason) = (self.refuse)(instance, tries + 1) {
                    *self.refusals.entry(instance.clone()).or_default() += 1;
                    return vec![Event::CapacityRefused {
                        instance: instance.clone(),
                        reason,
                    }];
                }
                self.creates += 1;
                *self.puts.entry(instance.clone()).or_default() += 1;
                self.created.insert(instance.clone());
                vec![Event::Created {
                    instance: instance.clone(),
                }]
            }
            Action::Observe { instance } => {
                if !self.created.contains(instance) {
                    return vec![Event::Missing {
                        instance: instance.clone(),
                    }];
                }
                let n = self.looks.entry(instance.clone()).or_default();
                *n += 1;
                let mut events = vec![Event::Observed {
                    instance: instance.clone(),
                    observation: (self.script)(instance, *n),
                    at: self.now,
                }];
                if let Some(reason) = (self.evict)(instance, *n) {
                    events.push(Event::Evicted {
                        instance: instance.clone(),
                        reason,
                    });
                }
                events
            }
            Action::Stop { instance } => vec![Event::Stopped {
                instance: instance.clone(),
            }],
            Action::CaptureLogs { instance, .. } => vec![Event::LogsSaved {
                instance: instance.clone(),
                note: None,
            }],
            Action::Delete { instance } => {
                self.created.remove(instance);
                vec![Event::Deleted {
                    instance: instance.clone(),
                }]
            }
            Action::Schedule { .. } => vec![],
            Action::Notify { id } => {
                self.notified.push((id.clone(), self.now));
                let attempt = self.notified.iter().filter(|(n, _)| n == id).count() as u32;
                let id = id.clone();
                vec![match (self.receiver)(attempt) {
                    Some(status @ 200..=299) => Event::NotifySent { id, status },
                    Some(status) => Event::NotifyFailed {
                        id,
                        error: status.to_string(),
                        permanent: (400..500).contains(&status) && status != 429,
                    },
                    None => Event::NotifyFailed {
                        id,
                        error: "could not connect".into(),
                        permanent: false,
                    },
                }]
            }
        }
    }
}

/// Runs one step message over `saved` as the driver does (the engine's [`Step`]), every save
/// succeeding: returns the last saved checkpoint, and pushes each saved state to `checkpoints`.
fn run_step(saved: Deployment, world: &mut World, checkpoints: &mut Vec<Deployment>) -> Deployment {
    let mut step = Step::new(saved, policy::MAX_ROUNDS_PER_STEP);
    drive(&mut step, world, checkpoints);
    step.saved().clone()
}

/// Runs `step`'s rounds against `world`, every save succeeding (each saved state pushed to
/// `checkpoints`); returns each round's save kind and actions.
fn drive(
    step: &mut Step,
    world: &mut World,
    checkpoints: &mut Vec<Deployment>,
) -> Vec<(Save, Vec<Action>)> {
    let mut rounds = Vec::new();
    while let Some(round) = step.round(world.now) {
        assert!(round.dropped.is_empty(), "{:?}", round.dropped);
        if round.save == Save::Now {
            checkpoints.push(step.current().clone());
            step.committed();
        }
        let results: Vec<Event> = round
            .actions
            .iter()
            .flat_map(|a| world.perform(a))
            .collect();
        rounds.push((round.save, round.actions));
        step.push(results);
    }
    rounds
}

/// Runs a deployment to the end: every action performed, every wake honoured at its time, each
/// external event applied and saved on its own (as the API does). Returns the checkpoints saved
/// along the way.
fn run(
    mut d: Deployment,
    world: &mut World,
    external: Vec<(Millis, Event)>,
) -> (Deployment, Vec<Deployment>) {
    let mut checkpoints = vec![d.clone()];
    let mut external = std::collections::VecDeque::from(external);
    for _ in 0..10_000 {
        if d.phase == Phase::Done {
            break;
        }
        if let Some((at, _)) = external.front()
            && *at <= world.now
        {
            let t = apply(&d, external.pop_front().unwrap().1, world.now).unwrap();
            if t.changed(&d) {
                checkpoints.push(t.next.clone());
            }
            d = t.next;
        }
        if d.wake.is_some_and(|w| w.at <= world.now) {
            d = run_step(d, world, &mut checkpoints);
        }
        let next_external = external.front().map(|(at, _)| *at);
        let next_wake = d.wake.map(|w| w.at);
        let next = [next_external, next_wake].into_iter().flatten().min();
        match next {
            Some(at) => world.now = world.now.max(at),
            None => break,
        }
    }
    (d, checkpoints)
}

fn exits_after(looks: u32, code: i64) -> impl Fn(&str, u32) -> Observation {
    move |_, n| {
        if n >= looks {
            let state = if code == 0 { "Succeeded" } else { "Failed" };
            observation(state, &[("main", "Terminated", Some(code))])
        } else {
            observation("Running", &[("main", "Running", None)])
        }
    }
}

#[test]
fn a_job_that_exits_zero_succeeds_with_logs_saved_and_its_group_deleted() {
    let mut world = World::new(exits_after(3, 0));
    let (d, _) = run(started(json!({})), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded);
    assert_eq!(d.phase, Phase::Done);
    assert_eq!(world.creates, 1);
    assert!(world.created.is_empty(), "group deleted");
    let inst = &d.instances[0];
    assert!(inst.logs_saved && inst.deleted);
    assert_eq!(inst.aci_name, "job-1-work-1");
    let kinds: Vec<&str> = d.history.iter().map(|h| h.kind.as_str()).collect();
    let logs = kinds.iter().position(|k| *k == "LogsSaved").unwrap();
    let deleted = kinds.iter().position(|k| *k == "GroupDeleted").unwrap();
    assert!(
        logs < deleted,
        "logs are saved before the delete: {kinds:?}"
    );
    assert!(d.cost.vcpu_seconds >= 0.0);
    assert!(d.wake.is_none());
}

#[test]
fn a_failing_job_is_retried_with_fresh_groups_then_fails() {
    let mut world = World::new(exits_after(1, 3));
    let spec = json!({ "retry": { "maxAttempts": 3, "backoff": "PT10S" } });
    let (d, _) = run(started(spec), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Failed);
    assert_eq!(d.attempt, 3);
    assert_eq!(world.creates, 3);
    let names: Vec<&str> = d.instances.iter().map(|i| i.aci_name.as_str()).collect();
    assert_eq!(names, ["job-1-work-1", "job-1-work-2", "job-1-work-3"]);
    assert!(d.instances.iter().all(|i| i.logs_saved && i.deleted));
    assert!(
        d.outcome
            .unwrap()
            .error
            .unwrap()
            .contains("exited with code 3")
    );
    assert!(world.created.is_empty());
}

#[test]
fn a_retry_that_succeeds_ends_succeeded() {
    let mut world = World::new(|name: &str, n| {
        let code = if name.ends_with("-1") { 1 } else { 0 };
        exits_after(2, code)(name, n)
    });
    let (d, _) = run(
        started(json!({ "retry": { "maxAttempts": 2 } })),
        &mut world,
        vec![],
    );
    assert_eq!(d.status, RuntimeStatus::Succeeded);
    assert_eq!(d.attempt, 2);
}

#[test]
fn a_timeout_stops_the_group_saves_logs_and_ends_timed_out() {
    let mut world = World::new(exits_after(u32::MAX, 0));
    let (d, _) = run(started(json!({ "timeout": "PT5M" })), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::TimedOut);
    let inst = &d.instances[0];
    assert!(inst.stopped && inst.logs_saved && inst.deleted);
    assert!(world.now >= T0 + 300_000);
    assert!(world.now < T0 + 400_000, "ended soon after the deadline");
}

#[test]
fn completion_by_callback_stops_the_running_group_and_succeeds() {
    let mut world = World::new(exits_after(u32::MAX, 0));
    let completed = Event::Raised {
        name: "completed".into(),
        payload: json!({ "exitCode": 0 }),
    };
    let (d, _) = run(
        started(json!({ "completion": "callback" })),
        &mut world,
        vec![(T0 + 20_000, completed)],
    );
    assert_eq!(d.status, RuntimeStatus::Succeeded);
    assert!(d.instances[0].stopped);
}

#[test]
fn a_callback_with_a_nonzero_exit_code_fails_the_attempt() {
    let mut world = World::new(exits_after(u32::MAX, 0));
    let completed = Event::Raised {
        name: "completed".into(),
        payload: json!({ "exitCode": 7 }),
    };
    let (d, _) = run(
        started(json!({ "completion": "either" })),
        &mut world,
        vec![(T0 + 1_000, completed)],
    );
    assert_eq!(d.status, RuntimeStatus::Failed);
    assert!(d.outcome.unwrap().error.unwrap().contains("exitCode 7"));
}

#[test]
fn an_early_completed_event_is_kept_until_it_matters() {
    // The callback arrives before Berth has recorded the group as created.
    let d = started(json!({ "completion": "callback" }));
    let t = apply(&d, Event::Wake, T0).unwrap();
    let claimed = t.next;
    assert!(matches!(t.actions[0], Action::Create { .. }));
    let early = apply(
        &claimed,
        Event::Raised {
            name: "completed".into(),
            payload: json!({}),
        },
        T0 + 5,
    )
    .unwrap()
    .next;
    assert!(
        early.instances[0].completed.is_some(),
        "kept on the instance, not dropped"
    );
    let created = apply(
        &early,
        Event::Created {
            instance: "job-1-work-1".into(),
        },
        T0 + 10,
    )
    .unwrap();
    assert_eq!(
        created.next.outcome.as_ref().unwrap().status,
        RuntimeStatus::Succeeded
    );
    assert!(
        created
            .actions
            .iter()
            .any(|a| matches!(a, Action::Stop { .. })),
        "the running group is stopped: {:?}",
        created.actions
    );
}

#[test]
fn callback_only_jobs_that_exit_without_calling_back_fail_after_a_grace() {
    let mut world = World::new(exits_after(2, 0));
    let (d, _) = run(
        started(json!({ "completion": "callback" })),
        &mut world,
        vec![],
    );
    assert_eq!(d.status, RuntimeStatus::Failed);
    assert!(
        d.outcome
            .unwrap()
            .error
            .unwrap()
            .contains("without the completed callback")
    );
}

#[test]
fn terminate_stops_and_cleans_up() {
    let mut world = World::new(exits_after(u32::MAX, 0));
    let terminate = Event::Terminate {
        reason: "user".into(),
    };
    let (d, _) = run(
        started(json!({})),
        &mut world,
        vec![(T0 + 3_000, terminate)],
    );
    assert_eq!(d.status, RuntimeStatus::Terminated);
    assert!(d.instances.iter().all(|i| i.deleted));
    assert!(world.created.is_empty());
}

#[test]
fn a_service_heals_a_vanished_group_and_tears_down_on_request() {
    let service = json!({
        "mode": "service",
        "groups": [{ "name": "db", "properties": { "containers": [
            { "name": "postgres", "properties": { "image": "postgres:15", "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }
        ] } }]
    });
    let mut world = World::new(|_, _| observation("Running", &[("postgres", "Running", None)]));
    let d = started(service);
    // Run until waiting, then delete the group behind Berth's back.
    let (mut d, _) = run(
        d,
        &mut world,
        vec![(
            T0 + 30_000,
            Event::Raised {
                name: "noop".into(),
                payload: json!(null),
            },
        )],
    );
    assert_eq!(d.phase, Phase::Waiting);
    world.created.clear();
    let teardown_at = world.now + 600_000;
    let (d2, _) = run(
        std::mem::replace(&mut d, started(json!({}))),
        &mut world,
        vec![(
            teardown_at,
            Event::Raised {
                name: "teardown".into(),
                payload: json!(null),
            },
        )],
    );
    assert_eq!(d2.status, RuntimeStatus::Succeeded);
    assert_eq!(world.creates, 2, "healed once");
    let names: Vec<&str> = d2.instances.iter().map(|i| i.aci_name.as_str()).collect();
    assert_eq!(names, ["job-1-db-1", "job-1-db-2"]);
    assert!(d2.history.iter().any(|h| h.kind == "Healing"));
    assert!(world.created.is_empty());
}

#[test]
fn terminal_deployments_absorb_every_event() {
    let mut world = World::new(exits_after(1, 0));
    let (d, _) = run(started(json!({})), &mut world, vec![]);
    for event in [
        Event::Wake,
        Event::Raised {
            name: "completed".into(),
            payload: json!({}),
        },
        Event::Terminate {
            reason: "late".into(),
        },
        Event::Deleted {
            instance: "job-1-work-1".into(),
        },
        Event::Created {
            instance: "nonexistent".into(),
        },
    ] {
        let t = apply(&d, event, world.now + 1).unwrap();
        assert_eq!(t.next, d);
        assert!(t.actions.is_empty());
    }
}

#[test]
fn an_event_for_an_unknown_group_is_an_invalid_transition() {
    let d = started(json!({}));
    let err = apply(
        &d,
        Event::Created {
            instance: "other-group-1".into(),
        },
        T0,
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::UnknownInstance { .. }));
}

#[test]
fn duplicated_results_change_nothing() {
    let created = created(json!({})).next;
    let again = apply(
        &created,
        Event::Created {
            instance: "job-1-work-1".into(),
        },
        T0 + 2,
    )
    .unwrap();
    assert!(
        !again
            .actions
            .iter()
            .any(|a| matches!(a, Action::Create { .. }))
    );
    assert_eq!(again.next.instances, created.instances);
}

#[test]
fn a_second_worker_does_not_create_while_a_claim_holds() {
    let d = started(json!({}));
    let first = apply(&d, Event::Wake, T0).unwrap();
    assert!(matches!(
        first.actions[0],
        Action::Create {
            check_first: false,
            ..
        }
    ));
    let second = apply(&first.next, Event::Wake, T0 + 1_000).unwrap();
    assert!(
        !second
            .actions
            .iter()
            .any(|a| matches!(a, Action::Create { .. }))
    );
    // After the claim runs out, a take-over looks before it creates.
    let later = apply(&second.next, Event::Wake, T0 + policy::CREATE_CLAIM_MS + 1).unwrap();
    assert!(later.actions.iter().any(|a| matches!(
        a,
        Action::Create {
            check_first: true,
            ..
        }
    )));
}

/// Regression: an event raised before the first step (a heartbeat, say) planned the create and
/// kept its claim, although an API call performs nothing; the step it handed over to then waited
/// for the claim to run out (a minute) before creating the group.
#[test]
fn a_raised_event_takes_no_create_claim_from_the_step_it_hands_over_to() {
    let d = started(json!({ "completion": "callback" }));
    let heartbeat = Event::Raised {
        name: "heartbeat".into(),
        payload: json!({}),
    };
    let raised = apply(&d, heartbeat, T0).unwrap();
    assert!(
        raised
            .actions
            .iter()
            .all(|a| matches!(a, Action::Schedule { .. })),
        "{:?}",
        raised.actions
    );
    assert!(
        raised
            .next
            .instances
            .iter()
            .all(|i| i.claim_until.is_none() && i.create_tries == 0)
    );
    assert_eq!(raised.next.phase, Phase::Pending);
    let step = apply(&raised.next, Event::Wake, T0 + 1).unwrap();
    assert!(
        matches!(
            step.actions.first(),
            Some(Action::Create {
                check_first: false,
                ..
            })
        ),
        "{:?}",
        step.actions
    );
}

#[test]
fn a_look_put_off_by_the_read_budget_waits_for_its_reservation_and_counts_no_failure() {
    let instance = "job-1-work-1".to_owned();
    let created = created(json!({}));
    assert!(created.actions.contains(&Action::Observe {
        instance: instance.clone()
    }));
    let until = T0 + 40_000;
    let deferred = apply(
        &created.next,
        Event::LookDeferred {
            instance: instance.clone(),
            until,
        },
        T0 + 2,
    )
    .unwrap();
    // Nothing to do now: the deployment sleeps until the reserved read, with a message for it.
    assert_eq!(
        deferred.actions,
        vec![Action::Schedule {
            at: until,
            seq: deferred.next.seq
        }]
    );
    let inst = &deferred.next.instances[0];
    assert_eq!((inst.failures, inst.blocked_until), (0, None));
    assert_eq!(deferred.next.history.len(), created.next.history.len());
    // Woken early (a duplicate message), it still waits; at its time it looks.
    let early = apply(&deferred.next, Event::Wake, until - 1_000).unwrap();
    assert!(
        !early
            .actions
            .iter()
            .any(|a| matches!(a, Action::Observe { .. }))
    );
    let due = apply(&deferred.next, Event::Wake, until).unwrap();
    assert!(due.actions.contains(&Action::Observe { instance }));
}

#[test]
fn a_growing_log_brings_the_next_look_forward_and_never_back() {
    let instance = "job-1-work-1".to_owned();
    let created = created(json!({ "completion": "callback" }));
    let now = T0 + 10_000;
    let seen = apply(
        &created.next,
        Event::Observed {
            instance: instance.clone(),
            observation: observation("Running", &[("main", "Running", None)]),
            at: now,
        },
        now,
    )
    .unwrap();
    let backoff = seen.next.instances[0].next_look.unwrap();
    assert!(backoff > now + 3_000, "a callback job is looked at rarely");
    let growing = |state: &Deployment, within| {
        apply(
            state,
            Event::LogsGrowing {
                instance: instance.clone(),
                within,
            },
            now,
        )
        .unwrap()
        .next
    };
    assert_eq!(
        growing(&seen.next, 3_000).instances[0].next_look,
        Some(now + 3_000)
    );
    // Never sooner than the least gap between reads, and never later than the look was due.
    assert_eq!(
        growing(&seen.next, 10).instances[0].next_look,
        Some(now + policy::LOG_READ_MIN_MS)
    );
    assert_eq!(
        growing(&seen.next, 10_000_000).instances[0].next_look,
        Some(backoff)
    );
}

#[test]
fn a_truncated_log_is_recorded_once_per_gap() {
    let instance = "job-1-work-1".to_owned();
    let created = created(json!({}));
    let cut = |d: &Deployment, detail: &str| {
        apply(
            d,
            Event::LogsTruncated {
                instance: instance.clone(),
                container: "main".into(),
                detail: detail.into(),
            },
            T0 + 5,
        )
        .unwrap()
        .next
    };
    let once = cut(&created.next, "lines written between a and b are missing");
    let again = cut(&once, "lines written between a and b are missing");
    let other = cut(&again, "lines written between c and d are missing");
    let kinds = |d: &Deployment| {
        d.history
            .iter()
            .filter(|h| h.kind == "LogsTruncated")
            .map(|h| h.detail.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&again),
        ["job-1-work-1/main: lines written between a and b are missing"]
    );
    assert_eq!(kinds(&other).len(), 2);
    assert_eq!(
        other.instances[0].logs_truncated,
        [
            "main: lines written between a and b are missing",
            "main: lines written between c and d are missing"
        ]
    );
    // Found again by the capture after the exit, before its step was saved: nothing to redo.
    assert!(
        Event::LogsTruncated {
            instance,
            container: "main".into(),
            detail: String::new()
        }
        .may_go_unsaved()
    );
}

#[test]
fn a_callback_only_job_is_first_looked_at_after_the_look_delay_and_others_at_once() {
    for (completion, first) in [
        ("callback", policy::next_look_delay(false, false, 0)),
        ("exit", 0),
        ("either", 0),
    ] {
        let created = created(json!({ "completion": completion }));
        assert_eq!(
            created.next.instances[0].next_look,
            Some(T0 + 1 + first),
            "{completion}"
        );
        let looks = created
            .actions
            .iter()
            .any(|a| matches!(a, Action::Observe { .. }));
        assert_eq!(looks, first == 0, "{completion}");
    }
}

#[test]
fn external_events_hand_their_work_to_a_step() {
    let created = created(json!({})).next;
    let t = apply(
        &created,
        Event::Terminate {
            reason: "now".into(),
        },
        T0 + 2,
    )
    .unwrap();
    assert_eq!(t.actions.len(), 1);
    assert!(
        matches!(t.actions[0], Action::Schedule { at, seq } if at == T0 + 2 && seq == t.next.seq)
    );
    assert_eq!(t.next.wake.unwrap().seq, t.next.seq);
}

#[test]
fn resuming_from_every_checkpoint_reaches_the_same_end() {
    let scenarios: Vec<(serde_json::Value, Box<dyn Fn() -> World>)> = vec![
        (json!({}), Box::new(|| World::new(exits_after(3, 0)))),
        (
            json!({ "retry": { "maxAttempts": 2 } }),
            Box::new(|| World::new(exits_after(2, 4))),
        ),
        (
            json!({ "timeout": "PT2M" }),
            Box::new(|| World::new(exits_after(u32::MAX, 0))),
        ),
    ];
    for (extra, world) in scenarios {
        let mut clean_world = world();
        let (clean, checkpoints) = run(started(extra.clone()), &mut clean_world, vec![]);
        for (i, checkpoint) in checkpoints.iter().enumerate() {
            // A crash after this checkpoint: the world holds what had been created by then; the
            // step message (or the sweep) wakes the deployment again.
            let mut resumed_world = world();
            resumed_world.now = checkpoint.updated;
            for inst in &checkpoint.instances {
                if (inst.created.is_some() || inst.claim_until.is_some()) && !inst.deleted {
                    resumed_world.created.insert(inst.aci_name.clone());
                }
            }
            let resumed = checkpoint.clone();
            if resumed.phase != Phase::Done {
                resumed_world.now = resumed_world.now.max(checkpoint.claim_horizon());
            }
            let (end, _) = run(resumed, &mut resumed_world, vec![]);
            assert_eq!(
                end.status, clean.status,
                "scenario {extra} resumed from checkpoint {i}"
            );
            assert_eq!(end.phase, Phase::Done);
            assert!(
                resumed_world.created.is_empty(),
                "no group left behind (scenario {extra}, checkpoint {i})"
            );
        }
    }
}

impl Deployment {
    /// The latest create claim's expiry (a resumed run behaves as if the claim holder died).
    fn claim_horizon(&self) -> Millis {
        self.instances
            .iter()
            .filter_map(|i| i.claim_until)
            .max()
            .unwrap_or(0)
    }
}

/// Property test: random interleavings of results, duplicates, reordering and crashes (which lose
/// every result not yet saved) end in the same terminal state as the clean run, with at most one
/// create per group name and nothing left behind.
mod interleavings {
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum Chaos {
        Next,
        Duplicate,
        Reorder(usize),
        Crash,
        Wait,
    }

    fn chaos() -> impl Strategy<Value = Chaos> {
        prop_oneof![
            5 => Just(Chaos::Next),
            2 => Just(Chaos::Duplicate),
            2 => (0usize..8).prop_map(Chaos::Reorder),
            1 => Just(Chaos::Crash),
            1 => Just(Chaos::Wait),
        ]
    }

    fn scenario(kind: u8) -> (serde_json::Value, World, Vec<(Millis, Event)>) {
        let completed = Event::Raised {
            name: "completed".into(),
            payload: json!({ "exitCode": 0 }),
        };
        match kind % 6 {
            0 => (json!({}), World::new(exits_after(3, 0)), vec![]),
            1 => (
                json!({ "retry": { "maxAttempts": 3, "backoff": "PT1S" } }),
                World::new(exits_after(2, 5)),
                vec![],
            ),
            2 => (
                json!({ "timeout": "PT1M" }),
                World::new(exits_after(u32::MAX, 0)),
                vec![],
            ),
            3 => (
                json!({ "completion": "callback" }),
                World::new(exits_after(u32::MAX, 0)),
                vec![(T0 + 2_000, completed)],
            ),
            4 => (
                json!({ "retry": { "maxAttempts": 2 } }),
                World::new(|name: &str, n| {
                    exits_after(2, if name.ends_with("-1") { 1 } else { 0 })(name, n)
                }),
                vec![],
            ),
            // A pipeline whose fan-out's index 2 fails its first attempt.
            _ => {
                let mut spec = pipeline();
                spec["groups"][1]["retry"] = json!({ "maxAttempts": 2, "backoff": "PT1S" });
                (
                    spec,
                    World::new(|name: &str, n| {
                        exits_after(2, if name.contains("-shard-2-1-") { 1 } else { 0 })(name, n)
                    }),
                    vec![],
                )
            }
        }
    }

    /// Runs with chaos on the step's results as the driver's step loop would meet it; returns
    /// the end state and the world.
    fn chaotic(kind: u8, moves: &[Chaos]) -> (Deployment, World) {
        let (extra, mut world, mut external) = scenario(kind);
        let mut saved = started(extra);
        let mut step: Option<Step> = None;
        // The chaos runs out, then the world settles (every result arrives, in order).
        let mut moves = moves.iter().copied().chain(std::iter::repeat(Chaos::Next));
        for _ in 0..4_000 {
            let Some(running) = step.as_mut() else {
                if saved.phase == Phase::Done {
                    break;
                }
                // Nothing in flight: the next step message or external event comes.
                let next_external = external.first().map(|(at, _)| *at);
                let next_wake = saved.wake.map(|w| w.at);
                let Some(at) = [next_external, next_wake].into_iter().flatten().min() else {
                    break;
                };
                world.now = world.now.max(at);
                if next_external.is_some_and(|e| e <= world.now) {
                    // An API call: applied and saved on its own, never lost with a worker.
                    let t = apply(&saved, external.remove(0).1, world.now).expect("external event");
                    saved = t.next;
                }
                step = Some(Step::new(saved.clone(), policy::MAX_ROUNDS_PER_STEP));
                continue;
            };
            let Some(round) = running.round(world.now) else {
                step = None;
                continue;
            };
            assert!(round.dropped.is_empty(), "{:?}", round.dropped);
            if round.save == Save::Now {
                saved = running.current().clone();
                running.committed();
            }
            let mut results: Vec<Event> = round
                .actions
                .iter()
                .flat_map(|a| world.perform(a))
                .collect();
            match moves.next().unwrap_or(Chaos::Next) {
                Chaos::Next => {}
                Chaos::Duplicate => {
                    if let Some(first) = results.first().cloned() {
                        results.push(first);
                    }
                }
                Chaos::Reorder(i) => {
                    let len = results.len().max(1);
                    results.rotate_left(i % len);
                }
                Chaos::Crash => {
                    // Every unsaved result and the state ahead of the checkpoint are lost; the
                    // step message comes back after its lease, and a create claim held by the
                    // dead worker runs out.
                    step = None;
                    world.now += 1_000 + saved.claim_horizon().saturating_sub(world.now).max(0);
                    continue;
                }
                Chaos::Wait => world.now += 700,
            }
            running.push(results);
        }
        (saved, world)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn chaos_ends_where_the_clean_run_ends(kind in 0u8..6, moves in proptest::collection::vec(chaos(), 1..60)) {
            let (extra, mut clean_world, external) = scenario(kind);
            let (clean, _) = run(started(extra), &mut clean_world, external);
            let (end, world) = chaotic(kind, &moves);
            prop_assert_eq!(end.phase, Phase::Done, "did not finish: {:?}", end.history);
            prop_assert_eq!(end.status, clean.status);
            prop_assert_eq!(end.attempt, clean.attempt);
            prop_assert!(world.created.is_empty(), "left behind: {:?}", world.created);
            prop_assert!(world.creates <= clean_world.creates, "{} creates, clean run {}", world.creates, clean_world.creates);
            prop_assert!(end.instances.iter().all(|i| i.deleted || i.kept));
            prop_assert!(world.puts.values().all(|n| *n == 1), "a group name was PUT twice: {:?}", world.puts);
        }
    }
}

#[test]
fn a_round_saves_before_a_create_and_saved_logs_ride_with_the_delete() {
    let mut world = World::new(exits_after(1, 0));
    let mut step = Step::new(started(json!({})), policy::MAX_ROUNDS_PER_STEP);
    let rounds = drive(&mut step, &mut world, &mut Vec::new());
    let creating = rounds
        .iter()
        .find(|(_, actions)| actions.iter().any(|a| matches!(a, Action::Create { .. })))
        .expect("a round creates");
    assert_eq!(creating.0, Save::Now, "{rounds:?}");
    let deleting = rounds
        .iter()
        .find(|(_, actions)| actions.iter().any(|a| matches!(a, Action::Delete { .. })))
        .expect("a round deletes");
    assert_eq!(
        deleting.0,
        Save::Later,
        "logs saved go unsaved until the delete's result"
    );
    let end = step.saved();
    assert_eq!(end.phase, Phase::Done, "{:?}", end.history);
    assert!(end.instances[0].logs_saved && end.instances[0].deleted);
    assert_eq!(world.creates, 1);
}

#[test]
fn a_conflict_applies_the_unsaved_results_again_on_the_reloaded_checkpoint() {
    let mut world = World::new(exits_after(1, 0));
    let mut step = Step::new(started(json!({})), policy::MAX_ROUNDS_PER_STEP);
    let mut deleted_round = false;
    let mut conflicted_at = None;
    while let Some(round) = step.round(world.now) {
        if round.save == Save::Now {
            if deleted_round {
                // Another worker saved the same checkpoint first (a duplicated step message):
                // the save conflicts, and the reloaded checkpoint lacks this step's results.
                let mut reloaded = step.saved().clone();
                reloaded.seq += 1;
                reloaded.updated = world.now;
                conflicted_at = Some(reloaded.seq);
                step.conflict(reloaded);
                deleted_round = false;
                continue;
            }
            step.committed();
        }
        deleted_round = round.save == Save::Later;
        let results: Vec<Event> = round
            .actions
            .iter()
            .flat_map(|a| world.perform(a))
            .collect();
        step.push(results);
    }
    let end = step.saved();
    assert_eq!(end.status, RuntimeStatus::Succeeded, "{:?}", end.history);
    let conflicted_at = conflicted_at.expect("the save after the unsaved round conflicted");
    assert!(
        end.seq > conflicted_at,
        "saved over the reloaded checkpoint"
    );
    let inst = &end.instances[0];
    assert!(
        inst.logs_saved && inst.deleted,
        "the unsaved logs result was applied again"
    );
}

#[test]
fn a_step_hands_over_after_its_most_rounds_and_a_conflicting_hand_over_is_made_again() {
    let mut world = World::new(exits_after(u32::MAX, 0));
    let mut step = Step::new(started(json!({})), 1);
    let first = step.round(world.now).unwrap();
    assert_eq!(first.save, Save::Now);
    step.committed();
    step.push(first.actions.iter().flat_map(|a| world.perform(a)));
    world.now += 5;
    let hand_over = step.round(world.now).unwrap();
    assert_eq!(hand_over.save, Save::Now);
    assert!(hand_over.actions.is_empty());
    let saved_seq = step.saved().seq;
    let wake = step.wake_message().expect("a fresh message carries on");
    assert_eq!(wake.at, world.now);
    assert!(
        wake.seq > saved_seq,
        "a new seq: {} after {saved_seq}",
        wake.seq
    );
    step.committed();
    assert!(
        step.round(world.now).is_none(),
        "the step ends after handing over"
    );

    let mut step = Step::new(started(json!({})), 0);
    let hand_over = step.round(world.now).unwrap();
    assert!(hand_over.actions.is_empty());
    let mut reloaded = started(json!({}));
    reloaded.seq += 3;
    step.conflict(reloaded);
    let again = step.round(world.now).unwrap();
    assert_eq!((again.save, again.actions.len()), (Save::Now, 0));
    let wake = step
        .wake_message()
        .expect("handed over on the reloaded checkpoint");
    assert!(wake.seq > step.saved().seq, "{wake:?}");
    step.committed();
    assert!(step.round(world.now).is_none());
}

#[test]
fn a_hand_over_saves_the_creates_its_last_round_made() {
    // Rounds run out right after the round that claimed and created: the `Created` results are
    // saved with the hand-over, so the next step looks at the groups instead of waiting for their
    // claims to run out.
    let mut world = World::new(exits_after(u32::MAX, 0));
    let mut step = Step::new(
        started(json!({ "groups": [
        group("a", json!({ "count": 3 }))
    ] })),
        1,
    );
    let first = step.round(world.now).unwrap();
    let creates = first
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Create { .. }))
        .count();
    assert_eq!(creates, 3, "{:?}", first.actions);
    step.committed();
    step.push(first.actions.iter().flat_map(|a| world.perform(a)));
    world.now += 5;
    let hand_over = step.round(world.now).unwrap();
    assert_eq!((hand_over.save, hand_over.actions.len()), (Save::Now, 0));
    step.committed();
    let saved = step.saved();
    assert!(
        saved
            .instances
            .iter()
            .all(|i| i.created.is_some() && i.claim_until.is_none()),
        "{:?}",
        saved.instances
    );
    assert_eq!(saved.wake.map(|w| w.at), Some(world.now));
    // The next step looks at once.
    let mut next = Step::new(saved.clone(), 10);
    let looks = next.round(world.now).unwrap();
    assert!(
        looks
            .actions
            .iter()
            .all(|a| matches!(a, Action::Observe { .. }))
            && looks.actions.len() == 3,
        "{:?}",
        looks.actions
    );
}

/// A group named `name` of one container, with workflow fields `extra`.
fn group(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut group = json!({ "name": name, "properties": { "containers": [
        { "name": "main", "properties": { "image": "busybox", "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }
    ] } });
    if let (Some(group), Some(extra)) = (group.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            group.insert(k.clone(), v.clone());
        }
    }
    group
}

/// prepare → shard (4 instances, 2 at a time) → evaluate.
fn pipeline() -> serde_json::Value {
    json!({ "groups": [
        group("prepare", json!({})),
        group("shard", json!({ "dependsOn": ["prepare"], "count": 4, "parallelism": 2 })),
        group("evaluate", json!({ "dependsOn": ["shard"] })),
    ] })
}

/// When each instance (by name prefix) was created and deleted, from the history.
fn created_at(d: &Deployment, prefix: &str) -> Vec<Millis> {
    d.history
        .iter()
        .filter(|h| h.kind == "GroupCreated" && h.detail.starts_with(prefix))
        .map(|h| h.at)
        .collect()
}

#[test]
fn a_pipeline_runs_its_stages_in_order_and_its_fan_out_within_its_parallelism() {
    let mut world = World::new(exits_after(2, 0));
    let (d, _) = run(started(pipeline()), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded, "{:?}", d.history);
    assert_eq!(world.creates, 6, "one create per instance");
    assert!(world.puts.values().all(|n| *n == 1));
    assert!(world.created.is_empty(), "nothing left behind");
    let prepare = created_at(&d, "job-1-prepare");
    let shards = created_at(&d, "job-1-shard");
    let evaluate = created_at(&d, "job-1-evaluate");
    assert_eq!((prepare.len(), shards.len(), evaluate.len()), (1, 4, 1));
    let prepared = d
        .history
        .iter()
        .find(|h| h.kind == "InstanceSucceeded" && h.detail.starts_with("job-1-prepare"))
        .unwrap()
        .at;
    assert!(shards.iter().all(|at| *at >= prepared));
    let last_shard = d
        .history
        .iter()
        .filter(|h| h.kind == "InstanceSucceeded" && h.detail.starts_with("job-1-shard"))
        .map(|h| h.at)
        .max()
        .unwrap();
    assert!(evaluate[0] >= last_shard, "evaluate waits for every shard");
    // At most two shards under way at once: the third starts after one has ended.
    let mut at_once = 0;
    let mut most = 0;
    for h in &d.history {
        if h.detail.starts_with("job-1-shard") {
            match h.kind.as_str() {
                "GroupCreated" => at_once += 1,
                "InstanceSucceeded" | "InstanceFailed" | "AttemptFailed" => at_once -= 1,
                _ => {}
            }
            most = most.max(at_once);
        }
    }
    assert_eq!(most, 2);
    let indexes: Vec<u32> = d
        .instances
        .iter()
        .filter(|i| i.slot == 1)
        .map(|i| i.index)
        .collect();
    assert_eq!(indexes, vec![0, 1, 2, 3]);
    let stages: Vec<String> = d
        .history
        .iter()
        .filter(|h| h.kind.starts_with("Stage"))
        .map(|h| format!("{} {}", h.kind, h.detail))
        .collect();
    assert_eq!(
        stages,
        [
            "StageStarted prepare",
            "StageEnded prepare: Succeeded",
            "StageStarted shard",
            "StageEnded shard: Succeeded",
            "StageStarted evaluate",
            "StageEnded evaluate: Succeeded",
        ]
    );
}

#[test]
fn a_failed_stage_skips_what_needs_it_and_runs_what_runs_on_failure() {
    let spec = json!({ "groups": [
        group("prepare", json!({})),
        group("train", json!({ "dependsOn": ["prepare"] })),
        group("report", json!({ "dependsOn": ["train"], "runWhen": "always" })),
        group("alert", json!({ "dependsOn": ["prepare"], "runWhen": "failed" })),
    ] });
    let mut world = World::new(|name: &str, n| {
        exits_after(1, if name.contains("-prepare-") { 3 } else { 0 })(name, n)
    });
    let (d, _) = run(started(spec), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Failed);
    assert!(
        d.outcome
            .as_ref()
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("group prepare"),
        "{:?}",
        d.outcome
    );
    let states = flow::states(&d);
    use flow::GroupState::*;
    assert_eq!(states, vec![Failed, Skipped, Succeeded, Succeeded]);
    assert!(created_at(&d, "job-1-train").is_empty());
    assert_eq!(created_at(&d, "job-1-report").len(), 1);
    assert_eq!(created_at(&d, "job-1-alert").len(), 1);
}

#[test]
fn a_group_retries_its_failed_instances_alone_and_tolerates_what_it_may() {
    // Index 1 fails on its first attempt, index 2 on every attempt; one failure is tolerated.
    let spec = json!({ "groups": [
        group("shard", json!({ "count": 3, "retry": { "maxAttempts": 2, "backoff": "PT1S" }, "tolerateFailures": 1 })),
    ] });
    let mut world = World::new(|name: &str, n| {
        let code = if name.contains("-shard-2-") || name.contains("-shard-1-1-") {
            9
        } else {
            0
        };
        exits_after(1, code)(name, n)
    });
    let (d, _) = run(started(spec), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded, "{:?}", d.history);
    let attempts = |index: u32| d.instances.iter().filter(|i| i.index == index).count();
    assert_eq!((attempts(0), attempts(1), attempts(2)), (1, 2, 2));
    assert_eq!(
        flow::tally(&d, 0),
        flow::Tally {
            succeeded: 2,
            failed: 1,
            ..Default::default()
        }
    );
}

#[test]
fn a_group_that_fails_past_its_tolerance_stops_its_other_instances() {
    let spec = json!({ "groups": [ group("shard", json!({ "count": 3 })) ] });
    let mut world = World::new(|name: &str, n| {
        if name.contains("-shard-0-") {
            exits_after(1, 4)(name, n)
        } else {
            exits_after(u32::MAX, 0)(name, n)
        }
    });
    let (d, _) = run(started(spec), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Failed);
    assert!(
        world.created.is_empty(),
        "the running instances were stopped and deleted"
    );
    assert!(d.instances.iter().all(|i| i.logs_saved && i.deleted));
}

#[test]
fn an_instances_callback_decides_that_instance_alone_and_keeps_its_output() {
    let spec =
        json!({ "completion": "callback", "groups": [ group("shard", json!({ "count": 2 })) ] });
    let d = started(spec);
    let claimed = apply(&d, Event::Wake, T0).unwrap().next;
    let names: Vec<String> = claimed
        .instances
        .iter()
        .map(|i| i.aci_name.clone())
        .collect();
    let mut d = claimed;
    for name in &names {
        d = apply(
            &d,
            Event::Created {
                instance: name.clone(),
            },
            T0 + 1,
        )
        .unwrap()
        .next;
    }
    let done = Event::InstanceCompleted {
        instance: names[1].clone(),
        exit_code: Some(0),
        output: Some(json!({ "rows": 12 })),
    };
    let d = apply(&d, done, T0 + 2).unwrap().next;
    assert!(
        d.instances[0].verdict.is_none(),
        "the other instance runs on"
    );
    let second = &d.instances[1];
    assert!(second.verdict.as_ref().unwrap().succeeded);
    assert_eq!(
        second.completed.as_ref().unwrap().output,
        Some(json!({ "rows": 12 }))
    );
    assert_eq!(d.outcome, None);
}

#[test]
fn a_checkpoint_from_before_per_instance_verdicts_carries_on() {
    // Attempt 1 failed and attempt 2 waits for its back-off, as the old engine saved it.
    let mut world = World::new(exits_after(1, 0));
    let mut d = started(json!({ "retry": { "maxAttempts": 2, "backoff": "PT10S" } }));
    let mut old = Instance::new(0, 0, 1, "job-1-work-1".into());
    old.created = Some(T0);
    old.retiring = true;
    old.deleted = true;
    d.instances.push(old);
    d.attempt = 2;
    d.retry_at = Some(T0 + 10_000);
    d.wake = Some(Wake {
        at: T0 + 10_000,
        seq: d.seq,
    });
    world.now = T0 + 10_000;
    let (end, _) = run(d, &mut world, vec![]);
    assert_eq!(end.status, RuntimeStatus::Succeeded, "{:?}", end.history);
    assert_eq!(end.instances.len(), 2);
    assert_eq!(end.instances[1].generation, 2);
    assert_eq!(end.retry_at, None);
}

mod hold_and_beat;
mod notify;
// Spot evictions and region fallback.

fn spot_spec(extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({ "priority": "Spot", "retry": { "maxAttempts": 1 } });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    spec
}

/// The first two attempts are evicted at their first look; later ones exit 0 at their second.
fn evicted_twice() -> World {
    let mut world = World::new(|_, n| {
        if n >= 2 {
            observation("Succeeded", &[("main", "Terminated", Some(0))])
        } else {
            observation("Running", &[("main", "Running", None)])
        }
    });
    world.evict = Box::new(|name, n| {
        let early = name.ends_with("-1") || name.ends_with("-2");
        (early && n == 1).then(|| "SpotEvicted: the capacity was needed back".to_owned())
    });
    world
}

#[test]
fn an_evicted_spot_attempt_is_retried_without_using_up_the_retry() {
    let mut world = evicted_twice();
    let (d, checkpoints) = run(started(spot_spec(json!({}))), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded, "{:?}", d.history);
    assert_eq!(d.attempt, 3, "two evictions, then the attempt that ran");
    assert_eq!(world.creates, 3);
    assert!(
        world.puts.values().all(|n| *n == 1),
        "one create per attempt"
    );
    let evicted: Vec<bool> = d
        .instances
        .iter()
        .map(|i| i.verdict.as_ref().unwrap().evicted)
        .collect();
    assert_eq!(evicted, [true, true, false]);
    assert!(
        d.instances
            .iter()
            .all(|i| i.priority == Some(crate::spec::Priority::Spot))
    );
    let error = d.instances[0]
        .verdict
        .as_ref()
        .unwrap()
        .error
        .clone()
        .unwrap();
    assert!(error.starts_with("Evicted: SpotEvicted"), "{error}");
    let evictions = d.history.iter().filter(|h| h.kind == "Evicted").count();
    assert_eq!(evictions, 2);
    // Every checkpoint saved on the way reads back as it was written.
    for saved in &checkpoints {
        let json = serde_json::to_string(saved).unwrap();
        let loaded: Deployment = serde_json::from_str(&json).unwrap();
        assert_eq!(&loaded, saved);
    }
}

#[test]
fn spot_and_regular_seconds_are_kept_apart() {
    let spot = created(spot_spec(json!({}))).next;
    let instance = "job-1-work-1".to_owned();
    let d = apply(&spot, Event::Deleted { instance }, T0 + 5_001)
        .unwrap()
        .next;
    assert_eq!((d.cost.spot_seconds, d.cost.regular_seconds), (5.0, 0.0));
    let regular = created(json!({})).next;
    let instance = "job-1-work-1".to_owned();
    let d = apply(&regular, Event::Deleted { instance }, T0 + 2_001)
        .unwrap()
        .next;
    assert_eq!((d.cost.spot_seconds, d.cost.regular_seconds), (0.0, 2.0));
    assert_eq!(d.cost.vcpu_seconds, 2.0);
}

#[test]
fn after_k_evictions_the_next_attempt_runs_regular() {
    let mut world = evicted_twice();
    let spec = spot_spec(json!({ "spot": { "fallbackToRegularAfter": 1 } }));
    let (d, _) = run(started(spec), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded, "{:?}", d.history);
    let priorities: Vec<_> = d.instances.iter().map(|i| i.priority).collect();
    use crate::spec::Priority::{Regular, Spot};
    assert_eq!(
        priorities,
        [Some(Spot), Some(Regular)],
        "the second attempt runs Regular, and a Regular group is not evicted"
    );
    assert!(d.history.iter().any(|h| h.kind == "PriorityFallback"));
}

#[test]
fn evictions_past_the_limit_fail_the_instance() {
    let mut world = World::new(|_, _| observation("Running", &[("main", "Running", None)]));
    world.evict = Box::new(|_, n| (n == 1).then(|| "SpotEvicted".to_owned()));
    let (d, _) = run(started(spot_spec(json!({}))), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Failed);
    assert_eq!(d.attempt, placement::MAX_EVICTIONS + 1);
    assert!(d.outcome.unwrap().error.unwrap().contains("Evicted"));
}

#[test]
fn an_eviction_does_not_undo_a_group_that_completed() {
    let mut world = World::new(|_, _| observation("Succeeded", &[("main", "Terminated", Some(0))]));
    world.evict = Box::new(|_, _| Some("SpotEvicted".to_owned()));
    let (d, _) = run(started(spot_spec(json!({}))), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded);
    assert_eq!(world.creates, 1);
}

#[test]
fn a_create_refused_for_capacity_moves_to_the_next_location() {
    let mut world = exits_world();
    world.refuse = Box::new(|_, n| {
        (n == 1).then(|| "ServiceUnavailable: not available in the location".to_owned())
    });
    let spec = json!({ "locations": ["westeurope", "northeurope"] });
    let (d, _) = run(started(spec), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded, "{:?}", d.history);
    assert_eq!(world.creates, 1);
    let inst = &d.instances[0];
    assert_eq!(inst.location.as_deref(), Some("northeurope"));
    assert_eq!(inst.generation, 1, "a fallback is not a new attempt");
    let fallback = d
        .history
        .iter()
        .find(|h| h.kind == "LocationFallback")
        .unwrap();
    assert_eq!(
        fallback.detail,
        "job-1-work-1: from westeurope to northeurope: ServiceUnavailable: not available in the location"
    );
}

fn exits_world() -> World {
    World::new(exits_after(2, 0))
}

#[test]
fn refused_in_every_location_fails_the_attempt_naming_each_then_retries_from_the_first() {
    let mut world = exits_world();
    world.refuse = Box::new(|name, _| name.ends_with("-1").then(|| "SkuNotAvailable".to_owned()));
    let spec = json!({
        "locations": ["westeurope", "northeurope"],
        "retry": { "maxAttempts": 2, "backoff": "PT1S" }
    });
    let (d, _) = run(started(spec), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded, "{:?}", d.history);
    let first = d.instances[0].verdict.as_ref().unwrap();
    assert_eq!(
        first.error.as_deref(),
        Some(
            "no capacity for container group job-1-work-1 in any of its locations \
             (westeurope: SkuNotAvailable; northeurope: SkuNotAvailable)"
        )
    );
    assert_eq!(d.instances[1].location.as_deref(), Some("westeurope"));
    assert_eq!(world.creates, 1);

    let mut world = exits_world();
    world.refuse = Box::new(|_, _| Some("SkuNotAvailable".to_owned()));
    let (d, _) = run(
        started(json!({ "locations": ["westeurope", "northeurope"] })),
        &mut world,
        vec![],
    );
    assert_eq!(d.status, RuntimeStatus::Failed);
    assert!(d.outcome.unwrap().error.unwrap().starts_with("no capacity"));
    assert_eq!(world.creates, 0);

    // One region and no list: the refusal fails the attempt at once, saying so.
    let mut world = exits_world();
    world.refuse = Box::new(|_, _| Some("ContainerGroupQuotaReached: the quota".to_owned()));
    let (d, _) = run(started(json!({})), &mut world, vec![]);
    assert_eq!(
        d.outcome.unwrap().error.as_deref(),
        Some(
            "creating container group job-1-work-1 was refused for capacity: \
             ContainerGroupQuotaReached: the quota"
        )
    );
}

#[test]
fn a_spec_without_placement_creates_as_before() {
    let mut world = exits_world();
    let (d, _) = run(started(json!({})), &mut world, vec![]);
    assert_eq!(d.status, RuntimeStatus::Succeeded);
    let inst = &d.instances[0];
    assert_eq!((inst.priority, inst.location.as_deref()), (None, None));
    let json = serde_json::to_value(inst).unwrap();
    for field in ["priority", "location", "refused", "evicted"] {
        assert!(
            json.get(field).is_none(),
            "{field} is not written when unset"
        );
    }
}

#[test]
fn a_planned_instance_is_looked_at_around_its_expected_exit_and_an_unplanned_one_by_back_off() {
    let instance = "job-1-work-1".to_owned();
    let plan = LookPlan::Expect(RunEstimate {
        mean_ms: 120_000.0,
        spread_ms: 3_000.0,
        runs: 4,
    });
    let running = observation("Running", &[("main", "Running", None)]);
    let look = |d: &Deployment, at: Millis| {
        apply(
            d,
            Event::Observed {
                instance: instance.clone(),
                observation: running.clone(),
                at,
            },
            at,
        )
        .unwrap()
        .next
    };
    let unplanned = created(json!({ "completion": "exit" })).next;
    let planned = apply(
        &unplanned,
        Event::LooksPlanned {
            instance: instance.clone(),
            plan,
        },
        T0 + 1,
    )
    .unwrap()
    .next;
    assert_eq!(planned.instances[0].look_plan, Some(plan));
    // The create's own look comes at once either way.
    assert_eq!(planned.instances[0].next_look, Some(T0 + 1));
    // After it, the planned one waits half way to its window; the other backs off from 0 s.
    let seen = look(&planned, T0 + 1);
    assert_eq!(seen.instances[0].next_look, Some(T0 + 1 + 58_500));
    assert_eq!(
        look(&unplanned, T0 + 1).instances[0].next_look,
        Some(T0 + 1)
    );
    // Put off by a spent read budget before its window, past the window's start: it comes back
    // when the window opens (and then goes before looks that are not likely), not after.
    let yielded = apply(
        &seen,
        Event::LookDeferred {
            instance: instance.clone(),
            until: T0 + 1 + 58_500 + 90_000,
        },
        T0 + 1 + 58_500,
    )
    .unwrap();
    assert_eq!(yielded.next.instances[0].next_look, Some(T0 + 1 + 117_000));
    // In the window, a look put off waits as long as it was told.
    let queued = apply(
        &yielded.next,
        Event::LookDeferred {
            instance: instance.clone(),
            until: T0 + 1 + 119_000,
        },
        T0 + 1 + 117_000,
    )
    .unwrap();
    assert_eq!(queued.next.instances[0].next_look, Some(T0 + 1 + 119_000));
    // In the window, a look every spread.
    let in_window = look(&seen, T0 + 1 + 117_000);
    assert_eq!(
        in_window.instances[0].next_look,
        Some(T0 + 1 + 120_000),
        "{:?}",
        in_window.instances[0]
    );
    // A plan for an unknown instance is an error like any other event's.
    assert!(
        apply(
            &planned,
            Event::LooksPlanned {
                instance: "nope".into(),
                plan
            },
            T0 + 2
        )
        .is_err()
    );
    // A checkpoint without a plan loads as before, and one with a plan keeps it.
    let json = serde_json::to_value(&planned).unwrap();
    assert_eq!(serde_json::from_value::<Deployment>(json).unwrap(), planned);
    let plain = serde_json::to_value(&unplanned).unwrap();
    assert!(!plain.to_string().contains("lookPlan"));
}

#[test]
fn a_fan_out_refills_each_freed_slot_at_once_without_waiting_on_claims() {
    // 150 instances, 50 at a time, each done at its first look. Each round's events are applied
    // first and decided on once: an intermediate decision used to claim creates that the final
    // one dropped, and those waited for their claims to run out (60 s) before being created.
    let mut world = World::new(exits_after(1, 0));
    let d =
        started(json!({ "groups": [group("shard", json!({ "count": 150, "parallelism": 50 }))] }));
    let (end, checkpoints) = run(d, &mut world, vec![]);
    assert_eq!(end.status, RuntimeStatus::Succeeded);
    assert_eq!(world.creates, 150);
    assert!(
        world.now - T0 < policy::CREATE_CLAIM_MS,
        "took {} ms",
        world.now - T0
    );
    // At most 50 running (claimed or created, not judged yet) at once.
    for cp in &checkpoints {
        let live = cp
            .instances
            .iter()
            .filter(|i| (i.created.is_some() || i.claim_until.is_some()) && i.verdict.is_none())
            .count();
        assert!(live <= 50, "{live} live");
    }
}
