//! The host's public HTTP front: `/{routePrefix}/{route}` matched against the HTTP functions,
//! keys enforced before the handler is called (401 without one), the caller's request turned into an
//! invocation payload, and the handler's `res` turned back into the caller's response. A failed
//! invocation answers 500, as the host does.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::config::TriggerDef;
use super::payload::{Caller, ClientRequest, Sys, http_payload};
use super::{HostOutcome, Inner};

/// The largest request body the front accepts (the host's limit is 100 MB).
const BODY_LIMIT: usize = 100 * 1024 * 1024;

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(front).with_state(inner)
}

async fn front(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = super::route::kestrel_path(parts.uri.path());
    let prefix = format!("/{}/", inner.app.route_prefix);
    let Some(rest) = strip_prefix_ci(&path, &prefix) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let method = parts.method.as_str().to_ascii_uppercase();
    let matched = inner.app.functions.iter().find_map(|f| match &f.trigger {
        TriggerDef::Http {
            methods,
            route,
            auth_level,
        } if methods.is_empty() || methods.contains(&method) => {
            let template = super::route::RouteTemplate::parse(route).ok()?;
            template
                .matches(rest)
                .map(|values| (f, values, auth_level.clone()))
        }
        _ => None,
    });
    let Some((function, values, auth_level)) = matched else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let raw_query = parts.uri.query().map(str::to_owned);
    let caller = match authorise(&inner, &auth_level, &parts.headers, raw_query.as_deref()) {
        Some(caller) => caller,
        None => return StatusCode::UNAUTHORIZED.into_response(),
    };
    let client = ClientRequest {
        method,
        path,
        raw_query,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        content_length: parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
        body,
    };
    let payload = http_payload(
        function,
        &client,
        &values,
        &caller,
        &Sys::now(&function.name),
    );
    let name = function.name.clone();
    let outcome = match inner
        .invoke_raw(&name, Bytes::from(payload.to_string()))
        .await
    {
        Ok((_, _, outcome)) => outcome,
        Err(e) => HostOutcome::Failed(e.to_string()),
    };
    match outcome {
        HostOutcome::Succeeded(accepted) => match accepted.http {
            Some(http) => {
                let mut response = (
                    StatusCode::from_u16(http.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    http.body,
                )
                    .into_response();
                for (name, value) in http.headers {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(&value),
                    ) {
                        response.headers_mut().insert(name, value);
                    }
                }
                response
            }
            None => StatusCode::OK.into_response(),
        },
        HostOutcome::Failed(_) | HostOutcome::Hangs(_) => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn strip_prefix_ci<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let head = path.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &path[prefix.len()..])
}

/// The host's key check: `x-functions-key` header or `code` query parameter.
fn authorise(
    inner: &Inner,
    auth_level: &str,
    headers: &HeaderMap,
    raw_query: Option<&str>,
) -> Option<Caller> {
    if auth_level == "anonymous" {
        return Some(Caller::Anonymous);
    }
    let presented = headers
        .get("x-functions-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })?;
    if presented == inner.master_key {
        return Some(Caller::Key {
            name: "master".to_owned(),
            level: "Admin",
        });
    }
    (auth_level == "function" && presented == inner.function_key).then(|| Caller::Key {
        name: "default".to_owned(),
        level: "Function",
    })
}
