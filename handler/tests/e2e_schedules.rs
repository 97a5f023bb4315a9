//! Schedules end to end, on both backends: the API (`/api/schedules`), the tick
//! (`Runtime::scheduler`, what the `scheduler` timer runs) and real runs on the emulator, on a
//! clock the test sets (`ShiftedClock`: time passes, the test decides the date and jumps).
//!
//! Assertions look at what is stored (the schedule's view, the deployments listed), never at one
//! tick's report alone: `dev`'s own tick loop runs beside the test's ticks, as a second timer
//! would.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use berth::clock::{ShiftedClock, parse_rfc3339};
use common::scenarios::{self, request};
use common::{Backend, Harness, Options, job};
use reqwest::Method;
use serde_json::{Value, json};

fn at(text: &str) -> i64 {
    parse_rfc3339(text).unwrap()
}

/// A harness whose clock reads `start`.
async fn harness(backend: Backend, start: &str) -> Option<(Harness, Arc<ShiftedClock>)> {
    let clock = Arc::new(ShiftedClock::at(at(start)));
    let h = Harness::try_with(Options {
        backend,
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await?;
    Some((h, clock))
}

/// Moves the clock to `to` once no run is being created. A create in flight holds its claim for
/// a minute of the clock (`BERTH_CREATE_CLAIM`), and the test's jumps would otherwise end the
/// claim at once: a step would then find no group, take it for a create that never happened,
/// and the create landing after it would leave a group that only the sweep removes.
async fn jump(h: &Harness, clock: &ShiftedClock, to: &str) {
    let (_, list) = scenarios::get(h, "/deployments?top=100").await;
    for d in list["deployments"].as_array().into_iter().flatten() {
        let id = d["id"].as_str().unwrap();
        h.wait_for(id, Duration::from_secs(30), |s| {
            s["phase"] != "Pending" && s["phase"] != "Creating"
        })
        .await;
    }
    clock.set(at(to));
}

/// A schedule body running `script` as a one-group job.
fn schedule(cron: &str, script: &str, extra: Value) -> Value {
    let mut spec = job("x", script);
    spec.as_object_mut().unwrap().remove("id");
    let mut body = json!({ "cron": cron, "spec": spec });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn put(h: &Harness, name: &str, body: &Value) -> (u16, Value) {
    let r = request(h, Method::PUT, &format!("/schedules/{name}"))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn view(h: &Harness, name: &str) -> Value {
    let (status, body) = scenarios::get(h, &format!("/schedules/{name}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The ids of the deployments of schedule `name`, sorted.
async fn runs(h: &Harness, name: &str) -> Vec<String> {
    let (_, list) = scenarios::get(h, "/deployments?top=100").await;
    let mut ids: Vec<String> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .filter(|id| id.starts_with(&format!("{name}-")))
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

/// Pauses every schedule (the runtime's own minute tick runs beside the test's and would start
/// more on the shifted clock), terminates what is still running, `ids` and any run such a tick
/// started, and waits for every one to be done.
async fn wind_down(h: &Harness, ids: &[String]) {
    let (_, schedules) = scenarios::get(h, "/schedules").await;
    for s in schedules["schedules"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap();
        h.post(&format!("/api/schedules/{name}/pause"), None).await;
    }
    let (_, list) = scenarios::get(h, "/deployments?top=100").await;
    let mut ids = ids.to_vec();
    ids.extend(
        list["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_str().map(str::to_owned)),
    );
    ids.sort();
    ids.dedup();
    for id in &ids {
        h.post(
            &format!("/api/deployments/{id}/terminate?reason=test"),
            None,
        )
        .await;
    }
    for id in &ids {
        h.wait_done(id).await;
    }
    scenarios::assert_nothing_left(h).await;
}

/// A schedule fires once per scheduled time: ticks before it do nothing, and the same tick run
/// again, and two ticks at once, start exactly one deployment.
async fn each_time_starts_one_deployment_whatever_the_ticks(backend: Backend) {
    let Some((h, clock)) = harness(backend, "2026-03-02T10:02:00Z").await else {
        return;
    };
    let (status, created) = put(&h, "every5", &schedule("*/5 * * * *", "true", json!({}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["nextRun"], "2026-03-02T10:05:00.000Z");
    assert_eq!(created["nextRunId"], "every5-202603021005");
    assert_eq!(created["timeZone"], "UTC");
    assert_eq!(created["concurrencyPolicy"], "allow");
    assert!(created["lastRun"].is_null());
    h.runtime.scheduler.run_once().await;
    assert!(runs(&h, "every5").await.is_empty(), "nothing due yet");

    jump(&h, &clock, "2026-03-02T10:05:30Z").await;
    let s = &h.runtime.scheduler;
    s.run_once().await;
    s.run_once().await;
    tokio::join!(s.run_once(), s.run_once());
    assert_eq!(runs(&h, "every5").await, ["every5-202603021005"]);
    let v = view(&h, "every5").await;
    assert_eq!(v["lastRun"]["deploymentId"], "every5-202603021005");
    assert_eq!(v["lastRun"]["scheduledTime"], "2026-03-02T10:05:00.000Z");
    assert_eq!(v["nextRun"], "2026-03-02T10:10:00.000Z");
    assert_eq!(v["missedRuns"], 0);

    // Two ticks at once for the next time too (the first one's run has its own id).
    jump(&h, &clock, "2026-03-02T10:10:01Z").await;
    tokio::join!(s.run_once(), s.run_once(), s.run_once());
    let ids = runs(&h, "every5").await;
    assert_eq!(ids, ["every5-202603021005", "every5-202603021010"]);
    let done = h.wait_done(&ids[1]).await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    wind_down(&h, &ids).await;
}

/// Missed times: within `startingDeadline` the latest one starts (the ones before it are counted
/// as missed); past it, it is missed too and nothing starts.
async fn missed_times_past_the_deadline_are_skipped_and_one_within_starts(backend: Backend) {
    let Some((h, clock)) = harness(backend, "2026-03-02T10:02:00Z").await else {
        return;
    };
    let body = schedule(
        "*/5 * * * *",
        "true",
        json!({ "startingDeadline": "PT10M" }),
    );
    assert_eq!(put(&h, "late", &body).await.0, 201);
    let hourly = schedule("0 * * * *", "true", json!({ "startingDeadline": "PT10M" }));
    assert_eq!(put(&h, "hourly", &hourly).await.0, 201);

    // Down from 10:02 to 11:33: `late` missed 10:05 to 11:25 and starts 11:30 (3 minutes late);
    // `hourly`'s 11:00 is 33 minutes late: missed, nothing starts.
    jump(&h, &clock, "2026-03-02T11:33:00Z").await;
    h.runtime.scheduler.run_once().await;
    assert_eq!(runs(&h, "late").await, ["late-202603021130"]);
    let v = view(&h, "late").await;
    assert_eq!(v["missedRuns"], 17, "{v}");
    assert_eq!(v["lastMissedTime"], "2026-03-02T11:25:00.000Z");
    assert!(runs(&h, "hourly").await.is_empty());
    let v = view(&h, "hourly").await;
    assert_eq!(v["missedRuns"], 1, "{v}");
    assert_eq!(v["lastMissedTime"], "2026-03-02T11:00:00.000Z");
    assert!(v["lastRun"].is_null());
    assert_eq!(v["nextRun"], "2026-03-02T12:00:00.000Z");

    // 12:00 looked at 5 minutes late: within the deadline, it starts.
    jump(&h, &clock, "2026-03-02T12:05:00Z").await;
    h.runtime.scheduler.run_once().await;
    assert_eq!(runs(&h, "hourly").await, ["hourly-202603021200"]);
    assert_eq!(view(&h, "hourly").await["missedRuns"], 1);
    let mut ids = runs(&h, "late").await;
    ids.extend(runs(&h, "hourly").await);
    wind_down(&h, &ids).await;
}

/// `allow` runs beside the previous run, `forbid` holds the time while it is live and starts it
/// once it has ended (within the deadline), `replace` terminates it and starts the new one.
async fn concurrency_policies(backend: Backend) {
    let Some((h, clock)) = harness(backend, "2026-03-02T10:02:00Z").await else {
        return;
    };
    for (name, policy) in [
        ("allow", "allow"),
        ("forbid", "forbid"),
        ("replace", "replace"),
    ] {
        let body = schedule(
            "*/5 * * * *",
            "sleep 600",
            json!({ "concurrencyPolicy": policy, "startingDeadline": "PT4M" }),
        );
        assert_eq!(put(&h, name, &body).await.0, 201);
    }
    jump(&h, &clock, "2026-03-02T10:05:01Z").await;
    h.runtime.scheduler.run_once().await;
    let first = |name: &str| format!("{name}-202603021005");
    for name in ["allow", "forbid", "replace"] {
        h.wait_for(&first(name), Duration::from_secs(30), |s| {
            s["runtimeStatus"] == "Running"
        })
        .await;
    }

    jump(&h, &clock, "2026-03-02T10:10:01Z").await;
    h.runtime.scheduler.run_once().await;
    let second = |name: &str| format!("{name}-202603021010");
    assert_eq!(runs(&h, "allow").await, [first("allow"), second("allow")]);
    assert_eq!(h.status(&first("allow")).await["runtimeStatus"], "Running");
    assert_eq!(runs(&h, "forbid").await, [first("forbid")], "held");
    let v = view(&h, "forbid").await;
    assert_eq!(
        v["held"]["scheduledTime"], "2026-03-02T10:10:00.000Z",
        "{v}"
    );
    let reason = v["held"]["reason"].as_str().unwrap();
    assert!(reason.contains("forbid-202603021005"), "{reason}");
    assert_eq!(
        runs(&h, "replace").await,
        [first("replace"), second("replace")]
    );
    let replaced = h.wait_done(&first("replace")).await;
    assert_eq!(replaced["runtimeStatus"], "Terminated", "{replaced}");

    // The held run starts once the previous one has ended, still within its deadline.
    h.post(
        &format!("/api/deployments/{}/terminate?reason=test", first("forbid")),
        None,
    )
    .await;
    h.wait_done(&first("forbid")).await;
    jump(&h, &clock, "2026-03-02T10:12:00Z").await;
    h.runtime.scheduler.run_once().await;
    assert_eq!(
        runs(&h, "forbid").await,
        [first("forbid"), second("forbid")]
    );
    let v = view(&h, "forbid").await;
    assert!(v["held"].is_null(), "{v}");
    assert_eq!(v["missedRuns"], 0);

    let mut ids = Vec::new();
    for name in ["allow", "forbid", "replace"] {
        ids.extend(runs(&h, name).await);
    }
    wind_down(&h, &ids).await;
}

/// A paused schedule starts nothing; resumed, it fires from then on, not for the times that
/// passed while it was paused.
async fn pause_and_resume(backend: Backend) {
    let Some((h, clock)) = harness(backend, "2026-03-02T10:02:00Z").await else {
        return;
    };
    assert_eq!(
        put(&h, "nap", &schedule("*/5 * * * *", "true", json!({})))
            .await
            .0,
        201
    );
    let (status, paused) = h.post("/api/schedules/nap/pause", None).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["suspended"], true);
    assert!(paused["nextRun"].is_null());
    jump(&h, &clock, "2026-03-02T10:06:00Z").await;
    h.runtime.scheduler.run_once().await;
    assert!(runs(&h, "nap").await.is_empty());
    // A PUT keeps the pause.
    let (status, replaced) = put(&h, "nap", &schedule("*/5 * * * *", "true", json!({}))).await;
    assert_eq!((status, &replaced["suspended"]), (200, &json!(true)));

    jump(&h, &clock, "2026-03-02T10:07:00Z").await;
    let (status, resumed) = h.post("/api/schedules/nap/resume", None).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["nextRun"], "2026-03-02T10:10:00.000Z");
    h.runtime.scheduler.run_once().await;
    assert!(
        runs(&h, "nap").await.is_empty(),
        "10:05 passed while paused"
    );
    assert_eq!(view(&h, "nap").await["missedRuns"], 0);
    jump(&h, &clock, "2026-03-02T10:10:05Z").await;
    h.runtime.scheduler.run_once().await;
    assert_eq!(runs(&h, "nap").await, ["nap-202603021010"]);

    let (status, _) = h.post("/api/schedules/nap/snooze", None).await;
    assert_eq!(status, 404);
    let r = request(&h, Method::DELETE, "/schedules/nap")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(scenarios::get(&h, "/schedules/nap").await.0, 404);
    let ids = runs(&h, "nap").await;
    assert_eq!(ids.len(), 1, "a deleted schedule's runs stay");
    wind_down(&h, &ids).await;
}

/// Europe/Amsterdam: 02:30 does not exist on 29 March 2026 (02:00 jumps to 03:00) and is not
/// run; it exists twice on 25 October 2026 (03:00 falls back to 02:00) and runs once.
async fn a_time_zone_with_dst(backend: Backend) {
    let Some((h, clock)) = harness(backend, "2026-03-28T12:00:00Z").await else {
        return;
    };
    let body = schedule(
        "30 2 * * *",
        "true",
        json!({ "timeZone": "Europe/Amsterdam" }),
    );
    assert_eq!(put(&h, "spring", &body).await.0, 201);
    assert_eq!(
        view(&h, "spring").await["nextRun"],
        "2026-03-30T00:30:00.000Z"
    );
    jump(&h, &clock, "2026-03-29T03:00:00Z").await;
    h.runtime.scheduler.run_once().await;
    assert!(runs(&h, "spring").await.is_empty(), "02:30 was skipped");
    assert_eq!(view(&h, "spring").await["missedRuns"], 0);
    // Gone before the months ahead, whose latest 02:30 it would start (it has no deadline).
    let r = request(&h, Method::DELETE, "/schedules/spring")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    jump(&h, &clock, "2026-10-24T12:00:00Z").await;
    assert_eq!(put(&h, "autumn", &body).await.0, 201);
    // The first 02:30 (CEST, 00:30 UTC) runs.
    jump(&h, &clock, "2026-10-25T00:31:00Z").await;
    h.runtime.scheduler.run_once().await;
    assert_eq!(runs(&h, "autumn").await, ["autumn-202610250030"]);
    // The second 02:30 (CET, 01:30 UTC) does not.
    jump(&h, &clock, "2026-10-25T01:31:00Z").await;
    h.runtime.scheduler.run_once().await;
    assert_eq!(runs(&h, "autumn").await, ["autumn-202610250030"]);
    let v = view(&h, "autumn").await;
    assert_eq!(v["nextRun"], "2026-10-26T01:30:00.000Z");
    assert_eq!(v["missedRuns"], 0);
    wind_down(&h, &runs(&h, "autumn").await).await;
}

/// Hostile and wrong inputs are `400`s naming the field, and nothing is stored.
async fn bad_inputs_are_refused_naming_the_field(backend: Backend) {
    let Some((h, _clock)) = harness(backend, "2026-03-02T10:02:00Z").await else {
        return;
    };
    let good = schedule("*/5 * * * *", "true", json!({}));
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let mut with_id = good.clone();
    with_id["spec"]["id"] = json!("mine");
    let mut bad_group = good.clone();
    bad_group["spec"]["groups"][0]["name"] = json!("Bad_Name");
    let mut notify = good.clone();
    notify["spec"]["notify"] = json!([{ "url": "http://169.254.169.254/metadata" }]);
    let mut huge = good.clone();
    huge["spec"]["tags"] = json!({ "big": "x".repeat(300 * 1024) });
    let cases: Vec<(Value, &str)> = vec![
        (
            with("cron", json!("1,".repeat(5_000))),
            "cron: the expression is 10000 characters",
        ),
        (with("cron", json!("0 0 31 2 *")), "cron: never fires"),
        (with("cron", json!("* * * *")), "cron: has 4 fields"),
        (
            with("cron", json!("@hourly")),
            "cron: '@hourly': macros are not read",
        ),
        (with("cron", json!(5)), "cron: must be a string"),
        (
            with("timeZone", json!("Mars/Olympus")),
            "timeZone: 'Mars/Olympus' is not a time zone",
        ),
        (
            with("timeZone", json!("../../etc/passwd")),
            "timeZone: '../../etc/passwd' is not an IANA",
        ),
        (
            with("concurrencyPolicy", json!("sometimes")),
            "concurrencyPolicy: must be allow, forbid or replace",
        ),
        (
            with("startingDeadline", json!("PT0S")),
            "startingDeadline: must be from PT1S to P7D",
        ),
        (with("startingDeadline", json!("soon")), "startingDeadline:"),
        (with("suspended", json!(true)), "suspended: unknown field"),
        (
            with("template", json!("nightly")),
            "template: give spec or template, not both",
        ),
        (with_id, "spec.id: a schedule names its runs"),
        (bad_group, "spec.groups[0].name:"),
        (notify, "spec.notify[0].url:"),
        (huge, "spec: the spec is"),
        (json!({ "cron": "* * * * *" }), "spec: required"),
        (
            json!({ "cron": "* * * * *", "template": "nightly", "parameters": {"n": 1} }),
            "template: no template 'nightly'",
        ),
    ];
    for (body, want) in cases {
        let (status, problem) = put(&h, "bad", &body).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{want}: {problem}");
        assert!(detail.starts_with(want), "want {want:?}, got {detail:?}");
    }
    // Names: checked before anything is looked up.
    for name in ["..%2F..%2Fetc", "Nightly", "a--b", &"a".repeat(64)] {
        let (status, problem) = put(&h, name, &good).await;
        assert_eq!(status, 400, "{name}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().starts_with("name:"),
            "{problem}"
        );
    }
    let (status, _) = scenarios::get(&h, "/schedules/..%2F..%2Fetc").await;
    assert_eq!(status, 400);
    let r = request(&h, Method::PUT, "/schedules/form")
        .header("content-type", "text/plain")
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "a cross-site form cannot put a schedule");
    let (_, list) = scenarios::get(&h, "/schedules").await;
    assert_eq!(list["schedules"], json!([]), "nothing stored: {list}");
    assert_eq!(scenarios::get(&h, "/schedules/bad").await.0, 404);
}

/// A spec's secrets are sealed at rest and never shown; each run gets them back.
async fn secrets_are_sealed_and_never_shown(backend: Backend) {
    let Some((h, clock)) = harness(backend, "2026-03-02T10:02:00Z").await else {
        return;
    };
    let mut body = schedule(
        "*/5 * * * *",
        "printf %s \"$TOKEN\" > /mnt/share/token",
        json!({}),
    );
    body["spec"]["groups"][0]["properties"]["containers"][0]["properties"]["environmentVariables"] =
        json!([{ "name": "TOKEN", "secureValue": "s3cr3t-value" }]);
    let (status, created) = put(&h, "sealed", &body).await;
    assert_eq!(status, 201, "{created}");
    let (_, list) = scenarios::get(&h, "/schedules").await;
    for shown in [
        created.to_string(),
        view(&h, "sealed").await.to_string(),
        list.to_string(),
    ] {
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
    }
    assert_eq!(created["target"]["secrets"], "(sealed)");
    let stored = h
        .runtime
        .driver
        .schedules()
        .unwrap()
        .load_schedule("sealed")
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored.body).contains("s3cr3t-value"));
    jump(&h, &clock, "2026-03-02T10:05:02Z").await;
    h.runtime.scheduler.run_once().await;
    let done = h.wait_done("sealed-202603021005").await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    let seen = std::fs::read_to_string(h.share("teststore", "data").join("token")).unwrap();
    assert_eq!(seen, "s3cr3t-value");
    scenarios::assert_nothing_left(&h).await;
}

/// A schedule of a template: expanded with its parameters at each run, as a `POST` of the
/// invocation would be.
async fn a_template_target_runs_with_its_parameters(backend: Backend) {
    let Some((h, clock)) = harness(backend, "2026-03-02T10:02:00Z").await else {
        return;
    };
    let template = json!({
        "parameters": { "word": { "type": "string" } },
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["/bin/sh", "-c", "echo {{ parameters.word }} > /mnt/share/word"],
            "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
            "volumeMounts": [{ "name": "share", "mountPath": "/mnt/share" }] } }],
            "volumes": [{ "name": "share", "azureFile": { "shareName": "data", "storageAccountName": "teststore" } }] } }]
    });
    let r = request(&h, Method::PUT, "/templates/say")
        .json(&template)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let bad = json!({ "cron": "*/5 * * * *", "template": "say", "parameters": { "word": 5 } });
    let (status, problem) = put(&h, "say", &bad).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("parameters.word"),
        "{problem}"
    );
    let body =
        json!({ "cron": "*/5 * * * *", "template": "say", "parameters": { "word": "tick" } });
    let (status, created) = put(&h, "say", &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["target"]["template"], "say");
    jump(&h, &clock, "2026-03-02T10:05:03Z").await;
    h.runtime.scheduler.run_once().await;
    let done = h.wait_done("say-202603021005").await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    let word = std::fs::read_to_string(h.share("teststore", "data").join("word")).unwrap();
    assert_eq!(word, "tick\n");
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(each_time_starts_one_deployment_whatever_the_ticks);
on_both_backends!(a_template_target_runs_with_its_parameters);
on_both_backends!(missed_times_past_the_deadline_are_skipped_and_one_within_starts);
on_both_backends!(concurrency_policies);
on_both_backends!(pause_and_resume);
on_both_backends!(a_time_zone_with_dst);
on_both_backends!(bad_inputs_are_refused_naming_the_field);
on_both_backends!(secrets_are_sealed_and_never_shown);
