//! End to end through the HTTP API, against the emulator running a real process: a running
//! service's status shows what it has cost so far, growing while it runs, priced from the table
//! `BERTH_PRICES` sets, and stops growing once its group is stopped.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::scenarios;
use common::{Backend, Harness, Options};
use serde_json::{Value, json};

fn cost(status: &Value) -> (f64, f64) {
    (
        status["cost"]["vcpuSeconds"].as_f64().unwrap(),
        status["cost"]["estimatedUsd"].as_f64().unwrap(),
    )
}

async fn a_running_service_costs_what_it_has_used_so_far(backend: Backend) {
    let Some(h) = Harness::try_with(Options {
        backend,
        // $36 per vCPU-hour, nothing per GB-hour: a cent per vCPU-second, easy to see grow.
        settings: vec![(
            "BERTH_PRICES",
            r#"{"standard": {"vcpuHour": 36, "gbHour": 0}}"#.into(),
        )],
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let spec = json!({
        "id": "costly",
        "mode": "service",
        "groups": [{ "name": "web", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["/bin/sh", "-c", "sleep 600"],
                "resources": { "requests": { "cpu": 2, "memoryInGB": 1 } } } }] } }]
    });
    let id = h.start_deployment(&spec).await;
    let running = h
        .wait_for(&id, Duration::from_secs(60), |s| {
            s["groups"][0]["state"] == "Running"
        })
        .await;
    let (cpu_then, usd_then) = cost(&running);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (cpu_now, usd_now) = cost(&h.status(&id).await);
    assert!(cpu_now >= cpu_then + 2.0 * 1.4, "{cpu_then} → {cpu_now}");
    assert!(
        usd_now > 0.0 && usd_now >= usd_then + 0.028,
        "{usd_then} → {usd_now}"
    );
    // Priced at 2 vCPUs × $0.01 a second for the seconds the status counts.
    assert!(
        (usd_now - cpu_now * 0.01).abs() < 1e-5,
        "{usd_now} for {cpu_now}"
    );

    let path = format!("/deployments/{id}/events/teardown");
    assert_eq!(scenarios::post(&h, &path, None).await.0, 202);
    let done = h.wait_done(&id).await;
    let (cpu_done, usd_done) = cost(&done);
    assert!(cpu_done >= cpu_now, "{cpu_now} → {cpu_done}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(cost(&h.status(&id).await), (cpu_done, usd_done));
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(a_running_service_costs_what_it_has_used_so_far);
