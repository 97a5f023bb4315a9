//! Fault injection as the reliability tests use it: 429 with Retry-After, 500, slow answers and
//! dropped connections, by rate or on the Nth call, set at start and flipped at runtime.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use emulator::{FaultKind, Faults, NthFault};
use serde_json::{Value, json};

async fn set_faults(harness: &Harness, faults: Value) -> reqwest::Response {
    harness.set_faults(&faults).await
}

#[tokio::test]
async fn the_nth_call_fails_with_a_500_in_arms_shape() {
    let harness = Harness::start(|config| {
        config.instant = true;
        config.faults = Faults {
            nth: vec![NthFault {
                call: 2,
                fault: FaultKind::Error,
            }],
            ..Faults::default()
        };
    })
    .await;
    assert_eq!(harness.get("a").await.0, 404);
    let (status, body) = harness.get("a").await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "InternalServerError");
    assert_eq!(harness.get("a").await.0, 404);
    // The admin routes are never faulted or counted.
    assert_eq!(harness.stats().await["faults"]["error"], 1);
    harness.stop().await;
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let harness = Harness::start(|config| config.instant = true).await;
    let response = set_faults(
        &harness,
        json!({"throttleRate": 1.0, "retryAfterSeconds": 7}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let response = harness
        .put(
            "t",
            &group_body(
                "Never",
                json!([shell("a", "true", json!([]), json!([]))]),
                json!([]),
            ),
        )
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SubscriptionRequestsThrottled");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'7' seconds")
    );
    assert_eq!(
        harness.stats().await["groups"],
        0,
        "a throttled PUT does nothing"
    );
    set_faults(&harness, json!({})).await;
    assert_eq!(harness.get("t").await.0, 404);
    harness.stop().await;
}

#[tokio::test]
async fn a_dropped_connection_gets_no_answer_and_the_next_call_works() {
    let harness = Harness::start(|config| config.instant = true).await;
    set_faults(&harness, json!({"nth": [{"call": 1, "fault": "drop"}]})).await;
    let url = format!("{}?api-version={API}", harness.group_url("d"));
    let error = harness.client.get(&url).send().await.unwrap_err();
    assert!(!error.is_status(), "{error}");
    assert!(
        error.is_request()
            || error.is_connect()
            || error.is_body()
            || error.to_string().contains("connection"),
        "{error:?}"
    );
    let fresh = reqwest::Client::new();
    assert_eq!(fresh.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(harness.stats().await["faults"]["drop"], 1);
    harness.stop().await;
}

#[tokio::test]
async fn slow_answers_wait_then_answer() {
    let harness = Harness::start(|config| config.instant = true).await;
    set_faults(
        &harness,
        json!({"slowRate": 1.0, "slowMs": 300, "methods": ["GET"]}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(harness.get("s").await.0, 404);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    // PUTs are not eligible.
    let started = Instant::now();
    let body = group_body(
        "Never",
        json!([shell("a", "true", json!([]), json!([]))]),
        json!([]),
    );
    assert_eq!(harness.put("s", &body).await.status(), 201);
    assert!(started.elapsed() < Duration::from_millis(300));
    harness.stop().await;
}

#[tokio::test]
async fn seeded_rates_inject_about_that_share_of_faults() {
    let harness = Harness::start(|config| config.instant = true).await;
    set_faults(&harness, json!({"errorRate": 0.3, "seed": 42})).await;
    let mut errors = 0;
    for _ in 0..200 {
        if harness.get("r").await.0 == 500 {
            errors += 1;
        }
    }
    assert!((35..=85).contains(&errors), "{errors} errors of 200");
    harness.stop().await;
}

#[tokio::test]
async fn bad_fault_settings_are_refused_naming_the_field() {
    let harness = Harness::start(|config| config.instant = true).await;
    let response = set_faults(&harness, json!({"dropRate": 2})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dropRate"),
        "{body}"
    );
    let response = set_faults(&harness, json!({"nth": [{"call": 1, "fault": "explode"}]})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["target"], "nth[0].fault", "{body}");
    let current = json_body(
        harness
            .client
            .get(format!("{}/_emulator/faults", harness.base)),
    )
    .await;
    assert_eq!(current["dropRate"], 0.0);
    assert!(
        emulator::start(
            emulator::Config {
                instant: true,
                faults: Faults {
                    error_rate: -1.0,
                    ..Faults::default()
                },
                ..emulator::Config::default()
            },
            loopback()
        )
        .await
        .is_err()
    );
    harness.stop().await;
}
