//! Child processes of a run: the ACI emulator, the `handler` binary, the axum hello-world and the
//! duroxide side. Binaries are found next to the bench binary (one `cargo build --release`), each
//! child is killed when its handle drops, and resident memory is read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A binary built next to this one (`target/release/<name>`).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the bench binary")?;
    let path = exe
        .parent()
        .map(|dir| dir.join(name))
        .context("the bench binary has no folder")?;
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p handler -p emulator -p bench` (bench/run.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// A running `aci-emulator`.
pub struct Emulator {
    pub endpoint: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts `aci-emulator --port 0` with `args` (e.g. `--instant`) in a temporary data folder.
    pub async fn start(args: &[&str]) -> anyhow::Result<Emulator> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(sibling("aci-emulator")?)
            // A benchmark on loopback: the token's cost is not what it measures.
            .args(["--no-auth", "--port", "0", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting aci-emulator")?;
        let stdout = child.stdout.take().context("aci-emulator stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let endpoint = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("aci-emulator: ARM endpoint ") {
                    let url = url.split_whitespace().next().unwrap_or_default();
                    return Ok(url.to_owned());
                }
            }
            bail!("aci-emulator ended before printing its endpoint")
        })
        .await
        .context("aci-emulator did not print its endpoint in 20 s")??;
        // Keep reading so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Emulator {
            endpoint,
            child,
            _dir: dir,
        })
    }

    /// The emulator's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// Resident memory of a process in MB (`VmRSS`), `None` when it is gone.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The size of a file in MB.
pub fn size_mb(path: &Path) -> anyhow::Result<f64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len() as f64
        / 1_048_576.0)
}

/// Waits until `GET http://127.0.0.1:{port}/` gets any HTTP answer (as the Functions host's
/// readiness probe does), asking again at once after a refused connection; returns when.
pub async fn first_answer(port: u16, limit: Duration) -> anyhow::Result<Instant> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await?;
            let mut head = [0u8; 12];
            if stream.read_exact(&mut head).await.is_ok() && head.starts_with(b"HTTP/1.") {
                return Ok(Instant::now());
            }
        }
        if Instant::now() > deadline {
            bail!("nothing answered on port {port} within {limit:?}");
        }
        tokio::task::yield_now().await;
    }
}

pub use berth_test_support::free_port;
