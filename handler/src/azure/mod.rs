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
//! # Costs
//! One checkpoint CAS is one Put Blob; one step message is one Put Message, one Get Messages (which
//! may fetch up to 32) and one Delete Message. Every request is counted in [`Transactions`].

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
pub use credential::{CredentialKind, CredentialSettings, choose};
pub use error::StorageError;
pub use queue::{Receipt, ReceivedMessage, SentMessage, StorageQueue, TimeToLive, Updated};
pub use tags::{TagFilter, TagOp, Tags};
pub use transactions::{Kind, Snapshot, Transactions};
