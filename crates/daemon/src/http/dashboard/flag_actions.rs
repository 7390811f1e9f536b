//! Enable, disable and kill a flag from the dashboard. Like the rollout actions: a confirmation page
//! that says what will happen to evaluations, then a form carrying the session's CSRF token; refused
//! (403) for viewers, forged posts and foreign origins. The change goes through the same path as
//! `slipway flags kill` and lands in the flag audit with the user's token name.

use super::Ui;
use super::actions::{done_redirect, message, refuse_post};
use super::flags_page::{state_of, targeting_text};
use super::layout::page;
use crate::error::ErrorKind;
use crate::flags::{Edit, Origin};
use crate::http::flag_admin as admin;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use slipway_api::flags::FlagEdit;
use slipway_flags::Flag;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagAction {
    Enable,
    Disable,
    Kill,
}

impl FlagAction {
    pub const ALL: [FlagAction; 3] = [FlagAction::Enable, FlagAction::Disable, FlagAction::Kill];

    pub fn parse(s: &str) -> Option<FlagAction> {
        Some(match s {
            "enable" => FlagAction::Enable,
            "disable" => FlagAction::Disable,
            "kill" => FlagAction::Kill,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FlagAction::Enable => "enable",
            FlagAction::Disable => "disable",
            FlagAction::Kill => "kill",
        }
    }
}

/// What pressing the button does to evaluations, in this flag's current state. `ramping`: the running
/// ramp's id, which any change stops. Pure.
pub fn consequence(
    action: FlagAction,
    key: &str,
    flag: &Flag,
    evaluators: &BTreeMap<String, serde_json::Value>,
    ramping: Option<i64>,
) -> String {
    let default = match &flag.default_variant {
        Some(d) => format!("its default variant `{d}`"),
        None => "the caller's own default value (the flag has no default variant)".into(),
    };
    let mut s = match action {
        FlagAction::Kill => format!(
            "kill `{key}`: every evaluation returns {default} at once, everywhere; its targeting is \
             ignored but kept, and `enable` brings it back."
        ),
        FlagAction::Disable => format!(
            "disable `{key}`: every evaluation returns the caller's own default value (reason \
             DISABLED) at once, everywhere, until it is enabled again."
        ),
        FlagAction::Enable => {
            let mut revived = flag.clone();
            revived.revive();
            format!(
                "enable `{key}`{}: evaluations follow its targeting again ({}).",
                match state_of(flag) {
                    "killed" => " (now killed)",
                    "disabled" => " (now disabled)",
                    _ => " (already enabled: nothing changes)",
                },
                targeting_text(&revived, evaluators)
            )
        }
    };
    if let Some(id) = ramping {
        s.push_str(&format!(
            " Its ramp #{id} stops, leaving the flag as this change makes it."
        ));
    }
    s
}

async fn ramping(ui: &Ui, app: &str, key: &str) -> Option<i64> {
    let store = ui.api.flags.store().clone();
    let (app, key) = (app.to_string(), key.to_string());
    tokio::task::spawn_blocking(move || store.active_flag_ramp(&app, &key).ok().flatten())
        .await
        .ok()
        .flatten()
        .map(|r| r.id)
}

pub async fn confirm(
    State(ui): State<Ui>,
    Path((app, key, action)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, session) = match ui.session(&headers) {
        Ok(s) => s,
        Err(to_login) => return to_login.into_response(),
    };
    if !session.can_act() {
        let why = "A viewer can look, not act.";
        return message(&session, StatusCode::FORBIDDEN, "Not allowed", why);
    }
    let Some(action) = FlagAction::parse(&action) else {
        return message(&session, StatusCode::NOT_FOUND, "No such action", &action);
    };
    let served = ui.api.flags.app(&app);
    let Some(flag) = served.set.get(&key) else {
        let what = format!("{app} has no flag {key}");
        return message(&session, StatusCode::NOT_FOUND, "No such flag", &what);
    };
    let ramp = ramping(&ui, &app, &key).await;
    let text = consequence(action, &key, flag, served.set.evaluators(), ramp);
    page(
        &format!("{} {key}?", action.name()),
        Some(&session),
        None,
        html! {
            div.card {
                h1 { "Confirm: " (action.name()) " flag " code { (key) } " of " (app) }
                p #consequence { (text) }
                form method="post" action=(format!("/ui/apps/{app}/flags/{key}/actions/{}", action.name())) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    p { label { "reason (optional, kept in the audit) " input type="text" name="reason" maxlength="200"; } }
                    div.actions {
                        button.primary #confirm type="submit" { "Yes, " (action.name()) " " (key) }
                        a.btn href=(format!("/ui/apps/{app}/flags")) { "Cancel" }
                    }
                }
            }
        },
    )
    .into_response()
}

pub async fn act(
    State(ui): State<Ui>,
    Path((app, key, action)): Path<(String, String, String)>,
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
    let Some(action) = FlagAction::parse(&action) else {
        return message(&session, StatusCode::NOT_FOUND, "No such action", &action);
    };
    let reason = form
        .get("reason")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(String::from);
    let request = FlagEdit {
        who: format!("{} (dashboard)", session.name),
        action: action.name().into(),
        definition: None,
        default_variant: None,
        targeting: None,
        reason,
    };
    let edit = Edit {
        who: request.who.clone(),
        action: request.action.clone(),
        reason: request.reason.clone(),
        origin: Origin::Operator,
    };
    // The change takes the flags' writer lock and writes the store: off the async threads.
    let flags = ui.api.flags.clone();
    let (app2, key2) = (app.clone(), key.clone());
    let done = tokio::task::spawn_blocking(move || {
        flags.change(
            &app2,
            &edit,
            |set| admin::apply(set, &app2, &key2, &request),
            |_| Ok(()),
        )
    })
    .await;
    match done {
        Ok(Ok(changes)) => {
            let text = match changes.changed.first() {
                Some(c) => format!("{} {key}: done (#{} in its history).", action.name(), c.seq),
                None => format!("{key} was already so: nothing changed."),
            };
            done_redirect(&format!("/ui/apps/{app}/flags"), &text)
        }
        Ok(Err(e)) if e.kind == ErrorKind::NotFound => {
            message(&session, StatusCode::NOT_FOUND, "No such flag", &e.message)
        }
        Ok(Err(e)) => message(
            &session,
            StatusCode::CONFLICT,
            "Could not do that",
            &e.message,
        ),
        Err(e) => message(
            &session,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not do that",
            &e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmation_says_what_evaluations_will_get() {
        let mut flag = Flag::boolean(false);
        let none = BTreeMap::new();
        assert_eq!(
            consequence(FlagAction::Kill, "new-checkout", &flag, &none, None),
            "kill `new-checkout`: every evaluation returns its default variant `off` at once, \
             everywhere; its targeting is ignored but kept, and `enable` brings it back."
        );
        assert!(
            consequence(FlagAction::Disable, "f", &flag, &none, Some(4))
                .ends_with("Its ramp #4 stops, leaving the flag as this change makes it.")
        );
        flag.kill();
        let enable = consequence(FlagAction::Enable, "f", &flag, &none, None);
        assert!(enable.contains("(now killed)"), "{enable}");
        assert!(enable.contains("everyone gets off"), "{enable}");
        for a in FlagAction::ALL {
            assert_eq!(FlagAction::parse(a.name()), Some(a));
        }
        assert_eq!(FlagAction::parse("delete"), None);
    }
}
