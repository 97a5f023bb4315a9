//! Security of `handler dev` and its server, attacked end to end on the real binary (holes 3, 9
//! and 10 of SECURITY.md):
//! - a web page the developer visits must not drive `dev`: it has a key by default (printed with a
//!   ready-to-paste curl line), takes only JSON or YAML bodies, and refuses a foreign `Host` (DNS
//!   rebinding) or a cross-site `Origin`;
//! - slow or greedy clients cannot hold the server: headers must come within the header timeout
//!   and connections are capped;
//! - what `dev` writes is readable by its owner only.
#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_test_support::api::json_body;
use berth_test_support::dev::Dev;
use berth_test_support::eventually;
use serde_json::{Value, json};

/// `handler dev` on fresh ports with its data in `data`.
fn start(data: &Path, args: &[&str]) -> Dev {
    Dev::start(Path::new(env!("CARGO_BIN_EXE_handler")), data, args, &[])
}

fn job(id: &str) -> Value {
    json!({
        "id": id,
        "groups": [{"name": "g", "properties": {"restartPolicy": "Never", "osType": "Linux",
            "containers": [{"name": "c", "properties": {"image": "busybox",
                "command": ["sh", "-c", "echo hello"],
                "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}]}}]
    })
}

#[tokio::test]
async fn dev_has_a_key_by_default_and_refuses_web_pages() {
    let data = tempfile::tempdir().unwrap();
    let dev = start(data.path(), &[]);
    let http = reqwest::Client::new();
    let deployments = dev.url("/api/deployments");

    // The key is generated, kept owner-only in the data folder and printed with a curl line.
    let key = std::fs::read_to_string(data.path().join("api.key")).unwrap();
    let key = key.trim().to_owned();
    assert!(key.len() >= 32, "{key}");
    assert!(dev.line("API key:").contains(&key));
    let curl = dev.line("try:");
    assert!(curl.contains(&format!("x-functions-key: {key}")) && curl.contains(&deployments));

    // Without the key nothing happens, whatever the route.
    for (method, path) in [
        ("GET", "/api/deployments"),
        ("POST", "/api/deployments"),
        ("GET", "/api/deployments/x"),
        ("POST", "/api/deployments/x/events/e"),
        ("POST", "/api/deployments/x/terminate"),
    ] {
        let response = http
            .request(method.parse().unwrap(), dev.url(path))
            .header("content-type", "application/json")
            .body(job("nokey").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    let keyed = |request: reqwest::RequestBuilder| request.header("x-functions-key", &key);

    // A cross-site "simple request": text/plain or a form, even with the key (say, in `?code=`).
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = http
            .post(format!("{deployments}?code={key}"))
            .header("content-type", content_type)
            .body(job("simple").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("content-type:")
        );
    }
    // DNS rebinding: the page's own name resolving to 127.0.0.1.
    for host in [
        "evil.example",
        "evil.example:7071",
        "127.0.0.1.nip.io",
        "0x7f000001.evil",
    ] {
        let response = keyed(http.get(&deployments))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "Host {host}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().starts_with("host:"));
    }
    // A foreign origin, with everything else right.
    for origin in [
        "https://evil.example",
        "http://evil.example:7071",
        "null",
        "http://127.0.0.1.evil.example",
        "file://",
    ] {
        let response = keyed(http.post(&deployments))
            .header("origin", origin)
            .json(&job("origin"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "Origin {origin}");
    }
    // Nothing above started anything.
    let list = json_body(keyed(http.get(&deployments))).await;
    assert_eq!(list["deployments"], json!([]), "{list}");

    // The same machine's page and curl work, with the key.
    let response = keyed(http.post(&deployments))
        .header("origin", format!("http://localhost:{}", dev.port))
        .json(&job("mine"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let status_url = dev.url("/api/deployments/mine");
    let status = eventually("mine to be done", Duration::from_secs(60), || async {
        let status = json_body(keyed(http.get(&status_url))).await;
        if status["phase"] == "Done" {
            Ok(status)
        } else {
            Err(status)
        }
    })
    .await;
    assert_eq!(status["runtimeStatus"], "Succeeded", "{status}");

    // Everything dev wrote (keys, database and WAL, the emulator's records, logs and shares) is
    // its owner's alone.
    let mut open = Vec::new();
    let mut seen = 0;
    let mut stack = vec![data.path().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            seen += 1;
            if meta.permissions().mode() & 0o077 != 0 {
                open.push(format!(
                    "{} {:o}",
                    entry.path().display(),
                    meta.permissions().mode()
                ));
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    assert!(seen >= 5, "the walk saw the data folder ({seen} entries)");
    assert!(
        data.path().join("berth.db-wal").exists() || data.path().join("berth.db").exists(),
        "the database is in the data folder"
    );
    assert!(open.is_empty(), "readable by others: {open:?}");
}

#[tokio::test]
async fn dev_without_auth_says_so_and_serves_without_a_key() {
    let data = tempfile::tempdir().unwrap();
    let dev = start(data.path(), &["--no-auth"]);
    assert!(dev.line("API key:").contains("--no-auth"));
    assert!(!data.path().join("api.key").exists());
    let response = reqwest::get(dev.url("/api/deployments")).await.unwrap();
    assert_eq!(response.status(), 200);
    // The web-page guards stay on.
    let response = reqwest::Client::new()
        .get(dev.url("/api/deployments"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

/// Sends the start of a request and never finishes its headers.
fn slow_client(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /api/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    stream
}

#[test]
fn slow_headers_are_cut_off_and_connections_are_capped() {
    let data = tempfile::tempdir().unwrap();
    let dev = start(data.path(), &["--no-auth", "--max-connections", "8"]);
    // Eight slow clients take every connection slot.
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..8).map(|_| slow_client(dev.port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    // A ninth client is not served while they hold them...
    let mut ninth = TcpStream::connect(("127.0.0.1", dev.port)).unwrap();
    ninth
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    ninth
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut first = [0u8; 1];
    assert!(
        ninth.read(&mut first).is_err(),
        "the ninth connection was served while eight held every slot"
    );
    // ...and the server cuts the slow ones off at the header timeout (10 s), then serves it.
    for stream in &mut slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    let cut_after = started.elapsed();
    assert!(
        cut_after < Duration::from_secs(25),
        "slow clients were held {cut_after:?}"
    );
    ninth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    ninth.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    eprintln!("slow clients cut off after {cut_after:?}; the ninth was then served");
}
