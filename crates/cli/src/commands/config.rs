//! `slipway config [set KEY=VALUE... | unset KEY...]`: the app's variables, and changing them.

use super::{Context, print_notes, progress, who};
use anyhow::bail;
use slipway_api::{ConfigChange, ConfigView, DeployAccepted};
use std::process::ExitCode;

pub async fn list(ctx: &Context) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let view: ConfigView = ctx.client.get(&format!("/v1/apps/{app}/config")).await?;
    if ctx.json() {
        crate::output::json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{app} v{}:", view.release);
    let mut table = crate::output::table(&["KEY", "VALUE", "FROM"]);
    for var in &view.vars {
        table.add_row(vec![
            var.key.clone(),
            var.value.clone().unwrap_or_else(|| "(secret)".into()),
            var.origin.clone(),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub async fn set(ctx: &Context, pairs: Vec<String>) -> anyhow::Result<ExitCode> {
    let mut change = ConfigChange {
        who: who(),
        ..Default::default()
    };
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("`{pair}`: write KEY=VALUE");
        };
        change.set.insert(key.to_string(), value.to_string());
    }
    send(ctx, change).await
}

pub async fn unset(ctx: &Context, keys: Vec<String>) -> anyhow::Result<ExitCode> {
    send(
        ctx,
        ConfigChange {
            unset: keys,
            who: who(),
            ..Default::default()
        },
    )
    .await
}

async fn send(ctx: &Context, change: ConfigChange) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let Some(accepted) = ctx
        .submit::<_, DeployAccepted>(&format!("/v1/apps/{app}/config"), &change)
        .await
    else {
        return Ok(ExitCode::from(1));
    };
    print_notes(ctx, &accepted);
    ctx.say(format!(
        "{app}: release v{} with the new config; rolling out",
        accepted.release
    ));
    progress::follow(ctx, &accepted).await
}
