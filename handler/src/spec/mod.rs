//! The deployment spec: its model, parsing (JSON and ACI YAML), validation and secret handling.

pub mod aci;
pub mod document;
pub mod duration;
pub mod error;
pub mod model;
pub mod notify;
pub mod parse;
pub mod placement;
pub mod secrets;
pub mod settings;
pub mod template;
pub mod validate;
pub mod workflow;

pub use duration::IsoDuration;
pub use error::{SpecError, SpecErrors};
pub use model::{
    Cleanup, CleanupWhen, Completion, GroupSpec, Mode, RestartPolicy, Retry, RunWhen, Spec,
};
pub use notify::{Notify, NotifyOn};
pub use parse::{Format, parse};
pub use placement::{Priority, SpotPolicy};
pub use settings::SettingsPolicy;
