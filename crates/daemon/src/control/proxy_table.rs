//! Builds the proxy's route table from the apps' instances and the weights their plans ask for.
//! Only serving instances (ready, not retiring) are in it; a release at weight 0 stays reachable on its
//! preview route (`X-Slipway-Release: vN` or a `vN.` host prefix).

use crate::control::app_state::AppState;
use crate::control::desired::Desired;
use slipway_core::release::{Release, Version};
use slipway_core::spec::Strategy;
use slipway_proxy::{
    AppRoute, InjectedFault, Mirror, ReleaseGroup, ReleaseMetrics, RouteRule, RouteTable,
};
use std::collections::{BTreeMap, HashMap};

/// What a table routes, to publish only when it changed.
pub type Signature = Vec<(
    String,
    Vec<String>,
    String,
    Vec<(Version, u32, Vec<String>)>,
    String,
)>;

pub fn build(
    apps: &BTreeMap<String, AppState>,
    desired: &BTreeMap<String, Desired>,
    releases: &HashMap<(String, Version), Release>,
) -> (RouteTable, Signature) {
    let mut table = RouteTable { apps: Vec::new() };
    let mut signature = Vec::new();
    for (name, app) in apps {
        let Some(want) = desired.get(name) else {
            continue;
        };
        // The newest release's routing wins: during a rollout, the release being rolled out.
        let newest = app.rollout.as_ref().map(|r| r.machine.to).or(app.stable);
        let Some(routing) = newest
            .and_then(|v| releases.get(&(name.clone(), v)))
            .map(|r| r.spec.routing.clone())
        else {
            continue;
        };
        // `slipway drill`: the drill release's requests fail on purpose, only while it is the rollout's
        // canary — once rolled back (or if ever promoted by hand) it serves like any release.
        let drill = app.rollout.as_ref().and_then(|r| {
            let fault = releases
                .get(&(name.clone(), r.machine.to))?
                .spec
                .drill_fault?;
            Some((r.machine.to, InjectedFault::with_rate(fault.error_rate)))
        });
        let mut groups = Vec::new();
        let mut sig_groups = Vec::new();
        for (&version, &weight) in &want.weight {
            let backends: Vec<_> = app
                .instances
                .iter()
                .filter(|m| m.release == version && m.serving())
                .filter_map(|m| m.backend.clone())
                .collect();
            sig_groups.push((
                version,
                weight,
                // With the address: a container replaced after a crash answers elsewhere.
                backends
                    .iter()
                    .map(|b| format!("{}@{}", b.id, b.addr))
                    .collect(),
            ));
            groups.push(ReleaseGroup {
                release: version,
                weight,
                backends,
                metrics: app
                    .metrics
                    .get(&version)
                    .cloned()
                    .unwrap_or_else(ReleaseMetrics::new),
                fault: drill.filter(|(v, _)| *v == version).map(|(_, f)| f),
            });
        }
        // A canary's routes (A/B, internal testing), sticky users and mirror.
        let (mut routes, mut sticky, mut mirror) = (Vec::new(), None, None);
        if let Some(r) = &app.rollout {
            let to = r.machine.to;
            routes = r
                .machine
                .canary
                .routes
                .iter()
                .zip(&r.rule_metrics)
                .map(|(matcher, metrics)| RouteRule {
                    matcher: matcher.clone(),
                    release: to,
                    metrics: metrics.clone(),
                })
                .collect();
            if let Strategy::Canary(spec) = &r.machine.strategy {
                sticky = spec.sticky.clone();
            }
            if let (true, Some(report)) = (r.machine.canary.mirror > 0, &r.shadow) {
                mirror = Some(Mirror {
                    release: to,
                    percent: r.machine.canary.mirror,
                    report: report.clone(),
                });
            }
        }
        let demand = app.scaling.as_ref().and_then(|s| s.demand.clone());
        let maintenance = app.maintenance.as_ref().map(|m| m.proxy.clone());
        let extras = format!(
            "{:?} {:?} {:?} {:?} {:?} {} {:?} {:?} {:?}",
            drill,
            routes.iter().map(|r| &r.matcher).collect::<Vec<_>>(),
            sticky,
            mirror.as_ref().map(|m| m.percent),
            routing.max_body_size,
            routing.redirect_https,
            routing.hsts_max_age,
            // The demand by identity: new settings make a new one.
            demand.as_ref().map(std::sync::Arc::as_ptr),
            maintenance.as_ref().map(|m| (
                m.hold,
                m.retry_after,
                m.page.as_ref().map(|p| p.as_ptr())
            )),
        );
        signature.push((
            name.clone(),
            routing.hosts.clone(),
            routing.path_prefix.clone(),
            sig_groups,
            extras,
        ));
        table.apps.push(AppRoute {
            app: name.clone(),
            hosts: routing.hosts,
            path_prefix: routing.path_prefix,
            groups,
            routes,
            sticky,
            mirror,
            max_body_size: routing.max_body_size,
            redirect_https: routing.redirect_https,
            hsts_max_age: routing.hsts_max_age,
            demand,
            maintenance,
        });
    }
    (table, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::app_state::ActiveRollout;
    use crate::control::managed::Managed;
    use crate::control::test_support::{instance, release};
    use slipway_core::rollout::Rollout;
    use slipway_core::spec::DrillFault;

    const CANARY: &str = "[processes.web]\ncmd = \"serve\"\n[deploy]\nstrategy = \"canary\"\nsteps = [{ weight = 5 }, { pause = {} }]\n";

    fn serving(id: &str, release: Version, seq: u64) -> Managed {
        let mut m = instance(id, release, "web", true, seq);
        m.backend = Some(slipway_proxy::Backend::new(id, ([127, 0, 0, 1], 1).into()));
        m
    }

    fn fault_of(table: &RouteTable, version: Version) -> Option<InjectedFault> {
        let group = table.apps[0].groups.iter().find(|g| g.release == version);
        group.expect("the release is routed").fault
    }

    #[test]
    fn a_drill_release_fails_on_purpose_only_while_it_is_the_canary() {
        let mut drill = release("shop", 2, CANARY);
        drill.spec.drill_fault = Some(DrillFault { error_rate: 0.5 });
        let releases: HashMap<_, _> = [
            (("shop".to_string(), 1), release("shop", 1, CANARY)),
            (("shop".to_string(), 2), drill.clone()),
        ]
        .into_iter()
        .collect();
        let mut app = AppState {
            stable: Some(1),
            instances: vec![serving("v1-0", 1, 0), serving("v2-0", 2, 1)],
            ..AppState::default()
        };
        let machine = Rollout::new(
            "shop",
            Some((1, 1)),
            2,
            1,
            drill.spec.deploy.strategy,
            0,
            60_000,
        );
        app.rollout = Some(ActiveRollout::new(1, machine, false));
        let want = Desired {
            weight: BTreeMap::from([(1, 95), (2, 5)]),
            ..Desired::default()
        };
        let apps = BTreeMap::from([("shop".to_string(), app)]);
        let desired = BTreeMap::from([("shop".to_string(), want)]);
        let (table, during) = build(&apps, &desired, &releases);
        assert_eq!(fault_of(&table, 2), Some(InjectedFault::with_rate(0.5)));
        assert_eq!(
            fault_of(&table, 1),
            None,
            "the stable release is never failed"
        );

        // Rolled back: the rollout is over, the release left at weight 0 (draining) serves plainly,
        // and the table changed, so it is published again.
        let mut apps = apps;
        apps.get_mut("shop").expect("app").rollout = None;
        let (table, after) = build(&apps, &desired, &releases);
        assert_eq!(fault_of(&table, 2), None);
        assert_ne!(during, after);
    }
}
