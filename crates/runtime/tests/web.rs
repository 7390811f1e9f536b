//! A web instance: PORT and identity are passed, http readiness makes it Ready, output is captured with
//! stream tags, and `stop` ends it.

mod common;

use common::*;
use slipway_core::spec::ProbeCheck;
use slipway_runtime::{InstanceState, Supervisor, pick_free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_instance_with_http_readiness_becomes_ready_and_logs_its_output() {
    let (_tmp, dir) = tempdir();
    let (supervisor, mut events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };

    let port = pick_free_port().expect("port");
    let mut spec = spec(
        &dir,
        "hello-v3-web-1",
        "echo \"port=$PORT instance=$SLIPWAY_INSTANCE release=$SLIPWAY_RELEASE app=$SLIPWAY_APP greeting=$GREETING\"; \
         echo to-stderr >&2; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
    );
    spec.process = "web".into();
    spec.port = Some(port);
    spec.env.insert("GREETING".into(), "hi".into());
    spec.readiness = Some(probe(ProbeCheck::Http { path: "/".into() }, 1, 3));
    let log_path = spec.log_path.clone();

    let started = supervisor.start(spec).expect("start");
    assert_eq!(started.state, InstanceState::Starting);
    assert_eq!(started.port, Some(port));
    let pid = started.pid.expect("pid");
    assert!(
        dir.join("run/hello-v3-web-1.pid").exists(),
        "pid file written"
    );

    let ready = wait_event(&mut events, "Ready", |e| {
        is_state(e, "hello-v3-web-1", "ready")
    })
    .await;
    assert_eq!((ready.app.as_str(), ready.release), ("hello", 3));
    let status = supervisor.status("hello-v3-web-1").expect("status");
    assert!(status.is_ready());
    assert_eq!(status.pid, Some(pid));
    assert_eq!(status.restarts, 0);

    // The readiness probe's GET shows up in http.server's access log, which it writes to stderr.
    wait_until("the probe request is logged", || {
        read_log(&log_path).contains("\"GET / HTTP/1.1\" 200")
    })
    .await;
    let log = read_log(&log_path);
    assert!(
        log.contains(&format!(
            "[stdout] port={port} instance=hello-v3-web-1 release=v3 app=hello greeting=hi"
        )),
        "{log}"
    );
    assert!(log.contains("[stderr] to-stderr"), "{log}");
    for line in log.lines() {
        // 2026-11-22T10:00:00.123Z [stream] ...
        let (stamp, rest) = line.split_once(' ').expect("timestamp then text");
        assert_eq!(stamp.len(), 24, "{line}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T' && stamp.as_bytes()[19] == b'.',
            "{line}"
        );
        assert!(
            rest.starts_with("[stdout] ")
                || rest.starts_with("[stderr] ")
                || rest.starts_with("[slipway] "),
            "{line}"
        );
    }

    supervisor.stop("hello-v3-web-1").await;
    let status = supervisor.status("hello-v3-web-1").expect("status");
    assert!(
        matches!(&status.state, InstanceState::Stopped { last_exit } if last_exit.contains("signal 15")),
        "{status:?}"
    );
    assert_eq!(status.pid, None);
    assert!(!is_alive(pid));
    assert!(
        !dir.join("run/hello-v3-web-1.pid").exists(),
        "pid file removed"
    );
    wait_event(&mut events, "Stopped", |e| {
        is_state(e, "hello-v3-web-1", "stopped")
    })
    .await;

    // Idempotent, and unknown ids return at once.
    supervisor.stop("hello-v3-web-1").await;
    supervisor.stop("nobody").await;
    assert!(supervisor.forget("hello-v3-web-1"));
    assert!(supervisor.list().is_empty());
}

#[tokio::test]
async fn start_refuses_a_running_duplicate_and_a_bad_id() {
    let (_tmp, dir) = tempdir();
    let (supervisor, _events) = Supervisor::new(dir.join("run")).expect("supervisor");
    let _guard = KillGuard {
        supervisors: vec![supervisor.clone()],
        groups: vec![],
    };
    supervisor
        .start(spec(&dir, "dup", "sleep 1000"))
        .expect("first start");
    let err = supervisor
        .start(spec(&dir, "dup", "sleep 1000"))
        .expect_err("duplicate");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(supervisor.start(spec(&dir, "../escape", "true")).is_err());
    supervisor.stop("dup").await;
    // Once stopped, the id can be started again.
    supervisor
        .start(spec(&dir, "dup", "sleep 1000"))
        .expect("restart after stop");
    supervisor.stop_all().await;
    assert!(
        supervisor
            .list()
            .iter()
            .all(|s| s.state.name() == "stopped")
    );
}
