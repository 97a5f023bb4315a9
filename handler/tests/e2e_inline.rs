//! Steps carried on by the API call that causes them (`BERTH_INLINE_STEP`), with no worker
//! running: a submit creates its deployment's groups before it answers, exactly once however many
//! submits of the same id race, and an instance's `completed` callback winds the deployment down
//! (stop, logs, delete) before it answers, without a step message. Past a bound of such calls at
//! once, the rest leave their step to a message.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use berth::runtime::Runtime;
use berth::spec::{Format, parse};
use berth_test_support::eventually;
use serde_json::json;

/// A runtime with no worker: whatever happens, the API calls did it.
async fn setup(dir: &std::path::Path) -> (emulator::Running, Runtime) {
    let emulator = common::emulator_in(dir).await;
    let runtime = common::runtime_with(dir, &emulator.base_url(), "berth", &[]).await;
    (emulator, runtime)
}

fn spec(id: &str, completion: &str) -> berth::spec::Spec {
    let text =
        json!({ "id": id, "completion": completion, "groups": [{ "name": "work", "properties": {
        "containers": [{ "name": "c", "properties": { "image": "busybox",
            "command": ["/bin/sh", "-c", "echo started; sleep 600"],
            "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } }] })
        .to_string();
    parse(text.as_bytes(), Format::Json, || unreachable!()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_creates_its_groups_before_it_answers_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, runtime) = setup(dir.path()).await;
    let submitted = runtime
        .driver
        .submit(spec("first", "exit"), "http://127.0.0.1:1".into())
        .await
        .unwrap();
    // Answered as accepted, whatever the first step did since.
    assert_eq!(submitted.deployment.status.as_str(), "Pending");
    let d = runtime.driver.load("first").await.unwrap().unwrap();
    let instance = &d.instances[0];
    assert!(instance.created.is_some(), "{:?}", d.history);
    assert!(instance.claim_until.is_none(), "the created group is saved");
    assert_eq!(
        emulator.stats().creates_by_name.get(&instance.aci_name),
        Some(&1)
    );
    // Nothing is due: the message sent with the checkpoint waits for its claim to run out, and
    // the created group's first look is seconds away.
    assert!(runtime.steps.receive(16, 5_000).await.unwrap().is_empty());

    // Submits of one id racing: one creates the checkpoint and the group, the others find it.
    let racing = (0..8).map(|_| {
        runtime
            .driver
            .submit(spec("raced", "exit"), "http://127.0.0.1:1".into())
    });
    let answers = futures::future::join_all(racing).await;
    let new = answers
        .iter()
        .filter(|a| !a.as_ref().unwrap().existed)
        .count();
    assert_eq!(new, 1, "one submit made it");
    let d = runtime.driver.load("raced").await.unwrap().unwrap();
    assert_eq!(d.instances.len(), 1);
    let stats = emulator.stats();
    assert_eq!(
        stats.creates_by_name.get(&d.instances[0].aci_name),
        Some(&1),
        "{stats:?}"
    );
    let creates: u64 = stats.creates_by_name.values().sum();
    assert_eq!(creates, 2, "one create per deployment: {stats:?}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_callback_winds_the_deployment_down_before_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, runtime) = setup(dir.path()).await;
    let driver = &runtime.driver;
    driver
        .submit(spec("called", "callback"), "http://127.0.0.1:1".into())
        .await
        .unwrap();
    let d = driver.load("called").await.unwrap().unwrap();
    let instance = d.instances[0].aci_name.clone();
    let token = driver
        .callback_token(
            d.callback_key.as_deref(),
            "called",
            &format!("completed:{instance}"),
        )
        .unwrap();
    // Its container has started (its log says so) before it calls back.
    let arm = &runtime.sweep.arm;
    eventually(
        "the container to start",
        Duration::from_secs(30),
        || async {
            let log = arm
                .logs(&instance, "c", None, false)
                .await
                .map_err(|e| e.to_string())?;
            if log.contains("started") {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .await;

    // A forged token does nothing.
    let forged = driver
        .raise_callback("called", "completed", Some(&instance), "forged", json!({}))
        .await;
    assert!(forged.is_err());
    assert_eq!(emulator.stats().deletes, 0);

    driver
        .raise_callback(
            "called",
            "completed",
            Some(&instance),
            &token,
            json!({ "exitCode": 0, "output": { "rows": 3 } }),
        )
        .await
        .unwrap();
    let d = driver.load("called").await.unwrap().unwrap();
    assert_eq!(format!("{:?}", d.phase), "Done", "{:?}", d.history);
    assert_eq!(d.status.as_str(), "Succeeded");
    let stats = emulator.stats();
    assert_eq!((stats.groups, stats.deletes), (0, 1), "{stats:?}");
    let logs = driver
        .logs("called", "work", "c", false)
        .await
        .unwrap()
        .unwrap();
    assert!(logs.contains("started"), "{logs}");
    // No step was needed, and none is due.
    assert!(runtime.steps.receive(16, 5_000).await.unwrap().is_empty());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_submits_carries_on_a_bounded_number_and_leaves_the_rest_to_messages() {
    let dir = tempfile::tempdir().unwrap();
    // Every ARM answer takes 2 s, so every carried-on step still holds its slot when the last
    // submit asks for one.
    let config = emulator::Config {
        instant: true,
        faults: common::every_answer_slow(2_000),
        ..emulator::Config::default()
    };
    let emulator = common::emulator_with(dir.path(), config).await;
    let runtime = common::runtime_with(dir.path(), &emulator.base_url(), "berth", &[]).await;
    let bound = berth::engine::policy::INLINE_STEPS_AT_ONCE;
    let flood = bound + 8;
    let submits = (0..flood).map(|i| {
        runtime.driver.submit(
            spec(&format!("flood-{i}"), "exit"),
            "http://127.0.0.1:1".into(),
        )
    });
    for answer in futures::future::join_all(submits).await {
        assert!(!answer.unwrap().existed);
    }
    let mut created = 0;
    for i in 0..flood {
        let d = runtime
            .driver
            .load(&format!("flood-{i}"))
            .await
            .unwrap()
            .unwrap();
        created += usize::from(d.instances.iter().any(|i| i.created.is_some()));
    }
    assert_eq!(
        created, bound,
        "the submits that held a slot created their group"
    );
    let stats = emulator.stats();
    let creates: u64 = stats.creates_by_name.values().sum();
    assert_eq!(creates, bound as u64, "{stats:?}");
    // The others were answered at once, their first step a message due now.
    let due = runtime.steps.receive(32, 5_000).await.unwrap();
    assert_eq!(
        due.len(),
        flood - bound,
        "one step per submit past the bound"
    );
    emulator.shutdown().await;
}
