//! `slipway deploy`: check the config here (errors with file:line before anything is sent), ask the
//! daemon for a new release, then follow its rollout until it ends.

use super::{Context, git_source, print_notes, progress, who};
use progress::Outcome;
use slipway_api::{DeployAccepted, DeployRequest};
use std::process::ExitCode;

/// What may stop this deploy: `--strict` (destructive migrations) and `--override-slo "reason"` (a
/// spent error budget does not, and the reason is recorded).
pub struct Guards {
    pub strict: bool,
    pub override_slo: Option<String>,
}

/// `--image` / `--build`: web's image for this deploy.
pub struct Images {
    pub image: Option<String>,
    pub build: bool,
}

pub async fn run(
    ctx: &Context,
    label: Option<String>,
    message: Option<String>,
    detach: bool,
    canary: Option<u32>,
    guards: Guards,
    images: Images,
) -> anyhow::Result<ExitCode> {
    let spec = match slipway_config::load(&ctx.config) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("{:?}", e.to_report());
            eprintln!("nothing was deployed");
            return Ok(ExitCode::from(1));
        }
    };
    let config = std::fs::canonicalize(&ctx.config)?;
    // From a git checkout, the release records its author and commit (unless --version names it).
    let source = config.parent().and_then(git_source::read);
    let author = source.as_ref().and_then(|s| s.author.clone());
    let label = label.or_else(|| source.as_ref().map(|s| s.label()));
    let request = DeployRequest {
        config: config.display().to_string(),
        label,
        message,
        who: author.unwrap_or_else(who),
        canary,
        strict: guards.strict,
        image: images.image,
        build: images.build,
        override_slo: guards.override_slo,
    };
    let Some(accepted) = ctx
        .submit::<_, DeployAccepted>("/v1/deploy", &request)
        .await
    else {
        return Ok(ExitCode::from(1));
    };
    print_notes(ctx, &accepted);
    ctx.say(format!(
        "{}: release v{} recorded; rolling out ({})",
        accepted.app,
        accepted.release,
        match canary {
            Some(w) => format!("canary at {w}%"),
            None => spec.deploy.strategy.name().to_string(),
        }
    ));
    if detach {
        return Outcome::started(&accepted).finish(ctx);
    }
    if let Some(weight) = canary {
        return progress::until_canary_holds(ctx, &accepted, weight).await;
    }
    progress::follow(ctx, &accepted).await
}
