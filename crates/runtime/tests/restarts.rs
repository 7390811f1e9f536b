//! Crashes are restarted with backoff and flagged as a crash loop; a failing liveness probe restarts.

mod common;

use common::*;
use slipway_core::spec::ProbeCheck;
use slipway_runtime::{InstanceState, Supervisor};
use std::time::Duration;

#[tokio::test]
async fn a_command_that_exits_at_once_backs_off_then_crash_loops() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    supervisor
        .start(spec(
            &dir,
            "crashy",
            "echo starting; echo boom-line >&2; exit 1",
        ))
        .expect("start");

    let first = wait_event(&mut events, "first Backoff", |e| {
        is_state(e, "crashy", "backoff")
    })
    .await;
    match &first.state {
        InstanceState::Backoff {
            restarts,
            delay,
            last_exit,
        } => {
            assert_eq!(*restarts, 1);
            assert_eq!(*delay, Duration::from_millis(250));
            assert_eq!(last_exit, "exited with status 1");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        first.message.contains("exited with status 1"),
        "{}",
        first.message
    );
    assert!(
        first.message.contains("last output: starting | boom-line"),
        "{}",
        first.message
    );

    let second = wait_event(&mut events, "second Backoff", |e| {
        is_state(e, "crashy", "backoff")
    })
    .await;
    assert!(
        matches!(second.state, InstanceState::Backoff { restarts: 2, delay, .. } if delay == Duration::from_millis(500))
    );

    let looping = wait_event(&mut events, "CrashLoop", |e| {
        is_state(e, "crashy", "crash-loop")
    })
    .await;
    assert!(
        matches!(&looping.state, InstanceState::CrashLoop { restarts: 3, last_exit } if last_exit == "exited with status 1")
    );
    assert!(looping.message.contains("boom-line"), "{}", looping.message);
    assert!(
        looping.message.contains("crash-looping"),
        "{}",
        looping.message
    );

    // Still retried: the next run is announced, and the state stays crash-looping.
    let retried = wait_event(&mut events, "restart", |e| {
        e.id == "crashy" && e.message.starts_with("restarted")
    })
    .await;
    assert_eq!(retried.state.name(), "crash-loop");

    supervisor.stop("crashy").await;
    let status = supervisor.status("crashy").expect("status");
    assert!(
        matches!(status.state, InstanceState::Stopped { .. }),
        "{status:?}"
    );
    assert!(status.restarts >= 3);
    assert!(!dir.join("run/crashy.pid").exists());
    // Stopped for good: no restart follows.
    let later = supervisor.status("crashy").expect("status");
    assert_eq!(later.pid, None);
}

#[tokio::test]
async fn failing_liveness_kills_and_restarts_the_instance() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    let alive = dir.join("alive");
    std::fs::write(&alive, "").expect("touch");
    let mut spec = spec(&dir, "hung", "echo pid=$$; exec sleep 1000");
    spec.liveness = Some(probe(
        ProbeCheck::Exec {
            cmd: "test -f alive".into(),
        },
        1,
        2,
    ));
    spec.grace = Duration::from_secs(2);
    let first_pid = supervisor.start(spec).expect("start").pid.expect("pid");

    wait_event(&mut events, "Ready", |e| is_state(e, "hung", "ready")).await;
    std::fs::remove_file(&alive).expect("rm");
    let killed = wait_event(&mut events, "Backoff after liveness", |e| {
        is_state(e, "hung", "backoff")
    })
    .await;
    assert!(
        killed
            .message
            .contains("liveness probe failed 2 times in a row"),
        "{}",
        killed.message
    );
    assert!(killed.message.contains("signal 15"), "{}", killed.message);
    assert!(!is_alive(first_pid));

    // It comes back: a new process, Ready again once the probe passes.
    std::fs::write(&alive, "").expect("touch");
    wait_event(&mut events, "Ready again", |e| is_state(e, "hung", "ready")).await;
    let status = supervisor.status("hung").expect("status");
    assert_eq!(status.restarts, 1);
    assert_ne!(status.pid, Some(first_pid));
    supervisor.stop("hung").await;
}

#[tokio::test]
async fn a_failing_startup_probe_restarts_and_gates_readiness() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    let mut spec = spec(&dir, "slow", "exec sleep 1000");
    spec.startup = Some(probe(
        ProbeCheck::Exec {
            cmd: "test -f started".into(),
        },
        1,
        3,
    ));
    spec.grace = Duration::from_secs(2);
    supervisor.start(spec).expect("start");

    let killed = wait_event(&mut events, "Backoff after startup", |e| {
        is_state(e, "slow", "backoff")
    })
    .await;
    assert!(
        killed.message.contains("startup probe failed 3 times"),
        "{}",
        killed.message
    );
    std::fs::write(dir.join("started"), "").expect("touch");
    let ready = wait_event(&mut events, "Ready", |e| is_state(e, "slow", "ready")).await;
    assert!(
        ready.message.contains("startup probe passed"),
        "{}",
        ready.message
    );
    supervisor.stop("slow").await;
}
