//! ACI's capacity conditions, produced by the fault knobs: creates refused in a location out of
//! capacity (`409 ServiceUnavailable`) or without the SKU (`409 SkuNotAvailable`), and Spot
//! groups evicted (killed and restarted in place, with a `SpotEvicted` event).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn set_faults(harness: &Harness, faults: Value) {
    let response = harness.set_faults(&faults).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

fn in_location(location: &str, script: &str) -> Value {
    let mut body = group_body(
        "Never",
        json!([shell("main", script, json!([]), json!([]))]),
        json!([]),
    );
    body["location"] = json!(location);
    body
}

#[tokio::test]
async fn a_location_out_of_capacity_refuses_creates_as_aci_words_it() {
    let harness = Harness::start(|config| config.instant = true).await;
    set_faults(
        &harness,
        json!({"outOfCapacity": ["westeurope"], "skuNotAvailable": ["North Europe"]}),
    )
    .await;
    let response = harness
        .put("job", &in_location("West Europe", "true"))
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ServiceUnavailable");
    assert_eq!(
        body["error"]["message"],
        "The requested resource is not available in the location 'westeurope' at this moment. \
         Please retry with a different resource request or in another location. \
         Resource requested: '0.5' CPU '0.5' GB memory 'Linux' OS"
    );

    let response = harness
        .put("job", &in_location("northeurope", "true"))
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SkuNotAvailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("The requested tier for resource '/subscriptions/")
            && message.contains(
                "/containerGroups/job' is currently not available in location 'northeurope'"
            ),
        "{message}"
    );
    let stats = harness.stats().await;
    assert_eq!(stats["groups"], 0, "a refused create leaves nothing");
    assert_eq!(stats["faults"]["capacity"], 1);
    assert_eq!(stats["faults"]["skuNotAvailable"], 1);
    assert!(stats["createsByName"].get("job").is_none());

    // Elsewhere the same create goes through.
    assert_eq!(
        harness
            .put("job", &in_location("eastus", "true"))
            .await
            .status(),
        201
    );
    harness.stop().await;
}

#[tokio::test]
async fn the_capacity_rate_refuses_only_where_it_applies() {
    let harness = Harness::start(|config| config.instant = true).await;
    set_faults(
        &harness,
        json!({"capacityRate": 1.0, "capacityLocations": ["westeurope"]}),
    )
    .await;
    assert_eq!(
        harness
            .put("a", &in_location("westeurope", "true"))
            .await
            .status(),
        409
    );
    assert_eq!(
        harness
            .put("a", &in_location("northeurope", "true"))
            .await
            .status(),
        201
    );
    // A bad knob is refused naming it.
    let response = harness.set_faults(&json!({"capacityRate": 3})).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("capacityRate"));
    harness.stop().await;
}

#[tokio::test]
async fn an_evicted_spot_group_is_killed_and_restarted_in_place() {
    let harness = Harness::start(|_| {}).await;
    set_faults(
        &harness,
        json!({"spotEvictNth": [1], "spotEvictAfterMs": 300}),
    )
    .await;
    let marker = marker();
    let mut body = in_location("westus", "echo run; sleep 1000");
    body["properties"]["priority"] = json!("Spot");
    let (name, value) = marker.split_once('=').unwrap();
    body["properties"]["containers"][0]["properties"]["environmentVariables"] =
        json!([{"name": name, "value": value}]);
    harness.create("spot", &body).await;
    let evicted = harness
        .wait_for("spot", WAIT, "evicted and running again", |body| {
            view(body, 0)["restartCount"].as_i64().unwrap_or(0) >= 1
                && view(body, 0)["currentState"]["state"] == "Running"
        })
        .await;
    let container = view(&evicted, 0);
    assert_eq!(container["previousState"]["state"], "Terminated");
    assert_eq!(container["previousState"]["exitCode"], 137);
    assert_eq!(container["previousState"]["detailStatus"], "Evicted");
    let group_events = evicted["properties"]["instanceView"]["events"].to_string();
    assert!(group_events.contains("SpotEvicted"), "{group_events}");
    assert_eq!(group_state(&evicted), "Running");
    assert_eq!(evicted["properties"]["priority"], "Spot");
    assert_eq!(harness.stats().await["faults"]["eviction"], 1);
    // Only the first Spot group is evicted; a Regular group never is.
    let mut regular = in_location("westus", "sleep 1000");
    regular["properties"]["priority"] = json!("Regular");
    harness.create("regular", &regular).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, body) = harness.get("regular").await;
    assert_eq!(view(&body, 0)["restartCount"], 0);
    assert_eq!(harness.stats().await["faults"]["eviction"], 1);
    harness.delete("spot").await;
    harness.delete("regular").await;
    wait_no_processes(&marker, WAIT).await;
    harness.stop().await;
}
