//! `slipway`: the thin binary. Parses the command line and hands each command to its module; the
//! daemon itself lives in `slipway-daemon`, the config parser in `slipway-config`.

mod client;
mod commands;
mod demo;
mod load;
mod output;
mod server_tls;
mod tls_flags;

use clap::{Parser, Subcommand};

use slipway_proxy::busy_poll;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "slipway",
    version,
    about = "Progressive delivery: from new version built to 100 % of users, safely."
)]
struct Cli {
    /// The daemon's state dir; the CLI talks to the daemon through the socket inside it.
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_STATE_DIR",
        default_value = "./state"
    )]
    state_dir: PathBuf,
    /// Talk to a daemon over TCP instead (its `serve --api` address: http:// or https://), with
    /// SLIPWAY_TOKEN.
    #[arg(long, global = true, env = "SLIPWAY_SERVER")]
    server: Option<String>,
    /// With --server https://: also trust these certificates (PEM), e.g. the daemon's self-signed one.
    #[arg(long, global = true, env = "SLIPWAY_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The app's config file (also how commands know which app you mean).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "SLIPWAY_CONFIG",
        default_value = "slipway.toml"
    )]
    config: PathBuf,
    /// The app to act on, when not the one in the config file.
    #[arg(long, global = true, env = "SLIPWAY_APP")]
    app: Option<String>,
    /// How commands print what they find: tables for people, or JSON for scripts.
    #[arg(long, global = true, value_enum, default_value = "text")]
    format: output::Format,
    /// Short for `--format json`.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Brute-force limits on the tokens presented over TCP (`slipway serve`); see `docs/security.md`.
#[derive(clap::Args)]
struct AuthLimits {
    /// Wrong tokens (API or dashboard login) from one address within a minute before it is locked out.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    auth_failures: u32,
    /// The first lock-out; each further wrong token doubles it, up to 15 minutes (0s: no lock-outs).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    auth_lockout: std::time::Duration,
}

impl AuthLimits {
    fn limits(&self) -> slipway_daemon::http::throttle::Limits {
        slipway_daemon::http::throttle::Limits {
            failures: self.auth_failures,
            lockout_ms: self.auth_lockout.as_millis() as u64,
            ..Default::default()
        }
    }
}

/// How the daemon's async runtime runs (`slipway serve`).
#[derive(clap::Args)]
struct RuntimeFlags {
    /// Worker threads (proxy and control plane share them).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Keep the proxy's thread polling for up to this long after the last request or answer
    /// instead of sleeping (e.g. `50us`, at most `1ms`): lower latency and more requests/s in a
    /// VM, for a busy core while traffic flows. Needs `--threads 1` (docs/operations.md).
    #[arg(long, value_name = "DURATION", value_parser = busy_poll_limit)]
    busy_poll: Option<std::time::Duration>,
}

/// The proxy's timeouts and limits (`slipway serve`); the defaults are in `docs/security.md`.
#[derive(clap::Args)]
struct ProxyLimits {
    /// Time a client has to send a request head once its connection is idle (then 408, or a quiet close
    /// for an idle keep-alive connection).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    head_timeout: std::time::Duration,
    /// Time an instance has to accept a connection (then 502).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    connect_timeout: std::time::Duration,
    /// Time an instance has to send its response headers (then 504).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    response_timeout: std::time::Duration,
    /// How long a WebSocket or an event stream may carry no bytes before it is closed.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    stream_idle_timeout: std::time::Duration,
    /// Client connections the proxy holds at once, plain and TLS together (more are answered 503).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Client connections from one IP address at once (more are answered 503).
    #[arg(long, default_value_t = 1_000)]
    max_connections_per_client: usize,
}

impl ProxyLimits {
    fn options(&self) -> slipway_daemon::ProxyOptions {
        slipway_daemon::ProxyOptions {
            head_timeout: self.head_timeout,
            connect_timeout: self.connect_timeout,
            response_timeout: self.response_timeout,
            stream_idle_timeout: self.stream_idle_timeout,
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            ..slipway_daemon::ProxyOptions::default()
        }
    }
}

/// How long the history that grows with every deploy is kept (`slipway serve`); see
/// `docs/operations.md`. What the daemon still needs stays whatever these say.
#[derive(clap::Args)]
struct RetentionFlags {
    /// Events kept per app (instance ready, rollout steps…): the newest N…
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    keep_events: u64,
    /// …and none older than this.
    #[arg(long, default_value = "30days", value_name = "AGE", value_parser = positive_duration)]
    keep_events_for: std::time::Duration,
    /// Finished rollouts kept per app (those that made the stable release and its rollback target
    /// always stay)…
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    keep_rollouts: u64,
    /// …and none older than this.
    #[arg(long, default_value = "180days", value_name = "AGE", value_parser = positive_duration)]
    keep_rollouts_for: std::time::Duration,
    /// Audit entries kept per app (who asked for what; tokens made and revoked; flag changes and
    /// ramps)…
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    keep_audit: u64,
    /// …and none older than this.
    #[arg(long, default_value = "365days", value_name = "AGE", value_parser = positive_duration)]
    keep_audit_for: std::time::Duration,
    /// How often old history is pruned (in the background, in small batches).
    #[arg(long, default_value = "10m", value_name = "EVERY", value_parser = positive_duration)]
    prune_every: std::time::Duration,
}

impl RetentionFlags {
    fn policy(&self) -> slipway_daemon::history_retention::HistoryRetention {
        use slipway_daemon::history_retention::{HistoryRetention, Keep};
        HistoryRetention {
            events: Keep {
                rows: self.keep_events,
                age: self.keep_events_for,
            },
            rollouts: Keep {
                rows: self.keep_rollouts,
                age: self.keep_rollouts_for,
            },
            audit: Keep {
                rows: self.keep_audit,
                age: self.keep_audit_for,
            },
            every: self.prune_every,
            ..HistoryRetention::default()
        }
    }
}

fn positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write it like 30days, 12h or 10m)")),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: proxy, supervisor, controller and API. Foreground; SIGTERM/SIGINT drain and stop.
    Serve {
        /// Where the proxy listens for users' traffic.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Also serve the API on TCP (every request then needs the token).
        #[arg(long)]
        api: Option<SocketAddr>,
        /// The TCP API's token (default: <state-dir>/api-token, created on first use).
        #[arg(long, env = "SLIPWAY_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(flatten)]
        runtime: Box<RuntimeFlags>,
        /// How long a dashboard login lasts (e.g. `8h`, `30m`).
        #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
        session_ttl: std::time::Duration,
        #[command(flatten)]
        limits: ProxyLimits,
        #[command(flatten)]
        auth: AuthLimits,
        #[command(flatten)]
        retention: RetentionFlags,
        #[command(flatten)]
        tls: Box<tls_flags::TlsFlags>,
        /// Run image processes as pods on Kubernetes (the cluster of $KUBECONFIG or ~/.kube/config,
        /// or the one this runs in) instead of Docker containers; needs a build with the
        /// `kubernetes` feature (docs/kubernetes.md).
        #[arg(long)]
        kubernetes: bool,
        /// The namespace for the pods (default: the kubeconfig's).
        #[arg(long, requires = "kubernetes")]
        namespace: Option<String>,
        #[command(flatten)]
        lease: Box<LeaseFlags>,
    },
    /// Record a new release from the app folder and roll it out; exits non-zero if it does not succeed.
    Deploy {
        /// A label kept with the release, e.g. a git sha or a semver.
        #[arg(long = "version")]
        label: Option<String>,
        /// Why this release: kept in the history.
        #[arg(long, short = 'm')]
        message: Option<String>,
        /// Return once the rollout started instead of following it.
        #[arg(long)]
        detach: bool,
        /// Start a canary at this percentage and hold there (then `gate`, `ramp`, `promote`, `rollback`).
        /// Returns once the canary carries its weight.
        #[arg(long, value_name = "PERCENT")]
        canary: Option<u32>,
        /// Refuse when the new migrations would break the release still serving (DROP, RENAME, NOT NULL
        /// without DEFAULT); without it they are warnings.
        #[arg(long)]
        strict: bool,
        /// Run this image (`name:tag`, resolved to its ID) as web, instead of the one in slipway.toml.
        #[arg(long, value_name = "REF", conflicts_with = "build")]
        image: Option<String>,
        /// Build the app folder's Dockerfile on the Docker engine (tagged with its content's digest) and
        /// run that image as web.
        #[arg(long)]
        build: bool,
        /// Deploy although the app's error budget is spent (`[slo] hold_deploys`); the reason is
        /// recorded in the history and the events.
        #[arg(long, value_name = "REASON")]
        override_slo: Option<String>,
        /// With `SLIPWAY_SERVER` (a daemon reached over TCP), send no app folder: the daemon reads
        /// it at this path on its own host (a volume it shares with this one). Without this flag
        /// the folder is uploaded with the deploy.
        #[arg(long)]
        no_upload: bool,
    },
    /// The app's stable release, rollout in progress, and instances.
    Status,
    /// Every release of the app, newest first.
    History,
    /// Roll back to the previous release (or `--to vN`): a new release with the old bits and config.
    Rollback {
        #[arg(long)]
        to: Option<String>,
        #[arg(long, short = 'm')]
        message: Option<String>,
        #[arg(long)]
        detach: bool,
    },
    /// Continue a rollout past its pause (blue-green with auto_promote = false: switch traffic).
    Promote {
        /// Canary: skip every remaining step and go to 100 %.
        #[arg(long)]
        full: bool,
    },
    /// Hold a canary at its current step (analysis failures still roll it back). To hold the app's
    /// traffic while you work on it, see `slipway maintenance on`.
    Pause,
    /// Let a paused canary continue.
    Resume,
    /// Set the canary's weight to PERCENT and hold there.
    Ramp { percent: u32 },
    /// Judge the canary against the stable release for a while: exit 0 pass, 1 fail, 3 inconclusive.
    Gate {
        /// Max excess error rate over stable, e.g. `1%`.
        #[arg(long)]
        error_rate: Option<String>,
        /// Max latency at a percentile: `--latency-p95 300ms` (also p50, p90, p99).
        #[arg(long = "latency-p95", value_name = "DURATION")]
        latency_p95: Option<String>,
        #[arg(long = "latency-p99", value_name = "DURATION")]
        latency_p99: Option<String>,
        /// How long to judge (a fail answers at once).
        #[arg(long = "for", default_value = "60s")]
        for_: String,
    },
    /// Roll out again the newest release after its rollout failed or was aborted.
    Retry {
        #[arg(long)]
        detach: bool,
    },
    /// Rehearse a rollback: the stable release again as a small canary whose requests fail on purpose,
    /// for the canary analysis to catch and roll back (docs/analysis.md, "Drills").
    Drill {
        /// The canary's share of the traffic, in percent (1 to 50).
        #[arg(long, default_value_t = 5)]
        weight: u32,
        /// The share of the canary's requests the proxy fails, e.g. `50%`.
        #[arg(long, default_value = "50%")]
        error_rate: String,
        #[arg(long)]
        detach: bool,
    },
    /// What the app's drills found, newest first (by hand or `[drill] schedule`).
    Drills {
        /// The newest this many (at most 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Stop the rollout in progress and return to the stable release.
    Abort {
        #[arg(long)]
        reason: Option<String>,
    },
    /// The app's instance output, interleaved by time.
    Logs {
        #[arg(long, short = 'f')]
        follow: bool,
        #[arg(long)]
        release: Option<String>,
        /// Only this process type (`web`, `worker`...), `release`, `rollback`, `cron` or `cron-<job>`.
        #[arg(long)]
        process: Option<String>,
        /// Only lines from this long ago (`10m`, `2h`) or since this UTC time (`2026-11-30T10:00:00Z`).
        #[arg(long)]
        since: Option<String>,
        /// How many lines of history to show first.
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
    },
    /// Change the formation: `slipway scale web=4 worker=2`. Running instances are kept; only the
    /// difference starts or drains. Later deploys keep this formation.
    Scale {
        /// PROCESS=COUNT pairs.
        #[arg(required = true, value_name = "PROCESS=COUNT")]
        formation: Vec<String>,
    },
    /// Config vars: list them (secrets by name only), or `set KEY=VALUE...` / `unset KEY...`, which
    /// roll out a new release with the app's strategy.
    Config {
        #[command(subcommand)]
        action: Option<ConfigAction>,
    },
    /// Maintenance mode: `maintenance on` holds the app's requests at the proxy (then answers a
    /// maintenance page) while you work on it by hand; `maintenance off` lets them through, in order.
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
    },
    /// Scheduled jobs: `cron list`, or `cron run NAME` to run one now.
    Cron {
        #[command(subcommand)]
        action: CronAction,
    },
    /// API tokens with roles (viewer, deployer, admin) for the TCP API, the CLI over TCP and the dashboard.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// TLS certificates: every host's issuer, expiry, next renewal and last error; `renew HOST`.
    Certs {
        #[command(subcommand)]
        action: Option<CertsAction>,
    },
    /// Feature flags: list, get, set, enable, disable, kill, import, export, history, revert, ramp, key.
    Flags {
        #[command(subcommand)]
        action: commands::flags::FlagsCommand,
    },
    /// Upgrade the running daemon in place: it starts the slipway binary now on disk with its own
    /// arguments, hands it the listening sockets and every running instance (none restarts, no
    /// connection is refused), and ends once its in-flight requests are done. Also on SIGUSR2. Over
    /// TCP it needs an admin token.
    Upgrade,
    /// Back up the running daemon's state into FILE: its database (a consistent copy, made while it
    /// serves) and the artifacts of every release it can roll back to. Over TCP it needs an admin token.
    Backup {
        file: PathBuf,
        /// Replace FILE if it exists (only once the new backup has arrived whole and been checked).
        #[arg(long)]
        force: bool,
    },
    /// Restore a backup into an empty or new state dir (--state-dir), offline: every entry is checked
    /// first, and a dir that holds anything is refused. Then `slipway serve` on it serves the same
    /// releases.
    Restore { file: PathBuf },
    /// Write a commented slipway.toml for the app in this folder (Procfile, Dockerfile, package.json,
    /// Cargo.toml, go.mod or Python files are recognised); never overwrites one.
    Init,
    /// Check a slipway.toml without deploying.
    Validate,
    /// Everything on a bundled demo app, in one command: deploy, blue-green under load, rollback.
    Demo,
    /// The bundled demo app itself (an HTTP server on $PORT with knobs; see `slipway demo`).
    #[command(hide = true)]
    DemoApp,
    /// Shell completions on stdout, e.g. `slipway completions bash > /etc/bash_completion.d/slipway`
    /// (zsh: into a folder of $fpath as `_slipway`; fish: ~/.config/fish/completions/slipway.fish).
    Completions { shell: clap_complete::Shell },
    /// The man page (roff) on stdout, e.g. `slipway man > /usr/local/share/man/man1/slipway.1`.
    Man,
    /// Kubernetes helpers (docs/kubernetes.md).
    #[cfg(feature = "kubernetes")]
    Kube {
        #[command(subcommand)]
        action: KubeAction,
    },
}

/// `serve --kubernetes --lease`: failover between controllers.
#[derive(clap::Args)]
struct LeaseFlags {
    /// Lead by this Lease (coordination.k8s.io) in the namespace, with the state copied into
    /// Secrets named after it: run two or more, one leads, the others stand by (their API
    /// answers 503) and take over, with the state, when it stops or dies (docs/kubernetes.md).
    #[arg(long, value_name = "NAME", requires = "kubernetes")]
    lease: Option<String>,
    /// How long a leader's Lease lasts unrenewed: a standby takes over a dead leader after this.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration, requires = "lease")]
    lease_duration: std::time::Duration,
    /// This controller's name in the Lease (default: the host name — in a pod, its name — and
    /// the process ID).
    #[arg(long, env = "SLIPWAY_IDENTITY", requires = "lease")]
    identity: Option<String>,
    /// The pod this controller runs in (e.g. from the downward API, as `slipway kube install`
    /// sets it): labelled slipway.dev/role=leader while it leads, =standby otherwise, so that
    /// Services can select the leader only.
    #[arg(
        long,
        value_name = "NAME",
        env = "SLIPWAY_POD_NAME",
        requires = "lease"
    )]
    pod: Option<String>,
}

#[cfg(feature = "kubernetes")]
#[derive(Subcommand)]
enum KubeAction {
    /// The ServiceAccount, Role and RoleBinding `serve --kubernetes` needs in a namespace, and no
    /// more, on stdout: `slipway kube rbac --namespace shop | kubectl apply -f -`.
    Rbac {
        #[arg(long, default_value = "default")]
        namespace: String,
        #[arg(long, default_value = "slipway")]
        service_account: String,
        /// Also what apps with `[kubernetes] gateway` or `service` need: applying HTTPRoutes and
        /// Services.
        #[arg(long)]
        gateway: bool,
        /// Also what `serve --lease NAME` needs: get and update of that Lease and of its state
        /// Secrets, by name; create of leases (RBAC cannot limit a create to a name).
        #[arg(long, value_name = "NAME")]
        lease: Option<String>,
        /// Also the same Role in NS, bound to the account, for apps with `[kubernetes] namespace =
        /// "NS"` (repeat for each).
        #[arg(long, value_name = "NS")]
        app_namespace: Vec<String>,
        /// Also `get` of this image pull secret, by name (repeat for each): read when a registry
        /// wants a login to say which digest a tag names.
        #[arg(long, value_name = "NAME")]
        pull_secret: Vec<String>,
    },
    /// The manifests to run slipway inside the cluster, on stdout: Namespace, ServiceAccount, the
    /// Role of `kube rbac --lease slipway` and its binding, a Deployment of two `serve --kubernetes
    /// --lease slipway` (one leads, one stands by; the state is copied into the cluster), a
    /// PodDisruptionBudget, and Services for the leader's API and proxy:
    /// `slipway kube install --namespace slipway --image REF | kubectl apply -f -`.
    Install {
        /// Where slipway runs, and runs its apps' pods.
        #[arg(long, default_value = "slipway")]
        namespace: String,
        /// slipway's image: its entrypoint slipway, built with `--features kubernetes`.
        #[arg(long, value_name = "REF")]
        image: String,
        /// Also what apps with `[kubernetes] gateway` or `service` need (as `kube rbac --gateway`).
        #[arg(long)]
        gateway: bool,
        /// Also rights in NS for apps with `[kubernetes] namespace = "NS"` (as `kube rbac
        /// --app-namespace`; repeat for each).
        #[arg(long, value_name = "NS")]
        app_namespace: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Set vars (a new release, rolled out): `slipway config set MODE=fast COLOR=blue`.
    Set {
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Remove vars set with `config set` (a new release, rolled out).
    Unset {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
}

#[derive(Subcommand)]
enum CertsAction {
    /// Order a new certificate for HOST now (ACME), or read its files again.
    Renew { host: String },
    /// Revoke HOST's ACME certificate: a new one is ordered first, then the CA revokes the old one
    /// (also if the order fails). Admin only over TCP.
    Revoke {
        host: String,
        /// Why: RFC 5280's reasons that ACME CAs accept.
        #[arg(long, default_value = "unspecified", value_parser = [
            "unspecified", "key-compromise", "affiliation-changed", "superseded",
            "cessation-of-operation",
        ])]
        reason: String,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Make a token and print it (once: only its hash is kept).
    Create {
        name: String,
        #[arg(long, value_parser = ["viewer", "deployer", "admin"])]
        role: String,
    },
    /// Every token's name, role and last use (never the tokens themselves).
    List,
    /// Revoke a token: it stops working at once, dashboard sessions made with it too.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum MaintenanceAction {
    /// Hold every new request (previews excepted) until `maintenance off`, each for at most --hold;
    /// then answer 503 with the maintenance page and Retry-After.
    On {
        /// How long each request waits before it gets the page (0s: the page at once).
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        hold: std::time::Duration,
        /// An HTML file to answer with once the hold is over (default: a short text page).
        #[arg(long, value_name = "FILE")]
        page: Option<std::path::PathBuf>,
        /// Retry-After on the page.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        retry_after: std::time::Duration,
        /// Why (recorded in the events, shown by `status`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Serve again: the held requests go to the app in the order they arrived.
    Off,
}

#[derive(Subcommand)]
enum CronAction {
    /// Every job: schedule, next run, recent runs.
    List,
    /// Run a job now (its concurrency policy applies); prints the run's output when it ends.
    Run {
        name: String,
        /// Return once the run started.
        #[arg(long)]
        detach: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serves = matches!(
        cli.command,
        Command::Serve { .. } | Command::Demo | Command::DemoApp
    );
    if !serves {
        // A command's output piped into `head` ends quietly when the pipe closes, as other tools do,
        // instead of panicking on the failed write. (Not the daemon: its sockets must get EPIPE.)
        // SAFETY: setting a signal's disposition to the default before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Generated from the command definitions themselves, so they cannot fall behind the CLI.
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man => return man_page(),
        #[cfg(feature = "kubernetes")]
        Command::Kube {
            action:
                KubeAction::Rbac {
                    namespace,
                    service_account,
                    gateway,
                    lease,
                    app_namespace,
                    pull_secret,
                },
        } => {
            print!(
                "{}",
                slipway_kube::rbac::manifests_with_lease(
                    namespace,
                    service_account,
                    *gateway,
                    lease.as_deref(),
                    pull_secret
                )
            );
            for app_namespace in app_namespace.iter().filter(|ns| *ns != namespace) {
                print!(
                    "---\n{}",
                    slipway_kube::rbac::app_namespace(
                        namespace,
                        service_account,
                        *gateway,
                        pull_secret,
                        app_namespace
                    )
                );
            }
            return ExitCode::SUCCESS;
        }
        #[cfg(feature = "kubernetes")]
        Command::Kube {
            action:
                KubeAction::Install {
                    namespace,
                    image,
                    gateway,
                    app_namespace,
                },
        } => {
            if let Err(err) = slipway_kube::install::check(namespace, image) {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
            print!(
                "{}",
                slipway_kube::install::manifests(namespace, image, *gateway)
            );
            for app_namespace in app_namespace.iter().filter(|ns| *ns != namespace) {
                print!(
                    "---\n{}",
                    slipway_kube::rbac::app_namespace(
                        namespace,
                        slipway_kube::install::NAME,
                        *gateway,
                        &[],
                        app_namespace
                    )
                );
            }
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    init_logging(matches!(cli.command, Command::Serve { .. }));
    let (threads, busy_poll) = match &cli.command {
        Command::Serve { runtime, .. } => (runtime.threads.max(1), runtime.busy_poll),
        _ => (2, None),
    };
    if busy_poll.is_some() && threads != 1 {
        eprintln!(
            "error: --busy-poll needs --threads 1: it keeps one thread polling, the one that \
             runs the proxy (add --threads 1, or leave --busy-poll out)"
        );
        return ExitCode::from(2);
    }
    // One worker: a current-thread runtime, with no cross-thread wake-ups on the proxy's path.
    let runtime = if threads == 1 {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        if let Some(limit) = busy_poll {
            builder
                .on_thread_park(busy_poll::before_park)
                .on_thread_unpark(move || busy_poll::after_unpark(limit));
        }
        builder.enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if busy_poll.is_some() {
        runtime.spawn(busy_poll::spinner());
    }
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "slipway", &mut script);
    print_all(&script)
}

fn man_page() -> ExitCode {
    use clap::CommandFactory;
    let mut page = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
        eprintln!("error: cannot render the man page: {e}");
        return ExitCode::from(2);
    }
    print_all(&page)
}

/// Writes to stdout; a reader that stopped early (`| head`) is not an error.
fn print_all(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--busy-poll`'s value: a duration above zero and at most `busy_poll::MAX_LIMIT`.
fn busy_poll_limit(text: &str) -> Result<std::time::Duration, String> {
    let limit = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if limit.is_zero() || limit > busy_poll::MAX_LIMIT {
        let max = humantime::format_duration(busy_poll::MAX_LIMIT);
        return Err(format!(
            "{text} is not a busy-poll window: give one from 1us to {max} (50us is a good start)"
        ));
    }
    Ok(limit)
}

/// The daemon's own logs are an event stream (12-factor): JSON lines on stdout for a log collector, or
/// human-readable when stdout is a terminal. Other commands log to stderr, for people.
fn init_logging(daemon: bool) {
    use std::io::IsTerminal;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("SLIPWAY_LOG").unwrap_or_else(|_| "info".into())
    };
    if daemon && !std::io::stdout().is_terminal() {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter())
            .with_writer(std::io::stdout)
            .init();
    } else if daemon {
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stdout)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = commands::Context::new(
        cli.state_dir.clone(),
        cli.server.clone(),
        cli.ca_cert.clone(),
        cli.config.clone(),
        cli.app.clone(),
        if cli.json {
            output::Format::Json
        } else {
            cli.format
        },
    )?;
    match cli.command {
        Command::Serve {
            listen,
            api,
            token,
            session_ttl,
            limits,
            auth,
            retention,
            tls,
            kubernetes,
            namespace,
            lease,
            ..
        } => {
            let LeaseFlags {
                lease,
                lease_duration,
                identity,
                pod,
            } = *lease;
            let lease = lease.map(|name| slipway_daemon::Lease {
                name,
                identity: identity.unwrap_or_else(default_identity),
                duration: lease_duration,
                pod,
            });
            slipway_daemon::serve(slipway_daemon::ServeOptions {
                state_dir: cli.state_dir,
                listen,
                tls_listen: tls.tls_listen,
                tls: tls.settings(),
                api_tls: tls.api_cert(),
                api,
                token,
                session_ttl,
                proxy: limits.options(),
                auth_limits: auth.limits(),
                retention: retention.policy(),
                kubernetes: kubernetes.then_some(slipway_daemon::Kubernetes { namespace, lease }),
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy {
            label,
            message,
            detach,
            canary,
            strict,
            image,
            build,
            override_slo,
            no_upload,
        } => {
            let images = commands::deploy::Contents {
                image,
                build,
                upload: !no_upload,
            };
            let guards = commands::deploy::Guards {
                strict,
                override_slo,
            };
            commands::deploy::run(&ctx, label, message, detach, canary, guards, images).await
        }
        Command::Status => commands::status::run(&ctx).await,
        Command::History => commands::history::run(&ctx).await,
        Command::Rollback {
            to,
            message,
            detach,
        } => commands::control::rollback(&ctx, to, message, detach).await,
        Command::Promote { full } => commands::control::promote(&ctx, full).await,
        Command::Pause => commands::control::simple(&ctx, "pause", serde_json::json!({})).await,
        Command::Resume => commands::control::simple(&ctx, "resume", serde_json::json!({})).await,
        Command::Ramp { percent } => {
            commands::control::simple(&ctx, "ramp", serde_json::json!({ "weight": percent })).await
        }
        Command::Gate {
            error_rate,
            latency_p95,
            latency_p99,
            for_,
        } => commands::gate::run(&ctx, error_rate, latency_p95, latency_p99, for_).await,
        Command::Retry { detach } => commands::control::retry(&ctx, detach).await,
        Command::Drill {
            weight,
            error_rate,
            detach,
        } => commands::drill::run(&ctx, weight, &error_rate, detach).await,
        Command::Drills { limit } => commands::drill::list(&ctx, limit).await,
        Command::Abort { reason } => commands::control::abort(&ctx, reason).await,
        Command::Logs {
            follow,
            release,
            process,
            since,
            lines,
        } => {
            let filter = commands::logs::Filter {
                release,
                process,
                since,
            };
            commands::logs::run(&ctx, follow, filter, lines).await
        }
        Command::Scale { formation } => commands::scale::run(&ctx, formation).await,
        Command::Config { action } => match action {
            None => commands::config::list(&ctx).await,
            Some(ConfigAction::Set { pairs }) => commands::config::set(&ctx, pairs).await,
            Some(ConfigAction::Unset { keys }) => commands::config::unset(&ctx, keys).await,
        },
        Command::Maintenance { action } => match action {
            MaintenanceAction::On {
                hold,
                page,
                retry_after,
                reason,
            } => commands::maintenance::on(&ctx, hold, page, retry_after, reason).await,
            MaintenanceAction::Off => commands::maintenance::off(&ctx).await,
        },
        Command::Cron { action } => match action {
            CronAction::List => commands::cron::list(&ctx).await,
            CronAction::Run { name, detach } => commands::cron::run(&ctx, &name, detach).await,
        },
        Command::Token { action } => match action {
            TokenAction::Create { name, role } => commands::token::create(&ctx, &name, &role).await,
            TokenAction::List => commands::token::list(&ctx).await,
            TokenAction::Revoke { name } => commands::token::revoke(&ctx, &name).await,
        },
        Command::Certs { action } => match action {
            None => commands::certs::list(&ctx).await,
            Some(CertsAction::Renew { host }) => commands::certs::renew(&ctx, &host).await,
            Some(CertsAction::Revoke { host, reason }) => {
                commands::certs::revoke(&ctx, &host, &reason).await
            }
        },
        Command::Flags { action } => commands::flags::run(&ctx, action).await,
        Command::Backup { file, force } => commands::backup::backup(&ctx, &file, force).await,
        Command::Upgrade => commands::upgrade::run(&ctx).await,
        Command::Restore { file } => commands::backup::restore(&ctx, &file, &cli.state_dir),
        Command::Init => commands::init::run(&ctx),
        Command::Validate => commands::validate::run(&ctx),
        Command::Demo => demo::run().await,
        // Answered in `main`, before a runtime is started.
        Command::Completions { .. } | Command::Man => Ok(ExitCode::SUCCESS),
        #[cfg(feature = "kubernetes")]
        Command::Kube { .. } => Ok(ExitCode::SUCCESS),
        Command::DemoApp => match slipway_demo_app::run().await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                eprintln!("slipway demo-app: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

/// A controller's default name in its Lease: unique per process on a host, and in a pod the pod's
/// name (its host name).
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}
