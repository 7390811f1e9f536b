//! What the API server holds of an app's traffic as slipway last wrote it: the route's generation
//! and the releases it sends requests to, the release the stable Service selects. The route writer
//! (`route_writer.rs`) records it after each write that succeeded; `unrouted.rs` waits on it before
//! a release that left the traffic loses its pods.

use crate::http_route::RouteTarget;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What the API server has accepted for one app (`unrouted.rs` waits on it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Landed {
    /// A write of the app's traffic has succeeded since this daemon started.
    pub(crate) written: bool,
    /// The app's route as last applied: where it is, the releases it names, its `generation`.
    pub(crate) route: Option<LandedRoute>,
    /// The release the stable Service selects.
    pub(crate) selects: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct LandedRoute {
    pub(crate) namespace: String,
    pub(crate) target: RouteTarget,
    /// Releases it sends requests to: a weight above 0, a header rule or the mirror.
    pub(crate) carries: BTreeSet<u64>,
    pub(crate) generation: i64,
}

/// Every app's [`Landed`], and a counter bumped at each change (for waiters).
#[derive(Clone)]
pub(crate) struct Landings {
    pub(crate) apps: Arc<Mutex<BTreeMap<String, Landed>>>,
    pub(crate) changed: watch::Sender<u64>,
}

impl Default for Landings {
    fn default() -> Landings {
        Landings {
            apps: Arc::default(),
            changed: watch::Sender::new(0),
        }
    }
}

impl Landings {
    pub(crate) fn update(&self, app: &str, change: impl FnOnce(&mut Landed)) {
        change(
            self.apps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(app.to_owned())
                .or_default(),
        );
        self.changed.send_modify(|n| *n += 1);
    }
}

impl Landed {
    /// What still sends `release` requests as far as the API server holds, if anything.
    pub(crate) fn still_routes(&self, release: u64) -> Option<&'static str> {
        if self
            .route
            .as_ref()
            .is_some_and(|r| r.carries.contains(&release))
        {
            Some("weighted by the app's HTTPRoute")
        } else if self.selects == Some(release) {
            Some("selected by the app's Service")
        } else if !self.written {
            // Nothing written yet since this daemon started: the first write is on its way.
            Some("not yet written out of the app's route")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(carries: &[u64]) -> LandedRoute {
        LandedRoute {
            namespace: "shop".into(),
            target: RouteTarget {
                route: "shop".into(),
                gateway_namespace: None,
                gateway: "edge".into(),
                hostnames: Vec::new(),
                path_prefix: "/".into(),
            },
            carries: carries.iter().copied().collect(),
            generation: 3,
        }
    }

    #[test]
    fn a_release_is_routed_while_the_route_carries_it_or_the_service_selects_it() {
        let nothing = Landed::default();
        assert!(nothing.still_routes(1).is_some(), "nothing written yet");
        let landed = Landed {
            written: true,
            route: Some(route(&[2])),
            selects: Some(1),
        };
        assert!(landed.still_routes(2).unwrap().contains("HTTPRoute"));
        assert!(landed.still_routes(1).unwrap().contains("Service"));
        assert_eq!(landed.still_routes(3), None);
        let service_only = Landed {
            written: true,
            route: None,
            selects: None,
        };
        assert_eq!(service_only.still_routes(1), None);
    }
}
