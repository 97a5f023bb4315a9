//! A value that must never be echoed or printed: `secureValue`, registry passwords, storage keys,
//! secret-volume contents, Log Analytics keys and extension protected settings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret. It serialises as its plain value, because the emulator's own records on disk need it to
/// restart containers, but every response passes through `ContainerGroup::redact`, which drops it,
/// and `Debug` never shows it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret value, for the one place that needs it (a process environment, a file).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "hunter2");
    }
}
