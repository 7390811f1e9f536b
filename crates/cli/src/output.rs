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
    // The rollout's own releases: a release that just left (rolled back) still has requests in the
    // rate's window for a while, and previews can reach any release.
    let in_rollout =
        |t: &&slipway_api::ReleaseTraffic| t.release == r.to || Some(t.release) == r.from;
    for t in traffic.iter().filter(in_rollout).filter(|t| t.requests > 0) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_line_shows_the_rollouts_own_releases_only() {
        let rollout: slipway_api::RolloutStatus = serde_json::from_value(serde_json::json!({
            "id": 1, "from": 3, "to": 4, "strategy": "canary", "phase": "progressing",
            "outcome": null, "reason": null, "weight_from": 90, "weight_to": 10,
            "ready_from": 1, "ready_to": 1, "want_to": 1, "started_at": 0, "deadline": 0,
        }))
        .unwrap();
        let traffic = |release, requests| slipway_api::ReleaseTraffic {
            release,
            window_seconds: 30,
            requests,
            rps: requests as f64 / 30.0,
            error_rate: Some(0.0),
            p95_ms: Some(1.0),
        };
        // v2 was rolled back a moment ago: its requests are still in the window.
        let line = rollout_line(&rollout, &[traffic(2, 300), traffic(3, 900), traffic(4, 0)]);
        assert!(line.contains("| v3: 30 rps"), "{line}");
        assert!(!line.contains("v2:"), "{line}");
        assert!(!line.contains("v4:"), "no requests yet: {line}");
    }
}
