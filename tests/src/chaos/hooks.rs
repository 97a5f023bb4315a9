//! The webhook receiver of a chaos run: a real HTTP server on loopback that the notifying
//! deployments' `notify` URLs name (`/hook/<deployment id>`, or `/hook/<schedule name>` for all
//! of a schedule's runs, told apart by their event's subject). It records every delivery and
//! answers every third with a `503`, so that Berth's retries run too.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The deployment its URL names.
    pub deployment: String,
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
    /// Answered `2xx`: Berth counts it delivered.
    pub accepted: bool,
}

#[derive(Default)]
struct Seen {
    deliveries: Vec<Delivery>,
}

/// The running receiver.
pub struct Hooks {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    server: tokio::task::JoinHandle<()>,
}

impl Hooks {
    /// Starts the receiver on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/hook/{id}", post(receive))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Hooks { url, seen, server })
    }

    /// Where deployment `id`'s notifications go.
    pub fn url_for(&self, id: &str) -> String {
        format!("{}/hook/{id}", self.url)
    }

    /// Every delivery so far, in the order they came.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.seen).deliveries.clone()
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    // A schedule's runs share one URL: their event's subject names the run.
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let deployment = match event["subject"].as_str() {
        Some(subject) if subject.starts_with(&format!("{id}-")) => subject.to_owned(),
        _ => id,
    };
    let mut seen = lock(&seen);
    // Every third request fails, as a receiver that is briefly down would.
    let accepted = seen.deliveries.len() % 3 != 2;
    seen.deliveries.push(Delivery {
        deployment,
        webhook_id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        accepted,
    });
    if accepted {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}
