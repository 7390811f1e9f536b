//! `slipway backup FILE`: the running daemon's state, streamed into FILE (over the socket, or over
//! TCP with an admin token). The file appears only once all of it has arrived and every entry has
//! been checked (`slipway_daemon::restore::check`); until then it is written beside FILE under a
//! temporary name, removed if anything fails, so FILE is either a whole backup or untouched.
//!
//! `slipway restore FILE --state-dir DIR`: offline, into an empty or new DIR
//! (`slipway_daemon::restore`); then `slipway serve --state-dir DIR` serves the same releases.

use super::Context;
use crate::output::size;
use anyhow::{Context as _, bail};
use http_body_util::BodyExt;
use hyper::Method;
use slipway_daemon::restore::AppContents;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::io::AsyncWriteExt;

pub async fn backup(ctx: &Context, file: &Path, force: bool) -> anyhow::Result<ExitCode> {
    if file.exists() && !force {
        bail!(
            "{} exists; pick another name, or pass --force to replace it (the old file stays until \
             the new backup has arrived whole and been checked)",
            file.display()
        );
    }
    let partial = Partial::beside(file)?;
    let response = match ctx
        .client
        .stream(Method::POST, "/v1/backup", Some(b"{}".to_vec()))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut out = {
        use std::os::unix::fs::OpenOptionsExt;
        // 0600: a backup holds the apps' config vars and the tokens' hashes.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial.0)
            .with_context(|| format!("cannot create {}", partial.0.display()))?;
        tokio::fs::File::from_std(file)
    };
    let mut body = response.into_body();
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            anyhow::anyhow!(
                "the backup broke off after {received} bytes ({e}); the daemon's log says why. \
                 Nothing was written to {}",
                file.display()
            )
        })?;
        if let Ok(data) = frame.into_data() {
            out.write_all(&data)
                .await
                .with_context(|| format!("cannot write {}", partial.0.display()))?;
            received += data.len() as u64;
        }
    }
    out.sync_all()
        .await
        .with_context(|| format!("cannot write {}", partial.0.display()))?;
    drop(out);
    let checked = partial.0.clone();
    let index = tokio::task::spawn_blocking(move || slipway_daemon::restore::check(&checked))
        .await?
        .with_context(|| {
            format!(
                "the backup that arrived is not sound; nothing was written to {}",
                file.display()
            )
        })?;
    std::fs::rename(&partial.0, file)
        .with_context(|| format!("cannot move the backup into place at {}", file.display()))?;
    partial.keep();

    if ctx.json() {
        crate::output::json(&serde_json::json!({
            "file": file,
            "bytes": received,
            "index": index,
        }))?;
    } else {
        println!(
            "wrote {} ({}): the state database and {} artifact(s), made by {}",
            file.display(),
            size(received),
            index.artifacts.len(),
            index.made_by
        );
        for line in describe_apps(&index.apps) {
            println!("  {line}");
        }
        println!(
            "restore it with: slipway restore {} --state-dir NEW_DIR",
            file.display()
        );
    }
    for note in &index.notes {
        eprintln!("warning: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restore(ctx: &Context, file: &Path, state_dir: &Path) -> anyhow::Result<ExitCode> {
    let restored = match slipway_daemon::restore::restore(file, state_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    if ctx.json() {
        crate::output::json(&restored)?;
    } else {
        println!(
            "restored {} into {} ({}, made by {} at {} UTC)",
            file.display(),
            state_dir.display(),
            size(restored.bytes),
            restored.made_by,
            crate::output::time(restored.made_at_ms)
        );
        for line in describe_apps(&restored.apps) {
            println!("  {line}");
        }
        println!(
            "start it with: slipway serve --state-dir {}",
            state_dir.display()
        );
        println!(
            "  (a backup holds no secret: `serve --api` makes a new api-token; tokens made with \
             `slipway token create` still work)"
        );
    }
    for note in &restored.notes {
        eprintln!("warning: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The temporary file a backup is received into, beside its final name; removed unless kept.
struct Partial(PathBuf, bool);

impl Partial {
    fn beside(file: &Path) -> anyhow::Result<Partial> {
        let name = file
            .file_name()
            .with_context(|| format!("{} is not a file name", file.display()))?
            .to_string_lossy()
            .into_owned();
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            bail!("{} is not a folder: create it first", dir.display());
        }
        Ok(Partial(
            dir.join(format!(".{name}.partial-{}", std::process::id())),
            false,
        ))
    }

    fn keep(mut self) {
        self.1 = true;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// One line per app of what a backup holds.
fn describe_apps(apps: &[AppContents]) -> Vec<String> {
    apps.iter()
        .map(|a| {
            let stable = a
                .stable
                .map_or("no stable release".to_string(), |v| format!("stable v{v}"));
            let with: Vec<String> = a.with_artifacts.iter().map(|v| format!("v{v}")).collect();
            format!(
                "{}: {} release(s), {stable}; can roll back to {}",
                a.app,
                a.releases,
                if with.is_empty() {
                    "none (no artifacts kept)".to_string()
                } else {
                    with.join(", ")
                }
            )
        })
        .collect()
}
