//! Item 5: the footprint of the `handler` binary under the Functions host's protocol, beside a
//! minimal axum hello-world built the same way: time from process start to the first answer on
//! the readiness probe (`GET /`), resident memory once idle, and binary size. The same for the
//! binary as the Function App package build makes it (without `dev` and the emulator), when given.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::process::Command;

use crate::load::median;
use crate::procs::{first_answer, free_port, rss_mb, sibling, size_mb};

/// One binary's footprint (medians over the starts).
#[derive(Clone, Debug, Serialize)]
pub struct Footprint {
    pub binary: String,
    pub starts: usize,
    pub startup_ms: f64,
    pub idle_rss_mb: f64,
    pub binary_mb: f64,
}

/// How long a started process is left alone before its idle memory is read.
const SETTLE: Duration = Duration::from_millis(1500);
/// Starts whose idle memory is read (it hardly varies; the start time does).
const RSS_SAMPLES: usize = 2;

/// Starts `binary` `starts` times with `env` and `FUNCTIONS_CUSTOMHANDLER_PORT`, timing each start
/// to its first readiness answer; reads the idle RSS of the first [`RSS_SAMPLES`].
pub async fn measure(
    binary: &Path,
    env: &[(String, String)],
    starts: usize,
) -> anyhow::Result<Footprint> {
    let mut startup = Vec::new();
    let mut rss = Vec::new();
    for start in 0..starts {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let ready = first_answer(port, Duration::from_secs(10)).await?;
        startup.push((ready - started).as_secs_f64() * 1000.0);
        if start < RSS_SAMPLES {
            tokio::time::sleep(SETTLE).await;
            if let Some(mb) = child.id().and_then(rss_mb) {
                rss.push(mb);
            }
        }
        child.kill().await?;
    }
    Ok(Footprint {
        binary: binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        starts,
        startup_ms: median(&startup),
        idle_rss_mb: median(&rss),
        binary_mb: size_mb(binary)?,
    })
}

/// The environment `handler` gets as a Function App would give it (SQLite in `dir`, ARM at
/// `arm_endpoint`).
pub fn handler_env(dir: &Path, arm_endpoint: &str) -> Vec<(String, String)> {
    [
        (
            "BERTH_SQLITE_PATH",
            dir.join("berth.db").display().to_string(),
        ),
        ("BERTH_ARM_ENDPOINT", arm_endpoint.to_owned()),
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000".into(),
        ),
        ("BERTH_RESOURCE_GROUP", "berth-bench".into()),
        ("BERTH_LOCATION", "local".into()),
        (
            "BERTH_SECRETS_KEY",
            berth::crypto::SecretsKey::generate().to_base64(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The footprints of one run.
pub struct Footprints {
    /// `handler` as `cargo build --release` makes it (default features: `dev` and the emulator).
    pub handler: Footprint,
    /// `axum-hello`.
    pub hello: Footprint,
    /// `handler` as the Function App package build makes it, when its path was given.
    pub packaged: Option<Footprint>,
}

/// `handler`, `axum-hello` and the packaged `handler` (at `packaged`, if given), each started
/// `starts` times.
pub async fn all(
    arm_endpoint: &str,
    starts: usize,
    packaged: Option<&Path>,
) -> anyhow::Result<Footprints> {
    let dir = tempfile::tempdir()?;
    let env = handler_env(dir.path(), arm_endpoint);
    let handler = measure(&sibling("handler")?, &env, starts).await?;
    let hello = measure(&sibling("axum-hello")?, &[], starts).await?;
    let packaged = match packaged {
        Some(path) => Some(measure(path, &env, starts).await?),
        None => None,
    };
    Ok(Footprints {
        handler,
        hello,
        packaged,
    })
}
