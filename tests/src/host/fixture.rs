//! TEST FIXTURE, not Berth: trivial handlers for `berth::functions::router`, used by the
//! `functions-fixture-handler` binary and by in-process tests, so the protocol layer and the
//! simulator can be tested end to end independently of the real engine.
//!
//! - API: every `/api/...` request is echoed as JSON (method, path, query, headers without keys,
//!   body); `?status=NNN` picks the status.
//! - Queue: the message text is a script: `ok`, `fail` (transient), `poison` (never succeeds),
//!   `fail-until:N` (fails while `DequeueCount < N`), `panic`; anything else succeeds.
//! - Timer: succeeds, logging whether the tick was past due.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth::functions::{
    Handlers, QueueHandler, QueueMessage, StepFailure, TimerHandler, TimerTick,
};
use futures::FutureExt as _;
use serde_json::json;

/// The fixture's three handlers.
pub fn handlers() -> Handlers {
    Handlers {
        api: api(),
        queue: queue(),
        submit: queue(),
        timer: timer(),
    }
}

/// The echo API.
pub fn api() -> Router {
    Router::new().fallback(|request: Request| async move {
        let (parts, body) = request.into_parts();
        let body: Bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let status = query
            .iter()
            .find(|(k, _)| k == "status")
            .and_then(|(_, v)| v.parse::<u16>().ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .filter(|(n, _)| n.as_str() != "x-functions-key")
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    json!(String::from_utf8_lossy(v.as_bytes())),
                )
            })
            .collect();
        tracing::info!(http.path = parts.uri.path(), "echo api served the request");
        let echo = json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": query,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
            "bodyLength": body.len(),
        });
        (
            status,
            [("content-type", "application/json"), ("x-fixture", "echo")],
            echo.to_string(),
        )
            .into_response()
    })
}

/// The scripted step handler.
pub fn queue() -> QueueHandler {
    Arc::new(|message: QueueMessage| {
        async move {
            tracing::info!(queue.text = %message.text, "fixture step");
            let line = format!(
                "fixture step text={} dequeue_count={} id={}",
                message.text, message.dequeue_count, message.id
            );
            let script = message.text.trim().to_owned();
            match script.as_str() {
                "fail" => Err(StepFailure::Transient {
                    reason: "scripted transient failure".into(),
                }),
                "poison" => Err(StepFailure::Poison {
                    reason: "scripted unparseable message".into(),
                }),
                "panic" => panic!("scripted panic"),
                s => match s.strip_prefix("fail-until:").map(str::parse::<u32>) {
                    Some(Ok(n)) if message.dequeue_count < n => Err(StepFailure::Transient {
                        reason: format!("scripted failure until delivery {n}"),
                    }),
                    _ => Ok(vec![line]),
                },
            }
        }
        .boxed()
    })
}

/// The timer handler.
pub fn timer() -> TimerHandler {
    Arc::new(|_function: String, tick: TimerTick| {
        async move { Ok(vec![format!("fixture sweep past_due={}", tick.is_past_due)]) }.boxed()
    })
}
