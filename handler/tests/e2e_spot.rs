//! End to end against the emulator producing ACI's capacity conditions: a Spot job evicted and
//! retried until it succeeds, falling back to `Regular` after `spot.fallbackToRegularAfter`
//! evictions, and a create refused for capacity in one region and made in the next. One create
//! per group name throughout, on both store backends.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::scenarios::{self, aci, creates, job, start_deployment, wait_done, wait_for};
use common::{Backend, Harness};
use serde_json::{Value, json};

/// A harness whose emulator runs with `faults`.
async fn with_faults(backend: Backend, faults: Value) -> Option<Harness> {
    let h = Harness::on(backend).await?;
    let faults: emulator::Faults = serde_json::from_value(faults).unwrap();
    h.emulator.emulator().set_faults(faults).unwrap();
    Some(h)
}

/// The JSON answer of a GET.
async fn get_json(h: &Harness, url: &str) -> Value {
    let response = h.http.get(url).send().await.unwrap();
    response.json().await.unwrap()
}

/// The history kinds of deployment `id`, in order.
async fn history(h: &Harness, id: &str) -> Vec<(String, String)> {
    let d = h.runtime.driver.load(id).await.unwrap().unwrap();
    d.history.into_iter().map(|e| (e.kind, e.detail)).collect()
}

async fn an_evicted_spot_job_is_retried_and_succeeds(backend: Backend) {
    let faults = json!({ "spotEvictNth": [1], "spotEvictAfterMs": 300 });
    let Some(h) = with_faults(backend, faults).await else {
        return;
    };
    let mut spec = job("spot-1", "echo run; sleep 2; echo done");
    spec["priority"] = json!("Spot");
    let id = start_deployment(&h, &spec).await;
    let status = wait_done(&h, &id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert_eq!(
        status["attempt"], 2,
        "the evicted attempt, then the one that ran"
    );
    assert!(
        status["cost"]["spotSeconds"].as_f64().unwrap() > 0.0,
        "{status}"
    );
    assert!(status["cost"].get("regularSeconds").is_none(), "{status}");
    for generation in [1, 2] {
        let name = aci(&h, "spot-1", "work", generation).await;
        assert_eq!(creates(&h, &name).await, 1, "{name}");
    }
    let history = history(&h, &id).await;
    let evicted: Vec<&String> = history
        .iter()
        .filter(|(kind, _)| kind == "Evicted")
        .map(|(_, detail)| detail)
        .collect();
    assert_eq!(evicted.len(), 1, "{history:?}");
    assert!(evicted[0].contains("SpotEvicted"), "{evicted:?}");
    assert_eq!(h.stats().faults["eviction"], 1);
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(an_evicted_spot_job_is_retried_and_succeeds);

async fn after_k_evictions_the_next_attempt_runs_regular(backend: Backend) {
    let faults = json!({ "spotEvictionRate": 1.0, "spotEvictAfterMs": 300 });
    let Some(h) = with_faults(backend, faults).await else {
        return;
    };
    let mut spec = job("spot-2", "echo run; sleep 2");
    spec["groups"][0]["priority"] = json!("Spot");
    spec["groups"][0]["spot"] = json!({ "fallbackToRegularAfter": 2 });
    let id = start_deployment(&h, &spec).await;
    let status = wait_done(&h, &id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert_eq!(status["attempt"], 3, "two evictions, then Regular");
    let d = h.runtime.driver.load(&id).await.unwrap().unwrap();
    let priorities: Vec<&str> = d
        .instances
        .iter()
        .map(|i| i.priority.unwrap().as_str())
        .collect();
    assert_eq!(priorities, ["Spot", "Spot", "Regular"]);
    assert!(
        status["cost"]["spotSeconds"].as_f64().unwrap() > 0.0,
        "{status}"
    );
    assert!(
        status["cost"]["regularSeconds"].as_f64().unwrap() > 0.0,
        "{status}"
    );
    let history = history(&h, &id).await;
    assert!(
        history
            .iter()
            .any(|(kind, detail)| kind == "PriorityFallback"
                && detail.ends_with("Regular after 2 evictions")),
        "{history:?}"
    );
    assert_eq!(
        h.stats().faults["eviction"],
        2,
        "the Regular group is not evicted"
    );
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(after_k_evictions_the_next_attempt_runs_regular);

async fn a_create_refused_for_capacity_is_made_in_the_next_location(backend: Backend) {
    let faults = json!({ "outOfCapacity": ["westeurope"] });
    let Some(h) = with_faults(backend, faults).await else {
        return;
    };
    let mut spec = job("region-1", "echo run; sleep 3");
    spec["locations"] = json!(["westeurope", "northeurope"]);
    let id = start_deployment(&h, &spec).await;
    wait_for(&h, &id, Duration::from_secs(30), |s| {
        s["groups"][0]["state"] == "Running"
    })
    .await;
    let name = aci(&h, "region-1", "work", 1).await;
    let group = get_json(&h, &scenarios::group_url(&h, &name, "")).await;
    assert_eq!(group["location"], "northeurope", "{group}");
    assert!(
        group["properties"].get("priority").is_none(),
        "none was asked for"
    );
    let status = wait_done(&h, &id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert_eq!(status["attempt"], 1, "a fallback is not a retry");
    assert_eq!(creates(&h, &name).await, 1);
    let url = format!("{}/api/deployments/{id}/groups/work/instances", h.api);
    let instances = get_json(&h, &url).await;
    assert_eq!(
        instances["instances"][0]["location"], "northeurope",
        "{instances}"
    );
    let history = history(&h, &id).await;
    let fallback = history
        .iter()
        .find(|(kind, _)| kind == "LocationFallback")
        .map(|(_, detail)| detail.clone())
        .unwrap_or_else(|| panic!("{history:?}"));
    assert!(
        fallback.starts_with(&format!(
            "{name}: from westeurope to northeurope: ServiceUnavailable"
        )),
        "{fallback}"
    );
    assert_eq!(h.stats().faults["capacity"], 1);

    // Refused everywhere: the deployment fails naming each region's refusal, having created
    // nothing.
    h.emulator
        .emulator()
        .set_faults(
            serde_json::from_value(json!({
                "outOfCapacity": ["westeurope"], "skuNotAvailable": ["northeurope"]
            }))
            .unwrap(),
        )
        .unwrap();
    let mut spec = job("region-2", "true");
    spec["groups"][0]["locations"] = json!(["westeurope", "northeurope"]);
    let id = start_deployment(&h, &spec).await;
    let status = wait_done(&h, &id).await;
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.starts_with("no capacity for container group region-2-work-1-")
            && error.contains(
                "(westeurope: ServiceUnavailable: The requested resource is not available"
            )
            && error.contains("; northeurope: SkuNotAvailable: The requested tier"),
        "{error}"
    );
    assert!(
        scenarios::aci_names(&h, "region-2", "work", 1)
            .await
            .is_empty()
    );
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(a_create_refused_for_capacity_is_made_in_the_next_location);
