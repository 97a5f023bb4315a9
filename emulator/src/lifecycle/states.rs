//! The values the state machine moves between: provisioning and group states, each container's
//! phase and runtime view, and the helpers that write ACI's container states and events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{ContainerState, Event};

/// How many events one container or group keeps (older ones are dropped).
const MAX_EVENTS: usize = 50;
/// The exit code reported for a process killed with SIGKILL (128 + 9), as `docker run` does.
pub const KILLED_EXIT_CODE: i32 = 137;

/// `properties.provisioningState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Provisioning {
    /// Accepted, nothing done yet.
    Pending,
    /// Pulling images and mounting volumes.
    Creating,
    /// Every container was started.
    Succeeded,
    /// An image or a volume could not be provided.
    Failed,
    /// Being deleted (only with a delete delay).
    Deleting,
}

impl Provisioning {
    /// The ARM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Provisioning::Pending => "Pending",
            Provisioning::Creating => "Creating",
            Provisioning::Succeeded => "Succeeded",
            Provisioning::Failed => "Failed",
            Provisioning::Deleting => "Deleting",
        }
    }

    /// Whether the operation is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Provisioning::Succeeded | Provisioning::Failed)
    }
}

/// The group's `instanceView.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// Not every container has started yet (or provisioning failed before they could).
    Pending,
    /// At least one container runs or will be restarted.
    Running,
    /// Stopped by the user.
    Stopped,
    /// Ran to completion (`Never`/`OnFailure`, every exit 0).
    Succeeded,
    /// Ran to completion with a non-zero exit (`Never` only).
    Failed,
}

impl GroupState {
    /// The ARM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Pending => "Pending",
            GroupState::Running => "Running",
            GroupState::Stopped => "Stopped",
            GroupState::Succeeded => "Succeeded",
            GroupState::Failed => "Failed",
        }
    }
}

/// Where one container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Not started in this generation.
    NotStarted,
    /// Its process runs.
    Running,
    /// Waiting out the crash-loop back-off before a restart.
    BackOff,
    /// Exited for good (with this code).
    Exited(i32),
}

/// The runtime view of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRun {
    /// The container's name.
    pub name: String,
    /// Its image, for event messages.
    pub image: String,
    /// Where it is.
    pub phase: Phase,
    pub restart_count: i32,
    /// `currentState`.
    pub current: Option<ContainerState>,
    /// `previousState`.
    pub previous: Option<ContainerState>,
    /// The container's events.
    pub events: Vec<Event>,
    /// Whether it ever started, so logs exist (else `ContainerLogNotAvailable`).
    pub logs_available: bool,
    /// How many back-offs in a row (the exponent of the delay).
    pub backoff_step: u32,
}

/// Why provisioning failed, for the operation-status body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// An ARM-style code (`InaccessibleImage`, `FailedMount`).
    pub code: String,
    pub message: String,
}

/// Which container an input or action is about: an init container or a (main) container, by
/// index in the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    /// `initContainers[i]`: run one after another, each to completion, before the containers.
    Init(usize),
    /// `containers[i]`.
    Main(usize),
}

pub(super) fn waiting(detail: &str) -> ContainerState {
    ContainerState {
        state: Some("Waiting".into()),
        detail_status: Some(detail.into()),
        ..ContainerState::default()
    }
}

pub(super) fn running(at: OffsetDateTime) -> ContainerState {
    ContainerState {
        state: Some("Running".into()),
        start_time: Some(at),
        detail_status: Some(String::new()),
        ..ContainerState::default()
    }
}

pub(super) fn terminated(
    started: Option<OffsetDateTime>,
    at: OffsetDateTime,
    code: i32,
    detail: &str,
) -> ContainerState {
    ContainerState {
        state: Some("Terminated".into()),
        start_time: started,
        exit_code: Some(code),
        finish_time: Some(at),
        detail_status: Some(detail.into()),
    }
}

/// Records an event, folding it into an earlier one with the same name and message (ACI's
/// `count`/`firstTimestamp`/`lastTimestamp`).
pub fn push_event(
    events: &mut Vec<Event>,
    at: OffsetDateTime,
    name: &str,
    message: &str,
    kind: &str,
) {
    if let Some(event) = events.iter_mut().find(|event| {
        event.name.as_deref() == Some(name) && event.message.as_deref() == Some(message)
    }) {
        event.count = Some(event.count.unwrap_or(1).saturating_add(1));
        event.last_timestamp = Some(at);
        return;
    }
    if events.len() >= MAX_EVENTS {
        events.remove(0);
    }
    events.push(Event {
        count: Some(1),
        first_timestamp: Some(at),
        last_timestamp: Some(at),
        name: Some(name.into()),
        message: Some(message.into()),
        kind: Some(kind.into()),
    });
}
