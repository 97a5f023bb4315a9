//! What the state machine is told (`Input`) and what it asks for (`Action`), with the crash-loop
//! back-off it computes delays from.

use std::time::Duration;

use time::OffsetDateTime;

use super::Slot;

/// Timing knobs the machine needs (back-off delays).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first restart delay.
    pub initial: Duration,
    /// The longest restart delay.
    pub max: Duration,
}

/// What happened, in the `generation` it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The Pending delay is over: start creating.
    Begin {
        /// The generation this belongs to.
        generation: u64,
    },
    /// Every image was resolved to a command.
    Pulled { generation: u64 },
    /// A container's image stands for nothing runnable.
    ImageUnavailable {
        generation: u64,
        /// The container.
        slot: Slot,
        /// The event message.
        message: String,
    },
    /// A volume could not be provided.
    MountFailed {
        generation: u64,
        /// The event message.
        message: String,
    },
    /// The volumes are ready: run the init containers, then the containers.
    Provided { generation: u64 },
    /// A container's process started.
    Started {
        generation: u64,
        /// The container.
        slot: Slot,
        /// When.
        at: OffsetDateTime,
    },
    /// A container's process could not be started at all.
    StartFailed {
        generation: u64,
        /// The container.
        slot: Slot,
        /// Why.
        message: String,
    },
    /// A container's process exited.
    Exited {
        generation: u64,
        /// The container.
        slot: Slot,
        /// The exit code (128 + signal when killed).
        code: i32,
        /// When.
        at: OffsetDateTime,
    },
    /// A container's back-off is over.
    RestartDue {
        generation: u64,
        /// The container.
        slot: Slot,
    },
    /// POST stop.
    Stop,
    /// POST start on a group that is not running.
    Start,
    /// POST restart.
    Restart,
    /// The emulator restarted and found this record: its processes are gone.
    Recovered,
    /// Azure took a Spot group's capacity back: its containers are killed and the group is
    /// restarted in place, as ACI restarts an evicted Spot group.
    Evicted { generation: u64 },
}

/// What `aci` must do after a transition, for the `generation` that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Kill every process of the group and wait for them to go.
    KillAll,
    /// After the Pending delay, feed `Begin`.
    Provision { generation: u64 },
    /// After the Creating delay: resolve images and provide volumes, then feed `Provided`.
    Launch { generation: u64 },
    /// Start one container (first start or restart).
    Spawn {
        generation: u64,
        /// The container.
        slot: Slot,
    },
    /// After `delay`, feed `RestartDue`.
    RestartAfter {
        generation: u64,
        /// The container.
        slot: Slot,
        /// The back-off.
        delay: Duration,
    },
}

/// The back-off before restart number `step` (0-based): `initial × 2^step`, at most `max`.
pub fn backoff_delay(backoff: Backoff, step: u32) -> Duration {
    let factor = 1u32.checked_shl(step.min(20)).unwrap_or(u32::MAX);
    backoff.initial.saturating_mul(factor).min(backoff.max)
}

pub(super) fn human_duration(delay: Duration) -> String {
    let seconds = delay.as_secs();
    if seconds >= 60 {
        format!("{}m{}s", seconds / 60, seconds % 60)
    } else if seconds > 0 {
        format!("{seconds}s")
    } else {
        format!("{}ms", delay.as_millis())
    }
}
