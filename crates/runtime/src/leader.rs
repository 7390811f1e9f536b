//! An instance's group leader as the supervisor holds it: a child it spawned, or a process a previous
//! daemon spawned and this one adopted. An adopted process is not our child, so it cannot be waited for;
//! its pidfd (`pidfd_open`) becomes readable when it exits, and refers to that very process even if
//! the pid is reused afterwards.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitStatus;
use tokio::io::unix::AsyncFd;
use tokio::process::Child;

pub(crate) enum Leader {
    Child(Child),
    Adopted(AsyncFd<OwnedFd>),
}

impl Leader {
    /// Waits until the leader has exited. Cancel-safe. `None`: an adopted process's status went to
    /// whoever reaped it (init), not to us.
    pub(crate) async fn wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self {
            Leader::Child(child) => child.wait().await.map(Some),
            Leader::Adopted(pidfd) => {
                let mut ready = pidfd.readable().await?;
                // Stays readable: a later wait returns at once too.
                ready.retain_ready();
                Ok(None)
            }
        }
    }
}

/// A pidfd for `pid`. Fails if the process is gone.
pub(crate) fn pidfd_raw(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the kernel just returned this descriptor (close-on-exec) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An adopted leader, its pidfd registered with the runtime (so this must run within one).
pub(crate) fn adopted(pidfd: OwnedFd) -> io::Result<Leader> {
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same descriptor until it drops.
    let registered =
        unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) };
    Ok(Leader::Adopted(registered?))
}
