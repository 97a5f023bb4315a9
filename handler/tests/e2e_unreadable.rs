//! One bad record stays one bad record, on both backends: a checkpoint written by a newer Berth
//! (a higher schema version and a phase this one does not know) and one whose bytes do not decode
//! under a status word this Berth lacks sit beside readable deployments. The list, the status of
//! the others, the sweep and purge keep working; the bad ones are listed apart with why, their
//! status says why (`409`), their stored document is readable with its sealed values hidden, and
//! they purge, after which the sweep deletes the group the newer one left.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use berth::store::{Record, Status};
use bytes::Bytes;
use common::scenarios::{self, get, request};
use common::{Backend, Harness, Options, job};
use reqwest::Method;
use serde_json::Value;

/// Rewrites deployment `id`'s stored record as a newer Berth (or a broken disk) might have.
async fn overwrite(h: &Harness, id: &str, change: impl FnOnce(&mut Record)) {
    let store = &h.runtime.sweep.store;
    let stored = store.load_record(id).await.unwrap().unwrap();
    let mut record = stored.record.clone();
    change(&mut record);
    store
        .save_record(&record, &stored.version, None)
        .await
        .unwrap();
}

async fn bad_records_are_isolated(backend: Backend) {
    let Some(h) = Harness::try_with(Options {
        backend,
        settings: vec![("BERTH_SWEEP_GRACE", "PT0S".into())],
        ..Options::default()
    })
    .await
    else {
        return;
    };
    // A finished deployment and a running one that will be rewritten by a "newer Berth", and a
    // finished one whose bytes are lost.
    let good = h.start_deployment(&job("good-1", "echo fine")).await;
    let newer = h.start_deployment(&job("newer-1", "sleep 600")).await;
    let broken = h.start_deployment(&job("broken-1", "true")).await;
    h.wait_done(&good).await;
    h.wait_done(&broken).await;
    let running = h
        .wait_for(&newer, std::time::Duration::from_secs(30), |s| {
            s["groups"][0]["state"] == "Running"
        })
        .await;
    let group = running["groups"][0]["aciName"].as_str().unwrap().to_owned();

    overwrite(&h, &newer, |r| {
        let mut doc: Value = serde_json::from_slice(&r.body).unwrap();
        doc["schemaVersion"] = (berth::engine::SCHEMA_VERSION + 1).into();
        doc["phase"] = "Paused".into();
        r.body = Bytes::from(serde_json::to_vec(&doc).unwrap());
    })
    .await;
    overwrite(&h, &broken, |r| {
        r.status = Status::Unknown;
        r.body = Bytes::from_static(b"{\"id\": \"broken-1\", \"phase\": \x00 truncated");
    })
    .await;

    // The list answers, the good one in it, the bad ones apart and said why.
    let (code, list) = get(&h, "/deployments").await;
    assert_eq!(code, 200, "{list}");
    let ids: Vec<&str> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["good-1"], "{list}");
    let unreadable = list["unreadable"].as_array().unwrap();
    let reason = |id: &str| {
        let u = unreadable.iter().find(|u| u["id"] == id).unwrap();
        assert!(
            u["checkpoint"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/api/deployments/{id}/checkpoint")),
            "{u}"
        );
        (
            u["runtimeStatus"].as_str().unwrap().to_owned(),
            u["reason"].as_str().unwrap().to_owned(),
        )
    };
    let (status, why) = reason("newer-1");
    assert_eq!(status, "Running");
    assert!(
        why.contains(&format!(
            "written by a newer Berth (checkpoint schema version {}",
            berth::engine::SCHEMA_VERSION + 1
        )),
        "{why}"
    );
    let (status, why) = reason("broken-1");
    assert_eq!(status, "Unknown");
    assert!(why.starts_with("its document does not decode"), "{why}");
    // A page by status still answers.
    let (code, done) = get(&h, "/deployments?status=Succeeded").await;
    assert_eq!(
        (code, done["deployments"][0]["id"].as_str()),
        (200, Some("good-1"))
    );

    // The good one reads as ever; a bad one's status says why and where its document is.
    assert_eq!(h.status(&good).await["runtimeStatus"], "Succeeded");
    let (code, problem) = get(&h, "/deployments/newer-1").await;
    assert_eq!(code, 409, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("id: deployment 'newer-1' cannot be read"),
        "{detail}"
    );
    assert!(
        detail.contains("/api/deployments/newer-1/checkpoint"),
        "{detail}"
    );
    let (code, _) = scenarios::post(&h, "/deployments/newer-1/events/teardown", None).await;
    assert_eq!(code, 409);

    // Its stored document, as stored, without its sealed callback key.
    let (code, doc) = get(&h, "/deployments/newer-1/checkpoint").await;
    assert_eq!(code, 200, "{doc}");
    assert_eq!(
        (doc["phase"].as_str(), doc["id"].as_str()),
        (Some("Paused"), Some("newer-1"))
    );
    assert_eq!(doc["callbackKey"], "(sealed)");
    assert!(!doc.to_string().contains("\"v1."), "{doc}");
    let raw = request(&h, Method::GET, "/deployments/broken-1/checkpoint")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert!(raw.text().await.unwrap().contains("\\0 truncated"));

    // The sweep goes on past them: it reports the one whose group it met, and leaves that group.
    let report = h.runtime.sweep.run_once().await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.unreadable, vec!["newer-1".to_owned()], "{report:?}");
    assert!(report.orphans_deleted.is_empty(), "{report:?}");
    assert_eq!(h.stats().groups, 1);

    // Both purge; the newer one's group, now nobody's, goes with the next sweep.
    for id in ["newer-1", "broken-1", "good-1"] {
        let response = request(&h, Method::DELETE, &format!("/deployments/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{id}");
        assert_eq!(get(&h, &format!("/deployments/{id}")).await.0, 404);
    }
    let report = h.runtime.sweep.run_once().await;
    assert_eq!(report.orphans_deleted, vec![group], "{report:?}");
    assert!(
        report.unreadable.is_empty() && report.errors.is_empty(),
        "{report:?}"
    );
    let (code, list) = get(&h, "/deployments").await;
    assert_eq!(code, 200);
    assert_eq!(list["deployments"], Value::Array(Vec::new()), "{list}");
    assert!(list.get("unreadable").is_none(), "{list}");
}

on_both_backends!(bad_records_are_isolated);
