//! Deployments in a store: a [`Deployment`] encoded into the [`Record`] a [`Checkpoints`] store
//! keeps, and decoded back on load.
//!
//! The bytes are the deployment's JSON (serde, exactly as written before stores kept records), and
//! the index fields are read off the deployment: its status, creation time, wake, and, once its
//! phase is `Done`, its last update as the time it ended. Bytes that no longer decode are
//! [`StoreError::Corrupt`], raised here: the stores never read them.
//!
//! [`Deployments`] gives every [`Checkpoints`] store the calls the driver, the API and the sweep
//! make in deployments (`create`, `load`, `save`, `list`); purge, the sweep's queries and logs
//! need no decoding and stay the store's own.

use async_trait::async_trait;
use bytes::Bytes;

use crate::engine::{Deployment, Phase, RuntimeStatus};
use crate::store::{self, Checkpoints, Record, Scheduled, Status, StoreError, Version, Wake};

/// A deployment and the version it was loaded at.
#[derive(Clone, Debug)]
pub struct Stored {
    pub deployment: Deployment,
    pub version: Version,
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

/// The store's status of a runtime status.
pub fn status(status: RuntimeStatus) -> Status {
    match status {
        RuntimeStatus::Pending => Status::Pending,
        RuntimeStatus::Running => Status::Running,
        RuntimeStatus::Succeeded => Status::Succeeded,
        RuntimeStatus::Failed => Status::Failed,
        RuntimeStatus::TimedOut => Status::TimedOut,
        RuntimeStatus::Terminated => Status::Terminated,
    }
}

/// The record of a deployment.
pub fn encode(d: &Deployment) -> Record {
    Record {
        id: d.id.clone(),
        status: status(d.status),
        created: d.created,
        wake: d.wake.map(|w| Wake {
            at: w.at,
            seq: w.seq,
        }),
        ended: (d.phase == Phase::Done).then_some(d.updated),
        body: Bytes::from(serde_json::to_vec(d).expect("a deployment always serialises")),
    }
}

/// The deployment of a record; [`StoreError::Corrupt`] when its bytes do not decode.
pub fn decode(record: &Record) -> Result<Deployment, StoreError> {
    serde_json::from_slice(&record.body).map_err(|source| StoreError::Corrupt {
        id: record.id.clone(),
        source,
    })
}

/// A store's checkpoints as deployments (see the module).
#[async_trait]
pub trait Deployments {
    /// Creates a deployment's checkpoint and sends its first step. `Conflict` when the id exists.
    async fn create(
        &self,
        deployment: &Deployment,
        first: &Scheduled,
    ) -> Result<Version, StoreError>;
    /// Loads a deployment.
    async fn load(&self, id: &str) -> Result<Option<Stored>, StoreError>;
    /// Saves a deployment if its checkpoint is still at `expected`, and sends `then` if given.
    /// `Conflict` otherwise.
    async fn save(
        &self,
        deployment: &Deployment,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> Result<Version, StoreError>;
    /// Lists deployments, newest first.
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;
}

#[async_trait]
impl<T: Checkpoints + ?Sized> Deployments for T {
    async fn create(
        &self,
        deployment: &Deployment,
        first: &Scheduled,
    ) -> Result<Version, StoreError> {
        self.create_record(&encode(deployment), first).await
    }

    async fn load(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        match self.load_record(id).await? {
            None => Ok(None),
            Some(stored) => Ok(Some(Stored {
                deployment: decode(&stored.record)?,
                version: stored.version,
            })),
        }
    }

    async fn save(
        &self,
        deployment: &Deployment,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> Result<Version, StoreError> {
        self.save_record(&encode(deployment), expected, then).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let page = self
            .list_records(&store::ListQuery {
                status: query.status.map(status),
                top: query.top,
                continuation: query.continuation.clone(),
            })
            .await?;
        Ok(Page {
            items: page.items.iter().map(decode).collect::<Result<_, _>>()?,
            continuation: page.continuation,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_words() {
        for s in [
            RuntimeStatus::Pending,
            RuntimeStatus::Running,
            RuntimeStatus::Succeeded,
            RuntimeStatus::Failed,
            RuntimeStatus::TimedOut,
            RuntimeStatus::Terminated,
        ] {
            assert_eq!(status(s).as_str(), s.as_str());
            assert_eq!(status(s).is_terminal(), s.is_terminal());
        }
    }

    #[test]
    fn bytes_that_do_not_decode_are_corrupt() {
        let record = Record {
            id: "job-1".into(),
            status: Status::Running,
            created: 1,
            wake: None,
            ended: None,
            body: Bytes::from_static(b"{\"id\":"),
        };
        assert!(matches!(decode(&record), Err(StoreError::Corrupt { id, .. }) if id == "job-1"));
    }
}
