//! Every route the TCP listener serves and who may call it: ONE table ([`ROUTES`]). The API's token
//! check (`require_token`) and the dashboard's session gate read it by the route axum matched; the
//! routers register their handlers through [`Routes`], which refuses (panics at start-up) a route that
//! is not in the table; a unit test below fails for an entry no router registers; and a request whose
//! route has no entry for its method is refused to everyone (only code that bypasses [`Routes`] gets
//! there). The CLI's `tests/access.rs` calls every entry with every role against a real daemon.
//!
//! The same API routes serve the local unix socket, where nothing is checked (mode 0600: only the
//! daemon's own user can open it).

use crate::http::auth::Role;
use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};

/// Which router a route belongs to, and so which check guards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Door {
    /// `/v1/…` and `/metrics`: `Authorization: Bearer <token>`.
    Api,
    /// `/ui/…`: a session cookie from logging in with a token.
    Dashboard,
    /// `/ofrep/…`: an app's evaluation key.
    Ofrep,
}

/// A route's method; `Get` also answers HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn of(method: &Method) -> Option<Verb> {
        match *method {
            Method::GET | Method::HEAD => Some(Verb::Get),
            Method::POST => Some(Verb::Post),
            Method::DELETE => Some(Verb::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the login page and what it needs.
    Public,
    /// A token of at least this role (on the dashboard: the one the session logged in with).
    Role(Role),
    /// An app's evaluation key; API tokens are not evaluation keys.
    EvaluationKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub door: Door,
    pub verb: Verb,
    /// The pattern as registered with axum (`{app}` for a path parameter).
    pub path: &'static str,
    pub access: Access,
}

const fn api(verb: Verb, path: &'static str, role: Role) -> Route {
    Route {
        door: Door::Api,
        verb,
        path,
        access: Access::Role(role),
    }
}

const fn ui(verb: Verb, path: &'static str, access: Access) -> Route {
    Route {
        door: Door::Dashboard,
        verb,
        path,
        access,
    }
}

const fn ofrep(verb: Verb, path: &'static str) -> Route {
    Route {
        door: Door::Ofrep,
        verb,
        path,
        access: Access::EvaluationKey,
    }
}

use Role::{Admin, Deployer, Viewer};
use Verb::{Delete, Get, Post};

/// Reads need a viewer; steering a rollout or a flag needs a deployer; tokens, evaluation keys and
/// backups are an admin's.
pub const ROUTES: &[Route] = &[
    api(Get, "/v1/health", Viewer),
    // The API's OpenAPI document (`openapi.rs`): any valid token may read it.
    api(Get, "/v1/openapi.json", Viewer),
    api(Get, "/metrics", Viewer),
    api(Post, "/v1/deploy", Deployer),
    // The app folder a deploy reads, sent first by a CLI on another host (`upload_routes.rs`).
    api(Post, "/v1/uploads", Deployer),
    api(Get, "/v1/apps", Viewer),
    api(Get, "/v1/apps/{app}", Viewer),
    api(Get, "/v1/apps/{app}/releases", Viewer),
    api(Get, "/v1/apps/{app}/rollouts", Viewer),
    api(Get, "/v1/apps/{app}/events", Viewer),
    api(Get, "/v1/apps/{app}/logs", Viewer),
    api(Get, "/v1/apps/{app}/series", Viewer),
    api(Post, "/v1/apps/{app}/promote", Deployer),
    api(Post, "/v1/apps/{app}/pause", Deployer),
    api(Post, "/v1/apps/{app}/resume", Deployer),
    api(Post, "/v1/apps/{app}/ramp", Deployer),
    api(Post, "/v1/apps/{app}/retry", Deployer),
    api(Post, "/v1/apps/{app}/drill", Deployer),
    api(Get, "/v1/apps/{app}/drills", Viewer),
    api(Post, "/v1/apps/{app}/gate", Deployer),
    api(Post, "/v1/apps/{app}/scale", Deployer),
    api(Post, "/v1/apps/{app}/maintenance", Deployer),
    api(Delete, "/v1/apps/{app}/maintenance", Deployer),
    api(Post, "/v1/apps/{app}/abort", Deployer),
    api(Post, "/v1/apps/{app}/rollback", Deployer),
    api(Get, "/v1/apps/{app}/config", Viewer),
    api(Post, "/v1/apps/{app}/config", Deployer),
    api(Get, "/v1/apps/{app}/cron", Viewer),
    api(Post, "/v1/apps/{app}/cron/{job}/run", Deployer),
    api(Get, "/v1/apps/{app}/flags", Viewer),
    api(Get, "/v1/apps/{app}/flags/{key}", Viewer),
    api(Post, "/v1/apps/{app}/flags/{key}", Deployer),
    api(Post, "/v1/apps/{app}/flags/{key}/revert", Deployer),
    api(Post, "/v1/apps/{app}/flags/{key}/ramp", Deployer),
    api(Get, "/v1/apps/{app}/flag-set", Viewer),
    api(Post, "/v1/apps/{app}/flag-set", Deployer),
    api(Get, "/v1/apps/{app}/flag-history", Viewer),
    // Key names and last use, never a key.
    api(Get, "/v1/apps/{app}/flag-keys", Viewer),
    api(Post, "/v1/apps/{app}/flag-keys", Admin),
    api(Delete, "/v1/apps/{app}/flag-keys/{name}", Admin),
    api(Get, "/v1/tokens", Admin),
    api(Post, "/v1/tokens", Admin),
    api(Delete, "/v1/tokens/{name}", Admin),
    // The whole state as one file (`ops/backup.rs`): every app's history, config vars, token hashes.
    api(Post, "/v1/backup", Admin),
    // Replaces the daemon's binary with the one on disk (`upgrade.rs`).
    api(Post, "/v1/upgrade", Admin),
    // Hosts, issuers and errors: nothing secret.
    api(Get, "/v1/certs", Viewer),
    api(Post, "/v1/certs/{host}/renew", Deployer),
    // A revocation cannot be undone: admin only.
    api(Post, "/v1/certs/{host}/revoke", Admin),
    ui(Get, "/", Access::Public),
    ui(Get, "/ui", Access::Public),
    ui(Get, "/ui/live.js", Access::Public),
    ui(Get, "/ui/login", Access::Public),
    // Rate limited per client address (`throttle.rs`).
    ui(Post, "/ui/login", Access::Public),
    // Ends the caller's own session, if its CSRF token matches; nothing else.
    ui(Post, "/ui/logout", Access::Public),
    ui(Get, "/ui/", Access::Role(Viewer)),
    ui(Get, "/ui/apps/{app}", Access::Role(Viewer)),
    ui(Get, "/ui/apps/{app}/flags", Access::Role(Viewer)),
    ui(Get, "/ui/stream/overview", Access::Role(Viewer)),
    ui(Get, "/ui/stream/apps/{app}", Access::Role(Viewer)),
    ui(Get, "/ui/stream/apps/{app}/flags", Access::Role(Viewer)),
    ui(
        Get,
        "/ui/apps/{app}/confirm/{action}",
        Access::Role(Deployer),
    ),
    ui(
        Post,
        "/ui/apps/{app}/actions/{action}",
        Access::Role(Deployer),
    ),
    ui(
        Get,
        "/ui/apps/{app}/flags/{flag}/confirm/{action}",
        Access::Role(Deployer),
    ),
    ui(
        Post,
        "/ui/apps/{app}/flags/{flag}/actions/{action}",
        Access::Role(Deployer),
    ),
    ofrep(Post, "/ofrep/v1/evaluate/flags/{key}"),
    ofrep(Post, "/ofrep/v1/evaluate/flags"),
    ofrep(Get, "/ofrep/v1/events"),
    ofrep(Get, "/ofrep/v1/configuration"),
];

/// The table's entry for a registered route.
pub fn find(door: Door, verb: Verb, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.door == door && r.verb == verb && r.path == path)
}

/// The names a dashboard route's `{action}` takes (empty for other routes), so that a test can call
/// every action.
pub fn actions_of(route: &Route) -> Vec<&'static str> {
    match route.door {
        Door::Dashboard => crate::http::dashboard::action_names(route.path),
        Door::Api | Door::Ofrep => Vec::new(),
    }
}

/// What a request needs, by the route axum matched (`MatchedPath`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The table's word for this route.
    Entry(Access),
    /// No route matched: the router answers 404 and nothing runs.
    NoRoute,
    /// The route exists with other methods: the answer is 405, nothing runs.
    OtherMethod,
    /// A registered route that is not in the table: refused to everyone.
    Unlisted,
}

pub fn needs(door: Door, method: &Method, matched: Option<&str>) -> Needs {
    let Some(path) = matched else {
        return Needs::NoRoute;
    };
    if let Some(route) = Verb::of(method).and_then(|verb| find(door, verb, path)) {
        return Needs::Entry(route.access);
    }
    if ROUTES.iter().any(|r| r.door == door && r.path == path) {
        Needs::OtherMethod
    } else {
        Needs::Unlisted
    }
}

/// A router that takes only routes in [`ROUTES`] and remembers what it registered.
pub struct Routes<S> {
    door: Door,
    router: Router<S>,
    registered: Vec<(Verb, &'static str)>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new(door: Door) -> Routes<S> {
        Routes {
            door,
            router: Router::new(),
            registered: Vec::new(),
        }
    }

    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Routes<S> {
        self.add(Verb::Get, path, routing::get(handler))
    }

    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Routes<S> {
        self.add(Verb::Post, path, routing::post(handler))
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Routes<S> {
        self.add(Verb::Delete, path, routing::delete(handler))
    }

    pub fn merge(mut self, other: Routes<S>) -> Routes<S> {
        assert_eq!(self.door, other.door, "routes of two doors merged");
        self.router = self.router.merge(other.router);
        self.registered.extend(other.registered);
        self
    }

    fn add(mut self, verb: Verb, path: &'static str, method: MethodRouter<S>) -> Routes<S> {
        assert!(
            find(self.door, verb, path).is_some(),
            "{} {path} is not in http/route_table.rs: add it there with who may call it",
            verb.as_str()
        );
        self.registered.push((verb, path));
        self.router = self.router.route(path, method);
        self
    }

    pub fn registered(&self) -> &[(Verb, &'static str)] {
        &self.registered
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_table_lists_exactly_the_registered_routes() {
        let mut registered = HashSet::new();
        let doors = [
            (Door::Api, crate::http::api_routes().registered().to_vec()),
            (
                Door::Dashboard,
                crate::http::dashboard::routes().registered().to_vec(),
            ),
            (
                Door::Ofrep,
                crate::http::ofrep::routes().registered().to_vec(),
            ),
        ];
        for (door, list) in doors {
            for (verb, path) in list {
                assert!(
                    registered.insert((door, verb, path)),
                    "{door:?} {verb:?} {path} registered twice"
                );
            }
        }
        let listed: HashSet<_> = ROUTES.iter().map(|r| (r.door, r.verb, r.path)).collect();
        assert_eq!(listed.len(), ROUTES.len(), "a route is listed twice");
        let stale: Vec<_> = listed.difference(&registered).collect();
        assert!(
            stale.is_empty(),
            "listed but served by no router: {stale:?}"
        );
    }

    #[test]
    fn a_request_needs_what_its_matched_route_says() {
        assert_eq!(
            needs(Door::Api, &Method::POST, Some("/v1/apps/{app}/promote")),
            Needs::Entry(Access::Role(Role::Deployer))
        );
        assert_eq!(
            needs(Door::Api, &Method::HEAD, Some("/v1/apps")),
            Needs::Entry(Access::Role(Role::Viewer))
        );
        assert_eq!(
            needs(Door::Api, &Method::GET, Some("/v1/tokens")),
            Needs::Entry(Access::Role(Role::Admin))
        );
        assert_eq!(
            needs(Door::Api, &Method::DELETE, Some("/v1/apps")),
            Needs::OtherMethod
        );
        assert_eq!(
            needs(Door::Api, &Method::GET, Some("/v1/apps/{app}/new-thing")),
            Needs::Unlisted
        );
        // A dashboard path is not an API route: each door has its own entries.
        assert_eq!(
            needs(Door::Api, &Method::GET, Some("/ui/")),
            Needs::Unlisted
        );
        assert_eq!(needs(Door::Api, &Method::GET, None), Needs::NoRoute);
        assert_eq!(
            needs(Door::Dashboard, &Method::POST, Some("/ui/login")),
            Needs::Entry(Access::Public)
        );
    }

    #[test]
    fn every_write_needs_more_than_a_viewer() {
        for r in ROUTES {
            if r.verb != Verb::Get {
                assert_ne!(r.access, Access::Role(Role::Viewer), "{r:?}");
            }
            if r.door == Door::Api {
                assert!(matches!(r.access, Access::Role(_)), "{r:?}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "not in http/route_table.rs")]
    fn registering_an_unlisted_route_panics() {
        let _ = Routes::<()>::new(Door::Api).get("/v1/apps/{app}/new-thing", || async { "" });
    }
}
