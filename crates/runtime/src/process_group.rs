//! Spawning `sh -c` commands in their own process group, and signalling / inspecting that group.
//!
//! Why a process group: `sh -c` may fork (pipelines, `&`, wrapper scripts), and a signal to the shell alone
//! would leave its children running with the port still bound. Each instance (and each exec probe) leads a
//! group whose id is its pid, so one `killpg` reaches everything it started unless a child deliberately
//! escapes with `setsid`.

use crate::leader::Leader;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// `sh -c cmd` in `workdir`, with `env` merged over the daemon's env, stdin closed, leading a new process
/// group. stdout/stderr are left to the caller.
///
/// With [`Death::WithDaemon`] (jobs, exec probes) the child also gets `PR_SET_PDEATHSIG = SIGKILL`, so
/// the shell dies with the daemon. That covers only the direct child (the flag is cleared on fork).
/// Instances are [`Death::Outlives`]: they keep serving while a daemon restarts, and the next one adopts
/// them by their pid files. Spawn it with [`spawn`], never with `Command::spawn` directly.
pub(crate) fn group_command(
    cmd: &str,
    workdir: &Path,
    env: &BTreeMap<String, String>,
    death: Death,
) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .current_dir(workdir)
        .envs(env)
        .stdin(Stdio::null())
        .process_group(0);
    // What tells the daemon it took over from another (an upgrade, systemd) is not the app's.
    for var in DAEMON_ONLY {
        command.env_remove(var);
    }
    if death == Death::Outlives {
        return command;
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec, so it may only make async-signal-safe calls: it makes
    // two plain syscalls and builds an io::Error from a raw errno, which does not allocate.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The daemon died between fork and prctl: the death signal would never come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command
}

/// Variables of the daemon's own environment that its children must not see.
const DAEMON_ONLY: [&str; 5] = [
    "SLIPWAY_HANDOVER",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
];

/// Whether a spawned process dies with the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Death {
    WithDaemon,
    Outlives,
}

/// Spawns `command` from the spawner thread, a thread that lives as long as the daemon.
///
/// Why: the kernel sends the death signal when the *thread* that forked the child exits, not the process.
/// Spawning from whatever thread runs the caller (a tokio blocking-pool thread, a worker that went through
/// `block_in_place`) would SIGKILL healthy instances when that thread is retired. Must be called within a
/// tokio runtime, whose handle the spawn uses to reap the child.
pub(crate) fn spawn(mut command: Command) -> io::Result<Child> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| io::Error::other("processes must be spawned within a tokio runtime"))?;
    let (reply_tx, reply) = std::sync::mpsc::sync_channel(1);
    let job: SpawnJob = Box::new(move || {
        let _runtime = handle.enter();
        let _ = reply_tx.send(command.spawn());
    });
    spawner()?
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send(job)
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    reply
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

type SpawnJob = Box<dyn FnOnce() + Send>;

fn spawner() -> io::Result<&'static Mutex<std::sync::mpsc::Sender<SpawnJob>>> {
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<SpawnJob>>> = OnceLock::new();
    if let Some(spawner) = SPAWNER.get() {
        return Ok(spawner);
    }
    let (jobs_tx, jobs) = std::sync::mpsc::channel::<SpawnJob>();
    // The sender lives in a static, so the loop (and the thread) never ends.
    std::thread::Builder::new()
        .name("slipway-spawner".into())
        .spawn(move || {
            for job in jobs {
                job();
            }
        })?;
    Ok(SPAWNER.get_or_init(|| Mutex::new(jobs_tx)))
}

/// Sends `signal` to the process group `pgid`. Returns whether any process received it.
pub(crate) fn signal_group(pgid: u32, signal: Signal) -> bool {
    match i32::try_from(pgid) {
        Ok(pgid) if pgid > 1 => killpg(Pid::from_raw(pgid), signal).is_ok(),
        _ => false,
    }
}

/// How a group was brought down by [`terminate`].
#[derive(Debug)]
pub(crate) struct Termination {
    /// The leader's exit status (`None` if waiting for it failed, or it was adopted: not our child).
    pub status: Option<ExitStatus>,
    /// Whether SIGKILL was needed because something outlived the grace period.
    pub killed: bool,
}

/// `stop` (SIGTERM unless the app asked for another signal) to the group; after `grace`, SIGKILL to
/// whatever is left of it. Always reaps the leader.
///
/// The grace period covers the whole group: if the leader exits but a grandchild ignores SIGTERM, that
/// grandchild is SIGKILLed when the grace period ends.
pub(crate) async fn terminate(
    leader: &mut Leader,
    pgid: u32,
    stop: Signal,
    grace: Duration,
) -> Termination {
    let deadline = Instant::now() + grace;
    signal_group(pgid, stop);
    let mut killed = false;
    let status = match tokio::time::timeout_at(deadline, leader.wait()).await {
        Ok(status) => status.ok().flatten(),
        Err(_) => {
            killed = signal_group(pgid, Signal::SIGKILL);
            leader.wait().await.ok().flatten()
        }
    };
    while !live_members(pgid).is_empty() {
        if Instant::now() >= deadline {
            killed |= signal_group(pgid, Signal::SIGKILL);
            wait_group_gone(pgid, Duration::from_secs(2)).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Termination { status, killed }
}

/// Polls until no live process is left in the group, for at most `limit`. Returns whether it emptied.
pub(crate) async fn wait_group_gone(pgid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if live_members(pgid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Pids of the processes in group `pgid` that have not exited. Zombies do not count: they hold no port and
/// no file, and whoever inherited them (init, a subreaper) reaps them, not us.
pub(crate) fn live_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(proc_stat(pid), Some((state, group)) if group == pgid && state != 'Z' && state != 'X'))
        .collect()
}

/// State letter and process group of `pid`, from `/proc/<pid>/stat`.
pub(crate) fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat)?;
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    Some((state, pgrp))
}

/// When `pid` started, in clock ticks since boot: with the pid, it names one process for good.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 of stat; the fields after `(comm)` start at field 3.
    stat_fields(&stat)?.get(22 - 3)?.parse().ok()
}

/// The fields of `/proc/<pid>/stat` after `pid (comm)`: comm may contain spaces and parentheses, so
/// split after the last ')'.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
}

/// `exited with status 1` / `killed by signal 9 (SIGKILL)`.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(signal) => match Signal::try_from(signal) {
            Ok(name) => format!("killed by signal {signal} ({})", name.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        None => format!("exited ({status})"),
    }
}

/// The signal a stop sends, from the app's `stop_signal`.
pub(crate) fn stop_signal(signal: slipway_core::spec::StopSignal) -> Signal {
    use slipway_core::spec::StopSignal as S;
    match signal {
        S::Sigterm => Signal::SIGTERM,
        S::Sigint => Signal::SIGINT,
        S::Sigquit => Signal::SIGQUIT,
        S::Sighup => Signal::SIGHUP,
        S::Sigusr1 => Signal::SIGUSR1,
        S::Sigusr2 => Signal::SIGUSR2,
        S::Sigwinch => Signal::SIGWINCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(cmd: &str) -> Child {
        let mut command = group_command(cmd, Path::new("/"), &BTreeMap::new(), Death::WithDaemon);
        command.stdout(Stdio::piped()).stderr(Stdio::null());
        spawn(command).expect("spawn sh")
    }

    #[test]
    fn exit_descriptions_name_the_status_or_signal() {
        assert_eq!(
            describe_exit(ExitStatus::from_raw(1 << 8)),
            "exited with status 1"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(9)),
            "killed by signal 9 (SIGKILL)"
        );
    }

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let (state, pgrp) = proc_stat(std::process::id()).expect("own stat");
        assert_ne!(state, 'Z');
        assert!(pgrp > 0);
        let fields = stat_fields("7 (a) b (c) S 1 7 7 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99 0")
            .expect("fields");
        assert_eq!(fields[0], "S");
        assert_eq!(fields[22 - 3], "99");
    }

    #[test]
    fn a_process_start_time_is_read_and_stable() {
        let own = start_ticks(std::process::id()).expect("own start time");
        assert_eq!(start_ticks(std::process::id()), Some(own));
    }

    #[tokio::test]
    async fn terminate_reaches_the_whole_group() {
        let child = shell("sleep 1000 & wait");
        let pgid = child.id().expect("pid");
        let mut child = Leader::Child(child);
        // Wait until the backgrounded sleep exists, so the test checks the grandchild too.
        let deadline = Instant::now() + Duration::from_secs(10);
        while live_members(pgid).len() < 2 {
            assert!(Instant::now() < deadline, "sleep never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let done = terminate(&mut child, pgid, Signal::SIGTERM, Duration::from_secs(10)).await;
        assert!(!done.killed, "SIGTERM should have been enough");
        assert!(live_members(pgid).is_empty());
    }

    #[tokio::test]
    async fn terminate_escalates_to_sigkill_after_grace() {
        use tokio::io::AsyncBufReadExt;
        let mut child = shell("trap '' TERM; echo trapped; while :; do sleep 0.05; done");
        let pgid = child.id().expect("pid");
        // SIGTERM before the trap is set would end the shell normally: wait for it to say so.
        let stdout = child.stdout.take().expect("piped stdout");
        let mut child = Leader::Child(child);
        let mut line = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("read");
        assert_eq!(line.trim(), "trapped");
        let done = terminate(
            &mut child,
            pgid,
            Signal::SIGTERM,
            Duration::from_millis(300),
        )
        .await;
        assert!(done.killed);
        assert!(live_members(pgid).is_empty());
    }
}
