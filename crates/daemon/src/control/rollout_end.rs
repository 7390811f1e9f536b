//! What the end of a rollout changes in an app, decided without IO: the rollout leaves, the new
//! release becomes stable (blue-green keeps the old one warm for its `scale_down_delay`) or the stable
//! one stays with the failure remembered. The driver then records it in one transaction and tells people.

use crate::control::app_state::{AppState, Warm};
use slipway_core::release::Version;
use slipway_core::rollout::{Outcome, Phase};
use slipway_core::spec::Strategy;

/// A rollout that has ended, for the driver to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ended {
    pub id: i64,
    pub from: Option<Version>,
    pub to: Version,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The rollout was a rollback (`slipway rollback`, or the watch's).
    pub rollback: bool,
}

/// Takes the app's rollout out if it is done; `None` if there is none or it is still running.
pub(crate) fn end_rollout(app: &mut AppState, now: u64) -> Option<Ended> {
    let Phase::Done { outcome, reason } = app.rollout.as_ref()?.machine.phase.clone() else {
        return None;
    };
    let active = app.rollout.take()?;
    let r = &active.machine;
    match outcome {
        Outcome::Succeeded => {
            if let (
                Some(from),
                Strategy::BlueGreen {
                    scale_down_delay, ..
                },
            ) = (r.from, &r.strategy)
            {
                app.warm = Some(Warm {
                    version: from,
                    retire_at: now + scale_down_delay.as_millis() as u64,
                });
            }
            app.stable = Some(r.to);
            app.last_failure = None;
        }
        _ => app.last_failure = reason.clone(),
    }
    Some(Ended {
        id: active.id,
        from: r.from,
        to: r.to,
        outcome,
        reason,
        rollback: active.rollback,
    })
}
