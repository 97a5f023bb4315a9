//! A deployment's timeline: every container group (each attempt and generation) on one time axis,
//! as inline SVG, built from the checkpoint's instances and history.
//!
//! A row per instance: a bar from its create to its delete (or now), the part where its containers
//! ran drawn darker, and marks for what happened to it (created, running, exit, logs saved,
//! stopped, deleted, retried, evicted, moved to another location, failed actions). A fan-out
//! instance's row is labelled with its index. A first row holds the deployment's own events:
//! accepted, stages, raised events, the end, and whatever history is about no instance.
//!
//! A group that fans out into more instances than [`MAX_ROWS_PER_GROUP`] is one row on the
//! deployment's timeline (its first create to its last delete, its retries, failures and
//! evictions); its instances' own rows are on the group's instances page, a page at a time
//! ([`of_instances`]). History kinds the timeline does not know are a neutral mark, not an error.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;

use super::html::esc;
use crate::clock::rfc3339;
use crate::engine::{Deployment, Instance, Millis};

/// Most instance rows a fan-out group has on the deployment's timeline; beyond, it is one row.
pub const MAX_ROWS_PER_GROUP: usize = 12;
/// Most marks on one folded row (its notable ones: retries, failures, evictions, fallbacks).
const MAX_FOLDED_MARKS: usize = 200;

/// What a mark on the timeline stands for; its name is the mark's CSS class and legend entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Created,
    Running,
    Exit,
    Logs,
    Stopped,
    Deleted,
    /// Gone without Berth deleting it: evicted, or deleted outside Berth.
    Evicted,
    /// Placed in another location than the first choice, or as Regular after Spot evictions.
    Fallback,
    /// A retry or a heal: a fresh group replaces the failed one.
    Retry,
    /// An action failed, or an instance failed for good.
    Failed,
    /// A workflow stage started or ended.
    Stage,
    Event,
    End,
    /// A history entry of a kind this timeline does not know.
    Other,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Running => "running",
            Kind::Exit => "exit",
            Kind::Logs => "logs",
            Kind::Stopped => "stopped",
            Kind::Deleted => "deleted",
            Kind::Evicted => "evicted",
            Kind::Fallback => "fallback",
            Kind::Retry => "retry",
            Kind::Failed => "failed",
            Kind::Stage => "stage",
            Kind::Event => "event",
            Kind::End => "end",
            Kind::Other => "other",
        }
    }

    /// The legend's words.
    fn label(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Running => "running",
            Kind::Exit => "exit",
            Kind::Logs => "logs saved",
            Kind::Stopped => "stopped",
            Kind::Deleted => "deleted",
            Kind::Evicted => "evicted / missing",
            Kind::Fallback => "location / priority fallback",
            Kind::Retry => "retry / heal",
            Kind::Failed => "failed",
            Kind::Stage => "stage",
            Kind::Event => "event",
            Kind::End => "end",
            Kind::Other => "other",
        }
    }

    const ALL: [Kind; 14] = [
        Kind::Created,
        Kind::Running,
        Kind::Exit,
        Kind::Logs,
        Kind::Stopped,
        Kind::Deleted,
        Kind::Evicted,
        Kind::Fallback,
        Kind::Retry,
        Kind::Failed,
        Kind::Stage,
        Kind::Event,
        Kind::End,
        Kind::Other,
    ];

    /// The mark of a history entry of `kind`; `None` for entries the timeline leaves out (an
    /// observation is drawn from the instance itself, as its running and exit marks).
    pub fn of_history(kind: &str) -> Option<Kind> {
        Some(match kind {
            "DeploymentAccepted" | "GroupCreated" => Kind::Created,
            "LogsSaved" => Kind::Logs,
            "GroupStopped" => Kind::Stopped,
            "GroupDeleted" => Kind::Deleted,
            "GroupMissing" | "Evicted" => Kind::Evicted,
            "LocationFallback" | "PriorityFallback" => Kind::Fallback,
            "AttemptFailed" | "Healing" => Kind::Retry,
            "ActionFailed" => Kind::Failed,
            "StageStarted" | "StageEnded" => Kind::Stage,
            "EventReceived" | "CompletedReceived" | "TeardownReceived" => Kind::Event,
            "Succeeded" | "Failed" | "TimedOut" | "Terminated" => Kind::End,
            // Observations and verdicts are read from the instance itself.
            "GroupObserved" | "InstanceSucceeded" | "InstanceFailed" => return None,
            _ => Kind::Other,
        })
    }

    /// Whether a folded row keeps this mark: what went wrong or differently, not the routine.
    fn notable(self) -> bool {
        matches!(
            self,
            Kind::Evicted | Kind::Fallback | Kind::Retry | Kind::Failed | Kind::Other
        )
    }
}

/// One point in time on a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub at: Millis,
    pub kind: Kind,
    pub text: String,
}

/// One row of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub label: String,
    /// The bar's extent; `None` for the deployment's row (marks only).
    pub span: Option<(Millis, Millis)>,
    /// When its containers ran.
    pub ran: Option<(Millis, Millis)>,
    pub marks: Vec<Mark>,
}

/// The timeline's rows and its time axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub from: Millis,
    pub to: Millis,
    pub rows: Vec<Row>,
    /// How many container groups the rows stand for (a folded row stands for many).
    pub instances: usize,
}

/// The instance a history entry is about: the engine writes its name first, alone or followed
/// by `:` (after the action's name for a failed action).
fn subject<'a>(kind: &str, detail: &'a str) -> &'a str {
    let detail = match kind {
        "ActionFailed" => detail.split_once(' ').map_or(detail, |(_, rest)| rest),
        _ => detail,
    };
    detail.split(':').next().unwrap_or(detail)
}

/// An instance's row label: its group, its index when the group fans out, and its attempt.
pub fn label(d: &Deployment, inst: &Instance) -> String {
    match d.spec.groups.get(inst.slot) {
        Some(g) if g.fans_out() => format!("{}[{}] #{}", g.name, inst.index, inst.generation),
        Some(g) => format!("{} #{}", g.name, inst.generation),
        None => format!("? #{}", inst.generation),
    }
}

/// An instance's row, without its history marks (added by [`Builder`]).
fn instance_row(d: &Deployment, inst: &Instance, now: Millis) -> Row {
    let mut marks = Vec::new();
    let mut ran: Option<(Millis, Millis)> = None;
    if let Some(observed) = &inst.observed {
        for c in &observed.containers {
            if let Some(start) = c.start {
                marks.push(Mark {
                    at: start,
                    kind: Kind::Running,
                    text: format!("{} running", c.name),
                });
                let end = c.finish.or(inst.ended).unwrap_or(now);
                ran = Some(ran.map_or((start, end), |(a, b)| (a.min(start), b.max(end))));
            }
            if let Some(finish) = c.finish {
                let code = c.exit_code.map_or("?".to_owned(), |c| c.to_string());
                marks.push(Mark {
                    at: finish,
                    kind: if c.exit_code.is_some_and(|c| c != 0) {
                        Kind::Failed
                    } else {
                        Kind::Exit
                    },
                    text: format!("{} exited with {code}", c.name),
                });
            }
        }
    }
    // From the instance itself, as the history may have lost the entry in a long run.
    if inst.generation > 1 {
        marks.push(Mark {
            at: inst.created.unwrap_or(d.created),
            kind: Kind::Retry,
            text: format!(
                "#{} replaces #{} (a retry or a heal)",
                inst.generation,
                inst.generation - 1
            ),
        });
    }
    if let Some(verdict) = inst.verdict.as_ref().filter(|v| !v.succeeded) {
        marks.push(Mark {
            at: verdict.at,
            kind: Kind::Failed,
            text: verdict.error.clone().unwrap_or_else(|| "failed".into()),
        });
    }
    let start = inst.created.unwrap_or(d.created);
    let end = if inst.deleted {
        inst.ended.unwrap_or(d.updated)
    } else {
        now
    };
    Row {
        label: label(d, inst),
        span: Some((start, end.max(start))),
        ran,
        marks,
    }
}

/// Rows being built: the deployment's own first, then one per instance or folded group.
struct Builder<'a> {
    d: &'a Deployment,
    rows: Vec<Row>,
    /// The row of each instance shown (by name); folded instances map to their group's row.
    row_of: HashMap<&'a str, usize>,
    folded: Vec<bool>,
    instances: usize,
}

impl<'a> Builder<'a> {
    fn new(d: &'a Deployment) -> Self {
        Builder {
            d,
            rows: vec![Row {
                label: "deployment".into(),
                span: None,
                ran: None,
                marks: Vec::new(),
            }],
            row_of: HashMap::new(),
            folded: vec![false],
            instances: 0,
        }
    }

    fn instance(&mut self, inst: &'a Instance, now: Millis) {
        self.row_of.insert(&inst.aci_name, self.rows.len());
        self.rows.push(instance_row(self.d, inst, now));
        self.folded.push(false);
        self.instances += 1;
    }

    /// One row for `insts`, all of group `slot`.
    fn fold(&mut self, slot: usize, insts: &[&'a Instance], now: Millis) {
        let group = &self.d.spec.groups[slot];
        let at = self.rows.len();
        let mut row = Row {
            label: format!("{} ({} instances)", group.name, group.instance_count()),
            span: None,
            ran: None,
            marks: Vec::new(),
        };
        let widen = |extent: &mut Option<(Millis, Millis)>, (a, b): (Millis, Millis)| {
            *extent = Some(extent.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
        };
        for inst in insts {
            self.row_of.insert(&inst.aci_name, at);
            let one = instance_row(self.d, inst, now);
            if let Some(span) = one.span {
                widen(&mut row.span, span);
            }
            if let Some(ran) = one.ran {
                widen(&mut row.ran, ran);
            }
            let label = one.label;
            row.marks.extend(
                one.marks
                    .into_iter()
                    .filter(|m| m.kind.notable())
                    .map(|m| Mark {
                        text: format!("{label}: {}", m.text),
                        ..m
                    }),
            );
        }
        self.rows.push(row);
        self.folded.push(true);
        self.instances += insts.len();
    }

    /// Puts every history entry on the row of the instance it is about, else the deployment's.
    fn history(&mut self) {
        for h in &self.d.history {
            let Some(kind) = Kind::of_history(&h.kind) else {
                continue;
            };
            let row = self
                .row_of
                .get(subject(&h.kind, &h.detail))
                .copied()
                .unwrap_or(0);
            if self.folded[row] && !kind.notable() {
                continue;
            }
            self.rows[row].marks.push(Mark {
                at: h.at,
                kind,
                text: format!("{} {}", h.kind, h.detail).trim_end().to_owned(),
            });
        }
    }

    fn finish(mut self, end: Millis) -> Timeline {
        for (row, folded) in self.rows.iter_mut().zip(&self.folded) {
            row.marks.sort_by_key(|m| m.at);
            if *folded && row.marks.len() > MAX_FOLDED_MARKS {
                row.marks.truncate(MAX_FOLDED_MARKS);
            }
            // A row's bar reaches its marks (a failed create before it, a delete noted after).
            if let (Some((a, b)), Some(first), Some(last)) =
                (row.span, row.marks.first(), row.marks.last())
            {
                row.span = Some((a.min(first.at), b.max(last.at)));
            }
        }
        let to = self
            .rows
            .iter()
            .flat_map(|r| r.marks.iter().map(|m| m.at).chain(r.span.map(|s| s.1)))
            .fold(end, Millis::max);
        Timeline {
            from: self.d.created,
            to,
            rows: self.rows,
            instances: self.instances,
        }
    }
}

/// Where the axis ends: the deployment's last update once it is done, else now.
fn axis_end(d: &Deployment, now: Millis) -> Millis {
    if d.phase == crate::engine::Phase::Done {
        d.updated
    } else {
        now.max(d.updated)
    }
}

/// The timeline of `d` at `now`, a fan-out group of more than [`MAX_ROWS_PER_GROUP`] container
/// groups folded into one row.
pub fn build(d: &Deployment, now: Millis) -> Timeline {
    let end = axis_end(d, now);
    let mut by_slot: Vec<Vec<&Instance>> = vec![Vec::new(); d.spec.groups.len()];
    for inst in &d.instances {
        if let Some(list) = by_slot.get_mut(inst.slot) {
            list.push(inst);
        }
    }
    let mut b = Builder::new(d);
    let mut folded_done = vec![false; by_slot.len()];
    for inst in &d.instances {
        let Some(list) = by_slot.get(inst.slot) else {
            b.instance(inst, end);
            continue;
        };
        let fans_out = d.spec.groups[inst.slot].fans_out();
        if fans_out && list.len() > MAX_ROWS_PER_GROUP {
            if !folded_done[inst.slot] {
                folded_done[inst.slot] = true;
                b.fold(inst.slot, list, end);
            }
        } else {
            b.instance(inst, end);
        }
    }
    b.history();
    b.finish(end)
}

/// The timeline of the instances of group `slot` whose indexes are in `indexes`, every attempt a
/// row, with the deployment's own row for reference.
pub fn of_instances(d: &Deployment, slot: usize, indexes: Range<u32>, now: Millis) -> Timeline {
    let end = axis_end(d, now);
    let mut b = Builder::new(d);
    let mut shown: Vec<&Instance> = d
        .instances
        .iter()
        .filter(|i| i.slot == slot && indexes.contains(&i.index))
        .collect();
    shown.sort_by_key(|i| (i.index, i.generation));
    for inst in shown {
        b.instance(inst, end);
    }
    b.history();
    b.finish(end)
}

const LABEL_W: f64 = 150.0;
const PLOT_W: f64 = 820.0;
const ROW_H: f64 = 30.0;
const TOP: f64 = 24.0;

/// Seconds (or minutes, hours) after the start, for the axis.
fn offset(ms: Millis) -> String {
    let s = ms / 1000;
    match s {
        s if s < 10 => format!("+{:.1}s", ms as f64 / 1000.0),
        s if s < 120 => format!("+{s}s"),
        s if s < 7200 => format!("+{}m{:02}s", s / 60, s % 60),
        s => format!("+{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Timeline {
    fn x(&self, at: Millis) -> f64 {
        let span = (self.to - self.from).max(1000) as f64;
        LABEL_W + ((at - self.from) as f64 / span).clamp(0.0, 1.0) * PLOT_W
    }

    /// The timeline as an inline SVG figure with a legend; every mark has a `<title>` (the
    /// tooltip) with its time and what happened.
    pub fn svg(&self) -> String {
        let height = TOP + ROW_H * self.rows.len() as f64 + 8.0;
        let width = LABEL_W + PLOT_W + 20.0;
        let mut out = String::new();
        let _ = write!(
            out,
            "<figure class=\"timeline\"><svg viewBox=\"0 0 {width} {height}\" role=\"img\" \
             aria-labelledby=\"timeline-title\" xmlns=\"http://www.w3.org/2000/svg\">\
             <title id=\"timeline-title\">Timeline from {} to {}: {} container group(s)</title>",
            esc(&rfc3339(self.from)),
            esc(&rfc3339(self.to)),
            self.instances
        );
        for i in 0..=4 {
            let at = self.from + (self.to - self.from) * i / 4;
            let x = self.x(at);
            let _ = write!(
                out,
                "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{height}\"/>\
                 <text class=\"axis\" x=\"{x:.1}\" y=\"14\">{}</text>",
                TOP - 6.0,
                esc(&offset(at - self.from))
            );
        }
        for (n, row) in self.rows.iter().enumerate() {
            let y = TOP + ROW_H * n as f64;
            let mid = y + ROW_H / 2.0;
            let _ = write!(
                out,
                "<g class=\"row\"><text class=\"label\" x=\"4\" y=\"{:.1}\">{}</text>",
                mid + 4.0,
                esc(&row.label)
            );
            if let Some((a, b)) = row.span {
                let (xa, xb) = (self.x(a), self.x(b));
                let _ = write!(
                    out,
                    "<rect class=\"bar\" x=\"{xa:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" rx=\"3\"/>",
                    mid - 6.0,
                    (xb - xa).max(2.0)
                );
            }
            if let Some((a, b)) = row.ran {
                let (xa, xb) = (self.x(a), self.x(b));
                let _ = write!(
                    out,
                    "<rect class=\"ran\" x=\"{xa:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" rx=\"3\"/>",
                    mid - 6.0,
                    (xb - xa).max(2.0)
                );
            }
            for mark in &row.marks {
                let _ = write!(
                    out,
                    "<circle class=\"mark {}\" cx=\"{:.1}\" cy=\"{mid:.1}\" r=\"5\">\
                     <title>{} {}: {}</title></circle>",
                    mark.kind.class(),
                    self.x(mark.at),
                    esc(&offset(mark.at - self.from)),
                    esc(&rfc3339(mark.at)),
                    esc(&mark.text)
                );
            }
            out.push_str("</g>");
        }
        out.push_str("</svg><figcaption><ul class=\"legend\">");
        for kind in Kind::ALL {
            let _ = write!(
                out,
                "<li><svg viewBox=\"0 0 12 12\" aria-hidden=\"true\"><circle class=\"mark {}\" cx=\"6\" cy=\"6\" r=\"5\"/></svg>{}</li>",
                kind.class(),
                kind.label()
            );
        }
        out.push_str("</ul></figcaption></figure>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_is_about_the_instance_it_names_first() {
        assert_eq!(subject("GroupDeleted", "berth-a-1"), "berth-a-1");
        assert_eq!(
            subject("GroupMissing", "berth-a-1: gone before cleanup"),
            "berth-a-1"
        );
        assert_eq!(subject("AttemptFailed", "berth-a-10: exit 3"), "berth-a-10");
        assert_eq!(
            subject("ActionFailed", "Create berth-a-1: 409"),
            "berth-a-1"
        );
        assert_eq!(subject("EventReceived", "x berth-a-1"), "x berth-a-1");
    }

    #[test]
    fn unknown_history_kinds_are_a_neutral_mark_and_observations_none() {
        assert_eq!(Kind::of_history("SomethingNew"), Some(Kind::Other));
        assert_eq!(Kind::of_history("Evicted"), Some(Kind::Evicted));
        assert_eq!(Kind::of_history("LocationFallback"), Some(Kind::Fallback));
        assert_eq!(Kind::of_history("PriorityFallback"), Some(Kind::Fallback));
        assert_eq!(Kind::of_history("AttemptFailed"), Some(Kind::Retry));
        assert_eq!(Kind::of_history("GroupObserved"), None);
    }

    #[test]
    fn offsets_read_in_the_unit_that_fits() {
        assert_eq!(offset(5_400), "+5.4s");
        assert_eq!(offset(15_400), "+15s");
        assert_eq!(offset(125_000), "+2m05s");
        assert_eq!(offset(7_260_000), "+2h01m");
    }
}
