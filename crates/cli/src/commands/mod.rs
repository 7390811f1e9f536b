//! One module per CLI command; this one holds what they share: which daemon, which app.

pub mod backup;
pub mod certs;
pub mod config;
pub mod control;
pub mod cron;
pub mod deploy;
pub mod drill;
pub mod flags;
pub mod gate;
pub mod git_source;
pub mod history;
pub mod init;
pub mod logs;
pub mod maintenance;
pub mod progress;
pub mod scale;
pub mod status;
pub mod token;
pub mod upgrade;
pub mod validate;

use crate::client::Client;
use crate::output::Format;
use anyhow::bail;
use slipway_api::AppStatus;
use std::path::PathBuf;

pub struct Context {
    pub client: Client,
    pub config: PathBuf,
    pub app: Option<String>,
    pub format: Format,
}

impl Context {
    pub fn new(
        state_dir: PathBuf,
        server: Option<String>,
        ca_cert: Option<PathBuf>,
        config: PathBuf,
        app: Option<String>,
        format: Format,
    ) -> anyhow::Result<Context> {
        let client = match server {
            Some(url) => Client::from_server(
                &url,
                std::env::var("SLIPWAY_TOKEN").ok(),
                ca_cert.as_deref(),
            )?,
            None => Client::from_state_dir(state_dir),
        };
        Ok(Context {
            client,
            config,
            app,
            format,
        })
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// A line for people: on stdout, or on stderr when stdout carries JSON.
    pub fn say(&self, line: impl std::fmt::Display) {
        match self.format {
            Format::Text => println!("{line}"),
            Format::Json => eprintln!("{line}"),
        }
    }

    /// POSTs a command; a refusal is printed (`error: ...`) and gives `None`, for the caller to exit 1.
    pub async fn submit<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Option<T> {
        match self.client.post(path, body).await {
            Ok(answer) => Some(answer),
            Err(e) => {
                eprintln!("error: {e}");
                None
            }
        }
    }

    /// The app meant: `--app`, else the config file's, else the daemon's only app.
    pub async fn app(&self) -> anyhow::Result<String> {
        if let Some(app) = &self.app {
            return Ok(app.clone());
        }
        if self.config.exists() {
            match slipway_config::load(&self.config) {
                Ok(spec) => return Ok(spec.app),
                // Looking at what runs must stay possible while the file is being fixed.
                Err(e) => eprintln!(
                    "warning: {} has {} problem(s) (see `slipway validate`); asking the daemon which app",
                    self.config.display(),
                    e.issues().len()
                ),
            }
        }
        let apps: Vec<AppStatus> = self.client.get("/v1/apps").await?;
        match apps.as_slice() {
            [one] => Ok(one.app.clone()),
            [] => bail!(
                "no app has been deployed to this daemon yet (and there is no {})",
                self.config.display()
            ),
            many => bail!(
                "which app? this daemon runs {}; pass --app NAME",
                many.iter()
                    .map(|a| a.app.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// `alice@host`, recorded with releases: the login name from the environment, else the account's name in
/// the password database (shells started by `su`, cron, CI runners and containers often set no `$USER`).
pub fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(account_name);
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

/// The name of the account running this process, or `uid N` when it has none.
fn account_name() -> String {
    // SAFETY: getuid cannot fail; getpwuid returns null or a pointer to a static record whose name is a
    // NUL-terminated string, read at once (this CLI has one thread here).
    let uid = unsafe { libc::getuid() };
    let entry = unsafe { libc::getpwuid(uid) };
    if !entry.is_null() {
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).pw_name) };
        if let Ok(name) = name.to_str()
            && !name.is_empty()
        {
            return name.to_owned();
        }
    }
    format!("uid {uid}")
}

pub fn parse_version(text: &str) -> anyhow::Result<u64> {
    match slipway_core::release::parse_version(text) {
        Some(v) => Ok(v),
        None => bail!("`{text}` is not a release: write it like v3"),
    }
}

/// What the daemon said besides "accepted": warnings, and how a release phase went.
pub fn print_notes(ctx: &Context, accepted: &slipway_api::DeployAccepted) {
    for w in &accepted.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(phase) = &accepted.phase {
        ctx.say(format!(
            "{}: `{}` {} in {:.1}s (output: {})",
            accepted.app, phase.cmd, phase.outcome, phase.seconds, phase.log
        ));
        if let Some(watched) = &phase.stable_watch {
            ctx.say(format!("{}: {watched}", accepted.app));
        }
    }
}
