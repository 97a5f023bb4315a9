//! `berth::functions::package::package`: the zip is readable by an independent zip reader with the
//! right names, bytes and modes, and the assembled folder runs under the simulated host as a
//! deployed app would (host.json and function folders at the root, the binary named `handler`).
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::path::Path;

use berth::functions::package::package;
use berth::functions::table::{FUNCTION_FILES, HOST_JSON};
use berth_tests::host::{AppConfig, FunctionsHost, HostOptions};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_functions-fixture-handler"))
}

#[test]
fn the_zip_holds_the_app_with_an_executable_handler() {
    let dir = tempfile::tempdir().unwrap();
    // A small stand-in keeps this fast; the next test packages and runs a real binary.
    let stand_in = dir.path().join("built-handler");
    std::fs::write(&stand_in, b"#!/bin/sh\nexit 0\n").unwrap();
    let zip_path = package(&dir.path().join("berth-app"), &stand_in).unwrap();
    assert_eq!(zip_path, dir.path().join("berth-app.zip"));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();

    let mut names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    let mut want = vec!["host.json".to_owned(), "handler".to_owned()];
    for (name, _) in FUNCTION_FILES {
        want.push(format!("{name}/"));
        want.push(format!("{name}/function.json"));
    }
    want.sort();
    assert_eq!(names, want);

    let mut read = |name: &str| {
        let mut entry = archive.by_name(name).unwrap();
        let mode = entry.unix_mode();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap(); // checks the CRC too
        (bytes, mode)
    };
    let (host, _) = read("host.json");
    assert_eq!(host, HOST_JSON.as_bytes());
    let (handler, mode) = read("handler");
    assert_eq!(handler, std::fs::read(&stand_in).unwrap());
    assert_eq!(mode.unwrap() & 0o777, 0o755, "the handler is executable");
    let (steps, mode) = read("steps/function.json");
    assert!(String::from_utf8(steps).unwrap().contains("%BERTH_QUEUE%"));
    assert_eq!(mode.unwrap() & 0o777, 0o644);
}

#[tokio::test]
async fn the_packaged_folder_runs_under_the_simulated_host() {
    let dir = tempfile::tempdir().unwrap();
    let app_dir = dir.path().join("app");
    package(&app_dir, binary()).unwrap();
    // As deployed: function folders at the app root, next to host.json.
    let app = AppConfig::load(&app_dir, &app_dir).unwrap();
    assert_eq!(app.functions.len(), FUNCTION_FILES.len());
    assert_eq!(app.executable, "handler");
    let options = HostOptions {
        app,
        binary: app_dir.join("handler"),
        settings: vec![
            ("BERTH_QUEUE".into(), "berth-steps".into()),
            ("BERTH_SUBMIT_QUEUE".into(), "berth-submit".into()),
        ],
        function_key: "k".into(),
        master_key: "m".into(),
    };
    let host = FunctionsHost::start(options).await.unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/deployments?code=k", host.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        host.tick("cleanup", false)
            .await
            .unwrap()
            .accepted()
            .is_some()
    );
    host.stop().await;
}
