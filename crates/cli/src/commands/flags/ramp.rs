//! `slipway flags ramp NAME --variant on --steps 5%,25%,50%,100% --every 30m`: the daemon moves the flag
//! through the steps, judging the app's traffic after each against the traffic before it.

use super::super::{Context, who};
use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;
use slipway_api::flags::{FlagChanges, FlagRampRequest};
use std::process::ExitCode;

#[derive(Args)]
pub struct RampArgs {
    name: String,
    /// The variant to release.
    #[arg(long, required_unless_present = "stop")]
    variant: Option<String>,
    /// Shares of users, e.g. 5%,25%,50%,100%.
    #[arg(long, required_unless_present = "stop")]
    steps: Option<String>,
    /// How long each step lasts at least (it also waits for its traffic to pass).
    #[arg(long, required_unless_present = "stop")]
    every: Option<String>,
    /// Largest error-rate increase a step may bring (default 1%).
    #[arg(long, value_name = "PERCENT")]
    max_error_rate: Option<String>,
    /// Largest p95 latency increase a step may bring, e.g. 100ms.
    #[arg(long = "max-latency-p95", value_name = "DURATION")]
    max_latency_p95: Option<String>,
    /// Advance on time alone (for flags whose users do not reach the app through slipway's proxy).
    #[arg(long)]
    unguarded: bool,
    /// Stop the running ramp, leaving the flag as it is now.
    #[arg(long)]
    stop: bool,
}

pub async fn run(ctx: &Context, app: &str, args: RampArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/apps/{app}/flags/{}/ramp", super::seg(&args.name));
    let mut request = FlagRampRequest {
        who: who(),
        stop: args.stop,
        variant: String::new(),
        steps: Vec::new(),
        every_ms: 0,
        max_error_rate_increase: None,
        max_latency_increase: None,
        unguarded: args.unguarded,
    };
    if args.stop {
        let _: Value = ctx.client.post(&path, &request).await?;
        if ctx.json() {
            crate::output::json(
                &serde_json::json!({ "app": app, "flag": args.name, "ramp": "stopped" }),
            )?;
        } else {
            println!(
                "{app}: the ramp of {} stopped; the flag stays as it is",
                args.name
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(variant), Some(steps), Some(every)) = (args.variant, args.steps, args.every) else {
        bail!("a ramp needs --variant, --steps and --every");
    };
    request.variant = variant;
    request.steps = steps
        .split(',')
        .map(|s| percent(s, "--steps").map(|p| p.round() as u32))
        .collect::<anyhow::Result<_>>()?;
    request.every_ms = humantime::parse_duration(&every)
        .with_context(|| format!("--every {every}: write a duration like 30m or 2s"))?
        .as_millis() as u64;
    request.max_error_rate_increase = args
        .max_error_rate
        .as_deref()
        .map(|t| percent(t, "--max-error-rate").map(|p| p / 100.0))
        .transpose()?;
    request.max_latency_increase = args
        .max_latency_p95
        .as_deref()
        .map(|t| {
            humantime::parse_duration(t)
                .map(|d| (95.0, d.as_millis() as u64))
                .with_context(|| format!("--max-latency-p95 {t}: write a duration like 100ms"))
        })
        .transpose()?;
    let done: FlagChanges = ctx.client.post(&path, &request).await?;
    super::print_changes(ctx, app, &done)?;
    ctx.say(format!(
        "{app}: ramping {} to {} in steps {steps}, one every {every}{}; see `slipway flags get {}`",
        args.name,
        request.variant,
        if args.unguarded {
            " (unguarded: on time alone)"
        } else {
            ", each judged on the app's traffic before vs after"
        },
        args.name
    ));
    Ok(ExitCode::SUCCESS)
}

fn percent(text: &str, flag: &str) -> anyhow::Result<f64> {
    let number = text.trim().trim_end_matches('%');
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("{flag}: {text:?} is not a percentage like 25%"))?;
    if !(0.0..=100.0).contains(&value) {
        bail!("{flag}: {text} is not between 0% and 100%");
    }
    Ok(value)
}
