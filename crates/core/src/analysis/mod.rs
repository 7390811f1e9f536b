//! Canary analysis from the proxy's own numbers: is the canary worse than its bound, or than the stable
//! release serving at the same time?
//!
//! Why it is built this way:
//! - **Decide in seconds, re-judged every second.** The controller judges the cumulative counts since the
//!   analysis started, as often as it likes. Every decision comes from a sequential probability ratio test
//!   (`sprt.rs`) whose false-alarm guarantee holds under that continuous monitoring (Ville's inequality), so
//!   looking every second costs nothing and a blatant failure (30 errors in 40 requests) fails at once.
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
mod text;
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
            alpha: 0.01,
            beta: 0.05,
            zone_ratio: 2.0,
            min_requests: 20,
            min_requests_to_pass: 500,
            stable_margin: 1.0,
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
