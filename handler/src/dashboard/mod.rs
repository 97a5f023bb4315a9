//! The dashboard: server-rendered HTML pages over the driver, in every mode.
//!
//! - `dev` and `serve`: at `/` ([`Dashboard::at_root`]). `GET /` stays the readiness answer
//!   (`{"status":"ready"}`) for any request that does not accept `text/html`.
//! - Functions: the `dashboard` function, route `dashboard/{*path}`, so under `/api/dashboard/`
//!   ([`Dashboard::under_functions`]). The host checks the function key on every request, so
//!   every link, form and asset URL carries the `code` the page was opened with.
//!
//! Pages: the deployments list (`/`), a deployment (`/d/{id}`: summary, cost, timeline, groups,
//! logs, actions, spec, history), a fan-out group's instances a page at a time
//! (`/d/{id}/g/{group}`), a purge confirmation (`/d/{id}/purge`), a container's logs
//! as text (`/d/{id}/logs/{group}/{container}`, what the script polls for running containers: it
//! passes the request on to the API's logs route, `tail` and all), the schedules (`/schedules`,
//! with their pause and resume actions, `/schedules/{name}/pause` and `.../resume`) and the
//! templates (`/templates`, a page at a time).
//!
//! # Guarantees
//! - Authentication is the API's: with an API key, `?code=KEY` on any page sets an `HttpOnly`,
//!   `SameSite=Strict` session cookie (`Secure` behind an `https` public URL; its value is an HMAC
//!   of the key, not the key) and redirects to the same URL without `code`; a request with neither
//!   a valid cookie nor the key gets a `401` page saying how to get in.
//! - An action (a `POST`: terminate, raise an event, purge, pause or resume a schedule) also needs an `Origin` (or, without
//!   one, a `Referer`) of the dashboard's own origin and the form's CSRF token (an HMAC of the
//!   credential), and never takes the key from its URL when a cookie is how the dashboard
//!   authenticates: a foreign page can neither send one nor replay a link that does.
//! - Every value from a deployment is HTML-escaped ([`html::esc`]); every page is sent with a
//!   `Content-Security-Policy` of `default-src 'self'` without inline script or style,
//!   `frame-ancestors 'none'`, `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: same-origin` and `Cache-Control: no-store`. The stylesheet and the script
//!   are in the binary: no page loads anything from elsewhere.

mod catalog;
mod fanout;
pub mod html;
mod pages;
pub mod timeline;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tower::ServiceExt as _;

use crate::api::{self, Api, Problem};
use crate::driver::templates::TemplateError;
use crate::engine::Event;

/// The session cookie's name.
pub const COOKIE: &str = "berth_dashboard";
/// The stylesheet, in the binary.
const CSS: &str = include_str!("assets/dashboard.css");
/// The script (live updates only: every page reads and acts without it).
const JS: &str = include_str!("assets/dashboard.js");
/// Largest form accepted: an event's JSON payload ([`api::MAX_EVENT_PAYLOAD`]) form-encoded.
const MAX_FORM: usize = 4 * api::MAX_EVENT_PAYLOAD;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   object-src 'none'";

/// The dashboard over the API's parts.
pub struct Dashboard {
    api: Arc<Api>,
    /// The API router, for the logs the script polls (so `tail` is the API's own).
    api_router: Router,
    /// Where the pages live: `""` (at `/`) or `/api/dashboard`.
    prefix: String,
    /// The Functions host checks the key on every request: links carry `code`, no cookie.
    host_auth: bool,
    /// Key of the CSRF tokens when there is no credential (`dev --no-auth`): random per process.
    fallback_secret: [u8; 32],
}

/// Who a request is, once the guard let it in: what its forms' CSRF token is, and the `code` its
/// links carry (Functions mode).
#[derive(Clone, Debug)]
struct Session {
    csrf: String,
    code: Option<String>,
}

fn hmac_hex(key: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `query` without its `code` pairs (however its name is encoded, as [`query_value`] decodes
/// names), the rest form-encoded again in their order.
fn without_code(query: &str) -> String {
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name != "code" {
            rest.append_pair(&name, &value);
        }
    }
    rest.finish()
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// An error page: the problem's status, title and detail, as HTML.
struct ErrorPage(Problem);

impl From<Problem> for ErrorPage {
    fn from(problem: Problem) -> Self {
        ErrorPage(problem)
    }
}

impl From<crate::driver::DriverError> for ErrorPage {
    fn from(error: crate::driver::DriverError) -> Self {
        ErrorPage(error.into())
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let p = self.0;
        if p.status.is_server_error() {
            tracing::error!(status = p.status.as_u16(), detail = %p.detail, cause = ?p.cause, "dashboard error");
        }
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status} {title} · Berth</title></head>\
             <body><main><h1>{status} {title}</h1><p>{detail}</p></main></body></html>\n",
            status = p.status.as_u16(),
            title = html::esc(p.title),
            detail = html::esc(&p.detail),
        );
        let mut response = (p.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}

type Shared = Arc<Dashboard>;

impl Dashboard {
    fn new(api: Arc<Api>, prefix: &str, host_auth: bool) -> Arc<Self> {
        let mut fallback_secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut fallback_secret);
        Arc::new(Dashboard {
            api_router: api::router(api.clone()),
            api,
            prefix: prefix.to_owned(),
            host_auth,
            fallback_secret,
        })
    }

    /// The dashboard of `dev` and `serve`, at `/`, authenticated by the API key and a cookie.
    pub fn at_root(api: Arc<Api>) -> Arc<Self> {
        Self::new(api, "", false)
    }

    /// The dashboard of the Functions mode, under `/api/dashboard`, authenticated by the host.
    pub fn under_functions(api: Arc<Api>) -> Arc<Self> {
        Self::new(api, "/api/dashboard", true)
    }

    /// The dashboard's routes (and, at `/`, the readiness answer for everything but a browser).
    pub fn router(self: &Arc<Self>) -> Router {
        let p = &self.prefix;
        let mut pages = Router::new()
            .route(&format!("{p}/"), get(list))
            .route(&format!("{p}/d/{{id}}"), get(deployment))
            .route(&format!("{p}/d/{{id}}/g/{{group}}"), get(group_instances))
            .route(
                &format!("{p}/d/{{id}}/logs/{{group}}/{{container}}"),
                get(logs),
            )
            .route(
                &format!("{p}/d/{{id}}/terminate"),
                axum::routing::post(terminate),
            )
            .route(&format!("{p}/d/{{id}}/events"), axum::routing::post(raise))
            .route(
                &format!("{p}/d/{{id}}/purge"),
                get(confirm_purge).post(purge),
            )
            .route(&format!("{p}/schedules"), get(schedules))
            .route(
                &format!("{p}/schedules/{{name}}/{{action}}"),
                axum::routing::post(suspend),
            )
            .route(&format!("{p}/templates"), get(templates));
        if !p.is_empty() {
            pages = pages.route(p, get(list));
        }
        let pages = pages.route_layer(middleware::from_fn_with_state(self.clone(), guard));
        let assets = Router::new().route(&format!("{p}/assets/{{name}}"), get(asset));
        let mut router = pages
            .merge(assets)
            .layer(middleware::from_fn(secure_headers));
        if p.is_empty() {
            router = router.layer(middleware::from_fn(readiness));
        }
        if self.api.loopback_only {
            router = router.layer(middleware::from_fn(api::require_loopback));
        }
        router.with_state(self.clone())
    }

    /// A path of the dashboard as a link: under the prefix, with the `code` in Functions mode.
    fn href(&self, session: &Session, path: &str) -> String {
        let path = format!("{}{path}", self.prefix);
        match &session.code {
            Some(code) => {
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{path}{sep}{}", html::query([("code", code.as_str())]))
            }
            None => path,
        }
    }

    /// The session cookie's value for `key`: an HMAC of it, so the cookie is not the API key.
    fn session_cookie(key: &str) -> String {
        hmac_hex(key.as_bytes(), "berth dashboard session v1")
    }

    fn csrf(&self, credential: Option<&str>) -> String {
        match credential {
            Some(c) => hmac_hex(c.as_bytes(), "berth dashboard csrf v1"),
            None => hmac_hex(&self.fallback_secret, "berth dashboard csrf v1"),
        }
    }

    /// The origins an action may come from: the public URL's, and the request's own host under
    /// the public URL's scheme.
    fn own_origins(&self, headers: &HeaderMap) -> Vec<String> {
        let base = api::base_url(&self.api, headers);
        let mut origins = Vec::new();
        if let Ok(url) = url::Url::parse(&base) {
            let origin = url.origin().ascii_serialization();
            if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
                origins.push(format!("{}://{host}", url.scheme()));
            }
            origins.push(origin);
        }
        origins
    }

    fn secure_cookie(&self) -> bool {
        self.api
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https:"))
    }

    /// The `401` page.
    fn unauthorised(&self, wrong: bool) -> Response {
        let how = if self.host_auth {
            "Open the dashboard with a function key: /api/dashboard/?code=KEY."
        } else {
            "Open the URL `handler dev` prints (it ends in ?code=…), or add ?code=KEY to this \
             URL with the API key (BERTH_API_KEY, or .berth/api.key in dev). The key then \
             leaves the address bar and a cookie keeps you signed in."
        };
        let detail = if wrong {
            format!("code: wrong key. {how}")
        } else {
            format!("No key. {how}")
        };
        ErrorPage(Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            detail,
        ))
        .into_response()
    }
}

/// `GET /` without `text/html` in `Accept` is the readiness answer, as before the dashboard.
async fn readiness(request: Request, next: Next) -> Response {
    let html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if request.uri().path() == "/" && request.method() == Method::GET && !html {
        return axum::Json(serde_json::json!({ "status": "ready" })).into_response();
    }
    next.run(request).await
}

/// The headers every dashboard answer carries.
async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Authentication (see the module's guarantees) and, for actions, the origin check.
async fn guard(State(dash): State<Shared>, mut request: Request, next: Next) -> Response {
    let query = request.uri().query().map(str::to_owned);
    let code = query_value(query.as_deref(), "code").filter(|c| !c.is_empty());
    let is_action = request.method() != Method::GET && request.method() != Method::HEAD;
    let session = if dash.host_auth {
        // The host has checked the key; the handler sees it as the host passed it on.
        let header_key = request
            .headers()
            .get("x-functions-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let credential = code.clone().or(header_key);
        Session {
            csrf: dash.csrf(credential.as_deref()),
            code,
        }
    } else if let Some(key) = dash.api.api_key.clone() {
        if let Some(code) = code {
            if is_action {
                return ErrorPage(Problem::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "code: an action does not take the key in its URL; open the dashboard and use its buttons",
                ))
                .into_response();
            }
            if !equal(&code, &key) {
                return dash.unauthorised(true);
            }
            let rest = without_code(query.as_deref().unwrap_or(""));
            let path = request.uri().path();
            let location = if rest.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{rest}")
            };
            let cookie = format!(
                "{COOKIE}={}; Path={}; HttpOnly; SameSite=Strict{}",
                Dashboard::session_cookie(&key),
                if dash.prefix.is_empty() {
                    "/"
                } else {
                    &dash.prefix
                },
                if dash.secure_cookie() { "; Secure" } else { "" }
            );
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            if let (Ok(location), Ok(cookie)) = (
                HeaderValue::from_str(&location),
                HeaderValue::from_str(&cookie),
            ) {
                headers.insert(header::LOCATION, location);
                headers.insert(header::SET_COOKIE, cookie);
            }
            return response;
        }
        let given = cookie_value(request.headers(), COOKIE).unwrap_or("");
        if !equal(given, &Dashboard::session_cookie(&key)) {
            return dash.unauthorised(!given.is_empty());
        }
        Session {
            csrf: dash.csrf(Some(&key)),
            code: None,
        }
    } else {
        Session {
            csrf: dash.csrf(None),
            code: None,
        }
    };
    if is_action && !same_origin(&dash, request.headers()) {
        return ErrorPage(Problem::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "origin: actions are taken only from the dashboard's own pages",
        ))
        .into_response();
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Whether the request's `Origin` (or, without one, its `Referer`) is the dashboard's own.
fn same_origin(dash: &Dashboard, headers: &HeaderMap) -> bool {
    let own = dash.own_origins(headers);
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match (value(header::ORIGIN), value(header::REFERER)) {
        (Some(origin), _) => own.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        (None, Some(referer)) => own.iter().any(|o| {
            referer
                .get(..o.len() + 1)
                .is_some_and(|head| head.eq_ignore_ascii_case(&format!("{o}/")))
        }),
        (None, None) => false,
    }
}

/// A form's fields, after checking its CSRF token against the session's.
async fn form(session: &Session, body: Body) -> Result<Vec<(String, String)>, ErrorPage> {
    let bytes = to_bytes(body, MAX_FORM).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("body: at most {MAX_FORM} bytes are accepted"),
        )
    })?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let token = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.as_str());
    if !equal(token, &session.csrf) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "csrf: missing or wrong form token; reload the page and try again",
        )
        .into());
    }
    Ok(fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn html_page(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn valid_id(id: &str) -> Result<(), ErrorPage> {
    crate::spec::validate::deployment_id(id).map_err(|e| ErrorPage(Problem::bad_request("id", e)))
}

/// The deployment `id` names: `400` for an id that cannot be one, `404` for none.
async fn load(dash: &Dashboard, id: &str) -> Result<crate::engine::Deployment, ErrorPage> {
    valid_id(id)?;
    let d = dash.api.driver.load(id).await?;
    Ok(d.ok_or_else(|| Problem::no_deployment(id))?)
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "dashboard.css" => (CSS, "text/css; charset=utf-8"),
        "dashboard.js" => (JS, "text/javascript; charset=utf-8"),
        _ => {
            return ErrorPage(Problem::new(
                StatusCode::NOT_FOUND,
                "Not found",
                "path: no such asset",
            ))
            .into_response();
        }
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn list(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    uri: axum::http::Uri,
) -> Result<Response, ErrorPage> {
    let mut filters = pages::Filters::from_query(uri.query());
    let page = match &filters.refused {
        Some(_) => None,
        // A token the store cannot read is the query's fault, said on the page like the rest.
        None => match dash.api.driver.list(&filters.store_query()).await {
            Ok(page) => Some(page),
            Err(error) => {
                let problem = Problem::from(error);
                if !problem.status.is_client_error() {
                    return Err(ErrorPage(problem));
                }
                filters.refused = Some(problem);
                None
            }
        },
    };
    let status = filters
        .refused
        .as_ref()
        .map_or(StatusCode::OK, |p| p.status);
    let page = page.unwrap_or_default();
    let body = pages::list(&dash, &session, &filters, &page, dash.api.driver.now());
    Ok((status, html_page(body)).into_response())
}

async fn deployment(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, ErrorPage> {
    let d = load(&dash, &id).await?;
    let mut saved = Vec::new();
    // A fan-out instance's logs are a link away on its group's page: there may be 10,000.
    for inst in d
        .instances
        .iter()
        .filter(|i| i.logs_saved && !pages::fanned_out(&d, i))
    {
        for container in pages::containers(&d, inst) {
            let text = dash
                .api
                .driver
                .logs(&id, &inst.aci_name, &container, false)
                .await?;
            saved.push((inst.aci_name.clone(), container, text));
        }
    }
    Ok(html_page(pages::deployment(
        &dash,
        &session,
        &d,
        &saved,
        dash.api.driver.now(),
    )))
}

/// A page of a fan-out group's instances.
async fn group_instances(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    Path((id, group)): Path<(String, String)>,
    uri: axum::http::Uri,
) -> Result<Response, ErrorPage> {
    crate::spec::validate::group_name(&group)
        .map_err(|e| ErrorPage(Problem::bad_request("group", e)))?;
    let at = fanout::PageQuery::from_query(uri.query())?;
    let d = load(&dash, &id).await?;
    Ok(html_page(fanout::page(
        &dash,
        &session,
        &d,
        &group,
        &at,
        dash.api.driver.now(),
    )?))
}

/// A container's logs as text, from the API's logs route (saved logs, or live ones with `tail`
/// where the API serves them), for the script's polling.
async fn logs(
    State(dash): State<Shared>,
    Path((id, group, container)): Path<(String, String, String)>,
    uri: axum::http::Uri,
) -> Result<Response, ErrorPage> {
    valid_id(&id)?;
    let tail = query_value(uri.query(), "tail");
    let mut target = format!(
        "/api/deployments/{}/logs/{}/{}",
        html::seg(&id),
        html::seg(&group),
        html::seg(&container)
    );
    if let Some(tail) = tail {
        target.push('?');
        target.push_str(&html::query([("tail", tail.as_str())]));
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(&target)
        .header(header::HOST, "127.0.0.1");
    if let Some(key) = &dash.api.api_key {
        request = request.header("x-functions-key", key);
    }
    let request = request
        .body(Body::empty())
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "Bad request", format!("path: {e}")))?;
    let response = match dash.api_router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let body = to_bytes(response.into_body(), api::MAX_BODY * 32)
        .await
        .unwrap_or_default();
    Ok((
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}

async fn terminate(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ErrorPage> {
    valid_id(&id)?;
    let fields = form(&session, body).await?;
    let reason = match field(&fields, "reason").trim() {
        "" => "terminated from the dashboard".to_owned(),
        reason if reason.len() > 512 => {
            return Err(Problem::bad_request("reason", "at most 512 characters").into());
        }
        reason => reason.to_owned(),
    };
    raise_and_show(&dash, &session, &id, Event::Terminate { reason }).await
}

async fn raise(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ErrorPage> {
    valid_id(&id)?;
    let fields = form(&session, body).await?;
    let name = field(&fields, "name").trim().to_owned();
    api::event_name(&name)?;
    let text = field(&fields, "payload");
    if text.len() > api::MAX_EVENT_PAYLOAD {
        return Err(Problem::bad_request(
            "payload",
            format!("at most {} bytes", api::MAX_EVENT_PAYLOAD),
        )
        .into());
    }
    let payload = if text.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(text)
            .map_err(|e| Problem::bad_request("payload", format!("must be JSON: {e}")))?
    };
    raise_and_show(&dash, &session, &id, Event::Raised { name, payload }).await
}

/// Raises `event` on deployment `id`, then sends the browser back to its page.
async fn raise_and_show(
    dash: &Shared,
    session: &Session,
    id: &str,
    event: Event,
) -> Result<Response, ErrorPage> {
    dash.api.driver.raise(id, event).await?;
    Ok(see_other(
        &dash.href(session, &format!("/d/{}", html::seg(id))),
    ))
}

async fn confirm_purge(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, ErrorPage> {
    let d = load(&dash, &id).await?;
    Ok(html_page(pages::confirm_purge(&dash, &session, &d)))
}

async fn purge(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ErrorPage> {
    valid_id(&id)?;
    let fields = form(&session, body).await?;
    if field(&fields, "confirm") != id {
        return Err(Problem::bad_request(
            "confirm",
            "type the deployment's id to confirm the purge",
        )
        .into());
    }
    api::purge_done(&dash.api, &id).await?;
    Ok(see_other(&dash.href(&session, "/")))
}

/// The schedules page.
async fn schedules(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
) -> Result<Response, ErrorPage> {
    let scheduler = api::schedules::scheduler(&dash.api)?;
    let (list, unreadable) = scheduler.list().await.map_err(Problem::from)?;
    let now = dash.api.driver.now();
    Ok(html_page(catalog::schedules(
        &dash,
        &session,
        &list,
        &unreadable,
        now,
    )))
}

/// Pauses or resumes schedule `name`, then sends the browser back to the schedules page.
async fn suspend(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    Path((name, action)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ErrorPage> {
    crate::schedule::valid_name(&name).map_err(|e| ErrorPage(Problem::bad_request("name", e)))?;
    let suspended = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => {
            let detail = "action: a schedule is paused or resumed";
            return Err(Problem::new(StatusCode::NOT_FOUND, "Not found", detail).into());
        }
    };
    form(&session, body).await?;
    let scheduler = api::schedules::scheduler(&dash.api)?;
    scheduler
        .suspend(&name, suspended)
        .await
        .map_err(Problem::from)?;
    Ok(see_other(&dash.href(&session, "/schedules")))
}

/// A page of templates, each with its latest version's parameters.
async fn templates(
    State(dash): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
    uri: axum::http::Uri,
) -> Result<Response, ErrorPage> {
    let token = query_value(uri.query(), "continuationToken").filter(|t| !t.is_empty());
    let driver = &dash.api.driver;
    let page = driver
        .templates(pages::PAGE_SIZE, token.as_deref())
        .await
        .map_err(Problem::from)?;
    let mut listed = Vec::with_capacity(page.items.len());
    for (name, version) in page.items {
        let read = match driver.template(&name, None).await {
            Ok(t) => Ok(t),
            // Deleted since it was listed.
            Err(TemplateError::NotFound { .. }) => continue,
            Err(e @ TemplateError::Unreadable { .. }) => Err(e.to_string()),
            Err(e) => return Err(Problem::from(e).into()),
        };
        listed.push((name, version, read));
    }
    Ok(html_page(catalog::templates(
        &dash,
        &session,
        &listed,
        page.continuation.as_deref(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_leaves_the_query_and_the_rest_stays() {
        assert_eq!(without_code("code=k&status=Running"), "status=Running");
        assert_eq!(without_code("a=1&code=k&b=2"), "a=1&b=2");
        assert_eq!(without_code("code=k"), "");
        assert_eq!(without_code("codex=1"), "codex=1");
        // An encoded name is still `code`: it must not survive into the redirect (nor loop it).
        assert_eq!(without_code("co%64e=k&tag=a%3Db"), "tag=a%3Db");
    }

    /// WCAG's contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        let luminance = |hex: &str| {
            let channel = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
                if c <= 0.039_28 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        };
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    #[test]
    fn text_colours_meet_wcag_aa_contrast_on_their_backgrounds() {
        let var = |name: &str| {
            let at = CSS.find(&format!("{name}: ")).unwrap() + name.len() + 2;
            &CSS[at..at + 7]
        };
        let (bg, panel) = (var("--bg"), var("--panel"));
        let mut pairs = vec![("#ffffff", "#24292f")];
        for text in [
            "--fg", "--muted", "--link", "--ok", "--bad", "--warn", "--run",
        ] {
            pairs.push((var(text), bg));
            pairs.push((var(text), panel));
        }
        for (fg, back) in pairs {
            let ratio = contrast(fg, back);
            assert!(ratio >= 4.5, "{fg} on {back}: {ratio:.2}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others_and_is_not_the_key() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; berth_dashboard=abc; b=2"),
        );
        assert_eq!(cookie_value(&headers, COOKIE), Some("abc"));
        let session = Dashboard::session_cookie("secret-key");
        assert!(!session.contains("secret-key") && session.len() == 64);
    }
}
