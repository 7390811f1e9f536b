//! `slipway history [--json]`: every release, newest first, with who/when/why.

use super::Context;
use crate::output::{table, time};
use slipway_api::ReleaseSummary;
use std::process::ExitCode;

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let releases: Vec<ReleaseSummary> = ctx.client.get(&format!("/v1/apps/{app}/releases")).await?;
    if ctx.json() {
        crate::output::json(&releases)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "RELEASE", "STATUS", "LABEL", "CREATED", "BY", "ARTIFACT", "NOTE",
    ]);
    for r in &releases {
        let mut note = r.message.clone().unwrap_or_default();
        if let Some(reason) = &r.reason {
            note = if note.is_empty() {
                reason.clone()
            } else {
                format!("{note}; {reason}")
            };
        }
        t.add_row(vec![
            format!("v{}", r.version),
            r.status.clone(),
            r.label.clone().unwrap_or_default(),
            time(r.created_at),
            r.created_by.clone(),
            r.artifact
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect(),
            note,
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
