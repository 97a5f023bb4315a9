//! Outcomes published to an Event Grid topic (`BERTH_EVENTGRID_TOPIC`), end to end on the real
//! `handler dev` binary: the topic and the managed identity endpoint (App Service's protocol,
//! `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, as a Function App has them) are an axum server on
//! 127.0.0.1, and the token comes through the official `azure_identity` crate. The topic refuses
//! the first publish: Berth publishes the same event again, with a token for Event Grid, and
//! nothing secret in it. A topic Berth must not call is refused at start, naming the setting.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use berth_test_support::dev::Dev;
use berth_test_support::eventually;
use serde_json::{Value, json};

/// What the topic and the identity endpoint saw.
#[derive(Default)]
struct Azure {
    /// Each publish: its headers and its body.
    published: Mutex<Vec<(HeaderMap, Value)>>,
    /// Each token request's `resource`, and whether it carried the identity header's secret.
    tokens: Mutex<Vec<(String, bool)>>,
}

const IDENTITY_SECRET: &str = "identity-header-secret";
const TOKEN: &str = "eg-token-from-the-identity-endpoint";

async fn token(
    State(azure): State<Arc<Azure>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, axum::Json<Value>) {
    let resource = query.get("resource").cloned().unwrap_or_default();
    let secret = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    azure
        .tokens
        .lock()
        .unwrap()
        .push((resource.clone(), secret == Some(IDENTITY_SECRET)));
    if secret != Some(IDENTITY_SECRET) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
    }
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let body = json!({ "access_token": TOKEN, "expires_on": expires.to_string(),
        "resource": resource, "token_type": "Bearer" });
    (StatusCode::OK, axum::Json(body))
}

async fn publish(State(azure): State<Arc<Azure>>, headers: HeaderMap, body: String) -> StatusCode {
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut published = azure.published.lock().unwrap();
    published.push((headers, event));
    // The first publish fails as a busy topic does; the rest are taken.
    match published.len() {
        1 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    }
}

async fn serve(azure: Arc<Azure>) -> String {
    let app = axum::Router::new()
        .route("/msi/token", get(token))
        .route("/api/events", post(publish))
        .with_state(azure);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    origin
}

fn handler() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_handler"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_outcome_is_published_with_the_identity_token_and_retried_under_one_id() {
    let azure = Arc::new(Azure::default());
    let origin = serve(azure.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("BERTH_EVENTGRID_TOPIC", format!("{origin}/api/events")),
        ("IDENTITY_ENDPOINT", format!("{origin}/msi/token")),
        ("IDENTITY_HEADER", IDENTITY_SECRET.to_owned()),
    ];
    let dev = Dev::start(handler(), &dir.path().join("data"), &[], &envs);
    let api = dev.api();
    let spec = json!({
        "id": "published",
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["/bin/sh", "-c", "echo done"],
            "environmentVariables": [{ "name": "PASSWORD", "secureValue": "hunter2-sealed" }],
            "resources": { "requests": { "cpu": 0.2, "memoryInGB": 0.2 } } } }] } }]
    });
    let (code, answer) = api.submit(&spec).await.unwrap();
    assert_eq!(code, 202, "{answer}");
    assert!(
        answer.get("notifySecret").is_none(),
        "Event Grid needs no signing key: {answer}"
    );

    let status = eventually(
        "the deployment to be Done",
        Duration::from_secs(60),
        || async {
            match api.status("published").await {
                Ok((_, status)) if status["phase"] == "Done" => Ok(status),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    let id = &status["notifications"][0]["id"];
    assert_eq!(
        status["notifications"],
        json!([{ "attempts": 2, "eventGrid": true, "id": id,
                 "lastResult": "200", "on": "Succeeded", "state": "Delivered" }]),
        "{status}"
    );

    let published = azure.published.lock().unwrap().clone();
    assert_eq!(published.len(), 2, "a refused publish is tried again, once");
    for (headers, event) in &published {
        assert_eq!(headers["authorization"], format!("Bearer {TOKEN}").as_str());
        assert_eq!(
            headers["content-type"],
            "application/cloudevents+json; charset=utf-8"
        );
        assert_eq!(
            (&event["specversion"], &event["type"], &event["source"]),
            (
                &json!("1.0"),
                &json!("berth.deployment.succeeded"),
                &json!("/berth/deployments/published")
            )
        );
        assert_eq!((&event["subject"], &event["id"]), (&json!("published"), id));
        assert_eq!(event["data"]["status"], "Succeeded");
        let text = event.to_string();
        assert!(!text.contains("hunter2"), "no secret in an event: {text}");
    }
    let tokens = azure.tokens.lock().unwrap().clone();
    assert!(!tokens.is_empty());
    assert!(
        tokens
            .iter()
            .all(|(resource, secret)| resource == "https://eventgrid.azure.net" && *secret),
        "{tokens:?}"
    );

    let request = api.request(reqwest::Method::GET, "/deployments/published/history");
    let (_, history) = berth_test_support::api::send(request).await.unwrap();
    let notes: Vec<String> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"].as_str().unwrap().starts_with("Notify"))
        .map(|e| format!("{} {}", e["eventType"], e["detail"]))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains("NotifyFailed") && notes[0].contains("to Event Grid: 503"),
        "{notes:?}"
    );
    assert!(
        notes[1].contains("NotifySent") && notes[1].contains("to Event Grid: 200"),
        "{notes:?}"
    );
}

#[test]
fn a_topic_berth_must_not_call_is_refused_at_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for topic in [
        "http://10.0.0.4/api/events",
        "https://user:pass@topic.westeurope-1.eventgrid.azure.net/api/events",
        "https://topic.westeurope-1.eventgrid.azure.net/api/events?aeg-sas-key=abc",
        "file:///etc/passwd",
    ] {
        let output = std::process::Command::new(handler())
            .args(["dev", "--port", "0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("BERTH_EVENTGRID_TOPIC", topic)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{topic}: started");
        assert!(said.contains("BERTH_EVENTGRID_TOPIC"), "{topic}: {said}");
        assert!(
            !said.contains("pass@") && !said.contains("abc"),
            "{topic}: {said}"
        );
    }
}
