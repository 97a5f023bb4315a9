//! `GET /metrics` end to end: a job run to `Done` through the HTTP API against the emulator, then
//! the Prometheus text scraped with the API key. The metrics are the process's, so this binary
//! runs one deployment and asserts exact counts.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use berth::api::{self, Api};
use common::{Harness, Options, job};
use tower::ServiceExt as _;

const KEY: &str = "metrics-test-key";

/// The value of the sample `series` (name and labels exactly as written) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of the samples of `name` whose labels contain `label`.
fn sum_where(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_job_run_to_done_behind_the_api_key() {
    let h = Harness::with(Options {
        settings: vec![("BERTH_API_KEY", KEY.into())],
        ..Options::default()
    })
    .await;
    let http = &h.http;
    // The harness sends its key with every request of its own.
    let id = h
        .start_deployment(&job(&common::unique("metrics"), "echo hello"))
        .await;
    let status = h.wait_done(&id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");

    // With the key, in the header or as `?code=`.
    let scrape = http
        .get(format!("{}/metrics", h.api))
        .header("x-functions-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert_eq!(
        scrape.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = scrape.text().await.unwrap();
    assert_eq!(
        sample(&text, "berth_deployments_started_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "berth_deployments_ended_total{status=\"Succeeded\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("# TYPE berth_deployments_started_total counter\n"));
    for verb in ["PUT", "GET", "DELETE"] {
        let calls = sum_where(&text, "berth_arm_calls_total", &format!("verb=\"{verb}\""));
        assert!(calls > 0.0, "no {verb} counted: {text}");
    }
    assert!(
        sum_where(&text, "berth_arm_calls_total", "outcome=\"ok\"") > 0.0,
        "{text}"
    );
    assert!(text.contains("# TYPE berth_step_duration_seconds histogram\n"));
    let steps = sample(&text, "berth_step_duration_seconds_count").unwrap();
    assert!(steps > 0.0, "{text}");
    assert_eq!(
        sample(&text, "berth_step_duration_seconds_bucket{le=\"+Inf\"}"),
        Some(steps)
    );
    assert!(sample(&text, "berth_queue_depth").is_some(), "{text}");
    assert!(
        sample(&text, "berth_queue_oldest_age_seconds").is_some(),
        "{text}"
    );
    assert_eq!(sample(&text, "berth_logs_truncated_total"), Some(0.0));
    assert_eq!(sample(&text, "berth_poison_messages_total"), Some(0.0));
    assert_eq!(sample(&text, "berth_arm_throttles_total"), Some(0.0));

    let by_code = http
        .get(format!("{}/metrics?code={KEY}", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(by_code.status(), 200);

    // Without the key, or with a wrong one: 401, as the API.
    for request in [
        http.get(format!("{}/metrics", h.api)),
        http.get(format!("{}/metrics", h.api))
            .header("x-functions-key", "wrong"),
        http.get(format!("{}/metrics?code=wrong", h.api)),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body = response.text().await.unwrap();
        assert!(!body.contains("berth_"), "{body}");
    }

    // `dev`'s router (loopback only): another site's page or a rebinding host is refused, even
    // with the key, as the API refuses them.
    let dev = Arc::new(Api {
        driver: h.runtime.driver.clone(),
        api_key: Some(KEY.into()),
        public_url: h.runtime.api.public_url.clone(),
        prices: h.runtime.api.prices.clone(),
        loopback_only: true,
    });
    let ask = |host: &str, origin: Option<&str>| {
        let mut request = axum::http::Request::get("/metrics")
            .header("host", host)
            .header("x-functions-key", KEY);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        api::metrics_router(dev.clone()).oneshot(request.body(Body::empty()).unwrap())
    };
    let foreign = ask("127.0.0.1:7071", Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let rebound = ask("evil.example:7071", None).await.unwrap();
    assert_eq!(rebound.status(), 403);
    let local = ask("127.0.0.1:7071", Some("http://localhost:7071"))
        .await
        .unwrap();
    assert_eq!(local.status(), 200);
    let api_foreign = api::router(dev.clone())
        .oneshot(
            axum::http::Request::get("/api/deployments")
                .header("host", "127.0.0.1:7071")
                .header("origin", "https://evil.example")
                .header("x-functions-key", KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(api_foreign.status(), foreign.status());
}
