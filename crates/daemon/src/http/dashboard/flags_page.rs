//! One app's feature flags: each flag with its variants, default, state, targeting in words, ramp
//! progress and last changes, plus the app's recent flag changes from the audit log. Live over the
//! page's SSE stream like the other pages. Rendering is pure over [`FlagsData`]; [`gather`] reads it.

use super::Ui;
use super::flag_changes::describe;
use super::layout::{ago, duration, page};
use super::session::Session;
use super::targeting;
use crate::clock::now_ms;
use crate::flags::ramps;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use slipway_api::flags::{FlagAudit, RampView};
use slipway_flags::{Flag, FlagState};
use std::collections::BTreeMap;

/// Changes listed under each flag, and for the whole app.
const PER_FLAG: usize = 3;
const RECENT: usize = 25;
/// A finished ramp stays on its flag's card this long, so that a revert is seen.
const FINISHED_RAMP_SHOWN_MS: i64 = 24 * 3600 * 1000;

pub struct FlagsData {
    pub app: String,
    pub flags: Vec<(String, Flag)>,
    pub evaluators: BTreeMap<String, Value>,
    /// Each flag's latest ramp.
    pub ramps: BTreeMap<String, RampView>,
    /// The app's flag changes, newest first.
    pub audit: Vec<FlagAudit>,
    /// Flags whose targeting does not compile.
    pub problems: Vec<String>,
    pub now: i64,
}

pub async fn gather(ui: &Ui, app: &str) -> FlagsData {
    let served = ui.api.flags.app(app);
    let flags: Vec<(String, Flag)> = served
        .set
        .flags()
        .map(|(k, f)| (k.to_string(), f.clone()))
        .collect();
    let keys: Vec<String> = flags.iter().map(|f| f.0.clone()).collect();
    let store = ui.api.flags.store().clone();
    let name = app.to_string();
    let (ramps, audit) = tokio::task::spawn_blocking(move || {
        let ramps: BTreeMap<String, RampView> = keys
            .into_iter()
            .filter_map(|k| {
                let record = store.latest_flag_ramp(&name, &k).ok().flatten()?;
                Some((k, ramps::view(&record)?))
            })
            .collect();
        let audit = store.flag_audit(&name, None, RECENT).unwrap_or_default();
        (ramps, audit)
    })
    .await
    .unwrap_or_default();
    FlagsData {
        app: app.to_string(),
        flags,
        evaluators: served.set.evaluators().clone(),
        ramps,
        audit,
        problems: served
            .set
            .targeting_errors()
            .map(|(k, e)| format!("{k}: targeting does not compile ({e}); it answers PARSE_ERROR"))
            .collect(),
        now: now_ms() as i64,
    }
}

/// enabled / disabled / killed: what evaluations get now.
pub fn state_of(flag: &Flag) -> &'static str {
    if flag.killed {
        "killed"
    } else if flag.state == FlagState::Disabled {
        "disabled"
    } else {
        "enabled"
    }
}

/// The targeting as the page shows it, saying when it does not apply.
pub fn targeting_text(flag: &Flag, evaluators: &BTreeMap<String, Value>) -> String {
    let default = flag
        .default_variant
        .as_deref()
        .map_or("the caller's own default".to_string(), str::to_string);
    let rule = flag
        .targeting
        .as_ref()
        .filter(|t| !t.as_object().is_some_and(|o| o.is_empty()));
    match (rule, flag.killed) {
        (None, _) => format!("none: everyone gets {default}"),
        (Some(rule), true) => format!(
            "ignored while killed (everyone gets {default}); kept: {}",
            targeting::summary(rule, evaluators)
        ),
        (Some(rule), false) => targeting::summary(rule, evaluators),
    }
}

/// "step 2/4: 25 % get on · next step in 12m 03s · guard: pass (…)".
pub fn ramp_text(r: &RampView, now: i64) -> String {
    let mut s = format!(
        "ramp #{} to {}: step {}/{} at {} %",
        r.id,
        r.variant,
        (r.step + 1).min(r.steps.len()),
        r.steps.len(),
        r.percent
    );
    match r.finished_at {
        None => {
            s.push_str(&format!(" · {}", r.status));
            if let Some(end) = r.step_ends_at {
                if end > now {
                    s.push_str(&format!(" · next step in {}", duration(end - now)));
                } else if r.guarded {
                    s.push_str(" · step time is up, waiting for its traffic to pass");
                }
            }
            s.push_str(&match (&r.judgement, r.guarded) {
                (_, false) => " · unguarded (advances on time alone)".to_string(),
                (Some(j), true) => format!(" · guard: {j}"),
                (None, true) => " · guard: no verdict yet".to_string(),
            });
        }
        Some(at) => {
            s.push_str(&format!(" · {} {}", r.status, ago(at, now)));
            if let Some(reason) = &r.reason {
                s.push_str(&format!(": {reason}"));
            }
        }
    }
    s
}

fn variants(flag: &Flag) -> Markup {
    html! {
        @for (name, value) in &flag.variants {
            @let is_default = flag.default_variant.as_deref() == Some(name.as_str());
            span.badge.variant.pass[is_default] title=(if is_default { "default variant" } else { "variant" }) {
                (name) " = " code { (value.to_json().to_string()) }
                @if is_default { " (default)" }
            }
            " "
        }
    }
}

fn buttons(app: &str, key: &str, flag: &Flag, session: &Session) -> Markup {
    if !session.can_act() {
        return html! {};
    }
    let state = state_of(flag);
    let list: Vec<(&str, &str, bool)> = [
        ("enable", "Enable", state != "enabled"),
        ("disable", "Disable", state != "disabled"),
        ("kill", "Kill", state != "killed"),
    ]
    .into_iter()
    .filter(|b| b.2)
    .map(|(a, l, _)| (a, l, a == "kill"))
    .collect();
    html! {
        div.actions {
            @for (action, label, danger) in list {
                a.btn.danger[danger] data-flag-action=(action) data-flag=(key)
                    href=(format!("/ui/apps/{app}/flags/{key}/confirm/{action}")) { (label) }
            }
        }
    }
}

fn change_line(e: &FlagAudit, now: i64) -> Markup {
    let what = describe(e.before.as_deref(), e.after.as_deref());
    html! {
        span.muted { "#" (e.seq) " · " (ago(e.at, now)) " · " }
        strong { (e.action) } " by " span.who { (e.who) }
        @if !what.is_empty() { " · " (what.join(", ")) }
        @if let Some(r) = &e.reason { span.muted { " — " (r) } }
    }
}

fn flag_card(d: &FlagsData, key: &str, flag: &Flag, session: &Session) -> Markup {
    let state = state_of(flag);
    let badge = match state {
        "enabled" => "pass",
        "killed" => "fail",
        _ => "inconclusive",
    };
    let ramp = d.ramps.get(key).filter(|r| {
        r.finished_at
            .is_none_or(|at| d.now - at < FINISHED_RAMP_SHOWN_MS)
    });
    html! {
        div.card.flag data-flag=(key) data-state=(state) {
            div.app-head {
                h2 { code { (key) } }
                span class=(format!("badge state {badge}")) { (state) }
                @if let Some(kind) = flag.variant_type() { span.muted { (kind.to_string()) } }
            }
            table {
                tr { th { "variants" } td { (variants(flag)) } }
                tr { th { "default" } td.default { (flag.default_variant.as_deref().unwrap_or("(none: the caller's own default)")) } }
                tr { th { "targeting" } td.targeting { (targeting_text(flag, &d.evaluators)) } }
                @if let Some(r) = ramp { tr { th { "ramp" } td.ramp { (ramp_text(r, d.now)) } } }
                tr {
                    th { "last changes" }
                    td.changes {
                        @for e in d.audit.iter().filter(|e| e.flag == key).take(PER_FLAG) { div { (change_line(e, d.now)) } }
                    }
                }
            }
            (buttons(&d.app, key, flag, session))
        }
    }
}

/// The live parts of the page, by element id.
pub fn fragments(d: &FlagsData, session: &Session) -> Vec<(&'static str, Markup)> {
    let flags = html! {
        @if !d.problems.is_empty() {
            div.card.error { @for p in &d.problems { p { (p) } } }
        }
        @if d.flags.is_empty() {
            div.card { p { (d.app) " has no flags yet: " code { "slipway flags import flags.json" } } }
        }
        @for (key, flag) in &d.flags { (flag_card(d, key, flag, session)) }
    };
    let changes = html! {
        @if d.audit.is_empty() { p.muted { "No flag changes yet." } }
        @else {
            table {
                tr { th { "flag" } th { "change" } }
                @for e in &d.audit {
                    tr.change data-flag=(e.flag) { td { code { (e.flag) } } td { (change_line(e, d.now)) } }
                }
            }
        }
    };
    vec![("flags", flags), ("changes", changes)]
}

#[derive(Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

pub async fn show(
    State(ui): State<Ui>,
    Path(app): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let (_, session) = match ui.session(&headers) {
        Ok(s) => s,
        Err(to_login) => return to_login.into_response(),
    };
    let data = gather(&ui, &app).await;
    let parts = fragments(&data, &session);
    let part = |id: &str| parts.iter().find(|p| p.0 == id).map(|p| p.1.clone());
    page(
        &format!("Flags · {app}"),
        Some(&session),
        Some(&format!("/ui/stream/apps/{app}/flags")),
        html! {
            p { a href="/ui/" { "← all apps" } " · " a href=(format!("/ui/apps/{app}")) { "← " (app) } }
            h1 { "Feature flags of " (app) }
            @if let Some(done) = &q.done { div.card.flash #flash { (done) } }
            div #flags { @if let Some(b) = part("flags") { (b) } }
            section.card { h2 { "Recent flag changes" } div #changes { @if let Some(b) = part("changes") { (b) } } }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ramp(finished_at: Option<i64>) -> RampView {
        RampView {
            id: 3,
            variant: "on".into(),
            steps: vec![5, 25, 50, 100],
            step: 1,
            percent: 25,
            every_ms: 60_000,
            status: if finished_at.is_some() {
                "reverted"
            } else {
                "running"
            }
            .into(),
            reason: finished_at.map(|_| "fail: errors 4 % vs 0 %".into()),
            judgement: Some("pass: 0 % errors".into()),
            started_at: 0,
            started_by: "alice".into(),
            finished_at,
            step_ends_at: Some(100_000),
            guarded: true,
        }
    }

    #[test]
    fn ramps_show_their_step_next_time_and_guard() {
        assert_eq!(
            ramp_text(&ramp(None), 40_000),
            "ramp #3 to on: step 2/4 at 25 % · running · next step in 1m 00s · guard: pass: 0 % errors"
        );
        assert_eq!(
            ramp_text(&ramp(Some(10_000)), 70_000),
            "ramp #3 to on: step 2/4 at 25 % · reverted 1 min ago: fail: errors 4 % vs 0 %"
        );
    }

    #[test]
    fn state_and_targeting_say_what_evaluations_get() {
        let mut flag = Flag::boolean(false).with_targeting(
            json!({"fractional": [{"var": "targetingKey"}, ["on", 25], ["off", 75]]}),
        );
        let none = BTreeMap::new();
        assert_eq!(state_of(&flag), "enabled");
        assert_eq!(
            targeting_text(&flag, &none),
            "fractional on targetingKey: on 25 % / off 75 %"
        );
        flag.kill();
        assert_eq!(state_of(&flag), "killed");
        assert!(
            targeting_text(&flag, &none).starts_with("ignored while killed (everyone gets off)"),
            "{}",
            targeting_text(&flag, &none)
        );
        let plain = Flag::boolean(true);
        assert_eq!(targeting_text(&plain, &none), "none: everyone gets on");
    }
}
