//! Rollouts that must not succeed: a release that never gets ready, one that crash-loops, a bad config, a
//! second deploy while one runs. Each time the stable release keeps serving every request.

mod support;

use support::{Conf, Load, World, release};

/// Deploys v1, then runs `bad` under load, expecting the deploy to fail; returns its output.
fn failing_deploy_under_load(world: &World, bad: &Conf) -> support::Run {
    world.deploy_ok(&Conf::demo("v1"));
    let load = Load::start(world.daemon.proxy, 3, "/");
    load.wait_for_more(100);
    world.write(bad);
    let run = world.slipway(&["deploy"]).failed();
    load.mark();
    load.wait_for_more(200);
    let tally = load.finish();
    eprintln!("{}", tally.summary());
    tally.assert_no_failures();
    assert_eq!(
        tally.versions(..).keys().collect::<Vec<_>>(),
        ["v1"],
        "{}",
        tally.summary()
    );
    run
}

#[test]
fn readiness_that_never_passes_fails_by_the_deadline_and_v1_keeps_serving() {
    let world = World::new();
    let bad = Conf::demo("v2")
        .env("DEMO_READY", "false")
        .deploy("strategy = \"blue-green\"\nprogress_deadline = \"3s\"\nscale_down_delay = \"1s\"");
    let run = failing_deploy_under_load(&world, &bad);
    assert!(run.stderr.contains("v1 keeps serving"), "{run}");

    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    let failure = status["last_failure"].as_str().unwrap_or_default();
    assert!(failure.contains("deadline"), "last_failure: {status}");
    let history = world.history();
    assert_eq!(release(&history, 2)["status"], "failed", "{history:?}");
    assert_eq!(release(&history, 1)["status"], "active", "{history:?}");
    // The failed release's instances are gone; v1's serve.
    world.only_instances_of(1);
    assert_eq!(world.answer(), "v1");
}

#[test]
fn crash_looping_release_fails_before_the_deadline() {
    let world = World::new();
    let bad = Conf::demo("v2").cmd("sh -c 'exit 3'");
    // The deadline is 60 s: a failure naming the crash loop can only come from crash-loop detection.
    let run = failing_deploy_under_load(&world, &bad);
    assert!(run.stderr.contains("crash-looping"), "{run}");
    assert!(!run.stderr.contains("deadline"), "{run}");
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1);
    assert!(
        status["last_failure"]
            .as_str()
            .is_some_and(|f| f.contains("crash-looping")),
        "{status}"
    );
    assert_eq!(release(&world.history(), 2)["status"], "failed");
    world.only_instances_of(1);
}

#[test]
fn bad_config_is_refused_with_file_and_line_and_nothing_is_deployed() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let good = Conf::demo("v2").render();
    let cases = [
        // An unknown key in [processes.web], right after `replicas`.
        good.replacen("replicas = 2\n", "replicas = 2\nreplicaz = 3\n", 1),
        good.replacen("grace = \"10s\"", "grace = \"10 sec\"", 1),
    ];
    for bad in &cases {
        let line = bad
            .lines()
            .position(|l| l.starts_with("replicaz") || l.contains("10 sec"))
            .expect("the bad line")
            + 1;
        world.write_raw(bad);
        for cmd in ["validate", "deploy"] {
            let run = world.slipway(&[cmd]).failed();
            assert!(
                run.stderr.contains(&format!("slipway.toml:{line}")),
                "`{cmd}` should point at slipway.toml:{line}: {run}"
            );
            assert!(run.stderr.contains("help"), "`{cmd}` should help: {run}");
        }
    }
    // The config is still broken: name the app explicitly (commands otherwise read it from the config).
    let history = world
        .slipway(&["history", "--json", "--app", "shop"])
        .ok()
        .json();
    assert_eq!(
        history.as_array().map(Vec::len),
        Some(1),
        "nothing new recorded: {history}"
    );
    let status = world
        .slipway(&["status", "--json", "--app", "shop"])
        .ok()
        .json();
    assert_eq!(status["stable"]["version"], 1);
    assert!(status["rollout"].is_null(), "{status}");
    assert_eq!(world.answer(), "v1");
    // And the good config still goes through.
    world.write_raw(&good);
    world.slipway(&["validate"]).ok();
}

#[test]
fn second_deploy_during_a_rollout_is_refused_naming_the_holder() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world.write(&Conf::demo("v2").env("DEMO_STARTUP_DELAY_MS", "3000"));
    world
        .slipway(&["deploy", "--detach", "--version", "slow-one", "-m", "first"])
        .ok();
    let run = world.slipway(&["deploy", "--version", "second"]).failed();
    assert!(
        run.stderr
            .contains("another rollout of shop is in progress"),
        "{run}"
    );
    assert!(
        run.stderr.contains("deploy by") && run.stderr.contains("slow-one"),
        "names the holder: {run}"
    );
    assert!(run.stderr.contains("started"), "names the start: {run}");
    // The first rollout is unaffected and finishes; the lock is free again afterwards.
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "{status}");
    assert_eq!(
        world.history().len(),
        2,
        "the refused deploy recorded nothing"
    );
    world.deploy_ok(&Conf::demo("v3"));
    assert_eq!(world.answer(), "v3");
}

#[test]
fn rollback_refused_during_a_rollout() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world.deploy_ok(&Conf::demo("v2"));
    world.write(&Conf::demo("v3").env("DEMO_STARTUP_DELAY_MS", "3000"));
    world.slipway(&["deploy", "--detach"]).ok();
    let run = world.slipway(&["rollback"]).failed();
    assert!(run.stderr.contains("in progress"), "{run}");
    assert_eq!(world.settled()["stable"]["version"], 3);
}
