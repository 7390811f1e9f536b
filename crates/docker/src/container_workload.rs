//! An instance as a container on Docker: the [`Workload`] the [`ContainerSupervisor`] runs. A run is
//! one container, probed from outside on its address like a process, its output streamed into the
//! instance's log, its end learnt from the engine, removed once ended so the next run takes its name.
//!
//! The engine being unreachable for a while does not end a run: a running container keeps serving
//! without the engine, so its end is waited for by retrying the engine, and its probes keep watching.
//! Only starting a container needs the engine; a start that fails counts like a crash.
//!
//! [`ContainerSupervisor`]: crate::ContainerSupervisor

use crate::connector::Connector;
use crate::container::RunningContainer;
use crate::container_logs::LogStream;
use crate::error::DockerError;
use crate::exit::ContainerExit;
use crate::spec::{ContainerSpec, Network};
use futures_util::StreamExt;
use slipway_core::spec::ProbeSpec;
use slipway_runtime::lifecycle::Probes;
use slipway_runtime::log_capture::{LogSink, Stream};
use slipway_runtime::probe::{ProbeTarget, default_web_readiness, fmt_duration};
use slipway_runtime::workload::{Started, Workload};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often an unreachable engine is tried again while a container keeps running.
const ENGINE_RETRY: Duration = Duration::from_secs(2);
/// How long `stop` keeps trying an unreachable engine before leaving the container to the next
/// daemon start (which removes what it does not adopt).
const STOP_PATIENCE: Duration = Duration::from_secs(30);
/// After a container ended, how long its log stream may take to deliver the last lines.
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);

/// What to run for one container instance: the container, and how slipway watches it.
#[derive(Clone, Debug)]
pub struct ContainerInstance {
    /// Its `labels.instance` is the instance id.
    pub spec: ContainerSpec,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub startup: Option<ProbeSpec>,
    /// `docker stop`'s time between the stop signal and SIGKILL.
    pub grace: Duration,
    /// Output is appended here, as for processes (`slipway logs` reads it).
    pub log_path: PathBuf,
}

/// What status shows of a container instance beyond the common fields.
#[derive(Clone, Debug, Default)]
pub(crate) struct ContainerDetail {
    pub(crate) container_id: Option<String>,
    pub(crate) address: Option<SocketAddr>,
}

pub(crate) struct ContainerWorkload {
    pub(crate) engine: Connector,
    pub(crate) instance: ContainerInstance,
    pub(crate) sink: Arc<LogSink>,
}

/// One container of an instance: its end, waited for once through the engine, and its log stream.
pub(crate) struct ContainerRun {
    running: RunningContainer,
    exit: Pin<Box<dyn Future<Output = ContainerExit> + Send>>,
    output: Option<JoinHandle<()>>,
}

impl ContainerWorkload {
    /// A running container as a run of this instance; `adopted`: a previous daemon started it.
    pub(crate) fn run_of(
        &self,
        running: RunningContainer,
        adopted: bool,
    ) -> Started<ContainerRun, ContainerDetail> {
        let output = self.follow_output(&running.id, adopted);
        let exit = Box::pin(self.wait_for_exit(running.id.clone()));
        let target = Arc::new(ProbeTarget {
            addr: running.address,
            forwarded: matches!(self.instance.spec.network, Network::Loopback { .. }),
            workdir: PathBuf::from("/"),
            env: BTreeMap::new(),
        });
        let where_ = running
            .address
            .map(|addr| format!(" on {addr}"))
            .unwrap_or_default();
        Started {
            pid: None,
            port: running.address.map(|addr| addr.port()),
            detail: ContainerDetail {
                container_id: Some(running.id.clone()),
                address: running.address,
            },
            target,
            what: format!("container {}{where_}", short(&running.id)),
            run: ContainerRun {
                running,
                exit,
                output,
            },
        }
    }

    /// How the container ended, through the engine, retrying while the engine is unreachable (the
    /// container may well still run and serve).
    fn wait_for_exit(&self, id: String) -> impl Future<Output = ContainerExit> + Send + use<> {
        let engine = self.engine.clone();
        let sink = self.sink.clone();
        async move {
            let mut warned = false;
            loop {
                let result = match engine.engine().await {
                    Ok(engine) => engine.wait_exit(&id).await,
                    Err(err) => Err(err),
                };
                match result {
                    Ok(exit) => return exit,
                    Err(DockerError::ContainerNotFound { .. }) => {
                        return ContainerExit {
                            code: -1,
                            oom_killed: false,
                            error: Some("the container was removed outside slipway".into()),
                        };
                    }
                    Err(err) => {
                        if !warned {
                            sink.write_line(
                                Stream::Slipway,
                                &format!("{err}; the container is watched by its probes until the engine answers again"),
                            );
                            tracing::warn!(container = %id, "{err}");
                            warned = true;
                        }
                        tokio::time::sleep(ENGINE_RETRY).await;
                    }
                }
            }
        }
    }

    /// Streams the container's output into the log file until the container ends. An adopted
    /// container's output resumes where the file's last write left off.
    fn follow_output(&self, id: &str, adopted: bool) -> Option<JoinHandle<()>> {
        let engine = self.engine.connected()?;
        let since = if adopted {
            std::fs::metadata(&self.instance.log_path)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|at| at.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |at| at.as_secs() as i64)
        } else {
            0
        };
        let sink = self.sink.clone();
        let lines = engine.logs_since(id, true, since);
        Some(tokio::spawn(async move {
            tokio::pin!(lines);
            while let Some(line) = lines.next().await {
                match line {
                    Ok(line) => {
                        let stream = match line.stream {
                            LogStream::Stdout => Stream::Stdout,
                            LogStream::Stderr => Stream::Stderr,
                        };
                        sink.write_line(stream, &line.text);
                    }
                    Err(err) => {
                        tracing::debug!("log stream ended: {err}");
                        return;
                    }
                }
            }
        }))
    }
}

impl Workload for ContainerWorkload {
    type Run = ContainerRun;
    type Detail = ContainerDetail;
    const PORT_OUTLIVES_A_RUN: bool = false;

    fn probes(&self) -> Probes {
        Probes {
            startup: self.instance.startup.clone(),
            readiness: self
                .instance
                .readiness
                .clone()
                .or_else(|| self.instance.spec.port.map(|_| default_web_readiness())),
            liveness: self.instance.liveness.clone(),
        }
    }

    /// Creates and starts a fresh container.
    async fn start(&self) -> Result<Started<ContainerRun, ContainerDetail>, String> {
        let engine = self.engine.engine().await.map_err(|e| e.to_string())?;
        let spec = &self.instance.spec;
        // A leftover of this instance's previous run (e.g. the engine was unreachable when it ended).
        let _ = engine
            .remove_instance(&engine.container_name(&spec.labels.instance))
            .await;
        self.sink.clear_tail();
        let running = engine.run_instance(spec).await.map_err(|e| e.to_string())?;
        self.sink.write_line(
            Stream::Slipway,
            &format!(
                "started container {} ({}) from image {}{}",
                running.name,
                short(&running.id),
                running.image.short(),
                running
                    .address
                    .map(|addr| format!(", answering on {addr}"))
                    .unwrap_or_default()
            ),
        );
        Ok(self.run_of(running, false))
    }

    async fn exited(&self, run: &mut ContainerRun) -> String {
        // The wait lives in the run, so polling it again after other events loses nothing.
        (&mut run.exit).await.to_string()
    }

    /// `docker stop` with the grace period, then remove; keeps trying an unreachable engine for a
    /// while. Describes how it ended.
    async fn kill(&self, run: &mut ContainerRun) -> String {
        let id = &run.running.id;
        let deadline = Instant::now() + STOP_PATIENCE;
        loop {
            let result = match self.engine.engine().await {
                Ok(engine) => engine.stop_instance(id, self.instance.grace).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(exit) => return exit.to_string(),
                Err(DockerError::ContainerNotFound { .. }) => {
                    return "already gone".into();
                }
                Err(err @ DockerError::EngineUnreachable { .. }) if Instant::now() < deadline => {
                    tracing::warn!(container = %id, "{err}; trying again");
                    tokio::time::sleep(ENGINE_RETRY).await;
                }
                Err(err) => {
                    let note = format!(
                        "could not be stopped ({err}); it is removed when the daemon next starts with the engine reachable"
                    );
                    self.sink.write_line(Stream::Slipway, &note);
                    return note;
                }
            }
        }
    }

    fn stopping(&self, _run: &ContainerRun) -> String {
        format!(
            "docker stop, SIGKILL after {}",
            fmt_duration(self.instance.grace)
        )
    }

    fn kill_verb(&self) -> &'static str {
        "stopping the container"
    }

    /// Waits (bounded) for the log stream to deliver the container's last lines.
    async fn drain_output(&self, run: &mut ContainerRun) {
        let Some(task) = run.output.take() else {
            return;
        };
        let abort = task.abort_handle();
        if tokio::time::timeout(OUTPUT_DRAIN, task).await.is_err() {
            abort.abort();
        }
    }

    /// The new daemon of an upgrade follows the log from here: stop streaming it.
    fn detach(&self, run: ContainerRun) {
        if let Some(task) = run.output {
            task.abort();
        }
    }

    /// The container ended by itself: removed, so the next run can take its name.
    async fn discard(&self, run: ContainerRun) {
        if let Ok(engine) = self.engine.engine().await
            && let Err(err) = engine.remove_instance(&run.running.id).await
        {
            tracing::warn!(container = %run.running.name, "cannot remove the ended container: {err}");
        }
    }
}

/// The first 12 characters of a container id, as `docker ps` shows it.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
