//! The control plane of slipway: the daemon that `slipway serve` runs.
//!
//! It wires the parts together — the state store, the artifact store, the process supervisor, the proxy —
//! and runs the [`controller`] (which drives rollouts with the pure core's state machine) and the [`api`].
//! Shutting down drains everything: the proxy stops accepting and finishes in-flight requests, then every
//! instance is drained and stopped.

// The layers, top to bottom: a module imports only from its own layer or the ones below
// (tests/layers.rs keeps it so). `serve` below wires them together.
pub mod control;
pub mod flags;
pub mod http;
pub mod ops;
// Leaves: no imports from any layer above.
mod allocator;
mod clock;
pub mod error;
mod fd_limit;
pub mod history_retention;
mod http_client;
mod locks;
mod log_reader;
mod notify;
pub mod paths;
mod providers;
pub mod restore;
mod retention;
mod secrets;
mod state_permissions;
#[cfg(test)]
mod test_release;
pub mod tls;

use anyhow::{Context, bail};
use std::net::SocketAddr;
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
}

/// Runs the daemon until SIGTERM or SIGINT, then drains everything and returns.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let paths = Paths::new(&options.state_dir);
    // Before anything is read from it: a state dir others can write is not the daemon's own.
    state_permissions::check(&paths)?;
    std::fs::create_dir_all(&paths.root)
        .with_context(|| format!("cannot create the state dir {}", paths.root.display()))?;
    std::fs::set_permissions(&paths.root, std::fs::Permissions::from_mode(0o700))?;
    refuse_second_daemon(&paths).await?;

    let store =
        Arc::new(slipway_store::Store::open(&paths.db()).context("cannot open the state store")?);
    let artifacts = Arc::new(slipway_store::ArtifactStore::open(&paths.artifacts())?);
    // What a backup interrupted by a crash left (links and a database copy, nothing else).
    let _ = std::fs::remove_dir_all(paths.backup_staging());
    let daemon_id = format!("{}-{}", std::process::id(), clock::now_ms());
    let (supervisor, events) = slipway_runtime::Supervisor::new(paths.run())?;
    for id in supervisor.reap_orphans() {
        tracing::warn!("stopped {id}, left running by a daemon that did not shut down");
    }
    // Docker ($DOCKER_HOST, else the default socket) is connected on first use: a daemon whose apps
    // run no image never needs an engine.
    let docker = slipway_docker::Connector::new(slipway_docker::EngineConfig {
        host: None,
        owner: paths.docker_owner(),
        secrets_root: paths.docker_secrets(),
    });
    let runtimes = control::runtimes::Runtimes {
        containers: slipway_docker::ContainerSupervisor::new(
            docker.clone(),
            supervisor.event_sender(),
        ),
        processes: supervisor,
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
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {} for the proxy", options.listen))?;
    let proxy_addr = listener.local_addr()?;
    // Scripts and tests that asked for port 0 learn the real address here.
    std::fs::write(paths.proxy_addr(), format!("{proxy_addr}\n"))?;
    let tls_listener = match options.tls_listen {
        Some(addr) => {
            let tls = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for HTTPS"))?;
            std::fs::write(paths.proxy_tls_addr(), format!("{}\n", tls.local_addr()?))?;
            Some(tls)
        }
        None => None,
    };
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
    // Containers a killed daemon left serving are routed again before the proxy takes a request.
    controller.adopt_containers().await;
    let controller_task = tokio::spawn(controller.run(events));

    let cron = ops::cron::Cron::new(
        store.clone(),
        artifacts.clone(),
        artifact_gate.clone(),
        paths.logs(),
    );
    let cron_stop = CancellationToken::new();
    let cron_task = tokio::spawn(cron.clone().run(cron_stop.clone()));
    let flags =
        Arc::new(flags::Flags::load(store.clone()).context("cannot load the feature flags")?);
    let ramps_task = tokio::spawn(flags::ramps::run(
        flags.clone(),
        handle.clone(),
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
    let tls_stop = CancellationToken::new();
    let (tls, tls_task) = tls::Tls::start(
        options.tls.clone(),
        store.clone(),
        paths.tls(),
        proxy.acme_challenges(),
        tls_stop.clone(),
    )?;
    let api = http::Api {
        backups,
        cron,
        deployer: Arc::new(ops::deploy::Deployer {
            store: store.clone(),
            artifacts,
            artifact_gate,
            controller: handle.clone(),
            daemon_id,
            state_dir: paths.root.clone(),
            docker: docker.clone(),
            flags: flags.clone(),
        }),
        controller: handle.clone(),
        store,
        logs_dir: paths.logs(),
        flags: flags.clone(),
        tls: tls.clone(),
    };
    let api_stop = CancellationToken::new();
    let socket = paths.socket();
    let _ = std::fs::remove_file(&socket);
    let unix = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    // No window for others between bind and chmod: the state dir around it is already 0700.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    let router = http::router(api.clone());
    let stop = api_stop.clone();
    let local_api = tokio::spawn(
        axum::serve(unix, router.clone())
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .into_future(),
    );
    let mut tcp_api = None;
    if let Some(addr) = options.api {
        let legacy = match options.token {
            Some(t) => t,
            None => token_file(&paths)?,
        };
        let auth = Arc::new(http::tokens::Authenticator::new(legacy, api.store.clone()));
        let keeper = Arc::new(http::doorkeeper::Doorkeeper::new(auth, options.auth_limits));
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the API"))?;
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

    let proxy_stop = CancellationToken::new();
    let proxy = Arc::new(proxy);
    let proxy_tls_task = match tls_listener {
        Some(listener) => {
            let config = tls::server_config::new(tls.certs.clone())?;
            let stop = proxy_stop.clone();
            let proxy = proxy.clone();
            tracing::info!(https = %listener.local_addr()?, "serving HTTPS (HTTP/2 and HTTP/1.1)");
            Some(tokio::spawn(async move {
                proxy.serve_tls(listener, config, stop).await
            }))
        }
        None => None,
    };
    let proxy_task = {
        let stop = proxy_stop.clone();
        tokio::spawn(async move { proxy.serve(listener, stop).await })
    };
    tracing::info!(
        proxy = %proxy_addr,
        "serving on http://{proxy_addr}, state in {}, local API on {}",
        paths.root.display(),
        socket.display()
    );

    wait_for_shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests, then draining instances");
    cron_stop.cancel();
    pruning_stop.cancel();
    flags.closing.cancel();
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
    if handle
        .send(control::controller::Command::Shutdown { reply })
        .is_ok()
    {
        let _ = done.await;
    }
    let _ = controller_task.await;
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

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
