//! Malformed invocation bodies: each gets a clear failure naming the offending field (a non-2xx
//! JSON object, so a queue message is retried and at last poisoned), never a crash: the table runs
//! in-process through `berth::functions::router` and again through a running handler process.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use axum::body::Body;
use berth_tests::host::{FunctionsHost, HostOptions, HostOutcome};
use bytes::Bytes;
use http::Request;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// `(function, body, text the failure must contain)`.
fn table() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let req = |patch: Value| {
        let mut req = json!({
            "Url": "http://localhost:7071/api/deployments",
            "Method": "GET",
            "Query": {},
            "Headers": {"Host": ["localhost:7071"]},
            "Params": {},
            "Identities": [],
        });
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                req.as_object_mut().unwrap().remove(k);
            } else {
                req[k] = v.clone();
            }
        }
        json!({"Data": {"req": req}, "Metadata": {}})
            .to_string()
            .into_bytes()
    };
    let queue = |data: Value, patch: Value| {
        let mut metadata = json!({
            "DequeueCount": "1",
            "Id": "\"m-1\"",
            "PopReceipt": "\"p\"",
            "InsertionTime": "2025-03-14T09:30:00+00:00",
        });
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                metadata.as_object_mut().unwrap().remove(k);
            } else {
                metadata[k] = v.clone();
            }
        }
        json!({"Data": {"message": data}, "Metadata": metadata})
            .to_string()
            .into_bytes()
    };
    let ok_text = json!("\"ok\"");
    let timer = |info: Value, metadata: Value| {
        json!({"Data": {"timer": info}, "Metadata": metadata})
            .to_string()
            .into_bytes()
    };
    let status = json!({"Last": "2025-03-14T09:25:00+00:00", "Next": "2025-03-14T09:30:00+00:00", "LastUpdated": "2025-03-14T09:25:00+00:00"});
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        // The envelope.
        ("deployments", b(""), "not JSON"),
        ("deployments", b("{"), "not JSON"),
        ("deployments", vec![0xff, 0xfe, 0x00], "not JSON"),
        ("deployments", b("null"), "`(body)` must be an object"),
        ("deployments", b("[]"), "`(body)` must be an object"),
        ("deployments", b("\"Data\""), "`(body)` must be an object"),
        ("deployments", b("{}"), "`Data` is missing"),
        (
            "deployments",
            b(r#"{"Data":null}"#),
            "`Data` must be an object",
        ),
        (
            "deployments",
            b(r#"{"Data":[1]}"#),
            "`Data` must be an object",
        ),
        (
            "deployments",
            b(r#"{"Data":{},"Metadata":"x"}"#),
            "`Metadata` must be an object",
        ),
        ("deployments", "[".repeat(100_000).into_bytes(), "not JSON"),
        // HTTP: Data.req.
        ("deployments", b(r#"{"Data":{}}"#), "`Data.req` is missing"),
        (
            "deployments",
            b(r#"{"Data":{"req":"GET /"}}"#),
            "`Data.req` must be an object",
        ),
        (
            "deployments",
            req(json!({"Method": null})),
            "`Data.req.Method` is missing",
        ),
        (
            "deployments",
            req(json!({"Method": 7})),
            "`Data.req.Method` must be a string",
        ),
        (
            "deployments",
            req(json!({"Method": "GE T"})),
            "`Data.req.Method` is invalid",
        ),
        (
            "deployments",
            req(json!({"Url": null})),
            "`Data.req.Url` is missing",
        ),
        (
            "deployments",
            req(json!({"Url": "/api/deployments"})),
            "`Data.req.Url` is invalid",
        ),
        (
            "deployments",
            req(json!({"Url": "ftp://h/api/x"})),
            "`Data.req.Url` is invalid",
        ),
        (
            "deployments",
            req(json!({"Headers": "Host: x"})),
            "`Data.req.Headers` must be",
        ),
        (
            "deployments",
            req(json!({"Headers": {"Accept": 5}})),
            "`Data.req.Headers.Accept` must be",
        ),
        (
            "deployments",
            req(json!({"Headers": {"Accept": [5]}})),
            "`Data.req.Headers.Accept` must be",
        ),
        (
            "deployments",
            req(json!({"Headers": {"Bad Name": ["x"]}})),
            "`Data.req.Headers.Bad Name` is invalid",
        ),
        (
            "deployments",
            req(json!({"Headers": {"X-A": ["a\nb"]}})),
            "`Data.req.Headers.X-A` is invalid",
        ),
        (
            "deployments",
            req(json!({"Query": "a=b"})),
            "`Data.req.Query` must be an object",
        ),
        (
            "deployments",
            req(json!({"Params": ["id"]})),
            "`Data.req.Params` must be an object",
        ),
        (
            "deployments",
            req(json!({"Body": {"id": 1}})),
            "`Data.req.Body` must be a string",
        ),
        (
            "deployments",
            req(
                json!({"Method": "POST", "Headers": {"Content-Type": ["application/octet-stream"]}, "Body": "not base64!"}),
            ),
            "`Data.req.Body` is invalid",
        ),
        // Queue: Data.message and its metadata.
        (
            "steps",
            queue(Value::Null, json!({})),
            "`Data.message` must be a string",
        ),
        (
            "steps",
            b(r#"{"Data":{},"Metadata":{"DequeueCount":"1","Id":"\"m\""}}"#),
            "`Data.message` is missing",
        ),
        (
            "steps",
            queue(json!(5), json!({})),
            "`Data.message` must be a string",
        ),
        (
            "steps",
            queue(json!({"step": 1}), json!({})),
            "`Data.message` must be a string",
        ),
        (
            "steps",
            queue(json!("ok"), json!({})),
            "`Data.message` is invalid",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"DequeueCount": null})),
            "`Metadata.DequeueCount` is missing",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"DequeueCount": "abc"})),
            "`Metadata.DequeueCount` is invalid",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"DequeueCount": "0"})),
            "`Metadata.DequeueCount` is invalid",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"DequeueCount": "-1"})),
            "`Metadata.DequeueCount` is invalid",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"DequeueCount": "99999999999"})),
            "`Metadata.DequeueCount` is invalid",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"DequeueCount": true})),
            "`Metadata.DequeueCount` must be",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"Id": null})),
            "`Metadata.Id` is missing",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"Id": {"x": 1}})),
            "`Metadata.Id` must be a string",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"InsertionTime": "yesterday"})),
            "`Metadata.InsertionTime` is invalid",
        ),
        (
            "steps",
            queue(ok_text.clone(), json!({"PopReceipt": [1]})),
            "`Metadata.PopReceipt` must be a string",
        ),
        // Timer: Data.timer.
        (
            "cleanup",
            timer(json!("tick"), json!({})),
            "`Data.timer` must be an object",
        ),
        (
            "cleanup",
            timer(json!({"ScheduleStatus": null}), json!({})),
            "`Data.timer.IsPastDue` is missing",
        ),
        (
            "cleanup",
            timer(json!({"IsPastDue": "true"}), json!({})),
            "`Data.timer.IsPastDue` must be a boolean",
        ),
        (
            "cleanup",
            timer(
                json!({"IsPastDue": false, "ScheduleStatus": "x"}),
                json!({}),
            ),
            "`Data.timer.ScheduleStatus` must be an object",
        ),
        (
            "cleanup",
            timer(
                json!({"IsPastDue": false, "ScheduleStatus": {"Next": "soon"}}),
                json!({}),
            ),
            "`Data.timer.ScheduleStatus.Last` is missing",
        ),
        (
            "cleanup",
            timer(
                json!({"IsPastDue": false, "ScheduleStatus": {"Last": "2025-03-14T09:25:00+00:00", "Next": "soon", "LastUpdated": "2025-03-14T09:25:00+00:00"}}),
                json!({}),
            ),
            "`Data.timer.ScheduleStatus.Next` is invalid",
        ),
        (
            "cleanup",
            timer(
                json!({"IsPastDue": false, "ScheduleStatus": status.clone()}),
                json!({"sys": {"UtcNow": "now"}}),
            ),
            "`Metadata.sys.UtcNow` is invalid",
        ),
        (
            "cleanup",
            timer(json!({"IsPastDue": false}), json!({"sys": 1})),
            "`Metadata.sys` must be an object",
        ),
        (
            "cleanup",
            timer(
                json!({"IsPastDue": false}),
                json!({"RetryContext": {"RetryCount": "0", "MaxRetryCount": 2}}),
            ),
            "`Metadata.RetryContext.RetryCount` must be a number",
        ),
        // Unknown function.
        ("nope", b(r#"{"Data":{}}"#), "no function named `nope`"),
    ]
}

fn check(function: &str, status: u16, content_type: Option<&str>, body: &[u8], want: &str) {
    assert!(
        !(200..300).contains(&status),
        "{function} {want}: status {status} must fail the invocation"
    );
    assert!(
        content_type.is_some_and(|c| c.starts_with("application/json")),
        "{function} {want}: content type {content_type:?}"
    );
    let json: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{function} {want}: body is not JSON: {e}"));
    let logs = json["Logs"].as_array().unwrap_or_else(|| panic!("{json}"));
    assert!(
        logs.iter().any(|l| l.as_str().unwrap().contains(want)),
        "{function}: expected `{want}` in {logs:?}"
    );
}

#[tokio::test]
async fn malformed_invocations_fail_clearly_in_process() {
    let table = table();
    assert!(table.len() >= 30, "the table has {} cases", table.len());
    let h = berth_tests::host::fixture::handlers();
    let router = berth::functions::router(h.api, h.queue, h.timer);
    for (function, body, want) in table {
        let response = router
            .clone()
            .oneshot(
                Request::post(format!("/{function}"))
                    .header("content-type", "application/json; charset=utf-8")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        check(function, status, content_type.as_deref(), &body, want);
        if function == "steps" {
            assert_eq!(status, 400, "{want}");
        }
    }
}

#[tokio::test]
async fn malformed_invocations_never_crash_the_handler_process() {
    let binary = Path::new(env!("CARGO_BIN_EXE_functions-fixture-handler"));
    let options = HostOptions::new(
        binary,
        vec![
            ("BERTH_QUEUE".into(), "berth-steps".into()),
            ("BERTH_SUBMIT_QUEUE".into(), "berth-submit".into()),
        ],
    )
    .unwrap();
    let mut host = FunctionsHost::start(options).await.unwrap();
    for (function, body, want) in table() {
        let (status, json, outcome) = host.invoke_raw(function, Bytes::from(body)).await.unwrap();
        assert!(
            matches!(outcome, HostOutcome::Failed(_)),
            "{function} {want}: {outcome:?}"
        );
        let logs = json["Logs"].as_array().unwrap();
        assert!(
            logs.iter().any(|l| l.as_str().unwrap().contains(want)),
            "{function} {status}: expected `{want}` in {logs:?}"
        );
    }
    assert!(
        host.process().is_running(),
        "the handler survived the whole table"
    );
    // And still serves a good invocation afterwards.
    let outcome = host.tick("cleanup", false).await.unwrap();
    assert!(outcome.accepted().is_some(), "{outcome:?}");
    assert!(host.violations().is_empty(), "{:?}", host.violations());
    host.stop().await;
}
