//! A container's captured output: timestamped lines kept up to ACI's running-instance cap, rendered
//! for `containers/{name}/logs` with `tail`, `timestamps` and the stopped-instance cap.

use std::collections::VecDeque;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// The most a running container's log holds (ACI: 4 MB).
pub const RUNNING_CAP_BYTES: usize = 4 * 1024 * 1024;
/// The most a stopped container's log shows, in bytes (ACI: 16 KB)…
pub const STOPPED_CAP_BYTES: usize = 16 * 1024;
/// …and in lines (ACI: 1,000 lines), whichever is smaller.
pub const STOPPED_CAP_LINES: usize = 1000;
/// Lines longer than this are split, so one runaway line cannot hold unbounded memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Docker's `RFC3339NanoFixed`: always nine fractional digits, UTC.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// One captured line, without its newline.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When the emulator read it.
    pub at: OffsetDateTime,
    pub text: String,
}

/// A container's log: the newest lines up to `RUNNING_CAP_BYTES`.
#[derive(Debug, Default)]
pub struct LogBuffer {
    lines: VecDeque<LogLine>,
    bytes: usize,
}

/// What `containers/{name}/logs` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogQuery {
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
}

impl LogBuffer {
    /// Appends a line, dropping the oldest ones past the running cap.
    pub fn push(&mut self, at: OffsetDateTime, text: String) {
        self.bytes += text.len() + 1;
        self.lines.push_back(LogLine { at, text });
        while self.bytes > RUNNING_CAP_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.text.len() + 1,
                None => break,
            }
        }
    }

    /// Forgets everything (a new run of the container starts a new log, as in ACI).
    pub fn clear(&mut self) {
        self.lines.clear();
        self.bytes = 0;
    }

    /// The number of lines held.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Renders the log: for a stopped container only the last 16 KB or 1,000 lines, then the last
    /// `tail` lines, each with its timestamp when asked, every line ending in `\n`.
    pub fn render(&self, query: LogQuery, stopped: bool) -> String {
        let mut first = self.lines.len();
        let mut bytes = 0;
        while first > 0 {
            let line = &self.lines[first - 1];
            let count = self.lines.len() - first + 1;
            if stopped
                && (count > STOPPED_CAP_LINES || bytes + line.text.len() + 1 > STOPPED_CAP_BYTES)
            {
                break;
            }
            if query.tail.is_some_and(|tail| count > tail) {
                break;
            }
            bytes += line.text.len() + 1;
            first -= 1;
        }
        let mut out = String::with_capacity(bytes + (self.lines.len() - first) * 31);
        for line in self.lines.range(first..) {
            if query.timestamps {
                out.push_str(&format_timestamp(line.at));
                out.push(' ');
            }
            out.push_str(&line.text);
            out.push('\n');
        }
        out
    }

    /// Every line, oldest first (for persisting).
    pub fn lines(&self) -> impl Iterator<Item = &LogLine> {
        self.lines.iter()
    }
}

/// Formats a time as Docker does for `--timestamps`.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Parses a line written as `<timestamp> <text>` (the on-disk log format) back into a `LogLine`.
pub fn parse_line(raw: &str) -> Option<LogLine> {
    let (stamp, text) = raw.split_once(' ').unwrap_or((raw, ""));
    let at = OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).ok()?;
    Some(LogLine {
        at,
        text: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + second).unwrap()
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut log = LogBuffer::default();
        for i in 0..5 {
            log.push(at(i), format!("line {i}"));
        }
        let all = log.render(LogQuery::default(), false);
        assert_eq!(all, "line 0\nline 1\nline 2\nline 3\nline 4\n");
        let tail = log.render(
            LogQuery {
                tail: Some(2),
                timestamps: false,
            },
            false,
        );
        assert_eq!(tail, "line 3\nline 4\n");
        assert_eq!(
            log.render(
                LogQuery {
                    tail: Some(0),
                    timestamps: false
                },
                false
            ),
            ""
        );
    }

    #[test]
    fn timestamps_are_rfc3339_with_nanoseconds_at_line_start() {
        let mut log = LogBuffer::default();
        log.push(at(0) + time::Duration::nanoseconds(1_500), "hello".into());
        let text = log.render(
            LogQuery {
                tail: None,
                timestamps: true,
            },
            false,
        );
        assert_eq!(text, "2023-11-14T22:13:20.000001500Z hello\n");
        let parsed = parse_line(text.trim_end()).unwrap();
        assert_eq!(parsed.text, "hello");
        assert_eq!(parsed.at, at(0) + time::Duration::nanoseconds(1_500));
    }

    #[test]
    fn stopped_logs_are_capped_at_1000_lines() {
        let mut log = LogBuffer::default();
        for i in 0..1500 {
            log.push(at(i), format!("{i}"));
        }
        let text = log.render(LogQuery::default(), true);
        assert_eq!(text.lines().count(), STOPPED_CAP_LINES);
        assert!(text.starts_with("500\n"));
        assert_eq!(log.render(LogQuery::default(), false).lines().count(), 1500);
    }

    #[test]
    fn stopped_logs_are_capped_at_16_kb() {
        let mut log = LogBuffer::default();
        let line = "x".repeat(99);
        for i in 0..400 {
            log.push(at(i), line.clone());
        }
        let text = log.render(LogQuery::default(), true);
        assert!(text.len() <= STOPPED_CAP_BYTES, "{}", text.len());
        assert_eq!(text.len(), (STOPPED_CAP_BYTES / 100) * 100);
    }

    #[test]
    fn running_cap_drops_the_oldest_lines() {
        let mut log = LogBuffer::default();
        let line = "y".repeat(1023);
        for i in 0..(4 * 1024 + 10) {
            log.push(at(i), line.clone());
        }
        assert_eq!(log.len(), 4 * 1024);
    }
}
