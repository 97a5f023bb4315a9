//! Rotating `BERTH_SECRETS_KEY`: a deployment sealed under the old key is finished by a handler
//! whose current key is new and whose previous key is the old one; its secrets still reach the
//! container, and they are sealed again under the new key, so the old key can be retired.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use berth::arm::{ArmClient, ArmTarget};
use berth::checkpoint::Deployments;
use berth::clock::{Clock as _, ShiftedClock, SystemClock};
use berth::crypto::{Keyring, SecretsKey};
use berth::driver::{Driver, DriverSettings};
use berth::engine::{Phase, RuntimeStatus};
use berth::spec::{Format, parse};
use berth::store::sqlite::SqliteStore;
use berth::store::{Checkpoints, Steps};
use serde_json::json;

fn driver(store: Arc<SqliteStore>, arm: &str, keys: Keyring) -> Driver {
    driver_on(store, arm, keys, Arc::new(SystemClock))
}

/// [`driver`] reading `clock`.
fn driver_on(
    store: Arc<SqliteStore>,
    arm: &str,
    keys: Keyring,
    clock: Arc<dyn berth::clock::Clock>,
) -> Driver {
    let target = ArmTarget {
        endpoint: arm.to_owned(),
        subscription: "00000000-0000-0000-0000-000000000000".into(),
        resource_group: "rotation".into(),
        location: "local".into(),
        api_version: "2025-09-01".into(),
    };
    Driver::new(
        store,
        ArmClient::new(target, None),
        Arc::new(keys),
        clock,
        DriverSettings::default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_finishes_old_deployments_and_reseals_them() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = common::emulator_in(dir.path()).await;
    let store =
        Arc::new(SqliteStore::open(&dir.path().join("berth.db"), Arc::new(SystemClock)).unwrap());
    let (old, new) = (SecretsKey::generate(), SecretsKey::generate());

    let spec = json!({
        "id": "rotate-1",
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["/bin/sh", "-c", "test \"$TOKEN\" = rotation-canary && echo secret arrived"],
            "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
            "environmentVariables": [{ "name": "TOKEN", "secureValue": "rotation-canary" }] } }] } }]
    });
    let spec = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    let before = driver(
        store.clone(),
        &emulator.base_url(),
        Keyring::new(old.clone(), vec![]),
    );
    let submitted = before
        .submit(spec.clone(), "http://127.0.0.1:1".into())
        .await
        .unwrap();
    assert!(
        submitted
            .deployment
            .sealed
            .as_deref()
            .unwrap()
            .starts_with(&format!("v1.{}.", old.id()))
    );

    // The handler restarts with BERTH_SECRETS_KEY=new, BERTH_SECRETS_KEY_PREVIOUS=old.
    let after = driver(
        store.clone(),
        &emulator.base_url(),
        Keyring::new(new.clone(), vec![old.clone()]),
    );
    let d = common::eventually("rotate-1 to be done", Duration::from_secs(30), || async {
        for delivery in store.receive(8, 5_000).await.unwrap() {
            berth::worker::handle(&after, store.as_ref(), delivery).await;
        }
        let d = store.load("rotate-1").await.unwrap().unwrap().deployment;
        if d.phase == Phase::Done {
            Ok(d)
        } else {
            Err(format!("{:?}", d.history))
        }
    })
    .await;
    assert_eq!(d.status, RuntimeStatus::Succeeded, "{:?}", d.history);
    assert!(
        d.sealed
            .as_deref()
            .unwrap()
            .starts_with(&format!("v1.{}.", new.id())),
        "sealed again under the new key"
    );
    assert_eq!(
        store
            .get_logs("rotate-1", "work", "main")
            .await
            .unwrap()
            .map(|saved| berth::saved_log::shown(&saved, false))
            .as_deref(),
        Some("secret arrived\n")
    );

    // The old key can now be retired: the new key alone opens the secrets and recognises the spec.
    let keys = Keyring::new(new, vec![]);
    let d = store.load("rotate-1").await.unwrap().unwrap().deployment;
    assert!(keys.open(d.sealed.as_deref().unwrap()).is_ok());
    let retired = driver(store.clone(), &emulator.base_url(), keys);
    let again = retired
        .submit(spec, "http://127.0.0.1:1".into())
        .await
        .unwrap();
    assert!(
        again.existed,
        "the same spec is still recognised after the old key is gone"
    );
}

/// Templates are not resealed by steps: putting one again after a rotation seals its secrets
/// under the new key as a new version; before that, the old version expands while the old key
/// is listed as previous, and no longer once it is retired.
#[tokio::test]
async fn a_template_put_again_after_a_rotation_is_sealed_under_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(&dir.path().join("berth.db"), Arc::new(SystemClock)).unwrap());
    let (old, new) = (SecretsKey::generate(), SecretsKey::generate());
    let with = |keys: Keyring| {
        driver(store.clone(), "http://127.0.0.1:9", keys).with_templates(store.clone())
    };
    let template = json!({
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
            "environmentVariables": [{ "name": "TOKEN", "secureValue": "template-canary" }] } }] } }]
    })
    .to_string();
    let invocation = |version: u32| berth::spec::template::Invocation {
        id: Some(format!("from-v{version}")),
        template: "sealed".into(),
        version: Some(version),
        parameters: serde_json::Map::new(),
    };
    let before = with(Keyring::new(old.clone(), vec![]));
    let (v1, made) = before
        .put_template("sealed", template.as_bytes())
        .await
        .unwrap();
    assert!(
        made && v1
            .sealed
            .as_deref()
            .unwrap()
            .starts_with(&format!("v1.{}.", old.id()))
    );
    assert!(
        !before
            .put_template("sealed", template.as_bytes())
            .await
            .unwrap()
            .1
    );

    let after = with(Keyring::new(new.clone(), vec![old]));
    assert!(after.expand(invocation(1), || unreachable!()).await.is_ok());
    let (v2, made) = after
        .put_template("sealed", template.as_bytes())
        .await
        .unwrap();
    assert_eq!((v2.version, made), (2, true));
    assert!(
        v2.sealed
            .as_deref()
            .unwrap()
            .starts_with(&format!("v1.{}.", new.id()))
    );
    assert!(
        !after
            .put_template("sealed", template.as_bytes())
            .await
            .unwrap()
            .1
    );

    let retired = with(Keyring::new(new, vec![]));
    let spec = retired
        .expand(invocation(2), || unreachable!())
        .await
        .unwrap();
    assert_eq!(spec.template.unwrap().version, 2);
    assert!(
        retired
            .expand(invocation(1), || unreachable!())
            .await
            .is_err()
    );
}

/// A schedule whose signing key no key of the ring opens (the key that sealed it retired before a
/// tick sealed it again) still runs when it does not notify, and a `PUT` gives it a new key, told.
#[tokio::test]
async fn a_schedule_whose_key_cannot_be_opened_still_runs_and_a_put_makes_a_new_one() {
    use berth::schedule::{Scheduler, document};
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(&dir.path().join("berth.db"), Arc::new(SystemClock)).unwrap());
    let (lost, current) = (SecretsKey::generate(), SecretsKey::generate());
    let clock = Arc::new(ShiftedClock::at(SystemClock.now()));
    let scheduler = |keys: Keyring| {
        let d = driver_on(store.clone(), "http://127.0.0.1:1", keys, clock.clone())
            .with_schedules(store.clone());
        Scheduler::of(&d, None).unwrap()
    };
    let spec = json!({ "groups": [{ "name": "work", "properties": {
        "containers": [{ "name": "main", "properties": { "image": "busybox",
            "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }] });
    let quiet = json!({ "cron": "* * * * *", "spec": spec });
    let put = document::read("minutely", quiet.to_string().as_bytes()).unwrap();
    let made = scheduler(Keyring::new(lost, vec![]))
        .put("minutely", put, "http://127.0.0.1:1".into())
        .await
        .unwrap();
    assert!(made.notify_secret.is_none(), "nothing notifies yet");

    // The key that sealed it is gone: the next minute's run starts all the same (it needs no
    // key).
    clock.advance(61_000);
    let s = scheduler(Keyring::new(current.clone(), vec![]));
    let report = s.run_once().await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.started.len(), 1, "{report:?}");

    let mut notifying = quiet.clone();
    notifying["spec"]["notify"] = json!([{ "url": "https://hooks.example.com/x" }]);
    let put = document::read("minutely", notifying.to_string().as_bytes()).unwrap();
    let again = s
        .put("minutely", put, "http://127.0.0.1:1".into())
        .await
        .unwrap();
    let told = again.notify_secret.expect("a new key, told");
    let sealed = again.schedule.notify_key.unwrap();
    let opened = Keyring::new(current, vec![]).open(&sealed).unwrap();
    assert_eq!(String::from_utf8(opened).unwrap(), told);
}

/// The sealed values of schedule `name`: its secrets, its notify URLs and its signing key
/// (never the values themselves).
async fn schedule_sealed(store: &SqliteStore, name: &str) -> [String; 3] {
    use berth::schedule::{Schedule, Target};
    use berth::store::Schedules;
    let stored = store.load_schedule(name).await.unwrap().unwrap();
    let schedule = Schedule::from_bytes(&stored.body).unwrap();
    let Target::Spec {
        sealed,
        notify_urls,
        ..
    } = schedule.target
    else {
        panic!("a spec target");
    };
    let sealed = [
        sealed.unwrap(),
        notify_urls.unwrap(),
        schedule.notify_key.unwrap(),
    ];
    for value in &sealed {
        assert!(!value.contains("rotation-canary") && !value.contains("whsec_"));
    }
    sealed
}

/// A schedule's secrets, notify URLs and signing key, sealed under the old key when it was put,
/// are sealed again under the new key by the next tick, so the old key can be retired without
/// putting every schedule again; the signing key stays the one told.
#[tokio::test]
async fn a_rotated_key_reseals_schedules_at_the_next_tick() {
    use berth::schedule::{Scheduler, document};
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(&dir.path().join("berth.db"), Arc::new(SystemClock)).unwrap());
    let (old, new) = (SecretsKey::generate(), SecretsKey::generate());
    let body = json!({ "cron": "0 0 1 1 *", "spec": { "groups": [{ "name": "work", "properties": {
        "containers": [{ "name": "main", "properties": { "image": "busybox",
            "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
            "environmentVariables": [{ "name": "TOKEN", "secureValue": "rotation-canary" }] } }] } }],
        "notify": [{ "url": "https://hooks.example.com/rotation-canary-path" }] } });
    let request = document::read("yearly", body.to_string().as_bytes()).unwrap();
    let scheduler = |keys: Keyring| {
        let d = driver(store.clone(), "http://127.0.0.1:1", keys).with_schedules(store.clone());
        Scheduler::of(&d, None).unwrap()
    };
    let told = scheduler(Keyring::new(old.clone(), vec![]))
        .put("yearly", request, "http://127.0.0.1:1".into())
        .await
        .unwrap()
        .notify_secret
        .unwrap();
    for sealed in schedule_sealed(&store, "yearly").await {
        assert!(sealed.starts_with(&format!("v1.{}.", old.id())));
    }
    let report = scheduler(Keyring::new(new.clone(), vec![old]))
        .run_once()
        .await;
    assert!(report.errors.is_empty(), "{report:?}");
    let after = schedule_sealed(&store, "yearly").await;
    let opened: Vec<String> = after
        .iter()
        .map(|sealed| {
            assert!(
                sealed.starts_with(&format!("v1.{}.", new.id())),
                "sealed again under the new key"
            );
            String::from_utf8(Keyring::new(new.clone(), vec![]).open(sealed).unwrap()).unwrap()
        })
        .collect();
    assert!(opened[0].contains("rotation-canary"));
    assert!(opened[1].contains("https://hooks.example.com/rotation-canary-path"));
    assert_eq!(opened[2], told, "the key receivers were told is kept");
}
