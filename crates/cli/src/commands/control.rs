//! `rollback`, `promote`, `abort`: steering a rollout.

use super::{Context, parse_version, progress, who};
use progress::Outcome;
use slipway_api::{DeployAccepted, RollbackRequest};
use std::process::ExitCode;

pub async fn rollback(
    ctx: &Context,
    to: Option<String>,
    message: Option<String>,
    detach: bool,
) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let to = to.as_deref().map(parse_version).transpose()?;
    let request = RollbackRequest {
        to,
        who: who(),
        message,
    };
    let Some(accepted) = ctx
        .submit::<_, DeployAccepted>(&format!("/v1/apps/{app}/rollback"), &request)
        .await
    else {
        return Ok(ExitCode::from(1));
    };
    super::print_notes(ctx, &accepted);
    ctx.say(format!(
        "{app}: rolling back with release v{}",
        accepted.release
    ));
    if detach {
        return Outcome::started(&accepted).finish(ctx);
    }
    progress::follow(ctx, &accepted).await
}

pub async fn promote(ctx: &Context, full: bool) -> anyhow::Result<ExitCode> {
    simple(ctx, "promote", serde_json::json!({ "full": full })).await
}

pub async fn retry(ctx: &Context, detach: bool) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let request = slipway_api::RetryRequest { who: who() };
    let Some(accepted) = ctx
        .submit::<_, DeployAccepted>(&format!("/v1/apps/{app}/retry"), &request)
        .await
    else {
        return Ok(ExitCode::from(1));
    };
    ctx.say(format!(
        "{app}: retrying the rollout of v{}",
        accepted.release
    ));
    if detach {
        return Outcome::started(&accepted).finish(ctx);
    }
    progress::follow(ctx, &accepted).await
}

pub async fn abort(ctx: &Context, reason: Option<String>) -> anyhow::Result<ExitCode> {
    simple(ctx, "abort", serde_json::json!({ "reason": reason })).await
}

pub async fn simple(
    ctx: &Context,
    verb: &str,
    body: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let path = format!("/v1/apps/{app}/{verb}");
    if ctx
        .submit::<_, serde_json::Value>(&path, &body)
        .await
        .is_none()
    {
        return Ok(ExitCode::from(1));
    }
    if ctx.json() {
        crate::output::json(&serde_json::json!({ "app": app, "action": verb, "accepted": true }))?;
    } else {
        println!("{app}: {verb} accepted");
    }
    Ok(ExitCode::SUCCESS)
}
