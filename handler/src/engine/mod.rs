//! The workflow engine: a deployment's state, the events that change it and the actions it asks
//! for. Pure: no I/O, no clock, no async (see [`apply`]).

pub mod apply;
pub mod event;
pub mod flow;
pub mod looks;
pub mod names;
pub mod notify;
pub mod placement;
pub mod policy;
pub mod round;
pub mod state;

pub use apply::{
    EngineError, MAX_INBOX, MAX_INBOX_BYTES, StartOptions, Transition, apply, inbox_has_room, start,
};
pub use event::{Action, ActionKind, Event};
pub use looks::{LookPlan, RunEstimate};
pub use notify::{DeliveryState, Notification};
pub use round::{Round, Save, Step};
pub use state::{
    ContainerObservation, Deployment, Hold, Instance, Millis, Observation, Phase, RuntimeStatus,
    SCHEMA_VERSION,
};

#[cfg(test)]
mod tests;
