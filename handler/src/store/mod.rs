//! Where deployments live: checkpoints (versioned compare-and-swap), logs, and the step queue.
//!
//! Two backends implement these traits: [`sqlite`] (the embedded default) and Azure Storage
//! (blobs and a queue). The traits are narrow on purpose; everything else is built on them.
//!
//! # Guarantees
//! - `save` writes only if the stored version is the one the caller loaded; otherwise it answers
//!   [`StoreError::Conflict`] and the caller reloads and re-applies its event. Two writers can never
//!   both win from the same version.
//! - A step message scheduled with a save is sent after that save commits (in SQLite, in the same
//!   transaction). If the process dies between the two, the sweep re-drives the deployment from its
//!   `wake` time, so no deployment stays stuck.

pub mod azure;
pub mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::engine::{Deployment, Millis, RuntimeStatus};

/// The version a checkpoint was loaded at (SQLite: a counter; Blob: the ETag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version(pub String);

/// A checkpoint and its version.
#[derive(Clone, Debug)]
pub struct Stored {
    pub deployment: Deployment,
    pub version: Version,
}

/// A step message: "look at deployment `id`; I was sent for its wake `seq`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    #[serde(rename = "d")]
    pub id: String,
    #[serde(rename = "s")]
    pub seq: u64,
}

impl StepMessage {
    /// The message text on the queue (small JSON).
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a message text; `None` when it is not a step message.
    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// A step message to send, due at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    pub message: StepMessage,
    pub at: Millis,
}

/// A received step message, leased to the receiver.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub message: Option<StepMessage>,
    pub text: String,
    pub dequeue_count: u32,
    /// Backend handle for `complete`/`release`.
    pub receipt: String,
}

/// A page of deployments, newest first.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Deployment>,
    pub continuation: Option<String>,
}

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub status: Option<RuntimeStatus>,
    pub top: usize,
    pub continuation: Option<String>,
}

/// A deployment due for a step, found by the sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub id: String,
    pub seq: u64,
    pub at: Millis,
}

/// Errors of the stores, classified where they are born.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The checkpoint changed since it was loaded (or, on create, already exists).
    #[error("checkpoint {0} was changed by another writer")]
    Conflict(String),
    #[error("checkpoint {id} cannot be read: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{operation} failed: {source}")]
    Backend {
        operation: &'static str,
        transient: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("continuation token is not valid")]
    BadContinuation,
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Backend { transient, .. } => *transient,
            StoreError::Conflict(_) => true,
            _ => false,
        }
    }
}

/// Checkpoints, history (inside the checkpoint) and logs.
#[async_trait]
pub trait Checkpoints: Send + Sync {
    /// Creates a checkpoint and sends its first step. `Conflict` when the id exists.
    async fn create(
        &self,
        deployment: &Deployment,
        first: &Scheduled,
    ) -> Result<Version, StoreError>;
    /// Loads a checkpoint.
    async fn load(&self, id: &str) -> Result<Option<Stored>, StoreError>;
    /// Saves if still at `expected`, then sends `then` if given. `Conflict` otherwise.
    async fn save(
        &self,
        deployment: &Deployment,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> Result<Version, StoreError>;
    /// Deletes a checkpoint and its logs. `false` when there was none.
    async fn purge(&self, id: &str) -> Result<bool, StoreError>;
    /// Lists deployments, newest first.
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;
    /// Live deployments whose next step was due before `before`.
    async fn overdue(&self, before: Millis, limit: usize) -> Result<Vec<Due>, StoreError>;
    /// Finished deployments that ended before `before`.
    async fn expired(&self, before: Millis, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Saves a container's captured logs (overwrites: capture is idempotent). `group` is the spec
    /// group's name, `instance` the container group's ARM name.
    async fn put_logs(
        &self,
        id: &str,
        group: &str,
        instance: &str,
        container: &str,
        content: &str,
    ) -> Result<(), StoreError>;
    /// Reads a container's logs; `group` is a spec group name (its latest instance) or an instance name.
    async fn get_logs(
        &self,
        id: &str,
        group: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError>;
}

/// The step queue, as dev and serve workers use it (in Functions the host receives).
#[async_trait]
pub trait Steps: Send + Sync {
    /// Sends a step message, visible at `at`.
    async fn send(&self, step: &Scheduled) -> Result<(), StoreError>;
    /// Receives up to `max` visible messages, hidden from others for `lease_ms`.
    async fn receive(&self, max: usize, lease_ms: Millis) -> Result<Vec<Delivery>, StoreError>;
    /// Deletes a handled message.
    async fn complete(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Waits until a message may be visible (a send, or the next due time), at most `max_ms`.
    async fn wait(&self, max_ms: Millis);
}

/// Ends a `Page` continuation: `(created, id)` of the last item, as text.
pub fn continuation_after(deployment: &Deployment) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", deployment.created, deployment.id))
}

/// Reads a continuation token back.
pub fn parse_continuation(token: &str) -> Result<(Millis, String), StoreError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::BadContinuation)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadContinuation)?;
    let (created, id) = text.split_once(':').ok_or(StoreError::BadContinuation)?;
    Ok((
        created.parse().map_err(|_| StoreError::BadContinuation)?,
        id.to_owned(),
    ))
}
