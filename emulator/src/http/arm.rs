//! The ARM handler: one entry point for every ARM path. It counts the request, applies injected
//! faults, checks `api-version`, then calls `aci` and writes ARM's answer (status, body,
//! `Azure-AsyncOperation`, request ids, rate-limit headers).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::DropConnection;
use super::route::{self, GroupAction, GroupPath, Route, percent_encode};
use crate::aci::{DeleteOutcome, Emulator, StartOutcome, Target};
use crate::api_versions;
use crate::error::ArmError;
use crate::faults::FaultKind;
use crate::logs::LogQuery;
use crate::model::{ContainerGroup, ContainerGroupList, ContainerGroupUpdate, Logs};
use crate::record::GroupKey;
use crate::stats::RequestKind;

/// The largest request body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Serves every ARM path.
pub async fn dispatch(State(emulator): State<Arc<Emulator>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let route = route::parse(parts.uri.path());
    emulator
        .counters()
        .request(kind_of(&parts.method, route.as_ref()));
    let correlation = parts
        .headers
        .get("x-ms-correlation-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let decision = emulator.decide_fault(parts.method.as_str());
    if let Some(delay) = decision.delay {
        emulator.counters().fault("slow");
        tokio::time::sleep(delay).await;
    }
    let mut response = match decision.fault {
        Some(FaultKind::Drop) => {
            emulator.counters().fault("drop");
            let mut response = StatusCode::SERVICE_UNAVAILABLE.into_response();
            response.extensions_mut().insert(DropConnection);
            return response;
        }
        Some(FaultKind::Throttle) => {
            emulator.counters().fault("throttle");
            let seconds = emulator.faults().retry_after_seconds;
            let operation = if parts.method == Method::GET {
                "read"
            } else {
                "write"
            };
            ArmError::throttled(
                "SubscriptionRequestsThrottled",
                format!(
                    "Number of '{operation}' requests for subscription '{}' exceeded. Please try again after '{seconds}' seconds.",
                    subscription_of(route.as_ref())
                ),
                seconds,
            )
            .into_response()
        }
        Some(FaultKind::Error) => {
            emulator.counters().fault("error");
            ArmError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                format!(
                    "Encountered an internal server error. The tracking activity id is '{}', correlation id is '{correlation}'.",
                    uuid::Uuid::new_v4()
                ),
            )
            .into_response()
        }
        Some(FaultKind::Slow) | None => match handle(&emulator, &parts, route, body).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        },
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-ms-request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&correlation) {
        headers.insert("x-ms-correlation-request-id", value);
    }
    response
}

/// The parts of the query string ARM routes use.
#[derive(Debug, Default)]
struct Query {
    api_version: Option<String>,
    tail: Option<String>,
    timestamps: Option<String>,
    skip_token: Option<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut parsed = Query::default();
        for pair in query.unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode_query(value);
            match name.to_ascii_lowercase().as_str() {
                "api-version" => parsed.api_version = Some(value),
                "tail" => parsed.tail = Some(value),
                "timestamps" => parsed.timestamps = Some(value),
                "$skiptoken" | "%24skiptoken" => parsed.skip_token = Some(value),
                _ => {}
            }
        }
        parsed
    }
}

fn decode_query(value: &str) -> String {
    let spaced = value.replace('+', " ");
    let bytes = spaced.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| spaced.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    emulator: &Arc<Emulator>,
    parts: &Parts,
    route: Option<Route>,
    body: Body,
) -> Result<Response, ArmError> {
    let Some(route) = route else {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            format!(
                "The path '{}' is not a Microsoft.ContainerInstance route that the ACI emulator serves.",
                parts.uri.path()
            ),
        ));
    };
    let query = Query::parse(parts.uri.query());
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ArmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("The request body is larger than {MAX_BODY} bytes."),
        )
    })?;
    let api = check_api_version(emulator, &query, &body)?;
    let base = base_url(&parts.headers);
    let method = &parts.method;
    // A long-running answer points back at this host for its status, in the caller's api-version.
    let tracked = |mut response: Response, subscription: &str, location: &str, operation: &str| {
        let url = Emulator::operation_url(&base, subscription, location, operation, &api);
        async_operation(&mut response, &url);
        response
    };
    match route {
        Route::Group(path) => {
            let target = target(&path)?;
            match *method {
                Method::GET => Ok(answer(&api, emulator.get(target)?).into_response()),
                Method::PUT => {
                    let spec: ContainerGroup = parse_body(&body)?;
                    let outcome = emulator.put(target, spec).await?;
                    let status = if outcome.created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    };
                    let mut response = tracked(
                        (status, answer(&api, outcome.body)).into_response(),
                        &path.subscription,
                        &outcome.location,
                        &outcome.operation,
                    );
                    if let Some(remaining) = outcome.remaining {
                        set(
                            &mut response,
                            "x-ms-ratelimit-remaining-subscription-resource-requests-pt5m",
                            &remaining.five_minutes.to_string(),
                        );
                        set(
                            &mut response,
                            "x-ms-ratelimit-remaining-subscription-resource-requests-pt1h",
                            &remaining.hour.to_string(),
                        );
                    }
                    Ok(response)
                }
                Method::PATCH => {
                    let update: ContainerGroupUpdate = parse_body(&body)?;
                    Ok(answer(&api, emulator.patch(target, update)?).into_response())
                }
                Method::DELETE => match emulator.delete(target).await? {
                    DeleteOutcome::Deleted(group) => Ok(answer(&api, *group).into_response()),
                    DeleteOutcome::NotFound => Ok(StatusCode::NO_CONTENT.into_response()),
                    DeleteOutcome::Accepted(operation, location) => Ok(tracked(
                        StatusCode::ACCEPTED.into_response(),
                        &path.subscription,
                        &location,
                        &operation,
                    )),
                },
                _ => Err(not_allowed(method)),
            }
        }
        Route::Action(path, action) => {
            if *method != Method::POST {
                return Err(not_allowed(method));
            }
            let target = target(&path)?;
            match action {
                GroupAction::Stop => {
                    emulator.stop(target).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                GroupAction::Start => match emulator.start(target).await? {
                    StartOutcome::AlreadyRunning => Ok(StatusCode::NO_CONTENT.into_response()),
                    StartOutcome::Started(operation, location) => Ok(tracked(
                        StatusCode::ACCEPTED.into_response(),
                        &path.subscription,
                        &location,
                        &operation,
                    )),
                },
                GroupAction::Restart => {
                    let (operation, location) = emulator.restart(target).await?;
                    Ok(tracked(
                        StatusCode::NO_CONTENT.into_response(),
                        &path.subscription,
                        &location,
                        &operation,
                    ))
                }
            }
        }
        Route::Logs(path, container) => {
            if *method != Method::GET {
                return Err(not_allowed(method));
            }
            let query = log_query(&query)?;
            let content = emulator.logs(target(&path)?, &container, query)?;
            Ok(Json(Logs {
                content: Some(content),
            })
            .into_response())
        }
        Route::Exec(path, _) => {
            if *method != Method::POST {
                return Err(not_allowed(method));
            }
            emulator.get(target(&path)?)?;
            Err(ArmError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "The ACI emulator does not emulate exec and attach: there is no websocket endpoint.",
            ))
        }
        Route::OutboundDependencies(path) => {
            if *method != Method::GET {
                return Err(not_allowed(method));
            }
            emulator.get(target(&path)?)?;
            Ok(Json(Vec::<String>::new()).into_response())
        }
        Route::ListByResourceGroup {
            subscription,
            resource_group,
        } => {
            if *method != Method::GET {
                return Err(not_allowed(method));
            }
            list(
                emulator,
                parts,
                &base,
                &api,
                &subscription,
                Some(&resource_group),
                &query,
            )
        }
        Route::ListBySubscription { subscription } => {
            if *method != Method::GET {
                return Err(not_allowed(method));
            }
            list(emulator, parts, &base, &api, &subscription, None, &query)
        }
        Route::Operation { id, .. } => {
            if *method != Method::GET {
                return Err(not_allowed(method));
            }
            let status = emulator.operation_status(&id).ok_or_else(|| {
                ArmError::new(
                    StatusCode::NOT_FOUND,
                    "OperationNotFound",
                    format!("The operation '{id}' was not found."),
                )
            })?;
            let running = !matches!(status.status.as_str(), "Succeeded" | "Failed" | "Canceled");
            let mut response = Json(status).into_response();
            if running {
                set(&mut response, "retry-after", RETRY_AFTER_SECONDS);
            }
            Ok(response)
        }
        Route::Usages {
            subscription,
            location,
        } => {
            if *method != Method::GET {
                return Err(not_allowed(method));
            }
            Ok(Json(emulator.usage(&subscription, &location)).into_response())
        }
    }
}

fn list(
    emulator: &Emulator,
    parts: &Parts,
    base: &str,
    api: &str,
    subscription: &str,
    resource_group: Option<&str>,
    query: &Query,
) -> Result<Response, ArmError> {
    let after = match &query.skip_token {
        None => None,
        Some(token) => {
            let (rg, name) = token.split_once('/').ok_or_else(|| {
                ArmError::invalid_field(
                    "$skipToken",
                    format!("The skip token '{token}' is invalid."),
                )
            })?;
            Some(GroupKey::new(subscription, rg, name))
        }
    };
    let mut page = emulator.list(subscription, resource_group, after);
    for group in &mut page.value {
        api_versions::shape(api, group);
    }
    let next_link = page.next.map(|key| {
        format!(
            "{base}{}?api-version={api}&$skipToken={}",
            parts.uri.path(),
            percent_encode(&format!("{}/{}", key.resource_group, key.name))
        )
    });
    Ok(Json(ContainerGroupList {
        value: page.value,
        next_link,
    })
    .into_response())
}

fn log_query(query: &Query) -> Result<LogQuery, ArmError> {
    let tail = match &query.tail {
        None => None,
        Some(text) => match text.parse::<i32>() {
            Ok(tail) if tail >= 0 => Some(tail as usize),
            _ => {
                return Err(ArmError::invalid_field(
                    "tail",
                    format!(
                        "The query parameter 'tail' must be a non-negative 32-bit integer, not '{text}'."
                    ),
                ));
            }
        },
    };
    let timestamps = match query.timestamps.as_deref() {
        None => false,
        Some(text) if text.eq_ignore_ascii_case("true") => true,
        Some(text) if text.eq_ignore_ascii_case("false") => false,
        Some(text) => {
            return Err(ArmError::invalid_field(
                "timestamps",
                format!(
                    "The query parameter 'timestamps' must be 'true' or 'false', not '{text}'."
                ),
            ));
        }
    };
    Ok(LogQuery { tail, timestamps })
}

/// Checks `api-version` against the allow-list, as ARM does.
fn check_api_version(emulator: &Emulator, query: &Query, body: &[u8]) -> Result<String, ArmError> {
    let Some(version) = &query.api_version else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let supported = &emulator.config().api_versions;
    if supported.iter().any(|known| known == version) {
        return Ok(version.clone());
    }
    #[derive(serde::Deserialize)]
    struct Located {
        location: Option<String>,
    }
    let location = serde_json::from_slice::<Located>(body)
        .ok()
        .and_then(|located| located.location);
    let at = location
        .map(|location| format!("location '{location}' and "))
        .unwrap_or_default();
    Err(ArmError::bad_request(
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for {at}API version '{version}' for type 'containerGroups'. The supported api-versions are '{}'.",
            supported.join(", ")
        ),
    ))
}

/// A group as the caller's api-version knows it.
fn answer(api: &str, mut group: ContainerGroup) -> Json<ContainerGroup> {
    api_versions::shape(api, &mut group);
    Json(group)
}

/// Reads a JSON body; errors name the path of the offending field.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ArmError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ArmError::invalid_field(
            "",
            "The request content was invalid: the body is empty.",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        ArmError::invalid_field(
            &path,
            format!("The request content was invalid and could not be deserialized: '{inner}'. Path '{path}'."),
        )
    })?;
    deserializer.end().map_err(|error| {
        ArmError::invalid_field(
            "",
            format!("The request content was invalid and could not be deserialized: '{error}'."),
        )
    })?;
    Ok(value)
}

fn target(path: &GroupPath) -> Result<Target<'_>, ArmError> {
    if !crate::validate::subscription_id(&path.subscription) {
        return Err(ArmError::bad_request(
            "InvalidSubscriptionId",
            format!(
                "The provided subscription identifier '{}' is malformed or invalid.",
                path.subscription
            ),
        ));
    }
    if !crate::validate::resource_group_name(&path.resource_group) {
        return Err(ArmError::bad_request(
            "InvalidResourceGroupName",
            format!(
                "The resource group name '{}' is invalid.",
                path.resource_group
            ),
        ));
    }
    Ok(Target {
        subscription: &path.subscription,
        resource_group: &path.resource_group,
        name: &path.name,
    })
}

fn not_allowed(method: &Method) -> ArmError {
    ArmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The HTTP method '{method}' is not supported on this resource."),
    )
}

/// How long clients are told to wait between polls of a long-running operation. The emulator's
/// operations take seconds at most; without `Retry-After` the Azure SDKs wait 30 s between polls,
/// and they read `0` as absent, so one second is the shortest wait that works.
const RETRY_AFTER_SECONDS: &str = "1";

/// Marks a long-running answer: where its status is polled, and how soon.
fn async_operation(response: &mut Response, url: &str) {
    set(response, "azure-asyncoperation", url);
    set(response, "retry-after", RETRY_AFTER_SECONDS);
}

fn set(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// `http://<Host>`: async-operation URLs and `nextLink`s point back at whoever was called.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|host| host.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn subscription_of(route: Option<&Route>) -> String {
    match route {
        Some(Route::Group(path))
        | Some(Route::Action(path, _))
        | Some(Route::Logs(path, _))
        | Some(Route::Exec(path, _))
        | Some(Route::OutboundDependencies(path)) => path.subscription.clone(),
        Some(Route::ListByResourceGroup { subscription, .. })
        | Some(Route::ListBySubscription { subscription })
        | Some(Route::Operation { subscription, .. })
        | Some(Route::Usages { subscription, .. }) => subscription.clone(),
        None => String::new(),
    }
}

fn kind_of(method: &Method, route: Option<&Route>) -> RequestKind {
    match (route, method) {
        (Some(Route::Group(_)), &Method::PUT) => RequestKind::Put,
        (Some(Route::Group(_)), &Method::GET) => RequestKind::Get,
        (Some(Route::Group(_)), &Method::PATCH) => RequestKind::Patch,
        (Some(Route::Group(_)), &Method::DELETE) => RequestKind::Delete,
        (Some(Route::Action(_, GroupAction::Start)), _) => RequestKind::Start,
        (Some(Route::Action(_, GroupAction::Stop)), _) => RequestKind::Stop,
        (Some(Route::Action(_, GroupAction::Restart)), _) => RequestKind::Restart,
        (Some(Route::Logs(..)), _) => RequestKind::Logs,
        (Some(Route::ListByResourceGroup { .. } | Route::ListBySubscription { .. }), _) => {
            RequestKind::List
        }
        (Some(Route::Operation { .. }), _) => RequestKind::Operation,
        _ => RequestKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_decodes_values() {
        let query = Query::parse(Some(
            "api-version=2025-09-01&tail=10&timestamps=TRUE&%24skipToken=rg%2Fjob",
        ));
        assert_eq!(query.api_version.as_deref(), Some("2025-09-01"));
        assert_eq!(query.skip_token.as_deref(), Some("rg/job"));
        let logs = log_query(&query).unwrap();
        assert_eq!(logs.tail, Some(10));
        assert!(logs.timestamps);
    }

    #[test]
    fn bad_log_parameters_name_the_field() {
        let query = Query::parse(Some("tail=-1"));
        assert_eq!(
            log_query(&query).unwrap_err().target.as_deref(),
            Some("tail")
        );
        let query = Query::parse(Some("timestamps=yes"));
        assert_eq!(
            log_query(&query).unwrap_err().target.as_deref(),
            Some("timestamps")
        );
    }

    #[test]
    fn body_errors_name_the_path() {
        let error = parse_body::<ContainerGroup>(
            br#"{"location":"westus","properties":{"containers":[{"name":"a","properties":{"ports":[{"port":"x"}]}}]}}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.target.as_deref(),
            Some("properties.containers[0].properties.ports[0].port")
        );
        assert_eq!(error.code, "InvalidRequestContent");
        let error = parse_body::<ContainerGroup>(br#"{"location":"westus"}"#).unwrap_err();
        assert!(error.message.contains("properties"), "{}", error.message);
    }
}
