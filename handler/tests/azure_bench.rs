//! Throughput of Azurite for the two operations Berth's Azure backend lives on: the conditional
//! checkpoint write and the step message cycle. Ignored by default; run with
//! `cargo test -p handler --test azure_bench -- --ignored --nocapture` (on the Azurite of
//! `azure_support`). The numbers are printed; the assertions only check the work was done.
#![allow(clippy::unwrap_used)]

mod azure_support;

use azure_support::{account, unique};
use berth::azure_storage::{Kind, Tags, TimeToLive, WriteCondition};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITES: usize = 400;
const CYCLES: usize = 300;
const CONCURRENCY: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn conditional_blob_writes_per_second() {
    let Some(account) = account() else {
        return;
    };
    let c = Arc::new(account.container(&unique("bench")).unwrap());
    c.create_if_missing().await.unwrap();
    let body = Bytes::from(vec![b'x'; 2048]);
    let tags =
        Tags::from_pairs([("status", "Running"), ("updated", "2025-01-01T00:00:00Z")]).unwrap();

    // One writer: a chain of CAS writes, each on the ETag of the one before.
    let mut etag = c
        .put("chain", body.clone(), &WriteCondition::Create, &tags)
        .await
        .unwrap();
    let start = Instant::now();
    for _ in 0..WRITES {
        etag = c
            .put("chain", body.clone(), &WriteCondition::Replace(etag), &tags)
            .await
            .unwrap();
    }
    report(
        "conditional blob writes (If-Match, 2 KiB, 2 tags), 1 writer",
        WRITES,
        start.elapsed(),
    );

    // Several writers on their own blobs.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let (c, body, tags) = (c.clone(), body.clone(), tags.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let mut etag = c
                .put(&name, body.clone(), &WriteCondition::Create, &tags)
                .await
                .unwrap();
            for _ in 1..WRITES / CONCURRENCY {
                etag = c
                    .put(&name, body.clone(), &WriteCondition::Replace(etag), &tags)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    report(
        &format!("conditional blob writes, {CONCURRENCY} writers"),
        WRITES,
        start.elapsed(),
    );
    assert_eq!(
        account.transactions().snapshot().get(Kind::BlobPut) as usize,
        1 + 2 * WRITES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn queue_put_get_delete_cycles_per_second() {
    let Some(account) = account() else {
        return;
    };
    let q = Arc::new(account.queue(&unique("bench")).unwrap());
    q.create_if_missing().await.unwrap();
    let step = "{\"deployment\":\"transcode-42\",\"version\":7,\"step\":\"poll\"}";

    let start = Instant::now();
    for _ in 0..CYCLES {
        cycle(&q, step).await;
    }
    report(
        "queue put+get+delete cycles, 1 worker",
        CYCLES,
        start.elapsed(),
    );

    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..CYCLES / CONCURRENCY {
                cycle(&q, step).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let done = CONCURRENCY * (CYCLES / CONCURRENCY);
    report(
        &format!("queue put+get+delete cycles, {CONCURRENCY} workers"),
        done,
        start.elapsed(),
    );
    let s = account.transactions().snapshot();
    assert_eq!(s.get(Kind::MessagePut) as usize, CYCLES + done);
    assert_eq!(s.get(Kind::MessageDelete) as usize, CYCLES + done);
}

/// Sends one message, then receives and deletes one (with several workers it may be another's).
async fn cycle(q: &berth::azure_storage::StorageQueue, text: &str) {
    q.send(text, Duration::ZERO, TimeToLive::Never)
        .await
        .unwrap();
    loop {
        if let Some(m) = q.receive(1, Duration::from_secs(60)).await.unwrap().pop() {
            q.delete(&m.receipt).await.unwrap();
            return;
        }
    }
}

fn report(what: &str, n: usize, took: Duration) {
    println!(
        "{what}: {n} in {:.2} s = {:.0}/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}
