//! What happened, for tests: `GET /_emulator/stats` and `Running::stats()`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The counters as answered by `GET /_emulator/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Group name → number of PUTs that created it (not updates).
    pub creates_by_name: BTreeMap<String, u64>,
    /// DELETEs that deleted a group.
    pub deletes: u64,
    /// Container processes alive now.
    pub live_processes: u64,
    /// Container groups that exist now.
    pub groups: u64,
    /// ARM requests by kind (`put`, `get`, `list`, `delete`, `logs`, …).
    pub requests: BTreeMap<String, u64>,
    /// Injected faults by kind (`throttle`, `error`, `slow`, `drop`; `capacity` and
    /// `skuNotAvailable` refusals of creates, Spot `eviction`s).
    pub faults: BTreeMap<String, u64>,
}

/// A kind of ARM request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// PUT a group.
    Put,
    /// GET a group.
    Get,
    /// PATCH a group's tags.
    Patch,
    /// DELETE a group.
    Delete,
    /// List groups.
    List,
    /// POST start.
    Start,
    /// POST stop.
    Stop,
    /// POST restart.
    Restart,
    /// GET logs.
    Logs,
    /// GET an async operation.
    Operation,
    /// Anything else (usages, exec, unknown routes).
    Other,
}

const KINDS: [(RequestKind, &str); 11] = [
    (RequestKind::Put, "put"),
    (RequestKind::Get, "get"),
    (RequestKind::Patch, "patch"),
    (RequestKind::Delete, "delete"),
    (RequestKind::List, "list"),
    (RequestKind::Start, "start"),
    (RequestKind::Stop, "stop"),
    (RequestKind::Restart, "restart"),
    (RequestKind::Logs, "logs"),
    (RequestKind::Operation, "operation"),
    (RequestKind::Other, "other"),
];

const FAULTS: [&str; 7] = [
    "throttle",
    "error",
    "slow",
    "drop",
    "capacity",
    "skuNotAvailable",
    "eviction",
];

/// The live counters (cheap atomics on the request path).
#[derive(Debug, Default)]
pub struct Counters {
    requests: [AtomicU64; 11],
    faults: [AtomicU64; 7],
    deletes: AtomicU64,
    creates: Mutex<HashMap<String, u64>>,
}

impl Counters {
    /// Counts a request.
    pub fn request(&self, kind: RequestKind) {
        let index = KINDS
            .iter()
            .position(|(known, _)| *known == kind)
            .unwrap_or(KINDS.len() - 1);
        self.requests[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an injected fault (`throttle`, `error`, `slow`, `drop`, `capacity`,
    /// `skuNotAvailable`, `eviction`).
    pub fn fault(&self, name: &str) {
        if let Some(index) = FAULTS.iter().position(|known| *known == name) {
            self.faults[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a creating PUT.
    pub fn created(&self, name: &str) {
        let mut creates = self
            .creates
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match creates.get_mut(name) {
            Some(count) => *count += 1,
            None => {
                creates.insert(name.to_string(), 1);
            }
        }
    }

    /// Counts a delete.
    pub fn deleted(&self) {
        self.deletes.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot, with the live numbers filled in by the caller.
    pub fn snapshot(&self, live_processes: u64, groups: u64) -> Stats {
        let creates = self
            .creates
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        Stats {
            creates_by_name: creates.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            deletes: self.deletes.load(Ordering::Relaxed),
            live_processes,
            groups,
            requests: KINDS
                .iter()
                .zip(&self.requests)
                .map(|((_, name), count)| (name.to_string(), count.load(Ordering::Relaxed)))
                .filter(|(_, count)| *count > 0)
                .collect(),
            faults: FAULTS
                .iter()
                .zip(&self.faults)
                .map(|(name, count)| (name.to_string(), count.load(Ordering::Relaxed)))
                .filter(|(_, count)| *count > 0)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_uses_the_documented_names() {
        let counters = Counters::default();
        counters.created("job-1");
        counters.created("job-1");
        counters.deleted();
        counters.request(RequestKind::Put);
        counters.fault("drop");
        let json = serde_json::to_value(counters.snapshot(3, 1)).unwrap();
        assert_eq!(json["createsByName"]["job-1"], 2);
        assert_eq!(json["deletes"], 1);
        assert_eq!(json["liveProcesses"], 3);
        assert_eq!(json["requests"]["put"], 1);
        assert_eq!(json["faults"]["drop"], 1);
    }
}
