//! `handler dev` SIGKILLed while a job runs, then started again on the same data folder: its
//! emulator reloads its records and reports the container lost with the old process as
//! terminated, with a reason; Berth carries on from there (here: a retry that succeeds). On its
//! SQLite file, and with `AzureWebJobsStorage` pointing at Azurite.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Backend;
use serde_json::{Value, json};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dev(data: &Path, port: u16, emulator_port: u16, storage: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_handler"))
        .args([
            "dev",
            "--port",
            &port.to_string(),
            "--emulator-port",
            &emulator_port.to_string(),
            "--data-dir",
        ])
        .arg(data)
        .envs(storage.iter().map(|(k, v)| (*k, v)))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn get(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

async fn wait_for(http: &reqwest::Client, url: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = get(http, url).await
            && want(&status)
        {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never got there: {:?}",
            get(http, url).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dev_killed_mid_job_recovers_on_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // `dev` keeps its SQLite file in its data folder; Azure Storage when configured.
    let storage = match backend {
        Backend::Sqlite => Vec::new(),
        Backend::Azurite => match common::backend_settings(backend, dir.path()) {
            Some(settings) => settings,
            None => return,
        },
    };
    let (port, emulator_port) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{port}/api/deployments");
    let mut child = dev(&data, port, emulator_port, &storage);
    wait_for(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}/"),
        |_| true,
    )
    .await;
    // `dev` generated its API key in the data folder; the restart below keeps it.
    let key = std::fs::read_to_string(data.join("api.key")).unwrap();
    let headers = reqwest::header::HeaderMap::from_iter([(
        reqwest::header::HeaderName::from_static("x-functions-key"),
        reqwest::header::HeaderValue::from_str(key.trim()).unwrap(),
    )]);
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();

    // The first attempt runs long; the second finds the marker on its share and finishes quickly.
    let spec = json!({
        "id": "survivor",
        "retry": { "maxAttempts": 2, "backoff": "PT0.1S" },
        "groups": [{ "name": "work", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox",
                "command": ["/bin/sh", "-c", "if [ -f /mnt/share/seen ]; then echo second run; exit 0; fi; touch /mnt/share/seen; sleep 600"],
                "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
                "volumeMounts": [{ "name": "share", "mountPath": "/mnt/share" }] } }],
            "volumes": [{ "name": "share", "azureFile": { "shareName": "restart", "storageAccountName": "devstore" } }] } }]
    });
    let response = http.post(&api).json(&spec).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let status_url = format!("{api}/survivor");
    wait_for(&http, &status_url, |s| {
        s["groups"][0]["containers"][0]["state"] == "Running"
    })
    .await;

    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = dev(&data, port, emulator_port, &storage);
    let status = wait_for(&http, &status_url, |s| s["phase"] == "Done").await;
    let history = get(&http, &format!("{status_url}/history")).await.unwrap();
    let logs = http
        .get(format!("{status_url}/logs/work/main"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert_eq!(
        status["attempt"], 2,
        "the lost container failed the first attempt: {status}"
    );
    let failed = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "AttemptFailed")
        .cloned();
    assert!(failed.is_some(), "{history}");
    assert_eq!(logs, "second run\n");
}

on_both_backends!(dev_killed_mid_job_recovers_on_restart);
