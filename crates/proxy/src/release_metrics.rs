//! What the proxy saw of one release (or one route variant of it): requests, answers by status class,
//! and a latency histogram, kept as cumulative atomic counters. The per-request cost is a few relaxed
//! atomic adds; windows ("the last 10 s", "since the analysis started") are differences of snapshots,
//! taken by the controller.

use slipway_core::analysis::{LatencyHistogram, Window};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

pub struct ReleaseMetrics {
    /// Answers by status class: index 0 for 1xx … 4 for 5xx. Proxy error pages count as 5xx.
    classes: [AtomicU64; 5],
    /// Requests that got no answer at all from the instance (connect error, reset, timeout).
    failures: AtomicU64,
    /// Requests the proxy failed on purpose (`slipway drill`), also counted as 5xx answers.
    injected: AtomicU64,
    /// The sum of every answered request's time to its response head: its growth over a window,
    /// divided by the window, is the average number of requests in flight (Little's law), which the
    /// autoscaler reads.
    busy_micros: AtomicU64,
    buckets: Box<[AtomicU64]>,
}

impl std::fmt::Debug for ReleaseMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseMetrics")
            .field("classes", &self.by_class())
            .finish()
    }
}

impl ReleaseMetrics {
    pub fn new() -> Arc<ReleaseMetrics> {
        Arc::new(ReleaseMetrics {
            classes: Default::default(),
            failures: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            busy_micros: AtomicU64::new(0),
            buckets: (0..LatencyHistogram::BUCKETS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        })
    }

    /// Counts one answered request: its status code and how long it took (to the response head).
    #[inline]
    pub fn record(&self, status: u16, micros: u64) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.classes[class].fetch_add(1, Relaxed);
        self.busy_micros.fetch_add(micros, Relaxed);
        self.buckets[LatencyHistogram::bucket_of(micros)].fetch_add(1, Relaxed);
    }

    /// Counts a request the instance never answered (it is also answered 5xx by the proxy).
    #[inline]
    pub fn record_failure(&self, status: u16, micros: u64) {
        self.failures.fetch_add(1, Relaxed);
        self.record(status, micros);
    }

    /// Counts a request the proxy failed on purpose (an injected fault): a 5xx answer the analysis sees,
    /// and one a drill does not count against the app.
    #[inline]
    pub fn record_injected(&self, status: u16, micros: u64) {
        self.injected.fetch_add(1, Relaxed);
        self.record(status, micros);
    }

    /// Requests failed on purpose so far (`record_injected`).
    pub fn injected(&self) -> u64 {
        self.injected.load(Relaxed)
    }

    pub fn by_class(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.classes[i].load(Relaxed))
    }

    /// Microseconds spent in requests so far (to their response heads).
    pub fn busy_micros(&self) -> u64 {
        self.busy_micros.load(Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    /// Everything so far, for the analysis (errors = 5xx answers, proxy failures included).
    pub fn snapshot(&self) -> Window {
        let classes = self.by_class();
        Window {
            requests: classes.iter().sum(),
            errors: classes[4],
            latency: LatencyHistogram::from_counts(
                self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            ),
        }
    }
}

/// Microseconds since `start`, saturating.
pub(crate) fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_count_answers_errors_and_latency() {
        let m = ReleaseMetrics::new();
        m.record(200, 1_000);
        m.record(404, 2_000);
        m.record(503, 3_000);
        m.record_failure(502, 50);
        m.record_injected(503, 10);
        let w = m.snapshot();
        assert_eq!((w.requests, w.errors), (5, 3));
        assert_eq!(m.by_class(), [0, 1, 0, 1, 3]);
        assert_eq!(m.failures(), 1);
        assert_eq!(m.injected(), 1);
        assert_eq!(w.latency.count(), 5);
        assert_eq!(m.busy_micros(), 6_060);
    }
}
