//! The rollout state machine: moves traffic from the stable release (`from`) to a new one (`to`).
//!
//! The controller calls [`Rollout::step`] whenever something changed (an instance became ready, a timer
//! fired, the operator said promote or abort) with what it observes now; the rollout returns a [`Plan`]:
//! how many web instances each release should have and how traffic is split. It is level-triggered: the
//! plan depends on the persisted rollout and the observation only, never on remembered side effects.
//!
//! Invariants the plans keep:
//! - traffic only goes to ready instances, weighted so no release gets more than its ready share;
//! - the stable release keeps its full scale until the new one can take over (except `recreate`);
//! - a failed or aborted rollout restores the stable release before the new one is scaled to zero.

use crate::release::Version;
use crate::spec::Strategy;
use crate::strategy::canary::CanaryState;
use crate::strategy::{blue_green, canary, recreate, rolling};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};

/// Milliseconds on the controller's clock. The core never reads a clock: time is an input.
pub type Millis = u64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub app: String,
    /// The stable release when the rollout started; `None` for an app's first deploy.
    pub from: Option<Version>,
    pub to: Version,
    /// Web replicas the stable release had (its spec) and the new release wants.
    pub from_replicas: u32,
    pub to_replicas: u32,
    pub strategy: Strategy,
    pub started_at: Millis,
    /// After this, a rollout that has not reached its goal fails. Not counted while waiting for a promote.
    pub deadline: Millis,
    pub phase: Phase,
    /// The scales asked for so far (rolling needs them to move one step at a time).
    pub scale_from: u32,
    pub scale_to: u32,
    /// Canary only: the step being run, the weight, routes and mirror given so far.
    #[serde(default)]
    pub canary: CanaryState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    /// Moving towards the new release.
    Progressing,
    /// `recreate` only: waiting for the old release's instances to be gone before starting the new ones.
    StoppingOld,
    /// `blue-green` without auto-promote: the new release is fully ready and reachable on its preview
    /// route; waiting for `slipway promote`.
    AwaitingPromotion,
    /// Going back to the stable release: it is scaled back up first, then the new release is removed.
    Reverting { outcome: Outcome, reason: String },
    /// Finished; `outcome` says how.
    Done {
        outcome: Outcome,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Aborted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Aborted => "aborted",
        }
    }
}

/// What the controller sees of the two releases right now. "Ready" means ready and in the route table
/// (not draining); "live" means any instance that exists and is not being retired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    pub ready_from: u32,
    pub live_from: u32,
    pub ready_to: u32,
    pub live_to: u32,
    /// Some non-web instance of the new release (a worker) is not running steadily yet: the rollout
    /// may not finish until it is, so a crash-looping worker is caught before the release goes live.
    pub to_workers_pending: bool,
}

/// An operator's command, or a fact that ends the rollout early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Continue past the current pause (blue-green: switch).
    Promote,
    /// Canary: skip the remaining steps and go to 100 % (still only as fast as instances get ready).
    PromoteFull,
    /// Canary: hold at the current step until `Resume` (analysis failures still roll back).
    Pause,
    Resume,
    /// Canary: set the weight to this percentage and hold there (`slipway ramp N`).
    SetWeight(u32),
    /// An analysis (of a step, or in the background) reached a verdict.
    Analysis {
        template: String,
        verdict: Verdict,
        detail: String,
    },
    Abort {
        reason: String,
    },
    /// The new release cannot become ready (e.g. it is crash-looping): fail now rather than at the deadline.
    Fail {
        reason: String,
    },
}

/// What the controller should make true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub scale_from: u32,
    pub scale_to: u32,
    pub traffic: Traffic,
}

/// Relative traffic weights of the two releases. Weights are proportional (the proxy picks a release
/// with probability weight / sum), so `(ready_from, ready_to)` gives every ready instance an equal share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub from: u32,
    pub to: u32,
}

impl Traffic {
    pub const ALL_FROM: Traffic = Traffic { from: 1, to: 0 };
    pub const ALL_TO: Traffic = Traffic { from: 0, to: 1 };
}

impl Rollout {
    /// A rollout of `to` replacing `from` (the current stable release, if any) by `strategy`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        app: &str,
        from: Option<(Version, u32)>,
        to: Version,
        to_replicas: u32,
        strategy: Strategy,
        now: Millis,
        progress_deadline: Millis,
    ) -> Rollout {
        let from_replicas = from.map_or(0, |(_, r)| r);
        let phase = match (&strategy, from) {
            (Strategy::Recreate, Some(_)) => Phase::StoppingOld,
            _ => Phase::Progressing,
        };
        Rollout {
            app: app.to_string(),
            from: from.map(|(v, _)| v),
            to,
            from_replicas,
            to_replicas,
            strategy,
            started_at: now,
            deadline: now.saturating_add(progress_deadline),
            phase,
            scale_from: from_replicas,
            scale_to: 0,
            canary: CanaryState::starting(now, progress_deadline),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done { .. })
    }

    /// Whether the new release is the one users are served by (for `status`).
    pub fn outcome(&self) -> Option<Outcome> {
        match &self.phase {
            Phase::Done { outcome, .. } => Some(*outcome),
            _ => None,
        }
    }

    /// The earliest time at which [`Rollout::step`] may decide differently with nothing else changed:
    /// the progress deadline (unless a planned wait holds it) or the end of a timed canary step. The
    /// driver sleeps until then, or until something happens, instead of polling. `None`: only an event
    /// (an instance, an operator, a verdict) can move it.
    pub fn next_timer(&self) -> Option<Millis> {
        let in_progress = matches!(self.phase, Phase::Progressing | Phase::StoppingOld);
        let deadline = (in_progress && !canary::in_planned_wait(self)).then_some(self.deadline);
        let step_end = match self.phase {
            Phase::Progressing => canary::step_ends_at(self),
            _ => None,
        };
        match (deadline, step_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies an operator command or an early failure. Returns false if it does not apply now
    /// (e.g. promote when nothing waits for it, abort of a finished rollout).
    pub fn signal(&mut self, signal: Signal) -> bool {
        match (signal, &self.phase) {
            (_, Phase::Done { .. }) | (_, Phase::Reverting { .. }) => false,
            (Signal::Promote, Phase::AwaitingPromotion) => {
                self.phase = Phase::Progressing;
                self.switch_to_new();
                true
            }
            (Signal::Promote, Phase::Progressing)
                if matches!(self.strategy, Strategy::Canary(_)) =>
            {
                canary::promote(self, false)
            }
            (Signal::PromoteFull, Phase::Progressing)
                if matches!(self.strategy, Strategy::Canary(_)) =>
            {
                canary::promote(self, true)
            }
            (Signal::Promote | Signal::PromoteFull, _) => false,
            (Signal::Pause, Phase::Progressing) => canary::set_paused(self, true),
            (Signal::Resume, Phase::Progressing) => canary::set_paused(self, false),
            (Signal::SetWeight(w), Phase::Progressing) => canary::set_weight(self, w),
            (Signal::Pause | Signal::Resume | Signal::SetWeight(_), _) => false,
            (
                Signal::Analysis {
                    template,
                    verdict,
                    detail,
                },
                _,
            ) => {
                if verdict == Verdict::Fail {
                    self.revert(
                        Outcome::Failed,
                        format!("analysis {template} failed: {detail}"),
                    );
                    true
                } else {
                    canary::record_verdict(self, template, verdict, detail)
                }
            }
            (Signal::Abort { reason }, _) => {
                self.revert(Outcome::Aborted, reason);
                true
            }
            (Signal::Fail { reason }, _) => {
                self.revert(Outcome::Failed, reason);
                true
            }
        }
    }

    /// Decides what should be true now. May advance the phase.
    pub fn step(&mut self, seen: Observed, now: Millis) -> Plan {
        // Waiting that was planned (a promotion, a canary pause or analysis) is not a lack of progress.
        let waiting_for_operator =
            matches!(self.phase, Phase::AwaitingPromotion) || canary::in_planned_wait(self);
        let in_progress = matches!(
            self.phase,
            Phase::Progressing | Phase::StoppingOld | Phase::AwaitingPromotion
        );
        if in_progress && !waiting_for_operator && now >= self.deadline {
            let reason = format!(
                "progress deadline passed: {} of {} instances of v{} ready after {}s",
                seen.ready_to,
                self.to_replicas,
                self.to,
                (now - self.started_at) / 1000
            );
            self.revert(Outcome::Failed, reason);
        }
        match self.phase.clone() {
            Phase::Reverting { outcome, reason } => self.step_revert(seen, outcome, reason),
            Phase::Done { outcome, .. } => self.final_plan(outcome),
            _ => match self.strategy.clone() {
                Strategy::Recreate => recreate::step(self, seen),
                Strategy::Rolling {
                    max_surge,
                    max_unavailable,
                } => rolling::step(self, seen, max_surge, max_unavailable),
                Strategy::BlueGreen { auto_promote, .. } => {
                    blue_green::step(self, seen, auto_promote)
                }
                Strategy::Canary(spec) => canary::step(self, seen, &spec, now),
            },
        }
    }

    /// Blue-green's switch (and a promote): all traffic to the new release, the old one kept at full
    /// scale; the controller keeps it warm for `scale_down_delay` after the rollout ends.
    pub(crate) fn switch_to_new(&mut self) {
        self.phase = Phase::Done {
            outcome: Outcome::Succeeded,
            reason: None,
        };
    }

    pub(crate) fn finish(&mut self) {
        self.phase = Phase::Done {
            outcome: Outcome::Succeeded,
            reason: None,
        };
    }

    pub(crate) fn revert(&mut self, outcome: Outcome, reason: String) {
        self.phase = Phase::Reverting { outcome, reason };
    }

    fn step_revert(&mut self, seen: Observed, outcome: Outcome, reason: String) -> Plan {
        if self.from.is_none() {
            // Nothing to go back to: the first release simply stops.
            self.scale_to = 0;
            if seen.live_to == 0 {
                self.phase = Phase::Done {
                    outcome,
                    reason: Some(reason),
                };
            }
            return Plan {
                scale_from: 0,
                scale_to: 0,
                traffic: Traffic::ALL_TO,
            };
        }
        if let Strategy::Rolling {
            max_surge,
            max_unavailable,
        } = self.strategy
        {
            // A rolling update goes back the way it came: the same surge and availability bounds.
            (self.scale_to, self.scale_from) = rolling::roll(
                (self.scale_to, seen.ready_to),
                (self.scale_from, seen.ready_from),
                self.from_replicas,
                max_surge,
                max_unavailable,
            );
        } else {
            self.scale_from = self.from_replicas;
        }
        let from_whole = seen.ready_from >= self.from_replicas;
        // Keep the new release's ready instances serving until the stable release is whole again, so
        // going back never leaves users with less capacity than they had.
        let traffic = if from_whole || seen.ready_to == 0 {
            Traffic::ALL_FROM
        } else {
            Traffic {
                from: seen.ready_from,
                to: seen.ready_to,
            }
        };
        if from_whole {
            self.scale_to = 0;
            if seen.live_to == 0 {
                self.phase = Phase::Done {
                    outcome,
                    reason: Some(reason),
                };
            }
        }
        Plan {
            scale_from: self.scale_from,
            scale_to: self.scale_to,
            traffic,
        }
    }

    fn final_plan(&mut self, outcome: Outcome) -> Plan {
        match outcome {
            Outcome::Succeeded => {
                // Blue-green leaves the old release at full scale (kept warm by the controller);
                // the others have already scaled it to zero.
                Plan {
                    scale_from: self.scale_from,
                    scale_to: self.to_replicas,
                    traffic: Traffic::ALL_TO,
                }
            }
            Outcome::Failed | Outcome::Aborted => Plan {
                scale_from: self.from_replicas,
                scale_to: 0,
                traffic: Traffic::ALL_FROM,
            },
        }
    }
}
