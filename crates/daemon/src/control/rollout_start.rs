//! How a rollout begins, decided without IO: which strategy it runs, the core's state machine for it,
//! and — for a rollback to bits still warm after a blue-green switch — the warm instances taken over
//! as the new release's, so the rollback is a route swap. The driver records it and tells people.

use crate::control::app_state::{ActiveRollout, AppState};
use crate::error::Error;
use slipway_core::release::{Release, Version};
use slipway_core::rollout::Rollout;
use slipway_core::spec::Strategy;

/// A rollback switches as soon as its target is fully ready (the fastest safe move); otherwise
/// `deploy --canary N`'s strategy, else the release's own.
pub(crate) fn strategy_for(release: &Release, rollback: bool, asked: Option<Strategy>) -> Strategy {
    if rollback {
        return Strategy::BlueGreen {
            auto_promote: true,
            scale_down_delay: release.spec.scale_down_delay(),
        };
    }
    asked.unwrap_or_else(|| release.spec.deploy.strategy.clone())
}

/// The state machine of a rollout of `release` replacing `from` (the stable release and its web
/// replicas), refused while another rollout of the app runs.
pub(crate) fn machine(
    app: &AppState,
    release: &Release,
    from: Option<(Version, u32)>,
    strategy: Strategy,
    now: u64,
) -> Result<Rollout, Error> {
    if app.rollout.is_some() {
        return Err(Error::conflict(format!(
            "a rollout of {} is already in progress",
            release.app
        )));
    }
    let deadline = release.spec.deploy.progress_deadline.as_millis() as u64;
    Ok(Rollout::new(
        &release.app,
        from,
        release.version,
        release.spec.web_replicas(),
        strategy,
        now,
        deadline,
    ))
}

/// Makes the rollout the app's; `warm` is the release kept warm, if any. A warm release with exactly
/// these bits and config hands its instances to the new release.
pub(crate) fn begin(
    app: &mut AppState,
    id: i64,
    machine: Rollout,
    rollback: bool,
    release: &Release,
    warm: Option<&Release>,
) {
    if let Some(w) = app.warm.take() {
        let same = warm.is_some_and(|w| w.artifact == release.artifact && w.spec == release.spec);
        if same {
            for m in app
                .instances
                .iter_mut()
                .filter(|m| m.release == w.version && !m.retiring)
            {
                m.release = release.version;
            }
        } else {
            app.warm = Some(w);
        }
    }
    app.rollout = Some(ActiveRollout::new(id, machine, rollback));
    app.last_failure = None;
}

/// The `rollout_started` event's text.
pub(crate) fn started_text(stable: Option<Version>, release: &Release, strategy: &str) -> String {
    let from = stable.map_or("nothing".to_string(), |v| format!("v{v}"));
    let to = release.version;
    match release.rollback_of {
        Some(old) => {
            format!("rollback from {from} to v{to} (the bits and config of v{old}) started")
        }
        None => format!("rollout from {from} to v{to} started ({strategy})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::app_state::Warm;
    use crate::control::test_support::{instance, web_release};

    #[test]
    fn a_rollback_switches_blue_green_whatever_the_release_says() {
        let r = web_release(
            "a",
            3,
            2,
            "strategy = \"canary\"\nsteps = [{ weight = 10 }]",
        );
        assert!(matches!(
            strategy_for(&r, true, None),
            Strategy::BlueGreen {
                auto_promote: true,
                ..
            }
        ));
        assert!(matches!(strategy_for(&r, false, None), Strategy::Canary(_)));
        assert_eq!(
            strategy_for(&r, false, Some(Strategy::Recreate)),
            Strategy::Recreate,
            "deploy --canary's strategy wins over the release's"
        );
    }

    #[test]
    fn one_rollout_at_a_time() {
        let r = web_release("a", 2, 2, "strategy = \"rolling\"");
        let mut app = AppState::default();
        let m = machine(&app, &r, Some((1, 2)), Strategy::Recreate, 0).unwrap();
        assert_eq!((m.from, m.to, m.to_replicas), (Some(1), 2, 2));
        begin(&mut app, 7, m, false, &r, None);
        let again = machine(&app, &r, Some((1, 2)), Strategy::Recreate, 0).unwrap_err();
        assert_eq!(again.kind, crate::error::ErrorKind::Conflict);
    }

    /// v1 kept warm after a blue-green switch, with its one instance.
    fn v1_kept_warm() -> AppState {
        AppState {
            warm: Some(Warm {
                version: 1,
                retire_at: 9_000,
            }),
            instances: vec![instance("w", 1, "web", true, 1)],
            ..AppState::default()
        }
    }

    #[test]
    fn a_rollback_to_the_warm_bits_takes_over_their_instances() {
        let warm = web_release("a", 1, 1, "strategy = \"blue-green\"");
        let mut back = warm.clone();
        back.version = 3;
        back.rollback_of = Some(1);
        let mut app = v1_kept_warm();
        let m = machine(&app, &back, Some((2, 1)), Strategy::Recreate, 0).unwrap();
        begin(&mut app, 1, m, true, &back, Some(&warm));
        assert_eq!(
            app.instances[0].release, 3,
            "the warm instance serves as v3"
        );
        assert!(app.warm.is_none());
        assert_eq!(
            started_text(Some(2), &back, "blue-green"),
            "rollback from v2 to v3 (the bits and config of v1) started"
        );
    }

    #[test]
    fn other_bits_leave_the_warm_release_alone() {
        let warm = web_release("a", 1, 1, "strategy = \"blue-green\"");
        let new = web_release("a", 3, 1, "strategy = \"blue-green\"");
        let mut app = v1_kept_warm();
        let m = machine(&app, &new, Some((2, 1)), Strategy::Recreate, 0).unwrap();
        begin(&mut app, 1, m, false, &new, Some(&warm));
        assert_eq!(app.instances[0].release, 1);
        assert!(app.warm.is_some());
    }
}
