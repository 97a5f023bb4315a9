//! Hole 5 of SECURITY.md: two deployments could get the same container group. Names were
//! `{id}-{group}-{generation}`, ambiguous when ids and group names hold `-` (`col-p` + `b-c` and
//! `col-p-b` + `c` were both `col-p-b-c-1`), and the second PUT took over the first's running
//! group. Names now carry a hash over the deployment's random uid, id, group and generation, and
//! a create looks first: a group of its name that another deployment owns is never updated.
#![allow(clippy::unwrap_used)]

mod common;

use berth::engine::names::aci_name;
use berth::runtime::Runtime;
use berth::spec::{Format, parse};
use serde_json::{Value, json};

async fn setup(dir: &std::path::Path) -> (emulator::Running, Runtime) {
    let emulator = common::emulator_in(dir).await;
    let runtime = common::runtime_without_worker(dir, &emulator.base_url(), "berth").await;
    (emulator, runtime)
}

fn spec(id: &str, group: &str) -> berth::spec::Spec {
    let text = json!({ "id": id, "groups": [{ "name": group, "properties": {
        "restartPolicy": "Never", "osType": "Linux",
        "containers": [{ "name": "c", "properties": { "image": "busybox",
            "command": ["sleep", "600"], "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } }] })
    .to_string();
    parse(text.as_bytes(), Format::Json, || unreachable!()).unwrap()
}

fn foreign_group() -> Value {
    json!({ "location": "local", "tags": { "berth-app": "berth", "berth-deployment": "someone-else" },
        "properties": { "osType": "Linux", "restartPolicy": "Never", "containers": [{ "name": "other",
            "properties": { "image": "busybox", "command": ["sleep", "600"],
            "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_groups_that_read_alike_get_groups_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, runtime) = setup(dir.path()).await;
    let base = "http://127.0.0.1:1".to_owned();
    runtime
        .driver
        .submit(spec("col-p", "b-c"), base.clone())
        .await
        .unwrap();
    runtime
        .driver
        .submit(spec("col-p-b", "c"), base)
        .await
        .unwrap();
    for _ in 0..4 {
        common::run_steps(&runtime).await;
    }
    let one = runtime.driver.load("col-p").await.unwrap().unwrap();
    let two = runtime.driver.load("col-p-b").await.unwrap().unwrap();
    let (a, b) = (&one.instances[0].aci_name, &two.instances[0].aci_name);
    assert_ne!(a, b);
    let stats = emulator.stats();
    assert_eq!(stats.creates_by_name.get(a), Some(&1), "{stats:?}");
    assert_eq!(stats.creates_by_name.get(b), Some(&1), "{stats:?}");
    for (d, name) in [(&one, a), (&two, b)] {
        let group = runtime.sweep.arm.get_group(name).await.unwrap().unwrap();
        assert_eq!(group.tags["berth-deployment"], d.id);
        assert_eq!(Some(&group.tags["berth-uid"]), d.uid.as_ref());
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_the_same_name_that_another_deployment_owns_is_never_updated() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, runtime) = setup(dir.path()).await;
    let submitted = runtime
        .driver
        .submit(spec("victim", "work"), "http://127.0.0.1:1".into())
        .await
        .unwrap();
    let d = submitted.deployment;
    // Someone already holds the name Berth is about to create (a hash collision, or a group
    // made by hand): it must come out of Berth's create untouched.
    let name = aci_name(&d.id, d.uid.as_deref(), "work", 1);
    runtime
        .sweep
        .arm
        .put_group(&name, &foreign_group())
        .await
        .unwrap();
    for _ in 0..4 {
        common::run_steps(&runtime).await;
    }
    let stats = emulator.stats();
    assert_eq!(
        stats.creates_by_name.get(&name),
        Some(&1),
        "only the foreign create: {stats:?}"
    );
    let group = runtime.sweep.arm.get_group(&name).await.unwrap().unwrap();
    assert_eq!(
        group.tags["berth-deployment"], "someone-else",
        "tags untouched"
    );
    let d = runtime.driver.load("victim").await.unwrap().unwrap();
    let said = serde_json::to_string(&d.history).unwrap();
    assert!(said.contains("is not this deployment's"), "{said}");
    assert!(
        d.instances[0].deleted,
        "Berth will not delete what is not its own either"
    );
    emulator.shutdown().await;
}

/// Issue 14: a group's `identity`, `zones` and `location` reach ARM (they were dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_identity_zones_and_location_reach_arm() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, runtime) = setup(dir.path()).await;
    let user = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/puller";
    let text = json!({ "id": "placed", "groups": [{ "name": "work",
        "identity": { "type": "UserAssigned", "userAssignedIdentities": { user: {} } },
        "zones": ["2"], "location": "northeurope",
        "properties": { "restartPolicy": "Never", "osType": "Linux",
        "containers": [{ "name": "c", "properties": { "image": "busybox",
            "command": ["sleep", "600"], "resources": { "requests": { "cpu": 0.1, "memoryInGB": 0.1 } } } }] } }] })
    .to_string();
    let spec = parse(text.as_bytes(), Format::Json, || unreachable!()).unwrap();
    runtime
        .driver
        .submit(spec, "http://127.0.0.1:1".into())
        .await
        .unwrap();
    for _ in 0..4 {
        common::run_steps(&runtime).await;
    }
    let d = runtime.driver.load("placed").await.unwrap().unwrap();
    let name = &d.instances[0].aci_name;
    let t = runtime.sweep.arm.target();
    let url = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerInstance/containerGroups/{name}?api-version={}",
        t.endpoint, t.subscription, t.resource_group, t.api_version
    );
    let group: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(group["location"], "northeurope", "{group}");
    assert_eq!(group["zones"], json!(["2"]), "{group}");
    assert_eq!(group["identity"]["type"], "UserAssigned", "{group}");
    assert!(
        group["identity"]["userAssignedIdentities"][user].is_object(),
        "{group}"
    );
    emulator.shutdown().await;
}
