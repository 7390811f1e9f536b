//! An instance's stdout and stderr as named pipes in the run dir (`<id>.stdout`, `<id>.stderr`), so
//! its output outlives the daemon reading it.
//!
//! An anonymous pipe to the daemon breaks when the daemon dies: the app's next write gets SIGPIPE. A
//! FIFO that the app itself holds open for reading and writing never loses its last reader, so the
//! app keeps running while no daemon reads; what it writes waits in the pipe (64 KiB, then its writes
//! block until a daemon reads again), and the next daemon opens the same FIFO and reads on. The
//! daemon's read end sees end-of-file once every process of the instance has closed its copy — the
//! same moment an anonymous pipe would.

use crate::log_capture::Stream;
use nix::sys::stat::Mode;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use tokio::net::unix::pipe;

pub(crate) fn path(run_dir: &Path, id: &str, stream: Stream) -> PathBuf {
    run_dir.join(format!("{id}.{stream}"))
}

/// A fresh FIFO for `stream`: the end the child gets (read-write, see above) and ours (read-only).
pub(crate) fn create(
    run_dir: &Path,
    id: &str,
    stream: Stream,
) -> io::Result<(File, pipe::Receiver)> {
    let path = path(run_dir, id, stream);
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(io::Error::from)?;
    // The writer first: a FIFO's read end opened while it has no writer reads end-of-file.
    let child_end = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)?;
    let ours = open(run_dir, id, stream)?;
    Ok((child_end, ours))
}

/// Our read end of an existing FIFO (an adopted instance's).
pub(crate) fn open(run_dir: &Path, id: &str, stream: Stream) -> io::Result<pipe::Receiver> {
    pipe::OpenOptions::new().open_receiver(path(run_dir, id, stream))
}

pub(crate) fn remove(run_dir: &Path, id: &str) {
    for stream in [Stream::Stdout, Stream::Stderr] {
        let _ = std::fs::remove_file(path(run_dir, id, stream));
    }
}
