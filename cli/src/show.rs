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

/// The items of an array field (none when it is absent or not an array).
fn items<'a>(value: &'a Value, field: &str) -> &'a [Value] {
    value[field]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `name:state` for each group of a status document.
fn groups(status: &Value) -> String {
    let groups: Vec<String> = items(status, "groups")
        .iter()
        .map(|g| format!("{}:{}", text(g, "name"), text(g, "state")))
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
            text(group, "state")
        ));
        for c in items(group, "containers") {
            let exit = match &c["exitCode"] {
                Value::Null => String::new(),
                _ => format!(", exit code {}", text(c, "exitCode")),
            };
            out.push_str(&format!(
                "    {}: {}{exit}\n",
                text(c, "name"),
                text(c, "state")
            ));
        }
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
    fn progress_names_status_phase_and_groups() {
        let status = json!({ "runtimeStatus": "Running", "phase": "Creating",
            "groups": [{ "name": "ffmpeg", "state": "Creating" }] });
        assert_eq!(
            super::progress(&status),
            "Running · Creating · ffmpeg:Creating"
        );
    }
}
