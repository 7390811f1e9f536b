//! The error-rate check: the canary's share of 5xx answers and proxy failures, against an absolute bound or
//! against the stable release's rate plus an allowed excess.
//!
//! Against the stable release the bound is `p_stable + max`, and `p_stable` is itself estimated. The
//! stable release usually serves most of the traffic (90 % at a 10 % canary), so its rate is known far
//! better than the canary's; the fail test uses it plus `stable_margin` standard errors and the pass test
//! minus as much, which keeps both tests on the cautious side of the estimate (see docs/analysis.md for
//! the false alarms this leaves at the exact bound).

use super::sprt::{Decision, Sprt, decide};
use super::{Judgement, Settings, Window, stable_standard_error, text};
use crate::verdict::Verdict;

/// Judges the canary's error rate with the default [`Settings`].
pub fn judge_error_rate(
    canary: &Window,
    stable: Option<&Window>,
    max: f64,
    compare_stable: bool,
) -> Judgement {
    judge_error_rate_with(&Settings::default(), canary, stable, max, compare_stable)
}

/// Judges the canary's error rate: `max` is the highest acceptable rate, or with `compare_stable` the
/// highest acceptable excess over the stable release's rate in the same window (absolute: 0.01 = one
/// percentage point). Without a stable window (first deploy) `max` is used as an absolute bound.
pub fn judge_error_rate_with(
    settings: &Settings,
    canary: &Window,
    stable: Option<&Window>,
    max: f64,
    compare_stable: bool,
) -> Judgement {
    if !max.is_finite() {
        return Judgement::inconclusive(format!("error-rate bound {max} is not a number"));
    }
    let n = canary.requests;
    let k = canary.errors.min(n);
    let rate = |k: u64, n: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let mut seen = format!("canary {} errors ({k}/{n})", text::pct(rate(k, n)));
    let mut note = String::new();

    let (fail, pass, over, within, ruled_out) = match (compare_stable, stable) {
        (true, Some(stable)) => {
            let ns = stable.requests;
            let ks = stable.errors.min(ns);
            seen.push_str(&format!(
                " vs stable {} ({ks}/{ns})",
                text::pct(rate(ks, ns))
            ));
            if ns < settings.min_requests {
                return Judgement::inconclusive(format!(
                    "{seen}: the stable release served fewer than {} requests in this window, nothing to \
                     compare with yet (hold)",
                    settings.min_requests
                ));
            }
            let ps = rate(ks, ns);
            let margin = settings.stable_margin.max(0.0) * stable_standard_error(ks, ns);
            let high = ps + margin;
            let low = (ps - margin).max(0.0);
            (
                Sprt::new(high, high + max, settings.zone_ratio),
                Sprt::new(low, low + max, settings.zone_ratio),
                format!("worse by more than {}", text::pct(max)),
                format!("within +{} of stable", text::pct(max)),
                format!(
                    "{} worse or more ruled out",
                    text::pct(settings.zone_ratio * max)
                ),
            )
        }
        (compare, _) => {
            if compare {
                note = format!(
                    "; no stable release to compare with (first deploy): judged against the absolute \
                     bound {} only",
                    text::pct(max)
                );
            }
            let test = Sprt::new(0.0, max, settings.zone_ratio);
            (
                test,
                test,
                format!("above {}", text::pct(max)),
                format!("under {}", text::pct(max)),
                format!("{} or more ruled out", text::pct(test.p1)),
            )
        }
    };

    if n < settings.min_requests {
        return Judgement::inconclusive(format!(
            "{seen}: fewer than {} canary requests, too few to judge (hold){note}",
            settings.min_requests
        ));
    }
    match decide(k, n, fail, pass, settings.alpha, settings.beta) {
        Decision::Fail { p_value } => Judgement::new(
            Verdict::Fail,
            format!("{seen}: {over} (SPRT, {}){note}", text::p_value(p_value)),
        ),
        Decision::Pass { p_value } if n >= settings.min_requests_to_pass => Judgement::new(
            Verdict::Pass,
            format!(
                "{seen}: {within} (SPRT: {ruled_out}, {}){note}",
                text::p_value(p_value)
            ),
        ),
        Decision::Pass { .. } => Judgement::inconclusive(format!(
            "{seen}: looks {within}, but a pass needs {} canary requests (hold){note}",
            settings.min_requests_to_pass
        )),
        Decision::Undecided => Judgement::inconclusive(format!(
            "{seen}: not enough evidence either way yet (hold){note}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::LatencyHistogram;

    fn window(requests: u64, errors: u64) -> Window {
        Window {
            requests,
            errors,
            latency: LatencyHistogram::default(),
        }
    }

    #[test]
    fn seed_scenario_fails_and_says_why() {
        let j = judge_error_rate(&window(1000, 31), Some(&window(9000, 27)), 0.01, true);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.detail);
        assert!(
            j.detail.starts_with(
                "canary 3.1% errors (31/1000) vs stable 0.3% (27/9000): worse by more than 1% (SPRT, p"
            ),
            "{}",
            j.detail
        );
    }

    #[test]
    fn healthy_canary_passes_with_enough_data() {
        let j = judge_error_rate(&window(2000, 6), Some(&window(18000, 54)), 0.01, true);
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.detail);
        assert!(j.detail.contains("within +1% of stable"), "{}", j.detail);
    }

    #[test]
    fn too_little_data_is_inconclusive() {
        let j = judge_error_rate(&window(0, 0), Some(&window(9000, 27)), 0.01, true);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        let j = judge_error_rate(&window(10, 0), None, 0.01, false);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        // Clean, but fewer requests than a pass needs.
        let j = judge_error_rate(&window(400, 0), None, 0.01, false);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.detail);
        assert!(j.detail.contains("a pass needs 500"), "{}", j.detail);
        // Comparing with a stable release that served nothing.
        let j = judge_error_rate(&window(5000, 0), Some(&window(0, 0)), 0.01, true);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.detail);
        assert!(j.detail.contains("nothing to compare"), "{}", j.detail);
    }

    #[test]
    fn nan_bound_never_passes() {
        let j = judge_error_rate(&window(5000, 0), None, f64::NAN, false);
        assert_eq!(j.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn blatant_errors_fail_fast() {
        let j = judge_error_rate(&window(40, 30), Some(&window(360, 1)), 0.01, true);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.detail);
        let j = judge_error_rate(&window(40, 30), None, 0.01, false);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.detail);
    }

    #[test]
    fn first_deploy_uses_the_absolute_bound_and_says_so() {
        let j = judge_error_rate(&window(1000, 40), None, 0.01, true);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.detail);
        assert!(j.detail.contains("first deploy"), "{}", j.detail);
        let j = judge_error_rate(&window(1000, 0), None, 0.01, true);
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.detail);
        assert!(
            j.detail.contains("under 1%") && j.detail.contains("first deploy"),
            "{}",
            j.detail
        );
    }

    #[test]
    fn absolute_bound_holds_in_between() {
        // 1.2 % against a 1 % bound with 1000 requests: neither proven over nor under.
        let j = judge_error_rate(&window(1000, 12), None, 0.01, false);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.detail);
    }

    #[test]
    fn a_zero_bound_fails_on_errors() {
        let j = judge_error_rate(&window(100, 1), None, 0.0, false);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.detail);
    }
}
