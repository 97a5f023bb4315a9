//! `/api/schedules`: deployments started on a cron schedule (see [`crate::schedule`]).
//!
//! - `PUT /api/schedules/{name}`: create (`201`) or replace (`200`) a schedule.
//! - `GET /api/schedules`, `GET /api/schedules/{name}`: with `nextRun`, `lastRun`, the missed
//!   count and a held run; never a secret (a spec's secret values show as `(sealed)`).
//! - `DELETE /api/schedules/{name}`: the schedule goes; its runs stay.
//! - `POST /api/schedules/{name}/pause`, `.../resume`.
//!
//! # Guarantees
//! - The name is checked before anything is looked up (no `../`, 1 to 63 lowercase letters,
//!   digits and hyphens); every refusal is a problem naming its field.
//! - A schedule's spec passes every check a `POST /api/deployments` spec does, under the id its
//!   runs take, before it is stored.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Problem, Shared, base_url, body_bytes};
use crate::clock::rfc3339;
use crate::driver::templates::TemplateError;
use crate::schedule::tick::ScheduleError;
use crate::schedule::{Schedule, Scheduler, Target, document, run_id, valid_name};
use crate::spec::parse::MAX_SPEC_BYTES;

/// The largest `PUT` body: a spec at its largest and the schedule's own fields.
pub const MAX_SCHEDULE_BODY: usize = MAX_SPEC_BYTES + 64 * 1024;

impl From<ScheduleError> for Problem {
    fn from(error: ScheduleError) -> Self {
        match error {
            ScheduleError::Store(e) => e.into(),
            ScheduleError::Driver(e) => e.into(),
            ScheduleError::NotFound(name) => Problem::new(
                StatusCode::NOT_FOUND,
                "Not found",
                format!("name: no schedule '{name}'"),
            ),
            ScheduleError::Unreadable { name, reason } => Problem::new(
                StatusCode::CONFLICT,
                "Unreadable schedule",
                format!(
                    "name: schedule '{name}' cannot be read by this Berth: {reason}; PUT replaces it, DELETE removes it"
                ),
            ),
            e @ ScheduleError::TooMany => Problem::bad_request("name", e),
            // A template the schedule names that is not there is a bad body, as for a `POST`.
            ScheduleError::Template(TemplateError::NotFound { field, message }) => {
                Problem::bad_request(field, message)
            }
            ScheduleError::Template(e) => e.into(),
            e @ ScheduleError::Unavailable => {
                Problem::new(StatusCode::NOT_FOUND, "Not found", format!("path: {e}"))
            }
            ScheduleError::BadSpec(message) => {
                Problem::new(StatusCode::BAD_REQUEST, "Invalid schedule", message)
            }
        }
    }
}

pub(crate) fn scheduler(api: &Shared) -> Result<Scheduler, Problem> {
    Scheduler::of(&api.driver, api.public_url.clone()).ok_or(ScheduleError::Unavailable.into())
}

fn name_ok(name: &str) -> Result<(), Problem> {
    valid_name(name).map_err(|e| Problem::bad_request("name", e))
}

/// A schedule as the API shows it.
fn view(schedule: &Schedule, now: crate::engine::Millis) -> Value {
    let target = match &schedule.target {
        Target::Spec { spec, sealed, .. } => {
            let mut spec = serde_json::to_value(spec).unwrap_or(Value::Null);
            if let Some(map) = spec.as_object_mut() {
                map.remove("id");
            }
            json!({ "spec": spec, "secrets": if sealed.is_some() { "(sealed)" } else { "none" } })
        }
        Target::Template {
            template,
            version,
            parameters,
        } => json!({ "template": template, "version": version, "parameters": parameters }),
    };
    let time = |t: Option<crate::engine::Millis>| t.map(rfc3339);
    let deadline = schedule
        .starting_deadline_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| crate::spec::IsoDuration(ms).to_string());
    json!({
        "name": schedule.name,
        "cron": schedule.cron,
        "timeZone": schedule.time_zone,
        "concurrencyPolicy": schedule.concurrency_policy.as_str(),
        "startingDeadline": deadline,
        "suspended": schedule.suspended,
        "target": target,
        "createdTime": rfc3339(schedule.created),
        "lastUpdatedTime": rfc3339(schedule.updated),
        "nextRun": time(schedule.next_run(now)),
        "nextRunId": schedule.next_run(now).map(|t| run_id(&schedule.name, t)),
        "lastRun": schedule.last_run.as_ref().map(|r| json!({
            "scheduledTime": rfc3339(r.scheduled),
            "deploymentId": r.deployment_id,
            "startedTime": rfc3339(r.started),
        })),
        "missedRuns": schedule.missed_runs,
        "lastMissedTime": time(schedule.last_missed),
        "held": schedule.held.as_ref().map(|h| json!({
            "scheduledTime": rfc3339(h.scheduled),
            "reason": h.reason,
        })),
    })
}

pub(super) async fn put(
    State(api): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    name_ok(&name)?;
    let scheduler = scheduler(&api)?;
    let bytes = body_bytes(body, MAX_SCHEDULE_BODY).await?;
    let invalid = |e| Problem {
        title: "Invalid schedule",
        ..Problem::from(e)
    };
    let request = document::read(&name, &bytes).map_err(invalid)?;
    if let document::RequestTarget::Spec(spec) = &request.target {
        api.driver
            .check(spec)
            .map_err(|e| invalid(document::under_spec(e)))?;
    }
    let base = base_url(&api, &headers);
    let put = scheduler.put(&name, request, base).await?;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut shown = view(&put.schedule, api.driver.now());
    if let Some(secret) = put.notify_secret {
        shown["notifySecret"] = json!(secret);
    }
    Ok((status, axum::Json(shown)).into_response())
}

pub(super) async fn list(State(api): State<Shared>) -> Result<Response, Problem> {
    let (schedules, unreadable) = scheduler(&api)?.list().await?;
    let now = api.driver.now();
    let schedules: Vec<Value> = schedules.iter().map(|s| view(s, now)).collect();
    Ok(axum::Json(json!({ "schedules": schedules, "unreadable": unreadable })).into_response())
}

pub(super) async fn read(
    State(api): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    name_ok(&name)?;
    let schedule = scheduler(&api)?.get(&name).await?;
    Ok(axum::Json(view(&schedule, api.driver.now())).into_response())
}

pub(super) async fn delete(
    State(api): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    name_ok(&name)?;
    scheduler(&api)?.delete(&name).await?;
    Ok(axum::Json(json!({ "name": name, "deleted": true })).into_response())
}

pub(super) async fn action(
    State(api): State<Shared>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, Problem> {
    name_ok(&name)?;
    let suspended = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "Not found",
                "action: a schedule is paused or resumed (POST .../pause, .../resume)",
            ));
        }
    };
    let schedule = scheduler(&api)?.suspend(&name, suspended).await?;
    Ok(axum::Json(view(&schedule, api.driver.now())).into_response())
}
