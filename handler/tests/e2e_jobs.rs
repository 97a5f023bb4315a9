//! End to end through the HTTP API, against the emulator running real processes: jobs.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, Harness, job, no_processes_with};
use serde_json::json;

async fn a_job_writes_its_share_and_succeeds_with_logs_saved_and_group_deleted(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let id = h
        .start_deployment(&job(
            "write-1",
            "echo hello from $BERTH_DEPLOYMENT_ID; echo payload > /mnt/share/result.txt",
        ))
        .await;
    let status = h.wait_done(&id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert_eq!(status["groups"][0]["state"], "Deleted");
    assert_eq!(status["groups"][0]["containers"][0]["exitCode"], 0);
    assert_eq!(
        std::fs::read_to_string(h.share("teststore", "data").join("result.txt")).unwrap(),
        "payload\n"
    );
    let (code, logs) = h.logs(&id, "work", "main").await;
    assert_eq!(code, 200);
    assert_eq!(logs, "hello from write-1\n");
    let stats = h.stats();
    assert_eq!(stats.creates_by_name.get("write-1-work-1"), Some(&1));
    assert_eq!(stats.groups, 0);
    assert_eq!(h.settled_processes().await, 0);
    assert!(status["cost"]["vcpuSeconds"].as_f64().unwrap() > 0.0);
    let history = h
        .http
        .get(format!("{}/api/deployments/{id}/history", h.api))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let kinds: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"DeploymentAccepted"));
    assert_eq!(kinds.last(), Some(&"GroupDeleted"));
}

on_both_backends!(a_job_writes_its_share_and_succeeds_with_logs_saved_and_group_deleted);

async fn exit_three_is_retried_then_fails(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let mut spec = job("exit-3", "echo attempt; exit 3");
    spec["retry"] = json!({ "maxAttempts": 2, "backoff": "PT0.2S" });
    let id = h.start_deployment(&spec).await;
    let status = h.wait_done(&id).await;
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    assert_eq!(status["attempt"], 2);
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 3"),
        "{status}"
    );
    assert_eq!(status["groups"][0]["containers"][0]["exitCode"], 3);
    let stats = h.stats();
    assert_eq!(stats.creates_by_name.get("exit-3-work-1"), Some(&1));
    assert_eq!(stats.creates_by_name.get("exit-3-work-2"), Some(&1));
    assert_eq!(stats.groups, 0);
    // Both attempts' logs were saved; the group name serves the latest, the ARM name either.
    assert_eq!(h.logs(&id, "work", "main").await, (200, "attempt\n".into()));
    assert_eq!(
        h.logs(&id, "exit-3-work-1", "main").await,
        (200, "attempt\n".into())
    );
}

on_both_backends!(exit_three_is_retried_then_fails);

async fn a_timeout_kills_the_process_tree_and_ends_timed_out(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let marker = format!("berth-timeout-marker-{}-{backend:?}", std::process::id());
    let script = format!(
        "echo started; sh -c 'sleep 1000; echo {marker}' & sh -c 'sleep 1001; echo {marker}' & sleep 999 # {marker}"
    );
    let mut spec = job("slow-1", &script);
    spec["timeout"] = json!("PT2S");
    let id = h.start_deployment(&spec).await;
    h.wait_for(&id, Duration::from_secs(20), |s| {
        s["groups"][0]["containers"][0]["state"] == "Running"
    })
    .await;
    assert!(
        !common::processes_with(&marker).is_empty(),
        "the job's processes run"
    );
    let status = h.wait_done(&id).await;
    assert_eq!(status["runtimeStatus"], "TimedOut", "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("timed out after PT2S")
    );
    let left = no_processes_with(&marker, Duration::from_secs(5)).await;
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert_eq!(h.settled_processes().await, 0);
    assert_eq!(h.logs(&id, "work", "main").await, (200, "started\n".into()));
}

on_both_backends!(a_timeout_kills_the_process_tree_and_ends_timed_out);

async fn completion_by_callback_succeeds_and_stops_the_container(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let marker = format!("berth-callback-marker-{}-{backend:?}", std::process::id());
    let script = format!(
        "echo calling back; curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d '{{\"exitCode\":0}}' \"$BERTH_CALLBACK_URL\"; sleep 600 # {marker}"
    );
    let mut spec = job("callback-1", &script);
    spec["completion"] = json!("callback");
    let id = h.start_deployment(&spec).await;
    let status = h.wait_done(&id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert!(
        no_processes_with(&marker, Duration::from_secs(5))
            .await
            .is_empty()
    );
    assert_eq!(
        h.logs(&id, "work", "main").await,
        (200, "calling back\n".into())
    );
    // The callback stops working once the deployment has ended.
    let d = h.runtime.driver.load(&id).await.unwrap().unwrap();
    let token = h.runtime.driver.keys.token(&d.id, "completed");
    let (code, _) = h
        .post(
            &format!("/api/callbacks/{id}/completed?token={token}"),
            None,
        )
        .await;
    assert_eq!(code, 403);
}

on_both_backends!(completion_by_callback_succeeds_and_stops_the_container);

async fn a_foreign_or_wrong_token_is_refused(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let mut a = job("tok-a", "sleep 600");
    a["completion"] = json!("callback");
    let mut b = job("tok-b", "sleep 600");
    b["completion"] = json!("callback");
    let a = h.start_deployment(&a).await;
    let b = h.start_deployment(&b).await;
    let keys = &h.runtime.driver.keys;
    let a_token = keys.token(&a, "completed");
    for (path, why) in [
        (
            format!("/api/callbacks/{b}/completed?token={a_token}"),
            "another deployment's token",
        ),
        (
            format!("/api/callbacks/{a}/heartbeat?token={a_token}"),
            "another event kind's token",
        ),
        (
            format!("/api/callbacks/{a}/completed?token=forged"),
            "a forged token",
        ),
        (format!("/api/callbacks/{a}/completed"), "no token"),
    ] {
        let (code, body) = h.post(&path, Some(json!({}))).await;
        assert_eq!(code, 403, "{why}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with("token"),
            "{body}"
        );
    }
    let heartbeat = keys.token(&a, "heartbeat");
    assert_eq!(
        h.post(
            &format!("/api/callbacks/{a}/heartbeat?token={heartbeat}"),
            None
        )
        .await
        .0,
        202
    );
    for id in [&a, &b] {
        assert_eq!(
            h.post(
                &format!("/api/deployments/{id}/terminate?reason=test"),
                None
            )
            .await
            .0,
            202
        );
    }
    for id in [&a, &b] {
        assert_eq!(h.wait_done(id).await["runtimeStatus"], "Terminated");
    }
    assert_eq!(h.settled_processes().await, 0);
}

on_both_backends!(a_foreign_or_wrong_token_is_refused);

async fn the_same_spec_twice_is_one_deployment_and_a_different_one_conflicts(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let spec = job("idem-1", "echo once");
    let (first, body) = h.submit(&spec).await;
    assert_eq!(first, 202, "{body}");
    let (second, again) = h.submit(&spec).await;
    assert_eq!(second, 200);
    assert_eq!(again["id"], "idem-1");
    let (conflict, problem) = h.submit(&job("idem-1", "echo twice")).await;
    assert_eq!(conflict, 409);
    assert!(problem["detail"].as_str().unwrap().starts_with("id:"));
    h.wait_done("idem-1").await;
    assert_eq!(h.stats().creates_by_name.get("idem-1-work-1"), Some(&1));
}

on_both_backends!(the_same_spec_twice_is_one_deployment_and_a_different_one_conflicts);

async fn bad_specs_get_400_naming_the_field(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let mut spec = job("bad-1", "true");
    spec["groups"][0]["properties"]["containers"][0]["properties"]["volumeMounts"][0]["name"] =
        json!("nosuchvolume");
    let (code, problem) = h.submit(&spec).await;
    assert_eq!(code, 400);
    assert_eq!(problem["title"], "Invalid deployment spec");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("groups[0].properties.containers[0].properties.volumeMounts[0].name:"),
        "{problem}"
    );
    assert_eq!(
        problem["errors"][0]["field"],
        "groups[0].properties.containers[0].properties.volumeMounts[0].name"
    );
    // A fresh client: the server answers 413 without reading the body and closes the connection.
    let response = reqwest::Client::new()
        .post(format!("{}/api/deployments", h.api))
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = h
        .http
        .get(format!("{}/api/deployments/nope", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let response = h
        .http
        .get(format!("{}/api/deployments?status=Sleeping", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(h.stats().creates_by_name.len(), 0);
}

on_both_backends!(bad_specs_get_400_naming_the_field);
