//! The system under test, as real processes on loopback: Azurite (restartable on its ports and data
//! folder), the `aci-emulator` binary, and `handler serve` processes sharing Azurite's storage.

use std::fs::OpenOptions;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use berth::azure_storage::connection::{DEVSTORE_ACCOUNT, DEVSTORE_KEY};

use super::procs::Proc;

/// The subscription, resource group and app the handlers use.
pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";
pub const RESOURCE_GROUP: &str = "berth-chaos";
pub const APP: &str = "berth-chaos";
pub const QUEUE: &str = "chaos-steps";
const API_VERSION: &str = "2025-09-01";

/// The executables the harness runs.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub handler: PathBuf,
    pub emulator: PathBuf,
    pub azurite: PathBuf,
}

pub use berth_test_support::free_port;

fn log_file(dir: &Path, name: &str) -> anyhow::Result<(Stdio, Stdio)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

async fn wait_for_port(port: u16, within: Duration, what: &str) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within {within:?}")
}

/// Azurite on three fixed ports with its data in one folder, so that it can be restarted.
pub struct Azurite {
    ports: [u16; 3],
    location: PathBuf,
    logs: PathBuf,
    binary: PathBuf,
    proc: Mutex<Option<Proc>>,
}

impl Azurite {
    fn new(binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let location = dir.join("azurite");
        std::fs::create_dir_all(&location)?;
        Ok(Self {
            ports: [free_port(), free_port(), free_port()],
            location,
            logs: dir.to_owned(),
            binary: binary.to_owned(),
            proc: Mutex::new(None),
        })
    }

    /// The connection string: the well-known development account on explicit loopback endpoints.
    pub fn connection(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={DEVSTORE_ACCOUNT};AccountKey={DEVSTORE_KEY};\
             BlobEndpoint=http://127.0.0.1:{}/{DEVSTORE_ACCOUNT};QueueEndpoint=http://127.0.0.1:{}/{DEVSTORE_ACCOUNT};",
            self.ports[0], self.ports[1]
        )
    }

    async fn start(&self) -> anyhow::Result<()> {
        let (out, err) = log_file(&self.logs, "azurite")?;
        let proc = Proc::spawn(
            "azurite",
            Command::new(&self.binary)
                .args(berth_test_support::azurite::arguments(
                    self.ports,
                    &self.location,
                ))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
        )?;
        *self.lock() = Some(proc);
        // Generous: a cold start on a busy machine reads thousands of Node modules from disk.
        for port in [self.ports[0], self.ports[1]] {
            if let Err(e) = wait_for_port(port, Duration::from_secs(120), "Azurite").await {
                let exited = self.lock().as_ref().is_none_or(Proc::exited);
                let log =
                    std::fs::read_to_string(self.logs.join("azurite.log")).unwrap_or_default();
                bail!(
                    "{e} (its process {}; its log: {:?})",
                    if exited { "exited" } else { "is running" },
                    log.trim()
                );
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Proc>> {
        self.proc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops Azurite as an operator would (SIGTERM: it saves its data), waits `down`, starts it
    /// again on the same ports and data folder.
    pub async fn restart(&self, down: Duration) -> anyhow::Result<()> {
        let proc = self.lock().take();
        if let Some(proc) = proc {
            proc.terminate(Duration::from_secs(15)).await;
        }
        tokio::time::sleep(down).await;
        self.start().await
    }
}

/// The standard cores the emulator reports as the region's quota in its usages (not enforced):
/// about five of the workload's groups at once, fewer than the run keeps in flight, so Berth
/// holds some creates until others end.
pub const CORES: u32 = 2;

/// The ACI emulator binary.
pub struct Emulator {
    pub url: String,
    pub data: PathBuf,
    pub pid: u32,
    _proc: Proc,
}

impl Emulator {
    async fn start(binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let port = free_port();
        let data = dir.join("aci");
        let (out, err) = log_file(dir, "emulator")?;
        let proc = Proc::spawn(
            "aci-emulator",
            Command::new(binary)
                // The harness and the handlers reach it on loopback; its token has tests of its own.
                .args(["--no-auth", "--port", &port.to_string()])
                .args(["--cores-per-region", &CORES.to_string(), "--data-dir"])
                .arg(&data)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
        )?;
        wait_for_port(port, Duration::from_secs(30), "aci-emulator").await?;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            data,
            pid: proc.pid,
            _proc: proc,
        })
    }

    /// The ARM URL of the resource group's container groups.
    pub fn groups_url(&self) -> String {
        format!(
            "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups?api-version={API_VERSION}",
            self.url
        )
    }
}

/// One `handler serve` on a fixed port, killed and started again by the harness.
pub struct Handler {
    pub name: String,
    pub port: u16,
    proc: Mutex<Option<Proc>>,
    /// Not started again before this moment (a kill keeps it down a little while).
    down_until: Mutex<Instant>,
}

impl Handler {
    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Proc>> {
        self.proc.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything the harness started.
pub struct Cluster {
    pub dir: PathBuf,
    pub binaries: Binaries,
    pub azurite: Azurite,
    pub emulator: Emulator,
    pub handlers: Vec<Handler>,
    pub api_key: String,
    secrets_key: String,
}

impl Cluster {
    /// Starts Azurite, the emulator and `handlers` handler processes in `dir`.
    pub async fn start(binaries: Binaries, dir: &Path, handlers: usize) -> anyhow::Result<Self> {
        for (what, path) in [
            ("handler", &binaries.handler),
            ("aci-emulator", &binaries.emulator),
            ("azurite", &binaries.azurite),
        ] {
            if !path.exists() {
                bail!("{what}: no executable at {}", path.display());
            }
        }
        let azurite = Azurite::new(&binaries.azurite, dir)?;
        azurite.start().await.context("starting Azurite")?;
        let emulator = Emulator::start(&binaries.emulator, dir)
            .await
            .context("starting the ACI emulator")?;
        let mut slots = Vec::new();
        for i in 0..handlers {
            slots.push(Handler {
                name: format!("handler-{}", (b'a' + i as u8) as char),
                port: free_port(),
                proc: Mutex::new(None),
                down_until: Mutex::new(Instant::now()),
            });
        }
        let cluster = Self {
            dir: dir.to_owned(),
            binaries,
            azurite,
            emulator,
            handlers: slots,
            api_key: uuid::Uuid::new_v4().simple().to_string(),
            secrets_key: berth::crypto::SecretsKey::generate().to_base64(),
        };
        for h in 0..cluster.handlers.len() {
            cluster.ensure_running(h)?;
        }
        let http = reqwest::Client::new();
        for handler in &cluster.handlers {
            cluster
                .wait_ready(&http, handler, Duration::from_secs(60))
                .await?;
        }
        Ok(cluster)
    }

    /// The settings every handler process gets (as a Function App's app settings).
    pub fn settings(&self, public_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AzureWebJobsStorage", self.azurite.connection()),
            ("BERTH_QUEUE", QUEUE.into()),
            ("BERTH_SUBMIT_QUEUE", format!("{QUEUE}-submit")),
            ("BERTH_ARM_ENDPOINT", self.emulator.url.clone()),
            ("BERTH_SUBSCRIPTION_ID", SUBSCRIPTION.into()),
            ("BERTH_RESOURCE_GROUP", RESOURCE_GROUP.into()),
            ("BERTH_LOCATION", "local".into()),
            ("BERTH_SECRETS_KEY", self.secrets_key.clone()),
            ("BERTH_API_KEY", self.api_key.clone()),
            ("BERTH_APP", APP.into()),
            ("BERTH_PUBLIC_URL", public_url.into()),
            ("BERTH_STEP_LEASE", "PT10S".into()),
            // The run's webhook receiver listens on loopback.
            ("BERTH_NOTIFY_ALLOW_PRIVATE", "127.0.0.1/32".into()),
            ("RUST_LOG", "info".into()),
        ]
    }

    /// Starts handler `index` unless it runs or a kill keeps it down; `true` when it started it.
    pub fn ensure_running(&self, index: usize) -> anyhow::Result<bool> {
        let handler = &self.handlers[index];
        let mut slot = handler.lock();
        if slot.as_ref().is_some_and(|p| !p.exited()) {
            return Ok(false);
        }
        if Instant::now() < *handler.down_until.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(false);
        }
        let (out, err) = log_file(&self.dir, &handler.name)?;
        let proc = Proc::spawn(
            &handler.name,
            Command::new(&self.binaries.handler)
                .args([
                    "serve",
                    "--port",
                    &handler.port.to_string(),
                    "--bind",
                    "127.0.0.1",
                ])
                .envs(self.settings(&handler.url()))
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
        )?;
        *slot = Some(proc);
        Ok(true)
    }

    /// SIGKILLs handler `index` and keeps it down for `down`; `false` if it was not running.
    pub fn kill(&self, index: usize, down: Duration) -> bool {
        let handler = &self.handlers[index];
        let mut slot = handler.lock();
        *handler.down_until.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now() + down;
        match slot.take() {
            Some(proc) if !proc.exited() => {
                proc.kill();
                true
            }
            _ => false,
        }
    }

    async fn wait_ready(
        &self,
        http: &reqwest::Client,
        handler: &Handler,
        within: Duration,
    ) -> anyhow::Result<()> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if http.get(handler.url()).send().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{} did not answer within {within:?}; see {}.log",
            handler.name,
            handler.name
        )
    }

    /// Runs `handler sweep` once with `grace` (`BERTH_SWEEP_GRACE`): its JSON report, or why not.
    pub async fn sweep(&self, grace: &str) -> anyhow::Result<serde_json::Value> {
        let url = self.handlers[0].url();
        let output = tokio::process::Command::new(&self.binaries.handler)
            .arg("sweep")
            .envs(self.settings(&url))
            .env("BERTH_SWEEP_GRACE", grace)
            .env("RUST_LOG", "warn")
            .current_dir(&self.dir)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(120), output)
            .await
            .context("handler sweep took over 120 s")??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        if !output.status.success() {
            bail!(
                "handler sweep failed ({}): {report} {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(report)
    }
}
