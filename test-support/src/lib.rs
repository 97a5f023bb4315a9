//! What Berth's test suites share, so that each is written once: [`free_port`], [`eventually`]
//! (polling with a deadline), [`unique`] names, [`Azurite`] started on demand, [`skip`] (a test
//! that cannot run fails, unless skipping was asked for by name) and [`api::Client`], a client
//! of Berth's HTTP API.
//!
//! Tests talk only to 127.0.0.1: every server started here listens there.

pub mod api;
pub mod azurite;
pub mod dev;
pub mod skip;

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

pub use azurite::Azurite;

/// A loopback port nothing listens on right now: for a child process to bind, or to stand for an
/// unreachable endpoint. The listener is closed at once, so another process may take the port
/// first; callers that start servers on it retry or accept that rare failure.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// `prefix`, a dash and 12 random hex digits: a container, queue, app or deployment name no other
/// test (or earlier run against the same Azurite) uses. Lower-case, so valid as a container or
/// queue name when `prefix` is.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// How often [`eventually`] probes.
pub const PROBE_EVERY: Duration = Duration::from_millis(50);

/// Calls `probe` every [`PROBE_EVERY`] until it returns `Ok`, and returns that value. `Err` means
/// "not yet" and carries what was seen (a status document, an error); after `deadline` the test
/// fails naming `what` and the last thing seen.
pub async fn eventually<T, E, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if start.elapsed() >= deadline => {
                panic!("timed out after {deadline:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(PROBE_EVERY).await,
        }
    }
}

/// The path of `program` on `PATH`; fails the test saying how to install it (`install`) when it is
/// not there. For what every test of a suite needs (bubblewrap for the emulator's containers), so
/// not skippable.
pub fn require_program(program: &str, install: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{} needs {program} on PATH: {install}", test_name()))
}

/// Stops a child process as a person at its terminal would: `signal` (`INT`, `TERM`) first, so it
/// shuts down in order (and its own children with it), then `SIGKILL` if it has not exited within
/// 10 seconds. For `Drop` of the process guards.
pub fn interrupt(child: &mut std::process::Child, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The name of the running test: libtest names each test's thread after it (`module::test`).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable_on_loopback() {
        let port = free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }

    #[test]
    fn unique_names_are_distinct_and_valid_queue_names() {
        let (a, b) = (unique("q"), unique("q"));
        assert_ne!(a, b);
        assert_eq!(a.len(), "q-".len() + 12);
        assert!(
            a.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[tokio::test]
    async fn eventually_returns_the_first_ok() {
        let mut calls = 0;
        let got = eventually("the third call", Duration::from_secs(5), || {
            calls += 1;
            let now = calls;
            async move { if now == 3 { Ok(now) } else { Err(now) } }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for a value that never comes; last seen: still 7")]
    async fn eventually_names_what_and_the_last_value_seen() {
        eventually::<(), _, _, _>(
            "a value that never comes",
            Duration::from_millis(120),
            || async { Err("still 7") },
        )
        .await;
    }

    #[test]
    fn programs_are_found_on_path_or_named_with_their_install_command() {
        assert!(require_program("sh", "any").is_file());
        let missing = std::panic::catch_unwind(|| {
            require_program("no-such-program-berth", "apt-get install it")
        });
        let message = *missing.unwrap_err().downcast::<String>().unwrap();
        assert!(message.ends_with("needs no-such-program-berth on PATH: apt-get install it"));
    }

    #[test]
    fn the_test_name_is_the_threads() {
        assert_eq!(test_name(), "tests::the_test_name_is_the_threads");
    }
}
