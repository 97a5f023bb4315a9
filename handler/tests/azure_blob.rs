//! Blob operations against a real Azurite: the checkpoint CAS, listing, index tags, append blobs,
//! and what each costs in transactions.
#![allow(clippy::unwrap_used)]

mod azure_support;

use azure_core::http::{FixedRetryOptions, RetryOptions};
use azure_support::{account, eventually, unique};
use berth::azure_storage::{
    Kind, StorageAccount, StorageConnection, StorageError, TagFilter, TagOp, Tags, WriteCondition,
};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn cas_create_update_and_conflict_each_cost_one_request() {
    let Some(account) = account() else {
        return;
    };
    let c = account.container(&unique("cas")).unwrap();
    assert!(c.create_if_missing().await.unwrap());
    assert!(
        !c.create_if_missing().await.unwrap(),
        "second create finds it"
    );
    let name = "deployments/d-1/checkpoint";
    assert!(c.get(name).await.unwrap().is_none(), "404 reads as None");

    let before = account.transactions().snapshot();
    let v1 = c
        .put(
            name,
            Bytes::from_static(b"v1"),
            &WriteCondition::Create,
            &Tags::new(),
        )
        .await
        .unwrap();
    let dup = c
        .put(
            name,
            Bytes::from_static(b"v1'"),
            &WriteCondition::Create,
            &Tags::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            dup,
            StorageError::Conflict {
                status: 409 | 412,
                ..
            }
        ),
        "duplicate create: {dup:?}"
    );
    let v2 = c
        .put(
            name,
            Bytes::from_static(b"v2"),
            &WriteCondition::Replace(v1.clone()),
            &Tags::new(),
        )
        .await
        .unwrap();
    assert_ne!(v1, v2);
    let stale = c
        .put(
            name,
            Bytes::from_static(b"v3"),
            &WriteCondition::Replace(v1.clone()),
            &Tags::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, StorageError::Conflict { status: 412, .. }),
        "stale replace: {stale:?}"
    );
    assert!(!stale.is_transient());
    let after = account.transactions().snapshot().since(&before);
    assert_eq!(
        after.by_name(),
        BTreeMap::from([("blob.put", 4)]),
        "one request per CAS"
    );

    let read = c.get(name).await.unwrap().unwrap();
    assert_eq!(&read.bytes[..], b"v2");
    assert_eq!(read.etag, v2);

    let err = c.delete(name, Some(&v1)).await.unwrap_err();
    assert!(err.is_conflict(), "delete with a stale ETag: {err:?}");
    assert!(c.delete(name, Some(&v2)).await.unwrap());
    assert!(!c.delete(name, None).await.unwrap(), "already gone");
}

#[tokio::test]
async fn concurrent_read_modify_write_loses_no_update() {
    let Some(account) = account() else {
        return;
    };
    let c = Arc::new(account.container(&unique("rmw")).unwrap());
    c.create_if_missing().await.unwrap();
    c.put(
        "counter",
        Bytes::from_static(b"0"),
        &WriteCondition::Create,
        &Tags::new(),
    )
    .await
    .unwrap();
    const WRITERS: usize = 8;
    const INCREMENTS: usize = 10;
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..INCREMENTS {
                loop {
                    let blob = c.get("counter").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&blob.bytes).unwrap().parse().unwrap();
                    let next = Bytes::from((n + 1).to_string());
                    match c
                        .put(
                            "counter",
                            next,
                            &WriteCondition::Replace(blob.etag),
                            &Tags::new(),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if e.is_conflict() => conflicts += 1,
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let final_value = c.get("counter").await.unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&final_value.bytes).unwrap(),
        (WRITERS * INCREMENTS).to_string(),
        "every increment survives ({conflicts} conflicts were retried)"
    );
}

#[tokio::test]
async fn list_pages_by_prefix_with_continuation() {
    let Some(account) = account() else {
        return;
    };
    let c = account.container(&unique("list")).unwrap();
    c.create_if_missing().await.unwrap();
    let mut expected = Vec::new();
    for i in 0..7 {
        let name = format!("deployments/d-{i}/history/{i:010}");
        c.put(
            &name,
            Bytes::from(vec![b'x'; i]),
            &WriteCondition::Create,
            &Tags::new(),
        )
        .await
        .unwrap();
        expected.push(name);
    }
    for other in ["logs/a", "deploymentsX"] {
        c.put(
            other,
            Bytes::from_static(b"-"),
            &WriteCondition::Overwrite,
            &Tags::new(),
        )
        .await
        .unwrap();
    }

    let before = account.transactions().snapshot();
    let mut names = Vec::new();
    let mut sizes = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c.list("deployments/", marker.as_deref(), 3).await.unwrap();
        pages += 1;
        assert!(page.blobs.len() <= 3);
        for b in &page.blobs {
            assert!(b.etag.is_some() && b.last_modified.is_some());
            names.push(b.name.clone());
            sizes.push(b.size.unwrap());
        }
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(names, expected, "all of the prefix, in order, nothing else");
    assert_eq!(sizes, (0..7u64).collect::<Vec<_>>());
    assert_eq!(pages, 3);
    let cost = account.transactions().snapshot().since(&before);
    assert_eq!(cost.get(Kind::BlobList), 3, "one request per page");

    let err = c.list("", None, 0).await.unwrap_err();
    assert!(matches!(
        err,
        StorageError::InvalidArgument { field: "max", .. }
    ));
}

#[tokio::test]
async fn tags_are_written_with_the_content_and_found_by_query() {
    let Some(account) = account() else {
        return;
    };
    let c = account.container(&unique("tags")).unwrap();
    c.create_if_missing().await.unwrap();
    let rows = [
        ("d-1", "Running", "2025-01-01T00:00:01Z"),
        ("d-2", "Succeeded", "2025-01-01T00:00:02Z"),
        ("d-3", "Running", "2025-01-01T00:00:03Z"),
        ("d-4", "Running", "2025-01-01T00:00:04Z"),
        ("d-5", "Failed", "2025-01-01T00:00:05Z"),
    ];
    let mut etags = BTreeMap::new();
    for (id, status, updated) in rows {
        let tags = Tags::from_pairs([("status", status), ("updated", updated)]).unwrap();
        let etag = c
            .put(
                &format!("deployments/{id}/checkpoint"),
                Bytes::from_static(b"{}"),
                &WriteCondition::Create,
                &tags,
            )
            .await
            .unwrap();
        etags.insert(id, etag);
    }
    assert_eq!(
        c.get_tags("deployments/d-3/checkpoint")
            .await
            .unwrap()
            .get("status"),
        Some("Running")
    );

    let running = TagFilter::new("status", TagOp::Eq, "Running").unwrap();
    let page = c.find_by_tags(&running, None, 100).await.unwrap();
    assert!(page.next_marker.is_none());
    assert!(
        page.blobs
            .iter()
            .all(|b| b.tags.get("status") == Some("Running"))
    );
    let found: Vec<_> = page.blobs.into_iter().map(|b| b.name).collect();
    assert_eq!(
        found,
        ["d-1", "d-3", "d-4"].map(|id| format!("deployments/{id}/checkpoint"))
    );

    // Paging. Azurite 3.37 ends a Find listing early when the `maxresults` blobs it scans for a
    // page hold fewer matches than that, so page through a filter every blob here matches; Azure
    // itself may return short pages with a marker, which the loop also handles.
    let all = TagFilter::new("updated", TagOp::Ge, "2025").unwrap();
    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c.find_by_tags(&all, marker.as_deref(), 2).await.unwrap();
        pages += 1;
        assert!(page.blobs.len() <= 2);
        paged.extend(page.blobs.into_iter().map(|b| b.name));
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(paged.len(), 5, "{paged:?}");
    assert_eq!(pages, 3);

    let recent_running = running
        .clone()
        .and("updated", TagOp::Ge, "2025-01-01T00:00:03Z")
        .unwrap();
    let page = c.find_by_tags(&recent_running, None, 100).await.unwrap();
    let names: Vec<_> = page.blobs.into_iter().map(|b| b.name).collect();
    assert_eq!(
        names,
        ["deployments/d-3/checkpoint", "deployments/d-4/checkpoint"]
    );

    // A CAS that moves d-3 to Succeeded moves its tags in the same request; the index may lag
    // (in Azure), so poll until the listing agrees.
    let done =
        Tags::from_pairs([("status", "Succeeded"), ("updated", "2025-01-01T00:00:09Z")]).unwrap();
    c.put(
        "deployments/d-3/checkpoint",
        Bytes::from_static(b"{\"done\":true}"),
        &WriteCondition::Replace(etags["d-3"].clone()),
        &done,
    )
    .await
    .unwrap();
    let succeeded = TagFilter::new("status", TagOp::Eq, "Succeeded").unwrap();
    eventually(
        "d-3 to be listed as Succeeded",
        Duration::from_secs(10),
        || async {
            let page = c.find_by_tags(&succeeded, None, 100).await.unwrap();
            let names: Vec<_> = page.blobs.iter().map(|b| b.name.as_str()).collect();
            if names == ["deployments/d-2/checkpoint", "deployments/d-3/checkpoint"] {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        },
    )
    .await;

    // Set Blob Tags alone changes tags without touching content or ETag.
    let failed = Tags::from_pairs([("status", "Failed")]).unwrap();
    c.set_tags("deployments/d-4/checkpoint", &failed)
        .await
        .unwrap();
    assert_eq!(
        c.get_tags("deployments/d-4/checkpoint").await.unwrap(),
        failed
    );
    let d4 = c.get("deployments/d-4/checkpoint").await.unwrap().unwrap();
    assert_eq!(d4.etag, etags["d-4"]);
}

#[tokio::test]
async fn append_blobs_append_once_at_the_expected_offset() {
    let Some(account) = account() else {
        return;
    };
    let c = account.container(&unique("append")).unwrap();
    c.create_if_missing().await.unwrap();
    let name = "deployments/d-1/history";
    c.create_append(name, &WriteCondition::Create, &Tags::new())
        .await
        .unwrap();
    let again = c
        .create_append(name, &WriteCondition::Create, &Tags::new())
        .await
        .unwrap_err();
    assert!(again.is_conflict(), "{again:?}");

    let first = c
        .append(name, Bytes::from_static(b"{\"e\":1}\n"), Some(0))
        .await
        .unwrap();
    assert_eq!(first.offset, 0);
    let replay = c
        .append(name, Bytes::from_static(b"{\"e\":1}\n"), Some(0))
        .await
        .unwrap_err();
    assert!(
        matches!(replay, StorageError::Conflict { status: 412, .. }),
        "a replayed append must not land twice: {replay:?}"
    );
    let second = c
        .append(name, Bytes::from_static(b"{\"e\":2}\n"), Some(8))
        .await
        .unwrap();
    assert_eq!(second.offset, 8);
    let third = c
        .append(name, Bytes::from_static(b"{\"e\":3}\n"), None)
        .await
        .unwrap();
    assert_eq!(third.offset, 16);
    let all = c.get(name).await.unwrap().unwrap();
    assert_eq!(&all.bytes[..], b"{\"e\":1}\n{\"e\":2}\n{\"e\":3}\n");
    assert_eq!(all.etag, third.etag);
    assert_eq!(account.transactions().snapshot().get(Kind::AppendBlock), 4);
    assert_eq!(
        account
            .transactions()
            .snapshot()
            .get(Kind::AppendBlobCreate),
        2
    );
}

#[tokio::test]
async fn bad_names_fail_before_any_request() {
    let Some(account) = account() else {
        return;
    };
    let err = account.container("Bad_Name").unwrap_err();
    assert!(
        err.to_string().starts_with("invalid container: `Bad_Name`"),
        "{err}"
    );
    let c = account.container(&unique("names")).unwrap();
    let err = c.get("a//b").await.unwrap_err();
    assert!(matches!(
        err,
        StorageError::InvalidArgument {
            field: "blob name",
            ..
        }
    ));
    assert_eq!(account.transactions().snapshot().total(), 0);
}

/// Needs no Azurite: a port nothing listens on. A refused connection is transient, and every try
/// counts as a transaction attempt.
#[tokio::test]
async fn an_unreachable_account_fails_transiently_and_counts_each_try() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let connection = StorageConnection::parse(
        "TEST",
        &format!(
            "AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;\
             QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1",
            berth::azure_storage::connection::DEVSTORE_KEY
        ),
    )
    .unwrap();
    let retry = RetryOptions::fixed(FixedRetryOptions {
        delay: azure_core::time::Duration::milliseconds(10),
        max_retries: 2,
        ..Default::default()
    });
    let account = StorageAccount::new(&connection, None)
        .unwrap()
        .with_retry(retry);
    let err = account
        .container("unreachable")
        .unwrap()
        .get("b")
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::GetBlob { .. }), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.status(), None);
    assert_eq!(
        account.transactions().snapshot().get(Kind::BlobGet),
        3,
        "1 try + 2 retries"
    );
}
