//! `slipway logs [-f] [--release vN]`: instance output, streamed as the daemon sends it.

use super::{Context, parse_version};
use http_body_util::BodyExt;
use hyper::Method;
use std::io::Write;
use std::process::ExitCode;

pub async fn run(
    ctx: &Context,
    follow: bool,
    release: Option<String>,
    lines: usize,
) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let mut path = format!("/v1/apps/{app}/logs?tail={lines}&follow={follow}");
    if let Some(r) = release {
        path.push_str(&format!("&release={}", parse_version(&r)?));
    }
    let response = ctx.client.request(Method::GET, &path, None).await?;
    let status = response.status();
    let mut body = response.into_body();
    let mut out = std::io::stdout().lock();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            out.write_all(&data)?;
            out.flush()?;
        }
    }
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
