//! `slipway maintenance on|off`: hold an app's traffic at the proxy while it is worked on by hand.

use super::{Context, who};
use anyhow::Context as _;
use slipway_api::{Accepted, MaintenanceRequest};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub async fn on(
    ctx: &Context,
    hold: Duration,
    page: Option<PathBuf>,
    retry_after: Duration,
    reason: Option<String>,
) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let page = match page {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the maintenance page {}", path.display()))?,
        ),
        None => None,
    };
    let request = MaintenanceRequest {
        hold_seconds: Some(hold.as_secs()),
        retry_after_seconds: Some(retry_after.as_secs()),
        page,
        reason,
        who: who(),
    };
    let Some(Accepted { .. }) = ctx
        .submit::<_, Accepted>(&format!("/v1/apps/{app}/maintenance"), &request)
        .await
    else {
        return Ok(ExitCode::from(1));
    };
    ctx.say(format!(
        "{app}: in maintenance: requests are held up to {}s, then answered 503 with the maintenance page; `slipway maintenance off` lets them through",
        hold.as_secs()
    ));
    if ctx.json() {
        crate::output::json(&serde_json::json!({ "app": app, "maintenance": true }))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn off(ctx: &Context) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let _: Accepted = ctx
        .client
        .delete(&format!("/v1/apps/{app}/maintenance"))
        .await?;
    ctx.say(format!(
        "{app}: serving again; held requests went on in order"
    ));
    if ctx.json() {
        crate::output::json(&serde_json::json!({ "app": app, "maintenance": false }))?;
    }
    Ok(ExitCode::SUCCESS)
}
