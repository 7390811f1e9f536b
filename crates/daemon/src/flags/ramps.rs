//! Scheduled flag ramps, the IO side: start and stop them, and once a second feed every running ramp
//! (the core's `FlagRamp`) the app's traffic and carry out what it decides — the next step, completion,
//! or a revert to the flag's definition before the ramp. Each decision is one change through
//! [`Flags::change`] with the ramp's new state in the same transaction, so a restart resumes exactly
//! where the ramp was, and a ramp stopped meanwhile (by a kill, say) can never overwrite the flag.

use super::{Edit, Flags, Origin, stored};
use crate::clock::now_ms;
use crate::control::controller::ControllerHandle;
use crate::control::traffic::{AppTraffic, traffic};
use crate::error::Error;
use slipway_api::flags::{FlagChanges, FlagRampRequest, RampView};
use slipway_core::flag_ramp::{
    FlagRamp, RampAction, RampGuard, RampStatus, TrafficSample, VariantCounts,
};
use slipway_flags::{Flag, FlagSet, ramp};
use slipway_proxy::RouteHandle;
use slipway_store::FlagRampRecord;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often running ramps look at the traffic (their sequential tests allow any rate).
const TICK: Duration = Duration::from_secs(1);

impl Flags {
    /// `flags ramp NAME --variant V --steps … --every …`: applies the first step now.
    pub async fn start_ramp(
        &self,
        app: &str,
        key: &str,
        req: &FlagRampRequest,
        controller: &ControllerHandle,
    ) -> Result<FlagChanges, Error> {
        let Some(flag) = self.app(app).set.get(key).cloned() else {
            return Err(not_found(app, key));
        };
        ramp::check_rampable(&flag, &req.variant).map_err(|e| Error::bad_request(e.0))?;
        let guard = (!req.unguarded).then(|| RampGuard {
            max_error_rate_increase: req
                .max_error_rate_increase
                .unwrap_or(RampGuard::default().max_error_rate_increase),
            max_latency_increase: req.max_latency_increase,
        });
        let baseline = traffic(controller, app).await?.last_minute;
        let machine = FlagRamp::start(
            req.steps.clone(),
            Duration::from_millis(req.every_ms),
            guard,
            now_ms(),
            baseline,
        )
        .map_err(Error::bad_request)?;
        let state = serde_json::to_string(&machine).map_err(|e| Error::internal(e.to_string()))?;
        let before = RefCell::new(String::new());
        let edit = Edit {
            who: req.who.clone(),
            action: "ramp".into(),
            reason: Some(step_reason(&machine, &req.variant)),
            origin: Origin::Operator,
        };
        self.change(
            app,
            &edit,
            |set| {
                let flag = set.get(key).ok_or_else(|| not_found(app, key))?;
                ramp::check_rampable(flag, &req.variant).map_err(|e| Error::bad_request(e.0))?;
                *before.borrow_mut() = stored::flag_text(flag);
                with_flag(
                    set,
                    key,
                    ramp::ramped(flag, &req.variant, machine.percent()),
                )
            },
            |tx| {
                tx.start_flag_ramp(
                    app,
                    key,
                    &req.variant,
                    &state,
                    &before.borrow(),
                    now_ms() as i64,
                    &req.who,
                )
                .map(|_| ())
            },
        )
    }

    /// `flags ramp NAME --stop`: the flag stays as it is now.
    pub fn stop_ramp(&self, app: &str, key: &str, who: &str) -> Result<(), Error> {
        let record = self
            .store
            .active_flag_ramp(app, key)
            .map_err(|e| Error::internal(e.to_string()))?
            .ok_or_else(|| Error::not_found(format!("flag {key} of {app} is not ramping")))?;
        let reason = format!("stopped by {who}");
        let state = cancelled_state(&record.state, &reason);
        let edit = Edit {
            who: who.to_string(),
            action: "ramp-stop".into(),
            reason: Some(reason.clone()),
            origin: Origin::Ramp(record.id),
        };
        self.change(
            app,
            &edit,
            |set| Ok(set.clone()),
            |tx| {
                tx.finish_flag_ramp(
                    record.id,
                    &state,
                    "cancelled",
                    Some(&reason),
                    now_ms() as i64,
                )
                .map(|_| ())
            },
        )
        .map(|_| ())
    }
}

/// Runs every ramp until `stop`. `routes` counts the answers the apps tagged per flag variant.
pub async fn run(
    flags: Arc<Flags>,
    controller: ControllerHandle,
    routes: RouteHandle,
    stop: CancellationToken,
) {
    // Counters restart with each daemon run; the ramp re-bases its step when this changes.
    let epoch = format!("{}-{}", std::process::id(), now_ms());
    let mut traffic: HashMap<String, AppTraffic> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let running = match flags.store.active_flag_ramps() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot read the flag ramps: {e}");
                continue;
            }
        };
        let mut apps: Vec<&str> = running.iter().map(|r| r.app.as_str()).collect();
        apps.sort_unstable();
        apps.dedup();
        for app in apps {
            match self::traffic(&controller, app).await {
                Ok(report) => traffic.entry(app.to_string()).or_default().update(&report),
                Err(_) => return, // the controller stopped: the daemon is shutting down
            }
        }
        traffic.retain(|app, _| running.iter().any(|r| &r.app == app));
        for record in running {
            let total = traffic
                .get(&record.app)
                .map(|t| t.total.clone())
                .unwrap_or_default();
            let sample = TrafficSample {
                epoch: epoch.clone(),
                total,
                variants: tagged(&routes, &record.app, &record.flag, &record.variant),
            };
            if let Err(e) = step(&flags, &record, &sample) {
                tracing::warn!(app = %record.app, flag = %record.flag, "ramp #{}: {e}", record.id);
            }
        }
    }
}

/// The answers the app tagged with `variant` of `flag`, and with its other variants (`None` before the
/// first tag).
fn tagged(routes: &RouteHandle, app: &str, flag: &str, variant: &str) -> Option<VariantCounts> {
    let counted = routes.flag_variants().snapshot(app, flag);
    if counted.is_empty() {
        return None;
    }
    let mut counts = VariantCounts::default();
    for (name, window) in counted {
        let side = if name == variant {
            &mut counts.variant
        } else {
            &mut counts.others
        };
        side.add(&window);
    }
    Some(counts)
}

/// One look at one ramp, and what follows from it.
fn step(flags: &Flags, record: &FlagRampRecord, sample: &TrafficSample) -> Result<(), String> {
    let store = &flags.store;
    let now = now_ms();
    let Ok(mut machine) = serde_json::from_str::<FlagRamp>(&record.state) else {
        let reason = "its stored state no longer reads; the flag stays as it is";
        store
            .transaction(|tx| {
                tx.finish_flag_ramp(
                    record.id,
                    &record.state,
                    "cancelled",
                    Some(reason),
                    now as i64,
                )
            })
            .map_err(|e| e.to_string())?;
        return Err(reason.into());
    };
    let action = machine.tick(now, sample);
    let state = serde_json::to_string(&machine).map_err(|e| e.to_string())?;
    let before = stored::flag_from_text(&record.before)
        .map_err(|e| format!("the flag before the ramp no longer reads: {e}"))?;
    let edit = |action: &str, reason: String| Edit {
        who: format!("{} (ramp #{})", record.started_by, record.id),
        action: action.into(),
        reason: Some(reason),
        origin: Origin::Ramp(record.id),
    };
    let (app, key) = (record.app.as_str(), record.flag.as_str());
    let Some(change) = change_for(&action, &machine, &before, &record.variant) else {
        if state != record.state {
            store
                .transaction(|tx| tx.update_flag_ramp(record.id, &state).map(|_| ()))
                .map_err(|e| e.to_string())?;
        }
        return Ok(());
    };
    let result = flags.change(
        app,
        &edit(change.action, change.reason.clone()),
        |set| with_flag(set, key, change.flag.clone()),
        |tx| match &change.end {
            None => tx.update_flag_ramp(record.id, &state).map(|_| ()),
            Some(RampEnd::Completed) => tx
                .finish_flag_ramp(record.id, &state, "completed", None, now as i64)
                .map(|_| ()),
            Some(RampEnd::Reverted) => {
                let reason = &change.reason;
                tx.finish_flag_ramp(record.id, &state, "reverted", Some(reason), now as i64)?;
                tx.add_event(
                    app,
                    None,
                    "flag_ramp_reverted",
                    &format!("flag {key}: ramp #{} reverted: {reason}", record.id),
                    now as i64,
                )
                .map(|_| ())
            }
        },
    );
    if result.is_ok() && change.end == Some(RampEnd::Reverted) {
        tracing::warn!(
            app,
            flag = key,
            "ramp #{} reverted: {}",
            record.id,
            change.reason
        );
    }
    result.map(|_| ()).map_err(|r| r.message)
}

/// How a ramp ends, when its action ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RampEnd {
    Completed,
    Reverted,
}

/// The flag change a ramp's decision asks for: the audit action, its reason, the flag after it, and
/// whether the ramp ends with it.
#[derive(Debug, PartialEq)]
struct RampChange {
    action: &'static str,
    reason: String,
    flag: Flag,
    end: Option<RampEnd>,
}

/// `None`: nothing to change (the ramp's state may still have moved).
fn change_for(
    action: &RampAction,
    machine: &FlagRamp,
    before: &Flag,
    variant: &str,
) -> Option<RampChange> {
    match action {
        RampAction::Nothing => None,
        RampAction::Apply { percent } => Some(RampChange {
            action: "ramp",
            reason: step_reason(machine, variant),
            flag: ramp::ramped(before, variant, *percent),
            end: None,
        }),
        RampAction::Complete => Some(RampChange {
            action: "ramp-complete",
            reason: format!("every step passed: everyone gets {variant}"),
            flag: ramp::completed(before, variant),
            end: Some(RampEnd::Completed),
        }),
        RampAction::Revert { reason } => Some(RampChange {
            action: "ramp-revert",
            reason: reason.clone(),
            flag: before.clone(),
            end: Some(RampEnd::Reverted),
        }),
    }
}

fn with_flag(set: &FlagSet, key: &str, flag: Flag) -> Result<FlagSet, Error> {
    let mut next = set.clone();
    next.insert(key, flag)
        .map_err(|e| Error::bad_request(e.to_string()))?;
    Ok(next)
}

fn step_reason(machine: &FlagRamp, variant: &str) -> String {
    format!(
        "step {}/{}: {}% of users get {variant}",
        machine.step + 1,
        machine.steps.len(),
        machine.percent()
    )
}

fn not_found(app: &str, key: &str) -> Error {
    Error::not_found(format!("{app} has no flag {key}; see `slipway flags list`"))
}

/// The stored state of a ramp stopped for `reason` (left as it was if it does not read).
pub fn cancelled_state(state: &str, reason: &str) -> String {
    match serde_json::from_str::<FlagRamp>(state) {
        Ok(mut machine) => {
            machine.cancel(reason);
            serde_json::to_string(&machine).unwrap_or_else(|_| state.to_string())
        }
        Err(_) => state.to_string(),
    }
}

/// A ramp as `flags get` shows it.
pub fn view(record: &FlagRampRecord) -> Option<RampView> {
    let machine: FlagRamp = serde_json::from_str(&record.state).ok()?;
    let status = match &machine.status {
        RampStatus::Running => "running",
        RampStatus::Holding => "holding",
        RampStatus::Completed => "completed",
        RampStatus::Reverted { .. } => "reverted",
        RampStatus::Cancelled { .. } => "cancelled",
    };
    Some(RampView {
        id: record.id,
        variant: record.variant.clone(),
        percent: machine.percent(),
        steps: machine.steps.clone(),
        step: machine.step,
        every_ms: machine.every_ms,
        status: status.into(),
        reason: record.reason.clone(),
        judgement: machine
            .last
            .as_ref()
            .map(|j| format!("{}: {}", j.verdict.as_str(), j.detail)),
        started_at: record.started_at,
        started_by: record.started_by.clone(),
        finished_at: record.finished_at,
        step_ends_at: record
            .finished_at
            .is_none()
            .then(|| (machine.step_started_ms + machine.every_ms) as i64),
        guarded: machine.guard.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::analysis::Window;

    fn before() -> Flag {
        stored::flag_from_text(
            r#"{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}"#,
        )
        .unwrap()
    }

    fn machine() -> FlagRamp {
        let every = Duration::from_secs(60);
        FlagRamp::start(vec![5, 25, 100], every, None, 0, Window::default()).unwrap()
    }

    #[test]
    fn each_decision_is_one_flag_change() {
        let (m, flag) = (machine(), before());
        assert_eq!(change_for(&RampAction::Nothing, &m, &flag, "on"), None);
        let step = change_for(&RampAction::Apply { percent: 5 }, &m, &flag, "on").unwrap();
        assert_eq!((step.action, step.end), ("ramp", None));
        assert_eq!(step.reason, "step 1/3: 5% of users get on");
        assert_eq!(step.flag, ramp::ramped(&flag, "on", 5));
        let done = change_for(&RampAction::Complete, &m, &flag, "on").unwrap();
        assert_eq!(done.end, Some(RampEnd::Completed));
        assert_eq!(done.flag.default_variant.as_deref(), Some("on"));
        let why = "error rate 9% vs 1% before".to_string();
        let back = change_for(
            &RampAction::Revert {
                reason: why.clone(),
            },
            &m,
            &flag,
            "on",
        );
        let back = back.unwrap();
        assert_eq!((back.end, back.reason), (Some(RampEnd::Reverted), why));
        assert_eq!(
            back.flag, flag,
            "a revert restores the flag as it was before the ramp"
        );
    }

    #[test]
    fn a_stopped_ramp_says_why_and_an_unreadable_state_is_kept() {
        let state = serde_json::to_string(&machine()).unwrap();
        let stopped: FlagRamp =
            serde_json::from_str(&cancelled_state(&state, "killed by bob")).unwrap();
        assert!(matches!(stopped.status, RampStatus::Cancelled { .. }));
        assert_eq!(cancelled_state("not json", "x"), "not json");
    }
}
