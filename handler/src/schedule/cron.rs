//! Cron expressions and the times they name in a time zone.
//!
//! Standard five fields, `minute hour day-of-month month day-of-week`, each a comma list of `*`,
//! `N`, `N-M`, any of those with `/STEP`, and `N/STEP` (from N to the field's end, as Kubernetes'
//! parser reads it); months and weekdays also by name (`JAN`-`DEC`, `SUN`-`SAT`, any case);
//! weekday `7` is Sunday too. Nothing else: no seconds field, no `@hourly` macros, no `?`, `L`,
//! `W` or `#`.
//!
//! # Guarantees
//! - Day-of-month and day-of-week combine as in Vixie cron: when either field starts with `*`
//!   a day must match both (so the other decides alone); when both are restricted, a day matching
//!   either fires (`0 0 13 * FRI`: every 13th and every Friday).
//! - Times are wall-clock times in the schedule's time zone, resolved to instants as Kubernetes
//!   does: a wall time a DST jump skips does not run; a wall time a DST fall-back repeats runs
//!   once, at its first occurrence.
//! - Every refusal names what is wrong; nothing here panics on input, and a search for the next
//!   or previous time looks at most [`HORIZON_DAYS`] days ahead or back.
//! - An expression that matches no date at all (`0 0 31 2 *`) is refused when parsed.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::engine::Millis;

/// The longest expression read (longer ones are refused before anything else is looked at).
pub const MAX_CRON_LEN: usize = 200;
/// The longest time zone name read.
pub const MAX_TIME_ZONE_LEN: usize = 64;
/// Far enough back (or ahead) in time that the wall clock there is behind (ahead of) any wall time
/// whose instant comes after (before) the one searched from: more than twice the largest change of
/// a zone's offset at one transition (2 hours: double summer time). Plain millisecond arithmetic,
/// so that no calendar arithmetic is linked in.
const WALL_MARGIN_MS: Millis = 5 * 3_600_000;
/// How far a search for a time goes: 8 years and a day, which holds a 29 February whatever the
/// century.
pub const HORIZON_DAYS: i32 = 8 * 366 + 1;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// The longest each month can be (February in a leap year).
const MONTH_DAYS: [u8; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A parsed cron expression: the values each field allows, as bit sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Either day field starts with `*`: a day must match both (Vixie's rule).
    days_and: bool,
}

/// One field's rules.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
    },
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: &WEEKDAYS,
    },
];

impl Field {
    /// A value of this field: a number in range or (months, weekdays) a name.
    fn value(&self, text: &str) -> Result<u32, String> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(i as u32 + if self.names.len() == 12 { 1 } else { 0 });
        }
        let n = text
            .parse::<u32>()
            .ok()
            .filter(|_| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()));
        match n {
            Some(n) if (self.min..=self.max).contains(&n) => Ok(n),
            Some(n) => Err(format!(
                "{} {n} is out of range {}-{}",
                self.name, self.min, self.max
            )),
            None if self.names.is_empty() => {
                Err(format!("{} '{}' is not a number", self.name, shown(text)))
            }
            None => Err(format!(
                "{} '{}' is neither a number nor a name ({}-{})",
                self.name,
                shown(text),
                self.names[0],
                self.names[self.names.len() - 1]
            )),
        }
    }

    /// The values of one comma-separated item as a bit set.
    fn item(&self, item: &str) -> Result<u64, String> {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = step
                    .parse::<u32>()
                    .ok()
                    .filter(|s| {
                        *s >= 1 && *s <= self.max && step.bytes().all(|b| b.is_ascii_digit())
                    })
                    .ok_or_else(|| {
                        format!(
                            "{} step '{}' must be a number from 1 to {}",
                            self.name,
                            shown(step),
                            self.max
                        )
                    })?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let (from, to) = if range == "*" {
            (self.min, self.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (self.value(a)?, self.value(b)?);
            if a > b {
                return Err(format!("{} range {a}-{b} runs backwards", self.name));
            }
            (a, b)
        } else {
            let a = self.value(range)?;
            // `N/STEP` runs from N to the field's end.
            (a, if step.is_some() { self.max } else { a })
        };
        let step = step.unwrap_or(1) as usize;
        Ok((from..=to).step_by(step).fold(0u64, |set, v| set | 1 << v))
    }

    /// A whole field as a bit set.
    fn parse(&self, text: &str) -> Result<u64, String> {
        text.split(',').try_fold(0u64, |set, item| {
            if item.is_empty() {
                return Err(format!("{} has an empty list item", self.name));
            }
            Ok(set | self.item(item)?)
        })
    }
}

/// At most 40 characters of what was given, control characters escaped, for an error message.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(40).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{more}", cut.escape_debug())
}

impl Cron {
    /// Parses an expression; the error says what is wrong (the caller names the field).
    pub fn parse(text: &str) -> Result<Cron, String> {
        if text.len() > MAX_CRON_LEN {
            return Err(format!(
                "the expression is {} characters; at most {MAX_CRON_LEN} are read",
                text.len()
            ));
        }
        if text.trim_start().starts_with('@') {
            return Err(format!(
                "'{}': macros are not read; write the five fields (minute hour day-of-month month day-of-week)",
                shown(text.trim())
            ));
        }
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "has {} fields; a cron expression has five: minute hour day-of-month month day-of-week",
                fields.len()
            ));
        }
        let mut sets = [0u64; 5];
        for (set, (field, text)) in sets.iter_mut().zip(FIELDS.iter().zip(&fields)) {
            *set = field.parse(text)?;
        }
        // Weekday 7 is Sunday.
        let weekdays = (sets[4] | (sets[4] >> 7)) & 0x7f;
        let cron = Cron {
            minutes: sets[0],
            hours: sets[1] as u32,
            days: sets[2] as u32,
            months: sets[3] as u16,
            weekdays: weekdays as u8,
            days_and: fields[2].starts_with('*') || fields[4].starts_with('*'),
        };
        cron.check_some_day_matches()?;
        Ok(cron)
    }

    /// Refuses an expression no date matches: with the weekday field `*`, a day of the month
    /// that none of its months has (`31` in `2`, `4`, `6`, `9`, `11`).
    fn check_some_day_matches(&self) -> Result<(), String> {
        if !self.days_and || self.weekdays != 0x7f {
            // A restricted weekday field: every week has that weekday.
            return Ok(());
        }
        let first_day = self.days.trailing_zeros();
        let fits = (1..=12u32)
            .filter(|m| self.months & (1 << m) != 0)
            .any(|m| first_day <= u32::from(MONTH_DAYS[m as usize - 1]));
        if fits {
            Ok(())
        } else {
            Err(format!(
                "never fires: no month it names has a day {first_day}"
            ))
        }
    }

    /// Whether the schedule fires on `date` (Vixie's day rule).
    fn day_matches(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.days_and {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The wall-clock times of a day it fires at, earliest first.
    fn times_of_day(&self) -> impl DoubleEndedIterator<Item = (i8, i8)> + '_ {
        (0..24i8)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(move |h| {
                (0..60i8)
                    .filter(move |m| self.minutes & (1 << m) != 0)
                    .map(move |m| (h, m))
            })
    }

    /// Walks the times it fires strictly after `after`, in `tz`, earliest first, while `go` says
    /// so, for at most [`HORIZON_DAYS`] days of dates (`None` when it ran out of them).
    fn walk_after(
        &self,
        tz: &TimeZone,
        after: Millis,
        mut go: impl FnMut(Millis) -> bool,
    ) -> Option<()> {
        // Wall times a little behind `after`'s own may still be after it (a repeated hour);
        // earlier ones cannot be, and are not resolved.
        let from = wall_clock(tz, after.checked_sub(WALL_MARGIN_MS)?)?;
        let mut date = from.date();
        for _ in 0..=HORIZON_DAYS {
            if self.day_matches(date) {
                for (h, m) in self.times_of_day() {
                    let candidate = date.at(h, m, 0, 0);
                    if candidate < from {
                        continue;
                    }
                    if let Some(at) = instant(tz, candidate)
                        && at > after
                        && !go(at)
                    {
                        return Some(());
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The first time it fires strictly after `after`, in `tz`; `None` within [`HORIZON_DAYS`].
    pub fn next_after(&self, tz: &TimeZone, after: Millis) -> Option<Millis> {
        let mut first = None;
        self.walk_after(tz, after, |at| {
            first = Some(at);
            false
        });
        first
    }

    /// The last time it fires at or before `at`, in `tz`; `None` within [`HORIZON_DAYS`].
    pub fn last_at_or_before(&self, tz: &TimeZone, at: Millis) -> Option<Millis> {
        let to = wall_clock(tz, at.checked_add(WALL_MARGIN_MS)?)?;
        let mut date = to.date();
        for _ in 0..=HORIZON_DAYS {
            if self.day_matches(date) {
                for (h, m) in self.times_of_day().rev() {
                    let candidate = date.at(h, m, 0, 0);
                    if candidate > to {
                        continue;
                    }
                    match instant(tz, candidate) {
                        Some(t) if t <= at => return Some(t),
                        _ => {}
                    }
                }
            }
            date = date.yesterday().ok()?;
        }
        None
    }

    /// How many times it fires strictly between `after` and `before`, counted up to `cap`, and
    /// the last of them. One walk over the dates between.
    pub fn count_between(
        &self,
        tz: &TimeZone,
        after: Millis,
        before: Millis,
        cap: u64,
    ) -> (u64, Option<Millis>) {
        let (mut n, mut last) = (0, None);
        self.walk_after(tz, after, |at| {
            if at >= before || n >= cap {
                return false;
            }
            n += 1;
            last = Some(at);
            true
        });
        (n, last)
    }
}

/// The instant of a wall-clock time in `tz`: `None` in a gap (a DST jump skips it), the first
/// occurrence in a fold (a repeated hour).
fn instant(tz: &TimeZone, wall: DateTime) -> Option<Millis> {
    let offset = match tz.to_ambiguous_timestamp(wall).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Gap { .. } => return None,
        AmbiguousOffset::Fold { before, .. } => before,
    };
    offset.to_timestamp(wall).ok().map(|t| t.as_millisecond())
}

/// The time zone of an IANA name (`Europe/Amsterdam`, `UTC`), from the system's tz database
/// (`/usr/share/zoneinfo`, or `TZDIR`). Names are checked before any file is looked for.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name.len() > MAX_TIME_ZONE_LEN {
        return Err(format!(
            "a time zone is an IANA name of 1 to {MAX_TIME_ZONE_LEN} characters (Europe/Amsterdam)"
        ));
    }
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'))
        && name
            .split('/')
            .all(|part| !part.is_empty() && part.as_bytes()[0].is_ascii_alphabetic());
    if !plain {
        return Err(format!(
            "'{}' is not an IANA time zone name (Area/Location: letters, digits, _, - and +)",
            shown(name)
        ));
    }
    if name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| {
        format!("'{name}' is not a time zone in this system's tz database (/usr/share/zoneinfo)")
    })
}

/// The wall-clock time of instant `at` in `tz`.
fn wall_clock(tz: &TimeZone, at: Millis) -> Option<DateTime> {
    Some(tz.to_datetime(Timestamp::from_millisecond(at).ok()?))
}

/// `at` as `yyyyMMddHHmm` in UTC: the part of a run's id that names its time.
pub fn stamp(at: Millis) -> String {
    let t = wall_clock(&TimeZone::UTC, at).unwrap_or_default();
    format!(
        "{:04}{:02}{:02}{:02}{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Millis {
        crate::clock::parse_rfc3339(text).unwrap()
    }

    fn t(at: Millis) -> String {
        crate::clock::rfc3339(at)
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    /// The next time after `after` (RFC 3339) in `tz`, as RFC 3339.
    fn next(c: &Cron, tz: &TimeZone, after: &str) -> String {
        t(c.next_after(tz, ms(after)).unwrap())
    }

    /// The last time at or before `at` (RFC 3339) in `tz`, as RFC 3339.
    fn last(c: &Cron, tz: &TimeZone, at: &str) -> String {
        t(c.last_at_or_before(tz, ms(at)).unwrap())
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        let c = Cron::parse("*/15 9-17 * JAN,jul MON-FRI").unwrap();
        assert_eq!(c.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(c.hours, (9..=17).fold(0, |s, h| s | 1 << h));
        assert_eq!(c.months, 1 << 1 | 1 << 7);
        assert_eq!(c.weekdays, 0b0111110);
        let c = Cron::parse("5/20 0 1-10/3 * 7").unwrap();
        assert_eq!(c.minutes, 1 << 5 | 1 << 25 | 1 << 45);
        assert_eq!(c.days, 1 << 1 | 1 << 4 | 1 << 7 | 1 << 10);
        assert_eq!(c.weekdays, 1, "7 is Sunday");
    }

    #[test]
    fn refusals_say_why() {
        let cases = [
            ("* * * *", "has 4 fields"),
            ("* * * * * *", "has 6 fields"),
            ("60 * * * *", "minute 60 is out of range 0-59"),
            ("* 24 * * *", "hour 24 is out of range 0-23"),
            ("* * 0 * *", "day-of-month 0 is out of range 1-31"),
            ("* * * 13 *", "month 13 is out of range 1-12"),
            ("* * * * 8", "day-of-week 8 is out of range 0-7"),
            (
                "*/0 * * * *",
                "minute step '0' must be a number from 1 to 59",
            ),
            ("5-1 * * * *", "minute range 5-1 runs backwards"),
            ("1,,2 * * * *", "minute has an empty list item"),
            (
                "* * * FOO *",
                "month 'FOO' is neither a number nor a name (JAN-DEC)",
            ),
            ("x * * * *", "minute 'x' is not a number"),
            ("@hourly", "macros are not read"),
            ("0 0 31 2 *", "never fires: no month it names has a day 31"),
            ("0 0 30 2 *", "never fires"),
            ("* * ? * *", "day-of-month '?' is not a number"),
            ("+5 * * * *", "minute '+5' is not a number"),
        ];
        for (text, want) in cases {
            let error = Cron::parse(text).unwrap_err();
            assert!(error.contains(want), "{text}: {error}");
        }
        let long = "1,".repeat(5_000);
        let error = Cron::parse(&long).unwrap_err();
        assert!(error.contains("10000 characters; at most 200"), "{error}");
        // Fires: 31 in some month, or on a weekday besides.
        assert!(Cron::parse("0 0 31 1,2 *").is_ok());
        assert!(Cron::parse("0 0 31 2 MON").is_ok());
        assert!(Cron::parse("0 0 29 2 *").is_ok());
    }

    #[test]
    fn vixie_day_rule() {
        // Both restricted: the 13th or a Friday.
        let c = Cron::parse("0 0 13 * FRI").unwrap();
        assert_eq!(
            next(&c, &utc(), "2026-03-01T00:00:00Z"),
            "2026-03-06T00:00:00.000Z"
        );
        assert_eq!(
            next(&c, &utc(), "2026-03-06T00:00:00Z"),
            "2026-03-13T00:00:00.000Z"
        );
        assert_eq!(
            next(&c, &utc(), "2026-03-27T00:00:00Z"),
            "2026-04-03T00:00:00.000Z"
        );
        // One field starting with `*`: both must match (`*/2` counts as a star, as in Vixie).
        let c = Cron::parse("0 0 */2 * MON").unwrap();
        assert_eq!(
            next(&c, &utc(), "2026-03-01T00:00:00Z"),
            "2026-03-09T00:00:00.000Z"
        );
    }

    #[test]
    fn next_and_last_in_utc() {
        let c = Cron::parse("*/5 * * * *").unwrap();
        assert_eq!(
            next(&c, &utc(), "2026-03-01T10:02:30Z"),
            "2026-03-01T10:05:00.000Z"
        );
        assert_eq!(
            last(&c, &utc(), "2026-03-01T10:02:30Z"),
            "2026-03-01T10:00:00.000Z"
        );
        assert_eq!(
            last(&c, &utc(), "2026-03-01T10:05:00Z"),
            "2026-03-01T10:05:00.000Z"
        );
        assert_eq!(
            next(&c, &utc(), "2026-03-01T10:05:00Z"),
            "2026-03-01T10:10:00.000Z"
        );
        let (n, last_one) = c.count_between(
            &utc(),
            ms("2026-03-01T10:00:00Z"),
            ms("2026-03-01T11:00:00Z"),
            100,
        );
        assert_eq!(
            (n, last_one.map(t)),
            (11, Some("2026-03-01T10:55:00.000Z".into()))
        );
        // A week's outage of an every-minute schedule: counted in one walk, up to the cap.
        let every = Cron::parse("* * * * *").unwrap();
        let started = std::time::Instant::now();
        let (n, _) = every.count_between(
            &utc(),
            ms("2026-03-01T00:00:00Z"),
            ms("2026-03-08T00:00:00Z"),
            super::super::MAX_COUNTED_MISSES,
        );
        assert_eq!(n, super::super::MAX_COUNTED_MISSES);
        eprintln!("counted {n} missed minutes in {:?}", started.elapsed());
        let leap = Cron::parse("0 12 29 2 *").unwrap();
        assert_eq!(
            next(&leap, &utc(), "2097-03-01T00:00:00Z"),
            "2104-02-29T12:00:00.000Z"
        );
    }

    #[test]
    fn dst_skipped_times_do_not_run_and_repeated_ones_run_once() {
        let amsterdam = time_zone("Europe/Amsterdam").unwrap();
        let tz = &amsterdam;
        // 29 March 2026: 02:00 local jumps to 03:00 (01:00 UTC); 02:30 that day is skipped.
        let c = Cron::parse("30 2 * * *").unwrap();
        assert_eq!(
            next(&c, tz, "2026-03-28T12:00:00Z"),
            "2026-03-30T00:30:00.000Z"
        );
        // Every 30 minutes around the jump: 01:30 CET, then 03:00 CEST.
        let half = Cron::parse("*/30 * * * *").unwrap();
        assert_eq!(
            next(&half, tz, "2026-03-29T00:15:00Z"),
            "2026-03-29T00:30:00.000Z"
        );
        assert_eq!(
            next(&half, tz, "2026-03-29T00:30:00Z"),
            "2026-03-29T01:00:00.000Z"
        );
        // 25 October 2026: 03:00 local falls back to 02:00 (01:00 UTC); 02:30 comes twice and
        // runs at the first (CEST, 00:30 UTC), not at the second (CET, 01:30 UTC).
        assert_eq!(
            next(&c, tz, "2026-10-24T12:00:00Z"),
            "2026-10-25T00:30:00.000Z"
        );
        assert_eq!(
            next(&c, tz, "2026-10-25T00:30:00Z"),
            "2026-10-26T01:30:00.000Z"
        );
        // From inside the repeated hour (02:10 CET, the second pass), the times already passed
        // are not found again.
        let hourly = Cron::parse("0 * * * *").unwrap();
        assert_eq!(
            next(&hourly, tz, "2026-10-25T01:10:00Z"),
            "2026-10-25T02:00:00.000Z"
        );
        assert_eq!(
            last(&hourly, tz, "2026-10-25T01:10:00Z"),
            "2026-10-25T00:00:00.000Z"
        );
    }

    #[test]
    fn time_zone_names_are_checked_before_any_file() {
        for bad in [
            "",
            "../etc/passwd",
            "Europe/../../etc",
            "/etc/localtime",
            "Europe//Amsterdam",
            "Eur ope",
        ] {
            let error = time_zone(bad).unwrap_err();
            assert!(error.contains("IANA"), "{bad}: {error}");
        }
        assert!(time_zone(&"A".repeat(65)).is_err());
        let error = time_zone("Mars/Olympus_Mons").unwrap_err();
        assert!(error.contains("not a time zone"), "{error}");
        assert!(time_zone("UTC").is_ok());
        assert!(time_zone("America/New_York").is_ok());
    }

    #[test]
    fn stamps_name_the_minute_in_utc() {
        assert_eq!(stamp(ms("2026-03-29T01:05:59Z")), "202603290105");
    }
}
