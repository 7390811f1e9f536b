//! Watching a release after promotion, decided without IO: for `[deploy] watch` after a rollout
//! succeeds, the new release's traffic since it reached 100 % is judged against the release it replaced
//! — that release's counts up to the switch, kept as one bounded `Window` (a histogram and two counts,
//! however long it served) — with the same sequential tests as a canary's analysis (`Session`): a fail is
//! a clear regression, and the driver rolls back to the replaced release through the ordinary rollback
//! path (a new release made from it). Judged every `wake::JUDGE_EVERY_MS` while it watches; its end is a
//! timer (`wake`). A running watch is saved in the store (`SavedWatch`: its time and the baseline), so a
//! restarted or upgraded daemon watches on with new sessions (the release's counters start again from
//! zero there; each session judges only traffic since its own start anyway).
//!
//! A regression after promotion starts late, after a long healthy stretch: one test on all data since
//! the switch would first have to climb out of the evidence that stretch gave for "healthy" (measured: 45 s
//! for the seed's 3 % at 1.2k rps, 30 s after 100 %). So a new session starts every `SESSION_EVERY_MS`,
//! each on the data since its own start, and sessions older than `SESSION_KEPT_MS` are dropped: a
//! regression always meets a session that began shortly before it (or after). The template's alpha is
//! spent across them — each of the watch's `n` sessions runs at alpha / n — so, by the union bound and
//! each session's own anytime guarantee, the chance that any of them ever fails a release within its
//! bounds stays at most alpha. Dropping a session only stops a test; it never adds a false alarm.

use crate::control::analysis_session::{Purpose, Session};
use crate::control::rollout_end::Ended;
use slipway_core::analysis::{Judgement, Settings, Window};
use slipway_core::release::{Release, Version};
use slipway_core::rollout::Outcome;
use slipway_core::spec::{AnalysisTemplate, Check, DeploySpec};
use slipway_core::verdict::Verdict;
use std::collections::VecDeque;

/// A new session starts this often while the watch runs.
pub(crate) const SESSION_EVERY_MS: u64 = 5_000;
/// A session is judged this long, then dropped (younger ones carry on).
pub(crate) const SESSION_KEPT_MS: u64 = 60_000;

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
    /// The template with its share of alpha: what each session judges.
    checks: AnalysisTemplate,
    /// The running sessions, oldest first, each with its start; a session's base is the watched
    /// release's counts then, so only traffic since 100 % (since its start) is judged.
    sessions: VecDeque<(u64, Session)>,
    /// When the next session starts.
    next_session_at: u64,
    /// The replaced release's counts up to the switch.
    baseline: Window,
    /// The judgement shown: the oldest session's (most data), or the one that failed.
    last: Option<Judgement>,
    /// The watched release's request count when last judged: the same count again is the same
    /// verdict, so an idle app's watch is judged only when a session starts or the watch ends.
    judged_requests: Option<u64>,
}

/// A running watch as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedWatch {
    pub(crate) release: Version,
    pub(crate) predecessor: Version,
    pub(crate) started_at: u64,
    pub(crate) ends_at: u64,
    /// The replaced release's counts up to the switch.
    pub(crate) baseline: Window,
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
        let saved = SavedWatch {
            release: ended.to,
            predecessor,
            started_at: now,
            ends_at: now + watch.as_millis() as u64,
            baseline: predecessor_now,
        };
        Some(Watch::from_saved(saved, release, &release_now, now))
    }

    /// The watch a restarted daemon carries on with, until its time is over; `None` once it is, or if
    /// `release` is not the one watched. `release_now`: the release's counters in this daemon.
    pub(crate) fn resume(
        saved: SavedWatch,
        release: &Release,
        release_now: &Window,
        now: u64,
    ) -> Option<Watch> {
        (saved.release == release.version && now < saved.ends_at)
            .then(|| Watch::from_saved(saved, release, release_now, now))
    }

    fn from_saved(saved: SavedWatch, release: &Release, release_now: &Window, now: u64) -> Watch {
        let (template_name, mut checks) = template_of(release);
        // The whole watch's sessions share alpha; after a restart, at most one more session than
        // planned runs (the one in progress is dropped and a new one starts), a bound left as is.
        let sessions = (saved.ends_at - saved.started_at)
            .div_ceil(SESSION_EVERY_MS)
            .max(1);
        let alpha = Settings::default().with(&checks.test).alpha;
        checks.test.alpha = Some(alpha / sessions as f64);
        let mut w = Watch {
            release: saved.release,
            predecessor: saved.predecessor,
            template: template_name,
            started_at: saved.started_at,
            ends_at: saved.ends_at,
            state: WatchState::Watching,
            checks,
            sessions: VecDeque::new(),
            next_session_at: now,
            baseline: saved.baseline,
            last: None,
            judged_requests: None,
        };
        w.keep_sessions(release_now, now);
        w
    }

    /// What a restarted daemon needs to watch on.
    pub(crate) fn saved(&self) -> SavedWatch {
        SavedWatch {
            release: self.release,
            predecessor: self.predecessor,
            started_at: self.started_at,
            ends_at: self.ends_at,
            baseline: self.baseline.clone(),
        }
    }

    /// Starts the sessions due by `now` (based on these counts) and drops those past their time.
    fn keep_sessions(&mut self, release_now: &Window, now: u64) {
        while self.next_session_at <= now && self.next_session_at < self.ends_at {
            let session = Session::new(
                &self.template,
                self.checks.clone(),
                Purpose::Watch,
                now,
                release_now.clone(),
                None,
            );
            self.sessions.push_back((now, session));
            self.next_session_at += SESSION_EVERY_MS;
        }
        while self.sessions.len() > 1
            && self
                .sessions
                .front()
                .is_some_and(|(at, _)| at + SESSION_KEPT_MS <= now)
        {
            self.sessions.pop_front();
        }
    }

    pub(crate) fn watching(&self) -> bool {
        self.state == WatchState::Watching
    }

    /// Whether [`Watch::judge`] could say anything new: the release answered requests since the last
    /// judgement, a session is due, or the watch is over.
    pub(crate) fn needs_judging(&self, requests: u64, now: u64) -> bool {
        self.watching()
            && (self.judged_requests != Some(requests)
                || now >= self.next_session_at.min(self.ends_at))
    }

    /// Judges the release's counts now against the predecessor's from before the switch.
    pub(crate) fn judge(&mut self, release_now: &Window, now: u64) -> WatchStep {
        if !self.watching() {
            return WatchStep::Hold;
        }
        self.judged_requests = Some(release_now.requests);
        self.keep_sessions(release_now, now);
        let baseline = &self.baseline;
        let judged: Vec<Judgement> = self
            .sessions
            .iter_mut()
            .map(|(_, s)| s.judge(release_now, Some(baseline)))
            .collect();
        if let Some(failed) = judged.iter().find(|j| j.verdict == Verdict::Fail) {
            let detail = self.in_watch_words(&failed.detail);
            self.last = Some(failed.clone());
            self.state = WatchState::Regressed { at: now };
            return WatchStep::Regressed(detail);
        }
        self.last = judged.into_iter().next();
        if now >= self.ends_at {
            self.state = WatchState::Ended { at: now };
            let (verdict, detail) = self
                .last()
                .unwrap_or((Verdict::Inconclusive, String::new()));
            return WatchStep::Ended(verdict, detail);
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
        self.last
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
        Window::uniform(requests, errors, 1_000)
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
    fn a_saved_watch_resumes_until_its_time_is_over_and_still_catches_a_regression() {
        let w = started("watch = \"5m\"", window(1_000, 0), window(9_000, 27)).expect("watched");
        let saved: SavedWatch =
            serde_json::from_value(serde_json::to_value(w.saved()).unwrap()).unwrap();
        assert_eq!(saved, w.saved());
        let release = web_release("shop", 2, 2, "watch = \"5m\"");
        let other = web_release("shop", 3, 2, "watch = \"5m\"");
        // A new daemon: the release's counters start again from zero.
        let fresh = Window::default();
        assert!(
            Watch::resume(saved.clone(), &other, &fresh, 2_000).is_none(),
            "not v2"
        );
        assert!(
            Watch::resume(saved.clone(), &release, &fresh, w.ends_at).is_none(),
            "over"
        );
        let mut resumed = Watch::resume(saved, &release, &fresh, 120_000).expect("resumed");
        assert_eq!(
            (resumed.started_at, resumed.ends_at),
            (w.started_at, w.ends_at)
        );
        let mut now = fresh;
        let mut t = 120_000;
        let step = loop {
            for i in 0..50 {
                now.record(1_000, i % 10 == 0);
            }
            t += 50;
            match resumed.judge(&now, t) {
                WatchStep::Hold => assert!(t < 180_000, "not caught within a minute"),
                other => break other,
            }
        };
        assert!(matches!(step, WatchStep::Regressed(_)), "{step:?}");
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
    fn a_regression_long_after_the_switch_is_caught_as_fast_as_one_at_the_switch() {
        // 1,000 requests a second at 0.3 % for 4 minutes, then 3 %: judged by a young session, not
        // by one that first has to climb out of four healthy minutes.
        let mut w = started("watch = \"5m\"", window(0, 0), window(9_000, 27)).expect("watched");
        let mut now = Window::default();
        let mut t = 1_000;
        let mut n = 0u64;
        let caught = loop {
            let rate = if t < 241_000 { 3 } else { 30 };
            for _ in 0..50 {
                n += 1;
                now.record(1_000, n % 1_000 < rate);
            }
            t += 50;
            if let WatchStep::Regressed(_) = w.judge(&now, t) {
                break t;
            }
            assert!(t < 300_000, "not caught: {:?}", w.last());
        };
        assert!(caught > 241_000, "no false alarm before the regression");
        assert!(
            caught - 241_000 <= 10_000,
            "caught {} ms after it began",
            caught - 241_000
        );
    }

    #[test]
    fn alpha_is_spent_across_the_sessions() {
        let w = started("watch = \"5m\"", window(0, 0), window(9_000, 27)).expect("watched");
        assert_eq!(w.checks.test.alpha, Some(0.1 / 60.0));
        let w = started("watch = \"2s\"", window(0, 0), window(9_000, 27)).expect("watched");
        assert_eq!(w.checks.test.alpha, Some(0.1), "one session");
    }

    #[test]
    fn sessions_start_on_schedule_and_old_ones_are_dropped() {
        let mut w = started("watch = \"5m\"", window(0, 0), window(9_000, 27)).expect("watched");
        assert_eq!(w.sessions.len(), 1);
        w.judge(&window(10, 0), 1_000 + 2 * SESSION_EVERY_MS);
        assert_eq!(w.sessions.len(), 3);
        w.judge(
            &window(10, 0),
            1_000 + SESSION_KEPT_MS + 2 * SESSION_EVERY_MS,
        );
        assert_eq!(
            w.sessions.len() as u64,
            SESSION_KEPT_MS / SESSION_EVERY_MS,
            "only the last minute's"
        );
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
    fn an_idle_watch_is_judged_only_when_a_session_starts_or_it_ends() {
        // Started at 1 s (a session then); sessions every 5 s; ends at 61 s.
        let mut w = started("watch = \"1m\"", window(0, 0), window(9_000, 27)).expect("watched");
        let idle = Window::default();
        assert!(w.needs_judging(0, 1_050), "never judged yet");
        w.judge(&idle, 1_050);
        assert!(!w.needs_judging(0, 1_100), "the same count, no session due");
        assert!(!w.needs_judging(0, 5_999));
        assert!(w.needs_judging(1, 1_100), "a request answered since");
        assert!(w.needs_judging(0, 6_000), "the next session is due");
        w.judge(&idle, 6_000);
        assert!(!w.needs_judging(0, 6_050));
        assert!(w.needs_judging(0, 61_000), "over: the end is a judgement");
        assert_eq!(
            w.judge(&idle, 61_000),
            WatchStep::Ended(
                Verdict::Inconclusive,
                w.last().map(|l| l.1).unwrap_or_default()
            )
        );
        assert!(
            !w.needs_judging(5, 62_000),
            "an ended watch is never judged again"
        );
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
