//! The HTTP API the README describes, the same in every mode: [`router`] under `/api`.
//!
//! In Functions mode the host authenticates callers (function keys) and this router sees the
//! reconstructed request; in `dev` and `serve` the API key middleware does it. Callbacks are
//! authorised by their own token in every mode.
//!
//! # Guarantees
//! - A body sent to a keyed route is `application/json` or a YAML type (`415` otherwise), so a web
//!   page cannot post one as a CORS "simple request" (`text/plain`, forms) without a preflight.
//! - With [`Api::loopback_only`] (`dev`), a request whose `Host` is not a loopback name (DNS
//!   rebinding) or whose `Origin` is not a loopback origin (another site) is refused with `403`.
//! - The public base URL handed to containers and pollers is `BERTH_PUBLIC_URL` when set; without
//!   it (Functions mode only) it is the host's `Data.req.Url`, never a caller's `X-Forwarded-*`.

pub mod logs;
pub mod prices;
pub mod problem;
pub mod schedules;
pub mod status;
pub mod templates;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, HttpBody as _, to_bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

pub use logs::BufferedResponse;
pub use prices::Prices;
pub use problem::Problem;

use crate::checkpoint::ListQuery;
use crate::driver::{Driver, DriverError};
use crate::engine::{Deployment, Event, RuntimeStatus};
use crate::spec::{self, Format};
use crate::store::StoreError;

/// Largest request body accepted (a spec is at most [`spec::parse::MAX_SPEC_BYTES`]).
pub const MAX_BODY: usize = 1024 * 1024;
/// The shortest `Retry-After` a poller is told.
pub const RETRY_AFTER_MIN_S: u64 = 1;
/// The longest `Retry-After` a poller is told.
pub const RETRY_AFTER_MAX_S: u64 = 60;
/// Largest event payload accepted.
pub const MAX_EVENT_PAYLOAD: usize = 64 * 1024;

/// What the API needs.
pub struct Api {
    pub driver: Driver,
    /// Required key (`x-functions-key` header or `code` query) when set.
    pub api_key: Option<String>,
    /// `BERTH_PUBLIC_URL`, else derived from each request's forwarded headers, which only the
    /// Functions dispatcher sets (from the host's `Data.req.Url`, the caller's own dropped).
    pub public_url: Option<String>,
    pub prices: Prices,
    /// Serve only requests to a loopback `Host` from no `Origin` or a loopback one (`dev`).
    pub loopback_only: bool,
}

pub(crate) type Shared = Arc<Api>;

/// The API routes, under `/api`.
pub fn router(api: Arc<Api>) -> Router {
    let keyed = Router::new()
        .route("/api/deployments", post(start).get(list))
        .route("/api/deployments/{id}", get(read).delete(purge))
        .route("/api/deployments/{id}/checkpoint", get(checkpoint))
        .route("/api/deployments/{id}/events", get(events))
        .route("/api/deployments/{id}/events/{name}", post(raise))
        .route("/api/deployments/{id}/terminate", post(terminate))
        .route(
            "/api/deployments/{id}/logs/{group}/{container}",
            get(logs::logs),
        )
        .route("/api/deployments/{id}/history", get(history))
        .route(
            "/api/deployments/{id}/groups/{group}/instances",
            get(instances),
        )
        .route("/api/schedules", get(schedules::list))
        .route(
            "/api/schedules/{name}",
            put(schedules::put)
                .get(schedules::read)
                .delete(schedules::delete),
        )
        .route("/api/schedules/{name}/{action}", post(schedules::action))
        .route("/api/templates", get(templates::list))
        .route(
            "/api/templates/{name}",
            put(templates::put)
                .get(templates::read)
                .delete(templates::delete),
        )
        .route_layer(middleware::from_fn(require_json_body))
        .route_layer(middleware::from_fn_with_state(api.clone(), require_key));
    let router = Router::new()
        .route("/api/callbacks/{id}/{kind}", post(callback))
        .merge(keyed)
        .fallback(not_found)
        // After every route: it applies to the routes registered so far.
        .method_not_allowed_fallback(method_not_allowed);
    let router = if api.loopback_only {
        router.layer(middleware::from_fn(require_loopback))
    } else {
        router
    };
    router.with_state(api)
}

/// `GET /metrics` (`dev` and `serve`): the metrics in Prometheus' text format, behind the same
/// API key and, in `dev`, the same loopback rules as the API.
pub fn metrics_router(api: Arc<Api>) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(api.clone(), require_key));
    let router = if api.loopback_only {
        router.layer(middleware::from_fn(require_loopback))
    } else {
        router
    };
    router.with_state(api)
}

async fn metrics() -> Response {
    let text = crate::metrics::render().await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::prometheus::CONTENT_TYPE),
        )],
        text,
    )
        .into_response()
}

/// Whether `host` (a `Host` header or an origin's authority) names this machine's loopback.
fn is_loopback_authority(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `dev`'s guard against web pages: a loopback `Host` (no DNS rebinding) and no `Origin`, or a
/// loopback `http` one (no cross-site request).
pub(crate) async fn require_loopback(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let value_of = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned())
    };
    let host = value_of(header::HOST).unwrap_or_default();
    let origin = value_of(header::ORIGIN);
    if !is_loopback_authority(&host) {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "host: `handler dev` serves only requests to 127.0.0.1, localhost or [::1]",
        )
        .into_response();
    }
    if let Some(origin) = origin {
        let authority = origin.strip_prefix("http://").unwrap_or("");
        if authority.contains('/') || !is_loopback_authority(authority) {
            return Problem::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("origin: `handler dev` refuses requests from other sites ({origin})"),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// A body on a keyed route must say it is JSON or YAML: a form or `text/plain` body is what a
/// cross-site page can send without a preflight.
async fn require_json_body(request: Request, next: Next) -> Response {
    let headers = request.headers();
    // A request that says nothing of its length (HTTP/2, or one built in-process) has a body
    // unless its body is known to be empty.
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|n| n.as_bytes() != b"0")
        || !request.body().is_end_stream();
    if !has_body {
        return next.run(request).await;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let accepted = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
        || Format::from_content_type(Some(&essence)) == Format::AciYaml;
    if accepted {
        next.run(request).await
    } else {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!(
                "content-type: a body must be application/json or application/yaml, not '{content_type}'"
            ),
        )
        .into_response()
    }
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "Not found", "path: no such route")
}

/// `405`, with the `Allow` header axum adds.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        format!("method: {method} is not served on {}", uri.path()),
    )
}

async fn require_key(State(api): State<Shared>, request: Request, next: Next) -> Response {
    let Some(expected) = &api.api_key else {
        return next.run(request).await;
    };
    let from_header = request
        .headers()
        .get("x-functions-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_query = request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
    });
    let given = from_header.or(from_query).unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        next.run(request).await
    } else {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "x-functions-key: missing or wrong API key",
        )
        .into_response()
    }
}

/// The public base URL: configured, or from the request's forwarded or Host headers.
pub(crate) fn base_url(api: &Api, headers: &HeaderMap) -> String {
    if let Some(url) = &api.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    // Only the Functions dispatcher gets here (`serve` and `dev` always have a public URL), and it
    // sets both headers from the host's `Data.req.Url`, replacing any the caller sent.
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
    };
    let host = header("x-forwarded-host").unwrap_or_else(|| "127.0.0.1".into());
    let scheme = match header("x-forwarded-proto").as_deref() {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

fn valid_id(id: &str) -> Result<(), Problem> {
    spec::validate::deployment_id(id).map_err(|e| Problem::bad_request("id", e))
}

pub(crate) async fn body_bytes(body: Body, limit: usize) -> Result<bytes::Bytes, Problem> {
    to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("body: at most {limit} bytes are accepted"),
        )
    })
}

fn new_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("d-{}", &id[..16])
}

/// The `code` a caller authenticated with in the query, to carry into the URLs it is given back
/// (a poller that follows them is then authorised, as Durable Functions' management URLs are).
fn query_code(uri: &axum::http::Uri) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .filter(|code| !code.is_empty())
}

/// A deployment's status URL, with the caller's `code` when it sent one, and
/// `returnInternalServerErrorOnFailure=true` when it asked for that.
fn status_url(base: &str, id: &str, code: Option<&str>, error_on_failure: bool) -> String {
    let mut query = Vec::new();
    if error_on_failure {
        query.push("returnInternalServerErrorOnFailure=true".to_owned());
    }
    if let Some(code) = code {
        query.push(format!("code={}", encode(code)));
    }
    match query.is_empty() {
        true => format!("{base}/api/deployments/{id}"),
        false => format!("{base}/api/deployments/{id}?{}", query.join("&")),
    }
}

/// `returnInternalServerErrorOnFailure` of a query: absent or `false`, or `true`.
fn error_on_failure(value: Option<&str>) -> Result<bool, Problem> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(Problem::bad_request(
            "returnInternalServerErrorOnFailure",
            "must be true or false",
        )),
    }
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The answer to a `POST /api/deployments`: where to poll, raise, terminate and purge
/// (the fields of Durable Functions' management payload), and the status now.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Started<'a> {
    id: &'a str,
    purge_history_delete_uri: String,
    runtime_status: &'static str,
    send_event_post_uri: String,
    status_query_get_uri: String,
    terminate_post_uri: String,
    /// The key the deployment's notifications are signed with: in this answer only, when the
    /// deployment is new and has `notify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_secret: Option<String>,
}

fn started<'a>(base: &str, d: &'a Deployment, code: Option<&str>) -> Started<'a> {
    let at = format!("{base}/api/deployments/{}", d.id);
    let (first, then) = match code {
        Some(code) => {
            let code = encode(code);
            (format!("?code={code}"), format!("&code={code}"))
        }
        None => (String::new(), String::new()),
    };
    Started {
        id: &d.id,
        purge_history_delete_uri: format!("{at}{first}"),
        runtime_status: d.status.as_str(),
        send_event_post_uri: format!("{at}/events/{{eventName}}{first}"),
        status_query_get_uri: format!("{at}{first}"),
        terminate_post_uri: format!("{at}/terminate?reason={{text}}{then}"),
        notify_secret: None,
    }
}

/// `Retry-After` for a deployment that has not ended: the seconds until Berth next looks at it
/// (its wake), between [`RETRY_AFTER_MIN_S`] and [`RETRY_AFTER_MAX_S`].
fn retry_after(d: &Deployment, now: crate::engine::Millis) -> u64 {
    let until = d.wake.map_or(0, |w| w.at.saturating_sub(now));
    let seconds = u64::try_from(until).unwrap_or(0).div_ceil(1000);
    seconds.clamp(RETRY_AFTER_MIN_S, RETRY_AFTER_MAX_S)
}

/// The answer to a status request in the async request-reply pattern: `202` with `Location` and
/// `Retry-After` while the deployment has not ended (`phase` is not `Done`, nor `Notifying`: its
/// status is final then), `200` once it has, or `500` for `Failed` and `TimedOut` when the caller
/// asked for it.
fn polled(
    d: &Deployment,
    body: impl serde::Serialize,
    location: &str,
    now: crate::engine::Millis,
    error_on_failure: bool,
) -> Response {
    if !matches!(
        d.phase,
        crate::engine::Phase::Done | crate::engine::Phase::Notifying
    ) {
        let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(location) {
            headers.insert(header::LOCATION, location);
        }
        headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after(d, now)));
        return response;
    }
    let failed = matches!(d.status, RuntimeStatus::Failed | RuntimeStatus::TimedOut);
    let status = if error_on_failure && failed {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

async fn start(
    State(api): State<Shared>,
    Query(params): Query<ReadParams>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let error_on_failure =
        error_on_failure(params.return_internal_server_error_on_failure.as_deref())?;
    let bytes = body_bytes(body, MAX_BODY).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_content_type(content_type);
    let spec = match templates::invocation(&bytes, format)? {
        Some(invocation) => api
            .driver
            .expand(invocation, new_id)
            .await
            .map_err(|e| match e {
                // A template the body names that is not there is a bad body, not a missing route.
                crate::driver::templates::TemplateError::NotFound { field, message } => {
                    Problem::bad_request(field, message)
                }
                e => e.into(),
            })?,
        None => spec::parse(&bytes, format, new_id)?,
    };
    api.driver.check(&spec)?;
    let base = base_url(&api, &headers);
    let submitted = api.driver.submit(spec, base.clone()).await?;
    let d = &submitted.deployment;
    let code = query_code(&uri);
    let body = Started {
        notify_secret: submitted.notify_key.clone(),
        ..started(&base, d, code.as_deref())
    };
    let location = status_url(&base, &d.id, code.as_deref(), error_on_failure);
    // A repeated POST of a deployment that has not ended is still accepted work (202): a poller
    // takes any other answer as the end.
    let mut response = polled(d, body, &location, api.driver.now(), false);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    status: Option<String>,
    top: Option<String>,
    continuation_token: Option<String>,
}

async fn list(
    State(api): State<Shared>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let status = match params.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(RuntimeStatus::parse(s).ok_or_else(|| {
            Problem::bad_request(
                "status",
                format!(
                    "'{s}' is not one of Pending, Running, Succeeded, Failed, TimedOut, Terminated"
                ),
            )
        })?),
    };
    let top = top(params.top.as_deref(), 50)?;
    let query = ListQuery {
        status,
        top,
        continuation: params.continuation_token,
    };
    let page = api.driver.list(&query).await?;
    let now = api.driver.now();
    let deployments = page
        .items
        .iter()
        .map(|d| status::status(d, &api.prices, now))
        .collect();
    let token = page
        .continuation
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok());
    let base = base_url(&api, &headers);
    let list = status::List {
        continuation_token: page.continuation.as_deref(),
        deployments,
        unreadable: page
            .unreadable
            .iter()
            .map(|u| status::unreadable(u, &base))
            .collect(),
    };
    let mut response = axum::Json(list).into_response();
    if let Some(token) = token {
        response
            .headers_mut()
            .insert("x-ms-continuation-token", token);
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadParams {
    return_internal_server_error_on_failure: Option<String>,
}

async fn read(
    State(api): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    let error_on_failure =
        error_on_failure(params.return_internal_server_error_on_failure.as_deref())?;
    let d = loaded(&api, &id).await?;
    let base = base_url(&api, &headers);
    // The poller comes back to the URL it polled, query and all.
    let location = match uri.query() {
        Some(query) => format!("{base}/api/deployments/{id}?{query}"),
        None => status_url(&base, &id, None, false),
    };
    let body = status::status(&d, &api.prices, api.driver.now());
    Ok(polled(
        &d,
        body,
        &location,
        api.driver.now(),
        error_on_failure,
    ))
}

async fn purge(State(api): State<Shared>, Path(id): Path<String>) -> Result<Response, Problem> {
    purge_done(&api, &id).await?;
    Ok(axum::Json(json!({ "instancesDeleted": 1 })).into_response())
}

/// Purges a deployment whose phase is `Done`; `409` while it is not, `404` when there is none.
/// A deployment this Berth cannot read is purged as it is: the sweep then deletes the container
/// groups it may have left, as it does any group whose deployment is gone.
pub(crate) async fn purge_done(api: &Api, id: &str) -> Result<(), Problem> {
    valid_id(id)?;
    let d = match api.driver.load(id).await {
        Err(DriverError::Store(StoreError::Unreadable { reason, .. })) => {
            tracing::warn!(deployment.id = %id, %reason, "purging a deployment this Berth cannot read");
            api.driver.purge(id).await?;
            return Ok(());
        }
        loaded => loaded?.ok_or_else(|| Problem::no_deployment(id))?,
    };
    if d.phase != crate::engine::Phase::Done {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "id: deployment '{id}' is {} ({:?}); terminate it and wait for phase Done before purging",
                d.status.as_str(),
                d.phase
            ),
        ));
    }
    api.driver.purge(id).await?;
    Ok(())
}

pub(crate) fn event_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "name",
            "an event name has 1 to 64 letters, digits, - or _",
        ))
    }
}

async fn event_payload(body: Body) -> Result<Value, Problem> {
    let bytes = body_bytes(body, MAX_EVENT_PAYLOAD).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request("body", format!("the event payload must be JSON: {e}")))
}

async fn deliver(api: &Api, id: &str, event: Event) -> Result<Response, Problem> {
    // A deployment that has ended answers 410 Gone (`DriverError::Ended`).
    api.driver.raise(id, event).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "id": id, "accepted": true })),
    )
        .into_response())
}

async fn raise(
    State(api): State<Shared>,
    Path((id, name)): Path<(String, String)>,
    body: Body,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    event_name(&name)?;
    let payload = event_payload(body).await?;
    deliver(&api, &id, Event::Raised { name, payload }).await
}

/// The events raised on a deployment and kept (its inbox), oldest first, as given: `top`
/// (default 100) a page, `continuationToken` the next. The inbox holds at most
/// [`crate::engine::MAX_INBOX`] events of [`crate::engine::MAX_INBOX_BYTES`] payload together.
async fn events(
    State(api): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    let top = top(params.top.as_deref(), 100)?;
    let from = page_token(params.continuation_token.as_deref(), status::instance_token)?;
    let d = loaded(&api, &id).await?;
    let from = from as usize;
    if from > d.inbox.len() {
        return Err(not_a_token());
    }
    Ok(axum::Json(status::events(&d.inbox, from, top)).into_response())
}

#[derive(Deserialize)]
struct TerminateParams {
    reason: Option<String>,
}

async fn terminate(
    State(api): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<TerminateParams>,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    let reason = params.reason.unwrap_or_else(|| "requested".into());
    if reason.len() > 512 {
        return Err(Problem::bad_request("reason", "at most 512 characters"));
    }
    deliver(&api, &id, Event::Terminate { reason }).await
}

/// A page size from `top` (1 to 1000), `default` when absent.
fn top(text: Option<&str>, default: usize) -> Result<usize, Problem> {
    match text {
        None => Ok(default),
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|t| (1..=1000).contains(t))
            .ok_or_else(|| Problem::bad_request("top", "must be a number from 1 to 1000")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageParams {
    top: Option<String>,
    continuation_token: Option<String>,
}

/// Deployment `id`, or `404` naming it.
async fn loaded(api: &Api, id: &str) -> Result<Deployment, Problem> {
    api.driver
        .load(id)
        .await?
        .ok_or_else(|| Problem::no_deployment(id))
}

fn not_a_token() -> Problem {
    Problem::bad_request("continuationToken", "not a token this API gave")
}

/// The page a `continuationToken` names, as `read` reads it (the first without one); `400` for
/// a token this API did not give.
fn page_token<T: Default>(
    token: Option<&str>,
    read: impl Fn(&str) -> Option<T>,
) -> Result<T, Problem> {
    match token {
        None => Ok(T::default()),
        Some(token) => read(token).ok_or_else(not_a_token),
    }
}

/// A group's instances by index, paged (`top`, default 100; `continuationToken`).
async fn instances(
    State(api): State<Shared>,
    Path((id, group)): Path<(String, String)>,
    Query(params): Query<PageParams>,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    spec::validate::group_name(&group).map_err(|e| Problem::bad_request("group", e))?;
    let top = top(params.top.as_deref(), 100)?;
    let from = page_token(params.continuation_token.as_deref(), status::instance_token)?;
    let d = loaded(&api, &id).await?;
    let page = status::instances(&d, &group, from, top).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("group: deployment '{id}' has no group '{group}'"),
        )
    })?;
    Ok(axum::Json(page).into_response())
}

/// The stored document of a deployment, as stored, for one this Berth cannot read (and any
/// other): sealed values (secrets, callback keys) are replaced by `(sealed)`; bytes that are not
/// JSON are answered as text, control characters escaped.
async fn checkpoint(
    State(api): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    let body = api
        .driver
        .raw(&id)
        .await?
        .ok_or_else(|| Problem::no_deployment(&id))?;
    Ok(match serde_json::from_slice::<Value>(&body) {
        Ok(mut doc) => {
            crate::crypto::redact_sealed(&mut doc);
            axum::Json(doc).into_response()
        }
        Err(_) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            String::from_utf8_lossy(&body).escape_debug().to_string(),
        )
            .into_response(),
    })
}

/// The history, oldest first, a page at a time: each archived page (see
/// `Deployment::history`), then the entries in the checkpoint; `continuationToken` names the next.
async fn history(
    State(api): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    let page = page_token(params.continuation_token.as_deref(), status::history_page)?;
    let d = loaded(&api, &id).await?;
    if page > d.history_archived {
        return Err(not_a_token());
    }
    let archived: Vec<crate::engine::state::HistoryEntry>;
    let (entries, next) = if page < d.history_archived {
        let bytes = api.driver.history_page(&id, page).await?.ok_or_else(|| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                format!("continuationToken: history page {page} of deployment '{id}' is missing"),
            )
        })?;
        archived = serde_json::from_slice(&bytes).map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                format!("continuationToken: history page {page} of deployment '{id}' cannot be read: {e}"),
            )
        })?;
        (&archived[..], Some(status::history_token(page + 1)))
    } else {
        (&d.history[..], None)
    };
    let mut response = axum::Json(status::history(&d.id, entries, next.clone())).into_response();
    if let Some(token) = next.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response
            .headers_mut()
            .insert("x-ms-continuation-token", token);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct CallbackParams {
    token: Option<String>,
    /// The instance the URL was handed to (its token is bound to it).
    instance: Option<String>,
}

async fn callback(
    State(api): State<Shared>,
    Path((id, kind)): Path<(String, String)>,
    Query(params): Query<CallbackParams>,
    body: Body,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    if kind != "completed" && kind != "heartbeat" {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "kind: callbacks are completed or heartbeat",
        ));
    }
    let token = params.token.unwrap_or_default();
    let forbidden = || {
        Problem::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "token: not valid for this deployment and event",
        )
    };
    if let Some(instance) = &params.instance {
        spec::validate::instance_name(instance).map_err(|e| Problem::bad_request("instance", e))?;
    }
    let payload = event_payload(body).await?;
    if payload.get("exitCode").is_some_and(|c| !c.is_i64()) {
        return Err(Problem::bad_request("exitCode", "must be a whole number"));
    }
    match api
        .driver
        .raise_callback(&id, &kind, params.instance.as_deref(), &token, payload)
        .await
    {
        Ok(_) => {}
        Err(DriverError::NotFound(_) | DriverError::Unauthorised { .. }) => {
            return Err(forbidden());
        }
        Err(DriverError::Ended { .. }) => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "token: the deployment has ended",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "id": id, "accepted": true })),
    )
        .into_response())
}
