//! Time, injected: the system clock in production, any [`Clock`] a test brings.

use crate::engine::Millis;

/// A source of the current time in Unix milliseconds.
pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

/// The wall clock (`SystemTime`): production's, which may step when the machine's time is set.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        since.as_millis() as Millis
    }
}

/// The wall clock moved by an offset a test sets: time still passes (steps, leases and waits
/// behave), but the test decides what day and hour it is and can jump ahead.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset: std::sync::atomic::AtomicI64,
}

impl ShiftedClock {
    /// A clock that reads `at` now.
    pub fn at(at: Millis) -> Self {
        let clock = ShiftedClock::default();
        clock.set(at);
        clock
    }

    /// Makes the clock read `at` now.
    pub fn set(&self, at: Millis) {
        let offset = at - SystemClock.now();
        self.offset
            .store(offset, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the clock `ms` ahead.
    pub fn advance(&self, ms: Millis) {
        self.offset
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Millis {
        SystemClock.now() + self.offset.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC (`2026-11-22T10:00:00.123Z`).
pub fn rfc3339(at: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(at as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format).unwrap_or_default()
}

/// Parses an RFC 3339 time to Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        let at = 1_795_000_000_123;
        assert_eq!(parse_rfc3339(&rfc3339(at)), Some(at));
        assert_eq!(
            parse_rfc3339("2025-03-14T09:30:00+00:00"),
            Some(1_741_944_600_000)
        );
    }
}
