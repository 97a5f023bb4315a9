//! End-to-end tests with real processes under bubblewrap: jobs that write their Azure Files share,
//! exit codes, restart policies, shared `emptyDir`, mounts at paths the host lacks, secrets,
//! limits, and that stop, delete and drop leave no process behind.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use emulator::ImageEntry;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// An `Always` group of one shell container `name` running `script`, with `marker` (`NAME=value`)
/// in its environment so that its processes can be found.
fn marked_service(marker: &str, name: &str, script: &str) -> serde_json::Value {
    let (variable, value) = marker.split_once('=').unwrap();
    group_body(
        "Always",
        json!([shell(
            name,
            script,
            json!([{"name": variable, "value": value}]),
            json!([])
        )]),
        json!([]),
    )
}

fn share(name: &str, share: &str) -> serde_json::Value {
    json!({"name": name, "azureFile": {"shareName": share, "storageAccountName": "acct1", "storageAccountKey": "a2V5"}})
}

#[tokio::test]
async fn a_never_job_writes_its_share_and_succeeds() {
    let harness = Harness::start(|_| {}).await;
    let script = "echo job output; echo hello > /mnt/share/result.txt; \
                  echo 15 > /var/lib/postgresql/data/PG_VERSION; exit 0";
    let body = group_body(
        "Never",
        json!([shell(
            "job",
            script,
            json!([]),
            json!([
                {"name": "share", "mountPath": "/mnt/share"},
                {"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}
            ])
        )]),
        json!([share("share", "results"), share("pgdata", "pgdata")]),
    );
    let created = harness.create("job", &body).await;
    assert_eq!(provisioning(&created), "Pending");
    let done = harness
        .wait_for("job", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    assert_eq!(provisioning(&done), "Succeeded");
    let state = &view(&done, 0)["currentState"];
    assert_eq!(state["state"], "Terminated");
    assert_eq!(state["exitCode"], 0);
    assert_eq!(state["detailStatus"], "Completed");
    assert_eq!(view(&done, 0)["restartCount"], 0);

    let shares = harness.data().join("shares/acct1");
    assert_eq!(
        std::fs::read_to_string(shares.join("results/result.txt")).unwrap(),
        "hello\n"
    );
    // /var/lib/postgresql does not exist on the host; the mount was made anyway.
    assert!(!std::path::Path::new("/var/lib/postgresql/data/PG_VERSION").exists());
    assert_eq!(
        std::fs::read_to_string(shares.join("pgdata/PG_VERSION")).unwrap(),
        "15\n"
    );
    let (status, logs) = harness.logs("job", "job", "").await;
    assert_eq!(status, 200);
    assert_eq!(logs["content"], "job output\n");
    let stats = harness.stats().await;
    assert_eq!(stats["createsByName"]["job"], 1);
    assert_eq!(stats["liveProcesses"], 0);
    harness.stop().await;
}

#[tokio::test]
async fn a_never_job_exiting_3_fails_with_exit_code_3() {
    let harness = Harness::start(|_| {}).await;
    let body = group_body(
        "Never",
        json!([shell(
            "job",
            "echo failing >&2; exit 3",
            json!([]),
            json!([])
        )]),
        json!([]),
    );
    harness.create("failing", &body).await;
    let done = harness
        .wait_for("failing", WAIT, "Failed", |body| {
            group_state(body) == "Failed"
        })
        .await;
    assert_eq!(provisioning(&done), "Succeeded");
    let state = &view(&done, 0)["currentState"];
    assert_eq!(state["state"], "Terminated");
    assert_eq!(state["exitCode"], 3);
    assert_eq!(state["detailStatus"], "Error");
    let (_, logs) = harness.logs("failing", "job", "").await;
    assert_eq!(logs["content"], "failing\n");
    harness.stop().await;
}

#[tokio::test]
async fn on_failure_restarts_with_a_growing_restart_count_then_succeeds() {
    let harness = Harness::start(|_| {}).await;
    // Fails three times (counting its runs in the share), then succeeds.
    let script = "n=$(cat /mnt/share/runs 2>/dev/null || echo 0); n=$((n+1)); \
                  echo $n > /mnt/share/runs; echo run $n; [ $n -ge 4 ]";
    let body = group_body(
        "OnFailure",
        json!([shell(
            "flaky",
            script,
            json!([]),
            json!([{"name": "share", "mountPath": "/mnt/share"}])
        )]),
        json!([share("share", "flaky")]),
    );
    harness.create("flaky", &body).await;
    let restarting = harness
        .wait_for("flaky", WAIT, "restarted", |body| {
            view(body, 0)["restartCount"].as_i64().unwrap_or(0) >= 1
        })
        .await;
    assert_eq!(group_state(&restarting), "Running");
    let done = harness
        .wait_for("flaky", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    let view = view(&done, 0);
    assert_eq!(view["restartCount"], 3);
    assert_eq!(view["currentState"]["exitCode"], 0);
    assert_eq!(view["previousState"]["state"], "Terminated");
    assert_eq!(view["previousState"]["exitCode"], 1);
    let events = view["events"].to_string();
    assert!(events.contains("BackOff"), "{events}");
    // The log is the last run's, as in ACI.
    let (_, logs) = harness.logs("flaky", "flaky", "").await;
    assert_eq!(logs["content"], "run 4\n");
    harness.stop().await;
}

#[tokio::test]
async fn always_restarts_even_after_exit_zero() {
    let harness = Harness::start(|_| {}).await;
    let body = group_body(
        "Always",
        json!([shell("ticker", "echo tick", json!([]), json!([]))]),
        json!([]),
    );
    harness.create("ticker", &body).await;
    let body = harness
        .wait_for("ticker", WAIT, "restarted twice", |body| {
            view(body, 0)["restartCount"].as_i64().unwrap_or(0) >= 2
        })
        .await;
    assert_eq!(group_state(&body), "Running");
    assert_eq!(provisioning(&body), "Succeeded");
    assert_eq!(view(&body, 0)["previousState"]["exitCode"], 0);
    harness.stop().await;
}

#[tokio::test]
async fn always_containers_share_an_empty_dir_and_the_hosts_loopback() {
    let harness = Harness::start(|_| {}).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let writer = "i=0; while true; do i=$((i+1)); echo $i > /cache/counter; sleep 0.05; done";
    let reader = "while [ ! -s /cache/counter ]; do sleep 0.05; done; \
                  echo reader saw $(cat /cache/counter); sleep 1000";
    let caller = format!("echo hello from the group > /dev/tcp/127.0.0.1/{port}; sleep 1000");
    let mut call = shell("caller", "", json!([]), json!([]));
    call["properties"]["command"] = json!(["/bin/bash", "-c", caller]);
    let body = group_body(
        "Always",
        json!([
            shell(
                "writer",
                writer,
                json!([]),
                json!([{"name": "cache", "mountPath": "/cache"}])
            ),
            shell(
                "reader",
                reader,
                json!([]),
                json!([{"name": "cache", "mountPath": "/cache"}])
            ),
            call,
        ]),
        json!([{"name": "cache", "emptyDir": {}}]),
    );
    harness.create("web", &body).await;
    harness
        .wait_for("web", WAIT, "Running", |body| {
            group_state(body) == "Running" && provisioning(body) == "Succeeded"
        })
        .await;
    eventually("the reader to see the counter", WAIT, || async {
        let (status, logs) = harness.logs("web", "reader", "").await;
        let text = logs["content"].as_str().unwrap_or("");
        if status == 200 && text.starts_with("reader saw ") {
            Ok(())
        } else {
            Err(logs)
        }
    })
    .await;
    let accepted = tokio::task::spawn_blocking(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    });
    assert_eq!(
        tokio::time::timeout(WAIT, accepted).await.unwrap().unwrap(),
        "hello from the group\n"
    );
    harness.stop().await;
}

/// A script that forks grandchildren, some of which leave the process group or the session.
const FORKER: &str = "sleep 1000 & sleep 1000 & (setsid sleep 1000 &); \
                      sh -c 'sleep 1000 & wait' & echo forked; wait";

#[tokio::test]
async fn stop_and_delete_leave_no_process_behind() {
    let harness = Harness::start(|_| {}).await;
    let marker = marker();
    let body = marked_service(&marker, "forker", FORKER);
    harness.create("forker", &body).await;
    wait_processes(&marker, 6, WAIT).await;
    assert_eq!(harness.stats().await["liveProcesses"], 1);

    assert_eq!(harness.post("forker", "stop").await.0, 204);
    wait_no_processes(&marker, Duration::from_secs(5)).await;
    let (_, stopped) = harness.get("forker").await;
    assert_eq!(group_state(&stopped), "Stopped");
    assert_eq!(view(&stopped, 0)["currentState"]["state"], "Terminated");
    assert_eq!(harness.stats().await["liveProcesses"], 0);

    assert_eq!(harness.post("forker", "start").await.0, 202);
    wait_processes(&marker, 6, WAIT).await;
    assert_eq!(harness.delete("forker").await.0, 200);
    wait_no_processes(&marker, Duration::from_secs(5)).await;
    assert_eq!(harness.stats().await["liveProcesses"], 0);
    assert_eq!(harness.get("forker").await.0, 404);
    harness.stop().await;
}

/// Regression: a container killed right after it started used to leave bwrap's namespace init
/// running, orphaned (its parent-death signal was not set yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_deleted_right_after_create_leave_no_process_behind() {
    let harness = Harness::start(|_| {}).await;
    let marker = marker();
    let body = marked_service(&marker, "sleeper", "sleep 1000");
    for round in 0..3u64 {
        let urls: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    "{}?api-version={API}",
                    harness.group_url(&format!("burst-{round}-{i}"))
                )
            })
            .collect();
        let mut creates = Vec::new();
        for url in &urls {
            let (client, url, body) = (harness.client.clone(), url.clone(), body.clone());
            creates.push(tokio::spawn(async move {
                client
                    .put(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        for create in creates {
            assert_eq!(create.await.unwrap(), 201);
        }
        tokio::time::sleep(Duration::from_millis(5 * round)).await;
        let mut deletes = Vec::new();
        for url in &urls {
            let (client, url) = (harness.client.clone(), url.clone());
            deletes.push(tokio::spawn(async move {
                client.delete(url).send().await.unwrap().status().as_u16()
            }));
        }
        for delete in deletes {
            assert_eq!(delete.await.unwrap(), 200);
        }
    }
    wait_no_processes(&marker, Duration::from_secs(5)).await;
    assert_eq!(harness.stats().await["liveProcesses"], 0);
    harness.stop().await;
}

#[tokio::test]
async fn dropping_the_emulator_kills_its_processes() {
    let mut harness = Harness::start(|_| {}).await;
    let marker = marker();
    let body = marked_service(&marker, "forker", FORKER);
    harness.create("dropped", &body).await;
    wait_processes(&marker, 6, WAIT).await;
    drop(harness.running.take());
    wait_no_processes(&marker, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn secrets_read_only_mounts_and_a_clean_environment() {
    let harness = Harness::start(|_| {}).await;
    let token = base64::engine::general_purpose::STANDARD.encode("file-secret-value");
    let script = "cat /etc/app/token; echo; echo env:$API_TOKEN; \
                  (echo x > /mnt/ro/x) 2>/dev/null && echo WRITABLE || echo READONLY; \
                  (echo x > /etc/app/x) 2>/dev/null && echo WRITABLE || echo READONLY; \
                  (echo x > /usr/x) 2>/dev/null && echo WRITABLE || echo READONLY; \
                  echo x > /tmp/x && echo TMP-WRITABLE; env";
    let body = group_body(
        "Never",
        json!([shell(
            "job",
            script,
            json!([{"name": "API_TOKEN", "secureValue": "env-secret-value"}, {"name": "PLAIN", "value": "1"}]),
            json!([
                {"name": "secrets", "mountPath": "/etc/app"},
                {"name": "rshare", "mountPath": "/mnt/ro", "readOnly": true}
            ])
        )]),
        json!([{"name": "secrets", "secret": {"token": token}}, share("rshare", "readonly")]),
    );
    let created = harness.create("secrets", &body).await;
    let done = harness
        .wait_for("secrets", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    let (_, logs) = harness.logs("secrets", "job", "").await;
    let text = logs["content"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..6],
        [
            "file-secret-value",
            "env:env-secret-value",
            "READONLY",
            "READONLY",
            "READONLY",
            "TMP-WRITABLE"
        ]
    );
    let names: Vec<&str> = lines[6..]
        .iter()
        .map(|line| line.split('=').next().unwrap())
        .collect();
    for name in &names {
        assert!(
            ["API_TOKEN", "PLAIN"].contains(name) || SHELL_VARIABLES.contains(name),
            "unexpected variable {name} in {names:?}"
        );
    }
    // No answer ever carries the secrets.
    let (_, list) = harness
        .call(reqwest::Method::GET, &harness.groups_url(), "")
        .await;
    for answer in [&created, &done, &list] {
        let text = answer.to_string();
        assert!(!text.contains("env-secret-value"), "{text}");
        assert!(!text.contains(&token), "{text}");
        assert!(!text.contains("a2V5"), "storage key echoed: {text}");
    }
    assert_eq!(done["properties"]["volumes"][0]["secret"], json!({}));
    harness.stop().await;
}

/// Whether this process may create cgroups under its own v1 memory cgroup (as the emulator does).
fn cgroup_v1_writable() -> bool {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(path) = own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        names
            .split(',')
            .any(|name| name == "memory")
            .then(|| path.to_string())
    }) else {
        return false;
    };
    let probe = std::path::PathBuf::from(format!(
        "/sys/fs/cgroup/memory{}/aci-emulator-probe-{}",
        path.trim_end_matches('/'),
        std::process::id()
    ));
    let writable = std::fs::create_dir(&probe).is_ok();
    let _ = std::fs::remove_dir(&probe);
    writable
}

#[tokio::test]
async fn cpu_and_memory_limits_are_applied_through_cgroups() {
    if !cgroup_v1_writable() {
        let why = "this process may not create cgroups under its v1 memory cgroup";
        return berth_test_support::skip::missing("cgroup", why);
    }
    let harness = Harness::start(|_| {}).await;
    let mut container = shell(
        "limited",
        "cat /proc/self/cgroup; sleep 1000",
        json!([]),
        json!([]),
    );
    container["properties"]["resources"] = json!({"requests": {"cpu": 1, "memoryInGB": 1}, "limits": {"cpu": 0.5, "memoryInGB": 0.25}});
    let body = group_body("Never", json!([container]), json!([]));
    harness.create("limited", &body).await;
    let text = eventually("the container's cgroup listing", WAIT, || async {
        let (status, logs) = harness.logs("limited", "limited", "").await;
        let text = logs["content"].as_str().unwrap_or("").to_string();
        if status == 200 && text.contains(":memory:") {
            Ok(text)
        } else {
            Err(logs)
        }
    })
    .await;
    let path = |controller: &str| {
        text.lines()
            .find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
                names
                    .split(',')
                    .any(|name| name == controller)
                    .then(|| path.to_string())
            })
            .unwrap()
    };
    let memory = path("memory");
    assert!(
        memory.contains("aci-emulator-"),
        "not in an emulator cgroup: {text}"
    );
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes"
    ))
    .unwrap();
    assert_eq!(limit.trim(), (256u64 * 1024 * 1024).to_string());
    let cpu = path("cpu");
    let quota =
        std::fs::read_to_string(format!("/sys/fs/cgroup/cpu{cpu}/cpu.cfs_quota_us")).unwrap();
    assert_eq!(quota.trim(), "50000");
    harness.stop().await;
}

#[tokio::test]
async fn images_without_a_command_run_their_image_map_entry_or_fail_like_aci() {
    let harness = Harness::start(|config| {
        config
            .images
            .insert(
                "example.azurecr.io/job:1",
                ImageEntry {
                    command: vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        "echo mapped $GREETING $EXTRA".into(),
                    ],
                    env: [
                        ("GREETING".to_string(), "from-image".to_string()),
                        ("EXTRA".to_string(), "image".to_string()),
                    ]
                    .into_iter()
                    .collect(),
                    ..ImageEntry::default()
                },
            )
            .unwrap();
    })
    .await;
    let container = |image: &str| {
        json!({"name": "main", "properties": {
            "image": image,
            "resources": {"requests": {"cpu": 1, "memoryInGB": 1}},
            "environmentVariables": [{"name": "EXTRA", "value": "spec"}]
        }})
    };
    harness
        .create(
            "mapped",
            &group_body(
                "Never",
                json!([container("example.azurecr.io/job:1")]),
                json!([]),
            ),
        )
        .await;
    harness
        .wait_for("mapped", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    let (_, logs) = harness.logs("mapped", "main", "").await;
    assert_eq!(logs["content"], "mapped from-image spec\n");

    harness
        .create(
            "unmapped",
            &group_body("Never", json!([container("postgres:15")]), json!([])),
        )
        .await;
    let failed = harness
        .wait_for("unmapped", WAIT, "Failed", |body| {
            provisioning(body) == "Failed"
        })
        .await;
    assert_eq!(group_state(&failed), "Pending");
    let events = view(&failed, 0)["events"].as_array().unwrap().clone();
    let last = events.last().unwrap();
    assert_eq!(last["name"], "Failed");
    assert_eq!(last["type"], "Warning");
    let message = last["message"].as_str().unwrap();
    assert!(
        message.contains("postgres:15") && message.contains("image map"),
        "{message}"
    );
    let (status, error) = harness.logs("unmapped", "main", "").await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["code"], "ContainerLogNotAvailable");
    harness.stop().await;
}

#[tokio::test]
async fn the_example_postgres_image_runs_without_capabilities_on_its_share() {
    let postgres = std::path::Path::new("/usr/lib/postgresql/15/bin/postgres");
    if !postgres.exists() {
        let why = format!("{} does not exist", postgres.display());
        return berth_test_support::skip::missing("postgres", &why);
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/images.toml");
    // The example listens on 5432; a free port keeps this test clear of any local server.
    let port = berth_test_support::free_port();
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("-p 5432"), "the example's port moved");
    let images =
        emulator::ImageMap::parse(&text.replace("-p 5432", &format!("-p {port}"))).unwrap();
    let harness = Harness::start(|config| config.images = images).await;
    let container = json!({"name": "db", "properties": {
        "image": "postgres:15",
        "resources": {"requests": {"cpu": 1, "memoryInGB": 1}},
        "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}]
    }});
    let body = group_body(
        "Always",
        json!([container]),
        json!([share("pgdata", "pgdata")]),
    );
    harness.create("db", &body).await;
    eventually("PostgreSQL to start", Duration::from_secs(60), || async {
        let (_, logs) = harness.logs("db", "db", "").await;
        let text = logs["content"].as_str().unwrap_or("").to_string();
        if text.contains("ready to accept connections") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let data = harness.data().join("shares/acct1/pgdata/pgdata");
    assert_eq!(
        std::fs::read_to_string(data.join("PG_VERSION")).unwrap(),
        "15\n"
    );
    harness.stop().await;
}

#[tokio::test]
async fn logs_take_tail_and_timestamps() {
    let harness = Harness::start(|_| {}).await;
    let body = group_body(
        "Never",
        json!([shell(
            "job",
            "for i in 1 2 3 4 5; do echo line $i; done",
            json!([]),
            json!([])
        )]),
        json!([]),
    );
    harness.create("lines", &body).await;
    harness
        .wait_for("lines", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    let (_, tail) = harness.logs("lines", "job", "&tail=2").await;
    assert_eq!(tail["content"], "line 4\nline 5\n");
    let (_, stamped) = harness
        .logs("lines", "job", "&timestamps=true&tail=1")
        .await;
    let text = stamped["content"].as_str().unwrap();
    let (stamp, rest) = text.split_once(' ').unwrap();
    assert_eq!(rest, "line 5\n");
    assert_eq!(
        stamp.len(),
        "2026-01-01T00:00:00.000000000Z".len(),
        "{stamp}"
    );
    assert!(
        time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).is_ok()
    );
    let (status, error) = harness.logs("lines", "nope", "").await;
    assert_eq!(status, 404, "{error}");
    harness.stop().await;
}

#[tokio::test]
async fn an_update_restarts_the_containers_with_the_new_spec() {
    let harness = Harness::start(|_| {}).await;
    let first = group_body(
        "Never",
        json!([shell("job", "echo first", json!([]), json!([]))]),
        json!([]),
    );
    harness.create("updated", &first).await;
    harness
        .wait_for("updated", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    let second = group_body(
        "Never",
        json!([shell("job", "echo second", json!([]), json!([]))]),
        json!([]),
    );
    let response = harness.put("updated", &second).await;
    assert_eq!(response.status(), 200);
    let body = eventually("the update to run", WAIT, || async {
        let (_, logs) = harness.logs("updated", "job", "").await;
        let (_, body) = harness.get("updated").await;
        if logs["content"] == "second\n" && group_state(&body) == "Succeeded" {
            Ok(body)
        } else {
            Err(logs)
        }
    })
    .await;
    assert_eq!(view(&body, 0)["restartCount"], 0);
    assert_eq!(harness.stats().await["createsByName"]["updated"], 1);
    harness.stop().await;
}

#[tokio::test]
async fn a_restarted_emulator_reports_lost_processes_and_restarts_per_policy() {
    let harness = Harness::start(|_| {}).await;
    let marker = marker();
    let service = marked_service(&marker, "server", "echo serving; sleep 1000");
    let job = group_body(
        "Never",
        json!([shell("job", "echo done", json!([]), json!([]))]),
        json!([]),
    );
    harness.create("service", &service).await;
    harness.create("job", &job).await;
    harness
        .wait_for("job", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    wait_processes(&marker, 1, WAIT).await;
    let dir = harness.stop().await;
    wait_no_processes(&marker, Duration::from_secs(5)).await;

    let harness = Harness::start_in(dir, |_| {}).await;
    let service = harness
        .wait_for("service", WAIT, "restarted", |body| {
            view(body, 0)["restartCount"] == 1
                && view(body, 0)["currentState"]["state"] == "Running"
        })
        .await;
    assert_eq!(group_state(&service), "Running");
    let previous = &view(&service, 0)["previousState"];
    assert_eq!(previous["exitCode"], 137);
    assert!(
        previous["detailStatus"]
            .as_str()
            .unwrap()
            .contains("emulator restarted"),
        "{previous}"
    );
    wait_processes(&marker, 1, WAIT).await;
    let (_, job) = harness.get("job").await;
    assert_eq!(group_state(&job), "Succeeded");
    let (_, logs) = harness.logs("job", "job", "").await;
    assert_eq!(logs["content"], "done\n");
    harness.stop().await;
    wait_no_processes(&marker, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_containers() {
    let harness = Harness::start(|_| {}).await;
    let init = |name: &str, script: &str| {
        json!({"name": name, "properties": {
            "image": "busybox",
            "command": ["/bin/sh", "-c", script],
            "volumeMounts": [{"name": "scratch", "mountPath": "/work"}]
        }})
    };
    let mut body = group_body(
        "Never",
        json!([shell(
            "main",
            "cat /work/steps",
            json!([]),
            json!([{"name": "scratch", "mountPath": "/work"}])
        )]),
        json!([{"name": "scratch", "emptyDir": {}}]),
    );
    body["properties"]["initContainers"] = json!([
        init("first", "echo first >> /work/steps"),
        init("second", "echo second >> /work/steps; echo init log"),
    ]);
    harness.create("inits", &body).await;
    let done = harness
        .wait_for("inits", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    let (_, logs) = harness.logs("inits", "main", "").await;
    assert_eq!(logs["content"], "first\nsecond\n");
    let (_, logs) = harness.logs("inits", "second", "").await;
    assert_eq!(logs["content"], "init log\n");
    let init_view = &done["properties"]["initContainers"][1]["properties"]["instanceView"];
    assert_eq!(init_view["currentState"]["state"], "Terminated");
    assert_eq!(init_view["currentState"]["exitCode"], 0);

    body["properties"]["initContainers"] = json!([init("broken", "exit 2")]);
    harness.create("broken-init", &body).await;
    let failed = harness
        .wait_for("broken-init", WAIT, "Failed", |body| {
            group_state(body) == "Failed"
        })
        .await;
    assert_eq!(provisioning(&failed), "Failed");
    assert_eq!(
        failed["properties"]["initContainers"][0]["properties"]["instanceView"]["currentState"]["exitCode"],
        2
    );
    let (status, _) = harness.logs("broken-init", "main", "").await;
    assert_eq!(status, 404, "the container never started");
    harness.stop().await;
}

#[tokio::test]
async fn a_wrong_storage_key_fails_the_mount_like_azure() {
    let harness = Harness::start(|config| {
        config
            .storage_keys
            .insert("acct1".into(), emulator::model::Secret::new("a2V5".into()));
    })
    .await;
    let body = |key: &str| {
        group_body(
            "Never",
            json!([shell(
                "job",
                "echo mounted",
                json!([]),
                json!([{"name": "share", "mountPath": "/mnt/share"}])
            )]),
            json!([{"name": "share", "azureFile": {"shareName": "keyed", "storageAccountName": "acct1", "storageAccountKey": key}}]),
        )
    };
    harness.create("wrong-key", &body("d3Jvbmc=")).await;
    let failed = harness
        .wait_for("wrong-key", WAIT, "Failed", |body| {
            provisioning(body) == "Failed"
        })
        .await;
    assert_eq!(group_state(&failed), "Pending");
    let event = &failed["properties"]["instanceView"]["events"][0];
    assert_eq!(event["name"], "FailedMount");
    assert_eq!(event["type"], "Warning");
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .contains("mount error(13): Permission denied")
    );
    assert!(
        !failed.to_string().contains("d3Jvbmc="),
        "the key is not answered"
    );

    harness.create("right-key", &body("a2V5")).await;
    harness
        .wait_for("right-key", WAIT, "Succeeded", |body| {
            group_state(body) == "Succeeded"
        })
        .await;
    harness.stop().await;
}
