//! The app spec: what a `slipway.toml` means once parsed and validated.
//!
//! The config crate turns text into these types (with file:line errors); everything else reads only these.
//! A release stores the spec it was made with, so it is serializable and contains no secret values
//! (secrets are sources: a file path or an env var name, resolved when an instance starts).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One app: the whole meaning of a `slipway.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSpec {
    /// The app's name: `[a-z0-9-]`, at most 63 characters.
    pub app: String,
    pub artifact: ArtifactSpec,
    /// Plain environment from `slipway.toml`, part of the release.
    pub env: BTreeMap<String, String>,
    /// Config vars set with `slipway config set`: part of the release too, and they win over `env`.
    /// Kept apart so `config unset` brings back the file's value and `slipway config` shows the origin.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_vars: BTreeMap<String, String>,
    /// Secret sources, resolved when an instance starts; the values are never stored.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Process types by name. The one named `web` gets `$PORT` and traffic.
    pub processes: BTreeMap<String, ProcessSpec>,
    pub routing: RoutingSpec,
    pub deploy: DeploySpec,
    pub retention: RetentionSpec,
    /// Analysis templates by name, used by canary `analysis` steps and `slipway gate`.
    #[serde(default)]
    pub analysis: BTreeMap<String, AnalysisTemplate>,
    /// Where to tell people that a release was rolled back (Slack-compatible JSON webhooks).
    #[serde(default)]
    pub notify: Vec<Webhook>,
    /// The release phase: a command run once per release before any of its instances gets traffic.
    #[serde(default)]
    pub release_phase: ReleasePhaseSpec,
    /// Scheduled jobs by name, run in the stable release's artifact and env.
    #[serde(default)]
    pub cron: BTreeMap<String, CronSpec>,
    /// `[kubernetes]`: how the app's pods are placed and run with `serve --kubernetes`.
    #[serde(default, skip_serializing_if = "KubernetesSpec::is_empty")]
    pub kubernetes: KubernetesSpec,
    /// `[slo]`: the app's objectives, whose error budget gates canaries and holds deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<crate::slo::SloSpec>,
    /// `[drill]`: rehearse a rollback on a schedule (`slipway drill` run by the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillSchedule>,
    /// Set only on a release recorded by `slipway drill` (never from slipway.toml): while it is a
    /// rollout's canary, the proxy fails this share of its requests on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_fault: Option<DrillFault>,
}

/// `[drill]`: when the daemon runs a drill by itself, and how hard it fails the canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillSchedule {
    /// Five cron fields, UTC (`crate::schedule::Schedule`).
    pub schedule: String,
    /// The drill canary's weight, in percent (1 to 50).
    pub weight: u32,
    /// The share of the drill canary's requests failed on purpose, 0.0 to 1.0.
    pub error_rate: f64,
}

/// A drill's injected failures (`slipway drill`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DrillFault {
    /// The share of the drill canary's requests the proxy answers 503 itself, 0.0 to 1.0.
    pub error_rate: f64,
}

/// `[kubernetes]`: scheduling and identity of the app's pods on Kubernetes; ignored on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesSpec {
    /// The namespace of the app's pods and objects; `None`: the daemon's (`--namespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only nodes with all these labels run the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// The pods' service account (their token is not mounted unless the app asks for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Secrets (of type docker-registry) the nodes pull the images with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// What the scheduler reserves per pod: bytes of memory. (Limits are the process's `memory`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<i64>,
    /// What the scheduler reserves per pod: billionths of a CPU. (Limits are the process's `cpus`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<i64>,
    /// Traffic through a Gateway API gateway the cluster already has: slipway writes the weights
    /// of its own HTTPRoute attached to it (a Service per release as its backends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySpec>,
    /// A Service whose selector slipway points at the release that has all the traffic (blue-green
    /// by selector, for clients inside the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// With `gateway` or `service`: how long a release that lost its traffic keeps its pods once
    /// the route (or selector) without it is written and the gateway has read it — time for the
    /// gateway's data plane or kube-proxy to follow. `None`: [`DEFAULT_TRAFFIC_LAG`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_lag: Option<Duration>,
}

/// `[kubernetes] traffic_lag` when not set.
pub const DEFAULT_TRAFFIC_LAG: Duration = Duration::from_secs(10);

/// `[kubernetes] gateway = "infra/edge"`, `route = "shop"`: where an app's HTTPRoute attaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySpec {
    /// The Gateway's namespace; `None`: the daemon's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Gateway's name.
    pub name: String,
    /// The HTTPRoute slipway writes and owns (the app's name unless set).
    pub route: String,
}

impl KubernetesSpec {
    pub fn is_empty(&self) -> bool {
        self == &KubernetesSpec::default()
    }
}

/// A node taint the pods tolerate (Kubernetes' `Toleration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toleration {
    /// `None`: every key (with `exists`).
    pub key: Option<String>,
    /// `None` with `exists = true`: any value.
    pub value: Option<String>,
    /// Tolerate the key whatever its value.
    pub exists: bool,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; `None`: all effects.
    pub effect: Option<String>,
}

/// `[release]`: migrations and other once-per-release work (Heroku's release phase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasePhaseSpec {
    /// Run with `sh -c` in the new release's artifact and env, under the app's migration lock.
    pub cmd: Option<String>,
    /// Run on `rollback` (in the release being rolled back from), e.g. a down migration.
    pub rollback_cmd: Option<String>,
    /// The phase fails (and the deploy with it) if the command has not exited by then.
    pub timeout: Duration,
    /// Glob patterns (relative to the artifact) of migration files checked for destructive statements.
    pub migrations: Vec<String>,
    /// After `cmd` ran and before any traffic moves, the release still serving is watched this long for
    /// harm done by the new schema (`schema_watch`); zero turns the watch off.
    #[serde(default = "default_stable_watch")]
    pub stable_watch: Duration,
}

fn default_stable_watch() -> Duration {
    Duration::from_secs(10)
}

impl Default for ReleasePhaseSpec {
    fn default() -> Self {
        ReleasePhaseSpec {
            cmd: None,
            rollback_cmd: None,
            timeout: Duration::from_secs(600),
            migrations: vec!["migrations/**/*.sql".into()],
            stable_watch: default_stable_watch(),
        }
    }
}

/// `[cron.<name>]`: a command run on a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronSpec {
    /// Five-field cron expression, in UTC (`*/5 * * * *`).
    pub schedule: String,
    pub cmd: String,
    pub concurrency: Concurrency,
    /// How many finished runs (exit code, output) are kept.
    pub history: u32,
    /// A run still going after this long is stopped (SIGTERM, then SIGKILL after 10 s).
    pub timeout: Duration,
}

/// What to do when a run is due while the previous one is still going (Kubernetes CronJob's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    /// Skip the new run.
    Forbid,
    /// Start it beside the old one.
    Allow,
    /// Stop the old run, then start the new one.
    Replace,
}

impl Concurrency {
    pub fn as_str(self) -> &'static str {
        match self {
            Concurrency::Forbid => "forbid",
            Concurrency::Allow => "allow",
            Concurrency::Replace => "replace",
        }
    }
}

/// The folder frozen into every release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactSpec {
    /// Absolute path once resolved (relative paths in the file are relative to the config's folder).
    pub path: PathBuf,
    /// Glob patterns (relative to `path`) left out of the artifact, e.g. `target`, `.git`, `*.log`.
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// The value is the file's content (one trailing newline trimmed).
    File(PathBuf),
    /// The value is this variable of the daemon's environment when the instance starts.
    Env(String),
}

/// One process type of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Run with `sh -c`, in the release's frozen artifact folder; `$PORT` is set for `web`.
    pub cmd: String,
    pub replicas: u32,
    /// After SIGTERM, how long to wait before SIGKILL.
    pub grace: Duration,
    /// How long in-flight requests may take to finish once the instance left the route table.
    pub drain_timeout: Duration,
    /// How long long-lived connections (WebSocket, SSE, upgrades) may take to finish.
    pub stream_drain_timeout: Duration,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub startup: Option<ProbeSpec>,
    /// The signal that asks an instance to stop (SIGKILL follows after `grace`).
    #[serde(default)]
    pub stop_signal: StopSignal,
    /// Set when the process type runs an image on Docker instead of `cmd` on the host. Absent in
    /// releases recorded before the Docker runtime existed, which therefore still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSpec>,
    /// `replicas = { min, max }` with `autoscale` and `idle_after` (web only): the count follows load
    /// within the range, from `replicas` (the count it starts at). Absent: a fixed count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
}

/// How a web process's instance count follows its traffic (see `autoscale`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    pub min: u32,
    pub max: u32,
    /// What one instance should carry; `None` with a 0..1 range: only idle and wake move the count.
    pub target: Option<ScaleTarget>,
    /// How long the load must stay lower before instances are removed (a scale-down uses the highest
    /// recommendation over this window, so a dip does not remove capacity a burst needs again).
    pub window: Duration,
    /// With `min = 0`: no request for this long, and the app has no instance left.
    pub idle_after: Option<Duration>,
    /// How long a request to an app scaled to zero is held while an instance starts.
    pub wake_timeout: Duration,
    /// Paths whose requests neither wake the app nor count as activity (health checks).
    pub idle_paths: Vec<String>,
}

/// `autoscale = { concurrency = N }` or `{ rps = N }`: the load one instance should carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleTarget {
    /// Requests in flight per instance (time-averaged).
    Concurrency(u32),
    /// Requests a second per instance.
    Rps(u32),
}

/// `[processes.<name>] image = ...`: how a process type runs as a container. Every lock-down setting
/// defaults to the secure choice; the config overrides each one explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The image as it was named: `shop:v2` in the config, `deploy --image`, or the tag `deploy
    /// --build` made.
    pub image: String,
    /// The image ID (`sha256:…`) `image` pointed at when the release was recorded. Instances run this,
    /// so moving the tag later, or rolling back to this release, runs exactly these bits. `None` only
    /// between parsing the config and recording the release.
    #[serde(default)]
    pub image_id: Option<String>,
    /// The port the process listens on inside the container, exported as `PORT` (web only).
    pub port: u16,
    /// Replaces the image's `CMD` (its `ENTRYPOINT` stays); argv, no shell. `None` runs the image as built.
    pub command: Option<Vec<String>>,
    /// Capabilities added back after dropping all (e.g. `NET_BIND_SERVICE`).
    pub cap_add: Vec<String>,
    /// `false` keeps the engine's default capability set instead of dropping all.
    pub cap_drop_all: bool,
    pub no_new_privileges: bool,
    /// Read-only root filesystem, with a tmpfs `/tmp`.
    pub read_only: bool,
    /// `uid[:gid]` or a name; `None` keeps the image's `USER`.
    pub user: Option<String>,
    /// Hard memory limit in bytes (no swap beyond it).
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// A user-defined network to join instead of publishing the port on 127.0.0.1.
    pub network: Option<String>,
    /// Secrets as plain env vars (visible in `docker inspect`) instead of files in `/run/secrets`.
    pub secrets_as_env: bool,
}

impl ContainerSpec {
    /// The secure defaults for `image`, listening on `port` inside.
    pub fn new(image: impl Into<String>, port: u16) -> ContainerSpec {
        ContainerSpec {
            image: image.into(),
            image_id: None,
            port,
            command: None,
            cap_add: Vec::new(),
            cap_drop_all: true,
            no_new_privileges: true,
            read_only: false,
            user: None,
            memory_bytes: None,
            nano_cpus: None,
            network: None,
            secrets_as_env: false,
        }
    }
}

/// The signals an app may ask to be stopped with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StopSignal {
    #[default]
    Sigterm,
    Sigint,
    Sigquit,
    Sighup,
    Sigusr1,
    Sigusr2,
    Sigwinch,
}

impl StopSignal {
    pub const ALL: [StopSignal; 7] = [
        StopSignal::Sigterm,
        StopSignal::Sigint,
        StopSignal::Sigquit,
        StopSignal::Sighup,
        StopSignal::Sigusr1,
        StopSignal::Sigusr2,
        StopSignal::Sigwinch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Sigterm => "SIGTERM",
            StopSignal::Sigint => "SIGINT",
            StopSignal::Sigquit => "SIGQUIT",
            StopSignal::Sighup => "SIGHUP",
            StopSignal::Sigusr1 => "SIGUSR1",
            StopSignal::Sigusr2 => "SIGUSR2",
            StopSignal::Sigwinch => "SIGWINCH",
        }
    }

    /// `SIGINT`, `INT` or `sigint`.
    pub fn parse(text: &str) -> Option<StopSignal> {
        let upper = text.to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        StopSignal::ALL.into_iter().find(|s| s.name() == full)
    }
}

/// A health check of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeSpec {
    pub check: ProbeCheck,
    pub period: Duration,
    pub timeout: Duration,
    pub initial_delay: Duration,
    /// Consecutive successes that flip the probe to passing.
    pub success_threshold: u32,
    /// Consecutive failures that flip the probe to failing.
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeCheck {
    /// `GET http://127.0.0.1:$PORT{path}` must answer 2xx or 3xx.
    Http { path: String },
    /// A TCP connect to `127.0.0.1:$PORT` must succeed.
    Tcp,
    /// `sh -c cmd` in the instance's folder and env must exit 0.
    Exec { cmd: String },
}

/// Where the proxy sends requests for this app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingSpec {
    /// Host names (without port) this app answers; empty means any host.
    pub hosts: Vec<String>,
    /// Path prefix this app answers, `/` by default. The longest matching prefix wins.
    pub path_prefix: String,
    /// The largest request body the proxy forwards to this app (413 beyond); `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<u64>,
    /// Where the certificate for `hosts` comes from; `None`: plain HTTP only (or the fallback certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Plain HTTP requests get a redirect to HTTPS (ACME challenges excepted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redirect_https: bool,
    /// `Strict-Transport-Security: max-age=N` on responses over TLS; opt-in, since browsers remember it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts_max_age: Option<u64>,
}

/// How the proxy gets the certificate of an app's hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum TlsSpec {
    /// Issued and renewed by the daemon's ACME client (`tls = "auto"`).
    Auto,
    /// PEM files on the daemon's machine, read again when they change (`tls = { cert, key }`).
    Files { cert: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploySpec {
    pub strategy: Strategy,
    /// A rollout that has not finished by then fails, and the stable release keeps serving.
    pub progress_deadline: Duration,
    /// After a release reaches 100 %: how long it is judged against the release it replaced (that
    /// release's counts from before the switch); a clear regression rolls back to it. Zero: not watched.
    /// Releases recorded before the watch existed read as the default.
    #[serde(default = "default_watch")]
    pub watch: Duration,
    /// The template the watch judges (its built-in checks; `compare = "stable"` means the replaced
    /// release); `None`: [`DeploySpec::default_watch_template`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_analysis: Option<String>,
}

/// How long a release is watched after promotion unless `[deploy] watch` says otherwise.
pub const DEFAULT_WATCH: Duration = Duration::from_secs(300);

fn default_watch() -> Duration {
    DEFAULT_WATCH
}

impl DeploySpec {
    /// What the watch judges without `watch_analysis`: the error rate may exceed the replaced
    /// release's by at most one percentage point.
    pub fn default_watch_template() -> AnalysisTemplate {
        AnalysisTemplate {
            checks: vec![Check::ErrorRate {
                max: 0.01,
                compare_stable: true,
            }],
            test: TestKnobs::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Strategy {
    /// Stop the old release (drained), then start the new one. Has downtime by design.
    Recreate,
    /// Replace instances a few at a time.
    Rolling {
        max_surge: Amount,
        max_unavailable: Amount,
    },
    /// Start the whole new release beside the old one, switch all traffic at once.
    BlueGreen {
        /// Switch as soon as the new release is fully ready; otherwise wait for `slipway promote`.
        auto_promote: bool,
        /// How long the old release stays warm after the switch (an immediate rollback is a route swap).
        scale_down_delay: Duration,
    },
    /// Move a percentage of traffic to the new release step by step, judged by analysis.
    Canary(CanarySpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanarySpec {
    /// Argo's step vocabulary. No steps: a plain weighted rollout straight to 100 %.
    pub steps: Vec<CanaryStep>,
    /// How a user who got the canary keeps getting it while its weight does not go down.
    pub sticky: Option<Sticky>,
    /// Analysis that runs for the whole rollout, besides `analysis` steps (Argo's background analysis).
    pub background_analysis: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryStep {
    /// Send this percentage of (non-routed) traffic to the canary.
    Weight(u32),
    /// Wait this long; `None` waits for `slipway promote`.
    Pause(Option<Duration>),
    /// Run the named template for this long: fail rolls back, pass moves on, inconclusive holds.
    Analysis {
        template: String,
        duration: Duration,
    },
    /// Requests matching these always go to the canary (A/B, internal testing).
    Route(RouteMatch),
    /// Copy this percentage of requests to the canary; its answers are compared, never returned.
    Mirror(u32),
}

/// All given headers and cookies must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteMatch {
    pub headers: BTreeMap<String, String>,
    pub cookies: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sticky {
    /// slipway sets this cookie on the first answer and honours it afterwards.
    Cookie(String),
    /// A hash of this request header (e.g. a user id) picks the release.
    Header(String),
    /// A hash of the client's address picks the release.
    ClientAddr,
}

/// A named set of checks; all must pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisTemplate {
    pub checks: Vec<Check>,
    /// The sequential test's knobs for this template's built-in checks; unset ones keep the defaults.
    #[serde(default, skip_serializing_if = "TestKnobs::is_unset")]
    pub test: TestKnobs,
}

/// `alpha`, `beta` and `stable_margin` of an `[analysis.<name>]` template (`analysis::Settings` has
/// their meaning and defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TestKnobs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_margin: Option<f64>,
}

impl TestKnobs {
    pub fn is_unset(&self) -> bool {
        *self == TestKnobs::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Check {
    /// Fraction of 5xx answers (and proxy failures). Alone: the canary's rate must stay under `max`.
    /// With `compare_stable`: the canary's rate may exceed the stable release's (measured at the same
    /// time) by at most `max` (absolute, e.g. 0.01 = one percentage point).
    ErrorRate { max: f64, compare_stable: bool },
    /// Latency percentile (e.g. 95.0). Alone: the canary's must stay under `max`. With `compare_stable`:
    /// it may exceed the stable release's by at most `max`.
    Latency {
        percentile: f64,
        max: Duration,
        compare_stable: bool,
    },
    /// A PromQL instant query (`{{app}}`, `{{release}}`, `{{stable}}` substituted); its value must be in bounds.
    Prometheus {
        address: String,
        query: String,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// A GET that must answer 2xx; with `json_path` (dot-separated), that field must be in bounds.
    Http {
        url: String,
        json_path: Option<String>,
        min: Option<f64>,
        max: Option<f64>,
        timeout: Duration,
    },
    /// A smoke test: `sh -c cmd` must exit 0 within `timeout` (`$SLIPWAY_CANARY_URL` points at the canary).
    Command { cmd: String, timeout: Duration },
}

/// A Slack-compatible incoming webhook: POSTed `{"text": ...}` when a release is rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: WebhookUrl,
}

/// A webhook URL is a credential (whoever has it can post): given as a secret source it is resolved
/// when sending and never stored; a plain URL is kept with the release like any other setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WebhookUrl {
    Plain(String),
    Secret(SecretSource),
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Recreate => "recreate",
            Strategy::Rolling { .. } => "rolling",
            Strategy::BlueGreen { .. } => "blue-green",
            Strategy::Canary(_) => "canary",
        }
    }
}

/// A count of instances, absolute or as a percentage of the desired replicas (like Kubernetes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    Count(u32),
    Percent(u32),
}

impl Amount {
    /// Surge rounds up, unavailability rounds down, as Kubernetes does: both err on the side of capacity.
    pub fn resolve(self, replicas: u32, round_up: bool) -> u32 {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => {
                let scaled = replicas as u64 * p as u64;
                (if round_up {
                    scaled.div_ceil(100)
                } else {
                    scaled / 100
                }) as u32
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionSpec {
    /// How many releases to keep frozen artifacts for. The stable release and the rollback target
    /// are always kept, whatever this says.
    pub keep_releases: u32,
}

impl AppSpec {
    /// How many web instances a release of this spec runs (0 for an app without a `web` process).
    pub fn web_replicas(&self) -> u32 {
        self.processes.get("web").map_or(0, |p| p.replicas)
    }

    /// How long a replaced release stays warm after a switch (blue-green's setting, else 30 s).
    pub fn scale_down_delay(&self) -> Duration {
        match self.deploy.strategy {
            Strategy::BlueGreen {
                scale_down_delay, ..
            } => scale_down_delay,
            _ => Duration::from_secs(30),
        }
    }
}

impl ProcessSpec {
    /// Whether this process type receives traffic.
    pub fn is_web(name: &str) -> bool {
        name == "web"
    }
}

impl AppSpec {
    /// Whether instances of `self` and `other` would run exactly the same way, replica counts aside:
    /// then a formation change (`slipway scale`) can keep the running instances instead of replacing them.
    pub fn same_but_formation(&self, other: &AppSpec) -> bool {
        let mut a = self.clone();
        let mut b = other.clone();
        for p in a.processes.values_mut().chain(b.processes.values_mut()) {
            p.replicas = 0;
        }
        a == b
    }

    /// The plain environment instances get: the file's `env`, then the config vars over it.
    pub fn environment(&self) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.extend(self.config_vars.clone());
        env
    }

    /// Whether any process type of this spec runs on Docker.
    pub fn uses_containers(&self) -> bool {
        self.processes.values().any(|p| p.container.is_some())
    }

    /// The image IDs this spec's instances run (recorded at deploy), without duplicates.
    pub fn image_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .processes
            .values()
            .filter_map(|p| p.container.as_ref()?.image_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The process counts, e.g. `web=2 worker=1`.
    pub fn formation(&self) -> BTreeMap<String, u32> {
        self.processes
            .iter()
            .map(|(name, p)| (name.clone(), p.replicas))
            .collect()
    }
}

/// `web=4 worker=2`.
pub fn formation_text(formation: &BTreeMap<String, u32>) -> String {
    formation
        .iter()
        .map(|(p, n)| format!("{p}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_amounts_round_toward_capacity() {
        assert_eq!(Amount::Percent(25).resolve(3, true), 1);
        assert_eq!(Amount::Percent(25).resolve(3, false), 0);
        assert_eq!(Amount::Percent(50).resolve(4, false), 2);
        assert_eq!(Amount::Count(2).resolve(10, false), 2);
    }

    #[test]
    fn releases_recorded_before_the_watch_existed_read_as_the_default() {
        let spec = DeploySpec {
            strategy: Strategy::Recreate,
            progress_deadline: Duration::from_secs(60),
            watch: Duration::from_secs(60),
            watch_analysis: Some("golden".into()),
        };
        let mut json = serde_json::to_value(&spec).unwrap();
        let object = json.as_object_mut().unwrap();
        object.remove("watch");
        object.remove("watch_analysis");
        let old: DeploySpec = serde_json::from_value(json).unwrap();
        assert_eq!((old.watch, old.watch_analysis), (DEFAULT_WATCH, None));
    }
}
