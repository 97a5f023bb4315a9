//! The async request-reply pattern with the client the Azure SDKs use for it: azure-core's
//! `LROBasePolling` (from PyPI, unmodified) starts a deployment with `POST` and follows the `202`'s
//! `Location` until the answer is not `202`, as Logic Apps' HTTP action, Data Factory's Web
//! activity and Durable Functions clients do. Before, the status answered `200` while running and
//! such clients stopped at their first poll.
//!
//! The client's virtualenv comes from `tests/clients/venv.sh` (`bin/test` makes it and exports
//! `BERTH_CLIENTS_PYTHON`; without that, the test runs the script itself, which needs PyPI once).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Harness, Options, job};
use serde_json::{Value, json};

const KEY: &str = "lro-key-0c4e1f";

/// The Python with azure-core installed.
fn python() -> PathBuf {
    if let Ok(python) = std::env::var("BERTH_CLIENTS_PYTHON") {
        return PathBuf::from(python);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/clients/venv.sh");
    let output = Command::new(&script).output().unwrap();
    assert!(
        output.status.success(),
        "{} failed (it installs azure-core from PyPI): {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Runs the poller on `start_url` for `spec`; returns its report.
fn poll(start_url: &str, spec: &Value, key: Option<&str>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/clients/lro_poll.py");
    let mut command = Command::new(python());
    command.arg(script).arg(start_url).arg(&file);
    if let Some(key) = key {
        command.arg(key);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "lro_poll.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The statuses of the report's responses, in order.
fn statuses(report: &Value) -> Vec<u64> {
    report["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect()
}

/// 202 … 202 then the end: every answer before the last is a 202 with a Retry-After of 1 to 60 s.
fn assert_polled_to_the_end(report: &Value, last: u64) {
    let seen = statuses(report);
    eprintln!("LROBasePolling saw {seen:?}");
    assert!(
        seen.len() >= 3,
        "the poller polled at least once while it ran: {report}"
    );
    assert_eq!(*seen.last().unwrap(), last, "{report}");
    for response in &report["responses"].as_array().unwrap()[..seen.len() - 1] {
        assert_eq!(response["status"], 202, "{report}");
        let after: u64 = response["retryAfter"].as_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&after), "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lro_base_polling_follows_a_job_to_its_end_with_a_key_in_the_header_or_the_code() {
    let h = Harness::with(Options {
        settings: vec![("BERTH_API_KEY", KEY.into())],
        ..Options::default()
    })
    .await;
    let api = h.api.clone();
    let (ok, failing) = (job("lro-ok", "sleep 2; echo done"), {
        let mut spec = job("lro-fail", "sleep 2; exit 3");
        spec["retry"] = json!({ "maxAttempts": 1 });
        spec
    });
    let reports = tokio::task::spawn_blocking(move || {
        (
            // The key as a header, sent by the poller on every request.
            poll(&format!("{api}/api/deployments"), &ok, Some(KEY)),
            // The key as `code`: the poller follows Location alone, which must carry it.
            poll(
                &format!(
                    "{api}/api/deployments?code={KEY}&returnInternalServerErrorOnFailure=true"
                ),
                &failing,
                None,
            ),
        )
    })
    .await
    .unwrap();
    let (succeeded, failed) = reports;
    assert_polled_to_the_end(&succeeded, 200);
    assert_eq!(
        succeeded["result"]["runtimeStatus"], "Succeeded",
        "{succeeded}"
    );
    assert_eq!(succeeded["result"]["phase"], "Done");
    assert_eq!(succeeded["pollerStatus"], "Succeeded");
    // A failure asked to be one: 500, which the poller raises.
    assert_polled_to_the_end(&failed, 500);
    assert_eq!(failed["error"]["status"], 500, "{failed}");
    let d = h.runtime.driver.load("lro-fail").await.unwrap().unwrap();
    assert_eq!(d.status.as_str(), "Failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lro_base_polling_follows_a_failing_job_without_a_key_and_reads_its_status() {
    let h = Harness::start().await;
    let api = h.api.clone();
    let mut spec = job("lro-nokey", "sleep 1; exit 4");
    spec["retry"] = json!({ "maxAttempts": 1 });
    let report =
        tokio::task::spawn_blocking(move || poll(&format!("{api}/api/deployments"), &spec, None))
            .await
            .unwrap();
    // Without returnInternalServerErrorOnFailure the end is a 200 whose body says Failed.
    assert_polled_to_the_end(&report, 200);
    assert_eq!(report["result"]["runtimeStatus"], "Failed", "{report}");
}
