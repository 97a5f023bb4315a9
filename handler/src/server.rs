//! The HTTP server of every mode (`dev`, `serve`, Functions): hyper's HTTP/1.1 connections with
//! the router as the service, under limits that a slow or greedy client cannot get around.
//!
//! # Guarantees
//! - At most [`Limits::max_connections`] connections are open at once; past that, new ones wait in
//!   the kernel's backlog instead of taking file descriptors.
//! - A client that has not sent a request's headers within [`Limits::header_timeout`] (including an
//!   idle keep-alive connection waiting for its next request) is disconnected.
//! - A request (reading its body included) that has not been answered within
//!   [`Limits::request_timeout`] is answered `503` with a problem, and its work is dropped. The
//!   timeout bounds the time to the response's headers: a streamed body (a log follow) bounds its
//!   own length (see [`crate::api::logs`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::api::Problem;

/// What one server allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to send a request's headers, and how long a keep-alive connection may sit idle.
    pub header_timeout: Duration,
    /// Time from a request's headers to its answer, reading the body included.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// `router` with every request bounded by `timeout` (answered `503` when it runs out).
pub fn with_request_timeout(router: Router, timeout: Duration) -> Router {
    router.layer(middleware::from_fn(move |request: Request, next: Next| {
        bounded(timeout, request, next)
    }))
}

async fn bounded(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Request timed out",
            format!(
                "request: not answered within {} s (a slow body, or a slow backend)",
                timeout.as_secs()
            ),
        )
        .into_response(),
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes; open connections end
/// with it.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = with_request_timeout(router, limits.request_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let mut waiting = stopped.clone();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = waiting.wait_for(|stop| *stop) => return Ok(()),
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = waiting.wait_for(|stop| *stop) => return Ok(()),
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors and the like: back off a little instead of spinning.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let router = router.clone();
            async move {
                let response = router
                    .oneshot(request.map(Body::new))
                    .await
                    .unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response)
            }
        });
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            drop(slot);
        });
    }
}
