//! Finding deployments without reading every checkpoint.
//!
//! # Listing, newest first
//! Find Blobs by Tags returns blobs in name order, and checkpoint names (`deployments/{id}/…`) are
//! in id order, so the listing keeps its own name-ordered index: one empty blob per deployment
//! under `index/all/`, and, once it has finished, one under `index/status/{Status}/` of its
//! terminal status, each named by the inverted creation time and the id (see [`super::names`]). A
//! page is one List Blobs of that prefix plus one Get Blob per entry (the page holds whole
//! deployments, so the checkpoints are read anyway), and every entry is checked against its
//! checkpoint: an entry whose checkpoint is missing, was created at another time, or has another
//! status is skipped.
//!
//! Live statuses (`Pending`, `Running`) have no entries, so that a deployment's way to its end
//! costs no entry writes and removals on the way: a page of them is found by the checkpoints'
//! `status` tag (Find Blobs by Tags, one request per 5,000 live deployments), sorted newest first
//! in memory, and continued after the last `(created, id)` listed. Each listed checkpoint is read
//! and checked as above (Azure's tag index lags writes by up to a second).
//!
//! # Correct under concurrency
//! - Entries are written **before** the CAS that needs them (create: both; a status change: the new
//!   status's), so a checkpoint is never without its entries. A crash or a lost CAS can leave an
//!   entry too many, never one too few; reads skip it.
//! - The entry of the status a save **leaves** is deleted after that save commits. Statuses only
//!   move forward (`Pending` → `Running` → one terminal status; [`super::names::rank`]), so no later
//!   writer can need it again.
//! - A reader deletes (with `If-Match` of the ETag it listed) an entry that can never become true:
//!   a status behind the checkpoint's, an entry of another creation of the same id, or one whose
//!   checkpoint has been missing for longer than [`ORPHAN_GRACE`] (a create that never happened).
//!   An entry whose status is *ahead* of its checkpoint may belong to a CAS in flight and is left.
//!
//! # Cost
//! A page costs one List Blobs plus one Get Blob per item, whatever the number of deployments (plus
//! one more List for each run of skipped entries, which only crashes and lost CASes leave); a page
//! of a live status, one Find Blobs by Tags per 5,000 live deployments of it instead of the List.
//! Each deployment costs 1 Put Blob at create and 1 when it finishes.
//! The continuation token is the service's marker, wrapped with the prefix it belongs to.
//!
//! # The sweep's queries
//! `overdue` and `expired` ask Find Blobs by Tags for checkpoints whose `wake` (resp. `ended`) tag
//! is before a time: one request per 5,000 matches, so they grow with live (resp. expired)
//! deployments, not with history. In Azure the tag index lags writes by up to about a second; a
//! stale `wake` makes the sweep send a step for an old seq, which the driver drops as stale.
//! Azurite 3.37 scans only `maxresults` blobs per Find request and ends the listing when fewer of them
//! match, so Berth always asks for full pages of 5,000; on Azurite a container beyond 5,000 blobs
//! would need more (Azure itself pages correctly).

use base64::Engine as _;
use futures::StreamExt as _;

use super::checkpoints::BlobStore;
use super::names;
use super::{StoreResult, backend};
use crate::azure_storage::blob::MAX_PAGE;
use crate::azure_storage::{BlobInfo, TagFilter, TagOp, TaggedBlob};
use crate::store::{Due, ListQuery, Millis, Page, Record, Status, StoreError, StoredRecord};

/// How long an entry may wait for its checkpoint before a reader removes it.
pub const ORPHAN_GRACE: Millis = 10 * 60_000;
/// Checkpoints read at once while verifying a page.
const PARALLEL_READS: usize = 16;

/// What a listed entry turned out to be.
enum Verdict {
    /// It lists this deployment.
    Listed(Box<Record>),
    /// Skipped, and it can be removed.
    Garbage,
    /// Skipped, but it may still become true.
    Skipped,
}

fn token(prefix: &str, marker: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{prefix}\n{marker}"))
}

/// A live listing's continuation: `(created, id)` of the last deployment listed.
fn parse_cursor(marker: &str) -> StoreResult<(Millis, String)> {
    let (created, id) = marker.split_once(':').ok_or(StoreError::BadContinuation)?;
    let created = created.parse().map_err(|_| StoreError::BadContinuation)?;
    Ok((created, id.to_owned()))
}

fn parse_token(prefix: &str, token: &str) -> StoreResult<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::BadContinuation)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadContinuation)?;
    match text.split_once('\n') {
        Some((p, marker)) if p == prefix && !marker.is_empty() => Ok(marker.to_owned()),
        _ => Err(StoreError::BadContinuation),
    }
}

impl BlobStore {
    /// One page of the listing (see the module).
    pub(super) async fn list_page(&self, query: &ListQuery) -> StoreResult<Page> {
        let top = query.top.clamp(1, 1000);
        let prefix = match query.status {
            Some(status) if !names::indexed(status) => return self.list_live(status, query).await,
            Some(status) => names::status_prefix(status),
            None => names::ALL_PREFIX.to_owned(),
        };
        let mut marker = match &query.continuation {
            Some(t) => Some(parse_token(&prefix, t)?),
            None => None,
        };
        let mut items = Vec::new();
        loop {
            // Ask for exactly what is missing, so that every listed entry is consumed and the
            // service's marker is where the next page starts.
            let want = (top - items.len()) as u32;
            let page = self
                .container
                .list(&prefix, marker.as_deref(), want)
                .await
                .map_err(backend("list deployments", &prefix))?;
            let verdicts: Vec<(BlobInfo, Verdict)> = futures::stream::iter(page.blobs)
                .map(|entry| async {
                    let verdict = self.verify(&prefix, query.status, &entry).await;
                    verdict.map(|v| (entry, v))
                })
                .buffered(PARALLEL_READS)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<StoreResult<_>>()?;
            let mut garbage = Vec::new();
            for (entry, verdict) in verdicts {
                match verdict {
                    Verdict::Listed(d) => items.push(*d),
                    Verdict::Garbage => garbage.push(entry),
                    Verdict::Skipped => {}
                }
            }
            self.remove_garbage(garbage).await;
            marker = page.next_marker;
            if items.len() >= top || marker.is_none() {
                break;
            }
        }
        Ok(Page {
            items,
            continuation: marker.map(|m| token(&prefix, &m)),
        })
    }

    /// One page of the deployments in a live status, found by their checkpoints' `status` tag.
    async fn list_live(&self, status: Status, query: &ListQuery) -> StoreResult<Page> {
        let top = query.top.clamp(1, 1000);
        let scope = format!("live/{}", status.as_str());
        let after = match &query.continuation {
            Some(t) => Some(parse_cursor(&parse_token(&scope, t)?)?),
            None => None,
        };
        // The service answers with the tags the filter names only: name `created` too.
        let filter = TagFilter::new(names::TAG_STATUS, TagOp::Eq, status.as_str())
            .and_then(|f| f.and(names::TAG_CREATED, TagOp::Ge, &names::time(0)))
            .map_err(backend("build a tag filter", names::TAG_STATUS))?;
        let mut found: Vec<(Millis, String)> = self
            .find_all(&filter)
            .await?
            .into_iter()
            .filter_map(|TaggedBlob { name, tags }| {
                let id = names::checkpoint_id(&name)?;
                let created = tags.get(names::TAG_CREATED)?.parse().ok()?;
                Some((created, id.to_owned()))
            })
            .collect();
        // The order of the entries' names: newest first, then by id.
        found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        if let Some((created, id)) = &after {
            found.retain(|(c, i)| c < created || (c == created && i > id));
        }
        let mut items = Vec::new();
        let mut consumed = 0;
        while items.len() < top && consumed < found.len() {
            let want = (top - items.len()).min(found.len() - consumed);
            let batch = &found[consumed..consumed + want];
            let ids: Vec<String> = batch.iter().map(|(_, id)| id.clone()).collect();
            let read: Vec<Option<StoredRecord>> = futures::stream::iter(ids)
                .map(|id| async move { self.read(&id).await })
                .buffered(PARALLEL_READS)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<StoreResult<_>>()?;
            for ((created, _), stored) in batch.iter().zip(read) {
                if let Some(StoredRecord { record: d, .. }) = stored
                    && d.status == status
                    && d.created == *created
                {
                    items.push(d);
                }
            }
            consumed += want;
        }
        // More are left: continue after the last one looked at.
        let continuation = found[..consumed]
            .last()
            .filter(|_| consumed < found.len())
            .map(|(created, id)| token(&scope, &format!("{created}:{id}")));
        Ok(Page {
            items,
            continuation,
        })
    }

    /// Checks one listed entry against its checkpoint.
    async fn verify(
        &self,
        prefix: &str,
        status: Option<Status>,
        entry: &BlobInfo,
    ) -> StoreResult<Verdict> {
        let Some((created, id)) = names::parse_entry(prefix, &entry.name) else {
            return Ok(Verdict::Skipped);
        };
        let Some(StoredRecord { record: d, .. }) = self.read(id).await? else {
            let age = entry
                .last_modified
                .map(|t| self.clock.now() - (t.unix_timestamp_nanos() / 1_000_000) as Millis);
            return Ok(match age {
                Some(age) if age > ORPHAN_GRACE => Verdict::Garbage,
                _ => Verdict::Skipped,
            });
        };
        if d.created != created {
            // Another creation of this id (a repeated submit lost its create, or the id was
            // purged and reused): this entry's create can never succeed while the checkpoint exists.
            return Ok(Verdict::Garbage);
        }
        match status {
            Some(s) if s != d.status => Ok(if names::entry_is_behind(s, d.status) {
                Verdict::Garbage
            } else {
                Verdict::Skipped
            }),
            _ => Ok(Verdict::Listed(Box::new(d))),
        }
    }

    /// Removes entries that can never be true again, each only if unchanged since listed.
    async fn remove_garbage(&self, entries: Vec<BlobInfo>) {
        let removals = entries
            .iter()
            .filter_map(|e| e.etag.as_ref().map(|etag| self.remove(&e.name, Some(etag))));
        for result in futures::future::join_all(removals).await {
            if let Err(e) = result {
                tracing::debug!(error = %e, "removing a stale index entry failed; the next listing skips it again");
            }
        }
    }

    /// Every checkpoint the filter matches, with its tags.
    async fn find_all(&self, filter: &TagFilter) -> StoreResult<Vec<TaggedBlob>> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .container
                .find_by_tags(filter, marker.as_deref(), MAX_PAGE)
                .await
                .map_err(backend("find blobs by tags", self.container.name()))?;
            found.extend(page.blobs);
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        Ok(found)
    }

    /// Every checkpoint whose tag `key` is before `before`, with that tag's value.
    async fn tagged_before(&self, key: &str, before: Millis) -> StoreResult<Vec<(String, String)>> {
        let filter = TagFilter::new(key, TagOp::Lt, &names::time(before))
            .map_err(backend("build a tag filter", key))?;
        Ok(self
            .find_all(&filter)
            .await?
            .into_iter()
            .filter_map(|TaggedBlob { name, tags }| {
                let id = names::checkpoint_id(&name)?.to_owned();
                let value = tags.get(key)?.to_owned();
                Some((id, value))
            })
            .collect())
    }

    /// Live deployments whose step was due before `before`, the longest overdue first.
    pub(super) async fn find_overdue(&self, before: Millis, limit: usize) -> StoreResult<Vec<Due>> {
        let mut due: Vec<Due> = self
            .tagged_before(names::TAG_WAKE, before)
            .await?
            .into_iter()
            .filter_map(|(id, value)| {
                let (at, seq) = names::parse_wake(&value)?;
                Some(Due { id, seq, at })
            })
            .collect();
        due.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        due.truncate(limit);
        Ok(due)
    }

    /// Finished deployments that ended before `before`, the oldest first.
    pub(super) async fn find_expired(
        &self,
        before: Millis,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let mut ended: Vec<(String, String)> = self.tagged_before(names::TAG_ENDED, before).await?;
        ended.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        Ok(ended.into_iter().take(limit).map(|(id, _)| id).collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_their_prefix() {
        let t = token("index/all/", "2!88!MDAwMDIx");
        assert_eq!(parse_token("index/all/", &t).unwrap(), "2!88!MDAwMDIx");
        assert!(matches!(
            parse_token("index/status/Running/", &t),
            Err(StoreError::BadContinuation)
        ));
        assert!(matches!(
            parse_token("index/all/", "not base64!"),
            Err(StoreError::BadContinuation)
        ));
    }
}
