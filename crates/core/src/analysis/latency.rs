//! The latency check, reduced to a proportion: "pNN ≤ T" holds exactly when at most (100 − NN) % of
//! requests are slower than T, so the canary's share of requests slower than T is tested like an error
//! rate (H0: share ≤ (100 − NN) %, H1: share ≥ `zone_ratio` times that).
//!
//! Against the stable release, T is the stable release's pNN over the same window plus the allowed excess.
//! That threshold is itself estimated: if the stable pNN came out low, even a canary exactly at the bound
//! would have more than (100 − NN) % of requests above T. The estimate's error, in probability terms, is
//! the standard error of a proportion (100 − NN) % over the stable release's requests, so the fail test
//! allows that share plus `stable_margin` standard errors and the pass test requires it minus as much.

use super::sprt::{Decision, Sprt, decide};
use super::{Judgement, Settings, Window, text};
use crate::verdict::Verdict;
use std::time::Duration;

/// Judges the canary's latency percentile with the default [`Settings`].
pub fn judge_latency(
    canary: &Window,
    stable: Option<&Window>,
    percentile: f64,
    max: Duration,
    compare_stable: bool,
) -> Judgement {
    judge_latency_with(
        &Settings::default(),
        canary,
        stable,
        percentile,
        max,
        compare_stable,
    )
}

/// Judges the canary's `percentile` (e.g. 95.0): at most `max`, or with `compare_stable` at most the
/// stable release's same percentile (same window) plus `max`. Without a stable window (first deploy) `max`
/// is used as an absolute bound.
pub fn judge_latency_with(
    settings: &Settings,
    canary: &Window,
    stable: Option<&Window>,
    percentile: f64,
    max: Duration,
    compare_stable: bool,
) -> Judgement {
    if !(percentile > 0.0 && percentile < 100.0) {
        return Judgement::inconclusive(format!(
            "latency percentile {percentile} is not between 0 and 100"
        ));
    }
    let name = format!("p{percentile}");
    let allowed = 1.0 - percentile / 100.0;
    let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    let n = canary.latency.count();
    let mut seen = match canary.latency.percentile(percentile) {
        Some(p) => format!("canary {name} {}", text::micros(p)),
        None => "canary: no latencies yet".to_string(),
    };
    let mut note = String::new();

    let (threshold, fail, pass) = match (compare_stable, stable) {
        (true, Some(stable)) => {
            let ns = stable.latency.count();
            let Some(stable_p) = stable
                .latency
                .percentile(percentile)
                .filter(|_| ns >= settings.min_requests)
            else {
                return Judgement::inconclusive(format!(
                    "{seen}: the stable release served fewer than {} requests in this window, nothing \
                     to compare with yet (hold)",
                    settings.min_requests
                ));
            };
            let threshold = stable_p.saturating_add(max_us);
            seen.push_str(&format!(
                " vs stable {name} {} + {} allowed",
                text::micros(stable_p),
                text::micros(max_us)
            ));
            let margin =
                settings.stable_margin.max(0.0) * (allowed * (1.0 - allowed) / ns as f64).sqrt();
            let high = allowed + margin;
            let low = (allowed - margin).max(0.0);
            (
                threshold,
                Sprt::new(0.0, high, settings.zone_ratio),
                Sprt::new(0.0, low, settings.zone_ratio),
            )
        }
        (compare, _) => {
            if compare {
                note = format!(
                    "; no stable release to compare with (first deploy): judged against the absolute \
                     bound {} only",
                    text::micros(max_us)
                );
            }
            let test = Sprt::new(0.0, allowed, settings.zone_ratio);
            (max_us, test, test)
        }
    };

    if n < settings.min_requests {
        return Judgement::inconclusive(format!(
            "{seen}: fewer than {} canary requests, too few to judge (hold){note}",
            settings.min_requests
        ));
    }
    let slow = canary.latency.count_above(threshold);
    let share = format!(
        "{} of canary requests ({slow}/{n}) slower than {}",
        text::pct(slow as f64 / n as f64),
        text::micros(threshold)
    );
    match decide(slow, n, fail, pass, settings.alpha, settings.beta) {
        Decision::Fail { p_value } => Judgement::new(
            Verdict::Fail,
            format!(
                "{seen}: {share}, more than the {} a {name} allows (SPRT, {}){note}",
                text::pct(allowed),
                text::p_value(p_value)
            ),
        ),
        Decision::Pass { p_value } if n >= settings.min_requests_to_pass => Judgement::new(
            Verdict::Pass,
            format!(
                "{seen}: {name} within {} ({share}; SPRT: {} or more slow ruled out, {}){note}",
                text::micros(threshold),
                text::pct(pass.p1),
                text::p_value(p_value)
            ),
        ),
        Decision::Pass { .. } => Judgement::inconclusive(format!(
            "{seen}: {share}, looks within bounds, but a pass needs {} canary requests (hold){note}",
            settings.min_requests_to_pass
        )),
        Decision::Undecided => Judgement::inconclusive(format!(
            "{seen}: {share}, not enough evidence either way yet (hold){note}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fast` requests at `fast_ms` and `slow` requests at `slow_ms`.
    fn window(fast: u64, fast_ms: u64, slow: u64, slow_ms: u64) -> Window {
        let mut w = Window::default();
        for _ in 0..fast {
            w.record(fast_ms * 1000, false);
        }
        for _ in 0..slow {
            w.record(slow_ms * 1000, false);
        }
        w
    }

    #[test]
    fn absolute_p95_fails_when_many_requests_are_slow() {
        let j = judge_latency(
            &window(800, 100, 200, 500),
            None,
            95.0,
            Duration::from_millis(300),
            false,
        );
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.detail);
        assert!(
            j.detail.starts_with(
                "canary p95 501.8ms: 20% of canary requests (200/1000) slower than 300ms"
            ),
            "{}",
            j.detail
        );
    }

    #[test]
    fn absolute_p95_passes_when_few_are_slow() {
        let j = judge_latency(
            &window(990, 100, 10, 500),
            None,
            95.0,
            Duration::from_millis(300),
            false,
        );
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.detail);
    }

    #[test]
    fn compared_with_stable() {
        let stable = window(9000, 100, 0, 0);
        // Canary twice as slow: every request beyond stable p95 (100 ms) + 50 ms.
        let j = judge_latency(
            &window(1000, 200, 0, 0),
            Some(&stable),
            95.0,
            Duration::from_millis(50),
            true,
        );
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.detail);
        assert!(
            j.detail.contains("vs stable p95 100.4ms + 50ms allowed"),
            "{}",
            j.detail
        );
        // Same latency: passes.
        let j = judge_latency(
            &window(1000, 100, 0, 0),
            Some(&stable),
            95.0,
            Duration::from_millis(50),
            true,
        );
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.detail);
    }

    #[test]
    fn no_data_or_bad_percentile_is_inconclusive() {
        let empty = Window::default();
        let j = judge_latency(&empty, None, 95.0, Duration::from_millis(300), false);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.detail);
        let j = judge_latency(
            &window(1000, 100, 0, 0),
            Some(&empty),
            95.0,
            Duration::from_millis(50),
            true,
        );
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.detail);
        for p in [0.0, 100.0, f64::NAN, 150.0] {
            let j = judge_latency(
                &window(1000, 100, 0, 0),
                None,
                p,
                Duration::from_millis(300),
                false,
            );
            assert_eq!(j.verdict, Verdict::Inconclusive, "{p}");
        }
    }

    #[test]
    fn first_deploy_uses_the_absolute_bound() {
        let j = judge_latency(
            &window(1000, 100, 0, 0),
            None,
            95.0,
            Duration::from_millis(300),
            true,
        );
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.detail);
        assert!(j.detail.contains("first deploy"), "{}", j.detail);
    }
}
