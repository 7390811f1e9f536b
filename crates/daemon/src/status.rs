//! What `slipway status` shows: the controller's live view of each app.

use crate::controller::Controller;
use crate::instance::state_name;
use crate::wire::{AppStatus, InstanceView, ReleaseSummary, RolloutStatus, WarmRelease};
use slipway_core::rollout::Phase;

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
                }
            });
            let mut instances: Vec<InstanceView> = app
                .instances
                .iter()
                .map(|m| {
                    let live = self.supervisor.status(&m.id);
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
            });
        }
        out
    }
}
