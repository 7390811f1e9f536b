//! The watch after promotion, end to end through the real `slipway` binary and the demo app: a release
//! that goes bad a few seconds after it reached 100 % is rolled back to the release it replaced (a new
//! release made from it), which serves again with only the bad release's own errors seen by users;
//! `status` shows the verdict and the events say what happened. A healthy release's watch ends quietly.
//!
//! Everything waits on conditions with deadlines; load loops are paced and bounded.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::load::{Load, Outcome, Tally};
use support::*;

/// Blue-green with a short warm period (the replaced release is gone before the regression, so the
/// rollback starts it again), watched for `watch`.
fn watched(version: &str, watch: &str) -> Conf {
    Conf::demo(version).deploy(&format!(
        "strategy = \"blue-green\"\nprogress_deadline = \"60s\"\nscale_down_delay = \"1s\"\nwatch = \"{watch}\""
    ))
}

/// The app's events, over the token-guarded TCP API.
fn events(world: &World) -> String {
    let token = world.create_token("auditor", "viewer");
    events_with(world, &token)
}

fn events_with(world: &World, token: &str) -> String {
    let answer = support::http::get(
        world.api_addr(),
        "/v1/apps/shop/events?limit=1000",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .expect("events over TCP");
    answer.body
}

/// v1 under paced load (it serves `warm_up` requests first: the watch's baseline), then v2 — healthy
/// when it starts and through its switch — promoted; `errors_after_ms` after v2 started, one request in
/// five fails. The load runs on.
fn v1_then_v2_going_bad(world: &World, warm_up: u64, errors_after_ms: &str) -> Load {
    world.deploy_ok(&watched("v1", "2m"));
    let load = Load::paced(world.daemon.proxy, 4, "/", 50);
    load.wait_for_more(warm_up);
    world.deploy_ok(
        &watched("v2", "2m")
            .env("DEMO_ERROR_RATE", "0.2")
            .env("DEMO_ERRORS_AFTER_MS", errors_after_ms),
    );
    load
}

/// Waits for the watch's rollback to be stable — a release newer than `newest_before`, made from v1 by
/// "slipway watch" — and says which.
fn rolled_back_to_v1(world: &World, newest_before: u64) -> u64 {
    let back = wait_for(
        Duration::from_secs(120),
        "a release made from v1 stable",
        || {
            let s = world.status();
            let stable = s["stable"]["version"].as_u64()?;
            (s["rollout"].is_null() && stable > newest_before).then_some(stable)
        },
    );
    let history = world.history();
    let made = release(&history, back);
    assert_eq!(made["rollback_of"], 1, "{made}");
    assert_eq!(made["created_by"], "slipway watch", "{made}");
    back
}

/// The dashboard's page of the app, as a viewer logged in with a fresh token sees it.
fn dashboard_page(world: &World) -> String {
    let token = world.create_token("dashboard-viewer", "viewer");
    let jar = world.root().join("cookies.txt");
    let base = format!("http://{}", world.api_addr());
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sf", "-c"])
            .arg(&jar)
            .arg("-b")
            .arg(&jar)
            .args(args)
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl {args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    curl(&[
        "-o",
        "/dev/null",
        "-d",
        &format!("token={token}"),
        &format!("{base}/ui/login"),
    ]);
    curl(&[&format!("{base}/ui/apps/shop")])
}

/// Every failed request was the bad release's own injected 500: no connection error, no 502/503/504.
fn assert_only_errors_of(tally: &Tally, version: &str) {
    let mine = format!("injected error from {version}");
    for r in tally.failures() {
        assert!(
            matches!(&r.result, Err(Outcome::Status(500, body)) if body.contains(&mine)),
            "a failure not injected by {version}: {:?}; {}",
            r.result,
            tally.summary()
        );
    }
}

#[test]
fn a_release_that_regresses_after_promotion_is_rolled_back_to_the_one_it_replaced() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let load = v1_then_v2_going_bad(&world, 400, "3000");
    let promoted = load.mark();
    let watching = world.status();
    assert_eq!(watching["stable"]["version"], 2, "{watching}");
    assert_eq!(watching["watch"]["release"], 2, "{watching}");
    assert_eq!(watching["watch"]["compared_with"], 1, "{watching}");

    let regressed = wait_for(Duration::from_secs(120), "the watch to fail", || {
        let s = world.status();
        (s["watch"]["state"] == "regressed").then_some(s)
    });
    assert_eq!(regressed["watch"]["verdict"], "fail", "{regressed}");
    let detail = regressed["watch"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("v2 ") && detail.contains("v1 (before the switch)"),
        "the verdict compares v2 with v1: {detail}"
    );
    let back = wait_for(Duration::from_secs(120), "v3 (v1 again) stable", || {
        let s = world.status();
        (s["rollout"].is_null() && s["stable"]["version"] == 3).then_some(s)
    });
    let after = load.mark();
    load.wait_for_more(300);
    let tally = load.finish();

    assert_eq!(world.answer(), "v1");
    assert_eq!(back["watch"]["state"], "regressed", "still shown: {back}");
    let history = world.history();
    let v3 = release(&history, 3);
    assert_eq!(v3["rollback_of"], 1, "{v3}");
    assert_eq!(v3["created_by"], "slipway watch", "{v3}");
    let v2 = release(&history, 2);
    assert_eq!(v2["status"], "failed", "{v2}");
    assert!(
        v2["reason"]
            .as_str()
            .is_some_and(|r| r.contains("after promotion")),
        "{v2}"
    );

    assert_only_errors_of(&tally, "v2");
    assert!(
        !tally.failures().is_empty(),
        "v2's errors did reach users before the rollback: {}",
        tally.summary()
    );
    let served = tally.versions(promoted..after);
    assert!(
        served.get("v2").is_some_and(|&n| n > 0),
        "v2 served after its promotion: {served:?}"
    );
    assert_eq!(
        tally.versions(after..).keys().collect::<Vec<_>>(),
        ["v1"],
        "only v1 after the rollback: {}",
        tally.summary()
    );

    let text = world.slipway(&["status"]).ok().stdout;
    assert!(
        text.contains("watch of v2 against v1 before the switch: REGRESSED")
            && text.contains("rolled back to v1"),
        "{text}"
    );
    let journal = events(&world);
    for said in [
        "watch_started",
        "the watch of v2 failed: regressed",
        "rolling back to v1",
        "v3 (made from v1) replaces v2",
    ] {
        assert!(journal.contains(said), "the events say {said:?}: {journal}");
    }
    eprintln!("regression after promotion: {}", tally.summary());
}

#[test]
fn a_healthy_release_is_watched_and_left_alone() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    world.deploy_ok(&watched("v1", "5s"));
    let load = Load::paced(world.daemon.proxy, 4, "/", 50);
    load.wait_for_more(400);

    world.deploy_ok(&watched("v2", "5s"));
    let ended = wait_for(Duration::from_secs(120), "the watch to end", || {
        let s = world.status();
        (s["watch"]["state"] != "watching").then_some(s)
    });
    load.wait_for_more(200);
    let tally = load.finish();

    let watch: &Value = &ended["watch"];
    assert_eq!(watch["state"], "ended", "{ended}");
    assert_ne!(watch["verdict"], "fail", "{ended}");
    assert_eq!(ended["stable"]["version"], 2, "{ended}");
    assert_eq!(world.history().len(), 2, "no rollback release was made");
    assert_eq!(world.answer(), "v2");
    tally.assert_no_failures();
    let text = world.slipway(&["status"]).ok().stdout;
    assert!(text.contains("no regression"), "{text}");
    let journal = events(&world);
    assert!(journal.contains("the watch of v2 ended after"), "{journal}");
}

/// The regression is found while another deploy holds the app (its release phase runs): the rollback
/// waits for the app rather than failing, and goes ahead once that deploy has failed and the regressed
/// release still serves.
#[test]
fn a_watch_rollback_waits_for_a_deploy_that_holds_the_app() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let load = v1_then_v2_going_bad(&world, 200, "3000");

    // v3's release phase holds the app's lock until `go` appears, then fails.
    let go = world.root().join("go");
    let phase = format!(
        "[release]\ncmd = \"while [ ! -f '{}' ]; do sleep 0.1; done; exit 1\"\n",
        go.display()
    );
    world.write(&watched("v3", "2m").tail(&phase));
    let mut v3 = world.command(&["deploy"]).spawn().expect("deploy v3");
    let token = world.create_token("auditor", "viewer");
    wait_until(
        Duration::from_secs(120),
        "the rollback to wait for the app",
        || events_with(&world, &token).contains("watch_rollback_waiting"),
    );
    assert_eq!(world.status()["stable"]["version"], 2);
    std::fs::write(&go, "").unwrap();
    assert!(!v3.wait().unwrap().success(), "v3's release phase fails");

    rolled_back_to_v1(&world, 3);
    let tally = load.finish();
    assert_eq!(world.answer(), "v1");
    assert_only_errors_of(&tally, "v2");
    assert!(events_with(&world, &token).contains("replaces v2, which regressed"));
}

/// The daemon crashes while it watches a promoted release: the new daemon watches on (with the replaced
/// release's numbers from before the switch, kept in the store) and still rolls back the regression
/// that shows up afterwards.
#[test]
fn a_restarted_daemon_watches_on_and_rolls_back_a_later_regression() {
    let mut world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let load = v1_then_v2_going_bad(&world, 300, "8000");
    load.finish();
    assert_eq!(world.status()["watch"]["release"], 2);

    world.daemon.kill9();
    world.daemon.restart();
    let resumed = wait_for(Duration::from_secs(60), "the watch resumed", || {
        let s = world.status();
        (s["watch"]["release"] == 2).then_some(s)
    });
    assert_eq!(resumed["watch"]["state"], "watching", "{resumed}");
    assert_eq!(resumed["watch"]["compared_with"], 1, "{resumed}");
    let page = dashboard_page(&world);
    assert!(
        page.contains("watch of v2 against v1 before the switch: <strong>watching</strong>"),
        "the dashboard shows the watch: {page}"
    );
    let load = Load::paced(world.daemon.proxy, 4, "/", 50);
    rolled_back_to_v1(&world, 2);
    load.finish();
    assert_eq!(world.answer(), "v1");
    let journal = events(&world);
    assert!(journal.contains("watch_resumed"), "{journal}");
}
