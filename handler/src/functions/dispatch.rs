//! The custom-handler server: `GET /` for the host's readiness probe, `POST /{function}` for
//! invocations, dispatched by the function table to the API router, the step handler or the sweep.
//!
//! # Guarantees (the Functions contract, `docs/functions-host-protocol.md`)
//! - Every answer is a JSON object with `Content-Type: application/json`, never an empty body (an
//!   empty or `null` body makes the host wait for `functionTimeout`).
//! - An HTTP invocation answers 2xx whenever the API answered at all; the API's status, 4xx and 5xx
//!   included, travels inside `Outputs.res`.
//! - A queue invocation answers 2xx only when the step handler returned `Ok`, i.e. after it saved
//!   its checkpoint; the host then deletes the message. Any failure answers non-2xx, so the host
//!   makes the message visible again after `visibilityTimeout` and, once
//!   `DequeueCount >= maxDequeueCount`, moves it to `<queue>-poison`. The reason is in `Logs`.
//! - An invocation body the handler cannot decode answers 400 with the offending field named; for
//!   a queue message that means retries and then the poison queue, where an operator can read it.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use thiserror::Error;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use super::http::{HttpInvocation, response_to_res};
use super::invocation::{Envelope, InvocationError, QueueMessage, TimerTick};
use super::logs::capture;
use super::table::{FunctionTable, HOST_JSON, Trigger};
use crate::api::Problem;

/// The largest invocation body read from the host.
pub const INVOCATION_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Runs one workflow step for a queue message. `Ok` carries log lines for the response's `Logs`
/// and means "done, delete the message": return it only after the checkpoint is saved.
///
/// A message for a deployment that no longer exists should be answered `Ok` with a log line
/// ("complete and drop"), not [`StepFailure::Poison`]: checkpoints are saved before any step
/// message for them is enqueued (commit first, then act), so an unknown deployment at delivery
/// time can only be one that was purged with `DELETE`; its leftover messages are expected, and
/// poisoning them would page an operator over normal operation.
pub type QueueHandler =
    Arc<dyn Fn(QueueMessage) -> BoxFuture<'static, Result<Vec<String>, StepFailure>> + Send + Sync>;

/// Runs a timer function (named by its folder: the sweep for `cleanup`, the schedules' tick for
/// `scheduler`) for a tick. `Ok` carries log lines for the response's `Logs`.
pub type TimerHandler = Arc<
    dyn Fn(String, TimerTick) -> BoxFuture<'static, Result<Vec<String>, StepFailure>> + Send + Sync,
>;

/// Why a step or sweep did not complete. Either way the invocation fails (non-2xx) and the host's
/// retry applies; the two differ in what the logs tell an operator.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StepFailure {
    /// Worth another try (a storage or ARM hiccup, a CAS conflict that outlived its retries).
    #[error("step failed and will be retried: {reason}")]
    Transient {
        /// What went wrong, for the logs; no secrets.
        reason: String,
    },
    /// Can never succeed (an unparseable message). Failing every delivery sends it to the poison
    /// queue after `maxDequeueCount` deliveries.
    #[error("message can never succeed: {reason}")]
    Poison {
        /// What is wrong with it, for the logs; no secrets.
        reason: String,
    },
}

/// What the custom handler serves: the HTTP API and the non-HTTP triggers.
#[derive(Clone)]
pub struct Handlers {
    /// The API router, serving its routes under `/api`.
    pub api: Router,
    /// The `steps` queue trigger (and any queue function but `submit`).
    pub queue: QueueHandler,
    /// The `submit` queue trigger: deployments from messages (see [`crate::submit`]).
    pub submit: QueueHandler,
    /// The timer triggers (`cleanup`, `scheduler`).
    pub timer: TimerHandler,
}

struct Dispatcher {
    table: FunctionTable,
    handlers: Handlers,
    max_dequeue_count: u32,
    /// `extensions.http.routePrefix` of the embedded host.json.
    route_prefix: String,
}

/// The custom handler's router: `GET /` answers the readiness probe at once; `POST /{function}`
/// dispatches HTTP functions to `api`, every queue function (`steps`, `submit`) to `queue` and
/// `cleanup` to `timer`.
pub fn router(api: Router, queue: QueueHandler, timer: TimerHandler) -> Router {
    handlers_router(Handlers {
        api,
        submit: queue.clone(),
        queue,
        timer,
    })
}

fn handlers_router(handlers: Handlers) -> Router {
    let table = FunctionTable::embedded().unwrap_or_else(|e| {
        // The embedded table is checked by tests, so this is a build defect; every invocation
        // then fails with "no function named …" instead of the process panicking.
        tracing::error!(error = %e, "function table is unusable");
        FunctionTable::default()
    });
    let dispatcher = Arc::new(Dispatcher {
        table,
        handlers,
        max_dequeue_count: max_dequeue_count(),
        route_prefix: route_prefix(),
    });
    Router::new()
        .route("/", get(ready))
        .route("/{function}", post(invoke))
        .fallback(not_found)
        .with_state(dispatcher)
}

/// `extensions.queues.maxDequeueCount` from the embedded host.json (the host's default, 5, when
/// unset).
fn max_dequeue_count() -> u32 {
    serde_json::from_str::<Value>(HOST_JSON)
        .ok()
        .and_then(|h| h["extensions"]["queues"]["maxDequeueCount"].as_u64())
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(5)
}

/// `extensions.http.routePrefix` from the embedded host.json (the host's default, `api`, when
/// unset).
fn route_prefix() -> String {
    serde_json::from_str::<Value>(HOST_JSON)
        .ok()
        .and_then(|h| {
            h["extensions"]["http"]["routePrefix"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "api".to_owned())
}

/// The same router, answering the readiness probe before `init` has finished: invocations wait
/// for it. `init` starts on a task of its own when the first request comes (the host's first
/// readiness probe, sent right after the process starts), so backends come up while the host
/// goes on to its first invocation, and the first answer does not share the CPU with them. An
/// `init` error fails every invocation with that error in `Logs`. Must be called inside a Tokio
/// runtime.
pub fn lazy_router<F>(init: F) -> Router
where
    F: Future<Output = Result<Handlers, String>> + Send + 'static,
{
    type Built = Option<Result<Router, String>>;
    let (tx, rx) = tokio::sync::watch::channel::<Built>(None);
    let go = Arc::new(tokio::sync::Notify::new());
    let first_request = go.clone();
    tokio::spawn(async move {
        first_request.notified().await;
        let started = Instant::now();
        let built = init.await.map(handlers_router);
        match &built {
            Ok(_) => tracing::info!(
                elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "handler initialised"
            ),
            Err(e) => tracing::error!(error = %e, "handler initialisation failed"),
        }
        let _ = tx.send(Some(built));
    });
    let start = go.clone();
    let probe = move || {
        // A stored permit: the first request starts `init`, the others change nothing.
        start.notify_one();
        ready()
    };
    let invoke_lazily = move |request: axum::extract::Request| {
        let mut rx = rx.clone();
        go.notify_one();
        async move {
            let built = match rx.wait_for(Option::is_some).await {
                Ok(built) => built.clone(),
                Err(_) => None,
            };
            match built {
                Some(Ok(router)) => match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Some(Err(e)) => failed(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "initialisation failed",
                    vec![format!("handler initialisation failed: {e}")],
                ),
                None => failed(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "initialisation abandoned",
                    vec!["handler initialisation was abandoned".to_owned()],
                ),
            }
        }
    };
    Router::new().route("/", get(probe)).fallback(invoke_lazily)
}

/// Binds `127.0.0.1:port` (the host always calls 127.0.0.1) and serves [`lazy_router`] until
/// the process ends. Binding comes first, so the readiness probe is answered while `init` runs.
pub async fn serve(
    port: u16,
    init: impl Future<Output = Result<Handlers, String>> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).await?;
    tracing::info!(port, "custom handler listening");
    // The host's invocations may legitimately run for `functionTimeout` (10 minutes), and its
    // pooled connections idle for a minute or two: close them later than it would.
    let limits = crate::server::Limits {
        request_timeout: std::time::Duration::from_secs(15 * 60),
        header_timeout: std::time::Duration::from_secs(5 * 60),
        ..crate::server::Limits::default()
    };
    crate::server::serve(listener, lazy_router(init), limits, std::future::pending()).await
}

/// The readiness probe: the host sends `GET /` every 25 ms until anything answers.
async fn ready() -> Response {
    json_response(StatusCode::OK, json!({"status": "ready"}))
}

async fn not_found() -> Response {
    failed(
        StatusCode::NOT_FOUND,
        "not an invocation",
        vec!["the Functions host calls POST /{function} and GET /".to_owned()],
    )
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// A successful invocation: `{"Outputs":…,"Logs":[…],"ReturnValue":null}`.
fn succeeded(outputs: Value, logs: Vec<String>) -> Response {
    json_response(
        StatusCode::OK,
        json!({"Outputs": outputs, "Logs": logs, "ReturnValue": null}),
    )
}

/// A failed invocation. The host ignores the body of a non-2xx answer, but it is still a JSON
/// object with the reason, for whoever reads the wire.
fn failed(status: StatusCode, error: &str, logs: Vec<String>) -> Response {
    json_response(
        status,
        json!({"Outputs": {}, "Logs": logs, "ReturnValue": null, "Error": error}),
    )
}

/// Runs `future`, turning a panic into an error message, so one broken step cannot take down the
/// connection the host is waiting on.
async fn guarded<T>(future: impl Future<Output = T>) -> Result<T, String> {
    std::panic::AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned())
        })
}

fn bad_invocation(function: &str, error: &InvocationError, consequence: &str) -> Response {
    let line = format!("{function}: unusable invocation: {error}; {consequence}");
    tracing::warn!(function, error = %error, "unusable invocation");
    failed(StatusCode::BAD_REQUEST, &error.to_string(), vec![line])
}

async fn invoke(
    State(dispatcher): State<Arc<Dispatcher>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let invocation_id = headers
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Some(entry) = dispatcher.table.get(&function) else {
        tracing::warn!(function, "invocation of an unknown function");
        return failed(
            StatusCode::NOT_FOUND,
            "unknown function",
            vec![format!("no function named `{function}` in functions/")],
        );
    };
    let body = match axum::body::to_bytes(body, INVOCATION_BODY_LIMIT).await {
        Ok(body) => body,
        Err(e) => {
            return failed(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invocation body unreadable",
                vec![format!(
                    "{function}: invocation body unreadable or over {INVOCATION_BODY_LIMIT} bytes: {e}"
                )],
            );
        }
    };
    let function = entry.name.clone();
    let trigger = entry.trigger.clone();
    let kind = match trigger {
        Trigger::Http { .. } => "http",
        Trigger::Queue { .. } => "queue",
        Trigger::Timer { .. } => "timer",
    };
    let span = tracing::info_span!(
        "invocation",
        function = %function,
        invocation.id = %invocation_id,
        trigger.kind = kind,
    );
    async move {
        match Envelope::parse(&body) {
            Err(e) => bad_invocation(&function, &e, consequence(&trigger)),
            Ok(envelope) => match &trigger {
                Trigger::Http {
                    binding,
                    methods,
                    route,
                    ..
                } => {
                    let route = HttpRoute {
                        methods,
                        template: route,
                    };
                    invoke_http(&dispatcher, &function, &envelope, binding, route).await
                }
                Trigger::Queue { binding, .. } => {
                    invoke_queue(&dispatcher, &function, &envelope, binding).await
                }
                Trigger::Timer { binding, .. } => {
                    invoke_timer(&dispatcher, &function, &envelope, binding).await
                }
            },
        }
    }
    .instrument(span)
    .await
}

fn consequence(trigger: &Trigger) -> &'static str {
    match trigger {
        Trigger::Queue { .. } => {
            "failing so the host retries it and moves it to the poison queue after maxDequeueCount"
        }
        Trigger::Http { .. } => "failing the invocation",
        Trigger::Timer { .. } => "failing this tick; the next one runs as scheduled",
    }
}

/// What an HTTP function serves, from its `function.json`.
struct HttpRoute<'a> {
    methods: &'a [String],
    template: &'a str,
}

/// The answer to a request an HTTP function must not pass on: a problem in `Outputs.res`, so the
/// caller gets a plain 4xx.
async fn refused(function: &str, problem: Problem) -> Response {
    let line = format!("{function}: request refused: {}", problem.detail);
    tracing::warn!(function, "{line}");
    let (res, _) = response_to_res(problem.into_response()).await;
    succeeded(json!({"res": res}), vec![line])
}

async fn invoke_http(
    dispatcher: &Dispatcher,
    function: &str,
    envelope: &Envelope,
    binding: &str,
    route: HttpRoute<'_>,
) -> Response {
    let consequence = "failing the invocation";
    let request = match HttpInvocation::decode(envelope, binding) {
        Ok(invocation) => invocation,
        Err(e) => return bad_invocation(function, &e, consequence),
    };
    let method = request.method.clone();
    if !route.methods.is_empty() && !route.methods.iter().any(|m| m == method.as_str()) {
        let detail = format!("method: {method} is not served by function `{function}`");
        let problem = Problem::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", detail);
        return refused(function, problem).await;
    }
    // Routed by the invoked function and its `Params`, never by the URL's normalised path.
    let path = match request.route_path(&dispatcher.route_prefix, route.template) {
        Ok(path) => path,
        Err(e) => {
            let problem = Problem::new(StatusCode::BAD_REQUEST, "Bad request", e.to_string());
            return refused(function, problem).await;
        }
    };
    let request = match request.into_request(&path) {
        Ok(request) => request,
        Err(e) => return bad_invocation(function, &e, consequence),
    };
    let started = Instant::now();
    let (response, mut logs) = capture(guarded(async {
        match dispatcher.handlers.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }))
    .await;
    let response = match response {
        Ok(response) => response,
        Err(panic) => {
            let line = format!("{method} {path}: the API panicked: {panic}");
            tracing::error!("{line}");
            logs.push(line);
            return failed(StatusCode::INTERNAL_SERVER_ERROR, "API panicked", logs);
        }
    };
    let status = response.status();
    let (res, note) = response_to_res(response).await;
    let line = format!(
        "{method} {path} -> {} in {} ms",
        status.as_u16(),
        started.elapsed().as_millis()
    );
    tracing::info!(http.method = %method, http.path = %path, http.status = status.as_u16(), "{line}");
    logs.push(line);
    if let Some(note) = note {
        tracing::warn!("{note}");
        logs.push(note);
    }
    succeeded(json!({"res": res}), logs)
}

async fn invoke_queue(
    dispatcher: &Dispatcher,
    function: &str,
    envelope: &Envelope,
    binding: &str,
) -> Response {
    let message = match QueueMessage::decode(envelope, binding) {
        Ok(message) => message,
        Err(e) => {
            return bad_invocation(
                function,
                &e,
                "failing so the host retries it and moves it to the poison queue after maxDequeueCount",
            );
        }
    };
    let max = dispatcher.max_dequeue_count;
    let delivery = format!(
        "message {} delivery {} of {max}",
        message.id, message.dequeue_count
    );
    let span = tracing::info_span!(
        "step",
        queue.message_id = %message.id,
        queue.dequeue_count = message.dequeue_count,
    );
    let handler = match function.eq_ignore_ascii_case("submit") {
        true => &dispatcher.handlers.submit,
        false => &dispatcher.handlers.queue,
    };
    let (result, mut logs) = capture(guarded(handler(message.clone())))
        .instrument(span)
        .await;
    let result = result.unwrap_or_else(|panic| {
        Err(StepFailure::Transient {
            reason: format!("the step panicked: {panic}"),
        })
    });
    match result {
        Ok(lines) => {
            for line in &lines {
                tracing::info!(queue.message_id = %message.id, "{line}");
            }
            logs.extend(lines);
            succeeded(json!({}), logs)
        }
        Err(failure) => {
            let next = if message.dequeue_count >= max {
                crate::metrics::poisoned(1);
                "the host now moves it to the poison queue"
            } else {
                "the host retries it after visibilityTimeout"
            };
            let line = format!("{delivery}: {failure}; {next}");
            tracing::warn!(queue.message_id = %message.id, queue.dequeue_count = message.dequeue_count, "{line}");
            logs.push(line);
            let status = match failure {
                StepFailure::Transient { .. } => StatusCode::SERVICE_UNAVAILABLE,
                StepFailure::Poison { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            };
            failed(status, &failure.to_string(), logs)
        }
    }
}

async fn invoke_timer(
    dispatcher: &Dispatcher,
    function: &str,
    envelope: &Envelope,
    binding: &str,
) -> Response {
    let tick = match TimerTick::decode(envelope, binding) {
        Ok(tick) => tick,
        Err(e) => {
            return bad_invocation(
                function,
                &e,
                "failing this tick; the next one runs as scheduled",
            );
        }
    };
    let mut first = Vec::new();
    if tick.is_past_due {
        let missed = tick
            .schedule_status
            .map(|s| format!(" (missed occurrence {})", s.next))
            .unwrap_or_default();
        let line = format!("{function}: timer is past due: catch-up run{missed}");
        tracing::info!(timer.is_past_due = true, "{line}");
        first.push(line);
    }
    let (result, logs) = capture(guarded((dispatcher.handlers.timer)(
        function.to_owned(),
        tick,
    )))
    .await;
    let result = result.unwrap_or_else(|panic| {
        Err(StepFailure::Transient {
            reason: format!("{function} panicked: {panic}"),
        })
    });
    first.extend(logs);
    match result {
        Ok(lines) => {
            for line in &lines {
                tracing::info!("{line}");
            }
            first.extend(lines);
            succeeded(json!({}), first)
        }
        Err(failure) => {
            let line = format!("{function}: {failure}; the next tick runs as scheduled");
            tracing::warn!("{line}");
            first.push(line);
            failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                &failure.to_string(),
                first,
            )
        }
    }
}
