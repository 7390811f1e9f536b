//! One app: the rollout as a timeline of its steps with weights and time left, live charts per release
//! with the analysis thresholds, verdicts, the shadow report, instances, events, release history with
//! what changed, and a live log tail. Rendering is pure over [`AppData`]; [`gather`] reads it.

use super::Ui;
use super::chart::{Line, Threshold, Unit, chart};
use super::diff::{ReleaseDiff, diff, short_digest};
use super::layout::{ago, duration, page};
use super::overview::{colour, state_line, weight_bar, weights};
use super::session::Session;
use crate::clock::now_ms;
use crate::control::series::{EVERY_MS, POINTS};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use slipway_api::{AppStatus, ReleaseSeries, RolloutStatus};
use slipway_core::release::Release;
use slipway_core::spec::{CanaryStep, Check, Strategy};
use slipway_store::Event;

/// Releases shown in the history, newest first.
const HISTORY: usize = 15;
const EVENTS: usize = 40;

pub struct AppData {
    pub status: AppStatus,
    pub series: Vec<ReleaseSeries>,
    /// `[slo]`: the budget, burn rates and the budget left over the window.
    pub slo: Option<crate::control::slo_round::SloSnapshot>,
    /// The release being rolled out (its steps and analysis templates), when a rollout runs.
    pub target: Option<Release>,
    /// Newest first, one more than shown (to diff the oldest shown one).
    pub releases: Vec<Release>,
    /// Newest first.
    pub events: Vec<Event>,
    pub now: i64,
}

pub async fn gather(ui: &Ui, app: &str) -> Option<AppData> {
    let status = ui.statuses(Some(app)).await.pop()?;
    let series = ui.series(app).await;
    let slo = ui.slo(app).await;
    let store = ui.api.store.clone();
    let (name, to) = (app.to_string(), status.rollout.as_ref().map(|r| r.to));
    let (target, releases, events) = tokio::task::spawn_blocking(move || {
        let target = to.and_then(|v| store.release(&name, v).ok().flatten());
        let mut releases = store.releases(&name).unwrap_or_default();
        releases.truncate(HISTORY + 1);
        let events = store.latest_events(&name, EVENTS).unwrap_or_default();
        (target, releases, events)
    })
    .await
    .ok()?;
    Some(AppData {
        status,
        series,
        slo,
        target,
        releases,
        events,
        now: now_ms() as i64,
    })
}

fn step_text(step: &CanaryStep) -> String {
    match step {
        CanaryStep::Weight(w) => format!("weight {w} %"),
        CanaryStep::Pause(Some(d)) => format!("pause {}", duration(d.as_millis() as i64)),
        CanaryStep::Pause(None) => "pause until promoted".into(),
        CanaryStep::Analysis {
            template,
            duration: d,
        } => {
            format!("analysis {template} for {}", duration(d.as_millis() as i64))
        }
        CanaryStep::Route(_) => "route matching requests".into(),
        CanaryStep::Mirror(p) => format!("mirror {p} %"),
    }
}

fn step_length(step: &CanaryStep) -> Option<i64> {
    match step {
        CanaryStep::Pause(Some(d)) | CanaryStep::Analysis { duration: d, .. } => {
            Some(d.as_millis() as i64)
        }
        _ => None,
    }
}

fn timeline(r: &RolloutStatus, target: Option<&Release>, now: i64) -> Markup {
    let steps = match target.map(|t| &t.spec.deploy.strategy) {
        Some(Strategy::Canary(spec)) => spec.steps.clone(),
        _ => Vec::new(),
    };
    let current = r.canary.as_ref().map_or(0, |c| c.step.saturating_sub(1));
    html! {
        @if let Some(c) = &r.canary {
            ol.steps #timeline {
                @for (i, step) in steps.iter().enumerate() {
                    @let state = if i < current { "done" } else if i == current { "current" } else { "next" };
                    li class=(state) data-step=(i + 1) {
                        span.muted { (i + 1) ". " } (step_text(step))
                        @if i == current {
                            @if let Some(len) = step_length(step) {
                                br; span.left { (duration(c.step_started_at + len - now)) " left" }
                            }
                            @if c.paused { br; strong { "paused" } }
                        }
                    }
                }
                li class=(if current >= steps.len() { "current" } else { "next" }) { "promote to 100 %" }
            }
        }
    }
}

fn actions(app: &str, s: &AppStatus, session: &Session) -> Markup {
    if !session.can_act() {
        return html! {};
    }
    let r = s.rollout.as_ref();
    let running = r.is_some_and(|r| r.outcome.is_none());
    let paused = r.and_then(|r| r.canary.as_ref()).is_some_and(|c| c.paused);
    let canary = r.is_some_and(|r| r.canary.is_some());
    let mut list: Vec<(&str, &str, bool)> = Vec::new();
    if running {
        list.push(("promote", "Promote", false));
        if canary && !paused {
            list.push(("pause", "Pause", false));
        }
        if paused {
            list.push(("resume", "Resume", false));
        }
        list.push(("abort", "Abort", true));
    }
    if s.stable.is_some() {
        list.push(("rollback", "Roll back", true));
        list.push(("scale", "Scale", false));
    }
    html! {
        div.actions {
            @for (action, label, danger) in list {
                a.btn.danger[danger] data-action=(action) href=(format!("/ui/apps/{app}/confirm/{action}")) { (label) }
            }
        }
    }
}

fn rollout_fragment(d: &AppData, session: &Session) -> Markup {
    let s = &d.status;
    html! {
        div.app-head {
            span { "stable " @match &s.stable { Some(st) => { strong { "v" (st.version) } } None => { "none yet" } } }
            span.state { (state_line(s)) }
            span.muted {
                @for (v, w) in weights(s) { "v" (v) " " span.weight data-release=(v) { (w) } " % · " }
            }
        }
        (weight_bar(s))
        @if let Some(r) = &s.rollout {
            p.muted {
                "started " (ago(r.started_at, d.now))
                @if r.outcome.is_none() { " · deadline in " (duration(r.deadline - d.now)) }
                " · new release ready " (r.ready_to) "/" (r.want_to)
                @if let Some(reason) = &r.reason { " · " (reason) }
            }
            (timeline(r, d.target.as_ref(), d.now))
        }
        @if let Some(f) = &s.last_failure { p.muted { "last rollout: " (f) } }
        @if let Some(w) = &s.watch {
            p.watch data-state=(w.state) {
                "watch of v" (w.release) " against v" (w.compared_with) " before the switch: "
                strong { (w.state) }
                @if w.state == "watching" { " · " (duration(w.ends_at - d.now)) " left" }
                @if let Some(verdict) = &w.verdict { " · " (verdict) }
                @if let Some(detail) = &w.detail { " · " span.muted { (detail) } }
            }
        }
        @if let Some(m) = &s.maintenance {
            p.maintenance {
                strong { "In maintenance" } " since " (ago(m.since, d.now)) " · "
                (m.held_requests) " request(s) held, each up to " (m.hold_seconds) " s"
                @if let Some(reason) = &m.reason { " · " (reason) }
            }
        }
        @if let Some(a) = &s.scaling {
            p.muted.autoscale {
                "autoscale: "
                @if a.replicas == 0 { "scaled to zero" } @else { (a.replicas) " instance(s)" }
                " (" (a.min) "–" (a.max)
                @if let (Some(kind), Some(n)) = (&a.target_kind, a.target) {
                    ", " (kind) " " (n) " each, load " (format!("{:.1}", a.load))
                }
                ")"
                @if let (Some(change), Some(at)) = (&a.last_change, a.last_change_at) {
                    " · " (ago(at, d.now)) ": " (change)
                }
                @for c in &a.cold_starts { " · cold start of v" (c.release) ": " (c.millis) " ms" }
            }
        }
        (actions(&s.app, s, session))
    }
}

/// The thresholds of the rollout's analysis templates, for the error-rate and latency charts.
fn thresholds(d: &AppData) -> (Vec<Threshold>, Vec<Threshold>) {
    let (mut errors, mut latency) = (Vec::new(), Vec::new());
    let (Some(target), Some(r)) = (&d.target, &d.status.rollout) else {
        return (errors, latency);
    };
    let stable_now = r
        .from
        .and_then(|v| d.series.iter().find(|s| s.release == v))
        .and_then(|s| s.error_rate.iter().rev().flatten().next().copied())
        .unwrap_or(0.0);
    for (name, template) in &target.spec.analysis {
        for check in &template.checks {
            match check {
                Check::ErrorRate {
                    max,
                    compare_stable,
                } => errors.push(Threshold {
                    value: if *compare_stable {
                        stable_now + max
                    } else {
                        *max
                    },
                    label: if *compare_stable {
                        format!("{name}: stable + {}", Unit::Percent.format(*max))
                    } else {
                        format!("{name}: max {}", Unit::Percent.format(*max))
                    },
                }),
                Check::Latency {
                    percentile,
                    max,
                    compare_stable: false,
                } => latency.push(Threshold {
                    value: max.as_secs_f64() * 1000.0,
                    label: format!(
                        "{name}: p{percentile} max {}",
                        Unit::Millis.format(max.as_secs_f64() * 1000.0)
                    ),
                }),
                _ => {}
            }
        }
    }
    (errors, latency)
}

fn charts_fragment(d: &AppData) -> Markup {
    let span = (EVERY_MS as usize * POINTS) as i64;
    let line = |s: &ReleaseSeries, values: &[Option<f64>], suffix: &str, dashed: bool| Line {
        label: format!("v{}{suffix}", s.release),
        colour: colour(&d.status, s.release),
        points: s.t.iter().copied().zip(values.iter().copied()).collect(),
        dashed,
    };
    let rps: Vec<Line> = d
        .series
        .iter()
        .map(|s| {
            line(
                s,
                &s.rps.iter().map(|r| Some(*r)).collect::<Vec<_>>(),
                "",
                false,
            )
        })
        .collect();
    let errors: Vec<Line> = d
        .series
        .iter()
        .map(|s| line(s, &s.error_rate, "", false))
        .collect();
    let mut latency = Vec::new();
    for s in &d.series {
        let mut p50 = line(s, &s.p50_ms, "", true);
        p50.label.clear();
        let mut p99 = line(s, &s.p99_ms, "", true);
        p99.label.clear();
        latency.push(p50);
        latency.push(line(s, &s.p95_ms, "", false));
        latency.push(p99);
    }
    let (err_t, lat_t) = thresholds(d);
    html! {
        div.grid {
            (chart("Requests per second", None, Unit::PerSecond, &rps, &[], d.now, span))
            (chart("Error rate", Some("5xx and failed requests"), Unit::Percent, &errors, &err_t, d.now, span))
            (chart("Latency", Some("solid p95, dashed p50 (lower) and p99 (upper)"), Unit::Millis, &latency, &lat_t, d.now, span))
        }
    }
}

/// `[slo]`: each objective's budget left and burn rates, the hold, and a chart of the budget left as
/// the window went by.
fn slo_fragment(d: &AppData) -> Markup {
    let (Some(view), Some(snap)) = (&d.status.slo, &d.slo) else {
        return html! { p.muted { "No [slo] in this app's config: no error budget is kept." } };
    };
    let span = |secs: u64| match secs {
        s if s >= 86_400 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s >= 3_600 && s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        s => format!("{}m", s / 60),
    };
    let rate = |r: Option<f64>| r.map_or("–".to_string(), |r| format!("{r:.1}×"));
    let lines: Vec<Line> = view
        .objectives
        .iter()
        .enumerate()
        .map(|(i, o)| Line {
            label: o.objective.clone(),
            colour: i,
            points: snap
                .burndown
                .iter()
                .map(|(t, left)| (*t as i64, left.get(i).map(|l| l.max(0.0))))
                .collect(),
            dashed: false,
        })
        .collect();
    let window_ms = (view.window_seconds * 1000) as i64;
    html! {
        @if let Some(hold) = &view.hold {
            p.slo-hold { strong { "Deploys are held: " } (hold) ". Deploy anyway with " code { "--override-slo \"reason\"" } "." }
        }
        table {
            tr { th { "objective" } th { "budget left" } th { "bad / requests" } th { "burn rates (long / short)" } }
            @for o in &view.objectives {
                tr.slo-objective {
                    td { (o.objective) }
                    td { span class=(if o.budget_left <= 0.0 { "badge fail" } else { "badge pass" }) { (format!("{:.1}%", o.budget_left * 100.0)) } }
                    td { (o.bad) " / " (o.requests) }
                    td {
                        @for b in &o.burn_rates {
                            div {
                                (span(b.long_seconds)) "/" (span(b.short_seconds)) " ≥ " (b.threshold) "×: "
                                (rate(b.long)) " / " (rate(b.short))
                                @if b.firing { " " span.badge.fail { "firing" } }
                            }
                        }
                    }
                }
            }
        }
        (chart(
            "Error budget left",
            Some(&format!("over the {} window, since counting began", span(view.window_seconds))),
            Unit::Share,
            &lines,
            &[],
            d.now,
            window_ms,
        ))
    }
}

/// An analysis event's parts: "analysis golden (step 2): pass — canary 0% errors …" →
/// ("golden (step 2)", "pass", "canary 0% errors …").
fn verdict_event(message: &str) -> Option<(&str, &str, &str)> {
    let rest = message.strip_prefix("analysis ")?;
    let (what, rest) = rest.split_once("): ")?;
    let (verdict, detail) = rest.split_once(" — ")?;
    let what = &message["analysis ".len()..="analysis ".len() + what.len()];
    Some((what, verdict, detail))
}

fn verdicts_fragment(d: &AppData) -> Markup {
    let list = d
        .status
        .rollout
        .as_ref()
        .map(|r| r.analysis.as_slice())
        .unwrap_or(&[]);
    // Verdicts the analysis reached so far (the journal keeps each change of verdict).
    let release = d
        .status
        .rollout
        .as_ref()
        .map(|r| r.to)
        .or_else(|| d.releases.first().map(|r| r.version));
    let past: Vec<(&Event, (&str, &str, &str))> = d
        .events
        .iter()
        .filter(|e| e.kind == "analysis" && e.release == release)
        .filter_map(|e| verdict_event(&e.message).map(|v| (e, v)))
        .collect();
    html! {
        @if list.is_empty() {
            p.muted { "No analysis is running now." }
        } @else {
            table {
                tr { th { "analysis" } th { "for" } th { "verdict" } th { "why (the numbers and the test)" } }
                @for a in list {
                    tr.verdict {
                        td { (a.template) }
                        td { (a.purpose) }
                        td { @let v = a.verdict.as_deref().unwrap_or("inconclusive"); span class=(format!("badge {v}")) { (v) } }
                        td { (a.detail.as_deref().unwrap_or("no judgement yet")) }
                    }
                }
            }
        }
        @if !past.is_empty() {
            h3 { "Verdicts of v" (release.unwrap_or_default()) ", newest first" }
            table {
                @for (e, (what, verdict, detail)) in past {
                    tr.past-verdict {
                        td.muted { (ago(e.at, d.now)) }
                        td { (what) }
                        td { span class=(format!("badge {verdict}")) { (verdict) } }
                        td { (detail) }
                    }
                }
            }
        }
    }
}

fn shadow_fragment(d: &AppData) -> Markup {
    let Some(sh) = d.status.rollout.as_ref().and_then(|r| r.shadow.as_ref()) else {
        return html! { p.muted { "No mirroring in this rollout." } };
    };
    html! {
        table {
            tr { td { "mirrored" } td { (sh.mirrored) } }
            tr { td { "compared" } td { (sh.compared) } }
            tr { td { "status class differs" } td { (sh.status_class_mismatches) } }
            tr { td { "shadow failed" } td { (sh.shadow_failures) } }
            tr { td { "mean latency difference" } td { (format!("{:+.1} ms", sh.latency_diff_mean_ms)) } }
            tr { td { "bodies differ" } td { (sh.body_mismatches) " of " (sh.body_compared) } }
            tr { td { "skipped (not idempotent)" } td { (sh.skipped_non_idempotent) } }
        }
    }
}

fn instances_fragment(d: &AppData) -> Markup {
    html! {
        table {
            tr { th { "instance" } th { "release" } th { "process" } th { "state" } th.hide-narrow { "pid" } th.hide-narrow { "port" } th { "restarts" } }
            @for i in &d.status.instances {
                tr.instance {
                    td { code { (i.id) } }
                    td { "v" (i.release) }
                    td { (i.process) }
                    td { (i.state) @if i.serving { " · serving" } }
                    td.hide-narrow { (i.pid.map_or("–".into(), |p| p.to_string())) }
                    td.hide-narrow { (i.port.map_or("–".into(), |p| p.to_string())) }
                    td { (i.restarts) }
                }
            }
        }
    }
}

fn events_fragment(d: &AppData) -> Markup {
    html! {
        table {
            @for e in &d.events {
                tr.event {
                    td.muted { (ago(e.at, d.now)) }
                    td { (e.kind) }
                    td { (e.release.map_or(String::new(), |v| format!("v{v}"))) }
                    td { (e.message) }
                }
            }
        }
    }
}

fn changes(d: &ReleaseDiff) -> Markup {
    html! {
        @if d.is_empty() { span.muted { "same bits, config and formation" } }
        @if let Some((a, b)) = &d.artifact { div { "artifact " code { (short_digest(a)) } " → " code { (short_digest(b)) } } }
        @if !d.added.is_empty() { div { "config added: " (d.added.join(", ")) } }
        @if !d.changed.is_empty() { div { "config changed: " (d.changed.join(", ")) } }
        @if !d.removed.is_empty() { div { "config removed: " (d.removed.join(", ")) } }
        @if !d.secrets_added.is_empty() { div { "secrets added: " (d.secrets_added.join(", ")) } }
        @if !d.secrets_removed.is_empty() { div { "secrets removed: " (d.secrets_removed.join(", ")) } }
        @for (p, a, b) in &d.formation { div { "formation " (p) " " (a) " → " (b) } }
        @if let Some((a, b)) = &d.strategy { div { "strategy " (a) " → " (b) } }
    }
}

fn history_fragment(d: &AppData) -> Markup {
    let shown = d.releases.len().min(HISTORY);
    html! {
        table {
            tr { th { "release" } th { "status" } th.hide-narrow { "by" } th { "when" } th { "what changed from the one before" } }
            @for (i, r) in d.releases.iter().take(shown).enumerate() {
                tr.history-row data-release=(r.version) {
                    td { "v" (r.version) @if let Some(l) = &r.label { br; span.muted { (l) } } }
                    td { (r.status.as_str()) @if let Some(v) = r.rollback_of { br; span.muted { "rollback to v" (v) } } }
                    td.hide-narrow { (r.created_by) }
                    td.muted { (ago(r.created_at, d.now)) }
                    td {
                        @match d.releases.get(i + 1) {
                            Some(prev) => { (changes(&diff(prev, r))) }
                            None => { "artifact " code { (short_digest(&r.artifact)) } }
                        }
                        @if let Some(m) = &r.message { div.muted { (m) } }
                    }
                }
            }
        }
    }
}

/// The live parts of the page, by element id.
pub fn fragments(d: &AppData, session: &Session) -> Vec<(&'static str, Markup)> {
    vec![
        ("rollout", rollout_fragment(d, session)),
        ("charts", charts_fragment(d)),
        ("slo", slo_fragment(d)),
        ("verdicts", verdicts_fragment(d)),
        ("shadow", shadow_fragment(d)),
        ("instances", instances_fragment(d)),
        ("events", events_fragment(d)),
        ("history", history_fragment(d)),
    ]
}

#[derive(Deserialize)]
pub struct PageQuery {
    /// What the last action did (shown once after its redirect).
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
    let Some(data) = gather(&ui, &app).await else {
        return (
            StatusCode::NOT_FOUND,
            page(
                "Not found",
                Some(&session),
                None,
                html! { p { "No app named " (app) "." } },
            ),
        )
            .into_response();
    };
    let parts = fragments(&data, &session);
    let section = |id: &str, title: &str| {
        let body = parts.iter().find(|p| p.0 == id).map(|p| p.1.clone());
        html! { section.card { h2 { (title) } div id=(id) { @if let Some(b) = body { (b) } } } }
    };
    page(
        &app,
        Some(&session),
        Some(&format!("/ui/stream/apps/{app}")),
        html! {
            p { a href="/ui/" { "← all apps" } " · " a #flags-link href=(format!("/ui/apps/{app}/flags")) { "feature flags →" } }
            h1 { (app) }
            @if let Some(done) = &q.done { div.card.flash #flash { (done) } }
            (section("rollout", "Rollout"))
            (section("charts", "Traffic per release (last 5 minutes)"))
            (section("slo", "Service level objectives"))
            (section("verdicts", "Analysis"))
            (section("shadow", "Shadow traffic"))
            (section("instances", "Instances"))
            section.card { h2 { "Logs" } pre.logs #logtail { "connecting…" } }
            (section("events", "Events"))
            (section("history", "Releases"))
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::verdict_event;

    #[test]
    fn analysis_events_give_their_verdict() {
        assert_eq!(
            verdict_event("analysis golden (step 2): pass — canary 0% errors (0/506)"),
            Some(("golden (step 2)", "pass", "canary 0% errors (0/506)"))
        );
        assert_eq!(verdict_event("instance ready"), None);
    }
}
