//! Stopping the daemon: SIGTERM under load drains — every request the proxy accepted gets its whole answer,
//! the daemon exits 0, and no instance process is left behind. A restart brings the stable release back.

mod support;

use std::time::{Duration, Instant};
use support::http::{Conn, Failure};
use support::load::Outcome;
use support::{Conf, Load, World, instances, pid_alive, processes_of_instances, wait_until};

#[test]
fn sigterm_under_load_finishes_in_flight_requests_and_leaves_no_process() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let status = world.settled();
    let ids: Vec<String> = instances(&status).into_iter().map(|(id, _)| id).collect();
    let pids: Vec<u32> = instances(&status)
        .into_iter()
        .filter_map(|(_, p)| p)
        .collect();
    let ports: Vec<u16> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["port"].as_u64().map(|p| p as u16))
        .collect();
    assert_eq!(pids.len(), 2, "{status}");
    assert_eq!(ports.len(), 2, "{status}");
    assert!(pids.iter().all(|&p| pid_alive(p)));

    let proxy = world.daemon.proxy;
    let fast = Load::start(proxy, 2, "/");
    let slow_loop = Load::start(proxy, 2, "/slow?ms=500");
    fast.wait_for_more(100);
    // Long requests that are certainly inside the app when the signal comes.
    const SLOW: usize = 4;
    let slow: Vec<_> = (0..SLOW)
        .map(|_| std::thread::spawn(move || Conn::new(proxy).get("/slow?ms=2500", &[])))
        .collect();
    support::wait_inflight(&ports, SLOW as u64);
    let sigterm_at = Instant::now();
    let exit = world.daemon.terminate();
    assert!(
        exit.success(),
        "the daemon should exit 0 after draining: {exit:?}"
    );

    for (i, request) in slow.into_iter().enumerate() {
        let answer = request.join().expect("slow client");
        match answer {
            Ok(r) => assert!(
                r.status == 200 && r.body.trim() == "slow v1 2500",
                "in-flight slow request {i} got {} {:?}",
                r.status,
                r.body
            ),
            Err(e) => panic!("in-flight slow request {i} failed: {e}"),
        }
    }
    for (name, load) in [("fast", fast), ("slow", slow_loop)] {
        let tally = load.finish();
        let (mut refused, mut closed_idle) = (0, 0);
        for r in &tally.records {
            match &r.result {
                Ok(v) => assert_eq!(
                    v.split_whitespace().find(|w| w.starts_with('v')),
                    Some("v1")
                ),
                // After the listener closed: nobody was turned away mid-request.
                Err(Outcome::Failed(Failure::Refused(_))) if r.sent >= sigterm_at => refused += 1,
                // An idle keep-alive connection closed by the shutdown before the next request was read.
                Err(Outcome::Failed(Failure::ClosedIdle(_))) => closed_idle += 1,
                Err(e) => panic!(
                    "{name} request sent {:?} {} SIGTERM failed: {e}",
                    if r.sent >= sigterm_at {
                        r.sent - sigterm_at
                    } else {
                        sigterm_at - r.sent
                    },
                    if r.sent >= sigterm_at {
                        "after"
                    } else {
                        "before"
                    }
                ),
            }
        }
        eprintln!(
            "{name}: {}; {refused} refused after close, {closed_idle} idle connections closed",
            tally.summary()
        );
    }

    // Nothing left running: the instances' processes (and anything they started) are gone.
    for pid in &pids {
        assert!(
            !pid_alive(*pid),
            "instance pid {pid} still alive after shutdown"
        );
    }
    let left = processes_of_instances(&ids);
    assert!(left.is_empty(), "processes of {ids:?} left: {left:?}");
    let pid_files = std::fs::read_dir(world.daemon.state.join("run"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(pid_files, 0, "pid files left in the run dir");
    assert!(
        !world.daemon.state.join("slipway.sock").exists(),
        "the socket is removed"
    );
    assert!(
        world.daemon.log_text().contains(r#""message":"stopped""#),
        "{}",
        world.daemon.log_text()
    );
}

#[test]
fn restart_after_a_clean_shutdown_serves_the_stable_release_again() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world.deploy_ok(&Conf::demo("v2"));
    assert!(world.daemon.terminate().success());
    world.daemon.restart();
    wait_until(
        Duration::from_secs(60),
        "v2 answers after the restart",
        || {
            support::http::get(world.daemon.proxy, "/", &[])
                .is_ok_and(|r| r.status == 200 && support::http::version_of(&r) == "v2")
        },
    );
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "{status}");
    assert!(status["last_failure"].is_null(), "{status}");
    world.deploy_ok(&Conf::demo("v3"));
    assert_eq!(world.answer(), "v3");
}
