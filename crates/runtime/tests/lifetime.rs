//! The kernel's parent-death signal is tied to the spawning thread: an instance must not die when the
//! thread that called `start` goes away.

mod common;

use common::*;
use slipway_runtime::Supervisor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_outlives_the_thread_that_started_it() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    let handle = tokio::runtime::Handle::current();
    let starter = {
        let supervisor = supervisor.clone();
        let spec = spec(&dir, "survivor", "exec sleep 1000");
        std::thread::spawn(move || {
            let _runtime = handle.enter();
            supervisor.start(spec).expect("start").pid.expect("pid")
        })
    };
    let pid = starter.join().expect("starter thread");
    // A death signal would arrive within moments of the thread's exit, long before the second of running
    // that makes a worker Ready: the first state change after Starting tells.
    let next = wait_event(&mut events, "Ready", |e| {
        e.id == "survivor" && e.state.name() != "starting"
    })
    .await;
    assert_eq!(next.state.name(), "ready", "{}", next.message);
    assert!(is_alive(pid));
    supervisor.stop("survivor").await;
}
