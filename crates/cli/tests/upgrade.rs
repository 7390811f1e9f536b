//! `slipway upgrade`: the daemon hands its sockets and its running instances to the binary on disk
//! and ends. Under load no request fails, no instance restarts, and a canary in progress continues in
//! the new daemon. An upgrade the new binary cannot take leaves the old daemon serving.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{Conf, Load, World, instances, wait_for};

const CLIENTS: usize = 4;

/// `slipway upgrade --json`, then follows the new daemon; returns its pid.
fn upgrade(world: &mut World) -> u32 {
    let old = world.daemon.pid();
    let answer = world.slipway(&["upgrade", "--json"]).ok().json();
    assert_eq!(answer["from_pid"], old, "{answer}");
    let pid = answer["pid"].as_u64().expect("the new pid") as u32;
    assert_ne!(pid, old, "{answer}");
    assert_eq!(answer["version"], env!("CARGO_PKG_VERSION"));
    world.daemon.upgraded_to(pid);
    pid
}

/// Replaces the file at `exe` as a package manager does: a new file renamed over it (the running
/// daemon keeps the old one open).
fn replace(exe: &std::path::Path, write: impl FnOnce(&std::path::Path) -> std::io::Result<()>) {
    use std::os::unix::fs::PermissionsExt;
    let new = exe.with_extension("new");
    write(&new).expect("write the new binary");
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&new, exe).expect("rename over the binary");
}

#[test]
fn upgrades_under_load_fail_no_request_and_restart_no_instance() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let before = instances(&world.settled());
    assert_eq!(before.len(), 2);
    let load = Load::start(world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    let mut pids = vec![world.daemon.pid()];
    for _ in 0..5 {
        pids.push(upgrade(&mut world));
        load.wait_for_more(100);
    }
    let tally = load.finish();
    tally.assert_no_failures();
    assert_eq!(
        tally.versions(..).keys().collect::<Vec<_>>(),
        ["v1"],
        "{}",
        tally.summary()
    );
    assert_eq!(
        instances(&world.settled()),
        before,
        "the same instances, the same processes, through {} daemons ({pids:?})",
        pids.len()
    );
    // The new daemon is a daemon like any other: it deploys, and stops cleanly.
    world.deploy_ok(&Conf::demo("v2"));
    assert_eq!(world.answer(), "v2");
}

#[test]
fn a_canary_in_progress_continues_in_the_new_daemon() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let canary = Conf::demo("v2").deploy(
        "strategy = \"canary\"\nprogress_deadline = \"120s\"\nsteps = [ { weight = 30 }, { pause = {} } ]",
    );
    world.write(&canary);
    world.slipway(&["deploy", "--detach"]).ok();
    let paused = |world: &World| -> Option<Value> {
        let s = world.status();
        let c = &s["rollout"]["canary"];
        (c["effective_weight"] == 30 && c["step"] == 2).then_some(s)
    };
    let before = wait_for(Duration::from_secs(90), "the canary paused at 30 %", || {
        paused(&world)
    });
    upgrade(&mut world);
    let after = wait_for(
        Duration::from_secs(60),
        "the canary, still paused at 30 %, in the new daemon",
        || paused(&world),
    );
    assert_eq!(
        instances(&after),
        instances(&before),
        "both releases' instances were adopted: {after}"
    );
    world.slipway(&["promote", "--full"]).ok();
    let done = world.settled();
    assert_eq!(done["stable"]["version"], 2, "{done}");
    assert_eq!(world.answer(), "v2");
}

#[test]
fn an_upgrade_to_a_binary_that_cannot_start_leaves_the_daemon_serving() {
    let world = World::with_own_binary();
    world.deploy_ok(&Conf::demo("v1"));
    let pid = world.daemon.pid();
    // The file the daemon was started from is now broken.
    let exe = &world.daemon.exe().to_path_buf();
    replace(exe, |new| {
        std::fs::write(new, "#!/bin/sh\necho 'not slipway' >&2\nexit 3\n").map(|_| ())
    });
    let run = world.slipway(&["upgrade"]).failed();
    assert!(run.stderr.contains("exited before taking over"), "{run}");
    assert_eq!(world.daemon.pid(), pid);
    assert!(support::pid_alive(pid), "the old daemon serves on");
    assert_eq!(world.answer(), "v1");
    // And it still upgrades once the file is right again.
    replace(exe, |new| std::fs::copy(support::bin(), new).map(|_| ()));
    let mut world = world;
    upgrade(&mut world);
    assert_eq!(world.answer(), "v1");
}
