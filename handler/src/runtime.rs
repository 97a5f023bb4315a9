//! Assembling Berth from its configuration: store, ARM client, driver, API, worker and sweep.
//! `dev`, `serve` and the Functions mode all start here.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::api::{self, Api};
use crate::arm::{ArmClient, ArmTarget};
use crate::clock::Clock;
use crate::config::{Config, Storage};
use crate::dashboard::Dashboard;
use futures::FutureExt;
use tracing::Instrument;

use crate::azure_storage::StorageQueue;
use crate::driver::{Driver, DriverSettings, StepOutcome};
use crate::functions::{
    Handlers, QueueHandler, QueueMessage, StepFailure, TimerHandler, TimerTick,
};
use crate::schedule::Scheduler;
use crate::store::azure::AzureBackend;
use crate::store::sqlite::SqliteStore;
use crate::store::{Checkpoints, RunTimes, Scheduled, Schedules, StepMessage, Steps, Templates};
use crate::submit::{self, Submitter};
use crate::sweep::{REDRIVE_AFTER_MS, Sweep};
use crate::worker;

/// One backend's stores: checkpoints, steps, run times, templates and schedules.
type Stores = (
    Arc<dyn Checkpoints>,
    Arc<dyn Steps>,
    Arc<dyn RunTimes>,
    Arc<dyn Templates>,
    Arc<dyn Schedules>,
);

/// Errors assembling the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("opening the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Unsupported(String),
    #[error("choosing the Azure credential: {0}")]
    Credential(#[from] crate::azure_storage::credential::CredentialError),
}

/// Berth, assembled.
#[derive(Clone)]
pub struct Runtime {
    pub driver: Driver,
    pub api: Arc<Api>,
    pub steps: Arc<dyn Steps>,
    pub sweep: Sweep,
    /// Starts schedules' runs (the `scheduler` timer, and a loop in `dev` and `serve`).
    pub scheduler: Scheduler,
    pub workers: usize,
    pub step_lease_ms: i64,
    /// Starts deployments from submit-queue messages (the `submit` function, or [`submit::run`]).
    pub submitter: Submitter,
    /// The submit queue and its poison queue, which `dev` and `serve` consume on Azure Storage.
    pub submit_queues: Option<Arc<(StorageQueue, StorageQueue)>>,
}

impl Runtime {
    /// Builds the runtime from its configuration.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, RuntimeError> {
        let mut submit_queues = None;
        let (store, steps, run_times, templates, schedules): Stores = match &config.storage {
            Storage::Sqlite { path } => {
                let sqlite = Arc::new(SqliteStore::open(path, clock.clone())?);
                (
                    sqlite.clone(),
                    sqlite.clone(),
                    sqlite.clone(),
                    sqlite.clone(),
                    sqlite,
                )
            }
            Storage::Azure => {
                let connection = config.storage_connection.as_ref().ok_or_else(|| {
                    RuntimeError::Unsupported("AzureWebJobsStorage is not set".into())
                })?;
                // Identity-based connections need a token; Shared Key and SAS sign themselves.
                let credential = match &config.storage_credentials {
                    Some(settings) => Some(crate::azure_storage::credential::choose(settings)?.0),
                    None => None,
                };
                let azure =
                    AzureBackend::open(connection, credential, &config.queue, clock.clone())
                        .await?;
                let queues = submit::queues(&azure.account, &config.submit_queue)
                    .await
                    .map_err(|e| crate::store::StoreError::Backend {
                        operation: "create the submit queue",
                        transient: e.is_transient(),
                        source: Box::new(e),
                    })?;
                submit_queues = Some(Arc::new(queues));
                (
                    azure.store.clone(),
                    azure.steps,
                    azure.store.clone(),
                    azure.store.clone(),
                    azure.store,
                )
            }
        };
        let target = ArmTarget {
            endpoint: config.arm.endpoint.clone(),
            subscription: config.arm.subscription.clone(),
            resource_group: config.arm.resource_group.clone(),
            location: config.arm.location.clone(),
            api_version: config.arm.api_version.clone(),
        };
        // `choose` logs which credential it picked (never a secret).
        let credential = if config.arm.use_identity {
            Some(crate::azure_storage::credential::choose(&config.arm.credentials)?.0)
        } else {
            None
        };
        let mut arm =
            ArmClient::new(target, credential).with_read_budget(config.arm.reads_per_second);
        if let Some(token) = &config.arm.token {
            arm = arm.with_static_token(token.clone());
        }
        // Published with the app's own identity, as ARM is called (`choose` logs which).
        let event_grid = match &config.event_grid_topic {
            Some(url) => {
                let credential =
                    crate::azure_storage::credential::choose(&config.arm.credentials)?.0;
                let topic = crate::notify::EventGrid::new(url.clone(), credential);
                tracing::info!(eventgrid.host = %topic.host(), "outcomes are published to Event Grid");
                Some(topic)
            }
            None => None,
        };
        let settings = DriverSettings {
            app: config.app.clone(),
            settings: Arc::new(|name: &str| std::env::var(name).ok()),
            secure_value_from: config.secure_value_from.clone(),
            fetch_share_keys: config.arm.use_identity,
            create_claim_ms: config.create_claim_ms,
            inline_step_ms: config.inline_step_ms,
            diagnostics_workspace: config.diagnostics_workspace.clone(),
            max_cores: config.max_cores.clone(),
            looks: config.looks,
            notify: config.notify.clone(),
            event_grid,
            ..DriverSettings::default()
        };
        let driver = Driver::new(
            store.clone(),
            arm.clone(),
            Arc::new(config.keys.clone()),
            clock.clone(),
            settings,
        )
        .with_run_times(run_times)
        .with_templates(templates)
        .with_schedules(schedules);
        let scheduler =
            Scheduler::of(&driver, config.public_url.clone()).expect("the driver keeps schedules");
        let api = Arc::new(Api {
            driver: driver.clone(),
            api_key: config.api_key.clone(),
            public_url: config.public_url.clone(),
            prices: config.prices,
            loopback_only: config.loopback_only,
        });
        crate::metrics::watch_queue(steps.clone());
        let sweep = Sweep {
            store,
            arm,
            app: config.app.clone(),
            clock,
            steps: steps.clone(),
            retention_ms: config.retention_ms,
            grace_ms: config.sweep_grace_ms,
            redrive_after_ms: REDRIVE_AFTER_MS,
        };
        let submitter = Submitter {
            driver: driver.clone(),
            events: config.submit_events.clone(),
            base: config.submit_base.clone(),
            notify_key: config.notify_key.clone(),
        };
        Ok(Runtime {
            submitter,
            submit_queues,
            driver,
            api,
            steps,
            sweep,
            scheduler,
            workers: config.workers,
            step_lease_ms: config.step_lease_ms,
        })
    }

    /// The HTTP API, `GET /metrics` and the dashboard at `/` (`dev`, `serve`); `GET /` without `text/html` in
    /// `Accept` is the readiness answer (`{"status":"ready"}`).
    pub fn router(&self) -> Router {
        api::router(self.api.clone())
            .merge(api::metrics_router(self.api.clone()))
            .merge(Dashboard::at_root(self.api.clone()).router())
    }

    /// The HTTP functions' router: the API and the dashboard under `/api/dashboard` (the
    /// `dashboard` function); the Functions dispatcher answers `GET /` itself.
    pub fn functions_router(&self) -> Router {
        api::router(self.api.clone()).merge(Dashboard::under_functions(self.api.clone()).router())
    }

    /// Starts the step workers, the submit-queue consumer (Azure Storage only) and the periodic
    /// sweep on the current Tokio runtime.
    pub fn spawn_background(&self, sweep_every: Duration) {
        tokio::spawn(worker::run(
            self.driver.clone(),
            self.steps.clone(),
            self.workers,
            self.step_lease_ms,
        ));
        if let Some(queues) = self.submit_queues.clone() {
            tokio::spawn(submit::run(self.submitter.clone(), queues));
        }
        let sweep = self.sweep.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(sweep_every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let report = sweep.run_once().await;
                tracing::info!(
                    sweep.groups = report.groups_seen,
                    sweep.orphans = report.orphans_deleted.len(),
                    sweep.redriven = report.redriven,
                    sweep.purged = report.purged,
                    sweep.errors = report.errors.len(),
                    "sweep done"
                );
            }
        });
        let scheduler = self.scheduler.clone();
        let driver = self.driver.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(until_next_tick(driver.now())).await;
                let report = scheduler.run_once().await;
                if !report.started.is_empty() || !report.errors.is_empty() || report.missed > 0 {
                    tracing::info!(
                        schedules = report.schedules,
                        schedules.started = report.started.len(),
                        schedules.missed = report.missed,
                        schedules.held = report.held,
                        schedules.errors = report.errors.len(),
                        "schedules ticked"
                    );
                }
            }
        });
    }

    /// The Functions triggers: the API for HTTP functions, a step per `steps` message, a
    /// deployment per `submit` message, the sweep per `cleanup` tick.
    pub fn functions_handlers(&self) -> Handlers {
        let (driver, steps) = (self.driver.clone(), self.steps.clone());
        let queue: QueueHandler = Arc::new(move |message: QueueMessage| {
            let (driver, steps) = (driver.clone(), steps.clone());
            async move { run_step(&driver, steps.as_ref(), &message).await }.boxed()
        });
        let (sweep, scheduler) = (self.sweep.clone(), self.scheduler.clone());
        let timer: TimerHandler = Arc::new(move |function: String, tick: TimerTick| {
            let (sweep, scheduler) = (sweep.clone(), scheduler.clone());
            async move {
                if function.eq_ignore_ascii_case("scheduler") {
                    return Ok(schedules_tick(&scheduler).await);
                }
                let report = sweep.run_once().await;
                let summary = format!(
                    "sweep: {} groups seen, {} orphans deleted, {} re-driven, {} purged, {} errors (past due: {})",
                    report.groups_seen,
                    report.orphans_deleted.len(),
                    report.redriven,
                    report.purged,
                    report.errors.len(),
                    tick.is_past_due
                );
                let mut logs = vec![summary];
                logs.extend(report.errors.iter().cloned());
                Ok(logs)
            }
            .boxed()
        });
        let submitter = self.submitter.clone();
        let submit: QueueHandler = Arc::new(move |message: QueueMessage| {
            let submitter = submitter.clone();
            async move {
                match submitter.handle(&message.text, &message.id).await {
                    Ok(line) => Ok(vec![line]),
                    // Logged and counted; answered as done, so the host deletes it.
                    Err(submit::SubmitFailure::Dropped(reason)) => {
                        Ok(vec![format!("submit message dropped: {reason}")])
                    }
                    Err(submit::SubmitFailure::Transient(reason)) => {
                        Err(StepFailure::Transient { reason })
                    }
                }
            }
            .boxed()
        });
        Handlers {
            api: self.functions_router(),
            queue,
            submit,
            timer,
        }
    }
}

/// How long `dev` and `serve` wait for their next schedule tick: until just after the next whole
/// minute (of the runtime's clock), as the `scheduler` function's own schedule fires.
fn until_next_tick(now: crate::engine::Millis) -> Duration {
    use crate::schedule::{TICK_AFTER_MINUTE_MS, TICK_EVERY_MS};
    let wait = TICK_EVERY_MS - now.rem_euclid(TICK_EVERY_MS) + TICK_AFTER_MINUTE_MS;
    Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

/// One `scheduler` tick, told as log lines: a tick never fails the invocation (the next one
/// looks again), its errors are in its lines.
async fn schedules_tick(scheduler: &Scheduler) -> Vec<String> {
    let report = scheduler.run_once().await;
    let mut logs = vec![format!(
        "schedules: {} looked at, {} started, {} missed, {} held, {} errors",
        report.schedules,
        report.started.len(),
        report.missed,
        report.held,
        report.errors.len()
    )];
    logs.extend(report.started.iter().map(|id| format!("started {id}")));
    logs.extend(report.errors);
    logs
}

/// One `steps` invocation: succeeds only once the step's checkpoints are saved.
async fn run_step(
    driver: &Driver,
    steps: &dyn Steps,
    message: &QueueMessage,
) -> Result<Vec<String>, StepFailure> {
    let Some(step) = StepMessage::from_text(&message.text) else {
        let text: String = message.text.chars().take(120).collect();
        return Err(StepFailure::Poison {
            reason: format!("not a step message: {text:?}"),
        });
    };
    let transient = |e: &dyn std::fmt::Display| StepFailure::Transient {
        reason: e.to_string(),
    };
    let span = worker::step_span(&step, message.dequeue_count);
    match crate::metrics::timed_step(driver.step(&step))
        .instrument(span)
        .await
    {
        Ok(StepOutcome::Ran { done }) => Ok(vec![format!(
            "step for {} (seq {}) ran; done: {done}",
            step.id, step.seq
        )]),
        Ok(StepOutcome::Stale) => Ok(vec![format!(
            "stale step for {} (seq {}) dropped: a newer message covers it",
            step.id, step.seq
        )]),
        // Checkpoints are saved before their steps are sent, so an unknown deployment was purged.
        Ok(StepOutcome::Unknown) => Ok(vec![format!(
            "no deployment {} (purged); message dropped",
            step.id
        )]),
        Ok(StepOutcome::Early { at }) => {
            let id = step.id.clone();
            steps
                .send(&Scheduled { message: step, at })
                .await
                .map_err(|e| transient(&e))?;
            Ok(vec![format!(
                "step for {id} is due later; sent again for the rest of the wait"
            )])
        }
        Err(e) if e.is_transient() => Err(transient(&e)),
        Err(e) => Err(StepFailure::Poison {
            reason: e.to_string(),
        }),
    }
}
