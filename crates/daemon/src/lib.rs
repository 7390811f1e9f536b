//! The control plane of slipway: the daemon that `slipway serve` runs.
//!
//! It wires the parts together — the state store, the artifact store, the process supervisor, the proxy —
//! and runs the [`controller`] (which drives rollouts with the pure core's state machine) and the [`api`].
//! Shutting down drains everything: the proxy stops accepting and finishes in-flight requests, then every
//! instance is drained and stopped. An upgrade (`upgrade.rs`) instead hands the sockets and the running
//! instances to the new binary, and only finishes this daemon's in-flight requests.

// The layers, top to bottom: a module imports only from its own layer or the ones below
// (tests/layers.rs keeps it so). `serve` below wires them together.
pub mod control;
pub mod flags;
pub mod http;
pub mod ops;
// Leaves: no imports from any layer above.
mod allocator;
mod clock;
mod code_pages;
pub mod error;
#[cfg(feature = "kubernetes")]
mod failover;
mod fd_limit;
mod handover;
pub mod history_retention;
mod http_client;
mod locks;
mod log_reader;
mod notify;
pub mod paths;
mod providers;
mod registry;
pub mod restore;
mod retention;
mod secrets;
mod socket_activation;
mod state_permissions;
#[cfg(test)]
mod test_release;
pub mod tls;
pub mod upgrade;

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use paths::Paths;
pub use slipway_proxy::ProxyOptions;

pub struct ServeOptions {
    pub state_dir: PathBuf,
    /// Where the proxy listens for users' traffic.
    pub listen: SocketAddr,
    /// Where the proxy terminates TLS (HTTP/2 and HTTP/1.1), off unless asked for.
    pub tls_listen: Option<SocketAddr>,
    /// Certificates: the ACME CA and the fallback certificate.
    pub tls: tls::TlsSettings,
    /// A certificate and key (PEM files) to serve the TCP API and dashboard over TLS.
    pub api_tls: Option<(PathBuf, PathBuf)>,
    /// The TCP API, off unless asked for.
    pub api: Option<SocketAddr>,
    /// The TCP API's token; default: `<state-dir>/api-token`, created on first use.
    pub token: Option<String>,
    /// How long a dashboard login lasts.
    pub session_ttl: Duration,
    /// The proxy's timeouts and connection limits.
    pub proxy: ProxyOptions,
    /// Brute-force limits on tokens presented over TCP (API and dashboard login).
    pub auth_limits: http::throttle::Limits,
    /// How long events, rollouts and audit are kept.
    pub retention: history_retention::HistoryRetention,
    /// `--kubernetes`: image processes run as pods in this cluster (docs/kubernetes.md).
    pub kubernetes: Option<Kubernetes>,
}

/// Where `serve --kubernetes` runs pods: the cluster of the kubeconfig (`$KUBECONFIG`,
/// `~/.kube/config`) or, inside a pod, its own.
#[derive(Debug, Clone, Default)]
pub struct Kubernetes {
    /// `None`: the kubeconfig's namespace.
    pub namespace: Option<String>,
    /// `--lease`: lead by this Lease, with the state copied into the cluster (`failover.rs`).
    pub lease: Option<Lease>,
}

/// The Lease a controller leads by (`serve --kubernetes --lease`).
#[derive(Debug, Clone)]
pub struct Lease {
    /// The Lease's name; the state Secrets are named after it.
    pub name: String,
    /// This controller's identity in it (in a pod: the pod's name).
    pub identity: String,
    pub duration: Duration,
    /// `--pod`: the controller's own pod, labelled `slipway.dev/role=leader|standby`.
    pub pod: Option<String>,
}

/// Runs the daemon until SIGTERM or SIGINT, then drains everything and returns.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    // First: a SIGTERM that arrives while the daemon starts must stop it cleanly, not kill it with
    // its instances left behind (the default action, until a handler is installed).
    let mut signals = Signals::install()?;
    let paths = Paths::new(&options.state_dir);
    // Before anything is read from it: a state dir others can write is not the daemon's own.
    state_permissions::check(&paths)?;
    std::fs::create_dir_all(&paths.root)
        .with_context(|| format!("cannot create the state dir {}", paths.root.display()))?;
    std::fs::set_permissions(&paths.root, std::fs::Permissions::from_mode(0o700))?;
    // `--lease`: stand by until leading, then start from the state the last leader copied.
    #[cfg(feature = "kubernetes")]
    let mut leading = None;
    #[cfg(feature = "kubernetes")]
    let mut standby_api = None;
    #[cfg(feature = "kubernetes")]
    if let Some(kube) = &options.kubernetes
        && let Some(lease) = &kube.lease
    {
        if std::env::var_os(handover::ENV).is_some() {
            // `slipway upgrade` of the leader: the same identity (the old daemon passed it on), so
            // the Lease is renewed at once; the same state dir; the API socket comes handed over.
            leading = Some(failover::lead_on_upgrade(kube.namespace.clone(), lease).await?);
        } else {
            if let Some(addr) = options.api {
                let listener = std::net::TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} for the API"))?;
                std::fs::write(
                    paths.root.join("api.addr"),
                    format!("{}\n", listener.local_addr()?),
                )?;
                standby_api = Some(listener);
            }
            let stop = async {
                tokio::select! {
                    _ = signals.term.recv() => {}
                    _ = signals.int.recv() => {}
                }
            };
            let lead = failover::lead(
                kube.namespace.clone(),
                lease,
                &paths,
                standby_api.as_ref(),
                stop,
            )
            .await?;
            let Some(lead) = lead else {
                tracing::info!("stopped while standing by");
                return Ok(());
            };
            leading = Some(lead);
        }
    }
    // Taking over from an upgrading daemon: its sockets, and its instances once it released them.
    let (mut predecessor, mut sockets) = match std::env::var_os(handover::ENV) {
        Some(path) => {
            let (peer, sockets) = upgrade::take_over(std::path::Path::new(&path)).await?;
            tracing::info!("took over the sockets and instances of the upgrading daemon");
            (Some(peer), Sockets(sockets))
        }
        None => {
            refuse_second_daemon(&paths).await?;
            #[allow(unused_mut)]
            let mut sockets = Sockets(socket_activation::inherited());
            // The standby's API socket: the same port now answers as the leader's API.
            #[cfg(feature = "kubernetes")]
            if let Some(listener) = standby_api.take() {
                sockets.0.push(handover::Inherited {
                    name: "api-tcp".to_owned(),
                    fd: listener.into(),
                });
            }
            (None, sockets)
        }
    };

    let store =
        Arc::new(slipway_store::Store::open(&paths.db()).context("cannot open the state store")?);
    #[cfg(feature = "kubernetes")]
    let mut own_pod = None;
    #[cfg(feature = "kubernetes")]
    let leading = match leading {
        Some(failover::Leading {
            leadership,
            mut secrets,
            pod,
        }) => {
            own_pod = pod;
            if predecessor.is_some() {
                // The upgraded daemon's last copy is in the cluster now: the next goes after it.
                secrets.follow().await.map_err(anyhow::Error::msg)?;
            }
            let lease = options.kubernetes.as_ref().and_then(|k| k.lease.as_ref());
            failover::exit_when_lost(
                &leadership,
                lease.map(|l| l.name.clone()).unwrap_or_default(),
            );
            Some((
                leadership,
                failover::Copier::start(store.clone(), secrets, &paths)?,
            ))
        }
        None => None,
    };
    let artifacts = Arc::new(slipway_store::ArtifactStore::open(&paths.artifacts())?);
    // What a backup interrupted by a crash left (links and a database copy, nothing else).
    let _ = std::fs::remove_dir_all(paths.backup_staging());
    let daemon_id = format!("{}-{}", std::process::id(), clock::now_ms());
    let (supervisor, events) = slipway_runtime::Supervisor::new(paths.run())?;
    // Instances a previous daemon left running (killed, or upgraded): adopted once the controller
    // knows which releases should run, the rest reaped then.
    let survivors = supervisor.survivors();
    // Docker ($DOCKER_HOST, else the default socket) is connected on first use: a daemon whose apps
    // run no image never needs an engine.
    let docker = slipway_docker::Connector::new(slipway_docker::EngineConfig {
        host: None,
        owner: paths.docker_owner(),
        secrets_root: paths.docker_secrets(),
    });
    #[cfg(feature = "kubernetes")]
    let pods = match &options.kubernetes {
        Some(kube) => Some(
            slipway_kube::PodSupervisor::connect(
                kube.namespace.clone(),
                match &kube.lease {
                    Some(lease) => failover::owner(kube.namespace.as_deref(), lease),
                    None => paths.docker_owner(),
                },
                supervisor.event_sender(),
            )
            .await
            .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    #[cfg(not(feature = "kubernetes"))]
    if options.kubernetes.is_some() {
        bail!(
            "this slipway was built without Kubernetes support: build it with \
             `cargo build --release --features kubernetes` (docs/kubernetes.md)"
        );
    }
    // The deployer reads image pull secrets through it.
    #[cfg(feature = "kubernetes")]
    let cluster = pods.clone();
    let runtimes = control::runtimes::Runtimes {
        containers: slipway_docker::ContainerSupervisor::new(
            docker.clone(),
            supervisor.event_sender(),
        ),
        processes: supervisor,
        #[cfg(feature = "kubernetes")]
        pods,
        #[cfg(feature = "kubernetes")]
        traffic: None,
    };
    recover(&store, &daemon_id)?;

    match fd_limit::raise() {
        // Each proxied request holds two descriptors: the client's and the instance's.
        Ok(files) if (files as usize) < options.proxy.max_connections * 2 => tracing::warn!(
            "the open-file limit ({files}) is below twice --max-connections ({}): connections \
             beyond it will fail to be accepted",
            options.proxy.max_connections
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
    let proxy = slipway_proxy::Proxy::new(options.proxy.clone());
    let listener = match sockets.take("proxy") {
        Some(fd) => tcp_listener(fd)?,
        None => tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {} for the proxy", options.listen))?,
    };
    let proxy_addr = listener.local_addr()?;
    // Scripts and tests that asked for port 0 learn the real address here.
    std::fs::write(paths.proxy_addr(), format!("{proxy_addr}\n"))?;
    let tls_listener = match (sockets.take("proxy-tls"), options.tls_listen) {
        (Some(fd), _) => Some(tcp_listener(fd)?),
        (None, Some(addr)) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for HTTPS"))?,
        ),
        (None, None) => None,
    };
    if let Some(tls) = &tls_listener {
        std::fs::write(paths.proxy_tls_addr(), format!("{}\n", tls.local_addr()?))?;
    }
    let proxy_tls_fd = tls_listener.as_ref().map(|l| l.as_raw_fd());
    let artifact_gate = Arc::new(std::sync::Mutex::new(()));
    let (mut controller, handle) = control::controller::Controller::new(
        store.clone(),
        artifacts.clone(),
        artifact_gate.clone(),
        runtimes,
        proxy.routes(),
        paths.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    // Instances a killed daemon left serving are routed again before the proxy takes a request.
    controller.adopt_survivors(survivors).await;
    let watch_rollbacks = controller.on_watch_regression();
    let controller_task = tokio::spawn(controller.run(events));

    let one_offs = Arc::new(ops::one_off::OneOffs {
        artifacts: artifacts.clone(),
        artifact_gate: artifact_gate.clone(),
        docker: docker.clone(),
        #[cfg(feature = "kubernetes")]
        pods: cluster.clone(),
    });
    let cron = ops::cron::Cron::new(store.clone(), one_offs.clone(), paths.logs());
    let cron_stop = CancellationToken::new();
    let cron_task = tokio::spawn(cron.clone().run(cron_stop.clone()));
    let flags =
        Arc::new(flags::Flags::load(store.clone()).context("cannot load the feature flags")?);
    let ramps_task = tokio::spawn(flags::ramps::run(
        flags.clone(),
        handle.clone(),
        proxy.routes(),
        flags.closing.clone(),
    ));
    let pruning_stop = CancellationToken::new();
    let pruning_task = tokio::spawn(ops::history_pruning::run(
        store.clone(),
        options.retention,
        pruning_stop.clone(),
    ));
    let backups = Arc::new(ops::backup::Backups {
        store: store.clone(),
        artifacts: artifacts.clone(),
        artifact_gate: artifact_gate.clone(),
        staging: paths.backup_staging(),
    });
    let (upgrades, mut upgrade_requests) = tokio::sync::mpsc::channel::<upgrade::Request>(1);
    let tls_stop = CancellationToken::new();
    let (tls, tls_task) = tls::Tls::start(
        options.tls.clone(),
        store.clone(),
        paths.tls(),
        proxy.acme_challenges(),
        tls_stop.clone(),
    )?;
    let deployer = Arc::new(ops::deploy::Deployer {
        store: store.clone(),
        artifacts,
        artifact_gate,
        controller: handle.clone(),
        daemon_id,
        state_dir: paths.root.clone(),
        docker: docker.clone(),
        flags: flags.clone(),
        uploads: Arc::new(ops::uploads::Uploads::open(paths.uploads())?),
        on_kubernetes: options.kubernetes.is_some(),
        one_offs,
        #[cfg(feature = "kubernetes")]
        cluster,
    });
    // A release the watch after promotion finds regressed is rolled back as `slipway rollback` does.
    tokio::spawn(ops::watch_rollback::run(deployer.clone(), watch_rollbacks));
    // `[drill] schedule`: scheduled work like cron's, stopped with it.
    tokio::spawn(ops::drill_schedule::run(
        deployer.clone(),
        cron_stop.clone(),
    ));
    let api = http::Api {
        upgrades,
        backups,
        cron,
        deployer,
        controller: handle.clone(),
        store,
        logs_dir: paths.logs(),
        flags: flags.clone(),
        tls: tls.clone(),
    };
    let api_stop = CancellationToken::new();
    let socket = paths.socket();
    let unix = match sockets.take("api-unix") {
        Some(fd) => {
            let listener = std::os::unix::net::UnixListener::from(fd);
            listener.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(listener)?
        }
        None => {
            let _ = std::fs::remove_file(&socket);
            let unix = tokio::net::UnixListener::bind(&socket)
                .with_context(|| format!("cannot listen on {}", socket.display()))?;
            // No window for others between bind and chmod: the state dir around it is already 0700.
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
            unix
        }
    };
    let unix_fd = unix.as_raw_fd();
    let router = http::router(api.clone());
    let stop = api_stop.clone();
    let local_api = tokio::spawn(
        axum::serve(unix, router.clone())
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .into_future(),
    );
    let mut tcp_api = None;
    let mut tcp_api_fd = None;
    if let Some(addr) = options.api {
        let legacy = match options.token {
            Some(t) => t,
            None => token_file(&paths)?,
        };
        let auth = Arc::new(http::tokens::Authenticator::new(legacy, api.store.clone()));
        let keeper = Arc::new(http::doorkeeper::Doorkeeper::new(auth, options.auth_limits));
        let tcp = match sockets.take("api-tcp") {
            Some(fd) => tcp_listener(fd)?,
            None => tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the API"))?,
        };
        tcp_api_fd = Some(tcp.as_raw_fd());
        // The dashboard checks its own session cookie; everything else needs a bearer token.
        let guarded = router
            .layer(axum::middleware::from_fn_with_state(
                keeper.clone(),
                http::require_token,
            ))
            .merge(http::dashboard::router({
                let dashboard =
                    http::dashboard::Dashboard::new(api.clone(), keeper, options.session_ttl);
                if options.api_tls.is_some() {
                    dashboard.over_tls()
                } else {
                    dashboard
                }
            }))
            // OFREP authenticates with evaluation keys, so it stays outside the token check too.
            .merge(http::ofrep::router(flags.clone()));
        let stop = api_stop.clone();
        let api_addr = tcp.local_addr()?;
        std::fs::write(paths.root.join("api.addr"), format!("{api_addr}\n"))?;
        if let Some((cert, key)) = &options.api_tls {
            let config = http::tls_api::server_config(cert, key)
                .with_context(|| format!("cannot use {} for the API", cert.display()))?;
            tracing::info!(api = %api_addr, "API on https://{api_addr} (token required)");
            tcp_api = Some(tokio::spawn(async move {
                http::tls_api::serve(tcp, config, guarded, stop).await;
                Ok(())
            }));
        } else {
            tracing::info!(api = %api_addr, "API on http://{api_addr} (token required)");
            tcp_api = Some(tokio::spawn(
                // The client's address is what the brute-force limits count.
                axum::serve(
                    tcp,
                    guarded.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .into_future(),
            ));
        }
    }

    for unused in sockets.0.drain(..) {
        tracing::warn!(
            "ignoring the inherited socket {:?}: no listener of that name",
            unused.name
        );
    }
    let proxy_fd = listener.as_raw_fd();
    let proxy_stop = CancellationToken::new();
    let proxy = Arc::new(proxy);
    let proxy_tls_task = match tls_listener {
        Some(listener) => {
            let config = tls::server_config::new(tls.certs.clone())?;
            let on_demand = tls
                .on_demand
                .clone()
                .map(|o| o as Arc<dyn slipway_proxy::OnDemandCerts>);
            let stop = proxy_stop.clone();
            let proxy = proxy.clone();
            tracing::info!(https = %listener.local_addr()?, "serving HTTPS (HTTP/2 and HTTP/1.1)");
            Some(tokio::spawn(async move {
                proxy.serve_tls(listener, config, on_demand, stop).await
            }))
        }
        None => None,
    };
    let proxy_task = {
        let stop = proxy_stop.clone();
        tokio::spawn(async move { proxy.serve(listener, stop).await })
    };
    std::fs::write(paths.daemon_pid(), format!("{}\n", std::process::id()))?;
    tracing::info!(
        proxy = %proxy_addr,
        "serving on http://{proxy_addr}, state in {}, local API on {}",
        paths.root.display(),
        socket.display()
    );
    if let Some(mut peer) = predecessor.take()
        && let Err(error) = peer
            .say(&format!(
                "serving {} {}",
                std::process::id(),
                env!("CARGO_PKG_VERSION")
            ))
            .await
    {
        tracing::warn!(%error, "could not tell the upgraded daemon this one serves");
    }
    socket_activation::notify_ready();
    #[cfg(feature = "kubernetes")]
    if let Some(pod) = own_pod {
        failover::mark_leader(pod);
    }
    // Start-up's code (parsing, migrations, adoption) is not needed again (`code_pages.rs`).
    tokio::task::spawn_blocking(allocator::release_free_memory);

    // Until a signal to stop, or an upgrade that a new daemon took.
    let mut sockets_now = vec![("proxy", proxy_fd), ("api-unix", unix_fd)];
    if let Some(fd) = tcp_api_fd {
        sockets_now.push(("api-tcp", fd));
    }
    if let Some(fd) = proxy_tls_fd {
        sockets_now.push(("proxy-tls", fd));
    }
    // A leader's successor takes its place in the Lease under the same name.
    #[allow(unused_mut)]
    let mut successor_env = Vec::new();
    #[cfg(feature = "kubernetes")]
    if let Some(lease) = options.kubernetes.as_ref().and_then(|k| k.lease.as_ref()) {
        successor_env.push(("SLIPWAY_IDENTITY", lease.identity.clone()));
    }
    let successor = signals
        .wait_for_stop(&paths, &sockets_now, &successor_env, &mut upgrade_requests)
        .await;
    cron_stop.cancel();
    pruning_stop.cancel();
    flags.closing.cancel();
    if let Some((successor, reply)) = successor {
        // Certificates are the new daemon's to renew from now on.
        tls_stop.cancel();
        let mut tasks = vec![
            settle(controller_task),
            settle(cron_task),
            settle(pruning_task),
            settle(ramps_task),
            settle(local_api),
            settle(tls_task),
        ];
        tasks.extend(proxy_tls_task.map(settle));
        return hand_over(HandingOver {
            successor,
            reply,
            #[cfg(feature = "kubernetes")]
            leading,
            controller: handle,
            proxy_stop,
            api_stop,
            tasks,
            proxy_task,
            tcp_api,
        })
        .await;
    }
    tracing::info!("shutting down: finishing in-flight requests, then draining instances");
    proxy_stop.cancel();
    // In-flight requests finish first; long-lived streams get a bounded wait.
    if tokio::time::timeout(Duration::from_secs(60), proxy_task)
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after 60 s; closing them");
    }
    if let Some(task) = proxy_tls_task {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    tls_stop.cancel();
    let _ = tls_task.await;
    let (reply, done) = tokio::sync::oneshot::channel();
    // A leader leaves its pods running for the next one to adopt; others stop their instances.
    #[cfg(feature = "kubernetes")]
    let command = match leading {
        Some(_) => control::controller::Command::HandOver { reply },
        None => control::controller::Command::Shutdown { reply },
    };
    #[cfg(not(feature = "kubernetes"))]
    let command = control::controller::Command::Shutdown { reply };
    if handle.send(command).is_ok() {
        let _ = done.await;
    }
    let _ = controller_task.await;
    #[cfg(feature = "kubernetes")]
    if let Some((leadership, copier)) = leading {
        copier.finish().await;
        match leadership.release().await {
            Ok(()) => tracing::info!("state copied and lease released: a standby leads at once"),
            Err(error) => {
                tracing::warn!(%error, "could not release the lease; a standby leads once it expires")
            }
        }
    }
    let _ = cron_task.await;
    let _ = pruning_task.await;
    let _ = ramps_task.await;
    api_stop.cancel();
    let _ = local_api.await;
    if let Some(t) = tcp_api {
        let _ = t.await;
    }
    let _ = std::fs::remove_file(&socket);
    // Empty once every container is gone (it is not, if some could not be stopped).
    let _ = std::fs::remove_dir(paths.docker_secrets());
    tracing::info!("stopped");
    Ok(())
}

/// After a crash: locks of rollouts that will resume pass to this daemon; a lock or a release whose
/// rollout never started (the crash came between taking the lock and recording the rollout) is undone.
fn recover(store: &slipway_store::Store, daemon_id: &str) -> anyhow::Result<()> {
    use slipway_core::release::ReleaseStatus;
    for lock in store.recover_locks(daemon_id)? {
        let app = lock.name.strip_prefix("deploy:").unwrap_or(&lock.name);
        if store.active_rollout(app)?.is_some() {
            tracing::warn!(
                "took over the lock {} ({}) to resume its rollout",
                lock.name,
                lock.holder
            );
        } else {
            store.release_lock(&lock.name)?;
            tracing::warn!(
                "released the lock {} ({}): its rollout never started",
                lock.name,
                lock.holder
            );
        }
    }
    for app in store.apps()? {
        let active = store.active_rollout(&app)?.map(|r| r.to);
        for release in store.releases(&app)? {
            if release.status == ReleaseStatus::Pending && Some(release.version) != active {
                let reason = "the daemon stopped before its rollout started";
                store.set_release_status(
                    &app,
                    release.version,
                    ReleaseStatus::Failed,
                    Some(reason),
                )?;
            }
        }
    }
    Ok(())
}

/// Two daemons on one state dir would fight over the same instances: refuse if the socket answers.
async fn refuse_second_daemon(paths: &Paths) -> anyhow::Result<()> {
    if tokio::net::UnixStream::connect(paths.socket())
        .await
        .is_ok()
    {
        bail!(
            "another slipway daemon is already running with the state dir {}; stop it first",
            paths.root.display()
        );
    }
    Ok(())
}

/// The TCP API's token: read from the state dir, or made once from the OS's randomness (mode 0600).
fn token_file(paths: &Paths) -> anyhow::Result<String> {
    let path = paths.token();
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_string());
    }
    let mut bytes = [0u8; 24];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, format!("{token}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(token)
}

/// Sockets this daemon did not bind itself (an upgrade's, systemd's), taken by name.
struct Sockets(Vec<handover::Inherited>);

impl Sockets {
    fn take(&mut self, name: &str) -> Option<std::os::fd::OwnedFd> {
        let at = self.0.iter().position(|s| s.name == name)?;
        Some(self.0.remove(at).fd)
    }
}

fn tcp_listener(fd: std::os::fd::OwnedFd) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}

fn settle<T: Send + 'static>(task: tokio::task::JoinHandle<T>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = task.await;
    })
}

type UpgradeReply = Option<tokio::sync::oneshot::Sender<Result<upgrade::Upgraded, String>>>;

/// The signals `serve` answers: SIGTERM and SIGINT stop it, SIGUSR2 upgrades it.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// Waits for SIGTERM/SIGINT (`None`: shut down) or an upgrade — `slipway upgrade` or SIGUSR2 —
    /// that a new daemon took (`Some`). An upgrade that fails before that is answered, and serving
    /// goes on.
    async fn wait_for_stop(
        &mut self,
        paths: &Paths,
        sockets: &[(&str, RawFd)],
        successor_env: &[(&str, String)],
        requests: &mut tokio::sync::mpsc::Receiver<upgrade::Request>,
    ) -> Option<(upgrade::Successor, UpgradeReply)> {
        loop {
            let reply = tokio::select! {
                _ = self.term.recv() => return None,
                _ = self.int.recv() => return None,
                _ = self.usr2.recv() => None,
                Some(request) = requests.recv() => request.reply,
            };
            tracing::info!("upgrading: starting the slipway binary on disk to take over");
            match upgrade::offer(&paths.handover(), sockets, successor_env).await {
                Ok(successor) => return Some((successor, reply)),
                Err(error) => {
                    tracing::error!("upgrade refused, this daemon keeps serving: {error}");
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(error));
                    }
                }
            }
        }
    }
}

/// What an upgrade hands over and then waits for.
struct HandingOver {
    successor: upgrade::Successor,
    reply: UpgradeReply,
    /// A leader's Lease and state copier: the last copy made and the renewing stopped (the Lease
    /// kept, under the name the successor renews it by) before the successor is told `released`.
    #[cfg(feature = "kubernetes")]
    leading: Option<(slipway_kube::leader_election::Leadership, failover::Copier)>,
    controller: control::controller::ControllerHandle,
    proxy_stop: CancellationToken,
    api_stop: CancellationToken,
    proxy_task: tokio::task::JoinHandle<std::io::Result<()>>,
    tcp_api: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The old daemon's side of an upgrade once the new one said `take`: no more decisions (drains
/// under way finish), instances let go of, no more accepting, `released`; then its in-flight requests
/// finish and it returns without stopping any instance.
async fn hand_over(mut h: HandingOver) -> anyhow::Result<()> {
    let (reply, done) = tokio::sync::oneshot::channel();
    if h.controller
        .send(control::controller::Command::HandOver { reply })
        .is_ok()
    {
        let _ = done.await;
    }
    h.proxy_stop.cancel();
    h.api_stop.cancel();
    #[cfg(feature = "kubernetes")]
    if let Some((leadership, copier)) = h.leading.take() {
        copier.finish().await;
        leadership.hand_on().await;
        tracing::info!("state copied; the lease is the new daemon's to renew");
    }
    let serving = async {
        h.successor.peer.say("released").await?;
        h.successor.peer.expect("serving", handover::START).await
    };
    let outcome = match serving.await {
        Ok(words) => {
            let mut words = words.split_whitespace();
            let pid = words
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(h.successor.pid);
            let version = words.next().unwrap_or("unknown").to_owned();
            tracing::info!(
                "upgraded: pid {pid} (slipway {version}) serves; finishing in-flight requests"
            );
            Ok(upgrade::Upgraded {
                from_pid: std::process::id(),
                pid,
                version,
            })
        }
        Err(error) => {
            tracing::error!(
                "the new daemon (pid {}) did not report serving: {error}; a restarted daemon adopts the instances",
                h.successor.pid
            );
            Err(format!("the new daemon did not report serving: {error}"))
        }
    };
    if let Some(reply) = h.reply.take() {
        let _ = reply.send(outcome);
    }
    if tokio::time::timeout(Duration::from_secs(60), h.proxy_task)
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after 60 s; closing them");
    }
    for task in h.tasks {
        let _ = task.await;
    }
    if let Some(t) = h.tcp_api {
        let _ = t.await;
    }
    tracing::info!("handed over; this daemon ends");
    Ok(())
}
