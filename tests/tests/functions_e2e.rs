//! The engine's end-to-end suite through `handler` in Functions mode: the real binary behind the
//! simulated Functions host, its checkpoints and step queue on Azurite (a container and queue of
//! each test's own), ARM pointed at a real `aci-emulator` process running the containers under
//! bubblewrap. Callers reach Berth only through the host's public front (function keys, payload
//! mode), containers call back through the anonymous `callback` function, every workflow step
//! arrives through the simulated queue trigger, and the sweep runs on a `cleanup` timer tick.
//!
//! The scenarios are the engine suite's own (`handler/tests/common/scenarios.rs`, included by
//! path); the crash and sweep scenarios are the host's versions of `e2e_crash.rs` and `sweep.rs`.
//!
//! Needs Azurite: the one `bin/test` started, or one `berth_test_support` starts for the test
//! process; without it the tests fail saying how to get it, unless `BERTH_TEST_SKIP=azurite` asks
//! to skip them. `cargo test` (the workspace) builds the `handler` and `aci-emulator` binaries
//! these tests start.
#![allow(clippy::unwrap_used)]

#[path = "../../handler/tests/common/scenarios.rs"]
mod scenarios;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth::crypto::SecretsKey;
use berth_test_support::unique;
use berth_tests::host::{HostOptions, QueueDelivery, RunningApp, workspace_binary};
use scenarios::{Berth, Disruption, job};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// The Azurite connection string; `None` only when skipping Azurite's tests was asked for.
fn azurite() -> Option<String> {
    Some(
        berth_test_support::Azurite::shared()?
            .connection()
            .to_owned(),
    )
}

/// An `aci-emulator` process with its data in a folder of its own. Stopped with SIGTERM (which
/// kills its containers) when dropped.
struct Emulator {
    child: tokio::process::Child,
    url: String,
    data: PathBuf,
}

impl Emulator {
    async fn start(data: &Path, args: &[&str]) -> Self {
        let install = "apt-get install bubblewrap (bin/test installs it)";
        berth_test_support::require_program("bwrap", install);
        let mut child = tokio::process::Command::new(workspace_binary("aci-emulator").unwrap())
            // The tests and the containers reach it on loopback; its token has tests of its own.
            .args(["--no-auth", "--port", "0", "--data-dir"])
            .arg(data)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("aci-emulator printed its endpoint")
            .unwrap()
            .unwrap_or_default();
        let url = first
            .strip_prefix("aci-emulator: ARM endpoint ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            url,
            data: data.to_owned(),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Berth in Functions mode under the simulated host, with its own emulator, queue and app name.
struct App {
    app: RunningApp,
    emulator: Emulator,
    http: reqwest::Client,
    api: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Berth for App {
    fn api(&self) -> String {
        self.api.clone()
    }

    fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn authorise(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("x-functions-key", &self.key)
    }

    fn arm(&self) -> String {
        self.emulator.url.clone()
    }

    fn emulator_data(&self) -> PathBuf {
        self.emulator.data.clone()
    }
}

impl App {
    /// Starts an emulator with `emulator_args` and the app with `settings` on top of the defaults;
    /// `None` (after saying so) when Azurite is not there.
    async fn start(emulator_args: &[&str], settings: &[(&str, &str)]) -> Option<Self> {
        let connection = azurite()?;
        let dir = tempfile::tempdir().unwrap();
        let emulator = Emulator::start(&dir.path().join("aci"), emulator_args).await;
        let secrets = SecretsKey::generate();
        let mut all: Vec<(String, String)> = [
            ("AzureWebJobsStorage", connection),
            ("BERTH_QUEUE", unique("fe2e")),
            ("BERTH_SUBMIT_QUEUE", unique("fsub")),
            ("BERTH_APP", unique("fapp")),
            ("BERTH_ARM_ENDPOINT", emulator.url.clone()),
            ("BERTH_SUBSCRIPTION_ID", scenarios::SUBSCRIPTION.to_owned()),
            ("BERTH_RESOURCE_GROUP", scenarios::RESOURCE_GROUP.to_owned()),
            ("BERTH_LOCATION", "local".to_owned()),
            ("BERTH_SECRETS_KEY", secrets.to_base64()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in settings {
            all.retain(|(name, _)| name != k);
            all.push(((*k).to_owned(), (*v).to_owned()));
        }
        let mut options = HostOptions::new(&workspace_binary("handler").unwrap(), all).unwrap();
        // Shorter than the deployed host.json so a retried step comes back within a second and an
        // idle queue is looked at five times a second; the host's rules are the same.
        options.app.queues.visibility_timeout = Duration::from_secs(1);
        options.app.queues.max_polling_interval = Duration::from_millis(200);
        let app = RunningApp::start(options).await.unwrap();
        let api = app.host.api_url();
        let key = app.host.function_key().to_owned();
        Some(Self {
            app,
            emulator,
            http: reqwest::Client::new(),
            api,
            key,
            _dir: dir,
        })
    }

    /// Every invocation was answered in a shape the host accepts, steps arrived through the
    /// queue trigger, and no message of any queue went to its poison queue.
    async fn assert_clean(&self) {
        let violations = self.app.host.violations();
        assert!(violations.is_empty(), "{violations:?}");
        let steps = self.app.listener("steps").unwrap();
        assert!(
            !steps.delivered().is_empty(),
            "steps arrived through the queue trigger"
        );
        for function in ["steps", "submit"] {
            let listener = self.app.listener(function).unwrap();
            let poisoned = listener
                .poison_queue()
                .unwrap()
                .receive(32, Duration::from_secs(1))
                .await
                .unwrap();
            assert!(
                poisoned.is_empty(),
                "poisoned {function} messages: {:?}",
                poisoned.iter().map(|m| &m.text).collect::<Vec<_>>()
            );
        }
    }

    /// Checks that nothing is left on the emulator and [`Self::assert_clean`], then stops.
    async fn finish(self) {
        scenarios::assert_nothing_left(&self).await;
        self.assert_clean().await;
        self.app.stop().await;
    }
}

/// Runs a scenario and says how long it took.
async fn timed(name: &str, scenario: impl std::future::Future<Output = ()>) {
    let started = Instant::now();
    scenario.await;
    eprintln!("{name}: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_scenarios_run_through_the_functions_host() {
    let Some(a) = App::start(&[], &[]).await else {
        return;
    };
    let started = Instant::now();
    // Independent deployments with distinct group names, so they run at once.
    tokio::join!(
        timed(
            "job writes its share",
            scenarios::a_job_writes_its_share_and_succeeds_with_logs_saved_and_group_deleted(&a)
        ),
        timed(
            "exit 3 retried",
            scenarios::exit_three_is_retried_then_fails(&a)
        ),
        timed(
            "timeout",
            scenarios::a_timeout_kills_the_process_tree_and_ends_timed_out(&a)
        ),
        timed(
            "callback",
            scenarios::completion_by_callback_succeeds_and_stops_the_container(&a)
        ),
        timed("tokens", scenarios::a_foreign_or_wrong_token_is_refused(&a)),
        timed(
            "idempotent",
            scenarios::the_same_spec_twice_is_one_deployment_and_a_different_one_conflicts(&a)
        ),
        timed(
            "bad specs",
            scenarios::bad_specs_get_400_naming_the_field(&a)
        ),
    );
    eprintln!(
        "job scenarios through the Functions host: {:?}",
        started.elapsed()
    );
    // The container called back through the host's public front and its anonymous function.
    let records = a.app.host.records();
    assert!(
        records
            .iter()
            .any(|r| r.function == "callback" && r.status == 200),
        "no callback invocation"
    );
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_service_is_healed_after_a_stop_and_torn_down_by_the_teardown_event() {
    let images = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(images.path(), scenarios::SEED_IMAGES).unwrap();
    let images_path = images.path().to_string_lossy().into_owned();
    let Some(a) = App::start(&["--images", &images_path], &[]).await else {
        return;
    };
    scenarios::the_seed_service_is_healed_and_torn_down(&a, Disruption::Stop).await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_killed_in_every_phase_is_restarted_and_creates_each_group_once() {
    // Every ARM answer takes 300 ms, so each phase lasts long enough to be caught in.
    let Some(mut a) = App::start(
        &["--slow-rate", "1", "--slow-ms", "300"],
        &[("BERTH_CREATE_CLAIM", "PT3S")],
    )
    .await
    else {
        return;
    };
    // The phases a job's checkpoint is saved in. The submit creates it `Creating` (the claim of
    // its create in it) and sends the create itself (`BERTH_INLINE_STEP`), so it is killed in
    // that phase while its own invocation is still in flight. Once its logs are being captured,
    // the logs and the delete go under one save (`CleaningUp` is saved only when a delete waits
    // or fails).
    let phases = ["Creating", "Waiting", "CapturingLogs"];
    let mut ids = Vec::new();
    let mut caught = Vec::new();
    for phase in phases {
        let id = format!("crash-{}", phase.to_lowercase());
        let submit = scenarios::request(&a, reqwest::Method::POST, "/deployments")
            .json(&job(&id, "echo ran; sleep 1"))
            .send();
        let submit = tokio::spawn(submit);
        ids.push(id.clone());
        // Not found until the submit has created the checkpoint.
        let current = async || {
            let (_, status) = scenarios::get(&a, &format!("/deployments/{id}")).await;
            status["phase"].as_str().map(str::to_owned)
        };
        if scenarios::catch_phase(phase, Duration::from_secs(30), current).await {
            caught.push(phase);
        }
        // The handler dies; the host starts a new one, as it does when its worker exits.
        a.app.host.kill_handler().await;
        // Killed during its own invocation, the submit may have failed; once it was answered by
        // the handler, it was 202.
        if let Ok(answer) = submit.await.unwrap()
            && answer.status().is_success()
        {
            assert_eq!(answer.status().as_u16(), 202);
        }
        a.app.host.restart().await.unwrap();
    }
    assert!(
        caught.contains(&"Creating") && caught.len() >= 2,
        "killed in phases {caught:?}"
    );
    for id in &ids {
        let status =
            scenarios::wait_for(&a, id, Duration::from_secs(90), |s| s["phase"] == "Done").await;
        assert_eq!(status["runtimeStatus"], "Succeeded", "{id}: {status}");
        assert_eq!(
            scenarios::logs(&a, id, "work", "main").await,
            (200, "ran\n".into())
        );
    }
    let stats = scenarios::stats(&a).await;
    for id in &ids {
        let name = scenarios::aci(&a, id, "work", 1).await;
        assert_eq!(stats["createsByName"][&name], 1, "{id}: {stats}");
    }
    assert_eq!(
        stats["createsByName"].as_object().unwrap().len(),
        ids.len(),
        "no other group was created: {stats}"
    );
    assert_eq!(stats["groups"], 0, "no group left behind: {stats}");
    // Invocations cut off by the kills failed, as they do in the host; their messages came back.
    let failed = a
        .app
        .host
        .records()
        .iter()
        .filter(|r| r.status == 0)
        .count();
    eprintln!("killed the handler in phases {caught:?}; {failed} invocations cut off");
    a.finish().await;
}

/// A container group as another Berth (or this one, before a crash) left it.
fn stray_group(app: &str, deployment: &str, created_ms: i64) -> Value {
    json!({ "location": "local",
        "tags": { "berth-app": app, "berth-deployment": deployment, "berth-created": created_ms.to_string() },
        "properties": { "osType": "Linux", "restartPolicy": "Never", "containers": [{ "name": "c", "properties": {
            "image": "busybox", "command": ["/bin/sh", "-c", "sleep 600"],
            "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleanup_timer_sweeps_orphans_and_spares_what_is_owned() {
    let app_name = unique("sweepapp");
    let Some(a) = App::start(&[], &[("BERTH_APP", &app_name)]).await else {
        return;
    };
    // A live deployment whose group must survive the sweep.
    let mut live = job("live-1", "sleep 600");
    live["completion"] = json!("callback");
    let id = scenarios::start_deployment(&a, &live).await;
    scenarios::wait_for(&a, &id, Duration::from_secs(30), |s| {
        s["groups"][0]["containers"][0]["state"] == "Running"
    })
    .await;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let hour_ago = now_ms - 3_600_000;
    for (name, body) in [
        ("orphan-old", stray_group(&app_name, "gone-1", hour_ago)),
        ("orphan-new", stray_group(&app_name, "gone-2", now_ms)),
        ("other-app", stray_group("someone-else", "theirs", hour_ago)),
    ] {
        let r = a
            .http
            .put(scenarios::group_url(&a, name, ""))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{name}: {}", r.status());
    }

    let outcome = a.app.host.tick("cleanup", false).await.unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    assert!(
        logs.iter().any(|l| l.starts_with(
            "sweep: 3 groups seen, 1 orphans deleted, 0 re-driven, 0 purged, 0 errors"
        )),
        "{logs:?}"
    );
    let exists = |name| scenarios::group_status(&a, name);
    assert_eq!(exists("orphan-old").await, 404, "the old orphan is deleted");
    assert_eq!(exists("orphan-new").await, 200, "within the grace period");
    assert_eq!(exists("other-app").await, 200, "another app's group");
    let live = scenarios::aci(&a, "live-1", "work", 1).await;
    assert_eq!(exists(&live).await, 200, "owned by a live deployment");
    assert_eq!(scenarios::status(&a, &id).await["runtimeStatus"], "Running");

    let terminate = format!("/deployments/{id}/terminate?reason=test");
    assert_eq!(scenarios::post(&a, &terminate, None).await.0, 202);
    let done = scenarios::wait_done(&a, &id).await;
    assert_eq!(done["runtimeStatus"], "Terminated", "{done}");
    for name in ["orphan-new", "other-app"] {
        let url = scenarios::group_url(&a, name, "");
        assert!(
            a.http
                .delete(url)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }
    a.finish().await;
}

/// Deployments from the submit queue through the `submit` function, on Azurite: a template
/// invocation, an Event Grid blob-created event (`EventGridEvent`) and a CloudEvents one mapped to
/// that template's parameters, each sent twice (or delivered twice), start exactly one deployment
/// each; a message that can never be valid is dropped (answered, deleted, not poisoned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_messages_and_their_duplicates_start_one_deployment_each() {
    use berth::azure_storage::TimeToLive;
    use reqwest::Method;
    let Some(a) = App::start(
        &[],
        &[
            ("BERTH_SUBMIT_EVENTS", "Microsoft.Storage.BlobCreated=fetch"),
            // No request carries the base URL of these deployments: the Function App's host name.
            ("WEBSITE_HOSTNAME", "127.0.0.1:9"),
        ],
    )
    .await
    else {
        return;
    };
    let mut template = job(
        "unused",
        "echo url={{ parameters.url }} from={{ parameters.subject }}",
    );
    template.as_object_mut().unwrap().remove("id");
    template["parameters"] = json!({
        "url": { "type": "string", "from": "data.url" },
        "subject": { "type": "string", "default": "none", "from": "subject" },
    });
    let (status, body) =
        scenarios::send(scenarios::request(&a, Method::PUT, "/templates/fetch").json(&template))
            .await;
    assert_eq!(status, 201, "{body}");

    let listener = a.app.listener("submit").unwrap();
    let send = |text: String| async move {
        listener
            .queue()
            .send(&text, Duration::ZERO, TimeToLive::Never)
            .await
            .unwrap();
    };
    let url = "https://acct.blob.core.windows.net/uploads/clip-1.mp4";
    let grid = json!({ "id": "9f1c2e1a-0001", "topic": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acct",
        "subject": "/blobServices/default/containers/uploads/blobs/clip-1.mp4",
        "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-12-03T10:00:00Z",
        "data": { "api": "PutBlob", "url": url, "contentLength": 524288 },
        "dataVersion": "", "metadataVersion": "1" });
    let cloud = json!({ "specversion": "1.0", "id": "9f1c2e1a-0002",
        "source": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acct",
        "subject": "/blobServices/default/containers/uploads/blobs/clip-2.mp4",
        "type": "Microsoft.Storage.BlobCreated", "time": "2026-12-03T10:00:01Z",
        "data": { "url": "https://acct.blob.core.windows.net/uploads/clip-2.mp4" } });
    let invocation = json!({ "template": "fetch", "parameters": { "url": "given" } });
    // Event Grid may deliver an event twice: two messages, one event id.
    for text in [&grid, &grid, &cloud, &cloud, &invocation] {
        send(text.to_string()).await;
    }
    send("not json at all".to_owned()).await;
    send(json!({ "template": "fetch", "parameters": { "nope": 1 } }).to_string()).await;
    send(
        json!({ "id": "e9", "eventType": "Other.Type", "eventTime": "t", "data": {} }).to_string(),
    )
    .await;

    let list = || async {
        let (_, body) = scenarios::get(&a, "/deployments?top=50").await;
        body["deployments"].as_array().cloned().unwrap_or_default()
    };
    berth_test_support::eventually(
        "three deployments from the submit queue",
        Duration::from_secs(30),
        || async {
            let all = list().await;
            if all.len() >= 3 && listener.delivered().len() >= 8 {
                Ok(all)
            } else {
                Err(all.len())
            }
        },
    )
    .await;
    // The invocation's message delivered again (the host's at-least-once): the same deployment.
    let invocation_text = invocation.to_string();
    let first = listener
        .delivered()
        .into_iter()
        .find(|d| d.text == invocation_text)
        .unwrap();
    let again = QueueDelivery {
        text: first.text.clone(),
        dequeue_count: 2,
        id: first.id.clone(),
        pop_receipt: "again".into(),
        insertion_time: time::OffsetDateTime::now_utc(),
        expiration_time: time::OffsetDateTime::now_utc() + Duration::from_secs(3600),
        next_visible_time: time::OffsetDateTime::now_utc(),
    };
    let outcome = a.app.host.deliver("submit", &again).await.unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    assert!(
        logs.iter().any(|l| l.contains("exists already")),
        "{logs:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = list().await;
    assert_eq!(all.len(), 3, "one deployment per message or event: {all:?}");
    let mut logs = Vec::new();
    for d in &all {
        let id = d["id"].as_str().unwrap();
        assert_eq!(d["template"]["name"], "fetch", "{d}");
        let done = scenarios::wait_done(&a, id).await;
        assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
        logs.push(scenarios::logs(&a, id, "work", "main").await.1);
    }
    logs.sort();
    assert_eq!(
        logs,
        [
            "url=given from=none\n".to_owned(),
            format!("url={url} from=/blobServices/default/containers/uploads/blobs/clip-1.mp4\n"),
            "url=https://acct.blob.core.windows.net/uploads/clip-2.mp4 from=/blobServices/default/containers/uploads/blobs/clip-2.mp4\n".to_owned(),
        ]
    );
    // The bad messages were answered and deleted, each with its reason, and none was poisoned.
    let dropped: Vec<String> = listener
        .delivered()
        .iter()
        .filter_map(|d| d.outcome.as_ref()?.accepted())
        .flat_map(|a| a.logs.iter())
        .filter(|l| l.starts_with("submit message dropped: "))
        .cloned()
        .collect();
    assert_eq!(dropped.len(), 3, "{dropped:?}");
    assert!(
        dropped.iter().any(|l| l.contains("parameters.nope")),
        "{dropped:?}"
    );
    assert!(
        dropped.iter().any(|l| l.contains("Other.Type")),
        "{dropped:?}"
    );
    // `finish` checks that no message went to a poison queue.
    a.finish().await;
}

/// A schedule put through the host's front starts its run on a `scheduler` timer tick once its
/// time has come, once: a second tick (a duplicated or late timer) starts nothing more. The
/// run's containers call back through the URL the `PUT` came in on (no `BERTH_PUBLIC_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_timer_starts_a_schedules_run_once() {
    let Some(a) = App::start(&[], &[]).await else {
        return;
    };
    let now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };
    // Not in a minute's last seconds: the first tick must come before the minute turns.
    if now() % 60_000 > 55_000 {
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    let mut spec = job("x", "true");
    spec.as_object_mut().unwrap().remove("id");
    let body = json!({ "cron": "* * * * *", "spec": spec, "concurrencyPolicy": "forbid" });
    let r = scenarios::request(&a, reqwest::Method::PUT, "/schedules/tick")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["nextRunId"].as_str().unwrap().to_owned();
    let next = berth::clock::parse_rfc3339(created["nextRun"].as_str().unwrap()).unwrap();
    let outcome = a.app.host.tick("scheduler", false).await.unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    assert!(
        logs.iter()
            .any(|l| l.starts_with("schedules: 1 looked at, 0 started")),
        "{logs:?}"
    );

    // Wait for the minute to turn (at most a minute), then the timer fires, twice.
    let wait = u64::try_from(next - now() + 200).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let outcome = a.app.host.tick("scheduler", false).await.unwrap();
    let logs = &outcome.accepted().unwrap().logs;
    assert!(
        logs.iter()
            .any(|l| l.starts_with("schedules: 1 looked at, 1 started")),
        "{logs:?}"
    );
    assert!(logs.contains(&format!("started {id}")), "{logs:?}");
    let again = a.app.host.tick("scheduler", true).await.unwrap();
    let logs = &again.accepted().unwrap().logs;
    assert!(
        logs.iter()
            .any(|l| l.starts_with("schedules: 1 looked at, 0 started")),
        "{logs:?}"
    );
    let done = scenarios::wait_done(&a, &id).await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    let (status, view) = scenarios::get(&a, "/schedules/tick").await;
    assert_eq!(status, 200);
    assert_eq!(view["lastRun"]["deploymentId"], id.as_str(), "{view}");
    let r = scenarios::request(&a, reqwest::Method::DELETE, "/schedules/tick")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    a.finish().await;
}
