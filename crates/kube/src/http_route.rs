//! The HTTPRoute slipway writes for an app whose traffic goes through a Gateway API gateway the
//! cluster already has (`[kubernetes] gateway`): one rule for the app's hosts and path prefix, one
//! backend per release — the release's Service (`services.rs`) — weighted as the rollout says.
//! A canary's `route` steps become rules of their own that match the same prefix *and* the headers
//! (more specific, so the gateway prefers them), sending those requests to the canary alone; a
//! cookie is matched as a `RegularExpression` on the `Cookie` header (implementation-specific
//! support in Gateway API; one cookie per rule, since a match takes a header name once). A `mirror`
//! step is a `RequestMirror` filter with its `percent` on the weighted rule.
//! Pure: the object for a given set of weights; `route_writer.rs` applies it.
//!
//! **Why a route of its own, not a rule inside someone else's.** slipway writes with server-side
//! apply under its own field manager, `slipway`, so the API server records what it owns and refuses
//! (409) to let it change what another manager owns. An HTTPRoute's `spec.rules` is an atomic list
//! (`x-kubernetes-list-type: atomic` in the Gateway API CRDs from v1.4; an unmarked list, so atomic
//! too, before): rules have a `name` since v1.4, but the list is not keyed by it. A manager owns all
//! of a route's rules or none of them. Applying slipway's rule into a shared route would conflict,
//! or, forced, replace every other rule; a JSON patch of one rule's `backendRefs` would leave the
//! other rules' bytes alone but move the whole list to slipway (an update of an atomic field), so
//! the route's owner could no longer apply their own rules without a conflict. Gateway API's answer
//! to a host shared by several owners is several routes on one listener, merged by the gateway (the
//! most specific match wins: the longest path prefix, then headers; then the oldest route). So
//! slipway's route is its own object attached to the same Gateway for the app's hosts and path
//! prefix, and other routes — with all their rules — stay their owners'. Pointed at a route someone
//! else writes, slipway's apply conflicts; it is never forced, and the rollout fails saying why.

use crate::names;
use kube::api::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

pub const GROUP: &str = "gateway.networking.k8s.io";
pub const VERSION: &str = "v1";
pub const KIND: &str = "HTTPRoute";
pub const PLURAL: &str = "httproutes";
/// The field manager of every server-side apply slipway makes.
pub const FIELD_MANAGER: &str = "slipway";

/// HTTPRoute for kube's dynamic API (k8s-openapi has no Gateway API types).
pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// Where an app's route attaches and what it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// The HTTPRoute's name, in the daemon's namespace.
    pub route: String,
    /// The Gateway it attaches to: its namespace (`None`: the route's) and name.
    pub gateway_namespace: Option<String>,
    pub gateway: String,
    /// `[routing] hosts`; empty: every host of the Gateway's listeners.
    pub hostnames: Vec<String>,
    /// `[routing] path_prefix`.
    pub path_prefix: String,
}

/// One release's share: its Service, the port it listens on, its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedBackend {
    pub service: String,
    pub port: u16,
    pub weight: u32,
}

/// Requests that match all of these go to `backend` alone (a canary's `route` step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    pub headers: Vec<(String, String)>,
    /// At most one (see the module's doc): `route_writer` is handed no more.
    pub cookie: Option<(String, String)>,
    pub backend: WeightedBackend,
}

/// A copy of this share of requests goes to `backend`; its answers are dropped by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorTo {
    pub backend: WeightedBackend,
    pub percent: u32,
}

/// The HTTPRoute to apply (all of it is slipway's: every field it sets, it owns).
pub fn object(
    target: &RouteTarget,
    app: &str,
    owner: &str,
    backends: &[WeightedBackend],
    rules: &[HeaderRule],
    mirror: Option<&MirrorTo>,
) -> Value {
    let mut parent = json!({"group": GROUP, "kind": "Gateway", "name": target.gateway});
    if let Some(namespace) = &target.gateway_namespace {
        parent["namespace"] = json!(namespace);
    }
    let backend_refs: Vec<Value> = backends
        .iter()
        .map(|b| {
            json!({
                "group": "", "kind": "Service", "name": b.service, "port": b.port, "weight": b.weight,
            })
        })
        .collect();
    let prefix = json!({"type": "PathPrefix", "value": target.path_prefix});
    let mut weighted = json!({
        "matches": [{"path": prefix}],
        "backendRefs": backend_refs,
    });
    if let Some(m) = mirror {
        weighted["filters"] = json!([{
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"group": "", "kind": "Service", "name": m.backend.service, "port": m.backend.port},
                "percent": m.percent,
            },
        }]);
    }
    let mut all = vec![weighted];
    for rule in rules {
        let mut headers: Vec<Value> = rule
            .headers
            .iter()
            .map(|(name, value)| json!({"type": "Exact", "name": name, "value": value}))
            .collect();
        if let Some((name, value)) = &rule.cookie {
            headers.push(json!({
                "type": "RegularExpression",
                "name": "Cookie",
                "value": cookie_pattern(name, value),
            }));
        }
        all.push(json!({
            "matches": [{"path": prefix, "headers": headers}],
            "backendRefs": [{
                "group": "", "kind": "Service", "name": rule.backend.service, "port": rule.backend.port,
            }],
        }));
    }
    let mut spec = json!({
        "parentRefs": [parent],
        "rules": all,
    });
    if !target.hostnames.is_empty() {
        spec["hostnames"] = json!(target.hostnames);
    }
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": KIND,
        "metadata": {
            "name": target.route,
            "labels": {
                names::MANAGED_BY: "slipway",
                names::OWNER: owner,
                names::APP: app,
            },
        },
        "spec": spec,
    })
}

/// A `Cookie` header holding `name=value` among its pairs (RE2/POSIX-safe: no lookaround).
fn cookie_pattern(name: &str, value: &str) -> String {
    format!("(^|.*; *){}={}(;.*|$)", escape(name), escape(value))
}

/// `text` matched literally in a regular expression.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> RouteTarget {
        RouteTarget {
            route: "shop".into(),
            gateway_namespace: Some("infra".into()),
            gateway: "edge".into(),
            hostnames: vec!["shop.example".into()],
            path_prefix: "/".into(),
        }
    }

    fn backend(service: &str, weight: u32) -> WeightedBackend {
        WeightedBackend {
            service: service.into(),
            port: 8080,
            weight,
        }
    }

    #[test]
    fn one_rule_weights_each_release_service() {
        let route = object(
            &target(),
            "shop",
            "o",
            &[backend("shop-v1", 90), backend("shop-v2", 10)],
            &[],
            None,
        );
        assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(route["metadata"]["name"], "shop");
        assert_eq!(route["metadata"]["labels"][names::OWNER], "o");
        let parent = &route["spec"]["parentRefs"][0];
        assert_eq!(
            (parent["namespace"].as_str(), parent["name"].as_str()),
            (Some("infra"), Some("edge"))
        );
        assert_eq!(route["spec"]["hostnames"], json!(["shop.example"]));
        let rules = route["spec"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["matches"][0]["path"]["value"], "/");
        let refs = rules[0]["backendRefs"].as_array().unwrap();
        assert_eq!(refs.len(), 2);
        assert_eq!(
            (refs[0]["name"].as_str(), refs[0]["weight"].as_u64()),
            (Some("shop-v1"), Some(90))
        );
        assert_eq!(
            (refs[1]["name"].as_str(), refs[1]["weight"].as_u64()),
            (Some("shop-v2"), Some(10))
        );
        assert_eq!(refs[1]["port"], 8080);
    }

    #[test]
    fn no_hosts_and_a_gateway_in_the_same_namespace_leave_those_fields_out() {
        let mut t = target();
        t.hostnames.clear();
        t.gateway_namespace = None;
        t.path_prefix = "/api".into();
        let route = object(&t, "shop", "o", &[backend("shop-v1", 1)], &[], None);
        assert!(route["spec"].get("hostnames").is_none());
        assert!(route["spec"]["parentRefs"][0].get("namespace").is_none());
        assert_eq!(
            route["spec"]["rules"][0]["matches"][0]["path"]["value"],
            "/api"
        );
    }

    #[test]
    fn a_canary_s_routes_are_rules_of_their_own_and_its_mirror_a_filter() {
        let rules = [
            HeaderRule {
                headers: vec![("x-canary".into(), "1".into())],
                cookie: None,
                backend: backend("shop-v2", 1),
            },
            HeaderRule {
                headers: Vec::new(),
                cookie: Some(("beta".into(), "y.s".into())),
                backend: backend("shop-v2", 1),
            },
        ];
        let mirror = MirrorTo {
            backend: backend("shop-v2", 0),
            percent: 20,
        };
        let route = object(
            &target(),
            "shop",
            "o",
            &[backend("shop-v1", 100), backend("shop-v2", 0)],
            &rules,
            Some(&mirror),
        );
        let all = route["spec"]["rules"].as_array().unwrap();
        assert_eq!(all.len(), 3);
        let filter = &all[0]["filters"][0];
        assert_eq!(filter["type"], "RequestMirror");
        assert_eq!(filter["requestMirror"]["backendRef"]["name"], "shop-v2");
        assert_eq!(filter["requestMirror"]["percent"], 20);
        let header = &all[1]["matches"][0];
        assert_eq!(header["path"]["value"], "/");
        assert_eq!(
            header["headers"],
            json!([{"type": "Exact", "name": "x-canary", "value": "1"}])
        );
        assert_eq!(all[1]["backendRefs"][0]["name"], "shop-v2");
        let cookie = &all[2]["matches"][0]["headers"][0];
        assert_eq!(cookie["type"], "RegularExpression");
        assert_eq!(cookie["name"], "Cookie");
        let pattern = cookie["value"].as_str().unwrap();
        assert_eq!(pattern, r"(^|.*; *)beta=y\.s(;.*|$)");
    }
}
