//! Queue delivery through the simulated host on Azurite: messages Berth enqueues (base64 through
//! `berth::azure_storage`) reach the `steps` function as the text sent, with growing dequeue counts;
//! successes are deleted, failures come back after `visibilityTimeout`, and after
//! `maxDequeueCount` deliveries (or on receipt past it) they move to `<queue>-poison`.
//!
//! Needs Azurite: the one `bin/test` started, or one `berth_test_support` starts for the test
//! process; without it the test fails saying how to get it, unless `BERTH_TEST_SKIP=azurite`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use berth::azure_storage::{StorageAccount, StorageConnection, TimeToLive};
use berth_tests::host::queue::Disposition;
use berth_tests::host::{HostOptions, HostOutcome, RunningApp};

#[tokio::test]
async fn queue_messages_are_retried_then_poisoned_as_the_host_does() {
    let Some(azurite) = berth_test_support::Azurite::shared() else {
        return;
    };
    let connection = azurite.connection().to_owned();
    let parsed = StorageConnection::parse("AzureWebJobsStorage", &connection).unwrap();
    assert_eq!(parsed.queue_endpoint.host_str(), Some("127.0.0.1"));
    let queue_name = berth_test_support::unique("steps");
    let settings = vec![
        ("BERTH_QUEUE".to_owned(), queue_name.clone()),
        (
            "BERTH_SUBMIT_QUEUE".to_owned(),
            format!("{queue_name}-submit"),
        ),
        ("AzureWebJobsStorage".to_owned(), connection.clone()),
    ];
    let binary = Path::new(env!("CARGO_BIN_EXE_functions-fixture-handler"));
    let mut options = HostOptions::new(binary, settings).unwrap();
    // Shorter than the deployed host.json so the test runs in seconds; the rules are the same.
    options.app.queues.visibility_timeout = Duration::from_secs(1);
    options.app.queues.max_dequeue_count = 3;
    options.app.queues.max_polling_interval = Duration::from_millis(200);
    let account = StorageAccount::new(&parsed, None).unwrap();
    let queue = account.queue(&queue_name).unwrap();
    queue.create_if_missing().await.unwrap();

    // A message already delivered 3 times (= maxDequeueCount) by someone else: the next receipt
    // is the 4th, past the maximum, so it is poisoned without an invocation.
    queue
        .send("late", Duration::ZERO, TimeToLive::Never)
        .await
        .unwrap();
    for _ in 0..3 {
        let got = queue.receive(1, Duration::from_secs(30)).await.unwrap();
        queue
            .update(&got[0].receipt, Duration::ZERO, None)
            .await
            .unwrap();
    }

    let step = r#"{"deployment":"transcode-42","version":7,"step":"create"}"#;
    for text in [step, "fail-until:2", "fail", "poison"] {
        queue
            .send(text, Duration::ZERO, TimeToLive::Never)
            .await
            .unwrap();
    }
    let sent_delayed = Instant::now();
    queue
        .send("delayed", Duration::from_secs(2), TimeToLive::Never)
        .await
        .unwrap();

    let app = RunningApp::start(options).await.unwrap();
    let host = &app.host;
    assert_eq!(host.queue_name("steps").unwrap(), queue_name);
    let listener = app.listener("steps").unwrap().clone();
    let final_of = |d: &[berth_tests::host::queue::Delivered], text: &str| {
        d.iter()
            .filter(|x| x.text == text)
            .any(|x| x.disposition != Disposition::RetryAfter(Duration::from_secs(1)))
    };
    let delivered = listener
        .wait_until("every message settled", Duration::from_secs(30), |d| {
            [step, "fail-until:2", "fail", "poison", "late", "delayed"]
                .iter()
                .all(|t| final_of(d, t))
        })
        .await
        .unwrap();

    let of = |text: &str| -> Vec<(u32, Disposition)> {
        delivered
            .iter()
            .filter(|d| d.text == text)
            .map(|d| (d.dequeue_count, d.disposition))
            .collect()
    };
    let retry = Disposition::RetryAfter(Duration::from_secs(1));
    assert_eq!(of(step), [(1, Disposition::Delete)]);
    assert_eq!(of("fail-until:2"), [(1, retry), (2, Disposition::Delete)]);
    assert_eq!(
        of("fail"),
        [(1, retry), (2, retry), (3, Disposition::Poison)]
    );
    assert_eq!(
        of("poison"),
        [(1, retry), (2, retry), (3, Disposition::Poison)]
    );
    assert_eq!(of("late"), [(4, Disposition::Poison)]);
    assert!(
        delivered
            .iter()
            .find(|d| d.text == "late")
            .unwrap()
            .outcome
            .is_none(),
        "poisoned on receipt, never invoked"
    );
    assert_eq!(of("delayed"), [(1, Disposition::Delete)]);
    // Invisible for its delay (the service keeps whole seconds, so allow for rounding down).
    let delayed = delivered.iter().find(|d| d.text == "delayed").unwrap();
    let waited = delayed.received_at - sent_delayed;
    assert!(
        waited >= Duration::from_millis(1000),
        "delivered after {waited:?}"
    );

    // The step handler saw the text Berth sent, decoded, with its dequeue count.
    let step_delivery = delivered.iter().find(|d| d.text == step).unwrap();
    let Some(HostOutcome::Succeeded(accepted)) = &step_delivery.outcome else {
        panic!("{step_delivery:?}");
    };
    assert!(
        accepted.logs.contains(&format!(
            "fixture step text={step} dequeue_count=1 id={}",
            step_delivery.id
        )),
        "{:?}",
        accepted.logs
    );
    // The failures said why in Logs (seen by the simulator, which judged them as failures).
    assert!(host.violations().is_empty(), "{:?}", host.violations());

    // The poison queue holds exactly the three poisoned texts; the queue is empty.
    let poison = listener.poison_queue().unwrap();
    let mut poisoned: Vec<String> = poison
        .receive(32, Duration::from_secs(30))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    poisoned.sort();
    assert_eq!(poisoned, ["fail", "late", "poison"]);
    assert!(
        queue
            .receive(32, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}
