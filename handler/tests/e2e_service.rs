//! End to end: the seed service (Postgres + nginx + a worker on one Azure Files share), healed
//! after one of its groups is deleted behind Berth's back, then torn down with its data kept.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, Harness, Options};
use serde_json::{Value, json};

fn images() -> emulator::ImageMap {
    // Stand-ins for the images: long-running processes that write to the share as the real
    // servers would (examples/ maps them to the real binaries where installed).
    emulator::ImageMap::parse(
        r#"
[images."postgres:15"]
command = ["/bin/sh", "-c", "echo postgres up; while true; do date +%s > /var/lib/postgresql/data/postmaster.pid; sleep 1; done"]

[images."nginx:alpine"]
command = ["/bin/sh", "-c", "echo nginx up; while true; do sleep 1; done"]
"#,
    )
    .unwrap()
}

fn container(name: &str, image: &str, mount: &str, command: Option<Value>) -> Value {
    let mut properties = json!({
        "image": image,
        "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
        "volumeMounts": [{ "name": "appdata", "mountPath": mount }]
    });
    if let Some(command) = command {
        properties["command"] = command;
    }
    json!({ "name": name, "properties": properties })
}

fn group(name: &str, container: Value) -> Value {
    json!({ "name": name, "properties": {
        "containers": [container],
        "restartPolicy": "Always",
        "volumes": [{ "name": "appdata", "azureFile": { "shareName": "app", "storageAccountName": "seedstore" } }]
    } })
}

async fn the_seed_service_survives_a_deleted_group_and_tears_down_cleanly(backend: Backend) {
    let Some(h) = Harness::try_with(Options {
        backend,
        images: Some(images()),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let worker = Some(json!([
        "/bin/sh",
        "-c",
        "while true; do date +%s >> /shared/worker.log; sleep 1; done"
    ]));
    let spec = json!({
        "id": "seed",
        "mode": "service",
        "groups": [
            group("db", container("postgres", "postgres:15", "/var/lib/postgresql/data", None)),
            group("web", container("nginx", "nginx:alpine", "/usr/share/nginx/html", None)),
            group("worker", container("worker", "busybox", "/shared", worker)),
        ]
    });
    let id = h.start_deployment(&spec).await;
    let running = |s: &Value| {
        s["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["state"] == "Running")
    };
    h.wait_for(&id, Duration::from_secs(30), running).await;
    let share = h.share("seedstore", "app");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(share.join("postmaster.pid").exists() && share.join("worker.log").exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the groups write to their shared share"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Delete the web group behind Berth's back, then tell Berth something happened.
    let arm = &h.runtime.driver.arm;
    assert!(arm.delete_group("seed-web-1").await.unwrap());
    assert_eq!(
        h.post(&format!("/api/deployments/{id}/events/check"), None)
            .await
            .0,
        202
    );
    let healed = h
        .wait_for(&id, Duration::from_secs(30), |s| {
            s["groups"][1]["aciName"] == "seed-web-2" && s["groups"][1]["state"] == "Running"
        })
        .await;
    assert_eq!(healed["runtimeStatus"], "Running");
    assert_eq!(
        healed["groups"][0]["aciName"], "seed-db-1",
        "the other groups were left alone"
    );

    let (code, _) = h
        .post(&format!("/api/deployments/{id}/events/teardown"), None)
        .await;
    assert_eq!(code, 202);
    let done = h.wait_done(&id).await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    let stats = h.stats();
    for name in ["seed-db-1", "seed-web-1", "seed-web-2", "seed-worker-1"] {
        assert_eq!(
            stats.creates_by_name.get(name),
            Some(&1),
            "{name}: {stats:?}"
        );
    }
    assert_eq!(stats.groups, 0, "every group deleted");
    // Regression: each group's result used to re-trigger every other group's pending action, so
    // three groups took dozens of deletes. One delete per group (plus the one behind Berth's back).
    assert_eq!(
        stats.requests.get("delete"),
        Some(&4),
        "{:?}",
        stats.requests
    );
    assert!(
        stats.requests.get("stop").copied().unwrap_or(0) <= 3,
        "{:?}",
        stats.requests
    );
    assert!(
        stats.requests.get("logs").copied().unwrap_or(0) <= 4,
        "{:?}",
        stats.requests
    );
    assert_eq!(h.settled_processes().await, 0);
    assert!(
        share.join("postmaster.pid").exists(),
        "the share's data stays"
    );
    assert_eq!(
        h.logs(&id, "db", "postgres").await,
        (200, "postgres up\n".into())
    );
    let history = h
        .http
        .get(format!("{}/api/deployments/{id}/history", h.api))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        history["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["eventType"] == "Healing")
    );
}

on_both_backends!(the_seed_service_survives_a_deleted_group_and_tears_down_cleanly);
