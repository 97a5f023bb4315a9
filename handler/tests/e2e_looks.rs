//! End to end against the emulator running real processes: a job spec seen end once is looked at
//! around its expected exit the next time, so its exit is seen sooner and with fewer reads.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use berth::engine::{Deployment, LookPlan, Millis};
use common::{Harness, Options};
use serde_json::json;

/// A job that sleeps 10 s and ends by exit; the same group spec under every id.
fn sleeper(id: &str) -> serde_json::Value {
    json!({
        "id": id,
        "completion": "exit",
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["sleep", "10"],
            "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }]
    })
}

/// Runs one sleeper to its end: (milliseconds from its container's exit to the decision that it
/// succeeded, ARM group reads it took, the checkpoint).
async fn run(h: &Harness, id: &str) -> (Millis, u64, Deployment) {
    let reads = || h.stats().requests.get("get").copied().unwrap_or(0);
    let before = reads();
    h.start_deployment(&sleeper(id)).await;
    let status = h
        .wait_for(id, Duration::from_secs(90), |s| s["phase"] == "Done")
        .await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    let d = h.runtime.driver.load(id).await.unwrap().unwrap();
    let inst = &d.instances[0];
    let exited = inst
        .observed
        .as_ref()
        .and_then(|o| o.containers[0].finish)
        .unwrap();
    let decided = d.outcome.as_ref().unwrap().at;
    (decided - exited, reads() - before, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_spec_is_seen_to_exit_sooner_and_with_fewer_reads() {
    let h = Harness::with(Options {
        settings: vec![("BERTH_LOOKS", "learned".to_owned())],
        ..Options::default()
    })
    .await;
    let (first_delay, first_reads, first) = run(&h, "looks-first").await;
    // Never seen end: the default back-off (looks at 7.5 s and 15.5 s bracket a 10 s run).
    assert_eq!(first.instances[0].look_plan, None);
    let (second_delay, second_reads, second) = run(&h, "looks-second").await;
    let Some(LookPlan::Expect(estimate)) = second.instances[0].look_plan else {
        panic!("no estimate: {:?}", second.instances[0]);
    };
    assert_eq!(estimate.runs, 1);
    assert!(
        (9_000.0..14_000.0).contains(&estimate.mean_ms),
        "{estimate:?}"
    );
    assert!(
        second_delay < first_delay && second_delay <= 2_000,
        "exit seen {second_delay} ms after it the second time, {first_delay} ms the first"
    );
    assert!(
        second_reads < first_reads,
        "{second_reads} reads the second time, {first_reads} the first"
    );
    println!(
        "exit to decision: {first_delay} ms, then {second_delay} ms; reads: {first_reads}, then {second_reads}"
    );
    // The estimate took the second run in too, and is in the store for the next handler.
    let stored = berth::store::sqlite::SqliteStore::open(
        &h.dir.path().join("berth.db"),
        std::sync::Arc::new(berth::clock::SystemClock),
    )
    .unwrap();
    let digest = berth::driver::group_digest(&second, 0);
    let estimate = berth::store::RunTimes::run_time(&stored, &digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(estimate.runs, 2);
}
