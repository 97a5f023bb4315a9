//! Contract tests of the Azure backend's `Checkpoints` and `Steps` against a real Azurite: the
//! checkpoint CAS, listing newest first by status, the sweep's queries, logs, purge, and the step
//! queue's delay, lease, poison and wire encoding.
#![allow(clippy::unwrap_used)]

mod azure_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_support::{eventually, unique};
use berth::azure_storage::{Kind, StorageAccount};
use berth::checkpoint::{Deployments, ListQuery};
use berth::clock::{Clock, SystemClock};
use berth::engine::state::Wake;
use berth::engine::{self, Deployment, Millis, Phase, RuntimeStatus, StartOptions};
use berth::spec::{Format, parse};
use berth::store::azure::AzureBackend;
use berth::store::{Checkpoints, Scheduled, StepMessage, Steps, StoreError};
use serde_json::json;

/// A fresh backend on its own container and queues; `None` only when skipping Azurite was asked for.
async fn backend() -> Option<AzureBackend> {
    let account = Arc::new(azure_support::account()?);
    Some(
        AzureBackend::on_account(account, &unique("store"), Arc::new(SystemClock))
            .await
            .unwrap(),
    )
}

/// A deployment as the engine starts it, created at `created`.
fn deployment(id: &str, created: Millis) -> Deployment {
    let spec = json!({
        "id": id,
        "groups": [{ "name": "work", "properties": { "containers": [
            { "name": "main", "properties": { "image": "busybox",
              "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } } ] } }]
    });
    let spec = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    engine::start(
        spec,
        None,
        "digest".into(),
        StartOptions::new("http://127.0.0.1:7071"),
        created,
    )
    .next
}

fn step(id: &str, seq: u64, at: Millis) -> Scheduled {
    Scheduled {
        message: StepMessage { id: id.into(), seq },
        at,
    }
}

fn now() -> Millis {
    SystemClock.now()
}

/// A listing query.
fn page(status: Option<RuntimeStatus>, top: usize, continuation: Option<String>) -> ListQuery {
    ListQuery {
        status,
        top,
        continuation,
    }
}

/// The ids a page lists, in order.
fn ids(p: &berth::checkpoint::Page) -> Vec<String> {
    p.items.iter().map(|d| d.id.clone()).collect()
}

/// Moves a stored deployment to `status` (and phase `Done` for terminal ones) with one save.
async fn move_to(b: &AzureBackend, id: &str, status: RuntimeStatus) {
    let stored = b.store.load(id).await.unwrap().unwrap();
    let mut d = stored.deployment;
    d.seq += 1;
    d.status = status;
    if status.is_terminal() {
        d.phase = Phase::Done;
        d.wake = None;
    }
    b.store.save(&d, &stored.version, None).await.unwrap();
}

#[tokio::test]
async fn creates_and_saves_are_compare_and_swap() {
    let Some(b) = backend().await else {
        return;
    };
    let d = deployment("cas-1", now());
    let first = step("cas-1", d.seq, now());
    let v1 = b.store.create(&d, &first).await.unwrap();
    // A second create of the same id is a conflict, whatever it holds.
    let err = b.store.create(&d, &first).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref id) if id == "cas-1"),
        "{err}"
    );

    let stored = b.store.load("cas-1").await.unwrap().unwrap();
    assert_eq!(stored.version, v1);
    assert_eq!(stored.deployment, d);
    let mut next = d.clone();
    next.seq += 1;
    let v2 = b.store.save(&next, &v1, None).await.unwrap();
    assert_ne!(v2, v1);
    // Saving from the old version loses: someone else saved since.
    let err = b.store.save(&next, &v1, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(
        err.is_transient(),
        "a conflict is answered by reload-and-reapply"
    );

    // Ten writers from one version: exactly one wins.
    let writers = (0..10).map(|i| {
        let (store, mut d, v) = (b.store.clone(), next.clone(), v2.clone());
        d.history.push(engine::state::HistoryEntry {
            at: now(),
            kind: format!("writer-{i}"),
            detail: String::new(),
        });
        tokio::spawn(async move { store.save(&d, &v, None).await })
    });
    let results = futures::future::join_all(writers).await;
    let won = results
        .iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(won, 1, "{results:?}");
    for r in results {
        if let Err(e) = r.unwrap() {
            assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        }
    }

    // The first step was sent once the checkpoint existed; the second create's was withdrawn.
    let got = b.steps.receive(32, 30_000).await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].message, Some(first.message));
    b.steps.complete(&got[0]).await.unwrap();

    // A save's step is visible as soon as the save returns; a losing save's step never shows.
    let stored = b.store.load("cas-1").await.unwrap().unwrap();
    let mut d = stored.deployment;
    d.seq += 1;
    let v = b
        .store
        .save(&d, &stored.version, Some(&step("cas-1", d.seq, now())))
        .await
        .unwrap();
    let err = b
        .store
        .save(&d, &stored.version, Some(&step("cas-1", d.seq + 1, now())))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let got = b.steps.receive(32, 30_000).await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].message.as_ref().unwrap().seq, d.seq);
    b.steps.complete(&got[0]).await.unwrap();
    assert_eq!(b.store.load("cas-1").await.unwrap().unwrap().version, v);
    // Ids that cannot be deployment ids name no blob.
    assert!(b.store.load("../x").await.unwrap().is_none());
    assert!(b.store.load("Bad").await.unwrap().is_none());
}

#[tokio::test]
async fn lists_page_newest_first_with_a_status_filter() {
    let Some(b) = backend().await else {
        return;
    };
    let t0 = now() - 100_000;
    for i in 0..7 {
        let id = format!("list-{i}");
        let d = deployment(&id, t0 + i * 1_000);
        b.store.create(&d, &step(&id, d.seq, t0)).await.unwrap();
    }
    for i in [1, 2, 4, 6] {
        move_to(&b, &format!("list-{i}"), RuntimeStatus::Running).await;
    }
    move_to(&b, "list-2", RuntimeStatus::Succeeded).await;
    move_to(&b, "list-5", RuntimeStatus::Terminated).await;

    // Everything, three at a time, newest first.
    let mut all = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let p = b.store.list(&page(None, 3, token)).await.unwrap();
        pages += 1;
        all.extend(ids(&p));
        token = p.continuation;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        all,
        (0..7)
            .rev()
            .map(|i| format!("list-{i}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(pages, 3);

    // Running only, found by the checkpoints' status tag: those that moved on are not listed.
    let before = b.account.transactions().snapshot();
    let p = b
        .store
        .list(&page(Some(RuntimeStatus::Running), 2, None))
        .await
        .unwrap();
    assert_eq!(ids(&p), ["list-6", "list-4"]);
    let cost = b.account.transactions().snapshot().since(&before);
    assert_eq!(cost.get(Kind::BlobFindByTags), 1, "{cost}");
    assert_eq!(cost.get(Kind::BlobList), 0, "{cost}");
    assert_eq!(cost.get(Kind::BlobGet), 2, "one read per item: {cost}");
    let token = p.continuation.clone().unwrap();
    let p = b
        .store
        .list(&page(Some(RuntimeStatus::Running), 2, Some(token.clone())))
        .await
        .unwrap();
    assert_eq!(ids(&p), ["list-1"]);
    assert!(p.continuation.is_none());
    for (status, expected) in [
        (RuntimeStatus::Pending, vec!["list-3", "list-0"]),
        (RuntimeStatus::Succeeded, vec!["list-2"]),
        (RuntimeStatus::Terminated, vec!["list-5"]),
        (RuntimeStatus::Failed, vec![]),
    ] {
        let p = b.store.list(&page(Some(status), 50, None)).await.unwrap();
        assert_eq!(ids(&p), expected, "{status:?}");
    }
    // A token belongs to its listing.
    let err = b
        .store
        .list(&page(Some(RuntimeStatus::Pending), 2, Some(token)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadContinuation), "{err}");
    let err = b
        .store
        .list(&page(None, 2, Some("nonsense".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadContinuation), "{err}");
}

/// The status a listing entry says in its metadata.
async fn entry_says(b: &AzureBackend, name: &str) -> Option<String> {
    let container = b.account.container(b.store.container_name()).unwrap();
    let entry = container.get(name).await.unwrap()?;
    Some(entry.metadata.get("status").cloned().unwrap_or_default())
}

/// Writes a listing entry as an earlier Berth (`status: None`) or a CAS that lost would have.
async fn put_entry(b: &AzureBackend, name: &str, status: Option<RuntimeStatus>) {
    let container = b.account.container(b.store.container_name()).unwrap();
    let metadata: Vec<(&str, String)> = status
        .map(|s| ("status", s.as_str().to_owned()))
        .into_iter()
        .collect();
    container
        .put_with_metadata(
            name,
            bytes::Bytes::new(),
            &berth::azure_storage::WriteCondition::Overwrite,
            &berth::azure_storage::Tags::new(),
            &metadata,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_entry_saying_another_status_is_skipped_and_mended() {
    let Some(b) = backend().await else {
        return;
    };
    let t0 = now();
    let d = deployment("left-1", t0);
    b.store
        .create(&d, &step("left-1", d.seq, t0))
        .await
        .unwrap();
    let entry = berth::store::azure::names::all_entry(t0, "left-1");
    assert_eq!(entry_says(&b, &entry).await, None, "a create writes none");
    // A writer that wrote the entry of the status it was about to save and then lost its CAS:
    // the entry says Succeeded although the checkpoint is Running.
    move_to(&b, "left-1", RuntimeStatus::Running).await;
    put_entry(&b, &entry, Some(RuntimeStatus::Succeeded)).await;
    let succeeded = page(Some(RuntimeStatus::Succeeded), 10, None);
    // While the checkpoint is live, the entry may belong to a CAS in flight: skipped, kept.
    assert!(b.store.list(&succeeded).await.unwrap().items.is_empty());
    assert_eq!(entry_says(&b, &entry).await.as_deref(), Some("Succeeded"));
    // The save that ends it writes the entry again, with its status.
    move_to(&b, "left-1", RuntimeStatus::Failed).await;
    assert_eq!(entry_says(&b, &entry).await.as_deref(), Some("Failed"));
    // A loser's status written over the winner's once it ended: skipped, and mended by the reader.
    put_entry(&b, &entry, Some(RuntimeStatus::Succeeded)).await;
    assert!(b.store.list(&succeeded).await.unwrap().items.is_empty());
    assert_eq!(
        entry_says(&b, &entry).await.as_deref(),
        Some("Failed"),
        "the reader wrote the checkpoint's status back"
    );
    let failed = page(Some(RuntimeStatus::Failed), 10, None);
    assert_eq!(b.store.list(&failed).await.unwrap().items.len(), 1);
    // A create that lost (the id exists) leaves an entry of another creation time: skipped, and
    // removed as one that can never be true.
    let again = deployment("left-1", t0 + 5);
    let other = berth::store::azure::names::all_entry(t0 + 5, "left-1");
    put_entry(&b, &other, Some(RuntimeStatus::Succeeded)).await;
    assert!(matches!(
        b.store.create(&again, &step("left-1", 1, t0)).await,
        Err(StoreError::Conflict(_))
    ));
    let all = page(None, 10, None);
    let listed = b.store.list(&all).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].created, t0);
    assert_eq!(entry_says(&b, &other).await, None, "removed");
}

#[tokio::test]
async fn the_unfiltered_listing_merges_the_entries_with_the_live_ones() {
    let Some(b) = backend().await else {
        return;
    };
    let container = b.account.container(b.store.container_name()).unwrap();
    let t0 = now();
    for i in 0..6 {
        let id = format!("merge-{i}");
        let d = deployment(&id, t0 + i);
        let before = b.account.transactions().snapshot();
        b.store.create(&d, &step(&id, d.seq, t0)).await.unwrap();
        let cost = b.account.transactions().snapshot().since(&before);
        assert_eq!(cost.get(Kind::BlobPut), 1, "the checkpoint only: {cost}");
    }
    let entries = container.list("index/", None, 100).await.unwrap();
    assert!(
        entries.blobs.is_empty(),
        "a create writes no listing entry: {:?}",
        entries.blobs.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
    for (i, status) in [
        (0, RuntimeStatus::Succeeded),
        (1, RuntimeStatus::Failed),
        (2, RuntimeStatus::TimedOut),
        (3, RuntimeStatus::Terminated),
    ] {
        let id = format!("merge-{i}");
        let before = b.account.transactions().snapshot();
        move_to(&b, &id, status).await;
        let cost = b.account.transactions().snapshot().since(&before);
        assert_eq!(
            cost.get(Kind::BlobPut),
            2,
            "the checkpoint and its entry: {cost}"
        );
        let entry = berth::store::azure::names::all_entry(t0 + i, &id);
        assert_eq!(
            entry_says(&b, &entry).await.as_deref(),
            Some(status.as_str())
        );
    }
    // An earlier Berth wrote an entry without a status at every create: it lists its live
    // deployment once, beside the tag query that finds it too. A stray entry whose checkpoint was
    // never created is read and not listed.
    let legacy = berth::store::azure::names::all_entry(t0 + 4, "merge-4");
    let stray = berth::store::azure::names::all_entry(t0 + 9, "merge-9");
    put_entry(&b, &legacy, None).await;
    put_entry(&b, &stray, None).await;
    let before = b.account.transactions().snapshot();
    let first = b.store.list(&page(None, 2, None)).await.unwrap();
    let cost = b.account.transactions().snapshot().since(&before);
    assert_eq!(ids(&first), ["merge-5", "merge-4"]);
    assert_eq!(
        cost.get(Kind::BlobList),
        1,
        "one List of the entries: {cost}"
    );
    assert_eq!(
        cost.get(Kind::BlobFindByTags),
        1,
        "one Find of the live: {cost}"
    );
    assert_eq!(
        cost.get(Kind::BlobGet),
        3,
        "one read per candidate, the stray's too: {cost}"
    );
    let before = b.account.transactions().snapshot();
    let second = b
        .store
        .list(&page(None, 4, first.continuation))
        .await
        .unwrap();
    let cost = b.account.transactions().snapshot().since(&before);
    assert_eq!(ids(&second), ["merge-3", "merge-2", "merge-1", "merge-0"]);
    assert_eq!(cost.get(Kind::BlobList), 1, "{cost}");
    assert_eq!(
        cost.get(Kind::BlobPut),
        0,
        "a listing writes nothing here: {cost}"
    );
    assert!(second.continuation.is_none());

    // A status listing keeps the entries saying it and those saying none (read to tell).
    for (status, expected) in [
        (RuntimeStatus::TimedOut, vec!["merge-2"]),
        (RuntimeStatus::Succeeded, vec!["merge-0"]),
        (RuntimeStatus::Pending, vec!["merge-5", "merge-4"]),
    ] {
        let p = b.store.list(&page(Some(status), 10, None)).await.unwrap();
        assert_eq!(ids(&p), expected, "{status:?}");
    }

    // A well-formed token with a marker the service never gave is refused or lists from where
    // the service reads it, every item still a deployment.
    use base64::Engine as _;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("all\n{}:merge-5\n0 2!88!bm9uc2Vuc2U-", t0 + 5));
    match b.store.list(&page(None, 10, Some(forged))).await {
        Err(StoreError::BadContinuation) => {}
        Ok(p) => assert!(
            ids(&p).iter().all(|id| id.starts_with("merge-")),
            "{:?}",
            ids(&p)
        ),
        Err(e) => panic!("a forged marker is the token's fault: {e}"),
    }

    // Purge removes the deployment's entry, an earlier Berth's too.
    assert!(b.store.purge("merge-4").await.unwrap());
    assert!(container.get(&legacy).await.unwrap().is_none());
    assert!(b.store.purge("merge-0").await.unwrap());
    let entries = container.list("index/all/", None, 100).await.unwrap();
    assert_eq!(entries.blobs.len(), 4, "merge-1..3 and the stray");
}

#[tokio::test]
async fn a_forged_cursor_past_every_entry_costs_a_bounded_number_of_lists_per_page() {
    let Some(b) = backend().await else {
        return;
    };
    let t0 = now();
    let entries = berth::store::azure::index::MAX_LISTS_PER_PAGE + 4;
    for i in 0..entries {
        let id = format!("walk-{i}");
        let d = deployment(&id, t0 + i as Millis);
        b.store.create(&d, &step(&id, d.seq, t0)).await.unwrap();
        move_to(&b, &id, RuntimeStatus::Succeeded).await;
    }
    // A cursor created at -1 sorts after every deployment: nothing is listed, and a page of one
    // would list the entries one List at a time.
    use base64::Engine as _;
    let mut token = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("all\n-1:\n0 "));
    let mut pages = 0;
    while let Some(t) = token {
        let before = b.account.transactions().snapshot();
        let page = b.store.list(&page(None, 1, Some(t))).await.unwrap();
        let cost = b.account.transactions().snapshot().since(&before);
        assert!(page.items.is_empty(), "{:?}", page.items);
        assert!(
            cost.get(Kind::BlobList) <= berth::store::azure::index::MAX_LISTS_PER_PAGE as u64,
            "{cost}"
        );
        token = page.continuation;
        pages += 1;
        assert!(pages <= entries, "the walk moves forward");
    }
    assert_eq!(pages, 2, "one page at the limit, then the rest");

    // The honest listing still lists them all, newest first.
    let all = b.store.list(&page(None, 100, None)).await.unwrap();
    assert_eq!(all.items.len(), entries);
    assert_eq!(all.items[0].id, format!("walk-{}", entries - 1));
}

#[tokio::test]
async fn overdue_and_expired_read_only_the_tag_index() {
    let Some(b) = backend().await else {
        return;
    };
    let t0 = now() - 3_600_000;
    let waking = |id: &str, at: Option<Millis>, done: Option<Millis>| {
        let mut d = deployment(id, t0);
        d.seq = 4;
        d.wake = at.map(|at| Wake { at, seq: 4 });
        if let Some(ended) = done {
            d.status = RuntimeStatus::Succeeded;
            d.phase = Phase::Done;
            d.updated = ended;
        }
        d
    };
    let rows = [
        waking("due-late", Some(t0 + 30_000), None),
        waking("due-early", Some(t0 + 10_000), None),
        waking("due-future", Some(now() + 3_600_000), None),
        waking("ended-old", None, Some(t0 + 20_000)),
        waking("ended-new", None, Some(now())),
    ];
    for d in &rows {
        b.store
            .create(d, &step(&d.id, d.seq, now() + 3_600_000))
            .await
            .unwrap();
    }
    let before = b.account.transactions().snapshot();
    let due = b.store.overdue(t0 + 60_000, 10).await.unwrap();
    let cost = b.account.transactions().snapshot().since(&before);
    let ids: Vec<_> = due.iter().map(|d| (d.id.as_str(), d.seq, d.at)).collect();
    assert_eq!(
        ids,
        [("due-early", 4, t0 + 10_000), ("due-late", 4, t0 + 30_000)],
        "the longest overdue first, with the seq to re-drive"
    );
    assert_eq!(cost.get(Kind::BlobFindByTags), 1, "{cost}");
    assert_eq!(cost.total(), 1, "no checkpoint is read: {cost}");
    assert_eq!(b.store.overdue(t0 + 60_000, 1).await.unwrap().len(), 1);

    let expired = b.store.expired(t0 + 60_000, 10).await.unwrap();
    assert_eq!(expired, ["ended-old"]);
    let expired = b.store.expired(now() + 1, 10).await.unwrap();
    assert_eq!(expired, ["ended-old", "ended-new"]);

    // A save moves the tags with the checkpoint: once it waits for the future, it is not overdue.
    let stored = b.store.load("due-early").await.unwrap().unwrap();
    let mut d = stored.deployment;
    d.seq = 5;
    d.wake = Some(Wake {
        at: now() + 3_600_000,
        seq: 5,
    });
    b.store.save(&d, &stored.version, None).await.unwrap();
    let due = b.store.overdue(t0 + 60_000, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["due-late"]
    );
}

#[tokio::test]
async fn logs_are_found_by_group_and_by_instance_and_purged_with_the_deployment() {
    let Some(b) = backend().await else {
        return;
    };
    let t0 = now();
    let d = deployment("logs-1", t0);
    b.store
        .create(&d, &step("logs-1", d.seq, t0))
        .await
        .unwrap();
    b.store
        .put_logs("logs-1", "work", "logs-1-work-1", "main", "first attempt\n")
        .await
        .unwrap();
    b.store
        .put_logs(
            "logs-1",
            "work",
            "logs-1-work-2",
            "main",
            "second attempt\n",
        )
        .await
        .unwrap();
    b.store
        .put_logs("logs-1", "work", "logs-1-work-2", "side", "")
        .await
        .unwrap();
    let get = |group: &'static str, container: &'static str| {
        let store = b.store.clone();
        async move { store.get_logs("logs-1", group, container).await.unwrap() }
    };
    assert_eq!(
        get("work", "main").await.as_deref(),
        Some("second attempt\n")
    );
    assert_eq!(
        get("logs-1-work-1", "main").await.as_deref(),
        Some("first attempt\n")
    );
    assert_eq!(
        get("logs-1-work-2", "main").await.as_deref(),
        Some("second attempt\n")
    );
    assert_eq!(get("work", "side").await.as_deref(), Some(""));
    assert_eq!(get("work", "other").await, None);
    assert_eq!(get("nope", "main").await, None);
    // Capture is idempotent: a second capture overwrites.
    b.store
        .put_logs("logs-1", "work", "logs-1-work-1", "main", "first, again\n")
        .await
        .unwrap();
    assert_eq!(
        get("logs-1-work-1", "main").await.as_deref(),
        Some("first, again\n")
    );

    assert!(b.store.purge("logs-1").await.unwrap());
    assert!(!b.store.purge("logs-1").await.unwrap());
    assert!(b.store.load("logs-1").await.unwrap().is_none());
    assert_eq!(get("work", "main").await, None);
    let container = b.account.container(b.store.container_name()).unwrap();
    let left = container.list("", None, 100).await.unwrap().blobs;
    assert!(
        left.is_empty(),
        "nothing of the deployment is left: {left:?}"
    );
}

#[tokio::test]
async fn steps_wait_for_their_time_and_come_back_until_poisoned() {
    let Some(b) = backend().await else {
        return;
    };
    // A step due in two seconds is not visible before.
    let start = Instant::now();
    b.steps
        .send(&step("later-1", 3, now() + 2_000))
        .await
        .unwrap();
    assert!(b.steps.receive(32, 30_000).await.unwrap().is_empty());
    let got = eventually("the delayed step", Duration::from_secs(10), || async {
        let got = b.steps.receive(32, 30_000).await.unwrap();
        if got.is_empty() {
            Err("no step yet")
        } else {
            Ok(got)
        }
    })
    .await;
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1_500), "{waited:?}");
    assert_eq!(got[0].message.as_ref().unwrap().id, "later-1");
    assert_eq!(got[0].dequeue_count, 1);
    b.steps.complete(&got[0]).await.unwrap();

    // Beyond the queue's 7 days the delay is 7 days; the driver re-sends the rest (Early).
    let week = Duration::from_secs(7 * 24 * 3600);
    assert_eq!(b.steps.delay_until(now() + 30 * 86_400_000), week);
    assert_eq!(b.steps.delay_until(now() - 5_000), Duration::ZERO);

    // A lease that runs out gives the message back, with a higher dequeue count; completing it
    // with the stale receipt is not an error (the new delivery finishes the step).
    b.steps.send(&step("lease-1", 1, now())).await.unwrap();
    let first = b.steps.receive(1, 1_000).await.unwrap().pop().unwrap();
    let mut deliveries = vec![first.dequeue_count];
    for _ in 0..4 {
        let again = eventually(
            "the message to come back",
            Duration::from_secs(10),
            || async {
                let got = b.steps.receive(1, 1_000).await.unwrap().pop();
                got.ok_or("no message yet")
            },
        )
        .await;
        deliveries.push(again.dequeue_count);
    }
    assert_eq!(deliveries, [1, 2, 3, 4, 5]);
    b.steps.complete(&first).await.unwrap();
    // The sixth receipt moves it to the poison queue instead of delivering it.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(b.steps.receive(32, 1_000).await.unwrap().is_empty());
    let poison = b.account.queue(b.steps.poison_name()).unwrap();
    let poisoned = poison.receive(32, Duration::from_secs(30)).await.unwrap();
    assert_eq!(poisoned.len(), 1);
    assert_eq!(poisoned[0].text, step("lease-1", 1, 0).message.to_text());
    assert!(b.steps.receive(32, 1_000).await.unwrap().is_empty());

    // A message too large for the queue is refused before sending, saying why.
    let huge = step(&"x".repeat(50_000), 1, now());
    let err = b.steps.send(&huge).await.unwrap_err();
    assert!(!err.is_transient());
    assert!(err.to_string().contains("by reference"), "{err}");
}

#[tokio::test]
async fn an_idle_wait_ends_when_this_process_sends() {
    let Some(b) = backend().await else {
        return;
    };
    // Idle for a while: the back-off grows to its ceiling.
    for _ in 0..8 {
        assert!(b.steps.receive(32, 30_000).await.unwrap().is_empty());
    }
    let steps = b.steps.clone();
    let waiting = tokio::spawn(async move {
        let start = Instant::now();
        steps.wait(60_000).await;
        start.elapsed()
    });
    tokio::task::yield_now().await;
    b.steps.send(&step("wake-1", 1, now())).await.unwrap();
    let waited = waiting.await.unwrap();
    assert!(
        waited <= berth::store::azure::steps::MAX_IDLE_POLL,
        "{waited:?}"
    );
    assert_eq!(b.steps.receive(32, 30_000).await.unwrap().len(), 1);
    // With a message just received, the next wait does not wait at all.
    let start = Instant::now();
    b.steps.wait(60_000).await;
    assert!(start.elapsed() < Duration::from_millis(50));
}

#[tokio::test]
async fn step_messages_are_the_base64_text_the_functions_trigger_decodes() {
    let Some(connection) = azure_support::connection() else {
        return;
    };
    use base64::Engine as _;
    let host: serde_json::Value = serde_json::from_str(include_str!("../../host.json")).unwrap();
    assert_eq!(host["extensions"]["queues"]["messageEncoding"], "base64");

    let account = Arc::new(StorageAccount::new(&connection, None).unwrap());
    let b = AzureBackend::on_account(account.clone(), &unique("wire"), Arc::new(SystemClock))
        .await
        .unwrap();
    let message = StepMessage {
        id: "transcode-42".into(),
        seq: 7,
    };
    b.steps
        .send(&Scheduled {
            message: message.clone(),
            at: now(),
        })
        .await
        .unwrap();
    // The raw message, as another client (the Functions host) reads it: a plain SDK client.
    let raw = azure_support::raw_queue(&connection, b.steps.name());
    let peeked = raw
        .peek_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap()
        .pop()
        .unwrap();
    let wire = peeked.message_text.unwrap();
    assert_eq!(
        wire,
        base64::engine::general_purpose::STANDARD.encode(message.to_text())
    );
    // The trigger decodes the base64 and passes the text as the fixture shows.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/functions-host/request-queue-plain-string.json"
    );
    let mut envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let trigger_text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&wire)
            .unwrap(),
    )
    .unwrap();
    envelope["Data"]["myQueueItem"] = json!(serde_json::to_string(&trigger_text).unwrap());
    let body = serde_json::to_vec(&envelope).unwrap();
    let parsed = berth::functions::Envelope::parse(&body).unwrap();
    let decoded = berth::functions::QueueMessage::decode(&parsed, "myQueueItem").unwrap();
    assert_eq!(StepMessage::from_text(&decoded.text), Some(message));
}

/// A checkpoint written before checkpoints carried their index fields as metadata (tags only)
/// loads with the fields from its tags, at one Get Blob Tags more, until a save writes them.
#[tokio::test]
async fn a_checkpoint_with_tags_only_loads_its_index_fields_from_them() {
    let Some(b) = backend().await else {
        return;
    };
    let name = berth::store::azure::names::checkpoint("tags-only");
    let tags = berth::azure_storage::Tags::from_pairs([
        ("status", "Running"),
        ("created", "001700000000000"),
        ("wake", "001700000000500/4"),
    ])
    .unwrap();
    let container = b.account.container(b.store.container_name()).unwrap();
    container
        .put(
            &name,
            bytes::Bytes::from_static(b"opaque"),
            &berth::azure_storage::WriteCondition::Create,
            &tags,
        )
        .await
        .unwrap();
    let loaded = b.store.load_record("tags-only").await.unwrap().unwrap();
    let expected = berth::store::Record {
        id: "tags-only".into(),
        status: berth::store::Status::Running,
        created: 1_700_000_000_000,
        wake: Some(berth::store::Wake {
            at: 1_700_000_000_500,
            seq: 4,
        }),
        ended: None,
        body: bytes::Bytes::from_static(b"opaque"),
    };
    assert_eq!(loaded.record, expected);
    assert_eq!(b.transactions("tags-only").get(Kind::BlobGetTags), 1);
    b.store
        .save_record(&loaded.record, &loaded.version, None)
        .await
        .unwrap();
    let again = b.store.load_record("tags-only").await.unwrap().unwrap();
    assert_eq!(again.record, expected);
    assert_eq!(
        b.transactions("tags-only").get(Kind::BlobGetTags),
        1,
        "the save wrote the metadata: no more Get Blob Tags"
    );
}
