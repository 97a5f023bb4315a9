//! `handler serve` (on SQLite, and on Azurite) against an emulator that outlives it, as containers outlive the
//! orchestrator in Azure: SIGKILLed in each phase of a deployment and restarted, it finishes every
//! deployment with exactly one create per group name; a pipeline killed while its fan-out and its
//! last stage run creates each (group, instance, attempt) once.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use berth::crypto::SecretsKey;
use berth_test_support::api::Client;
use berth_test_support::{eventually, free_port};
use common::{Backend, Serve};
use serde_json::{Value, json};

const KEY: &str = "crash-test-key";

/// `handler serve` on `port` over `storage` and the emulator at `arm`, with short leases and
/// claims so that a killed handler's work is picked up quickly.
fn spawn(storage: &[(&str, String)], arm: &str, port: u16, secrets: &str) -> Serve {
    let mut settings: Vec<(&str, String)> = storage.to_vec();
    settings.extend([
        ("BERTH_ARM_ENDPOINT", arm.to_owned()),
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000".to_owned(),
        ),
        ("BERTH_RESOURCE_GROUP", "crash".to_owned()),
        ("BERTH_LOCATION", "local".to_owned()),
        ("BERTH_SECRETS_KEY", secrets.to_owned()),
        ("BERTH_API_KEY", KEY.to_owned()),
        ("BERTH_STEP_LEASE", "PT2S".to_owned()),
        ("BERTH_CREATE_CLAIM", "PT3S".to_owned()),
    ]);
    Serve::spawn(port, &settings, None)
}

async fn ready(serve: &Serve) {
    serve.ready().await;
}

/// Berth's API on `serve`, with the key.
fn api(serve: &Serve) -> Client {
    serve.api(KEY)
}

/// The status document, or `None` while `serve` cannot answer (it is being killed or restarted).
async fn status(serve: &Serve, id: &str) -> Option<Value> {
    api(serve).status(id).await.ok().map(|(_, body)| body)
}

async fn serve_killed_in_every_phase_finishes_every_deployment_with_one_create_per_group(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let Some(storage) = common::backend_settings(backend, dir.path()) else {
        return;
    };
    // Every ARM answer takes 300 ms, so each phase lasts long enough to be caught in.
    let config = emulator::Config {
        faults: common::every_answer_slow(300),
        ..emulator::Config::default()
    };
    let emulator = common::emulator_with(dir.path(), config).await;
    let secrets = SecretsKey::generate().to_base64();
    let port = free_port();
    let mut serve = spawn(&storage, &emulator.base_url(), port, &secrets);
    ready(&serve).await;

    // Unauthenticated calls are refused.
    let unkeyed = Client::new(format!("{}/api", serve.url));
    let (refused, _) = unkeyed.list("").await.unwrap();
    assert_eq!(refused, 401);

    // The phases a job's checkpoint is saved in. The submit creates it `Creating` (the claim of
    // its create in it) and sends the create itself (`BERTH_INLINE_STEP`), so it is killed in
    // that phase while its own submit is still in flight. Once its logs are being captured, the
    // logs and the delete go under one save (`CleaningUp` is saved only when a delete waits or
    // fails).
    let phases = ["Creating", "Waiting", "CapturingLogs"];
    let mut ids = Vec::new();
    let mut caught = Vec::new();
    for phase in phases {
        let id = format!("crash-{}", phase.to_lowercase());
        let spec = common::job(&id, "echo ran; sleep 1");
        let client = api(&serve);
        let submit = tokio::spawn(async move { client.submit(&spec).await });
        ids.push(id.clone());
        let current = async || {
            let status = status(&serve, &id).await?;
            status["phase"].as_str().map(str::to_owned)
        };
        if common::scenarios::catch_phase(phase, Duration::from_secs(30), current).await {
            caught.push(phase);
        }
        serve.child.kill().unwrap();
        serve.child.wait().unwrap();
        // Killed during its own submit, the answer may never have come; once it came, it was 202.
        if let Ok((code, body)) = submit.await.unwrap() {
            assert_eq!(code, 202, "{body}");
        }
        serve = spawn(&storage, &emulator.base_url(), port, &secrets);
        ready(&serve).await;
    }
    assert!(
        caught.contains(&"Creating") && caught.len() >= 2,
        "killed in phases {caught:?}"
    );

    // A pipeline, killed while its fan-out runs and again while its last stage does.
    let pipeline_id = "crash-pipeline";
    let (code, body) = api(&serve).submit(&pipeline(pipeline_id)).await.unwrap();
    assert_eq!(code, 202, "{body}");
    for group in ["shard", "publish"] {
        let state = async || {
            let status = status(&serve, pipeline_id).await?;
            let groups = status["groups"].as_array()?;
            let found = groups.iter().find(|g| g["name"] == group)?;
            found["state"].as_str().map(str::to_owned)
        };
        if common::scenarios::catch_phase("Running", Duration::from_secs(30), state).await {
            caught.push(group);
        }
        serve.child.kill().unwrap();
        serve.child.wait().unwrap();
        serve = spawn(&storage, &emulator.base_url(), port, &secrets);
        ready(&serve).await;
    }
    ids.push(pipeline_id.to_owned());

    for id in &ids {
        let s = eventually(
            &format!("{id} to finish"),
            Duration::from_secs(90),
            || async {
                let s = status(&serve, id).await.unwrap_or(Value::Null);
                if s["phase"] == "Done" { Ok(s) } else { Err(s) }
            },
        )
        .await;
        assert_eq!(s["runtimeStatus"], "Succeeded", "{id}: {s}");
    }
    let stats = emulator.stats();
    // One create per (group, instance, attempt): each job's one and the pipeline's five.
    let jobs = ids.iter().filter(|id| *id != pipeline_id);
    let mut prefixes: Vec<String> = jobs.map(|id| format!("{id}-work-1-")).collect();
    for name in ["prep-1", "shard-0-1", "shard-1-1", "shard-2-1", "publish-1"] {
        prefixes.push(format!("{pipeline_id}-{name}-"));
    }
    for prefix in &prefixes {
        let created: Vec<u64> = stats
            .creates_by_name
            .iter()
            .filter(|(name, _)| common::scenarios::is_named(name, prefix))
            .map(|(_, count)| *count)
            .collect();
        assert_eq!(created, [1], "{prefix}: {:?}", stats.creates_by_name);
    }
    assert_eq!(
        stats.creates_by_name.len(),
        prefixes.len(),
        "no other group was created: {:?}",
        stats.creates_by_name
    );
    assert_eq!(stats.groups, 0, "no group left behind");
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    eprintln!("killed handler serve in phases {caught:?}");
}

/// prep → 3 shards (2 at a time) → publish, each stage a `sleep 1` job: long enough to be
/// killed in.
fn pipeline(id: &str) -> Value {
    let stage = |name: &str| {
        let mut group = common::job(id, "echo ran; sleep 1")["groups"][0].clone();
        group["name"] = json!(name);
        group
    };
    let mut shard = stage("shard");
    shard["dependsOn"] = json!(["prep"]);
    shard["count"] = json!(3);
    shard["parallelism"] = json!(2);
    let mut publish = stage("publish");
    publish["dependsOn"] = json!(["shard"]);
    json!({ "id": id, "groups": [stage("prep"), shard, publish] })
}

on_both_backends!(serve_killed_in_every_phase_finishes_every_deployment_with_one_create_per_group);
