//! A web instance end to end on a real engine: built FROM scratch through the Engine API, run locked
//! down with `PORT` set, answering on the engine-chosen loopback port, labelled, logging, and stopped
//! gracefully within its grace period.

mod support;

use slipway_docker::{LogStream, labels};
use std::time::Duration;

#[tokio::test]
async fn a_web_instance_serves_on_its_published_loopback_port_and_stops_gracefully() {
    let test = engine_or_skip!("web");
    let engine = &test.engine;
    let image = test.demo_image("web", "v1").await;

    let spec = support::spec(&image, "web", "web-v1-web-1", Some(8080));
    let running = engine.run_instance(&spec).await.unwrap();
    assert_eq!(running.name, "slipway-web-v1-web-1");
    assert_eq!(running.image, image);
    let address = running.address.expect("a published address");
    assert!(address.ip().is_loopback(), "{address}");
    assert_ne!(address.port(), 8080, "the host port is the engine's choice");

    let body = support::get_ok(address, "/").await;
    assert_eq!(body, "hello from v1\n");

    let info = engine.inspect_instance(&running.id).await.unwrap();
    assert!(info.running);
    assert_eq!(info.state, "running");
    assert_eq!(info.address, Some(address));
    let labels = info.labels.expect("slipway labels");
    assert_eq!(labels.app, "web");
    assert_eq!(labels.release, 1);
    assert_eq!(labels.process, "web");
    assert_eq!(labels.instance, "web-v1-web-1");
    assert_eq!(info.health, None, "the image has no HEALTHCHECK");

    // The secure defaults are what the engine actually applied.
    let inspect = support::docker_inspect(&running.id);
    let host = &inspect["HostConfig"];
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges:true"])
    );
    assert_eq!(
        inspect["Config"]["User"], "1000:1000",
        "the image's USER is kept"
    );
    assert_eq!(inspect["Config"]["Labels"][labels::OWNER], test.owner());
    let env = inspect["Config"]["Env"].to_string();
    assert!(env.contains("PORT=8080"), "{env}");

    // The demo app drains and exits 0 on SIGTERM: well within the grace period.
    let exit = engine
        .stop_instance(&running.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(exit.success(), "{exit}");
    assert!(matches!(
        engine.inspect_instance(&running.id).await,
        Err(slipway_docker::DockerError::ContainerNotFound { .. })
    ));
    assert!(engine.list_owned().await.unwrap().is_empty());
}

#[tokio::test]
async fn output_is_read_as_lines_per_stream() {
    let test = engine_or_skip!("logs");
    let engine = &test.engine;
    let image = test.busybox_image("logs", "1000:1000").await;
    let mut spec = support::spec(&image, "logs", "logs-v1-worker-1", None);
    spec.command = support::sh("echo one; echo two >&2; printf 'no newline'");
    let running = engine.run_instance(&spec).await.unwrap();
    assert_eq!(running.address, None, "no port, nothing published");
    assert!(support::wait_exit(engine, &running.id).await.success());
    let lines: Vec<(LogStream, String)> = support::all_logs(engine, &running.id)
        .await
        .into_iter()
        .map(|line| (line.stream, line.text))
        .collect();
    assert!(
        lines.contains(&(LogStream::Stdout, "one".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogStream::Stderr, "two".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogStream::Stdout, "no newline".into())),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_replacement_can_keep_the_address_of_the_instance_it_replaces() {
    let test = engine_or_skip!("same-port");
    let engine = &test.engine;
    let image = test.demo_image("same-port", "v1").await;
    let first = engine
        .run_instance(&support::spec(
            &image,
            "same-port",
            "same-port-v1-web-1",
            Some(8080),
        ))
        .await
        .unwrap();
    let address = first.address.unwrap();
    support::get_ok(address, "/").await;
    engine
        .stop_instance(&first.id, Duration::from_secs(20))
        .await
        .unwrap();

    // A restart after a crash asks for the port its predecessor had, so the proxy's backend holds.
    let mut again = support::spec(&image, "same-port", "same-port-v1-web-1", Some(8080));
    again.network = slipway_docker::Network::Loopback {
        host_port: Some(address.port()),
    };
    let second = engine.run_instance(&again).await.unwrap();
    assert_eq!(second.address, Some(address));
    assert_eq!(support::get_ok(address, "/").await, "hello from v1\n");
}
