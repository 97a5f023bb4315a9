//! Saving containers' logs whole: read while they run, stitched after they exit.
//!
//! ACI keeps only the last 1,000 lines or 16 KB of a stopped container's log (4 MB while it
//! runs). So every look that finds a container running also reads its log (with timestamps),
//! and once more than half of that cap is unsaved, stitches it onto the saved log
//! ([`crate::saved_log`]). The capture after the exit stitches the rest. A log that grows fast is
//! looked at again before the unsaved part could pass the cap ([`Event::LogsGrowing`]).
//!
//! # Guarantees
//! - A read of a running log takes only a spare token of the ARM read budget: it never delays a
//!   look. A read that finds no spare token is skipped (metric `berth_arm_read_budget_waits`,
//!   `kind="skipped"`), and a gap it causes is noted, not hidden.
//! - Each span ACI dropped before Berth read it is noted in the saved log where it is, in history
//!   and in the status (`LogsTruncated`, with the span), and counted (`berth_logs_truncated`).
//!   The capture after the exit finds every note in the saved log again, so a note whose step was
//!   lost is still recorded.
//! - Capture stays safe to repeat: stitching the same read twice adds nothing.

use crate::arm::ArmError;
use crate::engine::{ActionKind, Deployment, Event, Observation, policy};
use crate::saved_log::{self, Stitched};

use super::Driver;

/// Where the saved logs of running containers end (`deployment/instance/container`), as this
/// process last saved them: a hint that spares reading the saved log to learn how much of a
/// read is unsaved. A stale or missing entry costs a save too many, never a line: each save
/// stitches onto the saved log as it is.
#[derive(Default)]
pub(super) struct Cursors(std::sync::Mutex<std::collections::HashMap<String, saved_log::Cursor>>);

/// Entries [`Cursors`] holds at most; past that it starts again.
const MOST_CURSORS: usize = 10_000;

impl Cursors {
    fn get(&self, key: &str) -> Option<saved_log::Cursor> {
        self.lock().get(key).copied()
    }

    fn set(&self, key: String, cursor: Option<saved_log::Cursor>) {
        let mut map = self.lock();
        if map.len() >= MOST_CURSORS {
            map.clear();
        }
        match cursor {
            Some(cursor) => map.insert(key, cursor),
            None => map.remove(&key),
        };
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, saved_log::Cursor>> {
        // A map of plain values: a panic elsewhere cannot leave it half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Driver {
    /// Reads the logs of `instance`'s running containers (seen in `observation`) and saves them
    /// when enough is unsaved; events for what the reads found.
    pub(super) async fn read_running_logs(
        &self,
        d: &Deployment,
        instance: &str,
        observation: &Observation,
    ) -> Vec<Event> {
        let Some(group) = group_of(d, instance).filter(|_| d.spec.capture_logs) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let mut within: Option<i64> = None;
        for container in observation
            .containers
            .iter()
            .filter(|c| c.state == "Running")
        {
            let read = match self.arm.stamped_logs(instance, &container.name, true).await {
                Ok(Some(read)) => read,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(deployment.id = %d.id, aci.group = %instance, container = %container.name, error = %e, "running log not read");
                    continue;
                }
            };
            let key = cursor_key(d, instance, &container.name);
            let known = self.log_cursors.get(&key);
            let (lines, bytes, end, rate) = saved_log::unsaved(known, &read);
            let (save_lines, save_bytes) = policy::LOG_SAVE_AT;
            let mut unsaved = (lines, bytes);
            if lines >= save_lines || bytes >= save_bytes {
                match self
                    .stitch_saved(d, group, instance, &container.name, &read, false)
                    .await
                {
                    Ok(stitched) => {
                        events.extend(truncated(instance, &container.name, &stitched));
                        self.log_cursors
                            .set(key, saved_log::cursor(&stitched.text).or(end));
                        unsaved = (0, 0);
                    }
                    Err(e) => {
                        tracing::warn!(deployment.id = %d.id, aci.group = %instance, container = %container.name, error = %e, "running log not saved");
                    }
                }
            }
            if let Some(again) = rate.and_then(|rate| policy::log_read_within(rate, unsaved)) {
                within = Some(within.map_or(again, |w| w.min(again)));
            }
        }
        if let Some(within) = within {
            events.push(Event::LogsGrowing {
                instance: instance.to_owned(),
                within,
            });
        }
        events
    }

    /// Saves the logs of `instance`'s stopped `containers`: the last read, stitched onto what was
    /// saved while they ran.
    pub(super) async fn capture_logs(
        &self,
        d: &Deployment,
        instance: &str,
        containers: &[String],
    ) -> Vec<Event> {
        let group = group_of(d, instance).unwrap_or_default();
        let failed = |error: String, transient: bool| Event::Failed {
            instance: instance.to_owned(),
            action: ActionKind::CaptureLogs,
            error,
            transient,
        };
        let mut missing = Vec::new();
        let mut events = Vec::new();
        for container in containers {
            let read = match self.arm.stamped_logs(instance, container, false).await {
                Ok(read) => read.unwrap_or_default(),
                Err(ArmError::NotFound { code, .. }) if code == "ContainerLogNotAvailable" => {
                    missing.push(container.clone());
                    String::new()
                }
                Err(e) if e.is_not_found() => {
                    return vec![Event::Missing {
                        instance: instance.to_owned(),
                    }];
                }
                Err(e) => return vec![failed(e.to_string(), e.is_transient())],
            };
            match self
                .stitch_saved(d, group, instance, container, &read, true)
                .await
            {
                Ok(stitched) => {
                    self.log_cursors
                        .set(cursor_key(d, instance, container), None);
                    events.extend(noted(instance, container, &stitched.text));
                }
                Err(e) => return vec![failed(e.to_string(), true)],
            }
        }
        let note = (!missing.is_empty())
            .then(|| format!("no logs for {} (never started)", missing.join(", ")));
        events.push(Event::LogsSaved {
            instance: instance.to_owned(),
            note,
        });
        events
    }

    /// Stitches `read` onto the log saved for `instance`'s `container` and saves the result.
    async fn stitch_saved(
        &self,
        d: &Deployment,
        group: &str,
        instance: &str,
        container: &str,
        read: &str,
        stopped: bool,
    ) -> Result<Stitched, crate::store::StoreError> {
        let saved = self
            .store
            .get_instance_logs(&d.id, group, instance, container)
            .await?;
        let stitched = saved_log::stitch(saved.as_deref(), read, stopped);
        self.store
            .put_logs(&d.id, group, instance, container, &stitched.text)
            .await?;
        if let Some(gap) = &stitched.gap {
            tracing::warn!(deployment.id = %d.id, aci.group = %instance, container, gap, "log lines missing");
            crate::metrics::logs_truncated(1);
        }
        Ok(stitched)
    }
}

/// The [`Cursors`] key of `instance`'s `container` in `d`.
fn cursor_key(d: &Deployment, instance: &str, container: &str) -> String {
    format!("{}/{instance}/{container}", d.id)
}

/// The spec group name of `instance`.
fn group_of<'a>(d: &'a Deployment, instance: &str) -> Option<&'a str> {
    d.instances
        .iter()
        .find(|i| i.aci_name == instance)
        .map(|i| d.spec.groups[i.slot].name.as_str())
}

/// The `LogsTruncated` of a gap a read found.
fn truncated(instance: &str, container: &str, stitched: &Stitched) -> Option<Event> {
    stitched.gap.as_ref().map(|gap| Event::LogsTruncated {
        instance: instance.to_owned(),
        container: container.to_owned(),
        detail: gap.clone(),
    })
}

/// A `LogsTruncated` for each gap noted in a saved log.
fn noted(instance: &str, container: &str, saved: &str) -> Vec<Event> {
    saved_log::gaps(saved)
        .into_iter()
        .map(|gap| Event::LogsTruncated {
            instance: instance.to_owned(),
            container: container.to_owned(),
            detail: gap.to_owned(),
        })
        .collect()
}
