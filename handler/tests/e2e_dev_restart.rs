//! The real `handler dev` binary.
//!
//! SIGKILLed while a job runs, then started again on the same data folder: its emulator reloads
//! its records and reports the container lost with the old process as terminated, with a reason;
//! Berth carries on from there (here: a retry that succeeds). On its SQLite file, and with
//! `AzureWebJobsStorage` pointing at Azurite.
//!
//! Its in-process ACI emulator is guarded by a per-run bearer token: Berth's ARM client sends it
//! and a job runs end to end, while a PUT without it, from the test or from the job's own container
//! (which shares the host's network), is refused and creates nothing. The container does not see
//! dev's data folder (its secrets key and checkpoints) either.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use berth_test_support::dev::Dev;
use berth_test_support::{eventually, free_port};
use common::Backend;
use serde_json::{Value, json};

/// `handler dev` with its data in `data` on `ports`, `envs` set.
fn dev(data: &Path, ports: (u16, u16), envs: &[(&str, String)]) -> Dev {
    Dev::start_on(
        Path::new(env!("CARGO_BIN_EXE_handler")),
        data,
        ports,
        &[],
        envs,
    )
}

async fn get(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

async fn text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

async fn wait_for(http: &reqwest::Client, url: &str, want: impl Fn(&Value) -> bool) -> Value {
    eventually(
        &format!("{url} to get there"),
        Duration::from_secs(60),
        || async {
            match get(http, url).await {
                Some(status) if want(&status) => Ok(status),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
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
    let ports = (free_port(), free_port());
    let child = dev(&data, ports, &storage);
    let api = child.url("/api/deployments");
    wait_for(&reqwest::Client::new(), &child.url("/"), |_| true).await;
    // `dev` generated its API key in the data folder; the restart below keeps it.
    let http = child.client();

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

    child.kill();
    let child = dev(&data, ports, &storage);
    let status = wait_for(&http, &status_url, |s| s["phase"] == "Done").await;
    let history = get(&http, &format!("{status_url}/history")).await.unwrap();
    let logs = text(&http, &format!("{status_url}/logs/work/main")).await;
    child.kill();

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

const GROUPS: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/berth-dev/providers/Microsoft.ContainerInstance/containerGroups";

#[tokio::test]
async fn dev_runs_a_job_with_its_emulator_token_and_refuses_calls_without_it() {
    // Outside /tmp: the sandbox's /tmp is its own, which would hide the folder whatever dev did.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = dir.path().join("data");
    let child = dev(&data, (free_port(), free_port()), &[]);
    let http = reqwest::Client::new();
    wait_for(&http, &child.url("/"), |_| true).await;

    let emulator = format!("http://127.0.0.1:{}", child.emulator_port);
    let planted = json!({"location": "local", "properties": {"osType": "Linux", "containers": [
        {"name": "main", "properties": {"image": "busybox", "command": ["/bin/true"],
         "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}}}}]}});
    let data_path = data.canonicalize().unwrap();
    let script = r#"
        echo put:$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
            --data "$PLANTED" "$EMULATOR$GROUPS/from-container?api-version=2025-09-01")
        echo data:$(ls -A "$DATA" 2>/dev/null | tr '\n' ' ')
    "#;
    let spec = json!({
        "id": "guarded",
        "groups": [{ "name": "work", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox",
                "command": ["/bin/sh", "-c", script],
                "environmentVariables": [
                    {"name": "EMULATOR", "value": emulator},
                    {"name": "GROUPS", "value": GROUPS},
                    {"name": "PLANTED", "value": planted.to_string()},
                    {"name": "DATA", "value": data_path.display().to_string()}
                ],
                "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }]
    });
    let api = child.url("/api/deployments");
    let api_http = child.client();
    let response = api_http.post(&api).json(&spec).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);

    // From the test: no token, and a wrong one.
    let url = format!("{emulator}{GROUPS}/from-test?api-version=2025-09-01");
    let bare = http.put(&url).json(&planted).send().await.unwrap();
    assert_eq!(bare.status().as_u16(), 401);
    let body: Value = bare.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthenticationFailed", "{body}");
    let wrong = http
        .put(&url)
        .bearer_auth("guessed")
        .json(&planted)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    let status = wait_for(&api_http, &format!("{api}/guarded"), |s| {
        s["phase"] == "Done"
    })
    .await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    let logs = text(&api_http, &format!("{api}/guarded/logs/work/main")).await;
    child.kill();

    assert_eq!(logs, "put:401\ndata:\n", "the container's view");
    // Nothing was planted: the emulator's records hold only the job's own group.
    let records = data.join("aci/groups");
    let names: Vec<String> = walk(&records);
    assert!(
        names.iter().all(|name| !name.starts_with("from-")),
        "a planted group was recorded: {names:?}"
    );
}

/// The file names under `dir`, at any depth.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            names.extend(walk(&path));
        } else {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names
}
