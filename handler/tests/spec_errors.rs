//! Bad specs get a clear error naming the field: a table of malformed specs, each with the field
//! path its first error must name.

#![allow(clippy::unwrap_used)]

use berth::spec::{Format, aci, parse};
use serde_json::{Value, json};

fn good() -> Value {
    json!({
        "id": "transcode-42",
        "mode": "job",
        "groups": [{ "name": "ffmpeg", "properties": {
            "containers": [
                { "name": "main", "properties": {
                    "image": "ffmpeg:6", "command": ["ffmpeg", "-i", "in.mp4"],
                    "resources": { "requests": { "cpu": 1, "memoryInGB": 1.5 } },
                    "environmentVariables": [{ "name": "MODE", "value": "fast" }],
                    "volumeMounts": [{ "name": "media", "mountPath": "/media" }] } },
                { "name": "side", "properties": {
                    "image": "busybox", "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }
            ],
            "volumes": [{ "name": "media", "azureFile": { "shareName": "media", "storageAccountName": "mediastore" } }],
            "restartPolicy": "Never" } }],
        "timeout": "PT30M",
        "completion": "exit",
        "retry": { "maxAttempts": 3, "backoff": "PT10S" },
        "cleanup": { "when": "always", "keepFor": "PT0S" },
        "captureLogs": true,
        "tags": { "team": "media" }
    })
}

fn with(path: &str, value: Value) -> Value {
    let mut spec = good();
    let (parent, key) = path.rsplit_once('/').unwrap();
    let target = spec
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match target {
        Value::Object(map) => {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.to_owned(), value);
            }
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        _ => panic!("{parent} is not a container"),
    }
    spec
}

const C0: &str = "/groups/0/properties/containers/0/properties";
const G0: &str = "/groups/0/properties";

#[test]
fn the_current_api_version_is_the_default_and_changes_nothing() {
    let plain = parse(
        good().to_string().as_bytes(),
        Format::Json,
        || unreachable!(),
    )
    .unwrap();
    let versioned = with("/apiVersion", json!("berth/v1"));
    let versioned = parse(
        versioned.to_string().as_bytes(),
        Format::Json,
        || unreachable!(),
    );
    assert_eq!(versioned.unwrap(), plain);
}

#[test]
fn the_good_spec_is_accepted() {
    let spec = parse(
        good().to_string().as_bytes(),
        Format::Json,
        || unreachable!(),
    )
    .unwrap();
    assert_eq!(spec.id, "transcode-42");
    assert_eq!(spec.groups[0].shape().cpu, 1.5);
}

#[test]
fn seventy_malformed_specs_name_their_field() {
    let p = |s: &str| s.to_owned();
    let cases: Vec<(Value, String)> = vec![
        (json!([]), p("(spec)")),
        (json!("text"), p("(spec)")),
        (with("/timout", json!("PT1M")), p("timout")),
        (with("/id", json!(42)), p("id")),
        (with("/id", json!("Has_Upper")), p("id")),
        (with("/id", json!("-leading")), p("id")),
        (with("/id", json!("a".repeat(41))), p("id")),
        (with("/apiVersion", json!("berth/v2")), p("apiVersion")),
        (with("/apiVersion", json!("2019-12-01")), p("apiVersion")),
        (with("/apiVersion", json!(1)), p("apiVersion")),
        (with("/mode", json!("batch")), p("mode")),
        (with("/mode", json!(1)), p("mode")),
        (with("/completion", json!("never")), p("completion")),
        (with("/timeout", json!("30 minutes")), p("timeout")),
        (with("/timeout", json!("PT0S")), p("timeout")),
        (with("/retry", json!("often")), p("retry")),
        (with("/retry/maxAttempts", json!(0)), p("retry.maxAttempts")),
        (
            with("/retry/maxAttempts", json!(11)),
            p("retry.maxAttempts"),
        ),
        (with("/retry/backoff", json!("soon")), p("retry.backoff")),
        (with("/retry/jitter", json!(true)), p("retry.jitter")),
        (with("/cleanup/when", json!("sometimes")), p("cleanup.when")),
        (with("/cleanup/keepFor", json!("1h")), p("cleanup.keepFor")),
        (with("/captureLogs", json!("yes")), p("captureLogs")),
        (with("/tags", json!(["a"])), p("tags")),
        (with("/tags/team", json!(5)), p("tags.team")),
        (
            with("/tags/berth-deployment", json!("x")),
            p("tags.berth-deployment"),
        ),
        (with("/groups", json!([])), p("groups")),
        (with("/groups", json!({})), p("groups")),
        (with("/groups", Value::Null), p("groups")),
        (with("/groups/0/name", json!("FFmpeg")), p("groups[0].name")),
        (with("/groups/0/name", Value::Null), p("groups[0].name")),
        (
            with("/groups/0/properties", json!("x")),
            p("groups[0].properties"),
        ),
        (
            with(&format!("{G0}/containers"), json!([])),
            p("groups[0].properties.containers"),
        ),
        (
            with(&format!("{G0}/restartPolicy"), json!("Always")),
            p("groups[0].properties.restartPolicy"),
        ),
        (
            with(&format!("{G0}/restartPolicy"), json!("Sometimes")),
            p("groups[0].properties.restartPolicy"),
        ),
        (
            with(&format!("{G0}/osType"), json!("Plan9")),
            p("groups[0].properties.osType"),
        ),
        (
            with("/groups/0/properties/containers/0/name", json!("Main")),
            p("groups[0].properties.containers[0].name"),
        ),
        (
            with("/groups/0/properties/containers/1/name", json!("main")),
            p("groups[0].properties.containers[1].name"),
        ),
        (
            with(&format!("{C0}/image"), Value::Null),
            p("groups[0].properties.containers[0].properties.image"),
        ),
        (
            with(&format!("{C0}/command"), json!("ffmpeg -i x")),
            p("groups[0].properties.containers[0].properties.command"),
        ),
        (
            with(&format!("{C0}/resources/requests/cpu"), json!(0)),
            p("groups[0].properties.containers[0].properties.resources.requests.cpu"),
        ),
        (
            with(&format!("{C0}/resources/requests/cpu"), json!(64)),
            p("groups[0].properties.containers[0].properties.resources.requests.cpu"),
        ),
        (
            with(&format!("{C0}/resources/requests/memoryInGB"), json!("2")),
            p("groups[0].properties.containers[0].properties.resources.requests.memoryInGB"),
        ),
        (
            with(&format!("{C0}/resources"), Value::Null),
            p("groups[0].properties.containers[0].properties.resources.requests"),
        ),
        (
            with(&format!("{C0}/environmentVariables/0/name"), json!("1BAD")),
            p("groups[0].properties.containers[0].properties.environmentVariables[0].name"),
        ),
        (
            with(
                &format!("{C0}/environmentVariables/0/name"),
                json!("BERTH_CALLBACK_URL"),
            ),
            p("groups[0].properties.containers[0].properties.environmentVariables[0].name"),
        ),
        (
            with(
                &format!("{C0}/environmentVariables/0/name"),
                json!("TRACEPARENT"),
            ),
            p("groups[0].properties.containers[0].properties.environmentVariables[0].name"),
        ),
        (
            with(
                &format!("{C0}/environmentVariables/0"),
                json!({ "name": "X", "value": "a", "secureValue": "b" }),
            ),
            p("groups[0].properties.containers[0].properties.environmentVariables[0]"),
        ),
        (
            with(
                &format!("{C0}/environmentVariables/0"),
                json!({ "name": "X", "secureValueFrom": "bad name!" }),
            ),
            p(
                "groups[0].properties.containers[0].properties.environmentVariables[0].secureValueFrom",
            ),
        ),
        (
            with(&format!("{C0}/volumeMounts/0/name"), json!("nothere")),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].name"),
        ),
        (
            with(
                &format!("{C0}/volumeMounts/0/mountPath"),
                json!("relative/path"),
            ),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"),
        ),
        (
            with(&format!("{C0}/volumeMounts/0/mountPath"), json!("C:/data")),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"),
        ),
        (
            with(&format!("{C0}/volumeMounts/0/mountPath"), json!("/")),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"),
        ),
        (
            with(
                &format!("{C0}/volumeMounts/0/mountPath"),
                json!("/proc/self"),
            ),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"),
        ),
        (
            with(&format!("{C0}/volumeMounts/0/mountPath"), json!("/sys")),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"),
        ),
        (
            with(
                &format!("{C0}/volumeMounts/0/mountPath"),
                json!("/dev/shm/x"),
            ),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"),
        ),
        (
            with(&format!("{C0}/volumeMounts/0/mountPath"), json!("/./proc")),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"),
        ),
        (
            with(
                &format!("{C0}/volumeMounts/0/mountPath"),
                json!("/media/../etc"),
            ),
            p("groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"),
        ),
        (
            with(&format!("{C0}/ports"), json!([{ "port": 70000 }])),
            p("groups[0].properties.containers[0].properties.ports[0].port"),
        ),
        (
            with(&format!("{G0}/volumes/0/name"), json!("md")),
            p("groups[0].properties.volumes[0].name"),
        ),
        (
            with(
                &format!("{G0}/volumes/0/azureFile/storageAccountName"),
                json!("Media_Store"),
            ),
            p("groups[0].properties.volumes[0].azureFile.storageAccountName"),
        ),
        (
            with(&format!("{G0}/volumes/0/azureFile/shareName"), Value::Null),
            p("groups[0].properties.volumes[0].azureFile.shareName"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "emptyDir": {}, "azureFile": { "shareName": "a1b", "storageAccountName": "acct" } }),
            ),
            p("groups[0].properties.volumes[0]"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "secret": { "key": "not base64!" } }),
            ),
            p("groups[0].properties.volumes[0].secret.key"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "secret": { "../escape": "aGk=" } }),
            ),
            p("groups[0].properties.volumes[0].secret"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "secret": { "dir/file": "aGk=" } }),
            ),
            p("groups[0].properties.volumes[0].secret"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "secret": { "dir\\file": "aGk=" } }),
            ),
            p("groups[0].properties.volumes[0].secret"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "secret": { "..": "aGk=" } }),
            ),
            p("groups[0].properties.volumes[0].secret"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "secret": { ".": "aGk=" } }),
            ),
            p("groups[0].properties.volumes[0].secret"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "secret": { "": "aGk=" } }),
            ),
            p("groups[0].properties.volumes[0].secret"),
        ),
        (
            with(
                &format!("{G0}/volumes/0"),
                json!({ "name": "media", "secret": { "..data": "aGk=" } }),
            ),
            p("groups[0].properties.volumes[0].secret"),
        ),
        (
            with(
                &format!("{G0}/ipAddress"),
                json!({ "type": "Public", "ports": [] }),
            ),
            p("groups[0].properties.ipAddress.ports"),
        ),
        (
            with(
                &format!("{G0}/ipAddress"),
                json!({ "ports": [{ "port": 80 }] }),
            ),
            p("groups[0].properties.ipAddress.type"),
        ),
        (
            with(
                &format!("{G0}/imageRegistryCredentials"),
                json!([{ "username": "u", "password": "p" }]),
            ),
            p("groups[0].properties.imageRegistryCredentials[0].server"),
        ),
        // Group-level ARM fields: identity, zones, location.
        (
            with("/groups/0/identity", json!({ "type": "Everything" })),
            p("groups[0].identity.type"),
        ),
        (
            with("/groups/0/identity", json!({ "type": "UserAssigned" })),
            p("groups[0].identity.userAssignedIdentities"),
        ),
        (
            with(
                "/groups/0/identity",
                json!({ "type": "UserAssigned", "userAssignedIdentities": { "../../etc/passwd": {} } }),
            ),
            p("groups[0].identity.userAssignedIdentities"),
        ),
        (
            with(
                "/groups/0/identity",
                json!({ "type": "SystemAssigned", "extra": 1 }),
            ),
            p("groups[0].identity.extra"),
        ),
        (
            with("/groups/0/identity", json!("SystemAssigned")),
            p("groups[0].identity"),
        ),
        (
            with("/groups/0/zones", json!(["4"])),
            p("groups[0].zones[0]"),
        ),
        (
            with("/groups/0/zones", json!(["1", "2"])),
            p("groups[0].zones"),
        ),
        (with("/groups/0/zones", json!("1")), p("groups[0].zones")),
        (
            with("/groups/0/location", json!("west/europe")),
            p("groups[0].location"),
        ),
        (
            with("/groups/0/location", json!(7)),
            p("groups[0].location"),
        ),
        (with("/groups/0/sku", json!("Standard")), p("groups[0].sku")),
        // Priority, Spot evictions and regions, on the deployment and on a group.
        (with("/priority", json!("Cheap")), p("priority")),
        (with("/priority", json!(1)), p("priority")),
        (
            with("/spot", json!({ "fallbackToRegularAfter": 0 })),
            p("spot.fallbackToRegularAfter"),
        ),
        (
            with("/spot", json!({ "fallbackToRegularAfter": "2" })),
            p("spot.fallbackToRegularAfter"),
        ),
        (with("/spot", json!({ "after": 2 })), p("spot.after")),
        (with("/spot", json!(2)), p("spot")),
        (with("/locations", json!([])), p("locations")),
        (with("/locations", json!("westeurope")), p("locations")),
        (
            with("/locations", json!(["west/europe"])),
            p("locations[0]"),
        ),
        (
            with("/locations", json!(["westeurope", 4])),
            p("locations[1]"),
        ),
        (
            with("/locations", json!(["westeurope", "West Europe"])),
            p("locations[1]"),
        ),
        (
            with("/groups/0/priority", json!("Low")),
            p("groups[0].priority"),
        ),
        (
            with("/groups/0/spot", json!({ "fallbackToRegularAfter": 101 })),
            p("groups[0].spot.fallbackToRegularAfter"),
        ),
        (
            with("/groups/0/locations", json!(["northeurope", ""])),
            p("groups[0].locations[1]"),
        ),
        (
            {
                let mut spec = with("/groups/0/location", json!("westeurope"));
                spec["groups"][0]["locations"] = json!(["northeurope"]);
                spec
            },
            p("groups[0].locations"),
        ),
        (
            {
                let mut spec = with("/priority", json!("Spot"));
                spec["groups"][0]["properties"]["priority"] = json!("Regular");
                spec
            },
            p("groups[0].properties.priority"),
        ),
        (
            {
                let mut spec = with("/groups/0/priority", json!("Spot"));
                spec["groups"][0]["properties"]["ipAddress"] =
                    json!({ "type": "Public", "ports": [{ "port": 80 }] });
                spec
            },
            p("groups[0].priority"),
        ),
    ];
    assert!(cases.len() >= 70, "{} cases", cases.len());
    for (i, (spec, field)) in cases.into_iter().enumerate() {
        let errors = parse(spec.to_string().as_bytes(), Format::Json, || {
            "generated".into()
        })
        .err()
        .unwrap_or_else(|| panic!("case {i} ({field}) was accepted"));
        assert!(
            errors.0.iter().any(|e| e.field == field),
            "case {i}: expected an error at {field}, got {:?}",
            errors.0
        );
        assert!(errors.0.iter().all(|e| !e.message.is_empty()));
    }
}

#[test]
fn a_job_restart_policy_defaults_to_never_and_enums_are_normalised() {
    let mut spec = with(&format!("{G0}/restartPolicy"), Value::Null);
    spec.pointer_mut(G0).unwrap()["osType"] = json!("linux");
    let parsed = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    assert_eq!(parsed.groups[0].properties["restartPolicy"], "Never");
    assert_eq!(parsed.groups[0].properties["osType"], "Linux");
}

#[test]
fn an_oversized_spec_is_refused_by_size() {
    let big = "x".repeat(300 * 1024);
    let spec = with("/tags/team", json!(big));
    let errors = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap_err();
    assert!(errors.0[0].message.contains("bytes"));
}

#[test]
fn aci_yaml_as_az_container_export_writes_it_is_a_one_group_spec() {
    let yaml = r#"
additional_properties: {}
apiVersion: '2021-10-01'
identity: null
location: eastus
name: hello-job
properties:
  containers:
  - name: hello
    properties:
      command: [/bin/sh, -c, 'echo hi > /data/out.txt']
      environmentVariables: []
      image: busybox:1.36
      resources:
        requests:
          cpu: 1.0
          memoryInGb: 1.5
      volumeMounts:
      - mountPath: /data
        name: share
  osType: Linux
  restartPolicy: Never
  volumes:
  - azureFile:
      shareName: data
      storageAccountName: devstore
    name: share
tags: null
type: Microsoft.ContainerInstance/containerGroups
"#;
    let spec = parse(yaml.as_bytes(), Format::AciYaml, || unreachable!()).unwrap();
    assert_eq!(spec.id, "hello-job", "the YAML's name is the id");
    assert_eq!(spec.mode, berth::spec::Mode::Job);
    assert_eq!(spec.groups.len(), 1);
    assert_eq!(spec.groups[0].name, "hello-job");
    let requests =
        &spec.groups[0].properties["containers"][0]["properties"]["resources"]["requests"];
    assert_eq!(requests["memoryInGB"], 1.5, "memoryInGb normalised");
    let bad = yaml.replace("mountPath: /data", "mountPath: data");
    let errors = parse(bad.as_bytes(), Format::AciYaml, || "x".into()).unwrap_err();
    assert_eq!(
        errors.0[0].field,
        "groups[0].properties.containers[0].properties.volumeMounts[0].mountPath"
    );
    assert!(
        parse(b"name: [unclosed", Format::AciYaml, || "x".into())
            .unwrap_err()
            .0[0]
            .message
            .contains("YAML")
    );
}

#[test]
fn a_key_given_twice_is_refused_at_its_path_in_json_and_yaml() {
    let image = "groups[0].properties.containers[0].properties.image";
    let good = good().to_string();
    let cases = [
        (good.replacen("{", r#"{"id":"first","#, 1), Format::Json, "id"),
        (
            good.replace(r#""image":"ffmpeg:6""#, r#""image":"ffmpeg:6","image":"evil""#),
            Format::Json,
            image,
        ),
        (
            good.replace(r#""team":"media""#, r#""team":"media","team":"other""#),
            Format::Json,
            "tags.team",
        ),
        (
            good.replace(r#""cpu":1,"#, r#""cpu":1,"cpu":31,"#),
            Format::Json,
            "groups[0].properties.containers[0].properties.resources.requests.cpu",
        ),
        (
            "name: g\nname: h\nproperties: {}\n".to_owned(),
            Format::AciYaml,
            "groups[0].name",
        ),
        (
            "name: g\nproperties:\n  containers:\n  - name: c\n    properties:\n      image: a\n      image: b\n".to_owned(),
            Format::AciYaml,
            image,
        ),
        (
            "name: g\ntags: {a: b, a: c}\nproperties: {}\n".to_owned(),
            Format::AciYaml,
            "tags.a",
        ),
    ];
    for (text, format, field) in cases {
        assert_ne!(text, good, "the case changed the spec");
        let errors = parse(text.as_bytes(), format, || "generated".into()).unwrap_err();
        assert_eq!(errors.0[0].field, field, "{text}: {errors:?}");
        assert!(errors.0[0].message.contains("twice"), "{errors:?}");
    }
}

/// `identity`, `zones` and `location` of a group are kept (they were dropped), from JSON and
/// from an ACI YAML export, whose read-only identity fields are left out.
#[test]
fn identity_zones_and_location_are_kept_from_json_and_yaml() {
    let user = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/puller";
    let mut spec = good();
    spec["groups"][0]["identity"] =
        json!({ "type": "SystemAssigned, UserAssigned", "userAssignedIdentities": { user: {} } });
    spec["groups"][0]["zones"] = json!(["2"]);
    spec["groups"][0]["location"] = json!("northeurope");
    let parsed = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    let group = &parsed.groups[0];
    assert_eq!(
        group.identity.as_ref().unwrap()["userAssignedIdentities"][user],
        json!({})
    );
    assert_eq!(group.zones.as_deref(), Some(&["2".to_owned()][..]));
    assert_eq!(group.location.as_deref(), Some("northeurope"));

    let yaml = format!(
        "apiVersion: '2021-10-01'\nlocation: westus\nname: exported\nzones: ['1']\n\
         identity:\n  type: UserAssigned\n  principalId: read-only\n  tenantId: read-only\n  \
         userAssignedIdentities:\n    '{user}':\n      principalId: read-only\n      clientId: read-only\n\
         properties:\n  osType: Linux\n  restartPolicy: Never\n  containers:\n  - name: main\n    \
         properties:\n      image: busybox\n      resources:\n        requests:\n          cpu: 1\n          memoryInGB: 1\n"
    );
    let parsed = parse(yaml.as_bytes(), Format::AciYaml, || "from-yaml".into()).unwrap();
    let group = &parsed.groups[0];
    assert_eq!(
        group.identity,
        Some(json!({ "type": "UserAssigned", "userAssignedIdentities": { user: {} } }))
    );
    assert_eq!(group.zones.as_deref(), Some(&["1".to_owned()][..]));
    assert_eq!(group.location.as_deref(), Some("westus"));
}

/// Issue 14: an `az container export` of today (read-only instance views, provisioning state,
/// the public IP and FQDN, identity ids, probes, `extended_location`/`additional_properties`) is
/// accepted with the read-only parts left out, and the secrets the export leaves out (a secure
/// variable without a value, a secret volume as `{}`) are reported by name.
#[test]
fn an_az_container_export_is_accepted_and_the_secrets_it_leaves_out_are_named() {
    let exported = include_str!("data/aci-export.yaml");
    let errors = parse(exported.as_bytes(), Format::AciYaml, || "x".into()).unwrap_err();
    let found: Vec<(String, String)> = errors
        .0
        .iter()
        .map(|e| (e.field.clone(), e.message.clone()))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0].0,
        "groups[0].properties.containers[0].properties.environmentVariables[1]"
    );
    assert!(
        found[0].1.starts_with("DB_PASSWORD has no value"),
        "{found:?}"
    );
    assert_eq!(found[1].0, "groups[0].properties.volumes[0].secret");
    assert!(found[1].1.contains("creds"), "{found:?}");

    // Given the secrets, the export is a spec.
    let completed = exported
        .replace(
            "      - name: DB_PASSWORD\n",
            "      - name: DB_PASSWORD\n        secureValue: s3cret\n",
        )
        .replace("    secret: {}", "    secret: {password: czNjcmV0}");
    let spec = parse(completed.as_bytes(), Format::AciYaml, || "x".into()).unwrap();
    let group = &spec.groups[0];
    let properties = &group.properties;
    for read_only in [
        "/instanceView",
        "/provisioningState",
        "/ipAddress/ip",
        "/ipAddress/fqdn",
    ] {
        assert!(
            properties.pointer(read_only).is_none(),
            "{read_only}: {properties}"
        );
    }
    let container = &properties["containers"][0]["properties"];
    assert!(container.get("instanceView").is_none());
    assert!(container.get("livenessProbe").is_some(), "probes are kept");
    assert!(
        properties["initContainers"][0]["properties"]
            .get("instanceView")
            .is_none()
    );
    assert_eq!(properties["sku"], "Standard");
    assert_eq!(properties["ipAddress"]["dnsNameLabel"], "exported");
    assert_eq!(group.identity, Some(json!({ "type": "SystemAssigned" })));
    assert_eq!(group.location.as_deref(), Some("westeurope"));
    // A top-level field Berth would not carry is named, never dropped.
    let unknown = format!("{completed}restartPolicy: Never\n");
    let errors = parse(unknown.as_bytes(), Format::AciYaml, || "x".into()).unwrap_err();
    assert_eq!(errors.0[0].field, "restartPolicy", "{errors}");
}

/// A spec whose first group has `properties` instead of the good one's.
fn with_group(properties: Value) -> Value {
    with(G0, properties)
}

#[test]
fn acis_create_time_rules_are_refused_at_their_field_with_acis_code() {
    let linux = |containers: Value| json!({ "containers": containers, "restartPolicy": "Never" });
    let windows = |containers: Value| json!({ "containers": containers, "osType": "Windows", "restartPolicy": "Never" });
    let one = |resources: Value| json!([{ "name": "main", "properties": { "image": "x", "resources": resources } }]);
    let small = json!({ "requests": { "cpu": 1, "memoryInGB": 1 } });
    let two = json!([
        { "name": "main", "properties": { "image": "x", "resources": small } },
        { "name": "side", "properties": { "image": "x", "resources": small } }
    ]);
    let mut private = linux(one(small.clone()));
    private["ipAddress"] = json!({ "type": "Private", "ports": [{ "port": 80 }] });
    let mut init = windows(one(small.clone()));
    init["initContainers"] = json!([{ "name": "setup", "properties": { "image": "x" } }]);
    let mut share = windows(one(small.clone()));
    share["volumes"] = json!([{ "name": "media", "azureFile": { "shareName": "media", "storageAccountName": "mediastore" } }]);
    let mut confidential = windows(one(small.clone()));
    confidential["sku"] = json!("Confidential");
    let cases = [
        (
            linux(one(
                json!({ "requests": { "cpu": 1, "memoryInGB": 1 }, "limits": { "memoryInGB": 1.5 } }),
            )),
            "containers[0].properties.resources.limits.memoryInGB",
            "ContainerLimitGreaterThanContainerGroupTotalRequest",
        ),
        (private, "ipAddress.type", "PrivateIPAddressNotSupported"),
        (
            windows(two),
            "containers[1]",
            "WindowsContainerGroupMultipleContainersNotSupported",
        ),
        (
            init,
            "initContainers",
            "WindowsContainerGroupInitContainersNotSupported",
        ),
        (
            share,
            "volumes[0].azureFile",
            "WindowsContainerGroupVolumeNotSupported",
        ),
        (
            linux(one(
                json!({ "requests": { "cpu": 1, "memoryInGB": 1, "gpu": { "count": 8, "sku": "V100" } } }),
            )),
            "containers[0].properties.resources.requests.gpu.count",
            "InvalidGpuCount",
        ),
        (confidential, "sku", "ConfidentialSkuNotSupportedForWindows"),
    ];
    for (properties, field, code) in cases {
        let field = format!("groups[0].properties.{field}");
        let errors = parse(
            with_group(properties).to_string().as_bytes(),
            Format::Json,
            || unreachable!(),
        )
        .unwrap_err();
        assert!(
            errors
                .0
                .iter()
                .any(|e| e.field == field && e.message.starts_with(code)),
            "expected {code} at {field}, got {:?}",
            errors.0
        );
    }
}

#[test]
fn gpu_skus_are_checked_in_the_target_location_and_local_has_none() {
    let gpu = |sku: &str| {
        with(
            &format!("{C0}/resources/requests/gpu"),
            json!({ "count": 1, "sku": sku }),
        )
    };
    let spec = parse(
        gpu("K80").to_string().as_bytes(),
        Format::Json,
        || unreachable!(),
    )
    .unwrap();
    aci::at_location(&spec, "eastus").unwrap();
    aci::at_location(&spec, "westeurope").unwrap();
    let errors = aci::at_location(&spec, "local").unwrap_err();
    assert_eq!(
        errors.0[0].field,
        "groups[0].properties.containers[0].properties.resources.requests.gpu.sku"
    );
    assert!(
        errors.0[0]
            .message
            .starts_with("GpuSkuNotAvailableInRegion")
    );
    let spec = parse(
        gpu("T4").to_string().as_bytes(),
        Format::Json,
        || unreachable!(),
    )
    .unwrap();
    assert!(aci::at_location(&spec, "East US").is_err());
}

#[test]
fn the_good_spec_and_limits_within_the_group_request_pass_the_aci_rules() {
    let spec = with(
        &format!("{C0}/resources/limits"),
        json!({ "cpu": 1.5, "memoryInGB": 2 }),
    );
    let parsed = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    aci::at_location(&parsed, "local").unwrap();
}

/// The region rules run in a group's own `location` when it names one, else in the default
/// (`BERTH_LOCATION`): a V100 is offered in `eastus`, not in the emulator's `local`.
#[test]
fn region_rules_use_the_groups_own_location_over_the_default() {
    let gpu = json!({ "cpu": 1, "memoryInGB": 1, "gpu": { "count": 1, "sku": "V100" } });
    let mut spec = with(
        "/groups/0/properties/containers/0/properties/resources/requests",
        gpu,
    );
    let parsed = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    aci::at_location(&parsed, "eastus").unwrap();
    let errors = aci::at_location(&parsed, "local").unwrap_err();
    assert!(
        errors.to_string().contains("GpuSkuNotAvailableInRegion"),
        "{errors}"
    );

    spec["groups"][0]["location"] = json!("local");
    let parsed = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    let errors = aci::at_location(&parsed, "eastus").unwrap_err();
    assert!(
        errors.to_string().contains("GpuSkuNotAvailableInRegion"),
        "{errors}"
    );
}

/// A spec of groups `names` (each a copy of the good spec's group), with `field` set on group
/// `at` to `value`.
fn flow(names: &[&str], at: usize, field: &str, value: Value) -> Value {
    let mut spec = good();
    let group = spec["groups"][0].clone();
    spec["groups"] = Value::Array(
        names
            .iter()
            .map(|name| {
                let mut g = group.clone();
                g["name"] = json!(name);
                g
            })
            .collect(),
    );
    spec["groups"][at][field] = value;
    spec
}

#[test]
fn workflow_fields_are_checked_at_their_path() {
    let three = ["a", "b", "c"];
    let mut cycle = flow(&three, 0, "dependsOn", json!(["c"]));
    cycle["groups"][1]["dependsOn"] = json!(["a"]);
    cycle["groups"][2]["dependsOn"] = json!(["b"]);
    let mut service = flow(&["a"], 0, "count", json!(2));
    service["mode"] = json!("service");
    let mut both = flow(&["a"], 0, "count", json!(2));
    both["groups"][0]["items"] = json!([1, 2]);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            flow(&three, 1, "dependsOn", json!(["z"])),
            "groups[1].dependsOn[0]",
            "no group named 'z'",
        ),
        (
            flow(&three, 1, "dependsOn", json!(["b"])),
            "groups[1].dependsOn[0]",
            "itself",
        ),
        (
            flow(&three, 1, "dependsOn", json!(["a", "a"])),
            "groups[1].dependsOn[1]",
            "twice",
        ),
        (
            flow(&three, 1, "dependsOn", json!("a")),
            "groups[1].dependsOn",
            "array",
        ),
        (
            flow(&three, 1, "dependsOn", json!([1])),
            "groups[1].dependsOn[0]",
            "group name",
        ),
        (cycle, "groups[0].dependsOn", "cycle: a → c → b → a"),
        (
            flow(&three, 1, "runWhen", json!("sometimes")),
            "groups[1].runWhen",
            "succeeded, failed or always",
        ),
        (
            flow(&["a"], 0, "count", json!(0)),
            "groups[0].count",
            "1 to 10000",
        ),
        (
            flow(&["a"], 0, "count", json!(10_001)),
            "groups[0].count",
            "1 to 10000",
        ),
        (
            flow(&["a"], 0, "count", json!(1.5)),
            "groups[0].count",
            "whole number",
        ),
        (
            flow(&["a"], 0, "items", json!([])),
            "groups[0].items",
            "1 to 10000",
        ),
        (
            flow(&["a"], 0, "items", json!({})),
            "groups[0].items",
            "array",
        ),
        (
            flow(&["a"], 0, "items", json!(["x".repeat(9_000)])),
            "groups[0].items[0]",
            "8192 bytes",
        ),
        (both, "groups[0].items", "exclude each other"),
        (service, "groups[0].count", "applies to jobs"),
        (
            flow(&["a"], 0, "parallelism", json!(0)),
            "groups[0].parallelism",
            "1 to 10000",
        ),
        (
            flow(&["a"], 0, "tolerateFailures", json!(1)),
            "groups[0].tolerateFailures",
            "below",
        ),
        (
            flow(&["a"], 0, "retry", json!({ "maxAttempts": 0 })),
            "groups[0].retry.maxAttempts",
            "1 to",
        ),
        (
            flow(&["a"], 0, "timeout", json!("soon")),
            "groups[0].timeout",
            "",
        ),
        (
            flow(&["a"], 0, "completion", json!("never")),
            "groups[0].completion",
            "exit, callback or either",
        ),
        (
            flow(&["a"], 0, "fanOut", json!(2)),
            "groups[0].fanOut",
            "dependsOn",
        ),
    ];
    for (i, (spec, field, says)) in cases.into_iter().enumerate() {
        let errors = parse(spec.to_string().as_bytes(), Format::Json, || "x".into())
            .err()
            .unwrap_or_else(|| panic!("case {i} ({field}) was accepted"));
        assert!(
            errors
                .0
                .iter()
                .any(|e| e.field == field && e.message.contains(says)),
            "case {i}: expected '{says}' at {field}, got {:?}",
            errors.0
        );
    }

    // A pipeline is a spec, and a spec without workflow fields keeps its JSON (and its digest).
    let mut pipeline = flow(&three, 1, "dependsOn", json!(["a"]));
    pipeline["groups"][1]["items"] = json!([{ "shard": 0 }, { "shard": 1 }]);
    pipeline["groups"][1]["parallelism"] = json!(1);
    pipeline["groups"][1]["tolerateFailures"] = json!(1);
    pipeline["groups"][2]["dependsOn"] = json!(["a", "b"]);
    pipeline["groups"][2]["runWhen"] = json!("always");
    let spec = parse(pipeline.to_string().as_bytes(), Format::Json, || "x".into()).unwrap();
    assert_eq!(spec.groups[1].instance_count(), 2);
    assert_eq!(spec.groups[2].depends_on, vec!["a", "b"]);
    let plain = parse(good().to_string().as_bytes(), Format::Json, || "x".into()).unwrap();
    let text = serde_json::to_string(&plain.groups[0]).unwrap();
    for key in [
        "dependsOn",
        "runWhen",
        "count",
        "items",
        "parallelism",
        "tolerateFailures",
    ] {
        assert!(!text.contains(&format!("\"{key}\"")), "{key} in {text}");
    }
}

/// `priority`, `spot` and `locations` are read on the deployment and on a group (a group's own
/// win), and a spec without them serialises exactly as before they existed.
#[test]
fn priority_spot_and_locations_are_read_where_given() {
    let mut spec = good();
    spec["priority"] = json!("spot");
    spec["spot"] = json!({ "fallbackToRegularAfter": 2 });
    spec["locations"] = json!(["westeurope", "northeurope"]);
    let parsed = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    assert_eq!(parsed.priority_of(0), Some(berth::spec::Priority::Spot));
    assert_eq!(parsed.spot_of(0).fallback_to_regular_after, Some(2));
    assert_eq!(parsed.locations_of(0), ["westeurope", "northeurope"]);

    spec["groups"][0]["priority"] = json!("Regular");
    spec["groups"][0]["location"] = json!("eastus");
    let parsed = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    assert_eq!(parsed.priority_of(0), Some(berth::spec::Priority::Regular));
    assert!(parsed.locations_of(0).is_empty(), "its own location wins");

    let plain = parse(
        good().to_string().as_bytes(),
        Format::Json,
        || unreachable!(),
    )
    .unwrap();
    let written = serde_json::to_value(&plain).unwrap();
    for field in ["priority", "spot", "locations"] {
        assert!(written.get(field).is_none(), "{field}");
        assert!(
            written["groups"][0].get(field).is_none(),
            "groups[0].{field}"
        );
    }
    // The priority inside properties still counts when Berth's field is absent.
    let mut spec = good();
    spec["groups"][0]["properties"]["priority"] = json!("Spot");
    let parsed = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
    assert_eq!(parsed.priority_of(0), Some(berth::spec::Priority::Spot));
}
