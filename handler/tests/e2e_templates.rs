//! Templates end to end through the HTTP API, on SQLite and on Azurite, with deployments run on
//! the emulator: parameters substituted and seen by the container, every bad parameter a `400`
//! naming it, values that try to inject structure or recurse kept as text, and a running
//! deployment unchanged by a new version of its template.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::scenarios::{self, request, send};
use common::{Backend, Harness};
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "tpl-secret-7f3a9c";

/// A template of one job that writes `word` and `n` to its share and log.
fn template(script: &str) -> Value {
    json!({
        "parameters": {
            "word": { "type": "string", "default": "hi" },
            "n": { "type": "number", "default": 2 },
            "cpu": { "type": "number", "default": 0.5, "allowed": [0.5, 1] },
            "loud": { "type": "boolean", "default": false },
        },
        "captureLogs": "{{ parameters.loud }}",
        "groups": [{ "name": "work", "properties": {
            "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["/bin/sh", "-c", script],
                "environmentVariables": [{ "name": "SECRET", "secureValue": SECRET }],
                "resources": { "requests": { "cpu": "{{ parameters.cpu }}", "memoryInGB": 0.5 } },
                "volumeMounts": [{ "name": "share", "mountPath": "/mnt/share" }] } }],
            "volumes": [{ "name": "share", "azureFile": { "shareName": "data", "storageAccountName": "teststore" } }] } }]
    })
}

async fn put(h: &Harness, name: &str, body: &Value) -> (u16, Value) {
    send(request(h, Method::PUT, &format!("/templates/{name}")).json(body)).await
}

async fn a_template_runs_with_its_parameters_substituted(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    let script = "echo {{ parameters.word }} n={{ parameters.n }}; \
                  printf %s \"$SECRET\" | sha256sum > /mnt/share/secret.sha";
    let (status, body) = put(&h, "greet", &template(script)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(
        body["spec"]["groups"][0]["properties"]["containers"][0]["properties"]["environmentVariables"]
            [0]["secureValue"],
        "(sealed)"
    );
    assert!(!body.to_string().contains(SECRET));
    let (status, again) = put(&h, "greet", &template(script)).await;
    assert_eq!((status, &again["version"]), (200, &json!(1)), "idempotent");

    let invocation = json!({ "id": "greet-1", "template": "greet",
        "parameters": { "word": "hello", "loud": true } });
    let (status, started) = h.submit(&invocation).await;
    assert_eq!(status, 202, "{started}");
    let done = h.wait_done("greet-1").await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    assert_eq!(done["template"], json!({ "name": "greet", "version": 1 }));
    assert_eq!(
        h.logs("greet-1", "work", "main").await,
        (200, "hello n=2\n".into())
    );
    let sha = std::fs::read_to_string(h.share("teststore", "data").join("secret.sha")).unwrap();
    let want = {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(SECRET.as_bytes());
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert!(
        sha.starts_with(&want),
        "the container got the sealed secret"
    );
    // The same invocation again is the same deployment.
    assert_eq!(h.submit(&invocation).await.0, 200);
    if backend == Backend::Sqlite {
        for file in ["berth.db", "berth.db-wal"] {
            let bytes = std::fs::read(h.dir.path().join(file)).unwrap_or_default();
            let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
            assert!(!found, "{file} holds the template's secret in the clear");
        }
    }
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(a_template_runs_with_its_parameters_substituted);

async fn a_running_deployment_keeps_its_template_version(backend: Backend) {
    let Some(h) = Harness::on(backend).await else {
        return;
    };
    assert_eq!(
        put(&h, "pinned", &template("sleep 2; echo one")).await.0,
        201
    );
    let first = h
        .start_deployment(
            &json!({ "id": "pinned-1", "template": "pinned", "parameters": { "loud": true } }),
        )
        .await;
    let (status, v2) = put(&h, "pinned", &template("echo two")).await;
    assert_eq!((status, &v2["version"]), (201, &json!(2)), "{v2}");
    let second = h
        .start_deployment(
            &json!({ "id": "pinned-2", "template": "pinned", "parameters": { "loud": true } }),
        )
        .await;
    let third = h
        .start_deployment(&json!({ "id": "pinned-3", "template": "pinned", "version": 1, "parameters": { "loud": true } }))
        .await;
    let (_, v1) = scenarios::get(&h, "/templates/pinned?version=1").await;
    assert_eq!(
        v1["spec"]["groups"][0]["properties"]["containers"][0]["properties"]["command"][2],
        "sleep 2; echo one"
    );
    let (_, list) = scenarios::get(&h, "/templates").await;
    assert_eq!(
        list["templates"],
        json!([{ "name": "pinned", "latestVersion": 2 }])
    );
    // Deleting the template changes no deployment made from it.
    let deleted = send(request(&h, Method::DELETE, "/templates/pinned")).await;
    assert_eq!(deleted.0, 200, "{}", deleted.1);
    assert_eq!(scenarios::get(&h, "/templates/pinned").await.0, 404);
    for (id, version, log) in [
        (&first, 1, "one\n"),
        (&second, 2, "two\n"),
        (&third, 1, "one\n"),
    ] {
        let done = h.wait_done(id).await;
        assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
        assert_eq!(done["template"]["version"], version, "{id}");
        assert_eq!(h.logs(id, "work", "main").await, (200, log.into()), "{id}");
    }
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(a_running_deployment_keeps_its_template_version);

/// The field a refused request names (the problem's `detail` up to its first `: `).
fn field(body: &Value) -> String {
    let detail = body["detail"].as_str().unwrap_or_default();
    detail.split(": ").next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_parameter_is_a_400_naming_it_and_values_stay_text() {
    let h = Harness::start().await;
    let mut strict = template("echo {{ parameters.word }}");
    strict["parameters"]["word"] = json!({ "type": "string", "allowed": ["hi", "hello"] });
    assert_eq!(put(&h, "strict", &strict).await.0, 201);
    let call = |parameters: Value| json!({ "template": "strict", "parameters": parameters });
    let cases = [
        (call(json!({})), "parameters.word"),
        (call(json!({ "word": "hey" })), "parameters.word"),
        (call(json!({ "word": 7 })), "parameters.word"),
        (call(json!({ "word": "hi", "n": "2" })), "parameters.n"),
        (
            call(json!({ "word": "hi", "loud": "yes" })),
            "parameters.loud",
        ),
        (call(json!({ "word": "hi", "cpu": 4 })), "parameters.cpu"),
        (call(json!({ "word": "hi", "nope": 1 })), "parameters.nope"),
        (
            call(json!({ "word": "x".repeat(1_000_000) })),
            "parameters.word",
        ),
        (call(json!("word=hi")), "parameters"),
        (json!({ "template": "../strict" }), "template"),
        (json!({ "template": "absent" }), "template"),
        (
            json!({ "template": "strict", "version": 9, "parameters": { "word": "hi" } }),
            "version",
        ),
        (json!({ "template": "strict", "version": 0 }), "version"),
        (json!({ "template": "strict", "groups": [] }), "groups"),
    ];
    for (body, want) in cases {
        let (status, answer) = h.submit(&body).await;
        assert_eq!((status, field(&answer)), (400, want.to_owned()), "{answer}");
    }
    // The expanded spec is validated as any spec is, naming the spec's field.
    let mut loose = template("echo hi");
    loose["parameters"]["cpu"] = json!({ "type": "number" });
    assert_eq!(put(&h, "loose", &loose).await.0, 201);
    let (status, answer) = h
        .submit(&json!({ "template": "loose", "parameters": { "cpu": -1 } }))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        field(&answer),
        "groups[0].properties.containers[0].properties.resources.requests.cpu"
    );
    // Bad templates and names.
    let bad_templates = [
        (
            json!({ "parameters": { "w": { "type": "text" } } }),
            "parameters.w.type",
        ),
        (
            json!({ "groups": [{ "name": "{{ parameters.x }}" }] }),
            "groups[0].name",
        ),
        (json!({ "id": "fixed", "groups": [] }), "id"),
    ];
    for (body, want) in bad_templates {
        let (status, answer) = put(&h, "bad", &body).await;
        assert_eq!((status, field(&answer)), (400, want.to_owned()), "{answer}");
    }
    // A dot segment is resolved away by the client (and by any proxy): no template route.
    assert_eq!(put(&h, "%2e%2e", &loose).await.0, 404);
    for name in ["..%2Fx", "..%2F..%2Fdeployments", "UPPER", "a.b", "a%00b"] {
        let (status, answer) = put(&h, name, &loose).await;
        assert_eq!(
            (status, field(&answer)),
            (400, "name".to_owned()),
            "{name}: {answer}"
        );
    }
    let (status, _) = scenarios::get(&h, "/templates/strict?version=x").await;
    assert_eq!(status, 400);

    // Values that try to inject structure or recurse stay text in the one string they fill.
    for (id, word) in [
        ("inject-1", "hi\"}], \"mode\": \"service"),
        ("inject-2", "{{ parameters.n }}"),
    ] {
        let mut open = template("echo {{ parameters.word }}");
        open["parameters"]["word"] = json!({ "type": "string" });
        put(&h, "open", &open).await;
        let invocation = json!({ "id": id, "template": "open", "parameters": { "word": word } });
        assert_eq!(h.submit(&invocation).await.0, 202);
        let done = h.wait_done(id).await;
        assert_eq!(done["mode"], "job");
        assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
        let (_, stored) = scenarios::get(&h, &format!("/deployments/{id}/checkpoint")).await;
        let command =
            &stored["spec"]["groups"][0]["properties"]["containers"][0]["properties"]["command"][2];
        assert_eq!(command, &json!(format!("echo {word}")), "{stored}");
    }
    scenarios::assert_nothing_left(&h).await;
}

/// `serve` and `dev` on Azure Storage consume the submit queue as the `submit` function does: an
/// Event Grid event sent twice and an invocation with its own id sent twice start one deployment
/// each, with the event's fields in the template's parameters; bad messages (one not even
/// base64) are dropped, and the others handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serve_worker_consumes_the_submit_queue_on_azure() {
    use berth::azure_storage::TimeToLive;
    use std::time::Duration;
    let options = common::Options {
        backend: Backend::Azurite,
        settings: vec![(
            "BERTH_SUBMIT_EVENTS",
            "Microsoft.Storage.BlobCreated=ingest".into(),
        )],
        ..common::Options::default()
    };
    let Some(h) = Harness::try_with(options).await else {
        return;
    };
    let mut ingest = template("echo got {{ parameters.url }}");
    ingest["parameters"]["url"] = json!({ "type": "string", "from": "data.url" });
    ingest["parameters"]["loud"]["default"] = json!(true);
    assert_eq!(put(&h, "ingest", &ingest).await.0, 201);
    let queues = h.runtime.submit_queues.clone().unwrap();
    let event = json!({ "specversion": "1.0", "id": "ev-1", "source": "/storage/acct",
        "type": "Microsoft.Storage.BlobCreated", "subject": "/blobs/a.bin",
        "data": { "url": "https://acct/blob/a.bin" } });
    let named = json!({ "id": "named-1", "template": "ingest", "parameters": { "url": "named" } });
    // Not base64 (the queue trigger's and Event Grid's encoding): dropped, the others go on.
    queues
        .0
        .send_encoded("{not base64}".into(), Duration::ZERO, TimeToLive::Never)
        .await
        .unwrap();
    for text in [&event, &event, &named, &named, &json!({ "template": 3 })] {
        queues
            .0
            .send(&text.to_string(), Duration::ZERO, TimeToLive::Never)
            .await
            .unwrap();
    }
    let all =
        berth_test_support::eventually("two deployments", Duration::from_secs(30), || async {
            let (_, body) = scenarios::get(&h, "/deployments").await;
            let all = body["deployments"].as_array().cloned().unwrap_or_default();
            let queued = queues.0.approximate_count().await.unwrap();
            if all.len() >= 2 && queued == 0 {
                Ok(all)
            } else {
                Err(format!(
                    "{} deployments, {queued} messages queued",
                    all.len()
                ))
            }
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, body) = scenarios::get(&h, "/deployments").await;
    assert_eq!(body["deployments"].as_array().unwrap().len(), 2, "{all:?}");
    let mut logs = Vec::new();
    for d in &all {
        let id = d["id"].as_str().unwrap();
        let done = h.wait_done(id).await;
        assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
        logs.push(h.logs(id, "work", "main").await.1);
    }
    logs.sort();
    assert_eq!(logs, ["got https://acct/blob/a.bin\n", "got named\n"]);
    let poisoned = queues.1.receive(32, Duration::from_secs(1)).await.unwrap();
    assert!(
        poisoned.is_empty(),
        "the bad message was dropped, not poisoned"
    );
    scenarios::assert_nothing_left(&h).await;
}
