//! The one HTTP error type: `application/problem+json` with a `title`, a `detail` naming the
//! offending field, and the right status. Logged once here; internals hidden on 5xx.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::driver::DriverError;
use crate::spec::SpecErrors;
use crate::store::StoreError;

/// What a caller refused for a full inbox is told to wait, in seconds.
pub const INBOX_RETRY_AFTER_S: u64 = 60;

/// An API error.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    /// Every spec problem, when the error is a bad spec.
    pub errors: Vec<crate::spec::SpecError>,
    /// Seconds for `Retry-After` on a 429 or 503 (1 when unset).
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log line of a 5xx; never sent to the caller.
    pub cause: Option<String>,
}

impl Problem {
    /// A problem with a status, a short title and a detail.
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            cause: None,
        }
    }

    /// The same problem, with the internal error behind it for the log (the caller sees only
    /// `detail`).
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// The same problem, telling the caller to come back after `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// `400`: a field of the request is wrong.
    pub fn bad_request(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Bad request",
            format!("{field}: {message}"),
        )
    }

    /// `404` for a deployment.
    pub fn no_deployment(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("id: no deployment '{id}'"),
        )
    }
}

impl From<SpecErrors> for Problem {
    fn from(errors: SpecErrors) -> Self {
        Problem {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid deployment spec",
            detail: errors.to_string(),
            errors: errors.0,
            retry_after: None,
            cause: None,
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::BadContinuation => {
                Problem::bad_request("continuationToken", "not a token this API gave out")
            }
            StoreError::Unreadable { id, reason } => Problem::new(
                StatusCode::CONFLICT,
                "Unreadable deployment",
                format!(
                    "id: deployment '{id}' cannot be read by this Berth: {reason}. Its stored \
                     document is at /api/deployments/{id}/checkpoint; DELETE \
                     /api/deployments/{id} purges it"
                ),
            ),
            e if e.is_transient() => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                "storage is busy or unreachable; try again",
            )
            .caused_by(e),
            e => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "storage failed; see the handler's logs",
            )
            .caused_by(e),
        }
    }
}

impl From<DriverError> for Problem {
    fn from(error: DriverError) -> Self {
        match error {
            DriverError::Store(e) => e.into(),
            DriverError::NotFound(id) => Problem::no_deployment(&id),
            DriverError::SpecConflict(id) => Problem::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!("id: deployment '{id}' already exists with a different spec"),
            ),
            DriverError::Ended { id, status } => Problem::new(
                StatusCode::GONE,
                "Gone",
                format!("id: deployment '{id}' has ended ({})", status.as_str()),
            ),
            DriverError::Unauthorised { id } => Problem::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("token: not valid for deployment '{id}' and this event"),
            ),
            DriverError::InboxFull { id } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many events",
                format!(
                    "name: deployment '{id}' keeps at most {} raised events ({} KB of payloads) and its inbox is full",
                    crate::engine::MAX_INBOX,
                    crate::engine::MAX_INBOX_BYTES / 1024
                ),
            )
            .retry_after(INBOX_RETRY_AFTER_S),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            let status = self.status.as_u16();
            let cause = self.cause.as_deref().unwrap_or("");
            // A 503 is the caller's to retry; a 500 is Berth's to fix.
            if self.status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(http.status = status, detail = %self.detail, error = cause, "request failed");
            } else {
                tracing::error!(http.status = status, detail = %self.detail, error = cause, "request failed");
            }
        }
        let mut body = json!({ "type": "about:blank", "title": self.title, "status": self.status.as_u16(), "detail": self.detail });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            let seconds = self.retry_after.unwrap_or(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
