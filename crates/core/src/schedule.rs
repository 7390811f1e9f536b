//! Cron schedules: the five-field expressions of `[cron.<name>] schedule`, evaluated in UTC.
//!
//! Fields are minute, hour, day of month, month, day of week; each is `*`, a value, a range `a-b`, a step
//! `*/n` or `a-b/n`, or a comma list of those. Months and days take names (`jan`, `mon`). `@hourly`,
//! `@daily`, `@weekly`, `@monthly` and `@yearly` are shorthands. As in Vixie cron, when both day fields are
//! restricted, a day matches if either does. Time is an input (unix seconds): no clock here.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

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
        name: "day of month",
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
    // 7 is Sunday too, as in most crons; folded onto 0 below.
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &WEEKDAYS,
    },
];

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(ScheduleError(format!(
                    "unknown shorthand `{other}`: use @hourly, @daily, @weekly, @monthly or @yearly"
                )));
            }
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(ScheduleError(format!(
                "a schedule has 5 fields (minute hour day-of-month month day-of-week), found {}: e.g. \"*/5 * * * *\"",
                parts.len()
            )));
        }
        let mut masks = [0u64; 5];
        for (i, (part, field)) in parts.iter().zip(FIELDS.iter()).enumerate() {
            masks[i] = parse_field(part, field)?;
        }
        // Sunday is 0 and 7.
        let weekdays = (masks[4] | (masks[4] >> 7)) as u8 & 0x7f;
        Ok(Schedule {
            minutes: masks[0],
            hours: masks[1] as u32,
            days: masks[2] as u32,
            months: masks[3] as u16,
            weekdays,
            days_restricted: parts[2] != "*",
            weekdays_restricted: parts[4] != "*",
        })
    }

    /// The first whole minute strictly after `unix_secs` that the schedule matches, within 5 years
    /// (`None` for schedules that never fire, like `0 0 31 2 *`).
    pub fn next_after(&self, unix_secs: i64) -> Option<i64> {
        let start = unix_secs.div_euclid(60) + 1;
        let first_day = start.div_euclid(1440);
        for day in first_day..first_day + 5 * 366 {
            if !self.day_matches(day) {
                continue;
            }
            let from_minute = if day == first_day {
                start.rem_euclid(1440)
            } else {
                0
            };
            for minute_of_day in from_minute..1440 {
                let (h, m) = (minute_of_day / 60, minute_of_day % 60);
                if self.hours & (1 << h) != 0 && self.minutes & (1 << m) != 0 {
                    return Some((day * 1440 + minute_of_day) * 60);
                }
            }
        }
        None
    }

    fn day_matches(&self, days_since_epoch: i64) -> bool {
        let (_, month, day) = civil_from_days(days_since_epoch);
        if self.months & (1 << month) == 0 {
            return false;
        }
        // 1970-01-01 was a Thursday (4).
        let weekday = (days_since_epoch + 4).rem_euclid(7) as u32;
        let day_ok = self.days & (1 << day) != 0;
        let weekday_ok = self.weekdays & (1 << weekday) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day_ok || weekday_ok,
            _ => day_ok && weekday_ok,
        }
    }
}

fn parse_field(text: &str, field: &Field) -> Result<u64, ScheduleError> {
    let mut mask = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                    ScheduleError(format!(
                        "{}: `{s}` is not a step (a whole number above 0)",
                        field.name
                    ))
                })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, field)?, value(b, field)?)
        } else {
            let v = value(range, field)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if step > 1 { field.max } else { v })
        };
        if lo > hi {
            return Err(ScheduleError(format!(
                "{}: the range `{range}` goes backwards",
                field.name
            )));
        }
        let mut v = lo;
        while v <= hi {
            mask |= 1 << v;
            // A step past the field's end leaves one value; adding it must not wrap back into the range.
            let Some(next) = v.checked_add(step) else {
                break;
            };
            v = next;
        }
    }
    Ok(mask)
}

fn value(text: &str, field: &Field) -> Result<u32, ScheduleError> {
    let lower = text.to_ascii_lowercase();
    let named = field
        .names
        .iter()
        .position(|n| *n == lower)
        .map(|i| i as u32 + if field.min == 1 { 1 } else { 0 });
    let v = match named {
        Some(v) => v,
        None => text.parse::<u32>().map_err(|_| {
            ScheduleError(format!(
                "{}: `{text}` is not a number{}",
                field.name,
                if field.names.is_empty() {
                    String::new()
                } else {
                    format!(" or a name like `{}`", field.names[0])
                }
            ))
        })?,
    };
    if v < field.min || v > field.max {
        return Err(ScheduleError(format!(
            "{}: {v} is out of range ({}-{})",
            field.name, field.min, field.max
        )));
    }
    Ok(v)
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-30T12:34:56Z, a Monday.
    const T: i64 = 1_796_042_096;

    fn next(expr: &str, t: i64) -> i64 {
        Schedule::parse(expr).unwrap().next_after(t).unwrap()
    }

    #[test]
    fn calendar_conversion() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(T / 86_400), (2026, 11, 30));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn every_five_minutes() {
        assert_eq!(next("*/5 * * * *", T), T - 56 + 60); // 12:35
        assert_eq!(next("*/5 * * * *", T - 56 + 60), T - 56 + 360); // 12:40, strictly after
    }

    #[test]
    fn daily_and_weekly() {
        let midnight = (T / 86_400 + 1) * 86_400;
        assert_eq!(next("@daily", T), midnight);
        // Next Sunday 00:00 is 2026-12-06.
        assert_eq!(next("@weekly", T), midnight + 5 * 86_400);
        assert_eq!(next("0 9 * * mon-fri", T), midnight + 9 * 3600);
        assert_eq!(
            next("30 12 * * 1", T),
            (T / 86_400 + 7) * 86_400 + 12 * 3600 + 1800
        );
    }

    #[test]
    fn months_and_either_day_rule() {
        // 1st of the month or any Friday: Friday 2026-12-04 comes after Tuesday 12-01.
        let dec1 = (T / 86_400 + 1) * 86_400;
        assert_eq!(next("0 0 1 * fri", T), dec1);
        assert_eq!(next("0 0 1 jan *", T), 1_798_761_600); // 2027-01-01
        assert!(
            Schedule::parse("0 0 31 2 *")
                .unwrap()
                .next_after(T)
                .is_none()
        );
        assert_eq!(next("0 0 * * 7", T), next("0 0 * * 0", T));
    }

    #[test]
    fn bad_expressions_say_why() {
        for (bad, why) in [
            ("* * * *", "5 fields"),
            ("61 * * * *", "out of range"),
            ("*/0 * * * *", "step"),
            ("5-1 * * * *", "backwards"),
            ("* * * foo *", "not a number or a name"),
            ("@often", "shorthand"),
        ] {
            let e = Schedule::parse(bad).unwrap_err().0;
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_step_beyond_the_range_keeps_only_the_start() {
        // `59/4294967295` overflowed when stepping past 59: a panic in debug builds, and in release a
        // wrap back into the range that made it fire every minute.
        let huge = u32::MAX;
        let s = Schedule::parse(&format!("59/{huge} * * * *")).unwrap();
        assert_eq!(s.minutes, 1 << 59);
        assert_eq!(
            Schedule::parse(&format!("*/{huge} 1/{huge} * * *"))
                .unwrap()
                .hours,
            1 << 1
        );
        assert_eq!(next(&format!("34/{huge} * * * *"), T), T - 56 + 60 * 60);
    }
}
