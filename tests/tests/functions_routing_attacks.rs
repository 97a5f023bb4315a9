//! Security: in Functions mode each HTTP function serves its own route and no other.
//!
//! The attack (hole 1 of SECURITY.md): the host invokes the anonymous `callback` function for
//! `POST /api/callbacks/%252e%252e/deployments`, because its route template matches one decoded
//! segment, and hands over `Data.req.Url` with `%2e%2e` in it. A handler that routes by that URL's
//! parsed path reads `..` and serves `POST /api/deployments`: a deployment started without a key.
//!
//! These tests run the real `handler` in Functions mode (SQLite in a temporary folder) behind the
//! simulated host, whose front decodes paths as Kestrel does, and send every encoded traversal
//! through the anonymous route; then they invoke functions directly with a `Url` that disagrees
//! with their `Params`, as a confused or hostile front could.
#![allow(clippy::unwrap_used)]

use berth_test_support::api::accepted;
use berth_tests::host::{FunctionsHost, HostOptions, workspace_binary};
use bytes::Bytes;
use reqwest::Method;
use serde_json::{Value, json};

/// The real handler in Functions mode on SQLite; ARM points nowhere, because nothing here may
/// ever get as far as creating a container group.
async fn start(dir: &std::path::Path) -> FunctionsHost {
    start_with(dir, Some("http://127.0.0.1:1")).await
}

/// [`start`], with `BERTH_PUBLIC_URL` as given (unset when `None`).
async fn start_with(dir: &std::path::Path, public_url: Option<&str>) -> FunctionsHost {
    let mut settings: Vec<(String, String)> = [
        (
            "BERTH_SQLITE_PATH",
            dir.join("berth.db").display().to_string(),
        ),
        ("BERTH_QUEUE", "berth-steps".to_owned()),
        ("BERTH_SUBMIT_QUEUE", "berth-submit".to_owned()),
        ("BERTH_ARM_ENDPOINT", "http://127.0.0.1:9".to_owned()),
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000".to_owned(),
        ),
        ("BERTH_RESOURCE_GROUP", "rg".to_owned()),
        ("BERTH_LOCATION", "local".to_owned()),
        (
            "BERTH_SECRETS_KEY",
            berth::crypto::SecretsKey::generate().to_base64(),
        ),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(url) = public_url {
        settings.push(("BERTH_PUBLIC_URL".to_owned(), url.to_owned()));
    }
    let options = HostOptions::new(&workspace_binary("handler").unwrap(), settings).unwrap();
    FunctionsHost::start(options).await.unwrap()
}

fn spec(id: &str) -> Value {
    json!({
        "id": id,
        "groups": [{"name": "g", "properties": {"restartPolicy": "Never", "osType": "Linux",
            "containers": [{"name": "c", "properties": {"image": "busybox",
                "command": ["true"], "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}]}}]
    })
}

/// The deployments Berth knows, read with the function key.
async fn deployments(host: &FunctionsHost) -> Vec<Value> {
    let response = host.call(Method::GET, "deployments").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["deployments"].as_array().unwrap().clone()
}

#[tokio::test]
async fn encoded_traversals_through_the_anonymous_callback_never_reach_keyed_routes() {
    let dir = tempfile::tempdir().unwrap();
    let host = start(dir.path()).await;
    let http = reqwest::Client::new();
    let api = host.api_url();
    // Each is sent raw (reqwest keeps escapes as given) with a valid spec as its body; the ones
    // the front routes to `callback` reach the handler as that function.
    let attacks = [
        "callbacks/%252e%252e/deployments",
        "callbacks/%252E%252E/deployments",
        "callbacks/%252e%252e/deployments?x=1",
        "callbacks/.%252e/deployments",
        "callbacks/%2e%2e/deployments",
        "callbacks/x%2f..%2f..%2fdeployments/completed",
        "callbacks/x%252f..%252f..%252fdeployments/completed",
        "callbacks/..;/deployments",
        "callbacks/..%3b/deployments",
        "callbacks/..%5cdeployments/completed",
        "callbacks/..%5c..%5cdeployments/x",
        "callbacks/%252e%252e%255cdeployments/completed",
        "callbacks/%2e%2e%2fdeployments%2fevil/terminate",
    ];
    let mut through_callback = 0;
    for (n, attack) in attacks.iter().enumerate() {
        let id = format!("attack-{n}");
        let before = host.records().len();
        let response = http
            .post(format!("{api}/{attack}"))
            .header("content-type", "application/json")
            .body(spec(&id).to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        let invoked: Vec<String> = host.records()[before..]
            .iter()
            .map(|r| r.function.clone())
            .collect();
        assert!(
            invoked.iter().all(|f| f == "callback"),
            "{attack}: only the callback function may be invoked without a key, got {invoked:?}"
        );
        if invoked.is_empty() {
            // The host itself refused it (no route, or a keyed route without a key).
            assert!([401, 404].contains(&status), "{attack}: {status} {body}");
        } else {
            through_callback += 1;
            assert!(
                [400, 403, 404].contains(&status),
                "{attack}: the callback function answered {status}: {body}"
            );
        }
    }
    assert!(
        through_callback >= 8,
        "most attacks must reach the handler as `callback` to test it ({through_callback})"
    );
    // The headline attack in particular is refused by the route check, not by luck further in.
    let response = http
        .post(format!("{api}/callbacks/%252e%252e/deployments"))
        .header("content-type", "application/json")
        .body(spec("headline").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().starts_with("path:"),
        "{problem}"
    );
    assert!(
        deployments(&host).await.is_empty(),
        "no deployment may start without a key"
    );
    // The keyed route still works with a key, so the list above could have shown one.
    let response = http
        .post(format!("{api}/deployments"))
        .header("x-functions-key", host.function_key())
        .json(&spec("with-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(deployments(&host).await.len(), 1);
    host.stop().await;
}

/// An HTTP invocation of `function` whose `Url` path is `path` and whose `Params` are `params`.
fn invocation(method: &str, path: &str, params: Value, body: Option<&str>) -> Bytes {
    let mut req = json!({
        "Url": format!("http://localhost:7071{path}"),
        "Method": method,
        "Query": {},
        "Headers": {"Content-Type": ["application/json"], "Host": ["localhost:7071"]},
        "Params": params,
        "Identities": [],
    });
    if let Some(body) = body {
        req["Body"] = Value::from(body);
    }
    Bytes::from(json!({"Data": {"req": req}, "Metadata": {}}).to_string())
}

#[tokio::test]
async fn a_url_that_disagrees_with_the_invoked_functions_route_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = start(dir.path()).await;
    let body = spec("direct").to_string();
    let cases = [
        // The headline: `callback` with a URL that normalises to the deployments route.
        (
            "callback",
            "POST",
            "/api/callbacks/%2e%2e/deployments",
            json!({"id": "%2e%2e", "name": "deployments"}),
        ),
        // The URL of another route altogether, with plausible Params.
        (
            "callback",
            "POST",
            "/api/deployments",
            json!({"id": "x", "name": "completed"}),
        ),
        (
            "callback",
            "POST",
            "/api/callbacks/x/completed/extra",
            json!({"id": "x", "name": "completed"}),
        ),
        (
            "callback",
            "POST",
            "/api/callbacks/x/completed",
            json!({"id": "y", "name": "completed"}),
        ),
        (
            "callback",
            "POST",
            "/api/callbacks/x/completed",
            json!({"id": "x"}),
        ),
        (
            "callback",
            "POST",
            "/api/callbacks/x/completed",
            json!({"id": null, "name": "completed"}),
        ),
        (
            "callback",
            "POST",
            "/api/callbacks/x%2Fy/completed",
            json!({"id": "x%2Fy", "name": "completed"}),
        ),
        (
            "callback",
            "GET",
            "/api/callbacks/x/completed",
            json!({"id": "x", "name": "completed"}),
        ),
        (
            "deployment",
            "GET",
            "/api/deployments/a/../b",
            json!({"id": "b"}),
        ),
        (
            "events",
            "POST",
            "/api/deployments/a/events/..%2fterminate",
            json!({"id": "a", "name": "../terminate"}),
        ),
        (
            "logs",
            "GET",
            "/api/deployments/a/logs/g/..",
            json!({"id": "a", "group": "g", "container": ".."}),
        ),
    ];
    for (function, method, path, params) in cases {
        let payload = invocation(method, path, params.clone(), Some(&body));
        let (status, answer, _) = host.invoke_raw(function, payload).await.unwrap();
        assert_eq!(status, 200, "{function} {path}: {answer}");
        let res = &answer["Outputs"]["res"];
        let code = res["statusCode"].as_u64().unwrap();
        assert!(
            (400..500).contains(&code) && code != 401,
            "{function} {method} {path} {params}: {res}"
        );
        let problem: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            [
                "path:",
                "method:",
                "Data.req.Params.",
                "id:",
                "name:",
                "container:"
            ]
            .iter()
            .any(|field| detail.starts_with(field)),
            "{function} {path}: the problem names a field: {detail}"
        );
    }
    assert!(deployments(&host).await.is_empty());
    // A well-formed invocation of the same function is served (the check is not a blanket no).
    let payload = invocation(
        "GET",
        "/api/deployments/direct",
        json!({"id": "direct"}),
        None,
    );
    let (_, answer, _) = host.invoke_raw("deployment", payload).await.unwrap();
    assert_eq!(answer["Outputs"]["res"]["statusCode"], 404, "{answer}");
    host.stop().await;
}

/// Hole 7 of SECURITY.md in Functions mode: without `BERTH_PUBLIC_URL` the base URL comes from the
/// host's `Data.req.Url`; a caller's `X-Forwarded-*` and `Forwarded` headers are dropped, so they
/// cannot point management or callback URLs (with their tokens) elsewhere.
#[tokio::test]
async fn a_callers_forwarded_headers_do_not_choose_the_urls_berth_hands_out() {
    let dir = tempfile::tempdir().unwrap();
    let host = start_with(dir.path(), None).await;
    let (location, body) = accepted(
        host.request(Method::POST, "deployments")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "host=evil.example;proto=https")
            .json(&spec("forwarded")),
    )
    .await;
    assert_eq!(
        location,
        format!("{}/deployments/forwarded", host.api_url())
    );
    assert!(!body.to_string().contains("evil.example"), "{body}");
    host.stop().await;
}
