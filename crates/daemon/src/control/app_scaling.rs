//! What the controller keeps of an app whose web process scales (`replicas = { min, max }`): the
//! scaler's memory, the settings in force, the demand the proxy counts, the last counters read (a load
//! is a difference of two readings), the last change and cold starts, for `status`. Plain data and pure
//! helpers; `autoscale_round` drives it.

use slipway_core::autoscale::{Change, Load, Scaler};
use slipway_core::release::Version;
use slipway_core::spec::{ScaleTarget, Scaling};
use slipway_proxy::{Demand, ReleaseMetrics};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Counters read at one moment, summed over the app's releases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    pub at: u64,
    pub requests: u64,
    pub busy_micros: u64,
    pub arrivals: u64,
}

pub(crate) struct AppScaling {
    pub settings: Scaling,
    pub scaler: Scaler,
    /// Only for an app that can scale to zero: its activity and held requests.
    pub demand: Option<Arc<Demand>>,
    pub last_reading: Option<Reading>,
    /// The latest load (as the target counts it), for `status`.
    pub load: f64,
    pub last_change: Option<(u64, Change)>,
    pub changes: u64,
    /// Woken from zero at this time, for this release: the cold start being timed.
    pub waking: Option<(u64, Version)>,
    /// The last cold start of each release, in milliseconds (wake to first instance serving).
    pub cold_starts: BTreeMap<Version, u64>,
}

impl AppScaling {
    pub(crate) fn new(settings: Scaling, replicas: u32, now: u64) -> AppScaling {
        AppScaling {
            settings,
            scaler: Scaler::new(replicas, now),
            demand: None,
            last_reading: None,
            load: 0.0,
            last_change: None,
            changes: 0,
            waking: None,
            cold_starts: BTreeMap::new(),
        }
    }
}

/// The counters now.
pub(crate) fn read(
    now: u64,
    metrics: &BTreeMap<Version, Arc<ReleaseMetrics>>,
    demand: Option<&Demand>,
) -> Reading {
    let mut reading = Reading {
        at: now,
        arrivals: demand.map_or(0, Demand::arrivals),
        ..Reading::default()
    };
    for m in metrics.values() {
        reading.requests += m.snapshot().requests;
        reading.busy_micros += m.busy_micros();
    }
    reading
}

/// The load between two readings as `target` counts it: requests in flight on average (the time spent
/// in requests over the time passed) or requests a second. Counters that went down (a release's metrics
/// dropped) count as no load rather than a negative one.
pub(crate) fn load_between(
    before: &Reading,
    after: &Reading,
    target: Option<ScaleTarget>,
    waiting: bool,
) -> Load {
    let elapsed_ms = after.at.saturating_sub(before.at).max(1) as f64;
    let value = match target {
        Some(ScaleTarget::Rps(_)) => {
            after.requests.saturating_sub(before.requests) as f64 * 1000.0 / elapsed_ms
        }
        Some(ScaleTarget::Concurrency(_)) | None => {
            after.busy_micros.saturating_sub(before.busy_micros) as f64 / (elapsed_ms * 1000.0)
        }
    };
    Load {
        at: after.at,
        value,
        active: after.arrivals > before.arrivals,
        waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_is_busy_time_over_elapsed_time_or_a_rate() {
        let a = Reading {
            at: 1_000,
            requests: 100,
            busy_micros: 0,
            arrivals: 5,
        };
        let b = Reading {
            at: 3_000,
            requests: 500,
            busy_micros: 6_000_000,
            arrivals: 5,
        };
        let c = load_between(&a, &b, Some(ScaleTarget::Concurrency(10)), false);
        assert_eq!(c.value, 3.0, "6 s of requests in 2 s: 3 in flight");
        assert!(!c.active, "no arrival counted as activity");
        let r = load_between(&a, &b, Some(ScaleTarget::Rps(10)), true);
        assert_eq!((r.value, r.waiting), (200.0, true));
        let back = load_between(&b, &a, None, false);
        assert_eq!(back.value, 0.0);
    }
}
