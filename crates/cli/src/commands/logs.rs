//! `slipway logs [-f] [--release vN] [--process P] [--since 10m]`: output of instances, release phases
//! and cron runs, streamed as the daemon sends it.

use super::{Context, parse_version};
use anyhow::Context as _;
use http_body_util::BodyExt;
use hyper::Method;
use std::io::Write;
use std::process::ExitCode;

pub struct Filter {
    pub release: Option<String>,
    pub process: Option<String>,
    pub since: Option<String>,
}

pub async fn run(
    ctx: &Context,
    follow: bool,
    filter: Filter,
    lines: usize,
) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let mut path = format!("/v1/apps/{app}/logs?tail={lines}&follow={follow}");
    if let Some(r) = filter.release {
        path.push_str(&format!("&release={}", parse_version(&r)?));
    }
    if let Some(p) = filter.process {
        path.push_str(&format!("&process={}", encode(&p)));
    }
    if let Some(s) = filter.since {
        path.push_str(&format!("&since={}", encode(&since(&s)?)));
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

/// `10m` (that long ago) or an RFC 3339 time, as an RFC 3339 UTC time.
fn since(text: &str) -> anyhow::Result<String> {
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(humantime::format_rfc3339_seconds(at).to_string());
    }
    let ago = humantime::parse_duration(text).with_context(|| {
        format!("--since {text}: write a duration like 10m or a time like 2026-11-30T10:00:00Z")
    })?;
    let at = std::time::SystemTime::now()
        .checked_sub(ago)
        .unwrap_or(std::time::UNIX_EPOCH);
    Ok(humantime::format_rfc3339_seconds(at).to_string())
}

/// Query values here are names and times: only a few characters need escaping.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
