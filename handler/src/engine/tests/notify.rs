//! Notifications: queued with the outcome, saved before they are sent, retried with back-off
//! under one id, given up on a permanent failure or after the most attempts, and the deployment
//! `Done` only once none is pending.

use super::*;
use crate::engine::notify::DeliveryState;
use crate::spec::NotifyOn;

fn notifying(on: serde_json::Value) -> Deployment {
    started(json!({ "notify": [{ "url": "https://hooks.example.com/berth", "on": on }] }))
}

fn kinds(d: &Deployment, prefix: &str) -> Vec<String> {
    d.history
        .iter()
        .filter(|h| h.kind.starts_with(prefix))
        .map(|h| format!("{} {}", h.kind, h.detail))
        .collect()
}

#[test]
fn a_succeeded_job_notifies_once_its_status_is_final_and_is_done_only_once_delivered() {
    let mut world = World::new(exits_after(3, 0));
    let all = json!([
        "Succeeded",
        "Failed",
        "TimedOut",
        "Terminated",
        "GroupFailed"
    ]);
    let (d, checkpoints) = run(notifying(all), &mut world, vec![]);
    assert_eq!((d.status, d.phase), (RuntimeStatus::Succeeded, Phase::Done));
    assert_eq!(world.notified.len(), 1, "{:?}", world.notified);
    let n = &d.notifications[0];
    assert_eq!(
        (n.on, n.state, n.attempts),
        (NotifyOn::Succeeded, DeliveryState::Delivered, 1)
    );
    assert_eq!(n.id, format!("{}.0", d.uid.as_deref().unwrap_or(&d.id)));
    assert_eq!(kinds(&d, "Notify").len(), 1);
    // Commit first: the notification was saved pending before it was sent, in a checkpoint
    // whose status is final and whose phase is not `Done` (so the sweep cannot purge it).
    let queued = checkpoints
        .iter()
        .find(|c| !c.notifications.is_empty())
        .unwrap();
    assert_eq!(queued.notifications[0].state, DeliveryState::Pending);
    assert_eq!(queued.status, RuntimeStatus::Succeeded);
    assert_ne!(queued.phase, Phase::Done);
    assert!(queued.wake.is_some());
    // Sent once the groups were cleaned up, when the status became final.
    assert!(world.notified[0].1 >= queued.updated);
}

#[test]
fn a_failing_receiver_gets_the_same_id_again_after_the_back_off_until_it_accepts() {
    let mut world = World::new(exits_after(2, 0));
    world.receiver = Box::new(|attempt| Some(if attempt < 3 { 500 } else { 204 }));
    let (d, _) = run(notifying(json!(["Succeeded"])), &mut world, vec![]);
    assert_eq!(d.phase, Phase::Done);
    let ids: Vec<&String> = world.notified.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [&d.notifications[0].id; 3]);
    let at: Vec<Millis> = world.notified.iter().map(|(_, at)| *at).collect();
    assert_eq!([at[1] - at[0], at[2] - at[1]], [1_000, 2_000]);
    let history = kinds(&d, "Notify");
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(history[0].starts_with("NotifyFailed") && history[0].contains("500; attempt 2 in 1 s"));
    assert!(history[2].starts_with("NotifySent") && history[2].contains("204 (attempt 3)"));
    assert_eq!(d.notifications[0].state, DeliveryState::Delivered);
}

#[test]
fn a_permanent_refusal_gives_up_after_one_attempt() {
    let mut world = World::new(exits_after(2, 0));
    world.receiver = Box::new(|_| Some(404));
    let (d, _) = run(notifying(json!(["Succeeded"])), &mut world, vec![]);
    assert_eq!((d.status, d.phase), (RuntimeStatus::Succeeded, Phase::Done));
    assert_eq!(world.notified.len(), 1);
    assert_eq!(d.notifications[0].state, DeliveryState::GaveUp);
    let history = kinds(&d, "Notify");
    assert!(
        history[0].contains("404; gave up after 1 attempt(s)"),
        "{history:?}"
    );
}

#[test]
fn an_unreachable_receiver_is_tried_the_most_attempts_with_back_off_then_given_up() {
    let mut world = World::new(exits_after(2, 0));
    world.receiver = Box::new(|_| None);
    let (d, _) = run(notifying(json!(["Succeeded"])), &mut world, vec![]);
    assert_eq!(d.phase, Phase::Done);
    assert_eq!(world.notified.len() as u32, policy::NOTIFY_MAX_ATTEMPTS);
    let gaps: Vec<Millis> = world.notified.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let expected: Vec<Millis> = (1..policy::NOTIFY_MAX_ATTEMPTS)
        .map(policy::notify_delay)
        .collect();
    assert_eq!(gaps, expected);
    let n = &d.notifications[0];
    assert_eq!(
        (n.state, n.attempts),
        (DeliveryState::GaveUp, policy::NOTIFY_MAX_ATTEMPTS)
    );
    assert_eq!(
        kinds(&d, "NotifyFailed").len() as u32,
        policy::NOTIFY_MAX_ATTEMPTS
    );
}

#[test]
fn only_the_listed_outcomes_notify_and_a_failed_group_notifies_before_the_end() {
    let mut world = World::new(exits_after(2, 0));
    let (d, _) = run(notifying(json!(["Failed"])), &mut world, vec![]);
    assert!(d.notifications.is_empty() && world.notified.is_empty());
    assert_eq!(d.phase, Phase::Done);

    let mut world = World::new(exits_after(2, 3));
    let (d, _) = run(
        notifying(json!(["GroupFailed", "Failed"])),
        &mut world,
        vec![],
    );
    assert_eq!(d.status, RuntimeStatus::Failed);
    let sent: Vec<(NotifyOn, Option<&str>)> = d
        .notifications
        .iter()
        .map(|n| (n.on, n.group.as_deref()))
        .collect();
    assert_eq!(
        sent,
        [
            (NotifyOn::GroupFailed, Some("work")),
            (NotifyOn::Failed, None)
        ]
    );
    assert!(d.notifications[0].at <= d.notifications[1].at);
    assert_ne!(d.notifications[0].id, d.notifications[1].id);
}

#[test]
fn a_crash_after_the_attempt_sends_the_same_id_again_and_duplicated_results_change_nothing() {
    let mut world = World::new(exits_after(2, 0));
    let (_, checkpoints) = run(notifying(json!(["Succeeded"])), &mut world, vec![]);
    // The worker died after sending, before saving the result: the next step sends again.
    let pending = checkpoints
        .iter()
        .find(|c| {
            c.notifications
                .first()
                .is_some_and(|n| n.state == DeliveryState::Pending)
        })
        .unwrap()
        .clone();
    let first = world.notified.clone();
    let (d, _) = run(pending, &mut world, vec![]);
    assert_eq!(d.phase, Phase::Done);
    assert_eq!(world.notified.len(), 2);
    assert_eq!(world.notified[1].0, first[0].0);
    // A result applied twice records one delivery.
    let id = d.notifications[0].id.clone();
    let again = Event::NotifySent { id, status: 200 };
    let before = d.clone();
    assert_eq!(apply(&d, again, world.now).unwrap().next, before);
}

#[test]
fn a_deployment_with_notifications_is_written_at_schema_version_three_and_others_at_two() {
    assert_eq!(started(json!({})).schema_version, 2);
    assert_eq!(notifying(json!(["Failed"])).schema_version, 3);
    let mut old = started(json!({}));
    old.schema_version = 1;
    let d = apply(&old, Event::Wake, T0).unwrap().next;
    assert_eq!(d.schema_version, 2);
}

/// A deployment started while `BERTH_EVENTGRID_TOPIC` was set, with `extra` in its spec.
fn publishing(extra: serde_json::Value) -> Deployment {
    let mut options = StartOptions::new("http://127.0.0.1:7071");
    options.event_grid = true;
    start(spec(extra), None, "digest".into(), options, T0).next
}

#[test]
fn a_publishing_deployment_sends_every_outcome_to_event_grid_beside_its_own_notify_entries() {
    let d = publishing(json!({}));
    assert_eq!(d.schema_version, 3, "an older Berth would drop event_grid");

    let mut world = World::new(exits_after(2, 0));
    let (d, _) = run(publishing(json!({})), &mut world, vec![]);
    assert_eq!((d.status, d.phase), (RuntimeStatus::Succeeded, Phase::Done));
    let sent: Vec<(NotifyOn, bool)> = d
        .notifications
        .iter()
        .map(|n| (n.on, n.event_grid))
        .collect();
    assert_eq!(sent, [(NotifyOn::Succeeded, true)]);
    assert_eq!(d.notifications[0].state, DeliveryState::Delivered);
    assert!(
        kinds(&d, "NotifySent")[0].contains(" to Event Grid: "),
        "{:?}",
        kinds(&d, "Notify")
    );

    // A failed group and the failed deployment: both published, whatever `notify` listens for.
    let mut world = World::new(exits_after(2, 3));
    let spec = json!({ "notify": [{ "url": "https://hooks.example.com/b", "on": ["Failed"] }] });
    let (d, _) = run(publishing(spec), &mut world, vec![]);
    let sent: Vec<(NotifyOn, bool, usize)> = d
        .notifications
        .iter()
        .map(|n| (n.on, n.event_grid, n.target))
        .collect();
    assert_eq!(
        sent,
        [
            (NotifyOn::GroupFailed, true, 0),
            (NotifyOn::Failed, false, 0),
            (NotifyOn::Failed, true, 0)
        ]
    );
    let ids: std::collections::BTreeSet<&str> =
        d.notifications.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "every notification has its own id");
}
