//! The pages' HTML: the deployments list, a deployment, the purge confirmation.

use std::fmt::Write as _;

use serde_json::Value;

use super::html::{Frame, esc, query, seg};
use super::{Dashboard, Session, timeline};
use crate::api::{Problem, status};
use crate::checkpoint::{ListQuery, Page};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::engine::{Deployment, Instance, Millis, Phase, RuntimeStatus};
use crate::spec::{Mode, RunWhen};

/// The most of a container's saved logs a page shows (the end); the whole is a link away.
const MAX_LOG_SHOWN: usize = 256 * 1024;

/// Deployments per page of the list (and templates per page of theirs).
pub(super) const PAGE_SIZE: usize = 25;

/// Longest filter value accepted: a tag's key and value with room to spare (ARM allows 512 and
/// 256 characters); a continuation token is far shorter.
const MAX_FILTER_CHARS: usize = 1024;

/// The list's filters, from its query.
#[derive(Debug, Default)]
pub struct Filters {
    status: Option<RuntimeStatus>,
    /// Created at or after (UTC), and as typed.
    after: Option<Millis>,
    after_text: String,
    /// `key` or `key=value`.
    tag: String,
    continuation: Option<String>,
    /// Why the query is refused (`field: reason`): the page says so instead of listing.
    pub(super) refused: Option<Problem>,
}

impl Filters {
    /// The filters of a list URL's query. A value that is not one is kept as typed, for the form,
    /// and the first such makes [`Filters::refused`] a `400` naming it.
    pub(super) fn from_query(query: Option<&str>) -> Self {
        let mut filters = Filters::default();
        let pairs = url::form_urlencoded::parse(query.unwrap_or("").as_bytes());
        for (name, value) in pairs {
            let value = value.trim();
            if let Err(problem) = filters.take(&name, value) {
                filters.refused.get_or_insert(problem);
            }
        }
        filters
    }

    /// Takes one pair of the query.
    fn take(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        let known = matches!(name, "status" | "after" | "tag" | "continuationToken");
        if known && value.chars().count() > MAX_FILTER_CHARS {
            return Err(Problem::bad_request(
                name,
                format!("at most {MAX_FILTER_CHARS} characters"),
            ));
        }
        match name {
            "status" if !value.is_empty() => {
                self.status = Some(RuntimeStatus::parse(value).ok_or_else(|| {
                    Problem::bad_request(
                        "status",
                        format!(
                            "'{value}' is not one of Pending, Running, Succeeded, Failed, TimedOut, Terminated"
                        ),
                    )
                })?);
            }
            "after" if !value.is_empty() => {
                self.after_text = value.to_owned();
                let at = match value.len() {
                    10 => parse_rfc3339(&format!("{value}T00:00:00Z")),
                    16 => parse_rfc3339(&format!("{value}:00Z")),
                    _ => parse_rfc3339(value),
                };
                self.after = Some(at.ok_or_else(|| {
                    Problem::bad_request(
                        "after",
                        format!("'{value}' is not a time (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)"),
                    )
                })?);
            }
            "tag" => self.tag = value.to_owned(),
            "continuationToken" if !value.is_empty() => {
                self.continuation = Some(value.to_owned());
            }
            _ => {}
        }
        Ok(())
    }

    /// What to ask the store for: the status filter and the page; time and tag are applied to
    /// the page's deployments.
    pub(super) fn store_query(&self) -> ListQuery {
        ListQuery {
            status: self.status,
            top: PAGE_SIZE,
            continuation: self.continuation.clone(),
        }
    }

    fn keeps(&self, d: &Deployment) -> bool {
        let after = self.after.is_none_or(|at| d.created >= at);
        let tag = match self.tag.split_once('=') {
            _ if self.tag.is_empty() => true,
            Some((k, v)) => d.spec.tags.get(k.trim()).is_some_and(|t| t == v.trim()),
            None => d.spec.tags.contains_key(&self.tag),
        };
        after && tag
    }

    /// The query of this list's next page.
    fn next(&self, token: &str) -> String {
        query([
            ("status", self.status.map_or("", RuntimeStatus::as_str)),
            ("after", self.after_text.as_str()),
            ("tag", self.tag.as_str()),
            ("continuationToken", token),
        ])
    }
}

pub(super) fn frame(dash: &Dashboard, session: &Session, title: &str, main: &str) -> String {
    let [home, schedules, templates, css, js] = [
        "/",
        "/schedules",
        "/templates",
        "/assets/dashboard.css",
        "/assets/dashboard.js",
    ]
    .map(|path| dash.href(session, path));
    Frame {
        title,
        home: &home,
        schedules: &schedules,
        templates: &templates,
        css: &css,
        js: &js,
    }
    .page(main)
}

/// A status as a badge: its name in words (colour is never the only cue).
fn badge(status: RuntimeStatus) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        status.as_str().to_ascii_lowercase(),
        status.as_str()
    )
}

fn tags(d: &Deployment) -> String {
    d.spec
        .tags
        .iter()
        .map(|(k, v)| format!("<span class=\"tag\">{}={}</span>", esc(k), esc(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mode(mode: Mode) -> &'static str {
    match mode {
        Mode::Job => "job",
        Mode::Service => "service",
    }
}

pub(super) fn time(at: Millis) -> String {
    let text = rfc3339(at);
    format!("<time datetime=\"{0}\">{0}</time>", esc(&text))
}

/// The deployments list.
pub(super) fn list(
    dash: &Dashboard,
    session: &Session,
    filters: &Filters,
    page: &Page,
    now: Millis,
) -> String {
    let mut main = String::from("<h1>Deployments</h1>");
    let _ = write!(
        main,
        "<form class=\"filters\" method=\"get\" action=\"{}\">",
        esc(&dash.href(session, "/"))
    );
    if let Some(code) = &session.code {
        let _ = write!(
            main,
            "<input type=\"hidden\" name=\"code\" value=\"{}\">",
            esc(code)
        );
    }
    main.push_str("<label for=\"f-status\">Status</label><select id=\"f-status\" name=\"status\"><option value=\"\">any</option>");
    for s in RuntimeStatus::ALL {
        let selected = if filters.status == Some(s) {
            " selected"
        } else {
            ""
        };
        let _ = write!(main, "<option{selected}>{}</option>", s.as_str());
    }
    let _ = write!(
        main,
        "</select><label for=\"f-after\">Created after (UTC)</label>\
         <input id=\"f-after\" name=\"after\" type=\"datetime-local\" value=\"{}\">\
         <label for=\"f-tag\">Tag</label>\
         <input id=\"f-tag\" name=\"tag\" placeholder=\"key=value\" value=\"{}\">\
         <button type=\"submit\">Filter</button></form>",
        esc(&filters.after_text),
        esc(&filters.tag)
    );
    if let Some(problem) = &filters.refused {
        let _ = write!(
            main,
            "<p class=\"error\" id=\"filter-error\" role=\"alert\">Not listed: {}</p>",
            esc(&problem.detail)
        );
        return frame(dash, session, "Deployments", &main);
    }
    main.push_str("<section id=\"live-list\" data-refresh=\"3\" aria-live=\"polite\">");
    let shown: Vec<&Deployment> = page.items.iter().filter(|d| filters.keeps(d)).collect();
    // Newest first: once a page reaches past `after`, no later page has anything to show.
    let past_after = filters
        .after
        .is_some_and(|at| page.items.iter().any(|d| d.created < at));
    let next = page.continuation.as_ref().filter(|_| !past_after);
    if shown.is_empty() && next.is_some() {
        main.push_str(
            "<p class=\"empty\">Nothing on this page matches the filters; later pages may.</p>",
        );
    } else if shown.is_empty() {
        main.push_str("<p class=\"empty\">No deployments here.</p>");
    } else {
        main.push_str(
            "<table class=\"deployments\"><caption>Newest first</caption><thead><tr>\
             <th scope=\"col\">Id</th><th scope=\"col\">Status</th><th scope=\"col\">Phase</th>\
             <th scope=\"col\">Mode</th><th scope=\"col\">Groups</th><th scope=\"col\">Created</th>\
             <th scope=\"col\">Updated</th><th scope=\"col\">Tags</th><th scope=\"col\">Cost (USD)</th>\
             </tr></thead><tbody>",
        );
        for d in shown {
            let doc = status::status(d, &dash.api.prices, dash.api.driver.now());
            let _ = write!(
                main,
                "<tr><th scope=\"row\"><a href=\"{}\">{}</a></th><td>{}</td><td>{:?}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.6}</td></tr>",
                esc(&dash.href(session, &format!("/d/{}", seg(&d.id)))),
                esc(&d.id),
                badge(d.status),
                d.phase,
                mode(d.spec.mode),
                d.spec.groups.len(),
                time(d.created),
                time(d.updated),
                tags(d),
                doc.cost.estimated_usd,
            );
        }
        main.push_str("</tbody></table>");
    }
    if !page.unreadable.is_empty() {
        main.push_str(
            "<table class=\"deployments\" id=\"unreadable\"><caption>Cannot be read by this Berth \
             (purge them, or read them with a Berth that can)</caption><thead><tr>\
             <th scope=\"col\">Id</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th>\
             <th scope=\"col\">Why</th></tr></thead><tbody>",
        );
        for u in &page.unreadable {
            let _ = write!(
                main,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&u.id),
                esc(u.status.as_str()),
                time(u.created),
                esc(&u.reason),
            );
        }
        main.push_str("</tbody></table>");
    }
    if let Some(token) = next {
        let _ = write!(
            main,
            "<p><a rel=\"next\" href=\"{}\">Next page</a></p>",
            esc(&dash.href(session, &format!("/?{}", filters.next(token))))
        );
    }
    let _ = write!(
        main,
        "<p class=\"stamp\">As of {}.</p></section>",
        time(now)
    );
    frame(dash, session, "Deployments", &main)
}

/// The names of an instance's containers: as ACI reported them, else as the spec has them.
pub(super) fn containers(d: &Deployment, inst: &Instance) -> Vec<String> {
    match &inst.observed {
        Some(o) if !o.containers.is_empty() => {
            o.containers.iter().map(|c| c.name.clone()).collect()
        }
        _ => d
            .spec
            .groups
            .get(inst.slot)
            .map(|g| g.shape().containers)
            .unwrap_or_default(),
    }
}

/// Where the stored spec lost a secret (they are sealed apart from it), `"(sealed)"` in its place:
/// an environment variable with no value, a registry credential without a password, a volume
/// with nothing but its name (a `secret` volume), Log Analytics without its key.
pub fn sealed_view(spec: &mut Value) {
    let Some(groups) = spec.get_mut("groups").and_then(Value::as_array_mut) else {
        return;
    };
    let sealed = || Value::String("(sealed)".into());
    for group in groups {
        let Some(properties) = group.get_mut("properties") else {
            continue;
        };
        for list in ["containers", "initContainers"] {
            let containers = properties.get_mut(list).and_then(Value::as_array_mut);
            for container in containers.into_iter().flatten() {
                let vars = container
                    .pointer_mut("/properties/environmentVariables")
                    .and_then(Value::as_array_mut);
                for var in vars.into_iter().flatten().filter_map(Value::as_object_mut) {
                    if !var.contains_key("value") && !var.contains_key("secureValueFrom") {
                        var.insert("secureValue".into(), sealed());
                    }
                }
            }
        }
        let creds = properties
            .get_mut("imageRegistryCredentials")
            .and_then(Value::as_array_mut);
        for cred in creds.into_iter().flatten().filter_map(Value::as_object_mut) {
            if cred.contains_key("username")
                && !cred.contains_key("password")
                && !cred.contains_key("identity")
            {
                cred.insert("password".into(), sealed());
            }
        }
        let volumes = properties.get_mut("volumes").and_then(Value::as_array_mut);
        for volume in volumes
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            if volume.len() == 1 && volume.contains_key("name") {
                volume.insert("secret".into(), sealed());
            }
        }
        if let Some(la) = properties
            .pointer_mut("/diagnostics/logAnalytics")
            .and_then(Value::as_object_mut)
            && !la.contains_key("workspaceKey")
        {
            la.insert("workspaceKey".into(), sealed());
        }
    }
}

pub(super) fn section(id: &str, title: &str, body: &str, live: bool) -> String {
    let refresh = if live {
        " data-refresh=\"3\" aria-live=\"polite\""
    } else {
        ""
    };
    format!(
        "<section id=\"{id}\" aria-labelledby=\"{id}-h\"{refresh}><h2 id=\"{id}-h\">{title}</h2>{body}</section>"
    )
}

fn summary(dash: &Dashboard, d: &Deployment) -> String {
    let doc = status::status(d, &dash.api.prices, dash.api.driver.now());
    let mut out = String::from("<dl class=\"summary\">");
    let mut row = |name: &str, value: String| {
        let _ = write!(out, "<dt>{name}</dt><dd>{value}</dd>");
    };
    row("Status", badge(d.status));
    row("Phase", format!("{:?}", d.phase));
    row("Mode", mode(d.spec.mode).to_owned());
    row("Attempt", d.attempt.to_string());
    row("Created", time(d.created));
    row("Updated", time(d.updated));
    if let Some(error) = doc.error {
        row(
            "Error",
            format!("<span class=\"error\">{}</span>", esc(error)),
        );
    }
    if !d.spec.tags.is_empty() {
        row("Tags", tags(d));
    }
    if let Some(template) = &d.spec.template {
        row(
            "Template",
            format!(
                "<code>{}</code>, version {}",
                esc(&template.name),
                template.version
            ),
        );
    }
    row(
        "Cost",
        format!(
            "{:.3} vCPU-seconds, {:.3} GB-seconds, about ${:.6}",
            doc.cost.vcpu_seconds, doc.cost.memory_gb_seconds, doc.cost.estimated_usd
        ),
    );
    out.push_str("</dl>");
    out
}

/// A `runWhen` as a CSS class of the edges into its group.
fn run_when(when: RunWhen) -> &'static str {
    match when {
        RunWhen::Succeeded => "succeeded",
        RunWhen::Failed => "failed",
        RunWhen::Always => "always",
    }
}

/// A `runWhen` in words, as edges are labelled with it.
fn run_when_words(when: RunWhen) -> &'static str {
    match when {
        RunWhen::Succeeded => "on success",
        RunWhen::Failed => "on failure",
        RunWhen::Always => "always",
    }
}

/// The workflow: each spec group with its dependencies, how it stands and its instances, as a
/// layered graph (a group right of everything it depends on, an arrow from each dependency
/// labelled with when the group runs) and as a table that says the same.
fn workflow(dash: &Dashboard, d: &Deployment) -> String {
    let doc = status::status(d, &dash.api.prices, dash.api.driver.now());
    let groups = &d.spec.groups;
    let slot_of = |name: &str| groups.iter().position(|g| g.name == name);
    // Depth: the longest chain of dependencies below a group (the spec has no cycles).
    let mut depth = vec![0usize; groups.len()];
    for _ in 0..groups.len() {
        for (i, g) in groups.iter().enumerate() {
            for dep in g.depends_on.iter().filter_map(|n| slot_of(n)) {
                depth[i] = depth[i].max(depth[dep] + 1);
            }
        }
    }
    let mut row_in_column = vec![0usize; groups.len()];
    let mut used = std::collections::BTreeMap::<usize, usize>::new();
    for (i, column) in depth.iter().enumerate() {
        let next = used.entry(*column).or_default();
        row_in_column[i] = *next;
        *next += 1;
    }
    let rows = used.values().copied().max().unwrap_or(1);
    let columns = depth.iter().copied().max().unwrap_or(0) + 1;
    let (node_w, node_h, gap_x, gap_y) = (170.0, 44.0, 100.0, 16.0);
    let at = |i: usize| {
        (
            8.0 + depth[i] as f64 * (node_w + gap_x),
            8.0 + row_in_column[i] as f64 * (node_h + gap_y),
        )
    };
    let width = 16.0 + columns as f64 * (node_w + gap_x) - gap_x;
    // Room under the nodes for the edges that skip a column.
    const ARC: f64 = 28.0;
    let skips = groups.iter().enumerate().any(|(i, g)| {
        g.depends_on
            .iter()
            .filter_map(|n| slot_of(n))
            .any(|dep| depth[i] > depth[dep] + 1)
    });
    let height =
        16.0 + rows as f64 * (node_h + gap_y) - gap_y + if skips { ARC + 14.0 } else { 0.0 };
    let mut svg = format!(
        "<figure class=\"graph\"><svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" \
         aria-label=\"Dependency graph of {} group(s); the table below says the same\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
        groups.len()
    );
    svg.push_str(
        "<defs><marker id=\"graph-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path class=\"arrow\" d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>",
    );
    for (i, g) in groups.iter().enumerate() {
        let (class, words) = (run_when(g.run_when), run_when_words(g.run_when));
        for dep in g.depends_on.iter().filter_map(|n| slot_of(n)) {
            let ((x1, y1), (x2, y2)) = (at(dep), at(i));
            // Next column: a curve from right side to left side. Further: under the nodes
            // between, from bottom to bottom, so it crosses none of them.
            let (d, (lx, ly)) = if depth[i] == depth[dep] + 1 {
                let (x1, y1, x2, y2) = (x1 + node_w, y1 + node_h / 2.0, x2, y2 + node_h / 2.0);
                let bend = (x2 - x1) / 2.0;
                (
                    format!(
                        "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
                        x1 + bend,
                        x2 - bend
                    ),
                    ((x1 + x2) / 2.0, (y1 + y2) / 2.0 - 4.0),
                )
            } else {
                let (x1, y1) = (x1 + node_w * 0.75, y1 + node_h);
                let (x2, y2) = (x2 + node_w * 0.25, y2 + node_h);
                let below = y1.max(y2) + ARC;
                (
                    format!(
                        "M{x1:.1},{y1:.1} C{x1:.1},{below:.1} {x2:.1},{below:.1} {x2:.1},{y2:.1}"
                    ),
                    (
                        (x1 + x2) / 2.0,
                        0.25 * (y1 + y2) / 2.0 + 0.75 * below + 12.0,
                    ),
                )
            };
            let _ = write!(
                svg,
                "<g class=\"edge-of\"><path class=\"edge {class}\" marker-end=\"url(#graph-arrow)\" d=\"{d}\">\
                 <title>{} → {}: it runs {words}</title></path>\
                 <text class=\"when {class}\" x=\"{lx:.1}\" y=\"{ly:.1}\">{words}</text></g>",
                esc(&groups[dep].name),
                esc(&g.name),
            );
        }
    }
    for (i, g) in groups.iter().enumerate() {
        let (x, y) = at(i);
        // How it ended says more than its container group's last state (`Deleted`).
        let state = doc
            .groups
            .get(i)
            .map_or("?".to_owned(), |g| match g.result {
                Some(result) => format!("{result:?}"),
                None => g.state.to_owned(),
            });
        let _ = write!(
            svg,
            "<g class=\"node {}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{node_w}\" height=\"{node_h}\" rx=\"6\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text><text class=\"state\" x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            esc(&state.to_ascii_lowercase()),
            x + 8.0,
            y + 18.0,
            esc(&g.name),
            x + 8.0,
            y + 36.0,
            esc(&state)
        );
    }
    svg.push_str("</svg></figure>");
    let mut table = String::from(
        "<table><thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Depends on</th>\
         <th scope=\"col\">Runs when</th><th scope=\"col\">State</th>\
         <th scope=\"col\">Instances</th></tr></thead><tbody>",
    );
    for (i, g) in groups.iter().enumerate() {
        let Some(gd) = doc.groups.get(i) else {
            continue;
        };
        let t = &gd.instances;
        let deps = if g.depends_on.is_empty() {
            "—".to_owned()
        } else {
            esc(&g.depends_on.join(", "))
        };
        let _ = write!(
            table,
            "<tr><th scope=\"row\">{}</th><td>{deps}</td><td>{}</td><td>{}</td>\
             <td>{} new, {} running, {} retrying, {} succeeded, {} failed</td></tr>",
            esc(&g.name),
            if g.depends_on.is_empty() {
                "—"
            } else {
                run_when_words(g.run_when)
            },
            esc(&gd.result.map_or(gd.state.to_owned(), |r| format!("{r:?}"))),
            t.new,
            t.running,
            t.retrying,
            t.succeeded,
            t.failed
        );
    }
    table.push_str("</tbody></table>");
    format!("{svg}{table}")
}

/// Whether `inst` is one of a fan-out group's instances (shown on the group's own page).
pub(super) fn fanned_out(d: &Deployment, inst: &Instance) -> bool {
    d.spec.groups.get(inst.slot).is_some_and(|g| g.fans_out())
}

/// The container groups of the groups that do not fan out, one row each.
fn groups(d: &Deployment) -> String {
    if !d.instances.iter().any(|i| !fanned_out(d, i)) {
        return if d.spec.groups.iter().all(|g| g.fans_out()) {
            String::new()
        } else {
            "<p class=\"empty\">No container group yet.</p>".into()
        };
    }
    let mut out = String::from(
        "<table><thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Generation</th>\
         <th scope=\"col\">Container group</th><th scope=\"col\">State</th>\
         <th scope=\"col\">Containers</th><th scope=\"col\">Created</th>\
         <th scope=\"col\">Logs saved</th><th scope=\"col\">Deleted</th></tr></thead><tbody>",
    );
    for inst in d.instances.iter().filter(|i| !fanned_out(d, i)) {
        let group = d
            .spec
            .groups
            .get(inst.slot)
            .map_or("?", |g| g.name.as_str());
        let state = status::instance_state(inst);
        let containers = match &inst.observed {
            Some(o) => o
                .containers
                .iter()
                .map(|c| {
                    let exit = c
                        .exit_code
                        .map_or(String::new(), |code| format!(", exit {code}"));
                    let restarts = if c.restart_count > 0 {
                        format!(", {} restarts", c.restart_count)
                    } else {
                        String::new()
                    };
                    esc(&format!("{}: {}{exit}{restarts}", c.name, c.state))
                })
                .collect::<Vec<_>>()
                .join("<br>"),
            None => esc(&containers(d, inst).join(", ")),
        };
        let problem = inst
            .observed
            .as_ref()
            .and_then(|o| o.problem.as_deref())
            .map_or(String::new(), |p| {
                format!("<br><span class=\"error\">{}</span>", esc(p))
            });
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}{}</td><td><code>{}</code></td><td>{}{problem}</td>\
             <td>{containers}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(group),
            inst.generation,
            if inst.retiring { " (retired)" } else { "" },
            esc(&inst.aci_name),
            esc(state),
            inst.created.map_or("—".into(), time),
            if inst.logs_saved { "yes" } else { "no" },
            if inst.deleted { "yes" } else { "no" },
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn logs(
    dash: &Dashboard,
    session: &Session,
    d: &Deployment,
    saved: &[(String, String, Option<String>)],
) -> String {
    let mut out = String::new();
    for (instance, container, text) in saved {
        let full = dash.href(
            session,
            &format!(
                "/d/{}/logs/{}/{}",
                seg(&d.id),
                seg(instance),
                seg(container)
            ),
        );
        let text = text.as_deref().unwrap_or("(no saved logs)");
        let (shown, note) = match text.len().checked_sub(MAX_LOG_SHOWN) {
            Some(cut) if cut > 0 => {
                let start = (cut..text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                (
                    &text[start..],
                    format!(
                        "; the last {} KB of {} KB",
                        MAX_LOG_SHOWN / 1024,
                        text.len() / 1024
                    ),
                )
            }
            _ => (text, String::new()),
        };
        let _ = write!(
            out,
            "<details open><summary>{} / {} (saved{note}; <a href=\"{}\">as text</a>)</summary>\
             <pre class=\"log\" tabindex=\"0\">{}</pre></details>",
            esc(instance),
            esc(container),
            esc(&full),
            esc(shown)
        );
    }
    for inst in d
        .current()
        .filter(|i| !i.logs_saved && !i.deleted && i.created.is_some() && !fanned_out(d, i))
    {
        for container in containers(d, inst) {
            let url = dash.href(
                session,
                &format!(
                    "/d/{}/logs/{}/{}?tail=200",
                    seg(&d.id),
                    seg(&inst.aci_name),
                    seg(&container)
                ),
            );
            let _ = write!(
                out,
                "<details open><summary>{} / {} (live: the last 200 lines)</summary>\
                 <pre class=\"log\" tabindex=\"0\" data-live=\"{}\">Waiting for logs… \
                 (updated by the page's script; <a href=\"{}\">open as text</a>)</pre></details>",
                esc(&inst.aci_name),
                esc(&container),
                esc(&url),
                esc(&url),
            );
        }
    }
    let fanned: Vec<String> = d
        .spec
        .groups
        .iter()
        .filter(|g| g.fans_out())
        .map(|g| {
            let path = format!("/d/{}/g/{}", seg(&d.id), seg(&g.name));
            format!(
                "<a href=\"{}\">{}</a>",
                esc(&dash.href(session, &path)),
                esc(&g.name)
            )
        })
        .collect();
    if out.is_empty() && fanned.is_empty() {
        out.push_str("<p class=\"empty\">No logs yet.</p>");
    }
    if !fanned.is_empty() {
        let _ = write!(
            out,
            "<p>A fan-out group's logs are on its instances' page: {}.</p>",
            fanned.join(", ")
        );
    }
    out
}

/// The hidden field that carries the session's CSRF token in every action's form.
pub(super) fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&session.csrf)
    )
}

/// A table of `rows` (HTML, `<tr>` each) under the column headers (HTML), with `attrs` (HTML,
/// e.g. ` class="x"`, or empty); `empty` (HTML) said instead when there are no rows.
pub(super) fn table(attrs: &str, columns: &[&str], rows: &str, empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{empty}</p>");
    }
    let mut out = format!("<table{attrs}><thead><tr>");
    for column in columns {
        let _ = write!(out, "<th scope=\"col\">{column}</th>");
    }
    let _ = write!(out, "</tr></thead><tbody>{rows}</tbody></table>");
    out
}

fn actions(dash: &Dashboard, session: &Session, d: &Deployment) -> String {
    let base = format!("/d/{}", seg(&d.id));
    let csrf = csrf_field(session);
    let mut out = String::new();
    if !d.status.is_terminal() {
        let _ = write!(
            out,
            "<form method=\"post\" class=\"action\" action=\"{}\">{csrf}\
             <label for=\"t-reason\">Reason</label><input id=\"t-reason\" name=\"reason\" maxlength=\"512\" placeholder=\"terminated from the dashboard\">\
             <button type=\"submit\" id=\"terminate\" class=\"danger\">Terminate</button></form>",
            esc(&dash.href(session, &format!("{base}/terminate")))
        );
        let _ = write!(
            out,
            "<form method=\"post\" class=\"action\" action=\"{}\">{csrf}\
             <label for=\"e-name\">Event name</label><input id=\"e-name\" name=\"name\" required pattern=\"[A-Za-z0-9_\\-]{{1,64}}\" placeholder=\"teardown\">\
             <label for=\"e-payload\">Payload (JSON, optional)</label><textarea id=\"e-payload\" name=\"payload\" rows=\"2\"></textarea>\
             <button type=\"submit\" id=\"raise\">Raise event</button></form>",
            esc(&dash.href(session, &format!("{base}/events")))
        );
    }
    if d.phase == Phase::Done {
        let _ = write!(
            out,
            "<p><a id=\"purge\" class=\"danger\" href=\"{}\">Purge…</a> (deletes its checkpoint, history and logs; asks first)</p>",
            esc(&dash.href(session, &format!("{base}/purge")))
        );
    }
    if out.is_empty() {
        out.push_str("<p class=\"empty\">Nothing to do while it winds down.</p>");
    }
    out
}

/// History entries the deployment page shows: the latest, as the checkpoint keeps them; the whole
/// history is the API's, paged.
const SHOWN_HISTORY: usize = crate::engine::policy::HISTORY_ARCHIVE_AT;

fn history(d: &Deployment) -> String {
    let shown = &d.history[d.history.len().saturating_sub(SHOWN_HISTORY)..];
    let earlier = d.history_archived as usize * crate::engine::policy::HISTORY_PAGE
        + (d.history.len() - shown.len());
    let mut rows: Vec<(Millis, String, String)> = shown
        .iter()
        .map(|h| (h.at, esc(&h.kind), esc(&h.detail)))
        .collect();
    for raised in &d.inbox {
        let payload = if raised.payload.is_null() {
            String::new()
        } else {
            raised.payload.to_string()
        };
        rows.push((
            raised.at,
            format!("Raised (in the inbox): {}", esc(&raised.name)),
            format!("<code>{}</code>", esc(&payload)),
        ));
    }
    rows.sort_by_key(|row| row.0);
    let mut out = String::new();
    if earlier > 0 {
        let _ = write!(
            out,
            "<p class=\"note\" id=\"history-archived\">The latest {} entries; the {earlier} before \
             them are in the API's paged history (<code>GET /api/deployments/{}/history</code>).</p>",
            shown.len(),
            esc(&d.id)
        );
    }
    out.push_str(
        "<table><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Event</th><th scope=\"col\">Detail</th></tr></thead><tbody>",
    );
    for (at, kind, detail) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{kind}</td><td>{detail}</td></tr>",
            time(at)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Where a notification goes, shown as its origin only: a webhook's path and query often carry
/// its secret (Slack, Teams), and the page need not show it.
pub(super) fn receiver(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// The spec's notifications: each outcome notified, where to, how its delivery stands.
fn notifications(d: &Deployment) -> String {
    let mut out = String::from(
        "<table id=\"notifications-table\"><thead><tr><th scope=\"col\">On</th><th scope=\"col\">To</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Attempts</th><th scope=\"col\">Last answer</th>\
         <th scope=\"col\">Next attempt</th><th scope=\"col\">Event id</th></tr></thead><tbody>",
    );
    for n in &d.notifications {
        let to = match n.event_grid {
            true => "Event Grid".to_owned(),
            false => d
                .spec
                .notify
                .get(n.target)
                .map_or_else(String::new, |t| receiver(&t.url)),
        };
        let on = match &n.group {
            Some(group) => format!("{} ({})", n.on.as_str(), esc(group)),
            None => n.on.as_str().to_owned(),
        };
        let state = match n.state {
            crate::engine::DeliveryState::Pending => "Pending",
            crate::engine::DeliveryState::Delivered => "Delivered",
            crate::engine::DeliveryState::GaveUp => "Gave up",
        };
        let _ = write!(
            out,
            "<tr><td>{on}</td><td><code>{}</code></td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&to),
            n.attempts,
            esc(n.last.as_deref().unwrap_or("")),
            n.next_at.map(time).unwrap_or_default(),
            esc(&n.id)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// A deployment's page.
pub(super) fn deployment(
    dash: &Dashboard,
    session: &Session,
    d: &Deployment,
    saved: &[(String, String, Option<String>)],
    now: Millis,
) -> String {
    let live = d.phase != Phase::Done;
    let mut spec = serde_json::to_value(&d.spec).unwrap_or(Value::Null);
    sealed_view(&mut spec);
    let spec = serde_json::to_string_pretty(&spec).unwrap_or_default();
    let mut main = format!("<h1>Deployment <code>{}</code></h1>", esc(&d.id));
    main.push_str(&section("summary", "Summary", &summary(dash, d), live));
    main.push_str(&section(
        "timeline",
        "Timeline",
        &timeline::build(d, now).svg(),
        live,
    ));
    if d.spec.groups.iter().any(|g| !g.depends_on.is_empty()) {
        main.push_str(&section("workflow", "Workflow", &workflow(dash, d), live));
    }
    let groups = format!(
        "{}{}",
        groups(d),
        super::fanout::summaries(dash, session, d)
    );
    main.push_str(&section("groups", "Container groups", &groups, live));
    main.push_str(&section(
        "logs",
        "Logs",
        &logs(dash, session, d, saved),
        live,
    ));
    if !d.notifications.is_empty() {
        main.push_str(&section(
            "notifications",
            "Notifications",
            &notifications(d),
            live,
        ));
    }
    main.push_str(&section(
        "actions",
        "Actions",
        &actions(dash, session, d),
        live,
    ));
    main.push_str(&section("history", "History", &history(d), live));
    main.push_str(&section(
        "spec",
        "Spec",
        &format!(
            "<p>Secret values are sealed apart from the spec and never shown.</p><pre class=\"spec\" tabindex=\"0\">{}</pre>",
            esc(&spec)
        ),
        false,
    ));
    frame(dash, session, &d.id, &main)
}

/// The purge confirmation: the id typed again, then a `POST`.
pub(super) fn confirm_purge(dash: &Dashboard, session: &Session, d: &Deployment) -> String {
    let mut main = format!("<h1>Purge <code>{}</code>?</h1>", esc(&d.id));
    if d.phase != Phase::Done {
        let _ = write!(
            main,
            "<p class=\"error\">It is {} and not done: terminate it and wait before purging.</p>",
            d.status.as_str()
        );
    } else {
        let _ = write!(
            main,
            "<p>This deletes its checkpoint, history and saved logs for good.</p>\
             <form method=\"post\" class=\"action\" action=\"{}\">{}\
             <label for=\"p-confirm\">Type the id to confirm</label>\
             <input id=\"p-confirm\" name=\"confirm\" required autocomplete=\"off\">\
             <button type=\"submit\" id=\"purge-confirm\" class=\"danger\">Purge</button></form>",
            esc(&dash.href(session, &format!("/d/{}/purge", seg(&d.id)))),
            csrf_field(session)
        );
    }
    let _ = write!(
        main,
        "<p><a href=\"{}\">Back</a></p>",
        esc(&dash.href(session, &format!("/d/{}", seg(&d.id))))
    );
    frame(dash, session, "Purge", &main)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::sealed_view;

    #[test]
    fn secrets_taken_out_of_the_spec_show_as_sealed() {
        let mut spec = json!({ "groups": [{ "name": "g", "properties": {
            "containers": [{ "name": "c", "properties": { "environmentVariables": [
                { "name": "PLAIN", "value": "v" },
                { "name": "SECRET" },
                { "name": "FROM", "secureValueFrom": "SETTING" } ] } }],
            "imageRegistryCredentials": [{ "server": "r", "username": "u" }],
            "volumes": [{ "name": "certs" }, { "name": "e", "emptyDir": {} }],
            "diagnostics": { "logAnalytics": { "workspaceId": "w" } } } }] });
        sealed_view(&mut spec);
        let p = &spec["groups"][0]["properties"];
        let vars = &p["containers"][0]["properties"]["environmentVariables"];
        assert_eq!(vars[0], json!({ "name": "PLAIN", "value": "v" }));
        assert_eq!(vars[1]["secureValue"], "(sealed)");
        assert_eq!(vars[2].get("secureValue"), None);
        assert_eq!(p["imageRegistryCredentials"][0]["password"], "(sealed)");
        assert_eq!(p["volumes"][0]["secret"], "(sealed)");
        assert_eq!(p["volumes"][1].get("secret"), None);
        assert_eq!(p["diagnostics"]["logAnalytics"]["workspaceKey"], "(sealed)");
    }
}
