//! A scheduled flag ramp (`slipway flags ramp NAME --steps 5%,25%,50%,100% --every 30m`) as a pure state
//! machine: which share of users gets the variant now, and whether the app's traffic since the last step
//! says to go on, hold, or revert.
//!
//! On vs off when the app says which variant each answer served (its `Slipway-Flags` response header,
//! counted per variant by the proxy): the variant's answers during the step are judged against the other
//! variants' answers during the same step — users at the same time, so a deploy or a traffic change in
//! that window moves both sides. An app that does not tag its answers is judged before vs after: the
//! app's traffic during the step against its traffic during the step before (for the first step: the
//! traffic before the ramp began). The same sequential tests as a canary's analysis decide (see
//! `analysis`): fail → revert at once, whatever the step's time; pass once the step's time is over → next
//! step; inconclusive → hold. Too little data is never a pass, so a ramp on an app without traffic holds
//! (unless it is `unguarded`).
//!
//! The daemon feeds it the app's cumulative counters, tagged with the daemon's run (`epoch`): counters
//! restart from zero with a new daemon, so a change of epoch re-bases the step instead of reading the
//! drop as negative traffic.

use crate::analysis::{Judgement, Settings, Window, judge_error_rate_with, judge_latency_with};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a step must not regress, compared with the step before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RampGuard {
    /// Largest allowed increase of the error rate (absolute: 0.01 = one percentage point).
    pub max_error_rate_increase: f64,
    /// Largest allowed increase of a latency percentile: (percentile, milliseconds).
    pub max_latency_increase: Option<(f64, u64)>,
}

impl Default for RampGuard {
    fn default() -> Self {
        RampGuard {
            max_error_rate_increase: 0.01,
            max_latency_increase: None,
        }
    }
}

/// The app's counters as the daemon saw them at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficSample {
    /// Which daemon run counted them; counters restart with each run.
    pub epoch: String,
    /// Everything counted for the app since that run started.
    pub total: Window,
    /// The answers the app tagged with the ramped flag's variant, since that run started (`None`: the
    /// proxy has seen no tag for this flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<VariantCounts>,
}

/// The answers tagged with the ramped variant, and those tagged with any other variant of the flag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantCounts {
    pub variant: Window,
    pub others: Window,
}

impl VariantCounts {
    fn since(&self, start: Option<&VariantCounts>) -> VariantCounts {
        match start {
            Some(start) => VariantCounts {
                variant: self.variant.since(&start.variant),
                others: self.others.since(&start.others),
            },
            None => self.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum RampStatus {
    /// Serving the current step; it ends when its time is over and its traffic passes.
    Running,
    /// The step's time is over but its traffic is not conclusive yet.
    Holding,
    Completed,
    /// A step regressed: the flag went back to its definition before the ramp.
    Reverted {
        reason: String,
    },
    /// Stopped by the operator or by another change to the flag.
    Cancelled {
        reason: String,
    },
}

/// What the daemon must do after a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum RampAction {
    Nothing,
    /// Give `percent` % of users the variant.
    Apply {
        percent: u32,
    },
    /// The last step passed: make the variant the flag's default.
    Complete,
    /// Put the flag back as it was before the ramp.
    Revert {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagRamp {
    /// Shares of users, in percent, strictly increasing, the last at most 100.
    pub steps: Vec<u32>,
    pub every_ms: u64,
    /// `None`: advance on time alone (`--unguarded`).
    pub guard: Option<RampGuard>,
    /// Index into `steps` of the step being served.
    pub step: usize,
    pub step_started_ms: u64,
    /// The traffic the current step is compared with.
    pub baseline: Window,
    /// The counters when the current step started (or when the daemon restarted during it).
    pub step_start: Option<TrafficSample>,
    pub status: RampStatus,
    /// The latest judgement of the current step, for `flags get`.
    pub last: Option<Judgement>,
}

impl FlagRamp {
    /// A ramp whose first step starts now; `baseline` is the app's recent traffic before the ramp. The
    /// caller applies the first step (`steps[0]`).
    pub fn start(
        steps: Vec<u32>,
        every: Duration,
        guard: Option<RampGuard>,
        now_ms: u64,
        baseline: Window,
    ) -> Result<FlagRamp, String> {
        check_steps(&steps)?;
        if every.is_zero() {
            return Err("--every must be longer than zero".into());
        }
        Ok(FlagRamp {
            steps,
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            guard,
            step: 0,
            step_started_ms: now_ms,
            baseline,
            step_start: None,
            status: RampStatus::Running,
            last: None,
        })
    }

    pub fn percent(&self) -> u32 {
        self.steps.get(self.step).copied().unwrap_or(100)
    }

    pub fn finished(&self) -> bool {
        !matches!(self.status, RampStatus::Running | RampStatus::Holding)
    }

    pub fn cancel(&mut self, reason: &str) {
        if !self.finished() {
            self.status = RampStatus::Cancelled {
                reason: reason.to_string(),
            };
        }
    }

    /// One look at the app's traffic. Call it as often as wanted (the tests are sequential).
    pub fn tick(&mut self, now_ms: u64, sample: &TrafficSample) -> RampAction {
        if self.finished() {
            return RampAction::Nothing;
        }
        let start = match &self.step_start {
            Some(start) if start.epoch == sample.epoch => start.clone(),
            _ => {
                self.step_start = Some(sample.clone());
                sample.clone()
            }
        };
        let during = sample.total.since(&start.total);
        // On vs off once the step has tagged answers; before vs after otherwise.
        let tagged = sample
            .variants
            .as_ref()
            .map(|now| now.since(start.variants.as_ref()))
            .filter(|d| d.variant.requests + d.others.requests > 0);
        let judgement = self.guard.as_ref().map(|g| match &tagged {
            Some(tagged) => judge(g, &tagged.variant, &tagged.others, Compared::OnVsOff),
            None => judge(g, &during, &self.baseline, Compared::BeforeAfter),
        });
        self.last = judgement.clone();
        if let Some(j) = &judgement
            && j.verdict == Verdict::Fail
        {
            let reason = format!("step {}% regressed: {}", self.percent(), j.detail);
            self.status = RampStatus::Reverted {
                reason: reason.clone(),
            };
            return RampAction::Revert { reason };
        }
        if now_ms < self.step_started_ms.saturating_add(self.every_ms) {
            return RampAction::Nothing;
        }
        let passed = judgement.is_none_or(|j| j.verdict == Verdict::Pass);
        if !passed {
            self.status = RampStatus::Holding;
            return RampAction::Nothing;
        }
        if self.step + 1 >= self.steps.len() {
            self.status = RampStatus::Completed;
            return RampAction::Complete;
        }
        self.step += 1;
        self.step_started_ms = now_ms;
        self.baseline = during;
        self.step_start = Some(sample.clone());
        self.status = RampStatus::Running;
        self.last = None;
        RampAction::Apply {
            percent: self.percent(),
        }
    }
}

/// What a step's answers are compared with.
#[derive(Clone, Copy)]
enum Compared {
    /// The variant's answers against the other variants' in the same step.
    OnVsOff,
    /// The app's answers during the step against the step before.
    BeforeAfter,
}

/// The step's traffic against its baseline. A baseline too small to compare with (an app that was idle
/// before, a variant nobody else is served) leaves the bounds absolute: the error rate at most
/// `max_error_rate_increase`, the latency percentile at most its allowed increase. With both bounds the
/// two checks share alpha, as a template's do.
fn judge(guard: &RampGuard, during: &Window, baseline: &Window, compared: Compared) -> Judgement {
    let checks = 1 + usize::from(guard.max_latency_increase.is_some());
    let settings = Settings::default().per_check(checks);
    let before = (baseline.requests >= settings.min_requests).then_some(baseline);
    let mut parts = vec![judge_error_rate_with(
        &settings,
        during,
        before,
        guard.max_error_rate_increase,
        true,
    )];
    if let Some((percentile, ms)) = guard.max_latency_increase {
        parts.push(judge_latency_with(
            &settings,
            during,
            before,
            percentile,
            Duration::from_millis(ms),
            true,
        ));
    }
    let verdict = Verdict::all(parts.iter().map(|j| j.verdict));
    let detail = parts
        .iter()
        .filter(|j| verdict != Verdict::Fail || j.verdict == Verdict::Fail)
        .map(|j| match compared {
            Compared::OnVsOff => j
                .detail
                .replace("canary", "variant")
                .replace("stable", "other variants"),
            Compared::BeforeAfter => j
                .detail
                .replace("canary", "after")
                .replace("stable", "before"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Judgement { verdict, detail }
}

fn check_steps(steps: &[u32]) -> Result<(), String> {
    if steps.is_empty() {
        return Err("a ramp needs at least one step, e.g. --steps 5%,25%,50%,100%".into());
    }
    let mut previous = 0;
    for &step in steps {
        if step == 0 || step > 100 {
            return Err(format!("step {step}%: a step is 1% to 100%"));
        }
        if step <= previous {
            return Err(format!(
                "step {step}% after {previous}%: steps must increase"
            ));
        }
        previous = step;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_secs(60);

    fn traffic(requests: u64, errors: u64) -> Window {
        Window::uniform(requests, errors, 2_000)
    }

    fn sample(epoch: &str, total: &Window) -> TrafficSample {
        TrafficSample {
            epoch: epoch.into(),
            total: total.clone(),
            variants: None,
        }
    }

    fn add(total: &mut Window, more: &Window) {
        total.add(more);
    }

    fn guarded() -> FlagRamp {
        FlagRamp::start(
            vec![5, 25, 100],
            EVERY,
            Some(RampGuard::default()),
            0,
            traffic(1_000, 2),
        )
        .unwrap()
    }

    #[test]
    fn a_healthy_ramp_walks_every_step_then_completes() {
        let mut ramp = guarded();
        let mut total = traffic(5_000, 10);
        assert_eq!(ramp.tick(1_000, &sample("a", &total)), RampAction::Nothing);
        add(&mut total, &traffic(2_000, 4));
        // Still within the step's time: nothing, however good the data.
        assert_eq!(ramp.tick(30_000, &sample("a", &total)), RampAction::Nothing);
        assert_eq!(
            ramp.tick(61_000, &sample("a", &total)),
            RampAction::Apply { percent: 25 }
        );
        assert_eq!(ramp.baseline.requests, 2_000);
        add(&mut total, &traffic(2_000, 3));
        assert_eq!(
            ramp.tick(122_000, &sample("a", &total)),
            RampAction::Apply { percent: 100 }
        );
        add(&mut total, &traffic(2_000, 5));
        assert_eq!(
            ramp.tick(183_000, &sample("a", &total)),
            RampAction::Complete
        );
        assert_eq!(ramp.status, RampStatus::Completed);
        assert_eq!(
            ramp.tick(999_000, &sample("a", &total)),
            RampAction::Nothing
        );
    }

    #[test]
    fn a_regression_reverts_at_once_with_the_reason() {
        let mut ramp = guarded();
        let mut total = traffic(100, 0);
        ramp.tick(0, &sample("a", &total));
        add(&mut total, &traffic(60, 30));
        match ramp.tick(5_000, &sample("a", &total)) {
            RampAction::Revert { reason } => {
                assert!(reason.starts_with("step 5% regressed"), "{reason}");
                assert!(reason.contains("after"), "{reason}");
            }
            other => panic!("expected a revert, got {other:?}"),
        }
        assert!(matches!(ramp.status, RampStatus::Reverted { .. }));
    }

    #[test]
    fn too_little_traffic_holds_and_never_passes() {
        let mut ramp = guarded();
        let total = traffic(10, 0);
        ramp.tick(0, &sample("a", &total));
        assert_eq!(
            ramp.tick(3_600_000, &sample("a", &total)),
            RampAction::Nothing
        );
        assert_eq!(ramp.status, RampStatus::Holding);
        assert_eq!(ramp.percent(), 5);
    }

    #[test]
    fn without_a_baseline_the_bound_is_absolute() {
        let mut ramp = FlagRamp::start(
            vec![50, 100],
            EVERY,
            Some(RampGuard::default()),
            0,
            Window::default(),
        )
        .unwrap();
        let mut total = Window::default();
        ramp.tick(0, &sample("a", &total));
        add(&mut total, &traffic(100, 40));
        assert!(matches!(
            ramp.tick(1_000, &sample("a", &total)),
            RampAction::Revert { .. }
        ));
    }

    #[test]
    fn an_unguarded_ramp_advances_on_time_alone() {
        let mut ramp = FlagRamp::start(vec![10, 100], EVERY, None, 0, Window::default()).unwrap();
        let total = Window::default();
        assert_eq!(ramp.tick(59_999, &sample("a", &total)), RampAction::Nothing);
        assert_eq!(
            ramp.tick(60_000, &sample("a", &total)),
            RampAction::Apply { percent: 100 }
        );
        assert_eq!(
            ramp.tick(120_000, &sample("a", &total)),
            RampAction::Complete
        );
    }

    #[test]
    fn a_new_daemon_run_rebases_the_step_instead_of_losing_it() {
        let mut ramp = guarded();
        let before_restart = traffic(5_000, 10);
        ramp.tick(0, &sample("run-1", &before_restart));
        // The new run's counters start again from zero: that is no drop in traffic.
        let mut total = Window::default();
        assert_eq!(
            ramp.tick(1_000, &sample("run-2", &total)),
            RampAction::Nothing
        );
        add(&mut total, &traffic(2_000, 4));
        assert_eq!(
            ramp.tick(61_000, &sample("run-2", &total)),
            RampAction::Apply { percent: 25 }
        );
        let json = serde_json::to_value(&ramp).unwrap();
        let back: FlagRamp = serde_json::from_value(json).unwrap();
        assert_eq!(back, ramp);
    }

    #[test]
    fn steps_must_increase_within_one_to_a_hundred() {
        let start =
            |steps: Vec<u32>| FlagRamp::start(steps, EVERY, None, 0, Window::default()).map(|_| ());
        assert!(start(vec![]).unwrap_err().contains("at least one step"));
        assert!(start(vec![0, 10]).unwrap_err().contains("1% to 100%"));
        assert!(start(vec![50, 25]).unwrap_err().contains("must increase"));
        assert!(start(vec![10, 101]).unwrap_err().contains("1% to 100%"));
        assert!(FlagRamp::start(vec![10], Duration::ZERO, None, 0, Window::default()).is_err());
        let mut ramp = guarded();
        ramp.cancel("killed by alice");
        assert!(ramp.finished());
    }

    #[test]
    fn tagged_answers_are_judged_on_vs_off_within_the_step() {
        // The app as a whole looks fine (its error rate is the same as before the ramp), but the
        // variant's few users fail: only on vs off sees it.
        let mut ramp = guarded();
        let mut total = traffic(1_000, 2);
        let mut tagged = VariantCounts::default();
        let tick = |ramp: &mut FlagRamp, at: u64, total: &Window, tagged: &VariantCounts| {
            ramp.tick(
                at,
                &TrafficSample {
                    epoch: "a".into(),
                    total: total.clone(),
                    variants: Some(tagged.clone()),
                },
            )
        };
        assert_eq!(tick(&mut ramp, 0, &total, &tagged), RampAction::Nothing);
        add(&mut total, &traffic(1_000, 2));
        add(&mut tagged.variant, &traffic(50, 20));
        add(&mut tagged.others, &traffic(950, 0));
        match tick(&mut ramp, 5_000, &total, &tagged) {
            RampAction::Revert { reason } => {
                assert!(reason.contains("variant"), "{reason}");
                assert!(reason.contains("other variants"), "{reason}");
            }
            other => panic!("expected a revert, got {other:?}"),
        }

        // Healthy on both sides: the step passes on its time, judged on vs off.
        let mut ramp = guarded();
        let mut total = traffic(1_000, 2);
        let mut tagged = VariantCounts::default();
        tick(&mut ramp, 0, &total, &tagged);
        add(&mut total, &traffic(2_000, 0));
        add(&mut tagged.variant, &traffic(1_000, 0));
        add(&mut tagged.others, &traffic(1_000, 0));
        assert_eq!(
            tick(&mut ramp, 61_000, &total, &tagged),
            RampAction::Apply { percent: 25 }
        );
        // Old stored states (no variants) still read.
        let json = serde_json::to_string(&ramp)
            .unwrap()
            .replace(",\"variants\":", ",\"ignored\":");
        let _: FlagRamp = serde_json::from_str(&json).unwrap();
    }
}
