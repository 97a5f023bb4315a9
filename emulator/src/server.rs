//! Starting and stopping an emulator: `start` binds, recovers the data folder's groups and serves;
//! `Running` is the handle, and dropping it kills every container process.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::aci::Emulator;
use crate::config::Config;
use crate::error::Error;
use crate::http;
use crate::stats::Stats;

/// A running emulator.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    emulator: Arc<Emulator>,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

/// Binds `addr` (port 0 picks a free port), loads the data folder's groups (restarting them as
/// ACI would), and serves the ARM API in the background.
pub async fn start(config: Config, addr: SocketAddr) -> Result<Running, Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    if !config.instant && which(&config.bwrap).is_none() {
        tracing::warn!(
            bwrap = %config.bwrap.display(),
            "bubblewrap is not installed (apt-get install bubblewrap): containers will fail to start"
        );
    }
    let emulator = Emulator::new(config)?;
    emulator.recover();
    let (shutdown, stop) = watch::channel(false);
    let server = tokio::spawn(http::serve(listener, http::router(emulator.clone()), stop));
    Ok(Running {
        addr,
        emulator,
        shutdown,
        server: Some(server),
    })
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (no trailing slash), the ARM endpoint to give clients.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// The counters (as `GET /_emulator/stats`).
    pub fn stats(&self) -> Stats {
        self.emulator.stats()
    }

    /// The emulator itself (faults can be changed through it).
    pub fn emulator(&self) -> &Arc<Emulator> {
        &self.emulator
    }

    /// Kills every container process and waits for them, writes the records, stops serving.
    pub async fn shutdown(mut self) {
        self.emulator.shutdown().await;
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.emulator.kill_now();
        let _ = self.shutdown.send(true);
    }
}

/// Finds a program on `PATH` (or checks a path).
fn which(program: &std::path::Path) -> Option<std::path::PathBuf> {
    if program.components().count() > 1 {
        return program.exists().then(|| program.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}
