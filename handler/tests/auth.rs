//! Who may call what: the API key (`x-functions-key` or `?code=`) on every management route, the
//! callback token instead of it on callbacks, `handler serve` refusing to start without a key,
//! bounded event bodies, and names checked before they can reach storage or an ARM URL.
//!
//! The callback token's scope (deployment, event kind, until the deployment ends) is pinned in
//! `e2e_jobs.rs` on both backends; the spec's own names in `spec_errors.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use berth::crypto::SecretsKey;
use berth_test_support::api::accepted;
use common::{Harness, Options, job};
use reqwest::Method;
use serde_json::{Value, json};

const KEY: &str = "auth-test-key-5b9e2d";

async fn keyed() -> Harness {
    Harness::with(Options {
        settings: vec![("BERTH_API_KEY", KEY.into())],
        ..Options::default()
    })
    .await
}

/// Sends `method path` with an optional key header; returns (status, problem or body).
async fn call(h: &Harness, method: Method, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = h.http.request(method, format!("{}{path}", h.api));
    if let Some(key) = key {
        request = request.header("x-functions-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Submits `spec` with the API key in the header; returns the status.
async fn submit(h: &Harness, spec: &Value) -> u16 {
    let request = h.http.post(format!("{}/api/deployments", h.api));
    let response = request.header("x-functions-key", KEY).json(spec);
    response.send().await.unwrap().status().as_u16()
}

/// Every management route, with a deployment that exists.
fn keyed_routes(id: &str) -> Vec<(Method, String)> {
    vec![
        (Method::GET, "/api/deployments".into()),
        (Method::POST, "/api/deployments".into()),
        (Method::GET, format!("/api/deployments/{id}")),
        (Method::DELETE, format!("/api/deployments/{id}")),
        (
            Method::POST,
            format!("/api/deployments/{id}/events/teardown"),
        ),
        (Method::POST, format!("/api/deployments/{id}/terminate")),
        (Method::GET, format!("/api/deployments/{id}/logs/work/main")),
        (Method::GET, format!("/api/deployments/{id}/history")),
        (Method::GET, format!("/api/deployments/{id}/checkpoint")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_management_route_wants_the_api_key_in_the_header_or_the_code_query() {
    let h = keyed().await;
    let spec = job("auth-1", "sleep 600");
    assert_eq!(submit(&h, &spec).await, 202);

    let longer = format!("{KEY}x");
    let upper = KEY.to_uppercase();
    let wrong = [
        None,
        Some(""),
        Some("wrong"),
        Some(&KEY[..KEY.len() - 1]),
        Some(longer.as_str()),
        Some(upper.as_str()),
    ];
    for (method, path) in keyed_routes("auth-1") {
        for key in wrong {
            let (code, problem) = call(&h, method.clone(), &path, key).await;
            assert_eq!(code, 401, "{method} {path} with {key:?}: {problem}");
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("x-functions-key:"),
                "{problem}"
            );
            assert!(!problem.to_string().contains(KEY), "the key is not echoed");
        }
        let (code, _) = call(&h, method.clone(), &format!("{path}?code=wrong"), None).await;
        assert_eq!(code, 401, "{method} {path}?code=wrong");
    }
    let created: Vec<String> = h.stats().creates_by_name.into_keys().collect();
    assert!(
        created.len() == 1 && common::scenarios::is_named(&created[0], "auth-1-work-1-"),
        "no refused POST created anything: {created:?}"
    );

    // The right key passes, as a header or as `code`.
    let (code, status) = call(&h, Method::GET, "/api/deployments/auth-1", Some(KEY)).await;
    assert_eq!(code, 202, "still running: {status}");
    assert_eq!(status["id"], "auth-1");
    let (code, list) = call(
        &h,
        Method::GET,
        &format!("/api/deployments?code={KEY}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["deployments"][0]["id"], "auth-1");
    let (code, _) = call(
        &h,
        Method::POST,
        &format!("/api/deployments/auth-1/terminate?reason=test&code={KEY}"),
        None,
    )
    .await;
    assert_eq!(code, 202);
    assert_eq!(wait_done_keyed(&h, "auth-1").await, "Terminated");
    assert_eq!(h.settled_processes().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_need_their_token_not_the_api_key() {
    let h = keyed().await;
    let mut spec = job("auth-cb", "sleep 600");
    spec["completion"] = json!("callback");
    let response = h
        .http
        .post(format!("{}/api/deployments?code={KEY}", h.api))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);

    // The API key is no callback token.
    let (code, problem) = call(
        &h,
        Method::POST,
        &format!("/api/callbacks/auth-cb/completed?token={KEY}"),
        Some(KEY),
    )
    .await;
    assert_eq!(code, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().starts_with("token:"));

    // A container has no API key: its token alone is enough.
    let token = h.token("auth-cb", "completed").await;
    let response = h
        .http
        .post(format!(
            "{}/api/callbacks/auth-cb/completed?token={token}",
            h.api
        ))
        .json(&json!({ "exitCode": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(wait_done_keyed(&h, "auth-cb").await, "Succeeded");
    assert_eq!(h.settled_processes().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_and_callback_bodies_are_bounded() {
    let h = Harness::start().await;
    let big = vec![b' '; berth::api::MAX_EVENT_PAYLOAD + 1];
    // Refused before any token or deployment matters.
    let token = "any-token";
    for path in [
        "/api/deployments/auth-big/events/completed".to_owned(),
        format!("/api/callbacks/auth-big/completed?token={token}"),
    ] {
        // A fresh client each time: the server answers 413 without reading the whole body.
        let response = reqwest::Client::new()
            .post(format!("{}{path}", h.api))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 413, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().starts_with("body:"),
            "{problem}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_paths_are_checked_before_they_are_used() {
    let h = Harness::start().await;
    // Names are checked before any token or deployment matters.
    let token = "any-token";
    let cases = [
        (Method::GET, "/api/deployments/Upper".to_owned(), "id:"),
        (Method::GET, "/api/deployments/a..b".into(), "id:"),
        (Method::GET, "/api/deployments/a%2Fb".into(), "id:"),
        (
            Method::GET,
            "/api/deployments/a%3Fapi-version=1".into(),
            "id:",
        ),
        (
            Method::GET,
            format!("/api/deployments/{}", "a".repeat(41)),
            "id:",
        ),
        (Method::DELETE, "/api/deployments/a_b".into(), "id:"),
        (Method::GET, "/api/deployments/a%20b/history".into(), "id:"),
        (
            Method::GET,
            "/api/deployments/..%2F..%2Fetc/checkpoint".into(),
            "id:",
        ),
        (
            Method::GET,
            "/api/deployments/ok/history?continuationToken=h1%2F..".into(),
            "continuationToken:",
        ),
        (Method::POST, "/api/deployments/-a/terminate".into(), "id:"),
        (
            Method::POST,
            "/api/deployments/ok/events/a%2Fb".into(),
            "name:",
        ),
        (
            Method::POST,
            format!("/api/deployments/ok/events/{}", "e".repeat(65)),
            "name:",
        ),
        (
            Method::GET,
            "/api/deployments/ok/logs/Work/main".into(),
            "group:",
        ),
        (
            Method::GET,
            "/api/deployments/ok/logs/work/main.".into(),
            "container:",
        ),
        (
            Method::POST,
            format!("/api/callbacks/a%2F..%2Fb/completed?token={token}"),
            "id:",
        ),
    ];
    for (method, path, field) in cases {
        let (code, problem) = call(&h, method.clone(), &path, None).await;
        assert_eq!(code, 400, "{method} {path}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{method} {path}: {problem}"
        );
    }
    assert!(
        h.stats().requests.is_empty(),
        "no ARM call was made: {:?}",
        h.stats().requests
    );
}

#[test]
fn serve_refuses_to_start_without_an_api_key() {
    let dir = tempfile::tempdir().unwrap();
    for key in [None, Some("")] {
        let mut command = serve_command(dir.path());
        command.env("BERTH_PUBLIC_URL", "https://berth.example.com");
        if let Some(key) = key {
            command.env("BERTH_API_KEY", key);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "serve started with key {key:?}");
        assert!(
            stderr.contains("BERTH_API_KEY: required by `handler serve`"),
            "{stderr}"
        );
        assert!(
            !dir.path().join("berth.db").exists(),
            "it stopped before opening storage"
        );
    }
}

/// `handler serve` on SQLite in `dir` with ARM nowhere and a fresh secrets key, without
/// `BERTH_PUBLIC_URL` (the tests set what they try).
fn serve_command(dir: &std::path::Path) -> Command {
    let (mut command, _) = common::serve_command();
    command
        .env_remove("BERTH_PUBLIC_URL")
        .env("BERTH_SQLITE_PATH", dir.join("berth.db"))
        .env("BERTH_ARM_ENDPOINT", "http://127.0.0.1:9")
        .env("BERTH_SUBSCRIPTION_ID", common::scenarios::SUBSCRIPTION)
        .env("BERTH_RESOURCE_GROUP", "auth")
        .env("BERTH_LOCATION", "local")
        .env("BERTH_SECRETS_KEY", SecretsKey::generate().to_base64())
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Hole 7 of SECURITY.md: without `BERTH_PUBLIC_URL`, `serve` built callback URLs (with their
/// tokens) from whatever `Host` or `X-Forwarded-Host` a caller sent. It now refuses to start
/// without one, and refuses one that is not a plain http(s) URL.
#[test]
fn serve_refuses_to_start_without_a_valid_public_url() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        None,
        Some(""),
        Some("evil.example"),
        Some("https://u:p@evil.example"),
        Some("gopher://x"),
    ] {
        let mut command = serve_command(dir.path());
        command.env("BERTH_API_KEY", KEY);
        if let Some(url) = url {
            command.env("BERTH_PUBLIC_URL", url);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "serve started with {url:?}");
        assert!(stderr.contains("BERTH_PUBLIC_URL"), "{url:?}: {stderr}");
        assert!(!dir.path().join("berth.db").exists(), "{url:?}");
    }
}

/// A caller's `Host`, `X-Forwarded-Host` and `X-Forwarded-Proto` never reach the URLs Berth hands
/// out: the management URLs (and the callback base stored for the containers) are the public
/// URL's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_do_not_choose_the_urls_berth_hands_out() {
    let h = keyed().await;
    let (location, body) = accepted(
        reqwest::Client::new()
            .post(format!("{}/api/deployments", h.api))
            .header("x-functions-key", KEY)
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "host=evil.example;proto=https")
            .json(&serde_json::json!({"id": "fwd", "groups": [{"name": "g", "properties": {
                "restartPolicy": "Never", "osType": "Linux", "containers": [{"name": "c", "properties": {
                "image": "busybox", "command": ["sleep", "60"],
                "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}]}}]})),
    )
    .await;
    assert_eq!(location, format!("{}/api/deployments/fwd", h.api));
    assert!(!body.to_string().contains("evil.example"), "{body}");
    let d = h.runtime.driver.load("fwd").await.unwrap().unwrap();
    assert_eq!(
        d.callback_base, h.api,
        "containers call back to the public URL"
    );
    call(
        &h,
        Method::POST,
        "/api/deployments/fwd/terminate",
        Some(KEY),
    )
    .await;
    assert_eq!(wait_done_keyed(&h, "fwd").await, "Terminated");
}

/// Waits until the deployment is done, asking with the API key; returns its runtime status.
async fn wait_done_keyed(h: &Harness, id: &str) -> String {
    let path = format!("/api/deployments/{id}");
    let done = std::time::Duration::from_secs(60);
    let status = common::eventually(&format!("{id} to be done"), done, || async {
        let (_, status) = call(h, Method::GET, &path, Some(KEY)).await;
        if status["phase"] == "Done" {
            Ok(status)
        } else {
            Err(status)
        }
    })
    .await;
    status["runtimeStatus"].as_str().unwrap().to_owned()
}

#[test]
fn every_http_function_but_the_callback_wants_a_function_key() {
    use berth::functions::table::{FunctionTable, Trigger};
    let table = FunctionTable::embedded().unwrap();
    let mut http = 0;
    for function in table.functions() {
        if let Trigger::Http { auth_level, .. } = &function.trigger {
            http += 1;
            let want = if function.name == "callback" {
                "anonymous"
            } else {
                "function"
            };
            assert_eq!(
                auth_level, want,
                "functions/{}/function.json",
                function.name
            );
        }
    }
    assert_eq!(http, 16, "the HTTP functions of functions/");
}

/// Hole 8 of SECURITY.md: raised events were kept (the oldest silently dropped past 100) in the
/// checkpoint, which is rewritten on every event; 600 events of 64 KB grew one to 6.5 MB. The
/// inbox now holds at most 100 events and 256 KB of payloads, and refuses more with 429 and
/// `Retry-After`, so the checkpoint stays small and nothing is dropped unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_storm_is_refused_once_the_inbox_is_full() {
    let h = keyed().await;
    let spec = job("storm", "sleep 600");
    assert_eq!(submit(&h, &spec).await, 202);
    let raise = |name: String, payload: Value| {
        h.http
            .post(format!("{}/api/deployments/storm/events/{name}", h.api))
            .header("x-functions-key", KEY)
            .json(&payload)
            .send()
    };
    // Payloads of about 60 KB: the bytes run out after four.
    let big = serde_json::json!({ "blob": "x".repeat(60 * 1024) });
    let mut accepted = 0;
    let refused = loop {
        let response = raise(format!("big-{accepted}"), big.clone()).await.unwrap();
        if response.status() != 202 {
            break response;
        }
        accepted += 1;
        assert!(accepted <= 5, "the byte cap did not hold");
    };
    assert_eq!(accepted, 4);
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().starts_with("name:"),
        "{problem}"
    );
    // Small events run into the count cap; events Berth acts on are never refused.
    let mut small = 0;
    while raise(format!("small-{small}"), serde_json::json!({"n": small}))
        .await
        .unwrap()
        .status()
        == 202
    {
        small += 1;
        assert!(small <= 100, "the count cap did not hold");
    }
    assert_eq!(accepted + small, berth::engine::MAX_INBOX);
    let heartbeat = raise("heartbeat".into(), Value::Null).await.unwrap();
    assert_eq!(heartbeat.status(), 202);
    let d = h.runtime.driver.load("storm").await.unwrap().unwrap();
    let size = serde_json::to_vec(&d).unwrap().len();
    assert!(size < 400 * 1024, "checkpoint of {size} bytes");
    assert_eq!(
        d.inbox.len(),
        berth::engine::MAX_INBOX,
        "nothing was dropped"
    );
    assert!(
        d.inbox.iter().any(|e| e.name == "big-0"),
        "the first event is kept"
    );
    call(
        &h,
        Method::POST,
        "/api/deployments/storm/terminate",
        Some(KEY),
    )
    .await;
    assert_eq!(wait_done_keyed(&h, "storm").await, "Terminated");
}

/// Hole 6 of SECURITY.md: tokens were HMAC(id, kind) under `BERTH_SECRETS_KEY`, so after a purge
/// the old deployment's token completed a new one under the same id, and anyone with the secrets
/// key could make tokens for any deployment. Tokens now derive from a random key of each
/// deployment's own, kept sealed in its checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_or_forged_token_does_not_complete_a_new_deployment_under_the_same_id() {
    let h = keyed().await;
    let mut spec = job("reused", "sleep 600");
    spec["completion"] = serde_json::json!("callback");
    assert_eq!(submit(&h, &spec).await, 202);
    let old = h.token("reused", "completed").await;
    call(
        &h,
        Method::POST,
        "/api/deployments/reused/terminate",
        Some(KEY),
    )
    .await;
    assert_eq!(wait_done_keyed(&h, "reused").await, "Terminated");
    let (code, _) = call(&h, Method::DELETE, "/api/deployments/reused", Some(KEY)).await;
    assert_eq!(code, 200);
    assert_eq!(
        submit(&h, &spec).await,
        202,
        "a new deployment under the purged id"
    );
    let new = h.token("reused", "completed").await;
    assert_ne!(old, new);
    // What an attacker holding BERTH_SECRETS_KEY alone can compute.
    let forged = h
        .runtime
        .driver
        .callback_token(None, "reused", "completed")
        .unwrap();
    let complete = |token: String| {
        h.http
            .post(format!(
                "{}/api/callbacks/reused/completed?token={token}",
                h.api
            ))
            .json(&serde_json::json!({ "exitCode": 0 }))
            .send()
    };
    for (token, what) in [
        (old, "the purged deployment's token"),
        (forged, "a forged token"),
    ] {
        let response = complete(token).await.unwrap();
        assert_eq!(response.status(), 403, "{what}");
    }
    let (_, status) = call(&h, Method::GET, "/api/deployments/reused", Some(KEY)).await;
    // Refused tokens changed nothing: the new deployment has not ended (it may not have been
    // created yet on a busy machine).
    assert!(
        matches!(
            status["runtimeStatus"].as_str(),
            Some("Pending" | "Running")
        ),
        "{status}"
    );
    assert!(status["phase"] != "Done", "{status}");
    assert_eq!(complete(new).await.unwrap().status(), 202);
    assert_eq!(wait_done_keyed(&h, "reused").await, "Succeeded");
}
