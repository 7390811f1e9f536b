//! What the proxy saw of one release over a stretch of time.
//!
//! The proxy keeps cumulative counters per release; the controller snapshots them when an analysis starts
//! and judges `now.since(&start)`, so every judgement sees all the data of the analysis so far (the
//! sequential tests are built for exactly that: cumulative counts, re-judged as often as wanted).

use super::histogram::LatencyHistogram;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Requests answered (or failed) for this release.
    pub requests: u64,
    /// 5xx answers plus proxy failures (connect errors, timeouts, resets).
    pub errors: u64,
    /// Latencies of those requests.
    pub latency: LatencyHistogram,
}

impl Window {
    /// What happened between `earlier` and `self` (counts never go below zero, e.g. after a restart).
    pub fn since(&self, earlier: &Window) -> Window {
        Window {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            latency: self.latency.saturating_sub(&earlier.latency),
        }
    }

    /// Adds `more` (another counter's window over the same stretch of time).
    pub fn add(&mut self, more: &Window) {
        self.requests = self.requests.saturating_add(more.requests);
        self.errors = self.errors.saturating_add(more.errors);
        self.latency.merge(&more.latency);
    }

    /// Errors per request; `None` without requests (no data is not a rate of zero).
    pub fn error_rate(&self) -> Option<f64> {
        if self.requests == 0 {
            return None;
        }
        Some(self.errors.min(self.requests) as f64 / self.requests as f64)
    }

    /// `requests` requests of `latency_micros` each, the first `errors` of them failed (tests and
    /// simulations).
    pub fn uniform(requests: u64, errors: u64, latency_micros: u64) -> Window {
        let mut w = Window::default();
        for i in 0..requests {
            w.record(latency_micros, i < errors);
        }
        w
    }

    /// Counts one request (tests and simulations; the proxy records into its own atomics).
    pub fn record(&mut self, latency_micros: u64, error: bool) {
        self.requests = self.requests.saturating_add(1);
        if error {
            self.errors = self.errors.saturating_add(1);
        }
        self.latency.record(latency_micros);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_subtracts_everything() {
        let mut start = Window::default();
        start.record(1_000, false);
        start.record(2_000, true);
        let mut now = start.clone();
        now.record(3_000, true);
        now.record(4_000, false);
        let w = now.since(&start);
        assert_eq!(w.requests, 2);
        assert_eq!(w.errors, 1);
        assert_eq!(w.latency.count(), 2);
        assert_eq!(w.error_rate(), Some(0.5));
        assert_eq!(start.since(&now), Window::default());
    }

    #[test]
    fn no_requests_is_no_rate() {
        assert_eq!(Window::default().error_rate(), None);
        let odd = Window {
            requests: 2,
            errors: 5,
            latency: LatencyHistogram::default(),
        };
        assert_eq!(odd.error_rate(), Some(1.0));
    }
}
