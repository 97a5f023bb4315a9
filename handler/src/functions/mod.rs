//! The Functions custom-handler protocol: how Berth runs inside an Azure Function App.
//!
//! The Functions host starts `handler` with `FUNCTIONS_CUSTOMHANDLER_PORT`, probes `GET /` until it
//! answers, then calls `POST /{FunctionName}` with `{"Data":…,"Metadata":…}` for every trigger
//! (see `docs/functions-host-protocol.md`). With `enableForwardingHttpRequest: false` HTTP
//! calls arrive in the same payload shape, so one decoder serves every trigger.
//!
//! # Layout
//! - [`table`]: the function table, embedded from `functions/*/function.json` and `host.json`.
//! - [`invocation`]: the request envelope and the queue and timer payloads, decoded.
//! - [`http`]: `Data.req` → `http::Request`, and the API's response → `Outputs.res`.
//! - [`logs`]: JSON lines on stdout and per-invocation capture for `Logs`.
//! - [`dispatch`]: the server: readiness probe, dispatch by trigger, failure mapping.
//! - [`package`]: the deployable function-app folder and zip.

pub mod dispatch;
pub mod http;
pub mod invocation;
pub mod logs;
pub mod package;
pub mod table;

pub use dispatch::{Handlers, QueueHandler, StepFailure, TimerHandler, lazy_router, router, serve};
pub use invocation::{Envelope, InvocationError, QueueMessage, TimerTick};

/// The environment variable that holds the port the host calls the handler on.
pub const PORT_VARIABLE: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";

/// A `FUNCTIONS_CUSTOMHANDLER_PORT` value that is not a port.
#[derive(Debug, thiserror::Error)]
#[error("{PORT_VARIABLE} must be a TCP port number (1-65535), got `{value}`")]
pub struct PortError {
    /// The value found.
    pub value: String,
}

/// Parses a `FUNCTIONS_CUSTOMHANDLER_PORT` value.
pub fn parse_port(value: &str) -> Result<u16, PortError> {
    value
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| PortError {
            value: value.to_owned(),
        })
}
