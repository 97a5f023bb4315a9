//! What the harness does to the system while deployments run, besides killing handlers:
//! duplicating and delaying step messages on the queue, and making the emulator answer 429, 500,
//! slowly or not at all, refuse creates for capacity and evict Spot groups.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use berth::azure_storage::{StorageAccount, StorageConnection, TimeToLive};
use serde_json::{Value, json};

use super::cluster::QUEUE;
use super::rng::Rng;
use super::workload::LOCATIONS;

/// Counters of what was done.
#[derive(Debug, Default)]
pub struct Tampering {
    /// Step messages sent again at once.
    pub duplicated: AtomicU64,
    /// Copies sent with a delay.
    pub delayed_copies: AtomicU64,
    /// Originals hidden again for a while.
    pub delayed: AtomicU64,
    /// Queue requests that failed (Azurite restarting, a message handled meanwhile).
    pub queue_errors: AtomicU64,
    /// Fault settings applied to the emulator.
    pub fault_phases: AtomicU64,
}

impl Tampering {
    /// One line for the report.
    pub fn summary(&self) -> String {
        format!(
            "{} step messages duplicated, {} delayed copies, {} delayed, {} queue errors, {} fault phases",
            self.duplicated.load(Ordering::Relaxed),
            self.delayed_copies.load(Ordering::Relaxed),
            self.delayed.load(Ordering::Relaxed),
            self.queue_errors.load(Ordering::Relaxed),
            self.fault_phases.load(Ordering::Relaxed),
        )
    }
}

/// Takes visible step messages off the queue now and then and puts back duplicates and delayed
/// copies, through Berth's own queue client, until `stop`.
pub async fn shuffle_steps(
    connection: String,
    counters: Arc<Tampering>,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let connection = StorageConnection::parse("AzureWebJobsStorage", &connection)?;
    let account = StorageAccount::new(&connection, None)?;
    let queue = account.queue(QUEUE)?;
    let error = |counters: &Tampering| counters.queue_errors.fetch_add(1, Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(rng.millis(200, 1500)).await;
        let received = match queue.receive(8, Duration::from_secs(2)).await {
            Ok(received) => received,
            Err(_) => {
                error(&counters);
                continue;
            }
        };
        for message in received {
            if rng.chance(0.5) {
                match queue
                    .send(&message.text, Duration::ZERO, TimeToLive::Never)
                    .await
                {
                    Ok(_) => counters.duplicated.fetch_add(1, Ordering::Relaxed),
                    Err(_) => error(&counters),
                };
            }
            if rng.chance(0.3) {
                let delay = rng.millis(1000, 20_000);
                match queue.send(&message.text, delay, TimeToLive::Never).await {
                    Ok(_) => counters.delayed_copies.fetch_add(1, Ordering::Relaxed),
                    Err(_) => error(&counters),
                };
            }
            // The original: back at once, or hidden a few seconds more (a slow delivery).
            let hide = if rng.chance(0.3) {
                counters.delayed.fetch_add(1, Ordering::Relaxed);
                rng.millis(1000, 5000)
            } else {
                Duration::ZERO
            };
            if queue.update(&message.receipt, hide, None).await.is_err() {
                error(&counters);
            }
        }
    }
    Ok(())
}

/// The emulator's fault knobs for one phase.
fn phase(rng: &mut Rng) -> Value {
    let seed = rng.bits() % 1_000_000;
    let quiet = json!({ "throttleRate": 0.0, "errorRate": 0.0, "slowRate": 0.0, "dropRate": 0.0, "seed": seed });
    let mut faults = quiet.clone();
    match rng.range(0..6) {
        0 => return quiet,
        1 => {
            faults["throttleRate"] = json!(0.2);
            faults["retryAfterSeconds"] = json!(1);
        }
        2 => faults["errorRate"] = json!(0.15),
        3 => {
            faults["slowRate"] = json!(0.2);
            faults["slowMs"] = json!(2000);
        }
        // Longer than the ARM client's 20 s time-out: the call times out.
        4 => {
            faults["slowRate"] = json!(0.02);
            faults["slowMs"] = json!(25_000);
            faults["dropRate"] = json!(0.03);
        }
        _ => {
            faults["throttleRate"] = json!(0.05);
            faults["retryAfterSeconds"] = json!(2);
            faults["errorRate"] = json!(0.05);
            faults["slowRate"] = json!(0.05);
            faults["slowMs"] = json!(1000);
            faults["dropRate"] = json!(0.01);
        }
    }
    capacity(&mut faults);
    faults
}

/// ACI's capacity conditions, in every phase: a third of the creates in the first region refused
/// `ServiceUnavailable` (the second always has room), and a third of the Spot groups evicted
/// half a second into their run.
fn capacity(faults: &mut Value) {
    faults["capacityRate"] = json!(0.3);
    faults["capacityLocations"] = json!([LOCATIONS[0]]);
    faults["spotEvictionRate"] = json!(0.3);
    // And the first Spot group of each phase, so that a short run sees evictions too.
    faults["spotEvictNth"] = json!([1]);
    faults["spotEvictAfterMs"] = json!(500);
}

/// Sets the emulator's faults at `url`.
pub async fn set_faults(http: &reqwest::Client, url: &str, faults: &Value) -> anyhow::Result<()> {
    let response = http
        .put(format!("{url}/_emulator/faults"))
        .json(faults)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "PUT /_emulator/faults: {}",
        response.status()
    );
    Ok(())
}

/// No faults.
pub fn no_faults() -> Value {
    json!({ "throttleRate": 0.0, "errorRate": 0.0, "slowRate": 0.0, "dropRate": 0.0, "nth": [] })
}

/// Changes the emulator's faults every few seconds until `stop`, then clears them.
pub async fn vary_faults(
    url: String,
    counters: Arc<Tampering>,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    while !stop.load(Ordering::Relaxed) {
        let faults = phase(&mut rng);
        set_faults(&http, &url, &faults).await?;
        counters.fault_phases.fetch_add(1, Ordering::Relaxed);
        let until = tokio::time::Instant::now() + rng.millis(3000, 10_000);
        while tokio::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    set_faults(&http, &url, &no_faults()).await
}
