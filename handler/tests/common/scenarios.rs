//! The engine's end-to-end scenarios, written once against [`Berth`]: a running Berth reached over
//! its HTTP API, with the ACI emulator it creates groups on. `handler/tests/e2e_*.rs` run them
//! against the in-process runtime on SQLite and on Azurite; `tests/tests/functions_e2e.rs` runs
//! them through the simulated Functions host against the real `handler` binary. That crate
//! includes this file by path, so it uses only what both have: `berth`, `berth_test_support`,
//! `reqwest`, `serde_json`, `tokio`, `uuid`.
//!
//! Each scenario asserts only about its own deployment (its statuses, its groups' create counts,
//! its logs and share files), so scenarios with distinct ids may run at once on one Berth; the
//! caller checks what holds for the whole run (no group or process left).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_test_support::api::json_body;
use berth_test_support::eventually;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// The subscription every harness creates groups in.
pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";
/// The resource group every harness creates groups in.
pub const RESOURCE_GROUP: &str = "berth-test";
/// The ACI api-version the tests call the emulator with.
pub const API_VERSION: &str = "2025-09-01";

/// A running Berth and its emulator, as the scenarios reach them.
pub trait Berth: Sync {
    /// The API's base URL, ending in `/api`.
    fn api(&self) -> String;
    /// The client to call it with.
    fn http(&self) -> &reqwest::Client;
    /// Adds a caller's credentials to a request (the function key through the Functions host).
    fn authorise(&self, request: RequestBuilder) -> RequestBuilder;
    /// The emulator's ARM endpoint.
    fn arm(&self) -> String;
    /// The emulator's data folder (shares at `shares/<account>/<share>/`).
    fn emulator_data(&self) -> PathBuf;
}

/// An authorised request to `{api}{path}`.
pub fn request(b: &impl Berth, method: Method, path: &str) -> RequestBuilder {
    b.authorise(b.http().request(method, format!("{}{path}", b.api())))
}

pub async fn send(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET {api}{path}`; returns (status, body as JSON or null).
pub async fn get(b: &impl Berth, path: &str) -> (u16, Value) {
    send(request(b, Method::GET, path)).await
}

/// `POST {api}{path}` with an optional JSON body; returns (status, body as JSON or null).
pub async fn post(b: &impl Berth, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = request(b, Method::POST, path);
    if let Some(body) = body {
        r = r.json(&body);
    }
    send(r).await
}

/// `POST /deployments`; returns (status, body).
pub async fn submit(b: &impl Berth, spec: &Value) -> (u16, Value) {
    send(request(b, Method::POST, "/deployments").json(spec)).await
}

/// Submits and expects `202`; returns the id.
pub async fn start_deployment(b: &impl Berth, spec: &Value) -> String {
    let (status, body) = submit(b, spec).await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The status document: answered `202` while the deployment has not ended, `200` once it has
/// (the async request-reply pattern's polling contract).
pub async fn status(b: &impl Berth, id: &str) -> Value {
    let (code, body) = get(b, &format!("/deployments/{id}")).await;
    // `Notifying`: the status is final, only notifications are still being delivered.
    let ended = body["phase"] == "Done" || body["phase"] == "Notifying";
    let want = if ended { 200 } else { 202 };
    assert_eq!(code, want, "{body}");
    body
}

/// Waits until `want` holds for the status, up to `limit`.
pub async fn wait_for(
    b: &impl Berth,
    id: &str,
    limit: Duration,
    want: impl Fn(&Value) -> bool,
) -> Value {
    eventually(&format!("deployment {id} to get there"), limit, || async {
        let status = status(b, id).await;
        if want(&status) {
            Ok(status)
        } else {
            Err(status)
        }
    })
    .await
}

/// Polls a deployment's phase with `phase` (`None` while Berth cannot answer) until it is `want`
/// (true), or `Done` or `within` has passed (false): how the crash tests catch Berth in a phase
/// to kill it there.
pub async fn catch_phase(
    want: &str,
    within: Duration,
    mut phase: impl AsyncFnMut() -> Option<String>,
) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match phase().await.as_deref() {
            Some(now) if now == want => return true,
            Some("Done") => return false,
            _ if Instant::now() > deadline => return false,
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// The callback token Berth gave a container of `job_tokens`' job `id` for `kind`: what the
/// container wrote to the share from its `BERTH_CALLBACK_URL` or `BERTH_HEARTBEAT_URL`.
pub async fn given_token(b: &impl Berth, id: &str, kind: &str) -> String {
    let file = share(b, "teststore", "data").join(format!("{id}-{kind}-url"));
    let what = format!("{id} to write {}", file.display());
    eventually(&what, Duration::from_secs(30), || async {
        match std::fs::read_to_string(&file) {
            Ok(url) => match url.trim().split_once("?token=") {
                Some((_, token)) if !token.is_empty() => Ok(token.to_owned()),
                _ => Err(format!("no token in {url:?}")),
            },
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// A job that writes the callback URLs it was given to the share (for [`given_token`]), then
/// runs `script`.
pub fn job_tokens(id: &str, script: &str) -> Value {
    job(
        id,
        &format!(
            "echo \"$BERTH_CALLBACK_URL\" > /mnt/share/{id}-completed-url.tmp && \
             mv /mnt/share/{id}-completed-url.tmp /mnt/share/{id}-completed-url && \
             echo \"$BERTH_HEARTBEAT_URL\" > /mnt/share/{id}-heartbeat-url.tmp && \
             mv /mnt/share/{id}-heartbeat-url.tmp /mnt/share/{id}-heartbeat-url && {script}"
        ),
    )
}

/// Waits (up to 60 s) until the phase is `Done`.
pub async fn wait_done(b: &impl Berth, id: &str) -> Value {
    wait_for(b, id, Duration::from_secs(60), |s| s["phase"] == "Done").await
}

/// A container's saved logs: (status, text).
pub async fn logs(b: &impl Berth, id: &str, group: &str, container: &str) -> (u16, String) {
    let path = format!("/deployments/{id}/logs/{group}/{container}");
    let response = request(b, Method::GET, &path).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The event types of a deployment's history, in order.
pub async fn history(b: &impl Berth, id: &str) -> Vec<String> {
    let (code, body) = get(b, &format!("/deployments/{id}/history")).await;
    assert_eq!(code, 200, "{body}");
    body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_owned())
        .collect()
}

/// The emulator's counters (`GET /_emulator/stats`).
pub async fn stats(b: &impl Berth) -> Value {
    json_body(b.http().get(format!("{}/_emulator/stats", b.arm()))).await
}

/// How many times the emulator created the group `name`.
pub async fn creates(b: &impl Berth, name: &str) -> u64 {
    stats(b).await["createsByName"][name].as_u64().unwrap_or(0)
}

/// The ARM names the emulator was asked to create for generation `generation` of `group` in
/// deployment `id`: `{id}-{group}-{generation}-{hash}`, the hash over the deployment's random
/// uid, so tests find them rather than compute them.
pub async fn aci_names(b: &impl Berth, id: &str, group: &str, generation: u32) -> Vec<String> {
    let prefix = format!("{id}-{group}-{generation}-");
    let stats = stats(b).await;
    let mut names: Vec<String> = stats["createsByName"]
        .as_object()
        .map(|m| m.keys().filter(|k| is_named(k, &prefix)).cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether `name` is `prefix` and an 8-digit hash.
pub fn is_named(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|hash| hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The one ARM name of generation `generation` of `group` in deployment `id` (see [`aci_names`]).
pub async fn aci(b: &impl Berth, id: &str, group: &str, generation: u32) -> String {
    let names = aci_names(b, id, group, generation).await;
    assert_eq!(names.len(), 1, "{id}/{group}/{generation}: {names:?}");
    names[0].clone()
}

/// Waits (up to 10 s) until the emulator runs no container process; returns how many are left.
pub async fn settled_processes(b: &impl Berth) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = stats(b).await["liveProcesses"].as_u64().unwrap();
        if live == 0 || Instant::now() > deadline {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// No container group and no container process is left on the emulator.
pub async fn assert_nothing_left(b: &impl Berth) {
    let stats = stats(b).await;
    if stats["groups"] != 0 {
        let list = json_body(b.http().get(format!(
            "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups?api-version={API_VERSION}",
            b.arm()
        )))
        .await;
        eprintln!("LEFT GROUPS: {list:#}");
        let (_, deps) = get(b, "/deployments?top=100").await;
        for d in deps["deployments"].as_array().into_iter().flatten() {
            let id = d["id"].as_str().unwrap();
            let (_, full) = get(b, &format!("/deployments/{id}")).await;
            eprintln!("DEPLOYMENT {id}: {full:#}");
        }
    }
    assert_eq!(stats["groups"], 0, "every group deleted: {stats}");
    assert_eq!(settled_processes(b).await, 0, "every process ended");
}

/// The emulator's ARM URL of the container group `name`, with `suffix` (e.g. `/stop`).
pub fn group_url(b: &impl Berth, name: &str, suffix: &str) -> String {
    format!(
        "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups/{name}{suffix}?api-version={API_VERSION}",
        b.arm()
    )
}

/// The HTTP status of `GET` on the container group `name` (404 once it is deleted).
pub async fn group_status(b: &impl Berth, name: &str) -> u16 {
    let response = b.http().get(group_url(b, name, "")).send().await.unwrap();
    response.status().as_u16()
}

/// The emulator's folder of an Azure Files share.
pub fn share(b: &impl Berth, account: &str, share: &str) -> PathBuf {
    b.emulator_data().join("shares").join(account).join(share)
}

/// A one-group job spec running `script` with `sh -c`, its share mounted at `/mnt/share`.
pub fn job(id: &str, script: &str) -> Value {
    json!({
        "id": id,
        "groups": [{ "name": "work", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["/bin/sh", "-c", script],
                "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
                "volumeMounts": [{ "name": "share", "mountPath": "/mnt/share" }] } }],
            "volumes": [{ "name": "share", "azureFile": { "shareName": "data", "storageAccountName": "teststore" } }] } }]
    })
}

/// A string no other process on this machine has in its command line.
pub fn marker(what: &str) -> String {
    format!("berth-{what}-marker-{}", uuid::Uuid::new_v4().simple())
}

/// Processes on this machine whose command line holds `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(marker) {
                found.push(format!("{name}: {text}"));
            }
        }
    }
    found
}

/// Waits (up to `limit`) until no process holds `marker`.
pub async fn no_processes_with(marker: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let found = processes_with(marker);
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A job writes its share and exits 0: `Succeeded`, its logs saved, its group deleted.
pub async fn a_job_writes_its_share_and_succeeds_with_logs_saved_and_group_deleted(b: &impl Berth) {
    let id = start_deployment(
        b,
        &job(
            "write-1",
            "echo hello from $BERTH_DEPLOYMENT_ID; echo payload > /mnt/share/result.txt",
        ),
    )
    .await;
    let status = wait_done(b, &id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    assert_eq!(status["groups"][0]["state"], "Deleted");
    assert_eq!(status["groups"][0]["containers"][0]["exitCode"], 0);
    assert!(status["cost"]["vcpuSeconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        std::fs::read_to_string(share(b, "teststore", "data").join("result.txt")).unwrap(),
        "payload\n"
    );
    assert_eq!(
        logs(b, &id, "work", "main").await,
        (200, "hello from write-1\n".into())
    );
    let name = aci(b, "write-1", "work", 1).await;
    assert_eq!(creates(b, &name).await, 1);
    assert_eq!(group_status(b, &name).await, 404);
    let kinds = history(b, &id).await;
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("DeploymentAccepted")
    );
    assert_eq!(kinds.last().map(String::as_str), Some("GroupDeleted"));
}

/// A job exiting 3 is retried in a fresh group, then fails; both attempts' logs are kept.
pub async fn exit_three_is_retried_then_fails(b: &impl Berth) {
    let mut spec = job("exit-3", "echo attempt; exit 3");
    spec["retry"] = json!({ "maxAttempts": 2, "backoff": "PT0.2S" });
    let id = start_deployment(b, &spec).await;
    let status = wait_done(b, &id).await;
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    assert_eq!(status["attempt"], 2);
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 3"),
        "{status}"
    );
    assert_eq!(status["groups"][0]["containers"][0]["exitCode"], 3);
    let first = aci(b, "exit-3", "work", 1).await;
    for name in [first.clone(), aci(b, "exit-3", "work", 2).await] {
        assert_eq!(creates(b, &name).await, 1, "{name}");
        assert_eq!(group_status(b, &name).await, 404, "{name}");
    }
    // Both attempts' logs were saved; the group name serves the latest, the ARM name either.
    assert_eq!(
        logs(b, &id, "work", "main").await,
        (200, "attempt\n".into())
    );
    assert_eq!(
        logs(b, &id, &first, "main").await,
        (200, "attempt\n".into())
    );
}

/// A job past its timeout is stopped, its whole process tree killed, its logs saved: `TimedOut`.
pub async fn a_timeout_kills_the_process_tree_and_ends_timed_out(b: &impl Berth) {
    let marker = marker("timeout");
    let script = format!(
        "echo started; sh -c 'sleep 1000; echo {marker}' & sh -c 'sleep 1001; echo {marker}' & sleep 999 # {marker}"
    );
    let mut spec = job("slow-1", &script);
    // Long enough for the group to be seen running first, even through the Functions host's
    // queue on a busy machine.
    spec["timeout"] = json!("PT5S");
    let id = start_deployment(b, &spec).await;
    wait_for(b, &id, Duration::from_secs(20), |s| {
        s["groups"][0]["containers"][0]["state"] == "Running"
    })
    .await;
    assert!(
        !processes_with(&marker).is_empty(),
        "the job's processes run"
    );
    let status = wait_done(b, &id).await;
    assert_eq!(status["runtimeStatus"], "TimedOut", "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("timed out after PT5S"),
        "{status}"
    );
    let left = no_processes_with(&marker, Duration::from_secs(5)).await;
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let name = aci(b, "slow-1", "work", 1).await;
    assert_eq!(group_status(b, &name).await, 404);
    assert_eq!(
        logs(b, &id, "work", "main").await,
        (200, "started\n".into())
    );
}

/// A `completion: callback` job ends when its container calls `BERTH_CALLBACK_URL`; the container
/// is stopped, and the URL stops working once the deployment has ended.
pub async fn completion_by_callback_succeeds_and_stops_the_container(b: &impl Berth) {
    let marker = marker("callback");
    // The container keeps its callback URL on the share, so the test can try it again later.
    let script = format!(
        "echo calling back; echo \"$BERTH_CALLBACK_URL\" > /mnt/share/callback-url; \
         curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d '{{\"exitCode\":0}}' \"$BERTH_CALLBACK_URL\"; \
         sleep 600 # {marker}"
    );
    let mut spec = job("callback-1", &script);
    spec["completion"] = json!("callback");
    let id = start_deployment(b, &spec).await;
    let status = wait_done(b, &id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    let left = no_processes_with(&marker, Duration::from_secs(5)).await;
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert_eq!(
        logs(b, &id, "work", "main").await,
        (200, "calling back\n".into())
    );
    let url = std::fs::read_to_string(share(b, "teststore", "data").join("callback-url")).unwrap();
    let url = url.trim();
    assert!(
        url.starts_with(&format!("{}/callbacks/{id}/completed?token=", b.api())),
        "{url} is not on {}",
        b.api()
    );
    // Once the deployment has ended its own token no longer works.
    let response = b.http().post(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

/// Callbacks are authorised by their token alone: one for another deployment or event kind, a
/// forged one or none is refused (whatever other credentials come with it); the right one works
/// without any.
pub async fn a_foreign_or_wrong_token_is_refused(b: &impl Berth) {
    let mut a = job_tokens("tok-a", "sleep 600");
    a["completion"] = json!("callback");
    let mut other = job_tokens("tok-b", "sleep 600");
    other["completion"] = json!("callback");
    let a = start_deployment(b, &a).await;
    let other = start_deployment(b, &other).await;
    let a_token = given_token(b, &a, "completed").await;
    for (path, why) in [
        (
            format!("/callbacks/{other}/completed?token={a_token}"),
            "another deployment's token",
        ),
        (
            format!("/callbacks/{a}/heartbeat?token={a_token}"),
            "another event kind's token",
        ),
        (
            format!("/callbacks/{a}/completed?token=forged"),
            "a forged token",
        ),
        (format!("/callbacks/{a}/completed"), "no token"),
    ] {
        // `post` sends the caller's credentials too: they do not stand in for the token.
        let (code, body) = post(b, &path, Some(json!({ "exitCode": 0 }))).await;
        assert_eq!(code, 403, "{why}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with("token"),
            "{why}: {body}"
        );
    }
    let anonymous = |path: String| b.http().post(format!("{}{path}", b.api()));
    let heartbeat = given_token(b, &a, "heartbeat").await;
    let response = anonymous(format!("/callbacks/{a}/heartbeat?token={heartbeat}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let response = anonymous(format!("/callbacks/{a}/completed?token={a_token}"))
        .json(&json!({ "exitCode": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let path = format!("/deployments/{other}/terminate?reason=test");
    assert_eq!(post(b, &path, None).await.0, 202);
    assert_eq!(wait_done(b, &a).await["runtimeStatus"], "Succeeded");
    assert_eq!(wait_done(b, &other).await["runtimeStatus"], "Terminated");
    for id in ["tok-a", "tok-b"] {
        let name = aci(b, id, "work", 1).await;
        assert_eq!(group_status(b, &name).await, 404, "{name}");
    }
}

/// A `POST` with an existing id and the same spec is that deployment (200); a different spec 409.
pub async fn the_same_spec_twice_is_one_deployment_and_a_different_one_conflicts(b: &impl Berth) {
    let spec = job("idem-1", "echo once");
    let (first, body) = submit(b, &spec).await;
    assert_eq!(first, 202, "{body}");
    let (second, again) = submit(b, &spec).await;
    // Accepted work while it runs, the answer once it has ended.
    let want = if again["runtimeStatus"] == "Succeeded" {
        200
    } else {
        202
    };
    assert_eq!(second, want, "{again}");
    assert_eq!(again["id"], "idem-1");
    let (conflict, problem) = submit(b, &job("idem-1", "echo twice")).await;
    assert_eq!(conflict, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().starts_with("id:"));
    let status = wait_done(b, "idem-1").await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    let name = aci(b, "idem-1", "work", 1).await;
    assert_eq!(creates(b, &name).await, 1);
}

/// Bad specs are `400` naming the field, too large a body `413`, and nothing is created.
pub async fn bad_specs_get_400_naming_the_field(b: &impl Berth) {
    let mut spec = job("bad-1", "true");
    spec["groups"][0]["properties"]["containers"][0]["properties"]["volumeMounts"][0]["name"] =
        json!("nosuchvolume");
    let (code, problem) = submit(b, &spec).await;
    assert_eq!(code, 400);
    assert_eq!(problem["title"], "Invalid deployment spec");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("groups[0].properties.containers[0].properties.volumeMounts[0].name:"),
        "{problem}"
    );
    assert_eq!(
        problem["errors"][0]["field"],
        "groups[0].properties.containers[0].properties.volumeMounts[0].name"
    );
    // A fresh client: the server may answer 413 without reading the body and close the connection.
    let fresh = reqwest::Client::new().post(format!("{}/deployments", b.api()));
    let response = b
        .authorise(fresh)
        .header("content-type", "application/json")
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(get(b, "/deployments/bad-1").await.0, 404);
    assert_eq!(get(b, "/deployments?status=Sleeping").await.0, 400);
    assert!(aci_names(b, "bad-1", "work", 1).await.is_empty());
}

/// Stand-ins for the seed service's images (an emulator image map): long-running processes that
/// write to the share as the real servers would (`examples/` maps them to the real binaries).
pub const SEED_IMAGES: &str = r#"
[images."postgres:15"]
command = ["/bin/sh", "-c", "echo postgres up; while true; do date +%s > /var/lib/postgresql/data/postmaster.pid; sleep 1; done"]

[images."nginx:alpine"]
command = ["/bin/sh", "-c", "echo nginx up; while true; do sleep 1; done"]
"#;

fn seed_group(name: &str, container: &str, image: &str, mount: &str, command: Value) -> Value {
    let mut properties = json!({
        "image": image,
        "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
        "volumeMounts": [{ "name": "appdata", "mountPath": mount }]
    });
    if !command.is_null() {
        properties["command"] = command;
    }
    json!({ "name": name, "properties": {
        "containers": [{ "name": container, "properties": properties }],
        "restartPolicy": "Always",
        "volumes": [{ "name": "appdata", "azureFile": { "shareName": "app", "storageAccountName": "seedstore" } }]
    } })
}

/// The seed service: Postgres, nginx and a worker sharing one Azure Files share.
pub fn seed_spec() -> Value {
    let worker = json!([
        "/bin/sh",
        "-c",
        "while true; do date +%s >> /shared/worker.log; sleep 1; done"
    ]);
    let mut web = seed_group(
        "web",
        "nginx",
        "nginx:alpine",
        "/usr/share/nginx/html",
        Value::Null,
    );
    let mut worker = seed_group("worker", "worker", "busybox", "/shared", worker);
    // The database first: the web server and the worker start once it runs.
    web["dependsOn"] = json!(["db"]);
    worker["dependsOn"] = json!(["db"]);
    json!({
        "id": "seed",
        "mode": "service",
        "groups": [
            seed_group("db", "postgres", "postgres:15", "/var/lib/postgresql/data", Value::Null),
            web,
            worker,
        ]
    })
}

/// What happens to the seed service's web group behind Berth's back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disruption {
    /// `DELETE` on the group.
    Delete,
    /// `POST .../stop` on the group.
    Stop,
}

/// The seed service runs (its groups write to their share), is healed after its web group is
/// disrupted, and is torn down by the `teardown` event with its logs saved and its data kept.
/// Needs an emulator with [`SEED_IMAGES`].
pub async fn the_seed_service_is_healed_and_torn_down(b: &impl Berth, disruption: Disruption) {
    let id = start_deployment(b, &seed_spec()).await;
    let running = |s: &Value| {
        s["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["state"] == "Running")
    };
    wait_for(b, &id, Duration::from_secs(30), running).await;
    // Started in order: the db observed running before web and worker were created.
    let events = history(b, &id).await;
    let (_, full) = get(b, &format!("/deployments/{id}/history")).await;
    let details: Vec<String> = full["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["eventType"].as_str().unwrap(),
                e["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    let at =
        |what: &dyn Fn(&str) -> bool| details.iter().position(|d| what(d)).unwrap_or(usize::MAX);
    let db_running = at(&|d| d.starts_with("GroupObserved seed-db-") && d.contains("/ Running"));
    let web_created = at(&|d| d.starts_with("GroupCreated seed-web-"));
    let worker_created = at(&|d| d.starts_with("GroupCreated seed-worker-"));
    assert!(
        db_running < web_created && db_running < worker_created && web_created < usize::MAX,
        "{events:?}\n{details:#?}"
    );
    let share = share(b, "seedstore", "app");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(share.join("postmaster.pid").exists() && share.join("worker.log").exists()) {
        assert!(
            Instant::now() < deadline,
            "the groups write to their shared share"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Disrupt the web group behind Berth's back, then tell Berth something happened.
    let web = aci(b, "seed", "web", 1).await;
    let response = match disruption {
        Disruption::Delete => b.http().delete(group_url(b, &web, "")),
        Disruption::Stop => b.http().post(group_url(b, &web, "/stop")),
    }
    .send()
    .await
    .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let path = format!("/deployments/{id}/events/check");
    assert_eq!(post(b, &path, None).await.0, 202);
    let named = |s: &Value, slot: usize, prefix: &str| {
        is_named(s["groups"][slot]["aciName"].as_str().unwrap_or(""), prefix)
    };
    let healed = wait_for(b, &id, Duration::from_secs(30), |s| {
        named(s, 1, "seed-web-2-") && s["groups"][1]["state"] == "Running"
    })
    .await;
    assert_eq!(healed["runtimeStatus"], "Running");
    assert!(
        named(&healed, 0, "seed-db-1-") && named(&healed, 2, "seed-worker-1-"),
        "the other groups were left alone: {healed}"
    );

    let path = format!("/deployments/{id}/events/teardown");
    assert_eq!(post(b, &path, None).await.0, 202);
    let done = wait_done(b, &id).await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    let mut names = Vec::new();
    for (group, generation) in [("db", 1), ("web", 1), ("web", 2), ("worker", 1)] {
        names.push(aci(b, "seed", group, generation).await);
    }
    let stats = stats(b).await;
    for name in &names {
        assert_eq!(stats["createsByName"][name], 1, "{name}: {stats}");
        assert_eq!(group_status(b, name).await, 404, "{name} deleted");
    }
    // Regression: each group's result used to re-trigger every other group's pending action, so
    // three groups took dozens of deletes. One delete per group.
    assert_eq!(stats["requests"]["delete"], 4, "{stats}");
    let at_most = |kind: &str, n: u64| {
        let count = stats["requests"][kind].as_u64().unwrap_or(0);
        assert!(count <= n, "{kind}: {count} > {n}: {stats}");
    };
    at_most("stop", 4);
    // One capture per group after it stops, and at most one read of a running container's log
    // per look (each group has one container).
    let looks = stats["requests"]["get"].as_u64().unwrap_or(0);
    at_most("logs", 4 + looks);
    assert!(
        share.join("postmaster.pid").exists(),
        "the share's data stays"
    );
    assert_eq!(
        logs(b, &id, "db", "postgres").await,
        (200, "postgres up\n".into())
    );
    assert!(history(b, &id).await.iter().any(|e| e == "Healing"));
}

/// `examples/pipeline.json` (prepare → 4 shards, 2 at a time → evaluate, through a share,
/// outputs passed on): every stage in order, each instance created once, the shards' outputs in
/// the status and in the evaluation's `BERTH_INPUTS`.
pub async fn the_example_pipeline_runs_its_stages_in_order_and_passes_outputs_on(b: &impl Berth) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pipeline.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    spec["id"] = json!("pipeline-e2e");
    let id = start_deployment(b, &spec).await;
    let status = wait_for(b, &id, Duration::from_secs(90), |s| s["phase"] == "Done").await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    let groups = &status["groups"];
    for (i, name) in ["prepare", "shard", "evaluate"].iter().enumerate() {
        assert_eq!(groups[i]["name"], *name);
        assert_eq!(groups[i]["result"], "Succeeded", "{status}");
    }
    assert_eq!(groups[1]["instances"]["succeeded"], 4, "{status}");
    let sums: Vec<i64> = (0..4)
        .map(|i| groups[1]["outputs"][i.to_string()]["sum"].as_i64().unwrap())
        .collect();
    assert_eq!(sums, vec![4950, 14950, 24950, 34950]);
    assert_eq!(groups[0]["outputs"]["0"]["parts"], 4);

    let inputs: Value = serde_json::from_str(
        &std::fs::read_to_string(share(b, "berthdemo", "pipeline").join("inputs.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(inputs["shard"]["3"]["sum"], 34950, "{inputs}");

    let stats = stats(b).await;
    let created: Vec<(&String, u64)> = stats["createsByName"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("pipeline-e2e-"))
        .map(|(name, n)| (name, n.as_u64().unwrap()))
        .collect();
    assert_eq!(created.len(), 6, "{created:?}");
    assert!(created.iter().all(|(_, n)| *n == 1), "{created:?}");
    // The shards, paged.
    let (code, page) = get(
        b,
        &format!("/deployments/{id}/groups/shard/instances?top=3"),
    )
    .await;
    assert_eq!(code, 200, "{page}");
    let indexes: Vec<i64> = page["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0, 1, 2]);
    assert_eq!(page["instances"][1]["output"]["sum"], 14950);
    assert_eq!(page["instances"][1]["state"], "Succeeded");
    let token = page["continuationToken"].as_str().unwrap();
    let (code, rest) = get(
        b,
        &format!("/deployments/{id}/groups/shard/instances?top=3&continuationToken={token}"),
    )
    .await;
    assert_eq!(code, 200, "{rest}");
    assert_eq!(rest["instances"][0]["index"], 3);
    assert_eq!(rest["continuationToken"], Value::Null);
    for (path, code, field) in [
        (
            "groups/shard/instances?continuationToken=bm9wZQ",
            400,
            "continuationToken",
        ),
        ("groups/shard/instances?top=0", 400, "top"),
        ("groups/nothing/instances", 404, "group"),
        ("groups/Shard_1/instances", 400, "group"),
    ] {
        let (got, body) = get(b, &format!("/deployments/{id}/{path}")).await;
        assert_eq!(got, code, "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(field),
            "{path}: {body}"
        );
    }

    let events = history(b, &id).await;
    let first = |kind: &str| events.iter().position(|e| e == kind).unwrap();
    assert!(first("InstanceSucceeded") < events.iter().rposition(|e| e == "GroupCreated").unwrap());
}

/// A fanned-out callback job: each instance's URL (its token bound to the instance) completes
/// that instance alone, with its output; a token is refused for another instance, without its
/// instance, and a hostile instance name is a 400 naming it.
pub async fn an_instances_callback_token_opens_that_instance_alone(b: &impl Berth) {
    let mut spec = job(
        "fan-tokens",
        "echo \"$BERTH_CALLBACK_URL\" > /mnt/share/fan-tokens-$BERTH_INDEX.tmp && \
         mv /mnt/share/fan-tokens-$BERTH_INDEX.tmp /mnt/share/fan-tokens-$BERTH_INDEX-url && sleep 600",
    );
    spec["completion"] = json!("callback");
    spec["groups"][0]["count"] = json!(2);
    let id = start_deployment(b, &spec).await;
    let given = |index: u32| {
        let file = share(b, "teststore", "data").join(format!("fan-tokens-{index}-url"));
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(url) = std::fs::read_to_string(&file)
                    && let Some((_, query)) = url.trim().split_once('?')
                {
                    let pairs: std::collections::HashMap<String, String> =
                        url::form_urlencoded::parse(query.as_bytes())
                            .into_owned()
                            .collect();
                    return (pairs["token"].clone(), pairs["instance"].clone());
                }
                assert!(Instant::now() < deadline, "no {}", file.display());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (token0, instance0) = given(0).await;
    let (token1, instance1) = given(1).await;
    assert_ne!(instance0, instance1);
    let id = id.as_str();
    let anonymous = |query: String, body: Value| async move {
        let response = b
            .http()
            .post(format!("{}/callbacks/{id}/completed?{query}", b.api()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = response.status().as_u16();
        (code, response.json::<Value>().await.unwrap_or(Value::Null))
    };
    let done = json!({ "exitCode": 0, "output": { "rows": 7 } });
    for (query, why) in [
        (
            format!("token={token0}&instance={instance1}"),
            "another instance's token",
        ),
        (
            format!("token={token0}"),
            "an instance's token without its instance",
        ),
        (format!("token={token1}&instance={instance0}"), "swapped"),
    ] {
        let (code, body) = anonymous(query, done.clone()).await;
        assert_eq!(code, 403, "{why}: {body}");
    }
    let (code, body) =
        anonymous(format!("token={token0}&instance=..%2F..%2Fx"), done.clone()).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("instance"),
        "{body}"
    );
    let (code, body) = anonymous(
        format!("token={token0}&instance={instance0}"),
        json!({ "exitCode": "zero" }),
    )
    .await;
    assert_eq!(code, 400, "{body}");

    let (code, body) = anonymous(format!("token={token0}&instance={instance0}"), done).await;
    assert_eq!(code, 202, "{body}");
    let status = wait_for(b, id, Duration::from_secs(30), |s| {
        s["groups"][0]["instances"]["succeeded"] == 1
    })
    .await;
    assert_eq!(status["groups"][0]["outputs"]["0"]["rows"], 7, "{status}");
    assert_eq!(status["groups"][0]["instances"]["running"], 1, "{status}");
    assert_ne!(status["phase"], "Done");
    let (code, _) = anonymous(
        format!("token={token1}&instance={instance1}"),
        json!({ "exitCode": 0 }),
    )
    .await;
    assert_eq!(code, 202);
    let status = wait_done(b, id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
}
