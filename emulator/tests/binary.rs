//! The `aci-emulator` binary: prints its endpoint and the token it generated, serves only requests
//! that carry the token, and on SIGTERM kills its containers, writes its records and exits
//! cleanly.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn the_binary_prints_its_endpoint_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.toml");
    std::fs::write(
        &images,
        "[images.\"busybox\"]\ncommand = [\"/bin/sh\", \"-c\", \"echo from the map; sleep 1000\"]\n",
    )
    .unwrap();
    let marker = marker();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aci-emulator"))
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--images")
        .arg(&images)
        .env_remove("ACI_EMULATOR_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (line, _stdout) = first_line(&mut child);
    let (base, token) = line
        .trim()
        .strip_prefix("aci-emulator: ARM endpoint ")
        .and_then(|rest| rest.split_once(" (bearer token "))
        .and_then(|(base, rest)| Some((base.to_string(), rest.strip_suffix(')')?.to_string())))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert_eq!(token.len(), 64, "a generated token: {line:?}");
    let client = reqwest::Client::new();
    let url = format!(
        "{base}/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/containerGroups/mapped?api-version={API}"
    );
    let (name, value) = marker.split_once('=').unwrap();
    let body = json!({
        "location": "westus",
        "properties": {"osType": "Linux", "restartPolicy": "Always", "containers": [{"name": "main", "properties": {
            "image": "busybox",
            "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}},
            "environmentVariables": [{"name": name, "value": value}]
        }}]}
    });
    let response = client.put(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 401, "no token, no group");
    let response = client
        .put(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    wait_processes(&marker, 1, Duration::from_secs(20)).await;

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    wait_no_processes(&marker, Duration::from_secs(5)).await;
    let record = dir.path().join(format!(
        "data/groups/{SUB}/{}/mapped.json",
        RG.to_lowercase()
    ));
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        text.contains("\"Running\""),
        "the record says the container ran: {text}"
    );
}

#[tokio::test]
async fn a_token_from_the_environment_is_required_and_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aci-emulator"))
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("ACI_EMULATOR_TOKEN", "operator-chosen-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (line, _stdout) = first_line(&mut child);
    assert!(!line.contains("operator-chosen-token"), "{line:?}");
    let base = line
        .trim()
        .strip_prefix("aci-emulator: ARM endpoint ")
        .and_then(|rest| rest.strip_suffix(" (bearer token as given)"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let url = format!(
        "{base}/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/containerGroups?api-version={API}"
    );
    let client = reqwest::Client::new();
    let refused = client.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let listed = client
        .get(&url)
        .bearer_auth("operator-chosen-token")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}
