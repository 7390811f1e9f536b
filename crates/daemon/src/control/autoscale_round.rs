//! The controller's side of autoscaling: keep each scaling app's settings in step with its newest
//! release, read its load once a second and let the scaler decide (`slipway_core::autoscale`), wake an
//! app scaled to zero as soon as the proxy holds a request for it, and time its cold start. A change is
//! an event; the next reconcile starts or retires the difference (new instances get traffic once
//! ready, removed ones drain first: the usual path).

use crate::control::app_scaling::{self, AppScaling};
use crate::control::controller::Controller;
use slipway_core::autoscale::{Change, Load, Reason};
use slipway_core::release::Version;
use slipway_core::spec::{ScaleTarget, Scaling};
use slipway_proxy::Demand;

impl Controller {
    /// One pass over the scaling apps; `sample`: the once-a-second reading is due. Returns whether a
    /// count changed (the caller reconciles again at once).
    pub(crate) fn autoscale(&mut self, now: u64, sample: bool) -> bool {
        let names: Vec<String> = self.apps.keys().cloned().collect();
        let mut changed = false;
        for name in names {
            let lead = self.lead_scaling(&name);
            let Some(app) = self.apps.get_mut(&name) else {
                continue;
            };
            let Some((version, settings)) = lead else {
                app.scaling = None;
                continue;
            };
            let doorbell = &self.doorbell;
            let scaling = app.scaling.get_or_insert_with(|| {
                let start = settings.min.max(1).min(settings.max);
                AppScaling::new(settings.clone(), start, now)
            });
            if scaling.settings != settings {
                scaling.scaler.clamp_to(&settings);
                scaling.settings = settings;
                scaling.demand = None;
            }
            let s = &scaling.settings;
            if s.min == 0 && scaling.demand.is_none() {
                scaling.demand = Some(Demand::new(
                    doorbell.clone(),
                    s.idle_paths.clone(),
                    s.wake_timeout,
                ));
            }
            let waiting = scaling.demand.as_ref().is_some_and(|d| d.take_waiting());
            // A rollout in progress keeps the app awake: its new release must prove it can serve. So
            // does a cold start: the idle clock starts once the woken instance serves.
            let deploying = app.rollout.is_some() || scaling.waking.is_some();
            let change = if scaling.scaler.replicas == 0 && (waiting || deploying) {
                let load = Load {
                    at: now,
                    value: 0.0,
                    active: true,
                    waiting: true,
                };
                scaling.scaler.observe(&scaling.settings, load)
            } else if sample {
                let reading = app_scaling::read(now, &app.metrics, scaling.demand.as_deref());
                let load = scaling.last_reading.map(|before| {
                    app_scaling::load_between(&before, &reading, scaling.settings.target, waiting)
                });
                scaling.last_reading = Some(reading);
                load.and_then(|mut load| {
                    scaling.load = load.value;
                    load.active |= deploying;
                    scaling.scaler.observe(&scaling.settings, load)
                })
            } else {
                None
            };
            // A cold start ends when the woken release has an instance in the route table.
            if let Some((since, woken)) = scaling.waking
                && app
                    .instances
                    .iter()
                    .any(|m| m.release == woken && m.is_web() && m.serving())
            {
                let took = now.saturating_sub(since);
                scaling.cold_starts.insert(woken, took);
                scaling.waking = None;
                let message = format!("cold start: v{woken} served after {took} ms");
                self.event(&name, Some(woken), "cold_start", &message);
            }
            let Some(change) = change else {
                continue;
            };
            let Some(scaling) = self.apps.get_mut(&name).and_then(|a| a.scaling.as_mut()) else {
                continue;
            };
            scaling.changes += 1;
            if change.reason == Reason::Wake {
                scaling.waking = Some((now, version));
            }
            let message = describe(&change, &scaling.settings);
            let kind = if change.reason == Reason::Idle {
                "scaled_to_zero"
            } else {
                "scaled"
            };
            scaling.last_change = Some((now, change));
            self.event(&name, Some(version), kind, &message);
            changed = true;
        }
        changed
    }

    /// The scaling settings of the app's newest release (the one being rolled out, else the stable
    /// one), if its web process scales.
    fn lead_scaling(&mut self, name: &str) -> Option<(Version, Scaling)> {
        let app = self.apps.get(name)?;
        let version = app.rollout.as_ref().map(|r| r.machine.to).or(app.stable)?;
        let release = self.releases.get(&(name.to_string(), version))?;
        let scaling = release.spec.processes.get("web")?.scaling.clone()?;
        Some((version, scaling))
    }
}

/// "scaled web from 2 to 5 instances: 47.3 requests in flight for a target of 10 each".
pub(crate) fn describe(change: &Change, s: &Scaling) -> String {
    let Change { from, to, reason } = change;
    match reason {
        Reason::Idle => format!(
            "scaled web from {from} to zero: no request for {}",
            idle_text(s)
        ),
        Reason::Wake => format!("woke web: a request arrived, starting {to} instance(s)"),
        Reason::Load { value, target } => {
            let (what, each) = match target {
                ScaleTarget::Concurrency(n) => ("requests in flight", n),
                ScaleTarget::Rps(n) => ("requests a second", n),
            };
            format!(
                "scaled web from {from} to {to} instances: {value:.1} {what} for a target of {each} each"
            )
        }
    }
}

fn idle_text(s: &Scaling) -> String {
    s.idle_after
        .map_or_else(String::new, |d| format!("{}s", d.as_secs()))
}
