//! The submit queue (`BERTH_SUBMIT_QUEUE`, default `berth-submit`): deployments started by
//! messages instead of HTTP calls. The `submit` function consumes it in Functions mode; `dev`
//! and `serve` on Azure Storage consume it with [`run`] (on SQLite there is no queue another
//! service could write to: `POST /api/deployments` takes the same bodies).
//!
//! A message is one of:
//! - a spec, as `POST /api/deployments` takes it (JSON);
//! - a template invocation, `{"template": …, "version"?: …, "parameters": {…}, "id"?: …}`;
//! - an Event Grid event, in the `EventGridEvent` schema (`eventType`, `eventTime`, `topic`, …)
//!   or CloudEvents 1.0 (`specversion`, `type`, `source`, …), as an Event Grid subscription
//!   delivers it to a storage queue. `BERTH_SUBMIT_EVENTS` maps its type to a template
//!   ([`EventRoutes`]), whose parameters declare `from` the event field that fills them
//!   (`subject`, `data.url`, …; see [`crate::spec::template`]).
//!
//! A spec with `notify` is signed with the operator's key, `BERTH_NOTIFY_KEY` (a `whsec_` key
//! the receivers are given), since a message has no answer to carry a new key; without that
//! setting such a message is dropped, saying so.
//!
//! # Guarantees
//! - **Idempotent per message.** A deployment's id is the message's `id` when it gives one, else
//!   derived from the event's `source` and `id` (events) or the queue message's id (specs and
//!   invocations): a message delivered twice, or an event Event Grid delivers twice, starts
//!   exactly one deployment (the second submit finds the first, as a repeated `POST` does).
//!   (The Functions host copies a JSON message's top-level properties over its metadata, so a
//!   message with a top-level `id` arrives with that as its queue id: an event's or a spec's own
//!   id, which is then the one used; only messages without one rely on the queue's.)
//! - **No poison loops.** A message that can never be valid (not JSON, not one of the three, an
//!   event of a type with no template, a bad parameter or spec) is dropped: logged with its
//!   reason (never its content) and counted (`berth_submit_dropped`), and the queue message is
//!   deleted. Only failures that may pass (storage, a missing public URL) are retried, and those
//!   go to `{queue}-poison` after five deliveries, as steps do.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::azure_storage::{ReceivedMessage, StorageError, StorageQueue, TimeToLive};
use crate::driver::templates::TemplateError;
use crate::driver::{Driver, DriverError};
use crate::spec::parse::derived_id;
use crate::spec::template::Invocation;
use crate::spec::{Spec, document};

/// After this many deliveries a message that keeps failing goes to the poison queue.
pub const MAX_DEQUEUE: u32 = 5;
/// How long a received message stays hidden while it is handled.
const LEASE: Duration = Duration::from_secs(60);

/// Which template an event type starts: `BERTH_SUBMIT_EVENTS`, comma-separated `type=template`
/// pairs (`Microsoft.Storage.BlobCreated=transcode`); `*=template` for any other type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventRoutes(Vec<(String, String)>);

impl EventRoutes {
    /// Reads the setting; an error names the pair that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut routes = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((kind, template)) = pair.split_once('=') else {
                return Err(format!("'{pair}' is not type=template"));
            };
            let (kind, template) = (kind.trim(), template.trim());
            crate::spec::validate::template_name(template).map_err(|e| format!("{pair}: {e}"))?;
            if kind.is_empty() || kind.len() > 256 {
                return Err(format!("'{pair}': an event type is 1 to 256 characters"));
            }
            routes.push((kind.to_owned(), template.to_owned()));
        }
        Ok(EventRoutes(routes))
    }

    /// The template for events of type `kind`: its own pair, else `*`'s.
    pub fn template(&self, kind: &str) -> Option<&str> {
        let exact = self.0.iter().find(|(k, _)| k == kind);
        let any = || self.0.iter().find(|(k, _)| k == "*");
        exact.or_else(any).map(|(_, t)| t.as_str())
    }
}

/// Why a message did not start a deployment.
#[derive(Debug, thiserror::Error)]
pub enum SubmitFailure {
    /// It never will: drop it (logged and counted).
    #[error("dropped: {0}")]
    Dropped(String),
    /// It may later: deliver it again.
    #[error("{0}")]
    Transient(String),
}

/// An event as both schemas say it.
#[derive(Debug, Default, PartialEq)]
pub struct EventView {
    pub id: String,
    pub kind: String,
    pub source: String,
    pub subject: Option<String>,
    pub time: Option<String>,
    pub data: Value,
}

impl EventView {
    /// The event in `doc`, when it is one (CloudEvents 1.0 or `EventGridEvent`).
    fn read(doc: &Map<String, Value>) -> Option<Result<EventView, String>> {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let (kind, source, time) = if doc.contains_key("specversion") {
            if text("specversion").as_deref() != Some("1.0") {
                return Some(Err("a CloudEvent of a specversion other than 1.0".into()));
            }
            (text("type"), text("source"), text("time"))
        } else if doc.contains_key("eventType") && doc.contains_key("eventTime") {
            (text("eventType"), text("topic"), text("eventTime"))
        } else {
            return None;
        };
        let (Some(id), Some(kind)) = (text("id"), kind) else {
            return Some(Err("an event without a string id and type".into()));
        };
        Some(Ok(EventView {
            id,
            kind,
            source: source.unwrap_or_default(),
            subject: text("subject"),
            time,
            data: doc.get("data").cloned().unwrap_or(Value::Null),
        }))
    }

    /// The field `from` names (`id`, `type`, `source`, `subject`, `time`, `data.a.b`).
    pub fn field(&self, from: &str) -> Option<Value> {
        if let Some(path) = from.strip_prefix("data.") {
            return path
                .split('.')
                .try_fold(&self.data, |v, key| v.get(key))
                .filter(|v| !v.is_null())
                .cloned();
        }
        let text = match from {
            "id" => Some(&self.id),
            "type" => Some(&self.kind),
            "source" => Some(&self.source),
            "subject" => self.subject.as_ref(),
            "time" => self.time.as_ref(),
            _ => None,
        };
        text.map(|t| Value::String(t.clone()))
    }
}

/// What a message asks for.
enum Request {
    Spec(Value),
    Invocation(Invocation),
    Event(EventView),
}

fn read(text: &str) -> Result<Request, SubmitFailure> {
    let drop = |reason: String| SubmitFailure::Dropped(reason);
    let document = document::from_json(text.as_bytes())
        .map_err(|e| drop(format!("not a JSON message: {e}")))?;
    let Value::Object(doc) = &document else {
        return Err(drop("not a JSON object".into()));
    };
    if let Some(event) = EventView::read(doc) {
        return event.map(Request::Event).map_err(drop);
    }
    if Invocation::is_invocation(&document) {
        return Invocation::read(document)
            .map(Request::Invocation)
            .map_err(|e| drop(e.to_string()));
    }
    if doc.contains_key("groups") {
        return Ok(Request::Spec(document));
    }
    Err(drop(
        "neither a spec (groups), a template invocation (template) nor an event".into(),
    ))
}

/// Starts the deployments the submit queue asks for.
#[derive(Clone)]
pub struct Submitter {
    pub driver: Driver,
    pub events: EventRoutes,
    /// The base URL handed to the deployments' containers (`Config::submit_base`).
    pub base: Option<String>,
    /// The key notifications of its deployments are signed with (`BERTH_NOTIFY_KEY`): a queue
    /// message has no one to tell a new key to.
    pub notify_key: Option<String>,
}

impl Submitter {
    /// Handles one message (`message_id`: the queue's id for it): `Ok` with a log line once its
    /// deployment exists (started now or before).
    pub async fn handle(&self, text: &str, message_id: &str) -> Result<String, SubmitFailure> {
        let result = self.start(text, message_id).await;
        if let Err(SubmitFailure::Dropped(reason)) = &result {
            crate::metrics::submit_dropped();
            tracing::warn!(queue.message_id = %message_id, %reason, "submit message dropped");
        }
        result
    }

    async fn start(&self, text: &str, message_id: &str) -> Result<String, SubmitFailure> {
        let per_message = || derived_id("d", &format!("message:{message_id}"));
        let spec = match read(text)? {
            Request::Spec(doc) => {
                crate::spec::parse::from_value(doc, per_message).map_err(refused)?
            }
            Request::Invocation(invocation) => {
                let id = derived_id(&invocation.template, &format!("message:{message_id}"));
                self.expand(invocation, id).await?
            }
            Request::Event(event) => {
                let invocation = self.invocation(&event).await?;
                let id = derived_id(
                    &invocation.template,
                    &format!("event:{}#{}", event.source, event.id),
                );
                self.expand(invocation, id).await?
            }
        };
        self.submit(spec).await
    }

    /// The invocation an event maps to: its type's template, parameters `from` its fields.
    async fn invocation(&self, event: &EventView) -> Result<Invocation, SubmitFailure> {
        let template = self.events.template(&event.kind).ok_or_else(|| {
            SubmitFailure::Dropped(format!(
                "no template for events of type '{}' (BERTH_SUBMIT_EVENTS)",
                event.kind
            ))
        })?;
        let found = self
            .driver
            .template(template, None)
            .await
            .map_err(template_failure)?;
        let parameters = found
            .parameters
            .iter()
            .filter_map(|(name, p)| Some((name.clone(), event.field(p.from.as_deref()?)?)))
            .collect();
        Ok(Invocation {
            id: None,
            template: template.to_owned(),
            version: Some(found.version),
            parameters,
        })
    }

    async fn expand(&self, invocation: Invocation, id: String) -> Result<Spec, SubmitFailure> {
        self.driver
            .expand(invocation, || id)
            .await
            .map_err(template_failure)
    }

    async fn submit(&self, spec: Spec) -> Result<String, SubmitFailure> {
        self.driver.check(&spec).map_err(refused)?;
        let base = self.base.clone().ok_or_else(|| {
            SubmitFailure::Transient(
                "BERTH_PUBLIC_URL is not set (nor WEBSITE_HOSTNAME): a deployment from the \
                 submit queue needs it for its callback URLs"
                    .into(),
            )
        })?;
        if !spec.notify.is_empty() && self.notify_key.is_none() {
            return Err(SubmitFailure::Dropped(
                "notify: a deployment from the submit queue is signed with BERTH_NOTIFY_KEY, which is not set".into(),
            ));
        }
        let id = spec.id.clone();
        match self
            .driver
            .submit_keyed(spec, base, self.notify_key.as_deref())
            .await
        {
            Ok(s) if s.existed => Ok(format!(
                "deployment {id} exists already (a repeated message)"
            )),
            Ok(_) => Ok(format!("deployment {id} started")),
            Err(DriverError::SpecConflict(_)) => Err(SubmitFailure::Dropped(format!(
                "deployment {id} exists with a different spec"
            ))),
            Err(e) => Err(SubmitFailure::Transient(e.to_string())),
        }
    }
}

fn refused(errors: crate::spec::SpecErrors) -> SubmitFailure {
    SubmitFailure::Dropped(errors.to_string())
}

fn template_failure(error: TemplateError) -> SubmitFailure {
    match error {
        TemplateError::Driver(e) => SubmitFailure::Transient(e.to_string()),
        e => SubmitFailure::Dropped(e.to_string()),
    }
}

/// `dev` and `serve` on Azure Storage: receives the submit queue for ever, handling each message
/// as the `submit` function does; one that keeps failing goes to `poison` after
/// [`MAX_DEQUEUE`] deliveries.
pub async fn run(submitter: Submitter, queues: Arc<(StorageQueue, StorageQueue)>) {
    let (queue, poison) = (&queues.0, &queues.1);
    let mut idle = Duration::from_millis(50);
    loop {
        let messages = match queue.receive_each(16, LEASE).await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, queue = queue.name(), "receiving submissions failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            tokio::time::sleep(idle).await;
            idle = (idle * 2).min(Duration::from_secs(1));
            continue;
        }
        idle = Duration::from_millis(50);
        for message in messages {
            let (receipt, done) = match message {
                Ok(message) => {
                    let done = handle_one(&submitter, &message, poison).await;
                    (message.receipt, done)
                }
                Err((raw, e)) => {
                    crate::metrics::submit_dropped();
                    tracing::warn!(queue.message_id = %raw.receipt.id, reason = %e, "submit message dropped: not base64 of UTF-8 text");
                    (raw.receipt, true)
                }
            };
            if done {
                match queue.delete(&receipt).await {
                    Ok(()) | Err(StorageError::MessageGone { .. }) => {}
                    Err(e) => tracing::warn!(error = %e, "deleting a submit message failed"),
                }
            }
        }
    }
}

/// Handles one received message; `true` when it is done with (started, dropped or poisoned).
async fn handle_one(
    submitter: &Submitter,
    message: &ReceivedMessage,
    poison: &StorageQueue,
) -> bool {
    let id = &message.receipt.id;
    match submitter.handle(&message.text, id).await {
        Ok(line) => {
            tracing::info!(queue.message_id = %id, "{line}");
            true
        }
        Err(SubmitFailure::Dropped(_)) => true,
        Err(SubmitFailure::Transient(reason)) if message.dequeue_count >= MAX_DEQUEUE => {
            tracing::warn!(queue.message_id = %id, %reason, queue = poison.name(), "submit message poisoned");
            crate::metrics::poisoned(1);
            poison
                .send(&message.text, Duration::ZERO, TimeToLive::Never)
                .await
                .is_ok()
        }
        Err(SubmitFailure::Transient(reason)) => {
            tracing::warn!(queue.message_id = %id, %reason, "submit message failed; it will be delivered again");
            false
        }
    }
}

/// The submit queue and its poison queue on `account`, created when missing.
pub async fn queues(
    account: &Arc<crate::azure_storage::StorageAccount>,
    name: &str,
) -> Result<(StorageQueue, StorageQueue), StorageError> {
    let queue = account.queue(name)?;
    let poison = account.queue(&format!("{name}-poison"))?;
    queue.create_if_missing().await?;
    poison.create_if_missing().await?;
    Ok((queue, poison))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn routes_pick_the_exact_type_then_any() {
        let routes =
            EventRoutes::parse("Microsoft.Storage.BlobCreated=transcode, *=catch-all").unwrap();
        assert_eq!(
            routes.template("Microsoft.Storage.BlobCreated"),
            Some("transcode")
        );
        assert_eq!(routes.template("Other"), Some("catch-all"));
        assert_eq!(EventRoutes::parse("").unwrap().template("x"), None);
        assert!(EventRoutes::parse("a=../x").is_err());
        assert!(EventRoutes::parse("nopair").is_err());
    }

    #[test]
    fn both_event_schemas_read_alike() {
        let grid = json!({ "id": "e1", "topic": "/subscriptions/s/storageAccounts/a",
            "subject": "/blobServices/default/containers/in/blobs/x.mp4",
            "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-12-03T10:00:00Z",
            "data": { "url": "https://a.blob.core.windows.net/in/x.mp4" }, "dataVersion": "" });
        let cloud = json!({ "specversion": "1.0", "id": "e1", "source": "/subscriptions/s/storageAccounts/a",
            "subject": "/blobServices/default/containers/in/blobs/x.mp4",
            "type": "Microsoft.Storage.BlobCreated", "time": "2026-12-03T10:00:00Z",
            "data": { "url": "https://a.blob.core.windows.net/in/x.mp4" } });
        let a = EventView::read(grid.as_object().unwrap()).unwrap().unwrap();
        let b = EventView::read(cloud.as_object().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.field("data.url"),
            Some(json!("https://a.blob.core.windows.net/in/x.mp4"))
        );
        assert_eq!(
            a.field("type"),
            Some(json!("Microsoft.Storage.BlobCreated"))
        );
        assert_eq!(a.field("data.nope"), None);
    }

    #[test]
    fn messages_that_are_none_of_the_three_are_dropped() {
        for text in [
            "",
            "not json",
            "[1]",
            "{\"x\": 1}",
            "{\"specversion\": \"0.3\", \"id\": \"a\"}",
        ] {
            assert!(
                matches!(read(text), Err(SubmitFailure::Dropped(_))),
                "{text}"
            );
        }
        assert!(matches!(read("{\"groups\": []}"), Ok(Request::Spec(_))));
        assert!(matches!(
            read("{\"template\": \"t\"}"),
            Ok(Request::Invocation(_))
        ));
    }
}
