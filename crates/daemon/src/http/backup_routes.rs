//! `POST /v1/backup` (admin): the daemon's state as one tar file, streamed in the answer as it is
//! written (`ops/backup.rs` makes it). It works the same over the local socket and over TCP, and
//! nothing is left on the daemon's disk: the staging folder goes when the stream ends.
//!
//! Once the answer has started, a failure can no longer change its status: the stream then ends
//! with an error instead of its last chunk, so the client sees a broken transfer, never a short file
//! that looks whole (and `slipway backup` checks every entry of what it received anyway).

use crate::history_retention::DAEMON_JOURNAL;
use crate::http::caller::Caller;
use crate::http::route_table::{Door, Routes};
use crate::http::{Answer, Api};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::io::{self, Write};
use tokio::sync::mpsc;

pub(crate) fn routes() -> Routes<Api> {
    Routes::new(Door::Api).post("/v1/backup", backup)
}

/// Chunks of the file on their way to the client.
const CHUNK: usize = 64 * 1024;

async fn backup(State(api): State<Api>, caller: Caller) -> Answer {
    let backups = api.backups.clone();
    let prepared = tokio::task::spawn_blocking(move || backups.prepare())
        .await
        .map_err(|e| crate::http::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let who = caller
        .tcp_who()
        .unwrap_or_else(|| "the local socket".to_string());
    let _ = api.store.add_event(
        DAEMON_JOURNAL,
        None,
        "backup",
        &format!(
            "backup made for {who}: {} apps, {} artifacts",
            prepared.index.apps.len(),
            prepared.index.artifacts.len()
        ),
        crate::clock::now_ms() as i64,
    );
    let name = format!("slipway-backup-{}.tar", prepared.index.made_at_ms / 1000);
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let bytes = prepared.bytes();
        let mut out = io::BufWriter::with_capacity(CHUNK, Sender(tx.clone()));
        match prepared.write_to(&mut out) {
            Ok(()) => tracing::info!(bytes, "backup sent to {who}"),
            Err(e) => {
                tracing::warn!("backup for {who} not completed: {e}");
                // Ends the body with an error: the client sees the transfer break.
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
        // Dropping `prepared` here removes its staging folder.
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A `Write` whose bytes become the answer's chunks; it fails once the client is gone.
struct Sender(mpsc::Sender<io::Result<Bytes>>);

impl Write for Sender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
