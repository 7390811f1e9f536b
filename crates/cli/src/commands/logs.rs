//! `slipway logs [-f] [--release vN] [--process P] [--since 10m]`: output of instances, release phases
//! and cron runs, streamed as the daemon sends it (with `--json`, one JSON object a line).

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
    // With --json, only whole lines are turned into records; a line split across frames waits here.
    let mut partial = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if !ctx.json() || !status.is_success() {
            out.write_all(&data)?;
        } else {
            partial.extend_from_slice(&data);
            while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]);
                writeln!(out, "{}", serde_json::to_string(&record(&text))?)?;
            }
        }
        out.flush()?;
    }
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One line as the daemon sends it, `<time> <instance> [stdout] text`, as a record for scripts.
#[derive(Debug, PartialEq, serde::Serialize)]
struct Record<'a> {
    time: &'a str,
    /// The instance (or job run) id: `<app>-v<N>-<process>-<suffix>`.
    source: &'a str,
    /// `stdout` or `stderr` when the runtime marked it, else `null`.
    stream: Option<&'a str>,
    text: &'a str,
}

fn record(line: &str) -> Record<'_> {
    let (time, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (source, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (stream, text) = match rest.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((s @ ("stdout" | "stderr"), text)) => (Some(s), text),
        _ => (None, rest),
    };
    Record {
        time,
        source,
        stream,
        text,
    }
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

#[cfg(test)]
mod tests {
    use super::{Record, record};

    #[test]
    fn a_line_becomes_a_record() {
        assert_eq!(
            record("2026-12-04T10:00:00.123Z shop-v3-web-1a2b [stderr] listening on :8000 [ok]"),
            Record {
                time: "2026-12-04T10:00:00.123Z",
                source: "shop-v3-web-1a2b",
                stream: Some("stderr"),
                text: "listening on :8000 [ok]",
            }
        );
        // A line the runtime did not mark keeps its text whole.
        assert_eq!(
            record("2026-12-04T10:00:00Z shop-v3-release [note] migrating").stream,
            None
        );
        assert_eq!(
            record("2026-12-04T10:00:00Z shop-v3-release [note] migrating").text,
            "[note] migrating"
        );
    }
}
