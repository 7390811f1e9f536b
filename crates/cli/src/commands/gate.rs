//! `slipway gate`: the seed's CI gate as an exit code. Judges the canary (the release being rolled out)
//! against the stable release serving at the same time, with the same sequential tests as canary
//! analysis: 0 pass, 1 fail (answered as soon as the evidence is there), 3 inconclusive (too little data).

use super::Context;
use anyhow::{Context as _, bail};
use slipway_api::{GateAnswer, GateRequest};
use std::process::ExitCode;

pub(crate) fn percent(text: &str) -> anyhow::Result<f64> {
    let Some(number) = text.trim().strip_suffix('%') else {
        bail!("--error-rate {text}: write a percentage like 1% or 0.5%");
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("--error-rate {text}: not a number"))?;
    if !(0.0..=100.0).contains(&value) {
        bail!("--error-rate {text}: must be between 0% and 100%");
    }
    Ok(value / 100.0)
}

fn millis(flag: &str, text: &str) -> anyhow::Result<u64> {
    humantime::parse_duration(text)
        .map(|d| d.as_millis() as u64)
        .with_context(|| format!("{flag} {text}: write a duration like 300ms or 2s"))
}

pub async fn run(
    ctx: &Context,
    error_rate: Option<String>,
    latency_p95: Option<String>,
    latency_p99: Option<String>,
    for_: String,
) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let latency = match (latency_p95, latency_p99) {
        (Some(_), Some(_)) => bail!("give one of --latency-p95 / --latency-p99"),
        (Some(t), None) => Some((95.0, millis("--latency-p95", &t)?)),
        (None, Some(t)) => Some((99.0, millis("--latency-p99", &t)?)),
        (None, None) => None,
    };
    let request = GateRequest {
        error_rate: error_rate.as_deref().map(percent).transpose()?,
        latency,
        for_ms: millis("--for", &for_)?,
    };
    ctx.say(format!("{app}: judging the canary for up to {for_}…"));
    let answer: GateAnswer = match ctx
        .client
        .post(&format!("/v1/apps/{app}/gate"), &request)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if ctx.json() {
        crate::output::json(&serde_json::json!({
            "app": app,
            "verdict": answer.verdict,
            "detail": answer.detail,
        }))?;
    } else {
        println!("{app}: gate {}: {}", answer.verdict, answer.detail);
    }
    Ok(match answer.verdict.as_str() {
        "pass" => ExitCode::SUCCESS,
        "fail" => ExitCode::from(1),
        _ => ExitCode::from(3),
    })
}
