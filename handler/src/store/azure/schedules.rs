//! [`Schedules`] on Blob storage: one JSON blob per schedule ([`names::schedule`]), its version
//! the blob's ETag. A load is one Get Blob; a save one conditional Put Blob (`If-None-Match: *`
//! to create, `If-Match` to replace); a list one List Blobs per 5,000 schedules and one Get Blob
//! each.

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobStore, backend, names};
use crate::azure_storage::{ETag, Tags, WriteCondition};
use crate::store::{Schedules, StoreError, StoredSchedule, Version};

#[async_trait]
impl Schedules for BlobStore {
    async fn load_schedule(&self, name: &str) -> Result<Option<StoredSchedule>, StoreError> {
        let blob = self
            .container
            .get(&names::schedule(name))
            .await
            .map_err(backend("load a schedule", name))?;
        Ok(blob.map(|b| StoredSchedule {
            name: name.to_owned(),
            body: b.bytes,
            version: Version(b.etag.as_str().to_owned()),
        }))
    }

    async fn save_schedule(
        &self,
        name: &str,
        body: &[u8],
        expected: Option<&Version>,
    ) -> Result<Version, StoreError> {
        let condition = match expected {
            None => WriteCondition::Create,
            Some(v) => WriteCondition::Replace(ETag::new(v.0.clone())),
        };
        let etag = self
            .container
            .put(
                &names::schedule(name),
                Bytes::copy_from_slice(body),
                &condition,
                &Tags::new(),
            )
            .await
            .map_err(backend("save a schedule", name))?;
        Ok(Version(etag.as_str().to_owned()))
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        self.container
            .delete(&names::schedule(name), None)
            .await
            .map_err(backend("delete a schedule", name))
    }

    async fn list_schedules(&self, limit: usize) -> Result<Vec<StoredSchedule>, StoreError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .container
                .list(names::SCHEDULES, marker.as_deref(), 5_000)
                .await
                .map_err(backend("list schedules", names::SCHEDULES))?;
            for info in page.blobs {
                if found.len() >= limit {
                    return Ok(found);
                }
                let Some(name) = info.name.strip_prefix(names::SCHEDULES) else {
                    continue;
                };
                // Deleted between the listing and the read: not listed.
                if let Some(schedule) = self.load_schedule(name).await? {
                    found.push(schedule);
                }
            }
            marker = page.next_marker;
            if marker.is_none() || found.len() >= limit {
                return Ok(found);
            }
        }
    }
}
