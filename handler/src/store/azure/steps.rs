//! The step queue on Azure Queue Storage (`BERTH_QUEUE`): [`QueueSteps`].
//!
//! - **Encoding.** The text is [`StepMessage::to_text`], sent as base64, which is what the
//!   Functions queue trigger decodes by default (`messageEncoding: base64` in `host.json`), so a
//!   step Berth sends reaches the `steps` function as the same text.
//! - **Sent before the save.** A step that a save schedules is sent before the save (hidden for
//!   [`HELD_FOR`] at least), then released at its due time once the save commits, or deleted if
//!   the save lost ([`QueueSteps::prepare`], `confirm`, `withdraw`): see the backend's guarantees.
//! - **Delays.** A step due later is sent with an initial visibility delay (whole seconds, rounded
//!   up). The queue hides a message for at most 7 days; a step due later than that is sent for 7
//!   days, and when it arrives early the driver answers `StepOutcome::Early` and the worker (or the
//!   `steps` function) sends it again for the rest: durable timers of any length are chains.
//!   Messages never expire (`messagettl=-1`), so a delayed step cannot be dropped by its TTL.
//! - **Size.** Step messages are a few dozen bytes. Anything that would not fit the queue's 64 KiB
//!   (after base64) is refused before sending, with an error saying so; nothing is truncated.
//! - **Leases.** `receive` hides each message for the lease; `complete` deletes it with the pop
//!   receipt of that delivery. A stale receipt (the lease ran out and another worker holds the
//!   message) is not an error: the other delivery will finish the step.
//! - **Poison.** A message received more than [`MAX_DEQUEUE`] times is moved to `{queue}-poison`,
//!   as the Functions host does with its `maxDequeueCount` of 5.
//! - **Waiting.** No service pushes a notification, so `wait` sleeps with an adaptive back-off:
//!   50 ms after the first empty receive, doubling to [`MAX_IDLE_POLL`]; a send from this process
//!   ends the wait at once. An idle worker costs one Get Messages per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::ledger::Ledger;
use super::{StoreResult, backend};
use crate::azure_storage::queue::MAX_VISIBILITY;
use crate::azure_storage::{Kind, Receipt, StorageError, StorageQueue, TimeToLive};
use crate::clock::Clock;
use crate::store::{Delivery, Millis, QueueDepth, Scheduled, StepMessage, Steps, StoreError};

/// After this many deliveries a step message goes to the poison queue (the host's default).
pub const MAX_DEQUEUE: u32 = 5;
/// The longest pause between two receives of an idle worker.
pub const MAX_IDLE_POLL: Duration = Duration::from_secs(1);
/// The first pause after an empty receive.
const FIRST_IDLE_POLL: Duration = Duration::from_millis(50);
/// How long a step sent ahead of its save stays hidden unless the save releases it: how late a
/// step can be when a process dies between a save and its release. A step due at least this
/// long after its save is sent for its due time and needs no release (one request, not two):
/// only a save slower than this could let it arrive first, and then the sweep re-drives it.
pub const HELD_FOR: Duration = Duration::from_secs(5);

/// A step sent ahead of the save that schedules it, hidden until [`QueueSteps::confirm`].
pub(super) struct Prepared {
    step: Scheduled,
    receipt: Receipt,
    /// Hidden longer than its due time: the confirm must release it.
    held: bool,
}

/// Steps on an Azure Storage queue.
pub struct QueueSteps {
    queue: StorageQueue,
    poison: StorageQueue,
    clock: Arc<dyn Clock>,
    ledger: Arc<Ledger>,
    sent: Notify,
    empty_receives: AtomicU32,
}

impl QueueSteps {
    pub(super) fn new(
        queue: StorageQueue,
        poison: StorageQueue,
        clock: Arc<dyn Clock>,
        ledger: Arc<Ledger>,
    ) -> Self {
        Self {
            queue,
            poison,
            clock,
            ledger,
            sent: Notify::new(),
            empty_receives: AtomicU32::new(0),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        self.queue.name()
    }

    /// The poison queue's name (`{queue}-poison`).
    pub fn poison_name(&self) -> &str {
        self.poison.name()
    }

    /// The delay before `at`, at most the queue's 7 days (the rest is chained; see the module).
    pub fn delay_until(&self, at: Millis) -> Duration {
        let ms = (at - self.clock.now()).max(0) as u64;
        Duration::from_millis(ms).min(MAX_VISIBILITY)
    }

    /// Sends `step`, visible after `delay` (the caller's scope counts the request).
    async fn put_after(&self, step: &Scheduled, delay: Duration) -> StoreResult<Receipt> {
        let text = step.message.to_text();
        let sent = self
            .queue
            .send(&text, delay, TimeToLive::Never)
            .await
            .map_err(|e| match e {
                StorageError::MessageTooLarge { .. } => StoreError::Backend {
                    operation: "send a step (a step message must stay small; send large payloads by reference)",
                    transient: false,
                    source: Box::new(e),
                },
                e => backend("send a step", &step.message.id)(e),
            })?;
        if delay.is_zero() {
            self.sent.notify_waiters();
        }
        Ok(Receipt {
            id: sent.id,
            pop_receipt: sent.pop_receipt,
        })
    }

    /// Sends `step` for its due time (the caller's scope counts the request).
    pub(super) async fn put(&self, step: &Scheduled) -> StoreResult<()> {
        self.put_after(step, self.delay_until(step.at))
            .await
            .map(|_| ())
    }

    /// Sends the step a save is about to commit, before the save: hidden for at least
    /// [`HELD_FOR`], so that it cannot be handled before the checkpoint it is for exists, and so
    /// that it still arrives (at most that late) if this process dies before [`Self::confirm`].
    pub(super) async fn prepare(&self, step: &Scheduled) -> StoreResult<Prepared> {
        let due_in = self.delay_until(step.at);
        let receipt = self.put_after(step, due_in.max(HELD_FOR)).await?;
        Ok(Prepared {
            step: step.clone(),
            receipt,
            held: due_in < HELD_FOR,
        })
    }

    /// The save committed: the prepared step becomes visible at its due time. If the message was
    /// already handled (the save took longer than [`HELD_FOR`], so it came too early and was
    /// dropped as stale), it is sent again. A failure here leaves it to arrive when its hold ends.
    pub(super) async fn confirm(&self, prepared: Prepared) {
        if !prepared.held {
            return;
        }
        let delay = self.delay_until(prepared.step.at);
        let result = match self.queue.update(&prepared.receipt, delay, None).await {
            Ok(_) => {
                if delay.is_zero() {
                    self.sent.notify_waiters();
                }
                Ok(())
            }
            Err(StorageError::MessageGone { .. }) => self.put(&prepared.step).await,
            Err(e) => Err(backend("release a step", &prepared.step.message.id)(e)),
        };
        if let Err(e) = result {
            tracing::warn!(deployment.id = %prepared.step.message.id, error = %e,
                "releasing a prepared step failed; it arrives when its hold ends");
        }
    }

    /// The save lost (a conflict): the prepared step is deleted. Left behind, it would arrive later
    /// as a stale step and be dropped, so a failure here is only logged.
    pub(super) async fn withdraw(&self, prepared: Prepared) {
        match self.queue.delete(&prepared.receipt).await {
            Ok(()) | Err(StorageError::MessageGone { .. }) => {}
            Err(e) => tracing::debug!(deployment.id = %prepared.step.message.id, error = %e,
                "withdrawing a prepared step failed; it will be dropped as stale"),
        }
    }

    /// Moves a message delivered too often to the poison queue.
    async fn poison(&self, text: &str, receipt: &Receipt, dequeue_count: u32) -> StoreResult<()> {
        tracing::warn!(step.body = %text.chars().take(200).collect::<String>(), step.dequeue_count = dequeue_count, queue = self.poison.name(), "step message poisoned");
        self.poison
            .send(text, Duration::ZERO, TimeToLive::Never)
            .await
            .map_err(backend("poison a step", text))?;
        match self.queue.delete(receipt).await {
            Ok(()) | Err(StorageError::MessageGone { .. }) => Ok(()),
            Err(e) => Err(backend("poison a step", text)(e)),
        }
    }
}

/// Receives up to `max` messages of `queue` (within what one receive returns), hidden for
/// `lease_ms` (from 1 s to the queue's longest visibility timeout).
async fn receive(
    queue: &StorageQueue,
    max: usize,
    lease_ms: Millis,
    operation: &'static str,
) -> StoreResult<Vec<crate::azure_storage::queue::ReceivedMessage>> {
    let max = max.clamp(1, usize::from(crate::azure_storage::queue::MAX_BATCH)) as u8;
    let lease = Duration::from_millis(lease_ms.max(1_000) as u64).min(MAX_VISIBILITY);
    queue
        .receive(max, lease)
        .await
        .map_err(backend(operation, queue.name()))
}

fn receipt_text(receipt: &Receipt) -> String {
    format!("{}\n{}", receipt.id, receipt.pop_receipt)
}

fn parse_receipt(text: &str) -> Option<Receipt> {
    let (id, pop_receipt) = text.split_once('\n')?;
    Some(Receipt {
        id: id.to_owned(),
        pop_receipt: pop_receipt.to_owned(),
    })
}

#[async_trait]
impl Steps for QueueSteps {
    async fn send(&self, step: &Scheduled) -> Result<(), StoreError> {
        self.ledger.during(&step.message.id, self.put(step)).await
    }

    async fn receive(&self, max: usize, lease_ms: Millis) -> Result<Vec<Delivery>, StoreError> {
        let received = receive(&self.queue, max, lease_ms, "receive steps").await?;
        if received.is_empty() {
            self.empty_receives.fetch_add(1, Ordering::Relaxed);
        } else {
            self.empty_receives.store(0, Ordering::Relaxed);
        }
        let mut counted = std::collections::HashSet::new();
        let mut deliveries = Vec::new();
        for m in received {
            let message = StepMessage::from_text(&m.text);
            if let Some(id) = message.as_ref().map(|s| s.id.clone())
                && counted.insert(id.clone())
            {
                self.ledger.record(&id, Kind::MessageGet);
            }
            if m.dequeue_count > MAX_DEQUEUE {
                let owner = message.as_ref().map_or("", |s| s.id.as_str());
                let moved = self
                    .ledger
                    .during(owner, self.poison(&m.text, &m.receipt, m.dequeue_count))
                    .await;
                match moved {
                    Ok(()) => crate::metrics::poisoned(1),
                    Err(e) => {
                        tracing::warn!(error = %e, "moving a step message to the poison queue failed; it will come back")
                    }
                }
                continue;
            }
            deliveries.push(Delivery {
                message,
                text: m.text,
                dequeue_count: m.dequeue_count,
                receipt: receipt_text(&m.receipt),
            });
        }
        Ok(deliveries)
    }

    async fn poisoned_steps(
        &self,
        max: usize,
        lease_ms: Millis,
    ) -> Result<Vec<Delivery>, StoreError> {
        let received = receive(&self.poison, max, lease_ms, "receive poisoned steps").await?;
        Ok(received
            .into_iter()
            .map(|m| Delivery {
                message: StepMessage::from_text(&m.text),
                text: m.text,
                dequeue_count: m.dequeue_count,
                receipt: receipt_text(&m.receipt),
            })
            .collect())
    }

    async fn drop_poisoned(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let receipt = parse_receipt(&delivery.receipt).ok_or_else(|| StoreError::Backend {
            operation: "drop a poisoned step",
            transient: false,
            source: format!("not a receipt: {:?}", delivery.receipt).into(),
        })?;
        match self.poison.delete(&receipt).await {
            Ok(()) | Err(StorageError::MessageGone { .. }) => Ok(()),
            Err(e) => Err(backend("drop a poisoned step", self.poison.name())(e)),
        }
    }

    async fn complete(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let receipt = parse_receipt(&delivery.receipt).ok_or_else(|| StoreError::Backend {
            operation: "complete a step",
            transient: false,
            source: "the delivery's receipt is not one this queue gave out".into(),
        })?;
        let owner = delivery.message.as_ref().map_or("", |m| m.id.as_str());
        let deleted = self.ledger.during(owner, self.queue.delete(&receipt)).await;
        match deleted {
            Ok(()) => Ok(()),
            Err(StorageError::MessageGone { .. }) => {
                // The lease ran out and another worker holds the message, or it is gone already:
                // that delivery finishes (or has finished) the step.
                tracing::debug!(step.message_id = %receipt.id, "step message already re-delivered or deleted");
                Ok(())
            }
            Err(e) => Err(backend("complete a step", owner)(e)),
        }
    }

    async fn depth(&self) -> Result<Option<QueueDepth>, StoreError> {
        let messages = self
            .queue
            .approximate_count()
            .await
            .map_err(backend("count steps", ""))?;
        Ok(Some(QueueDepth {
            messages,
            oldest_visible_ms: None,
        }))
    }

    async fn wait(&self, max_ms: Millis) {
        let notified = self.sent.notified();
        let empties = self.empty_receives.load(Ordering::Relaxed);
        if empties == 0 {
            return;
        }
        let backoff = FIRST_IDLE_POLL
            .saturating_mul(1 << (empties - 1).min(10))
            .min(MAX_IDLE_POLL)
            .min(Duration::from_millis(max_ms.max(1) as u64));
        let _ = tokio::time::timeout(backoff, notified).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip() {
        let r = Receipt {
            id: "5f0c-11".into(),
            pop_receipt: "AgAAAAMAAAAAAAAA1y2g3hOV2wE=".into(),
        };
        assert_eq!(parse_receipt(&receipt_text(&r)), Some(r));
        assert_eq!(parse_receipt("no separator"), None);
    }
}
