//! The release phase: `[release] cmd` (e.g. migrations) run once per release, in the new release's
//! artifact (on Kubernetes, its image) and env, before any instance of it starts; and `rollback_cmd`
//! (a down migration) on rollback. `one_off.rs` says where it runs.
//!
//! Two release phases of one app never overlap: each runs under the app's migration lock, an exclusive
//! `flock` on a file in the state dir. The kernel drops it when its holder dies, so a crashed daemon
//! never leaves it held, and it works across every process that shares the state dir.

use crate::error::Error;
use crate::ops::deploy::Deployer;
use crate::ops::one_off::OneOff;
use slipway_api::PhaseReport;
use slipway_core::release::{Release, Version};
use slipway_runtime::JobEnd;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How much of a failed phase's output the error shows (the log has all of it).
const SHOWN_LINES: usize = 40;

/// Held while a release phase runs; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub(crate) struct MigrationLock {
    _file: File,
}

impl MigrationLock {
    /// Waits up to `timeout` for the lock; the holder's description is written into the file so a
    /// waiter can say what it waits for.
    pub(crate) async fn acquire(
        path: &Path,
        holder: &str,
        timeout: Duration,
        mut on_wait: impl FnMut(&str),
    ) -> Result<MigrationLock, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open the migration lock {}: {e}", path.display()))?;
        let deadline = Instant::now() + timeout;
        let mut waited = false;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            let got = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
            if got {
                let _ = file.set_len(0);
                let _ = file.rewind();
                let _ = file.write_all(holder.as_bytes());
                return Ok(MigrationLock { _file: file });
            }
            let mut current = String::new();
            let _ = file.rewind();
            let _ = file.read_to_string(&mut current);
            if !waited {
                on_wait(current.trim());
                waited = true;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the migration lock is still held after {}s by: {}",
                    timeout.as_secs(),
                    if current.trim().is_empty() {
                        "another process"
                    } else {
                        current.trim()
                    }
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Deployer {
    fn migration_lock_path(&self, app: &str) -> PathBuf {
        self.state_dir
            .join("locks")
            .join(format!("{app}.migration.lock"))
    }

    fn phase_log(&self, app: &str, version: Version, what: &str) -> PathBuf {
        self.state_dir
            .join("logs")
            .join(app)
            .join(format!("v{version}"))
            .join(format!("{app}-v{version}-{what}.log"))
    }

    /// Runs `[release] cmd` for `release`, if it has one. An error means the deploy must fail.
    pub(crate) async fn release_phase(
        &self,
        release: &Release,
        who: &str,
    ) -> Result<Option<PhaseReport>, Error> {
        let Some(cmd) = release.spec.release_phase.cmd.clone() else {
            return Ok(None);
        };
        let holder = format!(
            "release phase of {} v{} by {who}",
            release.app, release.version
        );
        self.run_phase(release, release.version, &cmd, "release", &holder)
            .await
            .map(Some)
    }

    /// Runs the `rollback_cmd` of `from` (the release being rolled back), if it declares one.
    pub(crate) async fn rollback_phase(
        &self,
        from: &Release,
        to: Version,
        who: &str,
    ) -> Result<Option<PhaseReport>, Error> {
        let Some(cmd) = from.spec.release_phase.rollback_cmd.clone() else {
            return Ok(None);
        };
        let holder = format!(
            "rollback phase of {} v{} (back to v{to}) by {who}",
            from.app, from.version
        );
        self.run_phase(from, from.version, &cmd, "rollback", &holder)
            .await
            .map(Some)
    }

    /// `cmd` in `release`'s artifact (or image) and env, under the migration lock, with the phase's
    /// timeout.
    async fn run_phase(
        &self,
        release: &Release,
        logged_as: Version,
        cmd: &str,
        what: &str,
        holder: &str,
    ) -> Result<PhaseReport, Error> {
        let app = &release.app;
        let v = release.version;
        let timeout = release.spec.release_phase.timeout;
        let _lock = MigrationLock::acquire(&self.migration_lock_path(app), holder, timeout, |by| {
            self.event(
                app,
                Some(v),
                "migration_lock_wait",
                &format!("waiting for the migration lock, held by: {by}"),
            )
        })
        .await
        .map_err(|e| Error::conflict(format!("the {what} phase of v{v} did not run: {e}")))?;
        let log = self.phase_log(app, logged_as, what);
        self.event(
            app,
            Some(v),
            &format!("{what}_phase_started"),
            &format!("{what} phase of v{v} started: `{cmd}`"),
        );
        let started = Instant::now();
        let job = OneOff {
            release: release.clone(),
            name: what.to_string(),
            run: run_suffix(),
            cmd: cmd.to_string(),
            env: BTreeMap::from([("SLIPWAY_PHASE".to_string(), what.to_string())]),
            timeout,
            log_path: log.clone(),
        };
        // Its own task: a client that goes away must not cut a migration in half.
        let one_offs = self.one_offs.clone();
        let outcome = tokio::spawn(async move { one_offs.run(job, std::future::pending()).await })
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::conflict(format!("the {what} phase of v{v} did not start: {e}")))?;
        let report = PhaseReport {
            cmd: cmd.to_string(),
            outcome: outcome.end.describe(timeout),
            exit_code: outcome.exit_code,
            seconds: started.elapsed().as_secs_f64(),
            output: last_lines(&outcome.output, SHOWN_LINES),
            log: log.display().to_string(),
            stable_watch: None,
        };
        let text = format!(
            "{what} phase of v{v} {} in {:.1}s",
            report.outcome, report.seconds
        );
        if outcome.end == JobEnd::Succeeded {
            self.event(app, Some(v), &format!("{what}_phase_succeeded"), &text);
            Ok(report)
        } else {
            self.event(app, Some(v), &format!("{what}_phase_failed"), &text);
            Err(Error::conflict(format!(
                "the {what} phase of v{v} (`{cmd}`) {}\n--- its last output ---\n{}--- all of it: {} (or `slipway logs --release v{logged_as}`)",
                report.outcome,
                if report.output.is_empty() {
                    "(none)\n".to_string()
                } else {
                    report.output.clone()
                },
                report.log
            )))
        }
    }

    pub(crate) async fn checkout(&self, digest: &str) -> Result<PathBuf, Error> {
        self.one_offs
            .checkout(digest)
            .await
            .map_err(Error::internal)
    }
}

/// Tells two runs of one phase apart in their pods' names: the time, in base 36 (lowercase).
fn run_suffix() -> String {
    let mut n = crate::clock::now_ms();
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
    }
    digits.iter().rev().collect()
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/app.migration.lock");
        let held =
            MigrationLock::acquire(&path, "release phase of v2", Duration::from_secs(1), |_| {})
                .await
                .unwrap();
        let mut seen = String::new();
        let second = MigrationLock::acquire(
            &path,
            "release phase of v3",
            Duration::from_millis(300),
            |by| seen = by.to_string(),
        )
        .await;
        assert_eq!(seen, "release phase of v2");
        assert!(
            second
                .unwrap_err()
                .contains("held after 0s by: release phase of v2")
        );
        drop(held);
        MigrationLock::acquire(&path, "v3", Duration::from_secs(1), |_| {})
            .await
            .unwrap();
    }
}
