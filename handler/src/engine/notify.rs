//! Notifications (the spec's `notify`), as state: each is a pending delivery in the checkpoint
//! until it is delivered or given up, asked for with [`Action::Notify`] and answered with
//! [`Event::NotifySent`] or [`Event::NotifyFailed`].
//!
//! # Guarantees
//! - At least once, never silently lost: a notification is queued in the state that reaches its
//!   outcome (a terminal status, or a group `Failed`), saved before it is sent (commit first),
//!   and sent again after a crash or a retryable failure. Its `id` (the CloudEvent's and
//!   `webhook-id`) is made when it is queued and never changes, so a receiver dedupes retries.
//! - A deployment with a pending notification is not `Done` (its phase is `Notifying`), so the
//!   sweep does not purge it and its wake keeps it stepped.
//! - Retries back off ([`policy::notify_delay`]: 1 s doubling, at most 5 min) and end after
//!   [`policy::NOTIFY_MAX_ATTEMPTS`] attempts, or at the first permanent failure; every attempt is
//!   in the history (`NotifySent`, `NotifyFailed`).

use serde::{Deserialize, Serialize};

use super::apply::{Plan, note};
use super::event::Action;
use super::policy;
use super::state::{Deployment, Millis, Phase, RuntimeStatus};
use crate::spec::NotifyOn;

/// One notification to one `notify` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The CloudEvent id: the deployment's uid and the notification's place, stable across
    /// retries.
    pub id: String,
    /// Index into `spec.notify` (0 and unused when `event_grid`).
    pub target: usize,
    /// To the operator's Event Grid topic instead of a `notify` entry.
    #[serde(default, skip_serializing_if = "super::state::is_false")]
    pub event_grid: bool,
    pub on: NotifyOn,
    /// The group that failed (`GroupFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When the outcome happened (the CloudEvent's `time`).
    pub at: Millis,
    pub attempts: u32,
    pub state: DeliveryState,
    /// When to try next, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<Millis>,
    /// The last attempt's answer (`200`, `500`, a connection error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

impl Notification {
    /// Where it goes, as the history says it: `notify[i]` or `Event Grid`.
    pub fn to(&self) -> String {
        if self.event_grid {
            "Event Grid".to_owned()
        } else {
            format!("notify[{}]", self.target)
        }
    }
}

/// Where a notification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    Pending,
    Delivered,
    GaveUp,
}

/// The outcome a terminal status notifies.
fn outcome(status: RuntimeStatus) -> Option<NotifyOn> {
    match status {
        RuntimeStatus::Succeeded => Some(NotifyOn::Succeeded),
        RuntimeStatus::Failed => Some(NotifyOn::Failed),
        RuntimeStatus::TimedOut => Some(NotifyOn::TimedOut),
        RuntimeStatus::Terminated => Some(NotifyOn::Terminated),
        RuntimeStatus::Pending | RuntimeStatus::Running => None,
    }
}

/// Queues a notification on `on` (of group `group`) for every entry that listens for it, and
/// one to the Event Grid topic for every outcome when the deployment publishes there.
pub(super) fn queue(d: &mut Deployment, on: NotifyOn, group: Option<&str>, now: Millis) {
    let mut targets: Vec<(usize, bool)> = (0..d.spec.notify.len())
        .filter(|&t| d.spec.notify[t].on.contains(&on))
        .map(|t| (t, false))
        .collect();
    if d.event_grid {
        targets.push((0, true));
    }
    for (target, event_grid) in targets {
        let id = format!(
            "{}.{}",
            d.uid.as_deref().unwrap_or(&d.id),
            d.notifications.len()
        );
        d.notifications.push(Notification {
            id,
            target,
            event_grid,
            on,
            group: group.map(str::to_owned),
            at: now,
            attempts: 0,
            state: DeliveryState::Pending,
            next_at: Some(now),
            last: None,
        });
    }
}

/// After the phase and status are derived: queues the outcome's notifications once the status
/// is terminal, asks for the due deliveries, waits for the others, and keeps the deployment
/// `Notifying` instead of `Done` while one is pending.
pub(super) fn decide(d: &mut Deployment, now: Millis, plan: &mut Plan) {
    if let Some(on) = outcome(d.status)
        && !d.notifications.iter().any(|n| n.on == on)
    {
        queue(d, on, None, now);
    }
    let mut pending = false;
    for n in d
        .notifications
        .iter()
        .filter(|n| n.state == DeliveryState::Pending)
    {
        pending = true;
        match n.next_at {
            Some(at) if at > now => plan.wait_until(at),
            _ => plan.work.push(Action::Notify { id: n.id.clone() }),
        }
    }
    if pending && d.phase == Phase::Done {
        d.phase = Phase::Notifying;
    }
}

/// Records a delivery (`status`: the receiver's 2xx).
pub(super) fn sent(d: &mut Deployment, id: &str, status: u16, now: Millis) {
    let Some(n) = pending(d, id) else {
        return;
    };
    n.attempts += 1;
    n.state = DeliveryState::Delivered;
    n.next_at = None;
    n.last = Some(status.to_string());
    let detail = format!("{id} to {}: {status} (attempt {})", n.to(), n.attempts);
    note(d, now, "NotifySent", detail);
}

/// Records a failed attempt: tried again after the back-off, unless it is `permanent` or the
/// last attempt allowed.
pub(super) fn failed(d: &mut Deployment, id: &str, error: &str, permanent: bool, now: Millis) {
    let Some(n) = pending(d, id) else {
        return;
    };
    n.attempts += 1;
    n.last = Some(error.to_owned());
    let then = if permanent || n.attempts >= policy::NOTIFY_MAX_ATTEMPTS {
        n.state = DeliveryState::GaveUp;
        n.next_at = None;
        format!("gave up after {} attempt(s)", n.attempts)
    } else {
        let delay = policy::notify_delay(n.attempts);
        n.next_at = Some(now + delay);
        format!("attempt {} in {} s", n.attempts + 1, (delay + 999) / 1000)
    };
    let detail = format!("{id} to {}: {error}; {then}", n.to());
    note(d, now, "NotifyFailed", detail);
}

fn pending<'a>(d: &'a mut Deployment, id: &str) -> Option<&'a mut Notification> {
    d.notifications
        .iter_mut()
        .find(|n| n.id == id && n.state == DeliveryState::Pending)
}
