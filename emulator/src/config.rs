//! How an emulator is set up: `Config` with its defaults, built in code by `handler dev` and tests
//! and from flags by `aci-emulator`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::api_versions::API_VERSIONS;
use crate::auth::Token;
use crate::faults::Faults;
use crate::images::ImageMap;
use crate::lifecycle::Backoff;
use crate::model::Secret;
use crate::quotas::Quotas;

/// The emulator's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where records, logs, shares (`shares/<account>/<share>/`) and per-group scratch live.
    pub data_dir: PathBuf,
    /// Image → command and environment, for containers without a `command`.
    pub images: ImageMap,
    /// Complete every group at once without processes or disk writes (for benchmarks).
    pub instant: bool,
    /// Fault injection at start (changeable at runtime with `PUT /_emulator/faults`).
    pub faults: Faults,
    /// Enforce ACI's default quotas (`quotas`).
    pub enforce_quotas: bool,
    /// The quota limits used when `enforce_quotas` is on.
    pub quotas: Quotas,
    /// How long the state machine's steps take.
    pub timings: Timings,
    /// The accepted api-versions (default: every one ACI publishes, `API_VERSIONS`).
    pub api_versions: Vec<String>,
    /// Groups per list page before `nextLink`.
    pub page_size: usize,
    /// Storage account name → key. A group whose `azureFile` volume names a listed account with a
    /// different key fails to mount, as with a wrong key in Azure; unlisted accounts take any key.
    pub storage_keys: BTreeMap<String, Secret>,
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// Apply CPU and memory limits through cgroups when possible.
    pub cgroups: bool,
    /// The bearer token every request must carry (`Authorization: Bearer <token>`); `None` serves
    /// anyone who can reach the port (the tests' in-process emulators, nothing that runs
    /// containers for someone else).
    pub token: Option<Token>,
    /// Host folders hidden from every container, besides the data folder, the emulator's home and
    /// `sandbox::HOST_SECRETS` (`handler dev` adds its own data folder, which holds its keys).
    pub hide: Vec<PathBuf>,
    /// In instant mode, a container whose command is `sleep N` runs N seconds (without a
    /// process) before it exits with code 0, instead of at once (for benchmarks of run times).
    pub simulate_sleeps: bool,
}

/// Durations of the state machine (all zero or small by default, so tests run fast).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings {
    /// Time a group stays `Pending` before `Creating`.
    pub pending: Duration,
    /// Time a group stays `Creating` before its containers start.
    pub creating: Duration,
    /// First crash-loop back-off before a restart (doubles each time).
    pub restart_backoff: Duration,
    /// The longest back-off.
    pub restart_backoff_max: Duration,
    /// With a non-zero value, DELETE answers `202` and the group shows `Deleting` this long.
    pub deleting: Duration,
    /// How long stop and delete wait for processes to die before answering anyway.
    pub kill_timeout: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            pending: Duration::ZERO,
            creating: Duration::ZERO,
            restart_backoff: Duration::from_secs(1),
            restart_backoff_max: Duration::from_secs(60),
            deleting: Duration::ZERO,
            kill_timeout: Duration::from_secs(10),
        }
    }
}

impl Timings {
    /// The back-off settings of the state machine.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: self.restart_backoff,
            max: self.restart_backoff_max,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(".aci-emulator"),
            images: ImageMap::default(),
            instant: false,
            faults: Faults::default(),
            enforce_quotas: false,
            quotas: Quotas::default(),
            timings: Timings::default(),
            api_versions: API_VERSIONS.iter().map(|v| v.to_string()).collect(),
            page_size: 100,
            storage_keys: BTreeMap::new(),
            bwrap: PathBuf::from("bwrap"),
            cgroups: true,
            token: None,
            hide: Vec::new(),
            simulate_sleeps: false,
        }
    }
}
