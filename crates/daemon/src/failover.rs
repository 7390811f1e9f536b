//! `serve --kubernetes --lease NAME`: one of several controllers leads, the others stand by, and
//! the state lives in the cluster so that any of them can lead from where the last one was.
//!
//! A standby answers its API with 503 (naming the leader) and has no proxy. Once it holds the Lease
//! it puts the last state copied into the cluster in its state dir, and from there starts exactly as
//! a daemon restarted after `kill -9` does: it adopts the pods of its releases and resumes a rollout
//! in progress. The leader copies its state after each committed write (`Store::on_commit`, at most
//! a few times a second) and exits if it loses the Lease, so two never drive the same apps.
//! With `--pod`, each labels its own pod `leader` or `standby` (`slipway_kube::own_pod`), for
//! Services that must reach the leader only.

use crate::{Lease, Paths};
use anyhow::{Context, bail};
use slipway_kube::leader_election::{LeaderElection, Leadership};
use slipway_kube::own_pod::{OwnPod, Role};
use slipway_kube::state_secrets::StateSecrets;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The pods' owner label for controllers sharing `lease`: the same for all of them (not derived
/// from each one's state dir), so a new leader adopts what the last one ran.
pub fn owner(namespace: Option<&str>, lease: &Lease) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!(
        "lease\0{}\0{}",
        namespace.unwrap_or(""),
        lease.name
    ));
    format!("slipway-{}", hex::encode(&digest[..8]))
}

/// What a controller that leads has: the Lease held, where its state is copied, its own pod.
pub(crate) struct Leading {
    pub leadership: Leadership,
    pub secrets: StateSecrets,
    /// `--pod`: labelled `leader` once the daemon serves (`mark_leader`).
    pub pod: Option<OwnPod>,
}

/// Stands by until this controller holds the Lease (`None`: told to stop first), then restores
/// the last state copied into the cluster into the state dir.
pub(crate) async fn lead(
    namespace: Option<String>,
    lease: &Lease,
    paths: &Paths,
    standby_api: Option<&std::net::TcpListener>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Option<Leading>> {
    let (pod, mut election) = connect(&namespace, lease).await?;
    // A pod whose last process led (and exited on losing the Lease) still says `leader`: a
    // standby says so first, so that a Service never selects two pods for long.
    if let Some(pod) = &pod
        && let Err(error) = pod.mark(Role::Standby).await
    {
        tracing::warn!(%error, "standing by with the pod's label unchanged");
    }
    let leader = Arc::new(std::sync::Mutex::new(String::new()));
    let answering = match standby_api {
        Some(listener) => Some(standby::answer(listener, leader.clone())?),
        None => None,
    };
    tracing::info!(lease = %lease.name, identity = %lease.identity, "standing by for the lease");
    let acquired = tokio::select! {
        acquired = election.acquire(|holder| {
            tracing::info!(lease = %lease.name, %holder, "standing by: {holder} leads");
            *leader.lock().unwrap_or_else(|p| p.into_inner()) = holder.to_owned();
        }) => Some(acquired),
        () = stop => None,
    };
    if let Some(answering) = answering {
        answering.cancel();
    }
    let Some(acquired) = acquired else {
        return Ok(None);
    };
    acquired.map_err(anyhow::Error::msg)?;
    tracing::info!(lease = %lease.name, identity = %lease.identity, "leading: holds the lease");
    let leadership = election.hold();
    let mut secrets = StateSecrets::connect(namespace, &lease.name)
        .await
        .map_err(anyhow::Error::msg)?;
    match secrets.read().await.map_err(anyhow::Error::msg)? {
        Some(snapshot) => {
            restore(paths, &snapshot)?;
            tracing::info!(
                bytes = snapshot.len(),
                "restored the state the last leader copied into the cluster"
            );
        }
        None => tracing::info!("no state in the cluster yet: starting from the state dir's"),
    }
    Ok(Some(Leading {
        leadership,
        secrets,
        pod,
    }))
}

/// `slipway upgrade` of a leader: the new daemon holds the Lease under the old one's identity, so
/// it renews it at once rather than standing by. Its state dir is the old daemon's (nothing is
/// restored), and its pod keeps the `leader` label throughout.
pub(crate) async fn lead_on_upgrade(
    namespace: Option<String>,
    lease: &Lease,
) -> anyhow::Result<Leading> {
    let (pod, mut election) = connect(&namespace, lease).await?;
    let acquired = election.acquire(|holder| {
        tracing::warn!(lease = %lease.name, %holder, "upgrading, but {holder} holds the lease: standing by");
    });
    acquired.await.map_err(anyhow::Error::msg)?;
    tracing::info!(lease = %lease.name, identity = %lease.identity, "leading: renewed the upgraded daemon's lease");
    let secrets = StateSecrets::connect(namespace, &lease.name)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(Leading {
        leadership: election.hold(),
        secrets,
        pod,
    })
}

/// The controller's own pod (`--pod`), and its candidacy for the Lease.
async fn connect(
    namespace: &Option<String>,
    lease: &Lease,
) -> anyhow::Result<(Option<OwnPod>, LeaderElection)> {
    let pod = match &lease.pod {
        Some(name) => Some(
            OwnPod::connect(namespace.clone(), name)
                .await
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let election = LeaderElection::connect(
        namespace.clone(),
        &lease.name,
        lease.identity.clone(),
        lease.duration,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    Ok((pod, election))
}

/// Labels the pod `leader` once this daemon serves (its proxy listens, its API leads), trying
/// again every second until the API server takes it: until then the Services reach no controller.
pub(crate) fn mark_leader(pod: OwnPod) {
    tokio::spawn(async move {
        loop {
            match pod.mark(Role::Leader).await {
                Ok(()) => {
                    tracing::info!(pod = pod.name(), "labelled the pod as the leader's");
                    return;
                }
                Err(error) => tracing::warn!(%error, "retrying in 1s"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// The snapshot becomes the state dir's database (whatever was there was an older copy).
fn restore(paths: &Paths, snapshot: &[u8]) -> anyhow::Result<()> {
    let db = paths.db();
    let staged = paths.root.join("slipway.db.restoring");
    std::fs::write(&staged, snapshot)
        .with_context(|| format!("cannot write {}", staged.display()))?;
    for stale in ["slipway.db-wal", "slipway.db-shm"] {
        let _ = std::fs::remove_file(paths.root.join(stale));
    }
    std::fs::rename(&staged, &db).with_context(|| format!("cannot replace {}", db.display()))?;
    Ok(())
}

/// Exits the process once the Lease is lost: another controller may lead by now, and two must
/// never drive the same pods. The pods keep running; the new leader adopts them.
pub(crate) fn exit_when_lost(leadership: &Leadership, lease: String) {
    let lost = leadership.lost();
    tokio::spawn(async move {
        if !lost.await {
            return;
        }
        tracing::error!(
            %lease,
            "lost the lease (not renewed in time, or another controller holds it): exiting so that \
             only the new leader drives the apps; their pods keep running"
        );
        std::process::exit(1);
    });
}

/// The copy of the state into the cluster, after each committed write.
pub(crate) struct Copier {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// At most this often: a rollout's burst of writes becomes one copy.
const COPY_EVERY: Duration = Duration::from_millis(250);

impl Copier {
    pub(crate) fn start(
        store: Arc<slipway_store::Store>,
        mut secrets: StateSecrets,
        paths: &Paths,
    ) -> anyhow::Result<Copier> {
        let dirty = Arc::new(Notify::new());
        let mark = dirty.clone();
        store.on_commit(move || mark.notify_one())?;
        // The first copy claims the manifest as this leader's (and saves what was restored).
        dirty.notify_one();
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        let staging = paths.root.join("state-copy.db");
        let task = tokio::spawn(async move {
            loop {
                let last = tokio::select! {
                    () = dirty.notified() => false,
                    () = stopping.cancelled() => true,
                };
                if let Err(error) = copy(&store, &mut secrets, &staging).await {
                    tracing::warn!(%error, "cannot copy the state into the cluster; retrying");
                    dirty.notify_one();
                }
                if last {
                    return;
                }
                tokio::time::sleep(COPY_EVERY).await;
            }
        });
        Ok(Copier { stop, task })
    }

    /// One last copy, then no more.
    pub(crate) async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn copy(
    store: &Arc<slipway_store::Store>,
    secrets: &mut StateSecrets,
    staging: &std::path::Path,
) -> anyhow::Result<()> {
    let store = store.clone();
    let path = staging.to_path_buf();
    let snapshot = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let _ = std::fs::remove_file(&path);
        store.snapshot_to(&path)?;
        let bytes = std::fs::read(&path)?;
        let _ = std::fs::remove_file(&path);
        Ok(bytes)
    })
    .await??;
    if snapshot.is_empty() {
        bail!("the state snapshot is empty");
    }
    secrets.write(&snapshot).await.map_err(anyhow::Error::msg)
}

/// What a standby's API answers: 503, naming the leader.
mod standby {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use std::sync::{Arc, Mutex};
    use tokio_util::sync::CancellationToken;

    pub(super) fn answer(
        listener: &std::net::TcpListener,
        leader: Arc<Mutex<String>>,
    ) -> anyhow::Result<CancellationToken> {
        // A clone of the socket: the real API takes over the same one (same port) once leading.
        let listener = listener.try_clone()?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let app = axum::Router::new().fallback(move || {
            let leader = leader.lock().unwrap_or_else(|p| p.into_inner()).clone();
            async move {
                let error = if leader.is_empty() {
                    "this controller stands by: no leader yet".to_owned()
                } else {
                    format!("this controller stands by: {leader} leads")
                };
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({ "error": error, "leader": leader })),
                )
                    .into_response()
            }
        });
        tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .into_future(),
        );
        Ok(stop)
    }
}
