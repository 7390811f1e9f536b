//! `slipway flags …`: the app's feature flags — look, change (every change audited), import/export
//! flagd files, revert, kill, ramp, and the evaluation keys OFREP clients use.

mod history;
mod ramp;

use super::{Context, who};
use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::Value;
use slipway_api::flags::{
    FlagChanges, FlagEdit, FlagImport, FlagKeyCreate, FlagKeyCreated, FlagKeyView, FlagList,
    FlagRevert, FlagView,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum FlagsCommand {
    /// Every flag, with stale ones (fully on or off, unchanged for long) marked as candidates to remove.
    List {
        /// A flag serving everyone alike for longer than this is stale.
        #[arg(long, default_value = "30d")]
        stale_after: String,
    },
    /// One flag's definition (flagd format) and its ramp.
    Get { name: String },
    /// Change a flag: its default variant, its targeting, or all of it (`--definition`, which also
    /// creates it).
    Set {
        name: String,
        /// The variant everyone gets unless targeting says otherwise.
        #[arg(long = "default", visible_alias = "variant", value_name = "VARIANT")]
        default: Option<String>,
        /// A JSONLogic rule: a file, `-` for stdin, or the JSON itself; `{}` removes the targeting.
        #[arg(long, value_name = "FILE")]
        targeting: Option<String>,
        /// The whole flag in flagd's format (a file, `-`, or the JSON itself).
        #[arg(long, value_name = "FILE")]
        definition: Option<String>,
        /// Why: kept in the audit log.
        #[arg(long, short = 'm')]
        reason: Option<String>,
    },
    /// Serve the flag again: ENABLED, and no longer killed.
    Enable {
        name: String,
        #[arg(long, short = 'm')]
        reason: Option<String>,
    },
    /// DISABLED: every caller gets its own code default.
    Disable {
        name: String,
        #[arg(long, short = 'm')]
        reason: Option<String>,
    },
    /// The emergency stop: everyone gets the safe default variant at once, targeting ignored (kept, so
    /// `enable` restores it). Stops a running ramp.
    Kill {
        name: String,
        #[arg(long, short = 'm')]
        reason: Option<String>,
    },
    /// Remove a flag (its history stays; `revert` brings it back).
    Delete {
        name: String,
        #[arg(long, short = 'm')]
        reason: Option<String>,
    },
    /// Apply a flagd flag-definition file: it becomes the app's flags (with `--merge`, only the flags it
    /// names change). Killed flags stay killed.
    Import {
        file: PathBuf,
        #[arg(long)]
        merge: bool,
    },
    /// The app's flags as a flagd flag-definition file (stdout, or `--output FILE`).
    Export {
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Every change: who, when, what, and the difference (one flag, or all).
    History {
        name: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put a flag back as it was after change #N of its history.
    Revert {
        name: String,
        #[arg(long)]
        to: i64,
    },
    /// Release a variant to a growing share of users on a schedule, guarded by the app's error rate
    /// (and latency), step by step; a regression reverts the flag.
    Ramp(ramp::RampArgs),
    /// Evaluation keys for OFREP clients.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
}

#[derive(Subcommand)]
pub enum KeyAction {
    /// Make a key for this app and print it (once: only its hash is kept).
    Create {
        name: String,
        /// Requests it may make: `100/s`, `30/min`, or `unlimited` (default 1000/s).
        #[arg(long)]
        rate: Option<String>,
    },
    List,
    Revoke {
        name: String,
    },
}

pub async fn run(ctx: &Context, command: FlagsCommand) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let base = format!("/v1/apps/{app}");
    match command {
        FlagsCommand::List { stale_after } => {
            let after = humantime::parse_duration(&stale_after).with_context(|| {
                format!("--stale-after {stale_after}: write a duration like 30d or 12h")
            })?;
            let list: FlagList = ctx
                .client
                .get(&format!(
                    "{base}/flags?stale_after_ms={}",
                    after.as_millis()
                ))
                .await?;
            if ctx.json() {
                crate::output::json(&list)?;
            } else {
                print_list(&list, &stale_after);
            }
        }
        FlagsCommand::Get { name } => {
            let view: FlagView = ctx
                .client
                .get(&format!("{base}/flags/{}", seg(&name)))
                .await?;
            if ctx.json() {
                crate::output::json(&view)?;
            } else {
                print_flag(&view);
            }
        }
        FlagsCommand::Set {
            name,
            default,
            targeting,
            definition,
            reason,
        } => {
            if default.is_none() && targeting.is_none() && definition.is_none() {
                bail!(
                    "flags set {name}: say what to change: --default VARIANT, --targeting FILE or --definition FILE"
                );
            }
            let edit = FlagEdit {
                who: who(),
                action: "set".into(),
                definition: definition
                    .as_deref()
                    .map(|d| read_json(d, "--definition"))
                    .transpose()?,
                default_variant: default,
                targeting: targeting
                    .as_deref()
                    .map(|t| read_json(t, "--targeting"))
                    .transpose()?,
                reason,
            };
            change(ctx, &app, &name, edit).await?;
        }
        FlagsCommand::Enable { name, reason } => simple(ctx, &app, &name, "enable", reason).await?,
        FlagsCommand::Disable { name, reason } => {
            simple(ctx, &app, &name, "disable", reason).await?
        }
        FlagsCommand::Kill { name, reason } => simple(ctx, &app, &name, "kill", reason).await?,
        FlagsCommand::Delete { name, reason } => simple(ctx, &app, &name, "delete", reason).await?,
        FlagsCommand::Import { file, merge } => {
            let document = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let request = FlagImport {
                who: who(),
                document,
                merge,
            };
            let done: FlagChanges = ctx
                .client
                .post(&format!("{base}/flag-set"), &request)
                .await?;
            print_changes(ctx, &app, &done)?;
        }
        FlagsCommand::Export { output } => {
            let document: Value = ctx.client.get(&format!("{base}/flag-set")).await?;
            let text = serde_json::to_string_pretty(&document)? + "\n";
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
        }
        FlagsCommand::History { name, limit } => {
            history::run(ctx, &app, name.as_deref(), limit).await?
        }
        FlagsCommand::Revert { name, to } => {
            let done: FlagChanges = ctx
                .client
                .post(
                    &format!("{base}/flags/{}/revert", seg(&name)),
                    &FlagRevert { who: who(), to },
                )
                .await?;
            print_changes(ctx, &app, &done)?;
        }
        FlagsCommand::Ramp(args) => return ramp::run(ctx, &app, args).await,
        FlagsCommand::Key { action } => keys(ctx, &app, action).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn simple(
    ctx: &Context,
    app: &str,
    name: &str,
    action: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let edit = FlagEdit {
        who: who(),
        action: action.into(),
        definition: None,
        default_variant: None,
        targeting: None,
        reason,
    };
    change(ctx, app, name, edit).await
}

async fn change(ctx: &Context, app: &str, name: &str, edit: FlagEdit) -> anyhow::Result<()> {
    let done: FlagChanges = ctx
        .client
        .post(&format!("/v1/apps/{app}/flags/{}", seg(name)), &edit)
        .await?;
    print_changes(ctx, app, &done)?;
    Ok(())
}

async fn keys(ctx: &Context, app: &str, action: KeyAction) -> anyhow::Result<()> {
    let base = format!("/v1/apps/{app}/flag-keys");
    match action {
        KeyAction::Create { name, rate } => {
            let rate_per_sec = rate
                .as_deref()
                .map(slipway_api::flags::parse_rate)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let created: FlagKeyCreated = ctx
                .client
                .post(
                    &base,
                    &FlagKeyCreate {
                        who: who(),
                        name,
                        rate_per_sec,
                    },
                )
                .await?;
            eprintln!(
                "evaluation key {} for {} ({}): shown this once, only its hash is kept — store it now.\n\
                 OFREP clients send it as `X-API-Key: KEY` or `Authorization: Bearer KEY` to the daemon's --api address.",
                created.name,
                created.app,
                rate_text(created.rate_per_sec)
            );
            if ctx.json() {
                crate::output::json(&created)?;
            } else {
                println!("{}", created.key);
            }
        }
        KeyAction::List => {
            let list: Vec<FlagKeyView> = ctx.client.get(&base).await?;
            if ctx.json() {
                return crate::output::json(&list);
            }
            let mut table = crate::output::table(&["NAME", "RATE", "CREATED", "BY"]);
            for k in &list {
                table.add_row(vec![
                    k.name.clone(),
                    rate_text(k.rate_per_sec),
                    crate::output::time(k.created_at),
                    k.created_by.clone(),
                ]);
            }
            println!("{table}");
        }
        KeyAction::Revoke { name } => {
            let _: serde_json::Value = ctx.client.delete(&format!("{base}/{}", seg(&name))).await?;
            if ctx.json() {
                crate::output::json(&serde_json::json!({ "app": app, "revoked": name }))?;
            } else {
                println!("{app}: evaluation key {name} revoked");
            }
        }
    }
    Ok(())
}

fn print_list(list: &FlagList, stale_after: &str) {
    if list.flags.is_empty() {
        println!(
            "{} has no flags (add some with `slipway flags import FILE`)",
            list.app
        );
    }
    let mut table =
        crate::output::table(&["FLAG", "STATE", "DEFAULT", "TARGETING", "CHANGED", "NOTE"]);
    let mut stale = 0;
    for f in &list.flags {
        let state = if f.killed {
            "KILLED".to_string()
        } else {
            f.state.clone()
        };
        let mut note = Vec::new();
        if f.stale {
            stale += 1;
            note.push(format!(
                "stale: same for everyone for over {stale_after}, remove it?"
            ));
        }
        if let Some(r) = &f.ramp {
            note.push(format!("ramp: {r}"));
        }
        table.add_row(vec![
            f.key.clone(),
            state,
            f.default_variant.clone().unwrap_or_else(|| "-".into()),
            if f.targeting { "yes" } else { "-" }.into(),
            crate::output::time(f.changed_at),
            note.join("; "),
        ]);
    }
    if !list.flags.is_empty() {
        println!("{table}");
    }
    if stale > 0 {
        println!(
            "{stale} stale flag(s): fully on or off for over {stale_after}; candidates to remove from the code"
        );
    }
    for p in &list.problems {
        eprintln!("warning: {p}");
    }
}

fn print_flag(view: &FlagView) {
    println!(
        "{} / {} (changed {})",
        view.app,
        view.key,
        crate::output::time(view.changed_at)
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&view.definition).unwrap_or_default()
    );
    if let Some(r) = &view.ramp {
        println!(
            "ramp #{} to {} by {}: {} at step {}/{} ({}%), every {}",
            r.id,
            r.variant,
            r.started_by,
            r.status,
            r.step + 1,
            r.steps.len(),
            r.percent,
            humantime::format_duration(std::time::Duration::from_millis(r.every_ms))
        );
        if let Some(reason) = &r.reason {
            println!("  {reason}");
        }
        if let Some(j) = &r.judgement {
            println!("  last look: {j}");
        }
    }
}

pub(crate) fn print_changes(ctx: &Context, app: &str, done: &FlagChanges) -> anyhow::Result<()> {
    if ctx.json() {
        return crate::output::json(done);
    }
    if done.changed.is_empty() {
        println!("{app}: nothing changed");
    }
    for c in &done.changed {
        println!("{app}: {} {} (#{} in its history)", c.flag, c.what, c.seq);
    }
    Ok(())
}

fn rate_text(rate_per_sec: f64) -> String {
    if rate_per_sec <= 0.0 {
        "unlimited".into()
    } else {
        format!("{rate_per_sec} req/s")
    }
}

/// JSON from a file, stdin (`-`), or the argument itself when it looks like JSON.
fn read_json(arg: &str, flag: &str) -> anyhow::Result<Value> {
    let trimmed = arg.trim_start();
    let text = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        arg.to_string()
    } else if arg == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(Path::new(arg))
            .with_context(|| format!("{flag} {arg}: cannot read the file"))?
    };
    serde_json::from_str(&text).with_context(|| format!("{flag}: not valid JSON"))
}

/// A flag or key name as one URL path segment.
fn seg(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
