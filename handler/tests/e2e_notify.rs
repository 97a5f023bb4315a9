//! Completion notifications end to end: a job's outcome POSTed as a signed CloudEvent to a real
//! HTTP receiver on 127.0.0.1 (an axum server in the test), retried under the same event id,
//! given up on a permanent refusal, retried with back-off when unreachable; and the SSRF rules:
//! attack URLs refused at submit with a `400` naming `notify[i].url`, names resolving to loopback
//! and redirects refused at delivery.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth::notify::{Allow, Attempt, Notifier, NotifyPolicy};
use common::scenarios::{self, get};
use common::{Backend, Harness, Options};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// One request a receiver got: its headers and its body.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1: answers its Nth request with `answers[N]` (the last one
/// again after that), and keeps every request.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answers = answers.to_vec();
        let kept = got.clone();
        let app =
            axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                let answers = answers.clone();
                async move {
                    let mut got = kept.lock().unwrap();
                    let n = got.len().min(answers.len() - 1);
                    got.push(Received {
                        headers,
                        body: body.to_vec(),
                    });
                    let status = StatusCode::from_u16(answers[n]).unwrap();
                    // A redirect to the metadata endpoint, for the receivers that answer 3xx.
                    (
                        status,
                        [("location", "http://169.254.169.254/metadata/identity")],
                    )
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hooks/berth"),
            got,
            server,
        }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A harness on `backend` whose notifications may go to 127.0.0.1 (plain http, as an operator
/// allowing a private receiver would).
async fn harness(backend: Backend) -> Option<Harness> {
    Harness::try_with(Options {
        backend,
        settings: vec![("BERTH_NOTIFY_ALLOW_PRIVATE", "127.0.0.1/32".into())],
        ..Options::default()
    })
    .await
}

/// A job that exits `code`, notifying `url` on `on`.
fn job(id: &str, code: i32, url: &str, on: Value) -> Value {
    let mut spec = common::job(id, &format!("exit {code}"));
    spec["notify"] = json!([{ "url": url, "on": on }]);
    spec
}

/// Checks a request's Standard Webhooks signature under `key` (`whsec_…`), independently of
/// Berth's code: HMAC-SHA256 over `id.timestamp.body`.
fn verify(key: &str, request: &Received) {
    let header = |name: &str| request.headers[name].to_str().unwrap().to_owned();
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let secret = STANDARD
        .decode(key.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(header("webhook-signature"), expected);
    let sent: i64 = timestamp.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - sent).abs() < 120, "timestamp {sent}, now {now}");
}

fn event(request: &Received) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// The history entries of `id` whose kind starts with `Notify`, as `kind detail`.
async fn notify_history(h: &Harness, id: &str) -> Vec<String> {
    let (code, history) = get(h, &format!("/deployments/{id}/history")).await;
    assert_eq!(code, 200, "{history}");
    history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"].as_str().unwrap().starts_with("Notify"))
        .map(|e| format!("{} {}", e["eventType"].as_str().unwrap(), e["detail"]))
        .collect()
}

async fn a_succeeded_job_posts_a_signed_cloudevent(backend: Backend) {
    let Some(h) = harness(backend).await else {
        return;
    };
    let receiver = Receiver::start(&[204]).await;
    let spec = job(
        "notified-1",
        0,
        &receiver.url,
        json!(["Succeeded", "Failed"]),
    );
    let (code, started) = h.submit(&spec).await;
    assert_eq!(code, 202, "{started}");
    let key = started["notifySecret"].as_str().unwrap().to_owned();
    assert!(key.starts_with("whsec_"), "{started}");
    // Told once: the same POST again does not tell it.
    let (_, again) = h.submit(&spec).await;
    assert!(again.get("notifySecret").is_none(), "{again}");

    let done = h.wait_done("notified-1").await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let request = &got[0];
    assert_eq!(
        request.headers["content-type"],
        "application/cloudevents+json; charset=utf-8"
    );
    verify(&key, request);
    let event = event(request);
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "berth.deployment.succeeded");
    assert_eq!(event["source"], "/berth/deployments/notified-1");
    assert_eq!(event["subject"], "notified-1");
    assert_eq!(event["id"], request.headers["webhook-id"].to_str().unwrap());
    assert_eq!(event["data"]["status"], "Succeeded");
    assert_eq!(event["data"]["groups"][0]["name"], "work");
    assert_eq!(event["data"]["groups"][0]["result"], "Succeeded");
    assert_eq!(done["notifications"][0]["state"], "Delivered", "{done}");
    assert_eq!(done["notifications"][0]["id"], event["id"]);
    // The key is nowhere else: not in the status, the history, the stored document.
    for path in ["", "/history", "/checkpoint"] {
        let (_, body) = get(&h, &format!("/deployments/notified-1{path}")).await;
        assert!(!body.to_string().contains(&key[6..]), "{path}: {body}");
    }
    assert_eq!(notify_history(&h, "notified-1").await.len(), 1);
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(a_succeeded_job_posts_a_signed_cloudevent);

async fn a_receiver_that_fails_first_gets_the_same_event_id_twice(backend: Backend) {
    let Some(h) = harness(backend).await else {
        return;
    };
    let receiver = Receiver::start(&[500, 200]).await;
    let id = h
        .start_deployment(&job("notified-2", 3, &receiver.url, json!(["Failed"])))
        .await;
    let done = h.wait_done(&id).await;
    assert_eq!(done["runtimeStatus"], "Failed", "{done}");
    let got = receiver.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    assert_eq!(event(&got[0])["id"], event(&got[1])["id"]);
    assert_eq!(event(&got[1])["type"], "berth.deployment.failed");
    assert!(
        event(&got[1])["data"]["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 3")
    );
    let history = notify_history(&h, &id).await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0].starts_with("NotifyFailed") && history[0].contains("500; attempt 2 in 1 s"));
    assert!(history[1].starts_with("NotifySent") && history[1].contains("200 (attempt 2)"));
    assert_eq!(done["notifications"][0]["attempts"], 2);
    // Counted by outcome (process-wide: other tests of this file count too).
    let metrics = h.text("/metrics").await;
    for outcome in ["delivered", "failed"] {
        let line = format!("berth_notifications_total{{outcome=\"{outcome}\"}} ");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(a_receiver_that_fails_first_gets_the_same_event_id_twice);

async fn a_permanent_refusal_or_a_redirect_is_given_up_after_one_attempt(backend: Backend) {
    let Some(h) = harness(backend).await else {
        return;
    };
    for (id, answer) in [("notified-3", 404), ("notified-4", 302)] {
        let receiver = Receiver::start(&[answer]).await;
        let id = h
            .start_deployment(&job(id, 0, &receiver.url, json!(["Succeeded"])))
            .await;
        let done = h.wait_done(&id).await;
        assert_eq!(receiver.got().len(), 1);
        let n = &done["notifications"][0];
        assert_eq!(
            (&n["state"], &n["attempts"]),
            (&json!("GaveUp"), &json!(1)),
            "{done}"
        );
        let history = notify_history(&h, &id).await;
        assert!(
            history[0].contains("gave up after 1 attempt(s)"),
            "{history:?}"
        );
    }
    scenarios::assert_nothing_left(&h).await;
    // Given up is settled: both are `Done`, and past a retention of nothing the sweep purges them.
    assert_eq!(sweep_now(&h).await.purged, 2);
}

on_both_backends!(a_permanent_refusal_or_a_redirect_is_given_up_after_one_attempt);

async fn an_unreachable_receiver_is_tried_again_with_back_off(backend: Backend) {
    let Some(h) = harness(backend).await else {
        return;
    };
    // A webhook whose path and query are its secret, as Slack's and Teams' are.
    let closed = format!(
        "http://127.0.0.1:{}/hooks/SECRET-PATH?token=SECRET-QUERY",
        common::free_port()
    );
    let id = h
        .start_deployment(&job("notified-5", 0, &closed, json!(["Succeeded"])))
        .await;
    let notifying = h
        .wait_for(&id, Duration::from_secs(60), |s| {
            s["notifications"][0]["attempts"].as_u64() >= Some(3)
        })
        .await;
    assert_eq!(notifying["runtimeStatus"], "Succeeded");
    assert_eq!(notifying["phase"], "Notifying", "{notifying}");
    assert_eq!(notifying["notifications"][0]["state"], "Pending");
    let history = notify_history(&h, &id).await;
    assert!(history[0].contains("could not connect"), "{history:?}");
    // The failed attempts name the error, never the URL's secret parts.
    let last = notifying["notifications"][0]["lastResult"]
        .as_str()
        .unwrap();
    assert!(last.starts_with("could not connect"), "{last}");
    for text in history.iter().map(String::as_str).chain([last]) {
        assert!(!text.contains("SECRET"), "{text}");
    }
    assert!(history[0].contains("attempt 2 in 1 s") && history[1].contains("attempt 3 in 2 s"));
    // Not purgeable while a delivery is pending: not by the sweep past any retention, not by hand.
    let report = sweep_now(&h).await;
    assert_eq!(report.purged, 0, "{report:?}");
    assert_eq!(get(&h, &format!("/deployments/{id}")).await.0, 200);
    let response = scenarios::request(&h, reqwest::Method::DELETE, &format!("/deployments/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
}

on_both_backends!(an_unreachable_receiver_is_tried_again_with_back_off);

/// A schedule's runs are signed with the key told once, when the schedule was created: a run
/// has no answer of its own to carry one.
async fn a_scheduled_run_is_signed_with_the_key_told_when_its_schedule_was_made(backend: Backend) {
    let now = berth::clock::Clock::now(&berth::clock::SystemClock);
    let clock = Arc::new(berth::clock::ShiftedClock::at(now));
    let Some(h) = Harness::try_with(Options {
        backend,
        settings: vec![("BERTH_NOTIFY_ALLOW_PRIVATE", "127.0.0.1/32".into())],
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let receiver = Receiver::start(&[204]).await;
    let mut spec = job("x", 0, &receiver.url, json!(["Succeeded"]));
    spec.as_object_mut().unwrap().remove("id");
    let body = json!({ "cron": "* * * * *", "spec": spec });
    let put = |body: Value| {
        let h = &h;
        async move {
            let r = scenarios::request(h, reqwest::Method::PUT, "/schedules/signed")
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Made without `notify`: nothing to tell yet. The first PUT that notifies tells the key.
    let mut quiet = body.clone();
    quiet["spec"].as_object_mut().unwrap().remove("notify");
    let (code, created) = put(quiet).await;
    assert_eq!(code, 201, "{created}");
    assert!(created.get("notifySecret").is_none(), "{created}");
    let (code, notifying) = put(body.clone()).await;
    assert_eq!(code, 200, "{notifying}");
    let key = notifying["notifySecret"].as_str().unwrap().to_owned();
    assert!(key.starts_with("whsec_"), "{notifying}");
    let (code, replaced) = put(body).await;
    assert_eq!(code, 200, "{replaced}");
    assert!(
        replaced.get("notifySecret").is_none(),
        "told once: {replaced}"
    );
    let (_, shown) = get(&h, "/schedules/signed").await;
    assert!(!shown.to_string().contains(&key[6..]), "{shown}");
    // The webhook URL is sealed as a deployment's is: its origin shown, never its path.
    let url = &shown["target"]["spec"]["notify"][0]["url"];
    assert!(url.as_str().unwrap().ends_with("/(sealed)"), "{shown}");

    clock.advance(61_000);
    h.runtime.scheduler.run_once().await;
    let (_, shown) = get(&h, "/schedules/signed").await;
    let id = shown["lastRun"]["deploymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = h.wait_done(&id).await;
    assert_eq!(done["notifications"][0]["state"], "Delivered", "{done}");
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    verify(&key, &got[0]);
    assert_eq!(event(&got[0])["subject"], id.as_str());
    let (_, checkpoint) = get(&h, &format!("/deployments/{id}/checkpoint")).await;
    assert!(!checkpoint.to_string().contains(&key[6..]), "{checkpoint}");
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(a_scheduled_run_is_signed_with_the_key_told_when_its_schedule_was_made);

/// A template target's notify URL built from a schedule's parameter is refused at `PUT`, naming
/// the parameter: the schedule keeps its parameters in clear and shows them. A template's own
/// URL, and parameters that reach no URL, are fine; an attack URL is refused as a `POST` would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedules_parameter_never_becomes_a_webhook_url_kept_in_clear() {
    let h = Harness::start().await;
    let send = |method: reqwest::Method, path: &'static str, body: Value| {
        let h = &h;
        async move {
            let r = scenarios::request(h, method, path)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let mut hooked = common::job("x", "true");
    hooked.as_object_mut().unwrap().remove("id");
    hooked["parameters"] = json!({ "hook": { "type": "string" }, "word": { "type": "string" } });
    hooked["notify"] = json!([{ "url": "{{ parameters.hook }}" }]);
    hooked["tags"] = json!({ "word": "{{ parameters.word }}" });
    let (code, body) = send(reqwest::Method::PUT, "/templates/hooked", hooked).await;
    assert_eq!(code, 201, "{body}");
    let secret = "https://hooks.example.com/services/T0/B0/s3cr3t-path";
    let (code, problem) = send(
        reqwest::Method::PUT,
        "/schedules/leaky",
        json!({ "cron": "0 0 1 1 *", "template": "hooked",
                "parameters": { "hook": secret, "word": "fine" } }),
    )
    .await;
    assert_eq!(code, 400, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("parameters.hook: ends up in a notify URL"),
        "{detail}"
    );
    assert!(!problem.to_string().contains("s3cr3t"), "{problem}");
    let (code, problem) = send(
        reqwest::Method::PUT,
        "/schedules/leaky",
        json!({ "cron": "0 0 1 1 *", "template": "hooked",
                "parameters": { "hook": "http://169.254.169.254/latest", "word": "fine" } }),
    )
    .await;
    assert_eq!(code, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("notify[0].url:"),
        "checked at PUT as a POST is: {problem}"
    );
    let (code, _) = scenarios::get(&h, "/schedules/leaky").await;
    assert_eq!(code, 404, "nothing stored");

    let mut fixed = common::job("x", "true");
    fixed.as_object_mut().unwrap().remove("id");
    fixed["parameters"] = json!({ "word": { "type": "string" } });
    fixed["notify"] = json!([{ "url": "https://hooks.example.com/fixed" }]);
    fixed["tags"] = json!({ "word": "{{ parameters.word }}" });
    let (code, body) = send(reqwest::Method::PUT, "/templates/fixed", fixed).await;
    assert_eq!(code, 201, "{body}");
    let (code, created) = send(
        reqwest::Method::PUT,
        "/schedules/tidy",
        json!({ "cron": "0 0 1 1 *", "template": "fixed", "parameters": { "word": "fine" } }),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert!(
        created["notifySecret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
}

/// A template's `notify` URLs are sealed as a deployment's are: the template shows their origins,
/// and a deployment expanded from it notifies the whole URL.
async fn a_templates_webhook_url_is_sealed_and_still_called(backend: Backend) {
    let Some(h) = harness(backend).await else {
        return;
    };
    let receiver = Receiver::start(&[204]).await;
    let mut template = common::job("x", "true");
    template.as_object_mut().unwrap().remove("id");
    template["notify"] = json!([{ "url": format!("{}?token=s3cr3t-query", receiver.url) }]);
    let r = scenarios::request(&h, reqwest::Method::PUT, "/templates/hooked")
        .json(&template)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (code, shown) = get(&h, "/templates/hooked").await;
    assert_eq!(code, 200, "{shown}");
    assert!(!shown.to_string().contains("s3cr3t"), "{shown}");
    let origin = receiver.url.split("/hooks").next().unwrap().to_owned();
    assert_eq!(
        shown["spec"]["notify"][0]["url"],
        format!("{origin}/(sealed)").as_str()
    );

    let (code, started) = h
        .submit(&json!({ "id": "from-hooked", "template": "hooked" }))
        .await;
    assert_eq!(code, 202, "{started}");
    let key = started["notifySecret"].as_str().unwrap().to_owned();
    let done = h.wait_done("from-hooked").await;
    assert_eq!(done["notifications"][0]["state"], "Delivered", "{done}");
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    verify(&key, &got[0]);
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(a_templates_webhook_url_is_sealed_and_still_called);

/// A deployment from the submit queue is signed with the operator's `BERTH_NOTIFY_KEY` (a queue
/// message has no answer to carry a new key); without that setting such a message is dropped,
/// saying why, and starts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_deployment_is_signed_with_the_operators_key_or_dropped_without_one() {
    let operator_key = berth::notify::new_key();
    let allow = ("BERTH_NOTIFY_ALLOW_PRIVATE", "127.0.0.1/32".to_owned());
    let h = Harness::with(Options {
        settings: vec![allow.clone(), ("BERTH_NOTIFY_KEY", operator_key.clone())],
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start(&[204]).await;
    let spec = job("queued-1", 0, &receiver.url, json!(["Succeeded"]));
    let said = h.runtime.submitter.handle(&spec.to_string(), "m-1").await;
    assert_eq!(said.unwrap(), "deployment queued-1 started");
    let done = h.wait_done("queued-1").await;
    assert_eq!(done["notifications"][0]["state"], "Delivered", "{done}");
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    verify(&operator_key, &got[0]);

    let h = Harness::with(Options {
        settings: vec![allow],
        ..Options::default()
    })
    .await;
    let spec = job("queued-2", 0, &receiver.url, json!(["Succeeded"]));
    match h.runtime.submitter.handle(&spec.to_string(), "m-2").await {
        Err(berth::submit::SubmitFailure::Dropped(reason)) => {
            assert!(
                reason.starts_with("notify: ") && reason.contains("BERTH_NOTIFY_KEY"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let (code, _) = get(&h, "/deployments/queued-2").await;
    assert_eq!(code, 404, "nothing started");
}

/// One sweep of `h`'s runtime with a retention of nothing: every `Done` deployment is expired.
async fn sweep_now(h: &Harness) -> berth::sweep::SweepReport {
    let sweep = berth::sweep::Sweep {
        retention_ms: 0,
        ..h.runtime.sweep.clone()
    };
    sweep.run_once().await
}

/// Outside `dev`, without `BERTH_NOTIFY_ALLOW_PRIVATE`: every attack form is a `400` naming the
/// entry's field, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_urls_are_refused_at_submit_naming_the_field() {
    let h = Harness::start().await;
    for (i, url) in [
        "http://2130706433/",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://0177.0.0.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://169.254.169.254/metadata/identity/oauth2/token",
        "https://[::ffff:a9fe:a9fe]/",
        "https://[fd00:ec2::254]/",
        "https://[fe80::1]/",
        "https://good@127.0.0.1/",
        "https://good:pass@hooks.example.com/",
        "https://localhost/",
        "https://10.0.0.1/",
        "https://[fc00::1]/",
        "http://hooks.example.com/",
        "file:///etc/passwd",
    ]
    .iter()
    .enumerate()
    {
        let mut spec = common::job(&format!("ssrf-{i}"), "true");
        spec["notify"] = json!([{ "url": "https://hooks.example.com/ok" }, { "url": url }]);
        let (code, problem) = h.submit(&spec).await;
        assert_eq!(code, 400, "{url}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("notify[1].url"),
            "{url}: {problem}"
        );
        let (code, _) = get(&h, &format!("/deployments/ssrf-{i}")).await;
        assert_eq!(code, 404, "{url}");
    }
    assert!(h.stats().creates_by_name.is_empty());
}

/// At delivery: a name that resolves to loopback is refused by the resolver the client connects
/// with, and a literal loopback address before any connection; the receiver sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_behind_a_name_is_refused_at_delivery_and_redirects_are_not_followed() {
    let receiver = Receiver::start(&[200]).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let key = berth::notify::new_key();
    let strict = Notifier::new(NotifyPolicy::default());
    for url in [
        format!("https://localhost:{port}/hooks"),
        format!("https://127.0.0.1:{port}/hooks"),
        format!("https://[::ffff:127.0.0.1]:{port}/hooks"),
        format!("https://2130706433:{port}/hooks"),
    ] {
        let attempt = strict.send(&url, "e-1", b"{}".to_vec(), &key, 0).await;
        match attempt {
            Attempt::Failed { error, permanent } => {
                assert!(permanent, "{url}: {error}");
                assert!(
                    error.contains("refused") && error.contains("127.0.0.1"),
                    "{url}: {error}"
                );
                if url.contains("localhost") {
                    // Judged on what the name resolved to, in the client's resolver.
                    assert!(error.contains("localhost resolves to 127.0.0.1"), "{error}");
                }
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    assert!(receiver.got().is_empty());

    // A receiver allowed (as in `dev`) that redirects to the metadata endpoint: not followed.
    let redirecting = Receiver::start(&[307]).await;
    let allowed = Notifier::new(NotifyPolicy {
        dev: false,
        allow: Allow::parse("127.0.0.1/32").unwrap(),
    });
    let attempt = allowed
        .send(&redirecting.url, "e-2", b"{}".to_vec(), &key, 0)
        .await;
    assert_eq!(
        attempt,
        Attempt::Failed {
            error: "307 (redirects are not followed)".into(),
            permanent: true
        }
    );
    assert_eq!(redirecting.got().len(), 1);
}
