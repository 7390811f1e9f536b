//! `slipway scale`, decided without IO: a release that differs from the stable one only in its
//! formation takes over the running instances (no restart) and their counters, and becomes stable;
//! converge then starts or retires the difference.

use crate::control::app_state::AppState;
use crate::error::Error;
use slipway_core::release::{Release, Version};

/// Whether `release` may replace the stable release `old` this way; `None`: the app has none.
pub(crate) fn check(
    app: &AppState,
    old: Option<&Release>,
    release: &Release,
) -> Result<Version, Error> {
    let name = &release.app;
    let (Some(stable), Some(old)) = (app.stable, old) else {
        return Err(Error::conflict(format!(
            "{name} has no stable release to scale"
        )));
    };
    if app.rollout.is_some() {
        return Err(Error::conflict(format!(
            "a rollout of {name} is in progress; scale when it has ended"
        )));
    }
    if old.artifact != release.artifact || !old.spec.same_but_formation(&release.spec) {
        return Err(Error::conflict(format!(
            "v{} differs from v{stable} in more than its formation; deploy it instead",
            release.version
        )));
    }
    Ok(stable)
}

/// The stable release's instances and counters become `version`'s, and it becomes stable.
pub(crate) fn take_over(app: &mut AppState, stable: Version, version: Version) {
    for m in app
        .instances
        .iter_mut()
        .filter(|m| m.release == stable && !m.retiring)
    {
        m.release = version;
    }
    // The counters follow the instances, so rates and analysis windows do not restart at zero.
    if let Some(metrics) = app.metrics.remove(&stable) {
        app.metrics.insert(version, metrics);
    }
    app.stable = Some(version);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::{instance, release, web_release};
    use crate::error::ErrorKind;

    #[test]
    fn only_the_formation_may_differ() {
        let old = web_release("a", 1, 2, "strategy = \"rolling\"");
        let mut more = web_release("a", 2, 4, "strategy = \"rolling\"");
        more.artifact = old.artifact.clone();
        let app = AppState {
            stable: Some(1),
            ..AppState::default()
        };
        assert_eq!(check(&app, Some(&old), &more), Ok(1));
        let mut other = release("a", 2, "[processes.web]\ncmd = \"other\"\nreplicas = 4");
        other.artifact = old.artifact.clone();
        let refused = check(&app, Some(&old), &other).unwrap_err();
        assert!(refused.message.contains("deploy it instead"), "{refused}");
        let none = check(&AppState::default(), None, &more).unwrap_err();
        assert_eq!(none.kind, ErrorKind::Conflict);
    }

    #[test]
    fn the_running_instances_and_counters_carry_over() {
        let mut app = AppState {
            stable: Some(1),
            instances: vec![instance("a", 1, "web", true, 1), {
                let mut gone = instance("b", 1, "web", true, 2);
                gone.retiring = true;
                gone
            }],
            ..AppState::default()
        };
        app.metrics.insert(1, slipway_proxy::ReleaseMetrics::new());
        take_over(&mut app, 1, 2);
        assert_eq!(app.stable, Some(2));
        assert_eq!(app.instances[0].release, 2);
        assert_eq!(
            app.instances[1].release, 1,
            "a retiring instance stays what it was"
        );
        assert!(app.metrics.contains_key(&2) && !app.metrics.contains_key(&1));
    }
}
