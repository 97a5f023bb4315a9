//! Spec holes attacked end to end through the HTTP API.
//!
//! `secureValueFrom` against a real `handler serve` process whose environment holds Berth's own
//! secrets: a spec naming them, or any name the operator did not list in
//! `BERTH_SECURE_VALUE_FROM`, is a `400` naming the field and nothing is created; a listed name
//! reaches the container and nowhere else; a name dropped from the list before the create (a
//! restart with other settings) fails the attempt without being read. Specs that ACI or the
//! container runtime would refuse at create (mount paths, secret file names) and documents with
//! duplicate keys are a `400` naming the field, with no ARM call at all.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use berth::crypto::SecretsKey;
use common::scenarios::{self, Berth, RESOURCE_GROUP, SUBSCRIPTION};
use common::{Harness, free_port};
use serde_json::{Value, json};
use tempfile::TempDir;

const KEY: &str = "spec-holes-key";
/// The field every `secureValueFrom` attack below sets.
const FIELD: &str =
    "groups[0].properties.containers[0].properties.environmentVariables[1].secureValueFrom";

/// A `handler serve` process on SQLite in `dir`, with `env` added to its environment.
struct Serve {
    child: Child,
    url: String,
    http: reqwest::Client,
    arm: String,
    emulator_data: PathBuf,
}

impl Serve {
    async fn spawn(dir: &Path, arm: &str, secrets: &str, env: &[(&str, &str)]) -> Serve {
        let (mut command, url) = common::serve_command();
        let sqlite = dir.join("berth.db").display().to_string();
        let settings = [
            ("BERTH_SQLITE_PATH", sqlite.as_str()),
            ("BERTH_ARM_ENDPOINT", arm),
            ("BERTH_SUBSCRIPTION_ID", SUBSCRIPTION),
            ("BERTH_RESOURCE_GROUP", RESOURCE_GROUP),
            ("BERTH_LOCATION", "local"),
            ("BERTH_SECRETS_KEY", secrets),
            ("BERTH_API_KEY", KEY),
            ("BERTH_STEP_LEASE", "PT2S"),
            ("BERTH_CREATE_CLAIM", "PT3S"),
        ];
        let child = command
            .envs(settings.iter().chain(env).copied())
            .spawn()
            .unwrap();
        let serve = Serve {
            child,
            url,
            http: reqwest::Client::new(),
            arm: arm.to_owned(),
            emulator_data: dir.join("aci"),
        };
        let root = format!("{}/", serve.url);
        berth_test_support::api::wait_until_answering(&root, Duration::from_secs(20)).await;
        serve
    }

    fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Berth for Serve {
    fn api(&self) -> String {
        format!("{}/api", self.url)
    }

    fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn authorise(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("x-functions-key", KEY)
    }

    fn arm(&self) -> String {
        self.arm.clone()
    }

    fn emulator_data(&self) -> PathBuf {
        self.emulator_data.clone()
    }
}

/// A folder, an emulator keeping its data there, and a secrets key for the Berths of one test.
async fn setup() -> (TempDir, emulator::Running, String) {
    let dir = tempfile::tempdir().unwrap();
    let emulator = common::emulator_in(dir.path()).await;
    (dir, emulator, SecretsKey::generate().to_base64())
}

/// A job whose second environment variable takes its value from the app setting `setting`.
fn reading(id: &str, setting: &str, script: &str) -> Value {
    let mut spec = scenarios::job(id, script);
    spec["groups"][0]["properties"]["containers"][0]["properties"]["environmentVariables"] = json!([
        { "name": "MODE", "value": "plain" },
        { "name": "TOKEN", "secureValueFrom": setting }
    ]);
    spec
}

/// What reached ARM: (PUTs, groups created).
fn puts_and_creates(stats: &emulator::Stats) -> (u64, usize) {
    (
        stats.requests.get("put").copied().unwrap_or(0),
        stats.creates_by_name.len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_value_from_never_reads_berths_or_the_platforms_settings_or_unlisted_ones() {
    let (dir, emulator, secrets) = setup().await;
    let client_secret = scenarios::marker("client-secret");
    // The operator lists a BERTH_ name and a whole AZURE_ family by mistake: still refused.
    let allow = "SEED_TOKEN,BERTH_SECRETS_KEY,AZURE_*,IDENTITY_HEADER";
    let serve = Serve::spawn(
        dir.path(),
        &emulator.base_url(),
        &secrets,
        &[
            ("BERTH_SECURE_VALUE_FROM", allow),
            ("AZURE_CLIENT_SECRET", &client_secret),
            ("IDENTITY_HEADER", "identity-header-value"),
            ("APPSETTING_BERTH_SECRETS_KEY", &secrets),
            ("SEED_TOKEN", "seed-token-value"),
        ],
    )
    .await;

    let attacks = [
        "BERTH_SECRETS_KEY",
        "BERTH_API_KEY",
        "berth_secrets_key",
        "Berth_Secrets_Key",
        "AzureWebJobsStorage",
        "azurewebjobsstorage",
        "AZURE_CLIENT_SECRET",
        "azure_client_secret",
        "IDENTITY_HEADER",
        "MSI_SECRET",
        "WEBSITE_AUTH_ENCRYPTION_KEY",
        "FUNCTIONS_WORKER_RUNTIME",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPSETTING_BERTH_SECRETS_KEY",
        "PATH",
        "SEED_TOKEN_OTHER",
        "seed_token",
    ];
    for (i, setting) in attacks.iter().enumerate() {
        let spec = reading(&format!("steal-{i}"), setting, "echo $TOKEN");
        let response = scenarios::request(&serve, reqwest::Method::POST, "/deployments")
            .json(&spec)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{setting}: {body}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{setting}"
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{FIELD}: ")),
            "{setting}: {detail}"
        );
        for secret in [secrets.as_str(), &client_secret, KEY] {
            assert!(!detail.contains(secret), "{setting}: a secret in {detail}");
        }
    }

    let (code, list) = scenarios::get(&serve, "/deployments").await;
    assert_eq!(code, 200);
    assert_eq!(list["deployments"], json!([]), "nothing was accepted");
    assert_eq!(
        puts_and_creates(&emulator.stats()),
        (0, 0),
        "nothing reached ARM"
    );
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_setting_reaches_the_container_and_nowhere_else() {
    let (dir, emulator, secrets) = setup().await;
    let token = scenarios::marker("seed-token");
    let serve = Serve::spawn(
        dir.path(),
        &emulator.base_url(),
        &secrets,
        &[
            ("BERTH_SECURE_VALUE_FROM", "OTHER,SEED_*"),
            ("SEED_TOKEN", &token),
        ],
    )
    .await;

    let spec = reading(
        "seeded",
        "SEED_TOKEN",
        "printf %s \"$TOKEN\" > /mnt/share/token.txt; echo wrote the token",
    );
    let id = scenarios::start_deployment(&serve, &spec).await;
    let status = scenarios::wait_done(&serve, &id).await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");
    let share = scenarios::share(&serve, "teststore", "data");
    assert_eq!(
        std::fs::read_to_string(share.join("token.txt")).unwrap(),
        token,
        "the container got the setting's value"
    );

    assert!(!status.to_string().contains(&token), "status: {status}");
    let (code, logs) = scenarios::logs(&serve, &id, "work", "main").await;
    assert_eq!((code, logs.as_str()), (200, "wrote the token\n"));
    let (_, history) = scenarios::get(&serve, &format!("/deployments/{id}/history")).await;
    assert!(!history.to_string().contains(&token), "history: {history}");
    let (_, list) = scenarios::get(&serve, "/deployments").await;
    assert!(!list.to_string().contains(&token), "list: {list}");
    serve.stop();
    // The checkpoint keeps the name of the setting, never its value.
    let mut stored = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("berth.db") {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{name} holds the value"
            );
            stored += bytes.len();
        }
    }
    assert!(stored > 0, "the checkpoint was read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_dropped_from_the_list_before_the_create_fails_the_attempt_unread() {
    let (dir, emulator, secrets) = setup().await;
    let token = scenarios::marker("dropped-token");
    // The first Berth accepts the spec but cannot reach ARM (nothing listens there), so the
    // create waits; the operator then removes the name from the list and Berth restarts.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let first = Serve::spawn(
        dir.path(),
        &nowhere,
        &secrets,
        &[
            ("BERTH_SECURE_VALUE_FROM", "SEED_TOKEN"),
            ("SEED_TOKEN", &token),
        ],
    )
    .await;
    let id =
        scenarios::start_deployment(&first, &reading("dropped", "SEED_TOKEN", "echo $TOKEN")).await;
    scenarios::wait_for(&first, &id, Duration::from_secs(20), |s| {
        s["phase"] == "Creating"
    })
    .await;
    first.stop();

    let second = Serve::spawn(
        dir.path(),
        &emulator.base_url(),
        &secrets,
        &[("BERTH_SECURE_VALUE_FROM", "OTHER"), ("SEED_TOKEN", &token)],
    )
    .await;
    let status = scenarios::wait_done(&second, &id).await;
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    let error = status["error"].as_str().unwrap();
    assert!(error.contains(FIELD), "{error}");
    assert!(error.contains("BERTH_SECURE_VALUE_FROM"), "{error}");
    assert!(!status.to_string().contains(&token), "{status}");
    assert_eq!(
        puts_and_creates(&emulator.stats()),
        (0, 0),
        "nothing reached ARM"
    );
    second.stop();
}

/// Posts a raw body; returns (status, problem detail).
async fn post_raw(h: &Harness, content_type: &str, body: String) -> (u16, String) {
    let response = h
        .http
        .post(format!("{}/api/deployments", h.api))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["detail"].as_str().unwrap_or("").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_that_would_fail_at_create_are_refused_at_submit_with_no_arm_call() {
    let h = Harness::start().await;
    let mount = "groups[0].properties.containers[0].properties.volumeMounts[0].mountPath";
    let mut cases: Vec<(String, String, &str)> = Vec::new();
    for path in [
        "/",
        "//",
        "/proc",
        "/proc/self",
        "/sys/fs/cgroup",
        "/dev",
        "/dev/sda",
        "/a/../proc",
        "/./sys",
    ] {
        let mut spec = scenarios::job("holes", "true");
        spec["groups"][0]["properties"]["containers"][0]["properties"]["volumeMounts"][0]["mountPath"] =
            json!(path);
        cases.push((spec.to_string(), mount.to_owned(), "application/json"));
    }
    let secret = "groups[0].properties.volumes[0].secret";
    for file in ["../escape", "a/b", "a\\b", "..", ".", "", "..hidden"] {
        let mut spec = scenarios::job("holes", "true");
        spec["groups"][0]["properties"]["volumes"][0] =
            json!({ "name": "share", "secret": { file: "aGk=" } });
        cases.push((spec.to_string(), secret.to_owned(), "application/json"));
    }
    // The same key twice: serde_json keeps the last, a reader that keeps the first sees another
    // spec.
    let image = "groups[0].properties.containers[0].properties.image";
    let twice = scenarios::job("holes", "true").to_string().replace(
        "\"image\":\"busybox\"",
        "\"image\":\"busybox\",\"image\":\"evil\"",
    );
    assert!(twice.contains("evil"));
    cases.push((twice, image.to_owned(), "application/json"));
    let top = r#"{"id":"holes","groups":[],"id":"other"}"#.to_owned();
    cases.push((top, "id".to_owned(), "application/json"));
    let yaml = "name: holes\nproperties:\n  restartPolicy: Never\n  containers:\n  - name: main\n    properties:\n      image: busybox\n      image: evil\n      resources:\n        requests:\n          cpu: 1\n          memoryInGB: 1\n";
    cases.push((yaml.to_owned(), image.to_owned(), "application/yaml"));

    for (body, field, content_type) in cases {
        let (status, detail) = post_raw(&h, content_type, body.clone()).await;
        assert_eq!(status, 400, "{body}: {detail}");
        assert!(
            detail.starts_with(&format!("{field}: ")),
            "{body}: expected {field}, got {detail}"
        );
    }
    let stats = h.stats();
    assert_eq!(
        stats.requests.values().sum::<u64>(),
        0,
        "no ARM call: {:?}",
        stats.requests
    );
    assert!(stats.creates_by_name.is_empty());
}
