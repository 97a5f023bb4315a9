//! Typed queue operations on one queue: send with delay, receive, delete, update. One request each,
//! so a workflow step costs exactly put + get + delete.
//!
//! # Message encoding
//! Berth writes the base64 of the UTF-8 text and decodes base64 on receive. That is what the
//! Functions queue trigger expects by default (`messageEncoding: base64` in `host.json`): the
//! trigger decodes the base64 and hands the handler the original text, so a step sent by Berth
//! reaches Berth's `steps` function unchanged. (The SDK sends text as given; without the encoding
//! the trigger would fail to decode it and poison the message.) Base64 also keeps any text XML-safe.
//!
//! # Delivery
//! At least once, as the Functions trigger delivers: a message comes back when its receiver does
//! not delete it in time, and a send the SDK retries after a lost answer can enqueue it twice. Steps
//! carry the checkpoint version they were written for so the engine drops stale duplicates.
//!
//! # Limits
//! A message may hold 64 KiB of (base64) text, so about 48 KiB of payload; larger payloads must go
//! to a blob and be sent by reference ([`StorageError::MessageTooLarge`] says so before sending).
//! A delay or visibility timeout is at most 7 days; longer durable timers chain messages.

use super::error::{DecodeError, StorageError, http_status};
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, headers::HeaderName};
use azure_storage_queue::models::{
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions,
    QueueClientUpdateMessageOptions, QueueMessage, StorageErrorCode,
};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use base64::Engine as _;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

/// The largest message text the service accepts (after base64), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The longest delay or visibility timeout the service accepts.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most messages one receive returns.
pub const MAX_BATCH: u8 = 32;

/// How long a message lives in the queue before the service drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeToLive {
    /// Never expires (`messagettl=-1`): steps must not vanish.
    Never,
    /// Expires after this long (whole seconds, at least 1).
    For(Duration),
}

/// A message as just sent.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// The message id.
    pub id: String,
    /// The pop receipt of the new message.
    pub pop_receipt: String,
    /// When it was enqueued.
    pub insertion_time: Option<OffsetDateTime>,
    /// When it becomes visible.
    pub next_visible: Option<OffsetDateTime>,
}

/// What identifies one delivery of a message, to delete or update it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message id.
    pub id: String,
    /// The pop receipt of this delivery.
    pub pop_receipt: String,
}

/// A received message, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The id and pop receipt of this delivery.
    pub receipt: Receipt,
    /// How many times it has been received, this time included.
    pub dequeue_count: u32,
    /// When it was first enqueued.
    pub insertion_time: Option<OffsetDateTime>,
    /// When it becomes visible again unless deleted or updated.
    pub next_visible: Option<OffsetDateTime>,
    /// The text Berth sent (base64-decoded).
    pub text: String,
}

/// The result of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The new receipt (the old pop receipt is no longer valid).
    pub receipt: Receipt,
    /// When the message becomes visible.
    pub next_visible: Option<OffsetDateTime>,
}

/// One queue of the account.
pub struct StorageQueue {
    name: String,
    client: QueueClient,
}

impl StorageQueue {
    pub(crate) fn new(
        name: &str,
        url: Url,
        credential: Option<Arc<dyn TokenCredential>>,
        options: ClientOptions,
    ) -> Result<Self, StorageError> {
        let client = QueueClient::new(
            url,
            credential,
            Some(QueueClientOptions {
                client_options: options,
                ..Default::default()
            }),
        )
        .map_err(|source| StorageError::Client {
            service: "queue",
            name: name.into(),
            source: source.into(),
        })?;
        Ok(Self {
            name: name.into(),
            client,
        })
    }

    /// The queue name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the queue; `Ok(false)` if it already existed (the service answers 204).
    pub async fn create_if_missing(&self) -> Result<bool, StorageError> {
        match self.client.create(None).await {
            Ok(rsp) => Ok(u16::from(rsp.status()) == 201),
            Err(e) if http_status(&e) == Some(409) => Ok(false),
            Err(source) => Err(StorageError::CreateQueue {
                queue: self.name.clone(),
                source: source.into(),
            }),
        }
    }

    /// The queue's approximate message count (`x-ms-approximate-messages-count` of Get Queue
    /// Metadata): never lower than the real count, visible and invisible messages alike.
    pub async fn approximate_count(&self) -> Result<u64, StorageError> {
        use azure_storage_queue::models::QueueClientGetPropertiesResultHeaders as _;
        let failed = |source: azure_core::Error| StorageError::QueueProperties {
            queue: self.name.clone(),
            source: source.into(),
        };
        let response = self.client.get_properties(None).await.map_err(failed)?;
        let count = response.approximate_messages_count().map_err(failed)?;
        let count = count.ok_or(StorageError::MissingInResponse {
            operation: "get queue metadata",
            field: "x-ms-approximate-messages-count",
        })?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Sends `text`, invisible for `delay` (at most 7 days; rounded up to whole seconds).
    pub async fn send(
        &self,
        text: &str,
        delay: Duration,
        ttl: TimeToLive,
    ) -> Result<SentMessage, StorageError> {
        self.send_encoded(encode(text)?, delay, ttl).await
    }

    /// Sends `encoded` as the message text as it is: what [`Self::send`] sends after encoding,
    /// or what another producer might (tests send text that is not base64 this way).
    pub async fn send_encoded(
        &self,
        encoded: String,
        delay: Duration,
        ttl: TimeToLive,
    ) -> Result<SentMessage, StorageError> {
        let visibility = seconds("delay", delay, 0)?;
        let ttl_seconds = match ttl {
            TimeToLive::Never => -1,
            TimeToLive::For(d) => {
                let s = seconds_unbounded("time_to_live", d, 1)?;
                if s <= visibility {
                    return Err(StorageError::InvalidArgument {
                        field: "time_to_live",
                        reason: format!(
                            "{s} s does not outlast the delay of {visibility} s; the message would \
                             expire before it is visible"
                        ),
                    });
                }
                s
            }
        };
        let options = QueueClientSendMessageOptions {
            visibility_timeout: Some(visibility),
            message_time_to_live: Some(ttl_seconds),
            ..Default::default()
        };
        let failed = |source: azure_core::Error| StorageError::SendMessage {
            queue: self.name.clone(),
            source: source.into(),
        };
        let body = QueueMessage {
            message_text: Some(encoded),
        }
        .try_into()
        .map_err(failed)?;
        let sent = self
            .client
            .send_message(body, Some(options))
            .await
            .map_err(failed)?
            .into_model()
            .map_err(failed)?;
        let item = sent
            .items
            .and_then(|items| items.into_iter().next())
            .ok_or(StorageError::MissingInResponse {
                operation: "Put Message",
                field: "QueueMessage",
            })?;
        Ok(SentMessage {
            id: item.message_id.ok_or(StorageError::MissingInResponse {
                operation: "Put Message",
                field: "MessageId",
            })?,
            pop_receipt: item.pop_receipt.unwrap_or_default(),
            insertion_time: item.insertion_time,
            next_visible: item.time_next_visible,
        })
    }

    /// Receives up to `max` (1–32) visible messages and hides them for `visibility` (1 s – 7
    /// days). An empty queue gives an empty vector. A message that is not base64 of UTF-8
    /// (something else wrote it) comes as its raw text, for the receiver to refuse by its
    /// content: failing the whole receive would hold every message received with it, for ever.
    pub async fn receive(
        &self,
        max: u8,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, StorageError> {
        let each = self.receive_each(max, visibility).await?;
        Ok(each
            .into_iter()
            .map(|m| {
                m.unwrap_or_else(|(raw, e)| {
                    tracing::warn!(message.id = %raw.receipt.id, error = %e, "queue message not base64 of UTF-8");
                    raw
                })
            })
            .collect())
    }

    /// [`Self::receive`], each message's text decoded on its own: one that is not base64 of UTF-8
    /// (a producer other than Berth's clients and Event Grid) comes as an `Err` with the message
    /// as received (its raw text), so that the receiver can drop it and still handle the others.
    pub async fn receive_each(
        &self,
        max: u8,
        visibility: Duration,
    ) -> Result<Vec<Result<ReceivedMessage, (ReceivedMessage, StorageError)>>, StorageError> {
        if !(1..=MAX_BATCH).contains(&max) {
            return Err(StorageError::InvalidArgument {
                field: "max",
                reason: format!("a receive returns 1 to {MAX_BATCH} messages, not {max}"),
            });
        }
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(i32::from(max)),
            visibility_timeout: Some(seconds("visibility", visibility, 1)?),
            ..Default::default()
        };
        let failed = |source: azure_core::Error| StorageError::ReceiveMessages {
            queue: self.name.clone(),
            source: source.into(),
        };
        let received = self
            .client
            .receive_messages(Some(options))
            .await
            .map_err(failed)?
            .into_model()
            .map_err(failed)?;
        let mut messages = Vec::new();
        for m in received.items.unwrap_or_default() {
            let missing = |field| StorageError::MissingInResponse {
                operation: "Get Messages",
                field,
            };
            let receipt = Receipt {
                id: m.message_id.ok_or(missing("MessageId"))?,
                pop_receipt: m.pop_receipt.ok_or(missing("PopReceipt"))?,
            };
            let raw = m.message_text.as_deref().unwrap_or("");
            let decoded = decode(&receipt.id, raw);
            let message = ReceivedMessage {
                receipt,
                dequeue_count: m
                    .dequeue_count
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(1),
                insertion_time: m.insertion_time,
                next_visible: m.time_next_visible,
                text: String::new(),
            };
            messages.push(match decoded {
                Ok(text) => Ok(ReceivedMessage { text, ..message }),
                Err(e) => Err((
                    ReceivedMessage {
                        text: raw.to_owned(),
                        ..message
                    },
                    e,
                )),
            });
        }
        Ok(messages)
    }

    /// Deletes the delivered message. [`StorageError::MessageGone`] when the receipt is stale: the
    /// message became visible again and another receiver holds it, or it is already deleted.
    /// (Either way the step's work may run again elsewhere; steps are idempotent for that reason.)
    pub async fn delete(&self, receipt: &Receipt) -> Result<(), StorageError> {
        match self
            .client
            .delete_message(&receipt.id, &receipt.pop_receipt, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if receipt_is_stale(&e) => Err(StorageError::MessageGone {
                id: receipt.id.clone(),
                status: http_status(&e).unwrap_or(404),
            }),
            Err(source) => Err(StorageError::DeleteMessage {
                queue: self.name.clone(),
                id: receipt.id.clone(),
                source: source.into(),
            }),
        }
    }

    /// Hides the delivered message for `visibility` from now (0 – 7 days; 0 makes it visible at
    /// once), replacing its text when `text` is given. Returns the new receipt.
    pub async fn update(
        &self,
        receipt: &Receipt,
        visibility: Duration,
        text: Option<&str>,
    ) -> Result<Updated, StorageError> {
        let failed = |source: azure_core::Error| StorageError::UpdateMessage {
            queue: self.name.clone(),
            id: receipt.id.clone(),
            source: source.into(),
        };
        let visibility = seconds("visibility", visibility, 0)?;
        let mut options = QueueClientUpdateMessageOptions::default();
        if let Some(text) = text {
            let body = QueueMessage {
                message_text: Some(encode(text)?),
            };
            options.queue_message = Some(body.try_into().map_err(failed)?);
        }
        let rsp = match self
            .client
            .update_message(&receipt.id, &receipt.pop_receipt, visibility, Some(options))
            .await
        {
            Ok(rsp) => rsp,
            Err(e) if receipt_is_stale(&e) => {
                return Err(StorageError::MessageGone {
                    id: receipt.id.clone(),
                    status: http_status(&e).unwrap_or(404),
                });
            }
            Err(e) => return Err(failed(e)),
        };
        let headers = rsp.headers();
        let pop_receipt = headers
            .get_optional_str(&HeaderName::from_static("x-ms-popreceipt"))
            .ok_or(StorageError::MissingInResponse {
                operation: "Update Message",
                field: "x-ms-popreceipt",
            })?
            .to_owned();
        let next_visible = headers
            .get_optional_str(&HeaderName::from_static("x-ms-time-next-visible"))
            .and_then(|v| azure_core::time::parse_rfc7231(v).ok());
        Ok(Updated {
            receipt: Receipt {
                id: receipt.id.clone(),
                pop_receipt,
            },
            next_visible,
        })
    }
}

impl fmt::Debug for StorageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageQueue")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Whether the service says this delivery's receipt no longer holds: the message is gone (404
/// `MessageNotFound`) or was received again since (400 `PopReceiptMismatch`, read from the typed
/// error code; other 400s are bad requests).
fn receipt_is_stale(error: &azure_core::Error) -> bool {
    match error.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => match u16::from(*status) {
            404 => true,
            400 => error_code
                .as_deref()
                .and_then(|code| code.parse::<StorageErrorCode>().ok())
                .is_some_and(|code| code == StorageErrorCode::PopReceiptMismatch),
            _ => false,
        },
        _ => false,
    }
}

/// The message text Berth puts on the queue for `text`: base64 of its UTF-8 bytes, checked
/// against [`MAX_MESSAGE_BYTES`].
pub fn encode(text: &str) -> Result<String, StorageError> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    if encoded.len() > MAX_MESSAGE_BYTES {
        return Err(StorageError::MessageTooLarge {
            encoded: encoded.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(encoded)
}

/// The text of a received message (the inverse of [`encode`]); `id` names it in errors.
pub fn decode(id: &str, message_text: &str) -> Result<String, StorageError> {
    let failed = |source: DecodeError| StorageError::DecodeMessage {
        id: id.into(),
        source,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(message_text.trim())
        .map_err(|e| failed(DecodeError::Base64(e)))?;
    String::from_utf8(bytes).map_err(|e| failed(DecodeError::Utf8(e)))
}

/// Whole seconds (rounded up) between `min` and 7 days.
fn seconds(field: &'static str, d: Duration, min: i32) -> Result<i32, StorageError> {
    if d > MAX_VISIBILITY {
        return Err(StorageError::InvalidArgument {
            field,
            reason: format!(
                "{} s exceeds the queue's maximum of 7 days ({} s); chain messages for longer delays",
                d.as_secs(),
                MAX_VISIBILITY.as_secs()
            ),
        });
    }
    seconds_unbounded(field, d, min)
}

fn seconds_unbounded(field: &'static str, d: Duration, min: i32) -> Result<i32, StorageError> {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let s = i32::try_from(whole).map_err(|_| StorageError::InvalidArgument {
        field,
        reason: format!("{} s is out of range", d.as_secs()),
    })?;
    if s < min {
        return Err(StorageError::InvalidArgument {
            field,
            reason: format!("must be at least {min} s"),
        });
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_enforces_the_limit() {
        for text in ["hello world", "{\"step\":\"create\",\"v\":3}", "ünï ✓", ""] {
            assert_eq!(decode("m", &encode(text).unwrap()).unwrap(), text);
        }
        // 48 KiB of payload is the most that fits in 64 KiB of base64.
        assert!(encode(&"x".repeat(48 * 1024)).is_ok());
        let err = encode(&"x".repeat(48 * 1024 + 1)).unwrap_err();
        assert!(matches!(
            err,
            StorageError::MessageTooLarge {
                encoded: 65540,
                limit: 65536
            }
        ));
        let err = decode("m-1", "not base64!").unwrap_err();
        assert_eq!(
            err.to_string(),
            "queue message `m-1` is not base64 text as Berth writes it"
        );
    }

    #[test]
    fn durations_are_whole_seconds_within_seven_days() {
        assert_eq!(seconds("delay", Duration::from_millis(1500), 0).unwrap(), 2);
        assert_eq!(seconds("delay", Duration::ZERO, 0).unwrap(), 0);
        assert_eq!(seconds("delay", MAX_VISIBILITY, 0).unwrap(), 604_800);
        let err = seconds("delay", MAX_VISIBILITY + Duration::from_secs(1), 0).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid delay: 604801 s exceeds"),
            "{err}"
        );
        assert!(seconds("visibility", Duration::ZERO, 1).is_err());
    }
}
