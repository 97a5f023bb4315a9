//! Live logs: where a container's log is read from while its group runs (ARM) and after (the
//! saved log), and the slots of the API's log follows.
//!
//! # Guarantees
//! - A log is read from ARM only while its group's instance is live: created, not deleted, its
//!   logs not saved yet. Every such read takes the ARM read budget like Berth's own looks.
//! - At most [`MAX_FOLLOWS`] follows hold a slot at once ([`Driver::follow_slot`]).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Driver, DriverError};
use crate::arm::ArmError;
use crate::engine::{Deployment, Instance, Phase};

/// Log follows served at once; past that a follow is refused.
pub const MAX_FOLLOWS: usize = 64;

/// Where a container's log is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// The group's instance runs under this ARM name: ARM has the log. `ended` says no new line
    /// will come (its compute has stopped, or the deployment is done).
    Live { instance: String, ended: bool },
    /// The instance has ended (or never ran): its saved log, if any.
    Saved,
}

/// The instance `group` names: an ARM name, or a spec group name's latest instance.
fn named<'a>(d: &'a Deployment, group: &str) -> Option<&'a Instance> {
    if let Some(instance) = d.instances.iter().find(|i| i.aci_name == group) {
        return Some(instance);
    }
    let slot = d.spec.groups.iter().position(|g| g.name == group)?;
    d.instances.iter().rev().find(|i| i.slot == slot)
}

/// Where the log of `group` (as [`named`] reads it) is now.
pub fn source(d: &Deployment, group: &str) -> LogSource {
    match named(d, group) {
        Some(i) if i.created.is_some() && !i.deleted && !i.logs_saved => LogSource::Live {
            instance: i.aci_name.clone(),
            ended: i.ended.is_some() || d.phase == Phase::Done,
        },
        _ => LogSource::Saved,
    }
}

/// The slots of the log follows, shared by the clones of one driver.
pub(super) fn follow_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_FOLLOWS))
}

impl Driver {
    /// Where the log of deployment `id`'s `group` is now; `group` is a spec group name (its latest
    /// instance) or an ARM name.
    pub async fn log_source(&self, id: &str, group: &str) -> Result<LogSource, DriverError> {
        let d = self
            .load(id)
            .await?
            .ok_or_else(|| DriverError::NotFound(id.to_owned()))?;
        Ok(source(&d, group))
    }

    /// A live instance's container log from ARM (`tail` lines, or all ACI keeps; each line with
    /// its timestamp when `timestamps`), under the read budget: `None` when ARM has no such group
    /// or container, empty when the container has not started yet.
    pub async fn live_logs(
        &self,
        instance: &str,
        container: &str,
        tail: Option<u32>,
        timestamps: bool,
    ) -> Result<Option<String>, ArmError> {
        match self.arm.logs(instance, container, tail, timestamps).await {
            Ok(content) => Ok(Some(content)),
            Err(ArmError::NotFound { code, .. }) if code == "ContainerLogNotAvailable" => {
                Ok(Some(String::new()))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A slot for one log follow, held until the permit drops; `None` when all
    /// [`MAX_FOLLOWS`] are taken.
    pub fn follow_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.follows.clone().try_acquire_owned().ok()
    }

    /// Log follows holding a slot now.
    pub fn follows(&self) -> usize {
        MAX_FOLLOWS - self.follows.available_permits()
    }
}
