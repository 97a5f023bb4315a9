//! Shared helpers of the emulator's black-box tests: an emulator per test on port 0 with its own
//! data folder, a small ARM client, waits on it and on processes (through
//! `berth_test_support::eventually`), and a scan of /proc for processes carrying a marker.

#![allow(dead_code)]

pub mod swagger;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use berth_test_support::api::json_body;
pub use berth_test_support::eventually;
use emulator::{Config, Running};
use serde_json::{Value, json};

pub const API: &str = "2025-09-01";
/// How to get bubblewrap, which runs the containers.
pub const BUBBLEWRAP: &str = "apt-get install bubblewrap (bin/test installs it)";
pub const SUB: &str = "00000000-0000-0000-0000-000000000000";
pub const RG: &str = "berth-tests";

/// An emulator with its own data folder.
pub struct Harness {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    pub base: String,
}

/// A test configuration: fast restarts, data in `dir`.
pub fn config(dir: &Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.timings.restart_backoff = Duration::from_millis(50);
    config.timings.restart_backoff_max = Duration::from_millis(200);
    config
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Harness {
    /// Starts an emulator configured by `adjust`.
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, adjust).await
    }

    /// Starts an emulator on an existing data folder.
    pub async fn start_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = config(dir.path());
        adjust(&mut config);
        if !config.instant {
            berth_test_support::require_program("bwrap", BUBBLEWRAP);
        }
        let running = emulator::start(config, loopback()).await.unwrap();
        let base = running.base_url();
        Harness {
            running: Some(running),
            dir,
            client: reqwest::Client::new(),
            base,
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// Shuts the emulator down and keeps the data folder.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.dir
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn groups_url(&self) -> String {
        format!(
            "{}/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/containerGroups",
            self.base
        )
    }

    pub fn group_url(&self, name: &str) -> String {
        format!("{}/{name}", self.groups_url())
    }

    pub async fn put(&self, name: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(format!("{}?api-version={API}", self.group_url(name)))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// PUT that must answer 201; returns the body.
    pub async fn create(&self, name: &str, body: &Value) -> Value {
        let response = self.put(name, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 201, "PUT {name}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn get(&self, name: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, &self.group_url(name), "")
            .await
    }

    pub async fn delete(&self, name: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, &self.group_url(name), "")
            .await
    }

    pub async fn post(&self, name: &str, action: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("{}/{action}", self.group_url(name)),
            "",
        )
        .await
    }

    pub async fn logs(&self, name: &str, container: &str, query: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::GET,
            &format!("{}/containers/{container}/logs", self.group_url(name)),
            query,
        )
        .await
    }

    /// Any ARM call with the api-version and an extra query; the body as JSON (Null if empty).
    pub async fn call(&self, method: reqwest::Method, url: &str, query: &str) -> (u16, Value) {
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}api-version={API}{query}");
        let response = self.client.request(method, url).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// Polls GET until `done` holds, failing after `timeout`.
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(&format!("{name} to be {what}"), timeout, || async {
            match self.get(name).await {
                (200, body) if done(&body) => Ok(body),
                (status, body) => Err(format!("{status}: {body:#}")),
            }
        })
        .await
    }

    /// Creates a group, waits until it has `Succeeded` and returns the log of `container`.
    pub async fn run_to_success(&self, name: &str, body: &Value, container: &str) -> String {
        self.create(name, body).await;
        self.wait_for(name, Duration::from_secs(20), "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
        let (_, logs) = self.logs(name, container, "").await;
        logs["content"].as_str().unwrap_or_default().to_string()
    }

    /// `PUT /_emulator/faults`: replaces the fault knobs.
    pub async fn set_faults(&self, faults: &Value) -> reqwest::Response {
        self.client
            .put(format!("{}/_emulator/faults", self.base))
            .json(faults)
            .send()
            .await
            .unwrap()
    }

    pub async fn stats(&self) -> Value {
        json_body(self.client.get(format!("{}/_emulator/stats", self.base))).await
    }
}

/// The variables a container's `sh` adds or keeps besides those of its spec: `PATH` and `HOME`
/// from the emulator, the rest from the shell itself.
pub const SHELL_VARIABLES: [&str; 6] = ["PATH", "HOME", "PWD", "OLDPWD", "SHLVL", "_"];

/// The group's instance-view state.
pub fn group_state(body: &Value) -> &str {
    body["properties"]["instanceView"]["state"]
        .as_str()
        .unwrap_or("")
}

/// The provisioning state.
pub fn provisioning(body: &Value) -> &str {
    body["properties"]["provisioningState"]
        .as_str()
        .unwrap_or("")
}

/// A container's instance view.
pub fn view(body: &Value, container: usize) -> &Value {
    &body["properties"]["containers"][container]["properties"]["instanceView"]
}

/// A PUT body for a Linux group.
pub fn group_body(policy: &str, containers: Value, volumes: Value) -> Value {
    json!({
        "location": "westus",
        "tags": {"berth.deployment": "t"},
        "properties": {
            "osType": "Linux",
            "restartPolicy": policy,
            "containers": containers,
            "volumes": volumes,
        }
    })
}

/// A container running `sh -c script`.
pub fn shell(name: &str, script: &str, env: Value, mounts: Value) -> Value {
    json!({
        "name": name,
        "properties": {
            "image": "busybox",
            "command": ["/bin/sh", "-c", script],
            "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}},
            "environmentVariables": env,
            "volumeMounts": mounts,
        }
    })
}

/// Pids of live processes whose environment holds `NAME=value`.
pub fn processes_with(variable: &str) -> Vec<u32> {
    let needle = variable.as_bytes();
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false);
        if !zombie && environ.split(|byte| *byte == 0).any(|item| item == needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits until no process carries `variable`, failing after `timeout`.
pub async fn wait_no_processes(variable: &str, timeout: Duration) {
    let what = format!("no process with {variable}");
    eventually(&what, timeout, || async {
        let pids = processes_with(variable);
        if pids.is_empty() {
            Ok(())
        } else {
            Err(format!("{pids:?} survived"))
        }
    })
    .await
}

/// Waits until at least `count` processes carry `variable`.
pub async fn wait_processes(variable: &str, count: usize, timeout: Duration) -> Vec<u32> {
    let what = format!("{count} processes with {variable}");
    eventually(&what, timeout, || async {
        let pids = processes_with(variable);
        if pids.len() >= count {
            Ok(pids)
        } else {
            Err(format!("{pids:?}"))
        }
    })
    .await
}

/// A unique marker variable for one test's processes.
pub fn marker() -> String {
    format!("ACI_TEST_MARKER={}", uuid::Uuid::new_v4().simple())
}

/// The official ACI swagger and examples (`fixtures/aci/2026-07-01`, see `fixtures/README.md`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/aci/2026-07-01"
    ))
}

/// The start line of a spawned `aci-emulator`, and its output to keep open (the emulator writes
/// more lines and would die of a closed pipe).
pub fn first_line(
    child: &mut std::process::Child,
) -> (String, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead;
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    (line, stdout)
}
