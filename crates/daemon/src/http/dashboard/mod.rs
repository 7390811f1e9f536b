//! The web dashboard, served under `/ui/` on the `--api` listener: server-rendered pages (maud), live
//! over one SSE stream per page, behind a login with an API token (who may open what: `route_table.rs`). Rendering is
//! pure (`overview`, `app_page`, `flags_page`, `chart`, `diff`, `targeting`); this file holds the routes, the session gate and the
//! reads of live state that the pages and streams share.

mod actions;
mod app_page;
mod chart;
mod diff;
mod flag_actions;
mod flag_changes;
mod flags_page;
mod layout;
mod login;
mod overview;
pub mod session;
mod stream;
mod targeting;

use crate::clock::now_ms;
use crate::http::Api;
use crate::http::doorkeeper::Doorkeeper;
use crate::http::route_table::{self, Access, Door, Needs, Routes};
use crate::http::tokens::Authenticator;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use session::{Session, Sessions};
use slipway_api::{AppStatus, ReleaseSeries};
use std::sync::Arc;
use std::time::Duration;

pub struct Dashboard {
    api: Api,
    auth: Arc<Authenticator>,
    /// Checks login tokens under the brute-force limits it shares with the API.
    keeper: Arc<Doorkeeper>,
    sessions: Sessions,
    /// Served over TLS: the session cookie is `Secure`.
    secure_cookie: bool,
}

type Ui = Arc<Dashboard>;

impl Dashboard {
    pub fn new(api: Api, keeper: Arc<Doorkeeper>, session_ttl: Duration) -> Dashboard {
        Dashboard {
            api,
            auth: keeper.authenticator().clone(),
            keeper,
            sessions: Sessions::new(session_ttl.as_millis() as u64),
            secure_cookie: false,
        }
    }

    /// The dashboard is served over TLS: its session cookie is `Secure`.
    pub fn over_tls(mut self) -> Dashboard {
        self.secure_cookie = true;
        self
    }

    /// The caller's live session, its role re-read from the store (a revoked token's sessions end
    /// at once). `Err`: off to the login page.
    fn session(&self, headers: &HeaderMap) -> Result<(String, Session), Redirect> {
        let Some(id) = session::cookie_id(headers) else {
            return Err(Redirect::to("/ui/login"));
        };
        let expired = || Redirect::to("/ui/login?expired=1");
        let mut s = self.sessions.get(&id, now_ms()).ok_or_else(expired)?;
        match self.auth.role_of(&s.name) {
            Some(role) => s.role = role,
            None => {
                self.sessions.remove(&id);
                return Err(expired());
            }
        }
        Ok((id, s))
    }

    async fn statuses(&self, app: Option<&str>) -> Vec<AppStatus> {
        crate::http::statuses(&self.api, app.map(String::from))
            .await
            .unwrap_or_default()
    }

    /// The app's SLO with its budget chart, if it has one.
    async fn slo(&self, app: &str) -> Option<crate::control::slo_round::SloSnapshot> {
        let app = app.to_string();
        self.api
            .controller
            .ask(|reply| crate::control::controller::Command::Slo { app, reply })
            .await
            .ok()
            .flatten()
    }

    async fn series(&self, app: &str) -> Vec<ReleaseSeries> {
        crate::http::series_routes::fetch(&self.api, app)
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

/// The script is served by the binary (not inline) so the pages' CSP can forbid inline scripts.
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        layout::JS,
    )
        .into_response()
}

/// Pages never come from a cache, never sit in a frame, and load nothing from elsewhere.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; \
         img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    // `same-origin`, not `no-referrer`: with the latter a browser sends `Origin: null` on our own forms.
    set(h, "referrer-policy", "same-origin");
    set(h, "cache-control", "no-store");
    res
}

/// The dashboard's routes, before the state is given (so the role table's test can list them).
pub(crate) fn routes() -> Routes<Ui> {
    Routes::new(Door::Dashboard)
        .get("/", || async { Redirect::to("/ui/") })
        .get("/ui", || async { Redirect::to("/ui/") })
        .get("/ui/", overview::show)
        .get("/ui/live.js", script)
        .get("/ui/login", login::form)
        .post("/ui/login", login::submit)
        .post("/ui/logout", login::logout)
        .get("/ui/apps/{app}", app_page::show)
        .get("/ui/apps/{app}/confirm/{action}", actions::confirm)
        .post("/ui/apps/{app}/actions/{action}", actions::act)
        .get("/ui/apps/{app}/flags", flags_page::show)
        .get(
            "/ui/apps/{app}/flags/{flag}/confirm/{action}",
            flag_actions::confirm,
        )
        .post(
            "/ui/apps/{app}/flags/{flag}/actions/{action}",
            flag_actions::act,
        )
        .get("/ui/stream/overview", stream::overview)
        .get("/ui/stream/apps/{app}", stream::app)
        .get("/ui/stream/apps/{app}/flags", stream::flags)
}

/// The names the `{action}` of an action route takes: the rollout actions, or a flag's.
pub fn action_names(route: &str) -> Vec<&'static str> {
    if route.contains("/flags/{flag}/") {
        flag_actions::FlagAction::ALL
            .iter()
            .map(|a| a.name())
            .collect()
    } else if route.contains("{action}") {
        actions::Action::ALL.iter().map(|a| a.name()).collect()
    } else {
        Vec::new()
    }
}

/// Every dashboard request passes here first: the role table (`route_table.rs`) says what its route
/// needs, and a request without a live session of that role goes no further. The pages still check
/// their session themselves; this gate is what a new page cannot forget.
async fn gate(State(ui): State<Ui>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    let needed = match route_table::needs(Door::Dashboard, req.method(), matched) {
        Needs::Entry(Access::Public) | Needs::NoRoute | Needs::OtherMethod => {
            return next.run(req).await;
        }
        Needs::Entry(Access::Role(role)) => role,
        Needs::Entry(Access::EvaluationKey) | Needs::Unlisted => {
            return (
                StatusCode::FORBIDDEN,
                "this page is not in the daemon's role table, so no one may open it",
            )
                .into_response();
        }
    };
    match ui.session(req.headers()) {
        Ok((_, s)) if s.role >= needed => next.run(req).await,
        Ok((_, s)) => actions::message(
            &s,
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!(
                "This needs the {} role; {} is a {}.",
                needed.as_str(),
                s.name,
                s.role.as_str()
            ),
        ),
        // An event stream cannot follow a redirect to the login page: a plain 401 ends it.
        Err(_) if wants_event_stream(req.headers()) => {
            (StatusCode::UNAUTHORIZED, "log in again").into_response()
        }
        Err(to_login) => to_login.into_response(),
    }
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

pub fn router(dashboard: Dashboard) -> Router {
    let ui: Ui = Arc::new(dashboard);
    routes()
        .into_router()
        .layer(axum::middleware::from_fn_with_state(ui.clone(), gate))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(ui)
}
