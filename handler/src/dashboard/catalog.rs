//! The pages of what starts deployments: the schedules (`/schedules`: each schedule's cron, time
//! zone, policy, target, last and next run, missed runs and held time, with pause and resume
//! buttons) and the templates (`/templates`: each template's latest version and the parameters it
//! declares, a page at a time).
//!
//! Everything a schedule or a template holds is the caller's input: it reaches the page only
//! through [`esc`], and into a URL only through [`seg`] or [`query`].

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::fanout::output_text;
use super::html::{esc, query, seg};
use super::pages::{csrf_field, frame, table, time};
use super::{Dashboard, Session};
use crate::driver::templates::StoredTemplate;
use crate::engine::Millis;
use crate::schedule::{Schedule, Target, run_id};
use crate::spec::IsoDuration;
use crate::spec::template::Parameter;

/// `<code>` around escaped text.
fn code(text: &str) -> String {
    format!("<code>{}</code>", esc(text))
}

/// `<code>` around escaped text kept on one line (an id, a cron expression).
fn whole(text: &str) -> String {
    format!("<code class=\"nowrap\">{}</code>", esc(text))
}

/// A JSON value as the page shows it: compact, cut, escaped.
fn value(v: &Value) -> String {
    code(&output_text(v))
}

/// What a schedule's runs start: the spec's mode and groups, or the template and its parameters.
fn target(schedule: &Schedule) -> String {
    match &schedule.target {
        Target::Spec { spec, .. } => {
            let groups: Vec<String> = spec.groups.iter().map(|g| code(&g.name)).collect();
            let mode = match spec.mode {
                crate::spec::Mode::Job => "job",
                crate::spec::Mode::Service => "service",
            };
            // The stored URLs are their origins already (`https://host/(sealed)`).
            let told: Vec<String> = spec
                .notify
                .iter()
                .map(|n| code(&super::pages::receiver(&n.url)))
                .collect();
            let notifies = match told.is_empty() {
                true => String::new(),
                false => format!(", notifying {}", told.join(", ")),
            };
            format!("spec: a {mode} of {}{notifies}", groups.join(", "))
        }
        Target::Template {
            template,
            version,
            parameters,
        } => {
            let version = version.map_or("latest version".to_owned(), |v| format!("version {v}"));
            format!(
                "template {}, {version}{}",
                code(template),
                arguments(parameters)
            )
        }
    }
}

/// A template target's parameters, `name = value` each.
fn arguments(parameters: &Map<String, Value>) -> String {
    if parameters.is_empty() {
        return String::new();
    }
    let given: Vec<String> = parameters
        .iter()
        .map(|(name, v)| format!("<li>{} = {}</li>", code(name), value(v)))
        .collect();
    format!("<ul class=\"params\">{}</ul>", given.join(""))
}

/// `concurrencyPolicy`, and `startingDeadline` when it has one.
fn policy(schedule: &Schedule) -> String {
    let deadline = schedule
        .starting_deadline_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map_or(String::new(), |ms| {
            format!(", starting deadline {}", IsoDuration(ms))
        });
    format!("{}{deadline}", schedule.concurrency_policy.as_str())
}

/// One schedule's pause or resume button: a `POST` form with the session's CSRF token.
fn suspend_form(dash: &Dashboard, session: &Session, schedule: &Schedule) -> String {
    let (action, label) = match schedule.suspended {
        true => ("resume", "Resume"),
        false => ("pause", "Pause"),
    };
    let path = format!("/schedules/{}/{action}", seg(&schedule.name));
    format!(
        "<form method=\"post\" class=\"action\" action=\"{}\">{}\
         <button type=\"submit\" id=\"{action}-{}\" aria-label=\"{label} {}\">{label}</button></form>",
        esc(&dash.href(session, &path)),
        csrf_field(session),
        esc(&schedule.name),
        esc(&schedule.name),
    )
}

/// One schedule as a row of the schedules table.
fn schedule_row(dash: &Dashboard, session: &Session, s: &Schedule, now: Millis) -> String {
    let state = match s.suspended {
        true => "<span class=\"badge paused\">Paused</span>",
        false => "<span class=\"badge active\">Active</span>",
    };
    let last = s.last_run.as_ref().map_or("—".to_owned(), |run| {
        let link = dash.href(session, &format!("/d/{}", seg(&run.deployment_id)));
        format!(
            "<a class=\"nowrap\" href=\"{}\">{}</a><br>for {}",
            esc(&link),
            esc(&run.deployment_id),
            time(run.scheduled)
        )
    });
    let next = s.next_run(now).map_or("—".to_owned(), |at| {
        format!("{}<br>{}", time(at), whole(&run_id(&s.name, at)))
    });
    let missed = match s.last_missed {
        Some(at) => format!("{}, the last for {}", s.missed_runs, time(at)),
        None => s.missed_runs.to_string(),
    };
    let held = s.held.as_ref().map_or("—".to_owned(), |h| {
        format!("{} (for {})", esc(&h.reason), time(h.scheduled))
    });
    format!(
        "<tr id=\"schedule-{}\"><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td>\
         <td>{state}</td><td>{}</td><td>{last}</td><td>{next}</td><td>{missed}</td><td>{held}</td>\
         <td>{}</td></tr>",
        esc(&s.name),
        esc(&s.name),
        whole(&s.cron),
        esc(&s.time_zone),
        esc(&policy(s)),
        target(s),
        suspend_form(dash, session, s),
    )
}

/// The schedules page: every schedule by name, the ones this Berth cannot read apart.
pub(super) fn schedules(
    dash: &Dashboard,
    session: &Session,
    schedules: &[Schedule],
    unreadable: &[String],
    now: Millis,
) -> String {
    let mut main = String::from(
        "<h1>Schedules</h1><section id=\"live-list\" data-refresh=\"3\" aria-live=\"polite\">",
    );
    let rows: String = schedules
        .iter()
        .map(|s| schedule_row(dash, session, s, now))
        .collect();
    main.push_str(&table(
        " class=\"schedules\"",
        &[
            "Name",
            "Cron",
            "Time zone",
            "Policy",
            "State",
            "Starts",
            "Last run",
            "Next run",
            "Missed runs",
            "Held",
            "Action",
        ],
        &rows,
        "No schedules (<code>PUT /api/schedules/{name}</code> or \
         <code>berth schedule put</code> makes one).",
    ));
    let unreadable: String = unreadable
        .iter()
        .map(|why| format!("<tr><td>{}</td></tr>", esc(why)))
        .collect();
    if !unreadable.is_empty() {
        main.push_str(&table(
            " id=\"unreadable\"",
            &["Cannot be read by this Berth (PUT replaces it, DELETE removes it)"],
            &unreadable,
            "",
        ));
    }
    let _ = write!(
        main,
        "<p class=\"stamp\">As of {}.</p></section>",
        time(now)
    );
    frame(dash, session, "Schedules", &main)
}

/// A declared parameter: its type, default, allowed values and the event field that fills it.
fn parameter(name: &str, p: &Parameter) -> String {
    let kind = serde_json::to_value(p.kind).unwrap_or(Value::Null);
    let mut out = format!("{} {}", code(name), esc(kind.as_str().unwrap_or("?")));
    match &p.default {
        Some(default) => {
            let _ = write!(out, ", default {}", value(default));
        }
        None => out.push_str(", required"),
    }
    if !p.allowed.is_empty() {
        let allowed: Vec<String> = p.allowed.iter().map(value).collect();
        let _ = write!(out, ", one of {}", allowed.join(" "));
    }
    if let Some(from) = &p.from {
        let _ = write!(out, ", from the event's {}", code(from));
    }
    format!("<li>{out}</li>")
}

/// A template listed: its name and latest version, and the version read or why it could not be.
pub(super) type Listed = (String, u32, Result<StoredTemplate, String>);

/// The templates page: a page of templates by name, each with its latest version's parameters.
pub(super) fn templates(
    dash: &Dashboard,
    session: &Session,
    listed: &[Listed],
    continuation: Option<&str>,
) -> String {
    let mut rows = String::new();
    for (name, version, read) in listed {
        let (created, parameters) = match read {
            Ok(t) if t.parameters.is_empty() => (time(t.created), "none".to_owned()),
            Ok(t) => {
                let declared: Vec<String> = t
                    .parameters
                    .iter()
                    .map(|(name, p)| parameter(name, p))
                    .collect();
                (
                    time(t.created),
                    format!("<ul class=\"params\">{}</ul>", declared.join("")),
                )
            }
            Err(why) => (
                "—".to_owned(),
                format!("<span class=\"error\">{}</span>", esc(why)),
            ),
        };
        let _ = write!(
            rows,
            "<tr id=\"template-{}\"><th scope=\"row\">{}</th><td>{version}</td><td>{created}</td>\
             <td>{parameters}</td></tr>",
            esc(name),
            esc(name),
        );
    }
    let mut main = String::from("<h1>Templates</h1>");
    main.push_str(&table(
        " class=\"templates\"",
        &["Name", "Latest version", "Created", "Parameters"],
        &rows,
        "No templates (<code>PUT /api/templates/{name}</code> or \
         <code>berth template put</code> stores one).",
    ));
    if let Some(token) = continuation {
        let next = format!("/templates?{}", query([("continuationToken", token)]));
        let _ = write!(
            main,
            "<p><a rel=\"next\" href=\"{}\">Next page</a></p>",
            esc(&dash.href(session, &next))
        );
    }
    frame(dash, session, "Templates", &main)
}
