//! Transaction counting against a real Azurite: every request is counted by kind, per account and,
//! under `count_during`, per unit of work, so a deployment's cost can be printed.
#![allow(clippy::unwrap_used)]

mod azure_support;

use azure_support::{account, unique};
use berth::azure_storage::{Kind, Tags, TimeToLive, Transactions, WriteCondition};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn concurrent_units_of_work_are_counted_apart() {
    let Some(account) = account() else {
        return;
    };
    let account = Arc::new(account);
    let c = Arc::new(account.container(&unique("tx")).unwrap());
    let q = Arc::new(account.queue(&unique("tx")).unwrap());
    c.create_if_missing().await.unwrap();
    q.create_if_missing().await.unwrap();
    let setup = account.transactions().snapshot();
    assert_eq!(
        setup.by_name(),
        BTreeMap::from([("container.create", 1), ("queue.create", 1)])
    );

    // One deployment step as the engine will run it: read the checkpoint, CAS it, send the
    // follow-up step, and (as the queue trigger) receive and delete the step that drove it.
    async fn step(
        c: &berth::azure_storage::BlobContainer,
        q: &berth::azure_storage::StorageQueue,
        id: &str,
        rounds: usize,
    ) {
        let name = format!("deployments/{id}/checkpoint");
        let mut etag = c
            .put(
                &name,
                Bytes::from_static(b"{}"),
                &WriteCondition::Create,
                &Tags::new(),
            )
            .await
            .unwrap();
        for _ in 0..rounds {
            let current = c.get(&name).await.unwrap().unwrap();
            assert_eq!(current.etag, etag);
            etag = c
                .put(
                    &name,
                    Bytes::from_static(b"{}"),
                    &WriteCondition::Replace(etag),
                    &Tags::new(),
                )
                .await
                .unwrap();
            q.send(id, Duration::ZERO, TimeToLive::Never).await.unwrap();
        }
    }

    let (a, b) = (Transactions::new(), Transactions::new());
    let (ta, tb) = (
        {
            let (c, q, a) = (c.clone(), q.clone(), a.clone());
            tokio::spawn(async move { a.count_during(step(&c, &q, "d-a", 3)).await })
        },
        {
            let (c, q, b) = (c.clone(), q.clone(), b.clone());
            tokio::spawn(async move { b.count_during(step(&c, &q, "d-b", 1)).await })
        },
    );
    ta.await.unwrap();
    tb.await.unwrap();

    let expect = |rounds: u64| {
        BTreeMap::from([
            ("blob.get", rounds),
            ("blob.put", 1 + rounds),
            ("message.put", rounds),
        ])
    };
    assert_eq!(a.snapshot().by_name(), expect(3));
    assert_eq!(b.snapshot().by_name(), expect(1));
    let total = account.transactions().snapshot().since(&setup);
    assert_eq!(total.total(), a.snapshot().total() + b.snapshot().total());
    assert_eq!(total.get(Kind::BlobPut), 6);

    // Outside any unit of work, requests count only for the account.
    let outside = q.receive(32, Duration::from_secs(60)).await.unwrap();
    assert_eq!(outside.len(), 4);
    assert_eq!(a.snapshot().get(Kind::MessageGet), 0);
    println!(
        "one checkpoint create + 3 read-CAS-send rounds: {}",
        a.snapshot()
    );
}
