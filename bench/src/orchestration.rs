//! Item 4's price: what Berth's own Azure resources cost per 1,000 callback jobs, beside what
//! one reference job's container costs on ACI (`orchestration_usd_per_1000_jobs`,
//! `aci_usd_reference_job`, `orchestration_vs_compute`).
//!
//! The storage requests are the ones counted on Azurite by kind; each kind is priced at the
//! operation type Microsoft maps it to for a Standard general purpose v2 account ("Map each REST
//! operation to a price", learn.microsoft.com, ms.date 2025-05-14) and the list prices of a hot
//! LRS account in `eastus` (Azure Retail Prices API, `General Block Blob v2` / `Hot LRS` and
//! `Queues v2` / `Standard LRS`, as quoted in August 2026). The Functions side is Flex Consumption
//! on-demand: per execution and per GB-second of instance memory while executions are active.
//! The prices and their sources are in bench/README.md.

use std::collections::BTreeMap;

use berth::api::prices::{Billing, Prices, Priority};
use serde::Serialize;

/// USD per 10,000 blob write operations (Put Blob, Put Block, Append Block: `Hot LRS Write
/// Operations`).
pub const BLOB_WRITE_PER_10K: f64 = 0.05;
/// USD per 10,000 blob reads (Get Blob: `Hot Read Operations`).
pub const BLOB_READ_PER_10K: f64 = 0.004;
/// USD per 10,000 list and create-container operations (List Blobs, Find Blobs by Tags, Create
/// Container: `LRS List and Create Container Operations`).
pub const BLOB_LIST_PER_10K: f64 = 0.05;
/// USD per 10,000 other blob operations (Get Blob Properties, Get and Set Blob Tags: `All Other
/// Operations`). Delete Blob is free.
pub const BLOB_OTHER_PER_10K: f64 = 0.004;
/// USD per 10,000 queue operations, class 1 (put, update, delete message) and class 2 (get,
/// peek) alike (`Queues v2` `LRS Class 1 Operations`, `Class 2 Operations`).
pub const QUEUE_PER_10K: f64 = 0.004;
/// USD per Flex Consumption on-demand execution ($0.40 per million: `On Demand Total
/// Executions`).
pub const FUNCTIONS_PER_EXECUTION: f64 = 0.40 / 1_000_000.0;
/// USD per GB-second of on-demand execution time (`On Demand Execution Time`).
pub const FUNCTIONS_PER_GB_SECOND: f64 = 0.000_026;
/// The Function App's instance memory as infra deploys it (`instanceMemoryMB` 2048).
pub const INSTANCE_GB: f64 = 2.0;

/// The operation type a counted storage request is billed as.
pub fn meter(kind: &str) -> &'static str {
    match kind {
        "blob.put" | "blob.put_block" | "blob.create_append" | "blob.append_block" => "blob write",
        "blob.get" => "blob read",
        "blob.list" | "blob.find_by_tags" | "container.create" => "blob list/create",
        "blob.delete" => "free",
        k if k.starts_with("blob.") => "blob other",
        _ => "queue",
    }
}

fn per_10k(meter: &str) -> f64 {
    match meter {
        "blob write" => BLOB_WRITE_PER_10K,
        "blob read" => BLOB_READ_PER_10K,
        "blob list/create" => BLOB_LIST_PER_10K,
        "blob other" => BLOB_OTHER_PER_10K,
        "queue" => QUEUE_PER_10K,
        _ => 0.0,
    }
}

/// What 1,000 jobs cost Berth's own resources, by meter.
#[derive(Clone, Debug, Serialize)]
pub struct OrchestrationCost {
    /// The total, USD per 1,000 jobs.
    pub usd_per_1000_jobs: f64,
    /// USD per 1,000 jobs by meter (`blob write`, `queue`, `functions executions`, ...).
    pub usd_by_meter: BTreeMap<&'static str, f64>,
    /// Storage requests per job by meter.
    pub requests_per_job_by_meter: BTreeMap<&'static str, f64>,
    /// Function executions per job: the two API requests (submit, raise `completed`) and one
    /// per step message delivered.
    pub executions_per_job: f64,
    /// Seconds of active execution per job (see [`price`]).
    pub active_seconds_per_job: f64,
    /// The ACI reference job: one minute of 1 vCPU and 1.5 GB, Linux, Standard.
    pub aci_usd_reference_job: f64,
    /// `usd_per_1000_jobs / 1000` over `aci_usd_reference_job`; the target is 0.05 or less.
    pub orchestration_vs_compute: f64,
}

/// One minute of 1 vCPU and 1.5 GB on Linux at Berth's default (list) price table.
pub fn aci_reference_job() -> f64 {
    let billing = Billing {
        windows: false,
        sku: "Standard".into(),
        cpu: 1.0,
        memory_gb: 1.5,
        gpus: BTreeMap::new(),
    };
    Prices::default()
        .price(&billing, Priority::Regular, 60.0)
        .unwrap_or(f64::NAN)
}

/// Prices one job's storage requests (`tx_by_kind`, per job) and Function executions. Every step
/// message put is delivered (once, in the usual case) to a queue-triggered execution, and the
/// API requests are executions too; `active_seconds_per_job` is how long the instance has
/// executions in flight for one job, billed at the instance memory.
pub fn price(
    tx_by_kind: &BTreeMap<&'static str, f64>,
    api_requests_per_job: f64,
    active_seconds_per_job: f64,
) -> OrchestrationCost {
    let mut requests = BTreeMap::new();
    for (kind, n) in tx_by_kind {
        *requests.entry(meter(kind)).or_insert(0.0) += n;
    }
    let mut usd = BTreeMap::new();
    for (m, n) in &requests {
        usd.insert(*m, n * per_10k(m) / 10_000.0 * 1000.0);
    }
    let messages = tx_by_kind.get("message.put").copied().unwrap_or(0.0);
    let executions = api_requests_per_job + messages;
    usd.insert(
        "functions executions",
        executions * FUNCTIONS_PER_EXECUTION * 1000.0,
    );
    usd.insert(
        "functions GB-s",
        active_seconds_per_job * INSTANCE_GB * FUNCTIONS_PER_GB_SECOND * 1000.0,
    );
    let total: f64 = usd.values().sum();
    let reference = aci_reference_job();
    OrchestrationCost {
        usd_per_1000_jobs: total,
        usd_by_meter: usd,
        requests_per_job_by_meter: requests,
        executions_per_job: executions,
        active_seconds_per_job,
        aci_usd_reference_job: reference,
        orchestration_vs_compute: total / 1000.0 / reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_job_is_a_minute_at_the_linux_list_price() {
        let expected = (0.0405 + 1.5 * 0.00445) / 60.0;
        assert!((aci_reference_job() - expected).abs() < 1e-12);
    }

    #[test]
    fn each_kind_is_priced_as_its_operation_type() {
        let tx = BTreeMap::from([
            ("blob.put", 4.0),
            ("blob.get", 3.0),
            ("blob.delete", 2.0),
            ("blob.set_tags", 1.0),
            ("blob.list", 1.0),
            ("message.put", 2.0),
            ("message.get", 3.0),
        ]);
        let cost = price(&tx, 2.0, 0.0);
        assert_eq!(cost.requests_per_job_by_meter["free"], 2.0);
        assert_eq!(cost.requests_per_job_by_meter["blob other"], 1.0);
        assert_eq!(cost.requests_per_job_by_meter["queue"], 5.0);
        assert!((cost.usd_by_meter["blob write"] - 4.0 * 0.05 / 10.0).abs() < 1e-12);
        assert_eq!(cost.executions_per_job, 4.0);
        assert!((cost.usd_by_meter["functions executions"] - 4.0 * 0.0004).abs() < 1e-12);
        assert_eq!(cost.usd_by_meter["functions GB-s"], 0.0);
        let with_time = price(&tx, 2.0, 0.5);
        assert!((with_time.usd_by_meter["functions GB-s"] - 0.5 * 2.0 * 0.026).abs() < 1e-12);
    }
}
