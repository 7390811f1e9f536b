//! Images as immutable artifacts: a release runs the image ID its tag pointed at when it was recorded,
//! whatever the tag says later; builds go through the Engine API (multi-stage too) with content tags
//! and readable failures; retention removes only what no kept release needs.

mod support;

use slipway_docker::DockerError;

#[tokio::test]
async fn a_release_runs_its_recorded_image_after_the_tag_moved() {
    let test = engine_or_skip!("moved-tag");
    let engine = &test.engine;
    let v1 = test.demo_image("moved-tag", "v1").await;
    let v2 = test.demo_image("moved-tag", "v2").await;
    assert_ne!(v1, v2);

    // Deploy: the tag is resolved once and the release records the ID.
    let tag = format!("slipway-test/moved-tag:live-{}", test.owner());
    engine.tag_image(&v1, &tag).await.unwrap();
    let recorded = engine.resolve_image(&tag).await.unwrap();
    assert_eq!(recorded.id, v1);
    assert!(
        recorded.repo_tags.contains(&tag),
        "{:?}",
        recorded.repo_tags
    );
    assert!(recorded.repo_digests.is_empty(), "no registry, no digest");

    // Someone moves the tag to another image.
    engine.tag_image(&v2, &tag).await.unwrap();
    assert_eq!(engine.resolve_image(&tag).await.unwrap().id, v2);

    // A rollback to the release still runs v1.
    let spec = support::spec(&recorded.id, "moved-tag", "moved-tag-v1-web-1", Some(8080));
    let running = engine.run_instance(&spec).await.unwrap();
    assert_eq!(running.image, v1);
    let body = support::get_ok(running.address.unwrap(), "/").await;
    assert_eq!(body, "hello from v1\n");
}

#[tokio::test]
async fn a_missing_image_says_how_to_get_it() {
    let test = engine_or_skip!("missing-image");
    let err = test
        .engine
        .resolve_image("slipway-test/never-built:v9")
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::ImageNotFound { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("docker pull slipway-test/never-built:v9"),
        "{message}"
    );
    assert!(message.contains("--build"), "{message}");
}

#[tokio::test]
async fn multi_stage_builds_work_and_tags_follow_content() {
    let test = engine_or_skip!("multi-stage");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::BUSYBOX, dir.path().join("busybox")).unwrap();
    std::fs::write(dir.path().join("message.txt"), "built in stage one\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch AS build\n\
         COPY busybox /bin/busybox\n\
         COPY message.txt /work/message.txt\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox tr a-z A-Z < /work/message.txt > /work/out.txt\"]\n\
         FROM scratch\n\
         COPY --from=build /bin/busybox /bin/busybox\n\
         COPY --from=build /work/out.txt /out.txt\n\
         USER 1000:1000\n\
         ENTRYPOINT [\"/bin/busybox\"]\n\
         CMD [\"cat\", \"/out.txt\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".dockerignore"), "ignored/\n").unwrap();
    std::fs::create_dir(dir.path().join("ignored")).unwrap();
    std::fs::write(dir.path().join("ignored/noise"), "1").unwrap();

    let first = test.build(dir.path(), "multi-stage").await;
    assert!(
        first.tag.starts_with("slipway-test/multi-stage:"),
        "{}",
        first.tag
    );
    assert!(
        first.output.iter().any(|line| line.contains("Step 1/")),
        "{:?}",
        first.output
    );
    // Ignored files do not change the content; the same content gets the same tag.
    std::fs::write(dir.path().join("ignored/noise"), "2").unwrap();
    let again = test.build(dir.path(), "multi-stage").await;
    assert_eq!(again.tag, first.tag);
    assert_eq!(again.id, first.id, "cached: same image");
    std::fs::write(dir.path().join("message.txt"), "changed\n").unwrap();
    let changed = test.build(dir.path(), "multi-stage").await;
    assert_ne!(changed.tag, first.tag);

    let engine = &test.engine;
    let spec = support::spec(&first.id, "multi-stage", "multi-stage-v1-worker-1", None);
    let running = engine.run_instance(&spec).await.unwrap();
    assert!(support::wait_exit(engine, &running.id).await.success());
    let lines = support::all_logs(engine, &running.id).await;
    assert_eq!(lines[0].text, "BUILT IN STAGE ONE");
}

#[tokio::test]
async fn a_failed_build_quotes_its_output() {
    let test = engine_or_skip!("bad-build");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY no-such-file /x\n",
    )
    .unwrap();
    let err = test
        .engine
        .build(&slipway_docker::BuildRequest {
            context_dir: dir.path().to_owned(),
            dockerfile: "Dockerfile".into(),
            repository: "slipway-test/bad-build".into(),
            app: "bad-build".into(),
        })
        .await
        .unwrap_err();
    let DockerError::BuildFailed { output, .. } = &err else {
        panic!("expected BuildFailed, got {err}");
    };
    let message = err.to_string();
    assert!(message.contains("no-such-file"), "{message}");
    assert!(
        output.iter().any(|line| line.contains("COPY no-such-file")),
        "{output:?}"
    );
}

#[tokio::test]
async fn retention_removes_only_unkept_unused_images() {
    let test = engine_or_skip!("retention");
    let engine = &test.engine;
    let kept = test.busybox_image("retention", "1000:1000").await;
    let running_image = test.busybox_image("retention", "1001:1001").await;
    let old = test.busybox_image("retention", "1002:1002").await;
    let mut spec = support::spec(&running_image, "retention", "retention-v2-worker-1", None);
    spec.command = support::sh("sleep 300");
    engine.run_instance(&spec).await.unwrap();

    let removed = engine
        .remove_images("retention", std::slice::from_ref(&kept))
        .await
        .unwrap();
    assert_eq!(removed, vec![old.clone()]);
    assert!(engine.resolve_image(kept.as_str()).await.is_ok());
    assert!(engine.resolve_image(running_image.as_str()).await.is_ok());
    let gone = engine.resolve_image(old.as_str()).await.unwrap_err();
    assert!(
        matches!(gone, DockerError::ReleaseImageGone { .. }),
        "{gone}"
    );
}
