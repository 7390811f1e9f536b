//! Cron schedules: any text parses or is refused with a reason, never a panic. For a schedule and a time
//! (within the years a clock can give, 1970–9999), the next run is a whole minute strictly later, within
//! five years, and asking again from any second before it gives the same minute.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_core::schedule::Schedule;

// 9999-12-31T23:59:59Z.
const LAST_SECOND: i64 = 253_402_300_799;
const FIVE_YEARS: i64 = 5 * 366 * 86_400;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes pick the time, the rest is the expression.
    let (time, text) = data.split_at(data.len().min(8));
    let mut raw = [0u8; 8];
    raw[..time.len()].copy_from_slice(time);
    let now = i64::from_le_bytes(raw).rem_euclid(LAST_SECOND + 1);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let schedule = match Schedule::parse(text) {
        Ok(schedule) => schedule,
        Err(error) => {
            assert!(!error.0.is_empty(), "a refusal says why");
            return;
        }
    };
    let Some(next) = schedule.next_after(now) else {
        return;
    };
    assert!(next > now && next % 60 == 0, "{text:?} after {now}: {next}");
    assert!(
        next - now <= FIVE_YEARS + 86_400,
        "{text:?} after {now}: {next}"
    );
    // Nothing matches between `now` and `next`, so every start in between finds `next` again.
    for earlier in [next - 1, next - 60, (now + next) / 2] {
        if earlier >= now {
            assert_eq!(
                schedule.next_after(earlier),
                Some(next),
                "{text:?} after {earlier}"
            );
        }
    }
    assert!(
        schedule
            .next_after(next)
            .is_none_or(|after| after >= next + 60)
    );
});
