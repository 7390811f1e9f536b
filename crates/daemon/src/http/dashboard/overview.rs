//! The overview: every app with its stable release, rollout state and step, traffic weights per release
//! and sparklines of request rate, error rate and p95 per release.

use super::Ui;
use super::chart::{Unit, sparkline};
use super::layout::page;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use slipway_api::{AppStatus, ReleaseSeries};
use slipway_core::release::Version;

/// Colour of a release: the stable (or rollout's from) release first, the new one second, others after.
pub fn colour(status: &AppStatus, v: Version) -> usize {
    let (from, to) = match &status.rollout {
        Some(r) => (r.from, Some(r.to)),
        None => (status.stable.as_ref().map(|s| s.version), None),
    };
    if Some(v) == from {
        0
    } else if Some(v) == to {
        1
    } else {
        2 + (v as usize % 2)
    }
}

/// Traffic share per release right now: from the rollout's plan, else all to the stable release.
pub fn weights(status: &AppStatus) -> Vec<(Version, u32)> {
    match &status.rollout {
        Some(r) => {
            let mut w = Vec::new();
            if let Some(from) = r.from {
                w.push((from, r.weight_from));
            }
            w.push((r.to, r.weight_to));
            w
        }
        None => status
            .stable
            .as_ref()
            .map(|s| vec![(s.version, 100)])
            .unwrap_or_default(),
    }
}

/// "canary · step 2/4 · progressing", "stable".
pub fn state_line(status: &AppStatus) -> String {
    match &status.rollout {
        None => "no rollout in progress".into(),
        Some(r) => {
            let mut s = format!(
                "{} to v{} · {}",
                r.strategy,
                r.to,
                r.phase.replace('_', " ")
            );
            if let Some(c) = &r.canary {
                s.push_str(&format!(" · step {}/{}", c.step.min(c.steps), c.steps));
                if c.paused {
                    s.push_str(" · paused");
                }
            }
            s
        }
    }
}

pub fn weight_bar(status: &AppStatus) -> Markup {
    html! {
        div.weights title="traffic per release" {
            @for (v, w) in weights(status) {
                @if w > 0 {
                    span class=(format!("bg{}", colour(status, v))) style=(format!("width:{w}%")) {}
                }
            }
        }
    }
}

fn app_card(status: &AppStatus, series: &[ReleaseSeries]) -> Markup {
    let weights = weights(status);
    html! {
        div.card data-app=(status.app) {
            div.app-head {
                h2 { a href=(format!("/ui/apps/{}", status.app)) { (status.app) } }
                span {
                    "stable "
                    @match &status.stable {
                        Some(s) => { strong { "v" (s.version) } @if let Some(l) = &s.label { " (" (l) ")" } }
                        None => { "none yet" }
                    }
                }
                span.muted.state { (state_line(status)) }
                a.flags-link href=(format!("/ui/apps/{}/flags", status.app)) { "flags" }
            }
            (weight_bar(status))
            table {
                tr { th { "release" } th { "traffic" } th { "requests" } th { "errors" } th { "p95" } }
                @for s in series.iter().filter(|s| weights.iter().any(|w| w.0 == s.release) || s.rps.iter().rev().take(5).any(|r| *r > 0.0)) {
                    @let c = colour(status, s.release);
                    @let w = weights.iter().find(|w| w.0 == s.release).map_or(0, |w| w.1);
                    tr.release data-release=(s.release) {
                        td { i class=(format!("swatch c{c}")) {} "v" (s.release) }
                        td.weight { (w) " %" }
                        td { (sparkline(&s.rps.iter().map(|r| Some(*r)).collect::<Vec<_>>(), c, Unit::PerSecond)) }
                        td { (sparkline(&s.error_rate, c, Unit::Percent)) }
                        td { (sparkline(&s.p95_ms, c, Unit::Millis)) }
                    }
                }
            }
            @if let Some(f) = &status.last_failure { p.muted { "last rollout: " (f) } }
        }
    }
}

/// The live part of the overview (the `apps` fragment).
pub fn apps(list: &[(AppStatus, Vec<ReleaseSeries>)]) -> Markup {
    html! {
        @if list.is_empty() {
            div.card { p { "No app has been deployed to this daemon yet: " code { "slipway deploy" } } }
        }
        @for (status, series) in list {
            (app_card(status, series))
        }
    }
}

pub async fn gather(ui: &Ui) -> Vec<(AppStatus, Vec<ReleaseSeries>)> {
    let mut out = Vec::new();
    for status in ui.statuses(None).await {
        let series = ui.series(&status.app).await;
        out.push((status, series));
    }
    out
}

pub async fn show(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    let (_, session) = match ui.session(&headers) {
        Ok(s) => s,
        Err(to_login) => return to_login.into_response(),
    };
    let list = gather(&ui).await;
    page(
        "Overview",
        Some(&session),
        Some("/ui/stream/overview"),
        html! {
            h1 { "Apps" }
            div #apps { (apps(&list)) }
        },
    )
    .into_response()
}
