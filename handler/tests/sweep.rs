//! The cleanup sweep against the emulator: orphans deleted only after the grace period and only
//! this app's; a deployment whose step message was lost is re-driven; finished deployments past
//! retention are purged.

#![allow(clippy::unwrap_used)]

mod common;

use berth::engine::Phase;
use berth::runtime::Runtime;
use berth::spec::{Format, parse};
use serde_json::json;

async fn setup(dir: &std::path::Path) -> (emulator::Running, Runtime) {
    let emulator = common::emulator_in(dir).await;
    let runtime = common::runtime_without_worker(dir, &emulator.base_url(), "sweeper-test").await;
    (emulator, runtime)
}

fn group_body(app: &str, deployment: &str, created: i64) -> serde_json::Value {
    json!({ "location": "local",
        "tags": { "berth-app": app, "berth-deployment": deployment, "berth-created": created.to_string() },
        "properties": { "osType": "Linux", "restartPolicy": "Never", "containers": [{ "name": "c", "properties": {
            "image": "busybox", "command": ["/bin/sh", "-c", "sleep 600"],
            "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_deleted_after_the_grace_period_and_only_this_apps() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, runtime) = setup(dir.path()).await;
    let arm = &runtime.sweep.arm;
    let now = runtime.driver.now();
    let hour_ago = now - 3_600_000;
    arm.put_group(
        "ghost-work-1",
        &group_body("sweeper-test", "ghost", hour_ago),
    )
    .await
    .unwrap();
    arm.put_group("young-work-1", &group_body("sweeper-test", "young", now))
        .await
        .unwrap();
    arm.put_group("other-app-1", &group_body("another-app", "ghost", hour_ago))
        .await
        .unwrap();

    let report = runtime.sweep.run_once().await;
    assert_eq!(
        report.orphans_deleted,
        vec!["ghost-work-1".to_owned()],
        "{report:?}"
    );
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(
        arm.get_group("young-work-1").await.unwrap().is_some(),
        "inside the grace period"
    );
    assert!(
        arm.get_group("other-app-1").await.unwrap().is_some(),
        "another app's group"
    );
    assert_eq!(emulator.stats().groups, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_deployments_groups_survive_and_a_lost_step_is_re_driven() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, runtime) = setup(dir.path()).await;
    let spec = json!({ "id": "lost-1", "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
        "image": "busybox", "command": ["/bin/sh", "-c", "sleep 1; echo finished"],
        "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } }] });
    let spec = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    runtime
        .driver
        .submit(spec, "http://127.0.0.1:1".into())
        .await
        .unwrap();
    common::run_steps(&runtime).await; // creates the group, then waits with a delayed step message

    // The delayed message is lost (taken and never completed, as by a crashed instance).
    let mut sweep = runtime.sweep.clone();
    sweep.grace_ms = 0;
    sweep.redrive_after_ms = 0;
    loop {
        let taken = runtime.steps.receive(16, 3_600_000).await.unwrap();
        if !taken.is_empty() {
            break;
        }
        runtime.steps.wait(500).await;
    }
    let report = sweep.run_once().await;
    assert!(
        report.orphans_deleted.is_empty(),
        "the live deployment owns its group: {report:?}"
    );
    assert_eq!(report.redriven, 1, "{report:?}");
    let within = std::time::Duration::from_secs(30);
    let d = common::eventually("lost-1 re-driven to the end", within, || async {
        common::run_steps(&runtime).await;
        let d = runtime.driver.load("lost-1").await.unwrap().unwrap();
        if d.phase == Phase::Done {
            Ok(d)
        } else {
            Err(format!("{:?}", d.history))
        }
    })
    .await;
    assert_eq!(d.status.as_str(), "Succeeded");
    let created: Vec<u64> = emulator
        .stats()
        .creates_by_name
        .iter()
        .filter(|(name, _)| {
            name.strip_prefix("lost-1-work-1-")
                .is_some_and(|hash| hash.len() == 8)
        })
        .map(|(_, count)| *count)
        .collect();
    assert_eq!(created, [1]);

    // Past retention, the finished deployment is purged with its logs.
    let saved_logs = || runtime.sweep.store.get_logs("lost-1", "work", "main");
    assert!(saved_logs().await.unwrap().is_some());
    sweep.retention_ms = -1_000;
    let report = sweep.run_once().await;
    assert_eq!(report.purged, 1, "{report:?}");
    assert!(runtime.driver.load("lost-1").await.unwrap().is_none());
    assert!(saved_logs().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_steps_are_re_driven_while_live_and_reported_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, runtime) = setup(dir.path()).await;
    let submit = |id: &str, script: &str| {
        let spec = json!({ "id": id, "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["/bin/sh", "-c", script],
            "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } }] });
        parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap()
    };
    for (id, script) in [("live-p", "sleep 20"), ("done-p", "true")] {
        runtime
            .driver
            .submit(submit(id, script), "http://127.0.0.1:1".into())
            .await
            .unwrap();
    }
    let within = std::time::Duration::from_secs(30);
    common::eventually("done-p done", within, || async {
        common::run_steps(&runtime).await;
        let d = runtime.driver.load("done-p").await.unwrap().unwrap();
        (d.phase == Phase::Done)
            .then_some(())
            .ok_or(format!("{:?}", d.phase))
    })
    .await;

    // Steps for each (live-p's current one and a stale one), and for a deployment that never
    // was, fail delivery after delivery until they are given up on (so does any step of live-p's
    // visible meanwhile).
    let now = runtime.driver.now();
    let live = runtime.driver.load("live-p").await.unwrap().unwrap();
    let current = live.wake.unwrap().seq;
    for (id, seq) in [
        ("live-p", current),
        ("live-p", 999),
        ("done-p", 999),
        ("gone-p", 999),
    ] {
        let step = berth::store::Scheduled {
            message: berth::store::StepMessage { id: id.into(), seq },
            at: now,
        };
        runtime.steps.send(&step).await.unwrap();
    }
    common::eventually("the steps poisoned", within, || async {
        runtime.steps.receive(16, 1).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let poisoned = runtime.steps.poisoned_steps(32, 0).await.unwrap();
        let ids: Vec<_> = poisoned
            .iter()
            .filter_map(|p| p.message.as_ref().map(|m| m.id.clone()))
            .collect();
        ["live-p", "done-p", "gone-p"]
            .iter()
            .all(|id| ids.iter().any(|i| i == id))
            .then_some(())
            .ok_or(format!("{ids:?}"))
    })
    .await;

    let report = runtime.sweep.run_once().await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(report.poison_redriven >= 1, "{report:?}");
    let mut reported = report.poison_reported.clone();
    reported.sort();
    assert_eq!(
        reported,
        [
            "done-p (step 999): the deployment is Succeeded, nothing to do".to_owned(),
            "gone-p (step 999): no such deployment (purged)".to_owned(),
            format!("live-p (step 999): stale, the deployment waits for step {current}"),
        ],
        "{report:?}"
    );
    // Dealt with once: nothing left to report or re-drive.
    assert!(
        runtime
            .steps
            .poisoned_steps(32, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let again = runtime.sweep.run_once().await;
    assert_eq!(
        (again.poison_redriven, again.poison_reported.len()),
        (0, 0),
        "{again:?}"
    );
    // The live deployment goes on from its re-driven step to its end.
    let d = common::eventually("live-p carried on to its end", within * 2, || async {
        common::run_steps(&runtime).await;
        let d = runtime.driver.load("live-p").await.unwrap().unwrap();
        let phase = format!("{:?}", d.phase);
        (d.phase == Phase::Done).then_some(d).ok_or(phase)
    })
    .await;
    assert_eq!(d.status.as_str(), "Succeeded", "{:?}", d.history);
}
