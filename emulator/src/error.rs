//! The emulator's two error boundaries: `ArmError`, an error answer in ARM's `CloudError` shape
//! with its status and code, and `Error`, why the emulator could not start.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::images::ImageMapError;
use crate::model::{CloudError, CloudErrorBody};

/// Why `start` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The data folder could not be created or read.
    #[error("cannot use the data folder {path}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The image map file is unreadable or invalid.
    #[error("cannot load the image map")]
    ImageMap(#[from] ImageMapError),
    /// The fault settings are invalid.
    #[error("invalid fault settings: {0}")]
    Faults(String),
}

/// An ARM error answer: `{"error": {"code", "message", "target"?}}` with its HTTP status and, for
/// throttling, a `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code, such as `ResourceNotFound`.
    pub code: String,
    /// The message, naming the offending field or resource.
    pub message: String,
    /// The offending field, when there is one.
    pub target: Option<String>,
    /// Seconds for `Retry-After`, on `429`s.
    pub retry_after: Option<u64>,
}

impl ArmError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ArmError {
            status,
            code: code.to_string(),
            message: message.into(),
            target: None,
            retry_after: None,
        }
    }

    /// A `400` with a code and a message.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A `400 InvalidRequestContent` about one field of the body.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ArmError {
            target: Some(field.to_string()),
            ..Self::bad_request("InvalidRequestContent", message)
        }
    }

    /// Names the offending field.
    pub fn with_target(mut self, field: impl Into<String>) -> Self {
        self.target = Some(field.into());
        self
    }

    /// ARM's `404 ResourceNotFound` for a container group, with ARM's message.
    pub fn group_not_found(resource_group: &str, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.ContainerInstance/containerGroups/{name}' under resource group '{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    /// A `429` with `Retry-After`.
    pub fn throttled(code: &str, message: impl Into<String>, retry_after: u64) -> Self {
        ArmError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// The `CloudError` body.
    pub fn body(&self) -> CloudError {
        CloudError {
            error: Some(CloudErrorBody {
                code: Some(self.code.clone()),
                message: Some(self.message.clone()),
                target: self.target.clone(),
                details: None,
            }),
        }
    }
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ArmError {}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        response
    }
}
