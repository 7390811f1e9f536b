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
