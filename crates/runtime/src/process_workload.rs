//! An instance as a process: `sh -c cmd` leading its own process group, its output going through named
//! pipes into the instance's log, a pid file so that a daemon restarted after `kill -9` (or a new binary
//! after an upgrade) finds it and adopts it instead of starting it again. The [`Workload`] the process
//! [`Supervisor`](crate::Supervisor) runs.

use crate::instance::InstanceSpec;
use crate::leader::{self, Leader};
use crate::lifecycle::Probes;
use crate::log_capture::{LogSink, Stream, capture};
use crate::output_pipe;
use crate::pid_file::{self, Identity, PidRecord};
use crate::probe::{ProbeTarget, default_web_readiness, fmt_duration};
use crate::process_group::{
    Death, describe_exit, group_command, live_members, spawn, start_ticks, stop_signal, terminate,
};
use crate::survivors::Survivor;
use crate::workload::{Started, Workload};
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long to wait, after a process exited, for its output pipes to reach EOF (a leftover grandchild
/// may hold them open) before the exit is reported.
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);

pub(crate) struct ProcessWorkload {
    pub(crate) spec: InstanceSpec,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) sink: Arc<LogSink>,
    pub(crate) run_dir: PathBuf,
    pub(crate) target: Arc<ProbeTarget>,
}

/// One run of an instance (spawned here, or adopted), with its output capture tasks.
pub(crate) struct ProcessRun {
    leader: Leader,
    pid: u32,
    output: Vec<JoinHandle<()>>,
}

/// What an adopted run's exit says: its status went to whoever reaped it, not to us.
const ADOPTED_EXIT: &str =
    "exited (its status went to init: it was adopted from a previous daemon)";

impl ProcessWorkload {
    pub(crate) fn new(spec: InstanceSpec, sink: Arc<LogSink>, run_dir: PathBuf) -> ProcessWorkload {
        let env = spec.child_env();
        let target = Arc::new(ProbeTarget {
            addr: spec
                .port
                .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port))),
            forwarded: false,
            workdir: spec.workdir.clone(),
            env: env.clone(),
        });
        ProcessWorkload {
            spec,
            env,
            sink,
            run_dir,
            target,
        }
    }

    /// Spawns the process; its pid file says only "starting" until [`Self::write_pid_file`].
    pub(crate) fn spawn(&self) -> io::Result<Started<ProcessRun, ()>> {
        pid_file::write_starting(&self.run_dir, &self.spec.id)?;
        let mut command = group_command(
            &self.spec.cmd,
            &self.spec.workdir,
            &self.env,
            Death::Outlives,
        );
        let (stdout, stdout_reader) =
            output_pipe::create(&self.run_dir, &self.spec.id, Stream::Stdout)?;
        let (stderr, stderr_reader) =
            output_pipe::create(&self.run_dir, &self.spec.id, Stream::Stderr)?;
        command.stdout(stdout).stderr(stderr);
        let child = spawn(command)?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the process exited before its pid was read"))?;
        self.sink.clear_tail();
        let output = vec![
            capture(stdout_reader, Stream::Stdout, self.sink.clone()),
            capture(stderr_reader, Stream::Stderr, self.sink.clone()),
        ];
        Ok(self.started(Leader::Child(child), pid, output))
    }

    /// Takes over a run a previous daemon started; its output is read from the same named pipes.
    pub(crate) fn adopt(&self, survivor: Survivor) -> io::Result<Started<ProcessRun, ()>> {
        let leader = leader::adopted(survivor.pidfd)?;
        let mut output = Vec::with_capacity(2);
        for stream in [Stream::Stdout, Stream::Stderr] {
            match output_pipe::open(&self.run_dir, &self.spec.id, stream) {
                Ok(reader) => output.push(capture(reader, stream, self.sink.clone())),
                Err(err) => self.sink.write_line(
                    Stream::Slipway,
                    &format!("its {stream} cannot be read any more ({err}): it is not logged"),
                ),
            }
        }
        Ok(self.started(leader, survivor.pid, output))
    }

    fn started(
        &self,
        leader: Leader,
        pid: u32,
        output: Vec<JoinHandle<()>>,
    ) -> Started<ProcessRun, ()> {
        let port = self
            .spec
            .port
            .map(|port| format!(", port {port}"))
            .unwrap_or_default();
        Started {
            run: ProcessRun {
                leader,
                pid,
                output,
            },
            pid: Some(pid),
            port: self.spec.port,
            detail: (),
            target: self.target.clone(),
            what: format!("`{}` (pid {pid}{port})", self.spec.process),
        }
    }

    /// Records the run, with what proves it is this process, for the daemon that comes next.
    pub(crate) fn write_pid_file(&self, pid: u32) -> io::Result<()> {
        let start = start_ticks(pid)
            .ok_or_else(|| io::Error::other(format!("pid {pid} exited before it was recorded")))?;
        let record = PidRecord {
            pid,
            identity: Some(Identity {
                start_ticks: start,
                app: self.spec.app.clone(),
                release: self.spec.release,
                process: self.spec.process.clone(),
                port: self.spec.port,
            }),
        };
        pid_file::write(&self.run_dir, &self.spec.id, &record)
    }
}

impl Workload for ProcessWorkload {
    type Run = ProcessRun;
    type Detail = ();
    const PORT_OUTLIVES_A_RUN: bool = true;

    fn probes(&self) -> Probes {
        Probes {
            startup: self.spec.startup.clone(),
            readiness: self
                .spec
                .readiness
                .clone()
                .or_else(|| self.spec.port.map(|_| default_web_readiness())),
            liveness: self.spec.liveness.clone(),
        }
    }

    async fn start(&self) -> Result<Started<ProcessRun, ()>, String> {
        let started = self.spawn().map_err(|err| err.to_string())?;
        if let Some(pid) = started.pid
            && let Err(err) = self.write_pid_file(pid)
        {
            tracing::warn!(instance = %self.spec.id, error = %err, "cannot write pid file");
        }
        Ok(started)
    }

    async fn exited(&self, run: &mut ProcessRun) -> String {
        let exit = match run.leader.wait().await {
            Ok(Some(status)) => describe_exit(status),
            Ok(None) => ADOPTED_EXIT.to_owned(),
            Err(err) => format!("could not be waited for: {err}"),
        };
        // The shell is gone; whatever it left behind in its group would hold the port.
        if !live_members(run.pid).is_empty() {
            let signal = stop_signal(self.spec.stop_signal);
            terminate(&mut run.leader, run.pid, signal, self.spec.grace).await;
        }
        exit
    }

    async fn kill(&self, run: &mut ProcessRun) -> String {
        let signal = stop_signal(self.spec.stop_signal);
        let done = terminate(&mut run.leader, run.pid, signal, self.spec.grace).await;
        let exit = done.status.map_or_else(
            || match run.leader {
                Leader::Adopted(_) => ADOPTED_EXIT.to_owned(),
                Leader::Child(_) => "exited".to_owned(),
            },
            describe_exit,
        );
        if done.killed {
            format!(
                "{exit} (SIGKILL after a grace period of {})",
                fmt_duration(self.spec.grace)
            )
        } else {
            exit
        }
    }

    fn stopping(&self, run: &ProcessRun) -> String {
        format!(
            "SIGTERM to process group {}, SIGKILL after {}",
            run.pid,
            fmt_duration(self.spec.grace)
        )
    }

    fn kill_verb(&self) -> &'static str {
        "killing the process group"
    }

    /// Waits (bounded) for the capture tasks to reach EOF, so the log and the "last output" are complete.
    async fn drain_output(&self, run: &mut ProcessRun) {
        let deadline = Instant::now() + OUTPUT_DRAIN;
        for task in std::mem::take(&mut run.output) {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Another daemon takes the run over: stop reading its pipes (it reads them now), leave it running.
    fn detach(&self, run: ProcessRun) {
        for task in run.output {
            task.abort();
        }
    }

    fn stopped(&self) {
        pid_file::remove(&self.run_dir, &self.spec.id);
        output_pipe::remove(&self.run_dir, &self.spec.id);
    }
}
