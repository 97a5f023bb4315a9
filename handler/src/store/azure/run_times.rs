//! [`RunTimes`] on Blob storage: one small JSON blob per group-spec digest
//! ([`names::run_time`]), changed by ETag compare-and-swap. A read is one Get Blob; a record is
//! one Get Blob and one conditional Put Blob (again on a lost race, a few times).

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobStore, backend, names};
use crate::azure_storage::{StorageError, Tags, WriteCondition};
use crate::engine::RunEstimate;
use crate::store::{Millis, RunTimes, StoreError, check_digest, decode_run_time, next_run_time};

/// Tries of a record that keeps losing its compare-and-swap before it gives up (transient).
const RECORD_TRIES: u32 = 8;

#[async_trait]
impl RunTimes for BlobStore {
    async fn run_time(&self, digest: &str) -> Result<Option<RunEstimate>, StoreError> {
        check_digest(digest)?;
        let blob = self
            .container
            .get(&names::run_time(digest))
            .await
            .map_err(backend("read a run time", digest))?;
        Ok(blob.and_then(|b| decode_run_time(&b.bytes)))
    }

    async fn record_run(&self, digest: &str, run_ms: Millis) -> Result<RunEstimate, StoreError> {
        check_digest(digest)?;
        let name = names::run_time(digest);
        for _ in 0..RECORD_TRIES {
            let stored = self
                .container
                .get(&name)
                .await
                .map_err(backend("read a run time", digest))?;
            let (before, condition) = match stored {
                Some(blob) => (
                    decode_run_time(&blob.bytes),
                    WriteCondition::Replace(blob.etag),
                ),
                None => (None, WriteCondition::Create),
            };
            let next = next_run_time(before, run_ms);
            let body = Bytes::from(serde_json::to_vec(&next).expect("an estimate serialises"));
            match self
                .container
                .put(&name, body, &condition, &Tags::new())
                .await
            {
                Ok(_) => return Ok(next),
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(backend("record a run time", digest)(e)),
            }
        }
        Err(StoreError::Conflict(format!("run time {digest}")))
    }
}
