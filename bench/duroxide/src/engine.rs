//! The two observation types Berth's ARM model converts a group into (copied from
//! `handler/src/engine/state.rs`; the duroxide workflow does not read them).

#![allow(dead_code)]

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// What ARM said about a group at one look.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub provisioning_state: String,
    pub state: String,
    pub containers: Vec<ContainerObservation>,
    pub problem: Option<String>,
}

/// One container at one look.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerObservation {
    pub name: String,
    pub state: String,
    pub exit_code: Option<i64>,
    pub restart_count: u32,
    pub detail: Option<String>,
    pub start: Option<Millis>,
    pub finish: Option<Millis>,
}

/// The read budget's order of looks (copied from `handler/src/engine/policy.rs`; the duroxide
/// workflow's looks are all `Unknown`).
pub mod policy {
    /// How likely a look is to see a change.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Likelihood {
        /// Before its instance's exit window.
        Unlikely,
        /// Nothing known.
        Unknown,
        /// In its instance's exit window, or just past it.
        Likely,
    }
}
