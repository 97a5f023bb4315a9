//! The HTTP API without a process or a socket: each request goes through `tower`'s `oneshot` on
//! [`berth::api::router`] of Berth assembled as `serve` assembles it, over SQLite in a temporary
//! folder and ARM at a closed port of 127.0.0.1 (no route here reaches ARM: a `POST` checkpoints
//! and queues the first step, and no worker runs it). Time is Tokio's clock, paused, so
//! `Retry-After` is exact.
//!
//! Each refusal sits beside the answer to the same request done right.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use berth::api;
use berth::checkpoint::Deployments;
use berth::clock::Clock;
use berth::config::{Config, Defaults};
use berth::crypto::SecretsKey;
use berth::engine::state::Wake;
use berth::engine::{Millis, Phase, RuntimeStatus};
use berth::runtime::Runtime;
use berth::store::Checkpoints;
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "router-test-key-3f1a9c";
/// Unix milliseconds when a test starts (2026-11-18T11:06:40Z).
const START: Millis = 1_795_000_000_000;

/// Tokio's clock as Berth's: paused in these tests, it moves only with `tokio::time::advance`.
struct TokioClock {
    origin: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> Millis {
        START + Millis::try_from(self.origin.elapsed().as_millis()).unwrap()
    }
}

/// The router over a fresh store, and the store to look behind the API with.
struct Berth {
    router: Router,
    store: Arc<dyn Checkpoints>,
    _dir: tempfile::TempDir,
}

/// An answer: its status, headers and body (JSON, or the text as a JSON string).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts that this is an `application/problem+json` answer with `status` whose `detail`
    /// names `field` first.
    #[track_caller]
    fn assert_problem(&self, status: u16, field: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        assert_eq!(self.body["type"], "about:blank", "{}", self.body);
        assert!(
            self.body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status, "{}", self.body);
        let detail = self.body["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{field}: ")), "{detail}");
    }
}

/// Berth assembled from its settings as `serve` assembles it, on Tokio's clock, with the API key
/// `api_key` (none: the API serves anyone).
async fn berth(api_key: Option<&str>) -> Berth {
    let dir = tempfile::tempdir().unwrap();
    let mut settings: HashMap<String, String> = [
        (
            "BERTH_SQLITE_PATH",
            dir.path().join("berth.db").display().to_string(),
        ),
        // Port 9 (discard) has no listener: a route that reached ARM would fail loudly.
        ("BERTH_ARM_ENDPOINT", "http://127.0.0.1:9".to_owned()),
        // The submit only saves (its first step, which would create the groups, is a message).
        ("BERTH_INLINE_STEP", "PT0S".to_owned()),
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000".to_owned(),
        ),
        ("BERTH_RESOURCE_GROUP", "router".to_owned()),
        ("BERTH_LOCATION", "local".to_owned()),
        ("BERTH_SECRETS_KEY", SecretsKey::generate().to_base64()),
        ("BERTH_PUBLIC_URL", "http://127.0.0.1:7071".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(key) = api_key {
        settings.insert("BERTH_API_KEY".into(), key.to_owned());
    }
    let config = Config::from_lookup(&Config::map_lookup(settings), Defaults::default()).unwrap();
    let clock = Arc::new(TokioClock {
        origin: tokio::time::Instant::now(),
    });
    let runtime = Runtime::build(config, clock).await.unwrap();
    Berth {
        router: api::router(runtime.api.clone()),
        store: runtime.sweep.store.clone(),
        _dir: dir,
    }
}

fn job(id: &str) -> Value {
    json!({
        "id": id,
        "mode": "job",
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["true"],
            "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }]
    })
}

/// A request with the API key in `x-functions-key`.
fn keyed(method: Method, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("x-functions-key", KEY)
}

fn json_body(value: &Value) -> Body {
    Body::from(value.to_string())
}

impl Berth {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(keyed(Method::GET, path).body(Body::empty()).unwrap())
            .await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Answer {
        let request = keyed(Method::POST, path)
            .header("content-type", "application/json")
            .body(json_body(body))
            .unwrap();
        self.send(request).await
    }

    /// Submits `job(id)`, which must be accepted.
    async fn submit(&self, id: &str) {
        let answer = self.post_json("/api/deployments", &job(id)).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    }

    /// Changes a checkpoint behind the API's back, as a step would.
    async fn change(&self, id: &str, edit: impl FnOnce(&mut berth::engine::Deployment)) {
        let mut stored = self.store.load(id).await.unwrap().unwrap();
        edit(&mut stored.deployment);
        self.store
            .save(&stored.deployment, &stored.version, None)
            .await
            .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn every_keyed_route_wants_the_key_in_the_header_or_the_code_query() {
    let b = berth(Some(KEY)).await;
    b.submit("auth-1").await;
    let routes = [
        (Method::GET, "/api/deployments"),
        (Method::POST, "/api/deployments"),
        (Method::GET, "/api/deployments/auth-1"),
        (Method::DELETE, "/api/deployments/auth-1"),
        (Method::POST, "/api/deployments/auth-1/events/go"),
        (Method::POST, "/api/deployments/auth-1/terminate"),
        (Method::GET, "/api/deployments/auth-1/logs/work/main"),
        (Method::GET, "/api/deployments/auth-1/history"),
        (Method::GET, "/api/templates"),
        (Method::PUT, "/api/templates/auth-t"),
        (Method::DELETE, "/api/templates/auth-t"),
    ];
    let longer = format!("{KEY}x");
    let upper = KEY.to_uppercase();
    let wrong = ["", "wrong", &KEY[..KEY.len() - 1], &longer, &upper];
    for (method, path) in &routes {
        let attempt = |key: Option<(&str, &str)>| {
            let mut uri = (*path).to_owned();
            let mut request = Request::builder().method(method.clone());
            match key {
                Some(("header", key)) => request = request.header("x-functions-key", key),
                Some(("code", key)) => uri = format!("{uri}?code={key}"),
                Some((other, key)) => request = request.header(other, key),
                None => {}
            }
            let body = if *method == Method::POST && *path == "/api/deployments" {
                json_body(&job("auth-2"))
            } else {
                Body::empty()
            };
            request
                .uri(uri)
                .header("content-type", "application/json")
                .body(body)
                .unwrap()
        };
        let mut refused = vec![attempt(None), attempt(Some(("authorization", KEY)))];
        for key in wrong {
            refused.push(attempt(Some(("header", key))));
            refused.push(attempt(Some(("code", key))));
        }
        for request in refused {
            let shown = format!("{method} {} {:?}", request.uri(), request.headers());
            let answer = b.send(request).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{shown}");
            answer.assert_problem(401, "x-functions-key");
            assert!(!answer.body.to_string().contains(KEY), "the key is echoed");
        }
        if *method == Method::GET {
            for key in [("header", KEY), ("code", KEY)] {
                let answer = b.send(attempt(Some(key))).await;
                // Past the key: the deployment's answer (its logs are not saved yet).
                assert!(
                    answer.status.is_success()
                        || answer.body["detail"]
                            .as_str()
                            .is_some_and(|d| d.starts_with("container: no saved logs")),
                    "{method} {path} with the key as {}: {} {}",
                    key.0,
                    answer.status,
                    answer.body
                );
            }
        }
    }
    // A refused POST stored nothing; the right key as `code` submits.
    let list = b.get("/api/deployments").await;
    assert_eq!(list.body["deployments"].as_array().unwrap().len(), 1);
    let request = Request::post(format!("/api/deployments?code={KEY}"))
        .header("content-type", "application/json")
        .body(json_body(&job("auth-2")))
        .unwrap();
    assert_eq!(b.send(request).await.status, StatusCode::ACCEPTED);
}

#[tokio::test(start_paused = true)]
async fn without_a_key_configured_the_api_serves_anyone_and_callbacks_never_take_the_key() {
    let open = berth(None).await;
    open.submit("open-1").await;
    let request = Request::get("/api/deployments/open-1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(open.send(request).await.status, StatusCode::ACCEPTED);

    // A callback is authorised by its token alone: the API key is neither needed nor enough.
    let b = berth(Some(KEY)).await;
    b.submit("cb-1").await;
    let callback = |query: &str| {
        keyed(
            Method::POST,
            &format!("/api/callbacks/cb-1/completed{query}"),
        )
        .header("content-type", "application/json")
        .body(json_body(&json!({ "exitCode": 0 })))
        .unwrap()
    };
    b.send(callback("")).await.assert_problem(403, "token");
    b.send(callback(&format!("?token={KEY}")))
        .await
        .assert_problem(403, "token");
    let wrong_kind = keyed(Method::POST, "/api/callbacks/cb-1/started?token=x")
        .body(Body::empty())
        .unwrap();
    b.send(wrong_kind).await.assert_problem(404, "kind");
}

#[tokio::test(start_paused = true)]
async fn unknown_routes_and_methods_are_problems() {
    let b = berth(Some(KEY)).await;
    b.submit("route-1").await;
    for path in [
        "/api/nothing",
        "/",
        "/api/deployments/route-1/extra/path/here",
    ] {
        let answer = b.get(path).await;
        answer.assert_problem(404, "path");
    }
    // The same paths with the right method answer.
    assert_eq!(b.get("/api/deployments").await.status, StatusCode::OK);
    let wrong_methods = [
        (Method::PUT, "/api/deployments"),
        (Method::PATCH, "/api/deployments/route-1"),
        (Method::GET, "/api/deployments/route-1/terminate"),
        (Method::DELETE, "/api/deployments/route-1/history"),
    ];
    for (method, path) in wrong_methods {
        let answer = b
            .send(keyed(method.clone(), path).body(Body::empty()).unwrap())
            .await;
        answer.assert_problem(405, "method");
        assert!(answer.header("allow").is_some(), "{method} {path}");
    }
    let answer = b.get("/api/deployments/no-such").await;
    answer.assert_problem(404, "id");
    let answer = b.get("/api/deployments/Not_An_Id").await;
    answer.assert_problem(400, "id");
}

#[tokio::test(start_paused = true)]
async fn bodies_over_their_limit_are_413() {
    let b = berth(Some(KEY)).await;
    let big = keyed(Method::POST, "/api/deployments")
        .header("content-type", "application/json")
        .body(Body::from(vec![b' '; api::MAX_BODY + 1]))
        .unwrap();
    b.send(big).await.assert_problem(413, "body");
    b.submit("size-1").await;

    let event = |size: usize| {
        keyed(Method::POST, "/api/deployments/size-1/events/go")
            .header("content-type", "application/json")
            .body(Body::from(vec![b' '; size]))
            .unwrap()
    };
    b.send(event(api::MAX_EVENT_PAYLOAD + 1))
        .await
        .assert_problem(413, "body");
    let answer = b.send(event(api::MAX_EVENT_PAYLOAD)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body, json!({ "id": "size-1", "accepted": true }));
}

#[tokio::test(start_paused = true)]
async fn a_body_must_say_it_is_json_or_yaml() {
    let b = berth(Some(KEY)).await;
    let with_type = |content_type: Option<&str>, id: &str| {
        let mut request = keyed(Method::POST, "/api/deployments");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.body(json_body(&job(id))).unwrap()
    };
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
    ] {
        let answer = b.send(with_type(content_type, "type-0")).await;
        answer.assert_problem(415, "content-type");
    }
    let list = b.get("/api/deployments").await;
    assert_eq!(
        list.body["deployments"],
        json!([]),
        "a refused body is not read"
    );

    let answer = b
        .send(with_type(Some("application/json; charset=utf-8"), "type-1"))
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let answer = b
        .send(with_type(Some("application/vnd.berth+json"), "type-2"))
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    // YAML passes the gate and is read as ACI YAML, which this JSON body is not.
    let answer = b.send(with_type(Some("application/yaml"), "type-3")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    // A request without a body needs no content type.
    let terminate = keyed(Method::POST, "/api/deployments/type-1/terminate")
        .body(Body::empty())
        .unwrap();
    assert_eq!(b.send(terminate).await.status, StatusCode::ACCEPTED);
}

/// An ACI YAML document without an id is named by its `name`: the same file posted twice is one
/// deployment (`202`, then `200` as for any repeated id), a changed file under that name a `409`.
#[tokio::test(start_paused = true)]
async fn the_same_aci_yaml_posted_twice_is_one_deployment() {
    let b = berth(Some(KEY)).await;
    let yaml = "name: yaml-web\nproperties:\n  restartPolicy: Never\n  containers:\n  - name: main\n    \
                properties:\n      image: busybox\n      command: [\"true\"]\n      resources:\n        \
                requests: {cpu: 1, memoryInGB: 1}\n";
    let post = |body: String| {
        keyed(Method::POST, "/api/deployments")
            .header("content-type", "application/yaml")
            .body(Body::from(body))
            .unwrap()
    };
    let first = b.send(post(yaml.to_owned())).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body["id"], "yaml-web");
    let again = b.send(post(yaml.to_owned())).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(again.body["id"], "yaml-web");
    let list = b.get("/api/deployments").await;
    assert_eq!(list.body["deployments"].as_array().unwrap().len(), 1);
    let changed = b.send(post(yaml.replace("cpu: 1", "cpu: 2"))).await;
    changed.assert_problem(409, "id");
}

#[tokio::test(start_paused = true)]
async fn a_bad_spec_is_a_problem_naming_its_field_and_listing_every_error() {
    let b = berth(Some(KEY)).await;
    let mut spec = job("spec-1");
    spec["groups"][0]["name"] = json!("Work");
    spec["timeout"] = json!("soon");
    let answer = b.post_json("/api/deployments", &spec).await;
    answer.assert_problem(400, "timeout");
    assert_eq!(answer.body["title"], "Invalid deployment spec");
    let fields: Vec<&str> = answer.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 2, "{}", answer.body);
    assert!(fields.contains(&"groups[0].name") && fields.contains(&"timeout"));
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .ends_with("(and 1 more)")
    );

    let answer = b
        .send(
            keyed(Method::POST, "/api/deployments")
                .header("content-type", "application/json")
                .body(Body::from("{ not json"))
                .unwrap(),
        )
        .await;
    answer.assert_problem(400, "(spec)");

    // A field of the query is named the same way.
    let answer = b
        .post_json(
            "/api/deployments?returnInternalServerErrorOnFailure=maybe",
            &job("spec-1"),
        )
        .await;
    answer.assert_problem(400, "returnInternalServerErrorOnFailure");

    let answer = b.post_json("/api/deployments", &job("spec-1")).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.body["id"], "spec-1");
    assert_eq!(answer.body["runtimeStatus"], "Pending");
    assert_eq!(
        answer.body["statusQueryGetUri"],
        "http://127.0.0.1:7071/api/deployments/spec-1"
    );
    // The same id with another spec conflicts.
    let mut other = job("spec-1");
    other["groups"][0]["properties"]["containers"][0]["properties"]["image"] = json!("alpine");
    let answer = b.post_json("/api/deployments", &other).await;
    answer.assert_problem(409, "id");
}

#[tokio::test(start_paused = true)]
async fn deployments_are_listed_newest_first_a_page_at_a_time() {
    let b = berth(Some(KEY)).await;
    for n in 1..=5 {
        b.submit(&format!("page-{n}")).await;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let ids = |answer: &Answer| -> Vec<String> {
        answer.body["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut pages = Vec::new();
    let mut path = "/api/deployments?top=2".to_owned();
    loop {
        let answer = b.get(&path).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        pages.push(ids(&answer));
        let token = answer.body["continuationToken"].as_str().map(str::to_owned);
        assert_eq!(answer.header("x-ms-continuation-token"), token.as_deref());
        match token {
            Some(token) => path = format!("/api/deployments?top=2&continuationToken={token}"),
            None => break,
        }
    }
    assert_eq!(
        pages,
        [
            vec!["page-5", "page-4"],
            vec!["page-3", "page-2"],
            vec!["page-1"]
        ]
    );
    let all = b.get("/api/deployments").await;
    assert_eq!(ids(&all).len(), 5);
    assert_eq!(all.body["continuationToken"], Value::Null);
    assert_eq!(all.body["deployments"][0]["runtimeStatus"], "Pending");
    let pending = b.get("/api/deployments?status=Pending&top=1000").await;
    assert_eq!(ids(&pending).len(), 5);
    let succeeded = b.get("/api/deployments?status=Succeeded").await;
    assert_eq!(ids(&succeeded), Vec::<String>::new());

    for (query, field) in [
        ("continuationToken=not-a-token", "continuationToken"),
        ("continuationToken=bm90IGEgdG9rZW4", "continuationToken"),
        ("top=0", "top"),
        ("top=1001", "top"),
        ("top=two", "top"),
        ("status=Done", "status"),
    ] {
        let answer = b.get(&format!("/api/deployments?{query}")).await;
        answer.assert_problem(400, field);
    }
}

#[tokio::test(start_paused = true)]
async fn a_status_is_202_with_retry_after_until_the_deployment_is_done_then_200() {
    let b = berth(Some(KEY)).await;
    let started = b.post_json("/api/deployments", &job("poll-1")).await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let status_url = "http://127.0.0.1:7071/api/deployments/poll-1";
    assert_eq!(started.header("location"), Some(status_url));
    assert_eq!(started.header("retry-after"), Some("1"));

    // Its first step is due now: come back in the shortest wait.
    let answer = b.get("/api/deployments/poll-1").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.header("location"), Some(status_url));
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.body["phase"], "Pending");

    // Berth looks next in 30 s: the poller is told the seconds left, rounded up.
    let wake = |at: Millis| Some(Wake { at, seq: 1 });
    b.change("poll-1", |d| d.wake = wake(START + 30_000)).await;
    assert_eq!(
        b.get("/api/deployments/poll-1").await.header("retry-after"),
        Some("30")
    );
    tokio::time::advance(Duration::from_millis(12_500)).await;
    assert_eq!(
        b.get("/api/deployments/poll-1").await.header("retry-after"),
        Some("18")
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(
        b.get("/api/deployments/poll-1").await.header("retry-after"),
        Some("1")
    );
    b.change("poll-1", |d| d.wake = wake(START + 3_600_000))
        .await;
    assert_eq!(
        b.get("/api/deployments/poll-1").await.header("retry-after"),
        Some("60")
    );
    // The poller is sent back to the URL it polled, query and all.
    let answer = b
        .get("/api/deployments/poll-1?returnInternalServerErrorOnFailure=true")
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(
        answer.header("location"),
        Some(
            "http://127.0.0.1:7071/api/deployments/poll-1?returnInternalServerErrorOnFailure=true"
        )
    );

    // Done: 200 without Retry-After; a failure is a 500 only for a caller that asked.
    b.change("poll-1", |d| {
        d.phase = Phase::Done;
        d.status = RuntimeStatus::Failed;
        d.wake = None;
    })
    .await;
    let answer = b.get("/api/deployments/poll-1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("retry-after"), None);
    assert_eq!(answer.header("location"), None);
    assert_eq!(answer.body["runtimeStatus"], "Failed");
    let answer = b
        .get("/api/deployments/poll-1?returnInternalServerErrorOnFailure=true")
        .await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.body["runtimeStatus"], "Failed",
        "the status, not a problem"
    );
    b.change("poll-1", |d| d.status = RuntimeStatus::Succeeded)
        .await;
    let answer = b
        .get("/api/deployments/poll-1?returnInternalServerErrorOnFailure=true")
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = b
        .get("/api/deployments/poll-1?returnInternalServerErrorOnFailure=yes")
        .await;
    answer.assert_problem(400, "returnInternalServerErrorOnFailure");
}
