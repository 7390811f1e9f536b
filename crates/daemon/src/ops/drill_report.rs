//! A drill's report, computed by the daemon for every drill (by hand or on `[drill] schedule`): follow
//! the drill's rollout to its end — aborting it if the analysis has not caught the injected failures in
//! [`UNDETECTED_AFTER`] — wait for its instances to be gone, then record what it found: timings from the
//! drill's events, failures from the proxy's counters (the injected ones apart). The report is kept in
//! the store (`GET /v1/apps/{app}/drills`) and told as a `drill_passed` or `drill_failed` event.

use crate::clock::now_ms;
use crate::control::controller::Command;
use crate::control::traffic::{AppTraffic, traffic};
use crate::error::Error;
use crate::ops::deploy::Deployer;
use slipway_api::{AppStatus, DrillReport};
use slipway_core::rollout::Signal;
use slipway_store::{Event, RolloutOutcome, RolloutRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the drill's canary may run before the drill gives up on the analysis and aborts it.
const UNDETECTED_AFTER: Duration = Duration::from_secs(180);
/// How long the drill's instances may take to drain and stop after the rollback.
const DRAIN_WITHIN: Duration = Duration::from_secs(120);
/// How often the drill's rollout, instances and counters are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(100);
/// How many of the app's newest events are read for the drill's timings.
const EVENTS_READ: usize = 5_000;
/// The reason a drill the analysis missed is aborted with.
const NOT_DETECTED: &str = "slipway drill: the analysis did not catch the injected failures";

/// A started drill, as its follower needs it.
pub(crate) struct Started {
    pub app: String,
    pub release: u64,
    pub rollout: i64,
    pub by: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The app's counters when it started.
    pub traffic: AppTraffic,
}

/// Follows a started drill to its report; records it and its event. Errors are logged: a drill whose
/// report cannot be made still ran, and its rollout says how it ended.
pub(crate) async fn follow(deployer: Arc<Deployer>, mut drill: Started) {
    let (app, release) = (drill.app.clone(), drill.release);
    match observe(&deployer, &mut drill).await {
        Ok(report) => {
            let json = serde_json::to_value(&report).unwrap_or_default();
            if let Err(e) = deployer.store.save_drill(&app, release, drill.at, &json) {
                tracing::error!(app, "cannot record drill v{release}'s report: {e}");
            }
            let kind = if report.passed {
                "drill_passed"
            } else {
                "drill_failed"
            };
            deployer.event(&app, Some(release), kind, &report.summary());
            if !report.passed {
                notify_failed(&deployer, &report);
            }
        }
        Err(e) => {
            let text = format!("drill v{release}: no report: {}", e.message);
            deployer.event(&app, Some(release), "drill_failed", &text);
        }
    }
}

async fn observe(deployer: &Deployer, drill: &mut Started) -> Result<DrillReport, Error> {
    let app = drill.app.clone();
    let give_up = Instant::now() + UNDETECTED_AFTER;
    let mut aborted = false;
    let rollout = loop {
        let rollout = deployer
            .store
            .rollout(drill.rollout)?
            .ok_or_else(|| Error::internal("the drill's rollout is gone"))?;
        drill
            .traffic
            .update(&traffic(&deployer.controller, &app).await?);
        if !rollout.is_active() {
            break rollout;
        }
        if !aborted && Instant::now() > give_up {
            abort(deployer, &app).await?;
            aborted = true;
        }
        tokio::time::sleep(LOOK_EVERY).await;
    };
    let drain_until = Instant::now() + DRAIN_WITHIN;
    let drained_at = loop {
        drill
            .traffic
            .update(&traffic(&deployer.controller, &app).await?);
        if !serves(deployer, &app, drill.release).await? {
            break Some(now_ms() as i64);
        }
        if Instant::now() > drain_until {
            break None;
        }
        tokio::time::sleep(LOOK_EVERY).await;
    };
    // The newest events, oldest first: the drill's are among the last ones.
    let mut events = deployer.store.latest_events(&app, EVENTS_READ)?;
    events.retain(|e| e.release == Some(drill.release));
    events.reverse();
    Ok(report(drill, &rollout, aborted, &events, drained_at))
}

/// The report from what was seen. Pure.
fn report(
    drill: &Started,
    rollout: &RolloutRecord,
    aborted_by_drill: bool,
    events: &[Event],
    drained_at: Option<i64>,
) -> DrillReport {
    let of_drill = |kind: &str| events.iter().find(|e| e.kind == kind).map(|e| e.at);
    let serving_from = of_drill("instance_ready");
    let verdict = events
        .iter()
        .find(|e| e.kind == "analysis" && e.message.contains("): fail — "))
        .map(|e| e.at);
    let ended_at = rollout.finished_at;
    let since = |from: Option<i64>, to: Option<i64>| Some(to? - from?);
    let outcome = match rollout.outcome {
        Some(RolloutOutcome::Failed) if verdict.is_some() => "rolled_back",
        Some(RolloutOutcome::Aborted) if aborted_by_drill => "not_detected",
        Some(other) => other.as_str(),
        None => "unfinished",
    };
    let injected = drill.traffic.injected;
    let other_failures = drill.traffic.total.errors.saturating_sub(injected);
    DrillReport {
        app: drill.app.clone(),
        release: drill.release,
        by: drill.by.clone(),
        at: drill.at,
        passed: outcome == "rolled_back" && other_failures == 0,
        outcome: outcome.to_string(),
        reason: rollout.reason.clone(),
        detection_ms: since(serving_from, verdict),
        rollback_ms: since(serving_from, ended_at),
        drain_ms: since(ended_at, drained_at),
        injected_failures: injected,
        other_failures,
    }
}

/// A failed drill is news for the app's `[notify]` hooks (a passed one is not).
fn notify_failed(deployer: &Deployer, report: &DrillReport) {
    let Ok(Some(release)) = deployer.store.release(&report.app, report.release) else {
        return;
    };
    if release.spec.notify.is_empty() {
        return;
    }
    let text = format!("slipway: {} {}", report.app, report.summary());
    crate::notify::send(&crate::http_client::new(), &release.spec.notify, text);
}

async fn abort(deployer: &Deployer, app: &str) -> Result<(), Error> {
    let signal = Signal::Abort {
        reason: NOT_DETECTED.to_string(),
    };
    let app = app.to_string();
    deployer
        .controller
        .ask(|reply| Command::Signal { app, signal, reply })
        .await?
}

/// Whether any instance of `release` is still there.
async fn serves(deployer: &Deployer, app: &str, release: u64) -> Result<bool, Error> {
    let app = Some(app.to_string());
    let statuses: Vec<AppStatus> = deployer
        .controller
        .ask(|reply| Command::Status { app, reply })
        .await?;
    Ok(statuses
        .iter()
        .flat_map(|s| &s.instances)
        .any(|i| i.release == release))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::analysis::Window;

    fn event(kind: &str, message: &str, at: i64) -> Event {
        Event {
            id: at,
            app: "shop".into(),
            release: Some(4),
            kind: kind.into(),
            message: message.into(),
            at,
        }
    }

    fn rollout(outcome: RolloutOutcome, finished_at: i64) -> RolloutRecord {
        RolloutRecord {
            id: 1,
            app: "shop".into(),
            from: Some(3),
            to: 4,
            state: serde_json::Value::Null,
            started_at: 900,
            finished_at: Some(finished_at),
            outcome: Some(outcome),
            reason: Some("analysis failed".into()),
        }
    }

    fn started(errors: u64, injected: u64) -> Started {
        let mut traffic = AppTraffic::default();
        traffic.total = Window::uniform(1_000, errors, 1_000);
        traffic.injected = injected;
        Started {
            app: "shop".into(),
            release: 4,
            rollout: 1,
            by: "the schedule".into(),
            at: 900,
            traffic,
        }
    }

    #[test]
    fn a_caught_drill_passes_with_its_timings_and_only_injected_failures() {
        let events = [
            event("instance_ready", "ready", 1_000),
            event(
                "analysis",
                "canary (slipway-drill): fail — 25% errors",
                1_900,
            ),
        ];
        let r = report(
            &started(30, 30),
            &rollout(RolloutOutcome::Failed, 2_000),
            false,
            &events,
            Some(2_300),
        );
        assert!(r.passed, "{r:?}");
        assert_eq!(r.outcome, "rolled_back");
        assert_eq!(
            (r.detection_ms, r.rollback_ms, r.drain_ms),
            (Some(900), Some(1_000), Some(300))
        );
        assert_eq!((r.injected_failures, r.other_failures), (30, 0));
        assert!(
            r.summary().starts_with("drill v4 passed: detected in 0.9s"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn a_missed_drill_or_one_that_hurt_users_fails() {
        let ready = [event("instance_ready", "ready", 1_000)];
        let missed = report(
            &started(30, 30),
            &rollout(RolloutOutcome::Aborted, 5_000),
            true,
            &ready,
            Some(5_100),
        );
        assert!(!missed.passed);
        assert_eq!(missed.outcome, "not_detected");
        assert_eq!(missed.detection_ms, None);
        assert!(
            missed
                .summary()
                .contains("did not roll it back (not_detected)")
        );

        let caught = [
            ready[0].clone(),
            event(
                "analysis",
                "canary (slipway-drill): fail — 25% errors",
                1_900,
            ),
        ];
        let hurt = report(
            &started(35, 30),
            &rollout(RolloutOutcome::Failed, 2_000),
            false,
            &caught,
            None,
        );
        assert!(!hurt.passed, "5 failures beyond the injected ones");
        assert_eq!((hurt.other_failures, hurt.drain_ms), (5, None));
    }
}
