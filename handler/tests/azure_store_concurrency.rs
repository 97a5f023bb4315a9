//! Two `handler serve` processes on one Azurite account and one emulator work through 100
//! deployments together while a fraction of the step messages is delivered twice (this test
//! peeks at the queue and sends copies of them): every deployment ends, each group is created exactly once, no group
//! is left, and every message, copies included, is consumed.
#![allow(clippy::unwrap_used)]

mod azure_support;
mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders as _, QueueClientPeekMessagesOptions,
};
use azure_support::raw_queue;
use berth::azure_storage::{StorageAccount, StorageConnection, TimeToLive};
use berth::crypto::SecretsKey;
use berth::store::StepMessage;
use berth_test_support::api::Client;
use berth_test_support::{eventually, free_port};
use common::Serve;
use serde_json::json;

const KEY: &str = "concurrency-test-key";
const DEPLOYMENTS: usize = 100;

fn spawn(settings: &[(&str, String)], log: &std::path::Path) -> Serve {
    Serve::spawn(free_port(), settings, Some(log))
}

async fn ready(serve: &Serve) {
    serve.ready().await;
}

/// Berth's API on `serve`, with the key.
fn api(serve: &Serve) -> Client {
    serve.api(KEY)
}

/// How many messages the queue holds, as the service counts them.
async fn messages_in(queue: &azure_storage_queue::QueueClient) -> i64 {
    queue
        .get_properties(None)
        .await
        .unwrap()
        .approximate_messages_count()
        .unwrap()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handlers_share_100_deployments_with_duplicated_steps() {
    let Some(value) = azure_support::connection_string() else {
        return;
    };
    let connection = StorageConnection::parse("AzureWebJobsStorage", &value).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Groups complete at once (no processes), and half of the ARM answers take 50 ms, so that the
    // two handlers' steps overlap.
    let config = emulator::Config {
        data_dir: dir.path().join("aci"),
        instant: true,
        faults: emulator::Faults {
            slow_rate: 0.5,
            slow_ms: 50,
            ..emulator::Faults::default()
        },
        ..emulator::Config::default()
    };
    let emulator = emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let queue = azure_support::unique("pair");
    let settings = vec![
        ("AzureWebJobsStorage", value),
        ("BERTH_QUEUE", queue.clone()),
        ("BERTH_SUBMIT_QUEUE", format!("{queue}-submit")),
        ("BERTH_ARM_ENDPOINT", emulator.base_url()),
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000".into(),
        ),
        ("BERTH_RESOURCE_GROUP", "pair".into()),
        ("BERTH_LOCATION", "local".into()),
        ("BERTH_SECRETS_KEY", SecretsKey::generate().to_base64()),
        ("BERTH_API_KEY", KEY.into()),
        ("BERTH_STEP_LEASE", "PT5S".into()),
        ("BERTH_CREATE_CLAIM", "PT5S".into()),
        // Few workers, so that steps queue up where the duplicator can see them.
        ("BERTH_WORKERS", "2".into()),
    ];
    let logs = [
        dir.path().join("serve-a.log"),
        dir.path().join("serve-b.log"),
    ];
    let serves = [spawn(&settings, &logs[0]), spawn(&settings, &logs[1])];
    for serve in &serves {
        ready(serve).await;
    }

    // The duplicator: peeks at the visible step messages (which changes nothing for them) and puts
    // a copy of one message of every other deployment on the queue: those are delivered twice.
    let account = Arc::new(StorageAccount::new(&connection, None).unwrap());
    let steps = Arc::new(account.queue(&queue).unwrap());
    let peeker = raw_queue(&connection, &queue);
    let stop = Arc::new(AtomicBool::new(false));
    let copies = Arc::new(AtomicU64::new(0));
    let duplicator = {
        let (steps, stop, copies) = (steps.clone(), stop.clone(), copies.clone());
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let options = QueueClientPeekMessagesOptions {
                    number_of_messages: Some(32),
                    ..Default::default()
                };
                let peeked = match peeker.peek_messages(Some(options)).await {
                    Ok(r) => r.into_model().unwrap().items.unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
                for m in peeked {
                    let id = m.message_id.unwrap_or_default();
                    let text = berth::azure_storage::queue::decode(
                        &id,
                        &m.message_text.unwrap_or_default(),
                    )
                    .unwrap();
                    let step = StepMessage::from_text(&text).unwrap();
                    // The first message seen of every deployment with an even number.
                    let even = step.id.trim_start_matches("pair-").parse::<u32>().unwrap() % 2 == 0;
                    if !even || !seen.insert(step.id) {
                        continue;
                    }
                    steps
                        .send(&text, Duration::ZERO, TimeToLive::Never)
                        .await
                        .unwrap();
                    copies.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let started = Instant::now();
    let ids: Vec<String> = (0..DEPLOYMENTS).map(|i| format!("pair-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let spec = json!({
            "id": id,
            "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main",
                "properties": { "image": "busybox", "command": ["/bin/true"],
                    "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }]
        });
        let (code, body) = api(&serves[i % 2]).submit(&spec).await.unwrap();
        assert_eq!(code, 202, "{id}: {body}");
    }

    let deadline = Instant::now() + Duration::from_secs(240);
    let mut finals = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        loop {
            let (_, s) = api(&serves[(i + 1) % 2]).status(id).await.unwrap();
            if s["phase"] == "Done" {
                finals.insert(id.clone(), s["runtimeStatus"].as_str().unwrap().to_owned());
                break;
            }
            if Instant::now() > deadline {
                for log in &logs {
                    eprintln!("{}", std::fs::read_to_string(log).unwrap_or_default());
                }
                panic!("{id} did not finish: {s}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let finished = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    duplicator.await.unwrap();

    assert!(
        finals.values().all(|s| s == "Succeeded"),
        "all terminal and successful: {finals:?}"
    );
    let stats = eventually("every group deleted", Duration::from_secs(30), || async {
        let stats = emulator.stats();
        if stats.groups == 0 {
            Ok(stats)
        } else {
            Err(format!("{} groups left", stats.groups))
        }
    })
    .await;
    for id in &ids {
        let prefix = format!("{id}-work-1-");
        let created: Vec<u64> = stats
            .creates_by_name
            .iter()
            .filter(|(name, _)| {
                name.strip_prefix(&prefix)
                    .is_some_and(|hash| hash.len() == 8)
            })
            .map(|(_, count)| *count)
            .collect();
        assert_eq!(created, [1], "{id}: {:?}", stats.creates_by_name);
    }
    assert_eq!(stats.creates_by_name.len(), DEPLOYMENTS, "no other group");
    assert_eq!(stats.groups, 0, "no group left behind");

    // Every message, copies included, is received and completed: the queue drains.
    let raw = raw_queue(&connection, &queue);
    eventually(
        "the step queue to drain",
        Duration::from_secs(60),
        || async {
            let left = messages_in(&raw).await;
            if left == 0 {
                Ok(())
            } else {
                Err(format!("{left} messages left"))
            }
        },
    )
    .await;
    let poison = messages_in(&raw_queue(&connection, &format!("{queue}-poison"))).await;
    assert_eq!(poison, 0, "no step was poisoned");
    let copies = copies.load(Ordering::Relaxed);
    assert!(copies >= 20, "only {copies} messages were duplicated");
    eprintln!(
        "2 handlers, {DEPLOYMENTS} deployments: all Succeeded in {finished:?}; {copies} step \
         messages delivered twice; {} creates, {} deletes",
        stats.creates_by_name.values().sum::<u64>(),
        stats.deletes
    );
}
