//! What mirroring (shadow traffic) found: how the mirror release answered copies of real requests compared
//! with the release that actually answered them.
//!
//! Kept apart from [`ReleaseMetrics`](crate::ReleaseMetrics) on purpose: shadow requests are extra load the
//! proxy generates, so counting them as the canary's traffic would skew its analysis. Cumulative atomic
//! counters, like the metrics; the controller takes snapshots.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Counters of one mirror (one app's shadow release).
#[derive(Debug, Default)]
pub struct ShadowReport {
    mirrored: AtomicU64,
    compared: AtomicU64,
    status_class_mismatches: AtomicU64,
    shadow_failures: AtomicU64,
    latency_diff_sum_micros: AtomicI64,
    body_mismatches: AtomicU64,
    body_compared: AtomicU64,
    skipped_non_idempotent: AtomicU64,
}

/// A snapshot of a [`ShadowReport`] (everything since it was created).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShadowSummary {
    /// Copies sent to the mirror release.
    pub mirrored: u64,
    /// Pairs where both the primary and the shadow answered (a response head), so they could be compared.
    pub compared: u64,
    /// Compared pairs whose status classes (2xx, 4xx, 5xx...) differ.
    pub status_class_mismatches: u64,
    /// Copies the mirror release never answered (connection error, reset, timeout).
    pub shadow_failures: u64,
    /// Mean over compared pairs of shadow latency − primary latency (to the response head), in µs.
    pub latency_diff_mean_micros: i64,
    /// Pairs whose bodies were both compared and differ.
    pub body_mismatches: u64,
    /// Pairs whose bodies were compared: both at most 64 KiB, and the primary's seen to its end.
    pub body_compared: u64,
    /// Requests sampled for mirroring but not copied because their method may have side effects.
    pub skipped_non_idempotent: u64,
}

impl ShadowReport {
    pub fn new() -> Arc<ShadowReport> {
        Arc::new(ShadowReport::default())
    }

    pub fn snapshot(&self) -> ShadowSummary {
        let compared = self.compared.load(Relaxed);
        let sum = self.latency_diff_sum_micros.load(Relaxed);
        ShadowSummary {
            mirrored: self.mirrored.load(Relaxed),
            compared,
            status_class_mismatches: self.status_class_mismatches.load(Relaxed),
            shadow_failures: self.shadow_failures.load(Relaxed),
            latency_diff_mean_micros: if compared == 0 {
                0
            } else {
                sum / i64::try_from(compared).unwrap_or(i64::MAX)
            },
            body_mismatches: self.body_mismatches.load(Relaxed),
            body_compared: self.body_compared.load(Relaxed),
            skipped_non_idempotent: self.skipped_non_idempotent.load(Relaxed),
        }
    }

    pub(crate) fn count_mirrored(&self) {
        self.mirrored.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_skipped(&self) {
        self.skipped_non_idempotent.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_shadow_failure(&self) {
        self.shadow_failures.fetch_add(1, Relaxed);
    }

    /// Records one compared pair. `bodies` is `Some(equal)` when both bodies could be compared.
    pub(crate) fn count_pair(
        &self,
        same_class: bool,
        latency_diff_micros: i64,
        bodies: Option<bool>,
    ) {
        self.compared.fetch_add(1, Relaxed);
        if !same_class {
            self.status_class_mismatches.fetch_add(1, Relaxed);
        }
        self.latency_diff_sum_micros
            .fetch_add(latency_diff_micros, Relaxed);
        if let Some(equal) = bodies {
            self.body_compared.fetch_add(1, Relaxed);
            if !equal {
                self.body_mismatches.fetch_add(1, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_means_latency_over_compared_pairs() {
        let r = ShadowReport::new();
        assert_eq!(r.snapshot(), ShadowSummary::default());
        r.count_mirrored();
        r.count_mirrored();
        r.count_mirrored();
        r.count_pair(true, 300, Some(true));
        r.count_pair(false, -100, Some(false));
        r.count_shadow_failure();
        r.count_skipped();
        let s = r.snapshot();
        assert_eq!(s.mirrored, 3);
        assert_eq!(s.compared, 2);
        assert_eq!(s.status_class_mismatches, 1);
        assert_eq!(s.latency_diff_mean_micros, 100);
        assert_eq!((s.body_compared, s.body_mismatches), (2, 1));
        assert_eq!((s.shadow_failures, s.skipped_non_idempotent), (1, 1));
    }
}
