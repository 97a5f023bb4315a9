//! Deployments in a store: a [`Deployment`] encoded into the [`Record`] a [`Checkpoints`] store
//! keeps, and decoded back on load.
//!
//! The bytes are the deployment's JSON (serde, exactly as written before stores kept records), and
//! the index fields are read off the deployment: its status, creation time, wake, and, once its
//! phase is `Done`, its last update as the time it ended.
//!
//! # One bad record stays one bad record
//! Bytes that do not decode, and a checkpoint of a newer [`SCHEMA_VERSION`] than this Berth's
//! (which it would misread), are [`StoreError::Unreadable`], raised here: the stores never read
//! the bytes. Loading such a deployment fails with that error alone; a list page lists it apart
//! ([`Page::unreadable`]) and goes on with the others; purge, the sweep's queries and logs need no
//! decoding and stay the store's own, so they work on it as on any other.
//!
//! [`Deployments`] gives every [`Checkpoints`] store the calls the driver, the API and the sweep
//! make in deployments (`create`, `load`, `save`, `list`).

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;

use crate::engine::{Deployment, Phase, RuntimeStatus, SCHEMA_VERSION};
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
    /// The page's records that cannot be read, in the page's order.
    pub unreadable: Vec<Unreadable>,
    pub continuation: Option<String>,
}

/// A listed record this Berth cannot read: what its index says, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub id: String,
    pub status: Status,
    pub created: store::Millis,
    pub reason: String,
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

/// The deployment of a record; [`StoreError::Unreadable`] when its bytes do not decode or a
/// newer Berth wrote them.
pub fn decode(record: &Record) -> Result<Deployment, StoreError> {
    let unreadable = |reason: String| StoreError::Unreadable {
        id: record.id.clone(),
        reason,
    };
    let newer = |version: u32| {
        unreadable(format!(
            "it was written by a newer Berth (checkpoint schema version {version}; this Berth \
             reads up to {SCHEMA_VERSION})"
        ))
    };
    match serde_json::from_slice::<Deployment>(&record.body) {
        Ok(d) if d.schema_version > SCHEMA_VERSION => Err(newer(d.schema_version)),
        Ok(d) => Ok(d),
        Err(error) => {
            // A newer shape may fail to decode before its version is checked: name the version
            // when it says so, rather than the field that failed.
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Version {
                schema_version: u32,
            }
            match serde_json::from_slice::<Version>(&record.body) {
                Ok(v) if v.schema_version > SCHEMA_VERSION => Err(newer(v.schema_version)),
                _ => Err(unreadable(format!("its document does not decode: {error}"))),
            }
        }
    }
}

/// A listed record's deployment, or what the list says of it when it cannot be read.
fn listed(record: &Record) -> Result<Deployment, Unreadable> {
    decode(record).map_err(|error| Unreadable {
        id: record.id.clone(),
        status: record.status,
        created: record.created,
        reason: match error {
            StoreError::Unreadable { reason, .. } => reason,
            other => other.to_string(),
        },
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
        let mut listed_page = Page {
            continuation: page.continuation,
            ..Page::default()
        };
        for record in &page.items {
            match listed(record) {
                Ok(d) => listed_page.items.push(d),
                Err(unreadable) => listed_page.unreadable.push(unreadable),
            }
        }
        Ok(listed_page)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_words() {
        for s in RuntimeStatus::ALL {
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
        assert!(
            matches!(decode(&record), Err(StoreError::Unreadable { id, reason }) if id == "job-1" && reason.starts_with("its document does not decode"))
        );
    }

    #[test]
    fn a_newer_schema_version_is_refused_whether_or_not_it_decodes() {
        let spec = crate::spec::parse(
            br#"{"id": "job-2", "groups": [{"name": "work", "properties": {"containers": [
                {"name": "main", "properties": {"image": "busybox",
                 "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}]}}]}"#,
            crate::spec::Format::Json,
            || unreachable!(),
        )
        .unwrap();
        let options = crate::engine::StartOptions::new("http://127.0.0.1:7071");
        let d = crate::engine::start(spec, None, "digest".into(), options, 1).next;
        let mut record = encode(&d);
        // Version 2 without notifications, so a version-2 Berth still reads it.
        assert_eq!(decode(&record).unwrap().schema_version, 2);
        let newer = |record: &Record| match decode(record) {
            Err(StoreError::Unreadable { reason, .. }) => reason,
            other => panic!("not refused: {other:?}"),
        };
        // The same shape under a higher version: decodes, and is still refused.
        let mut doc: serde_json::Value = serde_json::from_slice(&record.body).unwrap();
        doc["schemaVersion"] = (SCHEMA_VERSION + 1).into();
        record.body = Bytes::from(serde_json::to_vec(&doc).unwrap());
        assert!(newer(&record).contains(&format!("schema version {}", SCHEMA_VERSION + 1)));
        // A newer shape that no longer decodes says the version, not the field.
        doc["phase"] = "Paused".into();
        record.body = Bytes::from(serde_json::to_vec(&doc).unwrap());
        assert!(newer(&record).contains("written by a newer Berth"));
        // The same unknown phase without a newer version is named as it is.
        doc["schemaVersion"] = SCHEMA_VERSION.into();
        record.body = Bytes::from(serde_json::to_vec(&doc).unwrap());
        assert!(newer(&record).contains("unknown variant `Paused`"));
    }
}
