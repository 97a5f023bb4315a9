//! The host fixtures in `fixtures/functions-host/`: every request decoded by the handler
//! with its values asserted, every request rebuilt byte for byte by the simulator, every response
//! (and every negative case of the manifest) judged by the simulator's acceptance rules.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use berth::functions::http::HttpInvocation;
use berth::functions::invocation::{Envelope, QueueMessage, TimerTick, metadata_scalar};
use berth_tests::host::config::{Binding, FunctionDef, TriggerDef};
use berth_tests::host::payload::{
    Caller, ClientRequest, QueueDelivery, Sys, TimerFiring, http_payload, identities,
    queue_payload, timer_payload,
};
use berth_tests::host::route::RouteTemplate;
use berth_tests::host::{HostOutcome, judge};
use bytes::Bytes;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/functions-host"
    ))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

fn manifest() -> Value {
    serde_json::from_str(&read("manifest.json")).unwrap()
}

fn envelope(name: &str) -> Envelope {
    Envelope::parse(read(name).as_bytes()).unwrap()
}

fn time(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Requests, decoded by the handler.

fn decode_http_get_query_route() {
    let env = envelope("request-http-get-query-route.json");
    let req = HttpInvocation::decode(&env, "req").unwrap();
    assert_eq!(req.method, http::Method::GET);
    assert_eq!(req.url.path(), "/api/products/electronics/42");
    let path = req
        .route_path("api", "products/{category:alpha}/{id:int?}")
        .unwrap();
    assert_eq!(path, "/api/products/electronics/42");
    assert_eq!(req.query["name"], "Ink And Toner");
    assert_eq!(
        req.query["tag"], "a,b",
        "Data.req.Query joins repeated keys"
    );
    assert_eq!(req.params["category"], "electronics");
    assert_eq!(req.params["id"], "42");
    assert!(req.body.is_none(), "no Body without content");
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        headers,
        [
            ("accept".to_owned(), "application/json".to_owned()),
            ("host".to_owned(), "localhost:7071".to_owned()),
            ("user-agent".to_owned(), "curl/8.5.0".to_owned()),
        ]
    );
    // Metadata scalars are JSON-encoded twice; Metadata.Query keeps the last value.
    assert_eq!(
        metadata_scalar("name", env.metadata("name").unwrap()).unwrap(),
        "Ink And Toner"
    );
    assert_eq!(
        metadata_scalar("tag", env.metadata("tag").unwrap()).unwrap(),
        "b"
    );
    assert_eq!(
        metadata_scalar("id", env.metadata("id").unwrap()).unwrap(),
        "42"
    );
    assert_eq!(env.metadata("Query").unwrap()["tag"], "b");
    assert_eq!(
        env.metadata("Headers").unwrap()["Accept"],
        "application/json"
    );
    let request = req.into_request(&path).unwrap();
    assert_eq!(
        request.uri(),
        "/api/products/electronics/42?name=Ink%20And%20Toner&tag=a&tag=b"
    );
    assert!(request.headers().get("content-length").is_none());
    // The public URL's scheme and authority travel as forwarded headers.
    assert_eq!(request.headers()["x-forwarded-proto"], "http");
    assert_eq!(request.headers()["x-forwarded-host"], "localhost:7071");
}

fn decode_http_post_json() {
    let env = envelope("request-http-post-json.json");
    let req = HttpInvocation::decode(&env, "req").unwrap();
    assert_eq!(req.method, http::Method::POST);
    let body = req.body.clone().unwrap();
    assert_eq!(&body[..], br#"{"id":1005,"quantity":2,"color":"black"}"#);
    assert_eq!(body.len(), 40, "matches the Content-Length the caller sent");
    assert_eq!(req.query["source"], "web");
    assert!(req.params.is_empty());
    // Top-level body properties appear in Metadata, double-encoded, numbers as strings.
    for (key, want) in [
        ("id", "1005"),
        ("quantity", "2"),
        ("color", "black"),
        ("source", "web"),
    ] {
        assert_eq!(
            metadata_scalar(key, env.metadata(key).unwrap()).unwrap(),
            want
        );
    }
    let path = req.route_path("api", "order").unwrap();
    let request = req.into_request(&path).unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "/api/order?source=web");
    assert_eq!(request.headers()["content-length"], "40");
    assert_eq!(request.headers()["content-type"], "application/json");
}

fn decode_queue_json() {
    let env = envelope("request-queue-json.json");
    let msg = QueueMessage::decode(&env, "myQueueItem").unwrap();
    assert_eq!(
        msg.text,
        r#"{"orderId":"A-1001","quantity":2,"customer":{"name":"Contoso"},"tags":["rush","gift"]}"#
    );
    // Decoding a third time gives the message's own JSON.
    let inner: Value = serde_json::from_str(&msg.text).unwrap();
    assert_eq!(inner["customer"]["name"], "Contoso");
    assert_eq!(msg.dequeue_count, 1);
    assert_eq!(msg.id, "0f4e8b1c-2d6a-4b8e-9c51-7a3e5d2f1b90");
    assert_eq!(
        msg.pop_receipt.as_deref(),
        Some("AgAAAAMAAAAAAAAA1y2g3hOV2wE=")
    );
    assert_eq!(msg.insertion_time, Some(datetime!(2025-03-14 09:30:00 UTC)));
    assert_eq!(
        msg.expiration_time,
        Some(datetime!(2025-03-21 09:30:00 UTC))
    );
    assert_eq!(
        msg.next_visible_time,
        Some(datetime!(2025-03-14 09:40:01 UTC))
    );
    // Message properties in Metadata: scalars double-encoded, objects kept, arrays dropped.
    assert_eq!(
        metadata_scalar("orderId", env.metadata("orderId").unwrap()).unwrap(),
        "A-1001"
    );
    assert_eq!(
        metadata_scalar("quantity", env.metadata("quantity").unwrap()).unwrap(),
        "2"
    );
    assert_eq!(env.metadata("customer").unwrap()["name"], "Contoso");
    assert!(env.metadata("tags").is_none());
}

fn decode_queue_plain_string() {
    let env = envelope("request-queue-plain-string.json");
    let msg = QueueMessage::decode(&env, "myQueueItem").unwrap();
    assert_eq!(msg.text, "hello world");
    assert_eq!(msg.dequeue_count, 1);
    assert_eq!(msg.id, "7d9a2f4e-1b3c-4d5e-8f6a-9b0c1d2e3f40");
    assert_eq!(
        msg.pop_receipt.as_deref(),
        Some("AgAAAAMAAAAAAAAAd2w8khOV2wE=")
    );
}

fn decode_timer() {
    let tick = TimerTick::decode(&envelope("request-timer.json"), "myTimer").unwrap();
    assert!(!tick.is_past_due);
    let status = tick.schedule_status.unwrap();
    assert_eq!(status.last, time("2025-03-14T09:25:00.0083215+00:00"));
    assert_eq!(status.next, datetime!(2025-03-14 09:30:00 UTC));
    assert_eq!(status.last_updated, status.last);
    assert_eq!(tick.utc_now, Some(time("2025-03-14T09:30:00.0154321Z")));
    assert_eq!(tick.retry, None);
}

fn decode_timer_past_due() {
    let tick = TimerTick::decode(&envelope("request-timer-past-due.json"), "myTimer").unwrap();
    assert!(tick.is_past_due);
    assert_eq!(
        tick.schedule_status.unwrap().next,
        datetime!(2025-03-14 09:30:00 UTC),
        "Next is the missed occurrence"
    );
    assert_eq!(tick.utc_now, Some(time("2025-03-14T09:47:12.5123456Z")));
}

fn decode_timer_unmonitored() {
    let tick = TimerTick::decode(&envelope("request-timer-unmonitored.json"), "myTimer").unwrap();
    assert!(!tick.is_past_due);
    assert_eq!(tick.schedule_status, None);
}

fn decode_timer_with_retry_context() {
    let tick = TimerTick::decode(
        &envelope("request-timer-with-retry-context.json"),
        "myTimer",
    )
    .unwrap();
    let retry = tick.retry.unwrap();
    assert_eq!((retry.retry_count, retry.max_retry_count), (0, 2));
}

#[test]
fn every_request_fixture_is_decoded_with_its_values() {
    let cases: [(&str, fn()); 8] = [
        (
            "request-http-get-query-route.json",
            decode_http_get_query_route,
        ),
        ("request-http-post-json.json", decode_http_post_json),
        ("request-queue-json.json", decode_queue_json),
        ("request-queue-plain-string.json", decode_queue_plain_string),
        ("request-timer.json", decode_timer),
        ("request-timer-past-due.json", decode_timer_past_due),
        ("request-timer-unmonitored.json", decode_timer_unmonitored),
        (
            "request-timer-with-retry-context.json",
            decode_timer_with_retry_context,
        ),
    ];
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("request-"))
        .collect();
    on_disk.sort();
    let mut covered: Vec<String> = cases.iter().map(|(n, _)| (*n).to_owned()).collect();
    covered.sort();
    assert_eq!(on_disk, covered, "a request fixture has no decoding test");
    for (_, case) in cases {
        case();
    }
}

#[test]
fn function_key_identities_fixture_matches_the_simulator_and_decodes() {
    let fragment: Value =
        serde_json::from_str(&read("fragment-identities-function-key.json")).unwrap();
    let built = identities(&Caller::Key {
        name: "default".into(),
        level: "Function",
    });
    assert_eq!(built, fragment);
    // A request carrying it still decodes.
    let mut body: Value = serde_json::from_str(&read("request-http-get-query-route.json")).unwrap();
    body["Data"]["req"]["Identities"] = fragment;
    let env = Envelope::parse(body.to_string().as_bytes()).unwrap();
    assert_eq!(HttpInvocation::decode(&env, "req").unwrap().method, "GET");
}

// ---------------------------------------------------------------------------------------------
// Requests, rebuilt by the simulator.

fn function_def(entry: &Value) -> FunctionDef {
    let name = entry["function"].as_str().unwrap().to_owned();
    let bindings: Vec<Binding> = entry["functionJson"]["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_object().unwrap().clone())
        .collect();
    let trigger = bindings
        .iter()
        .find(|b| b["type"].as_str().unwrap().ends_with("Trigger"))
        .unwrap();
    let trigger_name = trigger["name"].as_str().unwrap().to_owned();
    let def = match trigger["type"].as_str().unwrap() {
        "httpTrigger" => TriggerDef::Http {
            methods: vec![],
            route: trigger
                .get("route")
                .and_then(Value::as_str)
                .unwrap_or(&name)
                .to_owned(),
            auth_level: "anonymous".into(),
        },
        "queueTrigger" => TriggerDef::Queue {
            queue_name: trigger["queueName"].as_str().unwrap().into(),
            connection: "AzureWebJobsStorage".into(),
        },
        _ => TriggerDef::Timer {
            schedule: trigger["schedule"].as_str().unwrap().into(),
            run_on_startup: false,
        },
    };
    FunctionDef {
        name,
        trigger_name,
        trigger: def,
        bindings,
    }
}

fn sys_of(fixture: &Value) -> Sys {
    let sys = &fixture["Metadata"]["sys"];
    Sys {
        method_name: sys["MethodName"].as_str().unwrap().into(),
        utc_now: time(sys["UtcNow"].as_str().unwrap()),
        rand_guid: sys["RandGuid"].as_str().unwrap().parse().unwrap(),
    }
}

fn rebuild(entry: &Value, fixture: &Value) -> Value {
    let def = function_def(entry);
    let sys = sys_of(fixture);
    match &def.trigger {
        TriggerDef::Http { route, .. } => {
            // "GET http://localhost:7071/api/...?…" (the POST line adds headers and body after it).
            let line = entry["clientRequest"].as_str().unwrap();
            let mut words = line.split_whitespace();
            let method = words.next().unwrap().to_owned();
            let url = url::Url::parse(words.next().unwrap()).unwrap();
            let req = &fixture["Data"]["req"];
            let headers: Vec<(String, String)> = req["Headers"]
                .as_object()
                .unwrap()
                .iter()
                .flat_map(|(name, values)| {
                    values
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| (name.clone(), v.as_str().unwrap().to_owned()))
                        .collect::<Vec<_>>()
                })
                .collect();
            let body = req
                .get("Body")
                .and_then(Value::as_str)
                .map(|b| Bytes::from(b.to_owned()))
                .unwrap_or_default();
            let content_length = headers
                .iter()
                .find(|(n, _)| n == "Content-Length")
                .map(|(_, v)| v.parse().unwrap());
            let below_prefix = url.path().trim_start_matches("/api/");
            let values = RouteTemplate::parse(route)
                .unwrap()
                .matches(below_prefix)
                .unwrap();
            let client = ClientRequest {
                method,
                path: url.path().to_owned(),
                raw_query: url.query().map(str::to_owned),
                headers,
                body,
                content_length,
            };
            http_payload(&def, &client, &values, &Caller::Anonymous, &sys)
        }
        TriggerDef::Queue { .. } => {
            let m = &fixture["Metadata"];
            let scalar = |k: &str| metadata_scalar(k, &m[k]).unwrap();
            let delivery = QueueDelivery {
                text: entry["queueMessageText"].as_str().unwrap().to_owned(),
                dequeue_count: m["DequeueCount"].as_str().unwrap().parse().unwrap(),
                id: scalar("Id"),
                pop_receipt: scalar("PopReceipt"),
                insertion_time: time(m["InsertionTime"].as_str().unwrap()),
                expiration_time: time(m["ExpirationTime"].as_str().unwrap()),
                next_visible_time: time(m["NextVisibleTime"].as_str().unwrap()),
            };
            queue_payload(&def, &delivery, &sys)
        }
        TriggerDef::Timer { .. } => {
            let info = &fixture["Data"][&def.trigger_name];
            let status = &info["ScheduleStatus"];
            let firing = TimerFiring {
                past_due: info["IsPastDue"].as_bool().unwrap(),
                schedule_status: (!status.is_null()).then(|| {
                    (
                        time(status["Last"].as_str().unwrap()),
                        time(status["Next"].as_str().unwrap()),
                        time(status["LastUpdated"].as_str().unwrap()),
                    )
                }),
                adjust_for_dst: info["Schedule"]["AdjustForDST"].as_bool().unwrap(),
                retry: fixture["Metadata"].get("RetryContext").map(|r| {
                    (
                        u32::try_from(r["RetryCount"].as_u64().unwrap()).unwrap(),
                        u32::try_from(r["MaxRetryCount"].as_u64().unwrap()).unwrap(),
                    )
                }),
            };
            timer_payload(&def, &firing, &sys)
        }
    }
}

#[test]
fn simulator_rebuilds_every_request_fixture_byte_for_byte() {
    for entry in manifest()["requests"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let text = read(file);
        let fixture: Value = serde_json::from_str(&text).unwrap();
        let built = rebuild(entry, &fixture);
        assert_eq!(
            serde_json::to_string(&built).unwrap(),
            text.trim_end(),
            "{file}"
        );
        // And the envelope the simulator sends is the manifest's.
        assert_eq!(entry["envelope"]["method"], "POST", "{file}");
        assert_eq!(
            entry["envelope"]["path"].as_str().unwrap(),
            format!("/{}", entry["function"].as_str().unwrap())
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Responses, judged by the simulator's acceptance rules.

fn bindings_of(entry: &Value) -> Vec<Binding> {
    entry["assumeBindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_object().unwrap().clone())
        .collect()
}

#[test]
fn every_response_fixture_gives_the_manifests_expected_output() {
    let manifest = manifest();
    let responses = manifest["responses"].as_array().unwrap();
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("response-"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = responses
        .iter()
        .map(|r| r["file"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every response fixture is in the manifest");

    for entry in responses {
        let file = entry["file"].as_str().unwrap();
        let body = read(file);
        let outcome = judge(
            200,
            Some("application/json"),
            body.as_bytes(),
            &bindings_of(entry),
        );
        let HostOutcome::Succeeded(accepted) = outcome else {
            panic!("{file}: {outcome:?}");
        };
        let expected = &entry["expected"];
        if let Some(http) = expected.get("http") {
            let got = accepted
                .http
                .as_ref()
                .unwrap_or_else(|| panic!("{file}: no http"));
            assert_eq!(
                u64::from(got.status),
                http["status"].as_u64().unwrap(),
                "{file}"
            );
            assert_eq!(got.body, http["body"].as_str().unwrap(), "{file}");
            if let Some(headers) = http.get("headers").and_then(Value::as_object) {
                for (name, value) in headers {
                    assert_eq!(got.header(name), value.as_str(), "{file}: header {name}");
                }
            }
        } else {
            assert!(accepted.http.is_none(), "{file}");
        }
        for (key, value) in expected.as_object().unwrap() {
            if let Some(binding) = key.strip_prefix("queue:") {
                let want: Vec<String> = value
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(accepted.queue_outputs[binding], want, "{file}: {key}");
            }
        }
        if let Some(logs) = expected.get("logs") {
            let want: Vec<&str> = logs
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(accepted.logs, want, "{file}");
        }
        if expected.get("invocation").is_some() {
            assert!(
                accepted.queue_outputs.values().all(Vec::is_empty),
                "{file}: nothing enqueued"
            );
        }
    }
}

#[test]
fn every_negative_response_of_the_manifest_is_rejected() {
    let res_binding: Vec<Binding> = vec![
        serde_json::json!({"type": "http", "direction": "out", "name": "res"})
            .as_object()
            .unwrap()
            .clone(),
    ];
    let negatives = manifest()["negativeResponses"].as_array().unwrap().clone();
    assert!(negatives.len() >= 6);
    for case in negatives {
        let status = u16::try_from(case["status"].as_u64().unwrap()).unwrap();
        let content_type = case["contentType"].as_str();
        let body = case["body"].as_str().unwrap();
        let outcome = judge(status, content_type, body.as_bytes(), &res_binding);
        let expected = case["expected"].as_str().unwrap();
        if expected.starts_with("DANGER") {
            assert!(
                matches!(outcome, HostOutcome::Hangs(_)),
                "{case}: {outcome:?}"
            );
        } else {
            assert!(
                matches!(outcome, HostOutcome::Failed(_)),
                "{case}: {outcome:?}"
            );
        }
        if body.contains("\"res\":\"hello\"") {
            let HostOutcome::Failed(reason) = outcome else {
                unreachable!()
            };
            assert!(reason.contains("httpOutputBindingResponse"), "{reason}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The metadata overwrite hazard of JSON queue messages.

fn steps_def() -> FunctionDef {
    let app = berth_tests::host::AppConfig::load_repo(&berth_tests::host::repo_root()).unwrap();
    app.function("steps").unwrap().clone()
}

fn delivered_as(text: &str) -> QueueMessage {
    let now = OffsetDateTime::now_utc();
    let delivery = QueueDelivery {
        text: text.to_owned(),
        dequeue_count: 2,
        id: "real-id".into(),
        pop_receipt: "p".into(),
        insertion_time: now,
        expiration_time: now,
        next_visible_time: now,
    };
    let payload = queue_payload(&steps_def(), &delivery, &Sys::now("steps"));
    let env = Envelope::parse(payload.to_string().as_bytes()).unwrap();
    QueueMessage::decode(&env, "message").unwrap()
}

#[test]
fn berths_step_messages_keep_clear_of_the_metadata_keys_they_would_overwrite() {
    // Top-level properties of a JSON message overwrite built-in metadata case-insensitively, so a
    // message with an `id` would change what the handler reads as the message id …
    let hazard = delivered_as(r#"{"id":"transcode-42","dequeueCount":7}"#);
    assert_eq!(hazard.id, "transcode-42");
    assert_eq!(hazard.dequeue_count, 7);
    // … while Berth's step message (`{"d":…,"s":…}`) leaves them intact.
    let step = delivered_as(r#"{"d":"transcode-42","s":3}"#);
    assert_eq!(step.id, "real-id");
    assert_eq!(step.dequeue_count, 2);
    assert_eq!(step.text, r#"{"d":"transcode-42","s":3}"#);
}

// ---------------------------------------------------------------------------------------------
// The envelope on the wire.

#[tokio::test]
async fn the_simulator_sends_the_manifests_envelope_chunked() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the terminating zero-length chunk.
        while !raw.ends_with(b"0\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed early: {}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        }
        let body = br#"{"Outputs":{},"Logs":[],"ReturnValue":null}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.unwrap();
        socket.write_all(body).await.unwrap();
        String::from_utf8(raw).unwrap()
    });
    let fixture = read("request-timer.json");
    let (status, content_type, _) = berth_tests::host::send_invocation(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}"),
        "NightlyCleanup",
        Bytes::from(fixture.trim_end().to_owned()),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, content_type.as_deref()),
        (200, Some("application/json"))
    );
    let raw = server.await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    assert_eq!(lines.next().unwrap(), "POST /NightlyCleanup HTTP/1.1");
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let entry = manifest()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "request-timer.json")
        .unwrap()
        .clone();
    for pair in entry["envelope"]["headers"].as_array().unwrap() {
        let name = pair[0].as_str().unwrap().to_ascii_lowercase();
        let want = pair[1]
            .as_str()
            .unwrap()
            .replace("{port}", &port.to_string())
            .replace("{hostVersion}", berth_tests::host::HOST_VERSION);
        let got = headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header in {head}"));
        if want == "{invocationId}" {
            assert!(uuid::Uuid::parse_str(&got).is_ok(), "{name}: {got}");
        } else {
            assert_eq!(got, want, "{name}");
        }
    }
    assert!(
        !headers.iter().any(|(n, _)| n == "content-length"),
        "{head}"
    );
    // The chunked body carries the payload unchanged.
    assert!(body.contains(fixture.trim_end()), "{body}");
}
