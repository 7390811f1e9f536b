//! Durations as written in `slipway.toml`: a string of number+unit groups, `"500ms"`, `"30s"`, `"1m30s"`.
//!
//! Deliberately strict (no `"30 sec"`, no bare numbers, no fractions) so that every config reads the
//! same way; but when humantime understands a looser spelling, the help offers the strict form.

use std::time::Duration;

/// The valid units, longest first so `ms` is tried before `m`.
const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Examples shown in help lines.
pub(crate) const EXAMPLES: &str = "\"500ms\", \"30s\", \"5m\", \"1h30m\"";

/// Why a string is not a duration, as a message fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DurationError {
    Empty,
    Negative,
    /// Not `<number><unit>` groups; carries the strict spelling when a looser parser understood it.
    Malformed {
        suggestion: Option<String>,
    },
    TooLong,
}

/// Parses `"1h30m"`, `"500ms"`, `"0s"`. Groups may be separated by single spaces (`"1m 30s"`).
pub(crate) fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative);
    }
    strict(trimmed).ok_or_else(|| DurationError::Malformed {
        suggestion: humantime::parse_duration(trimmed).ok().map(format),
    })?
}

fn strict(text: &str) -> Option<Result<Duration, DurationError>> {
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut overflow = false;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, after) = rest.split_at(digits);
        let (unit, scale) = UNITS.iter().find(|(u, _)| after.starts_with(u))?;
        let after_unit = &after[unit.len()..];
        // A unit must end at a group boundary: `5min` is not `5m` + `in`.
        if after_unit.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        match number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(*scale))
        {
            Some(ms) => {
                total_ms = total_ms.checked_add(ms).unwrap_or_else(|| {
                    overflow = true;
                    0
                })
            }
            None => overflow = true,
        }
        rest = after_unit.strip_prefix(' ').unwrap_or(after_unit);
    }
    if overflow {
        return Some(Err(DurationError::TooLong));
    }
    Some(Ok(Duration::from_millis(total_ms)))
}

/// The strict spelling of a duration: `"1h30m"`, `"500ms"`, `"0s"`; sub-millisecond parts are dropped.
pub(crate) fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, scale) in UNITS.iter().rev() {
        let scale = u128::from(*scale);
        if ms >= scale {
            out.push_str(&format!("{}{unit}", ms / scale));
            ms %= scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn strict_spellings_parse() {
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1m 30s"), Duration::from_secs(90));
        assert_eq!(ok("2d"), Duration::from_secs(172_800));
        assert_eq!(ok("0s"), Duration::ZERO);
    }

    #[test]
    fn loose_spellings_are_rejected_with_the_strict_form() {
        assert_eq!(
            parse("30 sec"),
            Err(DurationError::Malformed {
                suggestion: Some("30s".into())
            })
        );
        assert_eq!(
            parse("5min"),
            Err(DurationError::Malformed {
                suggestion: Some("5m".into())
            })
        );
        assert_eq!(
            parse("fast"),
            Err(DurationError::Malformed { suggestion: None })
        );
        assert_eq!(
            parse("30"),
            Err(DurationError::Malformed { suggestion: None })
        );
        assert_eq!(
            parse("1.5s"),
            Err(DurationError::Malformed {
                suggestion: Some("1s500ms".into())
            })
        );
        assert_eq!(parse("-5s"), Err(DurationError::Negative));
        assert_eq!(parse(" "), Err(DurationError::Empty));
        assert_eq!(parse("99999999999999999999h"), Err(DurationError::TooLong));
    }

    #[test]
    fn format_round_trips() {
        for s in ["500ms", "30s", "5m", "1h30m", "1d2h3m4s5ms", "0s"] {
            assert_eq!(format(ok(s)), s);
        }
    }
}
