//! A container's saved log: how it is stored, stitched from successive reads of ACI's log, and
//! shown.
//!
//! ACI keeps up to 4 MB of a running container's log but only the last 1,000 lines or 16 KB of a
//! stopped one, so a log read once after the exit loses the start of any longer log. Berth reads
//! the log with `timestamps=true` while the container runs and again after it exits, and stitches
//! the reads by their timestamps.
//!
//! # Format
//! A stored log starts with [`HEADER`]; then each line is a container's line as ACI gave it with
//! its timestamp (`2026-12-03T10:00:00.123456789Z text`), or a note of Berth's, `#! ` and its
//! text, where lines are missing. A stored log without the header (saved before this format) is
//! plain text and shown as it is.
//!
//! # Guarantees
//! - Stitching is by the cursor of what is stored: the last line's timestamp and how many stored
//!   lines carry it. A read adds only the lines past the cursor, so reading the same log again, or
//!   a read that repeats after a crash, adds nothing and repeats no line.
//! - A read that starts after the cursor (ACI dropped the lines between) adds a note saying which
//!   span is missing, as does a first read that is as long as ACI keeps (its start may be cut):
//!   a gap is never silent. [`gaps`] lists the notes of a stored log.
//! - A saved log holds at most [`MAX_SAVED_BYTES`]; the note that ends a capped one is its last
//!   line, and nothing is added after it.
//! - A line of ACI's without a timestamp (which ACI does not send) keeps the previous line's, so
//!   nothing read is dropped.

use crate::clock::rfc3339;

/// The first line of a stored log in this format.
pub const HEADER: &str = "#berth-log 1";
/// How a note of Berth's starts.
const NOTE: &str = "#! ";

/// The most of a stopped container's log ACI keeps, in lines…
pub const STOPPED_CAP_LINES: usize = 1_000;
/// …and in bytes, whichever is smaller.
pub const STOPPED_CAP_BYTES: usize = 16 * 1024;
/// The most of a running container's log ACI keeps.
pub const RUNNING_CAP_BYTES: usize = 4 * 1024 * 1024;
/// How close to a cap a read must come to be taken as cut by it (one long line's worth).
const CAP_MARGIN_BYTES: usize = 1024;
/// The most of a container's log Berth saves (as much as ACI keeps of a running one): past it,
/// a note says where the saved log stops, and the whole log is in Log Analytics
/// (`BERTH_DIAGNOSTICS_WORKSPACE`). Each save rewrites the saved log, so this bounds its cost.
pub const MAX_SAVED_BYTES: usize = 4 * 1024 * 1024;
/// How the note of a capped log starts.
const CAPPED: &str = "log capped";

/// A line of ACI's log read with `timestamps=true`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Line<'a> {
    /// Nanoseconds since the epoch.
    at: i128,
    /// The line as read, timestamp included.
    raw: &'a str,
    /// The line without its timestamp.
    text: &'a str,
}

/// Where a stored log ends: the last line's timestamp and how many stored lines carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    at: i128,
    count: usize,
}

/// What a read of ACI's log adds to the stored one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stitched {
    /// The stored log with the read's new lines (and a note of any gap) after it.
    pub text: String,
    /// New lines.
    pub added_lines: usize,
    /// The note of a gap found by this read, if any.
    pub gap: Option<String>,
}

/// Whether ACI cut the log `read` down to what it keeps: it comes within a line of ACI's cap,
/// for a stopped container (`stopped`) or a running one.
fn at_cap(lines: usize, bytes: usize, stopped: bool) -> bool {
    if stopped {
        lines >= STOPPED_CAP_LINES || bytes + CAP_MARGIN_BYTES > STOPPED_CAP_BYTES
    } else {
        bytes + CAP_MARGIN_BYTES > RUNNING_CAP_BYTES
    }
}

fn parse_stamp(stamp: &str) -> Option<i128> {
    time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// The lines of a read with timestamps; a line without one keeps the previous line's time.
fn lines(read: &str) -> Vec<Line<'_>> {
    let mut last = i128::MIN;
    read.lines()
        .map(|raw| {
            let (stamp, text) = raw.split_once(' ').unwrap_or((raw, ""));
            match parse_stamp(stamp) {
                Some(at) => {
                    last = last.max(at);
                    Line { at, raw, text }
                }
                None => Line {
                    at: last,
                    raw,
                    text: raw,
                },
            }
        })
        .collect()
}

/// The body of a stored log in this format (after its header); `None` for a legacy or no log.
fn body(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(HEADER)?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix('\n')
}

/// The cursor of a stored log: `None` when it holds no container line (or is not in this format).
pub fn cursor(stored: &str) -> Option<Cursor> {
    let body = body(stored)?;
    let read: Vec<Line> = lines_of_body(body).collect();
    let last = read.last()?.at;
    let count = read.iter().rev().take_while(|l| l.at == last).count();
    Some(Cursor { at: last, count })
}

/// The container lines of a stored body, without Berth's notes.
fn lines_of_body(body: &str) -> impl Iterator<Item = Line<'_>> {
    let mut last = i128::MIN;
    body.lines()
        .filter(|l| !l.starts_with(NOTE))
        .map(move |raw| {
            let (stamp, text) = raw.split_once(' ').unwrap_or((raw, ""));
            let at = parse_stamp(stamp).unwrap_or(last);
            last = last.max(at);
            Line { at, raw, text }
        })
}

fn when(at: i128) -> String {
    rfc3339((at / 1_000_000) as i64)
}

/// Stitches `read` (ACI's log with timestamps, of a `stopped` container or a running one) onto
/// `stored` (`None`: nothing stored yet, or a log in the legacy format, which a new read replaces).
pub fn stitch(stored: Option<&str>, read: &str, stopped: bool) -> Stitched {
    let stored_body = stored.and_then(body);
    let cursor = stored.and_then(cursor);
    let read = lines(read);
    let new = past(cursor, &read);
    let read_bytes: usize = read.iter().map(|l| l.text.len() + 1).sum();
    let gap = match (cursor, read.first()) {
        (Some(c), Some(first)) if first.at > c.at => Some(format!(
            "lines written between {} and {} are missing: ACI did not keep them",
            when(c.at),
            when(first.at)
        )),
        (None, Some(first)) if at_cap(read.len(), read_bytes, stopped) => Some(format!(
            "lines written before {} may be missing: ACI keeps only {}",
            when(first.at),
            if stopped {
                "the last 1,000 lines or 16 KB of a stopped container's log"
            } else {
                "the last 4 MB of a running container's log"
            }
        )),
        _ => None,
    };
    let mut text = String::with_capacity(
        stored_body.map_or(0, str::len) + new.iter().map(|l| l.raw.len() + 1).sum::<usize>() + 64,
    );
    text.push_str(HEADER);
    text.push('\n');
    if let Some(body) = stored_body {
        text.push_str(body);
        if !body.is_empty() && !body.ends_with('\n') {
            text.push('\n');
        }
    }
    let capped = stored_body.is_some_and(|b| b.contains(CAPPED));
    let mut gap = gap.filter(|_| !capped);
    if let Some(gap) = &gap {
        text.push_str(NOTE);
        text.push_str(gap);
        text.push('\n');
    }
    let mut added = 0;
    for line in new.iter().filter(|_| !capped) {
        if text.len() + line.raw.len() + 1 > MAX_SAVED_BYTES {
            gap = Some(format!(
                "{CAPPED} at {} MB: lines written from {} on are not saved here",
                MAX_SAVED_BYTES / (1024 * 1024),
                when(line.at)
            ));
            text.push_str(NOTE);
            text.push_str(gap.as_deref().unwrap_or_default());
            text.push('\n');
            break;
        }
        text.push_str(line.raw);
        text.push('\n');
        added += 1;
    }
    Stitched {
        text,
        added_lines: added,
        gap,
    }
}

/// The lines of `read` past `cursor`.
fn past<'a, 'b>(cursor: Option<Cursor>, read: &'b [Line<'a>]) -> Vec<&'b Line<'a>> {
    let mut skip_same = cursor.map_or(0, |c| c.count);
    read.iter()
        .filter(|l| match cursor {
            None => true,
            Some(c) if l.at < c.at => false,
            Some(c) if l.at == c.at && skip_same > 0 => {
                skip_same -= 1;
                false
            }
            Some(_) => true,
        })
        .collect()
}

/// What a running container's log `read` holds past `cursor` (where the saved log ends, if
/// known): lines and bytes not saved yet, the cursor `read` would leave, and its rate.
pub fn unsaved(
    cursor: Option<Cursor>,
    read: &str,
) -> (usize, usize, Option<Cursor>, Option<(f64, f64)>) {
    let read = lines(read);
    let new = past(cursor, &read);
    let bytes = new.iter().map(|l| l.text.len() + 1).sum();
    let end = read.last().map(|last| Cursor {
        at: last.at,
        count: read.iter().rev().take_while(|l| l.at == last.at).count(),
    });
    (new.len(), bytes, end, rate(&read))
}

/// Lines and bytes per second over a read, by its timestamps.
fn rate(read: &[Line]) -> Option<(f64, f64)> {
    let (first, last) = (read.first()?, read.last()?);
    if read.len() < 2 || first.at == i128::MIN {
        return None;
    }
    let seconds = ((last.at - first.at) as f64 / 1e9).max(1.0);
    let bytes: usize = read.iter().map(|l| l.text.len() + 1).sum();
    Some((read.len() as f64 / seconds, bytes as f64 / seconds))
}

/// The notes of the gaps in a stored log.
pub fn gaps(stored: &str) -> Vec<&str> {
    body(stored)
        .map(|b| b.lines().filter_map(|l| l.strip_prefix(NOTE)).collect())
        .unwrap_or_default()
}

/// A stored log as shown: each line's text (with its timestamp when `timestamps`), and Berth's
/// notes as `[berth] ...` lines. A legacy log is shown as it is.
pub fn shown(stored: &str, timestamps: bool) -> String {
    let Some(body) = body(stored) else {
        return stored.to_owned();
    };
    let mut out = String::with_capacity(body.len());
    for raw in body.lines() {
        if let Some(note) = raw.strip_prefix(NOTE) {
            out.push_str("[berth] ");
            out.push_str(note);
        } else if timestamps {
            out.push_str(raw);
        } else {
            let text = match raw.split_once(' ') {
                Some((stamp, text)) if parse_stamp(stamp).is_some() => text,
                None if parse_stamp(raw).is_some() => "",
                _ => raw,
            };
            out.push_str(text);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stamped(range: std::ops::Range<u32>, second_of: impl Fn(u32) -> u32) -> String {
        range
            .map(|i| {
                let s = second_of(i);
                format!(
                    "2026-12-03T10:{:02}:{:02}.000000000Z line {i}\n",
                    s / 60,
                    s % 60
                )
            })
            .collect()
    }

    fn plain(range: std::ops::RangeInclusive<u32>) -> String {
        range.map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn reads_that_overlap_are_stitched_without_gaps_or_repeats() {
        // Lines 0..100 at one a second, read three times: overlapping, again the same, the tail.
        let first = stitch(None, &stamped(0..40, |i| i), false);
        assert_eq!((first.added_lines, first.gap.as_deref()), (40, None));
        let second = stitch(Some(&first.text), &stamped(0..70, |i| i), false);
        assert_eq!(second.added_lines, 30);
        let again = stitch(Some(&second.text), &stamped(0..70, |i| i), false);
        assert_eq!((again.added_lines, &again.text), (0, &second.text));
        // The stopped tail overlaps what is stored: the whole log, no note.
        let last = stitch(Some(&again.text), &stamped(60..100, |i| i), true);
        assert_eq!((last.added_lines, last.gap.as_deref()), (30, None));
        assert_eq!(shown(&last.text, false), plain(0..=99));
        assert!(gaps(&last.text).is_empty());
    }

    #[test]
    fn lines_sharing_a_timestamp_are_counted_not_lost() {
        // Ten lines a second: the cursor's second holds 3 stored lines of 10.
        let all = stamped(0..30, |i| i / 10);
        let first = stitch(None, &stamped(0..13, |i| i / 10), false);
        let rest = stitch(Some(&first.text), &all, true);
        assert_eq!(rest.added_lines, 17);
        assert_eq!(shown(&rest.text, false), plain(0..=29));
    }

    #[test]
    fn a_read_past_the_cursor_notes_the_missing_span() {
        let first = stitch(None, &stamped(0..10, |i| i), false);
        let later = stitch(Some(&first.text), &stamped(50..60, |i| i), true);
        let gap = later.gap.clone().unwrap();
        assert!(
            gap.contains("10:00:09") && gap.contains("10:00:50"),
            "{gap}"
        );
        let shown = shown(&later.text, false);
        assert!(shown.starts_with(&plain(0..=9)), "{shown}");
        assert!(
            shown.contains(&format!("[berth] {gap}\nline 50\n")),
            "{shown}"
        );
        assert_eq!(gaps(&later.text), [gap.as_str()]);
        // Stitching the same read again adds neither lines nor a second note.
        let again = stitch(Some(&later.text), &stamped(50..60, |i| i), true);
        assert_eq!(
            (again.added_lines, again.gap, again.text),
            (0, None, later.text)
        );
    }

    #[test]
    fn a_first_read_as_long_as_aci_keeps_may_be_cut() {
        let full = stitch(None, &stamped(4000..5000, |i| i), true);
        assert!(full.gap.unwrap().contains("last 1,000 lines"));
        let short = stitch(None, &stamped(0..999, |i| i), true);
        assert_eq!(short.gap, None);
        // Running: only 4 MB is a cap.
        assert_eq!(stitch(None, &stamped(0..5000, |i| i), false).gap, None);
    }

    #[test]
    fn timestamps_are_shown_when_asked_and_legacy_logs_as_they_are() {
        let log = stitch(None, "2026-12-03T10:00:00.5Z hello world\n", true);
        assert_eq!(shown(&log.text, false), "hello world\n");
        assert_eq!(
            shown(&log.text, true),
            "2026-12-03T10:00:00.5Z hello world\n"
        );
        assert_eq!(shown("no header\n", false), "no header\n");
        // A legacy log is replaced by a read, not stitched to.
        assert_eq!(cursor("no header\n"), None);
        let replaced = stitch(Some("no header\n"), "2026-12-03T10:00:00Z x\n", true);
        assert_eq!(shown(&replaced.text, false), "x\n");
    }

    #[test]
    fn a_line_without_a_timestamp_keeps_the_one_before() {
        let log = stitch(None, "2026-12-03T10:00:00Z a\nno stamp\n", false);
        assert_eq!(shown(&log.text, false), "a\nno stamp\n");
        let again = stitch(Some(&log.text), "2026-12-03T10:00:00Z a\nno stamp\n", true);
        assert_eq!(again.added_lines, 0);
        // A container line that looks like a note is still the container's.
        let tricky = stitch(None, "2026-12-03T10:00:00Z #! not a note\n", true);
        assert!(gaps(&tricky.text).is_empty());
        assert_eq!(shown(&tricky.text, false), "#! not a note\n");
    }

    #[test]
    fn a_saved_log_stops_at_its_cap_with_a_note_and_takes_nothing_after() {
        let line = "x".repeat(1000);
        let read: String = (0..5000)
            .map(|i| {
                format!(
                    "2026-12-03T10:{:02}:{:02}.000000000Z {line}\n",
                    i / 60 % 60,
                    i % 60
                )
            })
            .collect();
        let first = stitch(None, &read, false);
        assert!(first.text.len() <= MAX_SAVED_BYTES, "{}", first.text.len());
        let gap = first.gap.clone().unwrap();
        assert!(gap.starts_with("log capped at 4 MB"), "{gap}");
        assert!(
            first.added_lines > 4000 && first.added_lines < 4200,
            "{}",
            first.added_lines
        );
        // (The read itself is past ACI's running cap: its start may be cut too.)
        assert_eq!(gaps(&first.text).last(), Some(&gap.as_str()));
        let later: String = "2026-12-03T11:00:00.000000000Z more\n".into();
        let again = stitch(Some(&first.text), &later, true);
        assert_eq!(
            (again.added_lines, again.gap, again.text.len()),
            (0, None, first.text.len())
        );
    }

    #[test]
    fn the_rate_comes_from_the_timestamps() {
        let (_, _, _, rate) = unsaved(None, &stamped(0..21, |i| i / 2));
        let (lines, bytes) = rate.unwrap();
        assert!((lines - 2.1).abs() < 1e-9, "{lines}");
        assert!(bytes > lines * 6.0, "{bytes}");
        assert_eq!(unsaved(None, "").3, None);
    }
}
