//! History is never dropped: a fan-out of 110 instances writes more than 440 history entries (it
//! was capped at 400, cut from the middle); the checkpoint keeps only the latest ones and the
//! rest live in pages beside it, and `GET .../history` pages through all of them, oldest first,
//! each instance's entries there exactly once. Both backends, on the instant emulator.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use berth::engine::policy::{HISTORY_ARCHIVE_AT, HISTORY_PAGE};
use common::scenarios::get;
use common::{Backend, Harness, Options};
use serde_json::{Value, json};

const INSTANCES: usize = 110;

async fn the_whole_history_is_kept_and_paged(backend: Backend) {
    let Some(h) = Harness::try_with(Options {
        backend,
        emulator: Some(|config| config.instant = true),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let spec = json!({
        "id": "long-history",
        "groups": [{ "name": "shard", "count": INSTANCES, "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["true"],
                "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } }]
    });
    let id = h.start_deployment(&spec).await;
    let done = h
        .wait_for(&id, Duration::from_secs(120), |s| s["phase"] == "Done")
        .await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");

    // Page after page, oldest first, until no token.
    let mut entries: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            None => format!("/deployments/{id}/history"),
            Some(t) => format!("/deployments/{id}/history?continuationToken={t}"),
        };
        let (code, page) = get(&h, &path).await;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        entries.extend(page["history"].as_array().unwrap().iter().cloned());
        match page["continuationToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "the pages do not end");
    }
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert!(entries.len() > 4 * INSTANCES, "{} entries", entries.len());
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(kinds[0], "DeploymentAccepted");
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not oldest first");
    // Every instance's create, logs and end are there, each once (a group whose delete answer
    // was not recorded before ARM forgot it ends `GroupMissing` instead of `GroupDeleted`).
    for kinds in [
        &["GroupCreated"][..],
        &["LogsSaved"],
        &["GroupDeleted", "GroupMissing"],
    ] {
        let mut by_instance: BTreeMap<&str, usize> = BTreeMap::new();
        let kind = kinds[0];
        let of_kind = |e: &&Value| kinds.iter().any(|k| e["eventType"] == *k);
        for e in entries.iter().filter(of_kind) {
            let detail = e["detail"].as_str().unwrap();
            *by_instance
                .entry(detail.split(' ').next().unwrap())
                .or_default() += 1;
        }
        assert_eq!(by_instance.len(), INSTANCES, "{kind}: {by_instance:?}");
        assert!(
            by_instance.values().all(|n| *n == 1),
            "{kind}: {by_instance:?}"
        );
    }
    // The checkpoint holds the latest entries only; the rest are archived pages.
    let d = h.runtime.driver.load(&id).await.unwrap().unwrap();
    assert!(d.history_archived as usize >= 2, "{}", d.history_archived);
    assert_eq!(
        d.history_archived as usize * HISTORY_PAGE + d.history.len(),
        entries.len()
    );
    assert!(d.history.len() < HISTORY_ARCHIVE_AT + 4 * INSTANCES);

    // A token this API never gave, or one past the end, is refused naming the field.
    for bad in ["h999", "x1", "h", "h-1", "h1%2F..%2F..", "h99999999999"] {
        let (code, problem) = get(
            &h,
            &format!("/deployments/{id}/history?continuationToken={bad}"),
        )
        .await;
        assert_eq!(code, 400, "{bad}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("continuationToken:")
        );
    }
    // Purge takes the pages with the checkpoint: the same id starts afresh.
    let purge =
        common::scenarios::request(&h, reqwest::Method::DELETE, &format!("/deployments/{id}"))
            .send()
            .await
            .unwrap();
    assert_eq!(purge.status(), 200);
    let store = &h.runtime.sweep.store;
    assert!(store.get_history(&id, 0).await.unwrap().is_none());
}

on_both_backends!(the_whole_history_is_kept_and_paged);
