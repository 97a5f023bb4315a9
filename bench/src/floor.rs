//! Item 3: the storage floor. The least storage work one callback-completed one-group job needs in
//! Berth's design, done raw (no engine, no HTTP, no ARM), one deployment after another:
//!
//! | # | operation | why the design needs it |
//! |---|---|---|
//! | 1 | write checkpoint + enqueue its first step (one transaction) | the deployment exists once accepted |
//! | 2 | read checkpoint | the `completed` event is applied to the current state |
//! | 3 | CAS write | ... and recorded before it is acknowledged |
//! | 4 | dequeue the step (lease) | a worker takes the step |
//! | 5 | read checkpoint | the step starts from the saved state |
//! | 6 | CAS write | commit the create before the PUT (claim) |
//! | 7 | CAS write | commit "created, completed: capture logs and delete" before acting |
//! | 8 | write logs | the logs outlive the group |
//! | 9 | CAS write | the end (`Done`) |
//! | 10 | delete the step message | the step is done |
//!
//! Ten storage transactions: two reads, four CAS writes, one checkpoint create, one log write and
//! two queue operations besides the enqueue that rides in the create. The checkpoint written is
//! a real finished deployment's, so the bytes are Berth's.
//!
//! On Azure Storage the same work is eleven requests (the enqueue is a request of its own), timed
//! at the concurrency Berth's best Azurite throughput was measured at, since one HTTP round trip
//! after another would understate what the account can do.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth::azure_storage::{StorageAccount, StorageConnection, Tags, TimeToLive, WriteCondition};
use bytes::Bytes;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// The floor on one backend.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    pub backend: &'static str,
    pub deployments: usize,
    pub transactions_per_deployment: u32,
    pub ms_per_deployment: f64,
    pub checkpoint_bytes: usize,
}

/// The raw operations' transactions per deployment (the table above).
pub const TRANSACTIONS: u32 = 10;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
CREATE TABLE d (id TEXT PRIMARY KEY, version INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE logs (id TEXT NOT NULL, container TEXT NOT NULL, content TEXT NOT NULL, PRIMARY KEY (id, container));
CREATE TABLE steps (n INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, visible_at INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0);
CREATE INDEX steps_visible ON steps (visible_at);
";

fn cas(conn: &Connection, id: &str, version: &mut i64, body: &[u8]) -> rusqlite::Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE d SET version = version + 1, body = ?3 WHERE id = ?1 AND version = ?2",
        )?
        .execute(params![id, *version, body])?;
    assert_eq!(n, 1, "the floor runs alone: every CAS wins");
    *version += 1;
    Ok(())
}

fn read(conn: &Connection, id: &str) -> rusqlite::Result<Option<(i64, Vec<u8>)>> {
    conn.prepare_cached("SELECT version, body FROM d WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// One deployment's storage work, raw.
fn one(conn: &mut Connection, id: &str, body: &[u8], logs: &str, now: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.prepare_cached("INSERT INTO d (id, version, body) VALUES (?1, 1, ?2)")?
        .execute(params![id, body])?;
    tx.prepare_cached("INSERT INTO steps (body, visible_at) VALUES (?1, ?2)")?
        .execute(params![id, now])?;
    tx.commit()?;
    let (mut version, _) = read(conn, id)?.unwrap_or_default();
    cas(conn, id, &mut version, body)?;
    let n: i64 = conn
        .prepare_cached(
            "UPDATE steps SET visible_at = ?1 + 30000, lease = lease + 1
             WHERE n = (SELECT n FROM steps WHERE visible_at <= ?1 ORDER BY visible_at LIMIT 1) RETURNING n",
        )?
        .query_row(params![now], |r| r.get(0))?;
    let (mut version, _) = read(conn, id)?.unwrap_or_default();
    cas(conn, id, &mut version, body)?;
    cas(conn, id, &mut version, body)?;
    conn.prepare_cached("INSERT INTO logs (id, container, content) VALUES (?1, 'main', ?2)")?
        .execute(params![id, logs])?;
    cas(conn, id, &mut version, body)?;
    conn.prepare_cached("DELETE FROM steps WHERE n = ?1")?
        .execute(params![n])?;
    Ok(())
}

/// Times `deployments` deployments' raw storage work on a fresh SQLite file in `dir`.
pub fn sqlite(dir: &Path, checkpoint: &[u8], deployments: usize) -> anyhow::Result<Floor> {
    let mut conn = Connection::open(dir.join("floor.db"))?;
    conn.execute_batch(SCHEMA)?;
    let logs = "aci-emulator --instant: the container completed without running a process\n";
    let now = 1;
    // Warm the statement cache and the file.
    for i in 0..50 {
        one(&mut conn, &format!("warm-{i}"), checkpoint, logs, now)?;
    }
    let started = Instant::now();
    for i in 0..deployments {
        one(&mut conn, &format!("floor-{i}"), checkpoint, logs, now)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Floor {
        backend: "sqlite",
        deployments,
        transactions_per_deployment: TRANSACTIONS,
        ms_per_deployment: seconds * 1000.0 / deployments as f64,
        checkpoint_bytes: checkpoint.len(),
    })
}

/// Transactions of one deployment's raw work on Azure Storage: the table above, with the
/// checkpoint create and the enqueue as two requests (a blob and a message cannot share one).
pub const AZURE_TRANSACTIONS: u32 = 11;

/// Times `deployments` deployments' raw storage work on Azurite, `concurrency` at a time, in a
/// container and queue of their own; returns the floor and the transactions the account counted.
pub async fn azurite(
    connection: &StorageConnection,
    checkpoint: &[u8],
    deployments: usize,
    concurrency: usize,
) -> anyhow::Result<Floor> {
    let account = StorageAccount::new(connection, None)?;
    let name = format!("floor-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let container = Arc::new(account.container(&name)?);
    let queue = Arc::new(account.queue(&name)?);
    container.create_if_missing().await?;
    queue.create_if_missing().await?;
    let body = Bytes::copy_from_slice(checkpoint);
    let tags = Tags::from_pairs([("status", "Running"), ("created", "20250101T000000000Z")])?;
    let logs = Bytes::from_static(
        b"aci-emulator --instant: the container completed without running a process\n",
    );
    let one = {
        let (container, queue) = (container.clone(), queue.clone());
        move |id: String| {
            let (c, q, body, tags, logs) = (
                container.clone(),
                queue.clone(),
                body.clone(),
                tags.clone(),
                logs.clone(),
            );
            async move {
                let mut etag = c
                    .put(&id, body.clone(), &WriteCondition::Create, &tags)
                    .await?;
                q.send(&id, Duration::ZERO, TimeToLive::Never).await?;
                c.get(&id).await?.context("the checkpoint is gone")?;
                etag = c
                    .put(&id, body.clone(), &WriteCondition::Replace(etag), &tags)
                    .await?;
                // Any worker's step will do: the queue is shared as Berth's is.
                let message = loop {
                    if let Some(m) = q.receive(1, Duration::from_secs(30)).await?.pop() {
                        break m;
                    }
                    // Another worker took the message meant for this one: its own is on the way.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                c.get(&id).await?.context("the checkpoint is gone")?;
                etag = c
                    .put(&id, body.clone(), &WriteCondition::Replace(etag), &tags)
                    .await?;
                etag = c
                    .put(&id, body.clone(), &WriteCondition::Replace(etag), &tags)
                    .await?;
                c.put(
                    &format!("{id}.logs"),
                    logs,
                    &WriteCondition::Overwrite,
                    &Tags::new(),
                )
                .await?;
                c.put(&id, body, &WriteCondition::Replace(etag), &tags)
                    .await?;
                q.delete(&message.receipt).await?;
                Ok::<_, anyhow::Error>(())
            }
        }
    };
    for i in 0..concurrency.max(8) {
        one(format!("warm-{i}")).await?;
    }
    let before = account.transactions().snapshot();
    let run = crate::load::run(deployments, concurrency, move |i| {
        let work = one(format!("floor-{i}"));
        async move {
            let started = Instant::now();
            work.await?;
            Ok(started.elapsed())
        }
    })
    .await?;
    let counted =
        account.transactions().snapshot().since(&before).total() as f64 / deployments as f64;
    Ok(Floor {
        backend: "azurite",
        deployments,
        transactions_per_deployment: counted.round() as u32,
        ms_per_deployment: run.seconds * 1000.0 / deployments as f64,
        checkpoint_bytes: checkpoint.len(),
    })
}
