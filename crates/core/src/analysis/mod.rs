//! Canary analysis from the proxy's own numbers: is the canary worse than its bound, or than the stable
//! release serving at the same time?
//!
//! Why it is built this way:
//! - **Decide as soon as the evidence suffices.** The controller judges the cumulative counts since the
//!   analysis started as often as new requests arrive (every few tens of milliseconds). Every decision
//!   comes from a sequential probability ratio test (`sprt.rs`) whose false-alarm guarantee holds under
//!   that continuous monitoring (Ville's inequality), so looking often costs nothing and a blatant failure
//!   (30 errors in 40 requests) fails at once.
//! - **One template, one alpha.** Several checks in a template share the template's `alpha`
//!   ([`Settings::per_check`], Bonferroni): the rollout fails at the first failing check, so the chance
//!   of a false rollback is that of *any* check failing falsely.
//! - **Two one-sided questions.** *Fail*: is there evidence at level `alpha` that the canary is over its
//!   bound? *Pass*: is there evidence at level `beta` that it is not as bad as the edge of the indifference
//!   zone (`zone_ratio` times the allowed excess)? Neither yet → *Inconclusive*: hold.
//! - **Too little data is never a pass.** Below `min_requests` nothing is decided; a pass also needs
//!   `min_requests_to_pass`; comparing with a stable release that served nothing is inconclusive; NaN or
//!   empty inputs are inconclusive.
//! - **Latency is a proportion.** "p95 ≤ T" is "at most 5 % of requests slower than T", which the same test
//!   answers from the latency histogram.
//!
//! `docs/analysis.md` explains the choices and gives the false-alarm rates and detection times measured by
//! `crates/core/tests/analysis_sim.rs`.

mod error_rate;
mod histogram;
mod latency;
mod sprt;
pub(crate) mod text;
mod window;

pub use error_rate::{judge_error_rate, judge_error_rate_with};
pub use histogram::{LatencyHistogram, MAX_MICROS};
pub use latency::{judge_latency, judge_latency_with};
pub use window::Window;

use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};

/// A verdict and the sentence that explains it (shown to users, stored with the rollout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub detail: String,
}

impl Judgement {
    fn new(verdict: Verdict, detail: String) -> Self {
        Judgement { verdict, detail }
    }

    fn inconclusive(detail: String) -> Self {
        Judgement::new(Verdict::Inconclusive, detail)
    }
}

/// The knobs of the sequential tests. The defaults are what `judge_error_rate` and `judge_latency` use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Chance of ever failing a canary that is within its bound (false alarm), however long it is watched.
    pub alpha: f64,
    /// Chance of ever passing a canary at or beyond the far edge of the indifference zone.
    pub beta: f64,
    /// The indifference zone: the pass test's alternative allows `zone_ratio` times the excess the bound
    /// allows (bound 1 % → "2 % or more"; stable 0.3 % + 1 % → "stable + 2 % or more"; p95 → "10 % slow").
    pub zone_ratio: f64,
    /// Below this many canary requests (or stable requests, when comparing) nothing is decided.
    pub min_requests: u64,
    /// A pass also needs this many canary requests.
    pub min_requests_to_pass: u64,
    /// How many standard errors of the stable release's own estimate are added (for the fail test) or
    /// taken away (for the pass test) before using it as the canary's reference.
    pub stable_margin: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            // Chosen with the simulation (docs/analysis.md, "Choosing alpha"): the seed's bad canary at a
            // 10 % weight of 1k rps fails within 10 s in 95 % of runs; a canary exactly at its bound
            // fails in under 10 % of runs, a healthy one in none.
            alpha: 0.1,
            beta: 0.05,
            zone_ratio: 2.0,
            min_requests: 20,
            min_requests_to_pass: 500,
            stable_margin: 0.5,
        }
    }
}

impl Settings {
    /// The settings of each of `checks` statistical checks judged together (one template): `alpha` split
    /// evenly (Bonferroni). One failing check rolls back, so what must stay under `alpha` is the chance
    /// that *any* check ever fails falsely; the union bound gives that for any dependence between checks
    /// and any monitoring schedule. (Holm's procedure rejects its first hypothesis at the same `alpha/m`,
    /// and the first rejection is all a rollback needs, so it would decide exactly the same.) `beta` is not
    /// split: a pass needs every check to pass, so a bad canary passes only if its bad check does.
    /// These settings with a template's own `alpha`, `beta` and `stable_margin`, where it sets them.
    pub fn with(&self, knobs: &crate::spec::TestKnobs) -> Settings {
        Settings {
            alpha: knobs.alpha.unwrap_or(self.alpha),
            beta: knobs.beta.unwrap_or(self.beta),
            stable_margin: knobs.stable_margin.unwrap_or(self.stable_margin),
            ..*self
        }
    }

    pub fn per_check(&self, checks: usize) -> Settings {
        Settings {
            alpha: self.alpha / checks.max(1) as f64,
            ..*self
        }
    }
}

/// Standard error of the stable release's proportion, kept away from zero with a half-event prior so that
/// "no errors yet" does not look like certainty.
fn stable_standard_error(events: u64, n: u64) -> f64 {
    let n = n.max(1) as f64;
    let p = (events as f64 + 0.5) / (n + 1.0);
    (p * (1.0 - p) / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_sets_only_what_it_names() {
        let d = Settings::default();
        assert_eq!(d.with(&crate::spec::TestKnobs::default()), d);
        let knobs = crate::spec::TestKnobs {
            alpha: Some(0.01),
            beta: None,
            stable_margin: Some(1.0),
        };
        let s = d.with(&knobs);
        assert_eq!((s.alpha, s.beta, s.stable_margin), (0.01, d.beta, 1.0));
        assert_eq!(s.per_check(2).alpha, 0.005, "then split among its checks");
    }

    #[test]
    fn checks_of_one_template_share_alpha() {
        let s = Settings::default();
        assert_eq!(s.per_check(1), s);
        assert_eq!(s.per_check(0), s, "no statistical check: nothing to split");
        let two = s.per_check(2);
        assert!((two.alpha - s.alpha / 2.0).abs() < 1e-15);
        assert_eq!(
            two.beta, s.beta,
            "a pass needs every check: beta is not split"
        );
    }
}
