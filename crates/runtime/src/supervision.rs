//! The one supervisor, generic over the [`Workload`] an instance runs on: it starts runs, watches them
//! with probes, restarts them after crashes with backoff, flags crash loops, and stops them for good.
//!
//! Each instance gets one tokio task that owns its run for the instance's whole life: it feeds probe
//! results and timers to the run's [`Lifecycle`] (the pure decisions) and carries out its steps. The
//! shared map only holds snapshots and a stop token, so `status`/`list` never wait on a run. Every
//! state change is published as an [`InstanceEvent`] on an unbounded channel: the controller reacts to
//! events and must not miss one, and their rate is bounded by probes and backoff.

use crate::instance::{InstanceEvent, InstanceState, InstanceStatus};
use crate::lifecycle::{Lifecycle, Probes, Step};
use crate::log_capture::{LogSink, Stream};
use crate::probe::{ProbeKind, ProbeResult, ProbeTarget, fmt_duration, spawn_probe};
use crate::restart::RestartPolicy;
use crate::workload::{Started, Workload};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Exit messages quote at most this many characters of each output line.
const QUOTED_LINE_MAX: usize = 200;

/// The instances of one kind of workload. Cheap to clone; clones share the instances.
pub struct Supervision<W: Workload> {
    inner: Arc<Inner<W::Detail>>,
}

impl<W: Workload> Clone for Supervision<W> {
    fn clone(&self) -> Self {
        Supervision {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<D> {
    events: mpsc::UnboundedSender<InstanceEvent>,
    instances: Mutex<HashMap<String, Entry<D>>>,
    /// Cancelled when another daemon takes every instance over: tasks end, runs keep going.
    detach: CancellationToken,
}

struct Entry<D> {
    status: InstanceStatus,
    detail: D,
    stop: CancellationToken,
    /// Becomes true when the instance task has finished (the instance is Stopped).
    done: watch::Receiver<bool>,
}

impl<D> Inner<D> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry<D>>> {
        // Entries are plain snapshots, consistent after any panic: keep serving them.
        self.instances
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A run that is already going when supervision starts.
pub struct FirstRun<W: Workload> {
    pub started: Started<W::Run, W::Detail>,
    /// `Some(ready)`: taken over from a previous daemon, found ready or not.
    pub adopted_ready: Option<bool>,
}

impl<W: Workload> Supervision<W> {
    /// Events go to `events`; several supervisions may share one channel (one controller).
    pub fn new(events: mpsc::UnboundedSender<InstanceEvent>) -> Supervision<W> {
        Supervision {
            inner: Arc::new(Inner {
                events,
                instances: Mutex::new(HashMap::new()),
                detach: CancellationToken::new(),
            }),
        }
    }

    pub fn event_sender(&self) -> mpsc::UnboundedSender<InstanceEvent> {
        self.inner.events.clone()
    }

    /// Whether an instance with this id is running (not yet Stopped).
    pub fn is_running(&self, id: &str) -> bool {
        self.inner
            .lock()
            .get(id)
            .is_some_and(|entry| !*entry.done.borrow())
    }

    /// Ids of the instances not yet Stopped.
    pub fn running(&self) -> Vec<String> {
        self.inner
            .lock()
            .iter()
            .filter(|(_, entry)| !*entry.done.borrow())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Starts supervising an instance, from `first` if a run is already going, else by starting one
    /// in its task. Returns at once. Fails if the id is running already (a stopped instance with the
    /// same id is replaced) or if called outside a tokio runtime.
    pub fn launch(
        &self,
        workload: W,
        status: InstanceStatus,
        sink: Arc<LogSink>,
        first: Option<FirstRun<W>>,
    ) -> Result<InstanceStatus, String> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("a supervisor must be started within a tokio runtime".into());
        }
        if self.inner.detach.is_cancelled() {
            return Err("this daemon has handed its instances over to another".into());
        }
        let mut instances = self.inner.lock();
        if instances
            .get(&status.id)
            .is_some_and(|entry| !*entry.done.borrow())
        {
            return Err(format!("instance {} is already running", status.id));
        }
        let stop = CancellationToken::new();
        let (done_tx, done) = watch::channel(false);
        instances.insert(
            status.id.clone(),
            Entry {
                status: status.clone(),
                detail: W::Detail::default(),
                stop: stop.clone(),
                done,
            },
        );
        drop(instances);
        let task = Task {
            inner: self.inner.clone(),
            id: status.id.clone(),
            app: status.app.clone(),
            release: status.release,
            workload,
            sink,
            stop,
            policy: RestartPolicy::default(),
        };
        tokio::spawn(task.run(first, done_tx));
        Ok(status)
    }

    pub fn status(&self, id: &str) -> Option<(InstanceStatus, W::Detail)> {
        self.inner
            .lock()
            .get(id)
            .map(|entry| (entry.status.clone(), entry.detail.clone()))
    }

    /// All instances, stopped ones included (until [`Supervision::forget`]), sorted by id.
    pub fn list(&self) -> Vec<InstanceStatus> {
        let mut all: Vec<InstanceStatus> = self
            .inner
            .lock()
            .values()
            .map(|entry| entry.status.clone())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Stops for good: no restart. Resolves when the run has ended (state Stopped). Idempotent; an
    /// unknown id returns at once. The caller drains the instance (removes it from routing) first.
    pub async fn stop(&self, id: &str) {
        let (stop, mut done) = match self.inner.lock().get(id) {
            Some(entry) => (entry.stop.clone(), entry.done.clone()),
            None => return,
        };
        stop.cancel();
        // An error means the task is gone (it can only have ended), so there is nothing to wait for.
        let _ = done.wait_for(|done| *done).await;
    }

    /// Stops every instance, concurrently. For daemon shutdown.
    pub async fn stop_all(&self) {
        let stops: Vec<JoinHandle<()>> = self
            .list()
            .into_iter()
            .map(|status| {
                let supervision = self.clone();
                tokio::spawn(async move { supervision.stop(&status.id).await })
            })
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
    }

    /// Lets go of every instance without stopping it, for a daemon that takes them over (an
    /// upgrade): supervision ends, no event is sent, runs and their records stay. Resolves when every
    /// instance task has ended; nothing can be launched afterwards.
    pub async fn detach_all(&self) {
        self.inner.detach.cancel();
        let waits: Vec<watch::Receiver<bool>> =
            self.inner.lock().values().map(|e| e.done.clone()).collect();
        for mut done in waits {
            let _ = done.wait_for(|done| *done).await;
        }
    }

    /// Drops a stopped instance from `list`/`status`. Returns false if it is unknown or still running.
    pub fn forget(&self, id: &str) -> bool {
        let mut instances = self.inner.lock();
        if instances.get(id).is_some_and(|entry| *entry.done.borrow()) {
            instances.remove(id);
            return true;
        }
        false
    }
}

/// How one run ended.
struct RunEnd {
    /// `exited with status 1`, `killed by signal 9 (SIGKILL)`...
    last_exit: String,
    /// The full sentence for the event.
    message: String,
    reached_ready: bool,
    /// Ended by `stop`: no restart.
    stopped: bool,
    /// Not ended: handed over to another daemon.
    detached: bool,
}

/// The task that owns one instance from launch to Stopped.
struct Task<W: Workload> {
    inner: Arc<Inner<W::Detail>>,
    id: String,
    app: String,
    release: u64,
    workload: W,
    sink: Arc<LogSink>,
    stop: CancellationToken,
    policy: RestartPolicy,
}

impl<W: Workload> Task<W> {
    async fn run(mut self, first: Option<FirstRun<W>>, done: watch::Sender<bool>) {
        let mut first = first;
        let mut runs = 0u32;
        let last_exit = loop {
            let end = match first.take() {
                Some(first) => {
                    self.supervise(first.started, first.adopted_ready, runs)
                        .await
                }
                None => match self.workload.start().await {
                    Ok(started) => self.supervise(started, None, runs).await,
                    Err(err) => {
                        let last_exit = format!("could not be started: {err}");
                        self.sink.write_line(Stream::Slipway, &last_exit);
                        RunEnd {
                            message: last_exit.clone(),
                            last_exit,
                            reached_ready: false,
                            stopped: false,
                            detached: false,
                        }
                    }
                },
            };
            runs += 1;
            if end.detached {
                let _ = done.send(true);
                return;
            }
            if end.stopped || self.stop.is_cancelled() {
                break end.last_exit;
            }
            let restart = self.policy.on_exit(end.reached_ready);
            let (state, message) = self.policy.announce(restart, &end.last_exit, &end.message);
            self.update(|status, detail| {
                between_runs::<W>(status, detail);
                status.restarts = restart.restarts;
            });
            self.transition(state, message);
            tokio::select! {
                _ = tokio::time::sleep(restart.delay) => {}
                _ = self.stop.cancelled() => break end.last_exit,
                // Nothing runs: the next daemon starts it, its pid file names a dead process.
                _ = self.inner.detach.cancelled() => {
                    let _ = done.send(true);
                    return;
                }
            }
        };
        self.workload.stopped();
        self.update(between_runs::<W>);
        self.transition(
            InstanceState::Stopped {
                last_exit: last_exit.clone(),
            },
            format!("stopped: {last_exit}"),
        );
        let _ = done.send(true);
    }

    /// Watches one run until it ends by itself, a probe kills it, or `stop` is called.
    async fn supervise(
        &mut self,
        started: Started<W::Run, W::Detail>,
        adopted_ready: Option<bool>,
        runs: u32,
    ) -> RunEnd {
        let Started {
            mut run,
            pid,
            port,
            detail,
            target,
            what,
        } = started;
        let spawned = Instant::now();
        self.update(|status, d| {
            status.pid = pid;
            if port.is_some() || !W::PORT_OUTLIVES_A_RUN {
                status.port = port;
            }
            *d = detail;
            status.started_at = SystemTime::now();
        });
        self.announce(&what, adopted_ready, runs);

        let probe_specs = self.workload.probes();
        let mut life = Lifecycle::new(&probe_specs, adopted_ready, spawned.into_std());
        let (results_tx, mut results) = mpsc::channel::<ProbeResult>(8);
        let mut startup_probe = match (&probe_specs.startup, life.in_startup()) {
            (Some(spec), true) => Some(spawn_probe(
                ProbeKind::Startup,
                spec.clone(),
                target.clone(),
                results_tx.clone(),
            )),
            _ => None,
        };
        let mut probes = if life.in_startup() {
            Vec::new()
        } else {
            main_probes(&probe_specs, &target, &results_tx)
        };

        loop {
            let timer = life.next_timer().map(Instant::from_std);
            let steps = tokio::select! {
                exit = self.workload.exited(&mut run) => {
                    drop(probes);
                    drop(startup_probe);
                    self.workload.drain_output(&mut run).await;
                    let ended = format!("{exit} after {}", fmt_duration(spawned.elapsed()));
                    let mut message = ended.clone();
                    let tail = self.sink.tail();
                    if !tail.is_empty() {
                        let quoted: Vec<&str> =
                            tail.iter().map(|line| truncate(line, QUOTED_LINE_MAX)).collect();
                        message.push_str("; last output: ");
                        message.push_str(&quoted.join(" | "));
                    }
                    self.sink.write_line(Stream::Slipway, &ended);
                    self.workload.discard(run).await;
                    return RunEnd { last_exit: exit, message, reached_ready: life.reached_ready(), stopped: false, detached: false };
                }
                _ = self.inner.detach.cancelled() => {
                    drop(probes);
                    drop(startup_probe);
                    self.sink.write_line(Stream::Slipway, "handed over to a new daemon, still running");
                    self.workload.detach(run);
                    return RunEnd { last_exit: String::new(), message: String::new(), reached_ready: life.reached_ready(), stopped: false, detached: true };
                }
                _ = self.stop.cancelled() => {
                    drop(probes);
                    drop(startup_probe);
                    self.transition(
                        InstanceState::Stopping,
                        format!("stopping: {}", self.workload.stopping(&run)),
                    );
                    let last_exit = self.workload.kill(&mut run).await;
                    self.workload.drain_output(&mut run).await;
                    self.sink.write_line(Stream::Slipway, &format!("stopped: {last_exit}"));
                    return RunEnd { message: last_exit.clone(), last_exit, reached_ready: life.reached_ready(), stopped: true, detached: false };
                }
                _ = tokio::time::sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => {
                    life.on_timer(Instant::now().into_std())
                }
                Some(probe) = results.recv() => {
                    life.on_probe(probe.kind, probe.result, Instant::now().into_std())
                }
            };
            for step in steps {
                match step {
                    Step::StartMainProbes => {
                        startup_probe = None;
                        probes = main_probes(&probe_specs, &target, &results_tx);
                    }
                    Step::Ready { why } => {
                        self.policy.on_ready();
                        self.transition(InstanceState::Ready, format!("ready: {why}"));
                    }
                    Step::Unready { failures, reason } => self.transition(
                        InstanceState::Unready,
                        format!("readiness probe failed {failures} times in a row: {reason}"),
                    ),
                    Step::Stable => self.policy.on_stable(),
                    Step::Kill {
                        probe,
                        failures,
                        reason,
                    } => {
                        drop(startup_probe);
                        drop(probes);
                        let probe = probe.name();
                        let why =
                            format!("{probe} probe failed {failures} times in a row ({reason})");
                        let verb = self.workload.kill_verb();
                        self.sink
                            .write_line(Stream::Slipway, &format!("{why}; {verb}"));
                        let killed = self.workload.kill(&mut run).await;
                        self.workload.drain_output(&mut run).await;
                        return RunEnd {
                            message: format!("{why}; {killed}"),
                            last_exit: format!("{killed} after its {probe} probe failed"),
                            reached_ready: life.reached_ready(),
                            stopped: false,
                            detached: false,
                        };
                    }
                }
            }
        }
    }

    /// The event (and log line) for a run that started: Starting, Ready for an adopted run found
    /// ready, and crash-looping stays the reported state until a new run becomes Ready.
    fn announce(&mut self, what: &str, adopted_ready: Option<bool>, runs: u32) {
        let verb = match adopted_ready {
            Some(_) => "adopted after a daemon restart: running",
            None if runs > 0 => "restarted",
            None => "started",
        };
        let message = format!("{verb} {what}");
        self.sink.write_line(Stream::Slipway, &message);
        match adopted_ready {
            Some(true) => {
                self.policy.on_ready();
                self.transition(InstanceState::Ready, message);
            }
            Some(false) => {
                self.transition(InstanceState::Starting, format!("{message}, not ready yet"))
            }
            None => {
                let state = match self.status_state() {
                    state @ InstanceState::CrashLoop { .. } if self.policy.crash_looping() => state,
                    _ => InstanceState::Starting,
                };
                self.transition(state, message);
            }
        }
    }

    fn status_state(&self) -> InstanceState {
        self.inner
            .lock()
            .get(&self.id)
            .map_or(InstanceState::Starting, |entry| entry.status.state.clone())
    }

    fn update(&self, change: impl FnOnce(&mut InstanceStatus, &mut W::Detail)) {
        if let Some(entry) = self.inner.lock().get_mut(&self.id) {
            change(&mut entry.status, &mut entry.detail);
        }
    }

    fn transition(&self, state: InstanceState, message: String) {
        self.update(|status, _| status.state = state.clone());
        tracing::info!(instance = %self.id, state = state.name(), "{message}");
        // A dropped receiver means nobody listens any more (daemon shutting down): nothing to do.
        let _ = self.inner.events.send(InstanceEvent {
            id: self.id.clone(),
            app: self.app.clone(),
            release: self.release,
            state,
            message,
        });
    }
}

/// Between two runs (and once stopped) nothing runs: no pid, no detail, no port unless it is the
/// instance's own.
fn between_runs<W: Workload>(status: &mut InstanceStatus, detail: &mut W::Detail) {
    status.pid = None;
    if !W::PORT_OUTLIVES_A_RUN {
        status.port = None;
    }
    *detail = W::Detail::default();
}

/// Starts the readiness and liveness probes (after the startup probe, if any, has passed).
fn main_probes(
    specs: &Probes,
    target: &Arc<ProbeTarget>,
    results: &mpsc::Sender<ProbeResult>,
) -> Vec<AbortOnDropHandle<()>> {
    let mut probes = Vec::new();
    if let Some(spec) = &specs.readiness {
        probes.push(spawn_probe(
            ProbeKind::Readiness,
            spec.clone(),
            target.clone(),
            results.clone(),
        ));
    }
    if let Some(spec) = &specs.liveness {
        probes.push(spawn_probe(
            ProbeKind::Liveness,
            spec.clone(),
            target.clone(),
            results.clone(),
        ));
    }
    probes
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
