//! The scheduler: keeping schedules (the API's `PUT`, `GET`, `DELETE`, pause and resume) and the
//! tick that starts their runs.
//!
//! # A tick, for each schedule that is not suspended
//! 1. The latest scheduled time at or before now that is after `considered` is the one that may
//!    start; the earlier ones in between are counted as missed (Kubernetes, too, starts only the
//!    latest of several missed times).
//! 2. Older than `startingDeadline` (when set): it is missed as well, and `considered` moves to it.
//! 3. `forbid` with the previous run still live: it is held (`held` on the schedule says why) and
//!    `considered` stays just before it, so a later tick starts it once the previous run has
//!    ended, while it is within `startingDeadline`; a newer time passes it over (missed).
//!    `replace`: the previous run, if live, is terminated first.
//! 4. The run is submitted under [`super::run_id`] (idempotent), then `considered`, `lastRun` and
//!    the counts are saved by compare-and-swap; a lost CAS reloads and looks again, and finds the
//!    time dealt with or submits the same id again.
//!
//! # Guarantees
//! - At most one deployment per schedule and scheduled time, whatever the number of ticks, their
//!   overlap or their lateness (the id is the time's; `considered` only moves forward).
//! - A time before the schedule was created or last resumed never starts.
//! - One schedule's failure (unreadable document, storage error, a spec the settings now refuse)
//!   is reported and leaves the others to run.

use std::sync::Arc;

use serde::Serialize;

use super::document::{RequestTarget, ScheduleRequest};
use super::{
    ConcurrencyPolicy, Held, MAX_COUNTED_MISSES, MAX_SCHEDULES, Run, Schedule, Target, cron, run_id,
};
use crate::driver::templates::StoredTemplate;
use crate::driver::{Driver, DriverError};
use crate::engine::Event;
use crate::spec::Spec;
use crate::spec::template::Invocation;
use crate::store::{Schedules, StoreError, StoredSchedule};

/// How many times a schedule's save is tried again after a lost compare-and-swap.
const SAVE_TRIES: usize = 8;

/// Errors of the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Driver(#[from] DriverError),
    #[error("no schedule '{0}'")]
    NotFound(String),
    #[error("schedule '{name}' cannot be read: {reason}")]
    Unreadable { name: String, reason: String },
    #[error("at most {MAX_SCHEDULES} schedules are kept; delete one first")]
    TooMany,
    /// A template target that does not expand (no such template or version, bad parameters).
    #[error("{0}")]
    Template(#[from] crate::driver::templates::TemplateError),
    /// This Berth keeps no schedules (a driver without a schedule store).
    #[error("schedules are not kept by this Berth")]
    Unavailable,
    #[error("{0}")]
    BadSpec(String),
}

/// What one tick did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TickReport {
    /// Schedules looked at.
    pub schedules: usize,
    /// Deployments started (or found started by an earlier tick), by id.
    pub started: Vec<String>,
    /// Scheduled times counted as missed.
    pub missed: u64,
    /// Schedules whose due time `forbid` held.
    pub held: usize,
    /// Previous runs terminated by `replace`.
    pub replaced: Vec<String>,
    pub errors: Vec<String>,
}

/// Keeps schedules and starts their runs. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    driver: Driver,
    store: Arc<dyn Schedules>,
    /// `BERTH_PUBLIC_URL`: the callback base of every run when set (else the one the schedule
    /// was put through).
    public_url: Option<String>,
}

/// What one schedule's tick came to.
enum Outcome {
    Nothing,
    Started(String),
    Held,
    Missed,
    /// Its secrets were sealed again under the current key (then the tick goes on).
    Resealed,
}

/// What [`Scheduler::put`] did.
pub struct Put {
    pub schedule: Schedule,
    /// It did not exist before.
    pub created: bool,
    /// The key its runs' notifications are signed with, in clear: told when it is made (the
    /// schedule's creation), never again.
    pub notify_secret: Option<String>,
}

impl Scheduler {
    /// The scheduler of `driver`'s schedule store; `None` when it keeps none.
    pub fn of(driver: &Driver, public_url: Option<String>) -> Option<Self> {
        Some(Scheduler {
            store: driver.schedules()?,
            driver: driver.clone(),
            public_url,
        })
    }

    fn decode(stored: &StoredSchedule) -> Result<Schedule, ScheduleError> {
        Schedule::from_bytes(&stored.body).map_err(|reason| ScheduleError::Unreadable {
            name: stored.name.clone(),
            reason,
        })
    }

    /// The spec of a run of `target` under `id`, secrets put back.
    async fn run_spec(&self, target: &Target, id: &str) -> Result<Spec, ScheduleError> {
        match target {
            Target::Spec {
                spec,
                sealed,
                notify_urls,
            } => {
                let mut spec = (**spec).clone();
                spec.id = id.to_owned();
                if let Some(sealed) = sealed {
                    self.driver
                        .open_secrets(&mut spec, sealed)
                        .map_err(ScheduleError::BadSpec)?;
                }
                if let Some(urls) = notify_urls {
                    self.driver
                        .open_notify_urls(&mut spec, urls)
                        .map_err(ScheduleError::BadSpec)?;
                }
                Ok(spec)
            }
            Target::Template {
                template,
                version,
                parameters,
            } => template_spec(&self.driver, template, *version, parameters, id).await,
        }
    }

    /// Creates or replaces schedule `name`. A replaced schedule keeps its runs, counts,
    /// `considered`, suspension and signing key; a new one fires from now on.
    ///
    /// The signing key is told (in [`Put::notify_secret`]) by the first `PUT` whose target
    /// notifies, once: again only when the stored key no longer opens (a new one is made), or to
    /// a `PUT` whose own key was saved by a write whose answer was lost.
    pub async fn put(
        &self,
        name: &str,
        request: ScheduleRequest,
        callback_base: String,
    ) -> Result<Put, ScheduleError> {
        let (target, notifies) = match request.target {
            RequestTarget::Spec(mut spec) => {
                let notifies = !spec.notify.is_empty();
                let sealed = self.driver.seal_secrets(&mut spec);
                let notify_urls = self.driver.seal_notify_urls(&mut spec);
                let target = Target::Spec {
                    spec,
                    sealed,
                    notify_urls,
                };
                (target, notifies)
            }
            RequestTarget::Template {
                template,
                version,
                parameters,
            } => {
                // Expanded and checked now, as a `POST` of the same invocation is, so that a
                // schedule that cannot run is refused at once: the version read once.
                let invocation = Invocation {
                    id: Some(run_id(name, 0)),
                    template,
                    version,
                    parameters,
                };
                let found = self.driver.invoked(&invocation).await?;
                let spec = self
                    .driver
                    .expand_version(&found, invocation.clone(), String::new)?;
                self.driver
                    .check(&spec)
                    .map_err(|e| ScheduleError::BadSpec(e.to_string()))?;
                self.no_parameter_in_notify_urls(&found, &invocation)?;
                let target = Target::Template {
                    template: invocation.template,
                    version,
                    parameters: invocation.parameters,
                };
                (target, !spec.notify.is_empty())
            }
        };
        // Made once: the key of whichever try saves a schedule without a usable one.
        let key = crate::notify::new_key();
        let sealed_key = self.driver.seal(key.as_bytes());
        let mut first_found_none = None;
        for _ in 0..SAVE_TRIES {
            let now = self.driver.now();
            let stored = self.store.load_schedule(name).await?;
            let found_none = *first_found_none.get_or_insert(stored.is_none());
            // An unreadable stored schedule is replaced whole.
            let before = stored.as_ref().and_then(|s| Self::decode(s).ok());
            if stored.is_none()
                && self.store.list_schedules(MAX_SCHEDULES).await?.len() >= MAX_SCHEDULES
            {
                return Err(ScheduleError::TooMany);
            }
            // The stored key, when a key of the ring opens it and it is not this call's own.
            let opened = before.as_ref().and_then(|b| {
                let sealed = b.notify_key.clone()?;
                Some((self.driver.open_key(&sealed)?, sealed, b.notify_key_told))
            });
            let ours = opened.as_ref().is_some_and(|(k, _, _)| *k == key);
            let (clear, notify_key, told_before) = match opened {
                Some((clear, sealed, told)) if !ours => (clear, sealed, told),
                _ => (key.clone(), sealed_key.clone(), false),
            };
            let tell = notifies && !told_before;
            let fresh = Schedule {
                name: name.to_owned(),
                cron: request.cron.clone(),
                time_zone: request.time_zone.clone(),
                concurrency_policy: request.concurrency_policy,
                starting_deadline_ms: request.starting_deadline_ms,
                target: target.clone(),
                suspended: false,
                created: now,
                updated: now,
                considered: now,
                callback_base: callback_base.clone(),
                last_run: None,
                missed_runs: 0,
                last_missed: None,
                held: None,
                notify_key: Some(notify_key),
                notify_key_told: told_before || tell,
            };
            let next = match &before {
                Some(b) => Schedule {
                    suspended: b.suspended,
                    created: b.created,
                    considered: b.considered,
                    last_run: b.last_run.clone(),
                    missed_runs: b.missed_runs,
                    last_missed: b.last_missed,
                    ..fresh
                },
                None => fresh,
            };
            let expected = stored.as_ref().map(|s| &s.version);
            match self
                .store
                .save_schedule(name, &next.to_bytes(), expected)
                .await
            {
                Ok(_) => {
                    return Ok(Put {
                        schedule: next,
                        created: stored.is_none() || (ours && found_none),
                        notify_secret: tell.then_some(clear),
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(name.to_owned()).into())
    }

    /// Refuses a string parameter given to a template target that ends up in a `notify` URL: a
    /// schedule keeps its parameters in clear and shows them, and a webhook URL often carries
    /// its secret. Each is tried with a URL-shaped probe in its place.
    fn no_parameter_in_notify_urls(
        &self,
        found: &StoredTemplate,
        invocation: &Invocation,
    ) -> Result<(), ScheduleError> {
        let probe = format!(
            "https://berth-probe-{0}.invalid/{0}",
            uuid::Uuid::new_v4().simple()
        );
        for (parameter, value) in &invocation.parameters {
            if !value.is_string() {
                continue;
            }
            let mut probed = invocation.clone();
            probed
                .parameters
                .insert(parameter.clone(), serde_json::Value::String(probe.clone()));
            // A parameter whose value the template restricts (or types) cannot take the probe:
            // its values are the template's own, not secrets of the schedule.
            let Ok(spec) = self.driver.expand_version(found, probed, String::new) else {
                continue;
            };
            if spec.notify.iter().any(|n| n.url.contains(&probe[8..])) {
                return Err(ScheduleError::BadSpec(format!(
                    "parameters.{parameter}: ends up in a notify URL, which a schedule would keep and show in clear; put the webhook URL in the template, or give the schedule a spec"
                )));
            }
        }
        Ok(())
    }

    /// Schedule `name`.
    pub async fn get(&self, name: &str) -> Result<Schedule, ScheduleError> {
        let stored = self.store.load_schedule(name).await?;
        let stored = stored.ok_or_else(|| ScheduleError::NotFound(name.to_owned()))?;
        Self::decode(&stored)
    }

    /// Every schedule, by name; the ones this Berth cannot read apart, with why.
    pub async fn list(&self) -> Result<(Vec<Schedule>, Vec<String>), ScheduleError> {
        let mut readable = Vec::new();
        let mut unreadable = Vec::new();
        for stored in self.store.list_schedules(MAX_SCHEDULES).await? {
            match Self::decode(&stored) {
                Ok(s) => readable.push(s),
                Err(e) => unreadable.push(e.to_string()),
            }
        }
        Ok((readable, unreadable))
    }

    /// Deletes schedule `name` (its runs are left as they are).
    pub async fn delete(&self, name: &str) -> Result<(), ScheduleError> {
        match self.store.delete_schedule(name).await? {
            true => Ok(()),
            false => Err(ScheduleError::NotFound(name.to_owned())),
        }
    }

    /// Pauses (`true`) or resumes a schedule. Resuming fires from now on: the times that passed
    /// while it was paused are not started, nor counted as missed.
    pub async fn suspend(&self, name: &str, suspended: bool) -> Result<Schedule, ScheduleError> {
        for _ in 0..SAVE_TRIES {
            let stored = self
                .store
                .load_schedule(name)
                .await?
                .ok_or_else(|| ScheduleError::NotFound(name.to_owned()))?;
            let mut schedule = Self::decode(&stored)?;
            if schedule.suspended == suspended {
                return Ok(schedule);
            }
            let now = self.driver.now();
            schedule.suspended = suspended;
            schedule.updated = now;
            schedule.held = None;
            if !suspended {
                schedule.considered = schedule.considered.max(now);
            }
            let saved = self
                .store
                .save_schedule(name, &schedule.to_bytes(), Some(&stored.version))
                .await;
            match saved {
                Ok(_) => return Ok(schedule),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(name.to_owned()).into())
    }

    /// One tick over every schedule.
    pub async fn run_once(&self) -> TickReport {
        let mut report = TickReport::default();
        let stored = match self.store.list_schedules(MAX_SCHEDULES).await {
            Ok(stored) => stored,
            Err(e) => {
                report.errors.push(format!("listing schedules: {e}"));
                return report;
            }
        };
        for schedule in stored {
            report.schedules += 1;
            let name = schedule.name.clone();
            match self.tick_one(schedule, &mut report).await {
                Ok(Outcome::Started(id)) => report.started.push(id),
                Ok(Outcome::Held) => report.held += 1,
                Ok(Outcome::Nothing | Outcome::Missed | Outcome::Resealed) => {}
                Err(e) => {
                    tracing::warn!(schedule.name = %name, error = %e, "schedule tick failed");
                    report.errors.push(format!("schedule {name}: {e}"));
                }
            }
        }
        report
    }

    /// One schedule's tick, from its loaded document; reloads after a lost CAS.
    async fn tick_one(
        &self,
        mut stored: StoredSchedule,
        report: &mut TickReport,
    ) -> Result<Outcome, ScheduleError> {
        for _ in 0..SAVE_TRIES {
            let schedule = Self::decode(&stored)?;
            let decided = match self.resealed(&schedule) {
                Some(resealed) => Some((resealed, Outcome::Resealed)),
                None => self.decide(&schedule, report).await?,
            };
            let Some((next, outcome)) = decided else {
                return Ok(Outcome::Nothing);
            };
            let saved = self
                .store
                .save_schedule(&schedule.name, &next.to_bytes(), Some(&stored.version))
                .await;
            match saved {
                Ok(version) if matches!(outcome, Outcome::Resealed) => {
                    tracing::info!(schedule.name = %schedule.name, "schedule's secrets sealed again under the current key");
                    stored = StoredSchedule {
                        body: next.to_bytes().into(),
                        version,
                        ..stored
                    };
                }
                Ok(_) => return Ok(outcome),
                Err(StoreError::Conflict(_)) => {
                    let reloaded = self.store.load_schedule(&schedule.name).await?;
                    match reloaded {
                        Some(s) => stored = s,
                        None => return Ok(Outcome::Nothing),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(stored.name).into())
    }

    /// `schedule` with its spec's secrets sealed again under the current key, when an older key
    /// sealed them (so that the previous key can be retired).
    fn resealed(&self, schedule: &Schedule) -> Option<Schedule> {
        let key = schedule
            .notify_key
            .as_deref()
            .and_then(|k| self.driver.resealed(k));
        let target = match &schedule.target {
            Target::Spec {
                spec,
                sealed,
                notify_urls,
            } => {
                let again = |s: &Option<String>| s.as_deref().and_then(|s| self.driver.resealed(s));
                let (secrets, urls) = (again(sealed), again(notify_urls));
                (secrets.is_some() || urls.is_some()).then(|| Target::Spec {
                    spec: spec.clone(),
                    sealed: secrets.or_else(|| sealed.clone()),
                    notify_urls: urls.or_else(|| notify_urls.clone()),
                })
            }
            Target::Template { .. } => None,
        };
        if key.is_none() && target.is_none() {
            return None;
        }
        Some(Schedule {
            target: target.unwrap_or_else(|| schedule.target.clone()),
            notify_key: key.or_else(|| schedule.notify_key.clone()),
            ..schedule.clone()
        })
    }

    /// What a tick does to `schedule` now: the schedule to save and what it came to, or `None`
    /// when nothing is due (or nothing changed).
    async fn decide(
        &self,
        schedule: &Schedule,
        report: &mut TickReport,
    ) -> Result<Option<(Schedule, Outcome)>, ScheduleError> {
        if schedule.suspended {
            return Ok(None);
        }
        let now = self.driver.now();
        let expression = cron::Cron::parse(&schedule.cron).map_err(ScheduleError::BadSpec)?;
        let tz = cron::time_zone(&schedule.time_zone).map_err(ScheduleError::BadSpec)?;
        let Some(latest) = expression
            .last_at_or_before(&tz, now)
            .filter(|t| *t > schedule.considered)
        else {
            return Ok(None);
        };
        let (passed_over, last_passed) =
            expression.count_between(&tz, schedule.considered, latest, MAX_COUNTED_MISSES);
        let mut next = schedule.clone();
        next.missed_runs = next.missed_runs.saturating_add(passed_over);
        next.last_missed = last_passed.or(next.last_missed);
        let late = schedule
            .starting_deadline_ms
            .is_some_and(|deadline| now - latest > deadline);
        if late {
            tracing::info!(schedule.name = %schedule.name, scheduled = %crate::clock::rfc3339(latest), "scheduled time missed: past startingDeadline");
            next.missed_runs = next.missed_runs.saturating_add(1);
            next.last_missed = Some(latest);
            next.considered = latest;
            next.held = None;
            report.missed += passed_over + 1;
            return Ok(Some((next, Outcome::Missed)));
        }
        report.missed += passed_over;
        let id = run_id(&schedule.name, latest);
        let previous = schedule
            .last_run
            .as_ref()
            .map(|r| r.deployment_id.clone())
            .filter(|p| *p != id);
        let live = match &previous {
            Some(p) if schedule.concurrency_policy != ConcurrencyPolicy::Allow => {
                self.is_live(p).await?
            }
            _ => false,
        };
        if live && schedule.concurrency_policy == ConcurrencyPolicy::Forbid {
            let held = Held {
                scheduled: latest,
                reason: format!(
                    "concurrencyPolicy forbid: the previous run {} is still live",
                    previous.unwrap_or_default()
                ),
            };
            // Held just before the time, so it is looked at again; unchanged: nothing to save.
            if next.held.as_ref() == Some(&held) && passed_over == 0 {
                return Ok(None);
            }
            next.held = Some(held);
            next.considered = latest - 1;
            return Ok(Some((next, Outcome::Held)));
        }
        if live && let Some(previous) = &previous {
            let reason = format!("replaced by the scheduled run {id}");
            match self
                .driver
                .raise(previous, Event::Terminate { reason })
                .await
            {
                Ok(_) | Err(DriverError::Ended { .. } | DriverError::NotFound(_)) => {
                    report.replaced.push(previous.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.start(schedule, &id).await?;
        next.considered = latest;
        next.held = None;
        next.last_run = Some(Run {
            scheduled: latest,
            deployment_id: id.clone(),
            started: now,
        });
        Ok(Some((next, Outcome::Started(id))))
    }

    /// Whether deployment `id` has not ended (a purged or unreadable one has).
    async fn is_live(&self, id: &str) -> Result<bool, ScheduleError> {
        match self.driver.load(id).await {
            Ok(d) => Ok(d.is_some_and(|d| !d.status.is_terminal())),
            Err(DriverError::Store(StoreError::Unreadable { .. })) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Submits the run `id` of `schedule` (a run already there, whatever its spec, is the one).
    async fn start(&self, schedule: &Schedule, id: &str) -> Result<(), ScheduleError> {
        let spec = self.run_spec(&schedule.target, id).await?;
        self.driver
            .check(&spec)
            .map_err(|e| ScheduleError::BadSpec(format!("spec.{e}")))?;
        let base = self
            .public_url
            .clone()
            .unwrap_or_else(|| schedule.callback_base.clone());
        // Opened only for a run that notifies: a schedule without `notify` runs whatever
        // became of its key.
        let key = match &schedule.notify_key {
            Some(sealed) if !spec.notify.is_empty() => {
                Some(self.driver.open_key(sealed).ok_or_else(|| {
                    ScheduleError::BadSpec(
                        "the schedule's notification key cannot be opened (sealed under a key this Berth lacks); PUT the schedule again for a new one".into(),
                    )
                })?)
            }
            _ => None,
        };
        match self.driver.submit_keyed(spec, base, key.as_deref()).await {
            Ok(submitted) => {
                if !submitted.existed {
                    tracing::info!(schedule.name = %schedule.name, deployment.id = %id, "scheduled run started");
                }
                Ok(())
            }
            // Started by an earlier tick under a spec the schedule had then.
            Err(DriverError::SpecConflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The spec a template target expands to for run `id`: the template invocation
/// `{id, template, version, parameters}` expanded as `POST /api/deployments` expands one (the
/// latest version when `version` is absent, at each run).
pub async fn template_spec(
    driver: &Driver,
    template: &str,
    version: Option<u32>,
    parameters: &serde_json::Map<String, serde_json::Value>,
    id: &str,
) -> Result<Spec, ScheduleError> {
    let invocation = crate::spec::template::Invocation {
        id: Some(id.to_owned()),
        template: template.to_owned(),
        version,
        parameters: parameters.clone(),
    };
    Ok(driver.expand(invocation, || id.to_owned()).await?)
}
