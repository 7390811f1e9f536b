//! One-off jobs: a command run to completion, not kept running (the release phase, cron runs).
//!
//! Like an instance, a job leads its own process group, so a timeout or a cancel stops everything it
//! started: the stop signal to the group, SIGKILL after the grace period. Its output (stdout and stderr
//! interleaved, in order of arrival) goes to a log file and, bounded, into the outcome, for people.

use crate::leader::Leader;
use crate::log_capture::{Stream, format_line};
use crate::process_group::{Death, describe_exit, group_command, spawn, terminate};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// How much of a job's output its outcome keeps (the end of it; the log file has all of it).
const OUTPUT_KEPT: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct JobSpec {
    /// Run as `sh -c cmd`.
    pub cmd: String,
    pub workdir: PathBuf,
    /// Merged over the daemon's env. Values are never logged.
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    /// After a timeout or a cancel: SIGTERM, then this long, then SIGKILL.
    pub grace: Duration,
    /// Output is appended here; parent dirs are created.
    pub log_path: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobEnd {
    /// Exited with status 0.
    Succeeded,
    /// Exited non-zero or was killed by a signal: how, in words.
    Failed(String),
    TimedOut,
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct JobOutcome {
    pub end: JobEnd,
    pub exit_code: Option<i32>,
    /// The last 64 KiB of the output.
    pub output: String,
}

/// Runs the job until it exits, times out, or `cancel` completes.
pub async fn run_job(
    spec: JobSpec,
    cancel: impl std::future::Future<Output = ()>,
) -> io::Result<JobOutcome> {
    if let Some(dir) = spec.log_path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .await?;
    let mut command = group_command(&spec.cmd, &spec.workdir, &spec.env, Death::WithDaemon);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn(command)?;
    let pgid = child
        .id()
        .ok_or_else(|| io::Error::other("the job exited before it could be tracked"))?;
    let (lines_tx, mut lines) = mpsc::unbounded_channel();
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(out, Stream::Stdout, lines_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(err, Stream::Stderr, lines_tx.clone()));
    }
    drop(lines_tx);
    let mut child = Leader::Child(child);
    let mut output = String::new();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    tokio::pin!(cancel);
    let mut stopped = None;
    let status = loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => keep(&mut output, &mut log, line).await,
                // Both pipes closed: the group is done writing; wait for the exit.
                None => break child.wait().await.ok().flatten(),
            },
            status = child.wait() => break status.ok().flatten(),
            _ = tokio::time::sleep_until(deadline), if stopped.is_none() => {
                stopped = Some(JobEnd::TimedOut);
                break terminate(&mut child, pgid, Signal::SIGTERM, spec.grace).await.status;
            }
            _ = &mut cancel, if stopped.is_none() => {
                stopped = Some(JobEnd::Cancelled);
                break terminate(&mut child, pgid, Signal::SIGTERM, spec.grace).await.status;
            }
        }
    };
    // What was written before the exit is still in the pipes (or the channel).
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(500), lines.recv()).await
    {
        keep(&mut output, &mut log, line).await;
    }
    let _ = log.flush().await;
    let exit_code = status.and_then(|s| s.code());
    let end = match (stopped, status) {
        (Some(end), _) => end,
        (None, Some(s)) if s.success() => JobEnd::Succeeded,
        (None, Some(s)) => JobEnd::Failed(describe_exit(s)),
        (None, None) => JobEnd::Failed("its exit status could not be read".into()),
    };
    Ok(JobOutcome {
        end,
        exit_code,
        output,
    })
}

async fn forward(
    reader: impl AsyncRead + Unpin,
    stream: Stream,
    tx: mpsc::UnboundedSender<(Stream, String)>,
) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if tx.send((stream, line)).is_err() {
            return;
        }
    }
}

/// Into the log file as `slipway logs` reads it (timestamp, stream), and into the kept output as is.
async fn keep(output: &mut String, log: &mut tokio::fs::File, (stream, line): (Stream, String)) {
    let formatted = format_line(std::time::SystemTime::now(), stream, &line);
    let _ = log.write_all(formatted.as_bytes()).await;
    append_output(output, &line);
}

/// Adds a line to a job's kept output, dropping its oldest part past 64 KiB (wherever the job ran).
pub fn append_output(output: &mut String, line: &str) {
    output.push_str(line);
    output.push('\n');
    if output.len() > OUTPUT_KEPT {
        let mut cut = output.len() - OUTPUT_KEPT;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output.drain(..cut);
    }
}

impl JobEnd {
    pub fn describe(&self, timeout: Duration) -> String {
        match self {
            JobEnd::Succeeded => "succeeded".into(),
            JobEnd::Failed(how) => format!("failed: {how}"),
            JobEnd::TimedOut => format!("timed out after {}s and was stopped", timeout.as_secs()),
            JobEnd::Cancelled => "was stopped".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cmd: &str, dir: &std::path::Path, timeout: Duration) -> JobSpec {
        JobSpec {
            cmd: cmd.into(),
            workdir: dir.to_path_buf(),
            env: BTreeMap::from([("GREETING".into(), "hello".into())]),
            timeout,
            grace: Duration::from_secs(2),
            log_path: dir.join("logs/job.log"),
        }
    }

    #[tokio::test]
    async fn output_and_exit_code_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = run_job(
            spec(
                "echo $GREETING; echo oops >&2; exit 3",
                dir.path(),
                Duration::from_secs(60),
            ),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(out.end, JobEnd::Failed("exited with status 3".into()));
        assert_eq!(out.exit_code, Some(3));
        assert!(
            out.output.contains("hello\n") && out.output.contains("oops\n"),
            "{}",
            out.output
        );
        let log = std::fs::read_to_string(dir.path().join("logs/job.log")).unwrap();
        assert!(log.contains("hello"));
    }

    #[tokio::test]
    async fn a_timeout_stops_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let out = run_job(
            spec(
                "sleep 600 & echo started; wait",
                dir.path(),
                Duration::from_millis(300),
            ),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(out.end, JobEnd::TimedOut);
        assert!(out.output.contains("started"));
    }

    #[tokio::test]
    async fn a_cancel_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let job = tokio::spawn(run_job(
            spec("echo up; sleep 600", dir.path(), Duration::from_secs(600)),
            async move {
                let _ = rx.await;
            },
        ));
        let log = dir.path().join("logs/job.log");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("up")) {
            assert!(
                std::time::Instant::now() < deadline,
                "the job never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.send(()).unwrap();
        assert_eq!(job.await.unwrap().unwrap().end, JobEnd::Cancelled);
    }
}
