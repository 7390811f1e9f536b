//! An instance as a child process: `sh -c cmd` leading its own process group, its output captured
//! into the instance's log, a pid file so a daemon restarted after `kill -9` can find it. The
//! [`Workload`] the process [`Supervisor`](crate::Supervisor) runs.

use crate::instance::InstanceSpec;
use crate::lifecycle::Probes;
use crate::log_capture::{LogSink, Stream, capture};
use crate::orphans;
use crate::probe::{ProbeTarget, default_web_readiness, fmt_duration};
use crate::process_group::{
    describe_exit, group_command, live_members, spawn, stop_signal, terminate,
};
use crate::workload::{Started, Workload};
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Child;
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

/// One spawned process of an instance, with its output capture tasks.
pub(crate) struct ProcessRun {
    child: Child,
    pid: u32,
    output: Vec<JoinHandle<()>>,
}

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

    /// Spawns the process, without its pid file.
    pub(crate) fn spawn(&self) -> io::Result<Started<ProcessRun, ()>> {
        let mut command = group_command(&self.spec.cmd, &self.spec.workdir, &self.env);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = spawn(command)?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the process exited before its pid was read"))?;
        self.sink.clear_tail();
        let mut output = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            output.push(capture(stdout, Stream::Stdout, self.sink.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            output.push(capture(stderr, Stream::Stderr, self.sink.clone()));
        }
        let port = self
            .spec
            .port
            .map(|port| format!(", port {port}"))
            .unwrap_or_default();
        Ok(Started {
            run: ProcessRun { child, pid, output },
            pid: Some(pid),
            port: self.spec.port,
            detail: (),
            target: self.target.clone(),
            what: format!("`{}` (pid {pid}{port})", self.spec.process),
        })
    }

    pub(crate) fn write_pid_file(&self, pid: u32) -> io::Result<()> {
        orphans::write_pid_file(&self.run_dir, &self.spec.id, pid)
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
        let exit = match run.child.wait().await {
            Ok(status) => describe_exit(status),
            Err(err) => format!("could not be waited for: {err}"),
        };
        // The shell is gone; whatever it left behind in its group would hold the port.
        if !live_members(run.pid).is_empty() {
            let signal = stop_signal(self.spec.stop_signal);
            terminate(&mut run.child, run.pid, signal, self.spec.grace).await;
        }
        exit
    }

    async fn kill(&self, run: &mut ProcessRun) -> String {
        let signal = stop_signal(self.spec.stop_signal);
        let done = terminate(&mut run.child, run.pid, signal, self.spec.grace).await;
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

    fn stopped(&self) {
        orphans::remove_pid_file(&self.run_dir, &self.spec.id);
    }
}
