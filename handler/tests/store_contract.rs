//! The contract of the store traits (`Checkpoints`, `Steps`, `RunTimes`, `Templates`, `Schedules`), written once and run against both
//! backends: SQLite on a temporary file, and Azure Storage on Azurite (started as for the other
//! `azure_*` tests; see `azure_support`).
//!
//! The suite works on records, whose bytes the stores must keep without reading them: every body
//! here is not JSON. Where the backends differ on purpose, [`Differences`] says so, and nothing
//! else in the suite looks at which backend it runs on.
#![allow(clippy::unwrap_used)]

mod azure_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::clock::{Clock, SystemClock};
use berth::store::azure::{AzureBackend, steps::HELD_FOR};
use berth::store::sqlite::SqliteStore;
use berth::store::{
    Checkpoints, Delivery, ListQuery, Millis, Record, RunTimes, Scheduled, Schedules, Status,
    StepMessage, Steps, StoreError, Templates, Version, Wake,
};
use bytes::Bytes;

/// What the backends do differently, on purpose.
struct Differences {
    /// How long a step sent for a save that then lost could stay hidden before it would show:
    /// SQLite sends a save's step in the save's transaction (nothing to wait for); Azure sends it
    /// before the save, hidden for `HELD_FOR`, and deletes it when the save loses.
    held: Duration,
    /// The shortest lease and delay the queue keeps: Azure's visibility timeouts are whole seconds.
    queue_tick: Duration,
    /// How far apart two log captures must be to be told apart by time: Azure orders them by
    /// the blobs' Last-Modified, which has whole seconds.
    log_tick: Duration,
    /// Whether a listing refuses another listing's continuation token. SQLite's is a cursor
    /// that continues any listing after it; Azure's names the listing its markers belong to.
    tokens_name_their_listing: bool,
}

/// A backend under test.
struct Fixture {
    store: Arc<dyn Checkpoints>,
    steps: Arc<dyn Steps>,
    run_times: Arc<dyn RunTimes>,
    templates: Arc<dyn Templates>,
    schedules: Arc<dyn Schedules>,
    differences: Differences,
    /// Keeps the SQLite file alive.
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite(_test: &str) -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(&dir.path().join("berth.db"), Arc::new(SystemClock)).unwrap());
    Some(Fixture {
        store: store.clone(),
        run_times: store.clone(),
        templates: store.clone(),
        schedules: store.clone(),
        steps: store,
        differences: Differences {
            held: Duration::ZERO,
            queue_tick: Duration::from_millis(200),
            log_tick: Duration::from_millis(20),
            tokens_name_their_listing: false,
        },
        _dir: Some(dir),
    })
}

async fn azure(_test: &str) -> Option<Fixture> {
    let account = Arc::new(azure_support::account()?);
    let backend = AzureBackend::on_account(
        account,
        &azure_support::unique("contract"),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    Some(Fixture {
        run_times: backend.store.clone(),
        templates: backend.store.clone(),
        schedules: backend.store.clone(),
        store: backend.store,
        steps: backend.steps,
        differences: Differences {
            held: HELD_FOR,
            queue_tick: Duration::from_secs(1),
            log_tick: Duration::from_millis(1_100),
            tokens_name_their_listing: true,
        },
        _dir: None,
    })
}

fn now() -> Millis {
    SystemClock.now()
}

/// A record whose bytes are not JSON (nor UTF-8): a store that reads them would fail.
fn record(id: &str, status: Status, created: Millis) -> Record {
    Record {
        id: id.into(),
        status,
        created,
        wake: None,
        ended: None,
        body: [&[0xfe, 0x00][..], id.as_bytes(), &[0xff]].concat().into(),
    }
}

fn step(id: &str, seq: u64, at: Millis) -> Scheduled {
    Scheduled {
        message: StepMessage { id: id.into(), seq },
        at,
    }
}

/// Everything the queue delivers within `within`, completing none.
async fn drain(steps: &dyn Steps, within: Duration) -> Vec<Delivery> {
    let start = Instant::now();
    let mut all = Vec::new();
    while start.elapsed() < within {
        all.extend(steps.receive(32, 60_000).await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all
}

/// The first delivery of a message for deployment `id`, waiting up to `within`.
async fn first_for(steps: &dyn Steps, id: &str, within: Duration) -> Option<Delivery> {
    let start = Instant::now();
    loop {
        let got = steps.receive(32, 60_000).await.unwrap();
        if let Some(d) = got
            .into_iter()
            .find(|d| d.message.as_ref().is_some_and(|m| m.id == id))
        {
            return Some(d);
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(items: &[Record]) -> Vec<&str> {
    items.iter().map(|r| r.id.as_str()).collect()
}

// ---- the behaviours -------------------------------------------------------------------------

async fn create_then_load(f: &Fixture) {
    let mut r = record("c-1", Status::Pending, now());
    r.wake = Some(Wake { at: now(), seq: 1 });
    let v = f
        .store
        .create_record(&r, &step("c-1", 1, now()))
        .await
        .unwrap();
    let loaded = f.store.load_record("c-1").await.unwrap().unwrap();
    assert_eq!(
        loaded.record, r,
        "bytes and index fields come back as written"
    );
    assert_eq!(loaded.version, v);
    assert!(f.store.load_record("absent").await.unwrap().is_none());
    // The first step goes with the create.
    let first = first_for(&*f.steps, "c-1", Duration::from_secs(10)).await;
    assert_eq!(first.unwrap().message.unwrap().seq, 1);
}

async fn create_twice_conflicts(f: &Fixture) {
    let r = record("c-2", Status::Pending, now());
    f.store
        .create_record(&r, &step("c-2", 1, now()))
        .await
        .unwrap();
    let mut other = record("c-2", Status::Running, now() + 5);
    other.body = Bytes::from_static(b"another");
    let err = f
        .store
        .create_record(&other, &step("c-2", 2, now()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref id) if id == "c-2"),
        "{err}"
    );
    assert_eq!(f.store.load_record("c-2").await.unwrap().unwrap().record, r);
}

async fn save_at_the_loaded_version_wins_once(f: &Fixture) {
    let r = record("s-1", Status::Pending, now());
    let v1 = f
        .store
        .create_record(&r, &step("s-1", 1, now()))
        .await
        .unwrap();
    let mut next = r.clone();
    next.status = Status::Running;
    next.body = Bytes::from_static(b"\x01second");
    let v2 = f.store.save_record(&next, &v1, None).await.unwrap();
    assert_ne!(v2, v1);
    let mut third = next.clone();
    third.body = Bytes::from_static(b"\x02third");
    let err = f.store.save_record(&third, &v1, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = f
        .store
        .save_record(&third, &Version("not a version".into()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let loaded = f.store.load_record("s-1").await.unwrap().unwrap();
    assert_eq!((loaded.record, loaded.version), (next, v2));
}

async fn concurrent_saves_from_one_version_one_wins(f: &Fixture) {
    let r = record("s-2", Status::Running, now());
    let v = f
        .store
        .create_record(&r, &step("s-2", 1, now()))
        .await
        .unwrap();
    let (mut a, mut b) = (r.clone(), r.clone());
    a.body = Bytes::from_static(b"\x0aa");
    b.body = Bytes::from_static(b"\x0bb");
    a.status = Status::Succeeded;
    b.status = Status::Failed;
    let (ra, rb) = tokio::join!(
        f.store.save_record(&a, &v, None),
        f.store.save_record(&b, &v, None)
    );
    let winner = match (ra, rb) {
        (Ok(_), Err(StoreError::Conflict(_))) => a,
        (Err(StoreError::Conflict(_)), Ok(_)) => b,
        other => panic!("exactly one save must win: {other:?}"),
    };
    assert_eq!(
        f.store.load_record("s-2").await.unwrap().unwrap().record,
        winner
    );
    // The listing by status agrees with the winner.
    let listed = f
        .store
        .list_records(&ListQuery {
            status: Some(winner.status),
            top: 10,
            continuation: None,
        })
        .await
        .unwrap();
    assert_eq!(ids(&listed.items), ["s-2"]);
}

async fn a_saves_step_is_sent_only_when_the_save_commits(f: &Fixture) {
    let r = record("t-1", Status::Pending, now());
    let v1 = f
        .store
        .create_record(&r, &step("t-1", 1, now()))
        .await
        .unwrap();
    let first = first_for(&*f.steps, "t-1", Duration::from_secs(10))
        .await
        .unwrap();
    f.steps.complete(&first).await.unwrap();

    let mut next = r.clone();
    next.status = Status::Running;
    next.wake = Some(Wake { at: now(), seq: 2 });
    let v2 = f
        .store
        .save_record(&next, &v1, Some(&step("t-1", 2, now())))
        .await
        .unwrap();
    let sent = first_for(&*f.steps, "t-1", Duration::from_secs(10))
        .await
        .expect("the committed save's step arrives");
    assert_eq!(sent.message.as_ref().unwrap().seq, 2);
    // When it arrives, the checkpoint it is for is there.
    assert_eq!(
        f.store.load_record("t-1").await.unwrap().unwrap().version,
        v2
    );
    f.steps.complete(&sent).await.unwrap();

    // A save that loses its compare-and-swap sends nothing, however long one waits.
    let err = f
        .store
        .save_record(&next, &v1, Some(&step("t-1", 3, now())))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let late = drain(
        &*f.steps,
        f.differences.held + f.differences.queue_tick + Duration::from_millis(500),
    )
    .await;
    assert!(
        late.iter().all(|d| d.message.as_ref().unwrap().seq != 3),
        "the lost save's step was delivered: {:?}",
        late.iter().map(|d| &d.text).collect::<Vec<_>>()
    );
}

async fn purge_deletes_the_checkpoint_and_its_logs(f: &Fixture) {
    let r = record("p-1", Status::Succeeded, now());
    f.store
        .create_record(&r, &step("p-1", 1, now()))
        .await
        .unwrap();
    f.store
        .put_logs("p-1", "work", "p-1-work-0", "main", "hello")
        .await
        .unwrap();
    assert!(f.store.purge("p-1").await.unwrap());
    assert!(f.store.load_record("p-1").await.unwrap().is_none());
    assert_eq!(f.store.get_logs("p-1", "work", "main").await.unwrap(), None);
    assert!(
        !f.store.purge("p-1").await.unwrap(),
        "nothing left to purge"
    );
    let all = f.store.list_records(&ListQuery::default()).await.unwrap();
    assert!(all.items.is_empty(), "{:?}", ids(&all.items));
    // The id can be created again.
    f.store
        .create_record(&r, &step("p-1", 1, now()))
        .await
        .unwrap();
}

async fn list_pages_newest_first_by_status(f: &Fixture) {
    let t0 = now();
    // (id, status, created): two pairs share a creation time, so ties are ordered by id.
    let made = [
        ("l-a", Status::Succeeded, t0),
        ("l-b", Status::Running, t0 + 1),
        ("l-c", Status::Succeeded, t0 + 2),
        ("l-e", Status::Failed, t0 + 2),
        ("l-d", Status::Running, t0 + 3),
        ("l-f", Status::Succeeded, t0 + 4),
        ("l-g", Status::Pending, t0 + 4),
    ];
    for (id, status, created) in made {
        let r = record(id, status, created);
        f.store.create_record(&r, &step(id, 1, t0)).await.unwrap();
    }
    let list = |status, top| list_all(f, status, top);
    let expected_all = ["l-f", "l-g", "l-d", "l-c", "l-e", "l-b", "l-a"];
    for top in [1, 2, 3, 100] {
        let all = list(None, top).await;
        assert_eq!(ids(&all), expected_all, "pages of {top}");
        assert_eq!(all[0], record("l-f", Status::Succeeded, t0 + 4));
    }
    assert_eq!(
        ids(&list(Some(Status::Succeeded), 2).await),
        ["l-f", "l-c", "l-a"]
    );
    assert_eq!(ids(&list(Some(Status::Running), 1).await), ["l-d", "l-b"]);
    assert_eq!(ids(&list(Some(Status::Pending), 5).await), ["l-g"]);
    assert!(list(Some(Status::Terminated), 5).await.is_empty());

    for status in [None, Some(Status::Succeeded), Some(Status::Running)] {
        let err = f
            .store
            .list_records(&ListQuery {
                status,
                top: 2,
                continuation: Some("not a token!".into()),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::BadContinuation),
            "{status:?}: {err}"
        );
    }
}

/// Every page of a listing, `top` at a time, from its start.
async fn list_all(f: &Fixture, status: Option<Status>, top: usize) -> Vec<Record> {
    list_from(f, status, top, None).await
}

/// Every page of a listing, `top` at a time, from `continuation`.
async fn list_from(
    f: &Fixture,
    status: Option<Status>,
    top: usize,
    mut continuation: Option<String>,
) -> Vec<Record> {
    let mut seen = Vec::new();
    for _ in 0..1_000 {
        let page = f
            .store
            .list_records(&ListQuery {
                status,
                top,
                continuation,
            })
            .await
            .unwrap();
        assert!(page.items.len() <= top);
        seen.extend(page.items);
        match page.continuation {
            Some(c) => continuation = Some(c),
            None => return seen,
        }
    }
    panic!("the listing does not end: {:?}", &ids(&seen)[..20]);
}

/// Moves record `id` to `status` with one save.
async fn move_record(f: &Fixture, id: &str, status: Status) {
    let stored = f.store.load_record(id).await.unwrap().unwrap();
    let mut r = stored.record;
    r.status = status;
    f.store
        .save_record(&r, &stored.version, None)
        .await
        .unwrap();
}

/// Live and finished records of every status, many created at the same time, list in one order
/// whatever the page size: newest first, then by id.
async fn list_merges_every_status_in_one_order(f: &Fixture) {
    let t0 = now();
    let statuses = Status::ALL;
    let mut made: Vec<Record> = (0..30)
        .map(|i| {
            // Ids not in creation order, statuses cycling apart from creation times.
            let id = format!("m-{:02}", (i * 7) % 30);
            record(&id, statuses[i % statuses.len()], t0 + (i % 4) as Millis)
        })
        .collect();
    for r in &made {
        f.store
            .create_record(r, &step(&r.id, 1, t0 + 60_000))
            .await
            .unwrap();
    }
    made.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    for top in [1, 2, 3, 5, 7, 30, 100] {
        assert_eq!(list_all(f, None, top).await, made, "pages of {top}");
    }
    for status in statuses {
        let of: Vec<&Record> = made.iter().filter(|r| r.status == status).collect();
        let listed = list_all(f, Some(status), 2).await;
        assert_eq!(listed.iter().collect::<Vec<_>>(), of, "{status:?}");
    }
}

/// A record that finishes between two pages is listed once: not again when it sorts before the
/// cursor, and not lost when it sorts after it.
async fn a_record_finishing_between_pages_is_listed_once(f: &Fixture) {
    let t0 = now();
    let made = [
        ("b-a", Status::Running, t0 + 5),
        ("b-b", Status::Running, t0 + 4),
        ("b-c", Status::Succeeded, t0 + 4),
        ("b-d", Status::Pending, t0 + 3),
        ("b-e", Status::Running, t0 + 2),
        ("b-f", Status::Failed, t0 + 2),
        ("b-g", Status::Running, t0 + 1),
        ("b-h", Status::Succeeded, t0),
    ];
    for (id, status, created) in made {
        f.store
            .create_record(&record(id, status, created), &step(id, 1, t0 + 60_000))
            .await
            .unwrap();
    }
    let first = f
        .store
        .list_records(&ListQuery {
            status: None,
            top: 3,
            continuation: None,
        })
        .await
        .unwrap();
    assert_eq!(ids(&first.items), ["b-a", "b-b", "b-c"]);
    // Behind the cursor: one listed already finishes. After it: live ones finish, in the
    // statuses whose entries sort before and after theirs, and one starts.
    move_record(f, "b-b", Status::Failed).await;
    move_record(f, "b-e", Status::Succeeded).await;
    move_record(f, "b-g", Status::Terminated).await;
    move_record(f, "b-d", Status::Running).await;
    let rest = list_from(f, None, 2, Some(first.continuation.unwrap())).await;
    assert_eq!(ids(&rest), ["b-d", "b-e", "b-f", "b-g", "b-h"]);
    assert_eq!(
        rest.iter().map(|r| r.status).collect::<Vec<_>>(),
        [
            Status::Running,
            Status::Succeeded,
            Status::Failed,
            Status::Terminated,
            Status::Succeeded
        ]
    );
}

/// A continuation token is the listing's own: anything else is refused, never a panic.
async fn foreign_and_forged_tokens_are_refused(f: &Fixture) {
    let t0 = now();
    for (i, status) in [Status::Running, Status::Succeeded, Status::Failed]
        .into_iter()
        .enumerate()
    {
        for j in 0..3 {
            let id = format!("k-{i}{j}");
            let r = record(&id, status, t0 + j);
            f.store
                .create_record(&r, &step(&id, 1, t0 + 60_000))
                .await
                .unwrap();
        }
    }
    let token_of = |status: Option<Status>| async move {
        f.store
            .list_records(&ListQuery {
                status,
                top: 1,
                continuation: None,
            })
            .await
            .unwrap()
            .continuation
            .unwrap()
    };
    let list = |status: Option<Status>, token: String| async move {
        f.store
            .list_records(&ListQuery {
                status,
                top: 2,
                continuation: Some(token),
            })
            .await
    };
    use base64::Engine as _;
    let b64 = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let hostile = [
        "not a token!".to_owned(),
        "A".repeat(100_000),
        b64(&"x".repeat(100_000)),
        // The listing of every deployment as Berth wrote it before it merged the status indexes.
        b64("index/all/\n2!88!MDAwMDIx"),
        b64("all\n"),
        b64("all\n17:k-00\n0 \n0 "),
        b64("all\nseventeen:k-00\n0 \n0 \n0 \n0 "),
        b64("all\n17:k-00\n99999999999999999999999 m\n0 \n0 \n0 "),
        b64("\u{0}\u{1}"),
        String::new(),
    ];
    for status in [None, Some(Status::Succeeded), Some(Status::Running)] {
        for token in &hostile {
            let err = list(status, token.clone()).await.unwrap_err();
            assert!(
                matches!(err, StoreError::BadContinuation),
                "{status:?}, {}: {err}",
                &token[..token.len().min(40)]
            );
        }
    }
    // Another listing's token.
    for (from, to) in [
        (None, Some(Status::Succeeded)),
        (Some(Status::Succeeded), None),
        (Some(Status::Running), None),
        (Some(Status::Succeeded), Some(Status::Failed)),
        (Some(Status::Running), Some(Status::Succeeded)),
    ] {
        let answer = list(to, token_of(from).await).await;
        if f.differences.tokens_name_their_listing {
            assert!(
                matches!(answer, Err(StoreError::BadContinuation)),
                "{from:?} -> {to:?}: {answer:?}"
            );
        } else {
            assert!(answer.is_ok(), "{from:?} -> {to:?}: {answer:?}");
        }
    }
}

async fn overdue_by_wake_and_limit(f: &Fixture) {
    let t0 = now();
    let wakes = [
        ("o-late", 300),
        ("o-early", 100),
        ("o-mid", 200),
        ("o-future", 10_000),
    ];
    for (id, at) in wakes {
        let mut r = record(id, Status::Running, t0);
        r.wake = Some(Wake {
            at: t0 + at,
            seq: at as u64,
        });
        f.store
            .create_record(&r, &step(id, 1, t0 + 60_000))
            .await
            .unwrap();
    }
    let mut idle = record("o-idle", Status::Succeeded, t0);
    idle.ended = Some(t0);
    f.store
        .create_record(&idle, &step("o-idle", 1, t0 + 60_000))
        .await
        .unwrap();

    let due = f.store.overdue(t0 + 1_000, 10).await.unwrap();
    let got: Vec<(&str, u64, Millis)> = due.iter().map(|d| (d.id.as_str(), d.seq, d.at)).collect();
    assert_eq!(
        got,
        [
            ("o-early", 100, t0 + 100),
            ("o-mid", 200, t0 + 200),
            ("o-late", 300, t0 + 300)
        ]
    );
    let two = f.store.overdue(t0 + 1_000, 2).await.unwrap();
    assert_eq!(
        two.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["o-early", "o-mid"]
    );
    assert!(
        f.store.overdue(t0 + 100, 10).await.unwrap().is_empty(),
        "before, not at"
    );
}

async fn expired_by_end_time(f: &Fixture) {
    let t0 = now();
    for (id, ended) in [
        ("x-2", Some(t0 + 20)),
        ("x-1", Some(t0 + 10)),
        ("x-3", Some(t0 + 30)),
        ("x-live", None),
    ] {
        let mut r = record(id, Status::Succeeded, t0);
        r.ended = ended;
        f.store
            .create_record(&r, &step(id, 1, t0 + 60_000))
            .await
            .unwrap();
    }
    assert_eq!(f.store.expired(t0 + 25, 10).await.unwrap(), ["x-1", "x-2"]);
    assert_eq!(f.store.expired(t0 + 100, 1).await.unwrap(), ["x-1"]);
    assert!(f.store.expired(t0 + 10, 10).await.unwrap().is_empty());
    // A save that ends a live record puts it on the retention clock.
    let stored = f.store.load_record("x-live").await.unwrap().unwrap();
    let mut ended = stored.record.clone();
    ended.ended = Some(t0 + 5);
    f.store
        .save_record(&ended, &stored.version, None)
        .await
        .unwrap();
    assert_eq!(
        f.store.expired(t0 + 15, 10).await.unwrap(),
        ["x-live", "x-1"]
    );
}

async fn logs_by_group_and_by_instance(f: &Fixture) {
    let r = record("g-1", Status::Running, now());
    f.store
        .create_record(&r, &step("g-1", 1, now()))
        .await
        .unwrap();
    f.store
        .put_logs(
            "g-1",
            "work",
            "g-1-work-2",
            "main",
            "second try, first capture",
        )
        .await
        .unwrap();
    f.store
        .put_logs("g-1", "work", "g-1-work-2", "main", "second try")
        .await
        .unwrap();
    tokio::time::sleep(f.differences.log_tick).await;
    // Captured later, though its name sorts first: the group's latest instance is this one.
    f.store
        .put_logs("g-1", "work", "g-1-work-1", "main", "third try")
        .await
        .unwrap();
    f.store
        .put_logs("g-1", "work", "g-1-work-1", "side", "sidecar")
        .await
        .unwrap();
    f.store
        .put_logs("g-1", "other", "g-1-other-0", "main", "other group")
        .await
        .unwrap();

    let get =
        |group: &'static str, container: &'static str| f.store.get_logs("g-1", group, container);
    assert_eq!(
        get("work", "main").await.unwrap().as_deref(),
        Some("third try")
    );
    assert_eq!(
        get("g-1-work-2", "main").await.unwrap().as_deref(),
        Some("second try"),
        "overwritten"
    );
    assert_eq!(
        get("g-1-work-1", "side").await.unwrap().as_deref(),
        Some("sidecar")
    );
    assert_eq!(
        get("other", "main").await.unwrap().as_deref(),
        Some("other group")
    );
    assert_eq!(get("other", "side").await.unwrap(), None);
    assert_eq!(get("nope", "main").await.unwrap(), None);
    assert_eq!(f.store.get_logs("g-2", "work", "main").await.unwrap(), None);

    // One instance's log by its exact name, whichever was saved last.
    let exact = |instance: &'static str, container: &'static str| {
        f.store
            .get_instance_logs("g-1", "work", instance, container)
    };
    assert_eq!(
        exact("g-1-work-2", "main").await.unwrap().as_deref(),
        Some("second try")
    );
    assert_eq!(
        exact("g-1-work-1", "main").await.unwrap().as_deref(),
        Some("third try")
    );
    assert_eq!(exact("g-1-work-3", "main").await.unwrap(), None);
    assert_eq!(
        f.store
            .get_instance_logs("g-1", "work", "../g-1-work-1", "main")
            .await
            .unwrap(),
        None
    );
}

async fn queue_leases_and_completes(f: &Fixture) {
    let tick = f.differences.queue_tick;
    f.steps.send(&step("q-1", 4, now())).await.unwrap();
    let first = first_for(&*f.steps, "q-1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        first.message,
        Some(StepMessage {
            id: "q-1".into(),
            seq: 4
        })
    );
    assert_eq!(
        first.text,
        StepMessage {
            id: "q-1".into(),
            seq: 4
        }
        .to_text()
    );
    assert_eq!(first.dequeue_count, 1);
    // Leased for a minute by `first_for`: hidden from other receivers meanwhile.
    assert!(f.steps.receive(32, 60_000).await.unwrap().is_empty());
    f.steps.complete(&first).await.unwrap();

    // A short lease runs out, and the message comes back, counted.
    f.steps.send(&step("q-2", 1, now())).await.unwrap();
    let start = Instant::now();
    let leased = loop {
        let got = f
            .steps
            .receive(1, tick.as_millis() as Millis)
            .await
            .unwrap();
        if let Some(d) = got.into_iter().next() {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(leased.dequeue_count, 1);
    let again = first_for(&*f.steps, "q-2", tick * 5)
        .await
        .expect("back after its lease");
    assert_eq!(again.dequeue_count, 2);
    // Completing with the old lease's receipt neither fails nor deletes the new delivery's hold.
    f.steps.complete(&leased).await.unwrap();
    f.steps.complete(&again).await.unwrap();
    assert!(
        drain(&*f.steps, tick * 2).await.is_empty(),
        "completed means gone"
    );
}

async fn a_message_delivered_too_often_is_poisoned_then_read_and_dropped(f: &Fixture) {
    let tick = f.differences.queue_tick;
    let lease = tick.as_millis() as Millis;
    f.steps.send(&step("z-1", 3, now())).await.unwrap();
    // Taken and never completed, delivery after delivery (a step that fails every time).
    let start = Instant::now();
    let mut deliveries = 0;
    loop {
        assert!(start.elapsed() < tick * 20, "poisoned after {deliveries}");
        let got = f.steps.receive(1, lease).await.unwrap();
        deliveries += got.len();
        if got.is_empty() {
            let poisoned = f.steps.poisoned_steps(10, 60_000).await.unwrap();
            if !poisoned.is_empty() {
                assert_eq!(poisoned.len(), 1, "{poisoned:?}");
                let p = &poisoned[0];
                assert_eq!(
                    p.message,
                    Some(StepMessage {
                        id: "z-1".into(),
                        seq: 3
                    })
                );
                assert!(deliveries >= 5, "{deliveries} deliveries");
                f.steps.drop_poisoned(p).await.unwrap();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(f.steps.poisoned_steps(10, 60_000).await.unwrap().is_empty());
    assert!(
        drain(&*f.steps, tick * 2).await.is_empty(),
        "not in the queue either"
    );
}

async fn an_early_message_stays_hidden(f: &Fixture) {
    let tick = f.differences.queue_tick;
    let sent = Instant::now();
    f.steps
        .send(&step("e-1", 1, now() + 2 * tick.as_millis() as Millis))
        .await
        .unwrap();
    assert!(
        f.steps.receive(32, 60_000).await.unwrap().is_empty(),
        "not before its time"
    );
    let d = first_for(&*f.steps, "e-1", tick * 10)
        .await
        .expect("arrives at its time");
    assert!(sent.elapsed() >= tick, "arrived after {:?}", sent.elapsed());
    f.steps.complete(&d).await.unwrap();
}

fn digest(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

async fn run_times_start_empty_and_follow_recorded_runs(f: &Fixture) {
    let (one, two) = (digest(1), digest(2));
    assert_eq!(f.run_times.run_time(&one).await.unwrap(), None);
    let first = f.run_times.record_run(&one, 60_000).await.unwrap();
    assert_eq!(
        (first.mean_ms, first.spread_ms, first.runs),
        (60_000.0, 0.0, 1)
    );
    let second = f.run_times.record_run(&one, 80_000).await.unwrap();
    assert_eq!((second.mean_ms, second.runs), (70_000.0, 2));
    assert_eq!(f.run_times.run_time(&one).await.unwrap(), Some(second));
    // Another spec has its own.
    assert_eq!(f.run_times.run_time(&two).await.unwrap(), None);
    f.run_times.record_run(&two, 5_000).await.unwrap();
    assert_eq!(f.run_times.run_time(&one).await.unwrap(), Some(second));
}

async fn concurrent_run_records_all_count(f: &Fixture) {
    let one = digest(3);
    let records = (0..6).map(|i| f.run_times.record_run(&one, 10_000 + i * 1_000));
    for recorded in futures::future::join_all(records).await {
        recorded.unwrap();
    }
    let estimate = f.run_times.run_time(&one).await.unwrap().unwrap();
    assert_eq!(estimate.runs, 6);
    assert!(
        (10_000.0..=15_000.0).contains(&estimate.mean_ms),
        "{estimate:?}"
    );
}

async fn a_run_time_digest_that_is_not_hex_is_refused_by_name(f: &Fixture) {
    for bad in [
        "",
        "../checkpoint",
        &"G".repeat(64),
        &digest(0xab).to_uppercase(),
    ] {
        let error = f.run_times.run_time(bad).await.unwrap_err().to_string();
        assert!(error.contains("name a run-time estimate"), "{error}");
        assert!(error.contains(&format!("'{bad}'")), "{error}");
        assert!(f.run_times.record_run(bad, 1).await.is_err());
    }
}

/// A status word this Berth does not know (a newer one's) reads as `Unknown` and stops nothing.
async fn an_unknown_status_word_is_kept_apart(f: &Fixture) {
    let t = now();
    f.store
        .create_record(
            &record("u-new", Status::Unknown, t),
            &step("u-new", 1, t + 60_000),
        )
        .await
        .unwrap();
    f.store
        .create_record(
            &record("u-old", Status::Running, t - 1),
            &step("u-old", 1, t + 60_000),
        )
        .await
        .unwrap();
    let loaded = f.store.load_record("u-new").await.unwrap().unwrap();
    assert_eq!(loaded.record.status, Status::Unknown);
    let page = f
        .store
        .list_records(&ListQuery {
            top: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&page.items), vec!["u-new", "u-old"]);
    assert!(f.store.purge("u-new").await.unwrap());
}

/// Checkpoints as the previous Berth wrote them (no schema version) decode on both backends; one
/// a newer Berth wrote is listed apart, said why, and the rest of the page is listed.
async fn checkpoints_of_the_previous_format_decode_and_newer_ones_are_apart(f: &Fixture) {
    use berth::checkpoint::{Deployments, ListQuery as Listing};
    let previous = include_bytes!("data/checkpoint-unversioned.json");
    let t = now();
    let mut old = record("pipeline-1", Status::Succeeded, t - 1);
    old.body = Bytes::from_static(previous);
    old.ended = Some(t - 1);
    f.store
        .create_record(&old, &step("pipeline-1", 1, t + 60_000))
        .await
        .unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(previous).unwrap();
    assert!(doc.get("schemaVersion").is_none());
    doc["id"] = "pipeline-2".into();
    doc["schemaVersion"] = (berth::engine::SCHEMA_VERSION + 1).into();
    let mut newer = record("pipeline-2", Status::Succeeded, t);
    newer.body = Bytes::from(serde_json::to_vec(&doc).unwrap());
    newer.ended = Some(t);
    f.store
        .create_record(&newer, &step("pipeline-2", 1, t + 60_000))
        .await
        .unwrap();

    let d = f
        .store
        .load("pipeline-1")
        .await
        .unwrap()
        .unwrap()
        .deployment;
    assert_eq!((d.schema_version, d.spec.groups.len()), (1, 3));
    assert_eq!(d.status, berth::engine::RuntimeStatus::Succeeded);
    let error = f.store.load("pipeline-2").await.unwrap_err().to_string();
    assert!(error.contains("written by a newer Berth"), "{error}");
    let page = f
        .store
        .list(&Listing {
            top: 10,
            ..Listing::default()
        })
        .await
        .unwrap();
    let listed: Vec<&str> = page.items.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(listed, vec!["pipeline-1"]);
    assert_eq!(page.unreadable.len(), 1);
    assert_eq!(
        (page.unreadable[0].id.as_str(), page.unreadable[0].status),
        ("pipeline-2", Status::Succeeded)
    );
}

/// Archived history pages are kept byte for byte beside their checkpoint, overwritten in place,
/// and go with it on purge.
async fn history_pages_are_kept_and_purged(f: &Fixture) {
    let t = now();
    f.store
        .create_record(
            &record("h-1", Status::Running, t),
            &step("h-1", 1, t + 60_000),
        )
        .await
        .unwrap();
    assert!(f.store.get_history("h-1", 0).await.unwrap().is_none());
    f.store
        .put_history("h-1", 0, &[0xfe, 0x00, 1])
        .await
        .unwrap();
    f.store.put_history("h-1", 1, b"[]").await.unwrap();
    f.store
        .put_history("h-1", 0, &[0xfe, 0x00, 2])
        .await
        .unwrap();
    let page = f.store.get_history("h-1", 0).await.unwrap().unwrap();
    assert_eq!(&page[..], &[0xfe, 0x00, 2]);
    assert_eq!(
        &f.store.get_history("h-1", 1).await.unwrap().unwrap()[..],
        b"[]"
    );
    assert!(f.store.get_history("h-2", 0).await.unwrap().is_none());
    assert!(f.store.purge("h-1").await.unwrap());
    assert!(f.store.get_history("h-1", 0).await.unwrap().is_none());
    assert!(f.store.get_history("h-1", 1).await.unwrap().is_none());
}

async fn template_versions_are_written_once_and_the_latest_is_read(f: &Fixture) {
    let t = &f.templates;
    assert_eq!(t.get_template("tpl-a", None).await.unwrap(), None);
    t.put_template("tpl-a", 1, &[0xfe, 1]).await.unwrap();
    let again = t.put_template("tpl-a", 1, &[0xfe, 9]).await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again}");
    t.put_template("tpl-a", 2, &[0xfe, 2]).await.unwrap();
    let latest = t.get_template("tpl-a", None).await.unwrap().unwrap();
    assert_eq!((latest.0, &latest.1[..]), (2, &[0xfe, 2][..]));
    let first = t.get_template("tpl-a", Some(1)).await.unwrap().unwrap();
    assert_eq!(
        (first.0, &first.1[..]),
        (1, &[0xfe, 1][..]),
        "a version never changes"
    );
    assert_eq!(t.get_template("tpl-a", Some(3)).await.unwrap(), None);
    assert_eq!(t.get_template("tpl-b", None).await.unwrap(), None);
}

async fn concurrent_puts_of_one_template_version_one_wins(f: &Fixture) {
    let bodies: Vec<[u8; 2]> = (0..6u8).map(|i| [0xfe, i]).collect();
    let puts = bodies
        .iter()
        .map(|body| f.templates.put_template("tpl-race", 1, body));
    let results = futures::future::join_all(puts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StoreError::Conflict(_))))
    );
}

async fn templates_list_by_name_in_pages_and_delete_whole(f: &Fixture) {
    let t = &f.templates;
    for (name, versions) in [("tpl-c", 1), ("tpl-a", 3), ("tpl-b", 2)] {
        for v in 1..=versions {
            t.put_template(name, v, b"\xfe").await.unwrap();
        }
    }
    let first = t.list_templates(2, None).await.unwrap();
    assert_eq!(
        first.items,
        [("tpl-a".to_owned(), 3), ("tpl-b".to_owned(), 2)]
    );
    let token = first.continuation.unwrap();
    let second = t.list_templates(2, Some(&token)).await.unwrap();
    assert_eq!(second.items, [("tpl-c".to_owned(), 1)]);
    assert_eq!(second.continuation, None);
    assert!(matches!(
        t.list_templates(2, Some("not-a-token")).await,
        Err(StoreError::BadContinuation)
    ));
    assert!(t.delete_template("tpl-a").await.unwrap());
    assert!(!t.delete_template("tpl-a").await.unwrap());
    assert_eq!(t.get_template("tpl-a", None).await.unwrap(), None);
    assert_eq!(t.get_template("tpl-a", Some(1)).await.unwrap(), None);
    let names: Vec<String> = t
        .list_templates(10, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["tpl-b", "tpl-c"]);
}

async fn a_template_name_that_is_not_one_is_refused(f: &Fixture) {
    for bad in ["../x", "a/b", "", "UPPER", &"a".repeat(41)] {
        assert!(
            f.templates.put_template(bad, 1, b"x").await.is_err(),
            "{bad}"
        );
        assert!(f.templates.get_template(bad, None).await.is_err(), "{bad}");
        assert!(f.templates.delete_template(bad).await.is_err(), "{bad}");
    }
    assert!(f.templates.put_template("tpl-z", 0, b"x").await.is_err());
}

/// Schedules: created once, replaced only at the version loaded (two writers from one version:
/// one wins), listed by name, deleted; their bytes kept as given.
async fn schedules_change_by_compare_and_swap(f: &Fixture) {
    let s = f.schedules.as_ref();
    assert!(s.load_schedule("nightly").await.unwrap().is_none());
    let v1 = s.save_schedule("nightly", b"\x00one", None).await.unwrap();
    assert!(matches!(
        s.save_schedule("nightly", b"again", None).await,
        Err(StoreError::Conflict(_))
    ));
    let loaded = s.load_schedule("nightly").await.unwrap().unwrap();
    assert_eq!((&loaded.body[..], &loaded.version), (&b"\x00one"[..], &v1));
    let (a, b) = tokio::join!(
        s.save_schedule("nightly", b"a", Some(&v1)),
        s.save_schedule("nightly", b"b", Some(&v1))
    );
    let won: Vec<bool> = [&a, &b].iter().map(|r| r.is_ok()).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{a:?} {b:?}");
    let lost = if a.is_ok() { &b } else { &a };
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    assert!(matches!(
        s.save_schedule("nightly", b"stale", Some(&v1)).await,
        Err(StoreError::Conflict(_))
    ));
    s.save_schedule("hourly", b"h", None).await.unwrap();
    let names: Vec<String> = s
        .list_schedules(10)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert_eq!(names, ["hourly", "nightly"]);
    assert_eq!(s.list_schedules(1).await.unwrap().len(), 1);
    assert!(s.delete_schedule("hourly").await.unwrap());
    assert!(!s.delete_schedule("hourly").await.unwrap());
    assert!(matches!(
        s.save_schedule("hourly", b"gone", Some(&v1)).await,
        Err(StoreError::Conflict(_))
    ));
    // Schedules are not deployments.
    assert!(f.store.load_record("nightly").await.unwrap().is_none());
    assert!(f.store.overdue(Millis::MAX, 10).await.unwrap().is_empty());
}

/// One test per behaviour and backend.
macro_rules! contract {
    ($backend:ident: $($behaviour:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let name = concat!(stringify!($backend), "::", stringify!($behaviour));
                    let Some(fixture) = super::$backend(name).await else {
                        return;
                    };
                    super::$behaviour(&fixture).await;
                }
            )*
        }
    };
}

macro_rules! suite {
    ($($backend:ident),*) => {
        $(contract!($backend:
            create_then_load,
            create_twice_conflicts,
            save_at_the_loaded_version_wins_once,
            concurrent_saves_from_one_version_one_wins,
            a_saves_step_is_sent_only_when_the_save_commits,
            purge_deletes_the_checkpoint_and_its_logs,
            list_pages_newest_first_by_status,
            list_merges_every_status_in_one_order,
            a_record_finishing_between_pages_is_listed_once,
            foreign_and_forged_tokens_are_refused,
            overdue_by_wake_and_limit,
            expired_by_end_time,
            logs_by_group_and_by_instance,
            queue_leases_and_completes,
            an_early_message_stays_hidden,
            a_message_delivered_too_often_is_poisoned_then_read_and_dropped,
            run_times_start_empty_and_follow_recorded_runs,
            concurrent_run_records_all_count,
            a_run_time_digest_that_is_not_hex_is_refused_by_name,
            an_unknown_status_word_is_kept_apart,
            checkpoints_of_the_previous_format_decode_and_newer_ones_are_apart,
            history_pages_are_kept_and_purged,
            template_versions_are_written_once_and_the_latest_is_read,
            concurrent_puts_of_one_template_version_one_wins,
            templates_list_by_name_in_pages_and_delete_whole,
            a_template_name_that_is_not_one_is_refused,
            schedules_change_by_compare_and_swap,
        );)*
    };
}

suite!(sqlite, azure);
