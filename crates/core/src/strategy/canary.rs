//! `canary`: move a percentage of traffic to the new release step by step (Argo's vocabulary: weight,
//! pause, analysis, route, mirror), judged by analysis, and promote it at the end.
//!
//! Capacity first: the canary is scaled up before its weight is raised, and the weight it gets never
//! exceeds the share its ready instances can carry. The stable release stays at full strength until the
//! promotion is complete, so rolling back is only ever a weight change.

use crate::rollout::{Millis, Observed, Plan, Rollout, Traffic};
use crate::spec::{CanarySpec, CanaryStep, RouteMatch};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CanaryState {
    /// Index of the step being run; `steps.len()` means "promoting to 100 %".
    pub step: usize,
    pub step_started_at: Millis,
    /// The weight (percent of non-routed traffic) the steps asked for so far.
    pub weight: u32,
    /// The weight actually given: `weight`, capped by the canary's ready capacity.
    pub effective_weight: u32,
    /// Requests matching these go to the canary (once it has a ready instance).
    pub routes: Vec<RouteMatch>,
    /// Percentage of requests copied to the canary.
    pub mirror: u32,
    /// Held by the operator (`slipway pause`, `slipway ramp`).
    pub paused: bool,
    /// The last verdict of the current analysis step, with its template and why.
    pub verdict: Option<(String, Verdict, String)>,
    /// The rollout's progress deadline, pushed forward while waiting is planned (pauses, analysis).
    pub progress_deadline: Millis,
}

impl CanaryState {
    pub fn starting(now: Millis, progress_deadline: Millis) -> CanaryState {
        CanaryState {
            step_started_at: now,
            progress_deadline,
            ..CanaryState::default()
        }
    }

    /// The analysis template the controller should be running for the current step, if any.
    pub fn current_analysis<'a>(
        &self,
        spec: &'a CanarySpec,
    ) -> Option<(&'a str, std::time::Duration)> {
        match spec.steps.get(self.step) {
            Some(CanaryStep::Analysis { template, duration }) => {
                Some((template.as_str(), *duration))
            }
            _ => None,
        }
    }
}

fn ms(d: std::time::Duration) -> Millis {
    d.as_millis() as Millis
}

/// Instances the canary needs to carry `weight` percent of the load that `n` instances carry.
fn instances_for(weight: u32, n: u32) -> u32 {
    (weight as u64 * n as u64).div_ceil(100) as u32
}

pub(crate) fn step(r: &mut Rollout, seen: Observed, spec: &CanarySpec, now: Millis) -> Plan {
    let n = r.to_replicas.max(1);
    // An app's first release has nobody to compare with and no traffic to protect: straight to 100 %.
    if r.from.is_none() {
        r.canary.step = spec.steps.len();
    }
    // Advance through every step that is complete now (weights and routes complete at once when the
    // canary has the capacity; pauses and analyses take their time).
    loop {
        let c = &r.canary;
        let done = match spec.steps.get(c.step) {
            _ if c.paused => false,
            None => false,
            Some(CanaryStep::Weight(w)) => {
                r.canary.weight = (*w).min(100);
                seen.ready_to >= instances_for(r.canary.weight, n).max(1)
            }
            Some(CanaryStep::Pause(Some(d))) => now >= c.step_started_at + ms(*d),
            Some(CanaryStep::Pause(None)) => false,
            Some(CanaryStep::Analysis { template, duration }) => {
                let passed = matches!(&c.verdict, Some((t, Verdict::Pass, _)) if t == template);
                now >= c.step_started_at + ms(*duration) && passed
            }
            Some(CanaryStep::Route(m)) => {
                if !r.canary.routes.contains(m) {
                    r.canary.routes.push(m.clone());
                }
                seen.ready_to >= 1
            }
            Some(CanaryStep::Mirror(p)) => {
                r.canary.mirror = (*p).min(100);
                seen.ready_to >= 1
            }
        };
        if !done {
            break;
        }
        r.canary.step += 1;
        r.canary.step_started_at = now;
        r.canary.verdict = None;
    }
    let promoting = r.canary.step >= spec.steps.len() && !r.canary.paused;
    if promoting {
        r.canary.weight = 100;
    }
    // Waiting that the steps planned is not a lack of progress: only waiting for instances is. The
    // deadline restarts when such a wait ends.
    if in_planned_wait(r) {
        r.deadline = now + r.canary.progress_deadline;
    }
    let needs_one = !r.canary.routes.is_empty() || r.canary.mirror > 0;
    let wanted = instances_for(r.canary.weight, n).max(u32::from(needs_one));
    r.scale_to = if promoting {
        r.to_replicas
    } else {
        wanted.min(r.to_replicas.max(1))
    };
    r.scale_from = r.from_replicas;
    // Never more than the ready canary instances can carry.
    let capacity = if r.from.is_none() {
        100
    } else {
        (seen.ready_to as u64 * 100 / n as u64) as u32
    };
    r.canary.effective_weight = r.canary.weight.min(capacity);
    if promoting && seen.ready_to >= r.to_replicas {
        r.canary.effective_weight = 100;
        r.scale_from = 0;
        r.finish();
    }
    let w = r.canary.effective_weight;
    Plan {
        scale_from: r.scale_from,
        scale_to: r.scale_to,
        traffic: if r.from.is_none() {
            Traffic::ALL_TO
        } else {
            Traffic {
                from: 100 - w,
                to: w,
            }
        },
    }
}

/// Held by the operator, or in a pause or analysis step.
pub(crate) fn in_planned_wait(r: &Rollout) -> bool {
    let crate::spec::Strategy::Canary(spec) = &r.strategy else {
        return false;
    };
    r.canary.paused
        || matches!(
            spec.steps.get(r.canary.step),
            Some(CanaryStep::Pause(_)) | Some(CanaryStep::Analysis { .. })
        )
}

/// When the current step ends by itself (a timed pause, an analysis's duration), if it does.
pub(crate) fn step_ends_at(r: &Rollout) -> Option<Millis> {
    let crate::spec::Strategy::Canary(spec) = &r.strategy else {
        return None;
    };
    if r.canary.paused {
        return None;
    }
    match spec.steps.get(r.canary.step) {
        Some(CanaryStep::Pause(Some(d))) => Some(r.canary.step_started_at + ms(*d)),
        Some(CanaryStep::Analysis { duration, .. }) => {
            Some(r.canary.step_started_at + ms(*duration))
        }
        _ => None,
    }
}

/// `promote`: past an indefinite pause (or any pause / held analysis). `full`: skip every remaining step.
pub(crate) fn promote(r: &mut Rollout, full: bool) -> bool {
    let Some(steps) = steps_len(r) else {
        return false;
    };
    r.canary.paused = false;
    r.canary.step = if full {
        steps
    } else {
        (r.canary.step + 1).min(steps)
    };
    r.canary.verdict = None;
    true
}

pub(crate) fn set_paused(r: &mut Rollout, paused: bool) -> bool {
    if steps_len(r).is_none() || r.canary.paused == paused {
        return false;
    }
    r.canary.paused = paused;
    true
}

/// `ramp N`: this weight, held until promote/resume.
pub(crate) fn set_weight(r: &mut Rollout, weight: u32) -> bool {
    if steps_len(r).is_none() {
        return false;
    }
    r.canary.weight = weight.min(100);
    r.canary.paused = true;
    true
}

pub(crate) fn record_verdict(
    r: &mut Rollout,
    template: String,
    verdict: Verdict,
    detail: String,
) -> bool {
    if steps_len(r).is_none() {
        return false;
    }
    r.canary.verdict = Some((template, verdict, detail));
    true
}

fn steps_len(r: &Rollout) -> Option<usize> {
    match &r.strategy {
        crate::spec::Strategy::Canary(spec) => Some(spec.steps.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::rollout::*;
    use crate::spec::{CanarySpec, CanaryStep, Strategy};
    use crate::verdict::Verdict;
    use std::time::Duration;

    fn canary(steps: Vec<CanaryStep>) -> Rollout {
        let spec = CanarySpec {
            steps,
            sticky: None,
            background_analysis: None,
        };
        Rollout::new("a", Some((1, 4)), 2, 4, Strategy::Canary(spec), 0, 60_000)
    }

    fn seen(ready_to: u32) -> Observed {
        Observed {
            ready_from: 4,
            live_from: 4,
            ready_to,
            live_to: ready_to,
            ..Default::default()
        }
    }

    #[test]
    fn the_next_timer_is_the_deadline_then_the_end_of_a_timed_pause() {
        let mut r = canary(vec![
            CanaryStep::Weight(25),
            CanaryStep::Pause(Some(Duration::from_secs(10))),
            CanaryStep::Pause(None),
        ]);
        r.step(seen(0), 5);
        assert_eq!(
            r.next_timer(),
            Some(60_000),
            "waiting for instances: the deadline"
        );
        r.step(seen(1), 1_000);
        assert_eq!(r.canary.step, 1);
        assert_eq!(r.next_timer(), Some(11_000), "a timed pause ends by itself");
        assert_eq!(r.step(seen(1), 10_999).traffic.to, 25);
        assert_eq!(r.canary.step, 1, "not a millisecond early");
        r.step(seen(1), 11_000);
        assert_eq!(r.canary.step, 2);
        assert_eq!(
            r.next_timer(),
            None,
            "an open pause waits for the operator alone"
        );
        assert!(r.signal(Signal::Promote));
        r.step(seen(4), 12_000);
        assert!(r.is_done());
        assert_eq!(r.next_timer(), None);
    }

    #[test]
    fn weight_waits_for_capacity_and_stable_stays_whole() {
        let mut r = canary(vec![CanaryStep::Weight(50), CanaryStep::Pause(None)]);
        let p = r.step(seen(0), 1);
        assert_eq!(
            (p.scale_from, p.scale_to),
            (4, 2),
            "two of four instances carry 50 %"
        );
        assert_eq!(p.traffic, Traffic { from: 100, to: 0 });
        let p = r.step(seen(1), 2);
        assert_eq!(
            p.traffic,
            Traffic { from: 75, to: 25 },
            "one ready instance carries only 25 %"
        );
        let p = r.step(seen(2), 3);
        assert_eq!(p.traffic, Traffic { from: 50, to: 50 });
        assert_eq!(r.canary.step, 1, "now at the pause");
        assert!(r.signal(Signal::Promote));
        r.step(seen(2), 4);
        let p = r.step(seen(4), 5);
        assert_eq!(p.traffic, Traffic { from: 0, to: 100 });
        assert_eq!(r.outcome(), Some(Outcome::Succeeded));
    }

    #[test]
    fn analysis_passes_only_after_its_duration_and_holds_when_inconclusive() {
        let analysis = CanaryStep::Analysis {
            template: "golden".into(),
            duration: Duration::from_secs(60),
        };
        let mut r = canary(vec![CanaryStep::Weight(25), analysis]);
        r.step(seen(1), 0);
        assert_eq!(r.canary.step, 1);
        r.signal(Signal::Analysis {
            template: "golden".into(),
            verdict: Verdict::Inconclusive,
            detail: "12 requests".into(),
        });
        r.step(seen(1), 120_000);
        assert_eq!(
            r.canary.step, 1,
            "inconclusive holds, even past the duration and the deadline"
        );
        assert!(r.outcome().is_none());
        r.signal(Signal::Analysis {
            template: "golden".into(),
            verdict: Verdict::Pass,
            detail: "ok".into(),
        });
        r.step(seen(1), 120_001);
        assert_eq!(r.canary.step, 2, "promoting");
    }

    #[test]
    fn a_failed_analysis_sends_all_traffic_back_at_once() {
        let mut r = canary(vec![CanaryStep::Weight(25), CanaryStep::Pause(None)]);
        r.step(seen(1), 0);
        r.signal(Signal::Analysis {
            template: "bg".into(),
            verdict: Verdict::Fail,
            detail: "3 % errors".into(),
        });
        let p = r.step(seen(1), 1);
        assert_eq!(p.traffic, Traffic::ALL_FROM);
        assert_eq!(p.scale_to, 0);
        r.step(seen(0), 2);
        assert_eq!(r.outcome(), Some(Outcome::Failed));
    }

    #[test]
    fn ramp_holds_and_promote_full_skips_the_rest() {
        let mut r = canary(vec![
            CanaryStep::Weight(10),
            CanaryStep::Pause(None),
            CanaryStep::Weight(50),
        ]);
        r.step(seen(1), 0);
        assert!(r.signal(Signal::SetWeight(50)));
        let p = r.step(seen(2), 1);
        assert_eq!(p.traffic.to, 50);
        assert!(r.signal(Signal::PromoteFull));
        let p = r.step(seen(4), 2);
        assert_eq!(p.traffic, Traffic { from: 0, to: 100 });
        assert_eq!(r.outcome(), Some(Outcome::Succeeded));
    }

    #[test]
    fn routes_and_mirror_need_one_ready_instance() {
        let route = crate::spec::RouteMatch {
            headers: [("x-canary".to_string(), "1".to_string())].into(),
            cookies: Default::default(),
        };
        let mut r = canary(vec![
            CanaryStep::Route(route),
            CanaryStep::Mirror(20),
            CanaryStep::Pause(None),
        ]);
        let p = r.step(seen(0), 0);
        assert_eq!(p.scale_to, 1);
        assert_eq!(r.canary.step, 0);
        r.step(seen(1), 1);
        assert_eq!(
            (r.canary.step, r.canary.mirror, r.canary.routes.len()),
            (2, 20, 1)
        );
        assert_eq!(
            r.canary.effective_weight, 0,
            "routes and mirrors give no weighted traffic"
        );
    }
}
