//! Per-release time series for the dashboard: every few seconds, one point per release (request rate,
//! error rate, p50/p95/p99) computed from the controller's per-second counter snapshots, kept for a few
//! minutes. Points are made from the snapshots alone (pure); the controller calls [`Series::record`].

use slipway_api::ReleaseSeries;
use slipway_core::analysis::Window;
use slipway_core::release::Version;
use std::collections::{BTreeMap, VecDeque};

/// A point every this many ms…
pub const EVERY_MS: u64 = 2_000;
/// …over the last this many seconds of traffic (smooths a quiet release's rate)…
pub const SPAN_SECONDS: usize = 5;
/// …kept this many points (5 minutes).
pub const POINTS: usize = 150;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: u64,
    pub rps: f64,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// What one release did between two snapshots `span_ms` apart.
pub fn point(t: u64, latest: &Window, earlier: Option<&Window>, span_ms: u64) -> Point {
    let d = match earlier {
        Some(e) => latest.since(e),
        None => latest.clone(),
    };
    let ms = |p: f64| d.latency.percentile(p).map(|us| us as f64 / 1000.0);
    Point {
        t,
        rps: d.requests as f64 * 1000.0 / span_ms.max(1) as f64,
        error_rate: d.error_rate(),
        p50_ms: ms(50.0),
        p95_ms: ms(95.0),
        p99_ms: ms(99.0),
    }
}

#[derive(Default)]
pub struct Series {
    by_release: BTreeMap<Version, VecDeque<Point>>,
    last_at: u64,
}

impl Series {
    /// Adds a point per release when one is due, from the newest per-second snapshots.
    pub fn record(&mut self, history: &VecDeque<(u64, BTreeMap<Version, Window>)>) {
        let Some((now, latest)) = history.back() else {
            return;
        };
        if *now < self.last_at + EVERY_MS {
            return;
        }
        let Some((then, earlier)) = history.get(history.len().saturating_sub(SPAN_SECONDS + 1))
        else {
            return;
        };
        if then == now {
            return;
        }
        self.last_at = *now;
        for (v, w) in latest {
            let points = self.by_release.entry(*v).or_default();
            points.push_back(point(*now, w, earlier.get(v), now - then));
            while points.len() > POINTS {
                points.pop_front();
            }
        }
        // A release that has not been seen for the whole period is gone from the charts.
        let oldest = now.saturating_sub(EVERY_MS * POINTS as u64);
        self.by_release
            .retain(|_, p| p.back().is_some_and(|last| last.t >= oldest));
    }

    pub fn view(&self) -> Vec<ReleaseSeries> {
        self.by_release
            .iter()
            .map(|(v, points)| ReleaseSeries {
                release: *v,
                t: points.iter().map(|p| p.t as i64).collect(),
                rps: points.iter().map(|p| round(p.rps)).collect(),
                error_rate: points.iter().map(|p| p.error_rate.map(round)).collect(),
                p50_ms: points.iter().map(|p| p.p50_ms.map(round)).collect(),
                p95_ms: points.iter().map(|p| p.p95_ms.map(round)).collect(),
                p99_ms: points.iter().map(|p| p.p99_ms.map(round)).collect(),
            })
            .collect()
    }
}

/// Four significant decimals are plenty for a chart and keep the JSON short.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(requests: u64, errors: u64, micros: u64) -> Window {
        let mut w = Window::default();
        for i in 0..requests {
            w.record(micros, i < errors);
        }
        w
    }

    #[test]
    fn a_point_is_the_difference_between_two_snapshots() {
        let p = point(
            9_000,
            &window(300, 3, 20_000),
            Some(&window(100, 1, 20_000)),
            2_000,
        );
        assert_eq!(p.rps, 100.0);
        assert_eq!(p.error_rate, Some(0.01));
        let p95 = p.p95_ms.unwrap();
        assert!((19.0..=21.0).contains(&p95), "{p95}");
        let quiet = point(9_000, &window(5, 0, 1), Some(&window(5, 0, 1)), 2_000);
        assert_eq!(
            (quiet.rps, quiet.error_rate, quiet.p95_ms),
            (0.0, None, None)
        );
    }

    #[test]
    fn points_come_every_few_seconds_and_old_ones_go() {
        let mut history = VecDeque::new();
        let mut series = Series::default();
        for s in 0..(POINTS as u64 * 3) {
            let mut releases = BTreeMap::new();
            releases.insert(1, window(s * 10, 0, 1_000));
            history.push_back((s * 1_000, releases));
            while history.len() > 61 {
                history.pop_front();
            }
            series.record(&history);
        }
        let view = series.view();
        assert_eq!(view.len(), 1);
        assert_eq!(view[0].t.len(), POINTS);
        assert!(view[0].t.windows(2).all(|w| w[1] - w[0] == EVERY_MS as i64));
        assert_eq!(*view[0].rps.last().unwrap(), 10.0);
    }
}
