//! What an app wants now, decided without IO: the rollout's plan (the core's state machine stepped on
//! what the controller observes), else the stable release at its scale; plus a release kept warm after
//! a blue-green switch, reachable only on its preview route. The driver (`converge`) makes it so.

use crate::control::app_state::AppState;
use crate::control::managed::Managed;
use slipway_core::release::{Release, Version};
use slipway_core::rollout::Observed;
use std::collections::{BTreeMap, HashMap};

/// The releases the controller has loaded, by app and version.
pub(crate) type Releases = HashMap<(String, Version), Release>;

/// Per release: how many web instances it should have, and its traffic weight.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Desired {
    pub scale: BTreeMap<Version, u32>,
    pub weight: BTreeMap<Version, u32>,
    /// The stable release scaled to zero for want of traffic: no web instance, but its other
    /// processes (workers) keep running.
    pub asleep: Option<Version>,
}

/// One app's decision, and what the driver must record because of it.
#[derive(Debug, Default)]
pub(crate) struct AppPlan {
    pub desired: Desired,
    /// The rollout's state moved: persist this (its JSON, the rollback flag included).
    pub persist: Option<serde_json::Value>,
    /// The rollout has ended: record its outcome.
    pub finished: bool,
}

/// Steps the app's rollout, if any, and says what should run. `releases` must hold the app's stable,
/// rollout and warm releases (a missing one counts as zero instances).
pub(crate) fn plan_app(name: &str, app: &mut AppState, releases: &Releases, now: u64) -> AppPlan {
    let release = |v: Version| releases.get(&(name.to_string(), v));
    // An autoscaled release runs the scaler's count; any other its configured one.
    let scaled = app.scaling.as_ref().map(|s| s.scaler.replicas);
    let web = |v: Version| {
        release(v).map_or(0, |r| match (scaled, web_scales(r)) {
            (Some(n), true) => n,
            _ => r.spec.web_replicas(),
        })
    };
    let mut plan = AppPlan::default();
    let desired = &mut plan.desired;
    if let Some(active) = app.rollout.as_mut() {
        // A rollout runs at the current count (at least one: the new release must prove it serves).
        for (side, version) in [(0, active.machine.from), (1, Some(active.machine.to))] {
            if let Some(v) = version
                && scaled.is_some()
                && release(v).is_some_and(web_scales)
            {
                let n = web(v).max(1);
                if side == 0 {
                    active.machine.from_replicas = n;
                } else {
                    active.machine.to_replicas = n;
                }
            }
        }
        // The new release's non-web instances (workers) must all be running steadily before it goes live.
        let to_workers = release(active.machine.to).map_or(0, |r| {
            r.spec
                .processes
                .iter()
                .filter(|(p, _)| p.as_str() != "web")
                .map(|(_, p)| p.replicas)
                .sum()
        });
        let seen = observe(
            &app.instances,
            active.machine.from,
            active.machine.to,
            to_workers,
        );
        let before = active.machine.clone();
        let step = active.machine.step(seen, now);
        active.traffic = step.traffic;
        active.seen = seen;
        if let Some(from) = active.machine.from {
            let mut scale_from = step.scale_from;
            // An autoscaled stable release carries only its share of the traffic while a canary
            // takes the rest (back to full if the rollout reverts).
            let all = step.traffic.from + step.traffic.to;
            if release(from).is_some_and(web_scales)
                && matches!(
                    active.machine.strategy,
                    slipway_core::spec::Strategy::Canary(_)
                )
                && matches!(
                    active.machine.phase,
                    slipway_core::rollout::Phase::Progressing
                )
                && step.traffic.to > 0
            {
                scale_from = scale_from.min(slipway_core::autoscale::split_by_weight(
                    active.machine.from_replicas,
                    step.traffic.from,
                    all,
                ));
            }
            desired.scale.insert(from, scale_from);
            desired.weight.insert(from, step.traffic.from);
        }
        desired.scale.insert(active.machine.to, step.scale_to);
        desired.weight.insert(active.machine.to, step.traffic.to);
        if active.machine != before {
            let mut state = serde_json::to_value(&active.machine).unwrap_or_default();
            if active.rollback {
                state["rollback"] = serde_json::Value::Bool(true);
            }
            plan.persist = Some(state);
        }
        plan.finished = active.machine.is_done();
    } else if let Some(stable) = app.stable {
        let replicas = web(stable);
        desired.scale.insert(stable, replicas);
        desired.weight.insert(stable, 1);
        if replicas == 0 && release(stable).is_some_and(web_scales) {
            desired.asleep = Some(stable);
        }
    }
    if let Some(warm) = &app.warm {
        let version = warm.version;
        if now >= warm.retire_at || desired.scale.contains_key(&version) {
            app.warm = None;
        } else {
            // Kept warm at full scale, reachable only on its preview route.
            let replicas = web(version);
            desired.scale.insert(version, replicas);
            desired.weight.insert(version, 0);
        }
    }
    plan
}

/// Whether a release's web process follows its load (`replicas = { min, max }`).
fn web_scales(release: &Release) -> bool {
    release
        .spec
        .processes
        .get("web")
        .is_some_and(|p| p.scaling.is_some())
}

/// Counts the two releases' web instances for the rollout core. Retiring instances are still "live"
/// until they have drained and stopped (recreate waits for that), but never "ready".
pub(crate) fn observe(
    instances: &[Managed],
    from: Option<Version>,
    to: Version,
    to_workers: u32,
) -> Observed {
    let mut seen = Observed::default();
    let workers_ready = instances
        .iter()
        .filter(|m| !m.is_web() && m.release == to && !m.retiring && m.is_ready())
        .count() as u32;
    seen.to_workers_pending = workers_ready < to_workers;
    for m in instances.iter().filter(|m| m.is_web()) {
        let ready = u32::from(m.serving());
        if Some(m.release) == from {
            seen.ready_from += ready;
            seen.live_from += 1;
        } else if m.release == to {
            seen.ready_to += ready;
            seen.live_to += 1;
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::app_scaling::AppScaling;
    use crate::control::app_state::ActiveRollout;
    use crate::control::test_support::{instance, release};
    use slipway_core::rollout::Rollout;

    const SCALED: &str = "[processes.web]\ncmd = \"serve\"\nreplicas = { min = 0, max = 8 }\nautoscale = { concurrency = 10 }\n[processes.worker]\ncmd = \"work\"\n[deploy]\nstrategy = \"canary\"\nsteps = [{ weight = 50 }, { pause = {} }]\n";

    fn releases() -> Releases {
        [1, 2]
            .into_iter()
            .map(|v| (("shop".to_string(), v), release("shop", v, SCALED)))
            .collect()
    }

    fn scaled_app(count: u32) -> AppState {
        let settings = releases()[&("shop".to_string(), 1)].spec.processes["web"]
            .scaling
            .clone()
            .expect("scaling");
        AppState {
            stable: Some(1),
            scaling: Some(AppScaling::new(settings, count, 0)),
            ..AppState::default()
        }
    }

    fn serving(id: &str, release: Version, seq: u64) -> Managed {
        let mut m = instance(id, release, "web", true, seq);
        m.backend = Some(slipway_proxy::Backend::new(id, ([127, 0, 0, 1], 1).into()));
        m
    }

    #[test]
    fn an_autoscaled_stable_release_runs_the_scalers_count_and_sleeps_at_zero() {
        let releases = releases();
        let mut app = scaled_app(3);
        let plan = plan_app("shop", &mut app, &releases, 0);
        assert_eq!(plan.desired.scale[&1], 3);
        assert_eq!(plan.desired.asleep, None);
        let mut asleep = scaled_app(0);
        let plan = plan_app("shop", &mut asleep, &releases, 0);
        assert_eq!(plan.desired.scale[&1], 0);
        assert_eq!(plan.desired.asleep, Some(1), "its worker keeps running");
        let wanted = crate::control::instance_plan::wanted("shop", &plan.desired, &releases);
        assert!(wanted.contains(&(1, "worker".to_string(), 1)), "{wanted:?}");
        assert!(wanted.contains(&(1, "web".to_string(), 0)), "{wanted:?}");
    }

    #[test]
    fn a_canary_and_its_stable_release_share_the_count_by_weight() {
        let releases = releases();
        let mut app = scaled_app(4);
        let strategy = releases[&("shop".to_string(), 2)]
            .spec
            .deploy
            .strategy
            .clone();
        let machine = Rollout::new("shop", Some((1, 4)), 2, 4, strategy, 0, 60_000);
        app.rollout = Some(ActiveRollout::new(1, machine, false));
        app.instances = (0..4)
            .map(|i| serving(&format!("v1-{i}"), 1, i))
            .chain((0..2).map(|i| serving(&format!("v2-{i}"), 2, 10 + i)))
            .collect();
        let plan = plan_app("shop", &mut app, &releases, 1_000);
        // At 50 %: two canary instances, and the stable release down to its half.
        assert_eq!(plan.desired.weight[&2], 50);
        assert_eq!(plan.desired.scale[&2], 2);
        assert_eq!(plan.desired.scale[&1], 2);
        // Scaled up meanwhile: the canary grows to its half; until it is ready its two instances
        // carry a quarter, and the stable release the other three quarters.
        app.scaling.as_mut().expect("scaling").scaler.replicas = 8;
        let plan = plan_app("shop", &mut app, &releases, 2_000);
        assert_eq!(plan.desired.weight[&2], 25);
        assert_eq!((plan.desired.scale[&1], plan.desired.scale[&2]), (6, 4));
    }
}
