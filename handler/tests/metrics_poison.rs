//! `berth_poison_messages_total`: SQLite moving a message to its poison table, and in Functions
//! mode a `steps` invocation failing on its last delivery (`DequeueCount` = `maxDequeueCount`, 5)
//! through the real dispatcher. The tests share the process's metrics, so they run one at a time.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use berth::clock::SystemClock;
use berth::functions::{QueueHandler, StepFailure, TimerHandler};
use berth::store::sqlite::{MAX_DEQUEUE, SqliteStore};
use berth::store::{Scheduled, StepMessage, Steps as _};
use futures::FutureExt as _;
use serde_json::json;
use tower::ServiceExt as _;

async fn deliver(router: &Router, dequeue_count: u32) -> u16 {
    let envelope = json!({
        "Data": { "message": "\"{\\\"id\\\":\\\"d-1\\\",\\\"seq\\\":1}\"" },
        "Metadata": { "DequeueCount": dequeue_count.to_string(), "Id": "\"m-1\"" },
    });
    let request = axum::http::Request::post("/steps")
        .header("content-type", "application/json")
        .body(Body::from(envelope.to_string()))
        .unwrap();
    router
        .clone()
        .oneshot(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn poisoned() -> u64 {
    berth::metrics::render()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("berth_poison_messages_total "))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn sqlite_counts_a_message_moved_to_the_poison_table() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("b.db"), Arc::new(SystemClock)).unwrap();
    let message = StepMessage {
        id: "d-1".into(),
        seq: 1,
    };
    store.send(&Scheduled { message, at: 0 }).await.unwrap();
    let before = poisoned().await;
    // Received and never completed: visible again at once (a lease of 0).
    for _ in 0..MAX_DEQUEUE {
        assert_eq!(store.receive(1, 0).await.unwrap().len(), 1);
    }
    assert_eq!(poisoned().await, before);
    assert!(store.receive(1, 0).await.unwrap().is_empty());
    assert_eq!(store.poisoned().unwrap().len(), 1);
    assert_eq!(poisoned().await, before + 1);
}

#[tokio::test]
async fn the_last_failed_delivery_of_a_step_is_counted_as_poison() {
    let _one = ONE_AT_A_TIME.lock().await;
    let queue: QueueHandler = Arc::new(|_| {
        async {
            Err(StepFailure::Transient {
                reason: "storage is down".into(),
            })
        }
        .boxed()
    });
    let timer: TimerHandler = Arc::new(|_, _| async { Ok(vec![]) }.boxed());
    let router = berth::functions::router(Router::new(), queue, timer);
    let before = poisoned().await;
    for count in 1..5 {
        assert_eq!(deliver(&router, count).await, 503);
    }
    assert_eq!(poisoned().await, before);
    assert_eq!(deliver(&router, 5).await, 503);
    assert_eq!(poisoned().await, before + 1);
}
