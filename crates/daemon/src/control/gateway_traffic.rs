//! The weights the rollout decided (`desired.rs`), for the apps a gateway routes on Kubernetes
//! (`[kubernetes] gateway` or `service`): what their HTTPRoute and Services should say, for
//! `slipway-kube`'s route writer. Pure. The proxy's table (`proxy_table.rs`) gets the same weights;
//! a gateway app stays reachable through slipway's proxy too (previews, `X-Slipway-Release`).
//!
//! Analysis on slipway's own counters sees only what passes through its proxy: an app routed by a
//! gateway judges its canary with `prometheus` checks on the gateway's metrics (docs/kubernetes.md).

use crate::control::app_state::AppState;
use crate::control::desired::{Desired, Releases};
use slipway_kube::http_route::RouteTarget;
use slipway_kube::{AppTraffic, ReleaseMatch, ReleaseMirror, ReleaseTraffic};
use std::collections::BTreeMap;

pub(crate) fn plan(
    apps: &BTreeMap<String, AppState>,
    desired: &BTreeMap<String, Desired>,
    releases: &Releases,
) -> Vec<AppTraffic> {
    let mut plan = Vec::new();
    for (name, app) in apps {
        let Some(want) = desired.get(name).filter(|d| !d.weight.is_empty()) else {
            continue;
        };
        // The newest release's settings win, as for the proxy's routing.
        let newest = app.rollout.as_ref().map(|r| r.machine.to).or(app.stable);
        let Some(spec) = newest
            .and_then(|v| releases.get(&(name.clone(), v)))
            .map(|r| &r.spec)
        else {
            continue;
        };
        let k = &spec.kubernetes;
        if k.gateway.is_none() && k.service.is_none() {
            continue;
        }
        let web_port = |v| {
            releases
                .get(&(name.clone(), v))?
                .spec
                .processes
                .get("web")?
                .container
                .as_ref()
                .map(|c| c.port)
        };
        let mut traffic: Vec<ReleaseTraffic> = want
            .weight
            .iter()
            .filter_map(|(&release, &weight)| {
                Some(ReleaseTraffic {
                    release,
                    weight,
                    port: web_port(release)?,
                })
            })
            .collect();
        // A canary's routes and mirror, as the proxy gets them (`proxy_table.rs`).
        let canary = app
            .rollout
            .as_ref()
            .map(|r| (r.machine.to, &r.machine.canary));
        let matches: Vec<ReleaseMatch> = canary
            .map(|(to, c)| {
                c.routes
                    .iter()
                    .map(|m| ReleaseMatch {
                        release: to,
                        headers: m.headers.clone().into_iter().collect(),
                        // More than one is refused at deploy for a gateway app (`ops/deploy.rs`).
                        cookie: m.cookies.clone().into_iter().next(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mirror = canary
            .filter(|(_, c)| c.mirror > 0)
            .map(|(to, c)| ReleaseMirror {
                release: to,
                percent: c.mirror,
            });
        // The canary needs its Service in the route's reach even at weight 0.
        if let Some((to, _)) = canary.filter(|_| !matches.is_empty() || mirror.is_some())
            && !traffic.iter().any(|r| r.release == to)
            && let Some(port) = web_port(to)
        {
            traffic.push(ReleaseTraffic {
                release: to,
                weight: 0,
                port,
            });
        }
        plan.push(AppTraffic {
            app: name.clone(),
            releases: traffic,
            gateway: k.gateway.as_ref().map(|g| RouteTarget {
                route: g.route.clone(),
                gateway_namespace: g.namespace.clone(),
                gateway: g.name.clone(),
                hostnames: spec.routing.hosts.clone(),
                path_prefix: spec.routing.path_prefix.clone(),
            }),
            service: k.service.clone(),
            namespace: k.namespace.clone(),
            matches,
            mirror,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_release::release;

    const WEB: &str = "[processes.web]\nimage = \"shop\"\nport = 9000\n";

    fn releases(newest: &str) -> Releases {
        let mut all = Releases::new();
        all.insert(("shop".into(), 1), release("shop", 1, WEB));
        all.insert(
            ("shop".into(), 2),
            release("shop", 2, &format!("{WEB}{newest}")),
        );
        all
    }

    fn plan_for(newest: &str, weights: &[(u64, u32)]) -> Vec<AppTraffic> {
        let app = AppState {
            stable: Some(2),
            ..AppState::default()
        };
        let apps = BTreeMap::from([("shop".to_owned(), app)]);
        let desired = Desired {
            weight: weights.iter().copied().collect(),
            ..Desired::default()
        };
        let desired = BTreeMap::from([("shop".to_owned(), desired)]);
        plan(&apps, &desired, &releases(newest))
    }

    #[test]
    fn a_gateway_app_gets_the_rollout_s_weights_and_its_routing() {
        let plan = plan_for(
            "[routing]\nhosts = [\"shop.example\"]\n[kubernetes]\ngateway = \"infra/edge\"\nservice = \"shop\"\n",
            &[(1, 90), (2, 10)],
        );
        assert_eq!(plan.len(), 1);
        let t = &plan[0];
        let weights: Vec<_> = t
            .releases
            .iter()
            .map(|r| (r.release, r.weight, r.port))
            .collect();
        assert_eq!(weights, [(1, 90, 9000), (2, 10, 9000)]);
        let target = t.gateway.as_ref().unwrap();
        assert_eq!(target.route, "shop");
        assert_eq!(target.gateway_namespace.as_deref(), Some("infra"));
        assert_eq!(target.hostnames, ["shop.example"]);
        assert_eq!(target.path_prefix, "/");
        assert_eq!(t.service.as_deref(), Some("shop"));
    }

    #[test]
    fn apps_the_proxy_routes_alone_or_with_nothing_to_route_are_left_out() {
        assert!(plan_for("", &[(2, 1)]).is_empty());
        assert!(plan_for("[kubernetes]\nservice = \"shop\"\n", &[]).is_empty());
        let only_service = plan_for("[kubernetes]\nservice = \"shop\"\n", &[(2, 1)]);
        assert!(only_service[0].gateway.is_none());
    }

    #[test]
    fn a_canary_s_routes_and_mirror_go_to_its_release_which_the_route_can_reach_at_weight_0() {
        use crate::control::app_state::ActiveRollout;
        use slipway_core::spec::{CanarySpec, RouteMatch, Strategy};
        let canary = Strategy::Canary(CanarySpec {
            steps: Vec::new(),
            sticky: None,
            background_analysis: None,
        });
        let mut machine =
            slipway_core::rollout::Rollout::new("shop", Some((1, 1)), 2, 1, canary, 0, 60_000);
        machine.canary.routes = vec![RouteMatch {
            headers: [("x-beta".to_owned(), "1".to_owned())].into(),
            cookies: [("beta".to_owned(), "yes".to_owned())].into(),
        }];
        machine.canary.mirror = 20;
        let app = AppState {
            stable: Some(1),
            rollout: Some(ActiveRollout::new(1, machine, false)),
            ..AppState::default()
        };
        let apps = BTreeMap::from([("shop".to_owned(), app)]);
        let desired = Desired {
            weight: [(1, 100)].into(),
            ..Desired::default()
        };
        let desired = BTreeMap::from([("shop".to_owned(), desired)]);
        let plan = plan(
            &apps,
            &desired,
            &releases("[kubernetes]\ngateway = \"edge\"\n"),
        );
        let t = &plan[0];
        let weights: Vec<_> = t.releases.iter().map(|r| (r.release, r.weight)).collect();
        assert_eq!(
            weights,
            [(1, 100), (2, 0)],
            "v2's Service is written for its rule"
        );
        assert_eq!(t.matches.len(), 1);
        assert_eq!(t.matches[0].release, 2);
        assert_eq!(
            t.matches[0].headers,
            [("x-beta".to_owned(), "1".to_owned())]
        );
        assert_eq!(
            t.matches[0].cookie,
            Some(("beta".to_owned(), "yes".to_owned()))
        );
        assert_eq!(
            t.mirror,
            Some(ReleaseMirror {
                release: 2,
                percent: 20
            })
        );
    }
}
