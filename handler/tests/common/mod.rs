//! The end-to-end harness: a real emulator (real processes under bubblewrap), Berth's runtime on
//! SQLite in a temporary folder or on Azurite (a container and queue of its own), and its HTTP API
//! on a loopback port, driven with `reqwest`.
//!
//! Every scenario runs on both backends: write it as `async fn name(backend: Backend)` and declare
//! its two tests with `on_both_backends!(name);` (tests `name::sqlite` and `name::azurite`). The
//! Azurite variant runs on the Azurite of [`berth_test_support::Azurite::shared`] (the one
//! `bin/test` started, or one started for the test process); without Azurite it fails saying how
//! to get it, unless `BERTH_TEST_SKIP=azurite` asks to skip it.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::clock::SystemClock;
use berth::config::{Config, Defaults};
use berth::crypto::SecretsKey;
use berth::runtime::Runtime;
use serde_json::Value;

pub mod scenarios;

#[allow(unused_imports)] // each test file uses some of them
pub use scenarios::{job, no_processes_with, processes_with};

#[allow(unused_imports)] // each test file uses some of them
pub use berth_test_support::{eventually, free_port, unique};

/// Where the runtime keeps checkpoints and steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the harness's temporary folder.
    #[default]
    Sqlite,
    /// Azurite (see [`azurite_connection`]), with a container and queue no other harness uses.
    Azurite,
}

/// Declares a scenario's tests on both backends: `name::sqlite` and `name::azurite`.
///
/// The two run one after the other: they create container groups of the same names in two
/// emulators of one test process, and the emulator names its cgroups by process and group, so
/// same-named groups running at once would share (and kill) each other's cgroup.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            static SAME_GROUP_NAMES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let _one_at_a_time = SAME_GROUP_NAMES.lock().await;
                super::$scenario(crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn azurite() {
                let _one_at_a_time = SAME_GROUP_NAMES.lock().await;
                super::$scenario(crate::common::Backend::Azurite).await
            }
        }
    };
}

/// The connection string of the test process's Azurite; `None` only when skipping Azurite's tests
/// was asked for (`BERTH_TEST_SKIP=azurite`), a failure when it cannot run otherwise.
pub fn azurite_connection() -> Option<String> {
    let value = berth_test_support::Azurite::shared()?
        .connection()
        .to_owned();
    let parsed =
        berth::azure_storage::StorageConnection::parse("AzureWebJobsStorage", &value).unwrap();
    for url in [&parsed.blob_endpoint, &parsed.queue_endpoint] {
        assert_eq!(
            url.host_str(),
            Some("127.0.0.1"),
            "tests talk only to 127.0.0.1"
        );
    }
    Some(value)
}

/// The data folder (`--location`) of the test process's Azurite; `None` as [`azurite_connection`].
pub fn azurite_data() -> Option<PathBuf> {
    Some(berth_test_support::Azurite::shared()?.data().to_owned())
}

/// An emulator on a free loopback port with its data (records, shares) in `dir/aci`.
pub async fn emulator_in(dir: &std::path::Path) -> emulator::Running {
    emulator_with(dir, emulator::Config::default()).await
}

/// An emulator of `config` with its data in `dir` (bubblewrap required unless it is `instant`).
pub async fn emulator_with(dir: &std::path::Path, config: emulator::Config) -> emulator::Running {
    let config = emulator::Config {
        data_dir: dir.join("aci"),
        ..config
    };
    if !config.instant {
        berth_test_support::require_program("bwrap", BUBBLEWRAP);
    }
    emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Faults that delay every ARM answer by `ms`.
pub fn every_answer_slow(ms: u64) -> emulator::Faults {
    emulator::Faults {
        slow_rate: 1.0,
        slow_ms: ms,
        ..emulator::Faults::default()
    }
}

/// How to get bubblewrap, which the emulator runs containers under.
pub const BUBBLEWRAP: &str = "apt-get install bubblewrap (bin/test installs it)";

/// A runtime on SQLite in `dir` with ARM at `arm` and `BERTH_APP` `app`, and no worker: the test
/// delivers the steps itself ([`run_steps`]).
pub async fn runtime_without_worker(dir: &std::path::Path, arm: &str, app: &str) -> Runtime {
    // Every step is the test's to run: a submit only saves its checkpoint.
    runtime_with(dir, arm, app, &[("BERTH_INLINE_STEP", "PT0S")]).await
}

/// [`runtime_without_worker`] with `settings` added (or replacing its own).
pub async fn runtime_with(
    dir: &std::path::Path,
    arm: &str,
    app: &str,
    settings: &[(&str, &str)],
) -> Runtime {
    let mut map: HashMap<String, String> = [
        (
            "BERTH_SQLITE_PATH",
            dir.join("berth.db").display().to_string(),
        ),
        ("BERTH_ARM_ENDPOINT", arm.to_owned()),
        ("BERTH_SUBSCRIPTION_ID", scenarios::SUBSCRIPTION.to_owned()),
        ("BERTH_RESOURCE_GROUP", scenarios::RESOURCE_GROUP.to_owned()),
        ("BERTH_LOCATION", "local".to_owned()),
        ("BERTH_SECRETS_KEY", SecretsKey::generate().to_base64()),
        ("BERTH_APP", app.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    map.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_lookup(&Config::map_lookup(map), Defaults::default()).unwrap();
    Runtime::build(config, Arc::new(SystemClock)).await.unwrap()
}

/// Runs the steps due now (up to 16) as a worker would.
pub async fn run_steps(runtime: &Runtime) {
    for delivery in runtime.steps.receive(16, 5_000).await.unwrap() {
        berth::worker::handle(&runtime.driver, runtime.steps.as_ref(), delivery).await;
    }
}

/// `handler serve` on a free port of 127.0.0.1, with nothing of this process's environment but
/// `PATH`, and `BERTH_PUBLIC_URL` set to where it listens; the caller adds its settings. Returns
/// the command and that URL.
pub fn serve_command() -> (std::process::Command, String) {
    serve_command_on(free_port())
}

/// A `handler serve` child process and where it listens; killed and reaped when dropped.
pub struct Serve {
    pub child: std::process::Child,
    pub url: String,
}

impl Serve {
    /// `handler serve` on `port` with `settings`, its stderr written to `log` when given.
    pub fn spawn(port: u16, settings: &[(&str, String)], log: Option<&std::path::Path>) -> Serve {
        let (mut command, url) = serve_command_on(port);
        command.envs(settings.iter().map(|(k, v)| (*k, v)));
        if let Some(log) = log {
            command.stderr(std::fs::File::create(log).unwrap());
        }
        Serve {
            child: command.spawn().unwrap(),
            url,
        }
    }

    /// Waits until it answers HTTP (20 s at most).
    pub async fn ready(&self) {
        let root = format!("{}/", self.url);
        berth_test_support::api::wait_until_answering(&root, Duration::from_secs(20)).await;
    }

    /// Its API, with `key`.
    pub fn api(&self, key: &str) -> berth_test_support::api::Client {
        berth_test_support::api::Client::new(format!("{}/api", self.url)).with_key(key)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [`serve_command`] on `port`.
pub fn serve_command_on(port: u16) -> (std::process::Command, String) {
    let url = format!("http://127.0.0.1:{port}");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_PUBLIC_URL", &url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    (command, url)
}

/// The settings that put a runtime on `backend`: `None` when skipping it was asked for.
pub fn backend_settings(
    backend: Backend,
    dir: &std::path::Path,
) -> Option<Vec<(&'static str, String)>> {
    Some(match backend {
        Backend::Sqlite => vec![(
            "BERTH_SQLITE_PATH",
            dir.join("berth.db").display().to_string(),
        )],
        Backend::Azurite => vec![
            ("AzureWebJobsStorage", azurite_connection()?),
            ("BERTH_QUEUE", unique("e2e")),
            ("BERTH_SUBMIT_QUEUE", unique("e2esub")),
        ],
    })
}

/// One Berth with one emulator.
pub struct Harness {
    pub emulator: emulator::Running,
    pub runtime: Runtime,
    pub api: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// `BERTH_API_KEY` when the options set one: the harness's requests carry it.
    key: Option<String>,
    server: tokio::task::JoinHandle<()>,
}

/// Options of a harness.
#[derive(Default)]
pub struct Options {
    pub backend: Backend,
    pub images: Option<emulator::ImageMap>,
    pub settings: Vec<(&'static str, String)>,
    /// Changes to the emulator's configuration (quotas, timings).
    pub emulator: Option<fn(&mut emulator::Config)>,
    /// The runtime's clock (the system's when `None`): a test that sets the time.
    pub clock: Option<Arc<dyn berth::clock::Clock>>,
}

impl Harness {
    /// The callback token Berth gives deployment `id`'s containers for `kind`, from its
    /// checkpoint (which holds its sealed callback key).
    pub async fn token(&self, id: &str, kind: &str) -> String {
        let d = self.runtime.driver.load(id).await.unwrap().unwrap();
        self.runtime
            .driver
            .callback_token(d.callback_key.as_deref(), id, kind)
            .unwrap()
    }

    /// A harness on SQLite.
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    /// A harness on `options.backend`, which must be able to run here (SQLite always can).
    pub async fn with(options: Options) -> Self {
        let backend = options.backend;
        Self::try_with(options)
            .await
            .unwrap_or_else(|| panic!("the {backend:?} backend is not available here"))
    }

    /// A harness on `backend`; `None` when that backend cannot run here (see [`azurite_connection`]).
    pub async fn on(backend: Backend) -> Option<Self> {
        Self::try_with(Options {
            backend,
            ..Options::default()
        })
        .await
    }

    /// A harness with `options`; `None` when its backend cannot run here.
    pub async fn try_with(options: Options) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let storage = backend_settings(options.backend, dir.path())?;
        let mut config = emulator::Config {
            data_dir: dir.path().join("aci"),
            ..emulator::Config::default()
        };
        if let Some(images) = options.images {
            config.images = images;
        }
        if let Some(change) = options.emulator {
            change(&mut config);
        }
        berth_test_support::require_program("bwrap", BUBBLEWRAP);
        let emulator = emulator::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let api = format!("http://{addr}");
        let mut map: HashMap<String, String> = HashMap::from([
            ("BERTH_ARM_ENDPOINT".into(), emulator.base_url()),
            (
                "BERTH_SUBSCRIPTION_ID".into(),
                scenarios::SUBSCRIPTION.into(),
            ),
            (
                "BERTH_RESOURCE_GROUP".into(),
                scenarios::RESOURCE_GROUP.into(),
            ),
            ("BERTH_LOCATION".into(), "local".into()),
            (
                "BERTH_SECRETS_KEY".into(),
                SecretsKey::generate().to_base64(),
            ),
            ("BERTH_PUBLIC_URL".into(), api.clone()),
            ("BERTH_STEP_LEASE".into(), "PT5S".into()),
        ]);
        let key = options
            .settings
            .iter()
            .find(|(k, _)| *k == "BERTH_API_KEY")
            .map(|(_, v)| v.clone());
        for (k, v) in storage.into_iter().chain(options.settings) {
            map.insert(k.into(), v);
        }
        let config = Config::from_lookup(&Config::map_lookup(map), Defaults::default()).unwrap();
        let clock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let runtime = Runtime::build(config, clock).await.unwrap();
        runtime.spawn_background(Duration::from_secs(3600));
        let router = runtime.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Some(Harness {
            emulator,
            runtime,
            api,
            http: reqwest::Client::new(),
            dir,
            key,
            server,
        })
    }

    /// `POST /api/deployments`; returns (status, body).
    pub async fn submit(&self, spec: &Value) -> (u16, Value) {
        scenarios::submit(self, spec).await
    }

    /// Submits and expects `202`.
    pub async fn start_deployment(&self, spec: &Value) -> String {
        scenarios::start_deployment(self, spec).await
    }

    /// The status document (expects `200`).
    pub async fn status(&self, id: &str) -> Value {
        scenarios::status(self, id).await
    }

    /// Waits until `want` holds, up to `limit`.
    pub async fn wait_for(
        &self,
        id: &str,
        limit: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        scenarios::wait_for(self, id, limit, want).await
    }

    /// Waits (up to 60 s) until the phase is `Done`.
    pub async fn wait_done(&self, id: &str) -> Value {
        scenarios::wait_done(self, id).await
    }

    pub async fn logs(&self, id: &str, group: &str, container: &str) -> (u16, String) {
        scenarios::logs(self, id, group, container).await
    }

    /// `GET {api}{path}` (the path from the root: `/metrics`, `/api/...`), its body as text.
    pub async fn text(&self, path: &str) -> String {
        let request = self.http.get(format!("{}{path}", self.api));
        let request = scenarios::Berth::authorise(self, request);
        request.send().await.unwrap().text().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.api));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// The emulator's folder for an Azure Files share.
    pub fn share(&self, account: &str, share: &str) -> PathBuf {
        scenarios::share(self, account, share)
    }

    pub fn stats(&self) -> emulator::Stats {
        self.emulator.stats()
    }

    /// Waits (up to 10 s) until the emulator has no live process; returns how many are left.
    pub async fn settled_processes(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let live = self.stats().live_processes;
            if live == 0 || Instant::now() > deadline {
                return live;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl scenarios::Berth for Harness {
    fn api(&self) -> String {
        format!("{}/api", self.api)
    }

    fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn authorise(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.header("x-functions-key", key),
            None => request,
        }
    }

    fn arm(&self) -> String {
        self.emulator.base_url()
    }

    fn emulator_data(&self) -> PathBuf {
        self.dir.path().join("aci")
    }
}
