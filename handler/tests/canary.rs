//! The secrets canary: specs carrying known secret strings in every secret field run to the end
//! (with a retry, so every secret is used twice), then every byte Berth stored and every log line
//! it wrote is searched for them, plain, base64 and JSON-escaped: zero hits.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::Harness;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_storage_logs_or_responses() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let h = Harness::start().await;
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
        "id": "canary-1",
        "retry": { "maxAttempts": 2, "backoff": "PT0.1S" },
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
    let status = h.wait_done("canary-1").await;
    assert_eq!(
        status["runtimeStatus"], "Succeeded",
        "both attempts used the secrets: {status}"
    );
    assert_eq!(status["attempt"], 2);

    let keys = &h.runtime.driver.keys;
    let tokens = vec![
        keys.token("canary-1", "completed"),
        keys.token("canary-1", "heartbeat"),
    ];
    let mut secrets: Vec<String> = [ENV, REGISTRY, STORAGE_KEY, SECRET_FILE]
        .iter()
        .map(|s| s.to_string())
        .collect();
    secrets.extend(tokens);

    // API responses.
    let mut responses = accepted.to_string();
    for path in ["", "/history"] {
        responses += &h
            .http
            .get(format!("{}/api/deployments/canary-1{path}", h.api))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    responses += &h
        .http
        .get(format!("{}/api/deployments", h.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        hits(responses.as_bytes(), &secrets),
        Vec::<String>::new(),
        "in API responses"
    );

    // Every byte of the SQLite files.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("berth.db")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(stored.len() > 4096, "the database was read");
    assert_eq!(hits(&stored, &secrets), Vec::<String>::new(), "in SQLite");

    // Every log line Berth wrote (at debug level).
    let logs = captured.0.lock().unwrap().clone();
    assert!(
        String::from_utf8_lossy(&logs).contains("container group created"),
        "logs were captured"
    );
    assert_eq!(hits(&logs, &secrets), Vec::<String>::new(), "in our logs");
}
