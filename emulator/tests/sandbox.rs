//! The sandbox under attack, end to end with real processes under bubblewrap: a container tries
//! to use capabilities, remount the read-only root, read the host's password hashes and SSH keys,
//! and look into the emulator's home and data folders. Each attempt must fail, while the group's
//! own volumes stay usable.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

/// A data folder outside `/tmp` (the sandbox's `/tmp` is its own, so a data folder there would be
/// out of sight whatever the sandbox hides).
fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// The container's report: `KEY:value` lines, in order.
fn report(text: &str, key: &str) -> String {
    let prefix = format!("{key}:");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in the container's output:\n{text}"))
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_container_cannot_use_capabilities_nor_see_host_secrets_home_or_data() {
    let dir = data_dir();
    let home = std::env::var("HOME").unwrap();
    let home_entries = std::fs::read_dir(&home).map(Iterator::count).unwrap_or(0);
    assert!(
        home_entries > 0,
        "the attack needs something in {home} to look for"
    );
    // Another group's share, and the emulator's own files, sit beside this group's share.
    let shares = dir.path().join("shares/acct1");
    std::fs::create_dir_all(shares.join("other")).unwrap();
    std::fs::write(shares.join("other/private.txt"), "other group's data").unwrap();
    std::fs::create_dir_all(shares.join("own")).unwrap();
    std::fs::write(shares.join("own/input.txt"), "own data").unwrap();
    let harness = Harness::start_in(dir, |_| {}).await;
    let data = harness.data().canonicalize().unwrap();

    let script = r#"
        grep -E '^Cap(Prm|Eff|Amb):' /proc/self/status | tr -d '\t' | tr 'a-z' 'A-Z' | sed 's/^CAP/CAP-/'
        echo UID:$(id -u)
        mount -o remount,rw / 2>/dev/null && echo REMOUNT-ROOT:done || echo REMOUNT-ROOT:refused
        mount -o remount,rw /usr 2>/dev/null && touch /usr/.pwned 2>/dev/null && echo REMOUNT-USR:done || echo REMOUNT-USR:refused
        for f in /etc/shadow /etc/gshadow; do cat $f >/dev/null 2>&1 && echo READ:$f; done; echo READ:end
        echo SSH:$(ls -A /etc/ssh 2>/dev/null | tr '\n' ' ')
        echo HOME:$(ls -A "$HOST_HOME" 2>/dev/null | tr '\n' ' ')
        echo ROOT:$(ls -A /root 2>/dev/null | tr '\n' ' ')
        echo DATA:$(ls -A "$HOST_DATA" 2>/dev/null | tr '\n' ' ')
        echo OTHER:$(cat "$HOST_DATA/shares/acct1/other/private.txt" 2>/dev/null)
        echo OWN:$(cat /mnt/share/input.txt)
        echo written > /mnt/share/output.txt && echo WRITE:ok
        echo ENV:$(env | cut -d= -f1 | sort | tr '\n' ' ')
    "#;
    let share = json!({"name": "share", "azureFile": {"shareName": "own", "storageAccountName": "acct1", "storageAccountKey": "a2V5"}});
    let body = group_body(
        "Never",
        json!([shell(
            "attacker",
            script,
            json!([
                {"name": "HOST_HOME", "value": home},
                {"name": "HOST_DATA", "value": data.display().to_string()}
            ]),
            json!([{"name": "share", "mountPath": "/mnt/share"}])
        )]),
        json!([share]),
    );
    let text = harness.run_to_success("attacker", &body, "attacker").await;

    for set in ["CAP-PRM", "CAP-EFF", "CAP-AMB"] {
        assert_eq!(report(&text, set), "0000000000000000", "{set}:\n{text}");
    }
    // Not root inside either, where the machine has user namespaces (as every test machine has).
    let confinement = harness.running().emulator().confinement();
    let uid = if confinement.user_namespace {
        "65534"
    } else {
        "0"
    };
    assert_eq!(report(&text, "UID"), uid, "{text}");
    assert_eq!(report(&text, "REMOUNT-ROOT"), "refused", "{text}");
    assert_eq!(report(&text, "REMOUNT-USR"), "refused", "{text}");
    assert_eq!(
        report(&text, "READ"),
        "end",
        "a password file was read:\n{text}"
    );
    assert_eq!(report(&text, "SSH"), "", "{text}");
    assert_eq!(report(&text, "HOME"), "", "{text}");
    assert_eq!(report(&text, "ROOT"), "", "{text}");
    assert_eq!(report(&text, "DATA"), "", "{text}");
    assert_eq!(report(&text, "OTHER"), "", "{text}");
    // The group's own volume still works, both ways.
    assert_eq!(report(&text, "OWN"), "own data", "{text}");
    assert_eq!(report(&text, "WRITE"), "ok", "{text}");
    assert_eq!(
        std::fs::read_to_string(data.join("shares/acct1/own/output.txt")).unwrap(),
        "written\n"
    );
    // Only what the spec and the emulator set, and what the shell adds itself.
    for name in report(&text, "ENV").split_whitespace() {
        assert!(
            ["HOST_HOME", "HOST_DATA"].contains(&name) || SHELL_VARIABLES.contains(&name),
            "the container sees {name}:\n{text}"
        );
    }
    assert!(!std::path::Path::new("/usr/.pwned").exists());
    harness.stop().await;
}
