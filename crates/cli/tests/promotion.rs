//! Blue-green with `auto_promote = false`: the new release waits, reachable only on its preview route,
//! until `slipway promote` switches traffic or `slipway abort` returns to the stable release.

mod support;

use std::time::Duration;
use support::http::{get, version_of};
use support::{Conf, Load, World, release, wait_for};

const MANUAL: &str = "strategy = \"blue-green\"\nauto_promote = false\nprogress_deadline = \"60s\"\nscale_down_delay = \"1s\"";

fn await_promotion(world: &World, to: u64) {
    wait_for(Duration::from_secs(60), "awaiting_promotion", || {
        let s = world.status();
        (s["rollout"]["phase"] == "awaiting_promotion" && s["rollout"]["to"] == to).then_some(())
    });
}

fn preview(world: &World, release: &str) -> String {
    let r = get(world.daemon.proxy, "/", &[("X-Slipway-Release", release)]).expect("preview GET");
    assert_eq!(r.status, 200, "{r:?}");
    version_of(&r)
}

#[test]
fn manual_promotion_previews_then_switches_and_abort_returns_to_stable() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").deploy(MANUAL));

    // First attempt: previewed, then aborted: back to v1.
    world.write(&Conf::demo("v2").deploy(MANUAL));
    world.slipway(&["deploy", "--detach"]).ok();
    await_promotion(&world, 2);
    let load = Load::start(world.daemon.proxy, 2, "/");
    load.wait_for_more(100);
    assert_eq!(preview(&world, "v2"), "v2");
    assert_eq!(world.answer(), "v1");
    let run = world.slipway(&["abort", "--reason", "not today"]).ok();
    assert!(run.stdout.contains("abort accepted"), "{run}");
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    assert!(
        status["last_failure"]
            .as_str()
            .is_some_and(|f| f.contains("not today")),
        "{status}"
    );
    assert_eq!(release(&world.history(), 2)["status"], "failed");
    load.wait_for_more(100);
    let tally = load.finish();
    tally.assert_no_failures();
    assert_eq!(
        tally.versions(..).keys().collect::<Vec<_>>(),
        ["v1"],
        "{}",
        tally.summary()
    );

    // Second attempt: promoted.
    world.write(&Conf::demo("v2").deploy(MANUAL));
    world.slipway(&["deploy", "--detach"]).ok();
    await_promotion(&world, 3);
    let load = Load::start(world.daemon.proxy, 2, "/");
    load.wait_for_more(100);
    assert_eq!(preview(&world, "v3"), "v2");
    assert_eq!(world.answer(), "v1");
    world.slipway(&["promote"]).ok();
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 3, "{status}");
    load.mark();
    load.wait_for_more(200);
    let tally = load.finish();
    tally.assert_no_failures();
    assert_eq!(
        tally.versions(1..).keys().collect::<Vec<_>>(),
        ["v2"],
        "{}",
        tally.summary()
    );

    // Nothing to promote or abort any more.
    let run = world.slipway(&["promote"]).failed();
    assert!(run.stderr.contains("no rollout"), "{run}");
    let run = world.slipway(&["abort"]).failed();
    assert!(run.stderr.contains("no rollout"), "{run}");
}

#[test]
fn deploy_waiting_for_promotion_is_reported_by_the_following_cli() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").deploy(MANUAL));
    world.write(&Conf::demo("v2").deploy(MANUAL));
    // A following deploy and a promote from elsewhere: the follower returns 0 once v2 is live.
    let follower = std::thread::spawn({
        let cmd = world.command(&["deploy"]);
        move || support::run_command(cmd, Duration::from_secs(180))
    });
    await_promotion(&world, 2);
    world.slipway(&["promote"]).ok();
    let run = follower.join().unwrap().ok();
    assert!(run.stdout.contains("v2 is live"), "{run}");
    assert_eq!(world.answer(), "v2");
}
