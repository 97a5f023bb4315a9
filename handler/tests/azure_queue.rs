//! Queue operations against a real Azurite: delay, redelivery, update, the message encoding the
//! Functions queue trigger reads, limits, and transaction counts.
#![allow(clippy::unwrap_used)]

mod azure_support;

use azure_support::{account, connection, eventually, unique};
use base64::Engine as _;
use berth::azure_storage::{Kind, StorageError, TimeToLive};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NO_DELAY: Duration = Duration::ZERO;
const LONG: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_step_costs_put_get_delete() {
    let Some(account) = account() else {
        return;
    };
    let q = account.queue(&unique("step")).unwrap();
    assert!(q.create_if_missing().await.unwrap());
    assert!(
        !q.create_if_missing().await.unwrap(),
        "second create finds it"
    );
    let before = account.transactions().snapshot();
    let sent = q
        .send(
            "{\"deployment\":\"d-1\",\"version\":3}",
            NO_DELAY,
            TimeToLive::Never,
        )
        .await
        .unwrap();
    let got = q.receive(32, LONG).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receipt.id, sent.id);
    assert_eq!(got[0].text, "{\"deployment\":\"d-1\",\"version\":3}");
    assert_eq!(got[0].dequeue_count, 1);
    q.delete(&got[0].receipt).await.unwrap();
    assert!(q.receive(32, LONG).await.unwrap().is_empty());
    let cost = account.transactions().snapshot().since(&before);
    assert_eq!(
        cost.by_name(),
        BTreeMap::from([
            ("message.delete", 1),
            ("message.get", 2),
            ("message.put", 1)
        ])
    );
}

#[tokio::test]
async fn a_delayed_message_stays_invisible_until_its_delay_passes() {
    let Some(account) = account() else {
        return;
    };
    let q = account.queue(&unique("delay")).unwrap();
    q.create_if_missing().await.unwrap();
    let start = Instant::now();
    let sent = q
        .send("timer fired", Duration::from_secs(2), TimeToLive::Never)
        .await
        .unwrap();
    assert!(
        q.receive(1, LONG).await.unwrap().is_empty(),
        "invisible right after sending"
    );
    let got = eventually("the delayed message", Duration::from_secs(10), || async {
        let mut got = q.receive(1, LONG).await.unwrap();
        got.pop().ok_or("no message yet")
    })
    .await;
    let waited = start.elapsed();
    assert_eq!(got.receipt.id, sent.id);
    assert_eq!(got.text, "timer fired");
    // The service counts visibility in whole seconds from its own clock.
    assert!(
        waited >= Duration::from_millis(1000),
        "visible after only {waited:?}"
    );
    if let (Some(inserted), Some(visible)) = (sent.insertion_time, sent.next_visible) {
        assert_eq!((visible - inserted).whole_seconds(), 2);
    }
}

#[tokio::test]
async fn an_undeleted_message_comes_back_with_a_higher_dequeue_count() {
    let Some(account) = account() else {
        return;
    };
    let q = account.queue(&unique("redeliver")).unwrap();
    q.create_if_missing().await.unwrap();
    q.send("step", NO_DELAY, TimeToLive::Never).await.unwrap();
    let first = q
        .receive(1, Duration::from_secs(1))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(first.dequeue_count, 1);
    let second = eventually("redelivery", Duration::from_secs(10), || async {
        let got = q.receive(1, Duration::from_secs(1)).await.unwrap().pop();
        got.ok_or("no message yet")
    })
    .await;
    assert_eq!(second.receipt.id, first.receipt.id);
    assert_eq!(second.dequeue_count, 2);
    assert_ne!(second.receipt.pop_receipt, first.receipt.pop_receipt);

    let err = q.delete(&first.receipt).await.unwrap_err();
    assert!(
        matches!(err, StorageError::MessageGone { .. }),
        "the first receiver's receipt is stale: {err:?}"
    );
    // Visible again at once with visibility 0; a third delivery counts 3.
    let updated = q
        .update(&second.receipt, Duration::ZERO, None)
        .await
        .unwrap();
    let third = q
        .receive(1, LONG)
        .await
        .unwrap()
        .pop()
        .expect("visible at once");
    assert_eq!(third.dequeue_count, 3);
    assert!(matches!(
        q.delete(&updated.receipt).await.unwrap_err(),
        StorageError::MessageGone { .. }
    ));
    q.delete(&third.receipt).await.unwrap();
}

#[tokio::test]
async fn update_extends_visibility_and_replaces_text() {
    let Some(account) = account() else {
        return;
    };
    let q = account.queue(&unique("update")).unwrap();
    q.create_if_missing().await.unwrap();
    q.send("attempt 1", NO_DELAY, TimeToLive::Never)
        .await
        .unwrap();
    let got = q
        .receive(1, Duration::from_secs(1))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let updated = q
        .update(&got.receipt, LONG, Some("attempt 2 ✓"))
        .await
        .unwrap();
    assert_eq!(updated.receipt.id, got.receipt.id);
    assert_ne!(updated.receipt.pop_receipt, got.receipt.pop_receipt);
    assert!(updated.next_visible.is_some());
    // The original 1 s lease would have expired by now; the update keeps it hidden.
    let probe_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < probe_until {
        assert!(
            q.receive(1, LONG).await.unwrap().is_empty(),
            "hidden after update"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let visible = q
        .update(&updated.receipt, Duration::ZERO, None)
        .await
        .unwrap();
    let again = q.receive(1, LONG).await.unwrap().pop().unwrap();
    assert_eq!(again.text, "attempt 2 ✓");
    assert!(matches!(
        q.update(&visible.receipt, LONG, None).await.unwrap_err(),
        StorageError::MessageGone { .. }
    ));
    assert_eq!(
        account.transactions().snapshot().get(Kind::MessageUpdate),
        3
    );
}

/// What Berth puts on the wire is base64 of the UTF-8 text, which is what the Functions queue
/// trigger decodes by default (`messageEncoding: base64`); the handler then receives the text
/// JSON-encoded in `Data`, as the host fixtures show.
#[tokio::test]
async fn the_functions_trigger_sees_the_text_berth_sent() {
    let Some(connection) = connection() else {
        return;
    };
    let account = berth::azure_storage::StorageAccount::new(&connection, None).unwrap();
    let name = unique("trigger");
    let q = account.queue(&name).unwrap();
    q.create_if_missing().await.unwrap();

    // A raw SDK client, signed by our policy, reads the message exactly as stored.
    let raw = azure_support::raw_queue(&connection, &name);

    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/functions-host/");
    for file in ["request-queue-plain-string.json", "request-queue-json.json"] {
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{fixtures}{file}")).unwrap())
                .unwrap();
        // Data.myQueueItem holds the JSON string literal of the message text.
        let data = fixture["Data"]["myQueueItem"].as_str().unwrap();
        let text: String = serde_json::from_str(data).unwrap();

        q.send(&text, NO_DELAY, TimeToLive::Never).await.unwrap();
        let stored = raw
            .receive_messages(None)
            .await
            .unwrap()
            .into_model()
            .unwrap()
            .items
            .unwrap()
            .pop()
            .unwrap();
        let wire = stored.message_text.unwrap();
        assert_ne!(wire, text, "the wire holds base64, not the text");
        // What the trigger does with messageEncoding=base64, then how the host passes it on.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&wire)
            .unwrap();
        let trigger_text = String::from_utf8(decoded).unwrap();
        assert_eq!(trigger_text, text);
        assert_eq!(
            serde_json::to_string(&trigger_text).unwrap(),
            data,
            "{file}"
        );
        raw.delete_message(
            stored.message_id.as_deref().unwrap(),
            stored.pop_receipt.as_deref().unwrap(),
            None,
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn limits_are_checked_before_sending() {
    let Some(account) = account() else {
        return;
    };
    let q = account.queue(&unique("limits")).unwrap();
    q.create_if_missing().await.unwrap();
    let before = account.transactions().snapshot();

    let err = q
        .send(&"x".repeat(48 * 1024 + 1), NO_DELAY, TimeToLive::Never)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::MessageTooLarge { limit: 65536, .. }),
        "{err:?}"
    );
    let err = q
        .send(
            "t",
            Duration::from_secs(7 * 24 * 3600 + 1),
            TimeToLive::Never,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidArgument { field: "delay", .. }),
        "{err:?}"
    );
    let err = q
        .send(
            "t",
            Duration::from_secs(60),
            TimeToLive::For(Duration::from_secs(30)),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StorageError::InvalidArgument {
            field: "time_to_live",
            ..
        }
    ));
    let err = q.receive(33, LONG).await.unwrap_err();
    assert!(matches!(
        err,
        StorageError::InvalidArgument { field: "max", .. }
    ));
    assert_eq!(account.transactions().snapshot().since(&before).total(), 0);

    // The largest payload that fits is accepted by the service and comes back intact.
    let biggest = "y".repeat(48 * 1024);
    q.send(&biggest, NO_DELAY, TimeToLive::For(Duration::from_secs(60)))
        .await
        .unwrap();
    let got = q.receive(1, LONG).await.unwrap().pop().unwrap();
    assert_eq!(got.text, biggest);
    // A full week of delay is accepted.
    q.send(
        "in a week",
        Duration::from_secs(7 * 24 * 3600),
        TimeToLive::Never,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_approximate_count_counts_visible_and_delayed_messages() {
    let Some(account) = account() else {
        return;
    };
    let q = account.queue(&unique("depth")).unwrap();
    q.create_if_missing().await.unwrap();
    assert_eq!(q.approximate_count().await.unwrap(), 0);
    for delay in [NO_DELAY, NO_DELAY, LONG] {
        q.send("{}", delay, TimeToLive::Never).await.unwrap();
    }
    assert_eq!(q.approximate_count().await.unwrap(), 3);
    let before = account.transactions().snapshot();
    q.approximate_count().await.unwrap();
    let cost = account.transactions().snapshot().since(&before);
    assert_eq!(cost.by_name(), BTreeMap::from([("queue.other", 1)]));
}

/// A message Berth did not write (not base64 of UTF-8) comes as its raw text beside the others:
/// the receiver refuses it by its content, and the messages received with it are not held.
#[tokio::test]
async fn a_message_that_is_not_base64_is_received_raw_beside_the_others() {
    let Some(connection) = connection() else {
        return;
    };
    let account = berth::azure_storage::StorageAccount::new(&connection, None).unwrap();
    let name = unique("raw");
    let q = account.queue(&name).unwrap();
    q.create_if_missing().await.unwrap();
    let raw = azure_support::raw_queue(&connection, &name);
    let body = azure_storage_queue::models::QueueMessage {
        message_text: Some("not base64 at all!".into()),
    }
    .try_into()
    .unwrap();
    raw.send_message(body, None).await.unwrap();
    q.send("a step", NO_DELAY, TimeToLive::Never).await.unwrap();
    let mut texts = Vec::new();
    let start = Instant::now();
    while texts.len() < 2 && start.elapsed() < Duration::from_secs(10) {
        for m in q.receive(32, Duration::from_secs(60)).await.unwrap() {
            texts.push(m.text);
        }
    }
    texts.sort();
    assert_eq!(texts, ["a step", "not base64 at all!"]);
}
