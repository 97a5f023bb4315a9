//! The handler process as the host runs it: a free port picked the host's way, the host's
//! environment variables, the app root as working directory, and readiness by polling `GET /`
//! until any HTTP answer arrives.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// How often the host probes `GET /` while the handler starts.
pub const READINESS_POLL: Duration = Duration::from_millis(25);

/// A running handler process. Killed when dropped.
pub struct HandlerProcess {
    child: Child,
    port: u16,
    ready_after: Duration,
    stdout: Arc<Mutex<Vec<String>>>,
}

/// How to start the handler.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The handler binary.
    pub binary: PathBuf,
    /// The app root (working directory, `FUNCTIONS_APP_ROOT_PATH`).
    pub app_root: PathBuf,
    /// App settings, passed as environment variables.
    pub settings: Vec<(String, String)>,
    /// `customHandler.initializationTimeout` (the host's default is 30 s).
    pub initialization_timeout: Duration,
    /// The readiness probe interval ([`READINESS_POLL`] as the host does).
    pub poll: Duration,
}

impl Launch {
    /// A launch with the host's defaults.
    pub fn new(binary: &Path, app_root: &Path, settings: Vec<(String, String)>) -> Self {
        Self {
            binary: binary.to_owned(),
            app_root: app_root.to_owned(),
            settings,
            initialization_timeout: Duration::from_secs(30),
            poll: READINESS_POLL,
        }
    }
}

/// A binary of another workspace crate (e.g. `handler`), found beside the running test executable
/// in the same target directory and profile (`target/debug/deps/<test>` → `target/debug/<name>`).
/// `cargo test --workspace` builds it with the tests; otherwise build it first with
/// `cargo build -p <crate>`.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let profile_dir = exe
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .or_else(|| exe.parent())
        .context("the test executable has no folder")?;
    let path = profile_dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is not built: run `cargo build -p handler` (or `cargo test --workspace`, which builds it)",
            path.display()
        );
    }
    Ok(path)
}

/// A port as `WorkerUtilities.GetUnusedTcpPort()` picks it: bind 127.0.0.1:0, read, close.
pub fn unused_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

impl HandlerProcess {
    /// Starts the handler and waits until it answers `GET /`.
    pub async fn start(launch: &Launch) -> anyhow::Result<Self> {
        let port = unused_port()?;
        let worker_id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut child = Command::new(&launch.binary)
            .current_dir(&launch.app_root)
            .envs(
                launch
                    .settings
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("FUNCTIONS_HTTPWORKER_PORT", port.to_string())
            .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", &worker_id)
            .env("FUNCTIONS_HTTPWORKER_ID", &worker_id)
            .env("FUNCTIONS_APP_ROOT_PATH", &launch.app_root)
            .env("FUNCTIONS_WORKER_RUNTIME", "custom")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", launch.binary.display()))?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = stdout.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(out).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if let Ok(mut lines) = lines.lock() {
                        lines.push(line);
                    }
                }
            });
        }
        let deadline = started + launch.initialization_timeout;
        loop {
            if probe(port).await {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("handler exited before it was ready: {status}");
            }
            if Instant::now() >= deadline {
                bail!(
                    "handler not ready within {:?} (initializationTimeout)",
                    launch.initialization_timeout
                );
            }
            tokio::time::sleep(launch.poll).await;
        }
        Ok(Self {
            child,
            port,
            ready_after: started.elapsed(),
            stdout,
        })
    }

    /// The port the handler listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The handler's base URL, `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Time from spawning the process to its first answer to `GET /`.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// The lines the handler wrote to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process and waits for it to end.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops the process.
    pub async fn stop(mut self) {
        self.kill().await;
    }
}

/// Starts each launch in turn and stops it once ready: the times from spawn to the first
/// readiness answer, in launch order, and their median.
pub async fn readiness_times(
    launches: impl IntoIterator<Item = Launch>,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let mut times = Vec::new();
    for mut launch in launches {
        // Probe faster than the host's 25 ms, to measure rather than round up.
        launch.poll = Duration::from_millis(1);
        let process = HandlerProcess::start(&launch).await?;
        times.push(process.ready_after());
        process.stop().await;
    }
    let mut sorted = times.clone();
    sorted.sort();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    Ok((times, median))
}

/// One readiness probe: any HTTP answer to `GET /` counts; a refused connection does not.
async fn probe(port: u16) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut first = [0u8; 12];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut first)).await,
        Ok(Ok(_))
    ) && first.starts_with(b"HTTP/1.")
}
