//! Watching a release after promotion, decided without IO: for `[deploy] watch` after a rollout
//! succeeds, the new release's traffic since it reached 100 % is judged against the release it replaced
//! — that release's counts up to the switch, kept as one bounded `Window` (a histogram and two counts,
//! however long it served) — with the same sequential tests as a canary's analysis (`Session`): a fail is
//! a clear regression, and the driver rolls back to the replaced release through the ordinary rollback
//! path (a new release made from it). Judged every `wake::JUDGE_EVERY_MS` while it watches; its end is a
//! timer (`wake`). The watch lives in memory only: a restarted daemon does not resume it.

use crate::control::analysis_session::{Purpose, Session};
use crate::control::rollout_end::Ended;
use slipway_core::analysis::{Judgement, Window};
use slipway_core::release::{Release, Version};
use slipway_core::rollout::Outcome;
use slipway_core::spec::{AnalysisTemplate, Check, DeploySpec};
use slipway_core::verdict::Verdict;

/// The name the status shows for the default template.
pub(crate) const DEFAULT_TEMPLATE: &str = "default";

pub(crate) struct Watch {
    /// The release watched (the rollout's new release).
    pub(crate) release: Version,
    /// The release it replaced, whose numbers it is compared with, and the rollback's target.
    pub(crate) predecessor: Version,
    /// `watch_analysis`, or [`DEFAULT_TEMPLATE`].
    pub(crate) template: String,
    pub(crate) started_at: u64,
    pub(crate) ends_at: u64,
    pub(crate) state: WatchState,
    /// Its base: the watched release's counts at the switch, so only traffic since 100 % is judged.
    session: Session,
    /// The replaced release's counts up to the switch.
    baseline: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchState {
    Watching,
    /// Its time is over without a regression.
    Ended {
        at: u64,
    },
    /// A clear regression: the driver rolls back to the predecessor.
    Regressed {
        at: u64,
    },
    /// Another rollout started before its time was over.
    Superseded {
        at: u64,
        by: Version,
    },
}

/// What a look at the watch decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WatchStep {
    /// Still watching (or no longer: nothing new).
    Hold,
    /// Worse than the predecessor: roll back (the detail says how, in the watch's words).
    Regressed(String),
    /// The time is over without a regression; the last verdict (pass or inconclusive) and its detail.
    Ended(Verdict, String),
}

impl Watch {
    /// The watch a rollout's end starts, if any: a rollout that succeeded, replaced a release, is not
    /// a rollback (going back needs no watch against what it left), and whose release is watched
    /// (`watch` > 0). `release_now` and `predecessor_now` are both releases' counters at the switch.
    pub(crate) fn start(
        ended: &Ended,
        release: &Release,
        release_now: Window,
        predecessor_now: Window,
        now: u64,
    ) -> Option<Watch> {
        let predecessor = ended.from?;
        let watch = release.spec.deploy.watch;
        if ended.outcome != Outcome::Succeeded
            || ended.rollback
            || predecessor == ended.to
            || watch.is_zero()
        {
            return None;
        }
        let (template_name, template) = template_of(release);
        let session = Session::new(
            &template_name,
            template,
            Purpose::Watch,
            now,
            release_now,
            None,
        );
        Some(Watch {
            release: ended.to,
            predecessor,
            template: template_name,
            started_at: now,
            ends_at: now + watch.as_millis() as u64,
            state: WatchState::Watching,
            session,
            baseline: predecessor_now,
        })
    }

    pub(crate) fn watching(&self) -> bool {
        self.state == WatchState::Watching
    }

    /// Judges the release's counts now against the predecessor's from before the switch.
    pub(crate) fn judge(&mut self, release_now: &Window, now: u64) -> WatchStep {
        if !self.watching() {
            return WatchStep::Hold;
        }
        let j = self.session.judge(release_now, Some(&self.baseline));
        let detail = self.in_watch_words(&j.detail);
        if j.verdict == Verdict::Fail {
            self.state = WatchState::Regressed { at: now };
            return WatchStep::Regressed(detail);
        }
        if now >= self.ends_at {
            self.state = WatchState::Ended { at: now };
            return WatchStep::Ended(j.verdict, detail);
        }
        WatchStep::Hold
    }

    /// Another rollout began: a running watch ends (its release is being replaced anyway). Says
    /// whether it was watching.
    pub(crate) fn supersede(&mut self, by: Version, now: u64) -> bool {
        let was = self.watching();
        if was {
            self.state = WatchState::Superseded { at: now, by };
        }
        was
    }

    /// The latest judgement, in the watch's words.
    pub(crate) fn last(&self) -> Option<(Verdict, String)> {
        self.session
            .last
            .as_ref()
            .map(|Judgement { verdict, detail }| (*verdict, self.in_watch_words(detail)))
    }

    /// The analysis speaks of a canary and a stable release; here they are this release since 100 %
    /// and the one it replaced, before the switch.
    fn in_watch_words(&self, detail: &str) -> String {
        detail
            .replace("the stable release", &format!("v{}", self.predecessor))
            .replace(
                "stable",
                &format!("v{} (before the switch)", self.predecessor),
            )
            .replace("canary", &format!("v{}", self.release))
    }
}

/// A span of time for the watch's messages: "800ms", "31.2s", "5m", "2m30s".
pub(crate) fn span(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ if ms % 60_000 < 1_000 => format!("{}m", ms / 60_000),
        _ => format!("{}m{}s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// The template the release names in `watch_analysis` (its built-in checks), else the default.
fn template_of(release: &Release) -> (String, AnalysisTemplate) {
    let named = release
        .spec
        .deploy
        .watch_analysis
        .as_ref()
        .and_then(|name| {
            let t = release.spec.analysis.get(name)?;
            let checks: Vec<Check> = t
                .checks
                .iter()
                .filter(|c| matches!(c, Check::ErrorRate { .. } | Check::Latency { .. }))
                .cloned()
                .collect();
            let template = AnalysisTemplate {
                checks,
                test: t.test,
            };
            (!template.checks.is_empty()).then(|| (name.clone(), template))
        });
    named.unwrap_or_else(|| {
        (
            DEFAULT_TEMPLATE.to_string(),
            DeploySpec::default_watch_template(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::web_release;

    fn window(requests: u64, errors: u64) -> Window {
        let mut w = Window::default();
        for i in 0..requests {
            w.record(1_000, i < errors);
        }
        w
    }

    fn ended(outcome: Outcome, rollback: bool) -> Ended {
        Ended {
            id: 1,
            from: Some(1),
            to: 2,
            outcome,
            reason: None,
            rollback,
        }
    }

    fn started(deploy: &str, release_now: Window, before: Window) -> Option<Watch> {
        let release = web_release("shop", 2, 2, deploy);
        Watch::start(
            &ended(Outcome::Succeeded, false),
            &release,
            release_now,
            before,
            1_000,
        )
    }

    #[test]
    fn spans_read_short() {
        assert_eq!(span(800), "800ms");
        assert_eq!(span(31_240), "31.2s");
        assert_eq!(span(300_000), "5m");
        assert_eq!(span(150_400), "2m30s");
    }

    #[test]
    fn only_a_succeeded_rollout_that_replaced_a_release_is_watched() {
        let release = web_release("shop", 2, 2, "watch = \"1m\"");
        let start = |e: &Ended| Watch::start(e, &release, Window::default(), window(100, 0), 0);
        let w = start(&ended(Outcome::Succeeded, false)).expect("watched");
        assert_eq!((w.release, w.predecessor, w.ends_at), (2, 1, 60_000));
        assert_eq!(w.template, DEFAULT_TEMPLATE);
        assert!(start(&ended(Outcome::Failed, false)).is_none());
        assert!(start(&ended(Outcome::Aborted, false)).is_none());
        assert!(
            start(&ended(Outcome::Succeeded, true)).is_none(),
            "a rollback"
        );
        let first = Ended {
            from: None,
            ..ended(Outcome::Succeeded, false)
        };
        assert!(
            start(&first).is_none(),
            "a first deploy has nothing to compare with"
        );
        let off = web_release("shop", 2, 2, "watch = \"0s\"");
        let e = ended(Outcome::Succeeded, false);
        assert!(Watch::start(&e, &off, Window::default(), window(100, 0), 0).is_none());
    }

    #[test]
    fn a_clear_regression_after_the_switch_is_caught_and_named() {
        // Before the switch: v2 served 1,000 clean requests as a canary, v1 9,000 at 0.3 %.
        let at_switch = window(1_000, 0);
        let mut w = started("watch = \"5m\"", at_switch, window(9_000, 27)).expect("watched");
        // Since: 10 % errors.
        let mut now = window(1_000, 0);
        let mut t = 1_000;
        let step = loop {
            for i in 0..50 {
                now.record(1_000, i % 10 == 0);
            }
            t += 50;
            match w.judge(&now, t) {
                WatchStep::Hold => assert!(t < 60_000, "not caught within a minute"),
                other => break other,
            }
        };
        let WatchStep::Regressed(detail) = step else {
            panic!("{step:?}");
        };
        assert!(
            detail.starts_with("v2 ") && detail.contains("vs v1 (before the switch) 0.3%"),
            "{detail}"
        );
        assert_eq!(w.state, WatchState::Regressed { at: t });
        assert_eq!(w.judge(&now, t + 50), WatchStep::Hold, "decided once");
    }

    #[test]
    fn a_healthy_release_ends_quietly_when_its_time_is_over() {
        let mut w = started("watch = \"1m\"", window(0, 0), window(9_000, 27)).expect("watched");
        let mut now = Window::default();
        let mut t = 1_000;
        loop {
            for i in 0..50 {
                now.record(1_000, i == 0 && t % 1_000 == 0 && t % 3_000 == 0);
            }
            t += 50;
            match w.judge(&now, t) {
                WatchStep::Hold => assert!(t < 61_000, "{:?}", w.state),
                WatchStep::Ended(verdict, detail) => {
                    assert_eq!(verdict, Verdict::Pass, "{detail}");
                    assert!(detail.contains("within +1% of v1"), "{detail}");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(t, 61_000, "ends at its time");
        assert_eq!(w.state, WatchState::Ended { at: t });
    }

    #[test]
    fn too_little_traffic_before_the_switch_never_rolls_back() {
        // v1 served 10 requests: nothing to compare with, however bad v2 looks.
        let mut w = started("watch = \"1m\"", window(0, 0), window(10, 0)).expect("watched");
        let step = w.judge(&window(1_000, 500), 2_000);
        assert_eq!(step, WatchStep::Hold);
        let (verdict, detail) = w.last().expect("judged");
        assert_eq!(verdict, Verdict::Inconclusive);
        assert!(detail.contains("v1 served fewer than"), "{detail}");
    }

    #[test]
    fn a_named_template_is_judged_and_a_new_rollout_ends_the_watch() {
        let deploy = "watch = \"1m\"\nwatch_analysis = \"fast\"\n\
                      [analysis.fast]\nlatency_p95 = { max = \"50ms\", compare = \"stable\" }";
        let mut w = started(deploy, window(0, 0), window(9_000, 0)).expect("watched");
        assert_eq!(w.template, "fast");
        // Every request of v2 takes 100 ms where v1's took 1 ms.
        let mut slow = Window::default();
        for _ in 0..200 {
            slow.record(100_000, false);
        }
        let WatchStep::Regressed(detail) = w.judge(&slow, 2_000) else {
            panic!("{:?}", w.last());
        };
        assert!(detail.contains("v2 p95"), "{detail}");
        let mut w = started(deploy, window(0, 0), window(9_000, 0)).expect("watched");
        assert!(w.supersede(3, 5_000));
        assert_eq!(w.state, WatchState::Superseded { at: 5_000, by: 3 });
        assert!(!w.supersede(4, 6_000), "only once");
        assert_eq!(w.judge(&slow, 7_000), WatchStep::Hold);
    }
}
