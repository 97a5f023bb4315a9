//! The real `handler` binary in Functions mode under the simulated host: it answers the readiness
//! probe before its backends exist, reports a configuration error in every invocation's `Logs`
//! instead of dying, and serves the HTTP API, the `steps` and `cleanup` functions with answers the
//! host accepts.
//!
//! This runs on the SQLite backend, so steps are not delivered by the queue trigger here (the
//! Functions host only polls Azure Storage); `functions_queue.rs` covers delivery on Azurite, and
//! `functions_e2e.rs` runs the engine's end-to-end scenarios there.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use berth_test_support::api::accepted;
use berth_tests::host::process::{Launch, readiness_times, unused_port};
use berth_tests::host::{
    FunctionsHost, HostOptions, HostOutcome, QueueDelivery, repo_root, workspace_binary,
};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

fn handler() -> PathBuf {
    workspace_binary("handler").unwrap()
}

/// A complete configuration on SQLite; ARM points at a closed port (no step runs here).
fn settings(dir: &std::path::Path) -> Vec<(String, String)> {
    let arm = format!("http://127.0.0.1:{}", unused_port().unwrap());
    [
        ("AzureWebJobsStorage", ""),
        ("BERTH_QUEUE", "berth-steps"),
        ("BERTH_SUBMIT_QUEUE", "berth-submit"),
        ("BERTH_SQLITE_PATH", &dir.join("berth.db").to_string_lossy()),
        ("BERTH_ARM_ENDPOINT", &arm),
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000",
        ),
        ("BERTH_RESOURCE_GROUP", "berth-test"),
        ("BERTH_LOCATION", "westeurope"),
        (
            "BERTH_SECRETS_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        ("BERTH_API_KEY", ""),
        ("BERTH_PUBLIC_URL", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test]
async fn the_real_handler_is_ready_within_100_ms_before_its_backends() {
    let dir = tempfile::tempdir().unwrap();
    let launches = (0..5).map(|_| Launch::new(&handler(), &repo_root(), settings(dir.path())));
    let (times, median) = readiness_times(launches).await.unwrap();
    eprintln!("handler: spawn to first readiness answer {times:?} (median {median:?})");
    assert!(median < Duration::from_millis(100), "{times:?}");
}

#[tokio::test]
async fn a_configuration_error_fails_invocations_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path());
    settings.retain(|(k, _)| k != "BERTH_SECRETS_KEY");
    settings.push(("BERTH_SECRETS_KEY".into(), String::new()));
    let mut host = FunctionsHost::start(HostOptions::new(&handler(), settings).unwrap())
        .await
        .unwrap();
    let outcome = host.tick("cleanup", false).await.unwrap();
    assert!(matches!(outcome, HostOutcome::Failed(_)), "{outcome:?}");
    let (status, body, _) = host
        .invoke_raw(
            "cleanup",
            bytes::Bytes::from(r#"{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}"#),
        )
        .await
        .unwrap();
    assert_eq!(status, 503);
    let logs = body["Logs"].to_string();
    assert!(logs.contains("BERTH_SECRETS_KEY"), "{logs}");
    assert!(
        host.process().is_running(),
        "the handler stays up for the host"
    );
    assert!(host.violations().is_empty(), "{:?}", host.violations());
    host.stop().await;
}

fn spec(id: &str) -> Value {
    json!({
        "id": id,
        "mode": "job",
        "groups": [{ "name": "work", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["true"],
                "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }],
            "restartPolicy": "Never" } }],
        "timeout": "PT10M",
    })
}

#[tokio::test]
async fn the_http_api_and_triggers_work_through_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let host = FunctionsHost::start(HostOptions::new(&handler(), settings(dir.path())).unwrap())
        .await
        .unwrap();
    let api = host.api_url();
    let key = host.function_key().to_owned();
    let client = reqwest::Client::new();

    // The host enforces the function key before the handler sees anything.
    let r = client
        .get(format!("{api}/deployments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Start a deployment: 202, Location and the management URLs on the public front's address.
    let (location, body) = accepted(
        host.request(Method::POST, "deployments")
            .json(&spec("fn-e2e-1")),
    )
    .await;
    assert_eq!(body["id"], "fn-e2e-1");
    let status_url = body["statusQueryGetUri"].as_str().unwrap().to_owned();
    assert_eq!(status_url, format!("{api}/deployments/fn-e2e-1"));
    assert_eq!(location, status_url);

    // Its status, through the `deployment` function.
    let r = client
        .get(&status_url)
        .header("x-functions-key", &key)
        .send()
        .await
        .unwrap();
    // ARM is unreachable here, so it never ends: 202, the polling contract's "not yet".
    assert_eq!(r.status(), 202);
    assert!(r.headers().contains_key("retry-after"));
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["id"], "fn-e2e-1");
    assert!(status["runtimeStatus"].is_string(), "{status}");
    assert_eq!(host.records().pop().unwrap().function, "deployment");

    // The same spec again is the same deployment; a different one is 409.
    let r = host
        .request(Method::POST, "deployments")
        .json(&spec("fn-e2e-1"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let mut changed = spec("fn-e2e-1");
    changed["timeout"] = json!("PT20M");
    let r = client
        .post(format!("{api}/deployments?code={key}"))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // API errors pass through as the API's problem documents: an invocation that succeeded.
    let r = host.call(Method::GET, "deployments/no-such-one").await;
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    let mut bad = spec("fn-e2e-2");
    bad["mode"] = json!("batch");
    let r = host
        .request(Method::POST, "deployments")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("mode"),
        "{problem}"
    );

    // The list, newest first.
    let r = host.call(Method::GET, "deployments?top=10").await;
    assert_eq!(r.status(), 200);
    let list = r.text().await.unwrap();
    assert!(list.contains("fn-e2e-1"), "{list}");

    // `steps`: a message for a purged deployment completes and is dropped; garbage is poison.
    let now = OffsetDateTime::now_utc();
    let message = |text: &str| QueueDelivery {
        text: text.to_owned(),
        dequeue_count: 1,
        id: uuid::Uuid::new_v4().to_string(),
        pop_receipt: "p".into(),
        insertion_time: now,
        expiration_time: now + time::Duration::days(7),
        next_visible_time: now + time::Duration::minutes(10),
    };
    let outcome = host
        .deliver("steps", &message(r#"{"d":"purged-long-ago","s":1}"#))
        .await
        .unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    assert!(logs.iter().any(|l| l.contains("purged")), "{logs:?}");
    let outcome = host.deliver("steps", &message("not a step")).await.unwrap();
    assert!(matches!(outcome, HostOutcome::Failed(_)), "{outcome:?}");
    assert_eq!(host.records().pop().unwrap().status, 422);

    // `cleanup`: the sweep runs and reports (ARM is unreachable here, which it counts as errors).
    let outcome = host.tick("cleanup", true).await.unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    assert!(
        logs.iter().any(|l| l.contains("timer is past due")),
        "{logs:?}"
    );
    assert!(logs.iter().any(|l| l.starts_with("sweep:")), "{logs:?}");

    assert!(host.violations().is_empty(), "{:?}", host.violations());
    host.stop().await;
}
