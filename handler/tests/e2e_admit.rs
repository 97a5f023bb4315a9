//! End to end against the emulator running real processes: creates held for capacity
//! (`BERTH_MAX_CORES`, and ACI's own quota refusing a create), and heartbeats (a container that
//! stops beating is hung; one that keeps beating is not; tokens that are not the instance's own
//! are refused).

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::scenarios::{self, SUBSCRIPTION};
use common::{Harness, Options, job};
use serde_json::{Value, json};

/// Standard cores in use in the harness's location, as the emulator's usages count them.
fn cores_in_use(emulator: &emulator::Emulator) -> i64 {
    let usages = emulator.usage(SUBSCRIPTION, "local");
    usages
        .value
        .iter()
        .find(|u| {
            u.name
                .as_ref()
                .and_then(|n| n.value.as_deref())
                .is_some_and(|n| n == "StandardCores")
        })
        .and_then(|u| u.current_value)
        .unwrap()
}

/// A fan-out of `count` one-core instances that each sleep `seconds`, with no parallelism set.
fn one_core_fan_out(id: &str, count: u32, seconds: u32) -> Value {
    let mut spec = job(id, &format!("echo index $BERTH_INDEX; sleep {seconds}"));
    spec["groups"][0]["count"] = json!(count);
    spec["groups"][0]["properties"]["containers"][0]["properties"]["resources"]["requests"]["cpu"] =
        json!(1);
    spec
}

/// Watches the cores in use until the deployment is done, and the status's `pending` reasons
/// seen on the way; returns (most cores in use at once, the final status, a reason seen).
async fn run_watching(h: &Harness, id: &str, limit: Duration) -> (i64, Value, Option<String>) {
    let most = Arc::new(AtomicI64::new(0));
    let watch = {
        let most = most.clone();
        let emulator = h.emulator.emulator().clone();
        tokio::spawn(async move {
            loop {
                let cores = cores_in_use(&emulator);
                most.fetch_max(cores, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let reason = Arc::new(std::sync::Mutex::new(None));
    let status = h
        .wait_for(id, limit, |s| {
            if let Some(pending) = s["pending"].as_str() {
                reason.lock().unwrap().get_or_insert(pending.to_owned());
            }
            s["phase"] == "Done"
        })
        .await;
    watch.abort();
    let reason = reason.lock().unwrap().clone();
    (most.load(Ordering::Relaxed), status, reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_over_max_cores_runs_within_it_and_all_succeed() {
    let h = Harness::with(Options {
        settings: vec![("BERTH_MAX_CORES", "local=4".into())],
        ..Options::default()
    })
    .await;
    let id = h
        .start_deployment(&one_core_fan_out("admit-max", 10, 2))
        .await;
    let (most, status, reason) = run_watching(&h, &id, Duration::from_secs(240)).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert_eq!(
        status["groups"][0]["instances"]["succeeded"], 10,
        "{status}"
    );
    assert!(most <= 4, "{most} cores in use at once");
    assert!(most >= 3, "the limit was not used: {most} cores at most");
    let reason = reason.expect("no pending reason was shown");
    assert!(
        reason.starts_with("BERTH_MAX_CORES: needs 1 core, 0 of 4 free in local"),
        "{reason}"
    );
    let history = scenarios::history(&h, &id).await;
    let holds = history.iter().filter(|k| *k == "CreateHeld").count();
    assert!((1..=6).contains(&holds), "{holds} holds: {history:?}");
    assert_eq!(cores_in_use(h.emulator.emulator()), 0);
    // One create per instance: a held create is never sent.
    let d = h.runtime.driver.load(&id).await.unwrap().unwrap();
    assert_eq!(d.instances.len(), 10);
    for inst in &d.instances {
        let name = &inst.aci_name;
        assert_eq!(scenarios::creates(&h, name).await, 1, "{name}");
    }
    scenarios::assert_nothing_left(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_by_acis_quota_is_held_not_failed() {
    // Three groups per region, enforced by the emulator: admission reads cores only, so the
    // fourth create reaches ARM and is refused with ContainerGroupQuotaReached.
    let h = Harness::with(Options {
        emulator: Some(|config| {
            config.enforce_quotas = true;
            config.quotas.groups_per_region = 3;
        }),
        ..Options::default()
    })
    .await;
    let id = h
        .start_deployment(&one_core_fan_out("admit-aci", 5, 1))
        .await;
    let (_, status, reason) = run_watching(&h, &id, Duration::from_secs(240)).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert_eq!(status["groups"][0]["instances"]["succeeded"], 5, "{status}");
    let reason = reason.expect("no pending reason was shown");
    assert!(
        reason.starts_with("quota: Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'ContainerGroups' exceeded in region 'local'"),
        "{reason}"
    );
    let history = scenarios::history(&h, &id).await;
    assert!(history.iter().any(|k| k == "CreateHeld"), "{history:?}");
    assert!(!history.iter().any(|k| k == "ActionFailed"), "{history:?}");
    scenarios::assert_nothing_left(&h).await;
}

/// A job that beats every second `beats` times, then does `then`.
fn beating(id: &str, beats: u32, then: &str) -> Value {
    let mut spec = job(
        id,
        &format!(
            "i=0; while [ $i -lt {beats} ]; do echo beat $i; \
             curl -sf -o /dev/null -X POST \"$BERTH_HEARTBEAT_URL\" || echo refused; \
             i=$((i+1)); sleep 1; done; {then}"
        ),
    );
    spec["heartbeatTimeout"] = json!("PT4S");
    spec["timeout"] = json!("PT2M");
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_stops_beating_is_hung_and_one_that_beats_is_not() {
    let h = Harness::start().await;
    let hung = h
        .start_deployment(&beating("beat-stops", 3, "echo stopped beating; sleep 600"))
        .await;
    let alive = h
        .start_deployment(&beating("beat-keeps", 10, "echo done"))
        .await;
    let status = h
        .wait_for(&hung, Duration::from_secs(90), |s| s["phase"] == "Done")
        .await;
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    assert_eq!(
        status["error"], "hung: no heartbeat within PT4S",
        "{status}"
    );
    let history = scenarios::history(&h, &hung).await;
    for kind in ["GroupStopped", "LogsSaved", "GroupDeleted"] {
        assert!(history.iter().any(|k| k == kind), "{kind}: {history:?}");
    }
    let (code, logs) = h.logs(&hung, "work", "main").await;
    assert_eq!(code, 200);
    assert!(logs.contains("stopped beating"), "{logs}");
    assert!(!logs.contains("refused"), "{logs}");

    let status = h
        .wait_for(&alive, Duration::from_secs(90), |s| s["phase"] == "Done")
        .await;
    let (_, logs) = h.logs(&alive, "work", "main").await;
    let (_, history) = scenarios::get(&h, &format!("/deployments/{alive}/history")).await;
    assert_eq!(
        status["runtimeStatus"], "Succeeded",
        "{status}\n{history}\n{logs}"
    );
    assert!(
        logs.contains("beat 9") && !logs.contains("refused"),
        "{logs}"
    );
    scenarios::assert_nothing_left(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_tokens_open_their_own_instance_alone() {
    let h = Harness::start().await;
    let mut spec = job("beat-tokens", "sleep 600");
    spec["groups"][0]["count"] = json!(2);
    spec["heartbeatTimeout"] = json!("PT1M");
    let id = h.start_deployment(&spec).await;
    let names = common::eventually(
        "both instances created",
        Duration::from_secs(30),
        || async {
            let d = h.runtime.driver.load(&id).await.unwrap().unwrap();
            let created = d.instances.iter().filter(|i| i.created.is_some());
            let names: Vec<String> = created.map(|i| i.aci_name.clone()).collect();
            if names.len() == 2 {
                Ok(names)
            } else {
                Err(format!("{names:?}"))
            }
        },
    )
    .await;
    let token = |kind: String| {
        let h = &h;
        let id = id.clone();
        async move { h.token(&id, &kind).await }
    };
    let own0 = token(format!("heartbeat:{}", names[0])).await;
    let completed0 = token(format!("completed:{}", names[0])).await;
    // What an attacker holding BERTH_SECRETS_KEY alone can compute.
    let forged = h
        .runtime
        .driver
        .callback_token(None, &id, &format!("heartbeat:{}", names[0]))
        .unwrap();
    let beat = |token: String, instance: String| {
        let url = format!(
            "{}/api/callbacks/{id}/heartbeat?token={token}&instance={instance}",
            h.api
        );
        let http = h.http.clone();
        async move { http.post(url).send().await.unwrap().status().as_u16() }
    };
    for (token, instance, why) in [
        (own0.clone(), names[1].clone(), "another instance's token"),
        (completed0, names[0].clone(), "the completed token"),
        (
            forged,
            names[0].clone(),
            "a token forged with the secrets key",
        ),
        ("x".repeat(43), names[0].clone(), "a made-up token"),
    ] {
        assert_eq!(beat(token, instance).await, 403, "{why}");
    }
    let d = h.runtime.driver.load(&id).await.unwrap().unwrap();
    let recorded = d.instances.iter().any(|i| i.last_beat.is_some());
    assert!(!recorded, "a refused beat was recorded");
    assert_eq!(beat(own0.clone(), names[0].clone()).await, 202);
    let last_beats = || async {
        let d = h.runtime.driver.load(&id).await.unwrap().unwrap();
        names
            .iter()
            .map(|name| {
                let inst = d.instances.iter().find(|i| &i.aci_name == name).unwrap();
                inst.last_beat
            })
            .collect::<Vec<_>>()
    };
    let first = last_beats().await;
    assert!(first[0].is_some() && first[1].is_none(), "{first:?}");
    // A second beat within a quarter of the timeout is accepted and not saved.
    assert_eq!(beat(own0.clone(), names[0].clone()).await, 202);
    assert_eq!(
        last_beats().await,
        first,
        "a beat that moves nothing was saved"
    );

    let (code, _) = h
        .post(&format!("/api/deployments/{id}/terminate"), None)
        .await;
    assert_eq!(code, 202);
    h.wait_done(&id).await;
    // Replayed after the deployment ended: refused.
    assert_eq!(beat(own0, names[0].clone()).await, 403);
    scenarios::assert_nothing_left(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usages_are_read_once_per_period_and_a_failed_read_is_kept_too() {
    use berth::arm::{ArmClient, ArmTarget, USAGES_TTL};
    let dir = tempfile::tempdir().unwrap();
    let emulator = common::emulator_in(dir.path()).await;
    let client = |api_version: &str| {
        let target = ArmTarget {
            endpoint: emulator.base_url(),
            subscription: SUBSCRIPTION.into(),
            resource_group: scenarios::RESOURCE_GROUP.into(),
            location: "local".into(),
            api_version: api_version.into(),
        };
        ArmClient::new(target, None).with_read_budget(20.0)
    };
    let arm = client(scenarios::API_VERSION);
    let first = arm.core_usage("local").await.unwrap();
    assert_eq!((first.limit, first.current), (Some(100.0), 0.0));
    let again = arm.core_usage("local").await.unwrap();
    assert_eq!(again, first);
    assert_eq!(arm.calls().usages.load(Ordering::Relaxed), 1);
    arm.core_usage("elsewhere").await.unwrap();
    assert_eq!(arm.calls().usages.load(Ordering::Relaxed), 2);
    tokio::time::sleep(USAGES_TTL + Duration::from_millis(100)).await;
    arm.core_usage("local").await.unwrap();
    assert_eq!(arm.calls().usages.load(Ordering::Relaxed), 3);
    arm.forget_usage("local");
    arm.core_usage("local").await.unwrap();
    assert_eq!(arm.calls().usages.load(Ordering::Relaxed), 4);

    // A read ARM refuses (here: an api-version it does not know) is kept as unknown.
    let refused = client("1999-01-01");
    let error = refused.core_usage("local").await.unwrap_err();
    assert_eq!(error.code(), Some("NoRegisteredProviderFound"), "{error}");
    let unknown = refused.core_usage("local").await.unwrap();
    assert_eq!((unknown.limit, unknown.current), (None, 0.0));
    assert_eq!(refused.calls().usages.load(Ordering::Relaxed), 1);
    emulator.shutdown().await;
}
