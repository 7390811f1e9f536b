//! A daemon killed with SIGKILL: its instances keep running, and the next daemon on the same state dir
//! adopts those of the releases that should run (same processes, no restart) and reaps the rest, takes
//! over its deploy lock, carries a rollout in progress to an end — and then accepts new deploys.

mod support;

use std::time::Duration;
use support::{Conf, World, instances, processes_of_instances, release, wait_for, wait_until};

#[test]
fn kill_9_mid_deploy_then_restart_recovers_and_finishes_the_rollout() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world.write(&Conf::demo("v2").env("DEMO_STARTUP_DELAY_MS", "1500"));
    world.slipway(&["deploy", "--detach"]).ok();
    // v2 is starting (its processes exist, still sleeping before they listen).
    let status = wait_for(Duration::from_secs(60), "v2 instances started", || {
        let s = world.status();
        let starting = s["instances"].as_array().is_some_and(|l| {
            l.iter()
                .any(|i| i["release"] == 2 && i["pid"].as_u64().is_some())
        });
        starting.then_some(s)
    });
    assert_eq!(status["rollout"]["to"], 2, "{status}");
    world.daemon.kill9();
    let orphans: Vec<String> = instances(&status).into_iter().map(|(id, _)| id).collect();
    assert!(
        !processes_of_instances(&orphans).is_empty(),
        "SIGKILL of the daemon leaves its instances running (else this test proves nothing)"
    );

    world.daemon.restart();
    // Each one is adopted (listed, the same process) or reaped: never running unwatched, never twice.
    let status = world.settled();
    let listed = instances(&status);
    for id in &orphans {
        let running = processes_of_instances(std::slice::from_ref(id));
        if !running.is_empty() {
            let adopted = listed.iter().find(|(listed, _)| listed == id);
            assert!(
                adopted.is_some_and(|(_, pid)| pid.is_some_and(|p| running.contains(&p))),
                "{id} runs ({running:?}) without being adopted: {status}"
            );
        }
    }

    let stable = status["stable"]["version"]
        .as_u64()
        .expect("a stable release");
    let history = world.history();
    eprintln!(
        "after recovery: stable v{stable}, last_failure {}",
        status["last_failure"]
    );
    match stable {
        2 => {
            assert_eq!(release(&history, 2)["status"], "active", "{history:?}");
            assert!(status["last_failure"].is_null(), "{status}");
        }
        1 => {
            assert_eq!(release(&history, 2)["status"], "failed", "{history:?}");
            assert!(!status["last_failure"].is_null(), "{status}");
        }
        other => panic!("stable v{other} after recovery: {status}"),
    }
    wait_until(
        Duration::from_secs(60),
        "the stable release answers after recovery",
        || {
            support::http::get(world.daemon.proxy, "/", &[]).is_ok_and(|r| {
                r.status == 200 && support::http::version_of(&r) == format!("v{stable}")
            })
        },
    );
    // Nothing is stuck: the lock is free and a new deploy goes through.
    world.deploy_ok(&Conf::demo("v3"));
    assert_eq!(world.answer(), "v3");
    // Adopted instances are retired like any other once v3 serves.
    wait_until(
        Duration::from_secs(60),
        "no instance of before the crash is left",
        || processes_of_instances(&orphans).is_empty(),
    );
}

#[test]
fn kill_9_while_stable_then_restart_adopts_the_running_instances() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let before = world.settled();
    let old = instances(&before);
    let ports: Vec<u64> = before["instances"]
        .as_array()
        .map(|l| l.iter().filter_map(|i| i["port"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!((old.len(), ports.len()), (2, 2), "{before}");
    world.daemon.kill9();
    // The app did not go down with the daemon: each instance still answers on its own port.
    for port in &ports {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *port as u16));
        let answer = support::http::get(addr, "/", &[]).expect("the instance answers");
        assert_eq!(support::http::version_of(&answer), "v1");
    }

    world.daemon.restart();
    wait_until(
        Duration::from_secs(60),
        "v1 answers after the restart",
        || {
            support::http::get(world.daemon.proxy, "/", &[])
                .is_ok_and(|r| r.status == 200 && support::http::version_of(&r) == "v1")
        },
    );
    let after = world.settled();
    assert_eq!(
        instances(&after),
        old,
        "the same instances, the same processes: adopted, not restarted"
    );
    let log = world.daemon.log_text();
    assert_eq!(
        log.matches("left running by the previous daemon").count(),
        2,
        "both adopted: {log}"
    );
    world.deploy_ok(&Conf::demo("v2"));
    assert_eq!(world.answer(), "v2");
    let ids: Vec<String> = old.into_iter().map(|(id, _)| id).collect();
    wait_until(
        Duration::from_secs(60),
        "the adopted instances are retired like any other",
        || processes_of_instances(&ids).is_empty(),
    );
}

/// After `slipway scale` the running instances belong to the scaled release, though they were started
/// by the one it was made from: a daemon killed then must take all of them back, not reap the older ones.
#[test]
fn kill_9_after_a_scale_then_restart_adopts_every_instance() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world.slipway(&["scale", "web=3"]).ok();
    let before = world.settled();
    let old = instances(&before);
    assert_eq!(old.len(), 3, "{before}");
    world.daemon.kill9();
    world.daemon.restart();
    wait_until(
        Duration::from_secs(60),
        "the app answers after the restart",
        || support::http::get(world.daemon.proxy, "/", &[]).is_ok_and(|r| r.status == 200),
    );
    let after = world.settled();
    let mut kept = instances(&after);
    let mut old = old;
    kept.sort();
    old.sort();
    assert_eq!(
        kept,
        old,
        "the same three processes, adopted, none reaped: {}",
        world.daemon.log_text()
    );
}

/// A daemon killed while a deploy freezes its artifact (lock taken, no rollout recorded yet) must not leave
/// the app locked for ever: the next daemon gives the lock back (and marks the half-made release).
#[test]
fn kill_9_while_freezing_the_artifact_does_not_leave_the_app_locked() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    // A big file makes freezing (hashing and copying) slow enough to be caught in the middle.
    let big = world.app_dir.join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    world.write(&Conf::demo("v2"));
    // The competing deploy comes from a tiny folder of the same app: if it wins the race it is quick.
    let small = world.root().join("small");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::write(small.join("slipway.toml"), Conf::demo("v-small").render()).unwrap();
    let compete = || {
        let mut cmd = std::process::Command::new(support::bin());
        cmd.args(["deploy", "--detach", "--state-dir"])
            .arg(&world.daemon.state)
            .arg("--config")
            .arg(small.join("slipway.toml"))
            .env_remove("SLIPWAY_SERVER");
        support::run_command(cmd, Duration::from_secs(180))
    };
    let mut caught = false;
    // A race by design: on a loaded machine the competing deploy may come too late several times.
    for attempt in 0..12u8 {
        // Different bytes each attempt, so nothing frozen before can be reused.
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
            f.write_all(&[attempt + 1; 16]).unwrap();
        }
        let deploying = std::thread::spawn({
            let cmd = world.command(&["deploy", "--detach"]);
            move || support::run_command(cmd, Duration::from_secs(300))
        });
        // The lock is held while it freezes: the competing deploy is refused, yet no rollout exists.
        let run = compete();
        if !run.success()
            && run.stderr.contains("another rollout")
            && world.status()["rollout"].is_null()
        {
            world.daemon.kill9();
            let first = deploying.join().unwrap();
            assert!(!first.success(), "{first}");
            caught = true;
            break;
        }
        // The race went the other way: let everything finish and try again.
        let _ = deploying.join();
        world.settled();
    }
    assert!(caught, "never caught a deploy while it froze its artifact");
    std::fs::remove_file(&big).unwrap();
    world.daemon.restart();
    let status = world.settled();
    assert!(status["stable"]["version"].as_u64().is_some(), "{status}");
    // Nothing is in progress, so a deploy must be accepted.
    world.write(&Conf::demo("v9"));
    let run = world.slipway(&["deploy"]);
    assert!(run.success(), "the app stays locked after the crash: {run}");
    assert_eq!(world.answer(), "v9");
}

/// With the socket held outside the daemon (systemd's socket activation), a `kill -9` fails no
/// connection: one made while no daemon runs waits in the backlog, and the restarted daemon, which
/// adopted the instances, answers it.
#[test]
fn with_socket_activation_a_request_made_while_no_daemon_runs_is_answered() {
    let mut world = World::with_held_socket();
    world.deploy_ok(&Conf::demo("v1"));
    let proxy = world.daemon.proxy;
    world.daemon.kill9();
    // Connected (the kernel completes the handshake into the backlog) while no daemon exists.
    let stream = std::net::TcpStream::connect(proxy).expect("connected while no daemon runs");
    let waiting =
        std::thread::spawn(move || support::http::request_on(stream, "GET", "/", &[], "", true));
    world.daemon.restart();
    assert_eq!(world.daemon.proxy, proxy, "the same socket");
    let answer = waiting
        .join()
        .expect("client thread")
        .expect("answered, not refused");
    assert_eq!(
        (answer.status, support::http::version_of(&answer).as_str()),
        (200, "v1")
    );
}
