//! After a daemon restart, its containers are found again by their labels, with their state and
//! address, so running instances are adopted without a restart; other owners' are never seen.

mod support;

#[tokio::test]
async fn a_restarted_daemon_finds_its_running_instances() {
    let test = engine_or_skip!("adoption");
    let engine = &test.engine;
    let image = test.demo_image("adoption", "v1").await;
    let web = engine
        .run_instance(&support::spec(
            &image,
            "adoption",
            "adoption-v1-web-1",
            Some(8080),
        ))
        .await
        .unwrap();
    let mut crashed = support::spec(&image, "adoption", "adoption-v1-web-2", Some(8080));
    crashed.env.insert("PORT".into(), "nonsense".into()); // overridden: PORT is always ours
    crashed.env.insert("DEMO_ERROR_RATE".into(), "7".into()); // invalid: exits at start
    let crashed = engine.run_instance(&crashed).await.unwrap();
    support::wait_exit(engine, &crashed.id).await;

    // The daemon restarts: a new handle, same owner.
    let restarted = test.reconnect().await;
    let owned = restarted.list_owned().await.unwrap();
    assert_eq!(owned.len(), 2, "{owned:?}");
    let adopted = owned.iter().find(|c| c.id == web.id).unwrap();
    assert!(adopted.running);
    assert_eq!(adopted.name, "slipway-adoption-v1-web-1");
    assert_eq!(adopted.address, web.address);
    assert_eq!(adopted.image.as_ref(), Some(&image));
    let labels = adopted.labels.as_ref().unwrap();
    assert_eq!(
        (labels.app.as_str(), labels.release, labels.process.as_str()),
        ("adoption", 1, "web")
    );
    let body = support::get_ok(adopted.address.unwrap(), "/").await;
    assert_eq!(body, "hello from v1\n");

    let dead = owned.iter().find(|c| c.id == crashed.id).unwrap();
    assert!(!dead.running);
    assert_eq!(dead.state, "exited");

    // Another daemon on the same engine sees none of them.
    let stranger = support::TestEngine::connect("adoption-stranger")
        .await
        .unwrap();
    assert!(stranger.engine.list_owned().await.unwrap().is_empty());

    // Starting an instance whose container is still there is refused, not duplicated.
    let again = engine
        .run_instance(&support::spec(
            &image,
            "adoption",
            "adoption-v1-web-1",
            Some(8080),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(again, slipway_docker::DockerError::NameInUse { .. }),
        "{again}"
    );
}
