//! Metrics through OpenTelemetry: one process-wide meter provider read on demand by a
//! [`ManualReader`], with the small functions below as the hooks, one line each where the thing
//! happens (the engine has none: it stays pure).
//!
//! - `dev` and `serve` answer `GET /metrics` with [`render`]: Prometheus' text format
//!   ([`prometheus`]), behind the API key.
//! - Functions mode sends them to Application Insights every minute ([`insights`]).
//!
//! The queue depth is read when the metrics are collected ([`collect`]), not per step: one count
//! query (SQLite) or one Get Queue Metadata request (Azure) per scrape or export.
//!
//! # Guarantees
//! - A hook never blocks and never fails: it adds to an in-memory aggregate.
//! - Label values are Berth's own words (statuses, verbs, outcomes), never a caller's text; the
//!   encoders escape them anyway.

pub mod insights;
pub mod prometheus;

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, MeterProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};

use crate::store::Steps;

/// The step latency histogram's bucket bounds, in seconds.
pub const STEP_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// How long a collection waits for the queue depth before going on without it.
const DEPTH_TIMEOUT: Duration = Duration::from_secs(3);

/// The instruments, and the reader that collects them.
struct Metrics {
    /// Kept alive with the instruments (dropping it would stop them).
    _provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
    started: Counter<u64>,
    ended: Counter<u64>,
    step_seconds: Histogram<f64>,
    queue_depth: Gauge<u64>,
    queue_oldest_age: Gauge<f64>,
    poisoned: Counter<u64>,
    submit_dropped: Counter<u64>,
    arm_calls: Counter<u64>,
    arm_throttles: Counter<u64>,
    read_budget_waits: Counter<u64>,
    sweeps: Counter<u64>,
    sweep_groups_seen: Counter<u64>,
    sweep_orphans_deleted: Counter<u64>,
    sweep_redriven: Counter<u64>,
    sweep_purged: Counter<u64>,
    sweep_errors: Counter<u64>,
    sweep_unreadable: Counter<u64>,
    sweep_poison_redriven: Counter<u64>,
    sweep_poison_reported: Counter<u64>,
    logs_truncated: Counter<u64>,
    notifications: Counter<u64>,
    exports_failed: Counter<u64>,
}

/// The [`ManualReader`] shared between the provider (which owns its readers) and [`collect`].
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();
/// Where the queue depth is read from: the last runtime built in this process.
static QUEUE: Mutex<Option<Arc<dyn Steps>>> = Mutex::new(None);

fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| {
        let reader = Arc::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder()
            .with_reader(SharedReader(reader.clone()))
            .build();
        let meter = provider.meter("berth");
        let counter = |name: &'static str, help: &'static str| {
            meter.u64_counter(name).with_description(help).build()
        };
        let m = Metrics {
            started: counter("berth_deployments_started", "Deployments accepted."),
            ended: counter(
                "berth_deployments_ended",
                "Deployments that reached a final status, by status.",
            ),
            step_seconds: meter
                .f64_histogram("berth_step_duration_seconds")
                .with_description("Time to run a step message's step (load, rounds, saves, ARM calls).")
                .with_unit("s")
                .with_boundaries(STEP_BUCKETS.to_vec())
                .build(),
            queue_depth: meter
                .u64_gauge("berth_queue_depth")
                .with_description("Step messages in the queue, later ones included (approximate for Azure queues), read at collection.")
                .build(),
            queue_oldest_age: meter
                .f64_gauge("berth_queue_oldest_age_seconds")
                .with_description("How long the oldest visible step message has waited (SQLite only), read at collection.")
                .with_unit("s")
                .build(),
            poisoned: counter(
                "berth_poison_messages",
                "Step messages given up on: moved to the poison table or queue, or failed on their last delivery (Functions).",
            ),
            submit_dropped: counter(
                "berth_submit_dropped",
                "Submit-queue messages dropped as never valid (not a spec, invocation or mapped event; a bad parameter or spec), each logged with its reason.",
            ),
            arm_calls: counter(
                "berth_arm_calls",
                "ARM requests sent (each try), by verb and outcome.",
            ),
            arm_throttles: counter("berth_arm_throttles", "ARM answers 429 (throttled)."),
            read_budget_waits: counter(
                "berth_arm_read_budget_waits",
                "ARM reads that waited for the read budget: slept inline, put off to a later step, or skipped (a running log read with no token to spare).",
            ),
            sweeps: counter("berth_sweeps", "Sweeps run."),
            sweep_groups_seen: counter("berth_sweep_groups_seen", "Container groups the sweeps listed."),
            sweep_orphans_deleted: counter("berth_sweep_orphans_deleted", "Orphan container groups the sweeps deleted."),
            sweep_redriven: counter("berth_sweep_redriven", "Deployments the sweeps re-drove (a lost step message)."),
            sweep_purged: counter("berth_sweep_purged", "Deployments the sweeps purged after retention."),
            sweep_errors: counter("berth_sweep_errors", "Errors met by the sweeps."),
            sweep_unreadable: counter("berth_sweep_unreadable", "Unreadable deployments the sweeps met."),
            sweep_poison_redriven: counter(
                "berth_sweep_poison_redriven",
                "Poisoned step messages of live deployments the sweeps re-drove.",
            ),
            sweep_poison_reported: counter(
                "berth_sweep_poison_reported",
                "Poisoned step messages of deployments no longer live the sweeps reported and deleted.",
            ),
            logs_truncated: counter(
                "berth_logs_truncated",
                "Container logs found truncated (ACI keeps a bounded tail).",
            ),
            notifications: counter(
                "berth_notifications",
                "Notification attempts, by outcome: delivered, failed (tried again), given_up.",
            ),
            exports_failed: counter(
                "berth_metrics_exports_failed",
                "Metric exports to Application Insights that failed.",
            ),
            reader,
            _provider: provider,
        };
        // Counters without labels show from the start, at 0.
        for c in [
            &m.started,
            &m.poisoned,
            &m.submit_dropped,
            &m.arm_throttles,
            &m.sweeps,
            &m.sweep_groups_seen,
            &m.sweep_orphans_deleted,
            &m.sweep_redriven,
            &m.sweep_purged,
            &m.sweep_errors,
            &m.sweep_unreadable,
            &m.sweep_poison_redriven,
            &m.sweep_poison_reported,
            &m.logs_truncated,
        ] {
            c.add(0, &[]);
        }
        m
    })
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A deployment was accepted.
pub fn deployment_started() {
    metrics().started.add(1, &[]);
}

/// A deployment reached final status `status`.
pub fn deployment_ended(status: &'static str) {
    metrics().ended.add(1, &[KeyValue::new("status", status)]);
}

/// A step ran for `elapsed` (whatever its outcome).
pub fn step_took(elapsed: Duration) {
    metrics().step_seconds.record(elapsed.as_secs_f64(), &[]);
}

/// Runs a step (`step`), recording how long it took whatever its outcome.
pub async fn timed_step<T>(step: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let outcome = step.await;
    step_took(started.elapsed());
    outcome
}

/// `n` step messages were given up on (poison table or queue; a last failed delivery).
pub fn poisoned(n: usize) {
    if n > 0 {
        metrics().poisoned.add(to_u64(n), &[]);
    }
}

/// A submit-queue message was dropped as never valid (see [`crate::submit`]).
pub fn submit_dropped() {
    metrics().submit_dropped.add(1, &[]);
}

/// An ARM request `verb` (GET, PUT, …) came back as `outcome` (`ok`, `throttled`, …).
pub fn arm_call(verb: &str, outcome: &'static str) {
    let m = metrics();
    let verb = match verb {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        _ => "other",
    };
    m.arm_calls.add(
        1,
        &[
            KeyValue::new("verb", verb),
            KeyValue::new("outcome", outcome),
        ],
    );
    if outcome == "throttled" {
        m.arm_throttles.add(1, &[]);
    }
}

/// An ARM read waited for the read budget: `inline` (slept), `put_off` (to a later step) or
/// `skipped` (a running container's log read, which takes only a spare token).
pub fn read_budget_wait(kind: &'static str) {
    metrics()
        .read_budget_waits
        .add(1, &[KeyValue::new("kind", kind)]);
}

/// A sweep ended with `report`.
pub fn sweep(report: &crate::sweep::SweepReport) {
    let m = metrics();
    m.sweeps.add(1, &[]);
    m.sweep_groups_seen.add(to_u64(report.groups_seen), &[]);
    m.sweep_orphans_deleted
        .add(to_u64(report.orphans_deleted.len()), &[]);
    m.sweep_redriven.add(to_u64(report.redriven), &[]);
    m.sweep_purged.add(to_u64(report.purged), &[]);
    m.sweep_errors.add(to_u64(report.errors.len()), &[]);
    m.sweep_unreadable.add(to_u64(report.unreadable.len()), &[]);
    m.sweep_poison_redriven
        .add(to_u64(report.poison_redriven), &[]);
    m.sweep_poison_reported
        .add(to_u64(report.poison_reported.len()), &[]);
}

/// `n` container logs were found truncated.
pub fn logs_truncated(n: u64) {
    metrics().logs_truncated.add(n, &[]);
}

/// A notification attempt came to `outcome`: `delivered`, `failed` (tried again) or `given_up`.
pub fn notification(outcome: &'static str) {
    metrics()
        .notifications
        .add(1, &[KeyValue::new("outcome", outcome)]);
}

/// An export to Application Insights failed.
pub(crate) fn export_failed() {
    metrics().exports_failed.add(1, &[]);
}

/// Reads the queue depth from `steps` at each collection (the last call wins).
pub fn watch_queue(steps: Arc<dyn Steps>) {
    *QUEUE.lock().unwrap_or_else(|e| e.into_inner()) = Some(steps);
}

/// Reads the queue depth (bounded by a timeout), then collects every instrument.
pub async fn collect() -> ResourceMetrics {
    let m = metrics();
    let queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(queue) = queue {
        match tokio::time::timeout(DEPTH_TIMEOUT, queue.depth()).await {
            Ok(Ok(Some(depth))) => {
                m.queue_depth.record(depth.messages, &[]);
                if let Some(ms) = depth.oldest_visible_ms {
                    m.queue_oldest_age.record(ms as f64 / 1000.0, &[]);
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "reading the queue depth failed"),
            Err(_) => tracing::debug!("reading the queue depth timed out"),
        }
    }
    let mut rm = ResourceMetrics::default();
    if let Err(e) = m.reader.collect(&mut rm) {
        tracing::debug!(error = %e, "collecting metrics failed");
    }
    rm
}

/// Every metric in Prometheus' text format (version 0.0.4).
pub async fn render() -> String {
    prometheus::encode(&collect().await)
}
