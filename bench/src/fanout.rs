//! Item 7: fan-out. One deployment of one group with 1,000 items at parallelism 100, completed by
//! polling (`completion: exit`) on the instant emulator: items per second from submit to the
//! `Done` save, storage requests per item (the account's own count on Azure Storage, store calls
//! on SQLite), and the size of the checkpoint that holds all 1,000 instances.

use std::time::Instant;

use anyhow::{Context, bail};
use berth::engine::RuntimeStatus;
use serde::Serialize;
use serde_json::{Value, json};

use crate::berth::Berth;
use crate::throughput::{by_kind_per, submit};

/// A fan-out run's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct FanOut {
    pub items: usize,
    pub parallelism: usize,
    pub seconds: f64,
    pub items_per_second: f64,
    pub storage_tx_per_item: f64,
    /// Requests per item by kind (Azure Storage only).
    pub storage_tx_by_kind: std::collections::BTreeMap<&'static str, f64>,
    /// The `Done` checkpoint as stored (its JSON), and that over the items.
    pub checkpoint_bytes: usize,
    pub checkpoint_bytes_per_item: f64,
    pub arm_calls_per_item: f64,
}

/// The spec: `items` items of one small job group, `parallelism` at once.
pub fn spec(id: &str, items: usize, parallelism: usize) -> Value {
    let items: Vec<Value> = (0..items).map(|i| json!({ "n": i })).collect();
    json!({
        "id": id,
        "mode": "job",
        "completion": "exit",
        "groups": [{ "name": "work", "items": items, "parallelism": parallelism, "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["/bin/true"],
                "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }],
        "captureLogs": false,
        "cleanup": { "when": "always" }
    })
}

/// Runs one fan-out deployment on `berth` and waits for its `Done` save (up to `limit`).
pub async fn measure(
    berth: &Berth,
    id: &str,
    items: usize,
    parallelism: usize,
    limit: std::time::Duration,
) -> anyhow::Result<FanOut> {
    let http = reqwest::Client::new();
    let before = berth.watched.counters.tally();
    let account_before = berth.storage_transactions();
    let arm_before = berth.arm_calls();
    let done = berth.watched.done(id);
    let started = Instant::now();
    submit(berth, &http, id, &spec(id, items, parallelism)).await?;
    let (at, deployment) = tokio::time::timeout(limit, done)
        .await
        .with_context(|| format!("fan-out {id} did not finish within {limit:?}"))?
        .context("the store dropped the waiter")?;
    let seconds = (at - started).as_secs_f64();
    if deployment.status != RuntimeStatus::Succeeded {
        bail!("fan-out {id} ended {:?}", deployment.status);
    }
    let n = items.max(1) as f64;
    let account = berth
        .storage_transactions()
        .zip(account_before)
        .map(|(now, before)| now.since(&before));
    let storage_tx_per_item = match &account {
        Some(a) => a.total() as f64 / n,
        None => berth.watched.counters.tally().since(&before).total_calls() as f64 / n,
    };
    let storage_tx_by_kind = account.map(|a| by_kind_per(&a, n)).unwrap_or_default();
    let checkpoint_bytes = serde_json::to_vec(&deployment)?.len();
    Ok(FanOut {
        items,
        parallelism,
        seconds,
        items_per_second: n / seconds,
        storage_tx_per_item,
        storage_tx_by_kind,
        checkpoint_bytes,
        checkpoint_bytes_per_item: checkpoint_bytes as f64 / n,
        arm_calls_per_item: (berth.arm_calls() - arm_before) as f64 / n,
    })
}
