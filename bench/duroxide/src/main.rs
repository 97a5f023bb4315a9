//! `duroxide-bench`: Berth's benchmark workflow on duroxide 0.1.32 with its SQLite provider.
//!
//! One orchestration per job: activity `Create` (PUT the container group), then wait for the
//! `completed` event (enqueued right after the start, so it is buffered until the orchestration
//! dequeues it) or a 30 s timer, activity `CaptureLogs` (read the container's logs), activity
//! `Delete`. The activities call the ACI emulator through Berth's ARM client. Prints one JSON line
//! per measured run on stdout.

#[path = "../../../handler/src/clock.rs"]
#[allow(dead_code)]
mod clock;
mod arm;
mod engine;

/// The metrics Berth's ARM client records (`handler/src/metrics`): the duroxide side counts its
/// calls itself and records none.
mod metrics {
    pub fn arm_call(_verb: &str, _outcome: &'static str) {}
    pub fn read_budget_wait(_kind: &'static str) {}
}

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use duroxide::providers::sqlite::SqliteProvider;
use duroxide::runtime::registry::ActivityRegistry;
use duroxide::runtime::{self, RuntimeOptions};
use duroxide::{ActivityContext, Client, OrchestrationContext, OrchestrationRegistry, OrchestrationStatus};
use serde_json::json;

use arm::{ArmClient, ArmTarget};

#[derive(Parser, Debug)]
struct Args {
    /// The ARM endpoint (the ACI emulator).
    #[arg(long)]
    arm_endpoint: String,
    /// Concurrency levels, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    concurrency: Vec<usize>,
    /// Jobs per measured run at concurrency 1.
    #[arg(long, default_value_t = 50)]
    jobs_serial: usize,
    /// Jobs per measured run at higher concurrency.
    #[arg(long, default_value_t = 200)]
    jobs: usize,
    /// Measured runs per configuration (each on a fresh database).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// duroxide's `dispatcher_min_poll_interval`, in milliseconds.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// duroxide's `orchestration_concurrency`.
    #[arg(long, default_value_t = 2)]
    orchestration_slots: usize,
    /// duroxide's `worker_concurrency`.
    #[arg(long, default_value_t = 2)]
    worker_slots: usize,
    /// How often the client looks at an orchestration's status once its last activity ran, in ms.
    #[arg(long, default_value_t = 1)]
    status_poll_ms: u64,
}

fn arm_client() -> &'static OnceLock<ArmClient> {
    static ARM: OnceLock<ArmClient> = OnceLock::new();
    &ARM
}

/// Jobs whose `Delete` activity finished: the client then watches their status closely.
fn deleted() -> &'static Mutex<HashMap<String, tokio::sync::oneshot::Sender<()>>> {
    static DELETED: OnceLock<Mutex<HashMap<String, tokio::sync::oneshot::Sender<()>>>> =
        OnceLock::new();
    DELETED.get_or_init(Mutex::default)
}

fn arm() -> Result<&'static ArmClient, String> {
    arm_client().get().ok_or_else(|| "ARM client not set".to_owned())
}

/// The group body Berth sends for the same one-group job (tags and environment included).
fn group_body(name: &str) -> serde_json::Value {
    json!({
        "location": "local",
        "tags": { "berth-app": "duroxide-bench", "berth-deployment": name, "berth-group": "work",
                  "berth-created": clock::rfc3339(0) },
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Never",
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["/bin/true"],
                "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
                "environmentVariables": [
                    { "name": "BERTH_DEPLOYMENT_ID", "value": name },
                    { "name": "BERTH_CALLBACK_URL", "secureValue": format!("http://127.0.0.1:1/api/callbacks/{name}/completed?token=x") },
                    { "name": "BERTH_HEARTBEAT_URL", "secureValue": format!("http://127.0.0.1:1/api/callbacks/{name}/heartbeat?token=x") }
                ] } }]
        }
    })
}

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Create", |_ctx: ActivityContext, name: String| async move {
            arm()?
                .put_group(&format!("{name}-work-1"), &group_body(&name))
                .await
                .map(|_| "created".to_owned())
                .map_err(|e| e.to_string())
        })
        .register("CaptureLogs", |_ctx: ActivityContext, name: String| async move {
            arm()?
                .logs(&format!("{name}-work-1"), "main", None, false)
                .await
                .map_err(|e| e.to_string())
        })
        .register("Delete", |_ctx: ActivityContext, name: String| async move {
            arm()?
                .delete_group(&format!("{name}-work-1"))
                .await
                .map_err(|e| e.to_string())?;
            let waiter = deleted().lock().map_err(|e| e.to_string())?.remove(&name);
            if let Some(waiter) = waiter {
                let _ = waiter.send(());
            }
            Ok("deleted".to_owned())
        })
        .build()
}

fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Job", |ctx: OrchestrationContext, name: String| async move {
            ctx.schedule_activity("Create", name.clone()).await?;
            let timeout = async {
                ctx.schedule_timer(Duration::from_secs(30)).await;
                false
            };
            let completed = async {
                ctx.dequeue_event("completed").await;
                true
            };
            let (_, came) = ctx.select2(timeout, completed).await.into_tuple();
            ctx.schedule_activity("CaptureLogs", name.clone()).await?;
            ctx.schedule_activity("Delete", name.clone()).await?;
            if came { Ok("Succeeded".into()) } else { Ok("TimedOut".into()) }
        })
        .build()
}

/// One job: start, enqueue `completed`, wait for the end. Returns the latency.
async fn one_job(client: &Client, name: &str, status_poll: Duration) -> anyhow::Result<Duration> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    deleted()
        .lock()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .insert(name.to_owned(), tx);
    let started = Instant::now();
    client.start_orchestration(name, "Job", name).await?;
    client.enqueue_event(name, "completed", "{\"exitCode\":0}").await?;
    tokio::time::timeout(Duration::from_secs(120), rx)
        .await
        .with_context(|| format!("{name}: Delete did not run within 120 s"))??;
    loop {
        match client.get_orchestration_status(name).await? {
            OrchestrationStatus::Completed { output, .. } => {
                if output != "\"Succeeded\"" && output != "Succeeded" {
                    bail!("{name} ended {output}");
                }
                return Ok(started.elapsed());
            }
            OrchestrationStatus::Failed { details, .. } => bail!("{name} failed: {details:?}"),
            _ => tokio::time::sleep(status_poll).await,
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

async fn measure(args: &Args, concurrency: usize, jobs: usize, run: usize) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("duroxide.db");
    std::fs::File::create(&path)?;
    let store = Arc::new(SqliteProvider::new(&format!("sqlite:{}", path.display()), None).await?);
    let mut options = RuntimeOptions {
        dispatcher_min_poll_interval: Duration::from_millis(args.poll_ms),
        orchestration_concurrency: args.orchestration_slots,
        worker_concurrency: args.worker_slots,
        ..RuntimeOptions::default()
    };
    options.observability.log_level = "error".into();
    let rt = runtime::Runtime::start_with_options(store.clone(), activities(), orchestrations(), options).await;
    let client = Client::new(store);
    let next = Arc::new(AtomicUsize::new(0));
    let status_poll = Duration::from_millis(args.status_poll_ms);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let name = format!("dx{run}c{concurrency}j{i}");
                latencies.push(one_job(&client, &name, status_poll).await?.as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    rt.shutdown(None).await;
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "concurrency": concurrency, "jobs": jobs, "seconds": seconds,
        "per_second": jobs as f64 / seconds,
        "p50_ms": quantile(&latencies, 0.5), "p99_ms": quantile(&latencies, 0.99),
        "options": { "dispatcher_min_poll_interval_ms": args.poll_ms,
                     "orchestration_concurrency": args.orchestration_slots,
                     "worker_concurrency": args.worker_slots },
        "repeat": run,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = ArmTarget {
        endpoint: args.arm_endpoint.trim_end_matches('/').to_owned(),
        subscription: "00000000-0000-0000-0000-000000000000".into(),
        resource_group: "berth-bench".into(),
        location: "local".into(),
        api_version: "2025-09-01".into(),
    };
    // No read budget: the Berth side of the comparison runs with BERTH_ARM_READS_PER_SECOND=0 too
    // (the emulator has no ARM limits to respect).
    let _ = arm_client().set(ArmClient::new(target, None));
    for &concurrency in &args.concurrency {
        let jobs = if concurrency == 1 { args.jobs_serial } else { args.jobs };
        for run in 0..args.repeats {
            let result = measure(&args, concurrency, jobs, run).await?;
            println!("{result}");
        }
    }
    Ok(())
}
