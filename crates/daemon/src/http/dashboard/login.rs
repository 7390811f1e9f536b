//! Logging in with a token (it becomes a session cookie; the token itself is not kept) and out.

use super::layout::page;
use super::session::{clear_cookie, set_cookie};
use super::{Ui, session};
use crate::clock::now_ms;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
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

pub async fn submit(State(ui): State<Ui>, Form(f): Form<LoginForm>) -> Response {
    let auth = ui.auth.clone();
    let who = tokio::task::spawn_blocking(move || auth.identify(f.token.trim()))
        .await
        .ok()
        .flatten();
    let Some(who) = who else {
        return (
            StatusCode::UNAUTHORIZED,
            login_page(Some(("error", "That token is not valid."))),
        )
            .into_response();
    };
    tracing::info!(user = %who.name, role = who.role.as_str(), "dashboard login");
    let (id, _) = ui.sessions.create(who, now_ms());
    (
        [(header::SET_COOKIE, set_cookie(&id, ui.sessions.ttl_ms()))],
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
        [(header::SET_COOKIE, clear_cookie())],
        Redirect::to("/ui/login"),
    )
        .into_response()
}
