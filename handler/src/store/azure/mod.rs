//! The Azure Storage backend: checkpoints, history and logs in Blob storage ([`BlobStore`]), steps
//! on a queue ([`QueueSteps`]), in the account of `AzureWebJobsStorage`, so that any number of
//! handler instances can work on the same deployments.
//!
//! # Layout
//! - [`names`]: blob names and index values (see there for the container's layout).
//! - [`checkpoints`]: [`BlobStore`], the checkpoint CAS, logs and purge.
//! - [`index`]: listing newest first (by status or not), and the sweep's overdue and expired queries.
//! - [`steps`]: [`QueueSteps`], the step queue.
//! - [`ledger`]: storage transactions per deployment.
//! - [`run_times`]: learned run times per group spec, one blob each.
//! - [`templates`]: templates, one blob per version.
//! - [`schedules`]: schedules, one blob each, changed by ETag.
//!
//! The blob container and the queue share one name, `BERTH_QUEUE` (`berth-steps`): handlers that
//! share steps must share the checkpoints those steps are about, and one setting makes sure of it.
//! The poison queue is `{BERTH_QUEUE}-poison`, as the Functions host names it.
//!
//! # Guarantees
//! - **One checkpoint save is one conditional Put Blob**: `If-Match` the ETag it was loaded with
//!   (`If-None-Match: *` on create), the record's bytes as the content and its index fields
//!   (`status`, `created`, `wake`, `ended`) as tags and as metadata in the same request. A `412` (or `409` on create) is [`StoreError::Conflict`]; two writers can never both
//!   win from one version. Whatever the bytes hold (the history, say) costs nothing more.
//! - **The step is sent before the save (before the CAS), held until it commits.** A save and the step it
//!   schedules are two requests, not one transaction as in SQLite. The step message goes first,
//!   hidden for [`steps::HELD_FOR`] (5 s) or until its due time if that is later; after the Put
//!   Blob commits, an Update Message makes it visible at its due time (a lost CAS deletes it).
//!   So a process that dies between the two requests delays the step by at most 5 s instead of
//!   losing it; a message that does arrive for a save that never committed carries a seq the
//!   checkpoint does not have and is dropped as stale. Should the queue itself fail, the
//!   checkpoint's `wake` tag still says the step is due and the sweep re-drives it
//!   ([`crate::sweep`]): no deployment stays stuck.
//! - **Listing stays correct under concurrency** (see [`index`]): a deployment's one index entry
//!   is written before the CAS that ends it, an entry is removed only when it can never be true
//!   again, and every entry is checked against its checkpoint when read.
//!
//! # Costs (storage transactions)
//! - load: 1 Get Blob (+1 Get Blob Tags for a checkpoint written before checkpoints carried
//!   metadata, until its next save). save: 1 Put Blob, +1 Put Blob when the deployment ends (its
//!   listing entry), +1 Put Message when it schedules a step (+1 Update Message when that step is
//!   due within 5 s). create: 1 Put Blob (the checkpoint: a live deployment has no listing entry),
//!   1 Put Message and 1 Update Message.
//! - a step through the serve worker: Put Message + Get Messages (shared by up to 32) + Delete Message.
//! - list: unfiltered, 1 List Blobs and 1 Find Blobs by Tags (+1 per 5,000 live deployments) + 1
//!   Get Blob per item, per page, whatever the number of deployments that ended; by a terminal
//!   status, 1 List Blobs per 5,000 entries gone through (usually 1) + 1 Get Blob per item; by a
//!   live status (`Pending`, `Running`), 1 Find Blobs by Tags per 5,000 live deployments of it + 1
//!   Get Blob per item.
//! - overdue / expired: 1 Find Blobs by Tags per 5,000 matches: grows with live (resp. expired)
//!   deployments, not with history.
//! - purge: 1 Get Blob, 7 Delete Blob (the index entry, with the `index/status/` ones of earlier
//!   Berths), 1 List Blobs, 1 Delete Blob per log blob and the checkpoint.
//!
//! The handler's own totals are in the account's [`crate::azure_storage::Transactions`]; the figure per
//! deployment in [`AzureBackend::transactions`].

pub mod checkpoints;
pub mod index;
pub mod ledger;
pub mod names;
pub mod run_times;
pub mod schedules;
pub mod steps;
pub mod templates;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;

pub use checkpoints::BlobStore;
pub use steps::QueueSteps;

use crate::azure_storage::{Snapshot, StorageAccount, StorageConnection, StorageError};
use crate::clock::Clock;
use crate::store::StoreError;
use ledger::Ledger;

type StoreResult<T> = Result<T, StoreError>;

/// Maps a storage error of an operation on `subject` (a deployment id, a queue) to the store's:
/// a lost precondition is a `Conflict`, everything else keeps its cause and transience.
fn backend(operation: &'static str, subject: &str) -> impl Fn(StorageError) -> StoreError {
    let subject = subject.to_owned();
    move |e| match e {
        StorageError::Conflict { .. } => StoreError::Conflict(subject.clone()),
        e => StoreError::Backend {
            operation,
            transient: e.is_transient(),
            source: Box::new(e),
        },
    }
}

/// The Azure backend, assembled: the account, the checkpoint store and the step queue.
pub struct AzureBackend {
    /// The account (its transaction totals are in `account.transactions()`).
    pub account: Arc<StorageAccount>,
    /// Checkpoints and logs.
    pub store: Arc<BlobStore>,
    /// Steps.
    pub steps: Arc<QueueSteps>,
    ledger: Arc<Ledger>,
}

impl AzureBackend {
    /// Connects to the account of `connection` (identity-based connections need `credential`),
    /// and creates the container `queue`, the queue `queue` and `{queue}-poison` when missing.
    pub async fn open(
        connection: &StorageConnection,
        credential: Option<Arc<dyn TokenCredential>>,
        queue: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let account = StorageAccount::new(connection, credential)
            .map_err(backend("connect to Azure Storage", &connection.setting))?;
        Self::on_account(Arc::new(account), queue, clock).await
    }

    /// The backend on an existing account (tests share one account's counters this way).
    pub async fn on_account(
        account: Arc<StorageAccount>,
        queue: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let invalid = backend("name the container and queues", queue);
        let container = account.container(queue).map_err(&invalid)?;
        let steps = account.queue(queue).map_err(&invalid)?;
        let poison = account
            .queue(&format!("{queue}-poison"))
            .map_err(&invalid)?;
        let (c, s, p) = tokio::join!(
            container.create_if_missing(),
            steps.create_if_missing(),
            poison.create_if_missing()
        );
        c.map_err(backend("create the checkpoint container", queue))?;
        s.map_err(backend("create the step queue", queue))?;
        p.map_err(backend("create the poison queue", queue))?;
        let ledger = Arc::new(Ledger::new());
        let steps = Arc::new(QueueSteps::new(
            steps,
            poison,
            clock.clone(),
            ledger.clone(),
        ));
        let store = Arc::new(BlobStore::new(
            container,
            steps.clone(),
            clock,
            ledger.clone(),
        ));
        tracing::info!(
            storage.container = queue,
            storage.queue = queue,
            "Azure Storage backend ready"
        );
        Ok(Self {
            account,
            store,
            steps,
            ledger,
        })
    }

    /// The storage transactions made for deployment `id` by this process so far, by kind.
    pub fn transactions(&self, id: &str) -> Snapshot {
        self.ledger.snapshot(id)
    }
}
