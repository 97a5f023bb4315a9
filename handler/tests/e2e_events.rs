//! Events raised on a deployment are readable: `GET /api/deployments/{id}/events` lists the ones
//! it keeps, oldest first, payloads as given, a page at a time.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::scenarios::{get, post};
use common::{Backend, Harness};
use serde_json::json;

async fn raised_events_are_listed_a_page_at_a_time(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let id = h
        .start_deployment(&common::job("evented-1", "sleep 30"))
        .await;
    let (code, empty) = get(&h, &format!("/deployments/{id}/events")).await;
    assert_eq!(code, 200, "{empty}");
    assert_eq!(empty, json!({ "continuationToken": null, "events": [] }));
    let payloads = [
        json!({ "step": 1, "note": "<b>as given</b>" }),
        json!(null),
        json!([1, 2]),
    ];
    for (i, payload) in payloads.iter().enumerate() {
        let body = (!payload.is_null()).then(|| payload.clone());
        let (code, answer) = post(&h, &format!("/deployments/{id}/events/ev-{i}"), body).await;
        assert_eq!(code, 202, "{answer}");
    }
    let (code, first) = get(&h, &format!("/deployments/{id}/events?top=2")).await;
    assert_eq!(code, 200, "{first}");
    let names: Vec<&str> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ev-0", "ev-1"]);
    assert_eq!(first["events"][0]["payload"], payloads[0]);
    assert!(
        first["events"][0]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let token = first["continuationToken"].as_str().unwrap();
    let (_, rest) = get(
        &h,
        &format!("/deployments/{id}/events?top=2&continuationToken={token}"),
    )
    .await;
    assert_eq!(rest["events"][0]["name"], "ev-2");
    assert_eq!(rest["events"][0]["payload"], payloads[2]);
    assert_eq!(rest["continuationToken"], json!(null));
    for bad in ["?continuationToken=forged", "?top=0", "?top=1001"] {
        let (code, problem) = get(&h, &format!("/deployments/{id}/events{bad}")).await;
        assert_eq!(code, 400, "{bad}: {problem}");
    }
    let (code, _) = get(&h, "/deployments/no-such/events").await;
    assert_eq!(code, 404);
    let (code, _) = post(&h, &format!("/deployments/{id}/terminate"), None).await;
    assert_eq!(code, 202);
    h.wait_done(&id).await;
    common::scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(raised_events_are_listed_a_page_at_a_time);
