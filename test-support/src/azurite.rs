//! Azurite, the Azure Storage emulator, as the suites need it: started on free loopback ports with
//! its data in a temporary folder, waited for until it answers, stopped (and its folder removed)
//! when dropped or when the test process ends.
//!
//! The executable is looked up in `BERTH_TEST_AZURITE_BIN`, `AZURITE_BIN`, `PATH`, then where
//! `bin/lib/setup.sh` installs it (`${BERTH_CACHE:-~/.cache/berth}/azurite-<version>/`). An
//! already running Azurite may be given instead in `BERTH_TEST_AZURITE` (its connection string)
//! and `BERTH_TEST_AZURITE_DATA` (its `--location`), as `bin/test` does to start one for the whole
//! run. When there is neither, the test fails saying so, unless `BERTH_TEST_SKIP` names `azurite`
//! ([`crate::skip`]).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// An already running Azurite's connection string (`bin/test` exports it).
pub const VAR: &str = "BERTH_TEST_AZURITE";
/// The `--location` (data folder) of the Azurite in [`VAR`].
pub const DATA_VAR: &str = "BERTH_TEST_AZURITE_DATA";
/// The Azurite executable.
pub const BIN_VARS: [&str; 2] = ["BERTH_TEST_AZURITE_BIN", "AZURITE_BIN"];

/// The development account every Azurite serves (public, documented by Microsoft).
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How long a start may take: a cold start on a busy machine reads thousands of Node modules.
const START_WITHIN: Duration = Duration::from_secs(90);

/// A running Azurite: one this process started (stopped when dropped) or the one in [`VAR`].
pub struct Azurite {
    connection: String,
    data: PathBuf,
    blob_port: u16,
    queue_port: u16,
    started: Option<Started>,
}

struct Started {
    /// The supervising shell (see [`Azurite::start`]).
    child: Child,
    _dir: TempDir,
    log: PathBuf,
}

impl Azurite {
    /// The Azurite the running test uses: the one in [`VAR`] when set, else one started for this
    /// test process on first use and shared by its tests (each of which uses its own container or
    /// queue: [`crate::unique`]). `None` only when skipping was asked for
    /// ([`crate::skip::missing`]); otherwise a missing Azurite fails the test.
    pub fn shared() -> Option<&'static Azurite> {
        static SHARED: OnceLock<Result<Azurite, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| match Self::given() {
            Some(given) => given,
            None => Self::start(),
        });
        match shared {
            Ok(azurite) => Some(azurite),
            Err(why) => {
                crate::skip::missing("azurite", why);
                None
            }
        }
    }

    /// An Azurite of the test's own, started now, with an empty data folder: for tests that read
    /// or damage its data. `None` only when skipping was asked for.
    pub fn own() -> Option<Azurite> {
        match Self::start() {
            Ok(azurite) => Some(azurite),
            Err(why) => {
                crate::skip::missing("azurite", &why);
                None
            }
        }
    }

    /// The connection string, on explicit 127.0.0.1 endpoints.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// Azurite's data folder (`--location`).
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The blob and queue ports.
    pub fn ports(&self) -> (u16, u16) {
        (self.blob_port, self.queue_port)
    }

    /// The Azurite in [`VAR`], if set; an error when it is not on 127.0.0.1.
    fn given() -> Option<Result<Azurite, String>> {
        let connection = std::env::var(VAR).ok()?;
        Some(Self::from_connection(&connection))
    }

    fn from_connection(connection: &str) -> Result<Azurite, String> {
        let (mut blob_port, mut queue_port) = (10000, 10001);
        if connection.trim() != "UseDevelopmentStorage=true" {
            for part in connection.split(';') {
                let Some((key, value)) = part.split_once('=') else {
                    continue;
                };
                let port = match key.trim() {
                    "BlobEndpoint" => &mut blob_port,
                    "QueueEndpoint" => &mut queue_port,
                    _ => continue,
                };
                *port = loopback_port(value)
                    .ok_or_else(|| format!("{VAR}: {key} {value} is not on http://127.0.0.1"))?;
            }
        }
        let data = std::env::var_os(DATA_VAR)
            .map(PathBuf::from)
            .ok_or_else(|| format!("{VAR} is set but {DATA_VAR} (its --location folder) is not"))?;
        Ok(Azurite {
            connection: connection.to_owned(),
            data,
            blob_port,
            queue_port,
            started: None,
        })
    }

    /// Starts Azurite on three free loopback ports with its data in a new temporary folder. It
    /// runs under a small shell that stops it when this process ends, so that a test process
    /// that panics or is killed leaves no Azurite behind. Retried on other ports if it could not
    /// listen (another process took a port between its choice and Azurite's bind).
    fn start() -> Result<Azurite, String> {
        let executable = executable()?;
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_once(&executable) {
                Ok(azurite) => return Ok(azurite),
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    fn start_once(executable: &Path) -> Result<Azurite, String> {
        let dir = tempfile::Builder::new()
            .prefix("berth-azurite-")
            .tempdir()
            .map_err(|e| format!("cannot make Azurite's data folder: {e}"))?;
        let data = dir.path().join("data");
        let log = dir.path().join("azurite.log");
        std::fs::create_dir(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let ports = [crate::free_port(), crate::free_port(), crate::free_port()];
        let [blob, queue, _] = ports;
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        // The shell runs Azurite, then waits until Azurite exits, this process is gone, or it is
        // told to stop (TERM), and stops Azurite in every case.
        let supervisor = r#"
            "$@" & azurite=$!
            trap 'kill $azurite 2>/dev/null; wait $azurite; exit 0' TERM INT
            while kill -0 "$BERTH_TEST_PARENT" 2>/dev/null && kill -0 $azurite 2>/dev/null; do
                sleep 0.2
            done
            kill $azurite 2>/dev/null; wait $azurite
        "#;
        let child = Command::new("sh")
            .args(["-c", supervisor, "azurite-supervisor"])
            .arg(executable)
            .args(arguments(ports, &data))
            .env("BERTH_TEST_PARENT", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(
                log_file
                    .try_clone()
                    .map_err(|e| format!("{}: {e}", log.display()))?,
            )
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run sh to start {}: {e}", executable.display()))?;
        let mut azurite = Azurite {
            connection: format!(
                "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};\
                 BlobEndpoint=http://127.0.0.1:{blob}/{ACCOUNT};\
                 QueueEndpoint=http://127.0.0.1:{queue}/{ACCOUNT};"
            ),
            data,
            blob_port: ports[0],
            queue_port: ports[1],
            started: Some(Started {
                child,
                _dir: dir,
                log,
            }),
        };
        azurite.wait_until_listening(executable)?;
        Ok(azurite)
    }

    fn wait_until_listening(&mut self, executable: &Path) -> Result<(), String> {
        let until = Instant::now() + START_WITHIN;
        let started = self.started.as_mut().expect("started by this process");
        for port in [self.blob_port, self.queue_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                let exited = matches!(started.child.try_wait(), Ok(Some(_)));
                if exited || Instant::now() > until {
                    let log = std::fs::read_to_string(&started.log).unwrap_or_default();
                    return Err(format!(
                        "{} {} on 127.0.0.1:{port} (its output: {:?}); is node installed?",
                        executable.display(),
                        if exited {
                            "exited before listening".to_owned()
                        } else {
                            format!("did not listen within {START_WITHIN:?}")
                        },
                        log.trim()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        if let Some(started) = &mut self.started {
            let _ = Command::new("kill")
                .args(["-TERM", &started.child.id().to_string()])
                .status();
            let _ = started.child.wait();
        }
    }
}

/// Azurite's arguments: quiet, any api-version, the blob, queue and table services on `ports` of
/// 127.0.0.1, its data in `location`.
pub fn arguments(ports: [u16; 3], location: &Path) -> Vec<std::ffi::OsString> {
    let [blob, queue, table] = ports.map(|p| p.to_string());
    let mut args: Vec<std::ffi::OsString> = [
        "--silent",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &blob,
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        &queue,
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        &table,
        "--location",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    args.push(location.into());
    args
}

/// The port of `url` when it is `http://127.0.0.1:<port>/...`.
fn loopback_port(url: &str) -> Option<u16> {
    let rest = url.trim().strip_prefix("http://127.0.0.1:")?;
    rest.split('/').next()?.parse().ok()
}

/// The Azurite executable: the first of `BERTH_TEST_AZURITE_BIN`, `AZURITE_BIN`, `azurite` on
/// `PATH`, and the newest `azurite-<version>` that `bin/lib/setup.sh` installed; an error listing
/// where it looked otherwise.
pub fn executable() -> Result<PathBuf, String> {
    for var in BIN_VARS {
        if let Some(path) = std::env::var_os(var) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{var}={} is not a file", path.display()))
            };
        }
    }
    if let Some(found) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("azurite"))
        .find(|path| path.is_file())
    {
        return Ok(found);
    }
    let cache = std::env::var_os("BERTH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/berth")));
    if let Some(cache) = &cache {
        let mut installed: Vec<PathBuf> = std::fs::read_dir(cache)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("azurite-"))
            .map(|entry| entry.path().join("node_modules/.bin/azurite"))
            .filter(|path| path.is_file())
            .collect();
        installed.sort_by_key(|path| version_of(path));
        if let Some(newest) = installed.pop() {
            return Ok(newest);
        }
    }
    Err(format!(
        "no Azurite executable: {} unset, none on PATH, none installed under {}",
        BIN_VARS.join(" and "),
        cache.map_or("~/.cache/berth".into(), |c| c.display().to_string())
    ))
}

/// The version numbers of `.../azurite-<version>/node_modules/.bin/azurite`.
fn version_of(executable: &Path) -> Vec<u64> {
    executable
        .ancestors()
        .nth(3)
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("azurite-"))
        .map(|v| v.split('.').map(|n| n.parse().unwrap_or(0)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ports_are_read_and_other_hosts_refused() {
        assert_eq!(
            loopback_port("http://127.0.0.1:10001/devstoreaccount1"),
            Some(10001)
        );
        assert_eq!(loopback_port("https://example.blob.core.windows.net"), None);
        assert_eq!(
            loopback_port("http://localhost:10000/devstoreaccount1"),
            None
        );
    }

    #[test]
    fn a_given_connection_off_loopback_is_refused() {
        let Err(why) = Azurite::from_connection(
            "AccountName=a;AccountKey=a2V5;BlobEndpoint=http://10.0.0.1:10000/a",
        ) else {
            panic!("accepted");
        };
        assert!(why.contains("BlobEndpoint"), "{why}");
    }

    #[test]
    fn versions_order_numerically() {
        let path = |v: &str| PathBuf::from(format!("/c/azurite-{v}/node_modules/.bin/azurite"));
        assert!(version_of(&path("3.37.0")) > version_of(&path("3.9.1")));
    }

    /// Starts an Azurite of its own and stops it: the queue port answers while it runs and is
    /// closed once it is dropped, and its data folder is gone.
    #[test]
    fn an_own_azurite_answers_and_is_gone_when_dropped() {
        let Some(azurite) = Azurite::own() else {
            return;
        };
        let (blob, queue) = azurite.ports();
        assert!(TcpStream::connect(("127.0.0.1", queue)).is_ok());
        assert!(azurite.connection().contains(&format!("127.0.0.1:{blob}/")));
        let data = azurite.data().to_owned();
        assert!(data.is_dir());
        drop(azurite);
        assert!(TcpStream::connect(("127.0.0.1", blob)).is_err(), "stopped");
        assert!(!data.exists(), "its data folder removed");
    }
}
