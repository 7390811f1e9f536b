//! Where an instance runs: a process on this host (`slipway-runtime`) or a container on Docker
//! (`slipway-docker`). Both report the same `InstanceEvent`s on one channel and are stopped the same
//! way after the proxy drained them, so the controller only asks "which runtime" to start, stop, and
//! describe an instance. The rollout core, the route table and the drain order do not know.

use slipway_docker::ContainerSupervisor;
use slipway_runtime::Supervisor;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Process,
    Container,
}

/// Both runtimes, sharing the controller's event channel.
#[derive(Clone)]
pub struct Runtimes {
    pub processes: Supervisor,
    pub containers: ContainerSupervisor,
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
        }
    }
}
