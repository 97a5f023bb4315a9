//! Where deployments live: checkpoints (versioned compare-and-swap), logs, and the step queue.
//!
//! Two backends implement these traits: [`sqlite`] (the embedded default) and Azure Storage
//! (blobs and a queue). The traits are narrow on purpose; everything else is built on them.
//!
//! # What a store knows
//! A checkpoint is a [`Record`]: its bytes, which the store keeps and returns exactly as given and
//! never reads, plus the few index fields the store needs to find it without reading them: its
//! id, its [`Status`] (to list by status), when it was created (to list newest first), its
//! [`Wake`] (for the sweep's [`Checkpoints::overdue`]) and when it ended (for
//! [`Checkpoints::expired`]). The store knows nothing of what a deployment is, how it moves
//! between statuses or what its bytes say: encoding a deployment into a record and decoding it
//! back is [`crate::checkpoint`]'s, which is also where a checkpoint whose bytes do not decode,
//! or that a newer Berth wrote, becomes [`StoreError::Unreadable`]. An index status this Berth
//! does not know (a newer one may add statuses) reads as [`Status::Unknown`]: the record is still
//! listed, loaded and purged, so one such record never stops the others being read.
//!
//! # Guarantees
//! - `save_record` writes only if the stored version is the one the caller loaded; otherwise it
//!   answers [`StoreError::Conflict`] and the caller reloads and re-applies its event. Two writers
//!   can never both win from the same version.
//! - A step message scheduled with a save is never handled before that save commits, and is not
//!   lost if the process dies. SQLite sends it in the save's transaction. Azure Storage sends it
//!   *before* the save, hidden for at least 5 s, makes it visible at its due time once the save
//!   commits and deletes it when the save loses its compare-and-swap (see [`azure`]); a process
//!   that dies between the two delays the step by at most those 5 s. Should the send itself fail,
//!   the sweep re-drives the deployment from its `wake` time, so no deployment stays stuck.

pub mod azure;
pub mod sqlite;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::engine::RunEstimate;

/// Unix time in milliseconds.
pub type Millis = i64;

/// A checkpoint's status, as the store indexes it. Every checkpoint moves forward along
/// `Pending`, `Running`, then one terminal status it keeps; the Azure backend's listing index
/// relies on that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Terminated,
    /// A status word this Berth does not know (written by a newer one); never written.
    Unknown,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::TimedOut,
        Status::Terminated,
    ];

    /// The status as written in indexes (the same words as the API's `runtimeStatus`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "Pending",
            Status::Running => "Running",
            Status::Succeeded => "Succeeded",
            Status::Failed => "Failed",
            Status::TimedOut => "TimedOut",
            Status::Terminated => "Terminated",
            Status::Unknown => "Unknown",
        }
    }

    /// Reads a status written by [`Status::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Reads an index's status word: [`Status::Unknown`] for a word this Berth does not know.
    pub fn read(text: &str) -> Self {
        Status::parse(text).unwrap_or(Status::Unknown)
    }

    /// Whether the status never changes again (as far as this Berth knows: an unknown status
    /// is not terminal).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Pending | Status::Running | Status::Unknown)
    }
}

/// When a checkpoint's next step is due, and the seq its step message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wake {
    pub at: Millis,
    pub seq: u64,
}

/// A checkpoint as the store keeps it: opaque bytes and the index fields it finds them by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub status: Status,
    pub created: Millis,
    /// The next step, while one is due.
    pub wake: Option<Wake>,
    /// When the checkpoint finished with everything (the retention clock starts); `None` before.
    pub ended: Option<Millis>,
    /// The checkpoint itself, stored and returned byte for byte.
    pub body: Bytes,
}

/// The version a checkpoint was loaded at (SQLite: a counter; Blob: the ETag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version(pub String);

/// A record and the version it was loaded at.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub record: Record,
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

/// A page of records, newest first.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Record>,
    pub continuation: Option<String>,
}

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
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
    /// The checkpoint cannot be read by this Berth: its bytes do not decode, or a newer Berth
    /// wrote them (raised by [`crate::checkpoint`], never by a backend).
    #[error("deployment {id} cannot be read: {reason}")]
    Unreadable { id: String, reason: String },
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

/// Learned run times, one estimate per group-spec digest (see [`crate::engine::looks`]), shared
/// by every handler on the store and kept across restarts. An estimate changes only when an
/// instance of its spec ends by exit: one read and one write then, and nothing while it runs.
#[async_trait]
pub trait RunTimes: Send + Sync {
    /// The estimate for `digest` (64 lowercase hex digits); `None` before its first recorded run
    /// (or when what is stored cannot be read: the next run starts it again).
    async fn run_time(&self, digest: &str) -> Result<Option<RunEstimate>, StoreError>;
    /// Takes one run of `run_ms` into the estimate for `digest` and returns the new estimate.
    /// Concurrent records of one digest each count (SQLite in one transaction, Azure by ETag).
    async fn record_run(&self, digest: &str, run_ms: Millis) -> Result<RunEstimate, StoreError>;
}

/// Refuses a digest that is not 64 lowercase hex digits, naming it.
fn check_digest(digest: &str) -> Result<(), StoreError> {
    let ok = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        return Ok(());
    }
    Err(StoreError::Backend {
        operation: "name a run-time estimate",
        transient: false,
        source: format!("digest '{digest}' is not 64 lowercase hex digits").into(),
    })
}

/// Reads a stored estimate; `None` when it cannot be read or planned with.
fn decode_run_time(bytes: &[u8]) -> Option<RunEstimate> {
    serde_json::from_slice::<RunEstimate>(bytes)
        .ok()
        .filter(RunEstimate::is_usable)
}

/// `stored` with one more run.
fn next_run_time(stored: Option<RunEstimate>, run_ms: Millis) -> RunEstimate {
    match stored {
        Some(estimate) => estimate.with_run(run_ms),
        None => RunEstimate::first(run_ms),
    }
}

/// A schedule as the store keeps it: its bytes ([`crate::schedule::Schedule`] as JSON), which the
/// store never reads, and the version they were loaded at.
#[derive(Clone, Debug)]
pub struct StoredSchedule {
    pub name: String,
    pub body: Bytes,
    pub version: Version,
}

/// Schedules by name, each changed by compare-and-swap on its version, as checkpoints are.
#[async_trait]
pub trait Schedules: Send + Sync {
    /// Loads a schedule.
    async fn load_schedule(&self, name: &str) -> Result<Option<StoredSchedule>, StoreError>;
    /// Creates schedule `name` (`expected` `None`: `Conflict` when it exists) or replaces it if it
    /// is still at `expected` (`Conflict` otherwise, or when it is gone).
    async fn save_schedule(
        &self,
        name: &str,
        body: &[u8],
        expected: Option<&Version>,
    ) -> Result<Version, StoreError>;
    /// Deletes a schedule; `false` when there was none.
    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError>;
    /// Up to `limit` schedules, by name.
    async fn list_schedules(&self, limit: usize) -> Result<Vec<StoredSchedule>, StoreError>;
}

/// A page of templates: names in ascending order, each with its latest version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplatePage {
    pub items: Vec<(String, u32)>,
    pub continuation: Option<String>,
}

/// Templates, every version kept: a version is written once and never changed (see
/// [`crate::spec::template`] for what one holds; the store keeps its bytes and never reads them).
#[async_trait]
pub trait Templates: Send + Sync {
    /// Keeps `body` as version `version` (from 1) of template `name`. `Conflict` when that version
    /// exists: two writers of one version can never both win, so the loser loads the latest
    /// again and decides anew.
    async fn put_template(&self, name: &str, version: u32, body: &[u8]) -> Result<(), StoreError>;
    /// Version `version` of `name`, or its latest when `None`: the version and its bytes.
    async fn get_template(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<(u32, Bytes)>, StoreError>;
    /// Template names in ascending order with their latest version, at most `top` a page.
    async fn list_templates(
        &self,
        top: usize,
        continuation: Option<&str>,
    ) -> Result<TemplatePage, StoreError>;
    /// Deletes every version of `name`; `false` when there was none.
    async fn delete_template(&self, name: &str) -> Result<bool, StoreError>;
}

/// Refuses a template name that is not one (it names rows and blobs), or version 0.
fn check_template(name: &str, version: Option<u32>) -> Result<(), StoreError> {
    let problem = match crate::spec::validate::template_name(name) {
        Err(e) => e,
        Ok(()) if version == Some(0) => "template versions start at 1".into(),
        Ok(()) => return Ok(()),
    };
    Err(StoreError::Backend {
        operation: "name a template",
        transient: false,
        source: problem.into(),
    })
}

/// A template page token: the last name listed (SQLite) or the service's marker (Azure).
fn template_token(kind: char, value: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{value}"))
}

/// Reads a [`template_token`] of `kind` back.
fn parse_template_token(kind: char, token: &str) -> Result<String, StoreError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::BadContinuation)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadContinuation)?;
    match text.split_once(':') {
        Some((k, value)) if k.len() == 1 && k.starts_with(kind) => Ok(value.to_owned()),
        _ => Err(StoreError::BadContinuation),
    }
}

/// Checkpoints (records) and logs.
#[async_trait]
pub trait Checkpoints: Send + Sync {
    /// Creates a record and sends its first step. `Conflict` when the id exists.
    async fn create_record(
        &self,
        record: &Record,
        first: &Scheduled,
    ) -> Result<Version, StoreError>;
    /// Loads a record.
    async fn load_record(&self, id: &str) -> Result<Option<StoredRecord>, StoreError>;
    /// Replaces the record of `record.id` if it is still at `expected`, and sends `then` if given
    /// (see the module's guarantees for when). `Conflict` otherwise.
    async fn save_record(
        &self,
        record: &Record,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> Result<Version, StoreError>;
    /// Deletes a checkpoint and its logs. `false` when there was none.
    async fn purge(&self, id: &str) -> Result<bool, StoreError>;
    /// Lists records newest first (by `created`; records created at the same time by id,
    /// ascending), by status or not.
    async fn list_records(&self, query: &ListQuery) -> Result<Page, StoreError>;
    /// Records whose `wake` is before `before`, the longest overdue first.
    async fn overdue(&self, before: Millis, limit: usize) -> Result<Vec<Due>, StoreError>;
    /// Ids of records whose `ended` is before `before`, the oldest first.
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
    /// Reads the logs saved for one instance's container, as `put_logs` named them.
    async fn get_instance_logs(
        &self,
        id: &str,
        group: &str,
        instance: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Reads a container's logs; `group` is a spec group name (its latest instance) or an instance name.
    async fn get_logs(
        &self,
        id: &str,
        group: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Keeps page `page` of a deployment's archived history, bytes as given (overwrites: a page
    /// is written before the checkpoint that drops its entries, and always holds the same ones).
    async fn put_history(&self, id: &str, page: u32, body: &[u8]) -> Result<(), StoreError>;
    /// Reads page `page` of a deployment's archived history.
    async fn get_history(&self, id: &str, page: u32) -> Result<Option<Bytes>, StoreError>;
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
    /// Up to `max` step messages given up on (the poison table or queue, where the Functions host
    /// too moves them), hidden from other sweeps for `lease_ms` where the backend leases.
    async fn poisoned_steps(
        &self,
        max: usize,
        lease_ms: Millis,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Deletes a poisoned message the sweep has dealt with.
    async fn drop_poisoned(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// How many messages wait, when the backend can tell cheaply (one query or request; for the
    /// metrics, read when they are collected). `None` when it cannot.
    async fn depth(&self) -> Result<Option<QueueDepth>, StoreError> {
        Ok(None)
    }
}

/// The step queue's depth, as far as its backend can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages in the queue, the ones scheduled later included (approximate for Azure queues).
    pub messages: u64,
    /// How long the oldest visible message has been visible (`0` when none is); `None` when the
    /// backend cannot tell.
    pub oldest_visible_ms: Option<Millis>,
}

/// Ends a `Page` continuation: `(created, id)` of the last item, as text.
pub fn continuation_after(record: &Record) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", record.created, record.id))
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
