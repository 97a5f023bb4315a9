#![allow(clippy::unwrap_used)]
//! A small chaos run in CI: 20 deployments, 5 handler kills, queue tampering, ARM faults,
//! capacity refusals, Spot evictions, webhook notifications to a receiver that fails every third
//! request, a schedule firing every minute on every handler's ticks, and an Azurite restart, then
//! the harness's checks. `tests/chaos.sh` runs the big one.
//!
//! Needs the Azurite executable (found as `berth_test_support::azurite::executable` says; the run
//! starts and restarts its own) and the `handler` and `aci-emulator` binaries beside `chaos`
//! (`cargo test` on the workspace builds them). Without Azurite it fails saying how to get it,
//! unless `BERTH_TEST_SKIP=azurite`; without the binaries it fails naming the build command.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn twenty_deployments_through_five_kills_lose_nothing_and_leave_nothing() {
    let azurite = match berth_test_support::azurite::executable() {
        Ok(azurite) => azurite,
        Err(why) => return berth_test_support::skip::missing("azurite", &why),
    };
    let chaos = PathBuf::from(env!("CARGO_BIN_EXE_chaos"));
    for binary in ["handler", "aci-emulator"] {
        assert!(
            chaos.with_file_name(binary).exists(),
            "no {binary} beside {}: run `cargo build -p handler -p emulator` (plain `cargo test` \
             on the workspace builds them)",
            chaos.display()
        );
    }
    let output = Command::new(&chaos)
        .args(["20", "5", "--seed", "6", "--concurrency", "10"])
        .args(["--deadline", "240", "--azurite-restarts", "1"])
        .arg("--azurite")
        .arg(azurite)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chaos failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let line = stdout.lines().find(|l| l.starts_with("chaos: ")).unwrap();
    // Holds, evictions and fallbacks depend on timing and draws: counted and shown, not fixed.
    let (counted, capacity) = line.split_once(" missing logs, ").unwrap();
    assert_eq!(
        counted, "chaos: 20 deployments, 5 kills, 0 lost, 0 duplicate creates, 0 orphans, 0",
        "{stderr}"
    );
    let shape = capacity.split(' ').collect::<Vec<_>>();
    let number = |n: &str| n.trim_start_matches('(').parse::<u32>().is_ok();
    assert!(
        matches!(shape[..], [q, "quota", "holds,", e, "evictions,", f, "fallbacks,", n, "notified", r, "redelivered),",
            s, "scheduled", "runs", m, "missed)"]
            if number(q) && number(e) && number(f) && number(r) && number(m)
                && n.parse::<usize>().ok() == s.parse::<usize>().ok().map(|s| s + 8)
                && s.parse::<usize>().is_ok_and(|s| s >= 1)),
        "every quick, retried and timed-out job (8 of 20) and every scheduled run (at least one) \
         told of its outcome, signed: {line}\n{stderr}"
    );
    // Every deployment ended as a clean run ends: a pipeline whose stages ran out of order or
    // created more or fewer instances than (group, instance, attempt) says would show here.
    assert!(stderr.contains(", 0 unexpected outcomes,"), "{stderr}");
}
