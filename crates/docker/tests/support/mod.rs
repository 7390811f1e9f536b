//! Helpers shared by the Docker runtime's tests against a real engine: the engine to use (or a clear
//! skip), images built FROM scratch around static binaries, HTTP with deadlines, and cleanup of
//! everything a test created, by its owner label, also when the test panics.
#![allow(dead_code)] // each test binary uses a different subset

use slipway_docker::{
    BuildRequest, ContainerSpec, Engine, EngineConfig, ImageId, InstanceLabels, Limits, LogLine,
    Network, Security,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Generous: the machine is shared and slow; these bound a hang, they are not expectations.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The engine for these tests: `SLIPWAY_TEST_DOCKER_HOST` (`.ci/run` starts one with
/// `ci/dockerd.sh start`). Unset: the test is skipped with a message, except in CI, where that would be
/// a silent pass, so it fails.
pub fn engine_host() -> Option<String> {
    match std::env::var("SLIPWAY_TEST_DOCKER_HOST") {
        Ok(host) if !host.trim().is_empty() => Some(host),
        _ if std::env::var("CI").is_ok_and(|ci| !ci.is_empty() && ci != "false") => panic!(
            "CI is set but SLIPWAY_TEST_DOCKER_HOST is not: .ci/run must start the test engine \
             (SLIPWAY_TEST_DOCKER_HOST=$(ci/dockerd.sh start))"
        ),
        _ => {
            eprintln!(
                "SKIPPED: no Docker engine for this test. Run `export SLIPWAY_TEST_DOCKER_HOST=$(ci/dockerd.sh start)` \
                 (as root) to test the Docker runtime against a real engine."
            );
            None
        }
    }
}

/// Starts a test's engine handle, or skips the test (see [`engine_host`]).
#[macro_export]
macro_rules! engine_or_skip {
    ($name:expr) => {
        match support::TestEngine::connect($name).await {
            Some(engine) => engine,
            None => return,
        }
    };
}

/// An engine handle with an owner of its own, so parallel tests never see each other's containers;
/// on drop it removes every container and image carrying that owner, and its secrets folder.
pub struct TestEngine {
    pub engine: Engine,
    config: EngineConfig,
    apps: std::sync::Mutex<Vec<String>>,
    /// Step images the builds printed (` ---> 0123456789ab`): the cache of non-final stages stays
    /// behind otherwise, as with `docker build`.
    steps: std::sync::Mutex<Vec<String>>,
}

impl TestEngine {
    pub async fn connect(name: &str) -> Option<TestEngine> {
        let host = engine_host()?;
        let owner = format!("test-{}-{name}", std::process::id());
        let config = EngineConfig {
            host: Some(host),
            owner: owner.clone(),
            secrets_root: PathBuf::from(format!("/dev/shm/slipway-test-{owner}")),
        };
        let engine = Engine::connect(config.clone())
            .await
            .unwrap_or_else(|err| panic!("the test engine does not answer: {err}"));
        Some(TestEngine {
            engine,
            config,
            apps: std::sync::Mutex::new(Vec::new()),
            steps: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Another handle with the same owner: what a restarted daemon gets.
    pub async fn reconnect(&self) -> Engine {
        Engine::connect(self.config.clone()).await.unwrap()
    }

    /// How this test reaches the engine: for a `Connector`, or a daemon's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn owner(&self) -> &str {
        &self.config.owner
    }

    /// Builds `dir` as an image of `app` (removed when the test ends). Every stage of its Dockerfile
    /// first gets this test's own label, so no build step is shared with a parallel test, whose
    /// cleanup could otherwise remove a cached step this build is about to use.
    pub async fn build(&self, dir: &Path, app: &str) -> slipway_docker::BuiltImage {
        self.apps.lock().unwrap().push(app.to_owned());
        let dockerfile = dir.join("Dockerfile");
        let text = std::fs::read_to_string(&dockerfile).unwrap();
        // Idempotent: a folder built again keeps its content, hence its tag.
        let own: String = if text.contains("LABEL slipway.test=") {
            text
        } else {
            text.lines()
                .map(|line| {
                    if line.trim_start().to_ascii_uppercase().starts_with("FROM ") {
                        format!("{line}\nLABEL slipway.test={}\n", self.owner())
                    } else {
                        format!("{line}\n")
                    }
                })
                .collect()
        };
        std::fs::write(&dockerfile, own).unwrap();
        let built = self
            .engine
            .build(&BuildRequest {
                context_dir: dir.to_owned(),
                dockerfile: "Dockerfile".into(),
                repository: format!("slipway-test/{app}"),
                app: app.to_owned(),
            })
            .await
            .unwrap_or_else(|err| panic!("building {app}: {err}"));
        let steps = built.output.iter().filter_map(|line| {
            let id = line.trim().strip_prefix("---> ")?.trim();
            (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
        });
        self.steps.lock().unwrap().extend(steps);
        built
    }

    /// The demo app as a FROM-scratch image answering `hello from <version>`.
    pub async fn demo_image(&self, app: &str, version: &str) -> ImageId {
        let dir = tempfile::tempdir().unwrap();
        link_or_copy(static_demo_app(), &dir.path().join("slipway-demo-app"));
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM scratch\n\
                 COPY slipway-demo-app /slipway-demo-app\n\
                 # Published ports reach the container's interface, not its loopback.\n\
                 ENV DEMO_BIND=0.0.0.0 DEMO_VERSION={version}\n\
                 USER 1000:1000\n\
                 ENTRYPOINT [\"/slipway-demo-app\"]\n"
            ),
        )
        .unwrap();
        self.build(dir.path(), app).await.id
    }

    /// busybox on scratch, run as `user`; the spec's command goes to `busybox`, e.g. `sh -c ...`.
    pub async fn busybox_image(&self, app: &str, user: &str) -> ImageId {
        let dir = tempfile::tempdir().unwrap();
        link_or_copy(Path::new(BUSYBOX), &dir.path().join("busybox"));
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM scratch\nCOPY busybox /bin/busybox\nUSER {user}\nENTRYPOINT [\"/bin/busybox\"]\n"
            ),
        )
        .unwrap();
        self.build(dir.path(), app).await.id
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        let config = self.config.clone();
        let secrets_root = config.secrets_root.clone();
        let apps = std::mem::take(&mut *self.apps.lock().unwrap_or_else(|p| p.into_inner()));
        let steps = std::mem::take(&mut *self.steps.lock().unwrap_or_else(|p| p.into_inner()));
        // The test's runtime may be gone (or be the one dropping us): clean up on a runtime of our own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let Ok(engine) = Engine::connect(config.clone()).await else {
                    return;
                };
                for container in engine.list_owned().await.unwrap_or_default() {
                    if let Err(err) = engine.remove_instance(&container.id).await {
                        eprintln!("cleanup: cannot remove {}: {err}", container.name);
                    }
                }
                for app in apps {
                    if let Err(err) = engine.remove_images(&app, &[]).await {
                        eprintln!("cleanup: cannot remove the images of {app}: {err}");
                    }
                }
                remove_step_images(config.host.as_deref().unwrap_or_default(), steps).await;
            });
            let _ = std::fs::remove_dir_all(&secrets_root);
        });
        let _ = cleanup.join();
    }
}

/// Removes a build's leftover step images, newest first, without force: a step another test's image
/// still builds on is refused by the engine and stays (that test removes it).
async fn remove_step_images(host: &str, steps: Vec<String>) {
    let Ok(docker) = bollard::Docker::connect_with_host(host) else {
        return;
    };
    let Ok(docker) = docker.negotiate_version().await else {
        return;
    };
    for id in steps.iter().rev() {
        let options = bollard::query_parameters::RemoveImageOptions {
            force: false,
            noprune: false,
            platforms: None,
        };
        let _ = docker.remove_image(id, Some(options), None).await;
    }
}

/// Where Debian's busybox-static puts its binary (`.ci/run` installs it).
pub const BUSYBOX: &str = "/usr/bin/busybox";

/// The demo app linked statically (glibc static-pie), so it runs on `scratch`. Built once per test
/// binary into `target/static`, for the host triple only, so `+crt-static` never reaches proc-macros.
pub fn static_demo_app() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target_dir = workspace.join("target/static");
        let triple = "x86_64-unknown-linux-gnu";
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(&workspace)
            .args(["build", "-p", "slipway-demo-app", "--target", triple])
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("cannot run cargo to build the static demo app");
        assert!(status.success(), "building the static demo app failed");
        target_dir.join(triple).join("debug/slipway-demo-app")
    })
}

fn link_or_copy(from: &Path, to: &Path) {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .unwrap_or_else(|err| panic!("cannot copy {}: {err}", from.display()));
    }
}

/// A spec with the secure defaults, no secrets, published on loopback when `port` is set.
pub fn spec(image: &ImageId, app: &str, instance: &str, port: Option<u16>) -> ContainerSpec {
    ContainerSpec {
        labels: InstanceLabels {
            app: app.into(),
            release: 1,
            process: if port.is_some() { "web" } else { "worker" }.into(),
            instance: instance.into(),
        },
        image: image.clone(),
        command: None,
        entrypoint: None,
        env: BTreeMap::new(),
        secrets: BTreeMap::new(),
        secrets_as_env: false,
        port,
        network: Network::default(),
        security: Security::default(),
        limits: Limits::default(),
        stop_signal: None,
    }
}

pub fn sh(script: &str) -> Option<Vec<String>> {
    Some(vec!["sh".into(), "-c".into(), script.into()])
}

/// One `GET` on a fresh connection: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// `GET` until it answers 200, within [`DEADLINE`].
pub async fn get_ok(addr: SocketAddr, path: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let last = tokio::task::spawn_blocking({
            let path = path.to_owned();
            move || get(addr, &path)
        })
        .await
        .unwrap();
        match last {
            Ok((200, body)) => return body,
            other if Instant::now() > deadline => {
                panic!("GET http://{addr}{path} never answered 200; last: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// All of a finished container's output.
pub async fn all_logs(engine: &Engine, id: &str) -> Vec<LogLine> {
    use futures_util::StreamExt;
    let lines: Vec<_> = engine.logs(id, false).collect().await;
    lines.into_iter().map(|line| line.unwrap()).collect()
}

/// Waits for a container's end, within [`DEADLINE`].
pub async fn wait_exit(engine: &Engine, id: &str) -> slipway_docker::ContainerExit {
    tokio::time::timeout(DEADLINE, engine.wait_exit(id))
        .await
        .expect("the container did not exit in time")
        .unwrap()
}

/// `docker inspect <id>` exactly as the docker CLI prints it: what a user with socket access sees.
pub fn docker_inspect(id: &str) -> serde_json::Value {
    let host = engine_host().expect("an engine");
    let output = std::process::Command::new("docker")
        .args(["-H", &host, "inspect", id])
        .output()
        .expect("the docker CLI (docker.io) is installed");
    assert!(
        output.status.success(),
        "docker inspect {id}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let all: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    all[0].clone()
}
