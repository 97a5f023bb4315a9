//! Contract tests against the official swagger and examples (2026-07-01): every request example is
//! accepted, every answer the emulator gives matches the swagger's shapes, and the emulator's model
//! types read every official answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::swagger::{Direction, Swagger};
use common::*;
use emulator::model::{CloudError, ContainerGroup, ContainerGroupList, Logs, UsageList};
use serde_json::{Value, json};

/// Every example file: (file name, parsed JSON).
fn examples() -> Vec<(String, Value)> {
    let folder = fixtures().join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", folder.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "examples found: {files:?}");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect()
}

/// The swagger definition of an operation's 200/201 answer, for the operations the emulator serves.
fn response_definition(operation: &str) -> Option<&'static str> {
    match operation {
        "ContainerGroups_CreateOrUpdate"
        | "ContainerGroups_Get"
        | "ContainerGroups_Update"
        | "ContainerGroups_Delete" => Some("ContainerGroup"),
        "ContainerGroups_List" | "ContainerGroups_ListByResourceGroup" => {
            Some("ContainerGroupListResult")
        }
        "Containers_ListLogs" => Some("Logs"),
        "Location_ListUsage" => Some("UsageListResult"),
        "ContainerGroups_GetOutboundNetworkDependenciesEndpoints" => {
            Some("NetworkDependenciesResponse")
        }
        _ => None,
    }
}

#[test]
fn the_checker_fails_on_wrong_shapes() {
    let swagger = Swagger::load();
    let good = json!({"properties": {"containers": []}});
    swagger.assert("ContainerGroup", &good, Direction::Response);
    let cases = [
        json!({"properties": {"containers": [], "restartPolicy": "sometimes"}}),
        json!({"properties": {"containers": [], "unknownField": 1}}),
        json!({"properties": {"containers": [{"name": "a"}]}}),
        json!({"properties": {"containers": [{"name": "a", "properties": {"resources": {"requests": {"cpu": "1", "memoryInGB": 1}}}}]}}),
        json!({"properties": {"containers": [{"name": "a", "properties": {"environmentVariables": [{"name": "X", "secureValue": "s"}]}}]}}),
        json!({"properties": {"containers": [{"name": "a", "properties": {"instanceView": {"currentState": {"startTime": "yesterday"}}}}]}}),
        json!({"location": null, "properties": {"containers": []}}),
    ];
    for case in cases {
        assert!(
            swagger
                .check("ContainerGroup", &case, Direction::Response)
                .is_err(),
            "accepted {case}"
        );
    }
}

#[test]
fn every_official_answer_is_read_by_the_model_and_matches_the_swagger() {
    let swagger = Swagger::load();
    let mut read = 0;
    for (file, example) in examples() {
        let operation = example["operationId"].as_str().unwrap();
        let Some(definition) = response_definition(operation) else {
            continue;
        };
        for (status, response) in example["responses"].as_object().unwrap() {
            let Some(body) = response.get("body") else {
                continue;
            };
            let context = format!("{file} {status}");
            swagger.assert(definition, body, Direction::Response);
            // The model reads it, and what it writes back still matches the swagger.
            let written = match definition {
                "ContainerGroup" => {
                    let group: ContainerGroup = serde_json::from_value(body.clone())
                        .unwrap_or_else(|error| panic!("{context}: {error}"));
                    serde_json::to_value(group).unwrap()
                }
                "ContainerGroupListResult" => {
                    let list: ContainerGroupList = serde_json::from_value(body.clone())
                        .unwrap_or_else(|error| panic!("{context}: {error}"));
                    assert!(!list.value.is_empty(), "{context}");
                    serde_json::to_value(list).unwrap()
                }
                "Logs" => {
                    let logs: Logs = serde_json::from_value(body.clone()).unwrap();
                    assert_eq!(logs.content.as_deref(), Some("log content"));
                    serde_json::to_value(logs).unwrap()
                }
                "UsageListResult" => {
                    let usage: UsageList = serde_json::from_value(body.clone()).unwrap();
                    serde_json::to_value(usage).unwrap()
                }
                _ => body.clone(),
            };
            swagger.assert(definition, &written, Direction::Response);
            read += 1;
        }
    }
    assert!(read >= 9, "only {read} answers read");
}

#[test]
fn every_request_example_matches_the_swagger() {
    let swagger = Swagger::load();
    for (file, example) in examples() {
        if let Some(body) = example["parameters"].get("containerGroup") {
            swagger
                .check("ContainerGroup", body, Direction::Request)
                .unwrap_or_else(|errors| panic!("{file}: {errors:?}"));
        }
    }
}

#[tokio::test]
async fn every_put_example_is_accepted_and_every_answer_matches_the_swagger() {
    let swagger = Swagger::load();
    let harness = Harness::start(|_| {}).await;
    let mut accepted = 0;
    for (file, example) in examples() {
        let Some(body) = example["parameters"].get("containerGroup") else {
            continue;
        };
        let name = format!("example-{accepted}");
        let response = harness
            .client
            .put(format!(
                "{}?api-version=2026-07-01",
                harness.group_url(&name)
            ))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{file}: {answer:#}");
        swagger.assert("ContainerGroup", &answer, Direction::Response);
        assert_eq!(provisioning(&answer), "Pending", "{file}");
        // Examples with a command really run it; the others name images without a command,
        // which fail as an inaccessible image does. Either way the answers match the swagger.
        let runs = body["properties"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| {
                c["properties"]["command"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
            });
        let expected = if runs { "Succeeded" } else { "Failed" };
        let settled = harness
            .wait_for(&name, Duration::from_secs(10), expected, |body| {
                provisioning(body) == expected
            })
            .await;
        swagger.assert("ContainerGroup", &settled, Direction::Response);
        if !runs {
            let text = view(&settled, 0)["events"].to_string();
            assert!(text.contains("image map"), "{file}: {text}");
        }
        assert_eq!(harness.delete(&name).await.0, 200);
        accepted += 1;
    }
    assert!(accepted >= 4, "only {accepted} PUT examples");
    harness.stop().await;
}

#[tokio::test]
async fn answers_of_a_real_group_through_its_life_match_the_swagger() {
    let swagger = Swagger::load();
    let harness = Harness::start(|_| {}).await;
    let body = group_body(
        "OnFailure",
        json!([
            shell(
                "flaky",
                "echo attempt; exit 4",
                json!([{"name": "TOKEN", "secureValue": "hunter2"}]),
                json!([])
            ),
            shell(
                "steady",
                "echo up; sleep 30",
                json!([]),
                json!([{"name": "share", "mountPath": "/mnt/share"}])
            ),
        ]),
        json!([{"name": "share", "azureFile": {"shareName": "data", "storageAccountName": "acct1", "storageAccountKey": "c2VjcmV0"}}]),
    );
    let mut body = body;
    body["properties"]["initContainers"] = json!([{"name": "prepare", "properties": {
        "image": "busybox", "command": ["/bin/sh", "-c", "echo prepared"],
        "environmentVariables": [{"name": "INIT_TOKEN", "secureValue": "init-secret"}]
    }}]);
    let created = harness.create("lifecycle", &body).await;
    swagger.assert("ContainerGroup", &created, Direction::Response);

    // Running, with a crash-looping container (Waiting, previousState Terminated).
    let looping = harness
        .wait_for("lifecycle", Duration::from_secs(10), "restarting", |body| {
            view(body, 0)["restartCount"].as_i64().unwrap_or(0) >= 1
        })
        .await;
    swagger.assert("ContainerGroup", &looping, Direction::Response);
    let init = &looping["properties"]["initContainers"][0]["properties"]["instanceView"];
    assert_eq!(init["currentState"]["exitCode"], 0, "{looping:#}");

    let (status, logs) = harness
        .logs("lifecycle", "steady", "&tail=5&timestamps=true")
        .await;
    assert_eq!(status, 200);
    swagger.assert("Logs", &logs, Direction::Response);

    let (status, list) = harness
        .call(reqwest::Method::GET, &harness.groups_url(), "")
        .await;
    assert_eq!(status, 200);
    swagger.assert("ContainerGroupListResult", &list, Direction::Response);
    let usage_url = format!(
        "{}/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/locations/westus/usages",
        harness.base
    );
    let (status, usage) = harness.call(reqwest::Method::GET, &usage_url, "").await;
    assert_eq!(status, 200);
    swagger.assert("UsageListResult", &usage, Direction::Response);
    let (status, deps) = harness
        .call(
            reqwest::Method::GET,
            &format!(
                "{}/outboundNetworkDependenciesEndpoints",
                harness.group_url("lifecycle")
            ),
            "",
        )
        .await;
    assert_eq!((status, deps.clone()), (200, json!([])));
    swagger.assert("NetworkDependenciesResponse", &deps, Direction::Response);

    let patched = harness
        .client
        .patch(format!(
            "{}?api-version={API}",
            harness.group_url("lifecycle")
        ))
        .json(&json!({"tags": {"a": "b"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    swagger.assert("ContainerGroup", &patched, Direction::Response);

    assert_eq!(harness.post("lifecycle", "stop").await.0, 204);
    let (_, stopped) = harness.get("lifecycle").await;
    assert_eq!(group_state(&stopped), "Stopped");
    swagger.assert("ContainerGroup", &stopped, Direction::Response);

    let (status, deleted) = harness.delete("lifecycle").await;
    assert_eq!(status, 200);
    swagger.assert("ContainerGroup", &deleted, Direction::Response);

    let (status, missing) = harness.get("lifecycle").await;
    assert_eq!(status, 404);
    swagger.assert("CloudError", &missing, Direction::Response);
    let typed: CloudError = serde_json::from_value(missing).unwrap();
    assert_eq!(
        typed.error.unwrap().code.as_deref(),
        Some("ResourceNotFound")
    );
    harness.stop().await;
}
