//! Shared helpers of the `azure_*` tests: the Azurite connection and an account on it.
//!
//! The tests run against a real Azurite: the one `bin/test` started (`BERTH_TEST_AZURITE`), or one
//! `berth_test_support` starts for the test process. Without Azurite they fail saying how to get
//! it, unless `BERTH_TEST_SKIP=azurite` asks to skip them.
#![allow(dead_code)] // each test binary uses a different part of this module

use berth::azure_storage::{StorageAccount, StorageConnection};
#[allow(unused_imports)] // each test binary uses some of them
pub use berth_test_support::{eventually, unique};

/// Azurite's connection string; `None` only when skipping Azurite's tests was asked for.
pub fn connection_string() -> Option<String> {
    berth_test_support::Azurite::shared().map(|azurite| azurite.connection().to_owned())
}

/// Azurite's connection, parsed; `None` only when skipping was asked for.
pub fn connection() -> Option<StorageConnection> {
    let value = connection_string()?;
    let connection = StorageConnection::parse("BERTH_TEST_AZURITE", &value)
        .expect("Azurite's connection string parses");
    for url in [&connection.blob_endpoint, &connection.queue_endpoint] {
        assert_eq!(
            url.host_str(),
            Some("127.0.0.1"),
            "tests talk only to 127.0.0.1, not {url}"
        );
    }
    Some(connection)
}

/// A fresh account (with fresh transaction counters) on the Azurite connection.
pub fn account() -> Option<StorageAccount> {
    connection().map(|c| StorageAccount::new(&c, None).expect("account"))
}

/// A plain SDK client on queue `name`, signed with our Shared Key policy: another client (the
/// Functions host's trigger) reading what Berth wrote, exactly as stored.
pub fn raw_queue(connection: &StorageConnection, name: &str) -> azure_storage_queue::QueueClient {
    let berth::azure_storage::StorageAuth::SharedKey { account, key } = &connection.auth else {
        panic!("Azurite is reached with Shared Key");
    };
    let mut url = connection.queue_endpoint.clone();
    url.path_segments_mut().unwrap().pop_if_empty().push(name);
    let signer =
        berth::azure_storage::shared_key::SharedKeyPolicy::new(account.clone(), key.clone());
    azure_storage_queue::QueueClient::new(
        url,
        None,
        Some(azure_storage_queue::QueueClientOptions {
            client_options: azure_core::http::ClientOptions {
                per_try_policies: vec![std::sync::Arc::new(signer)],
                ..Default::default()
            },
            ..Default::default()
        }),
    )
    .unwrap()
}
