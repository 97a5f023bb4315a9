//! An instrumented store: wraps Berth's `Checkpoints` and `Steps` to count every storage operation
//! (with the time spent in it) and to tell the load generator the moment a deployment's `Done`
//! checkpoint is saved, so latency is measured without polling the API.
//!
//! On SQLite each call is one transaction (a `receive` of up to 32 messages is one), so these
//! counts are the storage transactions; on Azure Storage the account's own counters are read
//! instead (see [`crate::berth`]), and these counts say which trait calls produced them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use berth::checkpoint;
use berth::engine::{Deployment, Millis, Phase};
use berth::store::{
    Checkpoints, Delivery, Due, ListQuery, Page, Record, Scheduled, Steps, StoreError,
    StoredRecord, Version,
};
use serde::Serialize;
use tokio::sync::oneshot;

/// The storage operations Berth's traits offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Load,
    Save,
    Purge,
    List,
    Overdue,
    Expired,
    PutLogs,
    GetLogs,
    PutHistory,
    GetHistory,
    Send,
    Receive,
    Complete,
}

impl Op {
    /// Every operation, in table order.
    pub const ALL: [Op; 14] = [
        Op::Create,
        Op::Load,
        Op::Save,
        Op::Purge,
        Op::List,
        Op::Overdue,
        Op::Expired,
        Op::PutLogs,
        Op::GetLogs,
        Op::PutHistory,
        Op::GetHistory,
        Op::Send,
        Op::Receive,
        Op::Complete,
    ];

    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Load => "load",
            Op::Save => "save",
            Op::Purge => "purge",
            Op::List => "list",
            Op::Overdue => "overdue",
            Op::Expired => "expired",
            Op::PutLogs => "put_logs",
            Op::GetLogs => "get_logs",
            Op::PutHistory => "put_history",
            Op::GetHistory => "get_history",
            Op::Send => "send",
            Op::Receive => "receive",
            Op::Complete => "complete",
        }
    }
}

/// How many operations there are.
const OPS: usize = Op::ALL.len();

/// Calls and nanoseconds per operation.
#[derive(Debug, Default)]
pub struct Counters {
    calls: [AtomicU64; OPS],
    nanos: [AtomicU64; OPS],
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub calls: [u64; OPS],
    pub nanos: [u64; OPS],
}

impl Tally {
    /// What happened between `earlier` and this tally.
    pub fn since(&self, earlier: &Tally) -> Tally {
        let mut out = Tally::default();
        for i in 0..OPS {
            out.calls[i] = self.calls[i] - earlier.calls[i];
            out.nanos[i] = self.nanos[i] - earlier.nanos[i];
        }
        out
    }

    /// Calls of one operation.
    pub fn calls_of(&self, op: Op) -> u64 {
        self.calls[op as usize]
    }

    /// All calls.
    pub fn total_calls(&self) -> u64 {
        self.calls.iter().sum()
    }

    /// All time spent in the store, in seconds (summed over concurrent calls).
    pub fn total_seconds(&self) -> f64 {
        self.nanos.iter().sum::<u64>() as f64 / 1e9
    }
}

impl Counters {
    /// Runs `work` as one call of `op`, counting it and the time it took (failed calls too: a
    /// failed request is still a transaction).
    async fn timed<T>(&self, op: Op, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = work.await;
        let i = op as usize;
        self.calls[i].fetch_add(1, Ordering::Relaxed);
        self.nanos[i].fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }

    /// The counts now.
    pub fn tally(&self) -> Tally {
        let mut out = Tally::default();
        for i in 0..OPS {
            out.calls[i] = self.calls[i].load(Ordering::Relaxed);
            out.nanos[i] = self.nanos[i].load(Ordering::Relaxed);
        }
        out
    }
}

/// Berth's store with counters and `Done` notifications.
pub struct Watched {
    store: Arc<dyn Checkpoints>,
    steps: Arc<dyn Steps>,
    /// The counters.
    pub counters: Counters,
    waiting: Waiters<(Instant, Deployment)>,
    creating: Waiters<Deployment>,
    /// Per deployment, its first instance as each save left it (only while [`Self::trace`] is on).
    traces: Mutex<Option<HashMap<String, Vec<Saved>>>>,
}

/// A deployment's first instance as one save left it: what a look trace is made of.
#[derive(Clone, Debug, Serialize)]
pub struct Saved {
    /// The save's `updated` time.
    pub at: Millis,
    pub created: Option<Millis>,
    pub observed_at: Option<Millis>,
    pub next_look: Option<Millis>,
}

type Waiters<T> = Mutex<HashMap<String, oneshot::Sender<T>>>;

fn lock<T>(waiters: &Waiters<T>) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<T>>> {
    waiters.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watched {
    /// Wraps a store and its step queue.
    pub fn new(store: Arc<dyn Checkpoints>, steps: Arc<dyn Steps>) -> Arc<Self> {
        Arc::new(Watched {
            store,
            steps,
            counters: Counters::default(),
            waiting: Mutex::default(),
            creating: Mutex::default(),
            traces: Mutex::default(),
        })
    }

    /// Starts keeping, for every save, the deployment's first instance's look times.
    pub fn trace(&self) {
        *self.traces.lock().unwrap_or_else(|p| p.into_inner()) = Some(HashMap::new());
    }

    /// The saves kept for deployment `id` since [`Self::trace`], oldest first.
    pub fn saves(&self, id: &str) -> Vec<Saved> {
        let traces = self.traces.lock().unwrap_or_else(|p| p.into_inner());
        traces
            .as_ref()
            .and_then(|t| t.get(id).cloned())
            .unwrap_or_default()
    }

    /// Resolves when deployment `id`'s `Done` checkpoint is saved, with the moment it was and the
    /// deployment. Call it before the deployment is submitted.
    pub fn done(&self, id: &str) -> oneshot::Receiver<(Instant, Deployment)> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id.to_owned(), tx);
        rx
    }

    /// Resolves when a checkpoint of deployment `id` that records a created container group is
    /// saved: the moment its container could call back. Call it before the deployment is submitted.
    pub fn created(&self, id: &str) -> oneshot::Receiver<Deployment> {
        let (tx, rx) = oneshot::channel();
        lock(&self.creating).insert(id.to_owned(), tx);
        rx
    }

    /// Tells the waiters of a saved record's deployment, decoding it only when there are some.
    fn saved(&self, record: &Record) {
        let tracing = self
            .traces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        let waited = lock(&self.creating).contains_key(&record.id)
            || lock(&self.waiting).contains_key(&record.id);
        if !waited && !tracing {
            return;
        }
        let Ok(deployment) = checkpoint::decode(record) else {
            return;
        };
        if tracing && let Some(inst) = deployment.instances.first() {
            let saved = Saved {
                at: deployment.updated,
                created: inst.created,
                observed_at: inst.observed_at,
                next_look: inst.next_look,
            };
            let mut traces = self.traces.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = traces.as_mut() {
                t.entry(deployment.id.clone()).or_default().push(saved);
            }
        }
        if deployment.instances.iter().any(|i| i.created.is_some())
            && let Some(waiter) = lock(&self.creating).remove(&deployment.id)
        {
            let _ = waiter.send(deployment.clone());
        }
        if deployment.phase == Phase::Done
            && let Some(waiter) = lock(&self.waiting).remove(&deployment.id)
        {
            let _ = waiter.send((Instant::now(), deployment));
        }
    }
}

#[async_trait]
impl Checkpoints for Watched {
    async fn create_record(
        &self,
        record: &Record,
        first: &Scheduled,
    ) -> Result<Version, StoreError> {
        self.counters
            .timed(Op::Create, self.store.create_record(record, first))
            .await
    }

    async fn load_record(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        self.counters
            .timed(Op::Load, self.store.load_record(id))
            .await
    }

    async fn save_record(
        &self,
        record: &Record,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> Result<Version, StoreError> {
        let out = self
            .counters
            .timed(Op::Save, self.store.save_record(record, expected, then))
            .await;
        if out.is_ok() {
            self.saved(record);
        }
        out
    }

    async fn purge(&self, id: &str) -> Result<bool, StoreError> {
        self.counters.timed(Op::Purge, self.store.purge(id)).await
    }

    async fn list_records(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.counters
            .timed(Op::List, self.store.list_records(query))
            .await
    }

    async fn overdue(&self, before: Millis, limit: usize) -> Result<Vec<Due>, StoreError> {
        self.counters
            .timed(Op::Overdue, self.store.overdue(before, limit))
            .await
    }

    async fn expired(&self, before: Millis, limit: usize) -> Result<Vec<String>, StoreError> {
        self.counters
            .timed(Op::Expired, self.store.expired(before, limit))
            .await
    }

    async fn put_logs(
        &self,
        id: &str,
        group: &str,
        instance: &str,
        container: &str,
        content: &str,
    ) -> Result<(), StoreError> {
        self.counters
            .timed(
                Op::PutLogs,
                self.store.put_logs(id, group, instance, container, content),
            )
            .await
    }

    async fn get_instance_logs(
        &self,
        id: &str,
        group: &str,
        instance: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError> {
        self.counters
            .timed(
                Op::GetLogs,
                self.store.get_instance_logs(id, group, instance, container),
            )
            .await
    }

    async fn get_logs(
        &self,
        id: &str,
        group: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError> {
        self.counters
            .timed(Op::GetLogs, self.store.get_logs(id, group, container))
            .await
    }

    async fn put_history(&self, id: &str, page: u32, body: &[u8]) -> Result<(), StoreError> {
        self.counters
            .timed(Op::PutHistory, self.store.put_history(id, page, body))
            .await
    }

    async fn get_history(&self, id: &str, page: u32) -> Result<Option<bytes::Bytes>, StoreError> {
        self.counters
            .timed(Op::GetHistory, self.store.get_history(id, page))
            .await
    }
}

#[async_trait]
impl Steps for Watched {
    async fn send(&self, step: &Scheduled) -> Result<(), StoreError> {
        self.counters.timed(Op::Send, self.steps.send(step)).await
    }

    async fn receive(&self, max: usize, lease_ms: Millis) -> Result<Vec<Delivery>, StoreError> {
        // An empty receive is still a transaction (and, on Azure, a billed Get Messages).
        self.counters
            .timed(Op::Receive, self.steps.receive(max, lease_ms))
            .await
    }

    async fn complete(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.counters
            .timed(Op::Complete, self.steps.complete(delivery))
            .await
    }

    async fn wait(&self, max_ms: Millis) {
        self.steps.wait(max_ms).await
    }

    async fn poisoned_steps(
        &self,
        max: usize,
        lease_ms: Millis,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.counters
            .timed(Op::Receive, self.steps.poisoned_steps(max, lease_ms))
            .await
    }

    async fn drop_poisoned(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.counters
            .timed(Op::Complete, self.steps.drop_poisoned(delivery))
            .await
    }
}
