//! What `slipway status` shows: the controller's live view of each app.

use crate::control::app_state::AppState;
use crate::control::controller::Controller;
use crate::control::managed::state_name;
use crate::control::runtimes::RuntimeKind;
use slipway_api::{
    AnalysisView, AppStatus, BurnRateStatus, CanaryView, ColdStart, InstanceView,
    MaintenanceStatus, ReleaseSummary, ReleaseTraffic, RolloutStatus, ScalingStatus, ShadowView,
    SloObjectiveStatus, SloStatus, WarmRelease, WatchStatus,
};
use slipway_core::rollout::Phase;
use slipway_core::spec::ScaleTarget;

pub fn phase_name(phase: &Phase) -> &'static str {
    match phase {
        Phase::Progressing => "progressing",
        Phase::StoppingOld => "stopping_old",
        Phase::AwaitingPromotion => "awaiting_promotion",
        Phase::Reverting { .. } => "reverting",
        Phase::Done { .. } => "done",
    }
}

fn percent(part: u32, whole: u32) -> u32 {
    if whole == 0 {
        0
    } else {
        (part as u64 * 100 / whole as u64) as u32
    }
}

impl Controller {
    pub(crate) fn status(&mut self, only: Option<&str>) -> Vec<AppStatus> {
        let names: Vec<String> = self
            .apps
            .keys()
            .filter(|n| only.is_none_or(|o| o == n.as_str()))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for name in names {
            let stable = self.apps[&name]
                .stable
                .and_then(|v| self.release(&name, v).ok());
            // A drill's rollout says so (`slipway drill`): its canary fails on purpose.
            let to = self.apps[&name].rollout.as_ref().map(|a| a.machine.to);
            let drill = to.is_some_and(|to| {
                self.release(&name, to)
                    .is_ok_and(|r| r.spec.drill_fault.is_some())
            });
            let app = &self.apps[&name];
            let rollout = app.rollout.as_ref().map(|a| {
                let r = &a.machine;
                let (outcome, reason) = match &r.phase {
                    Phase::Done { outcome, reason } => {
                        (Some(outcome.as_str().to_string()), reason.clone())
                    }
                    Phase::Reverting { outcome, reason } => {
                        (Some(outcome.as_str().to_string()), Some(reason.clone()))
                    }
                    _ => (None, None),
                };
                let total = a.traffic.from + a.traffic.to;
                RolloutStatus {
                    id: a.id,
                    from: r.from,
                    to: r.to,
                    strategy: if a.rollback {
                        "rollback".into()
                    } else if drill {
                        "drill".into()
                    } else {
                        r.strategy.name().into()
                    },
                    phase: phase_name(&r.phase).into(),
                    outcome,
                    reason,
                    weight_from: percent(a.traffic.from, total),
                    weight_to: percent(a.traffic.to, total),
                    ready_from: a.seen.ready_from,
                    ready_to: a.seen.ready_to,
                    want_to: r.to_replicas,
                    started_at: r.started_at as i64,
                    deadline: r.deadline as i64,
                    canary: match &r.strategy {
                        slipway_core::spec::Strategy::Canary(spec) => Some(CanaryView {
                            step: r.canary.step + 1,
                            steps: spec.steps.len(),
                            weight: r.canary.weight,
                            effective_weight: r.canary.effective_weight,
                            paused: r.canary.paused,
                            routes: r.canary.routes.len(),
                            mirror: r.canary.mirror,
                            step_started_at: r.canary.step_started_at as i64,
                        }),
                        _ => None,
                    },
                    shadow: a.shadow.as_ref().map(|report| {
                        let s = report.snapshot();
                        ShadowView {
                            mirrored: s.mirrored,
                            compared: s.compared,
                            status_class_mismatches: s.status_class_mismatches,
                            shadow_failures: s.shadow_failures,
                            latency_diff_mean_ms: s.latency_diff_mean_micros as f64 / 1000.0,
                            body_compared: s.body_compared,
                            body_mismatches: s.body_mismatches,
                            skipped_non_idempotent: s.skipped_non_idempotent,
                        }
                    }),
                    analysis: app
                        .sessions
                        .iter()
                        .map(|s| AnalysisView {
                            template: s.name.clone(),
                            purpose: crate::control::analysis_round::purpose_name(&s.purpose),
                            verdict: s.last.as_ref().map(|j| j.verdict.as_str().to_string()),
                            detail: s.last.as_ref().map(|j| j.detail.clone()),
                        })
                        .collect(),
                }
            });
            let mut instances: Vec<InstanceView> = app
                .instances
                .iter()
                .map(|m| {
                    let live = self.runtimes.live(m.runtime, &m.id);
                    InstanceView {
                        id: m.id.clone(),
                        release: m.release,
                        process: m.process.clone(),
                        state: if m.retiring {
                            "draining".into()
                        } else {
                            state_name(&m.state)
                        },
                        ready: m.is_ready(),
                        serving: m.serving(),
                        pid: live.as_ref().and_then(|s| s.pid),
                        port: live.as_ref().and_then(|s| s.port),
                        restarts: live.as_ref().map_or(0, |s| s.restarts),
                        pod: live
                            .as_ref()
                            .filter(|_| m.runtime == RuntimeKind::Pod)
                            .and_then(|s| s.container.clone()),
                    }
                })
                .collect();
            instances.sort_by(|a, b| {
                (a.release, &a.process, &a.id).cmp(&(b.release, &b.process, &b.id))
            });
            out.push(AppStatus {
                app: name.clone(),
                stable: stable.as_ref().map(ReleaseSummary::from),
                rollout,
                warm: app.warm.as_ref().map(|w| WarmRelease {
                    version: w.version,
                    retire_at: w.retire_at as i64,
                }),
                instances,
                last_failure: app.last_failure.clone(),
                traffic: recent_traffic(app, 10),
                scaling: app.scaling.as_ref().map(scaling_status),
                maintenance: app.maintenance.as_ref().map(|m| MaintenanceStatus {
                    since: m.since,
                    hold_seconds: m.proxy.hold.as_secs(),
                    retry_after_seconds: m.proxy.retry_after,
                    custom_page: m.proxy.page.is_some(),
                    held_requests: m.proxy.held.load(std::sync::atomic::Ordering::Relaxed),
                    reason: m.reason.clone(),
                }),
                watch: app.watch.as_ref().map(watch_status),
                slo: app
                    .slo
                    .as_ref()
                    .map(|book| slo_status(book, crate::clock::now_ms())),
            });
        }
        out
    }
}

fn watch_status(w: &crate::control::watch::Watch) -> WatchStatus {
    use crate::control::watch::WatchState;
    let (state, ended_at) = match w.state {
        WatchState::Watching => ("watching", None),
        WatchState::Ended { at } => ("ended", Some(at)),
        WatchState::Regressed { at } => ("regressed", Some(at)),
        WatchState::Superseded { at, .. } => ("superseded", Some(at)),
    };
    let last = w.last();
    WatchStatus {
        release: w.release,
        compared_with: w.predecessor,
        template: w.template.clone(),
        state: state.to_string(),
        started_at: w.started_at as i64,
        ends_at: w.ends_at as i64,
        ended_at: ended_at.map(|at| at as i64),
        verdict: last.as_ref().map(|(v, _)| v.as_str().to_string()),
        detail: last.map(|(_, d)| d),
    }
}

fn slo_status(book: &crate::control::slo_book::SloBook, now: u64) -> SloStatus {
    let report = book.report(now);
    let hold = book.spec.hold_deploys.then(|| report.spent()).flatten();
    let round = |x: f64| (x * 1e4).round() / 1e4;
    SloStatus {
        window_seconds: report.window.as_secs(),
        since: report.since_ms.map(|ms| ms as i64),
        canary_gate: book.spec.canary_gate,
        hold_deploys: book.spec.hold_deploys,
        hold,
        objectives: report
            .objectives
            .iter()
            .map(|o| SloObjectiveStatus {
                sli: o.sli.as_str().to_string(),
                objective: o.description.clone(),
                target: o.target,
                requests: o.requests,
                bad: o.bad,
                budget_left: round(o.budget_left),
                burn_rates: o
                    .burns
                    .iter()
                    .map(|b| BurnRateStatus {
                        long_seconds: b.alert.long.as_secs(),
                        short_seconds: b.alert.short.as_secs(),
                        threshold: b.alert.burn_rate,
                        long: b.long.map(round),
                        short: b.short.map(round),
                        firing: b.firing,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn scaling_status(s: &crate::control::app_scaling::AppScaling) -> ScalingStatus {
    let (target_kind, target) = match s.settings.target {
        Some(ScaleTarget::Concurrency(n)) => (Some("concurrency".to_string()), Some(n)),
        Some(ScaleTarget::Rps(n)) => (Some("rps".to_string()), Some(n)),
        None => (None, None),
    };
    ScalingStatus {
        min: s.settings.min,
        max: s.settings.max,
        target_kind,
        target,
        replicas: s.scaler.replicas,
        load: (s.load * 100.0).round() / 100.0,
        idle_after_seconds: s.settings.idle_after.map(|d| d.as_secs()),
        changes: s.changes,
        last_change: s
            .last_change
            .as_ref()
            .map(|(_, c)| crate::control::autoscale_round::describe(c, &s.settings)),
        last_change_at: s.last_change.as_ref().map(|(at, _)| *at as i64),
        cold_starts: s
            .cold_starts
            .iter()
            .map(|(&release, &millis)| ColdStart { release, millis })
            .collect(),
    }
}

/// Each release's traffic over about the last `seconds`, from the per-second snapshots.
fn recent_traffic(app: &AppState, seconds: usize) -> Vec<ReleaseTraffic> {
    let (Some((now, latest)), Some((then, earlier))) = (
        app.history.back(),
        app.history
            .get(app.history.len().saturating_sub(seconds + 1)),
    ) else {
        return Vec::new();
    };
    let span = (now.saturating_sub(*then)).max(1);
    latest
        .iter()
        .map(|(v, w)| {
            let d = match earlier.get(v) {
                Some(e) => w.since(e),
                None => w.clone(),
            };
            ReleaseTraffic {
                release: *v,
                window_seconds: span / 1000,
                requests: d.requests,
                rps: d.requests as f64 * 1000.0 / span as f64,
                error_rate: d.error_rate(),
                p95_ms: d.latency.percentile(95.0).map(|us| us as f64 / 1000.0),
            }
        })
        .collect()
}
