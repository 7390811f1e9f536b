//! Instances a previous daemon on this run dir left running (it was killed, or it handed over to a new
//! binary), proven to be those very processes: the pid file's leader is alive, carries the instance's
//! marker, and started when the file says it did. The start time is checked again after its pidfd is
//! open, so the pidfd cannot refer to a process that took the pid over in between.

use crate::leader;
use crate::orphans::is_marked;
use crate::pid_file::{self, Identity};
use crate::process_group::{proc_stat, start_ticks};
use std::os::fd::OwnedFd;
use std::path::Path;

/// A running instance this daemon did not start, ready to be adopted.
#[derive(Debug)]
pub struct Survivor {
    pub id: String,
    pub pid: u32,
    pub identity: Identity,
    pub(crate) pidfd: OwnedFd,
}

/// The survivors recorded in `run_dir`, except ids `is_ours` (this daemon's own), sorted by id.
pub(crate) fn find(run_dir: &Path, is_ours: impl Fn(&str) -> bool) -> Vec<Survivor> {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut found: Vec<Survivor> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let id = pid_file::instance_of(name.to_str()?)?;
            if is_ours(id) {
                return None;
            }
            let record = pid_file::read(run_dir, id)?;
            let identity = record.identity?;
            let same = |pid| {
                start_ticks(pid) == Some(identity.start_ticks)
                    && matches!(proc_stat(pid), Some((state, _)) if !matches!(state, 'Z' | 'X'))
            };
            if !same(record.pid) || !marked(record.pid, id) {
                return None;
            }
            let pidfd = leader::pidfd_raw(record.pid).ok()?;
            same(record.pid).then(|| Survivor {
                id: id.to_owned(),
                pid: record.pid,
                identity,
                pidfd,
            })
        })
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// The marker, read again briefly if missing: a process in the middle of an `exec` shows an empty
/// environment for a moment.
fn marked(pid: u32, id: &str) -> bool {
    (0..3).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        is_marked(pid, id)
    })
}
