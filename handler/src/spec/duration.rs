//! ISO 8601 durations (`PT30M`, `P1DT2H`, `PT0.5S`), the format Durable Functions and ARM use.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration with millisecond precision, written as ISO 8601 (`PT1H30M`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoDuration(pub u64);

impl IsoDuration {
    /// The duration in milliseconds.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// Builds a duration from seconds.
    pub fn from_secs(secs: u64) -> Self {
        IsoDuration(secs * 1000)
    }

    /// Parses `PnW`, `PnDTnHnMnS` (any part optional, fractional seconds allowed).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not an ISO 8601 duration such as PT30M or P1DT2H");
        let rest = text
            .strip_prefix('P')
            .or_else(|| text.strip_prefix('p'))
            .ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        let (date, time) = match rest.find(['T', 't']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if time == Some("") {
            return Err(bad());
        }
        let mut total: f64 = 0.0;
        let mut scan = |part: &str, units: &[(char, f64)]| -> Result<(), String> {
            let mut number = String::new();
            let mut next_unit = 0;
            for c in part.chars() {
                if c.is_ascii_digit() || c == '.' || c == ',' {
                    number.push(if c == ',' { '.' } else { c });
                    continue;
                }
                let upper = c.to_ascii_uppercase();
                let position = units[next_unit..]
                    .iter()
                    .position(|(u, _)| *u == upper)
                    .ok_or_else(bad)?;
                let value: f64 = number.parse().map_err(|_| bad())?;
                total += value * units[next_unit + position].1;
                next_unit += position + 1;
                number.clear();
            }
            if number.is_empty() {
                Ok(())
            } else {
                Err(bad())
            }
        };
        scan(date, &[('W', 604_800_000.0), ('D', 86_400_000.0)])?;
        if let Some(time) = time {
            scan(time, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1000.0)])?;
        }
        if !total.is_finite() || total > 3.15e12 {
            return Err(format!("'{text}' is longer than 100 years"));
        }
        Ok(IsoDuration(total.round() as u64))
    }
}

impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        let days = ms / 86_400_000;
        ms %= 86_400_000;
        let hours = ms / 3_600_000;
        ms %= 3_600_000;
        let minutes = ms / 60_000;
        ms %= 60_000;
        write!(f, "P")?;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if hours == 0 && minutes == 0 && ms == 0 {
            return if days == 0 { write!(f, "T0S") } else { Ok(()) };
        }
        write!(f, "T")?;
        if hours > 0 {
            write!(f, "{hours}H")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}M")?;
        }
        if ms > 0 {
            if ms.is_multiple_of(1000) {
                write!(f, "{}S", ms / 1000)?;
            } else {
                write!(f, "{}.{:03}S", ms / 1000, ms % 1000)?;
            }
        }
        Ok(())
    }
}

impl Serialize for IsoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IsoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        IsoDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::IsoDuration;

    #[test]
    fn parses_the_usual_forms() {
        for (text, ms) in [
            ("PT30M", 1_800_000),
            ("PT10S", 10_000),
            ("PT0S", 0),
            ("P1D", 86_400_000),
            ("P1DT2H", 93_600_000),
            ("PT1H30M", 5_400_000),
            ("PT0.5S", 500),
            ("P2W", 1_209_600_000),
            ("pt1m", 60_000),
        ] {
            assert_eq!(IsoDuration::parse(text), Ok(IsoDuration(ms)), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in [
            "", "P", "PT", "30M", "PT30", "PTM", "P1H", "PT1S2M", "PT-1S", "P1.2.3D", "soon",
        ] {
            assert!(IsoDuration::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        for text in [
            "PT0S", "PT30M", "P1DT2H", "PT1H30M", "PT0.500S", "P3D", "PT1M1S",
        ] {
            let parsed = IsoDuration::parse(text).unwrap();
            assert_eq!(
                IsoDuration::parse(&parsed.to_string()),
                Ok(parsed),
                "{text}"
            );
        }
        assert_eq!(IsoDuration(1_800_000).to_string(), "PT30M");
    }
}
