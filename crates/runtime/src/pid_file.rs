//! `<run_dir>/<id>.pid`: what a daemon needs to find a running instance again after it was killed or
//! upgraded, and to prove the process it finds is that instance and not a stranger that reused the pid.
//!
//! ```text
//! 4242
//! start 1234567
//! app shop
//! release 3
//! process web
//! port 40123
//! ```
//!
//! The first line is the group leader's pid (also the group id): older daemons wrote only that line,
//! and a file without the rest is an instance that cannot be adopted, only reaped. `start` is the
//! leader's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22): a reused pid has
//! another one. Written to a temporary file and renamed, so a reader never sees half a record.

use std::io;
use std::path::{Path, PathBuf};

const PID_SUFFIX: &str = ".pid";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidRecord {
    pub pid: u32,
    pub identity: Option<Identity>,
}

/// Who the process is: enough to check it and to serve it again without starting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub start_ticks: u64,
    pub app: String,
    pub release: u64,
    pub process: String,
    pub port: Option<u16>,
}

impl PidRecord {
    pub(crate) fn format(&self) -> String {
        let mut text = format!("{}\n", self.pid);
        if let Some(who) = &self.identity {
            text.push_str(&format!(
                "start {}\napp {}\nrelease {}\nprocess {}\n",
                who.start_ticks, who.app, who.release, who.process
            ));
            if let Some(port) = who.port {
                text.push_str(&format!("port {port}\n"));
            }
        }
        text
    }

    /// `None` if even the pid is unreadable; a record without a complete identity keeps only the pid.
    pub(crate) fn parse(text: &str) -> Option<PidRecord> {
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let (mut start, mut app, mut release, mut process, mut port) =
            (None, None, None, None, None);
        for line in lines {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            match key {
                "start" => start = value.parse().ok(),
                "app" => app = Some(value.to_owned()),
                "release" => release = value.parse().ok(),
                "process" => process = Some(value.to_owned()),
                "port" => port = value.parse().ok(),
                _ => {}
            }
        }
        let identity = match (start, app, release, process) {
            (Some(start_ticks), Some(app), Some(release), Some(process)) => Some(Identity {
                start_ticks,
                app,
                release,
                process,
                port,
            }),
            _ => None,
        };
        Some(PidRecord { pid, identity })
    }
}

pub(crate) fn path(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join(format!("{id}{PID_SUFFIX}"))
}

/// The instance id a file in the run dir is the pid file of.
pub(crate) fn instance_of(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(PID_SUFFIX)
        .filter(|id| !id.starts_with('.'))
}

pub(crate) fn write(run_dir: &Path, id: &str, record: &PidRecord) -> io::Result<()> {
    let tmp = run_dir.join(format!(".{id}{PID_SUFFIX}.tmp"));
    std::fs::write(&tmp, record.format())?;
    std::fs::rename(&tmp, path(run_dir, id))
}

/// Written before the process is spawned, so a daemon killed between the spawn and the record still
/// leaves a file naming the instance: the next daemon then finds its processes by their marker and
/// reaps them (a file without a pid is never adopted).
pub(crate) fn write_starting(run_dir: &Path, id: &str) -> io::Result<()> {
    let tmp = run_dir.join(format!(".{id}{PID_SUFFIX}.tmp"));
    std::fs::write(&tmp, "starting\n")?;
    std::fs::rename(&tmp, path(run_dir, id))
}

pub(crate) fn read(run_dir: &Path, id: &str) -> Option<PidRecord> {
    PidRecord::parse(&std::fs::read_to_string(path(run_dir, id)).ok()?)
}

pub(crate) fn remove(run_dir: &Path, id: &str) {
    match std::fs::remove_file(path(run_dir, id)) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => tracing::warn!(instance = id, error = %err, "cannot remove pid file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> PidRecord {
        PidRecord {
            pid: 4242,
            identity: Some(Identity {
                start_ticks: 1_234_567,
                app: "shop".into(),
                release: 3,
                process: "web".into(),
                port: Some(40123),
            }),
        }
    }

    #[test]
    fn a_record_round_trips() {
        assert_eq!(PidRecord::parse(&full().format()), Some(full()));
        let mut worker = full();
        if let Some(who) = worker.identity.as_mut() {
            who.port = None;
        }
        assert_eq!(PidRecord::parse(&worker.format()), Some(worker));
    }

    #[test]
    fn an_older_daemons_file_is_a_pid_without_identity() {
        assert_eq!(
            PidRecord::parse("4242\n"),
            Some(PidRecord {
                pid: 4242,
                identity: None
            })
        );
        // Half an identity is none: it could not be checked.
        assert_eq!(
            PidRecord::parse("4242\napp shop\nrelease 3\n").and_then(|r| r.identity),
            None
        );
        assert_eq!(PidRecord::parse("garbage\n"), None);
        assert_eq!(PidRecord::parse(""), None);
    }

    #[test]
    fn only_plain_pid_files_name_instances() {
        assert_eq!(instance_of("web-1.pid"), Some("web-1"));
        assert_eq!(instance_of(".web-1.pid.tmp"), None);
        assert_eq!(instance_of(".web-1.pid"), None);
        assert_eq!(instance_of("web-1.stdout"), None);
    }
}
