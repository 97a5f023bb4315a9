//! What one simple job costs in storage transactions on the Azure backend, by kind, for exit and
//! for callback completion: Berth assembled in-process on Azurite and the emulator (real
//! processes), the serve worker receiving steps. Prints the figures; checks that every request the
//! backend made was counted as the job's.
#![allow(clippy::unwrap_used)]

mod azure_support;

use std::sync::Arc;
use std::time::Duration;

use azure_support::{eventually, unique};
use berth::api::{self, Api, Prices};
use berth::arm::{ArmClient, ArmTarget};
use berth::azure_storage::{Kind, Snapshot, StorageAccount, StorageConnection};
use berth::checkpoint::Deployments;
use berth::clock::SystemClock;
use berth::crypto::{Keyring, SecretsKey};
use berth::driver::{Driver, DriverSettings};
use berth::engine::Phase;
use berth::store::Steps;
use berth::store::azure::AzureBackend;

use berth::worker;
use serde_json::{Value, json};

/// Without the receives (idle polling belongs to nobody) and the setup of the container and queues.
fn work(s: &Snapshot) -> Vec<(Kind, u64)> {
    s.iter()
        .filter(|(k, _)| {
            !matches!(
                k,
                Kind::MessageGet | Kind::ContainerCreate | Kind::QueueCreate
            )
        })
        .collect()
}

/// Runs `spec` to its end on a fresh backend; returns the job's transactions and the account's.
async fn run(connection: &StorageConnection, spec: Value) -> (Snapshot, Snapshot) {
    let id = spec["id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator::start(
        emulator::Config {
            data_dir: dir.path().join("aci"),
            ..emulator::Config::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let clock = Arc::new(SystemClock);
    let queue = unique("cost");
    let account = Arc::new(StorageAccount::new(connection, None).unwrap());
    let backend = AzureBackend::on_account(account.clone(), &queue, clock.clone())
        .await
        .unwrap();
    // The test watches through a backend of its own, so its reads are not the job's.
    let watcher = AzureBackend::on_account(
        Arc::new(StorageAccount::new(connection, None).unwrap()),
        &queue,
        clock.clone(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let arm = ArmClient::new(
        ArmTarget {
            endpoint: emulator.base_url(),
            subscription: "00000000-0000-0000-0000-000000000000".into(),
            resource_group: "cost".into(),
            location: "local".into(),
            api_version: "2025-09-01".into(),
        },
        None,
    );
    let driver = Driver::new(
        backend.store.clone(),
        arm,
        Arc::new(Keyring::new(SecretsKey::generate(), Vec::new())),
        clock,
        // The submit's first step message is due when its create claim runs out (it is then
        // dropped as stale): a short claim delivers it within the test, so its cost is counted.
        DriverSettings {
            create_claim_ms: 3_000,
            ..DriverSettings::default()
        },
    );
    let router = api::router(Arc::new(Api {
        driver: driver.clone(),
        api_key: None,
        public_url: Some(url.clone()),
        prices: Prices::default(),
        loopback_only: false,
    }));
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let steps: Arc<dyn Steps> = backend.steps.clone();
    let workers = tokio::spawn(worker::run(driver, steps, 8, 5_000));
    let setup = account.transactions().snapshot();

    let response = reqwest::Client::new()
        .post(format!("{url}/api/deployments"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let d = eventually(
        &format!("{id} to finish"),
        Duration::from_secs(60),
        || async {
            let d = watcher.store.load(&id).await.unwrap().unwrap().deployment;
            if d.phase == Phase::Done {
                Ok(d)
            } else {
                Err(format!("{:?}", d.phase))
            }
        },
    )
    .await;
    assert_eq!(d.status.as_str(), "Succeeded", "{:?}", d.history);
    // Steps scheduled before the end are still delivered (and dropped as stale): part of the
    // cost. Every message the job sent is deleted once handled.
    eventually(
        "every step message deleted",
        Duration::from_secs(30),
        || async {
            let job = backend.transactions(&id);
            if job.get(Kind::MessageDelete) >= job.get(Kind::MessagePut) {
                Ok(())
            } else {
                Err(job)
            }
        },
    )
    .await;
    workers.abort();
    server.abort();
    let job = backend.transactions(&id);
    let total = account.transactions().snapshot().since(&setup);
    (job, total)
}

fn print(label: &str, job: &Snapshot) {
    eprintln!("storage transactions for one simple job, {label}: {job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_simple_job_costs_this_many_storage_transactions() {
    let Some(connection) = azure_support::connection() else {
        return;
    };
    let job = |id: &str, script: &str| {
        json!({
            "id": id,
            "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main",
                "properties": { "image": "busybox", "command": ["/bin/sh", "-c", script],
                    "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }]
        })
    };
    let (exit, exit_total) = run(&connection, job("cost-exit", "echo done")).await;
    let mut callback_spec = job(
        "cost-callback",
        "echo calling back; curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d '{\"exitCode\":0}' \"$BERTH_CALLBACK_URL\"; sleep 600",
    );
    callback_spec["completion"] = json!("callback");
    let (callback, callback_total) = run(&connection, callback_spec).await;
    print("exit completion", &exit);
    print("callback completion", &callback);

    for (job, total) in [(&exit, &exit_total), (&callback, &callback_total)] {
        // Every request but the receives was made for this job, and was counted as its own.
        assert_eq!(work(job), work(total), "job {job} vs account {total}");
        // The checkpoint CAS is one Put Blob per save, plus the listing entry of its end.
        assert!(job.get(Kind::BlobPut) >= 3, "{job}");
        // Each step message is sent, received and deleted.
        assert!(job.get(Kind::MessagePut) >= 1, "{job}");
        assert!(
            job.get(Kind::MessageDelete) >= job.get(Kind::MessagePut),
            "{job}"
        );
        assert!(job.get(Kind::MessageGet) >= 1, "{job}");
        // Logs: one Put Blob for the one container.
        assert!(job.total() < 80, "a simple job stays cheap: {job}");
    }
}
