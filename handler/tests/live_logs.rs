//! Live logs end to end, against the emulator running real processes: a running container's log
//! from ARM (whole, `tail`), a `follow` that receives the lines written after it started and ends
//! when the job does (past the server's request timeout too), the saved log after, the refused
//! queries, a follow through the Functions host (answered once), and the cap on follows.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use berth::api::logs::{FOLLOW_POLL, MAX_TAIL};
use berth::driver::{LogSource, MAX_FOLLOWS};
use berth::functions::http::HttpInvocation;
use berth::server::Limits;
use common::{Harness, job};
use serde_json::Value;
use tower::ServiceExt as _;

/// A job that prints `line 1` to `line {count}`, one every `every` seconds, then exits.
fn ticking(id: &str, count: u32, every: &str) -> Value {
    job(
        id,
        &format!("i=0; while [ $i -lt {count} ]; do i=$((i+1)); echo line $i; sleep {every}; done"),
    )
}

fn lines(range: std::ops::RangeInclusive<u32>) -> String {
    range.map(|i| format!("line {i}\n")).collect()
}

async fn get(h: &Harness, path: &str) -> reqwest::Response {
    h.http
        .get(format!("{}/api/deployments/{path}", h.api))
        .send()
        .await
        .unwrap()
}

/// Waits until the container's log is live (read from ARM) and holds `line {at_least}`.
async fn live_with(h: &Harness, id: &str, at_least: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let source = h.runtime.driver.log_source(id, "work").await.unwrap();
        assert!(Instant::now() < deadline, "no live log in time: {source:?}");
        if matches!(source, LogSource::Live { ended: false, .. }) {
            let response = get(h, &format!("{id}/logs/work/main")).await;
            assert_eq!(response.status(), 200);
            let log = response.text().await.unwrap();
            if log.contains(&format!("line {at_least}\n")) {
                return log;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn problem(response: reqwest::Response, status: u16, field: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("{field}: ")), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_log_is_read_live_followed_to_its_end_then_saved() {
    let h = Harness::start().await;
    let id = h.start_deployment(&ticking("live-1", 12, "1")).await;
    let log = live_with(&h, &id, 2).await;
    assert!(log.starts_with(&lines(1..=2)), "{log}");
    assert_ne!(h.status(&id).await["phase"], "Done");

    let tail = get(&h, &format!("{id}/logs/work/main?tail=1")).await;
    assert_eq!(tail.status(), 200);
    let tail = tail.text().await.unwrap();
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.starts_with("line "), "{tail}");

    // The follow starts while the job prints, and gets every line once, in order.
    let started = Instant::now();
    let mut follow = get(&h, &format!("{id}/logs/work/main?follow=true")).await;
    assert_eq!(follow.status(), 200);
    assert_eq!(
        follow.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let mut chunks = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), follow.chunk())
        .await
        .expect("the follow ends")
        .unwrap()
    {
        chunks.push(String::from_utf8(chunk.to_vec()).unwrap());
    }
    let followed = chunks.concat();
    assert_eq!(followed, lines(1..=12));
    assert!(
        chunks.len() >= 2,
        "lines written after the follow started come later: {chunks:?}"
    );
    assert!(started.elapsed() > FOLLOW_POLL);
    // It ended because the container's instance did.
    let source = h.runtime.driver.log_source(&id, "work").await.unwrap();
    assert!(
        matches!(
            source,
            LogSource::Saved | LogSource::Live { ended: true, .. }
        ),
        "{source:?}"
    );

    let done = h.wait_done(&id).await;
    assert_eq!(done["runtimeStatus"], "Succeeded");
    assert_eq!(h.logs(&id, "work", "main").await, (200, lines(1..=12)));
    let tail = get(&h, &format!("{id}/logs/work/main?tail=2")).await;
    assert_eq!(tail.text().await.unwrap(), lines(11..=12));
    // Following a saved log answers it at once.
    let saved = get(&h, &format!("{id}/logs/work/main?follow=true&tail=3")).await;
    assert_eq!(saved.text().await.unwrap(), lines(10..=12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_log_queries_are_400_naming_the_field_and_unknown_ones_404() {
    let h = Harness::start().await;
    let id = h.start_deployment(&ticking("live-2", 600, "1")).await;
    live_with(&h, &id, 1).await;
    for (query, field) in [
        ("tail=0", "tail"),
        ("tail=-1", "tail"),
        ("tail=ten", "tail"),
        (&*format!("tail={}", MAX_TAIL + 1), "tail"),
        ("follow=yes", "follow"),
    ] {
        problem(
            get(&h, &format!("{id}/logs/work/main?{query}")).await,
            400,
            field,
        )
        .await;
    }
    let max = get(&h, &format!("{id}/logs/work/main?tail={MAX_TAIL}")).await;
    assert_eq!(max.status(), 200);
    problem(get(&h, &format!("{id}/logs/Work/main")).await, 400, "group").await;
    problem(
        get(&h, &format!("{id}/logs/work/main.")).await,
        400,
        "container",
    )
    .await;
    // No such container in the live group, no such group, no such deployment.
    problem(
        get(&h, &format!("{id}/logs/work/other")).await,
        404,
        "container",
    )
    .await;
    problem(
        get(&h, &format!("{id}/logs/nowhere/main")).await,
        404,
        "container",
    )
    .await;
    problem(get(&h, "nobody/logs/work/main").await, 404, "id").await;
    // Through the Functions host, whose answers are buffered whole, a follow answers once.
    let invocation = HttpInvocation {
        method: http::Method::GET,
        url: format!("{}/api/deployments/{id}/logs/work/main?follow=true", h.api)
            .parse()
            .unwrap(),
        raw_url: String::new(),
        headers: Vec::new(),
        query: serde_json::Map::new(),
        params: serde_json::Map::new(),
        body: None,
    };
    let path = format!("/api/deployments/{id}/logs/work/main");
    let request = invocation.into_request(&path).unwrap();
    let answer = h.runtime.router().oneshot(request).await.unwrap();
    assert_eq!(answer.status(), 200);
    let body = tokio::time::timeout(
        FOLLOW_POLL / 2,
        axum::body::to_bytes(answer.into_body(), usize::MAX),
    )
    .await
    .expect("a buffered follow answers at once")
    .unwrap();
    assert!(body.starts_with(b"line 1\n"));

    let (code, _) = h
        .post(&format!("/api/deployments/{id}/terminate"), None)
        .await;
    assert_eq!(code, 202);
    h.wait_done(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_are_capped_and_a_gone_caller_frees_its_slot() {
    let h = Harness::start().await;
    let id = h.start_deployment(&ticking("live-3", 600, "1")).await;
    live_with(&h, &id, 1).await;
    let path = format!("{id}/logs/work/main?follow=true");
    let mut follows = Vec::new();
    for _ in 0..MAX_FOLLOWS {
        let response = get(&h, &path).await;
        assert_eq!(response.status(), 200);
        follows.push(response);
    }
    let refused = get(&h, &path).await;
    assert_eq!(refused.headers()["retry-after"], "3");
    problem(refused, 429, "follow").await;
    // A plain read still works.
    assert_eq!(get(&h, &format!("{id}/logs/work/main")).await.status(), 200);

    // A caller that goes away frees its slot (at the follow's next poll at the latest).
    drop(follows.pop());
    let deadline = Instant::now() + FOLLOW_POLL * 3;
    let again = loop {
        let response = get(&h, &path).await;
        if response.status() == 200 {
            break response;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    follows.push(again);

    // Every follow ends when the job does.
    let (code, _) = h
        .post(&format!("/api/deployments/{id}/terminate"), None)
        .await;
    assert_eq!(code, 202);
    for mut follow in follows {
        let end = async { while follow.chunk().await.unwrap().is_some() {} };
        tokio::time::timeout(Duration::from_secs(60), end)
            .await
            .expect("the follow ends with the job");
    }
    h.wait_done(&id).await;
    assert!(h.runtime.driver.follow_slot().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_outlasts_the_servers_request_timeout() {
    let h = Harness::start().await;
    // The same API behind the server every mode uses, with a request timeout of one second.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let limits = Limits {
        request_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(berth::server::serve(
        listener,
        h.runtime.router(),
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    let id = h.start_deployment(&ticking("live-4", 5, "1")).await;
    live_with(&h, &id, 1).await;
    let started = Instant::now();
    let followed = h
        .http
        .get(format!(
            "{url}/api/deployments/{id}/logs/work/main?follow=true"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(60), followed.text())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body, lines(1..=5));
    assert!(started.elapsed() > Duration::from_secs(2));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    h.wait_done(&id).await;
}
