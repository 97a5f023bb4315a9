//! [`BlobStore`]: checkpoints as blobs with ETag compare-and-swap, captured logs as blobs under the
//! deployment's prefix, and purge. Listing lives in [`super::index`].
//!
//! A record is one blob: its bytes are the blob's content, its index fields the blob's tags and
//! metadata (see [`super::names`]). A load is one Get Blob, which returns the metadata with the
//! content; a checkpoint written before the metadata existed costs one Get Blob Tags more, until
//! its next save writes them.
//!
//! A [`Version`] of this store is the checkpoint's ETag, prefixed with the status it was loaded
//! at (`Running "0x8DC…"`): a save compares the status it writes with the one it replaces and writes
//! the deployment's listing entry (`index/all/`, its status in the metadata) only when it moves to a
//! status with an entry, without another read. Callers treat it as opaque.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::ledger::Ledger;
use super::names;
use super::steps::{Prepared, QueueSteps};
use super::{StoreResult, backend};
use crate::azure_storage::{BlobContainer, BlobInfo, ETag, StorageError, Tags, WriteCondition};
use crate::clock::Clock;
use crate::store::{
    Checkpoints, Due, ListQuery, Millis, Page, Record, Scheduled, Status, StoreError, StoredRecord,
    Version,
};

/// Checkpoints and logs in one blob container.
pub struct BlobStore {
    pub(super) container: BlobContainer,
    steps: Arc<QueueSteps>,
    pub(super) clock: Arc<dyn Clock>,
    ledger: Arc<Ledger>,
}

fn version(status: Status, etag: &ETag) -> Version {
    Version(format!("{} {}", status.as_str(), etag.as_str()))
}

fn parse_version(version: &Version) -> Option<(Status, ETag)> {
    let (status, etag) = version.0.split_once(' ')?;
    Some((Status::parse(status)?, ETag::new(etag)))
}

/// The index tags of a record.
fn tags(record: &Record) -> StoreResult<Tags> {
    Tags::from_pairs(names::index_fields(record)).map_err(backend("tag a checkpoint", &record.id))
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

    /// `d`'s listing entry, saying `status` in its metadata (see [`super::names`]); only over
    /// the entry listed with `if_match` when given. Rewriting one that exists is harmless: a
    /// status with an entry never changes again.
    pub(super) async fn put_entry(
        &self,
        d: &Record,
        status: Status,
        if_match: Option<&ETag>,
    ) -> StoreResult<()> {
        let condition = match if_match {
            Some(etag) => WriteCondition::Replace(etag.clone()),
            None => WriteCondition::Overwrite,
        };
        self.container
            .put_with_metadata(
                &names::all_entry(d.created, &d.id),
                Bytes::new(),
                &condition,
                &Tags::new(),
                &[(names::ENTRY_STATUS, status.as_str().to_owned())],
            )
            .await
            .map(|_| ())
            .map_err(backend("write an index entry", &d.id))
    }

    /// After a write that put `d`'s entry and then lost its CAS: the entry may now say `d`'s
    /// status over the one the winner wrote (both wrote the same name). If the checkpoint has
    /// ended in another status, the entry is written again with it; a reader that meets the
    /// mismatch mends it too (see [`super::index`]).
    async fn settle_entry(&self, d: &Record) {
        let current = match self.read(&d.id).await {
            Ok(Some(current)) => current.record,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(deployment.id = %d.id, error = %e, "rereading after a lost CAS failed; listings mend the entry");
                return;
            }
        };
        if current.created == d.created
            && current.status != d.status
            && current.status.is_terminal()
            && let Err(e) = self.put_entry(&current, current.status, None).await
        {
            tracing::debug!(deployment.id = %d.id, error = %e, "mending an index entry failed; listings mend it");
        }
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
    async fn release_or_withdraw<T>(&self, prepared: Option<Prepared>, written: &StoreResult<T>) {
        let Some(prepared) = prepared else {
            return;
        };
        match written {
            Ok(_) => self.steps.confirm(prepared).await,
            Err(StoreError::Conflict(_)) => self.steps.withdraw(prepared).await,
            Err(_) => {}
        }
    }

    /// Writes a record in one Put Blob (its bytes, tags and metadata); returns the new ETag.
    async fn write(
        &self,
        record: &Record,
        tags: &Tags,
        condition: &WriteCondition,
        operation: &'static str,
    ) -> StoreResult<ETag> {
        self.container
            .put_with_metadata(
                &names::checkpoint(&record.id),
                record.body.clone(),
                condition,
                tags,
                &names::index_fields(record),
            )
            .await
            .map_err(backend(operation, &record.id))
    }

    /// Loads a record, uncounted (the caller's scope counts it).
    pub(super) async fn read(&self, id: &str) -> StoreResult<Option<StoredRecord>> {
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
        let stored = |record: Record| StoredRecord {
            version: version(record.status, &blob.etag),
            record,
        };
        if let Ok(record) = names::parse_record(id, blob.bytes.clone(), |key| {
            blob.metadata.get(key).map(String::as_str)
        }) {
            return Ok(Some(stored(record)));
        }
        // Written before checkpoints carried their index fields as metadata: the tags have them.
        let tags = self
            .container
            .get_tags(&names::checkpoint(id))
            .await
            .map_err(backend("read a checkpoint's tags", id))?;
        let record =
            names::parse_record(id, blob.bytes.clone(), |key| tags.get(key)).map_err(|field| {
                StoreError::Backend {
                    operation: "read a checkpoint's index fields",
                    transient: false,
                    source: format!("checkpoint {id} has no readable '{field}' tag or metadata")
                        .into(),
                }
            })?;
        Ok(Some(stored(record)))
    }

    async fn create_counted(&self, d: &Record, first: &Scheduled) -> StoreResult<Version> {
        let tags = tags(d)?;
        // A record created in a status with an entry has it, and the first step is sent, before the
        // checkpoint: a crash after them leaves an entry the listing skips and a step dropped as
        // unknown (there is no checkpoint), never a checkpoint that the listing cannot find or
        // that waits for a step nobody sent. A live one needs no entry: the listing finds it by
        // its tags.
        let indexed = names::indexed(d.status);
        let entry = async {
            if indexed {
                self.put_entry(d, d.status, None).await
            } else {
                Ok(())
            }
        };
        let (entry, prepared) = tokio::join!(entry, self.steps.prepare(first));
        let prepared = prepared?;
        if let Err(e) = entry {
            self.steps.withdraw(prepared).await;
            return Err(e);
        }
        let created = self
            .write(d, &tags, &WriteCondition::Create, "create a checkpoint")
            .await;
        if indexed && matches!(created, Err(StoreError::Conflict(_))) {
            self.settle_entry(d).await;
        }
        self.release_or_withdraw(Some(prepared), &created).await;
        Ok(version(d.status, &created?))
    }

    async fn save_counted(
        &self,
        d: &Record,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> StoreResult<Version> {
        let (was, etag) =
            parse_version(expected).ok_or_else(|| StoreError::Conflict(d.id.clone()))?;
        let tags = tags(d)?;
        // Before the CAS: once the checkpoint says a status with an entry, the entry exists, and
        // once it schedules a step, that step's message exists. Live statuses have no entry, and
        // a status with one never changes again, so there is none to remove.
        let entered = was != d.status && names::indexed(d.status);
        let entry = async {
            if entered {
                self.put_entry(d, d.status, None).await
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
            .write(
                d,
                &tags,
                &WriteCondition::Replace(etag),
                "save a checkpoint",
            )
            .await;
        let settled = async {
            if entered && matches!(saved, Err(StoreError::Conflict(_))) {
                self.settle_entry(d).await;
            }
        };
        tokio::join!(settled, self.release_or_withdraw(prepared, &saved));
        Ok(version(d.status, &saved?))
    }

    async fn purge_counted(&self, id: &str) -> StoreResult<bool> {
        let Some(stored) = self.read(id).await? else {
            return Ok(false);
        };
        let d = &stored.record;
        // Index entries first, the checkpoint last: a purge cut short is found and finished by the
        // next sweep (the checkpoint still carries its `ended` tag). Earlier Berths also wrote an
        // `index/status/` entry per terminal status reached: removing one that is not there is a
        // free Delete Blob.
        let mut entries = vec![names::all_entry(d.created, id)];
        entries.extend(
            Status::ALL
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
        let blobs = self
            .list_all(&prefix)
            .await
            .map_err(backend("list a deployment's blobs", id))?;
        let logs = blobs.iter().filter(|b| b.name != checkpoint);
        let removed = futures::future::join_all(logs.map(|b| self.remove(&b.name, None))).await;
        for r in removed {
            r.map_err(backend("purge logs", id))?;
        }
        self.remove(&checkpoint, None)
            .await
            .map_err(backend("purge a checkpoint", id))?;
        Ok(true)
    }

    /// Writes blob `name` of deployment `id` whatever it held (logs, history pages), counted as
    /// the deployment's.
    async fn overwrite(
        &self,
        id: &str,
        name: &str,
        bytes: &[u8],
        operation: &'static str,
    ) -> StoreResult<()> {
        let no_tags = Tags::new();
        let put = self.container.put(
            name,
            Bytes::copy_from_slice(bytes),
            &WriteCondition::Overwrite,
            &no_tags,
        );
        self.ledger
            .during(id, put)
            .await
            .map(|_| ())
            .map_err(backend(operation, id))
    }

    /// Every blob whose name starts with `prefix`, page after page (a page is one List Blobs).
    async fn list_all(&self, prefix: &str) -> Result<Vec<BlobInfo>, StorageError> {
        let mut blobs = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .container
                .list(
                    prefix,
                    marker.as_deref(),
                    crate::azure_storage::blob::MAX_PAGE,
                )
                .await?;
            blobs.extend(page.blobs);
            marker = page.next_marker;
            if marker.is_none() {
                return Ok(blobs);
            }
        }
    }

    async fn get_logs_counted(
        &self,
        id: &str,
        group: &str,
        container: &str,
    ) -> StoreResult<Option<String>> {
        let prefix = names::logs_prefix(id);
        let mut best: Option<(Option<time::OffsetDateTime>, String, String)> = None;
        let blobs = self
            .list_all(&prefix)
            .await
            .map_err(backend("list logs", id))?;
        for blob in blobs {
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
    async fn create_record(
        &self,
        record: &Record,
        first: &Scheduled,
    ) -> Result<Version, StoreError> {
        self.ledger
            .during(&record.id, self.create_counted(record, first))
            .await
    }

    async fn load_record(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        self.ledger.during(id, self.read(id)).await
    }

    async fn save_record(
        &self,
        record: &Record,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> Result<Version, StoreError> {
        let saved = self
            .ledger
            .during(&record.id, self.save_counted(record, expected, then))
            .await?;
        if record.ended.is_some() {
            tracing::info!(deployment.id = %record.id, storage.transactions = %self.ledger.snapshot(&record.id),
                "deployment done; its storage transactions in this process");
        }
        Ok(saved)
    }

    async fn purge(&self, id: &str) -> Result<bool, StoreError> {
        let purged = self.ledger.during(id, self.purge_counted(id)).await?;
        self.ledger.forget(id);
        Ok(purged)
    }

    async fn list_records(&self, query: &ListQuery) -> Result<Page, StoreError> {
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
        self.overwrite(id, &name, content.as_bytes(), "save logs")
            .await
    }

    async fn get_instance_logs(
        &self,
        id: &str,
        group: &str,
        instance: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError> {
        let segment =
            |part: &str| !part.is_empty() && !part.contains('/') && part != "." && part != "..";
        if !names::valid_id(id) || ![group, instance, container].into_iter().all(segment) {
            return Ok(None);
        }
        let name = names::logs(id, group, instance, container);
        let get = self.container.get(&name);
        self.ledger
            .during(id, get)
            .await
            .map(|blob| blob.map(|b| String::from_utf8_lossy(&b.bytes).into_owned()))
            .map_err(backend("read logs", id))
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

    async fn put_history(&self, id: &str, page: u32, body: &[u8]) -> Result<(), StoreError> {
        let name = names::history(id, page);
        self.overwrite(id, &name, body, "save a history page").await
    }

    async fn get_history(&self, id: &str, page: u32) -> Result<Option<Bytes>, StoreError> {
        if !names::valid_id(id) {
            return Ok(None);
        }
        let name = names::history(id, page);
        let get = self.container.get(&name);
        self.ledger
            .during(id, get)
            .await
            .map(|blob| blob.map(|b| b.bytes))
            .map_err(backend("read a history page", id))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_carry_the_status_and_the_etag() {
        let v = version(Status::Running, &ETag::new("\"0x8DC1\""));
        assert_eq!(v.0, "Running \"0x8DC1\"");
        assert_eq!(
            parse_version(&v),
            Some((Status::Running, ETag::new("\"0x8DC1\"")))
        );
        assert_eq!(parse_version(&Version("7".into())), None);
    }
}
