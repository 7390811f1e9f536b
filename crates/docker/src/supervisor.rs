//! Containers as supervised instances: the same start / stop / events shape as the process runtime's
//! `Supervisor`, so the controller drives both alike.
//!
//! Each instance gets one task for its whole life. It runs a container, probes it from outside on its
//! address (slipway's own startup/readiness/liveness probes, exactly as for processes), streams its
//! output into the instance's log file, waits for its end through the engine, and on an exit or an
//! OOM kill removes it and runs a fresh one after the process runtime's backoff, with the reason in
//! the event. Every state change is an [`InstanceEvent`] on the controller's channel.
//!
//! The engine being unreachable for a while does not end an instance: a running container keeps
//! serving without the engine, so the task keeps probing it and retries the engine. Only starting a
//! container needs the engine, and a start that fails counts like a crash (backoff, crash loop).

use crate::connector::Connector;
use crate::container::RunningContainer;
use crate::error::DockerError;
use crate::exit::ContainerExit;
use crate::logs::LogStream;
use crate::spec::{ContainerSpec, Network};
use futures_util::StreamExt;
use slipway_core::spec::ProbeSpec;
use slipway_runtime::logs::{LogSink, Stream};
use slipway_runtime::probe::{
    ProbeKind, ProbeResult, ProbeTarget, ProbeTracker, default_web_readiness, fmt_duration,
    spawn_probe,
};
use slipway_runtime::restart::{RestartPolicy, STABLE_AFTER};
use slipway_runtime::{InstanceEvent, InstanceState, InstanceStatus};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// A container without a port and without probes is Ready once it has run this long (as processes).
const RUNNING_IS_READY_AFTER: Duration = Duration::from_secs(1);
/// How often an unreachable engine is tried again while a container keeps running.
const ENGINE_RETRY: Duration = Duration::from_secs(2);
/// How long `stop` keeps trying an unreachable engine before leaving the container to the next
/// daemon start (which removes what it does not adopt).
const STOP_PATIENCE: Duration = Duration::from_secs(30);
/// After a container ended, how long its log stream may take to deliver the last lines.
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);
const QUOTED_LINE_MAX: usize = 200;

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
    inner: Arc<Inner>,
}

struct Inner {
    engine: Connector,
    events: mpsc::UnboundedSender<InstanceEvent>,
    instances: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    status: ContainerStatus,
    stop: CancellationToken,
    done: watch::Receiver<bool>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.instances
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ContainerSupervisor {
    /// Events go to `events`: the same channel as the process runtime's, for one controller.
    pub fn new(
        engine: Connector,
        events: mpsc::UnboundedSender<InstanceEvent>,
    ) -> ContainerSupervisor {
        ContainerSupervisor {
            inner: Arc::new(Inner {
                engine,
                events,
                instances: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn connector(&self) -> &Connector {
        &self.inner.engine
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
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("ContainerSupervisor::start must be called within a tokio runtime".into());
        }
        let id = instance.spec.labels.instance.clone();
        instance.spec.validate()?;
        let mut instances = self.inner.lock();
        if instances
            .get(&id)
            .is_some_and(|entry| !*entry.done.borrow())
        {
            return Err(format!("instance {id} is already running"));
        }
        let sink = LogSink::open(&instance.log_path)
            .map_err(|err| format!("cannot open {}: {err}", instance.log_path.display()))?;
        let labels = &instance.spec.labels;
        let status = ContainerStatus {
            instance: InstanceStatus {
                id: id.clone(),
                app: labels.app.clone(),
                release: labels.release,
                process: labels.process.clone(),
                pid: None,
                port: None,
                state: if adopted.as_ref().is_some_and(|(_, ready)| *ready) {
                    InstanceState::Ready
                } else {
                    InstanceState::Starting
                },
                restarts: 0,
                started_at: SystemTime::now(),
            },
            container_id: adopted.as_ref().map(|(c, _)| c.id.clone()),
            address: adopted.as_ref().and_then(|(c, _)| c.address),
        };
        let stop = CancellationToken::new();
        let (done_tx, done) = watch::channel(false);
        instances.insert(
            id.clone(),
            Entry {
                status: status.clone(),
                stop: stop.clone(),
                done,
            },
        );
        drop(instances);
        let task = Task {
            inner: self.inner.clone(),
            instance,
            sink,
            stop,
            policy: RestartPolicy::default(),
        };
        tokio::spawn(task.run(adopted, done_tx));
        Ok(status)
    }

    pub fn status(&self, id: &str) -> Option<ContainerStatus> {
        self.inner.lock().get(id).map(|entry| entry.status.clone())
    }

    /// Stops for good: `docker stop` with the grace period, then remove. Resolves when done (state
    /// Stopped). Idempotent; an unknown id returns at once. Call it after the proxy drained it.
    pub async fn stop(&self, id: &str) {
        let (stop, mut done) = match self.inner.lock().get(id) {
            Some(entry) => (entry.stop.clone(), entry.done.clone()),
            None => return,
        };
        stop.cancel();
        let _ = done.wait_for(|done| *done).await;
    }

    /// Drops a stopped instance from `status`. Returns false if it is unknown or still running.
    pub fn forget(&self, id: &str) -> bool {
        let mut instances = self.inner.lock();
        if instances.get(id).is_some_and(|entry| *entry.done.borrow()) {
            instances.remove(id);
            return true;
        }
        false
    }
}

/// How one container's run ended.
struct RunEnd {
    last_exit: String,
    message: String,
    reached_ready: bool,
    stopped: bool,
}

impl RunEnd {
    fn failed_start(err: &DockerError) -> RunEnd {
        let last_exit = format!("could not be started: {err}");
        RunEnd {
            message: last_exit.clone(),
            last_exit,
            reached_ready: false,
            stopped: false,
        }
    }
}

/// The task owning one instance from start to Stopped.
struct Task {
    inner: Arc<Inner>,
    instance: ContainerInstance,
    sink: Arc<LogSink>,
    stop: CancellationToken,
    policy: RestartPolicy,
}

impl Task {
    async fn run(mut self, adopted: Option<(RunningContainer, bool)>, done: watch::Sender<bool>) {
        let mut next = adopted;
        let last_exit = loop {
            let end = match next.take() {
                Some((running, ready)) => self.supervise(running, Some(ready)).await,
                None => match self.run_container().await {
                    Ok(running) => self.supervise(running, None).await,
                    Err(err) => {
                        self.sink
                            .write_line(Stream::Slipway, &format!("could not be started: {err}"));
                        RunEnd::failed_start(&err)
                    }
                },
            };
            if end.stopped || self.stop.is_cancelled() {
                break end.last_exit;
            }
            let restart = self.policy.on_exit(end.reached_ready);
            let (state, message) = self.policy.announce(restart, &end.last_exit, &end.message);
            self.update(|status| {
                status.container_id = None;
                status.address = None;
                status.instance.port = None;
                status.instance.restarts = restart.restarts;
            });
            self.transition(state, message);
            tokio::select! {
                _ = tokio::time::sleep(restart.delay) => {}
                _ = self.stop.cancelled() => break end.last_exit,
            }
        };
        self.update(|status| {
            status.container_id = None;
            status.instance.port = None;
        });
        self.transition(
            InstanceState::Stopped {
                last_exit: last_exit.clone(),
            },
            format!("stopped: {last_exit}"),
        );
        let _ = done.send(true);
    }

    /// Creates and starts a fresh container. A stop asked meanwhile is honoured once it runs.
    async fn run_container(&mut self) -> Result<RunningContainer, DockerError> {
        let engine = self.inner.engine.engine().await?;
        let spec = &self.instance.spec;
        // A leftover of this instance's previous run (e.g. the engine was unreachable when it ended).
        let _ = engine
            .remove_instance(&engine.container_name(&spec.labels.instance))
            .await;
        self.sink.clear_tail();
        let running = engine.run_instance(spec).await?;
        self.sink.write_line(
            Stream::Slipway,
            &format!(
                "started container {} ({}) from image {}{}",
                running.name,
                &running.id[..running.id.len().min(12)],
                running.image.short(),
                running
                    .address
                    .map(|addr| format!(", answering on {addr}"))
                    .unwrap_or_default()
            ),
        );
        Ok(running)
    }

    /// Watches one container until it ends, a probe kills it, or `stop` is called. `adopted`: taken
    /// over from a previous daemon, and whether it was found ready.
    async fn supervise(&mut self, running: RunningContainer, adopted: Option<bool>) -> RunEnd {
        let ready_at_once = adopted == Some(true);
        let adopted = adopted.is_some();
        let started = Instant::now();
        self.update(|status| {
            status.container_id = Some(running.id.clone());
            status.address = running.address;
            status.instance.port = running.address.map(|addr| addr.port());
            status.instance.started_at = SystemTime::now();
        });
        let verb = if adopted {
            "adopted after a daemon restart: running"
        } else if self.policy.unready_streak() > 0 || self.restarts() > 0 {
            "restarted"
        } else {
            "started"
        };
        let where_ = running
            .address
            .map(|addr| format!(" on {addr}"))
            .unwrap_or_default();
        let message = format!(
            "{verb} container {}{where_}",
            &running.id[..running.id.len().min(12)]
        );
        if ready_at_once {
            self.transition(InstanceState::Ready, message);
        } else if adopted {
            self.transition(InstanceState::Starting, format!("{message}, not ready yet"));
        } else {
            let state = match self.status_state() {
                state @ InstanceState::CrashLoop { .. } if self.policy.crash_looping() => state,
                _ => InstanceState::Starting,
            };
            self.transition(state, message);
        }

        let output = self.follow_output(&running.id, adopted);
        let target = Arc::new(ProbeTarget {
            addr: running.address,
            forwarded: matches!(self.instance.spec.network, Network::Loopback { .. }),
            workdir: PathBuf::from("/"),
            env: BTreeMap::new(),
        });
        let (results_tx, mut results) = mpsc::channel::<ProbeResult>(8);
        let readiness_spec = self
            .instance
            .readiness
            .clone()
            .or_else(|| self.instance.spec.port.map(|_| default_web_readiness()));
        let mut readiness = readiness_spec.as_ref().map(ProbeTracker::new);
        let mut liveness = self.instance.liveness.as_ref().map(ProbeTracker::new);
        // An adopted container already passed its startup probe under the previous daemon.
        let mut startup = match (&self.instance.startup, adopted) {
            (Some(spec), false) => Some((
                ProbeTracker::new(spec),
                spawn_probe(
                    ProbeKind::Startup,
                    spec.clone(),
                    target.clone(),
                    results_tx.clone(),
                ),
            )),
            _ => None,
        };
        let mut probes: Vec<AbortOnDropHandle<()>> = Vec::new();
        let mut reached_ready = ready_at_once;
        let mut ready_since = ready_at_once.then(Instant::now);
        if ready_at_once {
            self.policy.on_ready();
        }
        let mut stable = false;
        let mut ready_when_running = None;
        if startup.is_none() {
            probes = self.main_probes(&readiness_spec, &target, &results_tx);
            if readiness.is_none() && !ready_at_once {
                ready_when_running = Some(started + RUNNING_IS_READY_AFTER);
            }
        }
        let waiting = self.wait_for_exit(running.id.clone());
        tokio::pin!(waiting);

        loop {
            let stable_at = ready_since.map_or_else(far_future, |since| since + STABLE_AFTER);
            tokio::select! {
                exit = &mut waiting => {
                    drop(probes);
                    drain_output(output).await;
                    return self.ended(&running, exit, started, reached_ready).await;
                }
                _ = self.stop.cancelled() => {
                    drop(probes);
                    self.transition(
                        InstanceState::Stopping,
                        format!("stopping: docker stop, SIGKILL after {}", fmt_duration(self.instance.grace)),
                    );
                    let last_exit = self.stop_container(&running.id).await;
                    drain_output(output).await;
                    self.sink.write_line(Stream::Slipway, &format!("stopped: {last_exit}"));
                    return RunEnd { message: last_exit.clone(), last_exit, reached_ready, stopped: true };
                }
                _ = tokio::time::sleep_until(ready_when_running.unwrap_or_else(far_future)), if ready_when_running.is_some() => {
                    ready_when_running = None;
                    let why = format!("running for {}", fmt_duration(RUNNING_IS_READY_AFTER));
                    reached_ready = self.become_ready(&mut ready_since, &why);
                }
                _ = tokio::time::sleep_until(stable_at), if ready_since.is_some() && !stable => {
                    self.policy.on_stable();
                    stable = true;
                }
                Some(probe) = results.recv() => {
                    let ok = probe.result.is_ok();
                    let reason = probe.result.err().unwrap_or_default();
                    let kill = match probe.kind {
                        ProbeKind::Startup => {
                            let Some((tracker, _)) = startup.as_mut() else { continue };
                            match tracker.record(ok) {
                                Some(true) => {
                                    startup = None;
                                    probes = self.main_probes(&readiness_spec, &target, &results_tx);
                                    if readiness.is_none() {
                                        reached_ready = self.become_ready(&mut ready_since, "startup probe passed");
                                    }
                                    None
                                }
                                Some(false) => Some((ProbeKind::Startup, tracker.consecutive_failures())),
                                None => None,
                            }
                        }
                        ProbeKind::Liveness => {
                            let Some(tracker) = liveness.as_mut() else { continue };
                            (tracker.record(ok) == Some(false))
                                .then(|| (ProbeKind::Liveness, tracker.consecutive_failures()))
                        }
                        ProbeKind::Readiness => {
                            let Some(tracker) = readiness.as_mut() else { continue };
                            match tracker.record(ok) {
                                Some(true) => {
                                    let why = if reached_ready { "readiness probe passing again" } else { "readiness probe passed" };
                                    reached_ready |= self.become_ready(&mut ready_since, why);
                                }
                                Some(false) if reached_ready => {
                                    if ready_since.take().is_some_and(|since| since.elapsed() >= STABLE_AFTER) {
                                        self.policy.on_stable();
                                    }
                                    let failures = tracker.consecutive_failures();
                                    self.transition(
                                        InstanceState::Unready,
                                        format!("readiness probe failed {failures} times in a row: {reason}"),
                                    );
                                }
                                _ => {}
                            }
                            None
                        }
                    };
                    if let Some((kind, failures)) = kill {
                        drop(startup);
                        drop(probes);
                        let why = format!("{} probe failed {failures} times in a row ({reason})", kind.name());
                        self.sink.write_line(Stream::Slipway, &format!("{why}; stopping the container"));
                        let killed = self.stop_container(&running.id).await;
                        drain_output(output).await;
                        return RunEnd {
                            message: format!("{why}; {killed}"),
                            last_exit: format!("{killed} after its {} probe failed", kind.name()),
                            reached_ready,
                            stopped: false,
                        };
                    }
                }
            }
        }
    }

    fn main_probes(
        &self,
        readiness: &Option<ProbeSpec>,
        target: &Arc<ProbeTarget>,
        results: &mpsc::Sender<ProbeResult>,
    ) -> Vec<AbortOnDropHandle<()>> {
        let mut probes = Vec::new();
        if let Some(spec) = readiness {
            probes.push(spawn_probe(
                ProbeKind::Readiness,
                spec.clone(),
                target.clone(),
                results.clone(),
            ));
        }
        if let Some(spec) = &self.instance.liveness {
            probes.push(spawn_probe(
                ProbeKind::Liveness,
                spec.clone(),
                target.clone(),
                results.clone(),
            ));
        }
        probes
    }

    /// How the container ended, through the engine, retrying while the engine is unreachable (the
    /// container may well still run and serve).
    fn wait_for_exit(
        &self,
        id: String,
    ) -> impl std::future::Future<Output = ContainerExit> + use<> {
        let engine = self.inner.engine.clone();
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

    /// After the container ended by itself: the sentence for the event, and the container removed so
    /// the next run can take its name.
    async fn ended(
        &mut self,
        running: &RunningContainer,
        exit: ContainerExit,
        started: Instant,
        reached_ready: bool,
    ) -> RunEnd {
        let elapsed = fmt_duration(started.elapsed());
        let mut message = format!("{exit} after {elapsed}");
        let tail = self.sink.tail();
        if !tail.is_empty() {
            let quoted: Vec<&str> = tail.iter().map(|l| truncate(l, QUOTED_LINE_MAX)).collect();
            message.push_str("; last output: ");
            message.push_str(&quoted.join(" | "));
        }
        self.sink
            .write_line(Stream::Slipway, &format!("{exit} after {elapsed}"));
        if let Ok(engine) = self.inner.engine.engine().await
            && let Err(err) = engine.remove_instance(&running.id).await
        {
            tracing::warn!(container = %running.name, "cannot remove the ended container: {err}");
        }
        RunEnd {
            last_exit: exit.to_string(),
            message,
            reached_ready,
            stopped: false,
        }
    }

    /// `docker stop` with the grace period, then remove; keeps trying an unreachable engine for a
    /// while. Describes how it ended.
    async fn stop_container(&self, id: &str) -> String {
        let deadline = Instant::now() + STOP_PATIENCE;
        loop {
            let result = match self.inner.engine.engine().await {
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

    /// Streams the container's output into the log file until the container ends. An adopted
    /// container's output resumes where the file's last write left off.
    fn follow_output(&self, id: &str, adopted: bool) -> Option<tokio::task::JoinHandle<()>> {
        let engine = self.inner.engine.connected()?;
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

    fn become_ready(&mut self, ready_since: &mut Option<Instant>, why: &str) -> bool {
        self.policy.on_ready();
        // An adopted container is Ready from the start: its first passing probe changes nothing.
        if self.status_state() != InstanceState::Ready {
            *ready_since = Some(Instant::now());
            self.transition(InstanceState::Ready, format!("ready: {why}"));
        }
        true
    }

    fn restarts(&self) -> u32 {
        self.inner
            .lock()
            .get(&self.instance.spec.labels.instance)
            .map_or(0, |entry| entry.status.instance.restarts)
    }

    fn status_state(&self) -> InstanceState {
        self.inner
            .lock()
            .get(&self.instance.spec.labels.instance)
            .map_or(InstanceState::Starting, |entry| {
                entry.status.instance.state.clone()
            })
    }

    fn update(&self, change: impl FnOnce(&mut ContainerStatus)) {
        if let Some(entry) = self
            .inner
            .lock()
            .get_mut(&self.instance.spec.labels.instance)
        {
            change(&mut entry.status);
        }
    }

    fn transition(&self, state: InstanceState, message: String) {
        self.update(|status| status.instance.state = state.clone());
        let labels = &self.instance.spec.labels;
        tracing::info!(instance = %labels.instance, state = state.name(), "{message}");
        let _ = self.inner.events.send(InstanceEvent {
            id: labels.instance.clone(),
            app: labels.app.clone(),
            release: labels.release,
            state,
            message,
        });
    }
}

/// Waits (bounded) for the log stream to deliver the container's last lines.
async fn drain_output(output: Option<tokio::task::JoinHandle<()>>) {
    let Some(task) = output else { return };
    let abort = task.abort_handle();
    if tokio::time::timeout(OUTPUT_DRAIN, task).await.is_err() {
        abort.abort();
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

fn truncate(line: &str, max: usize) -> &str {
    match line.char_indices().nth(max) {
        Some((index, _)) => &line[..index],
        None => line,
    }
}
