//! Secrets reach the container as files only its user can read, and nowhere in `docker inspect`;
//! env only when the spec asks. Plus the read-only root filesystem with its scratch `/tmp`.

mod support;

use std::collections::BTreeMap;

const TOKEN: &str = "tok-4f1c9e-do-not-leak";

#[tokio::test]
async fn secrets_are_owner_only_files_that_inspect_never_shows() {
    let test = engine_or_skip!("secrets");
    let engine = &test.engine;
    let image = test.busybox_image("secrets", "1000:1000").await;
    let mut spec = support::spec(&image, "secrets", "secrets-v1-worker-1", None);
    spec.secrets = BTreeMap::from([("API_TOKEN".to_owned(), TOKEN.to_owned())]);
    // Prints the file's owner and mode, the value, and the env's pointer to the file, then waits so
    // the running container can be inspected.
    spec.command = support::sh(
        "stat -c '%u %a' /run/secrets/API_TOKEN; cat \"$API_TOKEN_FILE\"; echo; \
         id -u; echo ready; sleep 300",
    );
    let running = engine.run_instance(&spec).await.unwrap();

    let lines = wait_for_line(engine, &running.id, "ready").await;
    assert_eq!(lines[0], "1000 400", "owned by the image's user, mode 0400");
    assert_eq!(lines[1], TOKEN, "readable by the container's user");
    assert_eq!(lines[2], "1000");

    let inspect = support::docker_inspect(&running.id);
    let shown = inspect.to_string();
    assert!(!shown.contains(TOKEN), "docker inspect shows the secret");
    let env = inspect["Config"]["Env"].to_string();
    assert!(
        env.contains("API_TOKEN_FILE=/run/secrets/API_TOKEN"),
        "{env}"
    );
    let mount = &inspect["Mounts"][0];
    assert_eq!(mount["Destination"], "/run/secrets");
    assert_eq!(mount["RW"], false);

    // The host side is on a tmpfs and goes away with the container.
    let source = std::path::PathBuf::from(mount["Source"].as_str().unwrap());
    assert!(source.starts_with("/dev/shm"), "{}", source.display());
    assert!(source.exists());

    // Starting the same instance again is refused, and leaves the running one's secrets alone.
    let duplicate = engine.run_instance(&spec).await.unwrap_err();
    assert!(
        matches!(duplicate, slipway_docker::DockerError::NameInUse { .. }),
        "{duplicate}"
    );
    assert!(
        source.join("API_TOKEN").exists(),
        "a duplicate start removed live secrets"
    );
    engine
        .stop_instance(&running.id, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!source.exists(), "secrets left behind");
}

#[tokio::test]
async fn secrets_go_in_the_env_only_when_asked() {
    let test = engine_or_skip!("secrets-env");
    let engine = &test.engine;
    let image = test.busybox_image("secrets-env", "1000:1000").await;
    let mut spec = support::spec(&image, "secrets-env", "secrets-env-v1-worker-1", None);
    spec.secrets = BTreeMap::from([("API_TOKEN".to_owned(), TOKEN.to_owned())]);
    spec.secrets_as_env = true;
    spec.command = support::sh("echo \"$API_TOKEN\"; ls /run/secrets 2>&1 || true");
    let running = engine.run_instance(&spec).await.unwrap();
    assert!(support::wait_exit(engine, &running.id).await.success());
    let lines = texts(support::all_logs(engine, &running.id).await);
    assert_eq!(lines[0], TOKEN);
    assert!(lines[1].contains("No such file"), "{lines:?}");
    let env = support::docker_inspect(&running.id)["Config"]["Env"].to_string();
    assert!(env.contains(TOKEN), "asked for env: {env}");
}

#[tokio::test]
async fn a_named_user_gets_its_files_too() {
    let test = engine_or_skip!("secrets-named");
    let engine = &test.engine;
    // An image whose USER is a name, resolved through the image's own /etc/passwd.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::BUSYBOX, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("passwd"),
        "root:x:0:0::/:/bin/sh\napp:x:4242:4343::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd /etc/passwd\nUSER app\nENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .unwrap();
    let image = test.build(dir.path(), "secrets-named").await.id;
    let mut spec = support::spec(&image, "secrets-named", "secrets-named-v1-worker-1", None);
    spec.secrets = BTreeMap::from([("API_TOKEN".to_owned(), TOKEN.to_owned())]);
    spec.command =
        support::sh("stat -c '%u:%g %a' /run/secrets/API_TOKEN; cat /run/secrets/API_TOKEN");
    let running = engine.run_instance(&spec).await.unwrap();
    let exit = support::wait_exit(engine, &running.id).await;
    let lines = texts(support::all_logs(engine, &running.id).await);
    assert!(exit.success(), "{exit}: {lines:?}");
    assert_eq!(lines, vec!["4242:4343 400".to_owned(), TOKEN.to_owned()]);
}

#[tokio::test]
async fn a_read_only_root_keeps_a_writable_tmp() {
    let test = engine_or_skip!("read-only");
    let engine = &test.engine;
    let image = test.busybox_image("read-only", "1000:1000").await;
    let mut spec = support::spec(&image, "read-only", "read-only-v1-worker-1", None);
    spec.security.read_only = true;
    spec.command = support::sh(
        "touch /tmp/scratch && echo tmp-ok; touch /oops 2>/dev/null || echo root-read-only",
    );
    let running = engine.run_instance(&spec).await.unwrap();
    assert!(support::wait_exit(engine, &running.id).await.success());
    assert_eq!(
        texts(support::all_logs(engine, &running.id).await),
        vec!["tmp-ok".to_owned(), "root-read-only".to_owned()]
    );
}

fn texts(lines: Vec<slipway_docker::LogLine>) -> Vec<String> {
    lines.into_iter().map(|line| line.text).collect()
}

/// Follows the output until a line equals `marker`; returns the lines before it.
async fn wait_for_line(engine: &slipway_docker::Engine, id: &str, marker: &str) -> Vec<String> {
    use futures_util::StreamExt;
    let follow = async {
        let mut lines = Vec::new();
        let mut stream = std::pin::pin!(engine.logs(id, true));
        while let Some(line) = stream.next().await {
            let text = line.unwrap().text;
            if text == marker {
                return lines;
            }
            lines.push(text);
        }
        panic!("the output ended before {marker:?}: {lines:?}");
    };
    tokio::time::timeout(support::DEADLINE, follow)
        .await
        .expect("marker line never came")
}
