//! Finding deployments without reading every checkpoint.
//!
//! # Listing, newest first
//! Find Blobs by Tags returns blobs in name order, and checkpoint names (`deployments/{id}/…`) are
//! in id order, so deployments that ended are listed from an index of their own: one empty blob per
//! deployment under `index/all/`, written when it ends, named by the inverted creation time and the
//! id (see [`super::names`]) so that name order is the listing's order, with the status it ended
//! in as the blob's metadata. Live statuses (`Pending`, `Running`) have no entries, so that a
//! deployment's way to its end writes and removes none: their checkpoints are found by their
//! `status` tag.
//!
//! - **Unfiltered**: the entries (List Blobs, with metadata) merged with the live checkpoints (one
//!   Find Blobs by Tags for `Failed < status < Succeeded`, the range that holds exactly `Pending`
//!   and `Running`; tag filters have neither "or" nor "not"), sorted newest first in memory. A
//!   deployment met by both (it ended between the Find and the List, or an earlier Berth wrote its
//!   entry at create) is one candidate, read once. A candidate whose checkpoint exists at its
//!   creation time is listed, whatever its status now.
//! - **By a status with entries** (the terminal ones, and `Unknown`): List Blobs of `index/all/`
//!   with metadata, keeping the entries that say that status and those that say none (an earlier
//!   Berth's, see below); each kept one is listed when its checkpoint has that status. Matches can
//!   be rare among the entries, so this listing asks for pages of 5,000 entries and a page of it
//!   may need more than one List: one per 5,000 entries gone through, still cheap next to one Get
//!   per entry.
//! - **By a live status**: the checkpoints of that status found by tag, sorted newest first in
//!   memory and continued after the last `(created, id)` listed.
//!
//! Each listed checkpoint is read (a page holds whole deployments) and checked against its
//! candidate: Azure's tag index lags writes by up to a second, and crashes and lost CASes leave
//! entries. A checkpoint whose status word this Berth does not know is listed unfiltered once it
//! has an entry (a deployment that ended has one, and this Berth writes one for `Unknown`); a live
//! one of a newer Berth's word outside the live range is not.
//!
//! Earlier Berths wrote an `index/all/` entry without metadata at every create, and an
//! `index/status/{Status}/` entry when the deployment ended. The first lists their deployments,
//! live or ended, with no migration: its checkpoint says the status, and a live one also found by
//! tag is one candidate, listed once. The second is ignored and only purged.
//!
//! The continuation token of the unfiltered and status listings carries the last `(created, id)`
//! the page went through, the List Blobs marker of the page its last taken entry came from, and
//! how many of that page's entries were taken. The next page lists again from that marker,
//! skipping what sorts at or before the cursor: an entry written since (a deployment that ended
//! after the previous page, and sorts after it) is found, and one listed already is not listed
//! again; entries a status listing passed over after its last match are gone through again. The
//! markers are the service's and opaque, never "the next blob" after the cursor. A deployment
//! created after the first page sorts before the cursor and is not listed by later pages. A token
//! is refused with [`StoreError::BadContinuation`] when it is longer than [`MAX_TOKEN`], not
//! base64, not of this listing (another status's, or one of an earlier Berth's listings, which the
//! user starts again), or malformed; a well-formed token with a made-up marker lists from wherever
//! the service reads it to be, each item still checked against its checkpoint, or is refused when
//! the service refuses the marker. A page makes at most [`MAX_LISTS_PER_PAGE`] List Blobs: one
//! that reaches the limit (a forged cursor that sorts after every entry, a status none of many
//! thousand entries says) ends there, possibly empty, its token on from the next List page, so a
//! request's work stays bounded and the walk still moves forward. An entry written meanwhile into
//! the stretch such a page went through is not listed by its later pages.
//!
//! # Correct under concurrency
//! - The entry is written **before** the CAS that moves a checkpoint to a status with an entry,
//!   so such a checkpoint is never without its entry. A crash or a lost CAS can leave an entry too
//!   many, never one too few: an entry whose checkpoint is still live is ahead of it (statuses
//!   only move forward, `Pending` → `Running` → one terminal status that never changes), may
//!   belong to a CAS in flight, and is skipped by the status listings and left; the save that ends
//!   the deployment writes it again.
//! - Two writers racing from a live status to two terminal statuses write the same entry, and the
//!   loser's status may be the one left in its metadata. The loser, on its conflict, reads the
//!   checkpoint and writes the entry again with the status it ended in; a reader that meets an
//!   entry saying another status than its ended checkpoint (behind it: that checkpoint never
//!   changes again) writes it again too, `If-Match` the ETag it listed. Until then the listing of
//!   the checkpoint's status misses it; the unfiltered one lists it.
//! - A reader deletes (with `If-Match` of the ETag it listed) an entry that can never become true:
//!   one of another creation of the same id, or one whose checkpoint has been missing for longer
//!   than [`ORPHAN_GRACE`] (a create that never happened). An entry of a live checkpoint is never
//!   garbage: it is an earlier Berth's, or an end in flight or lost.
//!
//! # Cost
//! Each deployment costs 1 Put Blob for the listing, when it ends; none at create. An unfiltered
//! page costs one List Blobs, one Find Blobs by Tags (one more per 5,000 live deployments) and one
//! Get Blob per item (plus one List when the page runs past the List page it resumed from: the
//! token asks for the taken entries again plus a page, up to 5,000, so that is once in thousands
//! of entries). A page of a terminal status costs at least one List Blobs (one per 5,000 entries
//! gone through) and one Get Blob per match (and per entry of an earlier Berth gone through,
//! which has no status to filter by). A page of a live status costs one Find Blobs by Tags per
//! 5,000 live deployments of it and one Get Blob per item. Whatever the number of deployments
//! that ended, the unfiltered page does not grow with history. An entry found saying the wrong
//! status costs its finder one Put Blob to mend.
//!
//! # The sweep's queries
//! `overdue` and `expired` ask Find Blobs by Tags for checkpoints whose `wake` (resp. `ended`) tag
//! is before a time: one request per 5,000 matches, so they grow with live (resp. expired)
//! deployments, not with history. In Azure the tag index lags writes by up to about a second; a
//! stale `wake` makes the sweep send a step for an old seq, which the driver drops as stale.
//! Azurite 3.37 scans only `maxresults` blobs per Find request and ends the listing when fewer of them
//! match, so Berth always asks for full pages of 5,000; on Azurite a container beyond 5,000 blobs
//! would need more (Azure itself pages correctly).

use std::cmp::Ordering;

use base64::Engine as _;
use futures::StreamExt as _;

use super::checkpoints::BlobStore;
use super::names;
use super::{StoreResult, backend};
use crate::azure_storage::blob::MAX_PAGE;
use crate::azure_storage::{BlobInfo, StorageError, TagFilter, TagOp, TaggedBlob};
use crate::store::{Due, ListQuery, Millis, Page, Record, Status, StoreError, StoredRecord};

/// How long an entry may wait for its checkpoint before a reader removes it.
pub const ORPHAN_GRACE: Millis = 10 * 60_000;
/// Checkpoints read at once while verifying a page.
const PARALLEL_READS: usize = 16;
/// The longest continuation token read (Berth's own are under two hundred characters: a cursor
/// and a service marker).
pub const MAX_TOKEN: usize = 4096;
/// Most List Blobs one page of the entries makes. A token whose cursor sorts after every entry
/// (or a status matched by none of thousands of entries) would otherwise walk the whole index in
/// one request; at the limit the page ends, its token resuming from the next List page.
pub const MAX_LISTS_PER_PAGE: usize = 8;

/// A deployment's place in the listing: newest first, then by id.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    created: Millis,
    id: String,
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .created
            .cmp(&self.created)
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Key {
    fn write(&self) -> String {
        format!("{}:{}", self.created, self.id)
    }

    fn read(text: &str) -> StoreResult<Self> {
        let (created, id) = text.split_once(':').ok_or(StoreError::BadContinuation)?;
        let created = created.parse().map_err(|_| StoreError::BadContinuation)?;
        Ok(Key {
            created,
            id: id.to_owned(),
        })
    }
}

/// One deployment a page reached: its entry, if the entries listed it (otherwise the tag query
/// found it).
struct Candidate {
    key: Key,
    entry: Option<BlobInfo>,
}

/// What checking a candidate against its checkpoint found.
struct Verdict {
    /// The deployment, when the candidate lists it.
    listed: Option<Record>,
    /// An entry that can never be true again.
    garbage: Option<BlobInfo>,
    /// An entry saying another status than its ended checkpoint, and that status.
    mend: Option<(BlobInfo, Record)>,
}

fn token(scope: &str, rest: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{scope}\n{rest}"))
}

/// What follows the first line of a token of `scope`.
fn parse_token(scope: &str, token: &str) -> StoreResult<String> {
    if token.len() > MAX_TOKEN {
        return Err(StoreError::BadContinuation);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::BadContinuation)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadContinuation)?;
    match text.split_once('\n') {
        Some((s, rest)) if s == scope && !rest.is_empty() => Ok(rest.to_owned()),
        _ => Err(StoreError::BadContinuation),
    }
}

/// The first line of the token of a listing of the entries: `all`, or `status/{Status}`.
fn scope(filter: Option<Status>) -> String {
    match filter {
        None => "all".to_owned(),
        Some(s) => format!("status/{}", s.as_str()),
    }
}

/// The status an entry says, if it says one (an earlier Berth's says none).
fn entry_status(entry: &BlobInfo) -> Option<&str> {
    entry.metadata.get(names::ENTRY_STATUS).map(String::as_str)
}

/// Where the entries' listing resumes: the List Blobs marker of a page (`None`: the start) and
/// how many of that page's entries are behind the cursor, so that asking for that many more than
/// a page finds a page of new ones.
#[derive(Clone, Debug, Default, PartialEq)]
struct Resume {
    marker: Option<String>,
    seen: usize,
}

/// A listing's token, read: the last deployment gone through and where the entries resume.
#[derive(Debug, PartialEq)]
struct Position {
    after: Key,
    resume: Resume,
}

impl Position {
    fn write(&self, scope: &str) -> String {
        let text = format!(
            "{}\n{} {}",
            self.after.write(),
            self.resume.seen,
            self.resume.marker.as_deref().unwrap_or("")
        );
        token(scope, &text)
    }

    fn read(scope: &str, t: &str) -> StoreResult<Self> {
        let text = parse_token(scope, t)?;
        let mut lines = text.split('\n');
        let (Some(after), Some(resume), None) = (lines.next(), lines.next(), lines.next()) else {
            return Err(StoreError::BadContinuation);
        };
        let after = Key::read(after)?;
        let (seen, marker) = resume.split_once(' ').ok_or(StoreError::BadContinuation)?;
        let seen = seen.parse().map_err(|_| StoreError::BadContinuation)?;
        if seen > MAX_PAGE as usize {
            return Err(StoreError::BadContinuation);
        }
        let marker = (!marker.is_empty()).then(|| marker.to_owned());
        Ok(Position {
            after,
            resume: Resume { marker, seen },
        })
    }
}

/// The entries as a listing reads them: a List Blobs page at a time, from where its token left
/// them, keeping those that may be of `filter`.
struct Source {
    filter: Option<Status>,
    /// The marker the page in `page` was listed from.
    marker: Option<String>,
    page: Vec<BlobInfo>,
    /// The page's first entry not yet taken or passed over.
    next: usize,
    /// The page's `next_marker`: more to list.
    following: Option<String>,
    /// Whether `page` has been listed yet.
    listed: bool,
    /// What the token says after this page: where the last entry taken came from.
    resume: Resume,
    /// List Blobs made for this page.
    lists: usize,
    /// The page stopped at [`MAX_LISTS_PER_PAGE`] with more to list from `following`.
    cut: bool,
}

impl Source {
    fn new(filter: Option<Status>, resume: Resume) -> Self {
        Source {
            filter,
            marker: resume.marker.clone(),
            page: Vec::new(),
            next: 0,
            following: None,
            listed: false,
            resume,
            lists: 0,
            cut: false,
        }
    }

    /// Lists this source's next page: the token's first (as many entries as it saw, plus `top`),
    /// then on from the service's markers. A status listing asks for full pages: its matches may
    /// be few among them.
    async fn list_next(&mut self, store: &BlobStore, top: usize) -> StoreResult<()> {
        let (marker, want, from_token) = if self.listed {
            (self.following.take(), top, false)
        } else {
            (self.marker.clone(), self.resume.seen + top, true)
        };
        let want = match self.filter {
            None => want.min(MAX_PAGE as usize) as u32,
            Some(_) => MAX_PAGE,
        };
        let page = store
            .container
            .list_with_metadata(names::ENTRIES, marker.as_deref(), want)
            .await
            .map_err(listing(from_token && marker.is_some()))?;
        self.lists += 1;
        self.marker = marker;
        self.page = page.blobs;
        self.next = 0;
        self.following = page.next_marker;
        self.listed = true;
        Ok(())
    }

    /// The key of an entry this listing may list, sorting after `after`.
    fn key_of(&self, entry: &BlobInfo, after: Option<&Key>) -> Option<Key> {
        let (created, id) = names::parse_entry(names::ENTRIES, &entry.name)?;
        let key = Key {
            created,
            id: id.to_owned(),
        };
        let wanted = self
            .filter
            .is_none_or(|s| entry_status(entry).is_none_or(|w| w == s.as_str()));
        (wanted && after.is_none_or(|a| key > *a)).then_some(key)
    }

    /// The next entry's key, listing as needed, passing entries this listing does not want.
    async fn head(
        &mut self,
        store: &BlobStore,
        after: Option<&Key>,
        top: usize,
    ) -> StoreResult<Option<Key>> {
        loop {
            if !self.listed || (self.next == self.page.len() && self.following.is_some()) {
                if self.lists >= MAX_LISTS_PER_PAGE {
                    self.cut = true;
                    return Ok(None);
                }
                self.list_next(store, top).await?;
            }
            while let Some(entry) = self.page.get(self.next) {
                if let Some(key) = self.key_of(entry, after) {
                    return Ok(Some(key));
                }
                self.next += 1;
            }
            if self.following.is_none() {
                return Ok(None);
            }
        }
    }

    /// Whether more may follow, without listing: a wanted entry left in this page, or another
    /// page.
    fn more(&self, after: Option<&Key>) -> bool {
        self.following.is_some()
            || self.page[self.next.min(self.page.len())..]
                .iter()
                .any(|e| self.key_of(e, after).is_some())
    }

    /// Takes the head entry: the token now resumes from this page.
    fn take(&mut self) -> BlobInfo {
        let entry = self.page[self.next].clone();
        self.next += 1;
        self.resume = Resume {
            marker: self.marker.clone(),
            seen: self.next,
        };
        entry
    }
}

/// A List Blobs of a token's marker that the service refuses is the token's fault.
fn listing(from_token: bool) -> impl Fn(StorageError) -> StoreError {
    let failed = backend("list deployments", names::ENTRIES);
    move |e| match e.status() {
        Some(400) if from_token => StoreError::BadContinuation,
        _ => failed(e),
    }
}

/// The tag filter of every live checkpoint: one range of status words (see [`names::live`]).
fn live_filter() -> StoreResult<TagFilter> {
    // The service answers with the tags the filter names only: name `created`.
    TagFilter::new(names::TAG_CREATED, TagOp::Ge, &names::time(0))
        .and_then(|f| f.and(names::TAG_STATUS, TagOp::Gt, names::LIVE_AFTER.as_str()))
        .and_then(|f| f.and(names::TAG_STATUS, TagOp::Lt, names::LIVE_BEFORE.as_str()))
        .map_err(backend("build a tag filter", names::TAG_STATUS))
}

impl BlobStore {
    /// One page of the listing (see the module).
    pub(super) async fn list_page(&self, query: &ListQuery) -> StoreResult<Page> {
        let top = query.top.clamp(1, 1000);
        match query.status {
            Some(status) if names::live(status) => self.list_live(status, top, query).await,
            filter => self.list_entries(filter, top, query).await,
        }
    }

    /// One page of every deployment (the entries merged with the live checkpoints), or of one
    /// status with entries (see the module).
    async fn list_entries(
        &self,
        filter: Option<Status>,
        top: usize,
        query: &ListQuery,
    ) -> StoreResult<Page> {
        let scope = scope(filter);
        let position = match &query.continuation {
            Some(t) => Some(Position::read(&scope, t)?),
            None => None,
        };
        let after = position.as_ref().map(|p| p.after.clone());
        let mut source = Source::new(filter, position.map(|p| p.resume).unwrap_or_default());
        let mut found = match filter {
            None => self.find_keys(&live_filter()?, after.as_ref()).await?,
            Some(_) => Vec::new(),
        };
        found.sort();
        let mut by_tag = found.into_iter().peekable();

        let mut items = Vec::new();
        let mut last = after.clone();
        let mut more = true;
        while items.len() < top && more && !source.cut {
            let mut batch = Vec::new();
            while batch.len() < top - items.len() {
                let head = source.head(self, after.as_ref(), top).await?;
                if source.cut {
                    // Nothing past the entries listed so far may be taken: the tag query's
                    // candidates after them wait for the next page too.
                    break;
                }
                let Some(key) = head.iter().chain(by_tag.peek()).min().cloned() else {
                    more = false;
                    break;
                };
                let entry = (head.as_ref() == Some(&key)).then(|| source.take());
                by_tag.next_if_eq(&key);
                batch.push(Candidate { key, entry });
            }
            if let Some(c) = batch.last() {
                last = Some(c.key.clone());
            }
            items.extend(self.verify_all(batch, filter).await?);
        }
        if source.cut {
            // On from the next List page, after the last deployment taken (or from the start):
            // every entry before that page was taken or is not of this listing.
            let position = Position {
                after: last.unwrap_or(Key {
                    created: Millis::MAX,
                    id: String::new(),
                }),
                resume: Resume {
                    marker: source.following.clone(),
                    seen: 0,
                },
            };
            return Ok(Page {
                items,
                continuation: Some(position.write(&scope)),
            });
        }
        let more = more && (by_tag.peek().is_some() || source.more(after.as_ref()));
        let continuation = last.filter(|_| more).map(|after| {
            Position {
                after,
                resume: source.resume,
            }
            .write(&scope)
        });
        Ok(Page {
            items,
            continuation,
        })
    }

    /// One page of the deployments in a live status, found by their checkpoints' `status` tag.
    async fn list_live(&self, status: Status, top: usize, query: &ListQuery) -> StoreResult<Page> {
        let scope = format!("live/{}", status.as_str());
        let after = match &query.continuation {
            Some(t) => Some(Key::read(&parse_token(&scope, t)?)?),
            None => None,
        };
        // The service answers with the tags the filter names only: name `created` too.
        let filter = TagFilter::new(names::TAG_STATUS, TagOp::Eq, status.as_str())
            .and_then(|f| f.and(names::TAG_CREATED, TagOp::Ge, &names::time(0)))
            .map_err(backend("build a tag filter", names::TAG_STATUS))?;
        let mut found = self.find_keys(&filter, after.as_ref()).await?;
        found.sort();
        let mut items = Vec::new();
        let mut consumed = 0;
        while items.len() < top && consumed < found.len() {
            let want = (top - items.len()).min(found.len() - consumed);
            let batch = &found[consumed..consumed + want];
            let ids: Vec<String> = batch.iter().map(|k| k.id.clone()).collect();
            let read: Vec<Option<StoredRecord>> = futures::stream::iter(ids)
                .map(|id| async move { self.read(&id).await })
                .buffered(PARALLEL_READS)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<StoreResult<_>>()?;
            for (key, stored) in batch.iter().zip(read) {
                if let Some(StoredRecord { record: d, .. }) = stored
                    && d.status == status
                    && d.created == key.created
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
            .map(|key| token(&scope, &key.write()));
        Ok(Page {
            items,
            continuation,
        })
    }

    /// The checkpoints a tag filter naming `created` finds, as keys sorting after `after`.
    async fn find_keys(&self, filter: &TagFilter, after: Option<&Key>) -> StoreResult<Vec<Key>> {
        Ok(self
            .find_all(filter)
            .await?
            .into_iter()
            .filter_map(|TaggedBlob { name, tags }| {
                let id = names::checkpoint_id(&name)?.to_owned();
                let created = tags.get(names::TAG_CREATED)?.parse().ok()?;
                Some(Key { created, id })
            })
            .filter(|key| after.is_none_or(|a| key > a))
            .collect())
    }

    /// Checks candidates against their checkpoints, in order; returns those listed, removes the
    /// entries found to be garbage and mends those saying a wrong status.
    async fn verify_all(
        &self,
        candidates: Vec<Candidate>,
        filter: Option<Status>,
    ) -> StoreResult<Vec<Record>> {
        let verdicts: Vec<Verdict> = futures::stream::iter(candidates)
            .map(|c| self.verify(c, filter))
            .buffered(PARALLEL_READS)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<StoreResult<_>>()?;
        let mut listed = Vec::new();
        let mut garbage = Vec::new();
        let mut mends = Vec::new();
        for v in verdicts {
            listed.extend(v.listed);
            garbage.extend(v.garbage);
            mends.extend(v.mend);
        }
        let mended = mends
            .iter()
            .map(|(entry, d)| self.put_entry(d, d.status, entry.etag.as_ref()));
        let (_, mended) = tokio::join!(
            self.remove_garbage(garbage),
            futures::future::join_all(mended)
        );
        for result in mended {
            if let Err(e) = result {
                tracing::debug!(error = %e, "mending an index entry failed; the next listing tries again");
            }
        }
        Ok(listed)
    }

    /// Checks one candidate against its checkpoint. It is listed when the checkpoint was created
    /// at its time and, in a status listing, has that status; unfiltered, whatever its status now
    /// (found by tag, it may have ended since, its entry written after this page's List).
    async fn verify(&self, c: Candidate, filter: Option<Status>) -> StoreResult<Verdict> {
        let Some(StoredRecord { record: d, .. }) = self.read(&c.key.id).await? else {
            let now = self.clock.now();
            let orphaned = |e: &BlobInfo| {
                e.last_modified.is_some_and(|t| {
                    now - (t.unix_timestamp_nanos() / 1_000_000) as Millis > ORPHAN_GRACE
                })
            };
            return Ok(Verdict {
                listed: None,
                garbage: c.entry.filter(orphaned),
                mend: None,
            });
        };
        if d.created != c.key.created {
            // Another creation of this id (a repeated submit lost its create, or the id was
            // purged and reused): this entry's create can never succeed while the checkpoint
            // exists, and its name is not the checkpoint's entry.
            return Ok(Verdict {
                listed: None,
                garbage: c.entry,
                mend: None,
            });
        }
        // An entry behind its ended checkpoint (a lost CAS's status over the winner's) is written
        // again; one ahead of a live checkpoint may be a CAS in flight, and one that says no status
        // is an earlier Berth's: both are left.
        let mend = c
            .entry
            .filter(|e| {
                d.status.is_terminal() && entry_status(e).is_some_and(|w| w != d.status.as_str())
            })
            .map(|e| (e, d.clone()));
        let listed = filter.is_none_or(|s| d.status == s);
        Ok(Verdict {
            listed: listed.then_some(d),
            garbage: None,
            mend,
        })
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
    fn tokens_belong_to_their_listing() {
        let t = token("live/Running", "17:job-1");
        assert_eq!(parse_token("live/Running", &t).unwrap(), "17:job-1");
        assert!(matches!(
            parse_token("live/Pending", &t),
            Err(StoreError::BadContinuation)
        ));
        assert!(matches!(
            parse_token("live/Running", "not base64!"),
            Err(StoreError::BadContinuation)
        ));
        assert!(matches!(
            parse_token("live/Running", &"A".repeat(MAX_TOKEN + 1)),
            Err(StoreError::BadContinuation)
        ));
    }

    #[test]
    fn positions_read_back_and_refuse_anything_else() {
        let position = Position {
            after: Key {
                created: 17,
                id: "job-1".into(),
            },
            resume: Resume {
                marker: Some("2!88!MDAwMDIx".into()),
                seen: 3,
            },
        };
        let all = scope(None);
        assert_eq!(
            Position::read(&all, &position.write(&all)).unwrap(),
            position
        );
        let succeeded = scope(Some(Status::Succeeded));
        assert!(matches!(
            Position::read(&succeeded, &position.write(&all)),
            Err(StoreError::BadContinuation)
        ));
        let bad = |text: &str| {
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
            matches!(Position::read(&all, &t), Err(StoreError::BadContinuation))
        };
        assert!(
            bad("index/all/\n2!88!MDAwMDIx"),
            "an earlier Berth's listing's token"
        );
        assert!(
            bad("all\n17:job-1\n0 \n0 \n0 \n0 "),
            "the previous merge's, a marker per terminal status"
        );
        assert!(bad("all\n17:job-1"), "no marker");
        assert!(bad("all\nseventeen:job-1\n0 "));
        assert!(bad("all\n17:job-1\n9999999 m"), "seen above a page");
        assert!(bad("all\n17:job-1\n0"), "no separator");
        assert!(bad("live/Running\n17:job-1"));
        assert!(!bad("all\n17:job-1\n0 "));
    }

    #[test]
    fn keys_sort_newest_first_then_by_id() {
        let key = |created, id: &str| Key {
            created,
            id: id.into(),
        };
        let mut keys = vec![key(1, "a"), key(2, "b"), key(2, "a"), key(1, "c")];
        keys.sort();
        assert_eq!(keys, [key(2, "a"), key(2, "b"), key(1, "a"), key(1, "c")]);
    }

    #[test]
    fn one_filter_finds_the_live_statuses() {
        assert_eq!(
            live_filter().unwrap().to_string(),
            "\"created\" >= '000000000000000' AND \"status\" > 'Failed' AND \"status\" < 'Succeeded'"
        );
    }
}
