//! `slipway scale web=4 worker=2`: a new release with that formation, then wait until it runs.

use super::{Context, who};
use anyhow::{Context as _, bail};
use slipway_api::{AppStatus, DeployAccepted, ScaleRequest};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long to wait for the new formation to be ready before saying so and returning non-zero.
const WAIT: Duration = Duration::from_secs(300);

pub fn parse_formation(pairs: &[String]) -> anyhow::Result<BTreeMap<String, u32>> {
    let mut formation = BTreeMap::new();
    for pair in pairs {
        let Some((process, count)) = pair.split_once('=') else {
            bail!("`{pair}`: write PROCESS=COUNT, e.g. web=3");
        };
        let count: u32 = count
            .trim()
            .parse()
            .with_context(|| format!("`{pair}`: the count must be a whole number"))?;
        formation.insert(process.trim().to_string(), count);
    }
    Ok(formation)
}

pub async fn run(ctx: &Context, pairs: Vec<String>) -> anyhow::Result<ExitCode> {
    let formation = parse_formation(&pairs)?;
    let app = ctx.app().await?;
    let request = ScaleRequest {
        formation: formation.clone(),
        who: who(),
    };
    let Some(accepted) = ctx
        .submit::<_, DeployAccepted>(&format!("/v1/apps/{app}/scale"), &request)
        .await
    else {
        return Ok(ExitCode::from(1));
    };
    ctx.say(format!(
        "{app}: release v{} ({}): same bits and config, running instances kept",
        accepted.release,
        pairs.join(" ")
    ));
    let started = Instant::now();
    loop {
        let status: AppStatus = ctx.client.get(&format!("/v1/apps/{app}")).await?;
        let ready = |process: &str| {
            status
                .instances
                .iter()
                .filter(|i| i.process == process && i.release == accepted.release && i.ready)
                .count() as u32
        };
        let total = |process: &str| {
            status
                .instances
                .iter()
                .filter(|i| i.process == process && i.release == accepted.release)
                .count() as u32
        };
        let done = formation
            .iter()
            .all(|(p, &n)| ready(p) >= n && total(p) == n);
        if done {
            if ctx.json() {
                let running: BTreeMap<&String, u32> =
                    formation.keys().map(|p| (p, ready(p))).collect();
                crate::output::json(&serde_json::json!({
                    "app": app,
                    "release": accepted.release,
                    "running": running,
                }))?;
            } else {
                let now: Vec<String> = formation
                    .keys()
                    .map(|p| format!("{p}={}", ready(p)))
                    .collect();
                println!("{app}: running {}", now.join(" "));
            }
            return Ok(ExitCode::SUCCESS);
        }
        if started.elapsed() > WAIT {
            let now: Vec<String> = formation
                .iter()
                .map(|(p, n)| format!("{p}: {} of {n} ready", ready(p)))
                .collect();
            eprintln!(
                "{app}: after {}s, {}; see `slipway status`",
                WAIT.as_secs(),
                now.join(", ")
            );
            return Ok(ExitCode::from(1));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
