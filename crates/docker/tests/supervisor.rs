//! The container supervisor on a real engine: the process runtime's shape (events, probes, restarts
//! with a reason, crash-loop detection, logs in the instance's file), then stop → removed.

mod support;

use slipway_core::spec::{ProbeCheck, ProbeSpec};
use slipway_docker::{Connector, ContainerInstance, ContainerSupervisor};
use slipway_runtime::{InstanceEvent, InstanceState};
use std::time::Duration;
use tokio::sync::mpsc;

fn instance(spec: slipway_docker::ContainerSpec, log: &std::path::Path) -> ContainerInstance {
    ContainerInstance {
        spec,
        readiness: Some(ProbeSpec {
            check: ProbeCheck::Http {
                path: "/ready".into(),
            },
            period: Duration::from_millis(100),
            timeout: Duration::from_millis(100),
            initial_delay: Duration::ZERO,
            success_threshold: 1,
            failure_threshold: 10,
        }),
        liveness: None,
        startup: None,
        grace: Duration::from_secs(10),
        log_path: log.to_owned(),
    }
}

/// The next event whose state matches, within the tests' deadline.
async fn until(
    events: &mut mpsc::UnboundedReceiver<InstanceEvent>,
    what: &str,
    wanted: impl Fn(&InstanceState) -> bool,
) -> InstanceEvent {
    tokio::time::timeout(support::DEADLINE, async {
        loop {
            let event = events.recv().await.expect("the supervisor hung up");
            if wanted(&event.state) {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} event in time"))
}

#[tokio::test]
async fn a_container_instance_becomes_ready_serves_and_stops_like_a_process() {
    let test = engine_or_skip!("sup-web");
    let image = test.demo_image("sup-web", "v1").await;
    let (tx, mut events) = mpsc::unbounded_channel();
    let supervisor = ContainerSupervisor::new(Connector::new(test.config().clone()), tx);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("web.log");
    let spec = support::spec(&image, "sup-web", "sup-web-v1-web-1", Some(8080));
    let status = supervisor.start(instance(spec, &log)).unwrap();
    assert_eq!(status.instance.state, InstanceState::Starting);

    until(&mut events, "Ready", |s| *s == InstanceState::Ready).await;
    let status = supervisor.status("sup-web-v1-web-1").unwrap();
    let address = status.address.expect("an address once ready");
    assert_eq!(status.instance.port, Some(address.port()));
    assert_eq!(support::get_ok(address, "/").await, "hello from v1\n");
    let id = status.container_id.expect("a container");

    supervisor.stop("sup-web-v1-web-1").await;
    let stopped = supervisor.status("sup-web-v1-web-1").unwrap();
    assert!(matches!(
        stopped.instance.state,
        InstanceState::Stopped { .. }
    ));
    assert!(supervisor.forget("sup-web-v1-web-1"));
    assert!(matches!(
        test.engine.inspect_instance(&id).await,
        Err(slipway_docker::DockerError::ContainerNotFound { .. })
    ));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("[slipway] started container"), "{text}");
    assert!(
        text.contains("[stdout]") || text.contains("[stderr]"),
        "the app's output is in the log: {text}"
    );
}

#[tokio::test]
async fn a_crashing_container_backs_off_with_its_reason_then_crash_loops() {
    let test = engine_or_skip!("sup-crash");
    let image = test.busybox_image("sup-crash", "1000:1000").await;
    let (tx, mut events) = mpsc::unbounded_channel();
    let supervisor = ContainerSupervisor::new(Connector::new(test.config().clone()), tx);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let mut spec = support::spec(&image, "sup-crash", "sup-crash-v1-worker-1", None);
    spec.command = support::sh("echo cannot reach the queue >&2; exit 3");
    let mut watched = instance(spec, &log);
    watched.readiness = None;
    supervisor.start(watched).unwrap();

    let backoff = until(&mut events, "Backoff", |s| {
        matches!(s, InstanceState::Backoff { .. })
    })
    .await;
    assert!(
        backoff.message.contains("exited with status 3")
            && backoff.message.contains("cannot reach the queue"),
        "{}",
        backoff.message
    );
    let looping = until(&mut events, "CrashLoop", |s| {
        matches!(s, InstanceState::CrashLoop { .. })
    })
    .await;
    assert!(
        looping.message.contains("crash-looping"),
        "{}",
        looping.message
    );
    supervisor.stop("sup-crash-v1-worker-1").await;
    assert!(
        test.engine.list_owned().await.unwrap().is_empty(),
        "ended runs are removed, not left behind"
    );
}
