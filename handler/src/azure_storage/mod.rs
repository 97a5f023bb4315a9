//! Azure Storage plumbing: everything that talks to the storage account in
//! `AzureWebJobsStorage`, beneath the Azure implementations of the store traits.
//!
//! # Layout (bottom up)
//! - [`connection`]: the setting, parsed as Functions does (Azurite, account key, SAS, identity).
//! - [`shared_key`]: the Shared Key signing policy the 1.x SDK lacks.
//! - [`credential`]: the explicit choice of Entra ID credential (also used for ARM).
//! - [`transactions`]: per-kind request counters, filled by a pipeline policy.
//! - [`account`]: one account's pipelines; makes [`BlobContainer`]s and [`StorageQueue`]s.
//! - [`blob`], [`tags`]: read, conditional write, delete, list, append, index tags.
//! - [`queue`]: send with delay, receive, delete, update, base64 message encoding.
//! - [`error`]: [`StorageError`], the one error type of this boundary.
//!
//! # Wiring
//! ```no_run
//! # async fn wire(lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
//! use berth::azure_storage::{StorageAccount, StorageConnection, connection::DEFAULT_SETTING, credential};
//! let Some(connection) = StorageConnection::from_settings(DEFAULT_SETTING, lookup)? else {
//!     return Ok(()); // no Azure Storage configured: SQLite
//! };
//! // Identity-based connections get their token credential; Shared Key and SAS need none.
//! let credential = credential::for_connection(&connection, lookup)?;
//! let account = StorageAccount::new(&connection, credential.map(|(c, _kind)| c))?;
//! let steps = account.queue("berth-steps")?;
//! steps.create_if_missing().await?;
//! # Ok(()) }
//! ```
//!
//! # Costs
//! One checkpoint CAS is one Put Blob; one step message is one Put Message, one Get Messages (which
//! may fetch up to 32) and one Delete Message. Every request is counted in [`Transactions`], per
//! account and, under [`Transactions::count_during`], per unit of work.

pub mod account;
pub mod blob;
pub mod connection;
pub mod credential;
pub mod error;
pub mod queue;
pub mod shared_key;
pub mod tags;
pub mod transactions;

pub use account::StorageAccount;
pub use blob::{
    Appended, Blob, BlobContainer, BlobInfo, BlobPage, ETag, TagPage, TaggedBlob, WriteCondition,
};
pub use connection::{ConnectionError, StorageAuth, StorageConnection};
pub use credential::{CredentialKind, CredentialSettings};
pub use error::StorageError;
pub use queue::{Receipt, ReceivedMessage, SentMessage, StorageQueue, TimeToLive, Updated};
pub use tags::{TagFilter, TagOp, Tags};
pub use transactions::{Kind, Snapshot, Transactions};
