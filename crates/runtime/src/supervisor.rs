//! The supervisor: starts instances, watches them, restarts them, and stops them for good.
//!
//! Each instance gets one tokio task that owns its child process for the instance's whole life: it runs
//! the probes, restarts after crashes with backoff, and is the only code that waits for or signals the
//! process. The shared map only holds snapshots and a stop token, so `status`/`list` never block on a
//! process. Every state change is published as an [`InstanceEvent`] on an unbounded channel: the
//! controller reacts to events and must not miss one, and their rate is bounded by probes and backoff.

use crate::instance::{InstanceEvent, InstanceSpec, InstanceState, InstanceStatus};
use crate::logs::{LogSink, Stream, capture};
use crate::orphans;
use crate::probe::{
    ProbeKind, ProbeResult, ProbeTarget, ProbeTracker, default_web_readiness, fmt_duration,
    spawn_probe,
};
use crate::process_group::{
    describe_exit, group_command, live_members, signal_group, spawn, stop_signal, terminate,
};
use crate::restart::{RestartPolicy, STABLE_AFTER};
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// How long to wait, after a process exited, for its output pipes to reach EOF (a leftover grandchild
/// may hold them open) before the exit is reported.
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);
/// A process without a readiness probe and without a port is Ready once it has run this long. Not at
/// once: a command that exits immediately must count as crash-looping, not as flapping Ready.
const RUNNING_IS_READY_AFTER: Duration = Duration::from_secs(1);
/// Exit messages quote at most this many characters of each output line.
const QUOTED_LINE_MAX: usize = 200;

/// Runs and watches instances. Cheap to clone; all clones share the same instances.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    run_dir: PathBuf,
    events: mpsc::UnboundedSender<InstanceEvent>,
    instances: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    status: InstanceStatus,
    stop: CancellationToken,
    /// Becomes true when the instance task has finished (the instance is Stopped).
    done: watch::Receiver<bool>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are plain snapshots, consistent after any panic: keep serving them.
        self.instances
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Supervisor {
    /// `run_dir` holds one pid file per running instance so a restarted daemon can find leftovers.
    /// It is created if missing.
    pub fn new(
        run_dir: PathBuf,
    ) -> io::Result<(Supervisor, mpsc::UnboundedReceiver<InstanceEvent>)> {
        std::fs::create_dir_all(&run_dir)?;
        let (events, receiver) = mpsc::unbounded_channel();
        let inner = Inner {
            run_dir,
            events,
            instances: Mutex::new(HashMap::new()),
        };
        Ok((
            Supervisor {
                inner: Arc::new(inner),
            },
            receiver,
        ))
    }

    /// Kills (SIGKILL to the process group) instances left by a previous daemon that died: reads the pid
    /// files, and kills only processes whose `/proc/<pid>/environ` still contains `SLIPWAY_INSTANCE=<id>`
    /// (pid reuse guard). This supervisor's own running instances are left alone. Returns the reaped ids.
    /// Call it once at daemon start, before starting instances; it blocks up to ~2 s while they die.
    pub fn reap_orphans(&self) -> Vec<String> {
        let running: Vec<String> = self
            .inner
            .lock()
            .iter()
            .filter(|(_, entry)| !*entry.done.borrow())
            .map(|(id, _)| id.clone())
            .collect();
        orphans::reap(&self.inner.run_dir, |id| running.iter().any(|r| r == id))
    }

    /// Spawns and supervises an instance. Returns at once, in state Starting; every later state change is
    /// sent as an [`InstanceEvent`]. Must be called within a tokio runtime.
    ///
    /// Fails if the id is invalid or already running (a stopped instance with the same id is replaced), or
    /// if the log file or the process cannot be created. Later spawn failures (on restart) are reported as
    /// exits and retried with backoff.
    pub fn start(&self, spec: InstanceSpec) -> io::Result<InstanceStatus> {
        spec.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "Supervisor::start must be called within a tokio runtime",
            ));
        }
        let mut instances = self.inner.lock();
        if instances
            .get(&spec.id)
            .is_some_and(|entry| !*entry.done.borrow())
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("instance {} is already running", spec.id),
            ));
        }
        let sink = LogSink::open(&spec.log_path)?;
        let env = spec.child_env();
        let run = spawn_run(&spec, &env, &sink)?;
        if let Err(err) = orphans::write_pid_file(&self.inner.run_dir, &spec.id, run.pid) {
            // Without a pid file a daemon crash would leak the process: do not run it at all.
            signal_group(run.pid, Signal::SIGKILL);
            return Err(err);
        }
        let status = InstanceStatus::new(&spec, run.pid);
        let stop = CancellationToken::new();
        let (done_tx, done) = watch::channel(false);
        instances.insert(
            spec.id.clone(),
            Entry {
                status: status.clone(),
                stop: stop.clone(),
                done,
            },
        );
        drop(instances);

        let task = InstanceTask {
            inner: self.inner.clone(),
            target: Arc::new(ProbeTarget {
                addr: spec
                    .port
                    .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port))),
                forwarded: false,
                workdir: spec.workdir.clone(),
                env: env.clone(),
            }),
            spec,
            env,
            sink,
            stop,
            policy: RestartPolicy::default(),
        };
        task.announce_spawn(&run, false);
        tokio::spawn(task.run(run, done_tx));
        Ok(status)
    }

    /// The channel events go to, for another runtime (containers) whose instances the same
    /// controller watches.
    pub fn event_sender(&self) -> mpsc::UnboundedSender<InstanceEvent> {
        self.inner.events.clone()
    }

    pub fn status(&self, id: &str) -> Option<InstanceStatus> {
        self.inner.lock().get(id).map(|entry| entry.status.clone())
    }

    /// All instances, stopped ones included (until [`Supervisor::forget`]), sorted by id.
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

    /// Stops for good: no restart. SIGTERM to the process group, up to `grace` for it to exit, then SIGKILL
    /// to the group; resolves when the process has exited (state Stopped). Idempotent; an unknown id
    /// returns at once. The caller drains the instance (removes it from routing) before calling this.
    pub async fn stop(&self, id: &str) {
        let (stop, mut done) = match self.inner.lock().get(id) {
            Some(entry) => (entry.stop.clone(), entry.done.clone()),
            None => return,
        };
        stop.cancel();
        // An error means the task is gone (it can only have ended), so there is nothing left to wait for.
        let _ = done.wait_for(|done| *done).await;
    }

    /// Stops every instance, concurrently. For daemon shutdown.
    pub async fn stop_all(&self) {
        let stops: Vec<JoinHandle<()>> = self
            .list()
            .into_iter()
            .map(|status| {
                let supervisor = self.clone();
                tokio::spawn(async move { supervisor.stop(&status.id).await })
            })
            .collect();
        for stop in stops {
            let _ = stop.await;
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

/// One spawned process of an instance, with its output capture tasks.
struct Run {
    child: Child,
    pid: u32,
    output: Vec<JoinHandle<()>>,
}

fn spawn_run(
    spec: &InstanceSpec,
    env: &BTreeMap<String, String>,
    sink: &Arc<LogSink>,
) -> io::Result<Run> {
    let mut command = group_command(&spec.cmd, &spec.workdir, env);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn(command)?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the process exited before its pid was read"))?;
    sink.clear_tail();
    let mut output = Vec::with_capacity(2);
    if let Some(stdout) = child.stdout.take() {
        output.push(capture(stdout, Stream::Stdout, sink.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        output.push(capture(stderr, Stream::Stderr, sink.clone()));
    }
    Ok(Run { child, pid, output })
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
}

/// The task that owns one instance from `start` to Stopped.
struct InstanceTask {
    inner: Arc<Inner>,
    spec: InstanceSpec,
    env: BTreeMap<String, String>,
    sink: Arc<LogSink>,
    target: Arc<ProbeTarget>,
    stop: CancellationToken,
    policy: RestartPolicy,
}

impl InstanceTask {
    async fn run(mut self, first: Run, done: watch::Sender<bool>) {
        let mut next = Ok(first);
        let last_exit = loop {
            let end = match next {
                Ok(run) => self.supervise(run).await,
                Err(err) => {
                    let last_exit = format!("could not be started: {err}");
                    RunEnd {
                        message: last_exit.clone(),
                        last_exit,
                        reached_ready: false,
                        stopped: false,
                    }
                }
            };
            if end.stopped {
                break end.last_exit;
            }
            let restart = self.policy.on_exit(end.reached_ready);
            let (state, message) = self.policy.announce(restart, &end.last_exit, &end.message);
            self.update(|status| {
                status.pid = None;
                status.restarts = restart.restarts;
            });
            self.transition(state, message);
            tokio::select! {
                _ = tokio::time::sleep(restart.delay) => {}
                _ = self.stop.cancelled() => break end.last_exit,
            }
            next = spawn_run(&self.spec, &self.env, &self.sink);
            match &next {
                Ok(run) => {
                    if let Err(err) =
                        orphans::write_pid_file(&self.inner.run_dir, &self.spec.id, run.pid)
                    {
                        tracing::warn!(instance = %self.spec.id, error = %err, "cannot write pid file");
                    }
                    self.announce_spawn(run, true);
                }
                Err(err) => {
                    tracing::warn!(instance = %self.spec.id, error = %err, "restart failed")
                }
            }
        };
        orphans::remove_pid_file(&self.inner.run_dir, &self.spec.id);
        self.update(|status| status.pid = None);
        self.transition(
            InstanceState::Stopped {
                last_exit: last_exit.clone(),
            },
            format!("stopped: {last_exit}"),
        );
        let _ = done.send(true);
    }

    /// Watches one run until the process exits, a probe kills it, or `stop` is called.
    async fn supervise(&mut self, run: Run) -> RunEnd {
        let Run {
            mut child,
            pid,
            output,
        } = run;
        let spawned = Instant::now();
        let (results_tx, mut results) = mpsc::channel::<ProbeResult>(8);

        let mut startup = self.spec.startup.as_ref().map(|spec| {
            let task = spawn_probe(
                ProbeKind::Startup,
                spec.clone(),
                self.target.clone(),
                results_tx.clone(),
            );
            (ProbeTracker::new(spec), task)
        });
        let readiness_spec = self
            .spec
            .readiness
            .clone()
            .or_else(|| self.spec.port.map(|_| default_web_readiness()));
        let mut readiness = readiness_spec.as_ref().map(ProbeTracker::new);
        let mut liveness = self.spec.liveness.as_ref().map(ProbeTracker::new);
        let mut probes: Vec<AbortOnDropHandle<()>> = Vec::new();
        let mut reached_ready = false;
        let mut ready_since: Option<Instant> = None;
        let mut stable = false;
        // Without any probe, a non-web process is Ready once it has been running for a moment.
        let mut ready_when_running: Option<Instant> = None;
        if startup.is_none() {
            probes = self.spawn_main_probes(&readiness_spec, &results_tx);
            if readiness.is_none() {
                ready_when_running = Some(spawned + RUNNING_IS_READY_AFTER);
            }
        }

        loop {
            let stable_at = ready_since.map_or_else(far_future, |since| since + STABLE_AFTER);
            tokio::select! {
                status = child.wait() => {
                    let exit = match status {
                        Ok(status) => describe_exit(status),
                        Err(err) => format!("could not be waited for: {err}"),
                    };
                    // The shell is gone; whatever it left behind in its group would hold the port.
                    if !live_members(pid).is_empty() {
                        terminate(&mut child, pid, stop_signal(self.spec.stop_signal), self.spec.grace).await;
                    }
                    drain_output(output).await;
                    let mut message = format!("{exit} after {}", fmt_duration(spawned.elapsed()));
                    let tail = self.sink.tail();
                    if !tail.is_empty() {
                        let quoted: Vec<&str> = tail.iter().map(|line| truncate(line, QUOTED_LINE_MAX)).collect();
                        message.push_str("; last output: ");
                        message.push_str(&quoted.join(" | "));
                    }
                    self.sink.write_line(Stream::Slipway, &format!("{exit} after {}", fmt_duration(spawned.elapsed())));
                    return RunEnd { last_exit: exit, message, reached_ready, stopped: false };
                }
                _ = self.stop.cancelled() => {
                    drop(probes);
                    self.transition(
                        InstanceState::Stopping,
                        format!("stopping: SIGTERM to process group {pid}, SIGKILL after {}", fmt_duration(self.spec.grace)),
                    );
                    let last_exit = self.kill(&mut child, pid).await;
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
                    match probe.kind {
                        ProbeKind::Startup => {
                            let Some((tracker, _)) = startup.as_mut() else { continue };
                            match tracker.record(ok) {
                                Some(true) => {
                                    startup = None;
                                    probes = self.spawn_main_probes(&readiness_spec, &results_tx);
                                    if readiness.is_none() {
                                        reached_ready = self.become_ready(&mut ready_since, "startup probe passed");
                                    }
                                }
                                Some(false) => {
                                    let failures = tracker.consecutive_failures();
                                    drop(startup);
                                    drop(probes);
                                    return self.probe_kill(child, pid, output, ProbeKind::Startup, failures, &reason, false).await;
                                }
                                None => {}
                            }
                        }
                        ProbeKind::Liveness => {
                            let Some(tracker) = liveness.as_mut() else { continue };
                            if tracker.record(ok) == Some(false) {
                                let failures = tracker.consecutive_failures();
                                drop(probes);
                                return self.probe_kill(child, pid, output, ProbeKind::Liveness, failures, &reason, reached_ready).await;
                            }
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
                        }
                    }
                }
            }
        }
    }

    /// Starts the readiness (given or default) and liveness probes, once the startup probe has passed.
    fn spawn_main_probes(
        &self,
        readiness: &Option<slipway_core::spec::ProbeSpec>,
        results: &mpsc::Sender<ProbeResult>,
    ) -> Vec<AbortOnDropHandle<()>> {
        let mut probes = Vec::new();
        if let Some(spec) = readiness {
            probes.push(spawn_probe(
                ProbeKind::Readiness,
                spec.clone(),
                self.target.clone(),
                results.clone(),
            ));
        }
        if let Some(spec) = &self.spec.liveness {
            probes.push(spawn_probe(
                ProbeKind::Liveness,
                spec.clone(),
                self.target.clone(),
                results.clone(),
            ));
        }
        probes
    }

    /// Enters Ready. Returns true (the run reached Ready), for `reached_ready |= ...`.
    fn become_ready(&mut self, ready_since: &mut Option<Instant>, why: &str) -> bool {
        self.policy.on_ready();
        *ready_since = Some(Instant::now());
        self.transition(InstanceState::Ready, format!("ready: {why}"));
        true
    }

    /// A failing startup or liveness probe: kill the run (SIGTERM, grace, SIGKILL) so it is restarted.
    #[allow(clippy::too_many_arguments)]
    async fn probe_kill(
        &mut self,
        mut child: Child,
        pid: u32,
        output: Vec<JoinHandle<()>>,
        probe: ProbeKind,
        failures: u32,
        reason: &str,
        reached_ready: bool,
    ) -> RunEnd {
        let probe = probe.name();
        let why = format!("{probe} probe failed {failures} times in a row ({reason})");
        self.sink.write_line(
            Stream::Slipway,
            &format!("{why}; killing the process group"),
        );
        let killed = self.kill(&mut child, pid).await;
        drain_output(output).await;
        let last_exit = format!("{killed} after its {probe} probe failed");
        RunEnd {
            message: format!("{why}; {killed}"),
            last_exit,
            reached_ready,
            stopped: false,
        }
    }

    /// SIGTERM, grace, SIGKILL; describes how it ended.
    async fn kill(&self, child: &mut Child, pid: u32) -> String {
        let done = terminate(
            child,
            pid,
            stop_signal(self.spec.stop_signal),
            self.spec.grace,
        )
        .await;
        let exit = done
            .status
            .map_or_else(|| "exited".to_owned(), describe_exit);
        if done.killed {
            format!(
                "{exit} (SIGKILL after a grace period of {})",
                fmt_duration(self.spec.grace)
            )
        } else {
            exit
        }
    }

    /// Records a freshly spawned run in the status and announces it.
    fn announce_spawn(&self, run: &Run, restarted: bool) {
        self.update(|status| {
            status.pid = Some(run.pid);
            status.started_at = SystemTime::now();
        });
        let port = self
            .spec
            .port
            .map(|port| format!(", port {port}"))
            .unwrap_or_default();
        let verb = if restarted { "restarted" } else { "started" };
        let message = format!("{verb} `{}` (pid {}{port})", self.spec.process, run.pid);
        self.sink.write_line(Stream::Slipway, &message);
        // Crash-looping stays the reported state until the new run becomes Ready.
        let state = if self.policy.crash_looping() {
            match self.status_state() {
                state @ InstanceState::CrashLoop { .. } => state,
                _ => InstanceState::Starting,
            }
        } else {
            InstanceState::Starting
        };
        self.transition(state, message);
    }

    fn status_state(&self) -> InstanceState {
        self.inner
            .lock()
            .get(&self.spec.id)
            .map_or(InstanceState::Starting, |entry| entry.status.state.clone())
    }

    fn update(&self, change: impl FnOnce(&mut InstanceStatus)) {
        if let Some(entry) = self.inner.lock().get_mut(&self.spec.id) {
            change(&mut entry.status);
        }
    }

    fn transition(&self, state: InstanceState, message: String) {
        self.update(|status| status.state = state.clone());
        tracing::info!(instance = %self.spec.id, state = state.name(), "{message}");
        // A dropped receiver means nobody listens any more (daemon shutting down): nothing to do.
        let _ = self.inner.events.send(InstanceEvent {
            id: self.spec.id.clone(),
            app: self.spec.app.clone(),
            release: self.spec.release,
            state,
            message,
        });
    }
}

/// Waits (bounded) for the capture tasks to reach EOF, so the log and the "last output" are complete.
async fn drain_output(output: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + OUTPUT_DRAIN;
    for task in output {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            abort.abort();
        }
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
