//! Items 4 and 5 at scale: 1,000 live deployments under polling completion, on the real
//! `handler serve` process (SQLite) against an emulator whose groups stay `Pending` (no
//! processes): ARM reads per second while they run, and the handler's resident memory.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use tokio::process::Command;

use crate::footprint::handler_env;
use crate::procs::{Emulator, first_answer, free_port, rss_mb, sibling};
use crate::throughput::{Completion, job_spec};

/// What 1,000 live deployments cost.
#[derive(Clone, Debug, Serialize)]
pub struct Live {
    pub deployments: usize,
    pub window_s: f64,
    pub arm_reads_per_second: f64,
    pub arm_reads_per_second_budget: f64,
    pub rss_mb: f64,
}

async fn emulator_stats(http: &reqwest::Client, endpoint: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(format!("{endpoint}/_emulator/stats"))
        .send()
        .await?
        .json()
        .await?)
}

fn reads(stats: &Value) -> f64 {
    ["get", "logs"]
        .iter()
        .map(|k| stats["requests"][k].as_f64().unwrap_or(0.0))
        .sum()
}

/// Starts `handler serve`, submits `count` polling jobs that never finish, waits until every group
/// exists, then counts ARM reads over `window`.
pub async fn measure(count: usize, window: Duration) -> anyhow::Result<Live> {
    let emulator = Emulator::start(&["--pending-ms", "86400000", "--no-cgroups"]).await?;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let key = uuid::Uuid::new_v4().simple().to_string();
    let mut child = Command::new(sibling("handler")?)
        .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("BERTH_API_KEY", &key)
        // `serve` requires it (containers would call back there; these never run).
        .env("BERTH_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .envs(handler_env(dir.path(), &emulator.endpoint))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting handler serve")?;
    first_answer(port, Duration::from_secs(20)).await?;
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{port}/api/deployments");
    let submits = futures::stream::iter(0..count).map(|i| {
        let (http, api, key) = (http.clone(), api.clone(), key.clone());
        async move {
            let response = http
                .post(&api)
                .header("x-functions-key", key)
                .json(&job_spec(&format!("live-{i}"), Completion::Polling))
                .send()
                .await?;
            if response.status().as_u16() != 202 {
                bail!("submit live-{i}: HTTP {}", response.status());
            }
            Ok(())
        }
    });
    use futures::StreamExt;
    let results: Vec<anyhow::Result<()>> = submits.buffer_unordered(32).collect().await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let stats = emulator_stats(&http, &emulator.endpoint).await?;
        if stats["groups"].as_u64().unwrap_or(0) as usize >= count {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} groups were created in 180 s",
                stats["groups"]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = reads(&emulator_stats(&http, &emulator.endpoint).await?);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let after = reads(&emulator_stats(&http, &emulator.endpoint).await?);
    let window_s = started.elapsed().as_secs_f64();
    let rss = child
        .id()
        .and_then(rss_mb)
        .context("handler serve exited")?;
    child.kill().await?;
    Ok(Live {
        deployments: count,
        window_s,
        arm_reads_per_second: (after - before) / window_s,
        arm_reads_per_second_budget: 20.0,
        rss_mb: rss,
    })
}
