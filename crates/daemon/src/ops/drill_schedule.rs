//! `[drill] schedule`: the daemon runs `slipway drill` by itself on each app's schedule (UTC), as the
//! stable release's spec says. A drill that cannot start when due — a rollout in progress, the error
//! budget spent, the app busy — is skipped with a `drill_skipped` event saying why; it is not made up
//! later, nor are drills missed while the daemon was down.

use crate::clock::now_ms;
use crate::ops::deploy::Deployer;
use crate::ops::stable_releases::StableReleases;
use slipway_api::DrillRequest;
use slipway_core::schedule::Schedule;
use slipway_core::spec::DrillSchedule;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Who a scheduled drill is by, in its release, events and report.
pub const BY: &str = "the schedule";

/// Looks once a second for due drills until `stop`.
pub async fn run(deployer: Arc<Deployer>, stop: CancellationToken) {
    let mut stables = StableReleases::new(|r| r.spec.drill.is_some());
    // Next due time per app, with the schedule it was computed from.
    let mut next: HashMap<String, (String, i64)> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(releases) = stables.read(&deployer.store) else {
            continue;
        };
        let now_s = (now_ms() / 1000) as i64;
        // An app whose stable release has no drill (any more) forgets its due time.
        next.retain(|app, _| releases.iter().any(|r| &r.app == app));
        for release in releases {
            let Some(drill) = release.spec.drill.clone() else {
                continue;
            };
            if due(&mut next, &release.app, &drill.schedule, now_s) {
                tokio::spawn(start(deployer.clone(), release.app.clone(), drill));
            }
        }
    }
}

/// Whether `app`'s drill is due at `now_s`; moves its next time on when it is. A new or changed
/// schedule counts from now. Pure apart from `next`.
fn due(next: &mut HashMap<String, (String, i64)>, app: &str, schedule: &str, now_s: i64) -> bool {
    let Ok(parsed) = Schedule::parse(schedule) else {
        return false;
    };
    match next.get(app) {
        Some((s, at)) if s == schedule && now_s >= *at => {
            match parsed.next_after(now_s) {
                Some(after) => next.insert(app.to_string(), (schedule.to_string(), after)),
                None => next.remove(app),
            };
            true
        }
        Some((s, _)) if s == schedule => false,
        _ => {
            if let Some(at) = parsed.next_after(now_s) {
                next.insert(app.to_string(), (schedule.to_string(), at));
            }
            false
        }
    }
}

/// Starts one scheduled drill, or says why it was skipped.
async fn start(deployer: Arc<Deployer>, app: String, drill: DrillSchedule) {
    let busy = match deployer.store.active_rollout(&app) {
        Ok(Some(rollout)) => Some(format!(
            "a rollout to v{} is in progress (rollout {})",
            rollout.to, rollout.id
        )),
        Ok(None) => None,
        Err(e) => Some(format!("cannot read the app's rollouts: {e}")),
    };
    let refused = match busy {
        Some(why) => why,
        None => {
            let request = DrillRequest {
                weight: Some(drill.weight),
                error_rate: Some(drill.error_rate),
                who: BY.to_string(),
            };
            match deployer.drill(&app, request).await {
                Ok(_) => return,
                Err(e) => e.message,
            }
        }
    };
    let text = format!("scheduled drill ({}) skipped: {refused}", drill.schedule);
    deployer.event(&app, None, "drill_skipped", &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_is_due_at_its_minute_once_and_a_changed_schedule_counts_from_now() {
        let mut next = HashMap::new();
        let monday_0959 = 1_733_133_540; // 2024-12-02 09:59:00 UTC, a Monday
        assert!(
            !due(&mut next, "shop", "0 10 * * 1", monday_0959),
            "first look: only computes"
        );
        assert!(!due(&mut next, "shop", "0 10 * * 1", monday_0959 + 59));
        assert!(
            due(&mut next, "shop", "0 10 * * 1", monday_0959 + 60),
            "10:00"
        );
        assert!(
            !due(&mut next, "shop", "0 10 * * 1", monday_0959 + 61),
            "once"
        );
        assert_eq!(next["shop"].1, monday_0959 + 60 + 7 * 86_400, "next Monday");
        // A new schedule is counted from now: 10:05 is not "overdue" at 10:06.
        assert!(!due(&mut next, "shop", "5 10 * * *", monday_0959 + 7 * 60));
        assert!(!due(&mut next, "shop", "not a schedule", monday_0959));
    }
}
