//! Builds the proxy's route table from the apps' instances and the weights their plans ask for.
//! Only serving instances (ready, not retiring) are in it; a release at weight 0 stays reachable on its
//! preview route (`X-Slipway-Release: vN` or a `vN.` host prefix).
//!
//! An update costs what changed, not what is routed. [`Routes`] keeps every app's route as last
//! published; each reconcile compares what an app would route now against it — pointers and numbers,
//! no allocation — and builds a new route only for an app that differs. The others go into the new
//! table as the same `Arc`, which the proxy does not compile again (`slipway_proxy::RouteTable`).

use crate::control::app_state::AppState;
use crate::control::desired::Desired;
use slipway_core::release::{Release, Version};
use slipway_core::spec::{RoutingSpec, Sticky, Strategy};
use slipway_proxy::{
    AppRoute, Backend, Demand, InjectedFault, Maintenance, Mirror, ReleaseGroup, ReleaseMetrics,
    RouteRule, RouteTable, ShadowReport,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Every app's route as last published.
#[derive(Default)]
pub(crate) struct Routes {
    by_app: BTreeMap<String, Published>,
    /// Counts the updates, to tell the apps seen in this one from those that left.
    round: u64,
    /// Routes built so far, in all: an update builds only the apps whose route changed.
    pub(crate) built: u64,
}

struct Published {
    /// The release whose routing settings (hosts, prefix, limits) the route carries.
    newest: Version,
    route: Arc<AppRoute>,
    round: u64,
}

impl Routes {
    /// The table to publish, or `None` when no app's route changed since the last one.
    pub(crate) fn update(
        &mut self,
        apps: &BTreeMap<String, AppState>,
        desired: &BTreeMap<String, Desired>,
        releases: &HashMap<(String, Version), Release>,
    ) -> Option<RouteTable> {
        self.round += 1;
        let round = self.round;
        let mut changed = false;
        let mut routed = 0;
        for (name, app) in apps {
            let Some(want) = desired.get(name) else {
                continue;
            };
            // The newest release's routing wins: during a rollout, the release being rolled out.
            let Some(newest) = app.rollout.as_ref().map(|r| r.machine.to).or(app.stable) else {
                continue;
            };
            // Releases never change: the same newest release means the same routing settings.
            if let Some(published) = self.by_app.get_mut(name)
                && published.newest == newest
                && same_route(&published.route, app, want, drill(name, app, releases))
            {
                published.round = round;
                routed += 1;
                continue;
            }
            let Some(release) = releases.get(&(name.clone(), newest)) else {
                continue;
            };
            let drill = drill(name, app, releases);
            let route = Arc::new(route_of(name, app, want, &release.spec.routing, drill));
            self.built += 1;
            changed = true;
            routed += 1;
            self.by_app.insert(
                name.clone(),
                Published {
                    newest,
                    route,
                    round,
                },
            );
        }
        if routed < self.by_app.len() {
            // An app left (deleted, or nothing to route).
            self.by_app.retain(|_, p| p.round == round);
            changed = true;
        }
        changed.then(|| RouteTable {
            apps: self.by_app.values().map(|p| Arc::clone(&p.route)).collect(),
        })
    }
}

/// `slipway drill`: the drill release's requests fail on purpose, only while it is the rollout's
/// canary — once rolled back (or if ever promoted by hand) it serves like any release.
fn drill(
    name: &str,
    app: &AppState,
    releases: &HashMap<(String, Version), Release>,
) -> Option<(Version, InjectedFault)> {
    let r = app.rollout.as_ref()?;
    let fault = releases
        .get(&(name.to_owned(), r.machine.to))?
        .spec
        .drill_fault?;
    Some((r.machine.to, InjectedFault::with_rate(fault.error_rate)))
}

/// The fault injected into `version`'s requests, if it is the drill release.
fn fault_for(drill: Option<(Version, InjectedFault)>, version: Version) -> Option<InjectedFault> {
    drill.filter(|(v, _)| *v == version).map(|(_, f)| f)
}

/// The instances of `version` that get traffic.
fn serving(app: &AppState, version: Version) -> impl Iterator<Item = &Arc<Backend>> {
    app.instances
        .iter()
        .filter(move |m| m.release == version && m.serving())
        .filter_map(|m| m.backend.as_ref())
}

/// A canary's sticky setting.
fn sticky(app: &AppState) -> Option<&Sticky> {
    match &app.rollout.as_ref()?.machine.strategy {
        Strategy::Canary(spec) => spec.sticky.as_ref(),
        _ => None,
    }
}

/// A canary's mirror: its release, percentage and report.
fn mirror(app: &AppState) -> Option<(Version, u32, &Arc<ShadowReport>)> {
    let r = app.rollout.as_ref()?;
    let percent = r.machine.canary.mirror;
    (percent > 0).then_some((r.machine.to, percent, r.shadow.as_ref()?))
}

fn demand(app: &AppState) -> Option<&Arc<Demand>> {
    app.scaling.as_ref()?.demand.as_ref()
}

fn maintenance(app: &AppState) -> Option<&Maintenance> {
    app.maintenance.as_ref().map(|m| &m.proxy)
}

fn same_arc<T: ?Sized>(a: Option<&Arc<T>>, b: Option<&Arc<T>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// Whether `route` (built from the same newest release) is what the app routes now. Backends, counters
/// and reports are compared by identity: a container that moved has a new backend.
fn same_route(
    route: &AppRoute,
    app: &AppState,
    want: &Desired,
    drill: Option<(Version, InjectedFault)>,
) -> bool {
    let same_groups = route.groups.len() == want.weight.len()
        && route
            .groups
            .iter()
            .zip(&want.weight)
            .all(|(group, (&version, &weight))| {
                let mut now = serving(app, version);
                group.release == version
                    && group.weight == weight
                    && group.fault == fault_for(drill, version)
                    && same_arc(app.metrics.get(&version), Some(&group.metrics))
                    && group
                        .backends
                        .iter()
                        .all(|b| now.next().is_some_and(|n| Arc::ptr_eq(b, n)))
                    && now.next().is_none()
            });
    let same_rules = match &app.rollout {
        None => route.routes.is_empty(),
        Some(r) => {
            let rules = &r.machine.canary.routes;
            route.routes.len() == rules.len().min(r.rule_metrics.len())
                && route
                    .routes
                    .iter()
                    .zip(rules.iter().zip(&r.rule_metrics))
                    .all(|(rule, (matcher, metrics))| {
                        rule.release == r.machine.to
                            && rule.matcher == *matcher
                            && Arc::ptr_eq(&rule.metrics, metrics)
                    })
        }
    };
    let same_mirror = match (&route.mirror, mirror(app)) {
        (None, None) => true,
        (Some(m), Some((release, percent, report))) => {
            m.release == release && m.percent == percent && Arc::ptr_eq(&m.report, report)
        }
        _ => false,
    };
    let same_maintenance = match (&route.maintenance, maintenance(app)) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.hold == b.hold
                && a.retry_after == b.retry_after
                && same_arc(a.page.as_ref(), b.page.as_ref())
                && Arc::ptr_eq(&a.held, &b.held)
        }
        _ => false,
    };
    same_groups
        && same_rules
        && same_mirror
        && same_maintenance
        && route.sticky.as_ref() == sticky(app)
        && same_arc(route.demand.as_ref(), demand(app))
}

/// The app's route now.
fn route_of(
    name: &str,
    app: &AppState,
    want: &Desired,
    routing: &RoutingSpec,
    drill: Option<(Version, InjectedFault)>,
) -> AppRoute {
    let groups = want
        .weight
        .iter()
        .map(|(&version, &weight)| ReleaseGroup {
            release: version,
            weight,
            backends: serving(app, version).cloned().collect(),
            metrics: app
                .metrics
                .get(&version)
                .cloned()
                .unwrap_or_else(ReleaseMetrics::new),
            fault: fault_for(drill, version),
        })
        .collect();
    // A canary's routes (A/B, internal testing), sticky users and mirror.
    let routes = match &app.rollout {
        None => Vec::new(),
        Some(r) => r
            .machine
            .canary
            .routes
            .iter()
            .zip(&r.rule_metrics)
            .map(|(matcher, metrics)| RouteRule {
                matcher: matcher.clone(),
                release: r.machine.to,
                metrics: metrics.clone(),
            })
            .collect(),
    };
    AppRoute {
        app: name.to_owned(),
        hosts: routing.hosts.clone(),
        path_prefix: routing.path_prefix.clone(),
        groups,
        routes,
        sticky: sticky(app).cloned(),
        mirror: mirror(app).map(|(release, percent, report)| Mirror {
            release,
            percent,
            report: report.clone(),
        }),
        max_body_size: routing.max_body_size,
        redirect_https: routing.redirect_https,
        hsts_max_age: routing.hsts_max_age,
        demand: demand(app).cloned(),
        maintenance: maintenance(app).cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::app_state::ActiveRollout;
    use crate::control::managed::Managed;
    use crate::control::test_support::{instance, release};
    use slipway_core::rollout::Rollout;
    use slipway_core::spec::DrillFault;

    type World = (
        BTreeMap<String, AppState>,
        BTreeMap<String, Desired>,
        HashMap<(String, Version), Release>,
    );

    /// `apps` apps of `per` ready web instances each, all on release 1 at weight 100.
    fn world(apps: usize, per: usize) -> World {
        let (mut states, mut desired, mut releases) =
            (BTreeMap::new(), BTreeMap::new(), HashMap::new());
        for a in 0..apps {
            let name = format!("app{a}");
            let mut state = AppState {
                stable: Some(1),
                ..AppState::default()
            };
            state.metrics.insert(1, ReleaseMetrics::new());
            for i in 0..per {
                let mut m = instance(&format!("{name}-{i}"), 1, "web", true, i as u64);
                let port = 10_000 + (a * per + i) as u16;
                m.backend = Some(Backend::new(m.id.clone(), ([127, 0, 0, 1], port).into()));
                state.instances.push(m);
            }
            states.insert(name.clone(), state);
            desired.insert(
                name.clone(),
                Desired {
                    weight: BTreeMap::from([(1, 100)]),
                    ..Desired::default()
                },
            );
            let toml =
                format!("[routing]\nhosts = [\"{name}.test\"]\n[processes.web]\ncmd = \"serve\"");
            releases.insert((name.clone(), 1), release(&name, 1, &toml));
        }
        (states, desired, releases)
    }

    #[test]
    fn an_update_builds_only_the_apps_that_changed() {
        let (mut apps, desired, releases) = world(100, 10);
        let mut routes = Routes::default();
        let first = routes
            .update(&apps, &desired, &releases)
            .expect("a first table");
        assert_eq!((first.apps.len(), routes.built), (100, 100));
        assert_eq!(first.apps[0].groups[0].backends.len(), 10);

        assert!(
            routes.update(&apps, &desired, &releases).is_none(),
            "nothing changed: nothing to publish"
        );
        assert_eq!(routes.built, 100);

        // One instance of one app leaves the table (retiring).
        apps.get_mut("app42").unwrap().instances[3].retiring = true;
        let second = routes.update(&apps, &desired, &releases).expect("a change");
        assert_eq!(routes.built, 101, "one app built again, not a hundred");
        let rebuilt: Vec<_> = first
            .apps
            .iter()
            .zip(&second.apps)
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .map(|(_, b)| b.app.as_str())
            .collect();
        assert_eq!(rebuilt, ["app42"]);
        let app42 = second.apps.iter().find(|a| a.app == "app42").unwrap();
        assert_eq!(app42.groups[0].backends.len(), 9);
    }

    #[test]
    fn weights_maintenance_and_leaving_apps_are_changes() {
        let (mut apps, mut desired, releases) = world(3, 2);
        let mut routes = Routes::default();
        routes
            .update(&apps, &desired, &releases)
            .expect("a first table");

        desired.get_mut("app1").unwrap().weight.insert(1, 50);
        let table = routes
            .update(&apps, &desired, &releases)
            .expect("a new weight");
        assert_eq!(routes.built, 4);
        assert_eq!(table.apps[1].groups[0].weight, 50);

        apps.get_mut("app2").unwrap().maintenance = Some(
            slipway_store::MaintenanceRecord {
                app: "app2".into(),
                since: 0,
                reason: None,
                hold_ms: 1_000,
                page: None,
                retry_after: 5,
                set_by: "test".into(),
            }
            .into(),
        );
        let table = routes
            .update(&apps, &desired, &releases)
            .expect("maintenance");
        assert_eq!(routes.built, 5);
        assert!(table.apps[2].maintenance.is_some());

        desired.remove("app0");
        let table = routes
            .update(&apps, &desired, &releases)
            .expect("an app left");
        assert_eq!(routes.built, 5, "leaving builds nothing");
        let names: Vec<_> = table.apps.iter().map(|a| a.app.as_str()).collect();
        assert_eq!(names, ["app1", "app2"]);
        assert!(routes.update(&apps, &desired, &releases).is_none());
    }

    const CANARY: &str = "[processes.web]\ncmd = \"serve\"\n[deploy]\nstrategy = \"canary\"\nsteps = [{ weight = 5 }, { pause = {} }]\n";

    fn serving_instance(id: &str, release: Version, seq: u64) -> Managed {
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
            instances: vec![
                serving_instance("v1-0", 1, 0),
                serving_instance("v2-0", 2, 1),
            ],
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
        let mut routes = Routes::default();
        let table = routes
            .update(&apps, &desired, &releases)
            .expect("a first table");
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
        let table = routes
            .update(&apps, &desired, &releases)
            .expect("the table changed");
        assert_eq!(fault_of(&table, 2), None);
    }
}
