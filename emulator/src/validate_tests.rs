//! Validation of PUT bodies: each rule gives its code and names the field.

use super::*;

fn body(json: serde_json::Value) -> ContainerGroup {
    serde_json::from_value(json).unwrap()
}

fn job() -> serde_json::Value {
    serde_json::json!({
        "location": "westus",
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Never",
            "containers": [{
                "name": "job",
                "properties": {
                    "image": "busybox",
                    "command": ["true"],
                    "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}},
                    "environmentVariables": [{"name": "BERTH_CALLBACK_URL", "value": "http://127.0.0.1"}],
                    "volumeMounts": [{"name": "share", "mountPath": "/mnt/share"}]
                }
            }],
            "volumes": [{"name": "share", "azureFile": {"shareName": "data", "storageAccountName": "acct1"}}]
        }
    })
}

fn error_of(json: serde_json::Value) -> ArmError {
    group("job-1", &body(json)).unwrap_err()
}

#[test]
fn a_plain_job_is_valid() {
    group("job-1", &body(job())).unwrap();
}

#[test]
fn group_names_follow_the_aci_rules() {
    for bad in ["", "-a", "a-", "a--b", "UPPER", "a_b", &"x".repeat(64)] {
        assert_eq!(
            group_name(bad).unwrap_err().code,
            "InvalidResourceName",
            "{bad}"
        );
    }
    group_name("a").unwrap();
    group_name("transcode-42-ffmpeg-1").unwrap();
}

#[test]
fn missing_resources_give_resource_requests_not_specified() {
    let mut json = job();
    json["properties"]["containers"][0]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("resources");
    let error = error_of(json);
    assert_eq!(error.code, "ResourceRequestsNotSpecified");
    assert_eq!(
        error.target.as_deref(),
        Some("properties.containers[0].properties.resources.requests")
    );
}

#[test]
fn missing_os_type_and_location_are_named() {
    let mut json = job();
    json["properties"].as_object_mut().unwrap().remove("osType");
    assert_eq!(error_of(json).code, "InvalidOsType");
    let mut json = job();
    json.as_object_mut().unwrap().remove("location");
    assert_eq!(error_of(json).code, "LocationRequired");
}

#[test]
fn unknown_volume_mounts_and_bad_paths_are_named() {
    let mut json = job();
    json["properties"]["containers"][0]["properties"]["volumeMounts"][0]["name"] = "other".into();
    let error = error_of(json);
    assert_eq!(
        error.target.as_deref(),
        Some("properties.containers[0].properties.volumeMounts[0].name")
    );
    let mut json = job();
    json["properties"]["containers"][0]["properties"]["volumeMounts"][0]["mountPath"] =
        "/a/../etc".into();
    assert!(error_of(json).message.contains("/a/../etc"));
}

#[test]
fn share_and_account_names_cannot_escape_the_shares_folder() {
    let mut json = job();
    json["properties"]["volumes"][0]["azureFile"]["shareName"] = "../x".into();
    assert_eq!(
        error_of(json).target.as_deref(),
        Some("properties.volumes[0].azureFile.shareName")
    );
    let mut json = job();
    json["properties"]["volumes"][0]["azureFile"]["storageAccountName"] = "Acct/..".into();
    assert_eq!(
        error_of(json).target.as_deref(),
        Some("properties.volumes[0].azureFile.storageAccountName")
    );
}

#[test]
fn secret_volumes_need_base64_and_plain_file_names() {
    let mut json = job();
    json["properties"]["volumes"][0] =
        serde_json::json!({"name": "share", "secret": {"token": "not base64!"}});
    assert_eq!(
        error_of(json).target.as_deref(),
        Some("properties.volumes[0].secret.token")
    );
    let mut json = job();
    json["properties"]["volumes"][0] =
        serde_json::json!({"name": "share", "secret": {"../x": "eA=="}});
    assert_eq!(
        error_of(json).target.as_deref(),
        Some("properties.volumes[0].secret")
    );
}

#[test]
fn environment_variable_names_follow_the_rules() {
    for bad in ["_X", "X_", "A-B", ""] {
        let mut json = job();
        json["properties"]["containers"][0]["properties"]["environmentVariables"][0]["name"] =
            bad.into();
        assert_eq!(
            error_of(json).target.as_deref(),
            Some("properties.containers[0].properties.environmentVariables[0].name"),
            "{bad}"
        );
    }
}

#[test]
fn a_limit_above_the_group_request_is_refused() {
    let mut json = job();
    json["properties"]["containers"][0]["properties"]["resources"]["limits"] =
        serde_json::json!({"cpu": 2});
    assert_eq!(
        error_of(json).code,
        "ContainerLimitGreaterThanContainerGroupTotalRequest"
    );
}

#[test]
fn updates_may_not_change_policy_os_or_resources() {
    let old = body(job());
    let mut same = job();
    same["properties"]["containers"][0]["properties"]["command"] =
        serde_json::json!(["echo", "new"]);
    update("job-1", &old, &body(same)).unwrap();

    let mut policy = job();
    policy["properties"]["restartPolicy"] = "OnFailure".into();
    assert_eq!(
        update("job-1", &old, &body(policy)).unwrap_err().code,
        "InvalidContainerGroupUpdate"
    );
    let mut cpu = job();
    cpu["properties"]["containers"][0]["properties"]["resources"]["requests"]["cpu"] = 2.into();
    assert!(update("job-1", &old, &body(cpu)).is_err());
    let mut omitted = job();
    omitted["properties"]
        .as_object_mut()
        .unwrap()
        .remove("restartPolicy");
    assert!(
        update("job-1", &old, &body(omitted)).is_err(),
        "omitting restartPolicy means Always, a change"
    );
}
