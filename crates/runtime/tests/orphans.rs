//! A daemon that died without stopping its instances: the next one reaps them from the pid files.

mod common;

use common::*;
use slipway_runtime::Supervisor;
use std::os::unix::process::CommandExt;

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn reap_orphans_kills_the_leftover_group_of_a_previous_supervisor() {
    let (_tmp, dir) = tempdir();
    let run_dir = dir.join("run");
    let mut guard = KillGuard::default();

    // Supervisor A starts an instance, then "dies": its runtime is leaked without ever running again, so
    // nothing stops, waits for or restarts the instance. The spawning thread (this one) stays alive, so
    // PR_SET_PDEATHSIG does not fire and the processes really are left over.
    let spec = spec(
        &dir,
        "hello-v1-worker-1",
        "sleep 1000 & echo grandchild=$!; wait",
    );
    let log_path = spec.log_path.clone();
    let runtime_a = current_thread_runtime();
    let (leader, supervisor_a, events_a) = runtime_a.block_on(async {
        let (supervisor, events) = Supervisor::new(run_dir.clone()).expect("supervisor A");
        let pid = supervisor.start(spec).expect("start").pid.expect("pid");
        // Output is captured by A's tasks, which only run inside this block_on.
        wait_until("the grandchild is logged", || {
            logged_pid(&read_log(&log_path), "grandchild").is_some()
        })
        .await;
        (pid, supervisor, events)
    });
    guard.groups.push(leader);
    let grandchild = logged_pid(&read_log(&log_path), "grandchild").expect("grandchild pid");
    std::mem::forget((supervisor_a, events_a));
    std::mem::forget(runtime_a);
    assert!(is_alive(leader) && is_alive(grandchild));
    assert!(run_dir.join("hello-v1-worker-1.pid").exists());

    // Supervisor B, same run dir, finds and kills the whole group.
    let runtime_b = current_thread_runtime();
    runtime_b.block_on(async {
        let (supervisor_b, _events) = Supervisor::new(run_dir.clone()).expect("supervisor B");
        assert_eq!(supervisor_b.reap_orphans(), ["hello-v1-worker-1"]);
        assert!(!is_alive(leader), "leader reaped");
        assert!(!is_alive(grandchild), "grandchild reaped");
        assert!(
            !run_dir.join("hello-v1-worker-1.pid").exists(),
            "pid file removed"
        );
        assert!(
            supervisor_b.reap_orphans().is_empty(),
            "nothing left the second time"
        );
    });
}

#[test]
fn reap_orphans_spares_a_process_that_reused_the_pid() {
    let (_tmp, dir) = tempdir();
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).expect("run dir");
    // A process without the instance marker now owns the recorded pid (and is its own group leader).
    let mut stranger = std::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .expect("spawn sleep");
    let guard = KillGuard {
        supervisors: vec![],
        groups: vec![stranger.id()],
    };
    std::fs::write(
        run_dir.join("old-instance.pid"),
        format!("{}\n", stranger.id()),
    )
    .expect("pid file");

    let runtime = current_thread_runtime();
    runtime.block_on(async {
        let (supervisor, _events) = Supervisor::new(run_dir.clone()).expect("supervisor");
        assert!(supervisor.reap_orphans().is_empty());
    });
    assert!(
        is_alive(stranger.id()),
        "an unrelated process must not be killed"
    );
    assert!(
        !run_dir.join("old-instance.pid").exists(),
        "the stale pid file is removed"
    );
    drop(guard);
    stranger.wait().expect("reap sleep");
}

#[tokio::test]
async fn reap_orphans_leaves_the_supervisors_own_instances_alone() {
    let (_tmp, dir) = tempdir();
    let (supervisor, _events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    let pid = supervisor
        .start(spec(&dir, "mine", "exec sleep 1000"))
        .expect("start")
        .pid
        .expect("pid");
    assert!(supervisor.reap_orphans().is_empty());
    assert!(is_alive(pid));
    supervisor.stop("mine").await;
}

/// A daemon killed between spawning an instance and recording its pid leaves the "starting" file:
/// the next daemon finds the process by its marker and reaps it.
#[test]
fn an_instance_recorded_only_as_starting_is_reaped_by_its_marker() {
    let (_tmp, dir) = tempdir();
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).expect("run dir");
    std::fs::write(run_dir.join("half-started.pid"), "starting\n").expect("pid file");
    let mut process = std::process::Command::new("sleep")
        .arg("1000")
        .env("SLIPWAY_INSTANCE", "half-started")
        .process_group(0)
        .spawn()
        .expect("spawn sleep");
    let guard = KillGuard {
        supervisors: vec![],
        groups: vec![process.id()],
    };
    let runtime = current_thread_runtime();
    runtime.block_on(async {
        let (supervisor, _events) = Supervisor::new(run_dir.clone()).expect("supervisor");
        assert!(supervisor.survivors().is_empty(), "no pid: never adopted");
        assert_eq!(supervisor.reap_orphans(), ["half-started"]);
    });
    process.wait().expect("reaped");
    assert!(!run_dir.join("half-started.pid").exists());
    drop(guard);
}
