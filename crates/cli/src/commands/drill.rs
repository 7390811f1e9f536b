//! `slipway drill`: starts the drill (the daemon's `POST /v1/apps/{app}/drill`), follows its canary to
//! the rollback the analysis should make, and prints the report the daemon computes once the drill's
//! instances are gone (`GET /v1/apps/{app}/drills`). `slipway drills` lists the reports.

use super::progress::{Outcome, follow_until};
use super::{Context, who};
use slipway_api::{DeployAccepted, DrillReport, DrillRequest};
use std::process::ExitCode;
use std::time::Duration;

/// How long after its rollout ended the drill's report may take: the daemon waits up to 2 minutes for
/// the drill's instances to drain before it writes it.
const REPORT_WITHIN: Duration = Duration::from_secs(180);

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
    // The daemon aborts a drill the analysis misses after 3 minutes: this ends.
    follow_until(ctx, &accepted, None).await?;
    let Some(report) = report(ctx, &app, drill).await? else {
        anyhow::bail!(
            "{app}: drill v{drill} ended but the daemon wrote no report within {}s \
             (see `slipway events`)",
            REPORT_WITHIN.as_secs()
        );
    };
    if ctx.json() {
        crate::output::json(&report)?;
    } else {
        println!("{app}: {}", report.summary());
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Waits for the report of drill `release`.
async fn report(ctx: &Context, app: &str, release: u64) -> anyhow::Result<Option<DrillReport>> {
    let deadline = tokio::time::Instant::now() + REPORT_WITHIN;
    loop {
        let reports: Vec<DrillReport> = ctx
            .client
            .get(&format!("/v1/apps/{app}/drills?limit=5"))
            .await?;
        if let Some(r) = reports.into_iter().find(|r| r.release == release) {
            return Ok(Some(r));
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `slipway drills`: the app's drill reports, newest first.
pub async fn list(ctx: &Context, limit: usize) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let reports: Vec<DrillReport> = ctx
        .client
        .get(&format!("/v1/apps/{app}/drills?limit={limit}"))
        .await?;
    if ctx.json() {
        crate::output::json(&reports)?;
        return Ok(ExitCode::SUCCESS);
    }
    if reports.is_empty() {
        println!("{app}: no drill yet (`slipway drill`, or `[drill] schedule` in slipway.toml)");
    }
    for r in &reports {
        let at = crate::output::time(r.at);
        println!("{at}  by {}  {}", r.by, r.summary());
    }
    Ok(ExitCode::SUCCESS)
}
