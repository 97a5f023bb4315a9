//! Berth assembled in-process as `handler serve` assembles it (`Runtime::build` from a
//! configuration), with its store wrapped in [`Watched`] and its HTTP API on a loopback port.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth::api::Api;
use berth::azure_storage::StorageAccount;
use berth::clock::SystemClock;
use berth::config::{self, Config, Defaults};
use berth::crypto::SecretsKey;
use berth::runtime::Runtime;
use berth::store::azure::AzureBackend;
use berth::store::{Checkpoints, Steps};
use berth::sweep::Sweep;

use crate::watch::Watched;

/// Where Berth keeps checkpoints and steps in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The embedded default: a SQLite file (WAL) in this folder.
    Sqlite(std::path::PathBuf),
    /// Azure Storage at this connection string (Azurite), under a queue name of the run's own.
    Azure { connection: String, queue: String },
}

impl Storage {
    /// The name in tables and JSON keys.
    pub fn name(&self) -> &'static str {
        match self {
            Storage::Sqlite(_) => "sqlite",
            Storage::Azure { .. } => "azurite",
        }
    }
}

/// One Berth: its runtime, the instrumented store, the API's base URL.
pub struct Berth {
    pub runtime: Runtime,
    pub watched: Arc<Watched>,
    pub api: String,
    /// The Azure Storage account, with its transaction counters (`None` on SQLite).
    pub account: Option<Arc<StorageAccount>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The settings of a bench Berth: ARM at `arm_endpoint`, storage as given, `extra` on top.
pub fn settings(
    storage: &Storage,
    arm_endpoint: &str,
    public_url: &str,
    extra: &[(&str, String)],
) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = HashMap::from([
        ("BERTH_ARM_ENDPOINT".into(), arm_endpoint.to_owned()),
        (
            "BERTH_SUBSCRIPTION_ID".into(),
            "00000000-0000-0000-0000-000000000000".into(),
        ),
        ("BERTH_RESOURCE_GROUP".into(), "berth-bench".into()),
        ("BERTH_LOCATION".into(), "local".into()),
        (
            "BERTH_SECRETS_KEY".into(),
            SecretsKey::generate().to_base64(),
        ),
        ("BERTH_PUBLIC_URL".into(), public_url.to_owned()),
        // The message a submit sends with its checkpoint is due when the create claim runs out,
        // to be dropped as stale: a short claim lets a measure count those deliveries too
        // (`throughput::STALE_DELIVERED`).
        ("BERTH_CREATE_CLAIM".into(), "PT5S".into()),
    ]);
    match storage {
        Storage::Sqlite(dir) => {
            map.insert(
                "BERTH_SQLITE_PATH".into(),
                dir.join("berth.db").display().to_string(),
            );
        }
        Storage::Azure { connection, queue } => {
            map.insert("AzureWebJobsStorage".into(), connection.clone());
            map.insert("BERTH_QUEUE".into(), queue.clone());
            map.insert("BERTH_SUBMIT_QUEUE".into(), format!("{queue}-submit"));
        }
    }
    for (k, v) in extra {
        map.insert((*k).to_owned(), v.clone());
    }
    map
}

impl Berth {
    /// Builds Berth from `settings`, wraps its store, starts its worker (and no periodic sweep:
    /// the sweep is measured on its own) and serves its API on 127.0.0.1.
    pub async fn start(settings: HashMap<String, String>) -> anyhow::Result<Berth> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut settings = settings;
        settings
            .entry("BERTH_PUBLIC_URL".into())
            .or_insert_with(|| format!("http://{addr}"));
        let config = Config::from_lookup(&Config::map_lookup(settings), Defaults::default())
            .context("bench configuration")?;
        let clock = Arc::new(SystemClock);
        // On Azure Storage, a backend of the bench's own on the same account, container and
        // queue, so that the account's transaction counters are at hand.
        let azure = match (&config.storage, &config.storage_connection) {
            (config::Storage::Azure, Some(connection)) => Some(
                AzureBackend::open(connection, None, &config.queue, clock.clone())
                    .await
                    .context("opening Azure Storage")?,
            ),
            _ => None,
        };
        let built = Runtime::build(config, clock)
            .await
            .context("building Berth")?;
        let (store, steps): (Arc<dyn Checkpoints>, Arc<dyn Steps>) = match &azure {
            Some(a) => (a.store.clone(), a.steps.clone()),
            None => (built.sweep.store.clone(), built.steps.clone()),
        };
        let watched = Watched::new(store, steps);
        let driver = built.driver.with_store(watched.clone());
        let api = Arc::new(Api {
            driver: driver.clone(),
            api_key: built.api.api_key.clone(),
            public_url: built.api.public_url.clone(),
            prices: built.api.prices.clone(),
            loopback_only: false,
        });
        let sweep = Sweep {
            store: watched.clone(),
            steps: watched.clone(),
            ..built.sweep.clone()
        };
        let runtime = Runtime {
            submitter: berth::submit::Submitter {
                driver: driver.clone(),
                ..built.submitter.clone()
            },
            submit_queues: None,
            driver,
            api,
            steps: watched.clone(),
            sweep,
            scheduler: built.scheduler.clone(),
            workers: built.workers,
            step_lease_ms: built.step_lease_ms,
        };
        tokio::spawn(berth::worker::run(
            runtime.driver.clone(),
            runtime.steps.clone(),
            runtime.workers,
            runtime.step_lease_ms,
        ));
        let router = runtime.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Berth {
            account: azure.map(|a| a.account),
            runtime,
            watched,
            api: format!("http://{addr}"),
            server,
        })
    }

    /// Storage transactions the account counted so far (Azure Storage only).
    pub fn storage_transactions(&self) -> Option<berth::azure_storage::Snapshot> {
        self.account.as_ref().map(|a| a.transactions().snapshot())
    }

    /// ARM calls made so far (all kinds, retries included).
    pub fn arm_calls(&self) -> u64 {
        self.runtime.sweep.arm.calls().total()
    }

    /// ARM reads (group GETs and log reads) made so far.
    pub fn arm_reads(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let calls = self.runtime.sweep.arm.calls();
        calls.get.load(Ordering::Relaxed) + calls.logs.load(Ordering::Relaxed)
    }
}

/// How long a single job may take before the run is declared broken.
pub const JOB_LIMIT: Duration = Duration::from_secs(60);
