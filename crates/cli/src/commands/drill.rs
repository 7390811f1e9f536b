//! `slipway drill`: starts the drill (the daemon's `POST /v1/apps/{app}/drill`), follows its canary to
//! the rollback the analysis should make, waits for the drill's instances to be gone, and reports how
//! long each part took and whether any request failed beyond the injected ones — from the daemon's
//! events (their times) and its `/metrics` counters before and after.

use super::progress::{Outcome, follow_until};
use super::{Context, who};
use anyhow::Context as _;
use http_body_util::BodyExt;
use slipway_api::{AppStatus, DeployAccepted, DrillRequest};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the drill's canary may run before the drill gives up on the analysis and aborts it.
const UNDETECTED_AFTER: Duration = Duration::from_secs(180);
/// How long the drill's instances may take to drain and stop after the rollback.
const DRAIN_WITHIN: Duration = Duration::from_secs(120);

/// What a drill found (`--json` prints it; the text is the same facts).
#[derive(Debug, serde::Serialize)]
pub struct DrillReport {
    pub app: String,
    /// The drill's release (the stable one again).
    pub release: u64,
    /// `rolled_back` (the analysis caught it), `not_detected` (aborted by the drill), or how the
    /// rollout otherwise ended.
    pub outcome: String,
    pub reason: Option<String>,
    /// From the drill canary's first ready instance to the analysis verdict.
    pub detection_ms: Option<i64>,
    /// From the first ready instance to the rollout's end (the canary at weight 0).
    pub rollback_ms: Option<i64>,
    /// From the rollout's end to the drill's last instance gone.
    pub drain_ms: Option<i64>,
    /// Requests the proxy failed on purpose.
    pub injected_failures: u64,
    /// Requests that failed otherwise during the drill (5xx answers and requests no instance answered,
    /// of any release of the app), beyond the injected ones.
    pub other_failures: u64,
}

pub async fn run(
    ctx: &Context,
    weight: u32,
    error_rate: &str,
    detach: bool,
) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let request = DrillRequest {
        weight: Some(weight),
        error_rate: Some(super::gate::percent(error_rate)?),
        who: who(),
    };
    let before = failures(ctx, &app).await?;
    let Some(accepted) = ctx
        .submit::<_, DeployAccepted>(&format!("/v1/apps/{app}/drill"), &request)
        .await
    else {
        return Ok(ExitCode::from(1));
    };
    let drill = accepted.release;
    ctx.say(format!(
        "{app}: drill v{drill}: the stable release again as a canary at {weight}%, {error_rate} of its \
         requests failed on purpose; the canary analysis should roll it back"
    ));
    if detach {
        return Outcome::started(&accepted).finish(ctx);
    }
    let ended = match tokio::time::timeout(UNDETECTED_AFTER, follow_until(ctx, &accepted, None))
        .await
    {
        Ok(outcome) => outcome?,
        Err(_) => {
            let body = serde_json::json!({ "reason": "slipway drill: the analysis did not catch the injected failures" });
            let _: serde_json::Value = ctx
                .client
                .post(&format!("/v1/apps/{app}/abort"), &body)
                .await?;
            let mut outcome = follow_until(ctx, &accepted, None).await?;
            outcome.outcome = "not_detected".to_string();
            outcome
        }
    };
    let drained_at = drained(ctx, &app, drill).await?;
    let after = failures(ctx, &app).await?;
    let events: Vec<Event> = ctx
        .client
        .get(&format!("/v1/apps/{app}/events?tail=500"))
        .await?;
    let of_drill = |kind: &str| {
        events
            .iter()
            .find(|e| e.release == Some(drill) && e.kind == kind)
            .map(|e| e.at)
    };
    let serving_from = of_drill("instance_ready");
    let verdict = events
        .iter()
        .find(|e| {
            e.release == Some(drill) && e.kind == "analysis" && e.message.contains("): fail — ")
        })
        .map(|e| e.at);
    let ended_at = of_drill("rollout_failed").or(of_drill("rollout_aborted"));
    let since = |from: Option<i64>, to: Option<i64>| Some(to? - from?);
    let injected = after.injected.saturating_sub(before.injected);
    let failed = after.failed.saturating_sub(before.failed);
    let outcome = match ended.outcome.as_str() {
        "failed" if verdict.is_some() => "rolled_back".to_string(),
        other => other.to_string(),
    };
    let report = DrillReport {
        app: app.clone(),
        release: drill,
        outcome,
        reason: ended.reason.clone(),
        detection_ms: since(serving_from, verdict),
        rollback_ms: since(serving_from, ended_at),
        drain_ms: since(ended_at, drained_at),
        injected_failures: injected,
        other_failures: failed.saturating_sub(injected),
    };
    let passed = report.outcome == "rolled_back" && report.other_failures == 0;
    if ctx.json() {
        crate::output::json(&report)?;
    } else {
        let ms = |v: Option<i64>| {
            v.map_or("unknown".to_string(), |ms| {
                format!("{:.1}s", ms as f64 / 1000.0)
            })
        };
        println!(
            "{app}: drill v{drill} {}: detected in {}, rolled back (weight 0) in {}, drained in {}; \
             {} injected failures, {} other failed requests",
            if passed { "passed" } else { "FAILED" },
            ms(report.detection_ms),
            ms(report.rollback_ms),
            ms(report.drain_ms),
            report.injected_failures,
            report.other_failures,
        );
        if report.outcome != "rolled_back" {
            println!(
                "  the analysis did not roll the drill back ({}): check the app's canary analysis",
                report.outcome
            );
        }
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// An event as the drill reads it.
#[derive(serde::Deserialize)]
struct Event {
    release: Option<u64>,
    kind: String,
    message: String,
    /// Unix milliseconds.
    at: i64,
}

/// Waits until no instance of the drill's release is left; when that happened (Unix ms).
async fn drained(ctx: &Context, app: &str, drill: u64) -> anyhow::Result<Option<i64>> {
    let deadline = tokio::time::Instant::now() + DRAIN_WITHIN;
    loop {
        let status: AppStatus = ctx.client.get(&format!("/v1/apps/{app}")).await?;
        if !status.instances.iter().any(|i| i.release == drill) {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
            return Ok(Some(now as i64));
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The app's failed requests so far, all releases: 5xx answers plus requests no instance answered
/// (those are 5xx too: counted once), and the injected ones among them.
struct Failed {
    failed: u64,
    injected: u64,
}

async fn failures(ctx: &Context, app: &str) -> anyhow::Result<Failed> {
    let response = ctx
        .client
        .request(hyper::Method::GET, "/metrics", None)
        .await?;
    let bytes = response.into_body().collect().await?.to_bytes();
    let text = std::str::from_utf8(&bytes).context("/metrics is not text")?;
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    let label = format!("app=\"{app}\"");
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&label))
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let family = series.split('{').next().unwrap_or_default();
        let counted = match family {
            "slipway_requests_total" => series.contains("class=\"5xx\""),
            "slipway_injected_failures_total" => true,
            _ => false,
        };
        if counted {
            *sums.entry(family).or_default() += value.parse::<f64>().unwrap_or(0.0) as u64;
        }
    }
    Ok(Failed {
        failed: sums.get("slipway_requests_total").copied().unwrap_or(0),
        injected: sums
            .get("slipway_injected_failures_total")
            .copied()
            .unwrap_or(0),
    })
}
