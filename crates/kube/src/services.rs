//! The Services slipway writes, pure: one per release that a gateway weights (selecting exactly that
//! release's web pods), and the app's stable Service (`[kubernetes] service`), whose selector follows
//! the release that has all the traffic — blue-green by selector for clients inside the cluster.
//! `route_writer.rs` applies them.

use crate::names::{self, Key};
use serde_json::{Value, json};

/// A release's Service: the gateway's backend for it. Its selector is the release's web pods (the
/// owner's label included, so another daemon's pods are never selected).
pub fn release_service(key: &Key, owner: &str, port: u16) -> Value {
    let mut labels = key.selector(owner);
    labels.insert(names::MANAGED_BY.to_owned(), "slipway".to_owned());
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": key.service_name(owner), "labels": labels},
        "spec": {
            "selector": key.selector(owner),
            "ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": port}],
        },
    })
}

/// Which release the stable Service selects, given each release's weight and the release it
/// selects now: the release that has all the traffic; while traffic is split (a canary), the one it
/// selects already if that still gets some, else the oldest that does. `None`: leave it as it is
/// (no release gets traffic).
pub fn selected(weights: &[(u64, u32)], current: Option<u64>) -> Option<u64> {
    let live: Vec<u64> = weights
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(v, _)| *v)
        .collect();
    match live.as_slice() {
        [] => None,
        [only] => Some(*only),
        _ if current.is_some_and(|c| live.contains(&c)) => current,
        _ => live.iter().min().copied(),
    }
}

/// What slipway applies to the stable Service `name` so that it selects `key`'s pods. A Service
/// slipway made itself (`made`, or none there yet) is all slipway's: labels, selector, and a port
/// to the web port. Someone else's keeps its ports and everything else: slipway applies the
/// selector only (and takes it over, forced — the config named this Service for that).
pub fn stable_service(name: &str, key: &Key, owner: &str, port: u16, made: bool) -> Value {
    let mut service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": key.selector(owner)},
    });
    if made {
        service["metadata"]["labels"] = json!({
            names::MANAGED_BY: "slipway",
            names::OWNER: owner,
            names::APP: key.app,
        });
        service["spec"]["ports"] =
            json!([{"name": "http", "protocol": "TCP", "port": port, "targetPort": port}]);
    }
    service
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(release: u64) -> Key {
        Key {
            app: "shop".into(),
            release,
            process: "web".into(),
        }
    }

    #[test]
    fn a_release_service_selects_that_release_s_web_pods_only() {
        let s = release_service(&key(3), "o", 8080);
        assert_eq!(s["metadata"]["name"], key(3).service_name("o"));
        assert_eq!(s["spec"]["selector"][names::RELEASE], "3");
        assert_eq!(s["spec"]["selector"][names::PROCESS], "web");
        assert_eq!(s["spec"]["selector"][names::OWNER], "o");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(s["metadata"]["labels"][names::MANAGED_BY], "slipway");
    }

    #[test]
    fn the_selector_follows_the_release_with_all_the_traffic() {
        // Blue-green: before the switch, then after it.
        assert_eq!(selected(&[(1, 100), (2, 0)], Some(1)), Some(1));
        assert_eq!(selected(&[(1, 0), (2, 100)], Some(1)), Some(2));
        // A canary's split keeps it where it is, and a revert brings it back.
        assert_eq!(selected(&[(1, 50), (2, 50)], Some(1)), Some(1));
        assert_eq!(selected(&[(1, 10), (2, 90)], Some(1)), Some(1));
        assert_eq!(selected(&[(1, 10), (2, 90)], Some(2)), Some(2));
        assert_eq!(selected(&[(1, 100), (2, 0)], Some(2)), Some(1));
        // A first split (a daemon restarted mid-canary): the oldest release with traffic.
        assert_eq!(selected(&[(1, 50), (2, 50)], None), Some(1));
        assert_eq!(selected(&[(3, 1)], None), Some(3));
        // Nothing gets traffic (recreate's gap): unchanged.
        assert_eq!(selected(&[(1, 0), (2, 0)], Some(1)), None);
    }

    #[test]
    fn someone_else_s_service_gets_only_the_selector() {
        let theirs = stable_service("shop", &key(2), "o", 8080, false);
        assert_eq!(theirs["spec"]["selector"][names::RELEASE], "2");
        assert!(theirs["spec"].get("ports").is_none());
        assert!(theirs["metadata"].get("labels").is_none());
        let ours = stable_service("shop", &key(2), "o", 8080, true);
        assert_eq!(ours["spec"]["ports"][0]["port"], 8080);
        assert_eq!(ours["metadata"]["labels"][names::MANAGED_BY], "slipway");
    }
}
