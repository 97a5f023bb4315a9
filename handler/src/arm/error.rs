//! ARM errors, classified where they are born, so that callers decide on a kind rather than a
//! status code.

use std::time::Duration;

/// An ARM call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    #[error("{code}: {message}")]
    NotFound { code: String, message: String },
    #[error("ARM throttled the request ({message}); retry after {retry_after:?}")]
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("{code}: {message}")]
    Conflict { code: String, message: String },
    #[error("{code}: {message} (HTTP {status})")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    #[error("ARM refused the credentials (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    #[error("ARM failed (HTTP {status}) {code}: {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    #[error("{operation}: {source}")]
    Transport {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{operation}: unreadable answer: {source}")]
    Decode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("getting an ARM token failed: {source}")]
    Token {
        #[source]
        source: azure_core::Error,
    },
}

impl ArmError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            ArmError::Throttled { .. }
            | ArmError::Server { .. }
            | ArmError::Transport { .. }
            | ArmError::Token { .. } => true,
            ArmError::Conflict { code, .. } => {
                code == "ContainerGroupTransitioning" || code == "Conflict"
            }
            _ => false,
        }
    }

    /// Whether ARM refused a create for want of capacity in the region, so that another region
    /// may take it: `ServiceUnavailable` ("The requested resource is not available in the
    /// location ..."), `SkuNotAvailable`, or the region's container-group or core quota
    /// (`ContainerGroupQuotaReached`).
    pub fn is_capacity(&self) -> bool {
        matches!(
            self.code(),
            Some("ServiceUnavailable" | "SkuNotAvailable" | "ContainerGroupQuotaReached")
        )
    }

    /// Whether ARM said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ArmError::NotFound { .. })
    }

    /// The ARM error code, when ARM gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ArmError::NotFound { code, .. }
            | ArmError::Conflict { code, .. }
            | ArmError::Rejected { code, .. }
            | ArmError::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}
