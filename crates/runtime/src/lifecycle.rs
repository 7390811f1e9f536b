//! One run's life as its probes and timers tell it, decided without IO: when it is Ready, when it
//! turns Unready, when a startup or liveness probe has failed enough to kill it, when it has been
//! Ready long enough to count as stable. Time is an input; the supervisor feeds it probe results and
//! timer expiries and carries out the [`Step`]s, for every kind of workload alike.

use crate::probe::{ProbeKind, ProbeTracker, fmt_duration};
use crate::restart::STABLE_AFTER;
use slipway_core::spec::ProbeSpec;
use std::time::{Duration, Instant};

/// A run without a readiness probe (and without a port) is Ready once it has run this long. Not at
/// once: a command that exits immediately must count as crash-looping, not as flapping Ready.
pub const RUNNING_IS_READY_AFTER: Duration = Duration::from_secs(1);

/// What the supervisor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start the readiness and liveness probes (the startup probe passed).
    StartMainProbes,
    /// Report Ready; the run is not crash-looping.
    Ready { why: String },
    /// Report Unready: out of the route table until its readiness probe passes again.
    Unready { failures: u32, reason: String },
    /// Ready for [`STABLE_AFTER`]: the restart backoff starts from the base again.
    Stable,
    /// Kill the run (it is restarted): a startup or liveness probe failed `failures` times in a row.
    Kill {
        probe: ProbeKind,
        failures: u32,
        reason: String,
    },
}

/// The probes one run is watched by (`readiness` already defaulted for a web instance).
#[derive(Debug, Clone, Default)]
pub struct Probes {
    pub startup: Option<ProbeSpec>,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
}

#[derive(Debug)]
pub struct Lifecycle {
    startup: Option<ProbeTracker>,
    readiness: Option<ProbeTracker>,
    liveness: Option<ProbeTracker>,
    /// Ready once it has run until then (nothing else would tell).
    ready_when_running: Option<Instant>,
    /// Since when it is Ready (none while not).
    ready_since: Option<Instant>,
    reached_ready: bool,
    stable: bool,
}

impl Lifecycle {
    /// A run that started at `now`. `adopted_ready`: a run taken over from a previous daemon, found
    /// ready (`Some(true)`) or not; an adopted run already passed its startup probe.
    pub fn new(probes: &Probes, adopted_ready: Option<bool>, now: Instant) -> Lifecycle {
        let ready_at_once = adopted_ready == Some(true);
        let startup = match adopted_ready {
            None => probes.startup.as_ref().map(ProbeTracker::new),
            Some(_) => None,
        };
        let readiness = probes.readiness.as_ref().map(ProbeTracker::new);
        let waits_for_running = startup.is_none() && readiness.is_none() && !ready_at_once;
        Lifecycle {
            startup,
            readiness,
            liveness: probes.liveness.as_ref().map(ProbeTracker::new),
            ready_when_running: waits_for_running.then(|| now + RUNNING_IS_READY_AFTER),
            ready_since: ready_at_once.then_some(now),
            reached_ready: ready_at_once,
            stable: false,
        }
    }

    /// Whether the startup probe runs first (the main probes wait for it).
    pub fn in_startup(&self) -> bool {
        self.startup.is_some()
    }

    /// Whether this run was Ready at some point (a crash after that is not a crash loop).
    pub fn reached_ready(&self) -> bool {
        self.reached_ready
    }

    /// When [`Lifecycle::on_timer`] has something to do, if ever.
    pub fn next_timer(&self) -> Option<Instant> {
        let stable_at = match (self.ready_since, self.stable) {
            (Some(since), false) => Some(since + STABLE_AFTER),
            _ => None,
        };
        match (self.ready_when_running, stable_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.ready_when_running.is_some_and(|at| now >= at) {
            self.ready_when_running = None;
            let why = format!("running for {}", fmt_duration(RUNNING_IS_READY_AFTER));
            steps.extend(self.become_ready(why, now));
        }
        if !self.stable
            && self
                .ready_since
                .is_some_and(|since| now >= since + STABLE_AFTER)
        {
            self.stable = true;
            steps.push(Step::Stable);
        }
        steps
    }

    /// One probe check's result.
    pub fn on_probe(
        &mut self,
        kind: ProbeKind,
        result: Result<(), String>,
        now: Instant,
    ) -> Vec<Step> {
        let ok = result.is_ok();
        let reason = result.err().unwrap_or_default();
        match kind {
            ProbeKind::Startup => {
                let Some(tracker) = self.startup.as_mut() else {
                    return Vec::new();
                };
                match tracker.record(ok) {
                    Some(true) => {
                        self.startup = None;
                        let mut steps = vec![Step::StartMainProbes];
                        if self.readiness.is_none() {
                            steps.extend(self.become_ready("startup probe passed".into(), now));
                        }
                        steps
                    }
                    Some(false) => vec![Step::Kill {
                        probe: kind,
                        failures: tracker.consecutive_failures(),
                        reason,
                    }],
                    None => Vec::new(),
                }
            }
            ProbeKind::Liveness => {
                let Some(tracker) = self.liveness.as_mut() else {
                    return Vec::new();
                };
                match tracker.record(ok) {
                    Some(false) => vec![Step::Kill {
                        probe: kind,
                        failures: tracker.consecutive_failures(),
                        reason,
                    }],
                    _ => Vec::new(),
                }
            }
            ProbeKind::Readiness => {
                let Some(tracker) = self.readiness.as_mut() else {
                    return Vec::new();
                };
                match tracker.record(ok) {
                    Some(true) => {
                        let why = if self.reached_ready {
                            "readiness probe passing again"
                        } else {
                            "readiness probe passed"
                        };
                        self.become_ready(why.into(), now)
                    }
                    Some(false) if self.reached_ready => {
                        let failures = tracker.consecutive_failures();
                        let mut steps = Vec::new();
                        // Ready long enough before it turned: that counts as a stable run.
                        if self.ready_since.take().is_some_and(|since| {
                            now.saturating_duration_since(since) >= STABLE_AFTER
                        }) {
                            steps.push(Step::Stable);
                        }
                        steps.push(Step::Unready { failures, reason });
                        steps
                    }
                    _ => Vec::new(),
                }
            }
        }
    }

    /// Ready, unless it already is (an adopted run found ready): then nothing changes.
    fn become_ready(&mut self, why: String, now: Instant) -> Vec<Step> {
        self.reached_ready = true;
        if self.ready_since.is_some() {
            return Vec::new();
        }
        self.ready_since = Some(now);
        vec![Step::Ready { why }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::spec::ProbeCheck;

    fn probe(failure_threshold: u32) -> ProbeSpec {
        ProbeSpec {
            check: ProbeCheck::Tcp,
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold,
        }
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    const FAIL: fn() -> Result<(), String> = || Err("refused".into());

    #[test]
    fn without_probes_it_is_ready_after_running_a_second() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(&Probes::default(), None, t0);
        assert_eq!(life.next_timer(), Some(t0 + RUNNING_IS_READY_AFTER));
        assert!(life.on_timer(t0 + Duration::from_millis(999)).is_empty());
        let steps = life.on_timer(t0 + RUNNING_IS_READY_AFTER);
        assert!(matches!(&steps[..], [Step::Ready { why }] if why == "running for 1.0s"));
        assert!(life.reached_ready());
        let stable_at = t0 + RUNNING_IS_READY_AFTER + STABLE_AFTER;
        assert_eq!(life.next_timer(), Some(stable_at));
        assert_eq!(life.on_timer(stable_at), [Step::Stable]);
        assert_eq!(life.next_timer(), None, "stable once");
    }

    #[test]
    fn a_flapping_readiness_probe_goes_unready_and_back() {
        let t0 = Instant::now();
        let probes = Probes {
            readiness: Some(probe(2)),
            ..Probes::default()
        };
        let mut life = Lifecycle::new(&probes, None, t0);
        assert_eq!(life.next_timer(), None, "only the probe makes it ready");
        assert!(
            life.on_probe(ProbeKind::Readiness, FAIL(), secs(t0, 1))
                .is_empty()
        );
        let ready = life.on_probe(ProbeKind::Readiness, Ok(()), secs(t0, 2));
        assert!(matches!(&ready[..], [Step::Ready { why }] if why == "readiness probe passed"));
        assert!(
            life.on_probe(ProbeKind::Readiness, FAIL(), secs(t0, 3))
                .is_empty()
        );
        assert_eq!(
            life.on_probe(ProbeKind::Readiness, FAIL(), secs(t0, 4)),
            [Step::Unready {
                failures: 2,
                reason: "refused".into()
            }]
        );
        let again = life.on_probe(ProbeKind::Readiness, Ok(()), secs(t0, 5));
        assert!(
            matches!(&again[..], [Step::Ready { why }] if why == "readiness probe passing again")
        );
    }

    #[test]
    fn unready_after_a_long_ready_spell_counts_as_stable() {
        let t0 = Instant::now();
        let probes = Probes {
            readiness: Some(probe(1)),
            ..Probes::default()
        };
        let mut life = Lifecycle::new(&probes, None, t0);
        life.on_probe(ProbeKind::Readiness, Ok(()), t0);
        let late = t0 + STABLE_AFTER + Duration::from_secs(1);
        let steps = life.on_probe(ProbeKind::Readiness, FAIL(), late);
        assert_eq!(steps[0], Step::Stable);
        assert!(matches!(steps[1], Step::Unready { .. }));
    }

    #[test]
    fn startup_first_then_the_main_probes_and_a_failing_startup_kills() {
        let t0 = Instant::now();
        let probes = Probes {
            startup: Some(probe(2)),
            liveness: Some(probe(3)),
            ..Probes::default()
        };
        let mut life = Lifecycle::new(&probes, None, t0);
        assert!(life.in_startup());
        assert_eq!(
            life.next_timer(),
            None,
            "not ready by running while the startup probe runs"
        );
        let steps = life.on_probe(ProbeKind::Startup, Ok(()), secs(t0, 1));
        assert_eq!(steps[0], Step::StartMainProbes);
        assert!(matches!(&steps[1], Step::Ready { why } if why == "startup probe passed"));
        for n in 1..3 {
            assert!(
                life.on_probe(ProbeKind::Liveness, FAIL(), secs(t0, 1 + n))
                    .is_empty()
            );
        }
        assert_eq!(
            life.on_probe(ProbeKind::Liveness, FAIL(), secs(t0, 4)),
            [Step::Kill {
                probe: ProbeKind::Liveness,
                failures: 3,
                reason: "refused".into()
            }]
        );

        let mut stuck = Lifecycle::new(&probes, None, t0);
        assert!(
            stuck
                .on_probe(ProbeKind::Startup, FAIL(), secs(t0, 1))
                .is_empty()
        );
        let steps = stuck.on_probe(ProbeKind::Startup, FAIL(), secs(t0, 2));
        assert!(matches!(
            steps[..],
            [Step::Kill {
                probe: ProbeKind::Startup,
                failures: 2,
                ..
            }]
        ));
        assert!(
            !stuck.reached_ready(),
            "a run killed in startup never was ready: crash-loop material"
        );
    }

    #[test]
    fn an_adopted_ready_run_is_ready_at_once_and_skips_its_startup_probe() {
        let t0 = Instant::now();
        let probes = Probes {
            startup: Some(probe(1)),
            readiness: Some(probe(1)),
            ..Probes::default()
        };
        let mut life = Lifecycle::new(&probes, Some(true), t0);
        assert!(!life.in_startup() && life.reached_ready());
        assert!(
            life.on_probe(ProbeKind::Readiness, Ok(()), secs(t0, 1))
                .is_empty(),
            "its first passing probe changes nothing"
        );
        assert_eq!(life.next_timer(), Some(t0 + STABLE_AFTER));
        let unsure = Lifecycle::new(&probes, Some(false), t0);
        assert!(!unsure.in_startup() && !unsure.reached_ready());
        assert_eq!(unsure.next_timer(), None, "its readiness probe decides");
    }

    #[test]
    fn results_of_probes_it_does_not_have_are_ignored() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(&Probes::default(), None, t0);
        for kind in [
            ProbeKind::Startup,
            ProbeKind::Readiness,
            ProbeKind::Liveness,
        ] {
            assert!(life.on_probe(kind, FAIL(), t0).is_empty());
        }
    }
}
