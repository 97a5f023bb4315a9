//! Storage transactions per deployment: what each deployment has cost this process, by kind.
//!
//! Every request the Azure backend makes for a deployment runs under that deployment's
//! [`Transactions`] (`count_during`), so it is counted there as well as in the account's totals. A
//! Get Messages that delivered steps of several deployments is counted once in each of them: a
//! deployment's figure is what it would cost alone. Receives that deliver nothing (idle polling)
//! belong to no deployment and appear only in the account's totals.
//!
//! The ledger is per process (two handlers each count their own share) and bounded: it keeps the
//! [`CAPACITY`] most recently started deployments and forgets purged ones.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;

use crate::azure_storage::{Kind, Snapshot, Transactions};

/// Most deployments whose counts are kept.
pub const CAPACITY: usize = 10_000;

/// Per-deployment transaction counters.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    counters: HashMap<String, Transactions>,
    order: VecDeque<String>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters of `id`, created on first use.
    fn counters(&self, id: &str) -> Transactions {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = inner.counters.get(id) {
            return t.clone();
        }
        while inner.counters.len() >= CAPACITY {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.counters.remove(&oldest);
        }
        let t = Transactions::new();
        inner.counters.insert(id.to_owned(), t.clone());
        inner.order.push_back(id.to_owned());
        t
    }

    /// Runs `work`, counting its requests as `id`'s (an empty `id` is no deployment's).
    pub async fn during<F: Future>(&self, id: &str, work: F) -> F::Output {
        if id.is_empty() {
            return work.await;
        }
        self.counters(id).count_during(work).await
    }

    /// Counts one request of `kind` as `id`'s (for requests shared by several deployments).
    pub fn record(&self, id: &str, kind: Kind) {
        self.counters(id).record(kind);
    }

    /// What `id` has cost so far (empty when unknown).
    pub fn snapshot(&self, id: &str) -> Snapshot {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .counters
            .get(id)
            .map(Transactions::snapshot)
            .unwrap_or_default()
    }

    /// Forgets `id` (it was purged).
    pub fn forget(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.counters.remove(id).is_some() {
            inner.order.retain(|known| known != id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_deployment_and_bounded() {
        let ledger = Ledger::new();
        ledger.record("a", Kind::MessageGet);
        ledger.record("a", Kind::MessageGet);
        ledger.record("b", Kind::BlobPut);
        assert_eq!(ledger.snapshot("a").get(Kind::MessageGet), 2);
        assert_eq!(ledger.snapshot("b").total(), 1);
        assert_eq!(ledger.snapshot("c").total(), 0);
        ledger.forget("a");
        assert_eq!(ledger.snapshot("a").total(), 0);
        for i in 0..CAPACITY + 5 {
            ledger.record(&format!("d-{i}"), Kind::BlobGet);
        }
        assert_eq!(ledger.snapshot("b").total(), 0, "the oldest was dropped");
        assert_eq!(ledger.snapshot(&format!("d-{}", CAPACITY + 4)).total(), 1);
    }
}
