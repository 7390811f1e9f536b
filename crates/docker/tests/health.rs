//! An image's own HEALTHCHECK is reported as the engine sees it (slipway's probes still decide
//! readiness; this is for display).

mod support;

use slipway_docker::Health;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_image_healthcheck_status_is_reported() {
    let test = engine_or_skip!("health");
    let engine = &test.engine;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::BUSYBOX, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\n\
         COPY busybox /bin/busybox\n\
         USER 1000:1000\n\
         HEALTHCHECK --interval=1s --timeout=5s --retries=1 CMD [\"/bin/busybox\", \"test\", \"-e\", \"/tmp/healthy\"]\n\
         ENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .unwrap();
    let image = test.build(dir.path(), "health").await.id;
    assert!(
        engine
            .resolve_image(image.as_str())
            .await
            .unwrap()
            .has_healthcheck
    );

    let mut spec = support::spec(&image, "health", "health-v1-worker-1", None);
    // Unhealthy until the file exists, then healthy. (`/tmp` is the read-only root's tmpfs: scratch
    // images have no folder of their own to write to.)
    spec.security.read_only = true;
    spec.command = support::sh("echo booting; sleep 3; touch /tmp/healthy; exec sleep 300");
    let running = engine.run_instance(&spec).await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let health = engine.inspect_instance(&running.id).await.unwrap().health;
        if seen.last() != Some(&health) {
            seen.push(health.clone());
        }
        if health == Some(Health::Healthy) {
            break;
        }
        assert!(Instant::now() < deadline, "never healthy: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(seen.iter().all(|health| health.is_some()), "{seen:?}");
}
