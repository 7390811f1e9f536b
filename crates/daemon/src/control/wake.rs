//! When the controller next needs to wake with nothing happening, decided without IO: the earliest
//! timer of any app — a rollout's deadline or timed canary step (`Rollout::next_timer`), the end of a
//! warm release's delay, the end of a release's watch after promotion — or the next analysis round (counters are snapshotted once a second while
//! any app exists, for analysis windows and the dashboard's charts). Everything else wakes it as an
//! event: a command, an instance's state change, a drain that finished, a check's answer.
//!
//! Apart from those, while a rollout analyses (a session runs, or its step wants one) or a promoted
//! release is watched (`watch.rs`), `next_judge` wakes it every `JUDGE_EVERY_MS` to start and judge
//! sessions and watches on fresh counts only: verdicts follow the evidence, not the once-a-second round.

use crate::control::app_state::AppState;

/// The earliest timer after `last_run` (the time the decisions last ran: a timer at or before it was
/// already seen, so waking for it again would decide the same). `None`: sleep until an event.
pub(crate) fn next_wake<'a>(
    apps: impl IntoIterator<Item = &'a AppState>,
    next_analysis_at: u64,
    last_run: u64,
) -> Option<u64> {
    let mut any_app = false;
    let timers = apps.into_iter().flat_map(|app| {
        any_app = true;
        timers(app)
    });
    let earliest = timers.flatten().filter(|&at| at > last_run).min();
    let analysis = (any_app && next_analysis_at > last_run).then_some(next_analysis_at);
    earliest.into_iter().chain(analysis).min()
}

/// Whether an app's own timer (not the analysis round's) fell due after `last_run`, by `now`.
pub(crate) fn app_timer_due<'a>(
    apps: impl IntoIterator<Item = &'a AppState>,
    last_run: u64,
    now: u64,
) -> bool {
    apps.into_iter()
        .flat_map(timers)
        .flatten()
        .any(|at| at > last_run && at <= now)
}

/// An app's timers: its rollout's next, its warm release's end, its watch's end.
fn timers(app: &AppState) -> [Option<u64>; 3] {
    let rollout = app.rollout.as_ref().and_then(|r| r.machine.next_timer());
    let warm = app.warm.as_ref().map(|w| w.retire_at);
    let watch = app
        .watch
        .as_ref()
        .filter(|w| w.watching())
        .map(|w| w.ends_at);
    [rollout, warm, watch]
}

/// How often running analyses are judged between rounds. At 1,000 canary requests a second a bad
/// canary's errors served while a verdict waits are then a couple at most; the sequential tests stay
/// valid however often they are looked at (docs/analysis.md).
pub(crate) const JUDGE_EVERY_MS: u64 = 50;

/// When to judge the running analyses next, if any app has one.
pub(crate) fn next_judge<'a>(
    apps: impl IntoIterator<Item = &'a AppState>,
    last_judged: u64,
) -> Option<u64> {
    let judging = apps.into_iter().any(judging);
    judging.then_some(last_judged + JUDGE_EVERY_MS)
}

/// An app's rollout runs an analysis, or its current step wants one started, or its newest release is
/// watched after promotion.
pub(crate) fn judging(app: &AppState) -> bool {
    let analysing = app.rollout.as_ref().is_some_and(|r| {
        !app.sessions.is_empty()
            || !crate::control::analysis_round::sessions_wanted(&r.machine).is_empty()
    });
    analysing || watching(app)
}

/// A promoted release of the app is watched (`watch.rs`).
pub(crate) fn watching(app: &AppState) -> bool {
    app.watch.as_ref().is_some_and(|w| w.watching())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::app_state::Warm;
    use std::collections::BTreeMap;

    #[test]
    fn no_app_sleeps_until_an_event() {
        assert_eq!(
            next_wake(BTreeMap::<String, AppState>::new().values(), 5_000, 0),
            None
        );
    }

    #[test]
    fn the_earliest_timer_not_yet_seen() {
        let mut apps = BTreeMap::new();
        let app = AppState {
            warm: Some(Warm {
                version: 1,
                retire_at: 3_000,
            }),
            ..AppState::default()
        };
        apps.insert("a".to_string(), app);
        assert_eq!(
            next_wake(apps.values(), 5_000, 1_000),
            Some(3_000),
            "the warm release's end"
        );
        assert_eq!(
            next_wake(apps.values(), 5_000, 3_000),
            Some(5_000),
            "a timer already seen does not wake it again"
        );
        assert!(app_timer_due(apps.values(), 1_000, 3_000));
        assert!(
            !app_timer_due(apps.values(), 3_000, 5_000),
            "the analysis round is not an app's timer"
        );
    }

    #[test]
    fn analyses_are_judged_often_only_while_one_runs() {
        use crate::control::analysis_session::{Purpose, Session};
        let mut apps = BTreeMap::new();
        apps.insert("a".to_string(), AppState::default());
        assert_eq!(next_judge(apps.values(), 1_000), None, "nothing to judge");
        let session = || {
            Session::new(
                "golden",
                Default::default(),
                Purpose::Background,
                0,
                Default::default(),
                None,
            )
        };
        apps.get_mut("a").unwrap().sessions.push(session());
        assert_eq!(
            next_judge(apps.values(), 1_000),
            None,
            "no rollout: the round drops it"
        );
        apps.get_mut("a").unwrap().sessions.clear();
        let deploy = "strategy = \"canary\"\n\
                      steps = [{ weight = 10 }, { analysis = \"golden\", for = \"1m\" }]\n\
                      [analysis.golden]\nerror_rate = { max = \"1%\" }";
        let r = crate::control::test_support::web_release("a", 2, 2, deploy);
        let machine = slipway_core::rollout::Rollout::new(
            "a",
            Some((1, 2)),
            2,
            2,
            r.spec.deploy.strategy,
            0,
            60_000,
        );
        apps.get_mut("a").unwrap().rollout = Some(crate::control::app_state::ActiveRollout::new(
            1, machine, false,
        ));
        assert_eq!(
            next_judge(apps.values(), 1_000),
            None,
            "a weight step analyses nothing"
        );
        let active = apps.get_mut("a").unwrap().rollout.as_mut().unwrap();
        active.machine.canary.step = 1;
        assert_eq!(
            next_judge(apps.values(), 1_000),
            Some(1_000 + JUDGE_EVERY_MS),
            "the analysis step wants its session started at once"
        );
    }

    #[test]
    fn a_watched_release_is_judged_often_until_its_watch_ends() {
        use crate::control::rollout_end::Ended;
        use crate::control::watch::Watch;
        let ended = Ended {
            id: 1,
            from: Some(1),
            to: 2,
            outcome: slipway_core::rollout::Outcome::Succeeded,
            reason: None,
            rollback: false,
        };
        let release = crate::control::test_support::web_release("a", 2, 1, "watch = \"1m\"");
        let watch = Watch::start(&ended, &release, Default::default(), Default::default(), 0);
        let mut apps = BTreeMap::new();
        apps.insert(
            "a".to_string(),
            AppState {
                watch,
                ..AppState::default()
            },
        );
        assert_eq!(
            next_judge(apps.values(), 1_000),
            Some(1_000 + JUDGE_EVERY_MS)
        );
        assert_eq!(
            next_wake(apps.values(), 90_000, 1_000),
            Some(60_000),
            "its end is a timer"
        );
        let app = apps.get_mut("a").unwrap();
        app.watch.as_mut().unwrap().supersede(3, 2_000);
        assert_eq!(next_judge(apps.values(), 2_000), None, "no longer watching");
        assert_eq!(next_wake(apps.values(), 90_000, 2_000), Some(90_000));
    }
}
