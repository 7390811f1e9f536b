//! Steering from the dashboard: every action first shows a page saying what will happen, then posts a
//! form carrying the session's CSRF token. A post is refused (403) without a matching token, from a
//! foreign Origin, or from a viewer; an accepted one is recorded in the app's events with the user's
//! (token's) name before it runs.

use super::Ui;
use super::layout::page;
use super::session::Session;
use crate::control::controller::Command;
use crate::error::Error;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use slipway_api::{AppStatus, RollbackRequest, ScaleRequest};
use slipway_core::rollout::Signal;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Promote,
    Pause,
    Resume,
    Abort,
    Rollback,
    Scale,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Promote,
        Action::Pause,
        Action::Resume,
        Action::Abort,
        Action::Rollback,
        Action::Scale,
    ];

    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "promote" => Action::Promote,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "abort" => Action::Abort,
            "rollback" => Action::Rollback,
            "scale" => Action::Scale,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Abort => "abort",
            Action::Rollback => "rollback",
            Action::Scale => "scale",
        }
    }
}

/// What pressing the button will do, in the words of this app's current state. Pure.
pub fn consequence(action: Action, s: &AppStatus) -> String {
    let stable = s.stable.as_ref().map(|r| format!("v{}", r.version));
    let stable = stable.as_deref().unwrap_or("the stable release");
    let (to, from) = match &s.rollout {
        Some(r) => (
            format!("v{}", r.to),
            r.from.map_or("nothing".to_string(), |v| format!("v{v}")),
        ),
        None => ("(no rollout)".into(), stable.to_string()),
    };
    let step = s.rollout.as_ref().and_then(|r| r.canary.as_ref()).map(|c| {
        format!(
            "step {} of {} at {} %",
            c.step.min(c.steps),
            c.steps,
            c.effective_weight
        )
    });
    match action {
        Action::Promote => format!(
            "The rollout to {to} moves on: a canary leaves {} and goes to its next step; a blue-green \
             rollout waiting for promotion switches all traffic to {to}.",
            step.as_deref().unwrap_or("its current step")
        ),
        Action::Pause => format!(
            "The canary {to} holds at {} until someone resumes it. A failing analysis still rolls it back.",
            step.as_deref().unwrap_or("its current step")
        ),
        Action::Resume => format!(
            "The canary {to} continues its steps from {}.",
            step.as_deref().unwrap_or("where it stopped")
        ),
        Action::Abort => format!(
            "All traffic goes back to {from} at once; {to}'s instances are drained and stopped and {to} is \
             marked failed."
        ),
        Action::Rollback => format!(
            "A new release is made from an earlier one (its bits and config; by default the one before \
             {stable}) and switched to as soon as it is ready. History keeps {stable}."
        ),
        Action::Scale => format!(
            "A new release with the same bits and config as {stable} and this formation replaces it: \
             running instances are kept, only the difference starts or drains."
        ),
    }
}

fn refusal_text(r: Error) -> String {
    r.message
}

pub(super) fn message(session: &Session, status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        page(
            title,
            Some(session),
            None,
            html! { div.card.error { h1 { (title) } p #message { (text) } } },
        ),
    )
        .into_response()
}

/// The form fields an action needs besides the CSRF token.
fn fields(action: Action, s: &AppStatus, formation: &BTreeMap<String, u32>) -> Markup {
    match action {
        Action::Rollback => html! {
            p { label { "to release (empty: the one before the stable release) v" input type="number" name="to" min="1"; } }
        },
        Action::Scale => html! {
            @for (process, n) in formation {
                p { label { (process) " " input type="number" name=(format!("scale_{process}")) min=(if process == "web" { 1 } else { 0 }) max="64" value=(n); } }
            }
        },
        _ => {
            let _ = s;
            html! {}
        }
    }
}

async fn formation(ui: &Ui, app: &str) -> BTreeMap<String, u32> {
    ui.api
        .deployer
        .stable_release(app)
        .ok()
        .flatten()
        .map(|r| r.spec.formation())
        .unwrap_or_default()
}

pub async fn confirm(
    State(ui): State<Ui>,
    Path((app, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, session) = match ui.session(&headers) {
        Ok(s) => s,
        Err(to_login) => return to_login.into_response(),
    };
    if !session.can_act() {
        return message(
            &session,
            StatusCode::FORBIDDEN,
            "Not allowed",
            "A viewer can look, not act.",
        );
    }
    let Some(action) = Action::parse(&action) else {
        return message(&session, StatusCode::NOT_FOUND, "No such action", &action);
    };
    let Some(status) = ui.statuses(Some(&app)).await.pop() else {
        return message(&session, StatusCode::NOT_FOUND, "No such app", &app);
    };
    let formation = formation(&ui, &app).await;
    page(
        &format!("{} {app}?", action.name()),
        Some(&session),
        None,
        html! {
            div.card {
                h1 { "Confirm: " (action.name()) " " (app) }
                p #consequence { (consequence(action, &status)) }
                form method="post" action=(format!("/ui/apps/{app}/actions/{}", action.name())) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    (fields(action, &status, &formation))
                    div.actions {
                        button.primary #confirm type="submit" { "Yes, " (action.name()) }
                        a.btn href=(format!("/ui/apps/{app}")) { "Cancel" }
                    }
                }
            }
        },
    )
    .into_response()
}

/// A browser sends `Origin` with every POST: when it names another site, refuse.
pub(super) fn foreign_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(h)) => o.split_once("://").map(|(_, rest)| rest) != Some(h),
        _ => false,
    }
}

async fn signal(ui: &Ui, app: &str, signal: Signal) -> Result<(), String> {
    let app = app.to_string();
    let result = ui
        .api
        .controller
        .ask(|reply| Command::Signal { app, signal, reply })
        .await;
    result.and_then(|r| r).map_err(|e| e.message)
}

pub async fn act(
    State(ui): State<Ui>,
    Path((app, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (_, session) = match ui.session(&headers) {
        Ok(s) => s,
        Err(to_login) => return to_login.into_response(),
    };
    let csrf = form.get("csrf").map(String::as_str).unwrap_or("");
    if let Some(refused) = refuse_post(&session, csrf, &headers) {
        return refused;
    }
    let Some(action) = Action::parse(&action) else {
        return message(&session, StatusCode::NOT_FOUND, "No such action", &action);
    };
    let who = format!("{} (dashboard)", session.name);
    let release = ui
        .statuses(Some(&app))
        .await
        .pop()
        .and_then(|s| s.rollout.map(|r| r.to).or(s.stable.map(|r| r.version)));
    let _ = ui.api.store.add_event(
        &app,
        release,
        "audit",
        &format!(
            "{} requested by {} ({}) from the dashboard",
            action.name(),
            session.name,
            session.role.as_str()
        ),
        crate::clock::now_ms() as i64,
    );
    let outcome: Result<String, String> = match action {
        Action::Promote => signal(&ui, &app, Signal::Promote)
            .await
            .map(|_| "Promoted.".into()),
        Action::Pause => signal(&ui, &app, Signal::Pause)
            .await
            .map(|_| "Paused.".into()),
        Action::Resume => signal(&ui, &app, Signal::Resume)
            .await
            .map(|_| "Resumed.".into()),
        Action::Abort => signal(
            &ui,
            &app,
            Signal::Abort {
                reason: format!("aborted by {} from the dashboard", session.name),
            },
        )
        .await
        .map(|_| "Aborted: traffic is going back to the stable release.".into()),
        Action::Rollback => {
            let to = match form
                .get("to")
                .map(|t| t.trim().trim_start_matches('v'))
                .filter(|t| !t.is_empty())
            {
                Some(t) => match t.parse() {
                    Ok(v) => Some(v),
                    Err(_) => {
                        return message(&session, StatusCode::BAD_REQUEST, "Not a release", t);
                    }
                },
                None => None,
            };
            let deployer = ui.api.deployer.clone();
            let (app2, who2) = (app.clone(), who.clone());
            match tokio::spawn(async move {
                deployer
                    .rollback(
                        &app2,
                        RollbackRequest {
                            to,
                            who: who2,
                            message: Some("from the dashboard".into()),
                        },
                    )
                    .await
            })
            .await
            {
                Ok(Ok(a)) => Ok(format!("Rolling back with release v{}.", a.release)),
                Ok(Err(r)) => Err(refusal_text(r)),
                Err(e) => Err(e.to_string()),
            }
        }
        Action::Scale => {
            let mut wanted = BTreeMap::new();
            for (k, v) in &form {
                if let Some(process) = k.strip_prefix("scale_") {
                    match v.trim().parse::<u32>() {
                        Ok(n) => {
                            wanted.insert(process.to_string(), n);
                        }
                        Err(_) => {
                            return message(&session, StatusCode::BAD_REQUEST, "Not a number", v);
                        }
                    }
                }
            }
            let current = formation(&ui, &app).await;
            wanted.retain(|p, n| current.get(p) != Some(n));
            let deployer = ui.api.deployer.clone();
            let (app2, who2) = (app.clone(), who.clone());
            match tokio::spawn(async move {
                deployer
                    .scale(
                        &app2,
                        ScaleRequest {
                            formation: wanted,
                            who: who2,
                        },
                    )
                    .await
            })
            .await
            {
                Ok(Ok(a)) => Ok(format!("Scaled: release v{}.", a.release)),
                Ok(Err(r)) => Err(refusal_text(r)),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match outcome {
        Ok(done) => done_redirect(&format!("/ui/apps/{app}"), &done),
        Err(why) => message(&session, StatusCode::CONFLICT, "Could not do that", &why),
    }
}

/// Why a dashboard POST is refused (403), if it is: a CSRF token that is not the session's, a foreign
/// Origin, or a viewer's session.
pub(super) fn refuse_post(session: &Session, csrf: &str, headers: &HeaderMap) -> Option<Response> {
    if !session.csrf_ok(csrf) || foreign_origin(headers) {
        return Some(message(
            session,
            StatusCode::FORBIDDEN,
            "Refused",
            "This form did not come from this dashboard session (CSRF check failed).",
        ));
    }
    if !session.can_act() {
        return Some(message(
            session,
            StatusCode::FORBIDDEN,
            "Not allowed",
            "A viewer can look, not act.",
        ));
    }
    None
}

/// Back to `page`, which shows what was done once (`?done=`).
pub(super) fn done_redirect(page: &str, done: &str) -> Response {
    let q: String = done
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    Redirect::to(&format!("{page}?done={q}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_origins_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:9000".parse().unwrap());
        assert!(
            !foreign_origin(&h),
            "no Origin: not a browser's cross-site post"
        );
        h.insert(header::ORIGIN, "http://127.0.0.1:9000".parse().unwrap());
        assert!(!foreign_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(foreign_origin(&h));
    }

    #[test]
    fn actions_round_trip_by_name() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        assert_eq!(Action::parse("delete"), None);
    }
}
