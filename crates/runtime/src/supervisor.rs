//! The process supervisor: the generic [`Supervision`] over [`ProcessWorkload`], plus what only
//! processes need — the first run spawned before `start` returns (so a command that cannot be spawned
//! is refused at once), instances a previous daemon left running found and adopted, and what is not
//! adopted reaped by its pid file.

use crate::instance::{InstanceEvent, InstanceSpec, InstanceStatus};
use crate::log_capture::LogSink;
use crate::orphans;
use crate::process_group::signal_group;
use crate::process_workload::ProcessWorkload;
use crate::supervision::{FirstRun, Supervision};
use crate::survivors::{self, Survivor};
use nix::sys::signal::Signal;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Runs and watches instances as processes. Cheap to clone; all clones share the same instances.
#[derive(Clone)]
pub struct Supervisor {
    supervision: Supervision<ProcessWorkload>,
    run_dir: Arc<PathBuf>,
}

impl Supervisor {
    /// `run_dir` holds one pid file per running instance so a restarted daemon can find leftovers.
    /// It is created if missing.
    pub fn new(
        run_dir: PathBuf,
    ) -> io::Result<(Supervisor, mpsc::UnboundedReceiver<InstanceEvent>)> {
        std::fs::create_dir_all(&run_dir)?;
        let (events, receiver) = mpsc::unbounded_channel();
        let supervisor = Supervisor {
            supervision: Supervision::new(events),
            run_dir: Arc::new(run_dir),
        };
        Ok((supervisor, receiver))
    }

    /// Kills (SIGKILL to the process group) instances left by a previous daemon that died: reads the pid
    /// files, and kills only processes whose `/proc/<pid>/environ` still contains `SLIPWAY_INSTANCE=<id>`
    /// (pid reuse guard). This supervisor's own running instances are left alone. Returns the reaped ids.
    /// Call it once at daemon start, before starting instances; it blocks up to ~2 s while they die.
    pub fn reap_orphans(&self) -> Vec<String> {
        let running = self.supervision.running();
        orphans::reap(&self.run_dir, |id| running.iter().any(|r| r == id))
    }

    /// The instances a previous daemon on this run dir left running, proven to be the processes it
    /// recorded (see [`Survivor`]). Nothing is killed: adopt those still wanted, then
    /// [`Supervisor::reap_orphans`] kills the rest.
    pub fn survivors(&self) -> Vec<Survivor> {
        let running = self.supervision.running();
        survivors::find(&self.run_dir, |id| running.iter().any(|r| r == id))
    }

    /// Supervises a survivor as the instance `spec` describes (built from its release, with the
    /// survivor's id and port), without restarting it. `ready`: its readiness check passed just now, so
    /// it serves at once; else it is Starting until its probes say otherwise.
    pub fn adopt(
        &self,
        spec: InstanceSpec,
        survivor: Survivor,
        ready: bool,
    ) -> io::Result<InstanceStatus> {
        spec.validate()?;
        if spec.id != survivor.id {
            return Err(io::Error::other(format!(
                "{} cannot be adopted as {}",
                survivor.id, spec.id
            )));
        }
        let sink = LogSink::open(&spec.log_path)?;
        let pid = survivor.pid;
        let workload = ProcessWorkload::new(spec, sink.clone(), (*self.run_dir).clone());
        let started = workload.adopt(survivor)?;
        let status = InstanceStatus::new(&workload.spec, pid);
        let first = FirstRun {
            started,
            adopted_ready: Some(ready),
        };
        self.supervision
            .launch(workload, status, sink, Some(first))
            .map_err(io::Error::other)
    }

    /// Lets go of every instance without stopping any, for the daemon an upgrade hands them to.
    pub async fn detach_all(&self) {
        self.supervision.detach_all().await
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
        if self.supervision.is_running(&spec.id) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("instance {} is already running", spec.id),
            ));
        }
        let sink = LogSink::open(&spec.log_path)?;
        let workload = ProcessWorkload::new(spec, sink.clone(), (*self.run_dir).clone());
        let started = workload.spawn()?;
        let pid = started.pid.unwrap_or_default();
        if let Err(err) = workload.write_pid_file(pid) {
            // Without a pid file a daemon crash would leak the process: do not run it at all.
            signal_group(pid, Signal::SIGKILL);
            return Err(err);
        }
        let status = InstanceStatus::new(&workload.spec, pid);
        let first = FirstRun {
            started,
            adopted_ready: None,
        };
        self.supervision
            .launch(workload, status, sink, Some(first))
            .map_err(io::Error::other)
    }

    /// The channel events go to, for another runtime (containers) whose instances the same
    /// controller watches.
    pub fn event_sender(&self) -> mpsc::UnboundedSender<InstanceEvent> {
        self.supervision.event_sender()
    }

    pub fn status(&self, id: &str) -> Option<InstanceStatus> {
        self.supervision.status(id).map(|(status, ())| status)
    }

    /// All instances, stopped ones included (until [`Supervisor::forget`]), sorted by id.
    pub fn list(&self) -> Vec<InstanceStatus> {
        self.supervision.list()
    }

    /// Stops for good: no restart. SIGTERM to the process group, up to `grace` for it to exit, then SIGKILL
    /// to the group; resolves when the process has exited (state Stopped). Idempotent; an unknown id
    /// returns at once. The caller drains the instance (removes it from routing) before calling this.
    pub async fn stop(&self, id: &str) {
        self.supervision.stop(id).await
    }

    /// Stops every instance, concurrently. For daemon shutdown.
    pub async fn stop_all(&self) {
        self.supervision.stop_all().await
    }

    /// Drops a stopped instance from `list`/`status`. Returns false if it is unknown or still running.
    pub fn forget(&self, id: &str) -> bool {
        self.supervision.forget(id)
    }
}
