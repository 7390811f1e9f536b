//! The SLO as a canary gate: a canary fails when it would burn an objective's budget at the fastest
//! alert pair's rate (14.4× by default), shown with the same sequential tests as any analysis.
//!
//! A burn rate `b` over an objective of `target` is a bad share of `b · (1 − target)`, so "the canary
//! burns at 14.4× or more" is "its error rate is above 14.4 × 0.1 % = 1.44 %" for 99.9 %, and "more than
//! 14.4 × 1 % of its requests are slower than 300 ms" — its p85.6 is above 300 ms — for p99 ≤ 300 ms.
//! Both are the absolute checks `analysis` already judges (`error_rate`, `latency_pNN`), whose anytime
//! false-alarm guarantee holds however often the controller looks. An objective whose bound would be
//! 100 % or more (a 90 % target at 14.4×) cannot be exceeded by a canary and gets no check.

use super::spec::SloSpec;
use crate::spec::{AnalysisTemplate, Check, TestKnobs};

/// The name the gate's analysis goes by in events and `status`.
pub const GATE_TEMPLATE: &str = "slo";

impl SloSpec {
    /// The canary gate's checks, or `None` when it is off or nothing can be checked.
    pub fn gate_template(&self) -> Option<AnalysisTemplate> {
        if !self.canary_gate {
            return None;
        }
        let burn = self.fast_burn();
        let mut checks = Vec::new();
        if let Some(a) = self.availability {
            let max = burn * (1.0 - a);
            if max < 1.0 {
                checks.push(Check::ErrorRate {
                    max,
                    compare_stable: false,
                });
            }
        }
        if let Some(l) = self.latency {
            let slow = burn * (100.0 - l.percentile);
            if slow < 100.0 {
                checks.push(Check::Latency {
                    percentile: 100.0 - slow,
                    max: l.max,
                    compare_stable: false,
                });
            }
        }
        (!checks.is_empty()).then_some(AnalysisTemplate {
            checks,
            test: TestKnobs::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Window, judge_error_rate};
    use crate::slo::spec::LatencyObjective;
    use crate::verdict::Verdict;
    use std::time::Duration;

    fn p99_300ms() -> LatencyObjective {
        LatencyObjective {
            percentile: 99.0,
            max: Duration::from_millis(300),
        }
    }

    #[test]
    fn the_gate_bounds_are_the_fast_burn_rate_times_the_allowed_share() {
        let t = SloSpec::new(Some(0.999), Some(p99_300ms()))
            .gate_template()
            .expect("gate");
        let [
            Check::ErrorRate {
                max,
                compare_stable: false,
            },
            Check::Latency {
                percentile,
                max: latency,
                compare_stable: false,
            },
        ] = &t.checks[..]
        else {
            panic!("{t:?}")
        };
        assert!((max - 0.0144).abs() < 1e-12);
        assert!((percentile - 85.6).abs() < 1e-9);
        assert_eq!(*latency, Duration::from_millis(300));
    }

    #[test]
    fn no_gate_when_off_or_when_no_canary_could_exceed_it() {
        let mut s = SloSpec::new(Some(0.999), None);
        s.canary_gate = false;
        assert_eq!(s.gate_template(), None);
        assert_eq!(SloSpec::new(Some(0.9), None).gate_template(), None);
        let mut slow = p99_300ms();
        slow.percentile = 90.0;
        assert_eq!(SloSpec::new(None, Some(slow)).gate_template(), None);
    }

    #[test]
    fn a_canary_burning_at_the_seeds_3_percent_fails_and_one_at_the_norm_does_not() {
        let Some(Check::ErrorRate { max, .. }) = SloSpec::new(Some(0.999), None)
            .gate_template()
            .and_then(|t| t.checks.first().cloned())
        else {
            panic!()
        };
        let canary = |requests: u64, per_mille: u64| {
            let mut w = Window::default();
            for i in 0..requests {
                w.record(1_000, i % 1_000 < per_mille);
            }
            w
        };
        // 3 % is a 30× burn: caught within the 1k requests a 10 % canary gets in 10 s at 1k rps.
        let bad = judge_error_rate(&canary(1_000, 30), None, max, false);
        assert_eq!(bad.verdict, Verdict::Fail, "{}", bad.detail);
        // 0.3 % (3×, under 14.4×) never fails, however much traffic.
        let ok = judge_error_rate(&canary(100_000, 3), None, max, false);
        assert_ne!(ok.verdict, Verdict::Fail, "{}", ok.detail);
    }
}
