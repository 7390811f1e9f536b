//! Before a release's web pods go, for an app a gateway or a Service routes: waits until nothing
//! the API server holds still sends it traffic — the app's HTTPRoute, as applied, no longer names
//! the release, the stable Service no longer selects it — and, for a route, until the gateway has
//! read that route (`route_status.rs`). The daemon then waits the app's `traffic_lag`, for the
//! gateway's data plane (or kube-proxy) to act on it, and drains and removes the pods.
//!
//! Every wait is bounded: what did not happen in time is returned as a note for the rollout's
//! events, and the pods go anyway (a gateway that never answers must not keep them forever).

use crate::route_status::{self, Reported};
use crate::route_writer::RouteWriter;
use kube::Api;
use kube::api::DynamicObject;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// How often the route's status is read while the gateway is behind.
const STATUS_POLL: Duration = Duration::from_millis(250);

impl RouteWriter {
    /// Waits (at most `limit`) until `app`'s release `release` gets no traffic by what slipway wrote.
    /// `Ok`: confirmed (with a note when the gateway never reports on the route, so only the delay
    /// covers it); `Err`: what was still not confirmed at `limit`.
    pub async fn unrouted(
        &self,
        app: &str,
        release: u64,
        limit: Duration,
    ) -> Result<Option<String>, String> {
        let deadline = Instant::now() + limit;
        let mut changed = self.landed.changed.subscribe();
        let route = loop {
            // Seen before the read: a write landing after it wakes the wait below.
            changed.borrow_and_update();
            let landed = self
                .landed
                .apps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(app)
                .cloned()
                .unwrap_or_default();
            if let Some(still) = landed.still_routes(release) {
                match tokio::time::timeout_at(deadline, changed.changed()).await {
                    Ok(Ok(())) => continue,
                    _ => return Err(format!("v{release} was still {still} after {limit:?}")),
                }
            }
            break landed.route;
        };
        let Some(route) = route else {
            return Ok(None);
        };
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &route.namespace,
            &crate::http_route::resource(),
        );
        let gateway = match &route.target.gateway_namespace {
            Some(ns) => format!("{ns}/{}", route.target.gateway),
            None => route.target.gateway.clone(),
        };
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let read = match api.get(&route.target.route).await {
                // A role made before slipway read routes: waiting would not help, saying so does.
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    return Ok(Some(format!(
                        "cannot read HTTPRoute {} for the gateway's status (forbidden):                          `slipway kube rbac --gateway` grants `get` on HTTPRoutes; only the                          traffic_lag delay covers the gateway's reload",
                        route.target.route
                    )));
                }
                read => read
                    .map_err(|e| format!("cannot read HTTPRoute {}: {e}", route.target.route))
                    .and_then(|o| serde_json::to_value(o).map_err(|e| e.to_string())),
            };
            let reported = read.as_ref().map(|r| {
                route_status::reported(
                    r,
                    &route.namespace,
                    route.target.gateway_namespace.as_deref(),
                    &route.target.gateway,
                    route.generation,
                )
            });
            let behind = match &reported {
                Ok(Reported::Seen { accepted: true }) => return Ok(None),
                Ok(Reported::Seen { accepted: false }) => {
                    return Ok(Some(format!(
                        "gateway {gateway} did not accept HTTPRoute {} (its status says Accepted: False)",
                        route.target.route
                    )));
                }
                Ok(Reported::Never) => {
                    return Ok(Some(format!(
                        "gateway {gateway} has not reported on HTTPRoute {} (no status from it): \
                         only the traffic_lag delay covers its reload",
                        route.target.route
                    )));
                }
                &Ok(Reported::Behind { observed }) => format!(
                    "gateway {gateway} had read HTTPRoute {} up to generation {observed}, not {}",
                    route.target.route, route.generation
                ),
                Err(why) => why.to_string(),
            };
            if Instant::now() + STATUS_POLL > deadline {
                return Err(format!("after {limit:?}, {behind}"));
            }
            tokio::time::sleep(STATUS_POLL).await;
        }
    }
}
