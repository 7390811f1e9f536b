//! systemd socket activation and readiness: the listening sockets systemd holds for the daemon
//! (`LISTEN_FDS`), so that even while no daemon runs (a crash, a restart) connections wait in their
//! backlog instead of being refused; and `READY=1` / `MAINPID=` on `NOTIFY_SOCKET`, so systemd knows
//! when the daemon serves and which process is the daemon after an upgrade.

use crate::handover::Inherited;
use std::os::fd::{FromRawFd, OwnedFd};

/// systemd passes its sockets from this descriptor on.
const FIRST_FD: i32 = 3;

/// The sockets systemd passed to this process, named by `FileDescriptorName=` (`proxy`, `api-tcp`);
/// an unnamed single socket is the proxy's.
pub fn inherited() -> Vec<Inherited> {
    let var = |name| std::env::var(name).ok();
    let for_us = var("LISTEN_PID")
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    let count = var("LISTEN_FDS")
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !for_us || count <= 0 {
        return Vec::new();
    }
    let names = var("LISTEN_FDNAMES").unwrap_or_default();
    let names: Vec<&str> = names.split(':').collect();
    (0..count)
        .filter(|i| {
            // Only what is there and a socket becomes ours: closing anything else would be wrong.
            let is_socket = is_socket(FIRST_FD + i);
            if !is_socket {
                tracing::warn!(
                    "LISTEN_FDS: descriptor {} is not a socket; ignored",
                    FIRST_FD + i
                );
            }
            is_socket
        })
        .map(|i| {
            let name = match names.get(i as usize) {
                Some(name) if !name.is_empty() && *name != "unknown" => (*name).to_owned(),
                _ if count == 1 => "proxy".to_owned(),
                _ => format!("unnamed-{i}"),
            };
            // SAFETY: systemd opened these descriptors for this process (LISTEN_PID is ours) and
            // nothing else in it owns them.
            let fd = unsafe { OwnedFd::from_raw_fd(FIRST_FD + i) };
            set_cloexec(&fd);
            Inherited { name, fd }
        })
        .collect()
}

fn is_socket(fd: i32) -> bool {
    // SAFETY: fstat writes into the zeroed struct it is given; an fd that is not open is an error.
    unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut stat) == 0 && (stat.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    }
}

/// systemd leaves them inheritable; app instances must not get them.
fn set_cloexec(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor this process owns; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// Tells systemd (if it started this daemon with `Type=notify`) that this process serves now and is
/// the service's main process — after an upgrade, the new daemon is.
pub fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message = format!("READY=1\nMAINPID={}\n", std::process::id());
    if let Err(error) = send(&path, message.as_bytes()) {
        tracing::warn!(%error, "cannot tell systemd the daemon is ready");
    }
}

fn send(path: &std::ffi::OsStr, message: &[u8]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let bytes = path.as_bytes();
    // A leading '@' names a socket in the abstract namespace.
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(path)?,
    };
    UnixDatagram::unbound()?.send_to_addr(message, &addr)?;
    Ok(())
}
