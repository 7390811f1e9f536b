//! The Kubernetes runtime: where slipway's instances run when `slipway serve --kubernetes` is on.
//!
//! The controller keeps deciding what runs (its per-instance model, the rollout core, the drain order);
//! this crate only says where. One release's process is one ReplicaSet (`template.rs`: the recorded
//! image ID, the release's env, secrets as a Secret mounted as files, slipway's probes as the
//! kubelet's); one controller instance is one pod of it (`binding.rs`). Starting an instance raises the
//! ReplicaSet's count; retiring one — only after the proxy drained it — marks its pod to go first and
//! lowers the count. Pod status arrives through a watch and becomes the same `InstanceEvent`s
//! (`pod_state.rs`: Ready, Unready, Backoff, CrashLoop) the process and container supervisors send, so
//! rollouts, crash-loop fast failure and the route table (pod IP:port) work unchanged.
//! `pod_supervisor.rs` is the one task that does the IO.
//!
//! Failover (`serve --lease`): `lease.rs` decides who leads from a Lease (pure), `leader_election.rs`
//! reads and writes it; the state is copied into Secrets (`state_chunks.rs` lays it out, pure;
//! `state_secrets.rs` writes and reads it) so a standby starts from where the leader was.
//!
//! Traffic goes through slipway's own proxy (to the pods' IPs), or — for an app with `[kubernetes]
//! gateway` — through the cluster's Gateway API gateway: `route_writer.rs` applies the app's own
//! HTTPRoute (`http_route.rs`, which says why its own) weighting a Service per release
//! (`services.rs`), and with `service`, switches a stable Service's selector. Before a release that
//! leaves such an app's traffic loses its pods, `unrouted.rs` waits for the write to land (`landed.rs`)
//! and for the gateway to report it (`route_status.rs`).
//!
//! A release's one-off commands (`[release] cmd`, `rollback_cmd`, cron runs) run as one pod each of
//! the release's image (`job_pod.rs`, pure; `job_runner.rs` runs it and reads its output).
//!
//! Why ReplicaSets and not bare pods: the cluster then keeps the count when a node or a pod goes
//! (eviction, a node drain), and `kubectl` shows each release as one object. Why not Deployments:
//! the rollout is slipway's, step by step; a Deployment would run its own.

mod binding;
pub mod docker_config;
pub mod http_route;
pub mod install;
pub mod job_pod;
mod job_runner;
mod landed;
pub mod leader_election;
pub mod lease;
pub mod names;
pub mod own_pod;
mod pod_logs;
pub mod pod_state;
mod pod_supervisor;
pub mod rbac;
mod route_status;
mod route_writer;
pub mod services;
pub mod state_chunks;
pub mod state_secrets;
pub mod template;
mod unrouted;

pub use docker_config::RegistryLogin;
pub use job_runner::JobRun;
pub use names::Key;
pub use pod_state::Observed;
pub use pod_supervisor::{Adopted, OwnedReplicaSet, PodStatus, PodSupervisor};
pub use route_writer::{
    AppTraffic, OnFailure, ReleaseMatch, ReleaseMirror, ReleaseTraffic, RouteWriter,
};
pub use template::PodTemplate;

/// The kubeconfig's (or, inside a pod, the in-cluster) configuration, with slipway's `User-Agent`
/// on every request, so the API server's audit log and metrics tell slipway's requests apart.
pub(crate) async fn config() -> Result<kube::Config, String> {
    let mut config = kube::Config::infer().await.map_err(|e| {
        format!("no Kubernetes configuration: {e} (set KUBECONFIG, or run inside a cluster)")
    })?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("slipway/", env!("CARGO_PKG_VERSION"))),
    ));
    Ok(config)
}

/// A client for the cluster of the kubeconfig (or the pod this runs in), and the namespace to use.
pub(crate) async fn client(namespace: Option<String>) -> Result<(kube::Client, String), String> {
    let config = config().await?;
    let namespace = namespace.unwrap_or_else(|| config.default_namespace.clone());
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .map_err(|e| format!("cannot make a client for {server}: {e}"))?;
    Ok((client, namespace))
}
