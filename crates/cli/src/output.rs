//! How commands print: tables and lines for people, or JSON for scripts (`--json`), and the small
//! formatting helpers the tables share.

use std::time::{Duration, UNIX_EPOCH};

/// `--format text|json` (`--json` is short for `--format json`), the same on every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables and sentences on stdout.
    Text,
    /// One JSON document on stdout (a command that follows a rollout prints its progress on stderr
    /// and its outcome as JSON at the end; `logs` prints one JSON object a line).
    Json,
}

/// A size for people: `812 bytes`, `48 KB`, `12 MB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 10 << 20 => format!("{} MB", b >> 20),
        b if b >= 10 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `2026-11-22 10:00:01` (UTC) from Unix milliseconds.
pub fn time(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    t
}

/// One line saying where a rollout is: phase, canary step and weight, each release's recent traffic
/// (requests/s, error rate, p95), and the analyses' verdicts.
pub fn rollout_line(
    r: &slipway_api::RolloutStatus,
    traffic: &[slipway_api::ReleaseTraffic],
) -> String {
    let mut line = format!(
        "  [{}] v{} ready {}/{}",
        r.phase, r.to, r.ready_to, r.want_to
    );
    match &r.canary {
        Some(c) => {
            let step = if c.step > c.steps {
                "promoting".to_string()
            } else {
                format!("step {}/{}", c.step, c.steps)
            };
            line.push_str(&format!(
                ", {step}, weight {}% (given {}%)",
                c.weight, c.effective_weight
            ));
            if c.paused {
                line.push_str(", paused");
            }
            if c.routes > 0 {
                line.push_str(&format!(", {} route(s)", c.routes));
            }
            if c.mirror > 0 {
                line.push_str(&format!(", mirror {}%", c.mirror));
            }
        }
        None => line.push_str(&format!(", traffic {}% → v{}", r.weight_to, r.to)),
    }
    for t in traffic.iter().filter(|t| t.requests > 0) {
        line.push_str(&format!(
            " | v{}: {:.0} rps, {} errors, p95 {}",
            t.release,
            t.rps,
            t.error_rate
                .map_or("-".to_string(), |e| format!("{:.2}%", e * 100.0)),
            t.p95_ms.map_or("-".to_string(), |p| format!("{p:.1}ms"))
        ));
    }
    for a in &r.analysis {
        line.push_str(&format!(
            " | {} ({}): {}",
            a.template,
            a.purpose,
            a.verdict.as_deref().unwrap_or("starting")
        ));
    }
    line
}
