//! What happens to a deployment (events, the engine's input) and what Berth must do about it
//! (actions, its output).

use serde_json::Value;

use super::looks::LookPlan;
use super::state::{Millis, Observation};

/// An input to [`super::apply`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A step is due (a step message arrived, or a worker carries on): look at things.
    Wake,
    /// ARM accepted the create of an instance.
    Created { instance: String },
    /// ARM described an instance, as of `at` (when the look began; older looks than the last
    /// recorded one are stale and ignored).
    Observed {
        instance: String,
        observation: Observation,
        at: Millis,
    },
    /// ARM does not know the instance (404).
    Missing { instance: String },
    /// A look at the instance was put off, without reading ARM: ARM reads are over their budget
    /// and a read is reserved for it at `until`. Not a failure: nothing is counted or backed off.
    LookDeferred { instance: String, until: Millis },
    /// The instance was stopped.
    Stopped { instance: String },
    /// Its containers' logs were saved (`note` says what could not be had).
    LogsSaved {
        instance: String,
        note: Option<String>,
    },
    /// A running container's log was read and grows fast enough that it must be read again
    /// within `within` milliseconds, before ACI's stopped-log cap could drop unsaved lines.
    LogsGrowing { instance: String, within: Millis },
    /// Lines of a container's log are missing from what was saved (`detail` says which span and
    /// why): ACI did not keep them until Berth read them.
    LogsTruncated {
        instance: String,
        container: String,
        detail: String,
    },
    /// The instance was deleted.
    Deleted { instance: String },
    /// An action on an instance failed.
    Failed {
        instance: String,
        action: ActionKind,
        error: String,
        transient: bool,
    },
    /// An event raised through the API or a callback (`completed`, `heartbeat`, `teardown`, ...).
    Raised { name: String, payload: Value },
    /// An instance's own `completed` callback (its URL names it), with its exit code and the
    /// small JSON result it hands on.
    InstanceCompleted {
        instance: String,
        exit_code: Option<i64>,
        output: Option<Value>,
    },
    /// Stop and clean up now.
    Terminate { reason: String },
    /// The instance's create was not sent: it does not fit the capacity left (`reason` says
    /// which), and is tried again at `retry_at`. Not a failure: nothing is counted or backed off.
    CreateHeld {
        instance: String,
        reason: String,
        retry_at: Millis,
    },
    /// An instance's own `heartbeat` callback (its URL names it): its containers are alive.
    Heartbeat { instance: String },
    /// ARM's view of the instance reports a Spot eviction (`reason`: what it said).
    Evicted { instance: String, reason: String },
    /// ARM refused the instance's create for capacity in its region (`ServiceUnavailable`,
    /// `SkuNotAvailable`, a regional quota): nothing was created.
    CapacityRefused { instance: String, reason: String },
    /// How to look at the instance while its containers' exit is watched (told with its
    /// `Created`: the driver's run-time estimate for its group spec, or a fixed interval).
    LooksPlanned { instance: String, plan: LookPlan },
    /// Notification `id` was delivered: its receiver answered `status` (2xx).
    NotifySent { id: String, status: u16 },
    /// An attempt to deliver notification `id` failed (`error`: the receiver's status or why
    /// nothing was answered); `permanent`: trying again will not help.
    NotifyFailed {
        id: String,
        error: String,
        permanent: bool,
    },
}

impl Event {
    /// Events from outside a step (API calls): they record, then hand the work to a step.
    pub fn is_external(&self) -> bool {
        matches!(
            self,
            Event::Raised { .. }
                | Event::InstanceCompleted { .. }
                | Event::Terminate { .. }
                | Event::Heartbeat { .. }
        )
    }

    /// Results a step may act on before it saves them, because the action that produced them is
    /// safe to repeat should the step die first, and because they come after the decision they
    /// serve was saved: saved logs and their gaps (a capture stitches onto the same blob, and
    /// finds the gaps noted in it again) and a stopped group
    /// (stopping it again changes nothing). So a finished job's group is stopped, its logs
    /// captured and the group deleted under one save; the logs are in storage before the delete
    /// is sent either way.
    pub fn may_go_unsaved(&self) -> bool {
        matches!(
            self,
            Event::LogsSaved { .. } | Event::LogsTruncated { .. } | Event::Stopped { .. }
        )
    }
}

/// The kinds of action, for [`Event::Failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Create,
    Observe,
    Stop,
    CaptureLogs,
    Delete,
}

/// Work to do after the checkpoint that asked for it is saved. Every action is idempotent.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the instance's container group. `check_first`: an earlier claim may have created it
    /// already, so look before creating.
    Create {
        instance: String,
        slot: usize,
        /// The instance's index in its group's fan-out.
        index: u32,
        check_first: bool,
    },
    /// Read the instance's state from ARM.
    Observe { instance: String },
    /// Stop the instance's containers.
    Stop { instance: String },
    /// Save the logs of the instance's containers.
    CaptureLogs {
        instance: String,
        containers: Vec<String>,
    },
    /// Delete the instance's container group.
    Delete { instance: String },
    /// Send a step message for `seq`, due at `at`.
    Schedule { at: Millis, seq: u64 },
    /// POST notification `id` (see [`super::notify`]) to its receiver.
    Notify { id: String },
}
