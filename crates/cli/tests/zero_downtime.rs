//! Deploys and rollbacks under continuous load through the real proxy: no request may fail, and once the
//! command returns, only the new release answers.

mod support;

use support::{Conf, Load, World, release};

const CLIENTS: usize = 4;

/// Deploys v1, then `next` under load; returns the tally with epoch 0 = during, epoch 1 = after.
fn deploy_under_load(world: &World, first: &Conf, next: &Conf) -> support::Tally {
    world.deploy_ok(first);
    assert_eq!(world.answer(), "v1");
    let load = Load::start(world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    world.deploy_ok(next);
    load.mark();
    load.wait_for_more(300);
    load.finish()
}

#[test]
fn blue_green_under_load_fails_no_request() {
    let world = World::new();
    let tally = deploy_under_load(&world, &Conf::demo("v1"), &Conf::demo("v2"));
    tally.assert_switched("v1", "v2");
}

#[test]
fn one_worker_thread_daemon_deploys_under_load_without_failures() {
    // `--threads 1` runs everything (proxy, controller, API) on a current-thread runtime.
    let world = World::with_daemon_args(&["--threads", "1"]);
    let tally = deploy_under_load(&world, &Conf::demo("v1"), &Conf::demo("v2"));
    tally.assert_no_failures();
    tally.assert_only_after("v2");
}

#[test]
fn a_busy_polling_daemon_deploys_under_load_without_failures_and_rests_when_traffic_stops() {
    // `--busy-poll`: the one thread keeps polling for events while traffic flows instead of sleeping.
    let world = World::with_daemon_args(&["--threads", "1", "--busy-poll", "200us"]);
    let tally = deploy_under_load(&world, &Conf::demo("v1"), &Conf::demo("v2"));
    tally.assert_no_failures();
    tally.assert_only_after("v2");
    // With no traffic it must not spin: some half-second soon uses well under a quarter of a core
    // (a spinning thread uses all of one whenever it runs).
    let pid = world.daemon.pid();
    let cpu_ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon's stat");
        // The fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        let fields: Vec<u64> = stat[stat.rfind(')').expect("stat") + 2..]
            .split(' ')
            .skip(11)
            .take(2)
            .map(|f| f.parse().expect("ticks"))
            .collect();
        fields.iter().sum::<u64>()
    };
    let ticks_per_second = 100; // USER_HZ on Linux
    support::wait_until(
        support::DEADLINE,
        "the daemon to stop polling at rest",
        || {
            let before = cpu_ticks();
            std::thread::sleep(std::time::Duration::from_millis(500));
            cpu_ticks() - before < ticks_per_second / 8
        },
    );
}

#[test]
fn rolling_under_load_fails_no_request() {
    let world = World::new();
    let rolling =
        "strategy = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\nprogress_deadline = \"60s\"";
    let v1 = Conf::demo("v1").replicas(3).deploy(rolling);
    let v2 = Conf::demo("v2").replicas(3).deploy(rolling);
    let tally = deploy_under_load(&world, &v1, &v2);
    tally.assert_switched("v1", "v2");
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2);
    assert_eq!(status["stable"]["strategy"], "rolling");
}

#[test]
fn rolling_with_max_unavailable_under_load_fails_no_request() {
    let world = World::new();
    // No surge: an old instance leaves (out of the route table, drained) before each new one starts.
    let rolling =
        "strategy = \"rolling\"\nmax_surge = 0\nmax_unavailable = 1\nprogress_deadline = \"60s\"";
    let v1 = Conf::demo("v1").replicas(3).deploy(rolling);
    let v2 = Conf::demo("v2").replicas(3).deploy(rolling);
    let tally = deploy_under_load(&world, &v1, &v2);
    eprintln!("{}", tally.summary());
    tally.assert_no_failures();
    assert_eq!(
        tally.versions(1..).keys().collect::<Vec<_>>(),
        ["v2"],
        "{}",
        tally.summary()
    );
    assert_eq!(
        world.only_instances_of(2)["instances"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[test]
fn rollback_under_load_returns_to_v1() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world.deploy_ok(&Conf::demo("v2"));
    // The warm v1 is gone: the rollback has to start v1's bits again.
    world.only_instances_of(2);
    let load = Load::start(world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    let run = world.slipway(&["rollback"]).ok();
    assert!(run.stdout.contains("v3"), "{run}");
    load.mark();
    load.wait_for_more(300);
    let tally = load.finish();
    tally.assert_switched("v2", "v1");

    let history = world.history();
    let v3 = release(&history, 3);
    assert_eq!(v3["rollback_of"], 1, "{v3}");
    assert_eq!(v3["status"], "active", "{v3}");
    assert_eq!(release(&history, 1)["artifact"], v3["artifact"]);
    assert_eq!(world.settled()["stable"]["version"], 3);
}

#[test]
fn rollback_to_a_warm_release_is_a_route_swap_under_load() {
    let world = World::new();
    let warm = "strategy = \"blue-green\"\nprogress_deadline = \"60s\"\nscale_down_delay = \"5m\"";
    world.deploy_ok(&Conf::demo("v1").deploy(warm));
    world.deploy_ok(&Conf::demo("v2").deploy(warm));
    let status = world.status();
    assert_eq!(status["warm"]["version"], 1, "{status}");
    let warm_ids: Vec<String> = support::instances(&status)
        .into_iter()
        .filter(|(id, _)| id.contains("-v1-"))
        .map(|(id, _)| id)
        .collect();
    assert!(!warm_ids.is_empty(), "{status}");

    let load = Load::start(world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    world.slipway(&["rollback"]).ok();
    load.mark();
    load.wait_for_more(300);
    let tally = load.finish();
    eprintln!("{}", tally.summary());
    tally.assert_no_failures();
    assert_eq!(
        tally.versions(1..).keys().collect::<Vec<_>>(),
        ["v1"],
        "{}",
        tally.summary()
    );
    // The warm instances now serve as v3: nothing was started for it.
    let status = world.settled();
    let ids: Vec<String> = support::instances(&status)
        .into_iter()
        .filter(|(_, pid)| pid.is_some())
        .map(|(id, _)| id)
        .collect();
    for id in &warm_ids {
        assert!(
            ids.contains(id),
            "warm instance {id} was replaced: {status}"
        );
    }
}

#[test]
fn recreate_deploys_v2() {
    let world = World::new();
    let recreate = "strategy = \"recreate\"\nprogress_deadline = \"60s\"";
    world.deploy_ok(&Conf::demo("v1").deploy(recreate));
    assert_eq!(world.answer(), "v1");
    // Recreate stops v1 before v2 is up: requests may fail meanwhile, so only the end state is checked.
    world.deploy_ok(&Conf::demo("v2").deploy(recreate));
    let load = Load::start(world.daemon.proxy, 2, "/");
    load.wait_for_more(200);
    let tally = load.finish();
    eprintln!("{}", tally.summary());
    tally.assert_no_failures();
    assert_eq!(tally.versions(..).keys().collect::<Vec<_>>(), ["v2"]);
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2);
    assert!(
        status["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["release"] == 2),
        "{status}"
    );
}
