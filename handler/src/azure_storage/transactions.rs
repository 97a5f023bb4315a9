//! Storage transaction counts: every request the Azure backend sends, by kind.
//!
//! Azure Storage bills, throttles and limits by transaction, so Berth counts them where they happen:
//! a pipeline policy ([`CountingPolicy`]) sits in the per-try part of every blob and queue client
//! pipeline and classifies each request it sees. Because it is per try, an SDK retry counts twice,
//! as it does on the bill. The counts are plain atomics shared by every client made from one
//! [`StorageAccount`](super::StorageAccount), read with [`Transactions::snapshot`].
//!
//! To see what one deployment costs, run its work under [`Transactions::count_during`] with a
//! counter of its own: requests are then counted in the account's counters and in that one.

use async_trait::async_trait;
use azure_core::http::{
    Context, Method, Request,
    headers::HeaderName,
    policies::{Policy, PolicyResult},
};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one storage request did. The names (`blob.put`, `message.get`, …) are stable: tests,
/// benchmarks and the transaction note print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Create Container.
    ContainerCreate,
    /// Get Blob (a download; a ranged first request for blobs of any size).
    BlobGet,
    /// Get Blob Properties.
    BlobProperties,
    /// Put Blob of a block blob (the checkpoint write, conditional or not).
    BlobPut,
    /// Put Block or Put Block List (only for blobs larger than one upload partition).
    BlobPutBlock,
    /// Delete Blob.
    BlobDelete,
    /// List Blobs (one page).
    BlobList,
    /// Put Blob of an append blob.
    AppendBlobCreate,
    /// Append Block.
    AppendBlock,
    /// Set Blob Tags.
    BlobSetTags,
    /// Get Blob Tags.
    BlobGetTags,
    /// Find Blobs by Tags (one page).
    BlobFindByTags,
    /// Any other blob-service request.
    BlobOther,
    /// Create Queue.
    QueueCreate,
    /// Put Message.
    MessagePut,
    /// Get Messages (a receive; one request for up to 32 messages).
    MessageGet,
    /// Peek Messages.
    MessagePeek,
    /// Delete Message.
    MessageDelete,
    /// Update Message (visibility and optionally text).
    MessageUpdate,
    /// Any other queue-service request.
    QueueOther,
}

impl Kind {
    /// Every kind, in the order of the counters.
    pub const ALL: [Kind; 20] = [
        Kind::ContainerCreate,
        Kind::BlobGet,
        Kind::BlobProperties,
        Kind::BlobPut,
        Kind::BlobPutBlock,
        Kind::BlobDelete,
        Kind::BlobList,
        Kind::AppendBlobCreate,
        Kind::AppendBlock,
        Kind::BlobSetTags,
        Kind::BlobGetTags,
        Kind::BlobFindByTags,
        Kind::BlobOther,
        Kind::QueueCreate,
        Kind::MessagePut,
        Kind::MessageGet,
        Kind::MessagePeek,
        Kind::MessageDelete,
        Kind::MessageUpdate,
        Kind::QueueOther,
    ];

    /// The stable dotted name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ContainerCreate => "container.create",
            Kind::BlobGet => "blob.get",
            Kind::BlobProperties => "blob.properties",
            Kind::BlobPut => "blob.put",
            Kind::BlobPutBlock => "blob.put_block",
            Kind::BlobDelete => "blob.delete",
            Kind::BlobList => "blob.list",
            Kind::AppendBlobCreate => "blob.create_append",
            Kind::AppendBlock => "blob.append_block",
            Kind::BlobSetTags => "blob.set_tags",
            Kind::BlobGetTags => "blob.get_tags",
            Kind::BlobFindByTags => "blob.find_by_tags",
            Kind::BlobOther => "blob.other",
            Kind::QueueCreate => "queue.create",
            Kind::MessagePut => "message.put",
            Kind::MessageGet => "message.get",
            Kind::MessagePeek => "message.peek",
            Kind::MessageDelete => "message.delete",
            Kind::MessageUpdate => "message.update",
            Kind::QueueOther => "queue.other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

tokio::task_local! {
    /// The counters of the unit of work running in this task, if any.
    static SCOPE: Transactions;
}

/// Which storage service a pipeline talks to; it decides how a request is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The blob service.
    Blob,
    /// The queue service.
    Queue,
}

/// Shared, lock-free transaction counters. Cloning shares the counters.
#[derive(Clone, Default)]
pub struct Transactions {
    counts: Arc<[AtomicU64; Kind::ALL.len()]>,
}

impl Transactions {
    /// New counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request of `kind`.
    pub fn record(&self, kind: Kind) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The count for one kind so far.
    pub fn get(&self, kind: Kind) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// Runs `work`, counting the storage requests it makes into `self` as well as into the
    /// account's counters. Give each unit of work (a deployment's step) a `Transactions::new()` of
    /// its own. The attribution follows the task: requests made by tasks that `work` spawns are not
    /// attributed (the SDK itself spawns only to move blobs larger than 4 MiB in parts).
    pub async fn count_during<F: Future>(&self, work: F) -> F::Output {
        SCOPE.scope(self.clone(), work).await
    }

    /// Whether two handles share the same counters.
    pub fn same_as(&self, other: &Transactions) -> bool {
        Arc::ptr_eq(&self.counts, &other.counts)
    }

    /// Every non-zero count so far, by kind.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(
            Kind::ALL
                .iter()
                .map(|&kind| (kind, self.get(kind)))
                .filter(|&(_, n)| n > 0)
                .collect(),
        )
    }
}

impl fmt::Debug for Transactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Transactions")
            .field(&self.snapshot())
            .finish()
    }
}

/// Transaction counts at one moment, by kind; kinds with no requests are absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<Kind, u64>);

impl Snapshot {
    /// The count for one kind (0 when absent).
    pub fn get(&self, kind: Kind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// What happened since `earlier` (a snapshot of the same counters taken before this one).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .map(|(&kind, &n)| (kind, n.saturating_sub(earlier.get(kind))))
                .filter(|&(_, n)| n > 0)
                .collect(),
        )
    }

    /// The counts by stable kind name, for printing and JSON.
    pub fn by_name(&self) -> BTreeMap<&'static str, u64> {
        self.0.iter().map(|(k, &n)| (k.as_str(), n)).collect()
    }

    /// The counts by kind.
    pub fn iter(&self) -> impl Iterator<Item = (Kind, u64)> + '_ {
        self.0.iter().map(|(&k, &n)| (k, n))
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.by_name()).finish()
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} transactions", self.total())?;
        let mut sep = " (";
        for (kind, n) in self.iter() {
            write!(f, "{sep}{kind}: {n}")?;
            sep = ", ";
        }
        if !self.0.is_empty() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Classifies a request the way the storage REST API names its operations.
pub fn classify(
    service: Service,
    method: &Method,
    url: &url::Url,
    blob_type: Option<&str>,
) -> Kind {
    let mut comp = None;
    let mut restype = None;
    let mut peek = false;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "comp" => comp = Some(v.into_owned()),
            "restype" => restype = Some(v.into_owned()),
            "peekonly" => peek = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    let comp = comp.as_deref();
    match service {
        Service::Blob => match (method, restype.as_deref(), comp) {
            (Method::Put, Some("container"), None) => Kind::ContainerCreate,
            (Method::Get, Some("container"), Some("list")) => Kind::BlobList,
            (Method::Get, Some("container"), Some("blobs")) => Kind::BlobFindByTags,
            (Method::Get, None, Some("blobs")) => Kind::BlobFindByTags,
            (_, Some(_), _) => Kind::BlobOther,
            (Method::Put, None, Some("tags")) => Kind::BlobSetTags,
            (Method::Get, None, Some("tags")) => Kind::BlobGetTags,
            (Method::Put, None, Some("appendblock")) => Kind::AppendBlock,
            (Method::Put, None, Some("block" | "blocklist")) => Kind::BlobPutBlock,
            (Method::Put, None, None) => match blob_type {
                Some(t) if t.eq_ignore_ascii_case("AppendBlob") => Kind::AppendBlobCreate,
                Some(t) if t.eq_ignore_ascii_case("BlockBlob") => Kind::BlobPut,
                _ => Kind::BlobOther,
            },
            (Method::Get, None, None) => Kind::BlobGet,
            (Method::Head, None, None) => Kind::BlobProperties,
            (Method::Delete, None, None) => Kind::BlobDelete,
            _ => Kind::BlobOther,
        },
        Service::Queue => {
            // Path-style (Azurite) paths carry the account first; what matters is whether the
            // path ends in `/messages` (the collection) or `/messages/{id}` (one message).
            let segments: Vec<&str> = url
                .path_segments()
                .map(|s| s.filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            let last = segments.last().copied();
            let before_last = segments.len().checked_sub(2).map(|i| segments[i]);
            let on_messages = last == Some("messages");
            let on_message = before_last == Some("messages");
            match method {
                Method::Post if on_messages => Kind::MessagePut,
                Method::Get if on_messages && peek => Kind::MessagePeek,
                Method::Get if on_messages => Kind::MessageGet,
                Method::Delete if on_message => Kind::MessageDelete,
                Method::Put if on_message => Kind::MessageUpdate,
                Method::Put if comp.is_none() && !on_messages => Kind::QueueCreate,
                _ => Kind::QueueOther,
            }
        }
    }
}

/// The per-try pipeline policy that counts every request into shared [`Transactions`].
#[derive(Debug, Clone)]
pub struct CountingPolicy {
    service: Service,
    transactions: Transactions,
}

impl CountingPolicy {
    /// A policy counting requests to `service` into `transactions`.
    pub fn new(service: Service, transactions: Transactions) -> Self {
        Self {
            service,
            transactions,
        }
    }
}

const BLOB_TYPE: HeaderName = HeaderName::from_static("x-ms-blob-type");

#[async_trait]
impl Policy for CountingPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let blob_type = request.headers().get_optional_str(&BLOB_TYPE);
        let kind = classify(self.service, &request.method(), request.url(), blob_type);
        self.transactions.record(kind);
        // Outside `count_during` there is no scope, and nothing more to count.
        let _ = SCOPE.try_with(|scope| {
            if !scope.same_as(&self.transactions) {
                scope.record(kind);
            }
        });
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kind(service: Service, method: Method, url: &str, blob_type: Option<&str>) -> Kind {
        classify(service, &method, &url::Url::parse(url).unwrap(), blob_type)
    }

    #[test]
    fn classifies_blob_requests_path_style_and_host_style() {
        let az = "http://127.0.0.1:10000/devstoreaccount1";
        let host = "https://acct.blob.core.windows.net";
        for base in [az, host] {
            let k = |m, path: &str, bt| kind(Service::Blob, m, &format!("{base}{path}"), bt);
            assert_eq!(
                k(Method::Put, "/c?restype=container", None),
                Kind::ContainerCreate
            );
            assert_eq!(k(Method::Put, "/c/b", Some("BlockBlob")), Kind::BlobPut);
            assert_eq!(
                k(Method::Put, "/c/b", Some("AppendBlob")),
                Kind::AppendBlobCreate
            );
            assert_eq!(
                k(Method::Put, "/c/b?comp=appendblock", None),
                Kind::AppendBlock
            );
            assert_eq!(k(Method::Get, "/c/b", None), Kind::BlobGet);
            assert_eq!(k(Method::Delete, "/c/b", None), Kind::BlobDelete);
            assert_eq!(
                k(Method::Get, "/c?comp=list&restype=container&prefix=x", None),
                Kind::BlobList
            );
            assert_eq!(
                k(Method::Get, "/c?restype=container&comp=blobs&where=x", None),
                Kind::BlobFindByTags
            );
            assert_eq!(k(Method::Put, "/c/b?comp=tags", None), Kind::BlobSetTags);
            assert_eq!(k(Method::Get, "/c/b?comp=tags", None), Kind::BlobGetTags);
            assert_eq!(
                k(Method::Delete, "/c?restype=container", None),
                Kind::BlobOther
            );
        }
    }

    #[test]
    fn classifies_queue_requests() {
        let base = "http://127.0.0.1:10001/devstoreaccount1/q";
        let k = |m, path: &str| kind(Service::Queue, m, &format!("{base}{path}"), None);
        assert_eq!(k(Method::Put, ""), Kind::QueueCreate);
        assert_eq!(
            k(Method::Post, "/messages?visibilitytimeout=5"),
            Kind::MessagePut
        );
        assert_eq!(
            k(Method::Get, "/messages?numofmessages=32"),
            Kind::MessageGet
        );
        assert_eq!(k(Method::Get, "/messages?peekonly=true"), Kind::MessagePeek);
        assert_eq!(
            k(Method::Delete, "/messages/abc?popreceipt=x"),
            Kind::MessageDelete
        );
        assert_eq!(
            k(
                Method::Put,
                "/messages/abc?popreceipt=x&visibilitytimeout=1"
            ),
            Kind::MessageUpdate
        );
        assert_eq!(k(Method::Get, "?comp=metadata"), Kind::QueueOther);
    }

    #[test]
    fn snapshots_count_and_subtract() {
        let t = Transactions::new();
        t.record(Kind::BlobPut);
        let before = t.snapshot();
        t.record(Kind::BlobPut);
        t.record(Kind::MessagePut);
        let after = t.snapshot();
        assert_eq!(after.get(Kind::BlobPut), 2);
        assert_eq!(after.total(), 3);
        let delta = after.since(&before);
        assert_eq!(
            delta.by_name(),
            BTreeMap::from([("blob.put", 1), ("message.put", 1)])
        );
        assert_eq!(
            delta.to_string(),
            "2 transactions (blob.put: 1, message.put: 1)"
        );
    }
}
