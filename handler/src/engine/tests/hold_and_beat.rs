//! Creates held for capacity, and heartbeats: a held instance stays pending with its reason and
//! is created when its hold runs out; an instance that stops beating is hung.

use super::*;

const HOLD: &str = "quota: needs 1 core, 0 of 4 free in westeurope";

fn held(d: &Deployment, instance: &str, at: Millis) -> Deployment {
    let event = Event::CreateHeld {
        instance: instance.into(),
        reason: HOLD.into(),
        retry_at: at + policy::HOLD_RETRY_MS,
    };
    apply(d, event, at).unwrap().next
}

#[test]
fn a_held_create_stays_pending_with_its_reason_once_in_the_history_and_is_retried() {
    let claimed = apply(&started(json!({})), Event::Wake, T0).unwrap().next;
    assert_eq!(claimed.status, RuntimeStatus::Running);
    let d = held(&claimed, "job-1-work-1", T0 + 10);
    let inst = &d.instances[0];
    assert_eq!(inst.held.as_ref().map(|h| h.since), Some(T0 + 10));
    assert_eq!(
        (inst.claim_until, inst.failures, inst.blocked_until),
        (None, 0, None)
    );
    assert_eq!(
        (d.status, d.phase),
        (RuntimeStatus::Pending, Phase::Pending)
    );

    // A step before the hold runs out creates nothing and wakes when it does.
    let early = apply(&d, Event::Wake, T0 + 1_000).unwrap();
    assert!(
        !early
            .actions
            .iter()
            .any(|a| matches!(a, Action::Create { .. }))
    );
    assert_eq!(
        early.next.wake.map(|w| w.at),
        Some(T0 + 10 + policy::HOLD_RETRY_MS)
    );

    // Held again: the place in the queue (`since`) and the single history entry are kept.
    let retry_at = T0 + 10 + policy::HOLD_RETRY_MS;
    let again = apply(&early.next, Event::Wake, retry_at).unwrap();
    assert!(
        again
            .actions
            .iter()
            .any(|a| matches!(a, Action::Create { .. }))
    );
    let d = held(&again.next, "job-1-work-1", retry_at);
    assert_eq!(d.instances[0].held.as_ref().map(|h| h.since), Some(T0 + 10));
    let holds = d.history.iter().filter(|h| h.kind == "CreateHeld").count();
    assert_eq!(holds, 1);
    assert!(d.history.iter().any(|h| h.detail.ends_with(HOLD)));

    // Released: created, no longer held, running.
    let at = retry_at + policy::HOLD_RETRY_MS;
    let claimed = apply(&d, Event::Wake, at).unwrap().next;
    let instance = "job-1-work-1".to_owned();
    let created = apply(&claimed, Event::Created { instance }, at)
        .unwrap()
        .next;
    assert_eq!(created.instances[0].held, None);
    assert_eq!(created.status, RuntimeStatus::Running);
}

#[test]
fn a_held_claim_is_no_try_so_the_next_goes_without_a_look_and_an_end_needs_none() {
    let claimed = apply(&started(json!({})), Event::Wake, T0).unwrap().next;
    assert_eq!(claimed.instances[0].create_tries, 1);
    let d = held(&claimed, "job-1-work-1", T0);
    assert_eq!(d.instances[0].create_tries, 0);
    // A duplicated hold takes nothing more off.
    let d = held(&d, "job-1-work-1", T0);
    assert_eq!(d.instances[0].create_tries, 0);
    let again = apply(&d, Event::Wake, T0 + policy::HOLD_RETRY_MS).unwrap();
    assert!(again.actions.iter().any(|a| matches!(
        a,
        Action::Create {
            check_first: false,
            ..
        }
    )));
    // Ended while held: nothing was created, so nothing is looked for.
    let reason = "stop".to_owned();
    let done = apply(&d, Event::Terminate { reason }, T0 + 1).unwrap();
    assert!(
        done.actions
            .iter()
            .all(|a| matches!(a, Action::Schedule { .. }))
    );
    assert_eq!(done.next.status, RuntimeStatus::Terminated);
    assert_eq!(done.next.phase, Phase::Done);
}

fn running_forever() -> World {
    World::new(|_, _| observation("Running", &[("main", "Running", None)]))
}

fn beats(from: Millis, to: Millis, every: Millis) -> Vec<(Millis, Event)> {
    (0..)
        .map(|n| from + n * every)
        .take_while(|at| *at <= to)
        .map(|at| {
            let instance = "job-1-work-1".to_owned();
            (at, Event::Heartbeat { instance })
        })
        .collect()
}

#[test]
fn an_instance_that_stops_beating_is_hung_stopped_its_logs_saved_and_retried_then_failed() {
    let d = started(json!({
        "heartbeatTimeout": "PT1M",
        "retry": { "maxAttempts": 2, "backoff": "PT1S" }
    }));
    let mut world = running_forever();
    let mut external = beats(T0 + 10_000, T0 + 70_000, 20_000);
    // The second attempt beats once, then stops too.
    external.extend(beats(T0 + 200_000, T0 + 200_000, 1));
    let external = external
        .into_iter()
        .map(|(at, e)| match e {
            Event::Heartbeat { .. } if at >= T0 + 200_000 => (
                at,
                Event::Heartbeat {
                    instance: "job-1-work-2".into(),
                },
            ),
            other => (at, other),
        })
        .collect();
    let (d, _) = run(d, &mut world, external);
    assert_eq!(d.status, RuntimeStatus::Failed);
    assert_eq!(
        d.outcome.as_ref().unwrap().error.as_deref(),
        Some("hung: no heartbeat within PT1M")
    );
    let first = &d.instances[0];
    let verdict = first.verdict.as_ref().unwrap();
    assert_eq!(
        verdict.error.as_deref(),
        Some("hung: no heartbeat within PT1M")
    );
    // Judged a timeout after the last recorded beat (T0 + 70 s), not before.
    assert!(
        verdict.at >= T0 + 130_000 && verdict.at < T0 + 140_000,
        "{}",
        verdict.at - T0
    );
    assert!(first.stopped && first.logs_saved && first.deleted);
    assert!(
        d.history
            .iter()
            .any(|h| h.kind == "AttemptFailed" && h.detail.contains("hung"))
    );
    assert_eq!(world.creates, 2);
}

#[test]
fn an_instance_that_keeps_beating_is_not_hung() {
    let d = started(json!({ "heartbeatTimeout": "PT1M", "timeout": "PT5M" }));
    let mut world = running_forever();
    let (d, _) = run(d, &mut world, beats(T0 + 5_000, T0 + 600_000, 25_000));
    assert_eq!(d.status, RuntimeStatus::TimedOut);
    assert!(!d.history.iter().any(|h| h.detail.contains("hung")));
}

#[test]
fn without_a_beat_or_a_started_container_nothing_is_hung() {
    let d = started(json!({ "heartbeatTimeout": "PT1M", "timeout": "PT5M" }));
    let (d, _) = run(d, &mut running_forever(), Vec::new());
    assert_eq!(d.status, RuntimeStatus::TimedOut);
}

#[test]
fn a_started_container_that_never_beats_is_hung_a_timeout_after_its_start() {
    let d = started(json!({ "heartbeatTimeout": "PT1M" }));
    let mut world = World::new(|_, _| {
        let mut o = observation("Running", &[("main", "Running", None)]);
        o.containers[0].start = Some(T0 + 2_000);
        o
    });
    let (d, _) = run(d, &mut world, Vec::new());
    let verdict = d.instances[0].verdict.clone().unwrap();
    assert_eq!(verdict.at, T0 + 62_000);
    assert_eq!(d.status, RuntimeStatus::Failed);
}

#[test]
fn a_hung_service_is_healed() {
    let service = json!({
        "mode": "service",
        "heartbeatTimeout": "PT1M",
        "groups": [{ "name": "db", "properties": { "containers": [
            { "name": "main", "properties": { "image": "postgres:15", "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }
        ] } }]
    });
    let mut world = running_forever();
    let beat = |at: Millis| {
        let instance = "job-1-db-1".to_owned();
        (at, Event::Heartbeat { instance })
    };
    let teardown = Event::Raised {
        name: "teardown".into(),
        payload: json!(null),
    };
    let external = vec![beat(T0 + 1_000), (T0 + 300_000, teardown)];
    let (d, _) = run(started(service), &mut world, external);
    assert_eq!(d.status, RuntimeStatus::Succeeded);
    assert!(
        d.history
            .iter()
            .any(|h| h.kind == "Healing" && h.detail.contains("hung"))
    );
    assert!(world.creates >= 2);
}

#[test]
fn heartbeat_timeouts_are_checked_and_a_spec_without_them_serialises_as_before() {
    let text = |extra: &str| {
        format!(
            r#"{{"id":"j",{extra}"groups":[{{"name":"g","properties":{{"containers":[{{"name":"c","properties":{{"image":"busybox","resources":{{"requests":{{"cpu":1,"memoryInGB":1}}}}}}}}]}}}}]}}"#
        )
    };
    let parse_text = |t: String| parse(t.as_bytes(), Format::Json, || unreachable!());
    let errors = parse_text(text(r#""heartbeatTimeout":"PT0.5S","#)).unwrap_err();
    assert!(errors.to_string().contains("heartbeatTimeout"), "{errors}");
    let errors = parse_text(text(r#""heartbeatTimeout":"2 minutes","#)).unwrap_err();
    assert!(errors.to_string().contains("heartbeatTimeout"), "{errors}");
    let spec = parse_text(text(r#""heartbeatTimeout":"PT2M","#)).unwrap();
    assert_eq!(
        spec.heartbeat_timeout_of(0).map(|t| t.millis()),
        Some(120_000)
    );
    let plain = serde_json::to_string(&parse_text(text("")).unwrap()).unwrap();
    assert!(!plain.contains("heartbeat"), "{plain}");
}

#[test]
fn a_beat_within_a_quarter_timeout_changes_nothing_even_with_work_due() {
    let d = created(json!({ "heartbeatTimeout": "PT2M" })).next;
    let beat = |d: &Deployment, at: Millis| {
        let instance = "job-1-work-1".to_owned();
        apply(d, Event::Heartbeat { instance }, at).unwrap()
    };
    let first = beat(&d, T0 + 1_000);
    assert!(first.changed(&d));
    assert_eq!(first.next.instances[0].last_beat, Some(T0 + 1_000));
    // A look is due by now; the beat still changes nothing.
    let second = beat(&first.next, T0 + 31_000);
    assert!(!second.changed(&first.next));
    assert!(second.actions.is_empty());
    let third = beat(&first.next, T0 + 31_001);
    assert_eq!(third.next.instances[0].last_beat, Some(T0 + 31_001));
    // Without a heartbeatTimeout nothing waits for beats: none is recorded.
    let plain = created(json!({})).next;
    assert!(!beat(&plain, T0 + 1_000).changed(&plain));
}

#[test]
fn silence_past_the_deadline_is_looked_at_before_it_is_called_hung() {
    let d = created(json!({ "heartbeatTimeout": "PT1M" })).next;
    let instance = || "job-1-work-1".to_owned();
    let seen = |d: &Deployment, o: Observation, at: Millis| {
        let event = Event::Observed {
            instance: instance(),
            observation: o,
            at,
        };
        apply(d, event, at).unwrap().next
    };
    let running = || observation("Running", &[("main", "Running", None)]);
    let d = seen(&d, running(), T0 + 5);
    let beat = Event::Heartbeat {
        instance: instance(),
    };
    let d = apply(&d, beat, T0 + 10_000).unwrap().next;
    // At the deadline the last look is older: look first, judge nothing yet.
    let due = apply(&d, Event::Wake, T0 + 70_000).unwrap();
    assert_eq!(
        due.actions,
        [Action::Observe {
            instance: instance()
        }]
    );
    assert_eq!(due.next.instances[0].verdict, None);
    // It had exited meanwhile (a job stops beating when it ends): judged by its exit.
    let exited = observation("Succeeded", &[("main", "Terminated", Some(0))]);
    let ended = seen(&due.next, exited, T0 + 70_000);
    assert_eq!(
        ended.instances[0].verdict.as_ref().map(|v| v.succeeded),
        Some(true)
    );
    // Still running on that look: hung.
    let hung = seen(&due.next, running(), T0 + 70_000);
    let verdict = hung.instances[0].verdict.clone().unwrap();
    assert_eq!(
        verdict.error.as_deref(),
        Some("hung: no heartbeat within PT1M")
    );
}

#[test]
fn the_status_shows_the_oldest_holds_reason_and_how_many_wait() {
    let fan_out = json!({ "groups": [{ "name": "work", "count": 3, "properties": { "containers": [
        { "name": "main", "properties": { "image": "busybox", "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }
    ] } }] });
    let d = apply(&started(fan_out), Event::Wake, T0).unwrap().next;
    let names: Vec<String> = d.instances.iter().map(|i| i.aci_name.clone()).collect();
    let pending = |d: &Deployment| crate::api::status::status(d, &Default::default(), 0).pending;
    assert_eq!(pending(&d), None);
    let d = held(&d, &names[1], T0 + 5);
    assert_eq!(pending(&d).as_deref(), Some(HOLD));
    let event = Event::CreateHeld {
        instance: names[2].clone(),
        reason: "quota: later".into(),
        retry_at: T0 + 9_000,
    };
    let d = apply(&d, event, T0 + 9).unwrap().next;
    assert_eq!(
        pending(&d).as_deref(),
        Some(format!("{HOLD} (2 creates held)").as_str())
    );
    assert_eq!(d.status, RuntimeStatus::Running, "one of three was sent");
}
