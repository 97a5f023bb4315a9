//! Item 1 and 4: one-group jobs that exit at once, on the instant emulator, through Berth's HTTP
//! API, at a given concurrency; with what each job cost in storage operations and ARM calls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use berth::engine::RuntimeStatus;
use serde::Serialize;
use serde_json::{Value, json};

use crate::berth::{Berth, JOB_LIMIT};
use crate::load::{self, LoadResult};
use crate::watch::{Op, Tally};

/// How a job learns that its container finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Completion {
    /// The job's container calls back: `completed` is raised through the API as soon as the
    /// checkpoint that records its group as created is saved (with the instant emulator the
    /// container has finished by then). The workflow duroxide runs: create, wait for the event,
    /// capture logs, delete.
    Callback,
    /// Berth looks at the group until its container has exited.
    Polling,
}

impl Completion {
    /// The name in tables and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Completion::Callback => "callback",
            Completion::Polling => "polling",
        }
    }
}

/// A one-group job whose container exits at once.
pub fn job_spec(id: &str, completion: Completion) -> Value {
    json!({
        "id": id,
        "mode": "job",
        "completion": match completion { Completion::Callback => "callback", Completion::Polling => "exit" },
        "groups": [{ "name": "work", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["/bin/true"],
                "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }],
        "captureLogs": true,
        "cleanup": { "when": "always" }
    })
}

/// A measured run with its cost per job.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    #[serde(flatten)]
    pub load: LoadResult,
    /// Storage operations per job by kind (SQLite: each one transaction).
    pub store_ops_per_job: BTreeMap<&'static str, f64>,
    pub store_ops_per_job_total: f64,
    /// Seconds spent inside the store per job (summed over concurrent calls), in milliseconds.
    pub store_ms_per_job: f64,
    pub arm_calls_per_job: f64,
    /// Storage transactions per job: the account's own count on Azure Storage (every request,
    /// idle receives included), the store operations on SQLite (each one transaction).
    pub storage_tx_per_job: f64,
    /// The account's transactions per job by kind (Azure Storage only).
    pub storage_tx_by_kind: BTreeMap<&'static str, f64>,
}

/// Submits one job through the API and waits for its `Done` save; returns the latency.
pub async fn one_job(
    berth: &Berth,
    http: &reqwest::Client,
    id: &str,
    completion: Completion,
) -> anyhow::Result<std::time::Duration> {
    let done = berth.watched.done(id);
    let created = berth.watched.created(id);
    let started = Instant::now();
    submit(berth, http, id, &job_spec(id, completion)).await?;
    if completion == Completion::Callback {
        let d = tokio::time::timeout(JOB_LIMIT, created)
            .await
            .with_context(|| format!("job {id}: no group created within {JOB_LIMIT:?}"))?
            .context("the store dropped the waiter")?;
        // The call its container makes: the instance's own `completed` URL and token.
        let instance = &d.instances[0].aci_name;
        let token = berth
            .runtime
            .driver
            .callback_token(
                d.callback_key.as_deref(),
                id,
                &format!("completed:{instance}"),
            )
            .context("the callback token")?;
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/callbacks/{id}/completed", berth.api),
            [("instance", instance.as_str()), ("token", token.as_str())],
        )?;
        let response = http
            .post(url)
            .json(&json!({ "exitCode": 0 }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("raise completed on {id}: HTTP {}", response.status());
        }
    }
    let (at, deployment) = tokio::time::timeout(JOB_LIMIT, done)
        .await
        .with_context(|| format!("job {id} did not finish within {JOB_LIMIT:?}"))?
        .context("the store dropped the waiter")?;
    if deployment.status != RuntimeStatus::Succeeded {
        bail!(
            "job {id} ended {:?}: {}",
            deployment.status,
            serde_json::to_string(&deployment.history).unwrap_or_default()
        );
    }
    Ok(at - started)
}

/// Submits deployment `id` through the API; an error unless it is accepted (`202`).
pub async fn submit(
    berth: &Berth,
    http: &reqwest::Client,
    id: &str,
    spec: &Value,
) -> anyhow::Result<()> {
    let response = http
        .post(format!("{}/api/deployments", berth.api))
        .json(spec)
        .send()
        .await?;
    if response.status().as_u16() != 202 {
        bail!(
            "submit {id}: HTTP {}: {}",
            response.status(),
            response.text().await?
        );
    }
    Ok(())
}

/// The account's requests by kind (the kinds made), each divided by `n` (jobs, items).
pub fn by_kind_per(
    account: &berth::azure_storage::Snapshot,
    n: f64,
) -> BTreeMap<&'static str, f64> {
    account
        .by_name()
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| (k, v as f64 / n))
        .collect()
}

/// Per-job costs from two tallies and ARM counts.
pub fn per_job(
    tally: &Tally,
    arm_calls: u64,
    jobs: usize,
) -> (BTreeMap<&'static str, f64>, f64, f64, f64) {
    let n = jobs.max(1) as f64;
    let ops: BTreeMap<&'static str, f64> = Op::ALL
        .iter()
        .filter(|op| tally.calls_of(**op) > 0)
        .map(|op| (op.name(), tally.calls_of(*op) as f64 / n))
        .collect();
    (
        ops,
        tally.total_calls() as f64 / n,
        tally.total_seconds() * 1000.0 / n,
        arm_calls as f64 / n,
    )
}

/// How long after a measure's last job the messages it left are delivered: the bench's create
/// claim (5 s, see [`crate::berth::settings`]) and a margin for the worker to receive them.
pub const STALE_DELIVERED: std::time::Duration = std::time::Duration::from_secs(8);

/// Runs `jobs` jobs at `concurrency` on `berth`, ids prefixed with `tag`.
pub async fn measure(
    berth: &Arc<Berth>,
    tag: &str,
    jobs: usize,
    concurrency: usize,
    completion: Completion,
) -> anyhow::Result<Measured> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let before = berth.watched.counters.tally();
    let account_before = berth.storage_transactions();
    let arm_before = berth.arm_calls();
    let (b, tag) = (berth.clone(), tag.to_owned());
    let load = load::run(jobs, concurrency, move |i| {
        let (b, http, id) = (b.clone(), http.clone(), format!("{tag}-{i}"));
        async move { one_job(&b, &http, &id, completion).await }
    })
    .await?;
    // The jobs' last messages are due after their end and dropped as stale when they come (the
    // submit's, when its claim runs out; a callback job's first look): their deliveries are part
    // of what a job costs, so the account is read once they have come.
    if berth.account.is_some() {
        tokio::time::sleep(STALE_DELIVERED).await;
    }
    let tally = berth.watched.counters.tally().since(&before);
    let (store_ops_per_job, store_ops_per_job_total, store_ms_per_job, arm_calls_per_job) =
        per_job(&tally, berth.arm_calls() - arm_before, jobs);
    let n = jobs.max(1) as f64;
    let account = berth
        .storage_transactions()
        .zip(account_before)
        .map(|(now, before)| now.since(&before));
    let storage_tx_per_job = account
        .as_ref()
        .map_or(store_ops_per_job_total, |a| a.total() as f64 / n);
    let storage_tx_by_kind = account.map(|a| by_kind_per(&a, n)).unwrap_or_default();
    Ok(Measured {
        storage_tx_per_job,
        storage_tx_by_kind,
        load,
        store_ops_per_job,
        store_ops_per_job_total,
        store_ms_per_job,
        arm_calls_per_job,
    })
}
