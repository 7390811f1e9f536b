//! Readiness decides Ready / Unready while the process keeps running.

mod common;

use common::*;
use slipway_core::spec::ProbeCheck;
use slipway_runtime::{Supervisor, pick_free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_flips_unready_then_ready_again() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    let site = dir.join("site");
    std::fs::create_dir_all(&site).expect("site dir");
    std::fs::write(site.join("ready.txt"), "ok").expect("ready file");

    let mut spec = spec(
        &dir,
        "flappy",
        "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
    );
    spec.workdir = site.clone();
    spec.process = "web".into();
    spec.port = Some(pick_free_port().expect("port"));
    spec.readiness = Some(probe(
        ProbeCheck::Http {
            path: "/ready.txt".into(),
        },
        1,
        2,
    ));
    let pid = supervisor.start(spec).expect("start").pid;

    wait_event(&mut events, "Ready", |e| is_state(e, "flappy", "ready")).await;
    std::fs::remove_file(site.join("ready.txt")).expect("rm");
    let unready = wait_event(&mut events, "Unready", |e| is_state(e, "flappy", "unready")).await;
    assert!(unready.message.contains("404"), "{}", unready.message);
    assert!(!supervisor.status("flappy").expect("status").is_ready());

    std::fs::write(site.join("ready.txt"), "ok").expect("ready file");
    let ready = wait_event(&mut events, "Ready again", |e| {
        is_state(e, "flappy", "ready")
    })
    .await;
    assert!(ready.message.contains("again"), "{}", ready.message);
    let status = supervisor.status("flappy").expect("status");
    assert_eq!(
        status.pid, pid,
        "same process throughout: readiness never restarts"
    );
    assert_eq!(status.restarts, 0);
    supervisor.stop("flappy").await;
}
