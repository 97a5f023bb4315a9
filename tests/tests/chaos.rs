#![allow(clippy::unwrap_used)]
//! A small chaos run in CI: 20 deployments, 5 handler kills, queue tampering, ARM faults and an
//! Azurite restart, then the harness's checks. `tests/chaos.sh` runs the big one.
//!
//! Needs the Azurite executable in `BERTH_TEST_AZURITE_BIN` (`bin/test` sets it) and the `handler`
//! and `aci-emulator` binaries beside `chaos` (`cargo test --workspace` builds them); without
//! them it says loudly that it skipped.

use std::path::PathBuf;
use std::process::Command;

const AZURITE_BIN: &str = "BERTH_TEST_AZURITE_BIN";

fn skip(why: &str) {
    eprintln!("\n*** SKIPPED the chaos run: {why} ***\n");
}

#[test]
fn twenty_deployments_through_five_kills_lose_nothing_and_leave_nothing() {
    let Some(azurite) = std::env::var_os(AZURITE_BIN) else {
        return skip(&format!(
            "{AZURITE_BIN} is unset (bin/test installs Azurite and sets it)"
        ));
    };
    let chaos = PathBuf::from(env!("CARGO_BIN_EXE_chaos"));
    for binary in ["handler", "aci-emulator"] {
        if !chaos.with_file_name(binary).exists() {
            return skip(&format!(
                "no {binary} beside {} (cargo test --workspace builds it)",
                chaos.display()
            ));
        }
    }
    let output = Command::new(&chaos)
        .args(["20", "5", "--seed", "6", "--concurrency", "10"])
        .args(["--deadline", "150", "--azurite-restarts", "1"])
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
    assert_eq!(
        line,
        "chaos: 20 deployments, 5 kills, 0 lost, 0 duplicate creates, 0 orphans, 0 missing logs",
        "{stderr}"
    );
}
