//! Queue delivery as the queue trigger does it: poll the queue on Azure Storage (Azurite in tests),
//! undo `messageEncoding` (base64), invoke the queue function with `DequeueCount` and the message
//! metadata, then delete the message on success, leave it hidden for `visibilityTimeout` on
//! failure, and move it to `<queue>-poison` once `DequeueCount >= maxDequeueCount` (or on receipt
//! when it is already past that).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use berth::azure_storage::{
    ReceivedMessage, StorageAccount, StorageConnection, StorageQueue, TimeToLive,
};
use bytes::Bytes;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::Notify;

use super::config::{FunctionDef, TriggerDef, resolve_setting};
use super::payload::{QueueDelivery, Sys, queue_payload};
use super::{FunctionsHost, HostOutcome, Inner, QueueSettings};

/// How long a received message stays hidden while the function runs (the listener's lease).
pub const PROCESSING_LEASE: Duration = Duration::from_secs(600);

/// The shortest polling interval; an empty poll doubles it up to `maxPollingInterval`.
pub const MIN_POLLING_INTERVAL: Duration = Duration::from_millis(100);

/// What the host does with a message after invoking the function with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Success: the message is deleted.
    Delete,
    /// Failure with deliveries left: visible again after `visibilityTimeout`.
    RetryAfter(Duration),
    /// Failure on the last allowed delivery, or received past it: copied to `<queue>-poison`
    /// and deleted.
    Poison,
}

/// The queue processor's rule (`QueueProcessor`): poison once `DequeueCount >= maxDequeueCount`
/// and the invocation failed.
pub fn disposition(settings: &QueueSettings, dequeue_count: u32, succeeded: bool) -> Disposition {
    if succeeded {
        Disposition::Delete
    } else if dequeue_count >= settings.max_dequeue_count {
        Disposition::Poison
    } else {
        Disposition::RetryAfter(settings.visibility_timeout)
    }
}

/// Whether a message is poisoned on receipt without invoking (`DequeueCount > maxDequeueCount`).
pub fn poison_on_receipt(settings: &QueueSettings, dequeue_count: u32) -> bool {
    dequeue_count > settings.max_dequeue_count
}

/// The poison queue's name, or `None` when the queue has none (it already ends in `-poison`, or
/// the longer name would exceed the 63 characters a queue name may have).
pub fn poison_queue_name(queue: &str) -> Option<String> {
    let name = format!("{queue}-poison");
    (!queue.ends_with("-poison") && name.len() <= 63).then_some(name)
}

/// One delivery the listener made.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The message id.
    pub id: String,
    /// The message text.
    pub text: String,
    /// This delivery's dequeue count.
    pub dequeue_count: u32,
    /// What the host made of the handler's answer; `None` when poisoned on receipt.
    pub outcome: Option<HostOutcome>,
    /// What was done with the message.
    pub disposition: Disposition,
    /// When the listener received it.
    pub received_at: std::time::Instant,
}

/// The queue trigger of one function, polling one queue.
pub struct QueueListener {
    inner: Arc<Inner>,
    function: FunctionDef,
    settings: QueueSettings,
    max_polling_interval: Duration,
    queue: StorageQueue,
    poison: Option<StorageQueue>,
    delivered: Mutex<Vec<Delivered>>,
    changed: Notify,
}

impl QueueListener {
    /// A listener for the queue function `function` of `host`, on the storage account named by
    /// the trigger's `connection` setting. Creates the queue and its poison queue if missing.
    pub async fn new(host: &FunctionsHost, function: &str) -> anyhow::Result<Arc<Self>> {
        let inner = host.inner.clone();
        let def = inner.app.require_function(function)?.clone();
        let TriggerDef::Queue {
            queue_name,
            connection,
        } = &def.trigger
        else {
            bail!("{function} is not a queue function");
        };
        let settings = inner.app.queues.clone();
        if settings.message_encoding != "base64" {
            bail!(
                "the simulator decodes messages with Berth's queue client, which speaks \
                 messageEncoding base64 only (host.json says `{}`)",
                settings.message_encoding
            );
        }
        let queue_name = resolve_setting(queue_name, &inner.settings)?.to_ascii_lowercase();
        let lookup = |name: &str| {
            inner
                .settings
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let connection = StorageConnection::from_settings(connection, &lookup)?
            .with_context(|| format!("app setting `{connection}` is not set"))?;
        let account = StorageAccount::new(&connection, None)?;
        let queue = account.queue(&queue_name)?;
        queue.create_if_missing().await?;
        let poison = match poison_queue_name(&queue_name) {
            Some(name) => {
                let poison = account.queue(&name)?;
                poison.create_if_missing().await?;
                Some(poison)
            }
            None => None,
        };
        Ok(Arc::new(Self {
            max_polling_interval: inner.app.queues.max_polling_interval,
            inner,
            function: def,
            settings,
            queue,
            poison,
            delivered: Mutex::new(Vec::new()),
            changed: Notify::new(),
        }))
    }

    /// The queue being polled.
    pub fn queue(&self) -> &StorageQueue {
        &self.queue
    }

    /// The poison queue, if the queue has one.
    pub fn poison_queue(&self) -> Option<&StorageQueue> {
        self.poison.as_ref()
    }

    /// Every delivery so far.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Waits until `done` holds for the deliveries so far, failing after `deadline`.
    pub async fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        done: impl Fn(&[Delivered]) -> bool,
    ) -> anyhow::Result<Vec<Delivered>> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let changed = self.changed.notified();
            let delivered = self.delivered();
            if done(&delivered) {
                return Ok(delivered);
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                bail!(
                    "timed out after {deadline:?} waiting for {what}; deliveries: {delivered:#?}"
                );
            }
        }
    }

    /// One poll: receives up to `batchSize` messages and processes them concurrently. Returns
    /// how many were received.
    pub async fn poll_once(&self) -> anyhow::Result<usize> {
        let batch = u8::try_from(self.settings.batch_size.clamp(1, 32)).unwrap_or(16);
        let messages = self.queue.receive(batch, PROCESSING_LEASE).await?;
        let count = messages.len();
        let results =
            futures::future::join_all(messages.into_iter().map(|m| self.process(m))).await;
        for result in results {
            result?;
        }
        Ok(count)
    }

    /// Polls until the task is aborted, backing off from 100 ms to `maxPollingInterval` while the
    /// queue is empty. Storage errors are retried at the next poll.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut interval = MIN_POLLING_INTERVAL;
            loop {
                match this.poll_once().await {
                    Ok(0) => {
                        tokio::time::sleep(interval).await;
                        interval = (interval * 2).min(this.max_polling_interval);
                    }
                    Ok(_) => interval = MIN_POLLING_INTERVAL,
                    Err(e) => {
                        eprintln!("simulated queue listener: {e:#}");
                        tokio::time::sleep(interval).await;
                    }
                }
            }
        })
    }

    async fn process(&self, message: ReceivedMessage) -> anyhow::Result<()> {
        let received_at = std::time::Instant::now();
        let count = message.dequeue_count;
        let (outcome, disposition) = if poison_on_receipt(&self.settings, count) {
            (None, Disposition::Poison)
        } else {
            let delivery = QueueDelivery {
                text: message.text.clone(),
                dequeue_count: count,
                id: message.receipt.id.clone(),
                pop_receipt: message.receipt.pop_receipt.clone(),
                insertion_time: message
                    .insertion_time
                    .unwrap_or_else(OffsetDateTime::now_utc),
                // Berth's messages never expire (TTL -1), which the service reports as 9999-12-31.
                expiration_time: datetime!(9999-12-31 23:59:59 UTC),
                next_visible_time: message.next_visible.unwrap_or_else(OffsetDateTime::now_utc),
            };
            let payload = queue_payload(&self.function, &delivery, &Sys::now(&self.function.name));
            let (_, _, outcome) = self
                .inner
                .invoke_raw(&self.function.name, Bytes::from(payload.to_string()))
                .await?;
            let succeeded = matches!(outcome, HostOutcome::Succeeded(_));
            (Some(outcome), disposition(&self.settings, count, succeeded))
        };
        match disposition {
            Disposition::Delete => self.queue.delete(&message.receipt).await?,
            Disposition::RetryAfter(after) => {
                self.queue.update(&message.receipt, after, None).await?;
            }
            Disposition::Poison => match &self.poison {
                Some(poison) => {
                    poison
                        .send(&message.text, Duration::ZERO, TimeToLive::Never)
                        .await?;
                    self.queue.delete(&message.receipt).await?;
                }
                // No poison queue: the message is left invisible, as the host does.
                None => {
                    self.queue
                        .update(&message.receipt, PROCESSING_LEASE, None)
                        .await?;
                }
            },
        }
        if let Ok(mut delivered) = self.delivered.lock() {
            delivered.push(Delivered {
                id: message.receipt.id,
                text: message.text,
                dequeue_count: count,
                outcome,
                disposition,
                received_at,
            });
        }
        self.changed.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings() -> QueueSettings {
        QueueSettings {
            max_dequeue_count: 3,
            visibility_timeout: Duration::from_secs(2),
            batch_size: 8,
            message_encoding: "base64".into(),
            max_polling_interval: Duration::from_secs(2),
        }
    }

    #[test]
    fn retries_then_poisons() {
        let s = settings();
        assert_eq!(disposition(&s, 1, true), Disposition::Delete);
        assert_eq!(disposition(&s, 3, true), Disposition::Delete);
        assert_eq!(
            disposition(&s, 1, false),
            Disposition::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            disposition(&s, 2, false),
            Disposition::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(disposition(&s, 3, false), Disposition::Poison);
        assert!(!poison_on_receipt(&s, 3));
        assert!(poison_on_receipt(&s, 4));
        assert_eq!(
            poison_queue_name("berth-steps").as_deref(),
            Some("berth-steps-poison")
        );
        assert_eq!(poison_queue_name("x-poison"), None);
        assert_eq!(poison_queue_name(&"q".repeat(60)), None);
    }
}
