//! `slipway deploy`: check the config here (errors with file:line before anything is sent), send the
//! app folder when the daemon is reached over TCP (it may be on another host), ask the daemon for a
//! new release, then follow its rollout until it ends.

use super::{Context, git_source, print_notes, progress, who};
use crate::output::size;
use progress::Outcome;
use slipway_api::{DeployAccepted, DeployRequest, UploadAccepted};
use slipway_core::spec::AppSpec;
use std::path::Path;
use std::process::ExitCode;

/// What may stop this deploy: `--strict` (destructive migrations) and `--override-slo "reason"` (a
/// spent error budget does not, and the reason is recorded).
pub struct Guards {
    pub strict: bool,
    pub override_slo: Option<String>,
}

/// What the release is made of: `--image` / `--build` (web's image for this deploy), and whether
/// the app folder is uploaded to a daemon reached over TCP (not with `--no-upload`).
pub struct Contents {
    pub image: Option<String>,
    pub build: bool,
    pub upload: bool,
}

pub async fn run(
    ctx: &Context,
    label: Option<String>,
    message: Option<String>,
    detach: bool,
    canary: Option<u32>,
    guards: Guards,
    contents: Contents,
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
    let (config, upload) = if contents.upload && ctx.client.is_remote() {
        match upload(ctx, &config, &spec).await {
            Some((name, id)) => (name, Some(id)),
            None => return Ok(ExitCode::from(1)),
        }
    } else {
        (config.display().to_string(), None)
    };
    let request = DeployRequest {
        config,
        upload,
        label,
        message,
        who: author.unwrap_or_else(who),
        canary,
        strict: guards.strict,
        image: contents.image,
        build: contents.build,
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

/// Sends the config's folder (less what `[artifact] exclude` leaves out): the config's name in it,
/// and the upload's id. `None` once the reason is printed.
async fn upload(ctx: &Context, config: &Path, spec: &AppSpec) -> Option<(String, String)> {
    let folder = config.parent()?.to_path_buf();
    let name = config.file_name()?.to_str()?.to_string();
    let artifact = spec.artifact.clone();
    let packing = tokio::task::spawn_blocking(move || {
        let mut gzip = Vec::new();
        slipway_store::pack(&folder, &artifact.path, &artifact.exclude, &mut gzip)
            .map(|packed| (packed, gzip))
    })
    .await;
    let (packed, gzip) = match packing {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            eprintln!("error: cannot send the app folder: {e}");
            eprintln!("nothing was deployed");
            return None;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    for note in &packed.skipped {
        eprintln!("warning: {note}");
    }
    let sent = gzip.len();
    match ctx
        .client
        .post_gzip::<UploadAccepted>("/v1/uploads", gzip)
        .await
    {
        Ok(accepted) => {
            ctx.say(format!(
                "sent the app folder: {} file{}, {} ({} gzipped)",
                accepted.files,
                if accepted.files == 1 { "" } else { "s" },
                size(accepted.bytes),
                size(sent as u64)
            ));
            Some((name, accepted.upload))
        }
        Err(e) => {
            eprintln!("error: {e}");
            // Only a daemon without the route answers 404 here.
            if e.downcast_ref::<slipway_api::ApiError>()
                .is_some_and(|a| a.kind == Some(slipway_api::ErrorKind::NotFound))
            {
                eprintln!(
                    "  help: the daemon is older than this CLI and takes no app folder: upgrade it, or \
                     deploy with --no-upload if it reads this folder at the same path"
                );
            }
            eprintln!("nothing was deployed");
            None
        }
    }
}
