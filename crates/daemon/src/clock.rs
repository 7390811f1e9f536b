//! The controller's clock: wall-clock Unix milliseconds, so rollout deadlines persisted in the store
//! stay meaningful across a daemon restart. The pure core only ever receives these numbers.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// "at 2026-11-22 10:00:00 UTC (12s ago)" for messages about past moments.
pub fn describe_ms(ms: i64) -> String {
    let ago = (now_ms() as i64 - ms).max(0) / 1000;
    let at = UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    format!("at {} ({ago}s ago)", humantime::format_rfc3339_seconds(at))
}
