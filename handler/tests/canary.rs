//! The secrets canary: specs carrying known secret strings in every secret field run to the end
//! (with a retry, so every secret is used twice), then every byte Berth stored and every log line
//! it wrote is searched for them, plain, base64 and JSON-escaped: zero hits. On both backends:
//! on SQLite the database files, on Azurite every file of its data folder (blobs, queue messages
//! and its own metadata), and in both cases the emulator's data folder (its group records, logs,
//! scratch volumes and shares).

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Backend, Harness};
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

/// The log output of this test process, captured once for both backends' runs (which take turns).
fn captured_logs() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .init();
            captured
        })
        .clone()
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const ENV: &str = "canary-env-7f3a91";
const REGISTRY: &str = "canary-registry-91b2c4";
const STORAGE_KEY: &str = "canary-storage-key-c4d5e6";
const SECRET_FILE: &str = "canary-secret-file-e6f7a8";

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every way a secret could be written down.
fn forms(secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        serde_json::to_string(secret)
            .unwrap()
            .trim_matches('"')
            .to_owned(),
    ]
}

fn hits(haystack: &[u8], secrets: &[String]) -> Vec<String> {
    let text = String::from_utf8_lossy(haystack);
    secrets
        .iter()
        .flat_map(|s| forms(s))
        .filter(|form| text.contains(form.as_str()))
        .collect()
}

/// Every file under `root`, with its bytes.
fn files_under(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                folders.push(entry.path());
            } else if kind.is_file() {
                // A file may vanish between listing and reading (Azurite compacts, the emulator
                // removes a deleted group's scratch): what is gone holds nothing.
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    files.push((entry.path(), bytes));
                }
            }
        }
    }
    files
}

/// Every run of base64 characters in `bytes` (split at padding, so that messages written one
/// after the other come apart), decoded: queue messages are stored base64-encoded, where a secret
/// inside a larger message would not show as the base64 of the secret alone.
fn base64_runs(bytes: &[u8]) -> Vec<u8> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let mut decoded = Vec::new();
    let is_base64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    for run in bytes.split(|b| !is_base64(b)).filter(|run| run.len() >= 8) {
        if let Ok(plain) = lenient.decode(run) {
            decoded.extend(plain);
            decoded.push(b'\n');
        }
    }
    decoded
}

/// The files under `root` holding any form of any secret (also inside base64), each with what
/// it holds.
fn files_with_hits(root: &Path, secrets: &[String]) -> Vec<String> {
    files_under(root)
        .into_iter()
        .filter_map(|(path, mut bytes)| {
            bytes.extend(base64_runs(&bytes));
            let found = hits(&bytes, secrets);
            (!found.is_empty()).then(|| format!("{}: {found:?}", path.display()))
        })
        .collect()
}

async fn no_secret_reaches_storage_logs_or_responses(backend: Backend) {
    let captured = captured_logs();
    let logs_before = captured.0.lock().unwrap().len();
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    // Not secret, stored with the spec: found where the secrets are searched for, so the search
    // reads the bytes Berth wrote (Azurite's data folder is shared by every test of a run).
    let visible = common::unique("canary-visible");
    // Its own id, found in the step messages (Azurite keeps queue messages in files as well).
    let id = common::unique("canary");
    // Fails on the first attempt (after checking every secret arrived, by digest: the command is
    // no secret field), succeeds on the second.
    let script = format!(
        "test \"$(printf %s \"$TOKEN\" | sha256sum | cut -c1-64)\" = {} && \
         test \"$(sha256sum < /mnt/secrets/token | cut -c1-64)\" = {} || exit 9; \
         if [ -f /mnt/share/second ]; then echo second attempt; else touch /mnt/share/second; echo first attempt; exit 1; fi",
        sha256(ENV),
        sha256(SECRET_FILE)
    );
    let spec = json!({
        "id": id,
        "retry": { "maxAttempts": 2, "backoff": "PT0.1S" },
        "tags": { "canary": visible },
        // Never sent (no group fails): its key is made, sealed and answered once all the same.
        "notify": [{ "url": "https://hooks.example.com/canary", "on": ["GroupFailed"] }],
        "groups": [{ "name": "work", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["/bin/sh", "-c", script],
                "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } },
                "environmentVariables": [{ "name": "TOKEN", "secureValue": ENV }],
                "volumeMounts": [
                    { "name": "share", "mountPath": "/mnt/share" },
                    { "name": "secrets", "mountPath": "/mnt/secrets" } ] } }],
            "imageRegistryCredentials": [{ "server": "registry.example.com", "username": "robot", "password": REGISTRY }],
            "volumes": [
                { "name": "share", "azureFile": { "shareName": "canary", "storageAccountName": "canarystore", "storageAccountKey": STORAGE_KEY } },
                { "name": "secrets", "secret": { "token": STANDARD.encode(SECRET_FILE) } } ] } }]
    });
    let (code, accepted) = h.submit(&spec).await;
    assert_eq!(code, 202, "{accepted}");
    let status = h.wait_done(&id).await;
    assert_eq!(
        status["runtimeStatus"], "Succeeded",
        "both attempts used the secrets: {status}"
    );
    assert_eq!(status["attempt"], 2);

    let tokens = vec![
        h.token(&id, "completed").await,
        h.token(&id, "heartbeat").await,
    ];
    let mut secrets: Vec<String> = [ENV, REGISTRY, STORAGE_KEY, SECRET_FILE]
        .iter()
        .map(|s| s.to_string())
        .collect();
    secrets.extend(tokens);
    // The notification key is answered once, in the `202`, and found nowhere else.
    let mut accepted = accepted;
    let notify_key = accepted
        .as_object_mut()
        .unwrap()
        .remove("notifySecret")
        .unwrap();
    secrets.push(notify_key.as_str().unwrap().to_owned());

    // API responses.
    let mut responses = accepted.to_string();
    let paths = [format!("/{id}"), format!("/{id}/history"), String::new()];
    for path in paths {
        responses += &h.text(&format!("/api/deployments{path}")).await;
    }
    assert_eq!(
        hits(responses.as_bytes(), &secrets),
        Vec::<String>::new(),
        "in API responses"
    );

    // Every byte Berth stored: the SQLite files (in the harness's folder), or Azurite's data folder.
    let store = match backend {
        Backend::Sqlite => h.dir.path().to_path_buf(),
        Backend::Azurite => common::azurite_data().expect("Azurite ran this test"),
    };
    let stored = files_under(&store);
    let plain = |bytes: &[u8]| String::from_utf8_lossy(bytes).contains(visible.as_str());
    assert!(
        stored.iter().any(|(_, bytes)| plain(bytes)),
        "the spec's tag {visible} was found in {} files under {}, so the search reads what Berth stored",
        stored.len(),
        store.display()
    );
    if backend == Backend::Azurite {
        assert!(
            stored.iter().any(|(path, bytes)| {
                path.to_string_lossy().contains("queuestorage")
                    && String::from_utf8_lossy(&base64_runs(bytes)).contains(id.as_str())
            }),
            "a step message of {id} was found in Azurite's queue files, so they are searched too"
        );
    }
    assert_eq!(
        files_with_hits(&store, &secrets),
        Vec::<String>::new(),
        "in {backend:?}'s storage"
    );
    // The emulator's data folder: group records, container logs, scratch volumes, shares.
    let emulator = h.dir.path().join("aci");
    assert!(
        files_under(&emulator)
            .iter()
            .any(|(path, _)| path.ends_with("second")),
        "the emulator's folder holds the share the job wrote to"
    );
    assert_eq!(
        files_with_hits(&emulator, &secrets),
        Vec::<String>::new(),
        "in the emulator's data folder"
    );

    // Every log line Berth wrote (at debug level).
    let logs = captured.0.lock().unwrap()[logs_before..].to_vec();
    assert!(
        String::from_utf8_lossy(&logs).contains("container group created"),
        "logs were captured"
    );
    assert_eq!(hits(&logs, &secrets), Vec::<String>::new(), "in our logs");
}

on_both_backends!(no_secret_reaches_storage_logs_or_responses);
