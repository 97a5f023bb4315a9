//! The HTTP face of the emulator: `router` (the ARM routes plus `/_emulator/*`), the admin
//! handlers, and `serve`, the accept loop that can drop a connection without answering.

mod arm;
pub mod route;
mod serve;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::aci::Emulator;
use crate::error::ArmError;
use crate::faults::Faults;

pub use serve::serve;

/// Put in a response's extensions to make `serve` close the connection without answering.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// The emulator's routes: every ARM path (parsed by `route`), plus `GET /_emulator/stats` and
/// `GET`/`PUT /_emulator/faults`, all behind the bearer token when one is configured.
pub fn router(emulator: Arc<Emulator>) -> Router {
    Router::new()
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/faults", get(faults).put(set_faults))
        .fallback(arm::dispatch)
        .layer(axum::middleware::from_fn_with_state(
            emulator.clone(),
            crate::auth::require_token,
        ))
        .with_state(emulator)
}

async fn stats(State(emulator): State<Arc<Emulator>>) -> Response {
    Json(emulator.stats()).into_response()
}

async fn faults(State(emulator): State<Arc<Emulator>>) -> Response {
    Json(emulator.faults()).into_response()
}

async fn set_faults(State(emulator): State<Arc<Emulator>>, body: Bytes) -> Response {
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    let faults: Faults = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(faults) => faults,
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            return ArmError::invalid_field(&path, format!("Invalid faults at '{path}': {inner}"))
                .into_response();
        }
    };
    match emulator.set_faults(faults) {
        Ok(()) => Json(emulator.faults()).into_response(),
        Err(message) => ArmError::bad_request("InvalidFaults", message).into_response(),
    }
}
