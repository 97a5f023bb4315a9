//! Shared helpers of the `azure_*` tests: the Azurite connection, unique names, polling.
//!
//! The tests run against a real Azurite whose connection string is in `BERTH_TEST_AZURITE`
//! (`bin/test` starts Azurite on 127.0.0.1 and exports `UseDevelopmentStorage=true`). When the
//! variable is unset they skip, loudly.
#![allow(dead_code)] // each test binary uses a different part of this module

use berth::azure::{StorageAccount, StorageConnection};
use std::future::Future;
use std::time::{Duration, Instant};

/// The variable holding the Azurite connection string.
pub const VAR: &str = "BERTH_TEST_AZURITE";

/// The Azurite connection, or `None` (with a loud message) when the variable is unset.
pub fn connection(test: &str) -> Option<StorageConnection> {
    let Ok(value) = std::env::var(VAR) else {
        eprintln!(
            "\n*** SKIPPED {test}: {VAR} is unset. Start Azurite and export {VAR}=UseDevelopmentStorage=true \
             (bin/test does both). ***\n"
        );
        return None;
    };
    let connection = StorageConnection::parse(VAR, &value).expect("BERTH_TEST_AZURITE parses");
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
pub fn account(test: &str) -> Option<StorageAccount> {
    connection(test).map(|c| StorageAccount::new(&c, None).expect("account"))
}

/// A container or queue name no other test uses: `prefix` plus random hex.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Calls `probe` every 50 ms until it returns `Some`, failing the test after `deadline`.
pub async fn poll<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
