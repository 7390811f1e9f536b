//! A one-off command of a release (its release phase, a cron run) as a container of the release's
//! image: made and started like an instance (labelled, locked down, its secrets in place), its output
//! copied into the job's log as it comes, stopped at the timeout or on cancel (SIGTERM, SIGKILL after
//! the grace period), and removed once it ended. The outcome is the one a job on the host has.

use crate::container_logs::LogStream;
use crate::engine::Engine;
use crate::spec::ContainerSpec;
use futures_util::StreamExt;
use slipway_runtime::log_capture::{LogSink, Stream};
use slipway_runtime::{JobEnd, JobOutcome, append_output};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// How long the output may take to arrive after the container ended.
const OUTPUT_WAIT: Duration = Duration::from_secs(10);

impl Engine {
    /// Runs `spec` (its entrypoint and command set to the job's) until it exits, `timeout` passes,
    /// or `cancel` completes. An `Err` means it could not start; nothing is left behind then.
    pub async fn run_job(
        &self,
        spec: &ContainerSpec,
        timeout: Duration,
        grace: Duration,
        log_path: &Path,
        cancel: impl Future<Output = ()>,
    ) -> Result<JobOutcome, String> {
        let sink = LogSink::open(log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let running = self.run_instance(spec).await.map_err(|e| e.to_string())?;
        let lines = self.logs(&running.id, true);
        let output = tokio::spawn(async move {
            let mut output = String::new();
            tokio::pin!(lines);
            while let Some(Ok(line)) = lines.next().await {
                let stream = match line.stream {
                    LogStream::Stdout => Stream::Stdout,
                    LogStream::Stderr => Stream::Stderr,
                };
                sink.write_line(stream, &line.text);
                append_output(&mut output, &line.text);
            }
            output
        });
        tokio::pin!(cancel);
        let (end, exit_code) = tokio::select! {
            exit = self.wait_exit(&running.id) => match exit {
                Ok(exit) if exit.success() => (JobEnd::Succeeded, Some(0)),
                Ok(exit) => (JobEnd::Failed(exit.to_string()), i32::try_from(exit.code).ok()),
                Err(e) => (JobEnd::Failed(e.to_string()), None),
            },
            _ = tokio::time::sleep(timeout) => {
                let _ = self.stop_instance(&running.id, grace).await;
                (JobEnd::TimedOut, None)
            }
            _ = &mut cancel => {
                let _ = self.stop_instance(&running.id, grace).await;
                (JobEnd::Cancelled, None)
            }
        };
        let output = tokio::time::timeout(OUTPUT_WAIT, output)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if let Err(e) = self.remove_instance(&running.id).await {
            tracing::warn!("cannot remove the job's container {}: {e}", running.name);
        }
        Ok(JobOutcome {
            end,
            exit_code,
            output,
        })
    }
}
