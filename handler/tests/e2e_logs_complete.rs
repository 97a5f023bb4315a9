//! Saved logs are whole, or say they are not. ACI keeps only the last 1,000 lines (or 16 KB) of a
//! stopped container's log; the emulator does the same. A job printing 5,000 lines over a few
//! seconds gets all 5,000 saved, stitched from reads while it ran, with no gap and no repeat. A
//! job printing them in one burst at its end cannot be read in time: its saved log keeps what ACI
//! kept and says, in the log, the status and the history, that earlier lines are missing. Both
//! backends, real processes under the emulator.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::scenarios::{get, history, request};
use common::{Backend, Harness, Options, job};
use reqwest::Method;

const LINES: u32 = 5_000;

fn lines(range: std::ops::RangeInclusive<u32>) -> String {
    range.map(|i| format!("line {i} of {LINES}\n")).collect()
}

/// A job printing `line 1 of 5000` to `line 5000 of 5000`, pausing `pause` seconds after each
/// hundred (none: one burst).
fn printing(id: &str, pause: Option<&str>) -> serde_json::Value {
    let wait = pause.map_or(String::new(), |p| {
        format!("if [ $((i % 100)) -eq 0 ]; then sleep {p}; fi; ")
    });
    job(
        id,
        &format!(
            "sleep 1; i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo \"line $i of {LINES}\"; {wait}done"
        ),
    )
}

async fn start(backend: Backend) -> Option<Harness> {
    Harness::try_with(Options {
        backend,
        ..Options::default()
    })
    .await
}

async fn a_long_log_is_saved_whole(backend: Backend) {
    let Some(h) = start(backend).await else {
        return;
    };
    let id = h.start_deployment(&printing("long-log", Some("0.2"))).await;
    let done = h.wait_done(&id).await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");

    let (code, log) = h.logs(&id, "work", "main").await;
    assert_eq!(code, 200);
    assert_eq!(log.lines().count(), LINES as usize, "{}", &log[..200]);
    assert!(
        log == lines(1..=LINES),
        "the saved log is every line once, in order"
    );
    assert!(done["groups"][0].get("logsTruncated").is_none(), "{done}");
    let kinds = history(&h, &id).await;
    assert!(kinds.contains(&"LogsSaved".to_owned()), "{kinds:?}");
    assert!(!kinds.contains(&"LogsTruncated".to_owned()), "{kinds:?}");

    // With timestamps, each line starts with ACI's time for it, in order.
    let (code, stamped) = get_text(
        &h,
        &format!("/deployments/{id}/logs/work/main?timestamps=true&tail=3"),
    )
    .await;
    assert_eq!(code, 200);
    let stamps: Vec<&str> = stamped
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(stamps.len(), 3, "{stamped}");
    assert!(
        stamps.iter().all(|s| s.ends_with('Z') && s.contains('T')),
        "{stamped}"
    );
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamped}");
    assert!(
        stamped.ends_with(&format!(" line {LINES} of {LINES}\n")),
        "{stamped}"
    );
    let (code, body) = get(
        &h,
        &format!("/deployments/{id}/logs/work/main?timestamps=yes"),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("timestamps: "),
        "{body}"
    );
}

async fn a_burst_at_the_end_is_kept_as_aci_kept_it_and_said_to_be_cut(backend: Backend) {
    let Some(h) = start(backend).await else {
        return;
    };
    let id = h.start_deployment(&printing("burst-log", None)).await;
    let done = h.wait_done(&id).await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");

    let (code, log) = h.logs(&id, "work", "main").await;
    assert_eq!(code, 200);
    let notes: Vec<&str> = log.lines().filter(|l| l.starts_with("[berth] ")).collect();
    assert_eq!(notes.len(), 1, "one note of what is missing: {notes:?}");
    assert!(notes[0].contains("missing"), "{}", notes[0]);
    assert!(log.ends_with(&lines(LINES - 99..=LINES)), "the end is kept");
    let kept: Vec<&str> = log.lines().filter(|l| !l.starts_with("[berth] ")).collect();
    assert!(
        kept.len() < LINES as usize && kept.len() >= 900,
        "{}",
        kept.len()
    );

    let truncated = done["groups"][0]["logsTruncated"].as_array().unwrap();
    assert_eq!(truncated.len(), 1, "{done}");
    let entry = truncated[0].as_str().unwrap();
    assert!(
        entry.contains("/main: ") && entry.contains("missing"),
        "{entry}"
    );
    let kinds = history(&h, &id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "LogsTruncated").count(),
        1,
        "{kinds:?}"
    );
}

async fn get_text(h: &Harness, path: &str) -> (u16, String) {
    let response = request(h, Method::GET, path).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

on_both_backends!(a_long_log_is_saved_whole);
on_both_backends!(a_burst_at_the_end_is_kept_as_aci_kept_it_and_said_to_be_cut);
