//! The ARM surface: api-versions, errors and their messages, paging, normalisation, secrets,
//! updates, tags, logs availability, async operations, instant mode, quotas and stats.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn instant(config: &mut emulator::Config) {
    config.instant = true;
}

fn job(script: &str) -> Value {
    group_body(
        "Never",
        json!([shell("job", script, json!([]), json!([]))]),
        json!([]),
    )
}

/// The `Azure-AsyncOperation` URL a create, update, delete or action answered with.
fn async_operation(response: &reqwest::Response) -> String {
    response.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_string()
}

/// POST the `action` (start, stop, restart) on group `name`; the whole response, headers too.
async fn action(harness: &Harness, name: &str, action: &str) -> reqwest::Response {
    let url = format!("{}/{action}?api-version={API}", harness.group_url(name));
    harness.client.post(url).send().await.unwrap()
}

/// GET `url` as it is (its own api-version); the body as JSON.
async fn get_json(harness: &Harness, url: String) -> Value {
    let response = harness.client.get(url).send().await.unwrap();
    response.json().await.unwrap()
}

#[tokio::test]
async fn api_version_is_required_and_checked_against_the_allow_list() {
    let harness = Harness::start(instant).await;
    let url = harness.group_url("job");
    let response = harness.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "MissingApiVersionParameter");
    assert_eq!(
        body["error"]["message"],
        "The api-version query parameter (?api-version=) is required for all requests."
    );
    let response = harness
        .client
        .put(format!("{url}?api-version=2020-01-01"))
        .json(&job("true"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NoRegisteredProviderFound");
    assert_eq!(
        body["error"]["message"],
        format!(
            "No registered resource provider found for location 'westus' and API version '2020-01-01' for type 'containerGroups'. The supported api-versions are '{}'.",
            emulator::API_VERSIONS.join(", ")
        )
    );
    // The Python SDK's default, the CLI's pin, the YAML samples' versions, the oldest preview.
    for version in [
        "2023-05-01",
        "2024-05-01-preview",
        "2019-12-01",
        "2021-10-01",
        "2017-08-01-preview",
        "2025-09-01",
        "2026-07-01",
    ] {
        let response = harness
            .client
            .put(format!("{url}?api-version={version}"))
            .json(&job("true"))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{version}: {}",
            response.status()
        );
    }
    harness.stop().await;
}

#[tokio::test]
async fn answers_carry_the_properties_their_api_version_knows() {
    let harness = Harness::start(instant).await;
    let mut body = job("true");
    body["zones"] = json!(["1"]);
    body["properties"]["priority"] = json!("Regular");
    body["properties"]["sku"] = json!("Standard");
    harness.create("versioned", &body).await;
    let url = harness.group_url("versioned");
    // (version, has sku, has zones, has priority)
    for (version, sku, zones, priority) in [
        ("2018-10-01", false, false, false),
        ("2019-12-01", true, false, false),
        ("2021-10-01", true, true, false),
        ("2022-10-01-preview", true, true, true),
        ("2023-05-01", true, true, true),
        ("2026-07-01", true, true, true),
    ] {
        let answer = get_json(&harness, format!("{url}?api-version={version}")).await;
        assert_eq!(
            answer["properties"]["sku"].is_string(),
            sku,
            "{version}: {answer}"
        );
        assert_eq!(answer["zones"].is_array(), zones, "{version}: {answer}");
        assert_eq!(
            answer["properties"]["priority"].is_string(),
            priority,
            "{version}: {answer}"
        );
        let groups = harness.groups_url();
        let listed = get_json(&harness, format!("{groups}?api-version={version}")).await;
        assert_eq!(
            listed["value"][0]["zones"].is_array(),
            zones,
            "{version}: {listed}"
        );
    }
    harness.stop().await;
}

#[tokio::test]
async fn the_generic_resources_path_with_an_empty_parent_reaches_the_group() {
    let harness = Harness::start(instant).await;
    harness.create("generic", &job("true")).await;
    // `az container export` and `create --file`: `providers/{namespace}/{parent}/{type}/{name}`
    // with an empty parent; ARM reads `//` as `/`.
    let url = format!(
        "{}/subscriptions/{SUB}/resourcegroups/{RG}/providers/Microsoft.ContainerInstance//containerGroups/generic",
        harness.base
    );
    let (status, body) = harness.call(reqwest::Method::GET, &url, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "generic");
    harness.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_arm_errors() {
    let harness = Harness::start(instant).await;
    let (status, body) = harness
        .call(
            reqwest::Method::GET,
            &format!(
                "{}/subscriptions/s/resourceGroups/r/providers/Microsoft.Web/sites/x",
                harness.base
            ),
            "",
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "InvalidResourceType");
    let (status, body) = harness
        .call(reqwest::Method::POST, &harness.group_url("job"), "")
        .await;
    assert_eq!(status, 405, "{body}");
    harness.stop().await;
}

#[tokio::test]
async fn delete_answers_200_then_204_and_get_answers_arms_not_found() {
    let harness = Harness::start(instant).await;
    harness.create("gone", &job("true")).await;
    let (status, body) = harness.delete("gone").await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "gone");
    let (status, body) = harness.delete("gone").await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) = harness.get("gone").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "ResourceNotFound");
    assert_eq!(
        body["error"]["message"],
        format!(
            "The Resource 'Microsoft.ContainerInstance/containerGroups/gone' under resource group '{RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )
    );
    let (status, body) = harness.logs("gone", "job", "").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("ResourceNotFound"))
    );
    assert_eq!(harness.stats().await["deletes"], 1);
    harness.stop().await;
}

#[tokio::test]
async fn lists_page_with_next_link_and_carry_no_instance_view() {
    let harness = Harness::start(|config| {
        config.instant = true;
        config.page_size = 2;
    })
    .await;
    for i in 0..5 {
        harness.create(&format!("group-{i}"), &job("true")).await;
    }
    let other = format!(
        "{}/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.ContainerInstance/containerGroups/elsewhere?api-version={API}",
        harness.base
    );
    assert_eq!(
        harness
            .client
            .put(other)
            .json(&job("true"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );

    let collect = |first: String| {
        let client = harness.client.clone();
        async move {
            let mut names = Vec::new();
            let mut next = Some(first);
            let mut pages = 0;
            while let Some(url) = next {
                let page = json_body(client.get(&url)).await;
                pages += 1;
                for group in page["value"].as_array().unwrap() {
                    assert!(group["properties"].get("instanceView").is_none(), "{group}");
                    assert!(
                        group["properties"]["containers"][0]["properties"]
                            .get("instanceView")
                            .is_none()
                    );
                    names.push(group["name"].as_str().unwrap().to_string());
                }
                next = page["nextLink"].as_str().map(str::to_string);
            }
            (names, pages)
        }
    };
    let (names, pages) = collect(format!("{}?api-version={API}", harness.groups_url())).await;
    assert_eq!(
        names,
        ["group-0", "group-1", "group-2", "group-3", "group-4"]
    );
    assert_eq!(pages, 3);
    let (names, _) = collect(format!(
        "{}/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/containerGroups?api-version={API}",
        harness.base
    ))
    .await;
    assert_eq!(names.len(), 6);
    assert!(names.contains(&"elsewhere".to_string()));
    harness.stop().await;
}

#[tokio::test]
async fn enums_in_any_case_and_other_inputs_are_normalised() {
    let harness = Harness::start(instant).await;
    let body = json!({
        "location": "West US",
        "properties": {
            "osType": "LINUX",
            "restartPolicy": "onfailure",
            "sku": "standard",
            "ipAddress": {"type": "public", "dnsNameLabel": "berth-web", "ports": [{"port": 80, "protocol": "tcp"}]},
            "containers": [{"name": "web", "properties": {
                "image": "nginx", "command": ["true"],
                "ports": [{"port": 80, "protocol": "udp"}],
                "resources": {"requests": {"cpu": 1, "memoryInGB": 2}}
            }}]
        }
    });
    let created = harness.create("normalised", &body).await;
    let properties = &created["properties"];
    assert_eq!(created["location"], "westus");
    assert_eq!(properties["osType"], "Linux");
    assert_eq!(properties["restartPolicy"], "OnFailure");
    assert_eq!(properties["sku"], "Standard");
    assert_eq!(properties["ipAddress"]["type"], "Public");
    assert_eq!(properties["ipAddress"]["ports"][0]["protocol"], "TCP");
    assert_eq!(properties["ipAddress"]["ip"], "127.0.0.1");
    assert_eq!(
        properties["ipAddress"]["fqdn"],
        "berth-web.westus.azurecontainer.io"
    );
    assert_eq!(
        properties["containers"][0]["properties"]["ports"][0]["protocol"],
        "UDP"
    );
    assert_eq!(
        properties["containers"][0]["properties"]["environmentVariables"],
        json!([])
    );
    let text = serde_json::to_string(&created).unwrap();
    assert!(text.contains("\"cpu\":1.0"), "{text}");
    // A group's name is case-insensitive in paths, as in ARM.
    let (status, _) = harness.get("NORMALISED").await;
    assert_eq!(status, 200);
    let lower = harness
        .group_url("normalised")
        .replace("resourceGroups", "resourcegroups");
    assert_eq!(harness.call(reqwest::Method::GET, &lower, "").await.0, 200);
    harness.stop().await;
}

#[tokio::test]
async fn secrets_are_never_answered() {
    let harness = Harness::start(instant).await;
    let body = json!({
        "location": "westus",
        "properties": {
            "osType": "Linux",
            "imageRegistryCredentials": [{"server": "r.azurecr.io", "username": "u", "password": "registry-password"}],
            "diagnostics": {"logAnalytics": {"workspaceId": "ws", "workspaceKey": "workspace-key", "workspaceResourceId": "workspace-resource-id"}},
            "extensions": [{"name": "x", "properties": {"extensionType": "t", "version": "1", "protectedSettings": {"k": "protected-setting"}}}],
            "containers": [{"name": "job", "properties": {
                "image": "busybox", "command": ["true"],
                "resources": {"requests": {"cpu": 1, "memoryInGB": 1}},
                "environmentVariables": [{"name": "TOKEN", "secureValue": "secure-value"}]
            }}],
            "initContainers": [{"name": "init", "properties": {"image": "busybox",
                "environmentVariables": [{"name": "INIT_TOKEN", "secureValue": "init-secure-value"}]}}],
            "volumes": [
                {"name": "share", "azureFile": {"shareName": "s", "storageAccountName": "acct", "storageAccountKey": "storage-key"}},
                {"name": "secrets", "secret": {"f": "c2VjcmV0LWZpbGU="}}
            ]
        }
    });
    let secrets = [
        "registry-password",
        "workspace-key",
        "workspace-resource-id",
        "protected-setting",
        "secure-value",
        "storage-key",
        "c2VjcmV0LWZpbGU=",
    ];
    let mut answers = vec![harness.create("secretive", &body).await];
    answers.push(harness.get("secretive").await.1);
    answers.push(
        harness
            .call(reqwest::Method::GET, &harness.groups_url(), "")
            .await
            .1,
    );
    let patched = harness
        .client
        .patch(format!(
            "{}?api-version={API}",
            harness.group_url("secretive")
        ))
        .json(&json!({"tags": {"a": "b"}}))
        .send()
        .await
        .unwrap();
    answers.push(patched.json().await.unwrap());
    let updated = harness.put("secretive", &body).await;
    assert_eq!(updated.status(), 200);
    answers.push(updated.json().await.unwrap());
    answers.push(harness.delete("secretive").await.1);
    for answer in &answers {
        let text = answer.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} answered in {text}");
        }
    }
    let first = &answers[0]["properties"];
    assert_eq!(
        first["diagnostics"]["logAnalytics"],
        json!({"workspaceId": "ws"})
    );
    assert_eq!(first["volumes"][1]["secret"], json!({}));
    assert_eq!(
        first["containers"][0]["properties"]["environmentVariables"],
        json!([{"name": "TOKEN"}])
    );
    assert_eq!(
        first["imageRegistryCredentials"][0],
        json!({"server": "r.azurecr.io", "username": "u"})
    );
    harness.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_400_naming_the_field() {
    let harness = Harness::start(instant).await;
    let cases = [
        (json!({"location": "westus"}), "InvalidRequestContent", ""),
        (
            json!({"location": "westus", "properties": {"containers": [{"name": "a", "properties": {"ports": [{"port": "eighty"}]}}]}}),
            "InvalidRequestContent",
            "properties.containers[0].properties.ports[0].port",
        ),
        (
            json!({"location": "westus", "properties": {"osType": "Solaris", "containers": []}}),
            "InvalidRequestContent",
            "properties.osType",
        ),
        (
            json!({"location": "westus", "properties": {"osType": "Linux", "containers": [{"name": "a", "properties": {"image": "x"}}]}}),
            "ResourceRequestsNotSpecified",
            "properties.containers[0].properties.resources.requests",
        ),
        (
            json!({"properties": {"osType": "Linux", "containers": []}}),
            "LocationRequired",
            "location",
        ),
    ];
    for (body, code, target) in cases {
        let response = harness.put("bad", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{error}");
        if !target.is_empty() {
            assert_eq!(error["error"]["target"], target, "{error}");
            assert!(
                error["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(target.split('.').next_back().unwrap())
            );
        }
    }
    let response = harness
        .client
        .put(format!("{}?api-version={API}", harness.group_url("bad")))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = harness.put("Bad_Name", &job("true")).await;
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "InvalidResourceName");
    assert_eq!(harness.stats().await["groups"], 0);
    harness.stop().await;
}

#[tokio::test]
async fn forbidden_updates_are_refused_and_tags_are_patched() {
    let harness = Harness::start(instant).await;
    harness.create("updatable", &job("true")).await;
    let mut changed = job("true");
    changed["properties"]["restartPolicy"] = json!("Always");
    let response = harness.put("updatable", &changed).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "InvalidContainerGroupUpdate");
    assert_eq!(
        error["error"]["message"],
        "The updates on container group 'updatable' are invalid. If you are going to update the os type, restart policy, network profile, CPU, memory or GPU resources for a container group, you must delete it first and then create a new one."
    );
    let mut moved = job("true");
    moved["location"] = json!("eastus");
    let response = harness.put("updatable", &moved).await;
    assert_eq!(response.status(), 409);
    let mut tagged = job("echo new");
    tagged["tags"] = json!({"owner": "berth"});
    let response = harness.put("updatable", &tagged).await;
    assert_eq!(response.status(), 200);

    let response = harness
        .client
        .patch(format!(
            "{}?api-version={API}",
            harness.group_url("updatable")
        ))
        .json(&json!({"tags": {"team": "media"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, body) = harness.get("updatable").await;
    assert_eq!(body["tags"], json!({"team": "media"}));
    harness.stop().await;
}

#[tokio::test]
async fn logs_are_not_available_before_the_container_starts() {
    let harness = Harness::start(|config| {
        config.timings.pending = Duration::from_secs(3600);
    })
    .await;
    let response = harness.put("waiting", &job("echo hi")).await;
    assert_eq!(response.status(), 201);
    let operation = async_operation(&response);
    assert!(operation.starts_with(&format!(
        "{}/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/locations/westus/operations/",
        harness.base
    )));
    let (status, body) = harness.logs("waiting", "job", "").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "ContainerLogNotAvailable");
    assert_eq!(
        body["error"]["message"],
        "Log of container 'job' in container group 'waiting' is not available yet. Please check container 'InstanceView' for more information or retry later."
    );
    let (_, group) = harness.get("waiting").await;
    assert_eq!(provisioning(&group), "Pending");
    assert_eq!(group_state(&group), "Pending");
    let status = get_json(&harness, operation.clone()).await;
    assert_eq!(status["status"], "Pending");
    assert_eq!(status["id"], group["id"]);
    harness.stop().await;
}

#[tokio::test]
async fn async_operations_follow_the_group_to_a_terminal_status() {
    let harness = Harness::start(|config| {
        config.timings.pending = Duration::from_millis(50);
        config.timings.creating = Duration::from_millis(50);
    })
    .await;
    let response = harness.put("tracked", &job("echo hi")).await;
    let operation = async_operation(&response);
    // The SDKs wait `Retry-After` seconds between polls, 30 without it, and read 0 as absent.
    assert_eq!(response.headers()["retry-after"], "1");
    let polled = harness.client.get(&operation).send().await.unwrap();
    assert_eq!(polled.headers()["retry-after"], "1", "while it runs");
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = get_json(&harness, operation.clone()).await;
        let status = status["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "Succeeded" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.first().map(String::as_str), Some("Pending"));
    assert!(seen.contains(&"Creating".to_string()), "{seen:?}");
    // An operation that ended keeps its status through a later update and the group's delete.
    let update = harness.put("tracked", &job("echo again")).await;
    assert_eq!(update.status(), 200);
    let status = get_json(&harness, operation.clone()).await;
    assert_eq!(status["status"], "Succeeded");
    harness.delete("tracked").await;
    let status = get_json(&harness, operation.clone()).await;
    assert_eq!(status["status"], "Succeeded");
    let missing = operation.replace("/operations/", "/operations/0");
    assert_eq!(
        harness.client.get(&missing).send().await.unwrap().status(),
        404
    );
    harness.stop().await;
}

#[tokio::test]
async fn instant_mode_completes_at_once_without_processes_or_files() {
    let harness = Harness::start(instant).await;
    let created = harness
        .create(
            "fast",
            &group_body(
                "Always",
                json!([
                    shell("a", "sleep 1000", json!([]), json!([])),
                    shell("b", "sleep 1000", json!([]), json!([]))
                ]),
                json!([]),
            ),
        )
        .await;
    assert_eq!(provisioning(&created), "Pending");
    let (_, body) = harness.get("fast").await;
    assert_eq!(provisioning(&body), "Succeeded");
    assert_eq!(group_state(&body), "Succeeded");
    for container in 0..2 {
        assert_eq!(
            view(&body, container)["currentState"]["state"],
            "Terminated"
        );
        assert_eq!(view(&body, container)["currentState"]["exitCode"], 0);
    }
    let (_, logs) = harness.logs("fast", "b", "").await;
    assert_eq!(logs["content"], format!("{}\n", emulator::aci::INSTANT_LOG));
    let (_, logs) = harness.logs("fast", "b", "&tail=0").await;
    assert_eq!(logs["content"], "");
    assert_eq!(harness.stats().await["liveProcesses"], 0);
    assert_eq!(harness.delete("fast").await.0, 200);
    assert_eq!(
        std::fs::read_dir(harness.data()).unwrap().count(),
        0,
        "instant mode wrote files"
    );
    harness.stop().await;
}

#[tokio::test]
async fn quotas_throttle_creates_and_limit_cores_when_enforced() {
    let harness = Harness::start(|config| {
        config.instant = true;
        config.enforce_quotas = true;
        config.quotas.creates_per_5_minutes = 2;
        config.quotas.cores_per_region = 3.0;
    })
    .await;
    let first = harness.put("q1", &job("true")).await;
    assert_eq!(first.status(), 201);
    assert_eq!(
        first.headers()["x-ms-ratelimit-remaining-subscription-resource-requests-pt5m"],
        "1"
    );
    assert_eq!(harness.put("q2", &job("true")).await.status(), 201);
    let third = harness.put("q3", &job("true")).await;
    assert_eq!(third.status(), 429);
    let retry: u64 = third.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((299..=300).contains(&retry), "{retry}");
    // Updating an existing group is not a create.
    assert_eq!(harness.put("q1", &job("echo again")).await.status(), 200);
    harness.stop().await;

    let harness = Harness::start(|config| {
        config.instant = true;
        config.enforce_quotas = true;
        config.quotas.cores_per_region = 0.75;
    })
    .await;
    assert_eq!(harness.put("c1", &job("true")).await.status(), 201);
    let over = harness.put("c2", &job("true")).await;
    assert_eq!(over.status(), 400);
    let error: Value = over.json().await.unwrap();
    assert_eq!(error["error"]["code"], "ContainerGroupQuotaReached");
    assert_eq!(
        error["error"]["message"],
        "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' exceeded in region 'westus'. Limit: '0.75', Usage: '0.5' Requested: '0.5'."
    );
    // Another region has its own quota.
    let mut elsewhere = job("true");
    elsewhere["location"] = json!("eastus");
    assert_eq!(harness.put("c3", &elsewhere).await.status(), 201);
    harness.stop().await;
}

#[tokio::test]
async fn usages_count_the_live_groups_against_the_configured_limits() {
    let harness = Harness::start(|config| {
        config.instant = true;
        config.quotas.cores_per_region = 3.0;
        config.quotas.groups_per_region = 10;
    })
    .await;
    let usages = |location: &'static str| {
        let url = format!(
            "{}/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/locations/{location}/usages?api-version={API}",
            harness.base
        );
        let harness = &harness;
        async move {
            let body = get_json(harness, url).await;
            let find = |name: &str| {
                let usage = body["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|u| u["name"]["value"] == name)
                    .unwrap_or_else(|| panic!("no {name} in {body}"))
                    .clone();
                (
                    usage["currentValue"].as_i64().unwrap(),
                    usage["limit"].as_i64().unwrap(),
                )
            };
            (find("StandardCores"), find("ContainerGroups"))
        }
    };
    assert_eq!(usages("westus").await, ((0, 3), (0, 10)));
    harness.create("u1", &job("true")).await;
    harness.create("u2", &job("true")).await;
    // Two groups of half a core: ACI reports whole cores, rounded up.
    assert_eq!(usages("westus").await, ((1, 3), (2, 10)));
    assert_eq!(usages("West US").await, ((1, 3), (2, 10)));
    assert_eq!(usages("eastus").await, ((0, 3), (0, 10)));
    // A stopped group keeps counting as a group, not its cores; a deleted one not at all.
    assert_eq!(harness.post("u1", "stop").await.0, 204);
    assert_eq!(usages("westus").await, ((1, 3), (2, 10)));
    assert_eq!(harness.post("u2", "stop").await.0, 204);
    assert_eq!(usages("westus").await, ((0, 3), (2, 10)));
    assert_eq!(harness.delete("u1").await.0, 200);
    assert_eq!(usages("westus").await, ((0, 3), (1, 10)));
    harness.stop().await;
}

#[tokio::test]
async fn start_right_after_stop_is_transitioning_when_asked() {
    let harness = Harness::start(|config| {
        config.instant = true;
        config.faults.transitioning_seconds = 60;
    })
    .await;
    harness.create("cycled", &job("true")).await;
    assert_eq!(harness.post("cycled", "stop").await.0, 204);
    let (status, body) = harness.post("cycled", "start").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "ContainerGroupTransitioning");
    assert_eq!(
        body["error"]["message"],
        "The container group 'cycled' is still transitioning, please retry later."
    );
    let faults = get_json(&harness, format!("{}/_emulator/faults", harness.base)).await;
    assert_eq!(faults["transitioningSeconds"], 60);
    let response = harness
        .client
        .put(format!("{}/_emulator/faults", harness.base))
        .json(&json!({"transitioningSeconds": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = action(&harness, "cycled", "start").await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().contains_key("azure-asyncoperation"));
    let (_, body) = harness.get("cycled").await;
    assert_eq!(group_state(&body), "Succeeded");
    let response = action(&harness, "cycled", "restart").await;
    assert_eq!(response.status(), 204);
    assert!(response.headers().contains_key("azure-asyncoperation"));
    assert_eq!(harness.post("missing", "stop").await.0, 404);
    harness.stop().await;
}

#[tokio::test]
async fn start_on_a_running_group_is_a_no_op() {
    let harness = Harness::start(|_| {}).await;
    harness
        .create(
            "svc",
            &group_body(
                "Always",
                json!([shell("s", "sleep 1000", json!([]), json!([]))]),
                json!([]),
            ),
        )
        .await;
    harness
        .wait_for("svc", Duration::from_secs(20), "Running", |body| {
            group_state(body) == "Running"
        })
        .await;
    assert_eq!(harness.post("svc", "start").await.0, 204);
    harness.stop().await;
}

#[tokio::test]
async fn a_delete_delay_answers_202_and_shows_deleting() {
    let harness = Harness::start(|config| {
        config.instant = true;
        config.timings.deleting = Duration::from_millis(300);
    })
    .await;
    harness.create("slow-delete", &job("true")).await;
    let response = harness
        .client
        .delete(format!(
            "{}?api-version={API}",
            harness.group_url("slow-delete")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let operation = async_operation(&response);
    let (_, body) = harness.get("slow-delete").await;
    assert_eq!(provisioning(&body), "Deleting");
    let status = get_json(&harness, operation.clone()).await;
    assert_eq!(status["status"], "Deleting");
    eventually(
        "slow-delete to be gone",
        Duration::from_secs(10),
        || async {
            match harness.get("slow-delete").await {
                (404, _) => Ok(()),
                (status, body) => Err(format!("{status}: {body}")),
            }
        },
    )
    .await;
    let status = get_json(&harness, operation.clone()).await;
    assert_eq!(status["status"], "Succeeded");
    harness.stop().await;
}

#[tokio::test]
async fn stats_count_requests_by_kind() {
    let harness = Harness::start(instant).await;
    harness.create("counted", &job("true")).await;
    harness.get("counted").await;
    harness.get("counted").await;
    harness.logs("counted", "job", "").await;
    harness.delete("counted").await;
    let stats = harness.stats().await;
    assert_eq!(stats["requests"]["put"], 1);
    assert_eq!(stats["requests"]["get"], 2);
    assert_eq!(stats["requests"]["logs"], 1);
    assert_eq!(stats["requests"]["delete"], 1);
    assert_eq!(stats["createsByName"], json!({"counted": 1}));
    assert_eq!(stats["deletes"], 1);
    let typed = harness.running().stats();
    assert_eq!(typed.deletes, 1);
    harness.stop().await;
}

#[tokio::test]
async fn the_router_serves_without_a_listener() {
    use tower::ServiceExt;
    let emulator = emulator::Emulator::new(emulator::Config {
        instant: true,
        ..emulator::Config::default()
    })
    .unwrap();
    let app = emulator::router(emulator.clone());
    let request = |method: &str, uri: String, body: Value| {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "emulator.test")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/containerGroups/routed?api-version={API}"
    );
    let response = app
        .clone()
        .oneshot(request("PUT", path.clone(), job("true")))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let operation = response.headers()["azure-asyncoperation"].to_str().unwrap();
    assert!(
        operation.starts_with("http://emulator.test/subscriptions/"),
        "{operation}"
    );
    let response = app
        .oneshot(request("GET", "/_emulator/stats".into(), Value::Null))
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let stats: emulator::Stats = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(stats.creates_by_name["routed"], 1);
    assert_eq!(emulator.stats(), stats);
}

#[tokio::test]
async fn acis_create_time_rules_are_refused_with_their_code_and_nothing_is_created() {
    let harness = Harness::start(instant).await;
    for rule in emulator::rules::RULES {
        let properties = (rule.sample)();
        let body = json!({"location": rule.sample_location, "properties": properties});
        let response = harness.put("ruled", &body).await;
        assert_eq!(response.status(), 400, "{}", rule.code);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], rule.code, "{error}");
        let violation = rule.check(&properties, Some(rule.sample_location)).unwrap();
        assert_eq!(
            error["error"]["target"],
            format!("properties.{}", violation.path)
        );
        assert_eq!(harness.get("ruled").await.0, 404, "{}", rule.code);
    }
    // The same GPU request is accepted where the SKU is offered, and in a region not in the table.
    let gpu = |location: &str| {
        json!({"location": location, "properties": {"osType": "Linux", "restartPolicy": "Never",
            "containers": [{"name": "main", "properties": {"image": "busybox",
                "resources": {"requests": {"cpu": 1, "memoryInGB": 1, "gpu": {"count": 1, "sku": "K80"}}}}}]}})
    };
    assert_eq!(harness.put("gpu-local", &gpu("local")).await.status(), 400);
    assert_eq!(harness.put("gpu-east", &gpu("East US")).await.status(), 201);
    assert_eq!(
        harness.put("gpu-west", &gpu("westeurope")).await.status(),
        201
    );
    harness.stop().await;
}

#[tokio::test]
async fn instant_mode_runs_a_sleep_for_its_time_without_a_process() {
    let harness = Harness::start(|config| {
        config.instant = true;
        config.simulate_sleeps = true;
    })
    .await;
    harness.create("sleeper", &job("sleep 1.5")).await;
    harness.create("quick", &job("true")).await;
    let state = |body: &Value| {
        body["properties"]["containers"][0]["properties"]["instanceView"]["currentState"].clone()
    };
    let (_, quick) = harness.get("quick").await;
    assert_eq!(state(&quick)["state"], "Terminated");
    let (_, running) = harness.get("sleeper").await;
    assert_eq!(state(&running)["state"], "Running", "{running}");
    assert_eq!(running["properties"]["instanceView"]["state"], "Running");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let (_, done) = harness.get("sleeper").await;
    let current = state(&done);
    assert_eq!(current["state"], "Terminated", "{done}");
    assert_eq!(current["exitCode"], 0);
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let ran = parse(&current["finishTime"]) - parse(&current["startTime"]);
    assert!(
        (1.4..1.9).contains(&ran.as_seconds_f64()),
        "ran {ran} from {current}"
    );
    assert_eq!(done["properties"]["instanceView"]["state"], "Succeeded");
    harness.stop().await;
}
