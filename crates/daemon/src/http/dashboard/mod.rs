//! The web dashboard, served under `/ui/` on the `--api` listener: server-rendered pages (maud), live
//! over one SSE stream per page, behind a login with an API token (roles from `auth.rs`). Rendering is
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
use crate::http::tokens::Authenticator;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use session::{Session, Sessions};
use slipway_api::{AppStatus, ReleaseSeries};
use std::sync::Arc;
use std::time::Duration;

pub struct Dashboard {
    api: Api,
    auth: Arc<Authenticator>,
    sessions: Sessions,
}

type Ui = Arc<Dashboard>;

impl Dashboard {
    pub fn new(api: Api, auth: Arc<Authenticator>, session_ttl: Duration) -> Dashboard {
        Dashboard {
            api,
            auth,
            sessions: Sessions::new(session_ttl.as_millis() as u64),
        }
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

pub fn router(dashboard: Dashboard) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(overview::show))
        .route("/ui/live.js", get(script))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/apps/{app}", get(app_page::show))
        .route("/ui/apps/{app}/confirm/{action}", get(actions::confirm))
        .route("/ui/apps/{app}/actions/{action}", post(actions::act))
        .route("/ui/apps/{app}/flags", get(flags_page::show))
        .route(
            "/ui/apps/{app}/flags/{flag}/confirm/{action}",
            get(flag_actions::confirm),
        )
        .route(
            "/ui/apps/{app}/flags/{flag}/actions/{action}",
            post(flag_actions::act),
        )
        .route("/ui/stream/overview", get(stream::overview))
        .route("/ui/stream/apps/{app}", get(stream::app))
        .route("/ui/stream/apps/{app}/flags", get(stream::flags))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(Arc::new(dashboard))
}
