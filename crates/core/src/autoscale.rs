//! The autoscaler's decision: how many web instances an app should have for the load the proxy
//! measured. Pure: the controller feeds it one [`Load`] sample a second and applies what it returns.
//!
//! The rules, and why:
//! - **Recommendation**: `ceil(load / target)`, where the load is what the last two one-second
//!   samples both reached (one noisy second does not move the count, a step up in traffic does one
//!   second later), and a load within 10 % of what the current count carries keeps it (no flapping
//!   around a boundary).
//! - **Up at once**: more load than the instances can carry is served badly now, so a higher
//!   recommendation applies immediately (up to `max`).
//! - **Down after a window**: only once no second of the last `window` needed the current count, so a
//!   dip between two bursts does not remove capacity the next burst needs again; then straight to
//!   what the last few seconds need, in one step.
//! - **Idle and wake**: with `min = 0` and `idle_after`, no request for that long scales the app to
//!   zero; a request arriving (or held by the proxy) while it has none wakes it at once.
//!
//! The recommendation depends on the total load, not on how loaded each instance is, so instances
//! still starting do not make it ask for more and more.

use crate::rollout::Millis;
use crate::spec::{ScaleTarget, Scaling};
use std::collections::VecDeque;

/// Samples averaged for a recommendation.
const SMOOTHING: usize = 3;
/// A load within this fraction of the current capacity keeps the current count.
const TOLERANCE: f64 = 0.1;

/// What the controller measured since the previous sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    pub at: Millis,
    /// Requests in flight (time-averaged) or requests a second, as the target counts them; summed
    /// over the app's releases.
    pub value: f64,
    /// Requests other than health checks arrived since the previous sample.
    pub active: bool,
    /// The proxy holds requests for the app while it has no instance.
    pub waiting: bool,
}

/// Why the count changed (for events, `status` and the dashboard).
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The load needs more instances.
    Load { value: f64, target: ScaleTarget },
    /// No request for `idle_after`.
    Idle,
    /// A request arrived while the app had no instance.
    Wake,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    pub reason: Reason,
}

/// The autoscaler's memory of one app.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    /// The count in force.
    pub replicas: u32,
    pub last_activity: Millis,
    /// Recent load samples, newest last.
    samples: VecDeque<(Millis, f64)>,
    /// Recommendations within the window, newest last.
    recommendations: VecDeque<(Millis, u32)>,
}

impl Scaler {
    /// An app starting at `replicas` (its configured count), active as of `now`.
    pub fn new(replicas: u32, now: Millis) -> Scaler {
        Scaler {
            replicas,
            last_activity: now,
            samples: VecDeque::new(),
            recommendations: VecDeque::new(),
        }
    }

    /// The count as bounded by (possibly new) settings: within `min..=max`, except at zero while idle.
    pub fn clamp_to(&mut self, s: &Scaling) {
        let floor = if self.replicas == 0 { 0 } else { s.min.max(1) };
        self.replicas = self.replicas.clamp(floor.min(s.max), s.max.max(floor));
    }

    /// Takes one sample; returns the change to make, if any (already applied to `self.replicas`).
    pub fn observe(&mut self, s: &Scaling, load: Load) -> Option<Change> {
        let now = load.at;
        if load.active || load.waiting {
            self.last_activity = now;
        }
        self.samples.push_back((now, load.value));
        while self.samples.len() > SMOOTHING {
            self.samples.pop_front();
        }
        let floor = s.min.max(1).min(s.max);
        let change = |scaler: &mut Scaler, to: u32, reason: Reason| {
            let from = scaler.replicas;
            scaler.replicas = to;
            (from != to).then_some(Change { from, to, reason })
        };
        if self.replicas == 0 {
            if !(load.active || load.waiting) {
                return None;
            }
            // Woken: as many as the load asks for (a burst may arrive at once), at least one.
            let to = self
                .recommend(s, self.rising())
                .clamp(floor, s.max.max(floor));
            self.recommendations.clear();
            self.recommendations.push_back((now, to));
            return change(self, to, Reason::Wake);
        }
        if s.min == 0
            && let Some(idle) = s.idle_after
            && now.saturating_sub(self.last_activity) >= idle.as_millis() as Millis
        {
            self.recommendations.clear();
            return change(self, 0, Reason::Idle);
        }
        let target = s.target?;
        let bounded = |n: u32| n.clamp(floor, s.max.max(floor));
        let wanted = bounded(self.recommend(s, self.rising()));
        // The window remembers what each second alone asked for: a high second keeps capacity, and
        // once the load has been low for a window the count goes down in one step.
        let window = s.window.as_millis() as Millis;
        let this_second = bounded(self.recommend(s, load.value));
        self.recommendations.push_back((now, this_second));
        while self
            .recommendations
            .front()
            .is_some_and(|&(at, _)| now.saturating_sub(at) > window)
        {
            self.recommendations.pop_front();
        }
        let value = self.smoothed();
        if wanted > self.replicas {
            return change(self, wanted, Reason::Load { value, target });
        }
        let highest = self
            .recommendations
            .iter()
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(wanted);
        if highest < self.replicas {
            // No second of the window needed this many: down to what the last seconds need, in
            // one step (the seconds in between, half high and half low, do not make a staircase).
            let recent = self
                .recommendations
                .iter()
                .rev()
                .take(SMOOTHING)
                .map(|&(_, n)| n)
                .max()
                .unwrap_or(wanted);
            return change(self, recent, Reason::Load { value, target });
        }
        None
    }

    /// The count `value` asks for, keeping the current one when it is within the tolerance of what
    /// that carries.
    fn recommend(&self, s: &Scaling, value: f64) -> u32 {
        let Some(target) = s.target else {
            return 1;
        };
        let per_instance = match target {
            ScaleTarget::Concurrency(n) | ScaleTarget::Rps(n) => f64::from(n.max(1)),
        };
        let current = f64::from(self.replicas);
        if self.replicas > 0 && (value / (current * per_instance) - 1.0).abs() <= TOLERANCE {
            return self.replicas;
        }
        (value / per_instance).ceil().min(f64::from(u32::MAX)) as u32
    }

    /// The load to scale up on: what the last two samples both reached. A step up in traffic is
    /// followed one second after it is seen; a single high second is not.
    fn rising(&self) -> f64 {
        let mut last = self.samples.iter().rev().map(|&(_, v)| v);
        match (last.next(), last.next()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            _ => 0.0,
        }
    }

    fn smoothed(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().map(|&(_, v)| v).sum::<f64>() / self.samples.len() as f64
    }
}

/// Splits an app's count between the releases serving it by their traffic weights: each gets what its
/// share of the load needs (rounded up, at least one while it has any weight).
pub fn split_by_weight(total: u32, weight: u32, all: u32) -> u32 {
    if weight == 0 || all == 0 {
        return 0;
    }
    ((u64::from(total) * u64::from(weight)).div_ceil(u64::from(all)) as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scaling(min: u32, max: u32) -> Scaling {
        Scaling {
            min,
            max,
            target: Some(ScaleTarget::Concurrency(10)),
            window: Duration::from_secs(30),
            idle_after: (min == 0).then_some(Duration::from_secs(60)),
            wake_timeout: Duration::from_secs(30),
            idle_paths: Vec::new(),
        }
    }

    fn load(at_s: u64, value: f64) -> Load {
        Load {
            at: at_s * 1000,
            value,
            active: value > 0.0,
            waiting: false,
        }
    }

    /// Feeds one sample a second from `from_s`, returning every change.
    fn run(
        scaler: &mut Scaler,
        s: &Scaling,
        from_s: u64,
        to_s: u64,
        value: f64,
    ) -> Vec<(u32, u32)> {
        (from_s..to_s)
            .filter_map(|t| scaler.observe(s, load(t, value)))
            .map(|c| (c.from, c.to))
            .collect()
    }

    #[test]
    fn up_at_once_down_after_the_window() {
        let s = scaling(1, 8);
        let mut scaler = Scaler::new(1, 0);
        assert_eq!(run(&mut scaler, &s, 0, 10, 45.0), [(1, 5)]);
        // A step from a low load: one change, the second sample after it.
        let mut stepped = Scaler::new(1, 0);
        run(&mut stepped, &s, 0, 5, 8.0);
        assert_eq!(run(&mut stepped, &s, 5, 10, 45.0), [(1, 5)]);
        assert_eq!(stepped.replicas, 5);
        // The load falls, through a second half way: nothing happens for a window, then one step.
        assert!(scaler.observe(&s, load(10, 30.0)).is_none());
        let changes = run(&mut scaler, &s, 11, 60, 12.0);
        assert_eq!(changes, [(5, 2)]);
    }

    #[test]
    fn a_noisy_steady_load_does_not_flap() {
        let s = scaling(1, 8);
        let mut scaler = Scaler::new(4, 0);
        let mut changes = 0;
        for t in 0..600 {
            // 37..43 in flight: four instances of 10 carry it, within the tolerance.
            let value = 40.0 + if t % 2 == 0 { 3.0 } else { -3.0 };
            changes += usize::from(scaler.observe(&s, load(t, value)).is_some());
        }
        assert_eq!((changes, scaler.replicas), (0, 4));
    }

    #[test]
    fn one_high_second_does_not_scale_up() {
        let s = scaling(1, 8);
        let mut scaler = Scaler::new(2, 0);
        run(&mut scaler, &s, 0, 5, 20.0);
        assert!(scaler.observe(&s, load(5, 30.0)).is_none());
        assert!(scaler.observe(&s, load(6, 20.0)).is_none());
    }

    #[test]
    fn bounded_by_min_and_max() {
        let s = scaling(2, 3);
        let mut scaler = Scaler::new(2, 0);
        run(&mut scaler, &s, 0, 5, 1000.0);
        assert_eq!(scaler.replicas, 3);
        run(&mut scaler, &s, 5, 100, 0.5);
        assert_eq!(scaler.replicas, 2);
    }

    #[test]
    fn idle_to_zero_then_a_request_wakes_it() {
        let s = scaling(0, 4);
        let mut scaler = Scaler::new(1, 0);
        assert!(run(&mut scaler, &s, 1, 60, 0.0).is_empty());
        let idle = scaler.observe(&s, load(60, 0.0)).expect("idle");
        assert_eq!((idle.to, idle.reason), (0, Reason::Idle));
        assert!(scaler.observe(&s, load(61, 0.0)).is_none());
        let mut held = load(62, 0.0);
        held.waiting = true;
        let wake = scaler.observe(&s, held).expect("wake");
        assert_eq!((wake.from, wake.to, wake.reason), (0, 1, Reason::Wake));
    }

    #[test]
    fn health_checks_alone_do_not_keep_it_awake() {
        let s = scaling(0, 4);
        let mut scaler = Scaler::new(1, 0);
        // Answered requests (the load) but none counted as activity: health checks only.
        let mut changes = Vec::new();
        for t in 0..=60 {
            let mut l = load(t, 0.01);
            l.active = false;
            changes.extend(scaler.observe(&s, l).map(|c| c.to));
        }
        assert_eq!(changes, [0]);
    }

    #[test]
    fn new_settings_clamp_the_count() {
        let mut scaler = Scaler::new(6, 0);
        scaler.clamp_to(&scaling(1, 4));
        assert_eq!(scaler.replicas, 4);
        let mut asleep = Scaler::new(0, 0);
        asleep.clamp_to(&scaling(0, 4));
        assert_eq!(asleep.replicas, 0);
    }

    #[test]
    fn releases_share_the_count_by_weight() {
        assert_eq!(split_by_weight(8, 90, 100), 8);
        assert_eq!(split_by_weight(8, 10, 100), 1);
        assert_eq!(split_by_weight(8, 50, 100), 4);
        assert_eq!(split_by_weight(8, 0, 100), 0);
        assert_eq!(
            split_by_weight(1, 1, 100),
            1,
            "a release with weight keeps one"
        );
    }
}
