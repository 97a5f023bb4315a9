//! The ARM operations that change container groups, as the HTTP layer calls them: create or
//! update, patch tags, delete, start, stop and restart (the reads are in `reads`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::operations::{OpKind, Operation};
use super::reads::region_usage;
use super::{Emulator, Entry};
use crate::capacity;
use crate::error::ArmError;
use crate::faults::Refusal;
use crate::lifecycle::{Action, GroupState, Input, Provisioning, Runtime};
use crate::model::{ContainerGroup, ContainerGroupUpdate, IdentityType, Priority};
use crate::process::lock;
use crate::quotas::{self, Remaining};
use crate::record::{GroupKey, Record, View, normalize_location, resource_id};
use crate::validate;

/// The log line of a container in instant mode.
pub const INSTANT_LOG: &str =
    "aci-emulator --instant: the container completed without running a process";

/// What a PUT did.
#[derive(Debug)]
pub struct PutOutcome {
    /// Created (`201`) rather than updated (`200`).
    pub created: bool,
    /// The answer body.
    pub body: ContainerGroup,
    /// The async operation's id.
    pub operation: String,
    /// The group's region (for the operation URL).
    pub location: String,
    /// Creates left in the quota windows (for the rate-limit headers), on creates.
    pub remaining: Option<Remaining>,
}

/// What a DELETE did.
#[derive(Debug)]
pub enum DeleteOutcome {
    /// Deleted now: `200` with the last view of the group.
    Deleted(Box<ContainerGroup>),
    /// Deleting in the background: `202` with an operation id and the region.
    Accepted(String, String),
    /// There was no such group: `204`.
    NotFound,
}

/// What a POST start did.
#[derive(Debug)]
pub enum StartOutcome {
    /// Started: `202` with an operation id and the region.
    Started(String, String),
    /// Already running: `204`.
    AlreadyRunning,
}

#[derive(Debug)]
pub struct ListPage {
    /// The groups, without instance views.
    pub value: Vec<ContainerGroup>,
    /// The key after which the next page starts, when there is one.
    pub next: Option<GroupKey>,
}

/// A group as named in the request path.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub subscription: &'a str,
    pub resource_group: &'a str,
    /// The container group.
    pub name: &'a str,
}

impl Target<'_> {
    pub fn key(&self) -> GroupKey {
        GroupKey::new(self.subscription, self.resource_group, self.name)
    }

    pub(super) fn not_found(&self) -> ArmError {
        ArmError::group_not_found(self.resource_group, self.name)
    }
}

fn in_progress(name: &str) -> ArmError {
    ArmError::new(
        StatusCode::CONFLICT,
        "AnotherOperationInProgress",
        format!(
            "Another operation on container group '{name}' is in progress; please retry later."
        ),
    )
}

impl Emulator {
    /// PUT: creates a group (`201`, `Pending`) or updates it under ACI's update rules (`200`).
    pub async fn put(
        self: &Arc<Self>,
        target: Target<'_>,
        mut spec: ContainerGroup,
    ) -> Result<PutOutcome, ArmError> {
        validate::group(target.name, &spec)?;
        clear_read_only(&mut spec);
        let key = target.key();
        let location = normalize_location(spec.location.as_deref().unwrap_or_default());
        let now = OffsetDateTime::now_utc();
        let describe = |name: &str, image: &Option<String>| {
            (name.to_string(), image.clone().unwrap_or_default())
        };
        let containers: Vec<(String, String)> = spec
            .properties
            .containers
            .iter()
            .map(|c| describe(&c.name, &c.properties.image))
            .collect();
        let inits: Vec<(String, String)> = spec
            .properties
            .init_containers
            .iter()
            .flatten()
            .map(|c| describe(&c.name, &c.properties.image))
            .collect();
        let (outcome, actions) = {
            let mut groups = lock(&self.groups);
            match groups.get_mut(&key) {
                Some(entry) => {
                    let record = &mut entry.record;
                    if record.runtime.provisioning == Provisioning::Deleting {
                        return Err(in_progress(target.name));
                    }
                    if record.location != location {
                        return Err(ArmError::new(
                            StatusCode::CONFLICT,
                            "InvalidResourceLocation",
                            format!(
                                "The resource '{}' already exists in location '{}' in resource group '{}'. A resource with the same name cannot be created in location '{location}'. Please select a new resource name.",
                                target.name, record.location, target.resource_group
                            ),
                        ));
                    }
                    validate::update(target.name, &record.spec, &spec)?;
                    keep_identity_ids(&record.spec, &mut spec);
                    self.freeze_operations(record);
                    let generation = record.runtime.generation + 1;
                    record.spec = spec;
                    record.runtime = Runtime::new(
                        record.spec.restart_policy(),
                        &containers,
                        &inits,
                        generation,
                    );
                    *entry = Entry::new(entry.record.clone());
                    let pending = entry.record.runtime.clone();
                    let mut actions = vec![Action::KillAll];
                    actions.extend(self.begin(
                        &key,
                        &entry.record.spec,
                        &mut entry.record.runtime,
                        now,
                    ));
                    self.persist(&entry.record);
                    let body = entry.record.render_with(&pending, View::Full);
                    let operation = self.add_operation(&entry.record, OpKind::Put);
                    (
                        PutOutcome {
                            created: false,
                            body,
                            operation,
                            location,
                            remaining: None,
                        },
                        actions,
                    )
                }
                None => {
                    let refusal = lock(&self.faults).refusal(&location);
                    if let Some(refusal) = refusal {
                        let kind = match refusal {
                            Refusal::OutOfCapacity => "capacity",
                            Refusal::SkuNotAvailable => "skuNotAvailable",
                        };
                        self.counters.fault(kind);
                        let id = resource_id(&key.subscription, &key.resource_group, &key.name);
                        return Err(capacity::refused(
                            refusal,
                            &spec,
                            &id,
                            &key.subscription,
                            &location,
                        ));
                    }
                    let cores = cores_of(&spec);
                    if self.config.enforce_quotas {
                        let usage = region_usage(&groups, &key.subscription, &location);
                        quotas::check_region(&self.config.quotas, &location, usage, true, cores)?;
                    }
                    let remaining = lock(&self.creates).admit(
                        &self.config.quotas,
                        &key.subscription,
                        Instant::now(),
                        self.config.enforce_quotas,
                    )?;
                    fill_identity_ids(&mut spec);
                    if spec.properties.priority == Some(Priority::Spot)
                        && let Some(after) = lock(&self.faults).evict_spot()
                    {
                        tokio::spawn(self.clone().evict_later(key.clone(), 1, after));
                    }
                    let runtime = Runtime::new(spec.restart_policy(), &containers, &inits, 1);
                    let pending = runtime.clone();
                    let record = Record {
                        subscription: target.subscription.to_string(),
                        resource_group: target.resource_group.to_string(),
                        name: target.name.to_string(),
                        location: location.clone(),
                        created: now,
                        spec,
                        runtime,
                    };
                    let mut entry = Entry::new(record);
                    let actions =
                        self.begin(&key, &entry.record.spec, &mut entry.record.runtime, now);
                    self.persist(&entry.record);
                    let body = entry.record.render_with(&pending, View::Full);
                    let operation = self.add_operation(&entry.record, OpKind::Put);
                    groups.insert(key.clone(), entry);
                    self.counters.created(target.name);
                    (
                        PutOutcome {
                            created: true,
                            body,
                            operation,
                            location,
                            remaining: Some(remaining),
                        },
                        actions,
                    )
                }
            }
        };
        tracing::debug!(aci.group = %target.name, aci.resource_group = %target.resource_group, created = outcome.created, "container group accepted");
        self.clone().run_actions(key, actions).await;
        Ok(outcome)
    }

    /// The first actions of a fresh attempt, or, in instant mode, its completion: at once, or
    /// (`simulate_sleeps`) after the run a `sleep N` command stands for ([`simulated_run`]).
    fn begin(
        self: &Arc<Self>,
        key: &GroupKey,
        spec: &ContainerGroup,
        runtime: &mut Runtime,
        now: OffsetDateTime,
    ) -> Vec<Action> {
        if !self.config.instant {
            return runtime.initial_actions();
        }
        match simulated_run(spec).filter(|_| self.config.simulate_sleeps) {
            Some(run) => {
                runtime.start_instantly(now);
                let (this, key, generation) = (self.clone(), key.clone(), runtime.generation);
                tokio::spawn(async move {
                    tokio::time::sleep(run).await;
                    this.finish_simulated(&key, generation);
                });
            }
            None => runtime.complete_instantly(now),
        }
        Vec::new()
    }

    /// Ends the simulated run of attempt `generation` of group `key`, if it still runs.
    fn finish_simulated(&self, key: &GroupKey, generation: u64) {
        let mut groups = lock(&self.groups);
        if let Some(entry) = groups.get_mut(key)
            && entry
                .record
                .runtime
                .finish_instantly(generation, OffsetDateTime::now_utc())
        {
            self.persist(&entry.record);
        }
    }

    fn add_operation(&self, record: &Record, kind: OpKind) -> String {
        lock(&self.operations).add(Operation {
            key: record.key(),
            resource_id: record.resource_id(),
            kind,
            generation: record.runtime.generation,
            started: OffsetDateTime::now_utc(),
            frozen: None,
        })
    }

    /// Called before the group's current attempt is replaced (update, start, stop, restart,
    /// delete): when that attempt has ended, its operations keep their `Succeeded` or `Failed`
    /// instead of reading `Canceled` once the group has moved on.
    fn freeze_operations(&self, record: &Record) {
        let runtime = &record.runtime;
        if runtime.provisioning.is_terminal() {
            lock(&self.operations).freeze(
                &record.key(),
                runtime.generation,
                runtime.provisioning,
                runtime.failure.as_ref(),
            );
        }
    }

    /// PATCH: replaces the tags (location and zones may be repeated, not changed).
    pub fn patch(
        &self,
        target: Target<'_>,
        update: ContainerGroupUpdate,
    ) -> Result<ContainerGroup, ArmError> {
        let mut groups = lock(&self.groups);
        let entry = groups
            .get_mut(&target.key())
            .ok_or_else(|| target.not_found())?;
        let record = &mut entry.record;
        if let Some(location) = &update.location
            && normalize_location(location) != record.location
        {
            return Err(ArmError::invalid_field(
                "location",
                format!(
                    "The location of container group '{}' cannot be changed from '{}'.",
                    target.name, record.location
                ),
            ));
        }
        if update.zones.is_some() && update.zones != record.spec.zones {
            return Err(ArmError::invalid_field(
                "zones",
                format!(
                    "The zones of container group '{}' cannot be changed.",
                    target.name
                ),
            ));
        }
        if let Some(tags) = update.tags {
            record.spec.tags = Some(tags);
        }
        self.persist(record);
        Ok(record.render(View::Full))
    }

    /// DELETE: `200` with the group's last view, `202` when a delete delay is configured, `204`
    /// when there was no such group. Every process of the group is gone when this returns.
    pub async fn delete(self: &Arc<Self>, target: Target<'_>) -> Result<DeleteOutcome, ArmError> {
        let key = target.key();
        let delay = self.config.timings.deleting;
        if !delay.is_zero() {
            let (operation, location) = {
                let mut groups = lock(&self.groups);
                let Some(entry) = groups.get_mut(&key) else {
                    return Ok(DeleteOutcome::NotFound);
                };
                let record = &mut entry.record;
                if record.runtime.provisioning != Provisioning::Deleting {
                    self.freeze_operations(record);
                    record.runtime.provisioning = Provisioning::Deleting;
                    record.runtime.generation += 1;
                    let this = self.clone();
                    let key = key.clone();
                    tokio::spawn(async move {
                        this.processes
                            .kill_group(&key, this.config.timings.kill_timeout)
                            .await;
                        tokio::time::sleep(delay).await;
                        this.remove(&key).await;
                    });
                }
                (
                    self.add_operation(record, OpKind::Delete),
                    record.location.clone(),
                )
            };
            return Ok(DeleteOutcome::Accepted(operation, location));
        }
        match self.remove(&key).await {
            Some(body) => Ok(DeleteOutcome::Deleted(Box::new(body))),
            None => Ok(DeleteOutcome::NotFound),
        }
    }

    /// Removes a group, kills its processes, forgets its record, logs and scratch volumes.
    async fn remove(self: &Arc<Self>, key: &GroupKey) -> Option<ContainerGroup> {
        let entry = lock(&self.groups).remove(key)?;
        self.freeze_operations(&entry.record);
        tracing::debug!(aci.group = %key.name, aci.resource_group = %key.resource_group, "container group deleted");
        let mut body = entry.record.render(View::Full);
        if body.properties.provisioning_state.as_deref() == Some("Deleting") {
            body.properties.provisioning_state = Some("Succeeded".into());
        }
        self.counters.deleted();
        if let Some(store) = &self.store {
            store.remove(key);
        }
        self.processes
            .kill_group(key, self.config.timings.kill_timeout)
            .await;
        if !self.config.instant {
            let dirs = [self.layout.run(key), self.layout.logs(key)];
            let _ = tokio::task::spawn_blocking(move || {
                for dir in dirs {
                    let _ = std::fs::remove_dir_all(dir);
                }
            })
            .await;
        }
        Some(body)
    }

    /// POST stop: kills the containers (the group shows `Stopped`); answers once they are gone.
    pub async fn stop(self: &Arc<Self>, target: Target<'_>) -> Result<(), ArmError> {
        let key = target.key();
        let actions = {
            let mut groups = lock(&self.groups);
            let entry = groups.get_mut(&key).ok_or_else(|| target.not_found())?;
            if entry.record.runtime.provisioning == Provisioning::Deleting {
                return Err(in_progress(target.name));
            }
            let actions = self.apply_now(entry, Input::Stop);
            entry.stopped_at = Some(Instant::now());
            actions
        };
        self.clone().run_actions(key, actions).await;
        Ok(())
    }

    /// POST start: starts a stopped (or finished) group again; `409 ContainerGroupTransitioning`
    /// inside the configured window after a stop.
    pub async fn start(self: &Arc<Self>, target: Target<'_>) -> Result<StartOutcome, ArmError> {
        let key = target.key();
        let transitioning = Duration::from_secs(self.faults().transitioning_seconds);
        let (outcome, actions) = {
            let mut groups = lock(&self.groups);
            let entry = groups.get_mut(&key).ok_or_else(|| target.not_found())?;
            if entry.record.runtime.provisioning == Provisioning::Deleting {
                return Err(in_progress(target.name));
            }
            if let Some(stopped) = entry.stopped_at
                && stopped.elapsed() < transitioning
            {
                return Err(ArmError::new(
                    StatusCode::CONFLICT,
                    "ContainerGroupTransitioning",
                    format!(
                        "The container group '{}' is still transitioning, please retry later.",
                        target.name
                    ),
                ));
            }
            if entry.record.runtime.is_active() {
                return Ok(StartOutcome::AlreadyRunning);
            }
            let actions = self.apply_now(entry, Input::Start);
            let operation = self.add_operation(&entry.record, OpKind::Start);
            (
                StartOutcome::Started(operation, entry.record.location.clone()),
                actions,
            )
        };
        self.clone().run_actions(key, actions).await;
        Ok(outcome)
    }

    /// POST restart: restarts every container in place (restart counts go on).
    pub async fn restart(
        self: &Arc<Self>,
        target: Target<'_>,
    ) -> Result<(String, String), ArmError> {
        let key = target.key();
        let (outcome, actions) = {
            let mut groups = lock(&self.groups);
            let entry = groups.get_mut(&key).ok_or_else(|| target.not_found())?;
            if entry.record.runtime.provisioning == Provisioning::Deleting {
                return Err(in_progress(target.name));
            }
            let actions = self.apply_now(entry, Input::Restart);
            let operation = self.add_operation(&entry.record, OpKind::Restart);
            ((operation, entry.record.location.clone()), actions)
        };
        self.clone().run_actions(key, actions).await;
        Ok(outcome)
    }

    /// Evicts a Spot group (attempt `generation`) `after` its create, once it runs: ACI's Spot
    /// eviction, restarted in place (`Input::Evicted`). A group that ended, was replaced or is
    /// gone by then is left alone; one not running yet is waited for, a while.
    async fn evict_later(self: Arc<Self>, key: GroupKey, generation: u64, after: Duration) {
        const TRIES: u32 = 20;
        for _ in 0..TRIES {
            tokio::time::sleep(after.max(Duration::from_millis(50))).await;
            let actions = {
                let mut groups = lock(&self.groups);
                let Some(entry) = groups.get_mut(&key) else {
                    return;
                };
                let runtime = &entry.record.runtime;
                if runtime.generation != generation || !runtime.is_active() {
                    return;
                }
                if runtime.state() != GroupState::Running {
                    continue;
                }
                self.apply_now(entry, Input::Evicted { generation })
            };
            self.counters.fault("eviction");
            tracing::info!(aci.group = %key.name, aci.resource_group = %key.resource_group, "Spot container group evicted");
            self.clone().run_actions(key, actions).await;
            return;
        }
    }

    /// Applies a user input under the lock; in instant mode a new attempt completes at once.
    fn apply_now(&self, entry: &mut Entry, input: Input) -> Vec<Action> {
        let now = OffsetDateTime::now_utc();
        self.freeze_operations(&entry.record);
        let mut actions = entry
            .record
            .runtime
            .apply(input, now, self.config.timings.backoff());
        if self.config.instant {
            let provisions = actions
                .iter()
                .any(|action| matches!(action, Action::Provision { .. }));
            actions.retain(|action| !matches!(action, Action::Provision { .. }));
            if provisions {
                entry.record.runtime.complete_instantly(now);
            }
        }
        self.persist(&entry.record);
        actions
    }
}

/// The longest `sleep N` (N seconds, fractions allowed) among a group's containers' commands
/// (`sleep N`, `/bin/sleep N`, or either behind `sh -c`): in instant mode with
/// `simulate_sleeps`, the group's containers run that long, without processes, then exit with
/// code 0.
pub fn simulated_run(spec: &ContainerGroup) -> Option<Duration> {
    let seconds = |command: &[String]| -> Option<f64> {
        let words: Vec<&str> = match command {
            [shell, flag, script] if shell.ends_with("sh") && flag == "-c" => {
                script.split_whitespace().collect()
            }
            _ => command.iter().map(String::as_str).collect(),
        };
        match words.as_slice() {
            ["sleep" | "/bin/sleep", n] => n
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0 && *n <= 366.0 * 86_400.0),
            _ => None,
        }
    };
    spec.properties
        .containers
        .iter()
        .filter_map(|c| seconds(c.properties.command.as_deref()?))
        .reduce(f64::max)
        .map(Duration::from_secs_f64)
}

fn cores_of(spec: &ContainerGroup) -> f64 {
    spec.properties
        .containers
        .iter()
        .filter_map(|container| container.properties.resources.as_ref())
        .map(|resources| resources.requests.cpu)
        .sum()
}

/// Drops what a client may send back from an earlier answer but does not set.
fn clear_read_only(spec: &mut ContainerGroup) {
    spec.id = None;
    spec.name = None;
    spec.kind = None;
    let properties = &mut spec.properties;
    properties.provisioning_state = None;
    properties.instance_view = None;
    properties.is_created_from_standby_pool = None;
    for container in &mut properties.containers {
        container.properties.instance_view = None;
    }
    for init in properties.init_containers.iter_mut().flatten() {
        init.properties.instance_view = None;
    }
    if let Some(ip) = &mut properties.ip_address {
        ip.ip = None;
        ip.fqdn = None;
    }
    if let Some(identity) = &mut spec.identity {
        identity.principal_id = None;
        identity.tenant_id = None;
        for value in identity
            .user_assigned_identities
            .iter_mut()
            .flat_map(|m| m.values_mut())
        {
            value.principal_id = None;
            value.client_id = None;
        }
    }
}

/// Gives a new group's identities their (read-only) ids, as ARM does.
fn fill_identity_ids(spec: &mut ContainerGroup) {
    let Some(identity) = &mut spec.identity else {
        return;
    };
    if matches!(
        identity.kind,
        Some(IdentityType::SystemAssigned | IdentityType::SystemAndUserAssigned)
    ) {
        identity.principal_id = Some(uuid::Uuid::new_v4().to_string());
        identity.tenant_id = Some("00000000-0000-0000-0000-000000000000".into());
    }
    for value in identity
        .user_assigned_identities
        .iter_mut()
        .flat_map(|m| m.values_mut())
    {
        value.principal_id = Some(uuid::Uuid::new_v4().to_string());
        value.client_id = Some(uuid::Uuid::new_v4().to_string());
    }
}

/// An update keeps the identity ids of the group it replaces.
fn keep_identity_ids(old: &ContainerGroup, new: &mut ContainerGroup) {
    match (&old.identity, &mut new.identity) {
        (Some(old), Some(new)) => {
            new.principal_id = old.principal_id.clone();
            new.tenant_id = old.tenant_id.clone();
            if let (Some(old_users), Some(new_users)) = (
                &old.user_assigned_identities,
                &mut new.user_assigned_identities,
            ) {
                for (id, value) in new_users.iter_mut() {
                    if let Some(previous) = old_users.get(id) {
                        *value = previous.clone();
                    }
                }
            }
        }
        (None, Some(_)) => fill_identity_ids(new),
        _ => {}
    }
}
