//! Faults with a clear answer: the state database locked by another process. A change the daemon
//! cannot record fails with that reason, after a bounded wait; what serves keeps serving; nothing is
//! left half-done, and the same change goes through once the lock is gone.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use support::{Conf, World, http, wait_until};

/// Another process holding the database's write lock (`BEGIN EXCLUSIVE`) until it is dropped.
struct Holder(Child);

impl Holder {
    fn lock(db: &std::path::Path) -> Holder {
        let script = "import sqlite3, sys\n\
                      c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                      c.execute('BEGIN EXCLUSIVE')\n\
                      print('locked', flush=True)\n\
                      sys.stdin.read()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "locked");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_state_db_locked_by_another_process_fails_the_deploy_clearly_and_serving_goes_on() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let holder = Holder::lock(&world.daemon.state.join("slipway.db"));
    world.write(&Conf::demo("v2"));
    let run = world.slipway(&["deploy"]).failed();
    assert!(
        run.stderr.contains("locked") || run.stderr.contains("busy"),
        "the reason is the lock: {run}"
    );
    // Reads still answer (WAL), and the stable release serves.
    assert_eq!(world.answer(), "v1");
    assert_eq!(world.status()["stable"]["version"], 1);
    drop(holder);
    world.deploy_ok(&Conf::demo("v2"));
    wait_until(support::DEADLINE, "v2 serves", || {
        http::get(world.daemon.proxy, "/", &[]).is_ok_and(|r| http::version_of(&r) == "v2")
    });
}

/// The wall clock jumps back an hour while a canary pauses for 2 s (libfaketime moves the daemon's
/// `CLOCK_REALTIME` only): the pause still ends 2 s later, not an hour later; a jump forward of an
/// hour does not expire the rollout's `progress_deadline`.
#[test]
fn a_wall_clock_jump_neither_stalls_nor_expires_a_rollout() {
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(lib).exists(),
        "libfaketime is missing: apt-get install faketime (.ci/run installs it)"
    );
    let offset = tempfile::NamedTempFile::new().expect("offset file");
    std::fs::write(offset.path(), "+0\n").unwrap();
    let offset_path = offset.path().to_str().unwrap().to_owned();
    let world = World::with_daemon_env(&[
        ("LD_PRELOAD", lib),
        ("FAKETIME_TIMESTAMP_FILE", &offset_path),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]);
    world.deploy_ok(&Conf::demo("v1"));
    let canary = |version: &str| {
        Conf::demo(version).deploy(
            "strategy = \"canary\"\nprogress_deadline = \"30m\"\n\
             steps = [ { weight = 20 }, { pause = \"2s\" }, { weight = 60 }, { pause = \"2s\" } ]",
        )
    };
    for (version, jump) in [("v2", "-3600"), ("v3", "+3600")] {
        world.write(&canary(version));
        world.slipway(&["deploy", "--detach"]).ok();
        support::wait_until(support::DEADLINE, "the canary at 20 %", || {
            world.status()["rollout"]["canary"]["effective_weight"] == 20
        });
        std::fs::write(offset.path(), format!("{jump}\n")).unwrap();
        let done = support::wait_for(support::DEADLINE, "the rollout to finish", || {
            let s = world.status();
            s["rollout"].is_null().then_some(s)
        });
        assert_eq!(
            done["stable"]["version"].as_u64(),
            Some(version[1..].parse().unwrap()),
            "after a jump of {jump} s the canary went through: {done}"
        );
        std::fs::write(offset.path(), "+0\n").unwrap();
    }
}
