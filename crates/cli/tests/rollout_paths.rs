//! The less happy paths of a rollout under load: an abort halfway through a rolling update, a rolling
//! update whose new release never gets ready, a stream open across a deploy, a daemon stopped mid-rollout.

mod support;

use std::time::Duration;
use support::http::Conn;
use support::{Conf, Load, World, release, wait_for, wait_until};

const ROLLING: &str =
    "strategy = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\nprogress_deadline = \"60s\"";

#[test]
fn abort_halfway_through_a_rolling_update_returns_to_v1_without_failures() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(3).deploy(ROLLING));
    let load = Load::start(world.daemon.proxy, 3, "/");
    load.wait_for_more(100);
    // v2's later instances are slow to start, so the rollout is caught halfway.
    world.write(
        &Conf::demo("v2")
            .replicas(3)
            .deploy(ROLLING)
            .env("DEMO_STARTUP_DELAY_MS", "1500"),
    );
    world.slipway(&["deploy", "--detach"]).ok();
    wait_for(Duration::from_secs(60), "one v2 instance serving", || {
        let s = world.status();
        (s["rollout"]["ready_to"].as_u64() >= Some(1)).then_some(())
    });
    world.slipway(&["abort"]).ok();
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    load.mark();
    world.only_instances_of(1);
    load.wait_for_more(200);
    let tally = load.finish();
    eprintln!("{}", tally.summary());
    tally.assert_no_failures();
    assert!(
        tally.versions(0..=0).contains_key("v2"),
        "v2 served before the abort: {}",
        tally.summary()
    );
    let after: Vec<_> = tally.versions(1..).into_keys().collect();
    assert!(after.iter().all(|v| v == "v1" || v == "v2"), "{after:?}");
    assert_eq!(world.answer(), "v1");
    let status = world.status();
    assert_eq!(
        status["instances"].as_array().map(Vec::len),
        Some(3),
        "back to 3 v1: {status}"
    );
    assert_eq!(release(&world.history(), 2)["status"], "failed");
}

#[test]
fn rolling_update_that_never_gets_ready_keeps_v1_at_full_strength() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(3).deploy(ROLLING));
    let load = Load::start(world.daemon.proxy, 3, "/");
    load.wait_for_more(100);
    world.write(
        &Conf::demo("v2")
            .replicas(3)
            .env("DEMO_READY", "false")
            .deploy("strategy = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\nprogress_deadline = \"3s\""),
    );
    let run = world.slipway(&["deploy"]).failed();
    assert!(run.stderr.contains("v1 keeps serving"), "{run}");
    let status = world.only_instances_of(1);
    assert_eq!(
        status["instances"].as_array().map(Vec::len),
        Some(3),
        "{status}"
    );
    load.wait_for_more(200);
    let tally = load.finish();
    eprintln!("{}", tally.summary());
    tally.assert_no_failures();
    assert_eq!(tally.versions(..).into_keys().collect::<Vec<_>>(), ["v1"]);
}

#[test]
fn a_stream_open_across_a_deploy_gets_all_its_events() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    // 40 events, 100 ms apart: open during the whole deploy; the old instance must drain it, not cut it.
    let proxy = world.daemon.proxy;
    let stream = std::thread::spawn(move || Conn::new(proxy).get("/sse?n=40&interval_ms=100", &[]));
    let v1_ports = support::ports(&world.status(), 1);
    support::wait_inflight(&v1_ports, 1);
    world.deploy_ok(&Conf::demo("v2"));
    let answer = stream.join().unwrap().expect("the stream completed");
    assert_eq!(answer.status, 200);
    let events: Vec<&str> = answer
        .body
        .lines()
        .filter(|l| l.starts_with("data: "))
        .collect();
    assert_eq!(events.len(), 40, "{answer:?}");
    assert_eq!(events[39], "data: v1 40");
    assert_eq!(world.answer(), "v2");
}

#[test]
fn sigterm_mid_rollout_then_restart_ends_the_rollout_cleanly() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world.write(&Conf::demo("v2").env("DEMO_STARTUP_DELAY_MS", "1500"));
    world.slipway(&["deploy", "--detach"]).ok();
    wait_for(Duration::from_secs(60), "v2 starting", || {
        let s = world.status();
        s["instances"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["release"] == 2))
            .then_some(())
    });
    assert!(world.daemon.terminate().success());
    world.daemon.restart();
    let status = world.settled();
    let stable = status["stable"]["version"].as_u64().unwrap();
    assert!(stable == 1 || stable == 2, "{status}");
    let expected = format!("v{stable}");
    wait_until(
        Duration::from_secs(60),
        "the stable release answers",
        || {
            support::http::get(world.daemon.proxy, "/", &[])
                .is_ok_and(|r| support::http::version_of(&r) == expected)
        },
    );
    world.deploy_ok(&Conf::demo("v3"));
    assert_eq!(world.answer(), "v3");
}
