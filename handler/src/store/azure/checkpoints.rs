//! [`BlobStore`]: checkpoints as blobs with ETag compare-and-swap, captured logs as blobs under the
//! deployment's prefix, and purge. Listing lives in [`super::index`].
//!
//! A [`Version`] of this store is the checkpoint's ETag, prefixed with the status it was loaded
//! at (`Running "0x8DC…"`): a save compares the status it writes with the one it replaces and moves
//! the listing entry only when it changed, without another read. Callers treat it as opaque.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::ledger::Ledger;
use super::names;
use super::steps::{Prepared, QueueSteps};
use super::{StoreResult, backend};
use crate::azure::{BlobContainer, ETag, StorageError, Tags, WriteCondition};
use crate::clock::Clock;
use crate::engine::{Deployment, Millis, Phase, RuntimeStatus};
use crate::store::{Checkpoints, Due, ListQuery, Page, Scheduled, StoreError, Stored, Version};

/// Checkpoints and logs in one blob container.
pub struct BlobStore {
    pub(super) container: BlobContainer,
    steps: Arc<QueueSteps>,
    pub(super) clock: Arc<dyn Clock>,
    ledger: Arc<Ledger>,
}

fn version(status: RuntimeStatus, etag: &ETag) -> Version {
    Version(format!("{} {}", status.as_str(), etag.as_str()))
}

fn parse_version(version: &Version) -> Option<(RuntimeStatus, ETag)> {
    let (status, etag) = version.0.split_once(' ')?;
    Some((RuntimeStatus::parse(status)?, ETag::new(etag)))
}

fn encode(d: &Deployment) -> Bytes {
    Bytes::from(serde_json::to_vec(d).expect("a deployment always serialises"))
}

pub(super) fn decode(id: &str, body: &[u8]) -> StoreResult<Deployment> {
    serde_json::from_slice(body).map_err(|source| StoreError::Corrupt {
        id: id.to_owned(),
        source,
    })
}

/// The index tags of a checkpoint: fixed-width values, so that string order is time order.
fn tags(d: &Deployment) -> StoreResult<Tags> {
    let mut pairs = vec![
        (names::TAG_STATUS, d.status.as_str().to_owned()),
        (names::TAG_CREATED, names::time(d.created)),
    ];
    if let Some(wake) = d.wake {
        pairs.push((names::TAG_WAKE, names::wake(wake.at, wake.seq)));
    }
    if let Some(ended) = names::ended(d) {
        pairs.push((names::TAG_ENDED, names::time(ended)));
    }
    Tags::from_pairs(pairs).map_err(backend("tag a checkpoint", &d.id))
}

impl BlobStore {
    pub(super) fn new(
        container: BlobContainer,
        steps: Arc<QueueSteps>,
        clock: Arc<dyn Clock>,
        ledger: Arc<Ledger>,
    ) -> Self {
        Self {
            container,
            steps,
            clock,
            ledger,
        }
    }

    /// The container's name.
    pub fn container_name(&self) -> &str {
        self.container.name()
    }

    /// An empty index entry (rewriting one that exists is harmless: it says the same).
    async fn put_entry(&self, name: &str, id: &str) -> StoreResult<()> {
        self.container
            .put(name, Bytes::new(), &WriteCondition::Overwrite, &Tags::new())
            .await
            .map(|_| ())
            .map_err(backend("write an index entry", id))
    }

    /// Deletes a blob; one that is not there is fine.
    pub(super) async fn remove(
        &self,
        name: &str,
        if_match: Option<&ETag>,
    ) -> Result<(), StorageError> {
        self.container.delete(name, if_match).await.map(|_| ())
    }

    /// Sends `step` ahead of the write that schedules it (see [`QueueSteps::prepare`]).
    async fn prepare(&self, step: Option<&Scheduled>) -> StoreResult<Option<Prepared>> {
        match step {
            Some(step) => self.steps.prepare(step).await.map(Some),
            None => Ok(None),
        }
    }

    /// After the write: releases the prepared step if the write committed, withdraws it if it
    /// did not. When the outcome is unknown (a failure other than a conflict), the step is left
    /// to arrive when its hold ends, which is harmless either way: a step for a seq the
    /// checkpoint does not have is dropped as stale.
    async fn settle<T>(&self, prepared: Option<Prepared>, written: &StoreResult<T>) {
        let Some(prepared) = prepared else {
            return;
        };
        match written {
            Ok(_) => self.steps.confirm(prepared).await,
            Err(StoreError::Conflict(_)) => self.steps.withdraw(prepared).await,
            Err(_) => {}
        }
    }

    /// Loads a checkpoint, uncounted (the caller's scope counts it).
    pub(super) async fn read(&self, id: &str) -> StoreResult<Option<Stored>> {
        if !names::valid_id(id) {
            return Ok(None);
        }
        let Some(blob) = self
            .container
            .get(&names::checkpoint(id))
            .await
            .map_err(backend("load a checkpoint", id))?
        else {
            return Ok(None);
        };
        let deployment = decode(id, &blob.bytes)?;
        Ok(Some(Stored {
            version: version(deployment.status, &blob.etag),
            deployment,
        }))
    }

    async fn create_counted(&self, d: &Deployment, first: &Scheduled) -> StoreResult<Version> {
        let tags = tags(d)?;
        // Index entries and the first step first: a crash after them leaves entries the listing
        // skips and a step dropped as unknown (there is no checkpoint), never a checkpoint that
        // the listing cannot find or that waits for a step nobody sent.
        let all = names::all_entry(d.created, &d.id);
        let by_status = async {
            if names::indexed(d.status) {
                let entry = names::status_entry(d.status, d.created, &d.id);
                self.put_entry(&entry, &d.id).await
            } else {
                Ok(())
            }
        };
        let (a, b, prepared) = tokio::join!(
            self.put_entry(&all, &d.id),
            by_status,
            self.steps.prepare(first)
        );
        let prepared = prepared?;
        if let Err(e) = a.and(b) {
            self.steps.withdraw(prepared).await;
            return Err(e);
        }
        let created = self
            .container
            .put(
                &names::checkpoint(&d.id),
                encode(d),
                &WriteCondition::Create,
                &tags,
            )
            .await
            .map_err(backend("create a checkpoint", &d.id));
        self.settle(Some(prepared), &created).await;
        Ok(version(d.status, &created?))
    }

    async fn save_counted(
        &self,
        d: &Deployment,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> StoreResult<Version> {
        let (was, etag) =
            parse_version(expected).ok_or_else(|| StoreError::Conflict(d.id.clone()))?;
        let tags = tags(d)?;
        let moved = was != d.status;
        // Before the CAS: once the checkpoint says `d.status`, its listing entry exists, and once
        // it schedules a step, that step's message exists.
        let entry = async {
            if moved && names::indexed(d.status) {
                let entry = names::status_entry(d.status, d.created, &d.id);
                self.put_entry(&entry, &d.id).await
            } else {
                Ok(())
            }
        };
        let (entry, prepared) = tokio::join!(entry, self.prepare(then));
        let prepared = prepared?;
        if let Err(e) = entry {
            if let Some(prepared) = prepared {
                self.steps.withdraw(prepared).await;
            }
            return Err(e);
        }
        let saved = self
            .container
            .put(
                &names::checkpoint(&d.id),
                encode(d),
                &WriteCondition::Replace(etag),
                &tags,
            )
            .await
            .map_err(backend("save a checkpoint", &d.id));
        let left = async {
            if moved && saved.is_ok() && names::indexed(was) {
                // Statuses only move forward (see `names::rank`): nobody needs the old entry now.
                let old = names::status_entry(was, d.created, &d.id);
                if let Err(e) = self.remove(&old, None).await {
                    tracing::debug!(deployment.id = %d.id, error = %e, "removing a left status entry failed; listings skip it");
                }
            }
        };
        tokio::join!(left, self.settle(prepared, &saved));
        Ok(version(d.status, &saved?))
    }

    async fn purge_counted(&self, id: &str) -> StoreResult<bool> {
        let Some(stored) = self.read(id).await? else {
            return Ok(false);
        };
        let d = &stored.deployment;
        // Index entries first, the checkpoint last: a purge cut short is found and finished by the
        // next sweep (the checkpoint still carries its `ended` tag).
        let mut entries = vec![names::all_entry(d.created, id)];
        entries.extend(
            names::STATUSES
                .iter()
                .map(|s| names::status_entry(*s, d.created, id)),
        );
        let removed =
            futures::future::join_all(entries.iter().map(|name| self.remove(name, None))).await;
        for r in removed {
            r.map_err(backend("purge index entries", id))?;
        }
        let checkpoint = names::checkpoint(id);
        let prefix = names::deployment_prefix(id);
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .container
                .list(&prefix, marker.as_deref(), crate::azure::blob::MAX_PAGE)
                .await
                .map_err(backend("list a deployment's blobs", id))?;
            let logs = page.blobs.iter().filter(|b| b.name != checkpoint);
            let removed = futures::future::join_all(logs.map(|b| self.remove(&b.name, None))).await;
            for r in removed {
                r.map_err(backend("purge logs", id))?;
            }
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        self.remove(&checkpoint, None)
            .await
            .map_err(backend("purge a checkpoint", id))?;
        Ok(true)
    }

    async fn get_logs_counted(
        &self,
        id: &str,
        group: &str,
        container: &str,
    ) -> StoreResult<Option<String>> {
        let prefix = names::logs_prefix(id);
        let mut best: Option<(Option<time::OffsetDateTime>, String, String)> = None;
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .container
                .list(&prefix, marker.as_deref(), crate::azure::blob::MAX_PAGE)
                .await
                .map_err(backend("list logs", id))?;
            for blob in page.blobs {
                let Some((g, instance, c)) = names::parse_logs(id, &blob.name) else {
                    continue;
                };
                if c != container || (g != group && instance != group) {
                    continue;
                }
                let key = (blob.last_modified, instance.to_owned());
                if best
                    .as_ref()
                    .is_none_or(|(t, i, _)| (&key.0, &key.1) > (t, i))
                {
                    best = Some((key.0, key.1, blob.name.clone()));
                }
            }
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        let Some((_, _, name)) = best else {
            return Ok(None);
        };
        let blob = self
            .container
            .get(&name)
            .await
            .map_err(backend("read logs", id))?;
        Ok(blob.map(|b| String::from_utf8_lossy(&b.bytes).into_owned()))
    }
}

#[async_trait]
impl Checkpoints for BlobStore {
    async fn create(
        &self,
        deployment: &Deployment,
        first: &Scheduled,
    ) -> Result<Version, StoreError> {
        self.ledger
            .during(&deployment.id, self.create_counted(deployment, first))
            .await
    }

    async fn load(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        self.ledger.during(id, self.read(id)).await
    }

    async fn save(
        &self,
        deployment: &Deployment,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> Result<Version, StoreError> {
        let saved = self
            .ledger
            .during(
                &deployment.id,
                self.save_counted(deployment, expected, then),
            )
            .await?;
        if deployment.phase == Phase::Done {
            tracing::info!(deployment.id = %deployment.id, storage.transactions = %self.ledger.snapshot(&deployment.id),
                "deployment done; its storage transactions in this process");
        }
        Ok(saved)
    }

    async fn purge(&self, id: &str) -> Result<bool, StoreError> {
        let purged = self.ledger.during(id, self.purge_counted(id)).await?;
        self.ledger.forget(id);
        Ok(purged)
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.list_page(query).await
    }

    async fn overdue(&self, before: Millis, limit: usize) -> Result<Vec<Due>, StoreError> {
        self.find_overdue(before, limit).await
    }

    async fn expired(&self, before: Millis, limit: usize) -> Result<Vec<String>, StoreError> {
        self.find_expired(before, limit).await
    }

    async fn put_logs(
        &self,
        id: &str,
        group: &str,
        instance: &str,
        container: &str,
        content: &str,
    ) -> Result<(), StoreError> {
        let name = names::logs(id, group, instance, container);
        let no_tags = Tags::new();
        let put = self.container.put(
            &name,
            Bytes::copy_from_slice(content.as_bytes()),
            &WriteCondition::Overwrite,
            &no_tags,
        );
        self.ledger
            .during(id, put)
            .await
            .map(|_| ())
            .map_err(backend("save logs", id))
    }

    async fn get_logs(
        &self,
        id: &str,
        group: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError> {
        if !names::valid_id(id) {
            return Ok(None);
        }
        self.ledger
            .during(id, self.get_logs_counted(id, group, container))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_carry_the_status_and_the_etag() {
        let v = version(RuntimeStatus::Running, &ETag::new("\"0x8DC1\""));
        assert_eq!(v.0, "Running \"0x8DC1\"");
        assert_eq!(
            parse_version(&v),
            Some((RuntimeStatus::Running, ETag::new("\"0x8DC1\"")))
        );
        assert_eq!(parse_version(&Version("7".into())), None);
    }
}
