//! Microsoft's own clients against the real `aci-emulator` binary: the official Python SDK at its
//! default api-version (create and poll, get, paged list, logs, stop, start, restart, a forbidden
//! update, delete) and the Azure CLI's `az container create --file` and `az container export`
//! code (an older apiVersion from the file, and the generic resources path with its empty parent
//! segment). The scripts are in `tests/clients/`; their virtualenvs come from
//! `tests/clients/setup.sh`, which `bin/test` runs. Without them these tests fail, naming it,
//! unless `BERTH_TEST_SKIP=clients` asks to skip them.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::first_line;

/// `tests/clients/`.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The folder holding the `sdk` and `cli` virtualenvs, as `setup.sh --path` reports it; `None`
/// only when they are missing and skipping was asked for.
fn venvs() -> Option<PathBuf> {
    let output = Command::new("bash")
        .arg(clients_dir().join("setup.sh"))
        .arg("--path")
        .output()
        .unwrap();
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        berth_test_support::skip::missing("clients", &why);
        return None;
    }
    Some(PathBuf::from(
        String::from_utf8(output.stdout).unwrap().trim(),
    ))
}

/// A running `aci-emulator` with a token of its own; killed on drop.
struct Emulator {
    child: Child,
    base: String,
    token: String,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Emulator {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token = uuid::Uuid::new_v4().simple().to_string();
        // Two groups a page, so that three make the SDK follow `nextLink`; creates and deletes
        // that take half a second, so that the SDK has to poll.
        let mut child = Command::new(env!("CARGO_BIN_EXE_aci-emulator"))
            .args(["--port", "0", "--page-size", "2", "--creating-ms", "500"])
            .args(["--deleting-ms", "500", "--data-dir"])
            .arg(dir.path())
            .env("ACI_EMULATOR_TOKEN", &token)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (line, stdout) = first_line(&mut child);
        let base = line
            .trim()
            .strip_prefix("aci-emulator: ARM endpoint ")
            .and_then(|rest| rest.strip_suffix(" (bearer token as given)"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Emulator {
            child,
            base,
            token,
            _stdout: stdout,
            _dir: dir,
        }
    }

    /// Runs `script` with the Python of virtualenv `venv` (in `venvs`); its `step value` lines.
    fn run(&self, venvs: &Path, venv: &str, script: &str) -> BTreeMap<String, String> {
        let python = venvs.join(venv).join("bin/python");
        let output = Command::new(python)
            .arg(clients_dir().join(script))
            .env("ACI_ENDPOINT", &self.base)
            .env("ACI_TOKEN", &self.token)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{script} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(step, value)| (step.to_string(), value.to_string()))
            .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every `(step, value)` was printed.
fn check(results: &BTreeMap<String, String>, expected: &[(&str, &str)]) {
    for (step, value) in expected {
        assert_eq!(
            results.get(*step).map(String::as_str),
            Some(*value),
            "{step}: {results:?}"
        );
    }
}

fn seconds(results: &BTreeMap<String, String>, step: &str) -> f64 {
    results[step].parse().unwrap()
}

#[test]
fn the_official_sdk_runs_a_group_through_its_life_at_its_default_api_version() {
    let Some(venvs) = venvs() else { return };
    let emulator = Emulator::start();
    let results = emulator.run(&venvs, "sdk", "sdk.py");
    let expected = [
        ("api-version", "2023-05-01"),
        ("create", "Succeeded"),
        ("get", "Running"),
        ("list", "job,second,third"),
        ("list-all", "3"),
        ("logs", "hello from the sdk"),
        ("stop", "Stopped"),
        ("start", "Running"),
        ("restart", "Succeeded"),
        ("forbidden-update", "InvalidContainerGroupUpdate"),
        ("after-delete", "ResourceNotFound"),
    ];
    check(&results, &expected);
    // The SDK waits `Retry-After` between polls, 30 s without it.
    assert!(seconds(&results, "create-seconds") < 10.0, "{results:?}");
    assert!(seconds(&results, "delete-seconds") < 15.0, "{results:?}");
}

#[test]
fn the_cli_creates_from_an_older_api_version_file_and_exports() {
    let Some(venvs) = venvs() else { return };
    let emulator = Emulator::start();
    let results = emulator.run(&venvs, "cli", "cli.py");
    let expected = [
        ("cli-api-version", "2024-05-01-preview"),
        ("create-from-file", "Succeeded"),
        ("created-port", "8080"),
        ("export-api-version", "2024-05-01-preview"),
        (
            "export-command",
            "/bin/sh -c echo hello from a file; sleep 1000",
        ),
        ("export-instance-view", "False"),
        ("create-from-export", "Succeeded"),
        ("groups", "from-file,round-trip"),
    ];
    check(&results, &expected);
}
