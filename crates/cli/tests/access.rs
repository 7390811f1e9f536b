//! Every route of the TCP listener against every caller, from the daemon's one role table
//! (`slipway_daemon::http::route_table::ROUTES`, which the routers register from and a unit test holds
//! equal to what they serve): no token, viewer, deployer, admin, and for OFREP an evaluation key. Each
//! (route, caller) pair is sent to a real daemon: below what the route needs it must be refused (401 or
//! 403; on the dashboard also a redirect to the login page), at or above it must not be. A route added
//! without an entry cannot be registered at all, so adding one means deciding here who may call it.
//!
//! Path parameters name things that do not exist (`ghost`), so the calls that get through change
//! nothing: they end in 404, 409 or a refused body.

mod support;

use slipway_daemon::http::auth::Role;
use slipway_daemon::http::route_table::{self, Access, Door, ROUTES, Route};
use std::net::SocketAddr;
use support::http::{Response, request};
use support::ui::{self, Session};
use support::{Conf, World};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Nobody,
    Token(Role),
    EvaluationKey,
}

struct Credentials {
    tokens: Vec<(Role, String)>,
    sessions: Vec<(Role, Session)>,
    key: String,
}

impl Credentials {
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn session(&self, role: Role) -> &Session {
        &self.sessions.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

/// The concrete paths for a route pattern: every `{action}` a dashboard route takes, `ghost` for the
/// rest of the parameters.
fn paths(route: &Route) -> Vec<String> {
    let fill = |action: &str| {
        route
            .path
            .split('/')
            .map(|seg| match seg {
                "{action}" => action.to_string(),
                "{job}" => "nightly".to_string(),
                s if s.starts_with('{') => "ghost".to_string(),
                s => s.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let actions = route_table::actions_of(route);
    if route.path.contains("{action}") {
        assert!(!actions.is_empty(), "no action names for {}", route.path);
        actions.into_iter().map(fill).collect()
    } else {
        vec![fill("")]
    }
}

/// Sends one request as `caller`; only the head is read (event streams never end).
fn call(
    api: SocketAddr,
    route: &Route,
    path: &str,
    caller: Caller,
    creds: &Credentials,
) -> Response {
    let method = route.verb.as_str();
    let mut headers: Vec<(&str, String)> = Vec::new();
    let mut body = String::new();
    match (route.door, caller) {
        (_, Caller::Nobody) => {
            if route.door == Door::Dashboard && method == "POST" {
                headers.push(("Content-Type", "application/x-www-form-urlencoded".into()));
                body = "csrf=forged".into();
            }
        }
        (Door::Dashboard, Caller::Token(role)) => {
            let s = creds.session(role);
            headers.push(("Cookie", s.cookie()));
            if method == "POST" {
                headers.push(("Content-Type", "application/x-www-form-urlencoded".into()));
                body = format!("csrf={}", s.csrf);
            }
        }
        (_, Caller::Token(role)) => {
            headers.push(("Authorization", format!("Bearer {}", creds.token(role))));
        }
        (_, Caller::EvaluationKey) => headers.push(("X-API-Key", creds.key.clone())),
    }
    if route.door == Door::Ofrep && method == "POST" {
        headers.push(("Content-Type", "application/json".into()));
        body = r#"{"context": {"targetingKey": "u-1"}}"#.into();
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    request(api, method, path, &headers, &body, false)
        .unwrap_or_else(|e| panic!("{method} {path} as {caller:?}: {e}"))
}

/// A refusal is 401 or 403; on a dashboard page that needs a session, also the redirect to the login
/// page (a public route may send there for its own reasons: logging out does).
fn refused(answer: &Response, access: Access) -> bool {
    matches!(answer.status, 401 | 403)
        || (matches!(access, Access::Role(_)) && ui::to_login(answer))
}

/// Whether `caller` may call a route with this access.
fn allowed(access: Access, caller: Caller) -> bool {
    match (access, caller) {
        (Access::Public, _) => true,
        (Access::Role(needed), Caller::Token(role)) => role >= needed,
        (Access::Role(_), _) => false,
        (Access::EvaluationKey, c) => c == Caller::EvaluationKey,
    }
}

#[test]
fn every_route_answers_every_role_as_the_role_table_says() {
    let mut world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = world.api_addr();
    // The config names the app the evaluation key is for; nothing is deployed.
    world.write(&Conf::demo("v1"));
    let roles = [Role::Viewer, Role::Deployer, Role::Admin];
    let tokens: Vec<(Role, String)> = roles
        .iter()
        .map(|r| (*r, world.create_token(r.as_str(), r.as_str())))
        .collect();
    let sessions = tokens
        .iter()
        .map(|(r, t)| (*r, ui::login(api, t)))
        .collect();
    let key = world.slipway(&["flags", "key", "create", "web"]).ok();
    let creds = Credentials {
        tokens,
        sessions,
        key: key.stdout.trim().to_string(),
    };

    let mut wrong = Vec::new();
    let mut calls = 0;
    let mut upgraded_to = None;
    // `POST /v1/upgrade` as an admin really upgrades the daemon (its dashboard sessions are in
    // memory and end with it): last, so every other call still has its session.
    let mut routes: Vec<&Route> = ROUTES.iter().collect();
    routes.sort_by_key(|r| r.path == "/v1/upgrade");
    for route in routes {
        if route.path == "/v1/upgrade" {
            // The sessions survived all of the rest (no call logged anyone out).
            for role in roles {
                let s = creds.session(role);
                let page = support::http::get(api, "/ui/", &[("Cookie", &s.cookie())]).unwrap();
                assert_eq!(page.status, 200, "{role:?}: {page:?}");
            }
        }
        let callers: Vec<Caller> = match route.access {
            // Public routes are called without credentials: the login form takes none, and a session
            // sent to the logout route would end it.
            Access::Public => vec![Caller::Nobody],
            Access::Role(_) => std::iter::once(Caller::Nobody)
                .chain(roles.iter().map(|r| Caller::Token(*r)))
                .collect(),
            Access::EvaluationKey => std::iter::once(Caller::Nobody)
                .chain(roles.iter().map(|r| Caller::Token(*r)))
                .chain([Caller::EvaluationKey])
                .collect(),
        };
        for path in paths(route) {
            for &caller in &callers {
                let answer = call(api, route, &path, caller, &creds);
                calls += 1;
                if route.path == "/v1/upgrade" && answer.status == 200 {
                    upgraded_to = Some(world.daemon.pid());
                }
                let expect_allowed = allowed(route.access, caller);
                if refused(&answer, route.access) == expect_allowed {
                    wrong.push(format!(
                        "{} {path} as {caller:?} (needs {:?}): {} {}",
                        route.verb.as_str(),
                        route.access,
                        answer.status,
                        answer.header("location").unwrap_or_default()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls disagree with the role table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Every door was exercised.
    for door in [Door::Api, Door::Dashboard, Door::Ofrep] {
        assert!(ROUTES.iter().any(|r| r.door == door), "{door:?}");
    }
    // The daemon that took over names itself in daemon.pid.
    let old = upgraded_to.expect("the admin's upgrade went through");
    let pid = support::wait_for(support::DEADLINE, "the new daemon's pid", || {
        let text = std::fs::read_to_string(world.daemon.state.join("daemon.pid")).ok()?;
        text.trim().parse::<u32>().ok().filter(|pid| *pid != old)
    });
    world.daemon.upgraded_to(pid);
}

#[test]
fn a_request_outside_the_table_gets_nothing_more_than_a_404_or_405() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = world.api_addr();
    let admin = world.create_token("root", "admin");
    let bearer = format!("Bearer {admin}");
    // Nothing is there, for anyone.
    let answer = request(api, "GET", "/v1/nothing-here", &[], "", true).unwrap();
    assert_eq!(answer.status, 404, "{answer:?}");
    let answer = request(
        api,
        "GET",
        "/v1/nothing-here",
        &[("Authorization", &bearer)],
        "",
        true,
    )
    .unwrap();
    assert_eq!(answer.status, 404, "{answer:?}");
    // A known path with a method it does not take: 405, nothing runs.
    let answer = request(
        api,
        "DELETE",
        "/v1/apps/ghost",
        &[("Authorization", &bearer)],
        "",
        true,
    )
    .unwrap();
    assert_eq!(answer.status, 405, "{answer:?}");
}
