//! The protocol layer end to end under the Functions-host simulator, with the test-fixture handler
//! process: readiness time, HTTP through the public front (keys, routes, bodies, statuses), log
//! capture, timer ticks and queue deliveries, and every answer judged by the host's rules.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use berth_tests::host::process::{Launch, readiness_times};
use berth_tests::host::{FunctionsHost, HostOptions, HostOutcome, QueueDelivery, repo_root};
use reqwest::Method;
use serde_json::Value;
use time::OffsetDateTime;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_functions-fixture-handler"))
}

fn settings() -> Vec<(String, String)> {
    vec![
        ("BERTH_QUEUE".into(), "berth-steps".into()),
        ("BERTH_SUBMIT_QUEUE".into(), "berth-submit".into()),
    ]
}

async fn start() -> FunctionsHost {
    FunctionsHost::start(HostOptions::new(binary(), settings()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn handler_answers_the_readiness_probe_within_100_ms() {
    let launches = ["0", "0", "0", "0", "2000"].map(|delay| {
        Launch::new(
            binary(),
            &repo_root(),
            vec![("FIXTURE_INIT_DELAY_MS".into(), delay.into())],
        )
    });
    let (times, median) = readiness_times(launches).await.unwrap();
    eprintln!("spawn to first readiness answer: {times:?} (median {median:?})");
    assert!(median < Duration::from_millis(100), "{times:?}");
    // The run whose initialisation takes 2 s was ready long before it.
    assert!(times[4] < Duration::from_millis(1000), "{times:?}");
}

#[tokio::test]
async fn invocations_wait_for_slow_initialisation_instead_of_failing() {
    let mut settings = settings();
    settings.push(("FIXTURE_INIT_DELAY_MS".into(), "300".into()));
    let host = FunctionsHost::start(HostOptions::new(binary(), settings).unwrap())
        .await
        .unwrap();
    let outcome = host.tick("cleanup", false).await.unwrap();
    assert!(outcome.accepted().is_some(), "{outcome:?}");
    host.stop().await;
}

#[tokio::test]
async fn http_requests_go_through_keys_routes_and_the_api_router() {
    let host = start().await;
    let client = reqwest::Client::new();
    let api = host.api_url();
    let key = host.function_key().to_owned();

    // No key, a wrong key: the host answers 401 and never calls the handler.
    let before = host.records().len();
    let r = client
        .get(format!("{api}/deployments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(format!("{api}/deployments"))
        .header("x-functions-key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(host.records().len(), before);

    // Header key, repeated query keys, status passed through inside res.
    let r = host
        .call(Method::GET, "deployments?status=Running&tag=a&tag=b")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-fixture"], "echo");
    assert_eq!(r.headers()["content-type"], "application/json");
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/api/deployments");
    assert_eq!(
        echo["query"],
        serde_json::json!([["status", "Running"], ["tag", "a"], ["tag", "b"]])
    );

    // `code` query key; a 404 from the API is a successful invocation carrying 404.
    let r = client
        .get(format!(
            "{api}/deployments/d-1/history?code={key}&status=404"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let last = host.records().pop().unwrap();
    assert_eq!(last.function, "history");
    assert!(last.outcome.accepted().is_some(), "{:?}", last.outcome);

    // A JSON body arrives intact, with its length.
    let spec = r#"{"id":"transcode-42","mode":"job","groups":[]}"#;
    let r = host
        .request(Method::POST, "deployments")
        .header("content-type", "application/json")
        .body(spec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], spec);
    let front = api.trim_start_matches("http://").trim_end_matches("/api");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "http");
    assert_eq!(echo["headers"]["x-forwarded-host"], front);
    assert_eq!(echo["headers"]["content-length"], spec.len().to_string());
    assert!(echo["headers"].get("x-functions-key").is_none());

    // A caller's own forwarded headers are not the host's word: the host's URL wins.
    let r = host
        .request(Method::GET, "deployments")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "berth.example")
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["headers"]["x-forwarded-proto"], "http");
    assert_eq!(echo["headers"]["x-forwarded-host"], front);

    // Binary bodies travel base64 and arrive as the same bytes.
    let bytes: Vec<u8> = (0..=255u8).collect();
    let r = host
        .request(Method::POST, "deployments")
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["bodyLength"], 256);

    // The callback route is anonymous (the handler checks its token); YAML bodies pass as text.
    let r = client
        .post(format!("{api}/callbacks/d-1/completed?token=t0k"))
        .header("content-type", "application/yaml")
        .body("exitCode: 0\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["path"], "/api/callbacks/d-1/completed");
    assert_eq!(echo["body"], "exitCode: 0\n");

    // Routes and methods not in functions/ are 404 at the host.
    let r = host.call(Method::PUT, "deployments").await;
    assert_eq!(r.status(), 404);
    let r = host.call(Method::GET, "nothing/here").await;
    assert_eq!(r.status(), 404);

    // Every route of the API (README.md, "The HTTP API") reaches its function.
    for (method, path, function) in [
        ("GET", "deployments", "deployments"),
        ("POST", "deployments", "deployments"),
        ("GET", "deployments/d-1", "deployment"),
        ("DELETE", "deployments/d-1", "deployment"),
        ("POST", "deployments/d-1/events/completed", "events"),
        ("GET", "deployments/d-1/events", "raised"),
        ("POST", "deployments/d-1/terminate?reason=x", "terminate"),
        ("GET", "deployments/d-1/logs/g/c", "logs"),
        ("GET", "deployments/d-1/history", "history"),
        ("GET", "deployments/d-1/checkpoint", "checkpoint"),
        ("GET", "schedules", "schedules"),
        ("PUT", "schedules/s-1", "schedule"),
        ("GET", "schedules/s-1", "schedule"),
        ("DELETE", "schedules/s-1", "schedule"),
        ("POST", "schedules/s-1/pause", "schedule-action"),
        ("GET", "templates", "templates"),
        ("PUT", "templates/t-1", "template"),
        ("GET", "templates/t-1?version=2", "template"),
        ("DELETE", "templates/t-1", "template"),
        ("POST", "callbacks/d-1/heartbeat", "callback"),
    ] {
        let r = client
            .request(method.parse().unwrap(), format!("{api}/{path}"))
            .header("x-functions-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method} {path}");
        assert_eq!(
            host.records().pop().unwrap().function,
            function,
            "{method} {path}"
        );
    }

    assert!(host.violations().is_empty(), "{:?}", host.violations());
    host.stop().await;
}

#[tokio::test]
async fn logs_go_to_the_response_and_to_stdout_as_json_lines() {
    let mut host = start().await;
    let r = host.call(Method::GET, "deployments/d-9").await;
    assert_eq!(r.status(), 200);
    let record = host.records().pop().unwrap();
    let logs = &record.outcome.accepted().unwrap().logs;
    assert!(
        logs.iter()
            .any(|l| l.contains("echo api served the request")),
        "captured during the invocation: {logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("GET /api/deployments/d-9 -> 200")),
        "{logs:?}"
    );

    // The same line on stdout as JSON, with the invocation's span; polled with a deadline.
    let what = "the JSON line on stdout";
    let process = &*host.process();
    let line = berth_test_support::eventually(what, Duration::from_secs(5), || async {
        let lines = process.stdout_lines();
        let found = lines
            .iter()
            .find(|l| l.contains("echo api served the request"));
        found.cloned().ok_or_else(|| format!("{lines:?}"))
    })
    .await;
    let json: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["level"], "INFO");
    assert_eq!(json["span"]["function"], "deployment");
    host.stop().await;
}

#[tokio::test]
async fn timer_ticks_run_the_sweep_and_report_past_due() {
    let host = start().await;
    let outcome = host.tick("cleanup", false).await.unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    assert!(
        logs.contains(&"fixture sweep past_due=false".to_owned()),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("past due")), "{logs:?}");
    let outcome = host.tick("cleanup", true).await.unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    assert!(
        logs.iter().any(|l| l.contains("timer is past due")),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"fixture sweep past_due=true".to_owned()),
        "{logs:?}"
    );
    assert!(host.violations().is_empty());
    host.stop().await;
}

fn delivery(text: &str, dequeue_count: u32) -> QueueDelivery {
    let now = OffsetDateTime::now_utc();
    QueueDelivery {
        text: text.to_owned(),
        dequeue_count,
        id: uuid::Uuid::new_v4().to_string(),
        pop_receipt: "AgAAAAMAAAAAAAAA".to_owned(),
        insertion_time: now,
        expiration_time: now + time::Duration::days(7),
        next_visible_time: now + time::Duration::minutes(10),
    }
}

#[tokio::test]
async fn queue_results_map_to_success_retry_and_poison() {
    let mut host = start().await;
    let max = host.app().queues.max_dequeue_count;

    let ok = delivery(r#"{"deployment":"d-1","version":3}"#, 2);
    let outcome = host.deliver("steps", &ok).await.unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    let want = format!("fixture step text={} dequeue_count=2 id={}", ok.text, ok.id);
    assert!(logs.contains(&want), "{logs:?}");

    for (script, count, status, words) in [
        ("fail", 1, 503, "retries it after visibilityTimeout"),
        ("fail", max, 503, "moves it to the poison queue"),
        ("poison", 1, 422, "can never succeed"),
        ("panic", 1, 503, "the step panicked: scripted panic"),
    ] {
        let outcome = host
            .deliver("steps", &delivery(script, count))
            .await
            .unwrap();
        assert!(
            matches!(outcome, HostOutcome::Failed(_)),
            "{script}: {outcome:?}"
        );
        let record = host.records().pop().unwrap();
        assert_eq!(record.status, status, "{script}");
        let body = host
            .invoke_raw(
                "steps",
                bytes::Bytes::from(
                    berth_tests::host::payload::queue_payload(
                        host.app().function("steps").unwrap(),
                        &delivery(script, count),
                        &berth_tests::host::Sys::now("steps"),
                    )
                    .to_string(),
                ),
            )
            .await
            .unwrap()
            .1;
        let logs = body["Logs"].as_array().unwrap();
        assert!(
            logs.iter().any(|l| l.as_str().unwrap().contains(words)),
            "{script}: {logs:?}"
        );
    }
    let until = delivery("fail-until:3", 2);
    assert!(matches!(
        host.deliver("steps", &until).await.unwrap(),
        HostOutcome::Failed(_)
    ));
    let until = QueueDelivery {
        dequeue_count: 3,
        ..until
    };
    assert!(
        host.deliver("steps", &until)
            .await
            .unwrap()
            .accepted()
            .is_some()
    );

    assert!(
        host.process().is_running(),
        "a panicking step does not end the process"
    );
    assert!(host.violations().is_empty(), "{:?}", host.violations());
    host.stop().await;
}

#[tokio::test]
async fn a_crashed_handler_fails_invocations_until_the_host_restarts_it() {
    let mut host = start().await;
    host.kill_handler().await;
    assert!(!host.process().is_running());
    let outcome = host.tick("cleanup", false).await.unwrap();
    let HostOutcome::Failed(reason) = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("HttpRequestException"), "{reason}");
    host.restart().await.unwrap();
    assert!(host.process().is_running());
    assert!(
        host.tick("cleanup", false)
            .await
            .unwrap()
            .accepted()
            .is_some()
    );
    host.stop().await;
}
