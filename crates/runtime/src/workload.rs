//! What a supervised instance runs on — a process here, a container (`slipway-docker`), a pod later —
//! as the one generic [`Supervision`](crate::supervision::Supervision) needs it: start a run, tell
//! when it ended, end it. Everything else (probes, readiness, restarts with backoff, crash loops,
//! events, the log's Slipway lines) is the supervision's, the same for every workload.

use crate::lifecycle::Probes;
use crate::probe::ProbeTarget;
use std::future::Future;
use std::sync::Arc;

/// A run that has just started (or was taken over), with what the status shows of it.
pub struct Started<R, D> {
    pub run: R,
    pub pid: Option<u32>,
    /// Where it answers on this host, if it is published on a port.
    pub port: Option<u16>,
    pub detail: D,
    /// Where its probes reach it.
    pub target: Arc<ProbeTarget>,
    /// What started, for the event after "started "/"restarted ": "`web` (pid 12, port 8080)".
    pub what: String,
}

pub trait Workload: Send + Sync + 'static {
    /// One running copy: a child process, a container.
    type Run: Send + 'static;
    /// What status shows beyond [`InstanceStatus`](crate::InstanceStatus) (a container's id and
    /// address); `Default` between runs.
    type Detail: Clone + Default + Send + Sync + 'static;

    /// A process's port is the instance's for its whole life; a container's is its current run's.
    const PORT_OUTLIVES_A_RUN: bool;

    /// The probes each run is watched by (readiness already defaulted for a web instance).
    fn probes(&self) -> Probes;

    /// Starts a fresh run. An error is reported like a crash (backoff, crash loop).
    fn start(
        &self,
    ) -> impl Future<Output = Result<Started<Self::Run, Self::Detail>, String>> + Send;

    /// Resolves when the run ended by itself, saying how ("exited with status 1"). Polled again after
    /// every other event, so it must be cancel-safe. What the run left behind is gone when it resolves.
    fn exited(&self, run: &mut Self::Run) -> impl Future<Output = String> + Send;

    /// Ends the run: its stop signal, the grace period, then SIGKILL (or the engine's equivalent).
    /// Says how it ended.
    fn kill(&self, run: &mut Self::Run) -> impl Future<Output = String> + Send;

    /// What [`Workload::kill`] is about to do, after "stopping: ".
    fn stopping(&self, run: &Self::Run) -> String;

    /// What a failed probe does, for the log: "killing the process group".
    fn kill_verb(&self) -> &'static str;

    /// Waits, for a bounded time, until the run's output is all in the log.
    fn drain_output(&self, run: &mut Self::Run) -> impl Future<Output = ()> + Send;

    /// After a run ended by itself: what is left of it goes (a container is removed).
    fn discard(&self, run: Self::Run) -> impl Future<Output = ()> + Send {
        let _ = run;
        async {}
    }

    /// Another daemon takes the run over (an upgrade): stop watching it and reading its output, and
    /// leave it running with everything the next daemon needs to find it.
    fn detach(&self, run: Self::Run) {
        drop(run);
    }

    /// The instance is stopped for good.
    fn stopped(&self) {}
}
