//! The real `berth` binary against a real `handler dev` (its emulator running the jobs as local
//! processes), and against hostile servers of the test's own.
//!
//! `handler dev` is the `handler` binary the workspace builds beside `berth`: `cargo test
//! --workspace` (what `bin/test` runs) builds both, and so does `cargo test -p handler -p
//! berth-cli`.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use berth_test_support::free_port;

/// The `handler` binary beside `berth`.
fn handler_binary() -> PathBuf {
    let berth = Path::new(env!("CARGO_BIN_EXE_berth"));
    let handler = berth.with_file_name("handler");
    assert!(
        handler.exists(),
        "{} is missing: build it with the tests (`cargo test --workspace`, or \
         `cargo test -p handler -p berth-cli`)",
        handler.display()
    );
    handler
}

/// `handler dev` on fresh ports, its data in a temporary folder (the working folder of the
/// `berth` commands run against it).
struct Dev {
    url: String,
    key: String,
    _dev: berth_test_support::dev::Dev,
    dir: tempfile::TempDir,
}

impl Dev {
    fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join(".berth");
        let dev = berth_test_support::dev::Dev::start(&handler_binary(), &data, &[], &[]);
        Dev {
            url: dev.url(""),
            key: dev.key(),
            _dev: dev,
            dir,
        }
    }

    /// `berth ARGS` against this Berth, with its key.
    fn berth(&self, args: &[&str]) -> Output {
        berth(self.dir.path(), &self.url, Some(&self.key), args)
    }

    /// Writes a spec file in the data folder's parent.
    fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }
}

/// `berth ARGS` in `dir` with `BERTH_URL` and `BERTH_KEY` set, and nothing else of Berth's.
fn berth(dir: &Path, url: &str, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .args(args)
        .current_dir(dir)
        .env("BERTH_URL", url)
        .env_remove("BERTH_KEY")
        .env_remove("BERTH_TIMEOUT");
    if let Some(key) = key {
        command.env("BERTH_KEY", key);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap()
}

/// Asserts that a command failed with exit code 3 and an error that starts with `start`.
fn refused(output: &Output, start: &str) {
    let message = stderr(output);
    assert_eq!(code(output), 3, "{message}");
    assert!(message.starts_with(start), "{message}");
}

/// Asserts that a command failed with exit code 3 and an error that says `part`.
fn refused_saying(output: &Output, part: &str) {
    let message = stderr(output);
    assert_eq!(code(output), 3, "{message}");
    assert!(message.contains(part), "{message}");
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

/// A one-group job running `script`.
fn job(id: &str, script: &str) -> String {
    json!({
        "id": id,
        "retry": { "maxAttempts": 1 },
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["/bin/sh", "-c", script],
            "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }]
    })
    .to_string()
}

#[test]
fn submit_wait_prints_progress_and_exits_by_how_the_job_ended() {
    let dev = Dev::start();
    let ok = dev.file("ok.json", &job("cli-ok", "echo fine"));
    let started = Instant::now();
    let done = dev.berth(&["submit", &ok, "--wait"]);
    assert_eq!(code(&done), 0, "{}", stderr(&done));
    assert!(started.elapsed() < Duration::from_secs(60));
    let progress = stderr(&done);
    assert!(progress.contains("submitted cli-ok"), "{progress}");
    assert!(progress.contains("Succeeded · Done · work:"), "{progress}");
    assert!(
        stdout(&done).starts_with("cli-ok  Succeeded (Done)"),
        "{}",
        stdout(&done)
    );

    let failing = dev.file("fail.json", &job("cli-fail", "echo broken; exit 3"));
    let failed = dev.berth(&["submit", &failing, "--wait", "--json"]);
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("Failed · Done"),
        "{}",
        stderr(&failed)
    );
    let status = json_of(&failed);
    assert_eq!(status["runtimeStatus"], "Failed");
    assert_eq!(status["groups"][0]["containers"][0]["exitCode"], 3);

    // Terminated: the same spec again is the same deployment, and waiting on it says how it ended.
    let long = dev.file("long.json", &job("cli-long", "sleep 600"));
    let submitted = dev.berth(&["submit", &long]);
    assert_eq!(code(&submitted), 0, "{}", stderr(&submitted));
    assert!(stdout(&submitted).starts_with("cli-long: Pending\nstatus: http://"));
    let terminated = dev.berth(&["terminate", "cli-long", "--reason", "enough"]);
    assert_eq!(stdout(&terminated), "terminating cli-long\n");
    let ended = dev.berth(&["submit", &long, "--wait"]);
    assert_eq!(code(&ended), 2, "{}", stderr(&ended));
    assert!(stdout(&ended).starts_with("cli-long  Terminated"));

    // ACI YAML goes as YAML.
    let yaml = dev.file(
        "job.yml",
        "name: cli-yaml\nproperties:\n  restartPolicy: Never\n  osType: Linux\n  containers:\n  \
         - name: hello\n    properties:\n      image: busybox\n      command: [/bin/sh, -c, 'echo from yaml']\n      \
         resources:\n        requests:\n          cpu: 0.5\n          memoryInGB: 0.5\n",
    );
    let from_yaml = dev.berth(&["submit", &yaml, "--wait", "--json"]);
    assert_eq!(code(&from_yaml), 0, "{}", stderr(&from_yaml));
    assert_eq!(json_of(&from_yaml)["groups"][0]["name"], "cli-yaml");
}

#[test]
fn templates_are_put_listed_read_and_started_with_typed_parameters() {
    let dev = Dev::start();
    let mut template: Value = serde_json::from_str(&job(
        "unused",
        "echo {{ parameters.word }} x{{ parameters.n }}",
    ))
    .unwrap();
    template.as_object_mut().unwrap().remove("id");
    template["parameters"] = json!({
        "word": { "type": "string" },
        "n": { "type": "number", "default": 1 },
        "loud": { "type": "boolean", "default": true },
    });
    template["captureLogs"] = json!("{{ parameters.loud }}");
    let file = dev.file("greet.json", &template.to_string());
    let put = dev.berth(&["template", "put", "greet", &file]);
    assert_eq!(
        stdout(&put),
        "greet: version 1 stored\n",
        "{}",
        stderr(&put)
    );
    let again = dev.berth(&["template", "put", "greet", &file]);
    assert_eq!(stdout(&again), "greet: version 1 unchanged\n");
    assert_eq!(stdout(&dev.berth(&["template", "list"])), "greet\t1\n");
    let got = json_of(&dev.berth(&["template", "get", "greet", "--version", "1"]));
    assert_eq!(got["parameters"]["n"]["type"], "number");

    let args = [
        "submit",
        "--template",
        "greet",
        "--id",
        "cli-tpl",
        "-p",
        "word=hello",
    ];
    let done = dev.berth(&[&args[..], &["-p", "n=2", "-p", "loud=true", "--wait"]].concat());
    assert_eq!(code(&done), 0, "{}", stderr(&done));
    let logs = dev.berth(&["logs", "cli-tpl", "work", "main"]);
    assert_eq!(stdout(&logs), "hello x2\n");
    let status = json_of(&dev.berth(&["status", "cli-tpl", "--json"]));
    assert_eq!(status["template"], json!({ "name": "greet", "version": 1 }));

    refused_saying(
        &dev.berth(&["submit", "--template", "greet", "-p", "n=two"]),
        "-p n",
    );
    refused_saying(
        &dev.berth(&["submit", "--template", "greet"]),
        "parameters.word",
    );
    refused_saying(
        &dev.berth(&["submit", "--template", "nope", "-p", "a=b"]),
        "template",
    );
    let deleted = dev.berth(&["template", "delete", "greet"]);
    assert_eq!(code(&deleted), 0, "{}", stderr(&deleted));
    assert_eq!(stdout(&dev.berth(&["template", "list"])), "");
}

#[test]
fn schedules_are_put_listed_read_paused_resumed_and_deleted() {
    let dev = Dev::start();
    let mut spec: Value = serde_json::from_str(&job("unused", "true")).unwrap();
    spec.as_object_mut().unwrap().remove("id");
    let schedule = json!({ "cron": "0 3 * * *", "timeZone": "Europe/Amsterdam",
        "concurrencyPolicy": "forbid", "startingDeadline": "PT10M", "spec": spec });
    let file = dev.file("nightly.json", &schedule.to_string());
    let put = dev.berth(&["schedule", "put", "nightly", &file]);
    assert_eq!(code(&put), 0, "{}", stderr(&put));
    let shown = stdout(&put);
    assert!(
        shown.starts_with(
            "nightly: created\n\
             nightly  Active  \"0 3 * * *\" in Europe/Amsterdam, policy forbid, starting deadline PT10M\n\
             \x20 starts: spec: work\n\
             \x20 next run: 20"
        ),
        "{shown}"
    );
    assert!(shown.contains(" (nightly-20"), "{shown}");
    assert!(shown.ends_with("  missed runs: 0\n"), "{shown}");
    let again = dev.berth(&["schedule", "put", "nightly", &file]);
    assert!(
        stdout(&again).starts_with("nightly: replaced\n"),
        "{}",
        stdout(&again)
    );

    let table = stdout(&dev.berth(&["schedule", "list"]));
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "NAME     STATE   CRON       TIME ZONE         POLICY  NEXT RUN                  LAST RUN  MISSED",
        "{table}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("nightly  Active  0 3 * * *  Europe/Amsterdam  forbid  20"),
        "{table}"
    );
    assert!(row.ends_with("Z  -         0"), "{table}");
    let listed = json_of(&dev.berth(&["schedule", "list", "--json"]));
    assert_eq!(listed["schedules"][0]["name"], "nightly");

    let got = json_of(&dev.berth(&["schedule", "get", "nightly", "--json"]));
    assert_eq!(got["concurrencyPolicy"], "forbid");
    assert_eq!(got["target"]["spec"]["groups"][0]["name"], "work");
    let text = stdout(&dev.berth(&["schedule", "get", "nightly"]));
    assert!(text.starts_with("nightly  Active  "), "{text}");

    // Paused: the API says so and there is no next run; resumed: there is one again.
    let paused = dev.berth(&["schedule", "pause", "nightly"]);
    assert_eq!(code(&paused), 0, "{}", stderr(&paused));
    assert!(
        stdout(&paused).starts_with("nightly  Paused  "),
        "{}",
        stdout(&paused)
    );
    assert!(!stdout(&paused).contains("next run"), "{}", stdout(&paused));
    let got = json_of(&dev.berth(&["schedule", "get", "nightly", "--json"]));
    assert_eq!(got["suspended"], true);
    assert!(got["nextRun"].is_null(), "{got}");
    let resumed = json_of(&dev.berth(&["schedule", "resume", "nightly", "--json"]));
    assert_eq!(resumed["suspended"], false);
    assert!(resumed["nextRun"].as_str().is_some(), "{resumed}");
    let got = json_of(&dev.berth(&["schedule", "get", "nightly", "--json"]));
    assert_eq!(got["suspended"], false);

    let deleted = dev.berth(&["schedule", "delete", "nightly"]);
    assert_eq!(
        stdout(&deleted),
        "deleted nightly\n",
        "{}",
        stderr(&deleted)
    );
    let listed = json_of(&dev.berth(&["schedule", "list", "--json"]));
    assert_eq!(listed["schedules"], json!([]));

    // A file that cannot be read, one Berth refuses, a name it refuses, a schedule not there.
    refused(
        &dev.berth(&["schedule", "put", "nightly", "no-such-file.json"]),
        "error: no-such-file.json: cannot read: ",
    );
    let bad = dev.file(
        "bad.json",
        &json!({ "cron": "61 * * * *", "spec": spec }).to_string(),
    );
    let answer = dev.berth(&["schedule", "put", "nightly", &bad]);
    refused(&answer, "error: Invalid schedule: cron: ");
    assert!(
        stderr(&answer).ends_with("(HTTP 400)\n"),
        "{}",
        stderr(&answer)
    );
    let not_json = dev.file("not.json", "cron: 0 3 * * *");
    refused_saying(
        &dev.berth(&["schedule", "put", "nightly", &not_json]),
        "(HTTP 400)",
    );
    refused(
        &dev.berth(&["schedule", "put", "Bad_Name", &file]),
        "error: Bad request: name: ",
    );
    for command in ["get", "pause", "resume", "delete"] {
        let answer = dev.berth(&["schedule", command, "nightly"]);
        assert_eq!(
            stderr(&answer),
            "error: Not found: name: no schedule 'nightly' (HTTP 404)\n",
            "{command}"
        );
        assert_eq!(code(&answer), 3, "{command}");
    }
    assert_eq!(code(&dev.berth(&["schedule", "list", "extra"])), 3);
}

#[test]
fn status_list_history_raise_terminate_and_purge_print_text_or_the_apis_json() {
    let dev = Dev::start();
    let spec = dev.file("long.json", &job("cli-ops", "echo up; sleep 600"));
    let submitted = dev.berth(&["submit", &spec, "--json"]);
    let accepted = json_of(&submitted);
    assert_eq!(accepted["id"], "cli-ops");
    assert!(
        accepted["statusQueryGetUri"]
            .as_str()
            .unwrap()
            .ends_with("/api/deployments/cli-ops")
    );

    let status = dev.berth(&["status", "cli-ops"]);
    assert_eq!(code(&status), 0);
    assert!(
        stdout(&status).starts_with("cli-ops  "),
        "{}",
        stdout(&status)
    );
    assert!(stdout(&status).contains("group work: "));
    assert_eq!(
        json_of(&dev.berth(&["status", "cli-ops", "--json"]))["id"],
        "cli-ops"
    );

    let raised = dev.berth(&["raise", "cli-ops", "go", "--data", r#"{"n": 1}"#]);
    assert_eq!(
        stdout(&raised),
        "raised go on cli-ops\n",
        "{}",
        stderr(&raised)
    );
    let raised = dev.berth(&["raise", "cli-ops", "again", "--json"]);
    assert_eq!(json_of(&raised)["accepted"], true);
    refused(
        &dev.berth(&["raise", "cli-ops", "go", "--data", "{nope"]),
        "error: --data: not JSON",
    );

    // Not finished: purge is refused with the API's problem.
    refused(
        &dev.berth(&["purge", "cli-ops"]),
        "error: Conflict: id: deployment 'cli-ops' is Running",
    );

    let terminated = dev.berth(&["terminate", "cli-ops", "--json"]);
    assert_eq!(json_of(&terminated)["accepted"], true);
    let deadline = Instant::now() + Duration::from_secs(60);
    while json_of(&dev.berth(&["status", "cli-ops", "--json"]))["phase"] != "Done" {
        assert!(Instant::now() < deadline, "not done in time");
        std::thread::sleep(Duration::from_millis(200));
    }
    let table = stdout(&dev.berth(&["list"]));
    let mut lines = table.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("ID       STATUS      PHASE  CREATED"),
        "{table}"
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("cli-ops  Terminated  Done   20"), "{table}");
    // A group stopped by terminate did not succeed: its result is `Failed` (its state `Deleted`).
    assert!(row.ends_with("work:Failed"), "{table}");
    let listed = json_of(&dev.berth(&["list", "--status", "Terminated", "--json"]));
    assert_eq!(listed["deployments"][0]["id"], "cli-ops");
    let none = json_of(&dev.berth(&["list", "--status", "Succeeded", "--json"]));
    assert_eq!(none["deployments"], json!([]));
    refused(
        &dev.berth(&["list", "--status", "Sleeping"]),
        "error: Bad request: status: 'Sleeping'",
    );

    let history = stdout(&dev.berth(&["history", "cli-ops"]));
    assert!(history.starts_with("TIME "), "{history}");
    for event in ["DeploymentAccepted", "GroupCreated", "Terminated"] {
        assert!(history.contains(event), "{event} in {history}");
    }
    let events = json_of(&dev.berth(&["history", "cli-ops", "--json"]));
    assert_eq!(events["id"], "cli-ops");
    assert!(events["history"].as_array().unwrap().len() >= 3);

    let purged = dev.berth(&["purge", "cli-ops", "--json"]);
    assert_eq!(json_of(&purged)["instancesDeleted"], 1);
    let gone = dev.berth(&["status", "cli-ops"]);
    assert_eq!(code(&gone), 3);
    assert_eq!(
        stderr(&gone),
        "error: Not found: id: no deployment 'cli-ops' (HTTP 404)\n"
    );
}

#[test]
fn logs_are_read_live_followed_to_the_end_and_saved() {
    let dev = Dev::start();
    let script = "i=0; while [ $i -lt 6 ]; do i=$((i+1)); echo line $i; sleep 1; done";
    let spec = dev.file("tick.json", &job("cli-logs", script));
    assert_eq!(code(&dev.berth(&["submit", &spec])), 0);
    let all: String = (1..=6).map(|i| format!("line {i}\n")).collect();
    // Live: the first line is there before the job ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = dev.berth(&["logs", "cli-logs", "work", "main", "--tail", "1"]);
        if code(&live) == 0 && stdout(&live).starts_with("line ") {
            assert_eq!(stdout(&live).lines().count(), 1);
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&live));
        std::thread::sleep(Duration::from_millis(200));
    }
    let followed = dev.berth(&["logs", "cli-logs", "work", "main", "--follow"]);
    assert_eq!(code(&followed), 0, "{}", stderr(&followed));
    assert_eq!(stdout(&followed), all);
    let saved = dev.berth(&["logs", "cli-logs", "work", "main", "--json"]);
    let lines: Vec<Value> = stdout(&saved)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[5], "line 6");
    refused(
        &dev.berth(&["logs", "cli-logs", "work", "other"]),
        "error: Not found: container: no saved logs",
    );
    let bad_tail = dev.berth(&["logs", "cli-logs", "work", "main", "--tail", "0"]);
    assert!(stderr(&bad_tail).starts_with("error: Bad request: tail: "));
}

#[test]
fn errors_are_printed_plainly_and_exit_3() {
    let dev = Dev::start();
    let bad_key = berth(dev.dir.path(), &dev.url, Some("wrong"), &["list"]);
    assert_eq!(code(&bad_key), 3);
    assert_eq!(
        stderr(&bad_key),
        "error: Unauthorized: x-functions-key: missing or wrong API key (HTTP 401)\n"
    );
    assert!(!stderr(&bad_key).contains(&dev.key));
    let no_key = berth(dev.dir.path(), &dev.url, None, &["list"]);
    assert_eq!(code(&no_key), 3);

    refused(
        &dev.berth(&["submit", "no-such-file.json"]),
        "error: no-such-file.json: cannot read: ",
    );
    let invalid = dev.file(
        "invalid.json",
        &json!({ "groups": [{ "name": "Bad Name", "properties": {} }] }).to_string(),
    );
    let answer = dev.berth(&["submit", &invalid, "--wait"]);
    assert_eq!(code(&answer), 3);
    let message = stderr(&answer);
    assert!(
        message.starts_with("error: Invalid deployment spec: groups[0].name: ")
            && message.ends_with("(HTTP 400)\n"),
        "{message}"
    );

    let nowhere = format!("http://127.0.0.1:{}", free_port());
    refused(
        &berth(dev.dir.path(), &nowhere, None, &["list"]),
        "error: cannot reach Berth at ",
    );
    refused(
        &berth(dev.dir.path(), "127.0.0.1:7071", None, &["list"]),
        "error: --url: ",
    );
    let usage = dev.berth(&["lst"]);
    assert_eq!(code(&usage), 3);
    assert_eq!(code(&dev.berth(&["--help"])), 0);
    for shell in ["bash", "zsh", "fish"] {
        let script = dev.berth(&["completions", shell]);
        assert_eq!(code(&script), 0);
        assert!(stdout(&script).contains("submit"), "{shell}");
    }
}

/// A server on loopback answering every connection with `answer` (or holding it when `None`).
fn hostile(answer: Option<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                match answer {
                    Some(answer) => {
                        let _ = stream.write_all(&answer);
                    }
                    None => std::thread::sleep(Duration::from_secs(120)),
                }
            });
        }
    });
    url
}

#[test]
fn hostile_answers_end_the_command_within_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let run = |url: &str, args: &[&str]| {
        let started = Instant::now();
        let output = berth(dir.path(), url, Some("k"), args);
        (output, started.elapsed())
    };

    // A body larger than any answer Berth gives: refused past the limit, not read to its end.
    let mut huge =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n["
            .to_vec();
    huge.extend(std::iter::repeat_n(b'1', 20 * 1024 * 1024));
    let (output, took) = run(&hostile(Some(huge)), &["list"]);
    refused_saying(&output, "larger than");
    assert!(took < Duration::from_secs(20));

    let html = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n<html>hi</html>".to_vec();
    let (output, _) = run(&hostile(Some(html)), &["status", "x"]);
    refused(&output, "error: the answer (HTTP 200) is not JSON");

    // A redirect elsewhere is not followed (the key would go with it).
    let redirect = b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://192.0.2.1/\r\ncontent-length: 0\r\n\r\n".to_vec();
    let (output, _) = run(&hostile(Some(redirect)), &["list"]);
    refused_saying(&output, "(HTTP 307)");

    // A server that never answers: the exchange ends at --timeout.
    let (output, took) = run(&hostile(None), &["--timeout", "2", "list"]);
    refused_saying(&output, "did not answer in time");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
