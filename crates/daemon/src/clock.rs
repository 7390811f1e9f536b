//! The controller's clock: Unix milliseconds, so rollout deadlines persisted in the store stay
//! meaningful across a daemon restart. The pure core only ever receives these numbers.
//!
//! Read from the wall clock once, when the daemon starts, and advanced by the monotonic clock from
//! then on: a wall-clock jump (an operator's `date`, a VM restored from a snapshot, NTP stepping)
//! neither stalls a canary's pause by the size of a backward jump nor expires a `progress_deadline`
//! with a forward one. A restarted daemon reads the wall clock again.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();
    let (wall_ms, at) = ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        (wall, Instant::now())
    });
    wall_ms + at.elapsed().as_millis() as u64
}

/// "at 2026-11-22 10:00:00 UTC (12s ago)" for messages about past moments.
pub fn describe_ms(ms: i64) -> String {
    let ago = (now_ms() as i64 - ms).max(0) / 1000;
    let at = UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    format!("at {} ({ago}s ago)", humantime::format_rfc3339_seconds(at))
}
