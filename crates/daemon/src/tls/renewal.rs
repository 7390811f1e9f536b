//! When a certificate is renewed, and how long to wait after a failure: pure, time is an input.

use std::time::{Duration, SystemTime};

/// Renew at two thirds of the lifetime, moved by `jitter` (−1.0..=1.0) times a twentieth of the lifetime,
/// so many certificates issued together do not all renew in the same second.
pub fn renew_at(not_before: SystemTime, not_after: SystemTime, jitter: f64) -> SystemTime {
    let lifetime = not_after
        .duration_since(not_before)
        .unwrap_or(Duration::ZERO);
    let two_thirds = lifetime.mul_f64(2.0 / 3.0);
    let spread = lifetime.mul_f64(jitter.clamp(-1.0, 1.0).abs() / 20.0);
    if jitter < 0.0 {
        not_before + two_thirds - spread
    } else {
        not_before + two_thirds + spread
    }
}

/// The wait before attempt `failures + 1`: 30 s doubling up to six hours (CAs rate-limit failures).
pub fn backoff(failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(30);
    const MOST: Duration = Duration::from_secs(6 * 3600);
    FIRST
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(MOST)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn renews_at_two_thirds_within_the_jitter() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = start + Duration::from_secs(90 * 86_400);
        assert_eq!(
            renew_at(start, end, 0.0),
            start + Duration::from_secs(60 * 86_400)
        );
        let spread = Duration::from_secs(90 * 86_400 / 20);
        assert_eq!(
            renew_at(start, end, 1.0),
            start + Duration::from_secs(60 * 86_400) + spread
        );
        assert_eq!(
            renew_at(start, end, -1.0),
            start + Duration::from_secs(60 * 86_400) - spread
        );
        // A backwards window renews at once rather than never.
        assert_eq!(renew_at(end, start, 0.5), end);
    }

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(40), Duration::from_secs(6 * 3600));
    }
}
