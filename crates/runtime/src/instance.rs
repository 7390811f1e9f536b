//! An instance: one running copy of a process type of a release, as the supervisor sees it.
//!
//! `InstanceSpec` is what the controller asks for, `InstanceState` / `InstanceStatus` what it observes, and
//! `InstanceEvent` is how every state change reaches it (and, through it, `slipway status` and the logs).

use slipway_core::spec::ProbeSpec;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// What to run for one instance. Built by the controller from a release's `ProcessSpec`.
#[derive(Clone, Debug)]
pub struct InstanceSpec {
    /// Unique among the supervisor's instances, e.g. `hello-v3-web-1`. It names the pid file, so only
    /// `[A-Za-z0-9._-]` is allowed. Exported to the child as `SLIPWAY_INSTANCE`, which is also how leftovers
    /// of a dead daemon are recognised.
    pub id: String,
    pub app: String,
    pub release: u64,
    pub process: String,
    /// Run as `sh -c cmd`.
    pub cmd: String,
    pub workdir: PathBuf,
    /// Release env plus resolved secrets, merged over the daemon's env. Values are never logged.
    pub env: BTreeMap<String, String>,
    /// `Some` for `web` (chosen by the caller with [`crate::pick_free_port`]); exported as `PORT`.
    pub port: Option<u16>,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub startup: Option<ProbeSpec>,
    /// `stop_signal`, then this long, then SIGKILL.
    pub grace: Duration,
    pub stop_signal: slipway_core::spec::StopSignal,
    /// Output is appended here, one timestamped and stream-tagged line per line; parent dirs are created.
    pub log_path: PathBuf,
}

impl InstanceSpec {
    /// The variables the child gets on top of the daemon's env: `spec.env`, `PORT`, and the `SLIPWAY_*`
    /// identity (set last, so a release cannot spoof the marker that orphan reaping trusts).
    pub fn child_env(&self) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        if let Some(port) = self.port {
            env.insert("PORT".into(), port.to_string());
        }
        env.insert("SLIPWAY_INSTANCE".into(), self.id.clone());
        env.insert("SLIPWAY_APP".into(), self.app.clone());
        env.insert("SLIPWAY_RELEASE".into(), format!("v{}", self.release));
        env.insert("SLIPWAY_PROCESS".into(), self.process.clone());
        env
    }

    /// The id names a file in the run dir, so it must be a plain, non-hidden file name.
    pub(crate) fn validate(&self) -> io::Result<()> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 200
            && !self.id.starts_with('.')
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !id_ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "invalid instance id {:?}: use letters, digits, '.', '_' and '-'",
                    self.id
                ),
            ));
        }
        Ok(())
    }
}

/// Where an instance is in its life. Every change is announced as an [`InstanceEvent`].
#[derive(Clone, Debug, PartialEq)]
pub enum InstanceState {
    /// Spawned; the startup probe and readiness have not passed yet.
    Starting,
    /// Running and readiness passing. Without a readiness probe: for web, a TCP connect to the port
    /// succeeds; for other processes, the startup probe passed or, without one, it has been running for
    /// a second (so a command that exits at once is crash-looping, not flapping Ready).
    Ready,
    /// Running, readiness failing after having passed.
    Unready,
    /// Exited or killed, waiting `delay` before the next start.
    Backoff {
        restarts: u32,
        delay: Duration,
        last_exit: String,
    },
    /// At least [`crate::restart::CRASH_LOOP_AFTER`] consecutive restarts without ever reaching Ready. Still
    /// retried with backoff, and reported as crash-looping until it becomes Ready.
    CrashLoop { restarts: u32, last_exit: String },
    /// `stop` was called: SIGTERM sent, waiting for the group to exit.
    Stopping,
    /// Stopped for good by `stop`; never restarted.
    Stopped { last_exit: String },
}

impl InstanceState {
    /// A short lowercase name, for tables and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Ready => "ready",
            InstanceState::Unready => "unready",
            InstanceState::Backoff { .. } => "backoff",
            InstanceState::CrashLoop { .. } => "crash-loop",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped { .. } => "stopped",
        }
    }
}

/// A snapshot of one instance.
#[derive(Clone, Debug)]
pub struct InstanceStatus {
    pub id: String,
    pub app: String,
    pub release: u64,
    pub process: String,
    /// The current process (also its process group id); `None` between runs and once stopped.
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub state: InstanceState,
    /// Restarts since `start` (crashes, liveness and startup kills). Never reset, like Kubernetes'
    /// restartCount; the backoff delay has its own counter, which does reset.
    pub restarts: u32,
    /// When the current (or last) process was spawned.
    pub started_at: SystemTime,
}

impl InstanceStatus {
    pub fn is_ready(&self) -> bool {
        self.state == InstanceState::Ready
    }

    pub(crate) fn new(spec: &InstanceSpec, pid: u32) -> InstanceStatus {
        InstanceStatus {
            id: spec.id.clone(),
            app: spec.app.clone(),
            release: spec.release,
            process: spec.process.clone(),
            pid: Some(pid),
            port: spec.port,
            state: InstanceState::Starting,
            restarts: 0,
            started_at: SystemTime::now(),
        }
    }
}

/// One state change, with a sentence saying why, e.g.
/// `exited with status 1 after 0.2s; last output: <up to 3 lines>; restarting in 500ms`.
#[derive(Clone, Debug)]
pub struct InstanceEvent {
    pub id: String,
    pub app: String,
    pub release: u64,
    pub state: InstanceState,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(id: &str) -> InstanceSpec {
        InstanceSpec {
            id: id.into(),
            app: "hello".into(),
            release: 3,
            process: "web".into(),
            cmd: "true".into(),
            workdir: PathBuf::from("/"),
            env: BTreeMap::from([
                ("SLIPWAY_INSTANCE".into(), "spoofed".into()),
                ("A".into(), "1".into()),
            ]),
            port: Some(4000),
            readiness: None,
            liveness: None,
            startup: None,
            grace: Duration::from_secs(1),
            stop_signal: Default::default(),
            log_path: PathBuf::from("/tmp/x.log"),
        }
    }

    #[test]
    fn child_env_adds_identity_and_port_over_release_env() {
        let env = spec("hello-v3-web-1").child_env();
        assert_eq!(env["PORT"], "4000");
        assert_eq!(env["SLIPWAY_INSTANCE"], "hello-v3-web-1");
        assert_eq!(env["SLIPWAY_RELEASE"], "v3");
        assert_eq!(env["SLIPWAY_APP"], "hello");
        assert_eq!(env["SLIPWAY_PROCESS"], "web");
        assert_eq!(env["A"], "1");
    }

    #[test]
    fn ids_must_be_plain_file_names() {
        assert!(spec("hello-v3-web-1").validate().is_ok());
        assert!(spec("a.b_c").validate().is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(spec(bad).validate().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn only_ready_is_ready() {
        let mut status = InstanceStatus::new(&spec("a"), 1);
        assert!(!status.is_ready());
        status.state = InstanceState::Ready;
        assert!(status.is_ready());
        status.state = InstanceState::Unready;
        assert!(!status.is_ready());
    }
}
