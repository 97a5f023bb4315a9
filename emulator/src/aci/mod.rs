//! The emulated Azure Container Instances: the groups it holds, and the loop that feeds inputs to
//! each group's state machine (`lifecycle`) and then performs the resulting actions (timers,
//! processes, kills).
//!
//! # Guarantees
//! - In-memory state is the source of truth; every change is queued for the disk after it is made
//!   (never before), and never waits for the disk.
//! - The group lock is never held across an `.await`: transitions are applied under the lock,
//!   their actions run after it is released.
//! - Every process belongs to the `ProcessTable`; once the table is closed nothing new starts, and
//!   `Drop` of the running emulator kills whatever is left.

mod arm;
mod launch;
mod operations;
mod reads;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::cgroup::Cgroups;
use crate::config::Config;
use crate::faults::{Decision, FaultState, Faults};
use crate::lifecycle::{Action, Input, Slot};
use crate::logs::LogBuffer;
use crate::process::{ProcessTable, lock};
use crate::quotas::CreateWindows;
use crate::record::{GroupKey, Record};
use crate::sandbox::Confinement;
use crate::stats::{Counters, Stats};
use crate::store::{self, Layout, Store};

pub use arm::{DeleteOutcome, INSTANT_LOG, ListPage, PutOutcome, StartOutcome, Target};
pub use operations::OpKind;
use operations::Operations;

/// A group held by the emulator.
#[derive(Debug)]
pub(crate) struct Entry {
    /// What is persisted.
    pub record: Record,
    /// One log per container.
    pub logs: Vec<Arc<Mutex<LogBuffer>>>,
    /// One log per init container.
    pub init_logs: Vec<Arc<Mutex<LogBuffer>>>,
    /// When the group was last stopped (for `ContainerGroupTransitioning`).
    pub stopped_at: Option<Instant>,
}

impl Entry {
    fn new(record: Record) -> Self {
        let buffers = |count: usize| {
            (0..count)
                .map(|_| Arc::new(Mutex::new(LogBuffer::default())))
                .collect()
        };
        Entry {
            logs: buffers(record.runtime.containers.len()),
            init_logs: buffers(record.runtime.init_containers.len()),
            record,
            stopped_at: None,
        }
    }

    /// The log of a container.
    pub fn log(&self, slot: Slot) -> Option<&Arc<Mutex<LogBuffer>>> {
        match slot {
            Slot::Init(index) => self.init_logs.get(index),
            Slot::Main(index) => self.logs.get(index),
        }
    }

    /// A group loaded from the data folder, with the logs its containers left there.
    fn restore(record: Record, layout: &Layout) -> Self {
        let entry = Entry::new(record);
        let folder = layout.logs(&entry.record.key());
        for (slot, run) in entry.record.runtime.slots() {
            let Some(buffer) = entry.log(slot) else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(folder.join(format!("{}.log", run.name))) else {
                continue;
            };
            let mut buffer = lock(buffer);
            for line in text.lines().filter_map(crate::logs::parse_line) {
                buffer.push(line.at, line.text);
            }
        }
        entry
    }
}

/// The emulator: groups, processes, faults, quotas and counters. Shared by the HTTP layer
/// (`http::router`) and the background tasks it starts.
#[derive(Debug)]
pub struct Emulator {
    config: Config,
    layout: Layout,
    groups: Mutex<BTreeMap<GroupKey, Entry>>,
    operations: Mutex<Operations>,
    counters: Counters,
    faults: Mutex<FaultState>,
    faults_quiet: AtomicBool,
    creates: Mutex<CreateWindows>,
    processes: ProcessTable,
    store: Option<Store>,
    store_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    cgroups: Cgroups,
    confinement: Confinement,
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Emulator {
    /// Builds an emulator from `config`, loading the records of its data folder (outside instant
    /// mode); call `recover` once it may start processes. Must run inside a Tokio runtime.
    pub fn new(config: Config) -> Result<Arc<Self>, crate::error::Error> {
        config
            .faults
            .validate()
            .map_err(crate::error::Error::Faults)?;
        let layout = Layout::new(&config.data_dir);
        let (store, store_task, records) = if config.instant {
            (None, None, Vec::new())
        } else {
            std::fs::create_dir_all(layout.root()).map_err(|source| {
                crate::error::Error::DataDir {
                    path: layout.root().to_path_buf(),
                    source,
                }
            })?;
            let records = store::load_all(&layout);
            let (store, task) = Store::spawn(layout.clone());
            (Some(store), Some(task), records)
        };
        let cgroups = if config.instant || !config.cgroups {
            Cgroups::disabled("cgroups are disabled")
        } else {
            Cgroups::detect()
        };
        let confinement = if config.instant {
            Confinement::default()
        } else {
            let mut private = vec![layout.root().to_path_buf()];
            private.extend(config.hide.iter().cloned());
            let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
            Confinement::detect(&config.bwrap, home.as_deref(), &private)
        };
        let groups = records
            .into_iter()
            .map(|record| (record.key(), Entry::restore(record, &layout)))
            .collect();
        let faults = config.faults.clone();
        Ok(Arc::new(Emulator {
            faults_quiet: AtomicBool::new(faults.is_quiet()),
            faults: Mutex::new(FaultState::new(faults)),
            layout,
            groups: Mutex::new(groups),
            operations: Mutex::new(Operations::default()),
            counters: Counters::default(),
            creates: Mutex::new(CreateWindows::default()),
            processes: ProcessTable::default(),
            store,
            store_task: Mutex::new(store_task),
            cgroups,
            confinement,
            config,
        }))
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How containers are confined on this machine.
    pub fn confinement(&self) -> &Confinement {
        &self.confinement
    }

    /// The counters, as `GET /_emulator/stats` answers them.
    pub fn stats(&self) -> Stats {
        let groups = lock(&self.groups).len() as u64;
        self.counters.snapshot(self.processes.live() as u64, groups)
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        lock(&self.faults).faults().clone()
    }

    /// Replaces the faults (and restarts the call count); the error names the bad field.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        self.faults_quiet
            .store(faults.is_quiet(), Ordering::Relaxed);
        *lock(&self.faults) = FaultState::new(faults);
        Ok(())
    }

    /// Decides which fault, if any, a request with this method gets.
    pub fn decide_fault(&self, method: &str) -> Decision {
        if self.faults_quiet.load(Ordering::Relaxed) {
            return Decision::default();
        }
        lock(&self.faults).decide(method)
    }

    /// Restarts what the records of a previous emulator left: processes that ran then are reported
    /// lost (exit code 137) and restarted as the restart policy says; interrupted provisioning is
    /// done again.
    pub fn recover(self: &Arc<Self>) {
        let keys: Vec<GroupKey> = lock(&self.groups).keys().cloned().collect();
        for key in keys {
            self.input(&key, Input::Recovered);
        }
    }

    /// Kills every process and waits for them, stops starting new ones, and writes the records
    /// out. Records keep saying which containers ran, so the next emulator reports them lost.
    pub async fn shutdown(&self) {
        self.processes.close_and_kill_now();
        self.processes
            .wait_all_gone(self.config.timings.kill_timeout)
            .await;
        if let Some(store) = &self.store {
            store.flush().await;
        }
        let task = lock(&self.store_task).take();
        if let Some(task) = task {
            task.abort();
        }
        self.cgroups.remove_base();
    }

    /// Kills every process at once without waiting (for `Drop`). The cgroups of runs that are
    /// still being reaped stay behind; the next emulator sweeps them.
    pub fn kill_now(&self) {
        self.processes.close_and_kill_now();
        self.cgroups.remove_base();
    }

    /// Feeds an input to a group's state machine, persists the change and starts its actions.
    /// Returns false when the group does not exist.
    pub(crate) fn input(self: &Arc<Self>, key: &GroupKey, input: Input) -> bool {
        match &input {
            Input::ImageUnavailable { message, .. }
            | Input::MountFailed { message, .. }
            | Input::StartFailed { message, .. } => {
                tracing::warn!(aci.group = %key.name, aci.resource_group = %key.resource_group, %message, "container group cannot run");
            }
            _ => {}
        }
        let actions = {
            let mut groups = lock(&self.groups);
            let Some(entry) = groups.get_mut(key) else {
                return false;
            };
            let before = entry.record.runtime.clone();
            let actions = entry.record.runtime.apply(
                input,
                OffsetDateTime::now_utc(),
                self.config.timings.backoff(),
            );
            if entry.record.runtime != before {
                self.persist(&entry.record);
            }
            actions
        };
        if !actions.is_empty() {
            tokio::spawn(self.clone().run_actions(key.clone(), actions));
        }
        true
    }

    /// Queues a record for the disk (nothing in instant mode).
    fn persist(&self, record: &Record) {
        if let Some(store) = &self.store {
            store.save(record);
        }
    }

    /// Performs actions in order: kills are awaited, timers and launches run in their own tasks.
    pub(crate) fn run_actions(self: Arc<Self>, key: GroupKey, actions: Vec<Action>) -> BoxFuture {
        Box::pin(async move {
            for action in actions {
                match action {
                    Action::KillAll => {
                        self.processes
                            .kill_group(&key, self.config.timings.kill_timeout)
                            .await;
                    }
                    Action::Provision { generation } => {
                        let this = self.clone();
                        let key = key.clone();
                        tokio::spawn(async move {
                            sleep(this.config.timings.pending).await;
                            this.input(&key, Input::Begin { generation });
                        });
                    }
                    Action::Launch { generation } => {
                        let this = self.clone();
                        let key = key.clone();
                        tokio::spawn(async move {
                            sleep(this.config.timings.creating).await;
                            this.launch(key, generation).await;
                        });
                    }
                    Action::Spawn { generation, slot } => {
                        tokio::spawn(self.clone().spawn_container(key.clone(), generation, slot));
                    }
                    Action::RestartAfter {
                        generation,
                        slot,
                        delay,
                    } => {
                        let this = self.clone();
                        let key = key.clone();
                        tokio::spawn(async move {
                            sleep(delay).await;
                            this.input(&key, Input::RestartDue { generation, slot });
                        });
                    }
                }
            }
        })
    }
}

async fn sleep(duration: std::time::Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}
