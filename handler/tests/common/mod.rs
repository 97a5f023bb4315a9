//! The end-to-end harness: a real emulator (real processes under bubblewrap), Berth's runtime on
//! SQLite in a temporary folder, and its HTTP API on a loopback port, driven with `reqwest`.

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
use serde_json::{Value, json};

/// One Berth with one emulator.
pub struct Harness {
    pub emulator: emulator::Running,
    pub runtime: Runtime,
    pub api: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

/// Options of a harness.
#[derive(Default)]
pub struct Options {
    pub images: Option<emulator::ImageMap>,
    pub settings: Vec<(&'static str, String)>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = emulator::Config {
            data_dir: dir.path().join("aci"),
            ..emulator::Config::default()
        };
        if let Some(images) = options.images {
            config.images = images;
        }
        let emulator = emulator::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let api = format!("http://{addr}");
        let mut map: HashMap<String, String> = HashMap::from([
            (
                "BERTH_SQLITE_PATH".into(),
                dir.path().join("berth.db").display().to_string(),
            ),
            ("BERTH_ARM_ENDPOINT".into(), emulator.base_url()),
            (
                "BERTH_SUBSCRIPTION_ID".into(),
                "00000000-0000-0000-0000-000000000000".into(),
            ),
            ("BERTH_RESOURCE_GROUP".into(), "berth-test".into()),
            ("BERTH_LOCATION".into(), "local".into()),
            (
                "BERTH_SECRETS_KEY".into(),
                SecretsKey::generate().to_base64(),
            ),
            ("BERTH_PUBLIC_URL".into(), api.clone()),
            ("BERTH_STEP_LEASE".into(), "PT5S".into()),
        ]);
        for (k, v) in options.settings {
            map.insert(k.into(), v);
        }
        let config = Config::from_lookup(&Config::map_lookup(map), Defaults::default()).unwrap();
        let runtime = Runtime::build(config, Arc::new(SystemClock)).await.unwrap();
        runtime.spawn_background(Duration::from_secs(3600));
        let router = runtime.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Harness {
            emulator,
            runtime,
            api,
            http: reqwest::Client::new(),
            dir,
            server,
        }
    }

    /// `POST /api/deployments`; returns (status, body).
    pub async fn submit(&self, spec: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/deployments", self.api))
            .json(spec)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Submits and expects `202`.
    pub async fn start_deployment(&self, spec: &Value) -> String {
        let (status, body) = self.submit(spec).await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn status(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/api/deployments/{id}", self.api))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `phase` is `Done` (or `want` holds), up to `limit`.
    pub async fn wait_for(
        &self,
        id: &str,
        limit: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status(id).await;
            if want(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "deployment {id} did not get there in {limit:?}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_done(&self, id: &str) -> Value {
        self.wait_for(id, Duration::from_secs(60), |s| s["phase"] == "Done")
            .await
    }

    pub async fn logs(&self, id: &str, group: &str, container: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!(
                "{}/api/deployments/{id}/logs/{group}/{container}",
                self.api
            ))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
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
        self.dir
            .path()
            .join("aci")
            .join("shares")
            .join(account)
            .join(share)
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

/// A one-group job spec running `script` with `sh -c`, its share mounted at `/mnt/share`.
pub fn job(id: &str, script: &str) -> Value {
    json!({
        "id": id,
        "groups": [{ "name": "work", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["/bin/sh", "-c", script],
                "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
                "volumeMounts": [{ "name": "share", "mountPath": "/mnt/share" }] } }],
            "volumes": [{ "name": "share", "azureFile": { "shareName": "data", "storageAccountName": "teststore" } }] } }]
    })
}

/// Processes on this machine whose command line holds `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(marker) {
                found.push(format!("{name}: {text}"));
            }
        }
    }
    found
}

/// Waits (up to `limit`) until no process holds `marker`.
pub async fn no_processes_with(marker: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let found = processes_with(marker);
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
