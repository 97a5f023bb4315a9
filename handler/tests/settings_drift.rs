//! No drift between the app settings the infrastructure sets (`infra/app-settings.txt`, which

#![allow(clippy::unwrap_used)]
//! `infra/check.sh` holds equal to the Bicep) and the configuration names `handler` reads.

use std::collections::BTreeSet;
use std::path::PathBuf;

use berth::config::{REQUIRED_IN_AZURE, SETTINGS};

/// Settings the Functions host reads itself (`handler` reads them too, for its metrics).
const HOST_SETTINGS: [&str; 2] = [
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
];

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_app_setting_the_bicep_sets_is_one_handler_or_the_host_reads() {
    let set: BTreeSet<String> = read("infra/app-settings.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let known: BTreeSet<&str> = SETTINGS
        .iter()
        .chain(HOST_SETTINGS.iter())
        .copied()
        .collect();
    let unknown: Vec<&String> = set.iter().filter(|s| !known.contains(s.as_str())).collect();
    assert!(
        unknown.is_empty(),
        "the infrastructure sets settings handler does not read: {unknown:?}"
    );
    let missing: Vec<&&str> = REQUIRED_IN_AZURE
        .iter()
        .filter(|s| !set.contains(**s))
        .collect();
    assert!(
        missing.is_empty(),
        "the infrastructure misses settings handler needs: {missing:?}"
    );
}

#[test]
fn the_readme_documents_every_setting_handler_reads() {
    let readme = read("README.md");
    let undocumented: Vec<&&str> = SETTINGS
        .iter()
        .filter(|s| !s.starts_with("AzureWebJobsStorage__") && !readme.contains(**s))
        .collect();
    assert!(
        undocumented.is_empty(),
        "settings missing from the README's configuration table: {undocumented:?}"
    );
}
