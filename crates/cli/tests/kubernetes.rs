//! Image releases on Kubernetes through the real binary (`serve --kubernetes`, built with the
//! `kubernetes` feature) and a real cluster with a real node (ci/kube.sh): each release process is
//! a ReplicaSet, each instance a pod, and slipway's own proxy — on the host, like the controller —
//! routes by weight to the pods' IPs. Blue-green and canary between two images under load, the
//! seed's bad canary (0.3 % → 3 % errors) rolled back by slipway's own analysis, pods evicted
//! mid-canary, a crash-looping release that fails fast while the old one serves, a deleted
//! pod replaced and a scale-down that removes exactly the drained pods, a daemon killed and
//! restarted that adopts its pods, an upgrade under load, the least RBAC, a `cmd` process
//! refused with the fix, and `slipway kube install`: its manifests checked by the API server, and
//! its Deployment running slipway in a pod that deploys a blue-green through its own proxy.
//!
//! The cluster is the one of `KUBECONFIG` (`eval "$(ci/kube.sh start)"`, which also sets
//! `SLIPWAY_KUBE_BIN` for kubectl), the images are built on `SLIPWAY_TEST_DOCKER_HOST`
//! (`ci/dockerd.sh start`) and imported into the node with `ci/kube.sh import-image`, or pushed to
//! the cluster's registry (`SLIPWAY_TEST_REGISTRY`), which the node pulls from. Unset, each
//! test prints SKIPPED and passes — except with `CI` set, where it fails (as tests/docker.rs does).
//! Each test works in a namespace of its own, deleted when it ends, also on panic.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, Instant};
use support::load::Outcome;
use support::{Load, World, wait_for, wait_until};

const CLIENTS: usize = 4;
const TOKEN: &str = "t0p-s3cret-k8s-t0ken";

struct Cluster {
    kubeconfig: String,
    node: String,
    kubectl: PathBuf,
    docker: String,
    /// The cluster's image registry (`host:port`), which the node pulls from.
    registry: String,
}

fn cluster() -> Option<Cluster> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (
        var("KUBECONFIG"),
        var("SLIPWAY_KUBE_BIN"),
        var("SLIPWAY_KUBE_NODE"),
        var("SLIPWAY_TEST_DOCKER_HOST"),
        var("SLIPWAY_TEST_REGISTRY"),
    ) {
        (Some(kubeconfig), Some(bin), Some(node), Some(docker), Some(registry)) => Some(Cluster {
            kubeconfig,
            node,
            kubectl: Path::new(&bin).join("kubectl"),
            docker,
            registry,
        }),
        _ if std::env::var("CI").is_ok_and(|ci| !ci.is_empty() && ci != "false") => panic!(
            "CI is set but KUBECONFIG, SLIPWAY_KUBE_BIN, SLIPWAY_KUBE_NODE, SLIPWAY_TEST_REGISTRY or SLIPWAY_TEST_DOCKER_HOST is not: .ci/run \
             must start the test cluster (eval \"$(ci/kube.sh start)\") and engine \
             (SLIPWAY_TEST_DOCKER_HOST=$(ci/dockerd.sh start))"
        ),
        _ => {
            eprintln!(
                "SKIPPED: no Kubernetes cluster for this test. Run `eval \"$(ci/kube.sh start)\"` and \
                 `export SLIPWAY_TEST_DOCKER_HOST=$(ci/dockerd.sh start)` (as root), and test with \
                 `--features kubernetes`."
            );
            None
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let output = cmd.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl Cluster {
    fn kubectl(&self, namespace: &str, args: &[&str]) -> String {
        run(Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["-n", namespace])
            .args(args))
    }

    fn docker(&self, args: &[&str]) -> String {
        run(Command::new("docker").args(["-H", &self.docker]).args(args))
    }
}

/// Applies `slipway kube rbac` in `namespace` and writes a kubeconfig (in `dir`) for its service
/// account, with a token from the TokenRequest API; returns its path.
fn least_rbac_kubeconfig(
    cluster: &Cluster,
    namespace: &str,
    dir: &Path,
    rbac_args: &[&str],
) -> String {
    let manifests = run(Command::new(support::bin())
        .args(["kube", "rbac", "--namespace", namespace])
        .args(rbac_args));
    let file = dir.join("rbac.yaml");
    std::fs::write(&file, manifests).unwrap();
    // Each object names its namespace (an app namespace's Role is not in `namespace`).
    run(Command::new(&cluster.kubectl)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["apply", "-f", file.to_str().unwrap()]));
    let token = cluster.kubectl(
        namespace,
        &["create", "token", "slipway", "--duration", "1h"],
    );
    let view = |path: &str| {
        cluster.kubectl(
            namespace,
            &[
                "config",
                "view",
                "--raw",
                "--flatten",
                "--minify",
                "-o",
                &format!("jsonpath={{.clusters[0].cluster.{path}}}"),
            ],
        )
    };
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    \
         certificate-authority-data: {}\nusers:\n- name: slipway\n  user:\n    token: {token}\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: slipway\n    namespace: {namespace}\n\
         current-context: c\n",
        view("server"),
        view("certificate-authority-data"),
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Builds the demo app answering `hello from <version>` as `<label>:<tag>` (labelled for the
/// cleanup), in a folder under `root`, and imports it into the node; returns the tag.
fn demo_image(cluster: &Cluster, root: &Path, label: &str, tag: &str, version: &str) -> String {
    let dir = demo_image_folder(root, label, tag, version);
    build_and_import(cluster, &dir, &format!("{label}:{tag}"))
}

/// The demo app answering `hello from <version>`, built as `<registry>/<label>:<tag>` and pushed to
/// the cluster's registry, not imported: the node pulls it. Returns the tag's reference and the
/// pinned one the push reported (`<registry>/<label>@sha256:…`).
fn pushed_demo_image(
    cluster: &Cluster,
    root: &Path,
    label: &str,
    tag: &str,
    version: &str,
) -> (String, String) {
    let dir = demo_image_folder(root, label, &format!("{tag}-{version}"), version);
    let reference = format!("{}/{label}:{tag}", cluster.registry);
    cluster.docker(&["build", "-q", "-t", &reference, dir.to_str().unwrap()]);
    cluster.docker(&["push", "-q", &reference]);
    let digests = cluster.docker(&["inspect", "--format", "{{json .RepoDigests}}", &reference]);
    let digests: Vec<String> = serde_json::from_str(&digests).unwrap();
    let repository = format!("{}/{label}@sha256:", cluster.registry);
    let pinned = digests
        .into_iter()
        .find(|d| d.starts_with(&repository))
        .unwrap_or_else(|| panic!("no digest of {reference} after the push"));
    (reference, pinned)
}

/// A folder with the demo app's static binary and a Dockerfile for it.
fn demo_image_folder(root: &Path, label: &str, tag: &str, version: &str) -> PathBuf {
    let dir = root.join(format!("image-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
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
             ENV DEMO_BIND=0.0.0.0 DEMO_VERSION={version}\n\
             USER 1000:1000\n\
             ENTRYPOINT [\"/slipway-demo-app\"]\n"
        ),
    )
    .unwrap();
    dir
}

/// Like `demo_image`, with Debian's static busybox as the image's `/bin/sh`: what a one-off command
/// (`/bin/sh -c cmd`) needs.
fn shell_demo_image(
    cluster: &Cluster,
    root: &Path,
    label: &str,
    tag: &str,
    version: &str,
) -> String {
    let dir = demo_image_folder(root, label, tag, version);
    support::add_busybox_shell(&dir);
    build_and_import(cluster, &dir, &format!("{label}:{tag}"))
}

/// `docker build` of `dir` as `reference`, saved and imported into the node; returns `reference`.
fn build_and_import(cluster: &Cluster, dir: &Path, reference: &str) -> String {
    cluster.docker(&["build", "-q", "-t", reference, dir.to_str().unwrap()]);
    let tar = dir.join("image.tar");
    cluster.docker(&["save", "-o", tar.to_str().unwrap(), reference]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ci/kube.sh");
    run(Command::new("bash")
        .arg(script)
        .arg("import-image")
        .arg(&tar));
    reference.to_owned()
}

/// One test's world: a namespace, a daemon running its image processes there, and the cleanup.
struct Kubed {
    world: World,
    cluster: Cluster,
    namespace: String,
    label: String,
    _kubeconfig_dir: tempfile::TempDir,
    _cleanup: Cleanup,
}

struct Cleanup {
    kubectl: PathBuf,
    kubeconfig: String,
    docker: String,
    namespace: String,
    label: String,
}

impl Cleanup {
    /// Removes the namespace and what is labelled with its name.
    fn of(cluster: &Cluster, namespace: &str) -> Cleanup {
        Cleanup {
            kubectl: cluster.kubectl.clone(),
            kubeconfig: cluster.kubeconfig.clone(),
            docker: cluster.docker.clone(),
            namespace: namespace.to_owned(),
            label: namespace.to_owned(),
        }
    }
}

impl Cleanup {
    /// What the cluster says about the test's pods and the node, for a failed test's output: a pod that
    /// never became ready shows why only there (image, scheduling, probes, node conditions).
    fn tell_the_cluster_s_side(&self) {
        let namespace = self.namespace.as_str();
        let views: [&[&str]; 3] = [
            &["get", "pods", "-o", "wide", "-n", namespace],
            &["get", "events", "--sort-by=.lastTimestamp", "-n", namespace],
            &[
                "get",
                "nodes",
                "-o",
                "jsonpath={range .items[*].status.conditions[*]}{.type}={.status} {.reason}: {.message}{\"\\n\"}{end}",
            ],
        ];
        for args in views {
            let out = Command::new(&self.kubectl)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .output();
            eprintln!("---- kubectl {} ----", args.join(" "));
            match out {
                Ok(out) => {
                    let text = String::from_utf8_lossy(&out.stdout);
                    let lines: Vec<&str> = text.lines().collect();
                    eprintln!("{}", lines[lines.len().saturating_sub(60)..].join("\n"));
                    eprint!("{}", String::from_utf8_lossy(&out.stderr));
                }
                Err(e) => eprintln!("cannot run kubectl: {e}"),
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.tell_the_cluster_s_side();
        }
        let _ = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .output();
        let built = format!("label=slipway.test={}", self.label);
        if let Ok(out) = Command::new("docker")
            .args(["-H", &self.docker, "images", "-aq", "--filter", &built])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker")
                    .args(["-H", &self.docker, "rmi", "-f", id])
                    .output();
            }
        }
    }
}

impl Kubed {
    fn new(name: &str) -> Option<Kubed> {
        Kubed::new_as(name, None)
    }

    /// With `least_rbac` (the arguments of `slipway kube rbac`), the daemon runs as the service
    /// account `slipway kube rbac` makes, with a
    /// token of its own, instead of as the cluster's admin.
    fn new_as(name: &str, least_rbac: Option<&[&str]>) -> Option<Kubed> {
        Kubed::new_with(name, least_rbac, &[])
    }

    /// With `extra` arguments to the daemon's `serve`.
    fn new_with(name: &str, least_rbac: Option<&[&str]>, extra: &[&str]) -> Option<Kubed> {
        let cluster = cluster()?;
        let namespace = format!("e2e-{}-{name}", std::process::id());
        let label = namespace.clone();
        let cleanup = Cleanup::of(&cluster, &namespace);
        run(Command::new(&cluster.kubectl)
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["create", "namespace", &namespace]));
        let kubeconfig_dir = tempfile::tempdir().unwrap();
        let kubeconfig = match least_rbac {
            Some(args) => least_rbac_kubeconfig(&cluster, &namespace, kubeconfig_dir.path(), args),
            None => cluster.kubeconfig.clone(),
        };
        let mut args = vec!["--kubernetes", "--namespace", &namespace];
        args.extend(extra);
        let world = World::with(
            &args,
            &[
                ("KUBECONFIG", kubeconfig.as_str()),
                ("DOCKER_HOST", cluster.docker.as_str()),
                ("E2E_API_TOKEN", TOKEN),
            ],
        );
        Some(Kubed {
            world,
            cluster,
            namespace,
            label,
            _kubeconfig_dir: kubeconfig_dir,
            _cleanup: cleanup,
        })
    }

    /// Who holds the Lease `slipway`, as the API server has it.
    fn lease_holder(&self) -> String {
        self.kubectl(&[
            "get",
            "lease",
            "slipway",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
    }

    /// A second controller for the Lease `slipway` (`controller-b`, this lease duration),
    /// standing by with a state dir under `dir` and reaching the cluster with `kubeconfig`.
    fn standby(&self, dir: &Path, duration: &str, kubeconfig: &str) -> support::Daemon {
        let mut args = vec!["--kubernetes", "--namespace", self.namespace.as_str()];
        args.extend(lease_args("controller-b"));
        args[6] = duration;
        support::Daemon::start_standby(
            &dir.join("state"),
            &args,
            &[
                ("KUBECONFIG", kubeconfig),
                ("DOCKER_HOST", self.cluster.docker.as_str()),
                ("E2E_API_TOKEN", TOKEN),
            ],
        )
    }

    /// `slipway upgrade` under load through the daemon's proxy: another daemon serves, and no
    /// request failed.
    fn upgrade_under_load(&mut self) {
        let load = Load::start(self.world.daemon.proxy, CLIENTS, "/");
        load.wait_for_more(200);
        let old = self.world.daemon.pid();
        let answer = self.world.slipway(&["upgrade", "--json"]).ok().json();
        let pid = answer["pid"].as_u64().expect("the new pid") as u32;
        assert_ne!(pid, old, "{answer}");
        self.world.daemon.upgraded_to(pid);
        load.wait_for_more(200);
        load.finish().assert_no_failures();
    }

    fn kubectl(&self, args: &[&str]) -> String {
        self.cluster.kubectl(&self.namespace, args)
    }

    /// Builds the demo app answering `hello from <version>` as this test's `<label>:<tag>`, and
    /// imports it into the node; returns the tag.
    fn image(&self, tag: &str, version: &str) -> String {
        demo_image(&self.cluster, self.world.root(), &self.label, tag, version)
    }

    /// Like `image`, with a shell (`/bin/sh`) for one-off commands.
    fn shell_image(&self, tag: &str, version: &str) -> String {
        shell_demo_image(&self.cluster, self.world.root(), &self.label, tag, version)
    }

    /// Like `image`, pushed to the cluster's registry (not imported): (the tag's reference, the
    /// pinned one).
    fn pushed_image(&self, tag: &str, version: &str) -> (String, String) {
        pushed_demo_image(&self.cluster, self.world.root(), &self.label, tag, version)
    }

    /// A finished release-phase pod of this daemon's (`job-left`), as a daemon killed before it could
    /// delete it leaves one: a pod of the ReplicaSet of `release`'s spec running `/bin/sh -c true`
    /// once (its image must have a shell), with the owner's and the job's labels.
    fn plant_finished_job(&self, release: u64) {
        let set = self.replica_set(release);
        let template = &set["spec"]["template"];
        let mut labels = template["metadata"]["labels"].clone();
        labels["slipway.dev/process"] = "release".into();
        labels["slipway.dev/job"] = "release".into();
        let mut spec = template["spec"].clone();
        spec["restartPolicy"] = "Never".into();
        let container = &mut spec["containers"][0];
        container["command"] = serde_json::json!(["/bin/sh", "-c", "true"]);
        for key in [
            "args",
            "readinessProbe",
            "livenessProbe",
            "startupProbe",
            "ports",
        ] {
            container.as_object_mut().unwrap().remove(key);
        }
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "job-left", "labels": labels}, "spec": spec,
        });
        let file = self.world.root().join("job-left.json");
        std::fs::write(&file, pod.to_string()).unwrap();
        self.kubectl(&["create", "-f", file.to_str().unwrap()]);
        wait_until(
            Duration::from_secs(60),
            "the planted job pod finished",
            || {
                self.kubectl(&["get", "pod", "job-left", "-o", "jsonpath={.status.phase}"])
                    == "Succeeded"
            },
        );
    }

    /// A copy of this daemon's ReplicaSet of `release` (in the test's namespace) relabelled as v9 of
    /// an app that does not exist, `gone-v9-web` with no pods, made in `namespace`: what a restarted
    /// daemon must find and remove.
    fn plant_stray(&self, release: u64, namespace: &str) {
        let mut rs = self.replica_set(release);
        assert_eq!(rs["metadata"]["labels"]["slipway.dev/app"], "shop");
        for (key, value) in [("slipway.dev/app", "gone"), ("slipway.dev/release", "9")] {
            rs["metadata"]["labels"][key] = value.into();
            rs["spec"]["selector"]["matchLabels"][key] = value.into();
            rs["spec"]["template"]["metadata"]["labels"][key] = value.into();
        }
        rs["metadata"] = serde_json::json!({
            "name": "gone-v9-web", "namespace": namespace, "labels": rs["metadata"]["labels"],
        });
        rs["spec"]["replicas"] = 0.into();
        rs.as_object_mut().unwrap().remove("status");
        let file = self.world.root().join("stray.json");
        std::fs::write(&file, rs.to_string()).unwrap();
        self.cluster
            .kubectl(namespace, &["create", "-f", file.to_str().unwrap()]);
    }

    /// (image, imagePullPolicy) of `pod`'s container.
    fn pod_image(&self, pod: &str) -> (String, String) {
        let pod = self.json(&["get", "pod", pod]);
        let c = &pod["spec"]["containers"][0];
        (
            c["image"].as_str().unwrap().to_owned(),
            c["imagePullPolicy"].as_str().unwrap().to_owned(),
        )
    }

    fn write(&self, image: &str, deploy: &str, env: &str) {
        self.write_replicas(image, deploy, env, 2);
    }

    fn write_replicas(&self, image: &str, deploy: &str, env: &str, replicas: u32) {
        self.write_kubernetes(image, deploy, env, replicas, "");
    }

    /// With `kubernetes` added to the `[kubernetes]` table.
    fn write_kubernetes(
        &self,
        image: &str,
        deploy: &str,
        env: &str,
        replicas: u32,
        kubernetes: &str,
    ) {
        self.write_full(image, deploy, env, replicas, kubernetes, "");
    }

    /// With `tail` (more tables, e.g. `[analysis.*]`) after the `[kubernetes]` table.
    fn write_full(
        &self,
        image: &str,
        deploy: &str,
        env: &str,
        replicas: u32,
        kubernetes: &str,
        tail: &str,
    ) {
        self.world.write_raw(&format!(
            r#"app = "shop"

[env]
{env}

[secrets]
API_TOKEN = {{ env = "E2E_API_TOKEN" }}

[processes.web]
image = "{image}"
replicas = {replicas}
grace = "10s"
drain_timeout = "15s"
stream_drain_timeout = "15s"
readiness = {{ http = "/ready", period = "1s", timeout = "1s", failure_threshold = 3 }}

[deploy]
{deploy}

[kubernetes]
node_selector = {{ "kubernetes.io/hostname" = "{node}" }}
tolerations = [{{ key = "slipway.test/e2e", exists = true, effect = "NoSchedule" }}]
requests = {{ memory = "16m", cpus = "0.05" }}
{kubernetes}

{tail}
"#,
            node = self.cluster.node,
        ));
    }

    /// `kubectl get ARGS -o json`.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json", "--show-managed-fields"]);
        serde_json::from_str(&self.kubectl(&args)).unwrap()
    }

    /// Applies `yaml` server-side as the field manager `manager` (another team's tool).
    fn apply_as(&self, manager: &str, yaml: &str) {
        let file = self.world.root().join(format!("{manager}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        self.kubectl(&[
            "apply",
            "--server-side",
            "--field-manager",
            manager,
            "-f",
            file.to_str().unwrap(),
        ]);
    }

    /// The IPs of the ready pods of `release`.
    fn pod_ips(&self, release: u64) -> BTreeSet<String> {
        let pods = self.json(&[
            "get",
            "pods",
            "-l",
            &format!("slipway.dev/release={release}"),
        ]);
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
            .collect()
    }

    /// The addresses of `service`'s ready endpoints, from its EndpointSlices (what a gateway or
    /// kube-proxy would send to).
    fn endpoint_ips(&self, service: &str) -> BTreeSet<String> {
        let slices = self.json(&[
            "get",
            "endpointslices",
            "-l",
            &format!("kubernetes.io/service-name={service}"),
        ]);
        let mut ips = BTreeSet::new();
        for slice in slices["items"].as_array().unwrap() {
            for e in slice["endpoints"].as_array().into_iter().flatten() {
                if e["conditions"]["ready"] != false {
                    for a in e["addresses"].as_array().unwrap() {
                        ips.insert(a.as_str().unwrap().to_owned());
                    }
                }
            }
        }
        ips
    }

    /// The names of the pods of `release` that are not terminating.
    fn pods_of(&self, release: u64) -> Vec<String> {
        let out = self.kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("slipway.dev/release={release}"),
            "-o",
            "json",
        ]);
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// This daemon's (first) ReplicaSet of `release` in the test's namespace, as JSON.
    fn replica_set(&self, release: u64) -> serde_json::Value {
        let list = self.kubectl(&[
            "get",
            "replicasets",
            "-l",
            &format!("slipway.dev/release={release}"),
            "-o",
            "json",
        ]);
        let mut list: serde_json::Value = serde_json::from_str(&list).unwrap();
        list["items"][0].take()
    }

    fn replica_sets_of(&self, release: u64) -> Vec<String> {
        let out = self.kubectl(&[
            "get",
            "replicasets",
            "-l",
            &format!("slipway.dev/release={release}"),
            "-o",
            "name",
        ]);
        out.lines().map(str::to_owned).collect()
    }

    /// Each instance of `status --json` with the pod it runs on.
    fn instance_pods(&self) -> Vec<(String, String)> {
        let status = self.world.status();
        status["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_owned(),
                    i["pod"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

const BLUE_GREEN: &str =
    "strategy = \"blue-green\"\nprogress_deadline = \"90s\"\nscale_down_delay = \"1s\"";

#[test]
fn blue_green_between_two_images_on_pods_fails_no_request_and_keeps_secrets_in_a_secret() {
    let Some(k) = Kubed::new("bluegreen") else {
        return;
    };
    let v1 = k.image("v1", "v1");
    k.write(&v1, BLUE_GREEN, "LOG_LEVEL = \"debug\"");
    let run = k.world.slipway(&["deploy"]).ok();
    assert!(run.stdout.contains("v1 is live"), "{run}");
    assert_eq!(k.world.answer(), "v1");
    let v1_pods = k.pods_of(1);
    assert_eq!(v1_pods.len(), 2, "{v1_pods:?}");
    // Each instance is one of those pods.
    let bound: Vec<String> = k.instance_pods().into_iter().map(|(_, p)| p).collect();
    for pod in &bound {
        assert!(v1_pods.contains(pod), "{pod} not in {v1_pods:?}");
    }
    // The secret is a Secret mounted as files: never in the ReplicaSet or the pods.
    let objects = k.kubectl(&["get", "replicasets,pods", "-o", "json"]);
    assert!(!objects.contains(TOKEN), "secret value in the pod spec");
    assert!(
        objects.contains("API_TOKEN_FILE") && objects.contains("/run/secrets"),
        "{objects}"
    );
    // The [kubernetes] table places them.
    let pod: serde_json::Value =
        serde_json::from_str(&k.kubectl(&["get", "pod", &v1_pods[0], "-o", "json"])).unwrap();
    assert_eq!(
        pod["spec"]["nodeSelector"]["kubernetes.io/hostname"],
        k.cluster.node.as_str()
    );
    assert_eq!(pod["spec"]["tolerations"][0]["operator"], "Exists", "{pod}");
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "50m"
    );
    let secrets = k.kubectl(&["get", "secrets", "-o", "name"]);
    assert_eq!(secrets.lines().count(), 1, "{secrets}");
    // The release's env is a ConfigMap (immutable, tied to the ReplicaSet), not the pod spec's.
    let configs = |release: u64| -> Vec<serde_json::Value> {
        let list: serde_json::Value = serde_json::from_str(&k.kubectl(&[
            "get",
            "configmaps",
            "-l",
            &format!("slipway.dev/release={release}"),
            "-o",
            "json",
        ]))
        .unwrap();
        list["items"].as_array().unwrap().clone()
    };
    let v1_config = configs(1);
    assert_eq!(v1_config.len(), 1, "{v1_config:?}");
    assert_eq!(v1_config[0]["data"]["LOG_LEVEL"], "debug");
    assert_eq!(v1_config[0]["immutable"], true);
    assert_eq!(
        v1_config[0]["metadata"]["ownerReferences"][0]["kind"],
        "ReplicaSet"
    );
    assert!(
        !objects.contains("\"LOG_LEVEL\""),
        "env inline in the pod spec"
    );

    // The pods' output is in their instances' logs.
    support::wait_for(
        Duration::from_secs(30),
        "the pods' output in slipway logs",
        || {
            let run = k.world.slipway(&["logs", "--release", "v1"]);
            (run.stdout.matches("demo v1 listening on").count() == 2).then_some(())
        },
    );

    let v2 = k.image("v2", "v2");
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    k.write(&v2, BLUE_GREEN, "");
    let started = Instant::now();
    k.world.slipway(&["deploy"]).ok();
    eprintln!(
        "deploy v2 (blue-green, 2 pods) took {:?}",
        started.elapsed()
    );
    load.mark();
    load.wait_for_more(300);
    let tally = load.finish();
    tally.assert_switched("v1", "v2");
    k.world.only_instances_of(2);
    // For docs/benchmarks.md: ready → serving, and the API requests (with --nocapture).
    for line in k.world.daemon.log_text().lines() {
        if ["rollout_", "instance_ready", "API requests"]
            .iter()
            .any(|w| line.contains(w))
        {
            eprintln!("{line}");
        }
    }
    // v1's ReplicaSet, pods and Secret go once drained.
    wait_until(
        Duration::from_secs(90),
        "v1's ReplicaSet and pods gone",
        || k.replica_sets_of(1).is_empty() && k.pods_of(1).is_empty(),
    );
    wait_until(Duration::from_secs(60), "v1's Secret gone", || {
        k.kubectl(&["get", "secrets", "-o", "name"]).lines().count() == 1
    });
    wait_until(Duration::from_secs(60), "v1's ConfigMap gone", || {
        configs(1).is_empty()
    });
}

#[test]
fn canary_between_two_images_on_pods_fails_no_request() {
    let Some(k) = Kubed::new("canary") else {
        return;
    };
    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    let canary = "strategy = \"canary\"\nprogress_deadline = \"90s\"\nsteps = [{ weight = 50 }, { pause = \"2s\" }]";
    k.write(&v1, canary, "");
    k.world.slipway(&["deploy"]).ok();
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    k.write(&v2, canary, "");
    k.world.slipway(&["deploy"]).ok();
    load.mark();
    load.wait_for_more(300);
    let tally = load.finish();
    tally.assert_switched("v1", "v2");
    assert_eq!(k.world.settled()["stable"]["version"], 2);
}

/// An image named with its registry's host, as on any real cluster: the deploy pins its tag to the
/// digest the registry names, the node pulls that (nothing is imported), and the tag moved later
/// changes no release — a rollback runs the old digest. A tag the registry lacks fails the deploy
/// while the stable release serves; a digest written in the config runs as it is.
#[test]
fn an_image_from_a_registry_runs_by_digest_and_a_moved_tag_changes_no_release() {
    let Some(k) = Kubed::new_with("registry", None, &["--api", "127.0.0.1:0"]) else {
        return;
    };
    let (live, v1) = k.pushed_image("live", "v1");
    k.write(&live, BLUE_GREEN, "");
    let run = k.world.slipway(&["deploy"]).ok();
    assert!(run.stdout.contains("v1 is live"), "{run}");
    assert_eq!(k.world.answer(), "v1");
    // The pods of `release`'s instances (a rollback to a warm release takes over its pods).
    let pulled = |release: u64, image: &str| {
        let status = k.world.only_instances_of(release);
        let pods: Vec<String> = status["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["pod"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(pods.len(), 2, "{status}");
        for pod in pods {
            let (pod_image, policy) = k.pod_image(&pod);
            assert_eq!(
                pod_image, image,
                "v{release}'s pod {pod} runs the pinned digest"
            );
            assert_eq!(policy, "IfNotPresent");
        }
    };
    pulled(1, &v1);
    // The release's events say what the tag was pinned to.
    let token = k.world.create_token("auditor", "viewer");
    let events = support::http::get(
        k.world.api_addr(),
        "/v1/apps/shop/events?limit=1000",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .unwrap()
    .body;
    assert!(
        events.contains(&format!("web runs {live} = {v1}")),
        "{events}"
    );

    // The tag moves to v2's image: the same config, deployed again, pins the new digest.
    let (_, v2) = k.pushed_image("live", "v2");
    assert_ne!(v1, v2);
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    k.world.slipway(&["deploy"]).ok();
    load.mark();
    load.wait_for_more(300);
    load.finish().assert_switched("v1", "v2");
    pulled(2, &v2);

    // The rollback runs v1's digest, though the tag names v2's image now.
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    let run = k.world.slipway(&["rollback"]).ok();
    assert!(run.stdout.contains("v3"), "{run}");
    load.mark();
    load.wait_for_more(300);
    load.finish().assert_switched("v2", "v1");
    pulled(3, &v1);

    // A tag the registry does not have: refused before anything is recorded; v1 serves on.
    let missing = format!("{}/{}:missing", k.cluster.registry, k.label);
    k.write(&missing, BLUE_GREEN, "");
    let run = k.world.slipway(&["deploy"]).failed();
    assert!(run.stderr.contains("is not in its registry"), "{run}");
    assert!(run.stderr.contains(&missing), "{run}");
    assert_eq!(k.world.answer(), "v1");
    assert_eq!(k.world.settled()["stable"]["version"], 3);

    // A digest in the config runs as written.
    k.write(&v2, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    assert_eq!(k.world.answer(), "v2");
    pulled(4, &v2);
}

/// A registry that wants a login: the deploy says so and names the fix; with the login in an image
/// pull secret the app names (and the daemon may read by name only, `kube rbac --pull-secret`), the
/// tag is pinned to its digest and the node pulls it with the same secret.
#[test]
fn a_registry_that_wants_a_login_is_asked_with_the_app_s_image_pull_secret() {
    let Some(k) = Kubed::new_as("private", Some(&["--pull-secret", "registry-login"])) else {
        return;
    };
    deploys_from_a_registry_with_a_login(&k, &var("SLIPWAY_TEST_PRIVATE_REGISTRY"));
}

/// The same through the bearer-token exchange (Docker Hub's, GHCR's): the registry answers 401 with
/// a `Bearer realm=…` challenge, the daemon asks that token service with the pull secret's login,
/// and asks the registry again with the token; the node's containerd does the same.
#[test]
fn a_registry_with_a_token_service_is_asked_with_a_token_for_the_app_s_login() {
    let Some(k) = Kubed::new_as("tokens", Some(&["--pull-secret", "registry-login"])) else {
        return;
    };
    deploys_from_a_registry_with_a_login(&k, &var("SLIPWAY_TEST_TOKEN_REGISTRY"));
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: ci/kube.sh start"))
}

/// Pushes the demo image to `registry` (which wants `SLIPWAY_TEST_REGISTRY_LOGIN`), then: refused
/// without a pull secret, and with one missing; deployed, pinned and pulled with it.
fn deploys_from_a_registry_with_a_login(k: &Kubed, registry: &str) {
    let login = var("SLIPWAY_TEST_REGISTRY_LOGIN");
    let (user, password) = login.split_once(':').unwrap();
    // Pushed with a Docker config of this test's own (the machine's ~/.docker stays untouched).
    let dir = demo_image_folder(k.world.root(), &k.label, "private", "v1");
    let tag = format!("{registry}/{}:v1", k.label);
    let config = k.world.root().join("docker-config");
    let docker = |args: &[&str], stdin: &str| {
        let mut child = Command::new("docker")
            .arg("--config")
            .arg(&config)
            .args(["-H", &k.cluster.docker])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()], "");
    docker(
        &["login", "-u", user, "--password-stdin", registry],
        password,
    );
    docker(&["push", "-q", &tag], "");
    let digests: Vec<String> = serde_json::from_str(&docker(
        &["inspect", "--format", "{{json .RepoDigests}}", &tag],
        "",
    ))
    .unwrap();
    let pinned = digests
        .into_iter()
        .find(|d| d.starts_with(registry))
        .unwrap();

    // Without a pull secret: refused before anything is recorded, with the fix.
    k.write(&tag, BLUE_GREEN, "");
    let run = k.world.slipway(&["deploy"]).failed();
    assert!(run.stderr.contains("wants credentials"), "{run}");
    assert!(run.stderr.contains("image_pull_secrets"), "{run}");
    // A pull secret that is not there: said so.
    let secrets = "image_pull_secrets = [\"registry-login\"]";
    k.write_kubernetes(&tag, BLUE_GREEN, "", 2, secrets);
    let run = k.world.slipway(&["deploy"]).failed();
    assert!(
        run.stderr.contains("registry-login is not in namespace"),
        "{run}"
    );
    k.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "registry-login",
        &format!("--docker-server={registry}"),
        &format!("--docker-username={user}"),
        &format!("--docker-password={password}"),
    ]);
    let run = k.world.slipway(&["deploy"]).ok();
    assert!(run.stdout.contains("v1 is live"), "{run}");
    assert_eq!(k.world.answer(), "v1");
    let status = k.world.only_instances_of(1);
    for instance in status["instances"].as_array().unwrap() {
        let (image, policy) = k.pod_image(instance["pod"].as_str().unwrap());
        assert_eq!(
            (image.as_str(), policy.as_str()),
            (pinned.as_str(), "IfNotPresent")
        );
    }
    // The password is in no answer, no log.
    assert!(!k.world.daemon.log_text().contains(password));
}

/// The analysis of the seed's bad canary: its error rate against the stable release's.
const GOLDEN: &str = "[analysis.golden]\nerror_rate = { max = \"1%\", compare = \"stable\" }\n";

/// How many of `tally`'s failures were the demo app's own injected 500s, per version
/// ("injected error from v2"); panics on any other failure (a connection error, a 502/503/504 from
/// the proxy): the rollout and its rollback failed no request themselves.
fn only_injected_errors(tally: &support::Tally) -> std::collections::BTreeMap<String, u64> {
    let mut by_version = std::collections::BTreeMap::new();
    for r in tally.failures() {
        let version = match &r.result {
            Err(Outcome::Status(500, body)) => body.trim().strip_prefix("injected error from "),
            _ => None,
        };
        let Some(version) = version else {
            panic!(
                "a failure not injected by the app: {:?}; failures by kind {:?}; {}",
                r.result,
                tally.failures_by_kind(),
                tally.summary()
            );
        };
        *by_version.entry(version.to_owned()).or_insert(0) += 1;
    }
    by_version
}

#[test]
fn the_seed_s_bad_canary_on_pods_is_rolled_back_by_slipway_s_analysis() {
    let Some(k) = Kubed::new("badcanary") else {
        return;
    };
    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    // The seed: the stable release answers 0.3 % errors, the canary 3 %.
    k.write_full(
        &v1,
        BLUE_GREEN,
        "DEMO_ERROR_RATE = \"0.003\"",
        2,
        "",
        GOLDEN,
    );
    k.world.slipway(&["deploy"]).ok();
    // Paced and bounded, as tests/canary.rs: 6 clients at up to 100 requests a second each.
    let load = Load::paced(k.world.daemon.proxy, 6, "/", 100);
    load.wait_for_more(300);
    let canary = "strategy = \"canary\"\nprogress_deadline = \"5m\"\n\
                  steps = [{ weight = 20 }, { analysis = \"golden\", for = \"120s\" }]";
    k.write_full(&v2, canary, "DEMO_ERROR_RATE = \"0.03\"", 2, "", GOLDEN);
    let during = load.mark();
    let started = Instant::now();
    let run = k.world.slipway(&["deploy"]).failed();
    let took = started.elapsed();
    let after = load.mark();
    let status = k.world.settled();
    load.wait_for_more(300);
    let tally = load.finish();

    // Rolled back by the analysis, which the reason and deploy's output name.
    assert_eq!(status["stable"]["version"], 1, "{status}");
    let reason = status["last_failure"].as_str().unwrap_or_default();
    assert!(
        reason.contains("golden") && reason.contains("error"),
        "the reason names the analysis and its check: {reason:?}"
    );
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(output.contains("golden"), "{run}");
    assert_eq!(support::release(&k.world.history(), 2)["status"], "failed");
    // The canary served users before its rollback; only the stable release after it.
    let answers = tally.versions(during..after);
    assert!(
        answers.get("v2").is_some_and(|&n| n > 0),
        "the canary served: {answers:?}"
    );
    assert_eq!(
        tally.versions(after..).keys().collect::<Vec<_>>(),
        ["v1"],
        "only v1 after the rollback: {}",
        tally.summary()
    );
    // Every failed request was one the app injected: none from the rollout or the rollback.
    let errors = only_injected_errors(&tally);
    eprintln!(
        "bad canary on pods: rolled back {took:?} after deploy; {}; injected errors by version \
         {errors:?}; answers during the canary {answers:?}",
        tally.summary()
    );
    // The stable release alone: v2's instances, pods and ReplicaSet gone.
    k.world.only_instances_of(1);
    wait_until(
        Duration::from_secs(90),
        "v2's ReplicaSet and pods gone",
        || k.replica_sets_of(2).is_empty() && k.pods_of(2).is_empty(),
    );
    assert_eq!(k.pods_of(1).len(), 2);
}

#[test]
fn pods_evicted_mid_rollout_are_replaced_and_the_canary_finishes_without_a_failed_request() {
    let Some(k) = Kubed::new("evict") else {
        return;
    };
    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    let canary = "strategy = \"canary\"\nprogress_deadline = \"5m\"\nsteps = [{ weight = 50 }, { pause = {} }]";
    k.write(&v1, canary, "");
    k.world.slipway(&["deploy"]).ok();
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    k.write(&v2, canary, "");
    k.world.slipway(&["deploy", "--detach"]).ok();
    support::wait_for(
        Duration::from_secs(90),
        "the canary at 50 %, paused",
        || {
            let c = k.world.status()["rollout"]["canary"].clone();
            (c["effective_weight"] == 50 && c["step"] == 2).then_some(())
        },
    );
    // One pod of each side evicted through the Eviction API, as a node drain does.
    let (old, new) = (k.pods_of(1)[0].clone(), k.pods_of(2)[0].clone());
    let counts = (k.pods_of(1).len(), k.pods_of(2).len());
    for pod in [&old, &new] {
        let eviction = serde_json::json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod, "namespace": k.namespace},
        });
        let file = k.world.root().join(format!("evict-{pod}.json"));
        std::fs::write(&file, eviction.to_string()).unwrap();
        k.kubectl(&[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/{}/pods/{pod}/eviction", k.namespace),
            "-f",
            file.to_str().unwrap(),
        ]);
    }
    // Each side is back to as many ready instances as before, on the replacements.
    support::wait_for(Duration::from_secs(90), "both sides whole again", || {
        let status = k.world.status();
        let list = status["instances"].as_array()?.clone();
        let ready_on = |v: u64| {
            list.iter()
                .filter(|i| i["release"] == v && i["state"] == "ready")
                .filter(|i| i["pod"] != old.as_str() && i["pod"] != new.as_str())
                .count()
        };
        (ready_on(1) == counts.0 && ready_on(2) == counts.1).then_some(())
    });
    load.mark();
    load.wait_for_more(200);
    k.world.slipway(&["promote"]).ok();
    let status = k.world.settled();
    assert_eq!(status["stable"]["version"], 2, "{status}");
    load.mark();
    load.wait_for_more(200);
    let tally = load.finish();
    tally.assert_no_failures();
}

#[test]
fn a_crash_looping_release_fails_fast_while_the_old_one_serves() {
    let Some(k) = Kubed::new("crash") else {
        return;
    };
    let v1 = k.image("v1", "v1");
    let slow = "strategy = \"blue-green\"\nprogress_deadline = \"10m\"\nscale_down_delay = \"1s\"";
    k.write(&v1, slow, "");
    k.world.slipway(&["deploy"]).ok();
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    // The same image, with a knob that does not parse: it exits at once, every time.
    k.write(&v1, slow, "DEMO_CRASH_AFTER = \"soon\"");
    let started = Instant::now();
    let run = k.world.slipway(&["deploy"]).failed();
    let took = started.elapsed();
    eprintln!("the crash-looping deploy failed after {took:?}");
    load.mark();
    load.wait_for_more(200);
    let tally = load.finish();
    tally.assert_no_failures();
    assert_eq!(tally.versions(..).keys().collect::<Vec<_>>(), ["v1"]);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains("crash-looping"), "{run}");
    assert!(text.contains("exited with status 1"), "{run}");
    // Long before the 10 minute deadline: the kubelet's back-off (10 s, 20 s) sets the pace.
    assert!(took < Duration::from_secs(120), "{took:?}");
    let status = k.world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    // Each run's output is in the log, with slipway's notes on the exits.
    let logs = k.world.slipway(&["logs", "--release", "v2"]).ok();
    assert!(logs.stdout.contains("DEMO_CRASH_AFTER"), "{logs}");
    assert!(logs.stdout.contains("crash-loop"), "{logs}");
    wait_until(Duration::from_secs(90), "v2's pods gone", || {
        k.pods_of(2).is_empty()
    });
    assert_eq!(k.pods_of(1).len(), 2);
}

#[test]
fn a_deleted_pod_is_replaced_and_scaling_down_removes_exactly_the_drained_pods() {
    let Some(mut k) = Kubed::new("scale") else {
        return;
    };
    let v1 = k.image("v1", "v1");
    k.write_replicas(&v1, BLUE_GREEN, "", 4);
    k.world.slipway(&["deploy"]).ok();
    let before = k.instance_pods();
    assert_eq!(before.len(), 4, "{before:?}");
    // The oldest instance is the one slipway keeps when it scales down. Its pod is deleted (as an
    // eviction would): it is rebound to the ReplicaSet's replacement, now the newest pod — the one
    // the ReplicaSet would remove first on its own.
    let (oldest, evicted) = before.iter().min().unwrap().clone();
    k.kubectl(&["delete", "pod", &evicted, "--wait=false"]);
    let replacement = support::wait_for(Duration::from_secs(90), "the replacement pod", || {
        let status = k.world.status();
        let list = status["instances"].as_array().unwrap().clone();
        let all_ready = list.len() == 4 && list.iter().all(|i| i["state"] == "ready");
        list.iter()
            .find(|i| i["id"] == oldest.as_str())
            .and_then(|i| i["pod"].as_str())
            .filter(|pod| *pod != evicted && all_ready)
            .map(str::to_owned)
    });
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(100);
    // v2 takes the 4 running instances over and retires 3: one ReplicaSet goes from 4 pods to 1.
    k.world.slipway(&["scale", "web=1"]).ok();
    wait_until(Duration::from_secs(90), "one instance on one pod", || {
        k.instance_pods().len() == 1 && k.pods_of(1).len() == 1
    });
    load.mark();
    load.wait_for_more(100);
    load.finish().assert_no_failures();
    let after = k.instance_pods();
    assert_eq!(
        after,
        vec![(oldest, replacement.clone())],
        "the kept instance keeps its pod"
    );
    assert_eq!(
        k.pods_of(1),
        vec![replacement.clone()],
        "only its pod is left"
    );

    // v2 (the scale) runs on v1's ReplicaSet: a restarted daemon adopts that pod as v2's.
    k.world.daemon.kill9();
    k.world.daemon.restart();
    assert_eq!(k.world.answer(), "v1");
    let status = k.world.status();
    assert_eq!(status["instances"][0]["release"], 2, "{status}");
    assert_eq!(
        status["instances"][0]["pod"],
        replacement.as_str(),
        "{status}"
    );
    assert_eq!(k.pods_of(1), vec![replacement]);
}

#[test]
fn a_daemon_killed_and_restarted_adopts_its_pods_and_removes_the_rest() {
    let Some(mut k) = Kubed::new("adopt") else {
        return;
    };
    let v1 = k.shell_image("v1", "v1");
    k.write(&v1, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    let pods = k.pods_of(1);
    assert_eq!(pods.len(), 2);
    // A ReplicaSet of this daemon that no release wants (v9 of another app): removed at start.
    k.plant_stray(1, &k.namespace);
    // And a finished release-phase pod the killed daemon had no time to delete.
    k.plant_finished_job(1);

    k.world.daemon.kill9();
    k.world.daemon.restart();
    // Routed in the first table: the pods were ready, nothing restarted.
    assert_eq!(k.world.answer(), "v1");
    let status = k.world.status();
    let adopted: Vec<String> = k.instance_pods().into_iter().map(|(_, p)| p).collect();
    let mut sorted = adopted.clone();
    sorted.sort();
    let mut before = pods.clone();
    before.sort();
    assert_eq!(sorted, before, "{status}");
    assert_eq!(k.pods_of(1), pods);
    wait_until(
        Duration::from_secs(60),
        "the stray ReplicaSet removed",
        || {
            !k.kubectl(&["get", "replicasets", "-o", "name"])
                .contains("gone-v9-web")
        },
    );
    wait_until(
        Duration::from_secs(60),
        "the finished job pod removed",
        || {
            !k.kubectl(&["get", "pods", "-o", "name"])
                .contains("job-left")
        },
    );
    // And the adopted instances are retired like any other.
    let v2 = k.image("v2", "v2");
    k.write(&v2, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    wait_until(Duration::from_secs(90), "v1's pods gone", || {
        k.pods_of(1).is_empty() && k.replica_sets_of(1).is_empty()
    });
}

/// `[kubernetes] namespace`: the app's pods, ConfigMap and Secret live in its own namespace, where
/// the daemon (in another) has only the Role of `kube rbac --app-namespace`; a blue-green there
/// fails no request, a restarted daemon adopts the pods there, and v1's objects go from there. The
/// app moves back to the daemon's namespace in a blue-green without a failure, and a ReplicaSet left
/// in the namespace it left is found and removed by a restarted daemon.
#[test]
fn an_app_in_a_namespace_of_its_own_deploys_there_with_rights_only_there_and_is_adopted() {
    let Some(cluster) = cluster() else {
        return;
    };
    let apps = format!("e2e-{}-appns-apps", std::process::id());
    let _apps_cleanup = Cleanup::of(&cluster, &apps);
    run(Command::new(&cluster.kubectl)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["create", "namespace", &apps]));
    let Some(mut k) = Kubed::new_as("appns", Some(&["--app-namespace", &apps])) else {
        return;
    };
    let names_in = |namespace: &str, kind: &str, release: u64| -> Vec<String> {
        let out = k.cluster.kubectl(
            namespace,
            &[
                "get",
                kind,
                "-l",
                &format!("slipway.dev/release={release}"),
                "-o",
                "name",
            ],
        );
        out.lines().map(str::to_owned).collect()
    };
    let v1 = k.image("v1", "v1");
    let table = format!("namespace = \"{apps}\"");
    k.write_kubernetes(&v1, BLUE_GREEN, "LOG_LEVEL = \"debug\"", 2, &table);
    let run1 = k.world.slipway(&["deploy"]).ok();
    assert!(run1.stdout.contains("v1 is live"), "{run1}");
    assert_eq!(k.world.answer(), "v1");
    let pods = names_in(&apps, "pods", 1);
    assert_eq!(pods.len(), 2, "{pods:?}");
    for kind in ["replicasets", "configmaps", "secrets"] {
        assert_eq!(names_in(&apps, kind, 1).len(), 1, "{kind} in {apps}");
        assert!(
            names_in(&k.namespace, kind, 1).is_empty(),
            "{kind} in {}",
            k.namespace
        );
    }
    assert!(names_in(&k.namespace, "pods", 1).is_empty());

    // A restarted daemon finds and adopts them there: routed at once, nothing restarted.
    k.world.daemon.kill9();
    k.world.daemon.restart();
    assert_eq!(k.world.answer(), "v1");
    let mut adopted: Vec<String> = k
        .instance_pods()
        .into_iter()
        .map(|(_, p)| format!("pod/{p}"))
        .collect();
    adopted.sort();
    let mut before = pods.clone();
    before.sort();
    assert_eq!(adopted, before);

    let v2 = k.image("v2", "v2");
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    k.write_kubernetes(&v2, BLUE_GREEN, "", 2, &table);
    k.world.slipway(&["deploy"]).ok();
    load.mark();
    load.wait_for_more(300);
    load.finish().assert_switched("v1", "v2");
    assert_eq!(names_in(&apps, "pods", 2).len(), 2);
    // v1's ReplicaSet, pods, ConfigMap and Secret go, with the rights in that namespace alone.
    wait_until(Duration::from_secs(90), "v1's objects gone", || {
        ["replicasets", "pods", "configmaps", "secrets"]
            .iter()
            .all(|kind| names_in(&apps, kind, 1).is_empty())
    });
    let logs = k.world.slipway(&["logs", "--release", "v2"]).ok();
    assert!(logs.stdout.contains("demo v2 listening"), "{logs}");

    // Back to the daemon's namespace in one blue-green (slipway's proxy routes it): no failure.
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(200);
    k.write_kubernetes(&v1, BLUE_GREEN, "", 2, "");
    k.world.slipway(&["deploy"]).ok();
    load.mark();
    load.wait_for_more(300);
    load.finish().assert_switched("v2", "v1");
    assert_eq!(names_in(&k.namespace, "pods", 3).len(), 2);
    wait_until(Duration::from_secs(90), "v2's objects gone", || {
        ["replicasets", "pods"]
            .iter()
            .all(|kind| names_in(&apps, kind, 2).is_empty())
    });
    // A ReplicaSet of this daemon left in the namespace no running release names any more: a
    // restarted daemon still looks there (a recorded release names it) and removes it.
    k.plant_stray(3, &apps);
    k.world.daemon.kill9();
    k.world.daemon.restart();
    assert_eq!(k.world.answer(), "v1");
    wait_until(
        Duration::from_secs(60),
        "the stray ReplicaSet removed",
        || {
            !k.cluster
                .kubectl(&apps, &["get", "replicasets", "-o", "name"])
                .contains("gone-v9-web")
        },
    );
    let log = k.world.daemon.log_text();
    assert!(!log.contains("forbidden"), "{log}");
}

#[test]
fn the_least_rbac_is_enough_for_a_blue_green_and_no_more() {
    let Some(k) = Kubed::new_as("rbac", Some(&[])) else {
        return;
    };
    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    k.write(&v1, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(100);
    k.write(&v2, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    load.mark();
    load.wait_for_more(100);
    load.finish().assert_switched("v1", "v2");
    // Its logs were readable, and v1's ReplicaSet and Secret deletable, with that Role alone.
    let logs = k.world.slipway(&["logs", "--release", "v2"]).ok();
    assert!(logs.stdout.contains("demo v2 listening"), "{logs}");
    wait_until(Duration::from_secs(90), "v1's objects gone", || {
        k.replica_sets_of(1).is_empty()
            && k.kubectl(&["get", "secrets", "-o", "name"]).lines().count() == 1
    });
    assert!(!k.world.daemon.log_text().contains("forbidden"));
    // No more: nothing outside the namespace, nothing it does not call.
    let me = format!("system:serviceaccount:{}:slipway", k.namespace);
    let can = |namespace: &str, verb: &str, resource: &str| {
        Command::new(&k.cluster.kubectl)
            .arg("--kubeconfig")
            .arg(&k.cluster.kubeconfig)
            .args([
                "auth", "can-i", verb, resource, "-n", namespace, "--as", &me,
            ])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(can(&k.namespace, "patch", "replicasets.apps"));
    assert!(!can(&k.namespace, "create", "deployments.apps"));
    assert!(
        !can(&k.namespace, "get", "secrets"),
        "it never reads a secret back"
    );
    assert!(!can(&k.namespace, "update", "pods"));
    assert!(!can("default", "list", "pods"));
}

#[test]
fn an_upgrade_under_load_keeps_the_pods_and_fails_no_request() {
    let Some(mut k) = Kubed::new("upgrade") else {
        return;
    };
    let v1 = k.image("v1", "v1");
    k.write(&v1, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    let pods = k.pods_of(1);
    k.upgrade_under_load();
    // The same pods, now the new daemon's instances.
    assert_eq!(k.pods_of(1), pods);
    let mut adopted: Vec<String> = k.instance_pods().into_iter().map(|(_, p)| p).collect();
    adopted.sort();
    let mut before = pods.clone();
    before.sort();
    assert_eq!(adopted, before);
    // And it deploys like any daemon.
    let v2 = k.image("v2", "v2");
    k.write(&v2, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    assert_eq!(k.world.answer(), "v2");
}

#[test]
fn the_release_phase_and_cron_runs_are_pods_of_the_release_s_image() {
    // As the account of `slipway kube rbac`, and nothing more.
    let Some(k) = Kubed::new_as("jobs", Some(&[])) else {
        return;
    };
    let v1 = k.shell_image("v1", "v1");
    // Only the image has /slipway-demo-app; the secret is a file there, as for the app's pods.
    let jobs = support::one_offs_in_the_image();
    k.write_full(&v1, BLUE_GREEN, "", 2, "", &jobs);
    let run = k.world.slipway(&["deploy"]).ok();
    assert!(run.stdout.contains("succeeded"), "{run}");
    assert_eq!(k.world.answer(), "v1");
    let logs = k.world.slipway(&["logs", "--process", "release"]).ok();
    assert!(
        logs.stdout
            .contains("migrating release of v1 in shop-v1-release-"),
        "{logs}"
    );
    assert!(
        logs.stdout
            .contains(&format!("with a token of {} characters", TOKEN.len())),
        "{logs}"
    );
    assert!(!logs.stdout.contains(TOKEN), "{logs}");

    // A deploy whose release phase is `cmd` fails, saying `why`, and v1 serves on.
    let phase_fails = |image: &str, cmd: &str, why: &[&str]| {
        let release = format!("[release]\ncmd = \"{cmd}\"\n");
        k.write_full(image, BLUE_GREEN, "", 2, "", &release);
        let failed = k.world.slipway(&["deploy"]).failed();
        let text = format!("{}{}", failed.stdout, failed.stderr);
        for part in why {
            assert!(text.contains(part), "{failed}");
        }
        assert_eq!(k.world.answer(), "v1");
    };
    // With its output.
    phase_fails(
        &v1,
        "echo the schema is broken; exit 3",
        &["exited with status 3", "the schema is broken"],
    );
    // An image without a shell: the phase cannot start, and the error says why and what to do.
    let plain = k.image("plain", "v3");
    phase_fails(&plain, "echo never", &["has no /bin/sh"]);
    assert!(k.pods_of(3).is_empty());

    // A cron run needs no artifact on the controller (a standby that took over has none): it runs
    // in the stable release's image.
    let artifacts = k.world.daemon.state.join("artifacts");
    for part in ["manifests", "trees"] {
        let dir = artifacts.join(part);
        if dir.is_dir() {
            std::fs::remove_dir_all(&dir).unwrap();
            std::fs::create_dir_all(&dir).unwrap();
        }
    }
    let tick = k.world.slipway(&["cron", "run", "tick"]).ok();
    assert!(tick.stdout.contains("tick 1 of v1"), "{tick}");

    // Each run's pod, ConfigMap and Secret are gone once it ended.
    wait_until(Duration::from_secs(60), "the runs' objects gone", || {
        k.kubectl(&[
            "get",
            "pods,configmaps,secrets",
            "-l",
            "slipway.dev/job",
            "-o",
            "name",
        ])
        .trim()
        .is_empty()
    });
    assert!(!k.world.daemon.log_text().contains("forbidden"));
}

#[test]
fn a_command_process_is_refused_with_the_fix() {
    let Some(k) = Kubed::new("cmd") else {
        return;
    };
    k.world.write_raw(
        "app = \"shop\"\n[processes.web]\ncmd = \"slipway-demo-app\"\n[deploy]\nprogress_deadline = \"30s\"\n",
    );
    let run = k.world.slipway(&["deploy"]).failed();
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains("every process runs an image"), "{run}");
    assert!(text.contains("image = "), "{run}");
    // Refused before anything was recorded.
    assert!(k.world.history().is_empty());
}

#[test]
fn kube_install_s_manifests_pass_the_api_server_s_schemas_and_grant_the_least_rbac() {
    let Some(cluster) = cluster() else {
        return;
    };
    let namespace = format!("e2e-{}-install", std::process::id());
    let _cleanup = Cleanup::of(&cluster, &namespace);
    let dir = tempfile::tempdir().unwrap();
    let manifests = run(Command::new(support::bin()).args([
        "kube",
        "install",
        "--namespace",
        &namespace,
        "--image",
        "registry.example/slipway:e2e",
    ]));
    let file = dir.path().join("install.yaml");
    std::fs::write(&file, &manifests).unwrap();
    let file = file.to_str().unwrap();
    // A server-side dry run checks every object against the API server's own schemas (unknown or
    // duplicate fields refused: --validate=strict), admission included. Namespaced objects need
    // their namespace to exist for that, so it is made first.
    run(Command::new(&cluster.kubectl)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["create", "namespace", &namespace]));
    let dry = cluster.kubectl(
        &namespace,
        &["apply", "--dry-run=server", "--validate=strict", "-f", file],
    );
    for object in [
        format!("namespace/{namespace}"),
        "serviceaccount/slipway".to_owned(),
        "role.rbac.authorization.k8s.io/slipway".to_owned(),
        "rolebinding.rbac.authorization.k8s.io/slipway".to_owned(),
        "deployment.apps/slipway".to_owned(),
        "poddisruptionbudget.policy/slipway".to_owned(),
        "service/slipway-proxy".to_owned(),
        "service/slipway-api".to_owned(),
    ] {
        assert!(
            dry.lines()
                .any(|l| l.starts_with(&object) && l.ends_with("(server dry run)")),
            "{object} not in:\n{dry}"
        );
    }
    assert_eq!(dry.lines().count(), 8, "{dry}");
    // A dry run: nothing was made.
    assert_eq!(
        cluster
            .kubectl(
                &namespace,
                &["get", "deployments,serviceaccounts", "-o", "name"]
            )
            .lines()
            .filter(|l| l.contains("slipway"))
            .count(),
        0
    );

    // Applied, as the server stores it: two controllers by a Lease, a new one up before an old one
    // goes, serve --kubernetes as its account.
    cluster.kubectl(&namespace, &["apply", "-f", file]);
    let deployment: serde_json::Value = serde_json::from_str(
        &cluster.kubectl(&namespace, &["get", "deployment", "slipway", "-o", "json"]),
    )
    .unwrap();
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "slipway");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args[..4],
        ["serve", "--kubernetes", "--namespace", namespace.as_str()]
    );
    assert_eq!(args[args.len() - 2..], ["--lease", "slipway"]);
    // Both Services select the controllers' pods, and of them the leader's only.
    let mut leader = spec["template"]["metadata"]["labels"].clone();
    leader["slipway.dev/role"] = "leader".into();
    for service in ["slipway-api", "slipway-proxy"] {
        let s: serde_json::Value = serde_json::from_str(
            &cluster.kubectl(&namespace, &["get", "service", service, "-o", "json"]),
        )
        .unwrap();
        assert_eq!(s["spec"]["selector"], leader, "{s}");
    }

    // The account can do what the daemon calls, in its namespace, and nothing else.
    let me = format!("system:serviceaccount:{namespace}:slipway");
    // `pods/log` is the subresource (`can-i` would read `pods/NAME`).
    let can = |namespace: &str, verb: &str, resource: &str| {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Command::new(&cluster.kubectl)
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args([
                "auth", "can-i", verb, resource, "-n", namespace, "--as", &me,
            ])
            .args((!sub.is_empty()).then(|| format!("--subresource={sub}")))
            .output()
            .unwrap()
            .status
            .success()
    };
    for (verb, resource) in [
        ("watch", "pods"),
        ("patch", "pods"),
        // A release phase or a cron run: a pod of its own, deleted when it ended.
        ("create", "pods"),
        ("delete", "pods"),
        ("get", "pods/log"),
        ("create", "replicasets.apps"),
        ("patch", "replicasets.apps"),
        ("delete", "replicasets.apps"),
        ("create", "secrets"),
        ("delete", "secrets"),
        ("create", "configmaps"),
        ("delete", "configmaps"),
        // The Lease: made when missing (a create cannot be limited to a name).
        ("create", "leases.coordination.k8s.io"),
    ] {
        assert!(can(&namespace, verb, resource), "cannot {verb} {resource}");
    }
    for (verb, resource) in [
        ("get", "secrets"),
        ("update", "pods"),
        ("create", "deployments.apps"),
        ("patch", "deployments.apps"),
        ("update", "leases.coordination.k8s.io"),
        ("patch", "httproutes.gateway.networking.k8s.io"),
        ("patch", "services"),
        ("create", "rolebindings.rbac.authorization.k8s.io"),
    ] {
        assert!(!can(&namespace, verb, resource), "can {verb} {resource}");
    }
    assert!(!can("default", "list", "pods"));
    assert!(!can("kube-system", "get", "pods/log"));
}

/// slipway's own image around the test's binary (built with `kubernetes`): the binary stripped,
/// with the shared libraries `ldd` lists at the same paths, on `scratch` as the repo's Dockerfile
/// (uid 10001, entrypoint slipway). No static build: the test binary is the one under test.
fn slipway_image(cluster: &Cluster, dir: &Path, label: &str) -> String {
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(bin.join("slipway"))
        .arg(support::bin())
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(support::bin(), bin.join("slipway")).unwrap();
    }
    let libs = run(Command::new("ldd").arg(support::bin()));
    for path in libs.split_whitespace().filter(|w| w.starts_with('/')) {
        let to = rootfs.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(path, &to).unwrap();
    }
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ci/image");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    for file in ["passwd", "group"] {
        std::fs::copy(image.join(file), rootfs.join("etc").join(file)).unwrap();
    }
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM scratch\nLABEL slipway.test={label}\nCOPY rootfs/ /\nUSER 10001:10001\n\
             WORKDIR /var/lib/slipway\nENTRYPOINT [\"/usr/local/bin/slipway\"]\n"
        ),
    )
    .unwrap();
    build_and_import(cluster, dir, &format!("{label}:slipway"))
}

/// Forwards every connection to `listen` (an address pods reach) to `to`: a TCP address, or a unix
/// socket path. Threads of this test process, gone with it.
fn forward(listen: &str, to: String) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    fn pipe(mut from: impl Read, mut to: impl Write) {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    }
    let listener = std::net::TcpListener::bind(listen).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let back = client.try_clone().unwrap();
            if to.starts_with('/') {
                let Ok(up) = std::os::unix::net::UnixStream::connect(&to) else {
                    continue;
                };
                let up2 = up.try_clone().unwrap();
                std::thread::spawn(move || pipe(client, up));
                std::thread::spawn(move || pipe(up2, back));
            } else {
                let Ok(up) = std::net::TcpStream::connect(&to) else {
                    continue;
                };
                let up2 = up.try_clone().unwrap();
                std::thread::spawn(move || {
                    pipe(client, &up);
                    let _ = up.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    pipe(up2, &back);
                    let _ = back.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    addr
}

#[test]
fn slipway_installed_in_the_cluster_deploys_a_blue_green_through_its_own_proxy() {
    let Some(cluster) = cluster() else {
        return;
    };
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name}: set by `ci/kube.sh start`"))
    };
    let namespace = format!("e2e-{}-incluster", std::process::id());
    let _cleanup = Cleanup::of(&cluster, &namespace);
    let dir = tempfile::tempdir().unwrap();
    let image = slipway_image(&cluster, &dir.path().join("slipway-image"), &namespace);

    // What only this test cluster needs. Its API server listens on loopback and no kube-proxy
    // routes `kubernetes.default`: the pod reaches it through a forwarder on the node's bridge
    // address, under the name `kubernetes` (in the API server's certificate). No Docker engine:
    // the app's images are in the registry, named by digest (the pod cannot reach the registry on
    // the host's loopback to ask for a tag's; the node pulls from there).
    let subnet = var("SLIPWAY_KUBE_POD_SUBNET");
    let base = subnet.split('/').next().unwrap();
    let gateway = format!("{}.1", &base[..base.rfind('.').unwrap()]);
    let apiserver = var("SLIPWAY_KUBE_APISERVER");
    let api_forward = forward(
        &format!("{gateway}:0"),
        apiserver
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned(),
    );
    // The app folder is on this host only: `slipway deploy` sends it to the controller's pod.
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();

    let manifests = run(Command::new(support::bin()).args([
        "kube",
        "install",
        "--namespace",
        &namespace,
        "--image",
        &image,
    ]));
    let extra = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: slipway-api-token\n  namespace: {namespace}\n\
         stringData:\n  token: {TOKEN}\n"
    );
    let file = dir.path().join("install.yaml");
    // `run` trims the output: the last document needs its line end before the separator.
    std::fs::write(&file, format!("{manifests}\n---\n{extra}")).unwrap();
    let patch = serde_json::json!({"spec": {"template": {"spec": {
        "hostAliases": [{"ip": gateway, "hostnames": ["kubernetes"]}],
        "containers": [{
            "name": "slipway",
            "env": [
                {"name": "KUBERNETES_SERVICE_HOST", "value": "kubernetes"},
                {"name": "KUBERNETES_SERVICE_PORT", "value": api_forward.port().to_string()},
            ],
        }],
    }}}});
    cluster.kubectl(&namespace, &["apply", "-f", file.to_str().unwrap()]);
    cluster.kubectl(
        &namespace,
        &[
            "patch",
            "deployment",
            "slipway",
            "--type=strategic",
            "-p",
            &patch.to_string(),
        ],
    );
    cluster.kubectl(
        &namespace,
        &["rollout", "status", "deployment/slipway", "--timeout=180s"],
    );
    // Two controllers: one labels its pod the leader's, the other stands by.
    let (leader, standby) = roles(&cluster, &namespace, None);
    let api: std::net::SocketAddr = format!("{}:7070", leader.ip).parse().unwrap();
    let proxy: std::net::SocketAddr = format!("{}:8080", leader.ip).parse().unwrap();
    // The token is the Secret's.
    let bearer = format!("Bearer {TOKEN}");
    let health = support::http::get(api, "/v1/health", &[("authorization", &bearer)]).unwrap();
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(
        support::http::get(api, "/v1/health", &[]).unwrap().status,
        401
    );
    let standby_api: std::net::SocketAddr = format!("{}:7070", standby.ip).parse().unwrap();
    let answer = support::http::get(standby_api, "/v1/health", &[]).unwrap();
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        answer.body.contains(&format!("{}-", leader.name)),
        "the standby names the leader's pod: {answer:?}"
    );
    // The Services' endpoints are the leader's pod only, though both pods are Ready.
    for service in ["slipway-api", "slipway-proxy"] {
        endpoints_become(&cluster, &namespace, service, &leader.ip);
    }

    let slipway = |api: std::net::SocketAddr, args: &[&str]| {
        let mut cmd = Command::new(support::bin());
        cmd.args(args)
            .current_dir(&app)
            .env("SLIPWAY_SERVER", format!("http://{api}"))
            .env("SLIPWAY_TOKEN", TOKEN)
            .env_remove("SLIPWAY_APP")
            .env("SLIPWAY_LOG", "warn");
        support::run_command(cmd, Duration::from_secs(180))
    };
    let config = |image: &str| {
        std::fs::write(
            app.join("slipway.toml"),
            format!(
                "app = \"shop\"\n\n[processes.web]\nimage = \"{image}\"\nreplicas = 2\n\
                 readiness = {{ http = \"/ready\", period = \"1s\" }}\n\n[deploy]\n{BLUE_GREEN}\n\n\
                 [kubernetes]\nrequests = {{ memory = \"16m\", cpus = \"0.05\" }}\n"
            ),
        )
        .unwrap();
    };
    let (_, v1) = pushed_demo_image(&cluster, dir.path(), &namespace, "v1", "v1");
    let (_, v2) = pushed_demo_image(&cluster, dir.path(), &namespace, "v2", "v2");
    config(&v1);
    let run1 = slipway(api, &["deploy"]).ok();
    assert!(
        run1.stdout.contains("sent the app folder: 1 file,"),
        "{run1}"
    );
    assert!(run1.stdout.contains("v1 is live"), "{run1}");
    let load = Load::start(proxy, CLIENTS, "/");
    load.wait_for_more(200);
    config(&v2);
    slipway(api, &["deploy"]).ok();
    load.mark();
    load.wait_for_more(300);
    load.finish().assert_switched("v1", "v2");
    // Its pods, made by slipway in the pod with the installed Role alone.
    let app_pods = || {
        cluster.kubectl(
            &namespace,
            &["get", "pods", "-l", "slipway.dev/release=2", "-o", "name"],
        )
    };
    let pods = app_pods();
    assert_eq!(pods.lines().count(), 2, "{pods}");
    let log = cluster.kubectl(&namespace, &["logs", &format!("pod/{}", leader.name)]);
    assert!(!log.contains("forbidden"), "{log}");

    // The leader's pod deleted (a node drain, a new image): it hands over on SIGTERM, the standby
    // leads from the copied state, labels its pod and the Services follow; the apps' pods are the
    // same ones, serving v2 through the new leader's proxy.
    let deleted = Instant::now();
    cluster.kubectl(&namespace, &["delete", "pod", &leader.name, "--wait=false"]);
    // The standby, or the pod the ReplicaSet made in the deleted one's place: whichever took the
    // released Lease first.
    let (new_leader, _) = roles(&cluster, &namespace, Some(&leader.name));
    assert_ne!(new_leader.name, leader.name);
    let labelled = deleted.elapsed();
    for service in ["slipway-api", "slipway-proxy"] {
        endpoints_become(&cluster, &namespace, service, &new_leader.ip);
    }
    eprintln!(
        "handover: another pod labelled the leader's {:.1} s and the Services' endpoints on it {:.1} s \
         after the leader's pod was deleted",
        labelled.as_secs_f64(),
        deleted.elapsed().as_secs_f64()
    );
    assert_eq!(
        app_pods(),
        pods,
        "the apps' pods are the ones the old leader ran"
    );
    let api: std::net::SocketAddr = format!("{}:7070", new_leader.ip).parse().unwrap();
    let proxy: std::net::SocketAddr = format!("{}:8080", new_leader.ip).parse().unwrap();
    let status = slipway(api, &["status", "--json"]).ok();
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["stable"]["version"], 2, "{status}");
    let answer = support::wait_for(
        Duration::from_secs(60),
        "the new leader's proxy serving v2",
        || {
            support::http::get(proxy, "/", &[])
                .ok()
                .filter(|a| a.status == 200)
        },
    );
    assert!(answer.body.contains("v2"), "{answer:?}");
}

/// A controller's pod: its name and IP.
#[derive(Debug)]
struct ControllerPod {
    name: String,
    ip: String,
}

/// Waits until, of the controllers' running pods (not `gone`), one is Ready and labelled the
/// leader's and another Ready and labelled standby; returns (leader, standby).
fn roles(cluster: &Cluster, namespace: &str, gone: Option<&str>) -> (ControllerPod, ControllerPod) {
    support::wait_for(
        Duration::from_secs(120),
        "one leader pod and one standby pod",
        || {
            let pods: serde_json::Value = serde_json::from_str(&cluster.kubectl(
                namespace,
                &[
                    "get",
                    "pods",
                    "-l",
                    "app.kubernetes.io/name=slipway",
                    "-o",
                    "json",
                ],
            ))
            .unwrap();
            let mut leaders = Vec::new();
            let mut standbys = Vec::new();
            for p in pods["items"].as_array()? {
                let name = p["metadata"]["name"].as_str()?;
                let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                if !p["metadata"]["deletionTimestamp"].is_null() || !ready || Some(name) == gone {
                    continue;
                }
                let pod = ControllerPod {
                    name: name.to_owned(),
                    ip: p["status"]["podIP"].as_str()?.to_owned(),
                };
                match p["metadata"]["labels"]["slipway.dev/role"].as_str() {
                    Some("leader") => leaders.push(pod),
                    Some("standby") => standbys.push(pod),
                    _ => {}
                }
            }
            (leaders.len() == 1 && standbys.len() == 1)
                .then(|| (leaders.remove(0), standbys.remove(0)))
        },
    )
}

/// Waits until the Service's ready endpoints are exactly `ip`.
fn endpoints_become(cluster: &Cluster, namespace: &str, service: &str, ip: &str) {
    support::wait_until(
        Duration::from_secs(60),
        &format!("{service}'s endpoints: {ip} only"),
        || {
            let slices: serde_json::Value = serde_json::from_str(&cluster.kubectl(
                namespace,
                &[
                    "get",
                    "endpointslices",
                    "-l",
                    &format!("kubernetes.io/service-name={service}"),
                    "-o",
                    "json",
                ],
            ))
            .unwrap();
            let ready: Vec<&str> = slices["items"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["endpoints"].as_array().into_iter().flatten())
                .filter(|e| e["conditions"]["ready"] != false)
                .flat_map(|e| e["addresses"].as_array().into_iter().flatten())
                .filter_map(|a| a.as_str())
                .collect();
            ready == [ip]
        },
    );
}

/// Another team's Gateway and HTTPRoute on it (two rules), which slipway must leave alone.
const PLATFORM_ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
spec:
  gatewayClassName: platform
  listeners:
    - name: http
      protocol: HTTP
      port: 80
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: shop-site
spec:
  parentRefs:
    - name: edge
  hostnames: ["shop.example"]
  rules:
    - name: static
      matches: [{ path: { type: PathPrefix, value: /static } }]
      backendRefs: [{ name: cdn, port: 80 }]
    - name: legacy-api
      matches: [{ path: { type: PathPrefix, value: /api/v0 } }]
      backendRefs: [{ name: shop-legacy, port: 8080 }]
"#;

/// Each backend of the HTTPRoute's rules: (Service, weight).
fn backends(route: &serde_json::Value) -> Vec<(String, u64)> {
    route["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["backendRefs"].as_array().cloned().unwrap_or_default())
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["weight"].as_u64().unwrap_or(1),
            )
        })
        .collect()
}

/// Who wrote an object, as the API server records it: (manager, operation, top-level fields of
/// `spec` it owns).
fn managers(object: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let spec = m["fieldsV1"]["f:spec"]
                .as_object()
                .map(|f| f.keys().cloned().collect())
                .unwrap_or_default();
            (
                m["manager"].as_str().unwrap().to_owned(),
                m["operation"].as_str().unwrap().to_owned(),
                spec,
            )
        })
        .collect()
}

#[test]
fn a_gateway_app_s_weights_go_to_its_own_httproute_and_another_team_s_rules_are_left_untouched() {
    let Some(k) = Kubed::new_as("gateway", Some(&["--gateway"])) else {
        return;
    };
    k.apply_as("platform", PLATFORM_ROUTE);
    let theirs = k.json(&["get", "httproute", "shop-site"]);
    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    let canary = "strategy = \"canary\"\nprogress_deadline = \"90s\"\nsteps = [{ weight = 50 }, { pause = {} }]";
    let gateway = "gateway = \"edge\"\nservice = \"shop\"";
    k.write_kubernetes(&v1, canary, "", 2, gateway);
    k.world.slipway(&["deploy"]).ok();

    // slipway's own route, on the same Gateway: one rule, v1's Service, written by slipway alone.
    let route = wait_for(Duration::from_secs(30), "slipway's HTTPRoute on v1", || {
        let routes = k.json(&["get", "httproutes"]);
        routes["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metadata"]["name"] == "shop")
            .filter(|r| matches!(backends(r).as_slice(), [(_, 1)]))
            .cloned()
    });
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "edge", "{route}");
    let v1_service = backends(&route)[0].0.clone();
    assert_eq!(backends(&route), [(v1_service.clone(), 1)]);
    let service = k.json(&["get", "service", &v1_service]);
    assert_eq!(service["spec"]["selector"]["slipway.dev/release"], "1");
    let written = managers(&route);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(
        (written[0].0.as_str(), written[0].1.as_str()),
        ("slipway", "Apply")
    );
    assert!(written[0].2.contains(&"f:rules".to_owned()), "{written:?}");
    // Its Service selects v1's pods: the EndpointSlice controller lists their IPs.
    wait_until(Duration::from_secs(60), "v1's Service endpoints", || {
        k.endpoint_ips(&v1_service) == k.pod_ips(1)
    });
    // Someone else annotates slipway's route: a field of theirs, which slipway's applies keep.
    k.kubectl(&[
        "annotate",
        "httproute",
        "shop",
        "storefront.example/owner=web-team",
    ]);

    k.write_kubernetes(&v2, canary, "", 2, gateway);
    k.world.slipway(&["deploy", "--detach"]).ok();
    let split = wait_for(
        Duration::from_secs(90),
        "the canary's weights in the route",
        || {
            let b = backends(&k.json(&["get", "httproute", "shop"]));
            (b.len() == 2 && b[0].1 == 50 && b[1].1 == 50).then_some(b)
        },
    );
    assert_eq!(split[0].0, v1_service);
    let v2_service = split[1].0.clone();
    wait_until(Duration::from_secs(60), "v2's Service endpoints", || {
        !k.pod_ips(2).is_empty() && k.endpoint_ips(&v2_service) == k.pod_ips(2)
    });
    // While the traffic is split, the stable Service stays on v1.
    let stable = k.json(&["get", "service", "shop"]);
    assert_eq!(stable["spec"]["selector"]["slipway.dev/release"], "1");

    k.world.slipway(&["promote"]).ok();
    wait_until(Duration::from_secs(90), "v2 alone in the route", || {
        backends(&k.json(&["get", "httproute", "shop"])) == [(v2_service.clone(), 1)]
    });
    wait_until(Duration::from_secs(30), "the stable Service on v2", || {
        k.json(&["get", "service", "shop"])["spec"]["selector"]["slipway.dev/release"] == "2"
    });
    wait_until(Duration::from_secs(60), "v1's Service gone", || {
        !k.kubectl(&["get", "services", "-o", "name"])
            .contains(&v1_service)
    });
    // No gateway controller reports on the route here: v1's pods went after `traffic_lag` alone,
    // and an event says so.
    wait_until(Duration::from_secs(60), "the gateway_silent event", || {
        k.world.daemon.log_text().contains("gateway_silent")
    });
    let route = k.json(&["get", "httproute", "shop"]);
    assert_eq!(
        route["metadata"]["annotations"]["storefront.example/owner"], "web-team",
        "{route}"
    );
    assert!(
        managers(&route)
            .iter()
            .all(|(m, _, spec)| m == "slipway" || spec.is_empty()),
        "only slipway owns the route's spec: {:?}",
        managers(&route)
    );

    // Pointed at the other team's route, slipway's apply conflicts: never forced, the rollout fails.
    k.write_kubernetes(
        &v2,
        canary,
        "",
        2,
        "gateway = \"edge\"\nroute = \"shop-site\"\nservice = \"shop\"",
    );
    let run = k.world.slipway(&["deploy"]).failed();
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains("written by someone else"), "{run}");
    assert!(text.contains("route of its own"), "{run}");
    assert_eq!(k.world.settled()["stable"]["version"], 2);

    // The other team's route is exactly as they wrote it, and theirs alone.
    let now = k.json(&["get", "httproute", "shop-site"]);
    assert_eq!(
        now["metadata"]["resourceVersion"],
        theirs["metadata"]["resourceVersion"]
    );
    assert_eq!(now["spec"], theirs["spec"]);
    let written = managers(&now);
    assert!(
        written.iter().all(|(m, _, _)| m == "platform"),
        "{written:?}"
    );
    assert!(!k.world.daemon.log_text().contains("forbidden"));
    // `slipway kube rbac --gateway` was enough, and no more.
    let me = format!("system:serviceaccount:{}:slipway", k.namespace);
    let can = |verb: &str, resource: &str| {
        Command::new(&k.cluster.kubectl)
            .arg("--kubeconfig")
            .arg(&k.cluster.kubeconfig)
            .args([
                "auth",
                "can-i",
                verb,
                resource,
                "-n",
                &k.namespace,
                "--as",
                &me,
            ])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(can("patch", "httproutes.gateway.networking.k8s.io"));
    assert!(!can("delete", "httproutes.gateway.networking.k8s.io"));
    assert!(!can("patch", "gateways.gateway.networking.k8s.io"));
    assert!(!can("patch", "endpointslices.discovery.k8s.io"));
}

/// Writes the status a gateway controller writes on slipway's route: read up to `generation`.
fn gateway_reports(k: &Kubed, generation: i64) {
    let status = serde_json::json!({"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"},
        "controllerName": "platform.example/gateway",
        "conditions": [{
            "type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    }]}});
    k.kubectl(&[
        "patch",
        "httproute",
        "shop",
        "--subresource=status",
        "--type=merge",
        "--field-manager=platform-gateway",
        "-p",
        &status.to_string(),
    ]);
}

/// The gateway's Accepted condition is the only sign here that it has read a route (the test
/// cluster has no gateway controller, and none can be built from the Go proxy here: Traefik's
/// modules are not all served), so the test writes it as the gateway's controller would.
#[test]
fn a_release_leaving_a_gateway_s_route_keeps_its_pods_until_the_gateway_has_read_it() {
    let Some(k) = Kubed::new_as("unroute", Some(&["--gateway"])) else {
        return;
    };
    k.apply_as("platform", PLATFORM_ROUTE);
    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    let canary = "strategy = \"canary\"\nprogress_deadline = \"90s\"\nsteps = [{ weight = 50 }, { pause = {} }]";
    let gateway = "gateway = \"edge\"\ntraffic_lag = \"3s\"";
    k.write_kubernetes(&v1, canary, "", 1, gateway);
    k.world.slipway(&["deploy"]).ok();
    let generation = |k: &Kubed| {
        k.json(&["get", "httproute", "shop"])["metadata"]["generation"]
            .as_i64()
            .unwrap()
    };
    gateway_reports(&k, generation(&k));

    k.write_kubernetes(&v2, canary, "", 1, gateway);
    k.world.slipway(&["deploy", "--detach"]).ok();
    wait_until(Duration::from_secs(90), "the canary at 50 %", || {
        let b = backends(&k.json(&["get", "httproute", "shop"]));
        b.len() == 2 && b[0].1 == 50 && b[1].1 == 50
    });
    // The gateway reads the split; then aborting takes v2 out of the route, which the gateway has
    // not read yet: v2's pod stays.
    gateway_reports(&k, generation(&k));
    let v2_pods = k.pods_of(2);
    assert_eq!(v2_pods.len(), 1, "{v2_pods:?}");
    k.world.slipway(&["abort"]).ok();
    wait_until(
        Duration::from_secs(60),
        "no traffic to v2 in the route",
        || {
            let b = backends(&k.json(&["get", "httproute", "shop"]));
            b.iter()
                .all(|(service, weight)| service.contains("-v1-") || *weight == 0)
        },
    );
    let unread = generation(&k);
    // Longer than the retirement takes without the wait (the route's write, then at once the
    // pod's removal): the pod must stay throughout, its drain not even begun.
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            k.pods_of(2),
            v2_pods,
            "v2's pod went before the gateway read the route without it"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let reported = Instant::now();
    gateway_reports(&k, unread);
    wait_until(Duration::from_secs(60), "v2's pod gone", || {
        k.pods_of(2).is_empty()
    });
    // Not before `traffic_lag` after the gateway's report (a lower bound: load only adds to it).
    assert!(
        reported.elapsed() >= Duration::from_secs(3),
        "v2's pod went {:?} after the gateway read the route, before the 3 s traffic_lag",
        reported.elapsed()
    );
    let log = k.world.daemon.log_text();
    assert!(!log.contains("unroute_timeout"), "{log}");
    assert!(!log.contains("gateway_silent"), "{log}");
}

/// Another team's Service, its ports theirs; slipway is asked to switch its selector.
const PLATFORM_SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: shop
  labels:
    team: platform
spec:
  selector:
    app: shop-legacy
  ports:
    - name: web
      port: 80
      targetPort: 8080
"#;

#[test]
fn blue_green_switches_the_selector_of_another_team_s_service_and_nothing_else() {
    let Some(k) = Kubed::new("selector") else {
        return;
    };
    k.apply_as("platform", PLATFORM_SERVICE);
    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    k.write_kubernetes(&v1, BLUE_GREEN, "", 2, "service = \"shop\"");
    k.world.slipway(&["deploy"]).ok();
    wait_until(Duration::from_secs(60), "the Service on v1's pods", || {
        let ips = k.pod_ips(1);
        ips.len() == 2 && k.endpoint_ips("shop") == ips
    });
    k.write_kubernetes(&v2, BLUE_GREEN, "", 2, "service = \"shop\"");
    k.world.slipway(&["deploy"]).ok();
    let service = k.json(&["get", "service", "shop"]);
    assert_eq!(service["spec"]["selector"]["slipway.dev/release"], "2");
    wait_until(Duration::from_secs(60), "the Service on v2's pods", || {
        let ips = k.pod_ips(2);
        ips.len() == 2 && k.endpoint_ips("shop") == ips
    });
    // Their ports and labels are as they wrote them; slipway owns the selector and nothing else.
    let ports = &service["spec"]["ports"];
    assert_eq!(ports.as_array().unwrap().len(), 1, "{service}");
    assert_eq!(ports[0]["port"], 80);
    assert_eq!(ports[0]["targetPort"], 8080);
    assert_eq!(service["metadata"]["labels"]["team"], "platform");
    let written = managers(&service);
    let slipway: Vec<_> = written.iter().filter(|(m, _, _)| m == "slipway").collect();
    assert_eq!(slipway.len(), 1, "{written:?}");
    assert_eq!(slipway[0].2, ["f:selector"], "{written:?}");
    assert!(
        written
            .iter()
            .any(|(m, _, spec)| m == "platform" && spec.contains(&"f:ports".to_owned())),
        "{written:?}"
    );
}

/// `serve --lease`'s arguments for one of two controllers sharing a Lease of 4 s (a standby takes
/// over a dead leader 4 s after it last saw it renew).
fn lease_args(identity: &str) -> Vec<&str> {
    vec![
        "--lease",
        "slipway",
        "--lease-duration",
        lease_duration(),
        "--identity",
        identity,
        "--api",
        "127.0.0.1:0",
    ]
}

/// The failover tests' Lease duration: 4 s, or `SLIPWAY_TEST_LEASE` (bench/failover.sh times the
/// takeover at slipway's default, 15 s, with it).
fn lease_duration() -> &'static str {
    static LEASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LEASE.get_or_init(|| std::env::var("SLIPWAY_TEST_LEASE").unwrap_or_else(|_| "4s".to_owned()))
}

#[test]
fn the_controller_killed_mid_canary_is_replaced_by_its_standby_which_finishes_the_canary() {
    // Both controllers run as the account of `slipway kube rbac --lease slipway`, and nothing more.
    let Some(mut k) = Kubed::new_with(
        "failover",
        Some(&["--lease", "slipway"]),
        &lease_args("controller-a"),
    ) else {
        return;
    };
    assert_eq!(k.lease_holder(), "controller-a");
    // The standby: same namespace and Lease, a state dir, proxy and API of its own.
    let standby_dir = tempfile::tempdir().unwrap();
    let standby_state = standby_dir.path().join("state");
    let kubeconfig = k._kubeconfig_dir.path().join("kubeconfig");
    let mut standby = k.standby(
        standby_dir.path(),
        lease_duration(),
        kubeconfig.to_str().unwrap(),
    );
    // Standing by, its API says who leads, and it serves no traffic.
    let standby_api: std::net::SocketAddr =
        support::wait_for(Duration::from_secs(60), "the standby's API address", || {
            std::fs::read_to_string(standby_state.join("api.addr"))
                .ok()?
                .trim()
                .parse()
                .ok()
        });
    let answer = support::wait_for(Duration::from_secs(60), "the standby's API", || {
        support::http::get(standby_api, "/v1/health", &[]).ok()
    });
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("controller-a leads"), "{answer:?}");
    assert!(!standby_state.join("proxy.addr").exists());

    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    let canary = "strategy = \"canary\"\nprogress_deadline = \"5m\"\nsteps = [{ weight = 50 }, { pause = \"30s\" }]";
    k.write(&v1, canary, "");
    k.world.slipway(&["deploy"]).ok();
    let load = Load::start(k.world.daemon.proxy, CLIENTS, "/");
    load.wait_for_more(100);
    k.write(&v2, canary, "");
    k.world.slipway(&["deploy", "--detach"]).ok();
    support::wait_for(
        Duration::from_secs(90),
        "the canary at 50 %, pausing",
        || {
            let c = k.world.status()["rollout"]["canary"].clone();
            (c["effective_weight"] == 50 && c["step"] == 2).then_some(())
        },
    );
    load.wait_for_more(100);
    let pods = (k.pods_of(1), k.pods_of(2));

    // The leader dies mid-canary; its standby takes over with the state it had copied.
    // Requests answered before the kill failed none; those in flight at it fail with the proxy.
    // (Each client asks one at a time: 50 more answers after the mark close the earlier ones.)
    let at_kill = load.mark();
    load.wait_for_more(50);
    k.world.daemon.kill9();
    let killed = Instant::now();
    let before_kill = load.finish();
    let failed: Vec<_> = before_kill
        .records
        .iter()
        .filter(|r| r.epoch < at_kill && r.result.is_err())
        .collect();
    assert!(
        failed.is_empty(),
        "{}: {:?}",
        before_kill.summary(),
        failed
            .iter()
            .map(|r| (killed.saturating_duration_since(r.sent), &r.result))
            .collect::<Vec<_>>()
    );
    support::wait_until(
        Duration::from_secs(60),
        "the standby holding the lease",
        || k.lease_holder() == "controller-b",
    );
    let leading = killed.elapsed();
    standby.wait_serving(Duration::from_secs(60));
    let serving = killed.elapsed();
    eprintln!(
        "takeover: the standby held the lease {:.1} s and served {:.1} s after the leader's kill -9 \
         (lease {})",
        leading.as_secs_f64(),
        serving.as_secs_f64(),
        lease_duration()
    );
    let status = |state: &Path| -> serde_json::Value {
        let mut cmd = Command::new(support::bin());
        cmd.args(["status", "--json", "--state-dir"])
            .arg(state)
            .arg("--config")
            .arg(k.world.config_path())
            .env_remove("SLIPWAY_SERVER")
            .env_remove("SLIPWAY_TOKEN");
        support::run_command(cmd, Duration::from_secs(60))
            .ok()
            .json()
    };
    // The same pods, adopted: the canary resumed where it was, not restarted.
    let now = status(&standby_state);
    assert_eq!(now["rollout"]["to"], 2, "{now}");
    assert_eq!((k.pods_of(1), k.pods_of(2)), pods, "{now}");
    let load = Load::start(standby.proxy, CLIENTS, "/");
    load.wait_for_more(100);
    let done = support::wait_for(
        Duration::from_secs(120),
        "the canary finished by the standby",
        || {
            let s = status(&standby_state);
            s["rollout"].is_null().then_some(s)
        },
    );
    assert_eq!(done["stable"]["version"], 2, "{done}");
    load.mark();
    load.wait_for_more(100);
    let tally = load.finish();
    tally.assert_no_failures();
    tally.assert_only_after("v2");
    drop(standby);
}

#[test]
fn a_leader_stopped_with_sigterm_releases_the_lease_and_leaves_its_pods_to_the_standby() {
    // A lease of 5 minutes: the standby can only lead this test's way by the leader releasing it.
    let args = |identity| {
        let mut args = lease_args(identity);
        args[3] = "5m";
        args
    };
    let Some(mut k) = Kubed::new_with("release", None, &args("controller-a")) else {
        return;
    };
    let v1 = k.image("v1", "v1");
    k.write(&v1, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    let pods = k.pods_of(1);
    let standby_dir = tempfile::tempdir().unwrap();
    let mut standby = k.standby(standby_dir.path(), "5m", &k.cluster.kubeconfig);
    support::wait_until(Duration::from_secs(60), "the standby standing by", || {
        std::fs::read_to_string(standby_dir.path().join("daemon.log"))
            .is_ok_and(|log| log.contains("standing by: controller-a leads"))
    });
    let status = k.world.daemon.terminate();
    assert!(
        status.success(),
        "{status:?}\n{}",
        k.world.daemon.log_text()
    );
    standby.wait_serving(Duration::from_secs(60));
    assert_eq!(k.lease_holder(), "controller-b");
    // The same pods, never stopped, serve through the new leader's proxy.
    assert_eq!(k.pods_of(1), pods);
    let answer = support::http::get(standby.proxy, "/", &[]).expect("GET / through the standby");
    assert_eq!(support::http::version_of(&answer), "v1");
}

#[test]
fn a_leader_whose_lease_is_taken_exits_at_once_and_leaves_its_pods_running() {
    let Some(mut k) = Kubed::new_with("lost", None, &lease_args("controller-a")) else {
        return;
    };
    let v1 = k.image("v1", "v1");
    k.write(&v1, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    let pods = k.pods_of(1);
    // Another controller writes itself into the Lease, as one that judged it expired would (a
    // leader cut off from the API server): the leader's next renew finds it held by another.
    let now = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let taken = serde_json::json!({"spec": {
        "holderIdentity": "controller-z",
        "acquireTime": now,
        "renewTime": now,
        "leaseDurationSeconds": 60,
    }});
    k.kubectl(&[
        "patch",
        "lease",
        "slipway",
        "--type=merge",
        "-p",
        &taken.to_string(),
    ]);
    let status = k
        .world
        .daemon
        .wait_exit(Duration::from_secs(60))
        .expect("the leader exits once its Lease is taken");
    let log = k.world.daemon.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("lost the lease"), "{log}");
    // Nothing stopped: the pods are the next leader's to adopt.
    assert_eq!(k.pods_of(1), pods);
}

/// `slipway upgrade` of a leader: the new daemon renews the Lease under the old one's identity
/// (a default one, derived from the old process: the old daemon passes it on), so the standby never
/// leads, and no request through the leader's proxy fails. The new daemon copies the state on: when
/// it stops, the standby leads from a copy that has the deploy made after the upgrade.
#[test]
fn an_upgraded_leader_keeps_its_lease_and_its_proxy_fails_no_request() {
    // A lease of 5 minutes, and no --identity: a successor under another name would stand by for
    // all of it, and the upgrade would fail.
    let args = [
        "--lease",
        "slipway",
        "--lease-duration",
        "5m",
        "--api",
        "127.0.0.1:0",
    ];
    let Some(mut k) = Kubed::new_with("upgrade-lease", None, &args) else {
        return;
    };
    let v1 = k.image("v1", "v1");
    k.write(&v1, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    let pods = k.pods_of(1);
    let leader = k.lease_holder();
    assert!(!leader.is_empty());
    let standby_dir = tempfile::tempdir().unwrap();
    let mut standby = k.standby(standby_dir.path(), "5m", &k.cluster.kubeconfig);
    let standby_log = || std::fs::read_to_string(standby_dir.path().join("daemon.log")).unwrap();
    support::wait_until(Duration::from_secs(60), "the standby standing by", || {
        standby_log().contains(&format!("standing by: {leader} leads"))
    });

    k.upgrade_under_load();
    assert_eq!(k.lease_holder(), leader, "the same name holds the Lease");
    assert_eq!(k.pods_of(1), pods);
    let log = k.world.daemon.log_text();
    assert!(
        log.contains("the lease is the new daemon's to renew"),
        "{log}"
    );
    assert!(log.contains("renewed the upgraded daemon's lease"), "{log}");

    // The upgraded leader deploys, and copies its state: the standby leads from it.
    let v2 = k.image("v2", "v2");
    k.write(&v2, BLUE_GREEN, "");
    k.world.slipway(&["deploy"]).ok();
    assert_eq!(k.world.answer(), "v2");
    assert!(!standby_log().contains("leading"), "{}", standby_log());
    let status = k.world.daemon.terminate();
    assert!(status.success(), "{status:?}");
    standby.wait_serving(Duration::from_secs(60));
    assert_eq!(k.lease_holder(), "controller-b");
    let answer = support::http::get(standby.proxy, "/", &[]).expect("GET / through the standby");
    assert_eq!(support::http::version_of(&answer), "v2");
}

/// A gateway app's canary with a header-and-cookie route and a mirror: slipway's HTTPRoute gets a
/// rule of its own for the route (the canary's Service alone) and a `RequestMirror` filter at the
/// step's percent, as the API server's Gateway API schemas accept them; promotion leaves one rule.
#[test]
fn a_gateway_canary_s_route_and_mirror_are_written_into_its_httproute() {
    let Some(k) = Kubed::new_as("gateway-ab", Some(&["--gateway"])) else {
        return;
    };
    let v1 = k.image("v1", "v1");
    let v2 = k.image("v2", "v2");
    let canary = "strategy = \"canary\"\nprogress_deadline = \"90s\"\nsteps = [\
                  { route = { header = { \"x-beta\" = \"1\" }, cookie = { beta = \"y.s\" } } }, \
                  { mirror = 20 }, { weight = 10 }, { pause = {} }]";
    let gateway = "gateway = \"edge\"";
    k.write_kubernetes(&v1, canary, "", 1, gateway);
    k.world.slipway(&["deploy"]).ok();
    k.write_kubernetes(&v2, canary, "", 1, gateway);
    k.world.slipway(&["deploy", "--detach"]).ok();
    let route = wait_for(
        Duration::from_secs(90),
        "the canary's route rule and mirror in slipway's HTTPRoute",
        || {
            let route = k.json(&["get", "httproute", "shop"]);
            let rules = route["spec"]["rules"].as_array()?.clone();
            let weighted = rules[0]["backendRefs"].as_array()?;
            (rules.len() == 2
                && rules[0]["filters"][0]["requestMirror"]["percent"] == 20
                && weighted.iter().any(|b| b["weight"] == 10))
            .then_some(route)
        },
    );
    let rules = route["spec"]["rules"].as_array().unwrap();
    let canary_service = rules[1]["backendRefs"][0]["name"].as_str().unwrap();
    let service = k.json(&["get", "service", canary_service]);
    assert_eq!(service["spec"]["selector"]["slipway.dev/release"], "2");
    let matched = &rules[1]["matches"][0];
    assert_eq!(matched["path"]["value"], "/", "{route}");
    let headers = matched["headers"].as_array().unwrap();
    assert_eq!(
        (headers[0]["type"].as_str(), headers[0]["name"].as_str()),
        (Some("Exact"), Some("x-beta")),
        "{route}"
    );
    assert_eq!(headers[1]["type"], "RegularExpression", "{route}");
    assert_eq!(headers[1]["name"], "Cookie", "{route}");
    assert_eq!(headers[1]["value"], r"(^|.*; *)beta=y\.s(;.*|$)", "{route}");
    let mirror = &rules[0]["filters"][0]["requestMirror"]["backendRef"];
    assert_eq!(mirror["name"], canary_service, "{route}");

    k.world.slipway(&["promote"]).ok();
    wait_until(Duration::from_secs(90), "one rule, no mirror", || {
        let route = k.json(&["get", "httproute", "shop"]);
        let rules = route["spec"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        rules.len() == 1
            && rules[0].get("filters").is_none()
            && backends(&route) == [(canary_service.to_owned(), 1)]
    });
}
