//! Running analyses: a canary's `analysis` steps, its background analysis, and `slipway gate`.
//!
//! A session judges one template. It snapshots the proxy's counters of the canary and the stable
//! release when it starts; as new requests arrive (every few tens of milliseconds) the controller hands it
//! fresh snapshots, and it judges all data since its start with the core's sequential tests (built-in
//! checks, sharing the template's alpha: `Settings::per_check`), combined with the latest answers of its
//! external checks (Prometheus, HTTP, command), which run in the background every 10 s. External checks
//! answer with a verdict, not a level, so they take no share of alpha: their thresholds are the user's.

use crate::providers::CheckResult;
use slipway_core::analysis::{
    Judgement, Settings, Window, judge_error_rate_with, judge_latency_with,
};
use slipway_core::spec::{AnalysisTemplate, Check};
use slipway_core::verdict::Verdict;
use tokio::sync::oneshot;

/// How often external checks are asked again.
pub const EXTERNAL_EVERY_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// The canary step with this index.
    Step(usize),
    /// For the whole rollout.
    Background,
    /// `slipway gate`: answers once, at the end of `for` or at the first fail.
    Gate,
    /// After promotion, against the replaced release (`watch.rs`; not among the rollout's sessions).
    Watch,
    /// `[slo]`'s canary gate: the canary would burn the error budget at the fastest alert's rate
    /// (`slipway_core::slo`); only its fail is told to the rollout.
    Slo,
}

pub struct Session {
    pub name: String,
    pub template: AnalysisTemplate,
    pub purpose: Purpose,
    /// Gate only: when to answer with whatever the verdict is then.
    pub ends_at: Option<u64>,
    pub canary_base: Window,
    pub stable_base: Option<Window>,
    /// The latest answer of each check that is not built in (same index as `template.checks`).
    pub external: Vec<Option<CheckResult>>,
    pub external_due: u64,
    pub external_running: bool,
    pub last: Option<Judgement>,
    pub reply: Option<oneshot::Sender<Judgement>>,
}

impl Session {
    pub fn new(
        name: &str,
        template: AnalysisTemplate,
        purpose: Purpose,
        now: u64,
        canary: Window,
        stable: Option<Window>,
    ) -> Session {
        let n = template.checks.len();
        Session {
            name: name.to_string(),
            template,
            purpose,
            ends_at: None,
            canary_base: canary,
            stable_base: stable,
            external: vec![None; n],
            external_due: now,
            external_running: false,
            last: None,
            reply: None,
        }
    }

    pub fn has_external(&self) -> bool {
        self.template.checks.iter().any(|c| !is_built_in(c))
    }

    /// The settings of each built-in check: the template's own knobs over the defaults, its alpha split
    /// among them.
    fn settings(&self) -> Settings {
        let built_in = self.template.checks.iter().filter(|c| is_built_in(c));
        Settings::default()
            .with(&self.template.test)
            .per_check(built_in.count())
    }

    /// Judges every check on the data since the session started.
    pub fn judge(&mut self, canary_now: &Window, stable_now: Option<&Window>) -> Judgement {
        let canary = canary_now.since(&self.canary_base);
        let stable = match (stable_now, &self.stable_base) {
            (Some(now), Some(base)) => Some(now.since(base)),
            (Some(now), None) => Some(now.clone()),
            _ => None,
        };
        let settings = self.settings();
        let mut parts = Vec::new();
        for (i, check) in self.template.checks.iter().enumerate() {
            let j = match check {
                Check::ErrorRate {
                    max,
                    compare_stable,
                } => judge_error_rate_with(
                    &settings,
                    &canary,
                    stable.as_ref(),
                    *max,
                    *compare_stable,
                ),
                Check::Latency {
                    percentile,
                    max,
                    compare_stable,
                } => judge_latency_with(
                    &settings,
                    &canary,
                    stable.as_ref(),
                    *percentile,
                    *max,
                    *compare_stable,
                ),
                _ => match &self.external[i] {
                    Some(r) => Judgement {
                        verdict: r.verdict,
                        detail: r.detail.clone(),
                    },
                    None => Judgement {
                        verdict: Verdict::Inconclusive,
                        detail: "waiting for the first answer".into(),
                    },
                },
            };
            parts.push(j);
        }
        let verdict = Verdict::all(parts.iter().map(|j| j.verdict));
        // Say why: the failing checks when it fails, else every check.
        let detail = parts
            .iter()
            .filter(|j| verdict != Verdict::Fail || j.verdict == Verdict::Fail)
            .map(|j| j.detail.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let judgement = Judgement { verdict, detail };
        self.last = Some(judgement.clone());
        judgement
    }
}

/// The checks the core judges from the proxy's counts (the others are asked elsewhere).
fn is_built_in(check: &Check) -> bool {
    matches!(check, Check::ErrorRate { .. } | Check::Latency { .. })
}

/// `slipway gate --error-rate 1% --latency-p95 300ms`: a template made on the spot, compared with stable.
pub fn gate_template(
    error_rate: Option<f64>,
    latency: Option<(f64, std::time::Duration)>,
) -> AnalysisTemplate {
    let mut checks = Vec::new();
    if let Some(max) = error_rate {
        checks.push(Check::ErrorRate {
            max,
            compare_stable: true,
        });
    }
    if let Some((percentile, max)) = latency {
        checks.push(Check::Latency {
            percentile,
            max,
            compare_stable: false,
        });
    }
    AnalysisTemplate {
        checks,
        ..AnalysisTemplate::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(requests: u64, errors: u64) -> Window {
        Window::uniform(requests, errors, 1_000)
    }

    #[test]
    fn judges_only_the_data_since_the_session_started() {
        let template = gate_template(Some(0.01), None);
        // Before the session: a terrible canary. Since: a healthy one.
        let mut s = Session::new(
            "gate",
            template,
            Purpose::Gate,
            0,
            window(100, 90),
            Some(window(100, 0)),
        );
        let healthy = window(100 + 3000, 90 + 3);
        let stable = window(100 + 27000, 27);
        let j = s.judge(&healthy, Some(&stable));
        assert_ne!(j.verdict, Verdict::Fail, "{}", j.detail);
    }

    #[test]
    fn checks_of_one_template_share_alpha() {
        // 5 errors in 100 requests against 1 %: ln Λ = 2.50, over ln(1/0.1) but not ln(1/0.05).
        let error_rate = Check::ErrorRate {
            max: 0.01,
            compare_stable: false,
        };
        let latency = Check::Latency {
            percentile: 95.0,
            max: std::time::Duration::from_secs(10),
            compare_stable: false,
        };
        let judge = |checks: Vec<Check>| {
            let template = AnalysisTemplate {
                checks,
                ..AnalysisTemplate::default()
            };
            let mut s = Session::new(
                "t",
                template,
                Purpose::Background,
                0,
                Window::default(),
                None,
            );
            s.judge(&window(100, 5), None).verdict
        };
        assert_eq!(judge(vec![error_rate.clone()]), Verdict::Fail);
        assert_eq!(judge(vec![error_rate, latency]), Verdict::Inconclusive);
    }

    #[test]
    fn a_templates_own_alpha_is_the_one_split() {
        // 5 errors in 100 requests against 1 %: ln Λ = 2.50 fails at alpha 0.1, not at the template's 0.05.
        let template = |alpha| AnalysisTemplate {
            checks: vec![Check::ErrorRate {
                max: 0.01,
                compare_stable: false,
            }],
            test: slipway_core::spec::TestKnobs {
                alpha,
                ..Default::default()
            },
        };
        let judge = |alpha| {
            let mut s = Session::new(
                "t",
                template(alpha),
                Purpose::Background,
                0,
                Window::default(),
                None,
            );
            s.judge(&window(100, 5), None).verdict
        };
        assert_eq!(judge(None), Verdict::Fail);
        assert_eq!(judge(Some(0.05)), Verdict::Inconclusive);
    }

    #[test]
    fn external_checks_hold_until_they_answer() {
        let template = AnalysisTemplate {
            checks: vec![Check::Command {
                cmd: "true".into(),
                timeout: std::time::Duration::from_secs(1),
            }],
            ..AnalysisTemplate::default()
        };
        let mut s = Session::new(
            "smoke",
            template,
            Purpose::Background,
            0,
            Window::default(),
            None,
        );
        assert_eq!(
            s.judge(&Window::default(), None).verdict,
            Verdict::Inconclusive
        );
        s.external[0] = Some(CheckResult {
            verdict: Verdict::Fail,
            detail: "exit 1".into(),
        });
        let j = s.judge(&Window::default(), None);
        assert_eq!((j.verdict, j.detail.as_str()), (Verdict::Fail, "exit 1"));
    }
}
