//! Fan-out groups (`count` or `items`, up to 10,000 instances): their summary on the deployment's
//! page, and the group's instances page (`/d/{id}/g/{group}`), a page of at most
//! [`MAX_PAGE`] instances at a time from the same listing as
//! `GET /api/deployments/{id}/groups/{group}/instances`. No page renders every instance.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::http::StatusCode;
use serde_json::Value;

use super::html::{esc, query, seg};
use super::pages::{containers, frame, section};
use super::{Dashboard, ErrorPage, Session, timeline};
use crate::api::{Problem, status};
use crate::engine::flow::Tally;
use crate::engine::{Deployment, Instance, Millis, Phase};

/// Instances per page of a group's instances page, unless `top` asks for fewer.
pub const MAX_PAGE: usize = 100;
/// Failures a group's summary lists; the rest are on its instances page.
const FAILURES_SHOWN: usize = 10;
/// Outputs a group's summary lists.
const OUTPUTS_SHOWN: usize = 5;
/// Most characters of an output a table shows.
const OUTPUT_CHARS: usize = 200;

/// The counts of a group's instances by state, in words.
fn tally_text(t: &Tally) -> String {
    format!(
        "{} new, {} running, {} retrying, {} succeeded, {} failed",
        t.new, t.running, t.retrying, t.succeeded, t.failed
    )
}

/// A JSON output, compact and cut to [`OUTPUT_CHARS`] characters.
pub(super) fn output_text(output: &Value) -> String {
    let text = output.to_string();
    match text.char_indices().nth(OUTPUT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The link to group `group`'s instances page, from `query` (already encoded, may be empty).
fn instances_href(
    dash: &Dashboard,
    session: &Session,
    id: &str,
    group: &str,
    query: &str,
) -> String {
    let path = format!("/d/{}/g/{}", seg(id), seg(group));
    if query.is_empty() {
        dash.href(session, &path)
    } else {
        dash.href(session, &format!("{path}?{query}"))
    }
}

/// The deployment page's summary of each fan-out group: counts by state, the first failures
/// with their exit codes, the first outputs, and the way to all its instances. Empty when no
/// group fans out.
pub(super) fn summaries(dash: &Dashboard, session: &Session, d: &Deployment) -> String {
    let doc = status::status(d, &dash.api.prices, dash.api.driver.now());
    let mut out = String::new();
    for (group, gd) in d.spec.groups.iter().zip(&doc.groups) {
        if !group.fans_out() {
            continue;
        }
        let count = group.instance_count();
        let _ = write!(
            out,
            "<div class=\"fanout\" id=\"fanout-{}\"><h3>{} <span class=\"muted\">({count} instances, by {})</span></h3>\
             <p class=\"tally\">{}</p>",
            seg(&group.name),
            esc(&group.name),
            if group.items.is_some() {
                "items"
            } else {
                "count"
            },
            tally_text(&gd.instances)
        );
        if !gd.failures.is_empty() {
            let failed = gd.instances.failed as usize;
            let _ = write!(
                out,
                "<table class=\"failures\"><caption>Failures ({} of {failed} shown)</caption><thead><tr>\
                 <th scope=\"col\">Index</th><th scope=\"col\">Attempt</th><th scope=\"col\">Exit code</th>\
                 <th scope=\"col\">Error</th></tr></thead><tbody>",
                gd.failures.len().min(FAILURES_SHOWN)
            );
            for f in gd.failures.iter().take(FAILURES_SHOWN) {
                let _ = write!(
                    out,
                    "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                    f.index,
                    f.attempt,
                    f.exit_code.map_or("—".to_owned(), |c| c.to_string()),
                    esc(f.error.unwrap_or(""))
                );
            }
            out.push_str("</tbody></table>");
        }
        if !gd.outputs.is_empty() {
            out.push_str("<dl class=\"outputs\">");
            for (index, output) in gd.outputs.iter().take(OUTPUTS_SHOWN) {
                let _ = write!(
                    out,
                    "<dt>Output of [{index}]</dt><dd><code>{}</code></dd>",
                    esc(&output_text(output))
                );
            }
            out.push_str("</dl>");
        }
        let _ = write!(
            out,
            "<p><a class=\"instances\" href=\"{}\">All {count} instances of {}</a> ({MAX_PAGE} a page)</p></div>",
            esc(&instances_href(dash, session, &d.id, &group.name, "")),
            esc(&group.name)
        );
    }
    out
}

/// Where a page of a group's instances starts and how long it is, from its query.
#[derive(Debug)]
pub(super) struct PageQuery {
    pub from: u32,
    pub top: usize,
}

impl PageQuery {
    /// `continuationToken` (one this page or the API gave) and `top` (1 to [`MAX_PAGE`]); a
    /// value that is neither gets a `400` naming it.
    pub(super) fn from_query(query: Option<&str>) -> Result<Self, ErrorPage> {
        let mut page = PageQuery {
            from: 0,
            top: MAX_PAGE,
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*name {
                "continuationToken" if !value.is_empty() => {
                    page.from = status::instance_token(&value).ok_or_else(|| {
                        Problem::bad_request("continuationToken", "not a token this page gave")
                    })?;
                }
                "top" if !value.is_empty() => {
                    page.top = value
                        .parse::<usize>()
                        .ok()
                        .filter(|t| (1..=MAX_PAGE).contains(t))
                        .ok_or_else(|| {
                            Problem::bad_request(
                                "top",
                                format!("must be a number from 1 to {MAX_PAGE}"),
                            )
                        })?;
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

/// The links to an instance's logs: saved ones as text, a running one's live tail.
fn log_links(
    dash: &Dashboard,
    session: &Session,
    d: &Deployment,
    inst: Option<&Instance>,
) -> String {
    let Some(inst) = inst else {
        return "—".into();
    };
    let live = !inst.logs_saved && !inst.deleted && inst.created.is_some();
    if !inst.logs_saved && !live {
        return "—".into();
    }
    containers(d, inst)
        .iter()
        .map(|container| {
            let path = format!(
                "/d/{}/logs/{}/{}{}",
                seg(&d.id),
                seg(&inst.aci_name),
                seg(container),
                if live { "?tail=200" } else { "" }
            );
            format!(
                "<a href=\"{}\">{}{}</a>",
                esc(&dash.href(session, &path)),
                esc(container),
                if live { " (live)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A group's instances page: the group's counts, a page of its instances by index (state,
/// attempt, exit code, error, output, logs) and their timeline, and the link to the next page.
/// `None` when the deployment has no group `group`.
pub(super) fn page(
    dash: &Dashboard,
    session: &Session,
    d: &Deployment,
    group: &str,
    at: &PageQuery,
    now: Millis,
) -> Result<String, ErrorPage> {
    let listing = status::instances(d, group, at.from, at.top).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("group: deployment '{}' has no group '{group}'", d.id),
        )
    })?;
    let slot = d
        .spec
        .groups
        .iter()
        .position(|g| g.name == group)
        .unwrap_or_default();
    let total = d.spec.groups[slot].instance_count();
    let by_name: HashMap<&str, &Instance> = d
        .instances
        .iter()
        .filter(|i| i.slot == slot)
        .map(|i| (i.aci_name.as_str(), i))
        .collect();
    let live = d.phase != Phase::Done;
    let deployment = dash.href(session, &format!("/d/{}", seg(&d.id)));
    let mut main = format!(
        "<h1>Group <code>{}</code> of <a href=\"{}\"><code>{}</code></a></h1>",
        esc(group),
        esc(&deployment),
        esc(&d.id)
    );
    let first = listing.instances.first().map_or(at.from, |i| i.index);
    let last = listing.instances.last().map_or(at.from, |i| i.index + 1);
    let caption = if first == last {
        format!("No instances from index {first}: the group has {total}")
    } else {
        format!("Instances {first} to {} of {total}", last - 1)
    };
    let mut table = format!(
        "<p class=\"tally\">{}</p><table class=\"instances\"><caption>{caption}</caption>\
         <thead><tr><th scope=\"col\">Index</th><th scope=\"col\">State</th><th scope=\"col\">Attempt</th>\
         <th scope=\"col\">Container group</th><th scope=\"col\">Exit code</th><th scope=\"col\">Error</th>\
         <th scope=\"col\">Output</th><th scope=\"col\">Logs</th></tr></thead><tbody>",
        tally_text(&crate::engine::flow::tally(d, slot)),
    );
    for doc in &listing.instances {
        let inst = doc.aci_name.and_then(|n| by_name.get(n).copied());
        let _ = write!(
            table,
            "<tr><th scope=\"row\">{}</th><td><span class=\"state {}\">{}</span></td><td>{}</td>\
             <td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            doc.index,
            doc.state.to_ascii_lowercase(),
            doc.state,
            doc.attempt,
            esc(doc.aci_name.unwrap_or("—")),
            doc.exit_code.map_or("—".to_owned(), |c| c.to_string()),
            esc(doc.error.unwrap_or("")),
            esc(&doc.output.map_or(String::new(), output_text)),
            log_links(dash, session, d, inst)
        );
    }
    table.push_str("</tbody></table><nav class=\"pager\" aria-label=\"Pages\">");
    let top = if at.top == MAX_PAGE {
        String::new()
    } else {
        at.top.to_string()
    };
    if at.from > 0 {
        let _ = write!(
            table,
            "<a rel=\"first\" href=\"{}\">First page</a> ",
            esc(&instances_href(
                dash,
                session,
                &d.id,
                group,
                &query([("top", top.as_str())])
            ))
        );
    }
    if let Some(token) = &listing.continuation_token {
        let next = query([("top", top.as_str()), ("continuationToken", token.as_str())]);
        let _ = write!(
            table,
            "<a rel=\"next\" href=\"{}\">Next {} instances</a>",
            esc(&instances_href(dash, session, &d.id, group, &next)),
            at.top
        );
    }
    table.push_str("</nav>");
    main.push_str(&section("instances", "Instances", &table, live));
    main.push_str(&section(
        "timeline",
        "Timeline of these instances",
        &timeline::of_instances(d, slot, first..last, now).svg(),
        live,
    ));
    Ok(frame(dash, session, &format!("{group} · {}", d.id), &main))
}
