//! Follows a rollout until it ends, printing its events and traffic split as they change (on stderr
//! with `--json`, whose stdout gets the [`Outcome`] alone). Interrupting this (Ctrl-C) only stops
//! watching: the rollout carries on in the daemon.

use super::Context;
use slipway_api::{AppStatus, DeployAccepted, RolloutView};
use std::process::ExitCode;
use std::time::Duration;

/// Where a command that starts a rollout left it: `--json`'s answer for deploy, rollback, retry, config
/// set/unset.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub app: String,
    pub release: u64,
    pub rollout: i64,
    /// `succeeded`, `failed`, `aborted`, `superseded` (as the daemon recorded it), `holding` (a canary
    /// at its weight) or `started` (not followed: `--detach`).
    pub outcome: String,
    pub reason: Option<String>,
    /// The release users get when the command returns, when known (`null`: none, or still moving).
    pub serving: Option<u64>,
    pub warnings: Vec<String>,
}

impl Outcome {
    fn of(accepted: &DeployAccepted, outcome: &str) -> Outcome {
        Outcome {
            app: accepted.app.clone(),
            release: accepted.release,
            rollout: accepted.rollout,
            outcome: outcome.to_string(),
            reason: None,
            serving: None,
            warnings: accepted.warnings.clone(),
        }
    }

    /// `--detach`: the rollout started and nobody waits for it.
    pub fn started(accepted: &DeployAccepted) -> Outcome {
        Outcome::of(accepted, "started")
    }

    /// Prints it with `--json`; the exit code says whether it went as asked.
    pub fn finish(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        if ctx.json() {
            crate::output::json(&self)?;
        }
        Ok(match self.outcome.as_str() {
            "succeeded" | "holding" | "started" => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        })
    }
}

#[derive(serde::Deserialize)]
struct Event {
    id: i64,
    kind: String,
    message: String,
}

pub async fn follow(ctx: &Context, accepted: &DeployAccepted) -> anyhow::Result<ExitCode> {
    follow_until(ctx, accepted, None).await?.finish(ctx)
}

/// `deploy --canary N`: follow until the canary carries N % (then return, leaving it held), or ends.
pub async fn until_canary_holds(
    ctx: &Context,
    accepted: &DeployAccepted,
    weight: u32,
) -> anyhow::Result<ExitCode> {
    follow_until(ctx, accepted, Some(weight)).await?.finish(ctx)
}

pub(crate) async fn follow_until(
    ctx: &Context,
    accepted: &DeployAccepted,
    hold_at: Option<u32>,
) -> anyhow::Result<Outcome> {
    let app = &accepted.app;
    let mut last_event = {
        let events: Vec<Event> = ctx
            .client
            .get(&format!("/v1/apps/{app}/events?tail=200"))
            .await?;
        // Show this rollout's events only: from the one that started it (among the newest: the
        // journal's oldest events may be long gone, or many thousands).
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
            ctx.say(format!("  {}", e.message));
            last_event = e.id;
        }
        let status: AppStatus = ctx.client.get(&format!("/v1/apps/{app}")).await?;
        if let Some(r) = status.rollout.as_ref().filter(|r| r.id == accepted.rollout) {
            let split = crate::output::rollout_line(r, &status.traffic);
            if split != last_split {
                ctx.say(&split);
                last_split = split;
            }
            if let Some(w) = hold_at
                && r.phase == "progressing"
                && r.weight_to >= w
            {
                ctx.say(format!(
                    "{app}: canary v{} holds at {}% — next: `slipway gate`, `ramp`, `promote` or `abort`",
                    r.to, r.weight_to
                ));
                return Ok(Outcome::of(accepted, "holding"));
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
                    ctx.say(format!("  {}", e.message));
                }
                let mut outcome = Outcome::of(accepted, done.outcome.as_deref().unwrap_or("ended"));
                outcome.reason = done.reason.clone();
                if outcome.outcome == "succeeded" {
                    ctx.say(format!("{app}: v{} is live", done.to));
                    outcome.serving = Some(done.to);
                } else {
                    let serving = done.from.map_or("nothing is serving".to_string(), |v| {
                        format!("v{v} keeps serving")
                    });
                    eprintln!(
                        "{app}: the rollout to v{} {}: {}; {serving}",
                        done.to,
                        outcome.outcome,
                        done.reason.as_deref().unwrap_or("no reason recorded"),
                    );
                    outcome.serving = done.from;
                }
                return Ok(outcome);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
