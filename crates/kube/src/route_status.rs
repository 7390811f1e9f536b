//! What a gateway says about an HTTPRoute: its controller writes one `status.parents[]` entry per
//! Gateway the route attaches to, whose `Accepted` condition carries the route's `generation` it
//! has read (`observedGeneration`). Pure: read from the route as the API server returns it;
//! `unrouted.rs` polls it before a release's pods go.
//!
//! The status says the gateway has *seen* a generation, not that its data plane already sends
//! traffic by it (Traefik, for one, batches reloads): `[kubernetes] traffic_lag` after it covers that.

use serde_json::Value;

/// How far the gateway's report on a route has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// The gateway has read this generation or a newer one (`accepted`: whether it took the route).
    Seen { accepted: bool },
    /// The gateway reported an older generation: it has not read the write yet.
    Behind { observed: i64 },
    /// The route has no status from this gateway: no controller serves it (or has not yet).
    Never,
}

/// What the route's status says for the Gateway `gateway` in `gateway_namespace` (the route's
/// namespace is `route_namespace`) about `generation`.
pub fn reported(
    route: &Value,
    route_namespace: &str,
    gateway_namespace: Option<&str>,
    gateway: &str,
    generation: i64,
) -> Reported {
    let want_namespace = gateway_namespace.unwrap_or(route_namespace);
    let parents = route["status"]["parents"].as_array();
    let Some(entry) = parents.into_iter().flatten().find(|p| {
        let r = &p["parentRef"];
        r["name"].as_str() == Some(gateway)
            && r["namespace"].as_str().unwrap_or(route_namespace) == want_namespace
            && r["kind"].as_str().unwrap_or("Gateway") == "Gateway"
    }) else {
        return Reported::Never;
    };
    let accepted = entry["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"].as_str() == Some("Accepted"));
    let Some(accepted) = accepted else {
        return Reported::Never;
    };
    // A condition without `observedGeneration` says nothing about which write it is about.
    let observed = accepted["observedGeneration"].as_i64().unwrap_or(0);
    if observed >= generation {
        Reported::Seen {
            accepted: accepted["status"].as_str() == Some("True"),
        }
    } else {
        Reported::Behind { observed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(parents: Value) -> Value {
        json!({"metadata": {"generation": 4}, "status": {"parents": parents}})
    }

    fn parent(namespace: Option<&str>, name: &str, observed: i64, status: &str) -> Value {
        let mut r = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name});
        if let Some(ns) = namespace {
            r["namespace"] = json!(ns);
        }
        json!({
            "parentRef": r,
            "controllerName": "example.com/gateway",
            "conditions": [
                {"type": "ResolvedRefs", "status": "True", "observedGeneration": observed + 10},
                {"type": "Accepted", "status": status, "observedGeneration": observed},
            ],
        })
    }

    #[test]
    fn the_gateway_s_accepted_condition_tells_which_generation_it_has_read() {
        let r = route(json!([parent(Some("infra"), "edge", 4, "True")]));
        assert_eq!(
            reported(&r, "shop", Some("infra"), "edge", 4),
            Reported::Seen { accepted: true }
        );
        assert_eq!(
            reported(&r, "shop", Some("infra"), "edge", 5),
            Reported::Behind { observed: 4 },
            "ResolvedRefs' generation is not the one read"
        );
        let refused = route(json!([parent(Some("infra"), "edge", 6, "False")]));
        assert_eq!(
            reported(&refused, "shop", Some("infra"), "edge", 5),
            Reported::Seen { accepted: false }
        );
    }

    #[test]
    fn only_the_entry_of_the_app_s_gateway_counts() {
        let r = route(json!([
            parent(Some("other"), "edge", 9, "True"),
            parent(None, "internal", 9, "True"),
        ]));
        assert_eq!(
            reported(&r, "shop", Some("infra"), "edge", 4),
            Reported::Never
        );
        // A parentRef without a namespace is in the route's.
        assert_eq!(
            reported(&r, "shop", None, "internal", 4),
            Reported::Seen { accepted: true }
        );
        assert_eq!(
            reported(&r, "shop", Some("shop"), "internal", 4),
            Reported::Seen { accepted: true }
        );
        assert_eq!(
            reported(&json!({"metadata": {}}), "shop", None, "edge", 1),
            Reported::Never
        );
    }
}
