//! Reaping what a previous daemon left running and this one did not adopt.
//!
//! Instances outlive their daemon on purpose (a restarted daemon adopts them, see `survivors.rs`); what
//! it does not adopt — an old release, a record it cannot check, a grandchild whose leader is gone —
//! is killed here, found by its pid file (`pid_file.rs`), but only processes that prove to be the
//! instance: `/proc/<pid>/environ` carries `SLIPWAY_INSTANCE=<id>`. That guards against pid reuse: a
//! recycled pid belongs to a process without the marker, and is left alone.

use crate::pid_file;
use crate::process_group::proc_stat;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// SIGKILLs the leftovers recorded in `run_dir`, except ids for which `is_ours` is true (this daemon's
/// own running instances). Returns the ids of which something was killed, sorted. Blocks up to ~2 s
/// while the killed processes disappear, so their ports are free when it returns.
pub(crate) fn reap(run_dir: &Path, is_ours: impl Fn(&str) -> bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut recorded: BTreeMap<String, Option<u32>> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(pid_file::instance_of) else {
            continue;
        };
        if is_ours(id) {
            continue;
        }
        // `None` for a file written just before a spawn: the marker alone finds the processes.
        let pgid = pid_file::read(run_dir, id).map(|record| record.pid);
        recorded.insert(id.to_owned(), pgid);
    }
    if recorded.is_empty() {
        return Vec::new();
    }

    let processes = marked_processes();
    let mut reaped = Vec::new();
    let mut killed = Vec::new();
    for (id, pgid) in &recorded {
        // Everything carrying the marker: the group leader, forked children, and children that moved to a
        // group of their own.
        let members: Vec<&MarkedProcess> = processes.iter().filter(|p| &p.instance == id).collect();
        if !members.is_empty() {
            if let Some(pgid) = pgid.filter(|g| members.iter().any(|p| p.pgrp == *g)) {
                crate::process_group::signal_group(pgid, Signal::SIGKILL);
            }
            for process in &members {
                if let Ok(pid) = i32::try_from(process.pid) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                killed.push(process.pid);
            }
            tracing::warn!(instance = %id, processes = members.len(), "killed an instance left by a previous daemon");
            reaped.push(id.clone());
        }
        pid_file::remove(run_dir, id);
        crate::output_pipe::remove(run_dir, id);
    }

    let deadline = Instant::now() + Duration::from_secs(2);
    while killed.iter().any(|&pid| is_live(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    reaped
}

#[derive(Debug)]
struct MarkedProcess {
    pid: u32,
    pgrp: u32,
    instance: String,
}

/// Whether `pid`'s environment carries `SLIPWAY_INSTANCE=<id>`.
pub(crate) fn is_marked(pid: u32, id: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .ok()
        .and_then(|environ| instance_marker(&environ))
        .is_some_and(|marker| marker == id)
}

/// Live processes whose environment carries `SLIPWAY_INSTANCE=...`.
fn marked_processes() -> Vec<MarkedProcess> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own_pid = std::process::id();
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own_pid)
        .filter_map(|pid| {
            let (state, pgrp) = proc_stat(pid)?;
            if matches!(state, 'Z' | 'X') {
                return None;
            }
            let instance = instance_marker(&std::fs::read(format!("/proc/{pid}/environ")).ok()?)?;
            Some(MarkedProcess {
                pid,
                pgrp,
                instance,
            })
        })
        .collect()
}

/// The `SLIPWAY_INSTANCE` value in a NUL-separated environment block.
fn instance_marker(environ: &[u8]) -> Option<String> {
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(b"SLIPWAY_INSTANCE="))
        .and_then(|id| std::str::from_utf8(id).ok())
        .map(str::to_owned)
}

fn is_live(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if !matches!(state, 'Z' | 'X'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_an_exact_variable() {
        assert_eq!(
            instance_marker(b"A=1\0SLIPWAY_INSTANCE=web-1\0B=2\0"),
            Some("web-1".into())
        );
        assert_eq!(instance_marker(b"XSLIPWAY_INSTANCE=web-1\0"), None);
        assert_eq!(instance_marker(b"A=SLIPWAY_INSTANCE=web-1\0"), None);
        assert_eq!(instance_marker(b""), None);
    }

    #[test]
    fn stale_pid_files_are_cleaned_and_ours_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (id, pid) in [("web-1", 4_000_000), ("ours", 4_000_001)] {
            let record = pid_file::PidRecord {
                pid,
                identity: None,
            };
            pid_file::write(dir.path(), id, &record).expect("write");
        }
        // No process carries the marker: nothing is killed, the stale file is removed, ours is kept.
        assert!(reap(dir.path(), |id| id == "ours").is_empty());
        assert!(!pid_file::path(dir.path(), "web-1").exists());
        assert!(pid_file::path(dir.path(), "ours").exists());
    }
}
