//! Follows a rollout until it ends, printing its events and traffic split as they change.
//! Interrupting this (Ctrl-C) only stops watching: the rollout carries on in the daemon.

use super::Context;
use slipway_api::{AppStatus, DeployAccepted, RolloutView};
use std::process::ExitCode;
use std::time::Duration;

#[derive(serde::Deserialize)]
struct Event {
    id: i64,
    kind: String,
    message: String,
}

pub async fn follow(ctx: &Context, accepted: &DeployAccepted) -> anyhow::Result<ExitCode> {
    follow_until(ctx, accepted, None).await
}

/// `deploy --canary N`: follow until the canary carries N % (then return, leaving it held), or ends.
pub async fn until_canary_holds(
    ctx: &Context,
    accepted: &DeployAccepted,
    weight: u32,
) -> anyhow::Result<ExitCode> {
    follow_until(ctx, accepted, Some(weight)).await
}

async fn follow_until(
    ctx: &Context,
    accepted: &DeployAccepted,
    hold_at: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let app = &accepted.app;
    let mut last_event = {
        let events: Vec<Event> = ctx
            .client
            .get(&format!("/v1/apps/{app}/events?after=0&limit=1000"))
            .await?;
        // Show this rollout's events only: from the one that started it.
        events
            .iter()
            .rev()
            .find(|e| e.kind == "rollout_started")
            .map_or(0, |e| e.id - 1)
    };
    let mut last_split = String::new();
    loop {
        let events: Vec<Event> = ctx
            .client
            .get(&format!(
                "/v1/apps/{app}/events?after={last_event}&limit=200"
            ))
            .await?;
        for e in &events {
            println!("  {}", e.message);
            last_event = e.id;
        }
        let status: AppStatus = ctx.client.get(&format!("/v1/apps/{app}")).await?;
        if let Some(r) = status.rollout.as_ref().filter(|r| r.id == accepted.rollout) {
            let split = crate::output::rollout_line(r, &status.traffic);
            if split != last_split {
                println!("{split}");
                last_split = split;
            }
            if let Some(w) = hold_at
                && r.phase == "progressing"
                && r.weight_to >= w
            {
                println!(
                    "{app}: canary v{} holds at {}% — next: `slipway gate`, `ramp`, `promote` or `abort`",
                    r.to, r.weight_to
                );
                return Ok(ExitCode::SUCCESS);
            }
        } else {
            let rollouts: Vec<RolloutView> =
                ctx.client.get(&format!("/v1/apps/{app}/rollouts")).await?;
            if let Some(done) = rollouts
                .iter()
                .find(|r| r.id == accepted.rollout && r.finished_at.is_some())
            {
                // Print what happened up to the end before the verdict.
                let events: Vec<Event> = ctx
                    .client
                    .get(&format!(
                        "/v1/apps/{app}/events?after={last_event}&limit=200"
                    ))
                    .await?;
                for e in &events {
                    println!("  {}", e.message);
                }
                return Ok(match done.outcome.as_deref() {
                    Some("succeeded") => {
                        println!("{app}: v{} is live", done.to);
                        ExitCode::SUCCESS
                    }
                    other => {
                        let serving = done.from.map_or("nothing is serving".to_string(), |v| {
                            format!("v{v} keeps serving")
                        });
                        eprintln!(
                            "{app}: the rollout to v{} {}: {}; {serving}",
                            done.to,
                            other.unwrap_or("ended"),
                            done.reason.as_deref().unwrap_or("no reason recorded"),
                        );
                        ExitCode::from(1)
                    }
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
