//! A test never passes without running. When something it needs is missing (Azurite, a client
//! virtualenv, PostgreSQL, a writable cgroup), it fails saying what to run, unless skipping that
//! need was asked for by name in [`VAR`] (`BERTH_TEST_SKIP=azurite,clients`); then it prints
//! `SKIPPED: <test>: <why>` to stderr and returns, so the skip shows in the output.

use std::io::Write as _;

/// The variable naming the needs whose tests may skip: comma-separated, e.g. `azurite,clients`.
pub const VAR: &str = "BERTH_TEST_SKIP";

/// The needs tests check, with what provides each: the names [`VAR`] takes.
pub const NEEDS: [(&str, &str); 4] = [
    (
        "azurite",
        "Azurite (npm i -g azurite, or bin/test, which installs it)",
    ),
    (
        "clients",
        "the emulator's client virtualenvs (emulator/tests/clients/setup.sh)",
    ),
    ("postgres", "PostgreSQL 15 (apt-get install postgresql-15)"),
    (
        "cgroup",
        "a writable cgroup v1 memory hierarchy (a machine or container that delegates one)",
    ),
];

/// Whether [`VAR`] asks to skip tests that need `need`.
pub fn requested(need: &str) -> bool {
    requested_in(std::env::var(VAR).ok().as_deref(), need)
}

fn requested_in(value: Option<&str>, need: &str) -> bool {
    value
        .unwrap_or_default()
        .split(',')
        .any(|item| item.trim() == need)
}

/// `need` is missing for the running test (`why` says how it was found missing): returns (after
/// printing `SKIPPED: <test>: <why>`) when [`VAR`] names `need`, and fails the test saying what
/// provides it and how to skip otherwise.
pub fn missing(need: &str, why: &str) {
    let test = crate::test_name();
    if requested(need) {
        // Straight to the process's stderr: libtest captures `eprintln!` of passing tests, and a
        // skip must show in the output.
        let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
        return;
    }
    let provider = NEEDS
        .iter()
        .find(|(name, _)| *name == need)
        .map_or(need, |(_, provider)| provider);
    panic!(
        "{test} needs {provider}: {why}. Run bin/test (it installs and starts what the suites \
         need), or set {VAR}={need} to skip such tests on purpose."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_needs_are_skipped() {
        assert!(requested_in(Some("azurite"), "azurite"));
        assert!(requested_in(Some("clients, azurite"), "azurite"));
        assert!(!requested_in(Some("azurite-ish"), "azurite"));
        assert!(!requested_in(Some(""), "azurite"));
        assert!(!requested_in(None, "azurite"));
    }

    #[test]
    #[should_panic(expected = "set BERTH_TEST_SKIP=no-such-need to skip")]
    fn a_missing_need_fails_saying_how_to_skip() {
        // No one sets BERTH_TEST_SKIP to this name, so the call must fail.
        missing("no-such-need", "it was not found");
    }
}
