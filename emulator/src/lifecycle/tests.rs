//! The contract's state tables, step by step, against the pure state machine.

use super::*;
use crate::model::ContainerState;

const BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(8),
};

fn t(second: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + second).unwrap()
}

fn group(policy: RestartPolicy, names: &[&str]) -> Runtime {
    let containers: Vec<(String, String)> = names
        .iter()
        .map(|name| (name.to_string(), "busybox".to_string()))
        .collect();
    Runtime::new(policy, &containers, &[], 1)
}

/// Drives a group through Begin, Pulled and Started for every container.
fn start_all(runtime: &mut Runtime) {
    let generation = runtime.generation;
    let actions = runtime.apply(Input::Begin { generation }, t(1), BACKOFF);
    assert_eq!(actions, vec![Action::Launch { generation }]);
    assert_eq!(runtime.provisioning, Provisioning::Creating);
    assert_eq!(runtime.state(), GroupState::Pending);
    runtime.apply(Input::Pulled { generation }, t(1), BACKOFF);
    let spawns = runtime.apply(Input::Provided { generation }, t(1), BACKOFF);
    assert_eq!(spawns.len(), runtime.containers.len());
    for container in 0..runtime.containers.len() {
        started(runtime, Slot::Main(container), 2);
    }
}

fn exit(runtime: &mut Runtime, container: usize, code: i32, second: i64) -> Vec<Action> {
    exited(runtime, Slot::Main(container), code, second)
}

/// The container in `slot` of the current generation started at `second`.
fn started(runtime: &mut Runtime, slot: Slot, second: i64) -> Vec<Action> {
    let generation = runtime.generation;
    let at = t(second);
    runtime.apply(
        Input::Started {
            generation,
            slot,
            at,
        },
        at,
        BACKOFF,
    )
}

/// The container in `slot` of the current generation exited with `code` at `second`.
fn exited(runtime: &mut Runtime, slot: Slot, code: i32, second: i64) -> Vec<Action> {
    let generation = runtime.generation;
    let at = t(second);
    runtime.apply(
        Input::Exited {
            generation,
            slot,
            code,
            at,
        },
        at,
        BACKOFF,
    )
}

fn current(runtime: &Runtime, container: usize) -> &ContainerState {
    runtime.containers[container].current.as_ref().unwrap()
}

#[test]
fn a_new_group_is_pending_and_asks_to_provision() {
    let runtime = group(RestartPolicy::Never, &["job"]);
    assert_eq!(runtime.provisioning, Provisioning::Pending);
    assert_eq!(runtime.state(), GroupState::Pending);
    assert_eq!(
        runtime.initial_actions(),
        vec![Action::Provision { generation: 1 }]
    );
}

#[test]
fn never_exit_zero_succeeds() {
    let mut runtime = group(RestartPolicy::Never, &["job"]);
    start_all(&mut runtime);
    assert_eq!(runtime.provisioning, Provisioning::Succeeded);
    assert_eq!(runtime.state(), GroupState::Running);
    assert_eq!(current(&runtime, 0).state.as_deref(), Some("Running"));
    let names: Vec<_> = runtime.containers[0]
        .events
        .iter()
        .map(|event| event.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["Pulling", "Pulled", "Created", "Started"]);

    assert!(exit(&mut runtime, 0, 0, 5).is_empty());
    assert_eq!(runtime.state(), GroupState::Succeeded);
    assert_eq!(runtime.provisioning, Provisioning::Succeeded);
    let state = current(&runtime, 0);
    assert_eq!(state.state.as_deref(), Some("Terminated"));
    assert_eq!(state.exit_code, Some(0));
    assert_eq!(state.detail_status.as_deref(), Some("Completed"));
    assert_eq!(state.start_time, Some(t(2)));
    assert_eq!(state.finish_time, Some(t(5)));
    assert_eq!(runtime.containers[0].restart_count, 0);
}

#[test]
fn never_nonzero_exit_fails_with_the_exit_code() {
    let mut runtime = group(RestartPolicy::Never, &["job"]);
    start_all(&mut runtime);
    assert!(exit(&mut runtime, 0, 3, 5).is_empty());
    assert_eq!(runtime.state(), GroupState::Failed);
    assert_eq!(runtime.provisioning, Provisioning::Succeeded);
    assert_eq!(current(&runtime, 0).exit_code, Some(3));
}

#[test]
fn never_waits_for_every_container() {
    let mut runtime = group(RestartPolicy::Never, &["a", "b"]);
    start_all(&mut runtime);
    exit(&mut runtime, 0, 0, 3);
    assert_eq!(runtime.state(), GroupState::Running);
    exit(&mut runtime, 1, 1, 4);
    assert_eq!(runtime.state(), GroupState::Failed);
}

#[test]
fn on_failure_restarts_failed_containers_with_growing_restart_count() {
    let mut runtime = group(RestartPolicy::OnFailure, &["job"]);
    start_all(&mut runtime);
    let actions = exit(&mut runtime, 0, 1, 5);
    assert_eq!(
        actions,
        vec![Action::RestartAfter {
            generation: 1,
            slot: Slot::Main(0),
            delay: Duration::from_secs(1)
        }]
    );
    assert_eq!(runtime.state(), GroupState::Running);
    let run = &runtime.containers[0];
    assert_eq!(run.phase, Phase::BackOff);
    assert_eq!(current(&runtime, 0).state.as_deref(), Some("Waiting"));
    assert!(
        current(&runtime, 0)
            .detail_status
            .as_deref()
            .unwrap()
            .starts_with("CrashLoopBackOff")
    );
    let previous = run.previous.as_ref().unwrap();
    assert_eq!(previous.state.as_deref(), Some("Terminated"));
    assert_eq!(previous.exit_code, Some(1));

    let due = runtime.apply(
        Input::RestartDue {
            generation: 1,
            slot: Slot::Main(0),
        },
        t(6),
        BACKOFF,
    );
    assert_eq!(
        due,
        vec![Action::Spawn {
            generation: 1,
            slot: Slot::Main(0)
        }]
    );
    started(&mut runtime, Slot::Main(0), 6);
    assert_eq!(runtime.containers[0].restart_count, 1);
    assert_eq!(current(&runtime, 0).state.as_deref(), Some("Running"));
    assert_eq!(
        runtime.containers[0].previous.as_ref().unwrap().exit_code,
        Some(1)
    );

    // The second failure backs off twice as long; an exit 0 then ends the job.
    let actions = exit(&mut runtime, 0, 2, 7);
    assert!(matches!(
        actions.as_slice(),
        [Action::RestartAfter { delay, .. }] if *delay == Duration::from_secs(2)
    ));
    started(&mut runtime, Slot::Main(0), 9);
    assert_eq!(runtime.containers[0].restart_count, 2);
    assert!(exit(&mut runtime, 0, 0, 10).is_empty());
    assert_eq!(runtime.state(), GroupState::Succeeded);
}

#[test]
fn on_failure_never_fails_the_group() {
    let mut runtime = group(RestartPolicy::OnFailure, &["a", "b"]);
    start_all(&mut runtime);
    exit(&mut runtime, 0, 0, 3);
    exit(&mut runtime, 1, 9, 3);
    assert_eq!(runtime.state(), GroupState::Running);
}

#[test]
fn always_restarts_even_after_exit_zero() {
    let mut runtime = group(RestartPolicy::Always, &["web"]);
    start_all(&mut runtime);
    let actions = exit(&mut runtime, 0, 0, 3);
    assert_eq!(actions.len(), 1);
    assert_eq!(runtime.state(), GroupState::Running);
    assert_eq!(
        runtime.containers[0]
            .previous
            .as_ref()
            .unwrap()
            .detail_status
            .as_deref(),
        Some("Completed")
    );
}

#[test]
fn backoff_doubles_up_to_the_cap_and_resets_after_a_long_run() {
    assert_eq!(backoff_delay(BACKOFF, 0), Duration::from_secs(1));
    assert_eq!(backoff_delay(BACKOFF, 2), Duration::from_secs(4));
    assert_eq!(backoff_delay(BACKOFF, 3), Duration::from_secs(8));
    assert_eq!(backoff_delay(BACKOFF, 40), Duration::from_secs(8));

    let mut runtime = group(RestartPolicy::Always, &["web"]);
    start_all(&mut runtime);
    runtime.containers[0].backoff_step = 3;
    let actions = exit(&mut runtime, 0, 1, 2 + 3600);
    assert!(matches!(
        actions.as_slice(),
        [Action::RestartAfter { delay, .. }] if *delay == Duration::from_secs(1)
    ));
}

#[test]
fn late_events_of_an_old_generation_are_absorbed() {
    let mut runtime = group(RestartPolicy::Never, &["job"]);
    start_all(&mut runtime);
    assert_eq!(
        runtime.apply(Input::Stop, t(4), BACKOFF),
        vec![Action::KillAll]
    );
    let before = runtime.clone();
    let actions = exited(&mut runtime, Slot::Main(0), 137, 5);
    assert!(actions.is_empty());
    assert_eq!(runtime, before);
    // A second stop is absorbed too.
    assert!(runtime.apply(Input::Stop, t(6), BACKOFF).is_empty());
}

#[test]
fn stop_then_start_runs_fresh_instances() {
    let mut runtime = group(RestartPolicy::Always, &["web"]);
    start_all(&mut runtime);
    runtime.apply(Input::Stop, t(4), BACKOFF);
    assert_eq!(runtime.state(), GroupState::Stopped);
    assert_eq!(runtime.provisioning, Provisioning::Succeeded);
    let state = current(&runtime, 0);
    assert_eq!(state.state.as_deref(), Some("Terminated"));
    assert_eq!(state.exit_code, Some(KILLED_EXIT_CODE));

    let actions = runtime.apply(Input::Start, t(5), BACKOFF);
    assert_eq!(
        actions,
        vec![Action::KillAll, Action::Provision { generation: 3 }]
    );
    assert_eq!(runtime.provisioning, Provisioning::Pending);
    assert_eq!(runtime.state(), GroupState::Pending);
    assert_eq!(runtime.containers[0].restart_count, 0);
    assert!(!runtime.containers[0].logs_available);
    start_all(&mut runtime);
    assert_eq!(runtime.state(), GroupState::Running);
}

#[test]
fn restart_keeps_counting_in_place() {
    let mut runtime = group(RestartPolicy::Never, &["job"]);
    start_all(&mut runtime);
    exit(&mut runtime, 0, 0, 3);
    let actions = runtime.apply(Input::Restart, t(4), BACKOFF);
    assert_eq!(
        actions,
        vec![Action::KillAll, Action::Provision { generation: 2 }]
    );
    start_all(&mut runtime);
    assert_eq!(runtime.containers[0].restart_count, 1);
    assert_eq!(
        runtime.containers[0].previous.as_ref().unwrap().exit_code,
        Some(0)
    );
}

#[test]
fn an_unavailable_image_fails_provisioning() {
    let mut runtime = group(RestartPolicy::Never, &["job"]);
    runtime.apply(Input::Begin { generation: 1 }, t(1), BACKOFF);
    let actions = runtime.apply(
        Input::ImageUnavailable {
            generation: 1,
            slot: Slot::Main(0),
            message: "no command".into(),
        },
        t(1),
        BACKOFF,
    );
    assert_eq!(actions, vec![Action::KillAll]);
    assert_eq!(runtime.provisioning, Provisioning::Failed);
    assert_eq!(runtime.state(), GroupState::Pending);
    assert_eq!(runtime.failure.as_ref().unwrap().code, "InaccessibleImage");
    let last = runtime.containers[0].events.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("Failed"));
    assert_eq!(last.kind.as_deref(), Some("Warning"));
    assert!(!runtime.is_active());
}

#[test]
fn a_mount_failure_is_a_group_event() {
    let mut runtime = group(RestartPolicy::Never, &["job"]);
    runtime.apply(Input::Begin { generation: 1 }, t(1), BACKOFF);
    runtime.apply(
        Input::MountFailed {
            generation: 1,
            message: "mount error(13): Permission denied".into(),
        },
        t(1),
        BACKOFF,
    );
    assert_eq!(runtime.provisioning, Provisioning::Failed);
    assert_eq!(runtime.events[0].name.as_deref(), Some("FailedMount"));
}

#[test]
fn a_start_failure_counts_as_exit_128() {
    let mut runtime = group(RestartPolicy::Never, &["job"]);
    runtime.apply(Input::Begin { generation: 1 }, t(1), BACKOFF);
    runtime.apply(
        Input::StartFailed {
            generation: 1,
            slot: Slot::Main(0),
            message: "no bwrap".into(),
        },
        t(2),
        BACKOFF,
    );
    assert_eq!(runtime.provisioning, Provisioning::Succeeded);
    assert_eq!(runtime.state(), GroupState::Failed);
    assert_eq!(current(&runtime, 0).exit_code, Some(128));
}

#[test]
fn recovery_reports_lost_processes_and_restarts_per_policy() {
    let mut always = group(RestartPolicy::Always, &["web"]);
    start_all(&mut always);
    let actions = always.apply(Input::Recovered, t(10), BACKOFF);
    assert!(matches!(actions.as_slice(), [Action::RestartAfter { .. }]));
    let previous = always.containers[0].previous.as_ref().unwrap();
    assert_eq!(previous.exit_code, Some(KILLED_EXIT_CODE));
    assert!(
        previous
            .detail_status
            .as_deref()
            .unwrap()
            .contains("emulator restarted")
    );

    let mut never = group(RestartPolicy::Never, &["job"]);
    start_all(&mut never);
    assert!(never.apply(Input::Recovered, t(10), BACKOFF).is_empty());
    assert_eq!(never.state(), GroupState::Failed);
    assert_eq!(current(&never, 0).exit_code, Some(KILLED_EXIT_CODE));

    let mut pending = group(RestartPolicy::Never, &["job"]);
    let actions = pending.apply(Input::Recovered, t(10), BACKOFF);
    assert_eq!(actions, vec![Action::Provision { generation: 2 }]);
}

#[test]
fn an_eviction_kills_the_running_containers_and_restarts_the_group_in_place() {
    let mut runtime = group(RestartPolicy::Never, &["job"]);
    // Not running yet: nothing to evict.
    let generation = runtime.generation;
    assert!(
        runtime
            .apply(Input::Evicted { generation }, t(1), BACKOFF)
            .is_empty()
    );
    start_all(&mut runtime);
    let actions = runtime.apply(Input::Evicted { generation }, t(5), BACKOFF);
    assert_eq!(
        actions,
        vec![Action::KillAll, Action::Provision { generation: 2 }]
    );
    let run = &runtime.containers[0];
    let previous = run.previous.as_ref().unwrap();
    assert_eq!(previous.state.as_deref(), Some("Terminated"));
    assert_eq!(previous.exit_code, Some(KILLED_EXIT_CODE));
    assert_eq!(previous.detail_status.as_deref(), Some("Evicted"));
    assert_eq!(run.restart_count, 1);
    assert_eq!(runtime.provisioning, Provisioning::Pending);
    assert!(
        runtime
            .events
            .iter()
            .any(|e| e.name.as_deref() == Some(EVICTED_EVENT)
                && e.kind.as_deref() == Some("Warning"))
    );
    // A late eviction of the replaced attempt changes nothing.
    let before = runtime.clone();
    assert!(
        runtime
            .apply(Input::Evicted { generation }, t(6), BACKOFF)
            .is_empty()
    );
    assert_eq!(runtime, before);
}

#[test]
fn repeated_events_are_folded_with_a_count() {
    let mut events = Vec::new();
    push_event(&mut events, t(1), "Started", "Started container", "Normal");
    push_event(&mut events, t(5), "Started", "Started container", "Normal");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, Some(2));
    assert_eq!(events[0].first_timestamp, Some(t(1)));
    assert_eq!(events[0].last_timestamp, Some(t(5)));
}

#[test]
fn instant_completion_and_instant_runs_are_succeeded_with_exit_zero() {
    let mut runtime = group(RestartPolicy::Always, &["a", "b"]);
    runtime.complete_instantly(t(1));
    assert_eq!(runtime.provisioning, Provisioning::Succeeded);
    assert_eq!(runtime.state(), GroupState::Succeeded);
    assert_eq!(current(&runtime, 1).exit_code, Some(0));
    // A run that takes a while (`simulate_sleeps`): running, then exit 0 unless stopped or
    // replaced meanwhile.
    let mut runtime = group(RestartPolicy::Never, &["a", "b"]);
    runtime.start_instantly(t(1));
    assert_eq!(runtime.state(), GroupState::Running);
    assert!(!runtime.finish_instantly(runtime.generation + 1, t(5)));
    assert!(runtime.finish_instantly(runtime.generation, t(5)));
    assert_eq!(runtime.state(), GroupState::Succeeded);
    let state = current(&runtime, 1);
    assert_eq!(
        (state.start_time, state.finish_time),
        (Some(t(1)), Some(t(5)))
    );
    assert!(!runtime.finish_instantly(runtime.generation, t(6)), "once");
    // Stopped before its end: the stop's exit stays.
    let mut stopped = group(RestartPolicy::Never, &["a"]);
    stopped.start_instantly(t(1));
    let generation = stopped.generation;
    stopped.apply(Input::Stop, t(2), BACKOFF);
    assert!(!stopped.finish_instantly(generation, t(5)));
    assert_ne!(current(&stopped, 0).exit_code, Some(0));
}

fn with_inits(policy: RestartPolicy) -> Runtime {
    let mains = [("app".to_string(), "app:1".to_string())];
    let inits = [
        ("migrate".to_string(), "tool:1".to_string()),
        ("seed".to_string(), "tool:1".to_string()),
    ];
    let mut runtime = Runtime::new(policy, &mains, &inits, 1);
    runtime.apply(Input::Begin { generation: 1 }, t(1), BACKOFF);
    runtime.apply(Input::Pulled { generation: 1 }, t(1), BACKOFF);
    runtime
}

fn init_event(runtime: &mut Runtime, input: Input) -> Vec<Action> {
    runtime.apply(input, t(3), BACKOFF)
}

#[test]
fn init_containers_run_one_after_another_before_the_containers() {
    let mut runtime = with_inits(RestartPolicy::Always);
    let first = init_event(&mut runtime, Input::Provided { generation: 1 });
    assert_eq!(
        first,
        vec![Action::Spawn {
            generation: 1,
            slot: Slot::Init(0)
        }]
    );
    started(&mut runtime, Slot::Init(0), 2);
    assert_eq!(runtime.state(), GroupState::Pending);
    assert_eq!(runtime.provisioning, Provisioning::Creating);
    let next = exited(&mut runtime, Slot::Init(0), 0, 3);
    assert_eq!(
        next,
        vec![Action::Spawn {
            generation: 1,
            slot: Slot::Init(1)
        }]
    );
    started(&mut runtime, Slot::Init(1), 3);
    let mains = exited(&mut runtime, Slot::Init(1), 0, 4);
    assert_eq!(
        mains,
        vec![Action::Spawn {
            generation: 1,
            slot: Slot::Main(0)
        }]
    );
    let init = runtime.run(Slot::Init(1)).unwrap();
    assert_eq!(
        init.current.as_ref().unwrap().detail_status.as_deref(),
        Some("Completed")
    );
    // An init container that succeeded is not restarted, even with Always.
    assert_eq!(init.phase, Phase::Exited(0));
}

#[test]
fn a_failed_init_container_fails_a_never_group_and_is_retried_otherwise() {
    let mut never = with_inits(RestartPolicy::Never);
    never.apply(Input::Provided { generation: 1 }, t(2), BACKOFF);
    started(&mut never, Slot::Init(0), 2);
    let actions = exited(&mut never, Slot::Init(0), 2, 3);
    assert!(actions.is_empty());
    assert_eq!(never.state(), GroupState::Failed);
    assert_eq!(never.provisioning, Provisioning::Failed);
    assert_eq!(never.failure.as_ref().unwrap().code, "InitContainerFailed");
    assert_eq!(never.containers[0].phase, Phase::NotStarted);

    let mut on_failure = with_inits(RestartPolicy::OnFailure);
    on_failure.apply(Input::Provided { generation: 1 }, t(2), BACKOFF);
    started(&mut on_failure, Slot::Init(0), 2);
    let actions = exited(&mut on_failure, Slot::Init(0), 2, 3);
    assert!(matches!(
        actions.as_slice(),
        [Action::RestartAfter {
            slot: Slot::Init(0),
            ..
        }]
    ));
    assert_eq!(on_failure.state(), GroupState::Pending);
}
