//! Logging in with a token (it becomes a session cookie; the token itself is not kept) and out.

use super::layout::page;
use super::session::{clear_cookie, set_cookie};
use super::{Ui, session};
use crate::clock::now_ms;
use crate::http::doorkeeper::ClientAddr;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
}

fn login_page(note: Option<(&str, &str)>) -> axum::response::Html<String> {
    page(
        "Log in",
        None,
        None,
        html! {
            div.card style="max-width:28rem;margin:3rem auto" {
                h1 { "Log in to slipway" }
                @if let Some((class, text)) = note {
                    p class=(class) #note { (text) }
                }
                form method="post" action="/ui/login" {
                    p {
                        label for="token" { "API token" } br;
                        input #token type="password" name="token" autocomplete="off" required
                            style="width:100%" placeholder="slw_…";
                    }
                    button.primary type="submit" { "Log in" }
                }
                p.muted {
                    "Make a token with " code { "slipway token create NAME --role viewer|deployer|admin" }
                    "; the daemon's own admin token is in " code { "<state-dir>/api-token" } "."
                }
            }
        },
    )
}

pub async fn form(Query(q): Query<LoginQuery>) -> Response {
    let note = q
        .expired
        .map(|_| ("error", "Your session has ended. Log in again."));
    login_page(note).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// A token in, a fresh session out. The session id the browser had before (if any) ends here: an id
/// from before a login is never valid after it. Attempts count against the client's address
/// (`throttle.rs`); a locked-out address gets 429 without its token being looked at.
pub async fn submit(
    State(ui): State<Ui>,
    from: ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let token = f.token.trim().to_string();
    let who = match ui.keeper.identify(from, token, "dashboard login").await {
        Ok(who) => who,
        Err(refusal) => {
            let (status, text) = match refusal.retry_after_secs() {
                Some(secs) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many failed logins from your address. Try again in {secs} s."),
                ),
                None => (
                    StatusCode::UNAUTHORIZED,
                    "That token is not valid.".to_string(),
                ),
            };
            let mut r = (status, login_page(Some(("error", &text)))).into_response();
            if let Some(secs) = refusal.retry_after_secs() {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return r;
        }
    };
    let client = from.0.map_or_else(|| "-".to_string(), |ip| ip.to_string());
    tracing::info!(user = %who.name, role = who.role.as_str(), %client, "dashboard login");
    let previous = session::cookie_id(&headers);
    let (id, _) = ui.sessions.login(previous.as_deref(), who, now_ms());
    (
        [(
            header::SET_COOKIE,
            set_cookie(&id, ui.sessions.ttl_ms(), ui.secure_cookie),
        )],
        Redirect::to("/ui/"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

pub async fn logout(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Some(id) = session::cookie_id(&headers)
        && let Some(s) = ui.sessions.get(&id, now_ms())
    {
        if !s.csrf_ok(&f.csrf) {
            return (
                StatusCode::FORBIDDEN,
                "the form's CSRF token does not match",
            )
                .into_response();
        }
        ui.sessions.remove(&id);
    }
    (
        [(header::SET_COOKIE, clear_cookie(ui.secure_cookie))],
        Redirect::to("/ui/login"),
    )
        .into_response()
}
