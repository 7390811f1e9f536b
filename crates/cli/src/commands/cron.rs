//! `slipway cron list | run NAME`.

use super::{Context, who};
use slipway_api::{CronRunAnswer, CronRunRequest, CronView};
use std::process::ExitCode;
use std::time::Duration;

pub async fn list(ctx: &Context) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let view: CronView = ctx.client.get(&format!("/v1/apps/{app}/cron")).await?;
    if ctx.json() {
        crate::output::json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    if view.jobs.is_empty() {
        println!("{app} v{} has no [cron] jobs", view.release);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::output::table(&[
        "JOB",
        "SCHEDULE (UTC)",
        "CONCURRENCY",
        "NEXT RUN",
        "LAST RUN",
    ]);
    for job in &view.jobs {
        let last = job.runs.first().map_or("-".to_string(), |r| {
            format!(
                "#{} {} {}",
                r.id,
                crate::output::time(r.started_at),
                r.outcome.as_deref().unwrap_or("running")
            )
        });
        table.add_row(vec![
            job.name.clone(),
            job.schedule.clone(),
            job.concurrency.clone(),
            job.next_run_at.map_or("never".into(), crate::output::time),
            last,
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub async fn run(ctx: &Context, name: &str, detach: bool) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let request = CronRunRequest { who: who() };
    let path = format!("/v1/apps/{app}/cron/{name}/run");
    let Some(answer) = ctx.submit::<_, CronRunAnswer>(&path, &request).await else {
        return Ok(ExitCode::from(1));
    };
    // `--json`'s answer: where the run got to when the command returned.
    let outcome = |run: Option<i64>, outcome: &str, reason: Option<String>, output| RunOutcome {
        app: &app,
        job: name,
        run,
        outcome: outcome.to_string(),
        reason,
        output,
    };
    let Some(run) = answer.run else {
        let why = answer.skipped.unwrap_or_default();
        eprintln!("{app}: {name} {why}");
        if ctx.json() {
            crate::output::json(&outcome(None, "skipped", Some(why), None))?;
        }
        return Ok(ExitCode::from(3));
    };
    ctx.say(format!("{app}: cron run #{run} of {name} started"));
    if detach {
        if ctx.json() {
            crate::output::json(&outcome(Some(run), "started", None, None))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let view: CronView = ctx.client.get(&format!("/v1/apps/{app}/cron")).await?;
        let done = view
            .jobs
            .iter()
            .flat_map(|j| &j.runs)
            .find(|r| r.id == run && r.finished_at.is_some())
            .cloned();
        if let Some(r) = done {
            let ended = r.outcome.clone().unwrap_or_default();
            if ctx.json() {
                crate::output::json(&outcome(Some(run), &ended, None, r.output))?;
            } else {
                print!("{}", r.output.unwrap_or_default());
                println!("{app}: cron run #{run} of {name} {ended}");
            }
            return Ok(if ended == "succeeded" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `cron run --json`: `skipped` (with the policy's reason), `started` (`--detach`), or how it ended
/// (with its output).
#[derive(serde::Serialize)]
struct RunOutcome<'a> {
    app: &'a str,
    job: &'a str,
    run: Option<i64>,
    outcome: String,
    reason: Option<String>,
    output: Option<String>,
}
