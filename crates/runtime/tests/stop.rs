//! `stop` reaches the whole process group, and SIGKILLs what ignores SIGTERM once the grace period ends.

mod common;

use common::*;
use slipway_runtime::{InstanceState, Supervisor};
use std::time::Duration;

#[tokio::test]
async fn stop_terminates_the_whole_process_group() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let mut guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    // The shell forks a grandchild and waits for it: signalling only the shell would leave `sleep` behind.
    let spec = spec(&dir, "forker", "sleep 1000 & echo grandchild=$!; wait");
    let log_path = spec.log_path.clone();
    let pid = supervisor.start(spec).expect("start").pid.expect("pid");
    guard.groups.push(pid);

    wait_until("the grandchild is logged", || {
        logged_pid(&read_log(&log_path), "grandchild").is_some()
    })
    .await;
    let grandchild = logged_pid(&read_log(&log_path), "grandchild").expect("grandchild pid");
    assert!(is_alive(pid) && is_alive(grandchild));

    supervisor.stop("forker").await;
    assert!(!is_alive(pid), "the shell is gone");
    assert!(!is_alive(grandchild), "the grandchild is gone too");
    let stopped = wait_event(&mut events, "Stopped", |e| is_state(e, "forker", "stopped")).await;
    match stopped.state {
        InstanceState::Stopped { last_exit } => {
            assert!(last_exit.contains("SIGTERM"), "{last_exit}");
            assert!(
                !last_exit.contains("SIGKILL"),
                "SIGTERM was enough: {last_exit}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(read_log(&log_path).contains("[slipway] stopped: killed by signal 15 (SIGTERM)"));
}

#[tokio::test]
async fn a_child_ignoring_sigterm_is_killed_after_grace() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let mut guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    let mut spec = spec(
        &dir,
        "stubborn",
        "trap '' TERM; echo trapped; while :; do sleep 0.1; done",
    );
    spec.grace = Duration::from_millis(500);
    let log_path = spec.log_path.clone();
    let pid = supervisor.start(spec).expect("start").pid.expect("pid");
    guard.groups.push(pid);
    // Until the trap is set, SIGTERM would simply end the shell.
    wait_until("the trap is set", || {
        read_log(&log_path).contains("[stdout] trapped")
    })
    .await;

    supervisor.stop("stubborn").await;
    assert!(!is_alive(pid));
    wait_event(&mut events, "Stopping", |e| {
        is_state(e, "stubborn", "stopping")
    })
    .await;
    let stopped = wait_event(&mut events, "Stopped", |e| {
        is_state(e, "stubborn", "stopped")
    })
    .await;
    match stopped.state {
        InstanceState::Stopped { last_exit } => {
            assert!(
                last_exit.contains("SIGKILL after a grace period of 500ms"),
                "{last_exit}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stop_during_backoff_ends_without_another_run() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    supervisor
        .start(spec(&dir, "dies", "exit 7"))
        .expect("start");
    wait_event(&mut events, "Backoff", |e| is_state(e, "dies", "backoff")).await;
    supervisor.stop("dies").await;
    let status = supervisor.status("dies").expect("status");
    assert_eq!(
        status.state,
        InstanceState::Stopped {
            last_exit: "exited with status 7".into()
        }
    );
    // Concurrent and repeated stops all return.
    tokio::join!(supervisor.stop("dies"), supervisor.stop("dies"));
}
