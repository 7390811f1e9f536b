//! Wald's sequential probability ratio test for a proportion, read through Ville's inequality.
//!
//! Why this test: the controller re-judges cumulative counts as often as new requests arrive, so a
//! fixed-sample test would raise false alarms at a rate that grows with every look. For a bound `p0` and
//! an alternative `p1 > p0` the likelihood ratio `Λ = (p1/p0)^k ((1−p1)/(1−p0))^(n−k)` is a non-negative supermartingale whenever
//! the true proportion is at most `p0` (its expected factor per request is linear in the true rate and
//! equals 1 at `p0`). Ville's inequality then bounds the chance that it *ever* reaches `1/α` by `α`,
//! however often and for however long it is looked at. Symmetrically, `1/Λ` is a supermartingale when the
//! true proportion is at least `p1`, so "Λ ever falls to `β`" happens with chance at most `β` for such a
//! release. Between `p0` and `p1` lies the indifference zone, where either answer is acceptable.
//!
//! The statistic depends only on the counts `(k, n)`, so it needs no state between judgements.

/// The narrowest indifference zone, as an absolute proportion (a bound of 0 % still has an alternative).
const MIN_ZONE: f64 = 1e-3;
/// Proportions are kept strictly inside (0, 1) so the log-likelihoods stay finite.
const FLOOR: f64 = 1e-9;
const CEIL: f64 = 1.0 - 1e-6;

/// One SPRT: H0 "proportion ≤ p0" against H1 "proportion ≥ p1".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sprt {
    pub p0: f64,
    pub p1: f64,
}

impl Sprt {
    /// H0: `p ≤ bound`; H1: `p ≥ base + zone_ratio · (bound − base)`, i.e. the excess over `base` that the
    /// bound allows, `zone_ratio` times over (at least [`MIN_ZONE`] above the bound).
    pub fn new(base: f64, bound: f64, zone_ratio: f64) -> Sprt {
        let p0 = bound.clamp(FLOOR, CEIL);
        let wanted = base + zone_ratio * (bound - base);
        // f64::max ignores a NaN `wanted`: the minimum zone applies.
        let p1 = wanted.max(p0 + MIN_ZONE).min(p0 + (1.0 - p0) / 2.0);
        Sprt { p0, p1 }
    }

    /// ln Λ after `k` events (errors, slow requests) in `n` trials.
    pub fn log_likelihood_ratio(&self, k: u64, n: u64) -> f64 {
        let k = k.min(n);
        let per_event = (self.p1 / self.p0).ln();
        let per_non_event = (-self.p1).ln_1p() - (-self.p0).ln_1p();
        k as f64 * per_event + (n - k) as f64 * per_non_event
    }
}

/// What the two one-sided tests say about `k` events in `n` trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// H0 of `fail` rejected: the proportion is above its bound. `p_value` is anytime-valid.
    Fail {
        p_value: f64,
    },
    /// H1 of `pass` rejected: the proportion is not as high as its alternative.
    Pass {
        p_value: f64,
    },
    Undecided,
}

/// `fail` decides at level `alpha`, `pass` at level `beta`; a Fail wins over a Pass (they can only both
/// hold when the two tests use different bounds, e.g. around an uncertain stable rate).
pub(crate) fn decide(k: u64, n: u64, fail: Sprt, pass: Sprt, alpha: f64, beta: f64) -> Decision {
    let fail_llr = fail.log_likelihood_ratio(k, n);
    if fail_llr >= threshold(alpha) {
        return Decision::Fail {
            p_value: (-fail_llr).exp(),
        };
    }
    let pass_llr = pass.log_likelihood_ratio(k, n);
    if -pass_llr >= threshold(beta) {
        return Decision::Pass {
            p_value: pass_llr.exp(),
        };
    }
    Decision::Undecided
}

/// ln(1/level), with the level kept to a sane range (a level of 0 would never decide, 1 always would).
fn threshold(level: f64) -> f64 {
    let level = if level.is_nan() { 0.01 } else { level };
    (1.0 / level.clamp(1e-12, 0.5)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_is_a_multiple_of_the_allowed_excess() {
        let s = Sprt::new(0.0, 0.01, 2.0);
        assert!((s.p0 - 0.01).abs() < 1e-12 && (s.p1 - 0.02).abs() < 1e-12);
        let s = Sprt::new(0.003, 0.013, 2.0);
        assert!((s.p1 - 0.023).abs() < 1e-12);
        // A zero bound still has an alternative and finite log-likelihoods.
        let s = Sprt::new(0.0, 0.0, 2.0);
        assert!(s.p0 > 0.0 && s.p1 >= s.p0 + MIN_ZONE);
        assert!(s.log_likelihood_ratio(1, 1).is_finite());
        // Near 100 % the alternative stays below 1.
        let s = Sprt::new(0.0, 0.9, 2.0);
        assert!(s.p1 > s.p0 && s.p1 < 1.0);
    }

    #[test]
    fn boundaries_match_hand_computation() {
        // p0 = 1 %, p1 = 2 %: one error adds ln 2, one success adds ln(0.98/0.99).
        let s = Sprt::new(0.0, 0.01, 2.0);
        let llr = s.log_likelihood_ratio(3, 10);
        let want = 3.0 * 2f64.ln() + 7.0 * (0.98f64 / 0.99).ln();
        assert!((llr - want).abs() < 1e-9);
        // ln(100) = 4.605 needs 7 errors in 10 requests: 7 ln 2 − 3·0.01015 = 4.82.
        assert!(matches!(
            decide(7, 10, s, s, 0.01, 0.05),
            Decision::Fail { .. }
        ));
        assert_eq!(decide(6, 10, s, s, 0.01, 0.05), Decision::Undecided);
        // ln(20) = 2.996 of clean requests at 0.01015 each: 296 clean requests pass, 295 do not.
        assert!(matches!(
            decide(0, 296, s, s, 0.01, 0.05),
            Decision::Pass { .. }
        ));
        assert_eq!(decide(0, 295, s, s, 0.01, 0.05), Decision::Undecided);
    }

    #[test]
    fn blatant_failures_fail_with_little_data() {
        let s = Sprt::new(0.0, 0.01, 2.0);
        match decide(30, 40, s, s, 0.01, 0.05) {
            Decision::Fail { p_value } => assert!(p_value < 1e-6),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn p_values_are_the_inverse_likelihood_ratio() {
        let s = Sprt::new(0.0, 0.01, 2.0);
        if let Decision::Fail { p_value } = decide(10, 100, s, s, 0.01, 0.05) {
            assert!((p_value - (-s.log_likelihood_ratio(10, 100)).exp()).abs() < 1e-12);
            assert!(p_value <= 0.01);
        } else {
            panic!("10 errors in 100 requests is far over 1 %");
        }
    }
}
