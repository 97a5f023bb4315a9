//! Throughput of the emulator in instant mode: concurrent PUT + GET + logs + DELETE cycles against
//! an emulator started in-process (or at `--url`), reporting ARM requests per second.
//!
//! `cargo run --release -p emulator --example bench -- [--seconds 10] [--workers 32] [--url URL]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

struct Options {
    seconds: u64,
    workers: usize,
    url: Option<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        seconds: 10,
        workers: 32,
        url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => options.seconds = value.parse().context("--seconds")?,
            "--workers" => options.workers = value.parse().context("--workers")?,
            "--url" => options.url = Some(value),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> anyhow::Result<()> {
    let (base, running) = match &options.url {
        Some(url) => (url.trim_end_matches('/').to_string(), None),
        None => {
            let config = emulator::Config {
                instant: true,
                ..emulator::Config::default()
            };
            let running = emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            (running.base_url(), Some(running))
        }
    };
    let groups = format!(
        "{base}/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/bench/providers/Microsoft.ContainerInstance/containerGroups"
    );
    let body = serde_json::json!({
        "location": "westus",
        "tags": {"berth.deployment": "bench"},
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Never",
            "containers": [{"name": "job", "properties": {
                "image": "busybox",
                "command": ["/bin/sh", "-c", "echo hello"],
                "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}},
                "environmentVariables": [
                    {"name": "BERTH_CALLBACK_URL", "value": "http://127.0.0.1:7071/api/x"},
                    {"name": "TOKEN", "secureValue": "s"}
                ]
            }}]
        }
    });
    let requests = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.workers)
        .build()?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.workers {
        let (client, groups, body) = (client.clone(), groups.clone(), body.clone());
        let (requests, failures) = (requests.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut cycle = 0u64;
            while Instant::now() < deadline {
                let url = format!("{groups}/bench-{worker}-{cycle}");
                let calls = [
                    client
                        .put(format!("{url}?api-version=2025-09-01"))
                        .json(&body),
                    client.get(format!("{url}?api-version=2025-09-01")),
                    client.get(format!(
                        "{url}/containers/job/logs?api-version=2025-09-01&tail=10"
                    )),
                    client.delete(format!("{url}?api-version=2025-09-01")),
                ];
                for call in calls {
                    match call.send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            requests.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                cycle += 1;
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = requests.load(Ordering::Relaxed);
    println!(
        "{done} ARM requests in {elapsed:.1} s with {} workers: {:.0} requests/s ({:.0} PUT+GET+logs+DELETE cycles/s), {} failures",
        options.workers,
        done as f64 / elapsed,
        done as f64 / elapsed / 4.0,
        failures.load(Ordering::Relaxed)
    );
    if let Some(running) = running {
        running.shutdown().await;
    }
    Ok(())
}
