//! A deployment's timeline: every container group (each attempt and generation) on one time axis,
//! as inline SVG, built from the checkpoint's instances and history.
//!
//! A row per instance: a bar from its create to its delete (or now), the part where its containers
//! ran drawn darker, and marks for what happened to it (created, running, exit, logs saved,
//! stopped, deleted, evicted, failed actions). A first row holds the deployment's own events:
//! accepted, retries, heals, raised events and the end.

use std::fmt::Write as _;

use super::html::esc;
use crate::clock::rfc3339;
use crate::engine::{Deployment, Instance, Millis};

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
    /// A retry or a heal: a fresh group replaces the failed one.
    Retry,
    Failed,
    Event,
    End,
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
            Kind::Retry => "retry",
            Kind::Failed => "failed",
            Kind::Event => "event",
            Kind::End => "end",
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
            Kind::Retry => "retry / heal",
            Kind::Failed => "action failed",
            Kind::Event => "event",
            Kind::End => "end",
        }
    }

    const ALL: [Kind; 11] = [
        Kind::Created,
        Kind::Running,
        Kind::Exit,
        Kind::Logs,
        Kind::Stopped,
        Kind::Deleted,
        Kind::Evicted,
        Kind::Retry,
        Kind::Failed,
        Kind::Event,
        Kind::End,
    ];
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
}

/// Whether a history entry's detail is about `aci_name` (the engine writes the instance's name
/// first, alone or followed by `:`).
fn about(detail: &str, aci_name: &str) -> bool {
    detail
        .strip_prefix(aci_name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

fn instance_row(d: &Deployment, inst: &Instance, now: Millis) -> Row {
    let group = d
        .spec
        .groups
        .get(inst.slot)
        .map_or("?", |g| g.name.as_str());
    let mut marks = Vec::new();
    let mut gone = None;
    for h in d
        .history
        .iter()
        .filter(|h| about(&h.detail, &inst.aci_name))
    {
        let kind = match h.kind.as_str() {
            "GroupCreated" => Kind::Created,
            "LogsSaved" => Kind::Logs,
            "GroupStopped" => Kind::Stopped,
            "GroupDeleted" => Kind::Deleted,
            "GroupMissing" => Kind::Evicted,
            "ActionFailed" => Kind::Failed,
            _ => continue,
        };
        if matches!(kind, Kind::Deleted | Kind::Evicted) {
            gone = Some(h.at);
        }
        marks.push(Mark {
            at: h.at,
            kind,
            text: format!("{} {}", h.kind, h.detail),
        });
    }
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
                    kind: Kind::Exit,
                    text: format!("{} exited with {code}", c.name),
                });
            }
        }
    }
    let start = inst
        .created
        .into_iter()
        .chain(marks.iter().map(|m| m.at))
        .min()
        .unwrap_or(d.created);
    let end = gone
        .or(inst.ended.filter(|_| inst.deleted))
        .unwrap_or(if inst.deleted { d.updated } else { now })
        .max(start);
    marks.sort_by_key(|m| m.at);
    Row {
        label: format!("{group} #{}", inst.generation),
        span: Some((start, end)),
        ran,
        marks,
    }
}

/// The timeline of `d` at `now` (the axis ends at the deployment's last update once it is done).
pub fn build(d: &Deployment, now: Millis) -> Timeline {
    let mut own = Vec::new();
    for h in &d.history {
        let kind = match h.kind.as_str() {
            "DeploymentAccepted" => Kind::Created,
            "AttemptFailed" | "Healing" => Kind::Retry,
            "EventReceived" | "CompletedReceived" | "TeardownReceived" => Kind::Event,
            "Succeeded" | "Failed" | "TimedOut" | "Terminated" => Kind::End,
            _ => continue,
        };
        own.push(Mark {
            at: h.at,
            kind,
            text: format!("{} {}", h.kind, h.detail).trim_end().to_owned(),
        });
    }
    let end = if d.phase == crate::engine::Phase::Done {
        d.updated
    } else {
        now.max(d.updated)
    };
    let mut rows = vec![Row {
        label: "deployment".into(),
        span: None,
        ran: None,
        marks: own,
    }];
    rows.extend(d.instances.iter().map(|i| instance_row(d, i, end)));
    let to = rows
        .iter()
        .flat_map(|r| r.marks.iter().map(|m| m.at).chain(r.span.map(|s| s.1)))
        .fold(end, Millis::max);
    Timeline {
        from: d.created,
        to,
        rows,
    }
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
            self.rows.len() - 1
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
    fn a_detail_is_about_an_instance_only_by_its_whole_name() {
        assert!(about("berth-a-1", "berth-a-1"));
        assert!(about("berth-a-1: gone before cleanup", "berth-a-1"));
        assert!(!about("berth-a-10", "berth-a-1"));
        assert!(!about("x berth-a-1", "berth-a-1"));
    }

    #[test]
    fn offsets_read_in_the_unit_that_fits() {
        assert_eq!(offset(5_400), "+5.4s");
        assert_eq!(offset(15_400), "+15s");
        assert_eq!(offset(125_000), "+2m05s");
        assert_eq!(offset(7_260_000), "+2h01m");
    }
}
