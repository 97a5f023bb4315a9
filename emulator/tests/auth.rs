//! The bearer token under attack, end to end: a client on the host and a container process (which
//! shares the host's network) try to create and delete groups and to change the emulator's faults
//! without the token or with a wrong one. Each try is ARM's `401` and changes nothing; the same
//! calls with the token work.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use emulator::Token;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789";

/// An emulator that requires `TOKEN`, whose harness client sends it.
async fn guarded() -> Harness {
    let mut harness = Harness::start(|config| config.token = Token::new(TOKEN)).await;
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    harness.client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    harness
}

/// A call with the given `Authorization` header (none for `None`): its status and body.
async fn attempt(
    method: Method,
    url: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        challenge,
    )
}

fn sleeper() -> Value {
    group_body(
        "Never",
        json!([shell("main", "sleep 1000", json!([]), json!([]))]),
        json!([]),
    )
}

#[tokio::test]
async fn without_the_token_a_client_is_refused_like_arm_and_changes_nothing() {
    let harness = guarded().await;
    harness.create("victim", &sleeper()).await;
    let planted = format!("{}?api-version={API}", harness.group_url("planted"));
    let victim = format!("{}?api-version={API}", harness.group_url("victim"));
    let stats = format!("{}/_emulator/stats", harness.base);
    let faults = format!("{}/_emulator/faults", harness.base);
    let wrong = format!("Bearer {TOKEN}x");
    let cases = [
        (None, "AuthenticationFailed"),
        (Some(TOKEN), "AuthenticationFailed"),
        (Some("Basic dGVzdA=="), "AuthenticationFailed"),
        (Some(wrong.as_str()), "InvalidAuthenticationToken"),
    ];
    for (authorization, code) in cases {
        let calls = [
            (Method::PUT, &planted, Some(sleeper())),
            (Method::DELETE, &victim, None),
            (
                Method::POST,
                &format!("{}/stop?api-version={API}", harness.group_url("victim")),
                None,
            ),
            (Method::GET, &harness.groups_url(), None),
            (Method::GET, &stats, None),
            (Method::PUT, &faults, Some(json!({"errorRate": 1.0}))),
        ];
        for (method, url, body) in calls {
            let (status, answer, challenge) =
                attempt(method.clone(), url, authorization, body.as_ref()).await;
            assert_eq!(
                status, 401,
                "{method} {url} with {authorization:?}: {answer}"
            );
            assert_eq!(answer["error"]["code"], code, "{answer}");
            assert!(answer["error"]["message"].is_string(), "{answer}");
            assert!(
                challenge.is_some_and(|value| value.starts_with("Bearer ")),
                "no WWW-Authenticate challenge"
            );
        }
    }
    // Nothing changed: no planted group, the victim runs, no fault injected.
    assert_eq!(harness.get("planted").await.0, 404);
    let (status, victim_now) = harness.get("victim").await;
    assert_eq!(status, 200);
    assert_ne!(group_state(&victim_now), "Stopped");
    let (_, faults_now, _) =
        attempt(Method::GET, &faults, Some(&format!("Bearer {TOKEN}")), None).await;
    assert_eq!(faults_now["errorRate"], 0.0, "{faults_now}");
    // With the token, the same calls work.
    harness.create("planted", &sleeper()).await;
    assert_eq!(harness.delete("victim").await.0, 200);
    assert_eq!(harness.stats().await["liveProcesses"], 1);
    harness.stop().await;
}

#[tokio::test]
async fn a_container_on_the_host_network_cannot_drive_the_emulator_without_the_token() {
    let harness = guarded().await;
    harness.create("victim", &sleeper()).await;
    let planted = json!({
        "location": "westus",
        "properties": {"osType": "Linux", "restartPolicy": "Never", "containers": [{"name": "main", "properties": {
            "image": "busybox", "command": ["/bin/true"],
            "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}}
        }}]}
    });
    // Each round prints its two statuses: no bearer token, a wrong one, then the right one.
    let script = r#"
        for auth in none "Bearer wrong-$TOKEN" "Bearer $TOKEN"; do
            put=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: $auth" \
                -H 'Content-Type: application/json' --data "$BODY" "$GROUPS/planted?api-version=$API")
            delete=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: $auth" \
                "$GROUPS/victim?api-version=$API")
            echo "$put $delete"
        done
    "#;
    let attacker = group_body(
        "Never",
        json!([shell(
            "attacker",
            script,
            json!([
                {"name": "GROUPS", "value": harness.groups_url()},
                {"name": "API", "value": API},
                {"name": "BODY", "value": planted.to_string()},
                {"name": "TOKEN", "secureValue": TOKEN}
            ]),
            json!([])
        )]),
        json!([]),
    );
    // The first two rounds are refused; the last one, with the token, works, and its answers
    // (201 Created, not 200 Updated; 200 Deleted, not 204 Absent) show the others changed nothing.
    let text = harness
        .run_to_success("attacker", &attacker, "attacker")
        .await;
    let rounds: Vec<&str> = text.lines().collect();
    assert_eq!(rounds, ["401 401", "401 401", "201 200"], "{text}");
    assert_eq!(harness.get("victim").await.0, 404);
    assert_eq!(harness.get("planted").await.0, 200);
    harness.stop().await;
}
