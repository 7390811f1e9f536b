//! Image releases through the real binary and a real Docker engine: the same strategies, proxy and CLI
//! as processes. Blue-green and canary between two images under load, a rollback that runs the old
//! image after its tag moved, a crashing image, the engine going away in the middle of a deploy, a
//! daemon killed and restarted that adopts its running containers, and secrets kept out of `docker
//! inspect`.
//!
//! The engine is `SLIPWAY_TEST_DOCKER_HOST` (`.ci/run` starts one with `ci/dockerd.sh start`). Unset,
//! each test prints SKIPPED and passes — except with `CI` set, where it fails. Images are built `FROM
//! scratch` around the demo app linked statically; each test labels what it builds and removes it, and
//! the containers of its daemon (by the daemon's owner label), when it ends, also on panic.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::{Load, World, release, wait_until};

const CLIENTS: usize = 4;

/// The engine for these tests, or `None` (skip) — a failure in CI, where skipping would hide a gap.
fn engine_host() -> Option<String> {
    match std::env::var("SLIPWAY_TEST_DOCKER_HOST") {
        Ok(host) if !host.trim().is_empty() => Some(host),
        _ if std::env::var("CI").is_ok_and(|ci| !ci.is_empty() && ci != "false") => panic!(
            "CI is set but SLIPWAY_TEST_DOCKER_HOST is not: .ci/run must start the test engine \
             (SLIPWAY_TEST_DOCKER_HOST=$(ci/dockerd.sh start))"
        ),
        _ => {
            eprintln!(
                "SKIPPED: no Docker engine for this test. Run `export SLIPWAY_TEST_DOCKER_HOST=$(ci/dockerd.sh start)` \
                 (as root) to test image releases against a real engine."
            );
            None
        }
    }
}

macro_rules! engine_or_skip {
    () => {
        match engine_host() {
            Some(host) => host,
            None => return,
        }
    };
}

/// `docker -H <host> args...`, which must succeed; its stdout.
fn docker(host: &str, args: &[&str]) -> String {
    let output = Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .output()
        .expect("the docker CLI (docker.io) is installed");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Writes a build folder for the demo app answering `hello from <version>` (the version is in the
/// image, not in slipway.toml: which image runs is what answers).
fn image_folder(dir: &Path, version: &str, label: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let binary = dir.join("slipway-demo-app");
    if std::fs::hard_link(support::static_demo_app(), &binary).is_err() {
        std::fs::copy(support::static_demo_app(), &binary).unwrap();
    }
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM scratch\n\
             LABEL slipway.test={label}\n\
             COPY slipway-demo-app /slipway-demo-app\n\
             # Published ports reach the container's interface, not its loopback.\n\
             ENV DEMO_BIND=0.0.0.0 DEMO_VERSION={version}\n\
             USER 1000:1000\n\
             ENTRYPOINT [\"/slipway-demo-app\"]\n"
        ),
    )
    .unwrap();
    // slipway.toml lives in the app folder too; it is not part of the image.
    std::fs::write(dir.join(".dockerignore"), "slipway.toml\n").unwrap();
}

/// One test's Docker world: a daemon talking to the engine (directly, or through `engine`), and the
/// cleanup of everything the test and its daemon created there.
struct Docked {
    world: World,
    host: String,
    label: String,
    // Last: the daemon (in `world`) stops its containers first.
    _cleanup: Cleanup,
}

struct Cleanup {
    host: String,
    label: String,
    owner: String,
    secrets: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            Command::new("docker")
                .arg("-H")
                .arg(&self.host)
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default()
        };
        let owner = format!("label=slipway.owner={}", self.owner);
        for id in run(&["ps", "-aq", "--filter", &owner]).split_whitespace() {
            run(&["rm", "-f", id]);
        }
        let built = format!("label=slipway.test={}", self.label);
        // Newest first, build steps included, so children go before their parents.
        for filter in [owner.as_str(), built.as_str()] {
            for id in run(&["images", "-aq", "--filter", filter]).split_whitespace() {
                run(&["rmi", "-f", id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.secrets);
    }
}

impl Docked {
    /// A daemon whose `DOCKER_HOST` is `daemon_host` (the engine, or a forwarder to it).
    fn new(name: &str, host: &str, daemon_host: Option<&str>) -> Docked {
        let daemon_host = daemon_host.unwrap_or(host).to_owned();
        let world = World::with_daemon_env(&[
            ("DOCKER_HOST", daemon_host.as_str()),
            ("E2E_API_TOKEN", "t0p-s3cret-t0ken"),
        ]);
        let paths = slipway_daemon::Paths::new(&world.daemon.state);
        let label = format!("e2e-{}-{name}", std::process::id());
        Docked {
            _cleanup: Cleanup {
                host: host.to_owned(),
                label: label.clone(),
                owner: paths.docker_owner(),
                secrets: paths.docker_secrets(),
            },
            world,
            host: host.to_owned(),
            label,
        }
    }

    /// This test's own image reference for `tag`: tags are global on the engine, tests run in parallel.
    fn tag(&self, tag: &str) -> String {
        format!("{}:{tag}", self.label)
    }

    /// Builds the demo app at `version` as [`Docked::tag`]`(tag)`; returns its image ID.
    fn image(&self, tag: &str, version: &str) -> String {
        let dir = self.world.root().join(format!("image-{version}"));
        image_folder(&dir, version, &self.label);
        let tag = self.tag(tag);
        docker(
            &self.host,
            &["build", "-q", "-t", &tag, dir.to_str().unwrap()],
        )
    }

    fn write(&self, image: &str, deploy: &str, env: &str) {
        self.world.write_raw(&format!(
            r#"app = "shop"

[env]
{env}

[secrets]
API_TOKEN = {{ env = "E2E_API_TOKEN" }}

[processes.web]
image = "{image}"
replicas = 2
grace = "10s"
drain_timeout = "15s"
stream_drain_timeout = "15s"
readiness = {{ http = "/ready", period = "100ms", timeout = "100ms", failure_threshold = 10 }}

[deploy]
{deploy}
"#
        ));
    }

    /// The containers of the app's instances, found by their labels.
    fn container_ids(&self, status: &serde_json::Value) -> Vec<String> {
        support::instances(status)
            .into_iter()
            .map(|(id, _)| {
                let instance = format!("label=slipway.instance={id}");
                let owner = format!("label=slipway.owner={}", self._cleanup.owner);
                let found = docker(
                    &self.host,
                    &[
                        "ps",
                        "-q",
                        "--no-trunc",
                        "--filter",
                        &instance,
                        "--filter",
                        &owner,
                    ],
                );
                assert!(
                    !found.is_empty() && !found.contains('\n'),
                    "container of {id}: {found:?}"
                );
                found
            })
            .collect()
    }

    fn image_of(&self, container: &str) -> String {
        docker(&self.host, &["inspect", "-f", "{{.Image}}", container])
    }
}

const BLUE_GREEN: &str =
    "strategy = \"blue-green\"\nprogress_deadline = \"60s\"\nscale_down_delay = \"1s\"";

#[test]
fn the_release_phase_and_cron_runs_are_containers_of_the_release_s_image() {
    let Some(host) = engine_host() else { return };
    let d = Docked::new("jobs", &host, None);
    // The demo image with Debian's static busybox as its /bin/sh.
    let dir = d.world.root().join("image-shell");
    image_folder(&dir, "v1", &d.label);
    support::add_busybox_shell(&dir);
    let shell = d.tag("shell");
    docker(&host, &["build", "-q", "-t", &shell, dir.to_str().unwrap()]);
    // Only the image has /slipway-demo-app; the secret is a file there, as for the app's containers.
    let with = |tail: &str| {
        d.write(&shell, BLUE_GREEN, "");
        let text = std::fs::read_to_string(d.world.config_path()).unwrap();
        d.world.write_raw(&format!("{text}\n{tail}"));
    };
    with(&support::one_offs_in_the_image());
    let run = d.world.slipway(&["deploy"]).ok();
    assert!(run.stdout.contains("succeeded"), "{run}");
    assert_eq!(d.world.answer(), "v1");
    let logs = d.world.slipway(&["logs", "--process", "release"]).ok();
    assert!(
        logs.stdout
            .contains("migrating release of v1 in shop-v1-release-"),
        "{logs}"
    );
    assert!(
        logs.stdout.contains("with a token of 16 characters"),
        "{logs}"
    );
    assert!(!logs.stdout.contains("t0p-s3cret-t0ken"), "{logs}");
    let tick = d.world.slipway(&["cron", "run", "tick"]).ok();
    assert!(tick.stdout.contains("tick 1 of v1"), "{tick}");

    // A failing release phase fails the deploy with its output, and v1 serves on.
    with("[release]\ncmd = \"echo the schema is broken; exit 3\"\n");
    let failed = d.world.slipway(&["deploy"]).failed();
    let text = format!("{}{}", failed.stdout, failed.stderr);
    assert!(text.contains("exited with status 3"), "{failed}");
    assert!(text.contains("the schema is broken"), "{failed}");
    assert_eq!(d.world.answer(), "v1");

    // An image without a shell: the phase cannot start, and the error says why and what to do.
    let plain = d.image("plain", "v3");
    d.write(&plain, BLUE_GREEN, "");
    let text = std::fs::read_to_string(d.world.config_path()).unwrap();
    d.world
        .write_raw(&format!("{text}\n[release]\ncmd = \"echo never\"\n"));
    let failed = d.world.slipway(&["deploy"]).failed();
    let text = format!("{}{}", failed.stdout, failed.stderr);
    assert!(text.contains("has no /bin/sh"), "{failed}");
    assert_eq!(d.world.answer(), "v1");

    // Every run's container is gone once it ended: only v1's two instances are left.
    let owner = format!("label=slipway.owner={}", d._cleanup.owner);
    let left = docker(
        &host,
        &[
            "ps",
            "-a",
            "--filter",
            &owner,
            "--format",
            "{{.Label \"slipway.process\"}}",
        ],
    );
    assert_eq!(left.lines().collect::<Vec<_>>(), ["web", "web"], "{left}");
}

#[test]
fn blue_green_between_two_images_under_load_fails_no_request_and_keeps_secrets_out_of_inspect() {
    let host = engine_or_skip!();
    let d = Docked::new("bluegreen", &host, None);
    // v1: `deploy --build` builds the app folder's Dockerfile through the Engine API.
    image_folder(&d.world.app_dir, "v1", &d.label);
    d.write(&d.tag("config"), BLUE_GREEN, "");
    let run = d.world.slipway(&["deploy", "--build"]).ok();
    assert!(run.stdout.contains("v1 is live"), "{run}");
    assert_eq!(d.world.answer(), "v1");
    let status = d.world.settled();
    let v1_containers = d.container_ids(&status);
    assert_eq!(v1_containers.len(), 2, "{status}");
    let built = d.image_of(&v1_containers[0]);
    // The content tag `shop:<12 hex>` points at what runs.
    let tags = docker(&host, &["inspect", "-f", "{{.RepoTags}}", &built]);
    assert!(tags.contains("shop:"), "{tags}");

    // Secrets are files, never in what `docker inspect` shows.
    for id in &v1_containers {
        let inspect = docker(&host, &["inspect", id]);
        assert!(
            !inspect.contains("t0p-s3cret-t0ken"),
            "secret in inspect: {inspect}"
        );
        assert!(
            inspect.contains("API_TOKEN_FILE=/run/secrets/API_TOKEN"),
            "{inspect}"
        );
    }

    // v2 by tag, under load: no request fails, and once deploy returned only v2 answers.
    d.image("v2", "v2");
    let load = Load::start(d.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    d.write(&d.tag("v2"), BLUE_GREEN, "");
    d.world.slipway(&["deploy"]).ok();
    load.mark();
    load.wait_for_more(300);
    let tally = load.finish();
    tally.assert_switched("v1", "v2");
    // Drained, stopped and removed: v1's containers are gone.
    d.world.only_instances_of(2);
    for id in &v1_containers {
        let gone = Command::new("docker")
            .args(["-H", &host, "inspect", id])
            .output()
            .unwrap();
        assert!(!gone.status.success(), "v1 container {id} left behind");
    }
}

#[test]
fn canary_between_two_images_under_load_fails_no_request() {
    let host = engine_or_skip!();
    let d = Docked::new("canary", &host, None);
    d.image("v1", "v1");
    d.image("v2", "v2");
    let canary = "strategy = \"canary\"\nprogress_deadline = \"60s\"\nsteps = [{ weight = 50 }, { pause = \"2s\" }]";
    d.write(&d.tag("v1"), canary, "");
    d.world.slipway(&["deploy"]).ok();
    let load = Load::start(d.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    d.write(&d.tag("v2"), canary, "");
    d.world.slipway(&["deploy"]).ok();
    load.mark();
    load.wait_for_more(300);
    let tally = load.finish();
    tally.assert_switched("v1", "v2");
    assert_eq!(d.world.settled()["stable"]["version"], 2);
}

#[test]
fn rollback_after_the_tag_moved_runs_the_old_image() {
    let host = engine_or_skip!();
    let d = Docked::new("rollback", &host, None);
    let v1 = d.image("stable", "v1");
    d.write(&d.tag("stable"), BLUE_GREEN, "");
    d.world.slipway(&["deploy"]).ok();
    assert_eq!(d.world.answer(), "v1");
    // The tag moves to another image; a deploy of the same config now runs it.
    let v2 = d.image("stable", "v2");
    assert_ne!(v1, v2);
    d.world.slipway(&["deploy"]).ok();
    assert_eq!(d.world.answer(), "v2");
    d.world.only_instances_of(2);

    let load = Load::start(d.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    let run = d.world.slipway(&["rollback"]).ok();
    assert!(run.stdout.contains("v3"), "{run}");
    load.mark();
    load.wait_for_more(300);
    let tally = load.finish();
    tally.assert_no_failures();
    assert_eq!(
        tally.versions(1..).keys().collect::<Vec<_>>(),
        ["v1"],
        "the tag says v2, the rollback runs v1's image: {}",
        tally.summary()
    );
    let status = d.world.only_instances_of(3);
    for container in d.container_ids(&status) {
        assert_eq!(d.image_of(&container), v1, "v3 runs v1's image ID");
    }
    let history = d.world.history();
    assert_eq!(release(&history, 3)["rollback_of"], 1);
}

/// A folder with only a Dockerfile: `slipway init` writes its config (the port from EXPOSE), and
/// `slipway deploy --build`, as init says, builds it on the engine and serves it.
#[test]
fn init_writes_a_config_a_dockerfile_app_deploys_with() {
    let host = engine_or_skip!();
    let d = Docked::new("init", &host, None);
    image_folder(&d.world.app_dir, "v1", &d.label);
    let dockerfile = d.world.app_dir.join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(&dockerfile, format!("{text}EXPOSE 9000/tcp\n")).unwrap();
    let init = d.world.slipway(&["init"]).ok();
    assert!(init.stdout.contains("--build"), "{init}");
    let written = std::fs::read_to_string(d.world.config_path()).unwrap();
    assert!(written.contains("port = 9000"), "{written}");
    let run = d.world.slipway(&["deploy", "--build"]).ok();
    assert!(run.stdout.contains("v1 is live"), "{run}");
    assert_eq!(d.world.answer(), "v1");
}

#[test]
fn a_crashing_image_fails_the_deploy_and_the_stable_release_keeps_serving() {
    let host = engine_or_skip!();
    let d = Docked::new("crash", &host, None);
    d.image("v1", "v1");
    d.write(&d.tag("v1"), BLUE_GREEN, "");
    d.world.slipway(&["deploy"]).ok();
    let load = Load::start(d.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    // The same image, told to bind an address that does not parse: it exits at once, every time.
    d.write(&d.tag("v1"), BLUE_GREEN, "DEMO_BIND = \"everywhere\"");
    let run = d.world.slipway(&["deploy"]).failed();
    load.mark();
    load.wait_for_more(200);
    let tally = load.finish();
    tally.assert_no_failures();
    assert_eq!(tally.versions(..).keys().collect::<Vec<_>>(), ["v1"]);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains("crash-looping"), "{run}");
    assert!(
        text.contains("exited with status"),
        "the reason is shown: {run}"
    );
    let status = d.world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    assert!(
        status["last_failure"]
            .as_str()
            .is_some_and(|f| f.contains("DEMO_BIND")),
        "the app's own words are in the failure: {status}"
    );
}

#[test]
fn the_engine_going_away_mid_deploy_is_a_clear_failure_and_the_stable_release_keeps_serving() {
    let host = engine_or_skip!();
    // The daemon reaches the engine through a forwarder this test controls; cutting it is, for the
    // daemon, the engine stopping — while the stable release's containers keep running on the real
    // engine (stopping the shared test engine would break the other tests).
    let dir = tempfile::tempdir().unwrap();
    let forwarder = Forwarder::start(&dir.path().join("engine.sock"), &host);
    let d = Docked::new("unreachable", &host, Some(&forwarder.host()));
    d.image("v1", "v1");
    d.image("v2", "v2");
    d.write(&d.tag("v1"), BLUE_GREEN, "");
    d.world.slipway(&["deploy"]).ok();
    let load = Load::start(d.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);

    // The engine "stops" as the deploy creates v2's first container: after the image was resolved.
    forwarder.cut_on("/containers/create");
    d.write(&d.tag("v2"), BLUE_GREEN, "");
    let run = d.world.slipway(&["deploy"]).failed();
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(forwarder.was_cut(), "the deploy never reached the engine");
    assert!(text.contains("cannot reach the Docker engine"), "{run}");
    load.mark();
    load.wait_for_more(200);
    let tally = load.finish();
    eprintln!("{}", tally.summary());
    tally.assert_no_failures();
    assert_eq!(tally.versions(..).keys().collect::<Vec<_>>(), ["v1"]);
    assert_eq!(d.world.settled()["stable"]["version"], 1);

    // With the engine gone from the start, a deploy fails within seconds, before anything is recorded.
    let started = std::time::Instant::now();
    let run = d.world.slipway(&["deploy"]).failed();
    assert!(
        run.stderr.contains("cannot reach the Docker engine"),
        "{run}"
    );
    eprintln!("refused in {:?}", started.elapsed());
    assert_eq!(d.world.answer(), "v1");
}

#[test]
fn a_restarted_daemon_adopts_its_running_containers_without_dropping_requests() {
    let host = engine_or_skip!();
    let mut d = Docked::new("adopt", &host, None);
    d.image("v1", "v1");
    d.write(&d.tag("v1"), BLUE_GREEN, "");
    d.world.slipway(&["deploy"]).ok();
    let before = d.world.settled();
    let containers = d.container_ids(&before);
    let port = support::ports(&before, 1)[0];
    // Straight at one container, through the daemon's death and restart: it never stops serving.
    let direct = Load::start(SocketAddr::from(([127, 0, 0, 1], port)), 2, "/");
    direct.wait_for_more(100);
    d.world.daemon.kill9();
    direct.wait_for_more(100);
    d.world.daemon.restart();
    // The new proxy serves the adopted routes from its first request on.
    let through = Load::start(d.world.daemon.proxy, CLIENTS, "/");
    through.wait_for_more(300);
    direct.wait_for_more(100);
    let through = through.finish();
    let direct = direct.finish();
    eprintln!("direct: {}\nproxy: {}", direct.summary(), through.summary());
    direct.assert_no_failures();
    through.assert_no_failures();
    assert_eq!(through.versions(..).keys().collect::<Vec<_>>(), ["v1"]);

    let after = d.world.settled();
    assert_eq!(
        d.container_ids(&after),
        containers,
        "the same containers, not restarted: {after}"
    );
    assert_eq!(
        support::instances(&after),
        support::instances(&before),
        "{after}"
    );
    // The adopted instances are the controller's like any other: a deploy replaces them.
    d.image("v2", "v2");
    d.write(&d.tag("v2"), BLUE_GREEN, "");
    d.world.slipway(&["deploy"]).ok();
    assert_eq!(d.world.answer(), "v2");
    wait_until(support::DEADLINE, "v1's adopted containers removed", || {
        containers.iter().all(|id| {
            !Command::new("docker")
                .args(["-H", &host, "inspect", id])
                .output()
                .unwrap()
                .status
                .success()
        })
    });
}

/// A unix-socket forwarder in front of the engine that can "stop the engine": when a request line
/// matching `cut_on` passes, it drops every connection and its socket, as a dying engine would.
struct Forwarder {
    path: PathBuf,
    cut_on: Arc<Mutex<Option<String>>>,
    cut: Arc<AtomicBool>,
}

impl Forwarder {
    fn start(path: &Path, engine: &str) -> Forwarder {
        let engine = PathBuf::from(engine.strip_prefix("unix://").expect("a unix:// engine"));
        let listener = UnixListener::bind(path).unwrap();
        let cut_on: Arc<Mutex<Option<String>>> = Arc::default();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let forwarder = Forwarder {
            path: path.to_owned(),
            cut_on: cut_on.clone(),
            cut: cut.clone(),
        };
        let path = path.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(upstream) = UnixStream::connect(&engine) else {
                    continue;
                };
                for stream in [&client, &upstream] {
                    if let Ok(clone) = stream.try_clone() {
                        open.lock().unwrap().push(clone);
                    }
                }
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let watch = (cut_on.clone(), cut.clone(), open.clone(), path.clone());
                std::thread::spawn(move || pump_requests(client, upstream, watch));
                std::thread::spawn(move || {
                    let (mut from, mut to) = (u2, c2);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        forwarder
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn cut_on(&self, needle: &str) {
        *self.cut_on.lock().unwrap() = Some(needle.to_owned());
    }

    fn was_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.cut.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag and ends.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

type Watch = (
    Arc<Mutex<Option<String>>>,
    Arc<AtomicBool>,
    Arc<Mutex<Vec<UnixStream>>>,
    PathBuf,
);

/// Client → engine, watching the requests for the one that "stops the engine".
fn pump_requests(mut client: UnixStream, mut upstream: UnixStream, watch: Watch) {
    let (cut_on, cut, open, path) = watch;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match client.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = String::from_utf8_lossy(&buffer[..n]);
        let trigger =
            cut_on.lock().unwrap().as_ref().is_some_and(|needle| {
                chunk.starts_with("POST ") && chunk.contains(needle.as_str())
            });
        if trigger {
            cut.store(true, Ordering::SeqCst);
            // Wakes the accept loop, which then stops; then the socket goes, like a stopped engine's.
            let _ = UnixStream::connect(&path);
            let _ = std::fs::remove_file(&path);
            for stream in open.lock().unwrap().drain(..) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            return;
        }
        if upstream.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = upstream.shutdown(std::net::Shutdown::Write);
}

#[test]
fn a_container_still_starting_when_the_daemon_died_gets_traffic_only_once_ready() {
    let host = engine_or_skip!();
    let mut d = Docked::new("adopt-starting", &host, None);
    d.image("v1", "v1");
    d.image("v2", "v2");
    d.write(&d.tag("v1"), BLUE_GREEN, "");
    d.world.slipway(&["deploy"]).ok();
    // v2's containers run but do not listen for a while: the daemon dies in that window.
    d.write(&d.tag("v2"), BLUE_GREEN, "DEMO_STARTUP_DELAY_MS = \"6000\"");
    d.world.slipway(&["deploy", "--detach"]).ok();
    wait_until(support::DEADLINE, "v2's containers created", || {
        let status = d.world.status();
        support::ports(&status, 2).len() == 2
    });
    d.world.daemon.kill9();
    d.world.daemon.restart();
    let load = Load::start(d.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    let status = d.world.settled();
    load.mark();
    load.wait_for_more(200);
    let tally = load.finish();
    eprintln!("{}", tally.summary());
    tally.assert_no_failures();
    assert_eq!(status["stable"]["version"], 2, "{status}");
    assert_eq!(
        tally.versions(1..).keys().collect::<Vec<_>>(),
        ["v2"],
        "{}",
        tally.summary()
    );
}
