//! How instances end, as the caller must learn it to restart with backoff and say why: a crash's exit
//! code, an OOM kill, a stop that had to use SIGKILL after the grace period.

mod support;

use slipway_docker::DockerError;
use std::time::Duration;

#[tokio::test]
async fn a_crash_is_reported_with_its_exit_code() {
    let test = engine_or_skip!("crash");
    let engine = &test.engine;
    let image = test.demo_image("crash", "v1").await;
    let mut spec = support::spec(&image, "crash", "crash-v1-web-1", Some(8080));
    // Serves nothing: the first request to / makes it exit(1).
    spec.env.insert("DEMO_CRASH_AFTER".into(), "0".into());
    let running = engine.run_instance(&spec).await.unwrap();
    let address = running.address.unwrap();
    let waited = tokio::spawn({
        let engine = engine.clone();
        let id = running.id.clone();
        async move { support::wait_exit(&engine, &id).await }
    });
    // The request itself fails (the app dies mid-answer); keep asking until the wait ends.
    let deadline = std::time::Instant::now() + support::DEADLINE;
    while !waited.is_finished() {
        assert!(std::time::Instant::now() < deadline, "it never crashed");
        let _ = tokio::task::spawn_blocking(move || support::get(address, "/")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exit = waited.await.unwrap();
    assert_eq!(exit.code, 1);
    assert!(!exit.oom_killed);
    assert_eq!(exit.to_string(), "exited with status 1");
    let info = engine.inspect_instance(&running.id).await.unwrap();
    assert!(!info.running);
    assert_eq!(info.state, "exited");
    assert_eq!(info.exit, Some(exit));
    let logs = support::all_logs(engine, &running.id).await;
    assert!(
        logs.iter()
            .any(|line| line.text.contains("crashing after 0 requests")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn an_oom_kill_is_named() {
    let test = engine_or_skip!("oom");
    let engine = &test.engine;
    let image = test.busybox_image("oom", "1000:1000").await;
    let mut spec = support::spec(&image, "oom", "oom-v1-worker-1", None);
    spec.limits.memory_bytes = Some(slipway_docker::parse_memory("16m").unwrap());
    // Holds 200 MB in a shell variable: far past the limit.
    spec.command = support::sh("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived");
    let running = engine.run_instance(&spec).await.unwrap();
    let exit = support::wait_exit(engine, &running.id).await;
    assert!(exit.oom_killed, "{exit:?}");
    assert!(exit.to_string().contains("out of memory"), "{exit}");
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let test = engine_or_skip!("grace");
    let engine = &test.engine;
    let image = test.busybox_image("grace", "1000:1000").await;
    let mut spec = support::spec(&image, "grace", "grace-v1-worker-1", None);
    // PID 1 without a SIGTERM handler: the kernel drops the signal, so only SIGKILL ends it.
    spec.command = support::sh("echo up; exec sleep 300");
    let running = engine.run_instance(&spec).await.unwrap();
    let exit = tokio::time::timeout(
        support::DEADLINE,
        engine.stop_instance(&running.id, Duration::from_millis(500)),
    )
    .await
    .expect("stop hung")
    .unwrap();
    assert_eq!(exit.code, 137);
    assert_eq!(exit.to_string(), "was killed by signal SIGKILL (exit 137)");
    assert!(matches!(
        engine.stop_instance(&running.id, Duration::ZERO).await,
        Err(DockerError::ContainerNotFound { .. })
    ));
}

#[tokio::test]
async fn a_command_missing_from_the_image_fails_the_start_and_leaves_nothing() {
    let test = engine_or_skip!("bad-command");
    let engine = &test.engine;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::BUSYBOX, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/no-such-program\"]\n",
    )
    .unwrap();
    let image = test.build(dir.path(), "bad-command").await.id;
    let spec = support::spec(&image, "bad-command", "bad-command-v1-worker-1", None);
    let err = engine.run_instance(&spec).await.unwrap_err();
    assert!(matches!(err, DockerError::Engine { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("start container slipway-bad-command-v1-worker-1"),
        "{message}"
    );
    assert!(message.contains("no-such-program"), "{message}");
    assert!(engine.list_owned().await.unwrap().is_empty(), "left behind");
}
