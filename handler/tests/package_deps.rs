//! What the Function App package links: `handler` built as `infra/hooks/package.sh` builds it
//! (`--no-default-features`) must not depend on the ACI emulator, which only `handler dev` and the
//! tests need. Read from `cargo tree` (no build), so a dependency that brings the emulator back
//! fails here rather than in the package's size.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

/// The packages `handler`'s normal (not dev, not build) dependencies pull in, with `features`.
fn normal_dependencies(features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--manifest-path",
            manifest,
            "-p",
            "handler",
        ])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(features)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo tree failed: {stderr}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_package_build_links_the_rules_and_not_the_emulator() {
    let package = normal_dependencies(&["--no-default-features"]);
    assert!(package.contains("aci-rules"), "{package:?}");
    assert!(package.contains("tokio"), "{package:?}");
    assert!(!package.contains("emulator"), "{package:?}");
    // What only the emulator needs comes with it.
    assert!(!package.contains("toml"), "{package:?}");

    let dev = normal_dependencies(&[]);
    assert!(
        dev.contains("emulator"),
        "`dev` (the default) runs the emulator: {dev:?}"
    );
}
