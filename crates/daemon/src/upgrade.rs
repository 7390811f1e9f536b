//! `slipway upgrade` (or `SIGUSR2`): the running daemon starts the binary now on disk with its own
//! arguments, hands it the listening sockets (`handover.rs`) and its instances, and leaves once its
//! in-flight requests are done. The app instances never stop; connections that arrive while neither
//! daemon accepts wait in the sockets' backlog.
//!
//! The old daemon can refuse until the new one has its sockets and said `take` — a binary that does
//! not start, a successor that hangs up — and then keeps serving as if nothing happened. After that
//! it is committed: should the new daemon fail later, its supervisor (systemd's `Restart=`) starts
//! one that adopts the instances, as after a crash.

use crate::handover::{self, Offer, Peer};
use std::ffi::OsString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::sync::oneshot;

/// An upgrade asked for over the API; `SIGUSR2` asks without waiting for an answer.
pub struct Request {
    pub reply: Option<oneshot::Sender<Result<Upgraded, String>>>,
}

/// What the API answers once the new daemon serves.
#[derive(Clone, Debug)]
pub struct Upgraded {
    pub from_pid: u32,
    pub pid: u32,
    pub version: String,
}

/// A new daemon that has its sockets and is ready to take over.
pub struct Successor {
    pub peer: Peer,
    pub pid: u32,
    _offer: Offer,
}

/// Starts the binary on disk (with `env` added: a Lease's identity) and hands it `sockets`;
/// returns once it said `take`.
pub async fn offer(
    handover_path: &Path,
    sockets: &[(&str, RawFd)],
    env: &[(&str, String)],
) -> Result<Successor, String> {
    let offer = Offer::open(handover_path)
        .map_err(|e| format!("cannot open {}: {e}", handover_path.display()))?;
    let exe = binary_on_disk().map_err(|e| format!("cannot find the slipway binary: {e}"))?;
    let mut command = successor_command(&exe, handover_path);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let mut child = tokio::process::Command::from(command)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id().unwrap_or_default();
    let mut peer = tokio::select! {
        accepted = tokio::time::timeout(handover::STEP, offer.accept()) => match accepted {
            Ok(Ok(peer)) => peer,
            Ok(Err(e)) => return Err(format!("the new daemon could not connect: {e}")),
            Err(_) => {
                let _ = child.start_kill();
                return Err(format!("the new daemon (pid {pid}) did not connect within {:?}", handover::STEP));
            }
        },
        status = child.wait() => {
            return Err(format!(
                "the new daemon ({}) exited before taking over: {}; its error is in this daemon's log",
                exe.display(),
                status.map_or_else(|e| e.to_string(), |s| s.to_string())
            ));
        }
    };
    let handed = async {
        peer.send_listeners(sockets).await?;
        peer.expect("take", handover::STEP).await
    };
    if let Err(e) = handed.await {
        let _ = child.start_kill();
        return Err(format!("the new daemon (pid {pid}) did not take over: {e}"));
    }
    // Not waited for: it outlives this daemon, and init reaps it in the end.
    drop(child);
    Ok(Successor {
        peer,
        pid,
        _offer: offer,
    })
}

/// The path this daemon was started from: the file there now is the new version. (`/proc/self/exe`
/// names the file this process runs, with " (deleted)" once it has been replaced.)
fn binary_on_disk() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}

/// The same arguments; its own session, so a signal to this daemon's process group (a terminal's
/// Ctrl-C) does not reach it; none of the variables that belong to this process.
fn successor_command(exe: &Path, handover_path: &Path) -> std::process::Command {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut command = std::process::Command::new(exe);
    command
        .args(args)
        .env(handover::ENV, handover_path)
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    // SAFETY: setsid is async-signal-safe and touches no memory of this process.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// The new daemon's side, before it opens the store: the sockets, `take`, and the old daemon's
/// `released` (it waits for drains under way, so this may take a while).
pub async fn take_over(handover_path: &Path) -> anyhow::Result<(Peer, Vec<handover::Inherited>)> {
    use anyhow::Context;
    let mut peer = Peer::connect(handover_path).await.with_context(|| {
        format!(
            "cannot reach the upgrading daemon at {}",
            handover_path.display()
        )
    })?;
    let sockets = peer
        .receive_listeners()
        .await
        .context("cannot receive the sockets")?;
    peer.say("take").await?;
    peer.expect("released", handover::RELEASE)
        .await
        .context("the upgrading daemon did not release its instances")?;
    Ok((peer, sockets))
}
