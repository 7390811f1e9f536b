//! `POST /v1/uploads` (deployer): an app folder as tar.gz (`Content-Type: application/gzip`), for
//! the deploy that follows (`DeployRequest.upload`). The body is written to disk as it arrives —
//! never held in memory — and cut off past `ops::uploads::MAX_SENT`.

use crate::http::route_table::{Door, Routes};
use crate::http::{Answer, Api, error};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

pub(crate) fn routes() -> Routes<Api> {
    Routes::new(Door::Api).post("/v1/uploads", upload)
}

async fn upload(State(api): State<Api>, headers: HeaderMap, body: Body) -> Answer {
    let gzip = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "application/gzip");
    if !gzip {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an upload is a tar.gz sent as `Content-Type: application/gzip`",
        ));
    }
    let uploads = api.deployer.uploads.clone();
    let (id, file) = uploads.incoming();
    let received = receive(body, &file).await;
    if let Err(refusal) = received {
        let _ = tokio::fs::remove_file(&file).await;
        return Err(refusal);
    }
    let accepted = tokio::task::spawn_blocking(move || uploads.unpack(&id, &file))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    tracing::info!(
        upload = %accepted.upload,
        files = accepted.files,
        bytes = accepted.bytes,
        "app folder uploaded"
    );
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

/// Writes the body to `file`, refusing it past the limit.
async fn receive(body: Body, file: &std::path::Path) -> Result<(), axum::response::Response> {
    let failed = |e: std::io::Error| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store the upload: {e}"),
        )
    };
    let mut out = tokio::fs::File::create(file).await.map_err(failed)?;
    let mut sent = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("the upload broke off: {e}"),
            )
        })?;
        sent += chunk.len() as u64;
        if sent > crate::ops::uploads::MAX_SENT {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the folder is over {} MiB gzipped: leave build output and dependencies out \
                     with `exclude` under [artifact] in slipway.toml",
                    crate::ops::uploads::MAX_SENT >> 20
                ),
            ));
        }
        out.write_all(&chunk).await.map_err(failed)?;
    }
    out.flush().await.map_err(failed)
}
