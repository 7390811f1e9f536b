//! Containers as supervised instances: the one generic supervisor of `slipway-runtime` over
//! [`ContainerWorkload`](crate::container_workload::ContainerWorkload), with the same start / stop /
//! events shape as the process runtime's `Supervisor`, so the controller drives both alike — plus
//! what only containers do: take over a running container a previous daemon started.

use crate::connector::Connector;
use crate::container::RunningContainer;
use crate::container_workload::{ContainerDetail, ContainerInstance, ContainerWorkload};
use slipway_runtime::log_capture::LogSink;
use slipway_runtime::supervision::{FirstRun, Supervision};
use slipway_runtime::{InstanceEvent, InstanceState, InstanceStatus};
use std::net::SocketAddr;
use std::time::SystemTime;
use tokio::sync::mpsc;

/// A snapshot of one container instance.
#[derive(Clone, Debug)]
pub struct ContainerStatus {
    /// As for processes; `pid` is always `None`, `port` is the published host port.
    pub instance: InstanceStatus,
    /// The current container, while one exists.
    pub container_id: Option<String>,
    /// Where the current container answers: what the proxy and the probes use.
    pub address: Option<SocketAddr>,
}

/// Runs and watches container instances. Cheap to clone; clones share the instances.
#[derive(Clone)]
pub struct ContainerSupervisor {
    engine: Connector,
    supervision: Supervision<ContainerWorkload>,
}

impl ContainerSupervisor {
    /// Events go to `events`: the same channel as the process runtime's, for one controller.
    pub fn new(
        engine: Connector,
        events: mpsc::UnboundedSender<InstanceEvent>,
    ) -> ContainerSupervisor {
        ContainerSupervisor {
            engine,
            supervision: Supervision::new(events),
        }
    }

    pub fn connector(&self) -> &Connector {
        &self.engine
    }

    /// Starts supervising a new instance and returns at once, in state Starting; creating the
    /// container happens in its task (a failure there is reported like a crash). Fails only if the id
    /// is already running or the log file cannot be opened.
    pub fn start(&self, instance: ContainerInstance) -> Result<ContainerStatus, String> {
        self.launch(instance, None)
    }

    /// Takes over a running container a previous daemon started, without a restart. `ready`: the
    /// caller's readiness check just passed, so it is Ready (routable) at once; otherwise it starts
    /// unready and its probes decide, as for a new container (its startup probe is not run again).
    pub fn adopt(
        &self,
        instance: ContainerInstance,
        running: RunningContainer,
        ready: bool,
    ) -> Result<ContainerStatus, String> {
        self.launch(instance, Some((running, ready)))
    }

    fn launch(
        &self,
        instance: ContainerInstance,
        adopted: Option<(RunningContainer, bool)>,
    ) -> Result<ContainerStatus, String> {
        let id = instance.spec.labels.instance.clone();
        instance.spec.validate()?;
        if self.supervision.is_running(&id) {
            return Err(format!("instance {id} is already running"));
        }
        let sink = LogSink::open(&instance.log_path)
            .map_err(|err| format!("cannot open {}: {err}", instance.log_path.display()))?;
        let labels = &instance.spec.labels;
        let ready = adopted.as_ref().is_some_and(|(_, ready)| *ready);
        let status = InstanceStatus {
            id: id.clone(),
            app: labels.app.clone(),
            release: labels.release,
            process: labels.process.clone(),
            pid: None,
            port: None,
            state: if ready {
                InstanceState::Ready
            } else {
                InstanceState::Starting
            },
            restarts: 0,
            started_at: SystemTime::now(),
        };
        let detail = ContainerDetail {
            container_id: adopted.as_ref().map(|(c, _)| c.id.clone()),
            address: adopted.as_ref().and_then(|(c, _)| c.address),
        };
        let workload = ContainerWorkload {
            engine: self.engine.clone(),
            instance,
            sink: sink.clone(),
        };
        let first = adopted.map(|(running, ready)| FirstRun {
            started: workload.run_of(running, true),
            adopted_ready: Some(ready),
        });
        let instance = self.supervision.launch(workload, status, sink, first)?;
        Ok(ContainerStatus {
            instance,
            container_id: detail.container_id,
            address: detail.address,
        })
    }

    pub fn status(&self, id: &str) -> Option<ContainerStatus> {
        self.supervision
            .status(id)
            .map(|(instance, detail)| ContainerStatus {
                instance,
                container_id: detail.container_id,
                address: detail.address,
            })
    }

    /// Stops for good: `docker stop` with the grace period, then remove. Resolves when done (state
    /// Stopped). Idempotent; an unknown id returns at once. Call it after the proxy drained it.
    pub async fn stop(&self, id: &str) {
        self.supervision.stop(id).await
    }

    /// Lets go of every instance without stopping it, for the daemon an upgrade hands them to.
    pub async fn detach_all(&self) {
        self.supervision.detach_all().await
    }

    /// Drops a stopped instance from `status`. Returns false if it is unknown or still running.
    pub fn forget(&self, id: &str) -> bool {
        self.supervision.forget(id)
    }
}
