//! Helpers shared by the runtime's integration tests: specs, event waits with deadlines, a kill guard.
#![allow(dead_code)] // each test binary uses a different subset

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use slipway_core::spec::{ProbeCheck, ProbeSpec};
use slipway_runtime::{InstanceEvent, InstanceSpec, InstanceState, Supervisor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// Generous: the machine is shared and slow; these bound a hang, they are not expectations.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn spec(dir: &Path, id: &str, cmd: &str) -> InstanceSpec {
    InstanceSpec {
        id: id.into(),
        app: "hello".into(),
        release: 3,
        process: "worker".into(),
        cmd: cmd.into(),
        workdir: dir.to_path_buf(),
        env: BTreeMap::new(),
        port: None,
        readiness: None,
        liveness: None,
        startup: None,
        grace: Duration::from_secs(5),
        stop_signal: Default::default(),
        log_path: dir.join("logs").join(format!("{id}.log")),
    }
}

pub fn probe(check: ProbeCheck, success_threshold: u32, failure_threshold: u32) -> ProbeSpec {
    ProbeSpec {
        check,
        period: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        initial_delay: Duration::ZERO,
        success_threshold,
        failure_threshold,
    }
}

/// Receives events until one matches, failing with everything seen if the deadline passes first.
pub async fn wait_event(
    events: &mut UnboundedReceiver<InstanceEvent>,
    what: &str,
    matches: impl Fn(&InstanceEvent) -> bool,
) -> InstanceEvent {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) if matches(&event) => return event,
            Ok(Some(event)) => seen.push(format!("{:?}: {}", event.state, event.message)),
            Ok(None) => panic!("event channel closed while waiting for {what}; seen: {seen:#?}"),
            Err(_) => panic!("no {what} event within {DEADLINE:?}; seen: {seen:#?}"),
        }
    }
}

pub fn is_state(event: &InstanceEvent, id: &str, name: &str) -> bool {
    event.id == id && event.state.name() == name
}

/// Polls `condition` until it holds or the deadline passes.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Blocking variant, for tests that drive several runtimes by hand.
pub fn wait_until_blocking(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The instance's log file, or "" before it exists.
pub fn read_log(spec_log: &Path) -> String {
    std::fs::read_to_string(spec_log).unwrap_or_default()
}

/// The pid a script printed as `<key>=<pid>` in its log.
pub fn logged_pid(log: &str, key: &str) -> Option<u32> {
    let marker = format!("{key}=");
    log.lines()
        .find_map(|line| line.split_once(&marker)?.1.trim().parse().ok())
}

/// Alive: exists and is not a zombie (a zombie holds nothing and only awaits its parent's wait).
pub fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X"))
}

/// SIGKILLs, on drop (also when a test panics), every process group it was told about and every group
/// the supervisor still lists.
#[derive(Default)]
pub struct KillGuard {
    pub supervisors: Vec<Supervisor>,
    pub groups: Vec<u32>,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        let listed = self
            .supervisors
            .iter()
            .flat_map(|s| s.list())
            .filter_map(|status| status.pid);
        for pgid in listed.chain(self.groups.iter().copied()) {
            if let Ok(pgid) = i32::try_from(pgid) {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
    }
}

pub fn state_of(supervisor: &Supervisor, id: &str) -> Option<InstanceState> {
    supervisor.status(id).map(|status| status.state)
}

pub fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    (dir, path)
}
