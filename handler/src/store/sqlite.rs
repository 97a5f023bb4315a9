//! The embedded default: checkpoints, logs and the step queue in one SQLite file (WAL mode).
//!
//! One connection behind a mutex: every statement is a point read or write of a few kilobytes,
//! far shorter than the contention a pool would add. Saving a checkpoint and scheduling its next
//! step happen in one transaction.
//!
//! A record is one row of `deployments`: its bytes in `body`, its index fields in columns of their
//! own (`status`, `created`, `wake_at` and `wake_seq`, `ended_at`).
//!
//! # Versions
//! The file's schema version is SQLite's `user_version`: [`SCHEMA_VERSION`] once this Berth has
//! opened it. A file from before versions were written (0) or of an older version is brought up
//! to date on open by [`MIGRATIONS`], each in its own transaction, in order; a file of a newer
//! version than this Berth's is refused with what to do, and left untouched.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

use super::{
    Checkpoints, Delivery, Due, ListQuery, Millis, Page, QueueDepth, Record, RunTimes, Scheduled,
    Schedules, Status, StepMessage, Steps, StoreError, StoredRecord, StoredSchedule, TemplatePage,
    Templates, Version, Wake, check_digest, check_template, continuation_after, decode_run_time,
    next_run_time, parse_continuation, parse_template_token, template_token,
};
use crate::clock::Clock;
use crate::engine::RunEstimate;

/// The schema version this Berth writes (SQLite's `user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What brings a file of version `n` to `n + 1` is `MIGRATIONS[n]`. Never edit one that has
/// shipped: add the next.
const MIGRATIONS: &[fn(&Connection) -> rusqlite::Result<()>] = &[
    // 0 → 1: the tables and indexes, on a new file or on one from before versions were written
    // (which may lack `wake_seq`).
    |conn| {
        conn.execute_batch(SCHEMA)?;
        add_wake_seq(conn)
    },
    // 1 → 2: archived history pages, beside their checkpoints.
    |conn| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS history (
                deployment TEXT NOT NULL,
                page INTEGER NOT NULL,
                body BLOB NOT NULL,
                PRIMARY KEY (deployment, page)
            );",
        )
    },
    // 2 → 3: templates, every version a row.
    |conn| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS templates (
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                body BLOB NOT NULL,
                PRIMARY KEY (name, version)
            );",
        )
    },
    // 3 → 4: schedules, by name.
    |conn| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schedules (
                name TEXT PRIMARY KEY,
                version INTEGER NOT NULL,
                body BLOB NOT NULL
            );",
        )
    },
];

/// After this many deliveries a step message goes to the poison table.
pub const MAX_DEQUEUE: u32 = 5;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    created INTEGER NOT NULL,
    wake_at INTEGER,
    wake_seq INTEGER,
    ended_at INTEGER,
    body BLOB NOT NULL
);
DROP INDEX IF EXISTS deployments_created;
DROP INDEX IF EXISTS deployments_status;
CREATE INDEX IF NOT EXISTS deployments_newest ON deployments (created DESC, id);
CREATE INDEX IF NOT EXISTS deployments_status_newest ON deployments (status, created DESC, id);
CREATE INDEX IF NOT EXISTS deployments_wake ON deployments (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS deployments_ended ON deployments (ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS logs (
    deployment TEXT NOT NULL,
    instance TEXT NOT NULL,
    container TEXT NOT NULL,
    group_name TEXT NOT NULL,
    saved INTEGER NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (deployment, instance, container)
);
CREATE TABLE IF NOT EXISTS steps (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    lease INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS steps_visible ON steps (visible_at);
CREATE TABLE IF NOT EXISTS run_times (
    digest TEXT PRIMARY KEY,
    updated INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS poison (
    n INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    dequeue_count INTEGER NOT NULL,
    poisoned_at INTEGER NOT NULL
);
";

/// Checkpoints, logs and steps in SQLite.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    sent: Notify,
}

fn backend(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| {
        let transient = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        StoreError::Backend {
            operation,
            transient,
            source: Box::new(e),
        }
    }
}

/// The columns of a record, in the order `SELECT`s below name them.
const RECORD_COLUMNS: &str = "id, status, created, wake_at, wake_seq, ended_at, body";

/// Reads a row of [`RECORD_COLUMNS`].
fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let status = Status::read(&row.get::<_, String>(1)?);
    let wake = match (
        row.get::<_, Option<Millis>>(3)?,
        row.get::<_, Option<i64>>(4)?,
    ) {
        (Some(at), Some(seq)) => Some(Wake {
            at,
            seq: seq as u64,
        }),
        _ => None,
    };
    Ok(Record {
        id: row.get(0)?,
        status,
        created: row.get(2)?,
        wake,
        ended: row.get(5)?,
        body: Bytes::from(row.get::<_, Vec<u8>>(6)?),
    })
}

/// The wake columns of a record.
fn wake_columns(record: &Record) -> (Option<Millis>, Option<i64>) {
    match record.wake {
        Some(w) => (Some(w.at), Some(w.seq as i64)),
        None => (None, None),
    }
}

impl SqliteStore {
    /// Opens (and creates) the database file.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Backend {
                operation: "create the database folder",
                transient: false,
                source: Box::new(e),
            })?;
        }
        create_private_file(path).map_err(|e| StoreError::Backend {
            operation: "create the database file",
            transient: false,
            source: Box::new(e),
        })?;
        let conn = Connection::open(path).map_err(backend("open the database"))?;
        Self::with_connection(conn, clock)
    }

    fn with_connection(conn: Connection, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend("set the busy timeout"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;",
        )
        .map_err(backend("configure the database"))?;
        migrate(&conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            clock,
            sent: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn insert_step(conn: &Connection, step: &Scheduled) -> Result<(), StoreError> {
        conn.prepare_cached("INSERT INTO steps (body, visible_at) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![step.message.to_text(), step.at]))
            .map_err(backend("send a step"))?;
        Ok(())
    }

    /// Messages moved to the poison table (for tests and the sweep's report).
    pub fn poisoned(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT body FROM poison ORDER BY n")
            .map_err(backend("read poison"))?;
        let rows = statement
            .query_map([], |r| r.get(0))
            .map_err(backend("read poison"))?;
        rows.collect::<Result<_, _>>()
            .map_err(backend("read poison"))
    }

    /// Step messages waiting (visible or not).
    pub fn pending_steps(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row("SELECT count(*) FROM steps", [], |r| r.get(0))
            .map_err(backend("count steps"))
    }
}

#[async_trait]
impl RunTimes for SqliteStore {
    async fn run_time(&self, digest: &str) -> Result<Option<RunEstimate>, StoreError> {
        check_digest(digest)?;
        let body: Option<String> = self
            .lock()
            .prepare_cached("SELECT body FROM run_times WHERE digest = ?1")
            .and_then(|mut s| s.query_row([digest], |r| r.get(0)).optional())
            .map_err(backend("read a run time"))?;
        Ok(body.and_then(|b| decode_run_time(b.as_bytes())))
    }

    async fn record_run(&self, digest: &str, run_ms: Millis) -> Result<RunEstimate, StoreError> {
        check_digest(digest)?;
        let now = self.clock.now();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(backend("begin"))?;
        let stored: Option<String> = tx
            .prepare_cached("SELECT body FROM run_times WHERE digest = ?1")
            .and_then(|mut s| s.query_row([digest], |r| r.get(0)).optional())
            .map_err(backend("read a run time"))?;
        let next = next_run_time(stored.and_then(|b| decode_run_time(b.as_bytes())), run_ms);
        let body = serde_json::to_string(&next).expect("an estimate serialises");
        tx.prepare_cached(
            "INSERT INTO run_times (digest, updated, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (digest) DO UPDATE SET updated = ?2, body = ?3",
        )
        .and_then(|mut s| s.execute(params![digest, now, body]))
        .map_err(backend("record a run time"))?;
        tx.commit().map_err(backend("commit"))?;
        Ok(next)
    }
}

/// Reads a row of `name, version, body` of `schedules`.
fn schedule_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSchedule> {
    Ok(StoredSchedule {
        name: row.get(0)?,
        version: Version(row.get::<_, i64>(1)?.to_string()),
        body: Bytes::from(row.get::<_, Vec<u8>>(2)?),
    })
}

#[async_trait]
impl Schedules for SqliteStore {
    async fn load_schedule(&self, name: &str) -> Result<Option<StoredSchedule>, StoreError> {
        self.lock()
            .prepare_cached("SELECT name, version, body FROM schedules WHERE name = ?1")
            .and_then(|mut s| s.query_row(params![name], schedule_row).optional())
            .map_err(backend("load a schedule"))
    }

    async fn save_schedule(
        &self,
        name: &str,
        body: &[u8],
        expected: Option<&Version>,
    ) -> Result<Version, StoreError> {
        let conn = self.lock();
        let (changed, version) = match expected {
            None => {
                let sql = "INSERT INTO schedules (name, version, body) VALUES (?1, 1, ?2)
                           ON CONFLICT (name) DO NOTHING";
                let n = conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![name, body]))
                    .map_err(backend("create a schedule"))?;
                (n, 1)
            }
            Some(expected) => {
                let Ok(at) = expected.0.parse::<i64>() else {
                    return Err(StoreError::Conflict(name.to_owned()));
                };
                let sql =
                    "UPDATE schedules SET version = ?3, body = ?2 WHERE name = ?1 AND version = ?4";
                let n = conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![name, body, at + 1, at]))
                    .map_err(backend("save a schedule"))?;
                (n, at + 1)
            }
        };
        if changed == 0 {
            return Err(StoreError::Conflict(name.to_owned()));
        }
        Ok(Version(version.to_string()))
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .prepare_cached("DELETE FROM schedules WHERE name = ?1")
            .and_then(|mut s| s.execute(params![name]))
            .map_err(backend("delete a schedule"))?;
        Ok(n > 0)
    }

    async fn list_schedules(&self, limit: usize) -> Result<Vec<StoredSchedule>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.lock()
            .prepare_cached("SELECT name, version, body FROM schedules ORDER BY name LIMIT ?1")
            .and_then(|mut s| {
                s.query_map(params![limit], schedule_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(backend("list schedules"))
    }
}

#[async_trait]
impl Templates for SqliteStore {
    async fn put_template(&self, name: &str, version: u32, body: &[u8]) -> Result<(), StoreError> {
        check_template(name, Some(version))?;
        let inserted = self
            .lock()
            .prepare_cached(
                "INSERT INTO templates (name, version, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, version) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![name, version, body]))
            .map_err(backend("put a template"))?;
        match inserted {
            0 => Err(StoreError::Conflict(format!(
                "template {name} version {version}"
            ))),
            _ => Ok(()),
        }
    }

    async fn get_template(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<(u32, Bytes)>, StoreError> {
        check_template(name, version)?;
        let row: Option<(u32, Vec<u8>)> = self
            .lock()
            .prepare_cached(
                "SELECT version, body FROM templates WHERE name = ?1 AND (?2 IS NULL OR version = ?2)
                 ORDER BY version DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![name, version], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(backend("read a template"))?;
        Ok(row.map(|(version, body)| (version, Bytes::from(body))))
    }

    async fn list_templates(
        &self,
        top: usize,
        continuation: Option<&str>,
    ) -> Result<TemplatePage, StoreError> {
        let top = top.clamp(1, 1000);
        let after = match continuation {
            Some(token) => parse_template_token('n', token)?,
            None => String::new(),
        };
        let mut items: Vec<(String, u32)> = {
            let conn = self.lock();
            let mut statement = conn
                .prepare_cached(
                    "SELECT name, max(version) FROM templates WHERE name > ?1
                     GROUP BY name ORDER BY name LIMIT ?2",
                )
                .map_err(backend("list templates"))?;
            let rows = statement
                .query_map(params![after, top as i64 + 1], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(backend("list templates"))?;
            rows.collect::<Result<_, _>>()
                .map_err(backend("list templates"))?
        };
        let continuation = (items.len() > top).then(|| {
            items.truncate(top);
            template_token('n', &items[top - 1].0)
        });
        Ok(TemplatePage {
            items,
            continuation,
        })
    }

    async fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        check_template(name, None)?;
        let removed = self
            .lock()
            .execute("DELETE FROM templates WHERE name = ?1", params![name])
            .map_err(backend("delete a template"))?;
        Ok(removed > 0)
    }
}

#[async_trait]
impl Checkpoints for SqliteStore {
    async fn create_record(
        &self,
        record: &Record,
        first: &Scheduled,
    ) -> Result<Version, StoreError> {
        let (wake_at, wake_seq) = wake_columns(record);
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(backend("begin"))?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO deployments (id, version, status, created, wake_at, wake_seq, ended_at, body)
                 VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    record.id,
                    record.status.as_str(),
                    record.created,
                    wake_at,
                    wake_seq,
                    record.ended,
                    &record.body[..]
                ])
            })
            .map_err(backend("create a checkpoint"))?;
        if inserted == 0 {
            return Err(StoreError::Conflict(record.id.clone()));
        }
        Self::insert_step(&tx, first)?;
        tx.commit().map_err(backend("commit"))?;
        drop(conn);
        self.sent.notify_waiters();
        Ok(Version("1".into()))
    }

    async fn load_record(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS}, version FROM deployments WHERE id = ?1");
        self.lock()
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_row(params![id], |r| {
                    Ok(StoredRecord {
                        record: record(r)?,
                        version: Version(r.get::<_, i64>(7)?.to_string()),
                    })
                })
                .optional()
            })
            .map_err(backend("load a checkpoint"))
    }

    async fn save_record(
        &self,
        record: &Record,
        expected: &Version,
        then: Option<&Scheduled>,
    ) -> Result<Version, StoreError> {
        let expected: i64 = expected
            .0
            .parse()
            .map_err(|_| StoreError::Conflict(record.id.clone()))?;
        let (wake_at, wake_seq) = wake_columns(record);
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(backend("begin"))?;
        let updated = tx
            .prepare_cached(
                "UPDATE deployments SET version = version + 1, status = ?3, wake_at = ?4, wake_seq = ?5, ended_at = ?6, body = ?7
                 WHERE id = ?1 AND version = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    record.id,
                    expected,
                    record.status.as_str(),
                    wake_at,
                    wake_seq,
                    record.ended,
                    &record.body[..]
                ])
            })
            .map_err(backend("save a checkpoint"))?;
        if updated == 0 {
            return Err(StoreError::Conflict(record.id.clone()));
        }
        if let Some(step) = then {
            Self::insert_step(&tx, step)?;
        }
        tx.commit().map_err(backend("commit"))?;
        drop(conn);
        if then.is_some() {
            self.sent.notify_waiters();
        }
        Ok(Version((expected + 1).to_string()))
    }

    async fn purge(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(backend("begin"))?;
        let removed = tx
            .execute("DELETE FROM deployments WHERE id = ?1", params![id])
            .map_err(backend("purge"))?;
        tx.execute("DELETE FROM logs WHERE deployment = ?1", params![id])
            .map_err(backend("purge logs"))?;
        tx.execute("DELETE FROM history WHERE deployment = ?1", params![id])
            .map_err(backend("purge history"))?;
        tx.commit().map_err(backend("commit"))?;
        Ok(removed > 0)
    }

    async fn list_records(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let top = query.top.clamp(1, 1000);
        let (after_created, after_id) = match &query.continuation {
            Some(token) => parse_continuation(token)?,
            None => (i64::MAX, String::new()),
        };
        let status = query.status.map(|s| s.as_str());
        let mut items: Vec<Record> = {
            let conn = self.lock();
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS} FROM deployments
                     WHERE (?1 IS NULL OR status = ?1)
                       AND (created < ?2 OR (created = ?2 AND id > ?3))
                     ORDER BY created DESC, id LIMIT ?4"
                ))
                .map_err(backend("list"))?;
            let rows = statement
                .query_map(
                    params![status, after_created, after_id, top as i64 + 1],
                    record,
                )
                .map_err(backend("list"))?;
            rows.collect::<Result<_, _>>().map_err(backend("list"))?
        };
        let continuation = if items.len() > top {
            items.truncate(top);
            items.last().map(continuation_after)
        } else {
            None
        };
        Ok(Page {
            items,
            continuation,
        })
    }

    async fn overdue(&self, before: Millis, limit: usize) -> Result<Vec<Due>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached(
                "SELECT id, wake_seq, wake_at FROM deployments
                 WHERE wake_at IS NOT NULL AND wake_seq IS NOT NULL AND wake_at < ?1
                 ORDER BY wake_at, id LIMIT ?2",
            )
            .map_err(backend("find overdue"))?;
        let rows = statement
            .query_map(params![before, limit as i64], |r| {
                Ok(Due {
                    id: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    at: r.get(2)?,
                })
            })
            .map_err(backend("find overdue"))?;
        rows.collect::<Result<_, _>>()
            .map_err(backend("find overdue"))
    }

    async fn expired(&self, before: Millis, limit: usize) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached("SELECT id FROM deployments WHERE ended_at IS NOT NULL AND ended_at < ?1 ORDER BY ended_at, id LIMIT ?2")
            .map_err(backend("find expired"))?;
        let rows = statement
            .query_map(params![before, limit as i64], |r| r.get(0))
            .map_err(backend("find expired"))?;
        rows.collect::<Result<_, _>>()
            .map_err(backend("find expired"))
    }

    async fn put_logs(
        &self,
        id: &str,
        group: &str,
        instance: &str,
        container: &str,
        content: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.lock()
            .prepare_cached(
                "INSERT INTO logs (deployment, instance, container, group_name, saved, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (deployment, instance, container) DO UPDATE SET saved = excluded.saved, content = excluded.content",
            )
            .and_then(|mut s| s.execute(params![id, instance, container, group, now, content]))
            .map_err(backend("save logs"))?;
        Ok(())
    }

    async fn get_instance_logs(
        &self,
        id: &str,
        _group: &str,
        instance: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError> {
        self.lock()
            .prepare_cached(
                "SELECT content FROM logs WHERE deployment = ?1 AND instance = ?2 AND container = ?3",
            )
            .and_then(|mut s| s.query_row(params![id, instance, container], |r| r.get(0)).optional())
            .map_err(backend("read logs"))
    }

    async fn get_logs(
        &self,
        id: &str,
        group: &str,
        container: &str,
    ) -> Result<Option<String>, StoreError> {
        self.lock()
            .prepare_cached(
                "SELECT content FROM logs WHERE deployment = ?1 AND (instance = ?2 OR group_name = ?2) AND container = ?3
                 ORDER BY saved DESC, instance DESC LIMIT 1",
            )
            .and_then(|mut s| s.query_row(params![id, group, container], |r| r.get(0)).optional())
            .map_err(backend("read logs"))
    }

    async fn put_history(&self, id: &str, page: u32, body: &[u8]) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached(
                "INSERT INTO history (deployment, page, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (deployment, page) DO UPDATE SET body = ?3",
            )
            .and_then(|mut s| s.execute(params![id, page, body]))
            .map_err(backend("save a history page"))?;
        Ok(())
    }

    async fn get_history(&self, id: &str, page: u32) -> Result<Option<Bytes>, StoreError> {
        self.lock()
            .prepare_cached("SELECT body FROM history WHERE deployment = ?1 AND page = ?2")
            .and_then(|mut s| {
                s.query_row(params![id, page], |r| r.get::<_, Vec<u8>>(0))
                    .optional()
            })
            .map(|body| body.map(Bytes::from))
            .map_err(backend("read a history page"))
    }
}

#[async_trait]
impl Steps for SqliteStore {
    async fn send(&self, step: &Scheduled) -> Result<(), StoreError> {
        Self::insert_step(&self.lock(), step)?;
        self.sent.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, lease_ms: Millis) -> Result<Vec<Delivery>, StoreError> {
        let now = self.clock.now();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(backend("begin"))?;
        let rows: Vec<(i64, String, u32, i64)> = {
            let mut statement = tx
                .prepare_cached(
                    "UPDATE steps SET visible_at = ?1 + ?2, dequeue_count = dequeue_count + 1, lease = lease + 1
                     WHERE n IN (SELECT n FROM steps WHERE visible_at <= ?1 ORDER BY visible_at LIMIT ?3)
                     RETURNING n, body, dequeue_count, lease",
                )
                .map_err(backend("receive steps"))?;
            let rows = statement
                .query_map(params![now, lease_ms, max as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(backend("receive steps"))?;
            rows.collect::<Result<_, _>>()
                .map_err(backend("receive steps"))?
        };
        let mut deliveries = Vec::new();
        let mut poisoned = 0;
        for (n, text, dequeue_count, lease) in rows {
            if dequeue_count > MAX_DEQUEUE {
                tx.execute(
                    "INSERT OR REPLACE INTO poison (n, body, dequeue_count, poisoned_at) VALUES (?1, ?2, ?3, ?4)",
                    params![n, text, dequeue_count, now],
                )
                .map_err(backend("poison a step"))?;
                tx.execute("DELETE FROM steps WHERE n = ?1", params![n])
                    .map_err(backend("poison a step"))?;
                tracing::warn!(step.body = %text, step.dequeue_count = dequeue_count, "step message poisoned");
                poisoned += 1;
                continue;
            }
            deliveries.push(Delivery {
                message: StepMessage::from_text(&text),
                text,
                dequeue_count,
                receipt: format!("{n}:{lease}"),
            });
        }
        tx.commit().map_err(backend("commit"))?;
        crate::metrics::poisoned(poisoned);
        Ok(deliveries)
    }

    async fn complete(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let (n, lease) = delivery.receipt.split_once(':').unwrap_or(("0", "0"));
        self.lock()
            .prepare_cached("DELETE FROM steps WHERE n = ?1 AND lease = ?2")
            .and_then(|mut s| {
                s.execute(params![
                    n.parse::<i64>().unwrap_or(0),
                    lease.parse::<i64>().unwrap_or(0)
                ])
            })
            .map_err(backend("complete a step"))?;
        Ok(())
    }

    async fn wait(&self, max_ms: Millis) {
        let notified = self.sent.notified();
        let next: Option<Millis> = self
            .lock()
            .prepare_cached("SELECT min(visible_at) FROM steps")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .unwrap_or(None);
        let now = self.clock.now();
        let wait = match next {
            Some(at) if at <= now => return,
            Some(at) => (at - now).min(max_ms),
            None => max_ms,
        };
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(wait.max(1) as u64),
            notified,
        )
        .await;
    }

    async fn poisoned_steps(
        &self,
        max: usize,
        _lease_ms: Millis,
    ) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached("SELECT n, body, dequeue_count FROM poison ORDER BY n LIMIT ?1")
            .map_err(backend("read poison"))?;
        let rows = statement
            .query_map(params![max as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })
            .map_err(backend("read poison"))?;
        rows.map(|row| {
            row.map(|(n, text, dequeue_count)| Delivery {
                message: StepMessage::from_text(&text),
                text,
                dequeue_count,
                receipt: n.to_string(),
            })
        })
        .collect::<Result<_, _>>()
        .map_err(backend("read poison"))
    }

    async fn drop_poisoned(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached("DELETE FROM poison WHERE n = ?1")
            .and_then(|mut s| s.execute(params![delivery.receipt.parse::<i64>().unwrap_or(-1)]))
            .map_err(backend("drop a poisoned step"))?;
        Ok(())
    }

    async fn depth(&self) -> Result<Option<QueueDepth>, StoreError> {
        let now = self.clock.now();
        let (messages, oldest): (i64, Option<Millis>) = self
            .lock()
            .prepare_cached(
                "SELECT count(*), min(CASE WHEN visible_at <= ?1 THEN visible_at END) FROM steps",
            )
            .and_then(|mut s| s.query_row(params![now], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(backend("count steps"))?;
        Ok(Some(QueueDepth {
            messages: u64::try_from(messages).unwrap_or(0),
            oldest_visible_ms: Some(oldest.map_or(0, |at| (now - at).max(0))),
        }))
    }
}

/// Brings the file to [`SCHEMA_VERSION`], or refuses one a newer Berth wrote.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend("read the schema version"))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Backend {
            operation: "open the database",
            transient: false,
            source: format!(
                "the file was written by a newer Berth (schema version {version}; this Berth \
                 reads up to {SCHEMA_VERSION}): run that Berth or a later one on it, or restore \
                 the copy made before the upgrade (see OPERATIONS.md)"
            )
            .into(),
        });
    }
    for (from, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let to = from as i64 + 1;
        let run = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            // Another process may have migrated while this one waited for the lock.
            let now: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if now < to {
                step(conn)?;
                conn.pragma_update(None, "user_version", to)?;
            }
            conn.execute_batch("COMMIT")
        };
        if let Err(e) = run() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(backend("migrate the database")(e));
        }
        tracing::info!(from, to, "database schema migrated");
    }
    Ok(())
}

/// Adds `wake_seq` to a database made before it existed, filled from the checkpoints' bytes:
/// the one time the store reads inside them, since a record's wake seq was then only there.
fn add_wake_seq(conn: &Connection) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('deployments') WHERE name = 'wake_seq'",
        [],
        |r| r.get(0),
    )?;
    if present {
        return Ok(());
    }
    conn.execute_batch(
        "ALTER TABLE deployments ADD COLUMN wake_seq INTEGER;
         UPDATE deployments SET wake_seq = json_extract(CAST(body AS TEXT), '$.wake.seq')
          WHERE wake_at IS NOT NULL;",
    )
}

/// Creates the database file readable and writable by its owner only, unless it exists. SQLite
/// gives its `-wal` and `-shm` files the database file's permissions, so they follow.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[tokio::test]
    async fn a_database_from_before_wake_seq_gets_it_from_the_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE deployments (id TEXT PRIMARY KEY, version INTEGER NOT NULL,
                 status TEXT NOT NULL, created INTEGER NOT NULL, wake_at INTEGER,
                 ended_at INTEGER, body BLOB NOT NULL);
             INSERT INTO deployments VALUES ('waits', 3, 'Running', 10, 500, NULL,
                 CAST('{\"id\":\"waits\",\"wake\":{\"at\":500,\"seq\":7}}' AS BLOB));
             INSERT INTO deployments VALUES ('done', 9, 'Succeeded', 5, NULL, 900,
                 CAST('{\"id\":\"done\"}' AS BLOB));",
        )
        .unwrap();
        drop(old);
        let store = SqliteStore::open(&path, Arc::new(SystemClock)).unwrap();
        assert_eq!(
            store.overdue(1_000, 10).await.unwrap(),
            vec![Due {
                id: "waits".into(),
                seq: 7,
                at: 500
            }]
        );
        let done = store.load_record("done").await.unwrap().unwrap();
        assert_eq!((done.record.wake, done.record.ended), (None, Some(900)));
        assert_eq!(&done.record.body[..], b"{\"id\":\"done\"}");
        drop(store);
        // Opening again finds the column and leaves the rows alone.
        let store = SqliteStore::open(&path, Arc::new(SystemClock)).unwrap();
        assert_eq!(store.overdue(1_000, 10).await.unwrap().len(), 1);
        assert_eq!(user_version(&store), SCHEMA_VERSION);
    }

    fn user_version(store: &SqliteStore) -> i64 {
        store
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    /// A file the previous Berth wrote (`handler dev`, before schema versions: a pipeline and a
    /// job done, one job running) opens, is brought to this version, and reads whole.
    #[tokio::test]
    async fn the_previous_berths_database_file_opens_and_reads() {
        use crate::checkpoint::{Deployments, ListQuery as Listing};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        std::fs::write(
            &path,
            include_bytes!("../../tests/data/berth-unversioned.db"),
        )
        .unwrap();
        let store = SqliteStore::open(&path, Arc::new(SystemClock)).unwrap();
        assert_eq!(user_version(&store), SCHEMA_VERSION);
        let listing = Listing {
            top: 10,
            ..Listing::default()
        };
        let page = store.list(&listing).await.unwrap();
        let listed: Vec<(&str, &str)> = page
            .items
            .iter()
            .map(|d| (d.id.as_str(), d.status.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("still-running", "Running"),
                ("transcode-42", "Succeeded"),
                ("pipeline-1", "Succeeded")
            ]
        );
        assert!(page.unreadable.is_empty());
        let due = store.overdue(i64::MAX, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, "still-running");
        let pipeline = store.load("pipeline-1").await.unwrap().unwrap().deployment;
        assert_eq!(pipeline.history.first().unwrap().kind, "DeploymentAccepted");
        assert!(
            store
                .get_logs("pipeline-1", "evaluate", "main")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_database_a_newer_berth_wrote_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        drop(SqliteStore::open(&path, Arc::new(SystemClock)).unwrap());
        let newer = SCHEMA_VERSION + 1;
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch(&format!(
            "CREATE TABLE future (x); PRAGMA user_version = {newer};"
        ))
        .unwrap();
        drop(raw);
        let Err(error) = SqliteStore::open(&path, Arc::new(SystemClock)) else {
            panic!("a newer file was opened");
        };
        let error = error.to_string();
        assert!(
            error.contains(&format!(
                "written by a newer Berth (schema version {newer}; this Berth reads up to {SCHEMA_VERSION})"
            )),
            "{error}"
        );
        let raw = Connection::open(&path).unwrap();
        let kept: i64 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, newer);
    }
}
