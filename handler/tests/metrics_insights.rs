//! The Functions-mode metrics exporter against a real HTTP server on 127.0.0.1 standing in for
//! Application Insights' ingestion endpoint: the envelopes it posts, and what a failing or hanging
//! endpoint does to it (nothing that blocks or grows).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use berth::metrics;
use berth::metrics::insights::{ConnectionString, Exporter, MAX_BATCH};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader as _;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use serde_json::Value;

const IKEY: &str = "0f0e0d0c-0000-4000-8000-000000000001";
const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;

#[derive(Default)]
struct Endpoint {
    mode: AtomicU8,
    requests: AtomicUsize,
    /// The bodies accepted (answered 200).
    bodies: Mutex<Vec<Vec<Value>>>,
}

async fn track(State(endpoint): State<Arc<Endpoint>>, body: String) -> (StatusCode, String) {
    endpoint.requests.fetch_add(1, Ordering::SeqCst);
    match endpoint.mode.load(Ordering::SeqCst) {
        FAIL => (StatusCode::INTERNAL_SERVER_ERROR, "down".into()),
        HANG => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (StatusCode::OK, String::new())
        }
        _ => {
            let envelopes: Vec<Value> = serde_json::from_str(&body).unwrap();
            let n = envelopes.len();
            endpoint.bodies.lock().unwrap().push(envelopes);
            (
                StatusCode::OK,
                format!(r#"{{"itemsReceived":{n},"itemsAccepted":{n},"errors":[]}}"#),
            )
        }
    }
}

/// An ingestion endpoint on a free loopback port, and a connection string naming it.
async fn endpoint() -> (Arc<Endpoint>, ConnectionString) {
    let endpoint = Arc::new(Endpoint::default());
    let router = Router::new()
        .route("/v2.1/track", post(track))
        .with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let connection = ConnectionString::parse(&format!(
        "InstrumentationKey={IKEY};IngestionEndpoint=http://{addr}/;LiveEndpoint=http://{addr}/"
    ))
    .unwrap();
    (endpoint, connection)
}

/// The envelope of metric `name` (with property `label` = `value` when given) in `body`.
fn find<'a>(body: &'a [Value], name: &str, label: Option<(&str, &str)>) -> Option<&'a Value> {
    body.iter().find(|e| {
        let data = &e["data"]["baseData"];
        data["metrics"][0]["name"] == name && label.is_none_or(|(k, v)| data["properties"][k] == v)
    })
}

fn value(envelope: &Value) -> f64 {
    envelope["data"]["baseData"]["metrics"][0]["value"]
        .as_f64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_carry_increases_and_a_failing_endpoint_neither_blocks_nor_grows() {
    let (endpoint, connection) = endpoint().await;
    let mut exporter = Exporter::new(&connection, None).with_timeout(Duration::from_millis(300));

    metrics::deployment_started();
    metrics::deployment_ended("Succeeded");
    metrics::step_took(Duration::from_millis(40));
    metrics::arm_call("GET", "ok");
    let sent = exporter.export().await.unwrap();
    assert_eq!(endpoint.requests.load(Ordering::SeqCst), 1);
    let body = endpoint.bodies.lock().unwrap()[0].clone();
    assert_eq!(sent.envelopes, body.len());
    assert_eq!(sent.left, 0);
    for envelope in &body {
        assert_eq!(envelope["name"], "Microsoft.ApplicationInsights.Metric");
        assert_eq!(envelope["iKey"], IKEY);
        assert!(
            envelope["time"].as_str().unwrap().ends_with('Z'),
            "{envelope}"
        );
        assert_eq!(envelope["data"]["baseType"], "MetricData");
        assert_eq!(envelope["data"]["baseData"]["ver"], 2);
        let metrics = envelope["data"]["baseData"]["metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 1);
        assert!(
            metrics[0]["name"].as_str().unwrap().starts_with("berth_"),
            "{envelope}"
        );
        assert!(metrics[0]["value"].is_number(), "{envelope}");
    }
    let started = find(&body, "berth_deployments_started", None).unwrap();
    assert_eq!(value(started), 1.0);
    let ended = find(
        &body,
        "berth_deployments_ended",
        Some(("status", "Succeeded")),
    )
    .unwrap();
    assert_eq!(value(ended), 1.0);
    let arm = find(&body, "berth_arm_calls", Some(("verb", "GET"))).unwrap();
    assert_eq!(arm["data"]["baseData"]["properties"]["outcome"], "ok");
    let step = find(&body, "berth_step_duration_seconds", None).unwrap();
    assert_eq!(step["data"]["baseData"]["metrics"][0]["count"], 1);
    assert!((value(step) - 0.04).abs() < 1e-9, "{step}");
    assert!(find(&body, "berth_logs_truncated", None).is_some());
    let series = exporter.series();

    // Nothing new: counters say 0, histograms say nothing.
    exporter.export().await.unwrap();
    let body = endpoint.bodies.lock().unwrap()[1].clone();
    assert_eq!(
        value(find(&body, "berth_deployments_started", None).unwrap()),
        0.0
    );
    assert!(find(&body, "berth_step_duration_seconds", None).is_none());

    // A 500: one request, no retry, counted; the increase is sent with the next accepted export.
    endpoint.mode.store(FAIL, Ordering::SeqCst);
    metrics::deployment_started();
    let before = endpoint.requests.load(Ordering::SeqCst);
    assert_eq!(exporter.export().await, None);
    assert_eq!(endpoint.requests.load(Ordering::SeqCst), before + 1);
    assert_eq!(exporter.series(), series);

    // A hang: the export gives up at its timeout, and hooks meanwhile never wait for it.
    endpoint.mode.store(HANG, Ordering::SeqCst);
    let start = Instant::now();
    let hanging = tokio::spawn(async move {
        let sent = exporter.export().await;
        (sent, exporter)
    });
    let hooks = Instant::now();
    for _ in 0..10_000 {
        metrics::step_took(Duration::from_millis(1));
    }
    assert!(
        hooks.elapsed() < Duration::from_secs(1),
        "{:?}",
        hooks.elapsed()
    );
    let (sent, mut exporter) = hanging.await.unwrap();
    assert_eq!(sent, None);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(exporter.series(), series);
    assert!(
        metrics::render()
            .await
            .contains("berth_metrics_exports_failed_total 2\n")
    );

    // Back up: what the failures did not deliver arrives now, once.
    endpoint.mode.store(OK, Ordering::SeqCst);
    exporter.export().await.unwrap();
    let body = endpoint.bodies.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        value(find(&body, "berth_deployments_started", None).unwrap()),
        1.0
    );
    let step = find(&body, "berth_step_duration_seconds", None).unwrap();
    assert_eq!(step["data"]["baseData"]["metrics"][0]["count"], 10_000);
    assert_eq!(
        value(find(&body, "berth_metrics_exports_failed", None).unwrap()),
        2.0
    );
}

#[tokio::test]
async fn one_export_sends_a_bounded_batch() {
    let (endpoint, connection) = endpoint().await;
    let mut exporter = Exporter::new(&connection, None);
    // A provider of the test's own, with more series than a batch holds.
    let reader = Arc::new(ManualReader::builder().build());
    let provider = SdkMeterProvider::builder()
        .with_reader(Shared(reader.clone()))
        .build();
    let counter = provider.meter("t").u64_counter("berth_many").build();
    for i in 0..(MAX_BATCH + 100) {
        counter.add(1, &[KeyValue::new("i", i.to_string())]);
    }
    let mut rm = ResourceMetrics::default();
    reader.collect(&mut rm).unwrap();
    let sent = exporter.send(&rm).await.unwrap();
    assert_eq!(sent.envelopes, MAX_BATCH);
    assert_eq!(sent.left, 100);
    assert_eq!(endpoint.bodies.lock().unwrap()[0].len(), MAX_BATCH);
    assert_eq!(exporter.series(), MAX_BATCH);
}

/// The reader shared with the provider (which owns its readers).
#[derive(Debug)]
struct Shared(Arc<ManualReader>);

impl opentelemetry_sdk::metrics::reader::MetricReader for Shared {
    fn register_pipeline(&self, pipeline: std::sync::Weak<opentelemetry_sdk::metrics::Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, t: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(t)
    }
    fn temporality(
        &self,
        kind: opentelemetry_sdk::metrics::InstrumentKind,
    ) -> opentelemetry_sdk::metrics::Temporality {
        self.0.temporality(kind)
    }
}
