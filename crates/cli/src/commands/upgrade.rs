//! `upgrade`: the running daemon re-executes the slipway binary now on disk, hands it its sockets and
//! its running instances, and ends once its in-flight requests are done. Replacing the file and then
//! running `slipway upgrade` is how a new version goes live.

use super::Context;
use slipway_api::Upgraded;
use std::process::ExitCode;

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let Some(done) = ctx
        .submit::<_, Upgraded>("/v1/upgrade", &serde_json::json!({}))
        .await
    else {
        return Ok(ExitCode::from(1));
    };
    if ctx.json() {
        crate::output::json(&done)?;
    } else {
        ctx.say(format!(
            "upgraded: slipway {} serves as pid {}; pid {} finishes its in-flight requests and ends",
            done.version, done.pid, done.from_pid
        ));
    }
    Ok(ExitCode::SUCCESS)
}
