//! `slipway drill` end to end, through the real binary and the demo app: the stable release again as a
//! small canary whose requests the proxy fails on purpose is caught by the canary analysis and rolled
//! back, the report has its timings and no failure beyond the injected ones, and the stable release keeps
//! serving; a drill is refused while a rollout is in progress or before anything is stable.
//!
//! Everything waits on conditions with deadlines; load loops are paced and bounded.

mod support;

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
    for r in tally.failures() {
        assert!(
            matches!(&r.result, Err(Outcome::Status(503, body)) if body.contains("slipway drill: injected failure")),
            "a failure that was not injected: {:?}; {}",
            r.result,
            tally.summary()
        );
    }
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
