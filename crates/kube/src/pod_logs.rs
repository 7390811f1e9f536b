//! A pod's output into its instance's log file, so `slipway logs` shows pods as it shows processes
//! and containers. One follower per container run: the log API's `follow` ends when the container
//! does, and the supervisor starts the next follower when the watch shows the next run (or the
//! instance's next pod). The API merges stdout and stderr, so lines are recorded as stdout.

use crate::names::CONTAINER;
use futures_util::AsyncBufReadExt;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use slipway_runtime::log_capture::{LogSink, Stream};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Follows the current run of `pod`'s container; `since_seconds` skips what an earlier daemon read.
pub(crate) fn follow(
    api: Api<Pod>,
    pod: String,
    sink: Arc<LogSink>,
    since_seconds: Option<i64>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let params = LogParams {
            container: Some(CONTAINER.to_owned()),
            follow: true,
            since_seconds,
            ..LogParams::default()
        };
        let reader = match api.log_stream(&pod, &params).await {
            Ok(reader) => reader,
            Err(e) => {
                sink.write_line(
                    Stream::Slipway,
                    &format!("cannot read the output of pod {pod}: {e}"),
                );
                return;
            }
        };
        let mut lines = reader.lines();
        while let Some(line) = lines.next().await {
            match line {
                Ok(line) => sink.write_line(Stream::Stdout, &line),
                Err(e) => {
                    tracing::debug!("the output of pod {pod} ended: {e}");
                    break;
                }
            }
        }
    })
}
