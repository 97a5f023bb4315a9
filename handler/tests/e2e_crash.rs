//! `handler serve` (on SQLite, and on Azurite) against an emulator that outlives it, as containers outlive the
//! orchestrator in Azure: SIGKILLed in each phase of a deployment and restarted, it finishes every
//! deployment with exactly one create per group name.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth::crypto::SecretsKey;
use common::Backend;
use serde_json::Value;

const KEY: &str = "crash-test-key";

struct Serve {
    child: Child,
    url: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(storage: &[(&str, String)], arm: &str, port: u16, secrets: &str) -> Serve {
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(storage.iter().map(|(k, v)| (*k, v)))
        .env("BERTH_ARM_ENDPOINT", arm)
        .env(
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000",
        )
        .env("BERTH_RESOURCE_GROUP", "crash")
        .env("BERTH_LOCATION", "local")
        .env("BERTH_SECRETS_KEY", secrets)
        .env("BERTH_API_KEY", KEY)
        .env("BERTH_PUBLIC_URL", &url)
        .env("BERTH_STEP_LEASE", "PT2S")
        .env("BERTH_CREATE_CLAIM", "PT3S")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Serve { child, url }
}

async fn ready(http: &reqwest::Client, serve: &Serve) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{}/", serve.url)).send().await.is_err() {
        assert!(Instant::now() < deadline, "handler serve did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(http: &reqwest::Client, url: &str, id: &str) -> Option<Value> {
    let response = http
        .get(format!("{url}/api/deployments/{id}"))
        .header("x-functions-key", KEY)
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

async fn serve_killed_in_every_phase_finishes_every_deployment_with_one_create_per_group(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let Some(storage) = common::backend_settings(backend, dir.path()) else {
        return;
    };
    // Every ARM answer takes 300 ms, so each phase lasts long enough to be caught in.
    let faults = emulator::Faults {
        slow_rate: 1.0,
        slow_ms: 300,
        ..emulator::Faults::default()
    };
    let config = emulator::Config {
        data_dir: dir.path().join("aci"),
        faults,
        ..emulator::Config::default()
    };
    let emulator = emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let secrets = SecretsKey::generate().to_base64();
    let http = reqwest::Client::new();
    let port = free_port();
    let mut serve = spawn(&storage, &emulator.base_url(), port, &secrets);
    ready(&http, &serve).await;

    // Unauthenticated calls are refused.
    let refused = http
        .get(format!("{}/api/deployments", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);

    // The phases a job's checkpoint is saved in. Once its logs are being captured, the logs and
    // the delete go under one save (`CleaningUp` is saved only when a delete waits or fails).
    let phases = ["Pending", "Creating", "Waiting", "CapturingLogs"];
    let mut ids = Vec::new();
    let mut caught = Vec::new();
    for phase in phases {
        let id = format!("crash-{}", phase.to_lowercase());
        let spec = common::job(&id, "echo ran; sleep 1");
        let response = http
            .post(format!("{}/api/deployments", serve.url))
            .header("x-functions-key", KEY)
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        ids.push(id.clone());
        let current = async || {
            let status = status(&http, &serve.url, &id).await?;
            status["phase"].as_str().map(str::to_owned)
        };
        if common::scenarios::catch_phase(phase, Duration::from_secs(30), current).await {
            caught.push(phase);
        }
        serve.child.kill().unwrap();
        serve.child.wait().unwrap();
        serve = spawn(&storage, &emulator.base_url(), port, &secrets);
        ready(&http, &serve).await;
    }
    assert!(caught.len() >= 3, "killed in phases {caught:?}");

    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = status(&http, &serve.url, id).await.unwrap_or(Value::Null);
            if s["phase"] == "Done" {
                assert_eq!(s["runtimeStatus"], "Succeeded", "{id}: {s}");
                break;
            }
            assert!(Instant::now() < deadline, "{id} did not finish: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let stats = emulator.stats();
    for id in &ids {
        let prefix = format!("{id}-work-1-");
        let created: Vec<u64> = stats
            .creates_by_name
            .iter()
            .filter(|(name, _)| common::scenarios::is_named(name, &prefix))
            .map(|(_, count)| *count)
            .collect();
        assert_eq!(created, [1], "{id}: {:?}", stats.creates_by_name);
    }
    assert_eq!(
        stats.creates_by_name.len(),
        ids.len(),
        "no other group was created: {:?}",
        stats.creates_by_name
    );
    assert_eq!(stats.groups, 0, "no group left behind");
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    eprintln!("killed handler serve in phases {caught:?}");
}

on_both_backends!(serve_killed_in_every_phase_finishes_every_deployment_with_one_create_per_group);
