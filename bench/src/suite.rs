//! The whole run: what to measure ([`Plan`]), measuring it in order, and the results (a table per
//! item on stdout, one JSON document for `results.json` with the keys bench/README.md lists).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth::azure_storage::StorageConnection;
use berth::engine::Deployment;
use serde_json::{Map, Value, json};

use crate::berth::{Berth, Storage, settings};
use crate::duroxide::{self, DuroxideConfig};
use crate::fanout;
use crate::floor;
use crate::footprint;
use crate::live;
use crate::load::median;
use crate::looks;
use crate::orchestration;
use crate::procs::Emulator;
use crate::report::{Machine, Table, json_num, load_average, num};
use crate::sweep_scale;
use crate::throughput::{Completion, Measured, measure};

/// What a run measures, and how much.
#[derive(Clone, Debug)]
pub struct Plan {
    pub quick: bool,
    pub repeats: usize,
    pub concurrency: Vec<usize>,
    /// Jobs per measured run at concurrency 1.
    pub jobs_serial: usize,
    /// Jobs per measured run above concurrency 1.
    pub jobs: usize,
    /// Jobs per measured run on Azurite (slower: fewer).
    pub jobs_azurite: usize,
    pub duroxide: Option<PathBuf>,
    pub duroxide_configs: Vec<DuroxideConfig>,
    pub duroxide_jobs_serial: usize,
    pub duroxide_jobs: usize,
    pub azurite: Option<String>,
    pub only: Vec<String>,
    pub floor_deployments: usize,
    /// Deployments per floor run on Azurite.
    pub floor_deployments_azurite: usize,
    pub footprint_starts: usize,
    /// `handler` as the Function App package build makes it (`infra/hooks/package.sh`).
    pub packaged: Option<PathBuf>,
    pub live_deployments: usize,
    pub live_window: Duration,
    pub sweep_sizes: Vec<usize>,
    /// Items of the fan-out deployment, and how many run at once.
    pub fanout_items: usize,
    pub fanout_parallelism: usize,
    /// Jobs and ARM reads per second of the detection runs (item 7).
    pub looks_jobs: usize,
    pub looks_reads_per_second: f64,
}

impl Plan {
    /// The run under two minutes.
    pub fn quick() -> Plan {
        Plan {
            quick: true,
            repeats: 3,
            concurrency: vec![1, 16, 256],
            jobs_serial: 40,
            jobs: 512,
            jobs_azurite: 32,
            duroxide: None,
            duroxide_configs: vec![DuroxideConfig::tuned()],
            duroxide_jobs_serial: 20,
            duroxide_jobs: 64,
            azurite: None,
            only: Vec::new(),
            floor_deployments: 1000,
            floor_deployments_azurite: 256,
            footprint_starts: 5,
            packaged: None,
            live_deployments: 1000,
            live_window: Duration::from_secs(10),
            sweep_sizes: vec![1_000, 100_000],
            fanout_items: 1000,
            fanout_parallelism: 100,
            looks_jobs: 1_000,
            looks_reads_per_second: 20.0,
        }
    }

    /// The full run.
    pub fn full() -> Plan {
        Plan {
            quick: false,
            jobs_serial: 200,
            jobs: 3000,
            jobs_azurite: 200,
            duroxide_configs: DuroxideConfig::grid(),
            duroxide_jobs_serial: 50,
            duroxide_jobs: 200,
            floor_deployments: 5000,
            floor_deployments_azurite: 1000,
            footprint_starts: 20,
            live_window: Duration::from_secs(30),
            ..Plan::quick()
        }
    }

    fn wants(&self, item: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == item)
    }
}

/// The medians of repeated runs at one concurrency.
#[derive(Clone, Debug, Default)]
struct Point {
    concurrency: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    store_ops: f64,
    store_ms: f64,
    arm_calls: f64,
    storage_tx: f64,
    ops: BTreeMap<&'static str, f64>,
    tx_by_kind: BTreeMap<&'static str, f64>,
}

fn summarise(concurrency: usize, runs: &[Measured]) -> Point {
    let pick = |f: &dyn Fn(&Measured) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let mut ops = BTreeMap::new();
    for run in runs {
        for k in run.store_ops_per_job.keys() {
            ops.entry(*k).or_insert(0.0);
        }
    }
    for (k, v) in ops.iter_mut() {
        *v = pick(&|m: &Measured| m.store_ops_per_job.get(k).copied().unwrap_or(0.0));
    }
    let mut tx_by_kind = BTreeMap::new();
    for run in runs {
        for k in run.storage_tx_by_kind.keys() {
            tx_by_kind.entry(*k).or_insert(0.0);
        }
    }
    for (k, v) in tx_by_kind.iter_mut() {
        *v = pick(&|m: &Measured| m.storage_tx_by_kind.get(k).copied().unwrap_or(0.0));
    }
    Point {
        concurrency,
        per_second: pick(&|m| m.load.per_second),
        p50_ms: pick(&|m| m.load.p50_ms),
        p99_ms: pick(&|m| m.load.p99_ms),
        store_ops: pick(&|m| m.store_ops_per_job_total),
        store_ms: pick(&|m| m.store_ms_per_job),
        arm_calls: pick(&|m| m.arm_calls_per_job),
        storage_tx: pick(&|m| m.storage_tx_per_job),
        ops,
        tx_by_kind,
    }
}

fn point_json(p: &Point) -> Value {
    json!({
        "concurrency": p.concurrency,
        "per_second": json_num(p.per_second),
        "p50_ms": json_num(p.p50_ms),
        "p99_ms": json_num(p.p99_ms),
        "store_ops_per_job": json_num(p.store_ops),
        "store_ms_per_job": json_num(p.store_ms),
        "arm_calls_per_job": json_num(p.arm_calls),
        "storage_tx_per_job": json_num(p.storage_tx),
        "store_ops_by_kind": p.ops,
        "storage_tx_by_kind": p.tx_by_kind,
    })
}

/// A run in progress: the plan, what was measured so far.
pub struct Suite {
    plan: Plan,
    json: Map<String, Value>,
    tables: Vec<Table>,
    /// A real finished deployment (from the throughput runs), for the floor and the sweep.
    template: Option<Deployment>,
}

impl Suite {
    /// Runs the plan; returns the results document.
    pub async fn run(plan: Plan) -> anyhow::Result<Value> {
        let mut machine = Machine::read();
        let mut suite = Suite {
            plan,
            json: Map::new(),
            tables: Vec::new(),
            template: None,
        };
        println!(
            "berth-bench ({}): {} x {}, load {}",
            if suite.plan.quick { "quick" } else { "full" },
            machine.cores,
            machine.cpu,
            machine.load_at_start
        );
        // A quota raised above every concurrency measured (256 jobs of 0.5 cores at once): at the
        // emulator's default (100 cores, as ACI's), Berth's admission would hold creates past 200
        // cores' worth for a retry, and item 1 would measure the quota, not the orchestration.
        let emulator = Emulator::start(&[
            "--instant",
            "--cores-per-region",
            "100000",
            "--groups-per-region",
            "100000",
        ])
        .await?;
        let started = std::time::Instant::now();
        let progress = |item: &str| {
            println!(
                "  {item}: started at {:.0} s",
                started.elapsed().as_secs_f64()
            );
        };
        suite.throughput(&emulator).await?;
        if suite.plan.wants("duroxide") {
            progress("duroxide");
            suite.duroxide(&emulator).await?;
        }
        if suite.plan.wants("floor") {
            progress("floor");
            suite.floor().await?;
        }
        if suite.plan.wants("footprint") {
            progress("footprint");
            suite.footprint(&emulator).await?;
        }
        if suite.plan.wants("live") {
            progress("live");
            suite.live().await?;
        }
        if suite.plan.wants("sweep") {
            progress("sweep");
            suite.sweep(&emulator).await?;
        }
        if suite.plan.wants("fanout") {
            progress("fanout");
            // Last of the default items: a fan-out that fails is reported, the numbers before it are kept.
            if let Err(e) = suite.fanout(&emulator).await {
                let error = format!("{e:#}");
                println!("  fan-out failed: {error}");
                suite.key("fanout_error", json!(error));
            }
        }
        // Minutes of real run times: only when asked for by name.
        if suite.plan.only.iter().any(|o| o == "looks") {
            progress("looks");
            suite.looks().await?;
        }
        suite.ratios();
        machine.load_at_end = load_average();
        for table in &suite.tables {
            print!("{}", table.render());
        }
        let mut out = Map::new();
        out.insert("machine".into(), serde_json::to_value(&machine)?);
        out.insert(
            "mode".into(),
            json!(if suite.plan.quick { "quick" } else { "full" }),
        );
        out.insert("repeats".into(), json!(suite.plan.repeats));
        out.insert("seconds".into(), json_num(started.elapsed().as_secs_f64()));
        out.extend(suite.json);
        Ok(Value::Object(out))
    }

    fn key(&mut self, key: &str, value: Value) {
        self.json.insert(key.to_owned(), value);
    }

    /// SQLite in `dir`, then Azurite (when given) under a queue named `prefix-<random>`.
    fn backends(&self, dir: &std::path::Path, prefix: &str) -> Vec<Storage> {
        let mut backends = vec![Storage::Sqlite(dir.to_path_buf())];
        if let Some(connection) = &self.plan.azurite {
            let queue = format!(
                "{prefix}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..10]
            );
            backends.push(Storage::Azure {
                connection: connection.clone(),
                queue,
            });
        }
        backends
    }

    /// Item 1 (and the per-job costs of item 4) on each backend.
    async fn throughput(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        let want_throughput = self.plan.wants("throughput") || self.plan.wants("duroxide");
        let want_cost = self.plan.wants("cost");
        let needs_template = self.plan.wants("floor") || self.plan.wants("sweep");
        if !(want_throughput || want_cost || needs_template) {
            return Ok(());
        }
        let dir = tempfile::tempdir()?;
        let backends = self.backends(dir.path(), "bench");
        let mut table = Table::new(
            "Item 1: one-group jobs on the instant emulator (callback completion, medians)",
            &[
                "backend",
                "concurrency",
                "jobs/s",
                "p50 ms",
                "p99 ms",
                "store tx/job",
                "store ms/job",
                "ARM calls/job",
            ],
        );
        let mut by_backend = Map::new();
        for storage in backends {
            let name = storage.name();
            // Azurite is some 20 times slower than SQLite: the quick run measures it once.
            let azurite = name != "sqlite";
            let repeats = if azurite && self.plan.quick {
                1
            } else {
                self.plan.repeats
            };
            let jobs = if name == "sqlite" {
                self.plan.jobs
            } else {
                self.plan.jobs_azurite
            };
            let extra = [("BERTH_ARM_READS_PER_SECOND", "0".to_owned())];
            let berth = Arc::new(
                Berth::start(settings(&storage, &emulator.endpoint, "", &extra))
                    .await
                    .with_context(|| format!("starting Berth on {name}"))?,
            );
            // Warm up: connections, statement caches, the queue.
            measure(
                &berth,
                &format!("{name}-warm"),
                32,
                16,
                Completion::Callback,
            )
            .await?;
            self.template
                .get_or_insert(finished(&berth, &format!("{name}-warm-0")).await?);
            let mut points = Vec::new();
            // The orchestration price (item 4) takes its active time from the c=1 latency.
            let levels = if want_throughput {
                self.plan.concurrency.clone()
            } else {
                vec![1, 16]
            };
            for &c in &levels {
                let n = if c == 1 {
                    self.plan.jobs_serial.min(jobs)
                } else {
                    jobs.max(c)
                };
                let mut runs = Vec::new();
                for r in 0..repeats {
                    runs.push(
                        measure(
                            &berth,
                            &format!("{name}-c{c}-r{r}"),
                            n,
                            c,
                            Completion::Callback,
                        )
                        .await?,
                    );
                }
                let p = summarise(c, &runs);
                table.row(vec![
                    name.into(),
                    c.to_string(),
                    num(p.per_second, 1),
                    num(p.p50_ms, 2),
                    num(p.p99_ms, 2),
                    num(p.storage_tx, 2),
                    num(p.store_ms, 3),
                    num(p.arm_calls, 2),
                ]);
                println!(
                    "  {name} c={c}: {:.1} jobs/s, p50 {:.2} ms",
                    p.per_second, p.p50_ms
                );
                points.push(p);
            }
            let mut polling = Vec::new();
            if want_cost {
                for r in 0..repeats {
                    polling.push(
                        measure(
                            &berth,
                            &format!("{name}-poll-r{r}"),
                            jobs.min(512),
                            16,
                            Completion::Polling,
                        )
                        .await?,
                    );
                }
            }
            let poll = summarise(16, &polling);
            let callback = points
                .iter()
                .find(|p| p.concurrency == 16)
                .cloned()
                .unwrap_or_default();
            by_backend.insert(
                name.into(),
                json!({
                    "callback": points.iter().map(point_json).collect::<Vec<_>>(),
                    "polling_c16": point_json(&poll),
                    "callback_c16_costs": point_json(&callback),
                }),
            );
            let best = points
                .iter()
                .max_by(|a, b| a.per_second.total_cmp(&b.per_second))
                .cloned()
                .unwrap_or_default();
            self.key(
                &format!("berth_best_throughput_{name}"),
                json_num(best.per_second),
            );
            self.key(
                &format!("berth_best_concurrency_{name}"),
                json!(best.concurrency),
            );
            self.key(
                &format!("storage_tx_per_job_callback_{name}"),
                json_num(callback.storage_tx),
            );
            self.key(
                &format!("storage_tx_per_job_polling_{name}"),
                json_num(poll.storage_tx),
            );
            // The headline cost figures are Azure Storage's (billed per transaction) when
            // Azurite ran, SQLite's otherwise; the Azurite backend runs after SQLite.
            self.key("storage_tx_per_job_callback", json_num(callback.storage_tx));
            self.key("storage_tx_per_job_polling", json_num(poll.storage_tx));
            self.key("storage_tx_backend", json!(name));
            if name == "sqlite" {
                let serial = points.iter().find(|p| p.concurrency == 1);
                self.key("berth_best_throughput", json_num(best.per_second));
                self.key(
                    "berth_p50_ms_c1",
                    json_num(serial.map(|p| p.p50_ms).unwrap_or(f64::NAN)),
                );
                self.key("arm_calls_per_job_callback", json_num(callback.arm_calls));
                self.key("arm_calls_per_job_polling", json_num(poll.arm_calls));
            }
            let mut cost = Table::new(
                &format!("Item 4: cost per job on {name} (concurrency 16, medians)"),
                &["completion", "store tx/job", "by kind", "ARM calls/job"],
            );
            for (label, p) in [("callback", &callback), ("polling", &poll)] {
                if p.storage_tx.is_finite() && p.storage_tx > 0.0 {
                    let by_kind = if p.tx_by_kind.is_empty() {
                        &p.ops
                    } else {
                        &p.tx_by_kind
                    };
                    let kinds = by_kind
                        .iter()
                        .map(|(k, v)| format!("{k} {v:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    cost.row(vec![
                        label.into(),
                        num(p.storage_tx, 2),
                        kinds,
                        num(p.arm_calls, 2),
                    ]);
                }
            }
            self.tables.push(cost);
            if !callback.tx_by_kind.is_empty() {
                let serial = points.iter().find(|p| p.concurrency == 1);
                self.orchestration(&callback, serial);
            }
        }
        self.key("throughput", Value::Object(by_backend));
        self.tables.insert(0, table);
        Ok(())
    }

    /// Item 4's price: Berth's own Azure cost per 1,000 callback jobs from the requests counted
    /// on Azurite at concurrency 16, with the c=1 latency as each job's active execution time.
    fn orchestration(&mut self, callback: &Point, serial: Option<&Point>) {
        // Each job is two API requests: the submit and the raised `completed`.
        let active_s = serial.map_or(f64::NAN, |p| p.p50_ms / 1000.0);
        let cost = orchestration::price(&callback.tx_by_kind, 2.0, active_s);
        let mut table = Table::new(
            "Item 4: Berth's own Azure cost per 1,000 callback jobs (hot LRS StorageV2, Flex Consumption)",
            &["meter", "per job", "USD per 1,000 jobs"],
        );
        for (meter, usd) in &cost.usd_by_meter {
            let per_job = match *meter {
                "functions executions" => num(cost.executions_per_job, 2),
                "functions GB-s" => format!(
                    "{} s x {} GB",
                    num(cost.active_seconds_per_job, 3),
                    orchestration::INSTANCE_GB
                ),
                m => num(
                    cost.requests_per_job_by_meter
                        .get(m)
                        .copied()
                        .unwrap_or(0.0),
                    2,
                ),
            };
            table.row(vec![(*meter).into(), per_job, num(*usd, 5)]);
        }
        table.row(vec![
            "total".into(),
            String::new(),
            num(cost.usd_per_1000_jobs, 5),
        ]);
        table.row(vec![
            "ACI reference job (1 min, 1 vCPU, 1.5 GB, Linux) x 1,000".into(),
            String::new(),
            num(cost.aci_usd_reference_job * 1000.0, 5),
        ]);
        self.key(
            "orchestration_usd_per_1000_jobs",
            json_num(cost.usd_per_1000_jobs),
        );
        self.key(
            "aci_usd_reference_job",
            json_num(cost.aci_usd_reference_job),
        );
        self.key(
            "orchestration_vs_compute",
            json_num(cost.orchestration_vs_compute),
        );
        self.key(
            "orchestration",
            serde_json::to_value(&cost).unwrap_or(Value::Null),
        );
        self.tables.push(table);
    }

    /// Item 7: one deployment of 1,000 items at parallelism 100, on each backend.
    async fn fanout(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let backends = self.backends(dir.path(), "fanout");
        let mut table = Table::new(
            &format!(
                "Item 7: fan-out, {} items at parallelism {} (polling completion, instant emulator)",
                self.plan.fanout_items, self.plan.fanout_parallelism
            ),
            &[
                "backend",
                "items/s",
                "seconds",
                "storage tx/item",
                "ARM calls/item",
                "checkpoint bytes",
                "bytes/item",
            ],
        );
        let mut out = Map::new();
        for storage in backends {
            let name = storage.name();
            let extra = [("BERTH_ARM_READS_PER_SECOND", "0".to_owned())];
            let berth = Berth::start(settings(&storage, &emulator.endpoint, "", &extra))
                .await
                .with_context(|| format!("starting Berth on {name}"))?;
            let run = fanout::measure(
                &berth,
                &format!("fanout-{name}"),
                self.plan.fanout_items,
                self.plan.fanout_parallelism,
                Duration::from_secs(900),
            )
            .await?;
            println!(
                "  fan-out {name}: {:.1} items/s, {:.2} storage tx/item",
                run.items_per_second, run.storage_tx_per_item
            );
            table.row(vec![
                name.into(),
                num(run.items_per_second, 1),
                num(run.seconds, 1),
                num(run.storage_tx_per_item, 2),
                num(run.arm_calls_per_item, 2),
                run.checkpoint_bytes.to_string(),
                num(run.checkpoint_bytes_per_item, 1),
            ]);
            self.key(
                &format!("fanout_items_per_second_{name}"),
                json_num(run.items_per_second),
            );
            self.key(
                &format!("fanout_storage_tx_per_item_{name}"),
                json_num(run.storage_tx_per_item),
            );
            // The headline figures are Azure Storage's when Azurite ran (it runs after SQLite).
            self.key("fanout_items_per_second", json_num(run.items_per_second));
            self.key(
                "fanout_storage_tx_per_item",
                json_num(run.storage_tx_per_item),
            );
            self.key(
                "fanout_checkpoint_bytes_per_item",
                json_num(run.checkpoint_bytes_per_item),
            );
            self.key("fanout_backend", json!(name));
            out.insert(name.into(), serde_json::to_value(&run)?);
        }
        self.key("fanout", Value::Object(out));
        self.tables.push(table);
        Ok(())
    }

    /// Item 2: the same workflow on duroxide, in a child process, against the same emulator.
    async fn duroxide(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        let Some(binary) = self.plan.duroxide.clone() else {
            println!("  duroxide: skipped (no --duroxide binary; bench/run.sh builds it)");
            return Ok(());
        };
        let mut table = Table::new(
            "Item 2: the same workflow on duroxide 0.1.32 (SQLite provider, medians)",
            &["options", "concurrency", "orch/s", "p50 ms", "p99 ms"],
        );
        let mut all = Vec::new();
        for config in self.plan.duroxide_configs.clone() {
            let run = duroxide::run(
                &binary,
                &emulator.endpoint,
                &config,
                &self.plan.concurrency,
                self.plan.duroxide_jobs_serial,
                self.plan.duroxide_jobs,
                self.plan.repeats,
            )
            .await;
            // duroxide can stall under SQLite lock contention (an activity that never runs): that
            // option set is reported as failed and the others still count.
            let points = match run {
                Ok(points) => points,
                Err(e) => {
                    let error = format!("{e:#}").chars().take(300).collect::<String>();
                    println!("  duroxide {}: failed: {error}", config.label());
                    table.row(vec![
                        config.label(),
                        "-".into(),
                        "failed".into(),
                        "-".into(),
                        "-".into(),
                    ]);
                    all.push(json!({ "options": config, "error": error }));
                    continue;
                }
            };
            for p in &points {
                table.row(vec![
                    config.label(),
                    p.concurrency.to_string(),
                    num(p.per_second, 1),
                    num(p.p50_ms, 1),
                    num(p.p99_ms, 1),
                ]);
                println!(
                    "  duroxide {} c={}: {:.1}/s, p50 {:.1} ms",
                    config.label(),
                    p.concurrency,
                    p.per_second,
                    p.p50_ms
                );
            }
            all.push(json!({ "options": config, "points": points }));
        }
        let points = all
            .iter()
            .flat_map(|c| c["points"].as_array().cloned().unwrap_or_default());
        let (mut best, mut best_p50) = (f64::NAN, f64::NAN);
        for p in points {
            best = best.max(p["per_second"].as_f64().unwrap_or(f64::NAN));
            if p["concurrency"] == 1 {
                best_p50 = best_p50.min(p["p50_ms"].as_f64().unwrap_or(f64::NAN));
            }
        }
        self.key("duroxide", json!({ "configurations": all, "best_throughput": json_num(best), "best_p50_ms_c1": json_num(best_p50) }));
        self.tables.push(table);
        Ok(())
    }

    /// Item 3: the raw storage floor, and Berth's per-deployment time as a multiple of it.
    async fn floor(&mut self) -> anyhow::Result<()> {
        let template = self
            .template
            .clone()
            .context("the floor needs a finished deployment")?;
        let body = serde_json::to_vec(&template)?;
        let dir = tempfile::tempdir()?;
        let mut runs = Vec::new();
        for _ in 0..self.plan.repeats {
            runs.push(floor::sqlite(
                dir.path(),
                &body,
                self.plan.floor_deployments,
            )?);
            std::fs::remove_file(dir.path().join("floor.db"))?;
            let _ = std::fs::remove_file(dir.path().join("floor.db-wal"));
            let _ = std::fs::remove_file(dir.path().join("floor.db-shm"));
        }
        let ms = median(&runs.iter().map(|f| f.ms_per_deployment).collect::<Vec<_>>());
        let mut table = Table::new(
            "Item 3: the storage floor (raw, medians) and Berth's time per deployment",
            &[
                "backend",
                "concurrency",
                "tx/deployment",
                "floor ms/deployment",
                "Berth ms/deployment",
                "Berth / floor",
                "checkpoint bytes",
            ],
        );
        let berth_ms = |json: &Map<String, Value>, name: &str| {
            json.get(&format!("berth_best_throughput_{name}"))
                .and_then(Value::as_f64)
                .map_or(f64::NAN, |per_second| 1000.0 / per_second)
        };
        let sqlite_berth = berth_ms(&self.json, "sqlite");
        table.row(vec![
            "sqlite".into(),
            "1".into(),
            floor::TRANSACTIONS.to_string(),
            num(ms, 4),
            num(sqlite_berth, 4),
            num(sqlite_berth / ms, 2),
            body.len().to_string(),
        ]);
        let mut out = json!({ "sqlite": {
            "ms_per_deployment": json_num(ms), "transactions": floor::TRANSACTIONS,
            "checkpoint_bytes": body.len(), "concurrency": 1,
            "berth_ms_per_deployment": json_num(sqlite_berth) } });
        self.key("per_deployment_vs_floor", json_num(sqlite_berth / ms));
        if let Some(connection) = &self.plan.azurite {
            let connection = StorageConnection::parse("BERTH_BENCH_AZURITE", connection)?;
            let concurrency = self
                .json
                .get("berth_best_concurrency_azurite")
                .and_then(Value::as_u64)
                .map_or(16, |c| c as usize);
            // As for Berth on Azurite, the quick run measures it once.
            let repeats = if self.plan.quick {
                1
            } else {
                self.plan.repeats
            };
            let mut runs = Vec::new();
            for _ in 0..repeats {
                runs.push(
                    floor::azurite(
                        &connection,
                        &body,
                        self.plan.floor_deployments_azurite.max(concurrency),
                        concurrency,
                    )
                    .await?,
                );
            }
            let azure_ms = median(&runs.iter().map(|f| f.ms_per_deployment).collect::<Vec<_>>());
            let counted = runs.first().map_or(0, |f| f.transactions_per_deployment);
            let azure_berth = berth_ms(&self.json, "azurite");
            table.row(vec![
                "azurite".into(),
                concurrency.to_string(),
                counted.to_string(),
                num(azure_ms, 4),
                num(azure_berth, 4),
                num(azure_berth / azure_ms, 2),
                body.len().to_string(),
            ]);
            out["azurite"] = json!({
                "ms_per_deployment": json_num(azure_ms), "transactions": counted,
                "concurrency": concurrency, "berth_ms_per_deployment": json_num(azure_berth) });
            self.key(
                "per_deployment_vs_floor_azurite",
                json_num(azure_berth / azure_ms),
            );
        }
        self.key("floor", out);
        self.tables.push(table);
        Ok(())
    }

    /// Item 5: start-to-readiness, idle memory and size, beside axum's hello-world.
    async fn footprint(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        let footprint::Footprints {
            handler,
            hello,
            packaged,
        } = footprint::all(
            &emulator.endpoint,
            self.plan.footprint_starts,
            self.plan.packaged.as_deref(),
        )
        .await?;
        let mut table = Table::new(
            "Item 5: footprint (Functions mode, medians)",
            &[
                "binary",
                "start to readiness ms",
                "idle RSS MB",
                "binary MB",
            ],
        );
        let rows = [("", &handler), ("", &hello)]
            .into_iter()
            .chain(packaged.iter().map(|p| (" (package build)", p)));
        for (label, f) in rows {
            table.row(vec![
                format!("{}{label}", f.binary),
                num(f.startup_ms, 2),
                num(f.idle_rss_mb, 1),
                num(f.binary_mb, 1),
            ]);
        }
        self.key("startup_ms", json_num(handler.startup_ms));
        self.key(
            "startup_vs_axum_hello",
            json_num(handler.startup_ms / hello.startup_ms),
        );
        self.key("idle_rss_mb", json_num(handler.idle_rss_mb));
        self.key("binary_mb", json_num(handler.binary_mb));
        match &packaged {
            Some(p) => self.key("packaged_binary_mb", json_num(p.binary_mb)),
            None => println!("  no --packaged binary: packaged_binary_mb is not measured"),
        }
        self.key(
            "footprint",
            json!({ "handler": handler, "axum_hello": hello, "packaged": packaged }),
        );
        self.tables.push(table);
        Ok(())
    }

    /// Items 4 and 5 at 1,000 live deployments.
    async fn live(&mut self) -> anyhow::Result<()> {
        let live = live::measure(self.plan.live_deployments, self.plan.live_window).await?;
        let mut table = Table::new(
            "Items 4 and 5: 1,000 live deployments under polling (handler serve, SQLite)",
            &[
                "deployments",
                "ARM reads/s",
                "read budget/s",
                "handler RSS MB",
            ],
        );
        table.row(vec![
            live.deployments.to_string(),
            num(live.arm_reads_per_second, 1),
            num(live.arm_reads_per_second_budget, 0),
            num(live.rss_mb, 1),
        ]);
        self.key(
            "arm_reads_per_second_1000_live",
            json_num(live.arm_reads_per_second),
        );
        self.key("rss_mb_at_1000_live", json_num(live.rss_mb));
        self.key("live", serde_json::to_value(&live)?);
        self.tables.push(table);
        Ok(())
    }

    /// Item 7: detection of exits under the ARM read budget, learned against round-robin looks.
    async fn looks(&mut self) -> anyhow::Result<()> {
        let mix = looks::Mix::stated(self.plan.looks_jobs, self.plan.looks_reads_per_second);
        let measured = looks::measure(mix).await?;
        let title = format!(
            "Item 7: exit to Done, {} live exit-completion jobs, {} ARM reads/s",
            measured.mix.jobs, measured.mix.reads_per_second
        );
        let mut table = Table::new(
            &title,
            &[
                "looks",
                "p50 s",
                "p95 s",
                "max s",
                "p50 repeated s",
                "p50 new s",
                "reads/job",
                "wall s",
            ],
        );
        table.row(measured.learned.cells());
        table.row(measured.round_robin.cells());
        let suffix = format!("{}_live", measured.mix.jobs);
        self.key(
            &format!("detection_p50_s_{suffix}"),
            json_num(measured.learned.p50_s),
        );
        self.key(
            &format!("detection_p95_s_{suffix}"),
            json_num(measured.learned.p95_s),
        );
        self.key(
            "detection_p50_vs_round_robin",
            json_num(measured.p50_vs_round_robin),
        );
        self.key("looks", serde_json::to_value(&measured)?);
        self.tables.push(table);
        Ok(())
    }

    /// Item 6: the sweep's scale.
    async fn sweep(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        let template = self
            .template
            .clone()
            .context("the sweep needs a finished deployment")?;
        let dir = tempfile::tempdir()?;
        let berth = Berth::start(settings(
            &Storage::Sqlite(dir.path().to_path_buf()),
            &emulator.endpoint,
            "",
            &[],
        ))
        .await?;
        let scales =
            sweep_scale::measure(&berth, &template, &self.plan.sweep_sizes, self.plan.repeats)
                .await?;
        let mut table = Table::new(
            "Item 6: the sweep with finished deployments in the store (SQLite, medians)",
            &["finished deployments", "sweep s", "fill s"],
        );
        for s in &scales {
            table.row(vec![
                s.finished.to_string(),
                num(s.sweep_s, 5),
                num(s.fill_s, 1),
            ]);
            match s.finished {
                1_000 => self.key("sweep_s_1k", json_num(s.sweep_s)),
                100_000 => self.key("sweep_s_100k", json_num(s.sweep_s)),
                _ => {}
            }
        }
        self.key("sweep", serde_json::to_value(&scales)?);
        self.tables.push(table);
        Ok(())
    }

    /// The ratios the targets (bench/README.md) are stated in.
    fn ratios(&mut self) {
        let get = |json: &Map<String, Value>, path: &[&str]| {
            let mut v = json.get(path[0]);
            for p in &path[1..] {
                v = v.and_then(|x| x.get(*p));
            }
            v.and_then(Value::as_f64).unwrap_or(f64::NAN)
        };
        let berth_best = get(&self.json, &["berth_best_throughput"]);
        let berth_p50 = get(&self.json, &["berth_p50_ms_c1"]);
        let dx_best = get(&self.json, &["duroxide", "best_throughput"]);
        let dx_p50 = get(&self.json, &["duroxide", "best_p50_ms_c1"]);
        let sweep_ratio = get(&self.json, &["sweep_s_100k"]) / get(&self.json, &["sweep_s_1k"]);
        self.key(
            "berth_vs_duroxide_throughput",
            json_num(berth_best / dx_best),
        );
        self.key(
            "berth_vs_duroxide_p50_latency",
            json_num(berth_p50 / dx_p50),
        );
        self.key("sweep_100k_vs_1k", json_num(sweep_ratio));
        let mut table = Table::new("Against the targets", &["measure", "value", "target"]);
        let rows = [
            ("throughput Berth / duroxide", berth_best / dx_best, ">= 10"),
            (
                "p50 at c=1 Berth / duroxide best",
                berth_p50 / dx_p50,
                "<= 0.25",
            ),
            (
                "per-deployment time / storage floor (SQLite)",
                get(&self.json, &["per_deployment_vs_floor"]),
                "<= 1.5",
            ),
            (
                "per-deployment time / storage floor (Azurite)",
                get(&self.json, &["per_deployment_vs_floor_azurite"]),
                "<= 1.5",
            ),
            (
                "storage tx per job (callback)",
                get(&self.json, &["storage_tx_per_job_callback"]),
                "<= 12",
            ),
            (
                "orchestration cost / ACI reference job",
                get(&self.json, &["orchestration_vs_compute"]),
                "<= 0.05",
            ),
            (
                "start to readiness / axum hello",
                get(&self.json, &["startup_vs_axum_hello"]),
                "<= 1.5",
            ),
            ("idle RSS MB", get(&self.json, &["idle_rss_mb"]), "<= 15"),
            (
                "packaged binary MB",
                get(&self.json, &["packaged_binary_mb"]),
                "<= 15",
            ),
            ("sweep 100k / sweep 1k", sweep_ratio, "<= 1.5"),
            (
                "detection p50 learned / round robin",
                get(&self.json, &["detection_p50_vs_round_robin"]),
                "<= 0.25",
            ),
        ];
        for (label, value, target) in rows {
            table.row(vec![label.into(), num(value, 2), target.into()]);
        }
        self.tables.push(table);
    }
}

/// The saved checkpoint of a finished deployment.
async fn finished(berth: &Berth, id: &str) -> anyhow::Result<Deployment> {
    berth
        .runtime
        .driver
        .load(id)
        .await?
        .with_context(|| format!("deployment {id} is not in the store"))
}
