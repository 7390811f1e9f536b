//! `slipway drill` end to end, through the real binary and the demo app: the stable release again as a
//! small canary whose requests the proxy fails on purpose is caught by the canary analysis and rolled
//! back, the report has its timings and no failure beyond the injected ones, and the stable release keeps
//! serving; a drill is refused while a rollout is in progress or before anything is stable; with
//! `[drill] schedule` the daemon runs drills by itself, keeps their reports, and skips one that is due
//! while a rollout is in progress.
//!
//! Everything waits on conditions with deadlines; load loops are paced and bounded.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::load::{Load, Outcome};
use support::*;

#[test]
fn a_drill_is_caught_and_rolled_back_with_no_failure_beyond_the_injected_ones() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    // Light load: 4 clients at up to 50 requests a second each.
    let load = Load::paced(world.daemon.proxy, 4, "/", 50);
    load.wait_for_more(100);

    let run = world.slipway(&["drill", "--weight", "10", "--error-rate", "50%", "--json"]);
    let status = world.settled();
    load.wait_for_more(100);
    let tally = load.finish();

    assert!(run.success(), "the drill passes: {run}");
    let report = run.json();
    assert_eq!(report["release"], 2, "{report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    for timing in ["detection_ms", "rollback_ms", "drain_ms"] {
        assert!(
            report[timing].as_i64().is_some_and(|ms| ms >= 0),
            "{timing} measured: {report}"
        );
    }
    assert!(
        report["detection_ms"].as_i64() <= report["rollback_ms"].as_i64(),
        "{report}"
    );
    let injected = report["injected_failures"].as_u64().unwrap_or(0);
    assert!(injected > 0, "the canary's requests were failed: {report}");
    assert_eq!(report["other_failures"], 0, "{report}");

    // Users saw the injected failures and nothing else.
    only_injected_failures(&tally);
    assert_eq!(
        tally.failures().len() as u64,
        injected,
        "the report counts what users saw: {}",
        tally.summary()
    );
    assert_eq!(status["stable"]["version"], 1, "v1 still stable: {status}");
    let history = world.history();
    let drill = release(&history, 2);
    assert_eq!(drill["status"], "failed", "{drill}");
    assert!(
        drill["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("drill:")),
        "the history says it was a drill: {drill}"
    );
    assert_eq!(world.answer(), "v1", "the stable release keeps serving");
    eprintln!("drill: {report}; {}", tally.summary());
}

#[test]
fn a_drill_is_refused_before_anything_is_stable_and_during_a_rollout() {
    let world = World::new();
    world.write(&Conf::demo("v1"));
    let refused = world.slipway(&["drill"]).failed();
    assert!(
        refused.stderr.contains("no stable release"),
        "says why: {refused}"
    );
    world.slipway(&["deploy"]).ok();

    world.write(&Conf::demo("v2"));
    world.slipway(&["deploy", "--canary", "10"]).ok();
    let refused = world.slipway(&["drill"]).failed();
    assert!(
        refused.stderr.contains("in progress") && refused.stderr.contains("slipway abort"),
        "says why and how to proceed: {refused}"
    );
    world.slipway(&["abort"]).ok();
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    assert!(
        !world.history().iter().any(|r| r["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("drill:"))),
        "a refused drill records nothing"
    );
}

#[test]
fn a_scheduled_drill_runs_by_itself_its_report_is_kept_and_a_busy_app_skips_it() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    // Every other minute: the first is due within two, and the next leaves time to start a canary.
    let every_other_minute = "[drill]\nschedule = \"*/2 * * * *\"\nweight = 10\n";
    world.deploy_ok(&Conf::demo("v1").tail(every_other_minute));
    let load = Load::paced(world.daemon.proxy, 4, "/", 50);
    load.wait_for_more(100);

    let report = wait_for(
        Duration::from_secs(240),
        "a scheduled drill's report",
        || {
            let reports = world.slipway(&["drills", "--json"]).ok().json();
            reports.as_array()?.last().cloned()
        },
    );
    assert_eq!(report["release"], 2, "{report}");
    assert_eq!(report["by"], "the schedule", "{report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert_eq!(report["passed"], true, "{report}");
    assert!(report["injected_failures"].as_u64() > Some(0), "{report}");
    assert_eq!(report["other_failures"], 0, "{report}");
    let text = world.slipway(&["drills"]).ok();
    assert!(
        text.stdout.contains("by the schedule") && text.stdout.contains("drill v2 passed"),
        "{text}"
    );
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    assert!(
        status["last_failure"].is_null(),
        "a drill rolled back is no failure of the app: {status}"
    );
    let admin = world.create_token("ci", "viewer");
    let events = journal(&world, &admin);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "drill_passed" && e["release"] == 2),
        "{events:?}"
    );

    // A canary held at 10 %: the next due drill is skipped, saying why.
    world.write(&Conf::demo("v2").tail(every_other_minute));
    world.slipway(&["deploy", "--canary", "10"]).ok();
    let skipped = wait_for(Duration::from_secs(150), "a skipped drill", || {
        journal(&world, &admin)
            .into_iter()
            .find(|e| e["kind"] == "drill_skipped")
    });
    assert!(
        skipped["message"]
            .as_str()
            .is_some_and(|m| m.contains("in progress")),
        "says why: {skipped}"
    );
    world.slipway(&["abort"]).ok();
    let tally = load.finish();
    only_injected_failures(&tally);
}

/// Users saw the drill's injected failures and nothing else.
fn only_injected_failures(tally: &support::load::Tally) {
    for r in tally.failures() {
        assert!(
            matches!(&r.result, Err(Outcome::Status(503, body)) if body.contains("slipway drill: injected failure")),
            "a failure that was not injected: {:?}; {}",
            r.result,
            tally.summary()
        );
    }
}

/// The app's events, over the TCP API.
fn journal(world: &World, token: &str) -> Vec<Value> {
    let answer = support::http::get(
        world.api_addr(),
        "/v1/apps/shop/events?tail=1000",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .expect("the events");
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str::<Vec<Value>>(&answer.body).expect("JSON events")
}
