//! Where an instance runs: a process on this host (`slipway-runtime`), a container on Docker
//! (`slipway-docker`), or a pod on Kubernetes (`slipway-kube`, with `serve --kubernetes`, where it
//! replaces Docker for image processes). All report the same `InstanceEvent`s on one channel and are stopped the same
//! way after the proxy drained them, so the controller only asks "which runtime" to start, stop, and
//! describe an instance. The rollout core, the route table and the drain order do not know.

use slipway_docker::ContainerSupervisor;
use slipway_runtime::Supervisor;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Process,
    Container,
    /// A pod of the release process's ReplicaSet (`serve --kubernetes`).
    Pod,
}

/// The runtimes, sharing the controller's event channel.
#[derive(Clone)]
pub struct Runtimes {
    pub processes: Supervisor,
    pub containers: ContainerSupervisor,
    /// Set by `serve --kubernetes`: image processes run as pods, not containers.
    #[cfg(feature = "kubernetes")]
    pub pods: Option<slipway_kube::PodSupervisor>,
    /// With pods: writes the HTTPRoutes and Services of apps a gateway routes (set by the controller).
    #[cfg(feature = "kubernetes")]
    pub traffic: Option<slipway_kube::RouteWriter>,
}

/// What `status` shows of a live instance, whichever runtime it is on.
#[derive(Debug, Default)]
pub struct Live {
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub restarts: u32,
    /// Where it answers now (a container's address changes when it is replaced after a crash).
    pub address: Option<SocketAddr>,
    pub container: Option<String>,
}

impl Runtimes {
    /// Stops for good (call after the drain) and forgets it; resolves once it has ended.
    pub async fn stop(&self, kind: RuntimeKind, id: &str) {
        match kind {
            RuntimeKind::Process => {
                self.processes.stop(id).await;
                self.processes.forget(id);
            }
            RuntimeKind::Container => {
                self.containers.stop(id).await;
                self.containers.forget(id);
            }
            RuntimeKind::Pod =>
            {
                #[cfg(feature = "kubernetes")]
                if let Some(pods) = &self.pods {
                    pods.stop(id).await;
                    pods.forget(id);
                }
            }
        }
    }

    /// On Kubernetes, the Services of `app`'s releases `canary` and `stable` (what a gateway routes
    /// to, named in its metrics): `{{service}}` and `{{stable_service}}` in analysis queries.
    pub fn release_services(
        &self,
        app: &str,
        canary: u64,
        stable: Option<u64>,
    ) -> (Option<String>, Option<String>) {
        #[cfg(feature = "kubernetes")]
        if let Some(pods) = &self.pods {
            return (
                Some(pods.release_service(app, canary)),
                stable.map(|v| pods.release_service(app, v)),
            );
        }
        let _ = (app, canary, stable);
        (None, None)
    }

    /// Whether image processes run as pods (`serve --kubernetes`).
    pub fn on_kubernetes(&self) -> bool {
        #[cfg(feature = "kubernetes")]
        return self.pods.is_some();
        #[cfg(not(feature = "kubernetes"))]
        false
    }

    /// Where an instance answers now, if its runtime moves it (a container replaced after a crash,
    /// a pod rebound to another pod of its ReplicaSet).
    pub fn address(&self, kind: RuntimeKind, id: &str) -> Option<SocketAddr> {
        match kind {
            RuntimeKind::Process => None,
            RuntimeKind::Container => self.containers.status(id).and_then(|s| s.address),
            RuntimeKind::Pod => self.live(kind, id).and_then(|l| l.address),
        }
    }

    pub fn live(&self, kind: RuntimeKind, id: &str) -> Option<Live> {
        match kind {
            RuntimeKind::Process => self.processes.status(id).map(|s| Live {
                pid: s.pid,
                port: s.port,
                restarts: s.restarts,
                address: s.port.map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
                container: None,
            }),
            RuntimeKind::Container => self.containers.status(id).map(|s| Live {
                pid: None,
                port: s.instance.port,
                restarts: s.instance.restarts,
                address: s.address,
                container: s.container_id,
            }),
            #[cfg(feature = "kubernetes")]
            RuntimeKind::Pod => self.pods.as_ref()?.status(id).map(|s| Live {
                pid: None,
                port: s.address.map(|a| a.port()),
                restarts: s.restarts,
                address: s.address,
                container: s.pod,
            }),
            #[cfg(not(feature = "kubernetes"))]
            RuntimeKind::Pod => None,
        }
    }
}
