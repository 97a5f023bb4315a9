//! What the commands print for people: tables, progress lines, one-line summaries. `--json`
//! prints the API's own documents instead.

use serde_json::Value;

use crate::client::printable;

/// A field of a document as text (`-` when absent), printable whatever the server sent.
fn text(value: &Value, field: &str) -> String {
    match &value[field] {
        Value::Null => "-".to_owned(),
        Value::String(s) => printable(s, 200),
        other => printable(&other.to_string(), 200),
    }
}

/// `label` and the field's text, or nothing when the field is absent.
fn labelled(value: &Value, label: &str, field: &str) -> String {
    match &value[field] {
        Value::Null => String::new(),
        _ => format!("{label}{}", text(value, field)),
    }
}

/// The items of an array field (none when it is absent or not an array).
fn items<'a>(value: &'a Value, field: &str) -> &'a [Value] {
    value[field]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// How a group stands: its result once it has one, else its state; for a fan-out, how many of
/// its instances succeeded (`Running 3/10`).
fn standing(group: &Value) -> String {
    let mut standing = match &group["result"] {
        Value::Null => text(group, "state"),
        _ => text(group, "result"),
    };
    if let Some(counts) = group["instances"].as_object() {
        let total: u64 = counts.values().filter_map(Value::as_u64).sum();
        if total > 1 {
            let succeeded = counts.get("succeeded").and_then(Value::as_u64).unwrap_or(0);
            standing.push_str(&format!(" {succeeded}/{total}"));
        }
    }
    standing
}

/// `name:standing` for each group of a status document.
fn groups(status: &Value) -> String {
    let groups: Vec<String> = items(status, "groups")
        .iter()
        .map(|g| format!("{}:{}", text(g, "name"), standing(g)))
        .collect();
    if groups.is_empty() {
        "-".to_owned()
    } else {
        groups.join(",")
    }
}

/// Rows as columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The list document as a table: id, status, phase, created, groups.
pub fn list(list: &Value) -> String {
    let rows: Vec<Vec<String>> = items(list, "deployments")
        .iter()
        .map(|d| {
            vec![
                text(d, "id"),
                text(d, "runtimeStatus"),
                text(d, "phase"),
                text(d, "createdTime"),
                groups(d),
            ]
        })
        .collect();
    table(&["ID", "STATUS", "PHASE", "CREATED", "GROUPS"], &rows)
}

/// The history document as a table: time, event, detail.
pub fn history(history: &Value) -> String {
    let rows: Vec<Vec<String>> = items(history, "history")
        .iter()
        .map(|e| {
            let detail = match &e["detail"] {
                Value::Null => String::new(),
                _ => text(e, "detail"),
            };
            vec![text(e, "timestamp"), text(e, "eventType"), detail]
        })
        .collect();
    table(&["TIME", "EVENT", "DETAIL"], &rows)
}

/// A status document in a few lines: id, status and phase, error, groups and containers, cost.
pub fn status(status: &Value) -> String {
    let mut out = format!(
        "{}  {} ({}), attempt {}\n",
        text(status, "id"),
        text(status, "runtimeStatus"),
        text(status, "phase"),
        text(status, "attempt")
    );
    if !status["error"].is_null() {
        out.push_str(&format!("  error: {}\n", text(status, "error")));
    }
    for group in items(status, "groups") {
        out.push_str(&format!(
            "  group {}: {}\n",
            text(group, "name"),
            standing(group)
        ));
        for failure in items(group, "failures") {
            out.push_str(&format!(
                "    failed: instance {}, attempt {}{}{}\n",
                text(failure, "index"),
                text(failure, "attempt"),
                labelled(failure, ", exit code ", "exitCode"),
                labelled(failure, ": ", "error"),
            ));
        }
        if !group["outputs"].is_null() {
            out.push_str(&format!("    outputs: {}\n", text(group, "outputs")));
        }
        for cut in items(group, "logsTruncated") {
            out.push_str(&format!(
                "    log truncated: {}\n",
                cut.as_str().unwrap_or_default()
            ));
        }
        if !group["aciName"].is_null() {
            out.push_str(&format!(
                "    last instance {}: {}\n",
                text(group, "aciName"),
                text(group, "state")
            ));
        }
        for c in items(group, "containers") {
            out.push_str(&format!(
                "      {}: {}{}\n",
                text(c, "name"),
                text(c, "state"),
                labelled(c, ", exit code ", "exitCode"),
            ));
        }
    }
    for n in items(status, "notifications") {
        let to = match n["eventGrid"].as_bool() {
            Some(true) => "Event Grid".to_owned(),
            _ => format!("notify {}", text(n, "notify")),
        };
        out.push_str(&format!(
            "  {to} on {}: {} after {} attempt(s){}{}\n",
            text(n, "on"),
            text(n, "state"),
            text(n, "attempts"),
            labelled(n, ", last ", "lastResult"),
            labelled(n, ", next at ", "nextAttemptTime"),
        ));
    }
    let cost = status["cost"]["estimatedUsd"]
        .as_f64()
        .map_or_else(|| "-".to_owned(), |usd| format!("${usd:.6}"));
    out.push_str(&format!(
        "  created {}, updated {}, cost {cost}\n",
        text(status, "createdTime"),
        text(status, "lastUpdatedTime"),
    ));
    out
}

/// What a schedule's runs start: `template NAME (version N|latest)` or `spec: GROUP,...`.
fn schedule_target(schedule: &Value) -> String {
    let target = &schedule["target"];
    if target["template"].is_null() {
        let groups: Vec<String> = items(&target["spec"], "groups")
            .iter()
            .map(|g| text(g, "name"))
            .collect();
        return format!("spec: {}", groups.join(","));
    }
    let version = match &target["version"] {
        Value::Null => "latest".to_owned(),
        _ => format!("version {}", text(target, "version")),
    };
    format!("template {} ({version})", text(target, "template"))
}

/// `Paused` or `Active`.
fn schedule_state(schedule: &Value) -> &'static str {
    match schedule["suspended"].as_bool() {
        Some(true) => "Paused",
        _ => "Active",
    }
}

/// A schedule document in a few lines: name and state, cron, policy, what it starts, its runs.
pub fn schedule(schedule: &Value) -> String {
    let mut out = format!(
        "{}  {}  \"{}\" in {}, policy {}{}\n  starts: {}\n",
        text(schedule, "name"),
        schedule_state(schedule),
        text(schedule, "cron"),
        text(schedule, "timeZone"),
        text(schedule, "concurrencyPolicy"),
        labelled(schedule, ", starting deadline ", "startingDeadline"),
        schedule_target(schedule),
    );
    let parameters = &schedule["target"]["parameters"];
    if parameters.as_object().is_some_and(|p| !p.is_empty()) {
        out.push_str(&format!(
            "  parameters: {}\n",
            printable(&parameters.to_string(), 1000)
        ));
    }
    if !schedule["nextRun"].is_null() {
        out.push_str(&format!(
            "  next run: {} ({})\n",
            text(schedule, "nextRun"),
            text(schedule, "nextRunId")
        ));
    }
    let last = &schedule["lastRun"];
    if !last.is_null() {
        out.push_str(&format!(
            "  last run: {} for {}, started {}\n",
            text(last, "deploymentId"),
            text(last, "scheduledTime"),
            text(last, "startedTime")
        ));
    }
    out.push_str(&format!(
        "  missed runs: {}{}\n",
        text(schedule, "missedRuns"),
        labelled(schedule, ", the last for ", "lastMissedTime")
    ));
    let held = &schedule["held"];
    if !held.is_null() {
        out.push_str(&format!(
            "  held: {} for {}\n",
            text(held, "reason"),
            text(held, "scheduledTime")
        ));
    }
    out
}

/// The schedules list as a table: name, state, cron, time zone, policy, next and last run,
/// missed runs.
pub fn schedules(list: &Value) -> String {
    let rows: Vec<Vec<String>> = items(list, "schedules")
        .iter()
        .map(|s| {
            vec![
                text(s, "name"),
                schedule_state(s).to_owned(),
                text(s, "cron"),
                text(s, "timeZone"),
                text(s, "concurrencyPolicy"),
                text(s, "nextRun"),
                text(&s["lastRun"], "deploymentId"),
                text(s, "missedRuns"),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "STATE",
        "CRON",
        "TIME ZONE",
        "POLICY",
        "NEXT RUN",
        "LAST RUN",
        "MISSED",
    ];
    table(&header, &rows)
}

/// The list's schedules this Berth cannot read, each with why.
pub fn unreadable(list: &Value) -> Vec<String> {
    items(list, "unreadable")
        .iter()
        .map(|why| match why.as_str() {
            Some(why) => printable(why, 1000),
            None => printable(&why.to_string(), 1000),
        })
        .collect()
}

/// One progress line's content: status, phase and every group's state (a new line is printed
/// when it changes).
pub fn progress(status: &Value) -> String {
    format!(
        "{} · {} · {}",
        text(status, "runtimeStatus"),
        text(status, "phase"),
        groups(status)
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_list_is_a_table_of_its_deployments() {
        let list = json!({ "deployments": [
            { "id": "a", "runtimeStatus": "Running", "phase": "Waiting", "createdTime": "2026-01-01T00:00:00Z",
              "groups": [{ "name": "work", "state": "Running" }, { "name": "db", "state": "Pending" }] },
            { "id": "longer-id", "runtimeStatus": "Succeeded", "phase": "Done", "createdTime": "2026-01-01T00:00:01Z", "groups": [] }
        ]});
        assert_eq!(
            super::list(&list),
            "ID         STATUS     PHASE    CREATED               GROUPS\n\
             a          Running    Waiting  2026-01-01T00:00:00Z  work:Running,db:Pending\n\
             longer-id  Succeeded  Done     2026-01-01T00:00:01Z  -\n"
        );
    }

    #[test]
    fn server_text_cannot_reach_the_terminal_as_control_characters() {
        let list = json!({ "deployments": [{ "id": "x\u{1b}]0;owned\u{7}", "groups": [] }]});
        assert!(!super::list(&list).contains('\u{1b}'));
    }

    #[test]
    fn notifications_and_truncated_logs_are_shown() {
        let status = json!({ "id": "n", "runtimeStatus": "Succeeded", "phase": "Notifying", "attempt": 1,
            "groups": [{ "name": "work", "state": "Deleted", "logsTruncated": ["n-work-1/main: lines written between a and b are missing"] }],
            "notifications": [{ "notify": 0, "on": "Succeeded", "state": "Pending", "attempts": 2,
                "lastResult": "503", "nextAttemptTime": "2026-12-03T10:00:04Z", "id": "u.0" },
                { "eventGrid": true, "on": "Succeeded", "state": "Delivered", "attempts": 1, "lastResult": "200", "id": "u.1" }] });
        let shown = super::status(&status);
        assert!(
            shown.contains(
                "    log truncated: n-work-1/main: lines written between a and b are missing\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("  notify 0 on Succeeded: Pending after 2 attempt(s), last 503, next at 2026-12-03T10:00:04Z\n"), "{shown}");
        assert!(
            shown.contains("  Event Grid on Succeeded: Delivered after 1 attempt(s), last 200\n"),
            "{shown}"
        );
    }

    #[test]
    fn a_pipeline_shows_results_instances_failures_and_outputs() {
        let status = json!({ "id": "p", "runtimeStatus": "Failed", "phase": "Done", "attempt": 1,
            "groups": [
                { "name": "prep", "state": "Deleted", "result": "Succeeded", "aciName": "p-prep-1-ab",
                  "instances": { "succeeded": 1, "failed": 0 }, "outputs": { "0": { "parts": 4 } },
                  "containers": [{ "name": "main", "state": "Terminated", "exitCode": 0 }] },
                { "name": "shard", "state": "Deleted", "result": "Failed",
                  "instances": { "succeeded": 3, "failed": 1, "running": 0 },
                  "failures": [{ "index": 2, "attempt": 2, "exitCode": 3, "error": "exited 3" }] },
                { "name": "publish", "state": "Skipped" }
            ] });
        let shown = super::status(&status);
        assert!(shown.contains("  group prep: Succeeded\n    outputs: {\"0\":{\"parts\":4}}\n    last instance p-prep-1-ab: Deleted\n      main: Terminated, exit code 0\n"), "{shown}");
        assert!(shown.contains("  group shard: Failed 3/4\n    failed: instance 2, attempt 2, exit code 3: exited 3\n"), "{shown}");
        assert!(shown.contains("  group publish: Skipped\n"), "{shown}");
        assert_eq!(
            super::progress(&status),
            "Failed · Done · prep:Succeeded,shard:Failed 3/4,publish:Skipped"
        );
    }

    #[test]
    fn a_schedule_shows_its_definition_and_runs() {
        let schedule = json!({ "name": "nightly", "cron": "0 2 * * *", "timeZone": "Europe/Amsterdam",
            "concurrencyPolicy": "forbid", "startingDeadline": "PT10M", "suspended": false,
            "target": { "template": "greet", "version": null, "parameters": { "word": "hi" } },
            "nextRun": "2026-12-04T01:00:00Z", "nextRunId": "nightly-202612040100",
            "lastRun": { "scheduledTime": "2026-12-03T01:00:00Z", "deploymentId": "nightly-202612030100",
                         "startedTime": "2026-12-03T01:00:01Z" },
            "missedRuns": 2, "lastMissedTime": "2026-12-02T01:00:00Z",
            "held": { "scheduledTime": "2026-12-03T01:00:00Z", "reason": "the previous run is live" } });
        assert_eq!(
            super::schedule(&schedule),
            "nightly  Active  \"0 2 * * *\" in Europe/Amsterdam, policy forbid, starting deadline PT10M\n\
             \x20 starts: template greet (latest)\n\
             \x20 parameters: {\"word\":\"hi\"}\n\
             \x20 next run: 2026-12-04T01:00:00Z (nightly-202612040100)\n\
             \x20 last run: nightly-202612030100 for 2026-12-03T01:00:00Z, started 2026-12-03T01:00:01Z\n\
             \x20 missed runs: 2, the last for 2026-12-02T01:00:00Z\n\
             \x20 held: the previous run is live for 2026-12-03T01:00:00Z\n"
        );
        let list = json!({ "schedules": [schedule, { "name": "paused", "cron": "*/5 * * * *",
            "timeZone": "UTC", "concurrencyPolicy": "allow", "suspended": true, "missedRuns": 0,
            "target": { "spec": { "groups": [{ "name": "work" }] } } }], "unreadable": ["x\u{1b}y"] });
        assert_eq!(
            super::schedules(&list),
            "NAME     STATE   CRON         TIME ZONE         POLICY  NEXT RUN              LAST RUN              MISSED\n\
             nightly  Active  0 2 * * *    Europe/Amsterdam  forbid  2026-12-04T01:00:00Z  nightly-202612030100  2\n\
             paused   Paused  */5 * * * *  UTC               allow   -                     -                     0\n"
        );
        assert!(super::schedule(&list["schedules"][1]).contains("  starts: spec: work\n"));
        assert!(!super::unreadable(&list)[0].contains('\u{1b}'));
    }

    #[test]
    fn progress_names_status_phase_and_groups() {
        let status = json!({ "runtimeStatus": "Running", "phase": "Creating",
            "groups": [{ "name": "ffmpeg", "state": "Creating" }] });
        assert_eq!(
            super::progress(&status),
            "Running · Creating · ffmpeg:Creating"
        );
    }
}
