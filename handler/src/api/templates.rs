//! The template routes: `PUT`, `GET` and `DELETE /api/templates/{name}` (`?version=n`), and
//! `GET /api/templates`, paged; and [`invocation`], which tells a deployment started from a
//! template (`POST /api/deployments` with `{"template": …}`) from a spec.
//!
//! # Guarantees
//! - A name is checked before anything is read (the rules of a deployment id: no `/`, `.` or
//!   `%`), so no name reaches a store key it does not own.
//! - Answers never carry a secret: a template's secret fields show as `(sealed)`, its `notify`
//!   URLs as their origins (`https://host/(sealed)`).
//! - Every refusal names its field: `name`, `version`, `template`, `parameters.<name>`, or the
//!   spec's own field paths.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{MAX_BODY, PageParams, Problem, Shared, base_url, body_bytes, top};
use crate::driver::templates::{StoredTemplate, TemplateError};
use crate::spec::template::{Invocation, Parameter};
use crate::spec::{Format, SpecErrors, document};

impl From<TemplateError> for Problem {
    fn from(error: TemplateError) -> Self {
        match error {
            TemplateError::Invalid(errors) => Problem {
                title: "Invalid template or parameters",
                ..errors.into()
            },
            TemplateError::Driver(e) => e.into(),
            TemplateError::NotFound { field, message } => Problem::new(
                StatusCode::NOT_FOUND,
                "Not found",
                format!("{field}: {message}"),
            ),
            TemplateError::Unavailable => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                "templates: this Berth keeps no templates",
            ),
            e @ TemplateError::Unreadable { .. } => Problem::new(
                StatusCode::CONFLICT,
                "Unreadable template",
                format!("version: {e}"),
            ),
        }
    }
}

/// The invocation in a `POST /api/deployments` body, when it is one (a JSON object with
/// `template`); `None` for a spec.
pub fn invocation(body: &[u8], format: Format) -> Result<Option<Invocation>, SpecErrors> {
    let mentions = body.windows(10).any(|w| w == b"\"template\"");
    if format != Format::Json || !mentions {
        return Ok(None);
    }
    let document = document::from_json(body)?;
    if !Invocation::is_invocation(&document) {
        return Ok(None);
    }
    Invocation::read(document).map(Some)
}

/// What the API shows of a template version.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateDoc<'a> {
    name: &'a str,
    version: u32,
    created_time: String,
    parameters: &'a BTreeMap<String, Parameter>,
    /// The spec, secret fields as `(sealed)`, `notify` URLs by their origins.
    spec: &'a Value,
}

fn doc(t: &StoredTemplate) -> TemplateDoc<'_> {
    TemplateDoc {
        name: &t.name,
        version: t.version,
        created_time: crate::clock::rfc3339(t.created),
        parameters: &t.parameters,
        spec: &t.spec,
    }
}

fn valid_name(name: &str) -> Result<(), Problem> {
    crate::spec::validate::template_name(name).map_err(|e| Problem::bad_request("name", e))
}

#[derive(Deserialize)]
pub(super) struct VersionParams {
    version: Option<String>,
}

fn version(text: Option<&str>) -> Result<Option<u32>, Problem> {
    match text {
        None => Ok(None),
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| Problem::bad_request("version", "a version number, from 1")),
    }
}

pub(super) async fn put(
    State(api): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    valid_name(&name)?;
    let bytes = body_bytes(body, MAX_BODY).await?;
    let (stored, created) = api.driver.put_template(&name, &bytes).await?;
    let status = match created {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    };
    let mut response = (status, axum::Json(doc(&stored))).into_response();
    let location = format!(
        "{}/api/templates/{name}?version={}",
        base_url(&api, &headers),
        stored.version
    );
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub(super) async fn read(
    State(api): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<VersionParams>,
) -> Result<Response, Problem> {
    valid_name(&name)?;
    let version = version(params.version.as_deref())?;
    let stored = api.driver.template(&name, version).await?;
    Ok(axum::Json(doc(&stored)).into_response())
}

pub(super) async fn delete(
    State(api): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    valid_name(&name)?;
    api.driver.delete_template(&name).await?;
    Ok(axum::Json(serde_json::json!({ "name": name, "deleted": true })).into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListItem<'a> {
    name: &'a str,
    latest_version: u32,
}

pub(super) async fn list(
    State(api): State<Shared>,
    Query(params): Query<PageParams>,
) -> Result<Response, Problem> {
    let top = top(params.top.as_deref(), 50)?;
    let page = api
        .driver
        .templates(top, params.continuation_token.as_deref())
        .await?;
    let items: Vec<ListItem<'_>> = page
        .items
        .iter()
        .map(|(name, version)| ListItem {
            name,
            latest_version: *version,
        })
        .collect();
    let mut body = serde_json::json!({ "templates": items });
    if let Some(token) = &page.continuation {
        body["continuationToken"] = Value::from(token.as_str());
    }
    let mut response = axum::Json(body).into_response();
    if let Some(token) = page
        .continuation
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        response
            .headers_mut()
            .insert("x-ms-continuation-token", token);
    }
    Ok(response)
}
