//! Item 2's driver: runs `duroxide-bench` (bench/duroxide, built apart because its SQLite
//! provider links another libsqlite3 than Berth's) against the same emulator, one configuration
//! of duroxide's options at a time, and takes the medians of its runs.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use crate::load::median;

/// duroxide's options that matter for this workflow.
#[derive(Clone, Debug, Serialize)]
pub struct DuroxideConfig {
    /// `dispatcher_min_poll_interval` (default 100 ms).
    pub poll_ms: u64,
    /// `orchestration_concurrency` (default 2).
    pub orchestration_slots: usize,
    /// `worker_concurrency` (default 2).
    pub worker_slots: usize,
}

impl DuroxideConfig {
    /// duroxide's defaults.
    pub fn defaults() -> Self {
        DuroxideConfig {
            poll_ms: 100,
            orchestration_slots: 2,
            worker_slots: 2,
        }
    }

    /// The fastest setting found on this machine (1 ms polling, default slots).
    pub fn tuned() -> Self {
        DuroxideConfig {
            poll_ms: 1,
            ..Self::defaults()
        }
    }

    /// The settings the full run tries.
    pub fn grid() -> Vec<Self> {
        vec![
            Self::defaults(),
            Self::tuned(),
            DuroxideConfig {
                poll_ms: 1,
                orchestration_slots: 4,
                worker_slots: 4,
            },
            DuroxideConfig {
                poll_ms: 10,
                orchestration_slots: 8,
                worker_slots: 8,
            },
        ]
    }

    /// A short label for tables.
    pub fn label(&self) -> String {
        format!(
            "poll {} ms, {} orch / {} worker slots",
            self.poll_ms, self.orchestration_slots, self.worker_slots
        )
    }
}

/// The medians at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct DuroxidePoint {
    pub concurrency: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub runs: usize,
}

/// Runs `binary` for one configuration at every concurrency level.
pub async fn run(
    binary: &Path,
    arm_endpoint: &str,
    config: &DuroxideConfig,
    concurrency: &[usize],
    jobs_serial: usize,
    jobs: usize,
    repeats: usize,
) -> anyhow::Result<Vec<DuroxidePoint>> {
    let levels = concurrency
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let output = tokio::process::Command::new(binary)
        .args(["--arm-endpoint", arm_endpoint, "--concurrency", &levels])
        .args(["--jobs-serial", &jobs_serial.to_string()])
        .args(["--jobs", &jobs.to_string()])
        .args(["--repeats", &repeats.to_string()])
        .args(["--poll-ms", &config.poll_ms.to_string()])
        .args([
            "--orchestration-slots",
            &config.orchestration_slots.to_string(),
        ])
        .args(["--worker-slots", &config.worker_slots.to_string()])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "duroxide-bench failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        );
    }
    let runs: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut points = Vec::new();
    for &c in concurrency {
        let at: Vec<&Value> = runs.iter().filter(|r| r["concurrency"] == c).collect();
        let pick = |k: &str| median(&at.iter().filter_map(|r| r[k].as_f64()).collect::<Vec<_>>());
        points.push(DuroxidePoint {
            concurrency: c,
            per_second: pick("per_second"),
            p50_ms: pick("p50_ms"),
            p99_ms: pick("p99_ms"),
            runs: at.len(),
        });
    }
    Ok(points)
}
