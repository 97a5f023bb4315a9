//! The one error type of the Azure Storage boundary.
//!
//! Errors are classified where they are born: a failed precondition is [`StorageError::Conflict`]
//! (the store answers it by reload-and-reapply), a vanished pop receipt is
//! [`StorageError::MessageGone`], and everything else names the operation that failed and carries the
//! SDK error as its `#[source]`. [`StorageError::is_transient`] decides whether trying again later
//! can help. No variant holds a key, a SAS token or a message body.

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;

/// What went wrong talking to Azure Storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A conditional write lost: the blob changed since it was read (`If-Match` → 412), it already
    /// exists (`If-None-Match: *` → 409/412), or an append found another length than expected.
    #[error("conflict on blob `{name}`: it changed or already exists (HTTP {status})")]
    Conflict {
        /// The blob name.
        name: String,
        /// The HTTP status the service answered (409 or 412).
        status: u16,
    },
    /// The message was deleted, or its pop receipt is no longer valid because it became visible
    /// again and someone else received it.
    #[error("queue message `{id}` is gone or its pop receipt is stale (HTTP {status})")]
    MessageGone {
        /// The message id.
        id: String,
        /// The HTTP status the service answered (404 or 400).
        status: u16,
    },
    /// A message text would exceed the queue's limit once base64-encoded.
    #[error(
        "queue message too large: {encoded} bytes after base64 encoding, the limit is {limit}; \
         store the payload in a blob and send a reference"
    )]
    MessageTooLarge {
        /// The size of the base64 text.
        encoded: usize,
        /// The limit (65,536 bytes).
        limit: usize,
    },
    /// A caller passed a value the service would refuse; nothing was sent.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The offending parameter.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// A received message is not base64 (Berth always sends base64 text).
    #[error("queue message `{id}` is not base64 text as Berth writes it")]
    DecodeMessage {
        /// The message id.
        id: String,
        /// The decoding error.
        #[source]
        source: DecodeError,
    },
    /// The service answered without a field it always sends.
    #[error("{operation}: the response lacks `{field}`")]
    MissingInResponse {
        operation: &'static str,
        /// The missing header or element.
        field: &'static str,
    },
    /// A client could not be built (bad endpoint URL).
    #[error("building the {service} client for `{name}` failed")]
    Client {
        /// `blob` or `queue`.
        service: &'static str,
        /// Container or queue name.
        name: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Create Container failed.
    #[error("creating container `{container}` failed")]
    CreateContainer {
        container: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Get Blob failed (other than 404, which is `Ok(None)`).
    #[error("reading blob `{name}` failed")]
    GetBlob {
        /// The blob.
        name: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Put Blob failed (other than a lost precondition).
    #[error("writing blob `{name}` failed")]
    PutBlob {
        /// The blob.
        name: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Delete Blob failed.
    #[error("deleting blob `{name}` failed")]
    DeleteBlob {
        /// The blob.
        name: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// List Blobs failed.
    #[error("listing blobs under `{prefix}` in `{container}` failed")]
    ListBlobs {
        container: String,
        prefix: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Creating an append blob failed.
    #[error("creating append blob `{name}` failed")]
    CreateAppendBlob {
        /// The blob.
        name: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Append Block failed.
    #[error("appending to blob `{name}` failed")]
    AppendBlock {
        /// The blob.
        name: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Set Blob Tags failed.
    #[error("setting tags on blob `{name}` failed")]
    SetTags {
        /// The blob.
        name: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Get Blob Tags failed.
    #[error("reading tags of blob `{name}` failed")]
    GetTags {
        /// The blob.
        name: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Find Blobs by Tags failed.
    #[error("finding blobs by tags in `{container}` failed")]
    FindByTags {
        container: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Create Queue failed.
    #[error("creating queue `{queue}` failed")]
    CreateQueue {
        queue: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Put Message failed.
    #[error("sending a message to queue `{queue}` failed")]
    SendMessage {
        queue: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Get Messages failed.
    #[error("receiving messages from queue `{queue}` failed")]
    ReceiveMessages {
        queue: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Get Queue Metadata failed.
    #[error("reading the properties of queue `{queue}` failed")]
    QueueProperties {
        queue: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Delete Message failed.
    #[error("deleting message `{id}` from queue `{queue}` failed")]
    DeleteMessage {
        queue: String,
        /// The message id.
        id: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Update Message failed.
    #[error("updating message `{id}` in queue `{queue}` failed")]
    UpdateMessage {
        queue: String,
        /// The message id.
        id: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
}

/// Why a message text could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not valid base64.
    #[error("not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Valid base64, but the bytes are not UTF-8.
    #[error("not UTF-8 after base64 decoding: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

impl StorageError {
    /// Whether trying the same thing again later can succeed: timeouts (408), throttling (429),
    /// server errors (5xx) and connection or I/O failures. Conflicts are not transient: they need
    /// a reload first.
    pub fn is_transient(&self) -> bool {
        match self.sdk_error() {
            Some(source) => is_transient_sdk(source),
            None => false,
        }
    }

    /// The HTTP status the service answered, when the failure was an HTTP answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            StorageError::Conflict { status, .. } | StorageError::MessageGone { status, .. } => {
                Some(*status)
            }
            _ => self
                .sdk_error()
                .and_then(|e| e.http_status())
                .map(u16::from),
        }
    }

    /// Whether this is a lost precondition ([`StorageError::Conflict`]).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict { .. })
    }

    fn sdk_error(&self) -> Option<&azure_core::Error> {
        match self {
            StorageError::Client { source, .. }
            | StorageError::CreateContainer { source, .. }
            | StorageError::GetBlob { source, .. }
            | StorageError::PutBlob { source, .. }
            | StorageError::DeleteBlob { source, .. }
            | StorageError::ListBlobs { source, .. }
            | StorageError::CreateAppendBlob { source, .. }
            | StorageError::AppendBlock { source, .. }
            | StorageError::SetTags { source, .. }
            | StorageError::GetTags { source, .. }
            | StorageError::FindByTags { source, .. }
            | StorageError::CreateQueue { source, .. }
            | StorageError::SendMessage { source, .. }
            | StorageError::ReceiveMessages { source, .. }
            | StorageError::QueueProperties { source, .. }
            | StorageError::DeleteMessage { source, .. }
            | StorageError::UpdateMessage { source, .. } => Some(source.as_ref()),
            StorageError::Conflict { .. }
            | StorageError::MessageGone { .. }
            | StorageError::MessageTooLarge { .. }
            | StorageError::InvalidArgument { .. }
            | StorageError::DecodeMessage { .. }
            | StorageError::MissingInResponse { .. } => None,
        }
    }
}

/// The classification behind [`StorageError::is_transient`], for SDK errors.
pub(crate) fn is_transient_sdk(error: &azure_core::Error) -> bool {
    match error.http_status() {
        Some(status) => {
            status == StatusCode::RequestTimeout
                || status == StatusCode::TooManyRequests
                || u16::from(status) >= 500
        }
        None => matches!(error.kind(), ErrorKind::Connection | ErrorKind::Io),
    }
}

/// The HTTP status of an SDK error, if it was an HTTP answer.
pub(crate) fn http_status(error: &azure_core::Error) -> Option<u16> {
    error.http_status().map(u16::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use azure_core::http::{RawResponse, headers::Headers};

    fn http_error(status: u16) -> azure_core::Error {
        azure_core::Error::new(
            ErrorKind::HttpResponse {
                status: StatusCode::from(status),
                error_code: None,
                raw_response: Some(Box::new(RawResponse::from_bytes(
                    StatusCode::from(status),
                    Headers::new(),
                    Vec::new(),
                ))),
            },
            "test",
        )
    }

    fn put_failed(source: azure_core::Error) -> StorageError {
        StorageError::PutBlob {
            name: "b".into(),
            source: source.into(),
        }
    }

    #[test]
    fn transient_statuses_and_connection_failures_are_transient() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(put_failed(http_error(status)).is_transient(), "{status}");
        }
        for status in [400, 403, 404, 409, 412] {
            assert!(!put_failed(http_error(status)).is_transient(), "{status}");
        }
        let refused = azure_core::Error::with_message(ErrorKind::Connection, "refused");
        assert!(put_failed(refused).is_transient());
        let conflict = StorageError::Conflict {
            name: "b".into(),
            status: 412,
        };
        assert!(!conflict.is_transient());
        assert!(conflict.is_conflict());
        assert_eq!(conflict.status(), Some(412));
        assert_eq!(put_failed(http_error(503)).status(), Some(503));
    }
}
