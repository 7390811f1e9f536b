//! The one error type of the crate. Messages say what failed and what the operator can do about it;
//! they never contain secret values (the store holds none).

use slipway_core::release::Version;
use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error(
        "cannot open the state database {path}: {source}; check that the folder is writable and that the file is a slipway database"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "the state database has schema version {found} but this slipway knows at most {known}; it was written by a newer slipway, upgrade this binary"
    )]
    SchemaTooNew { found: i64, known: i64 },

    #[error("state database error: {0}; if it persists, inspect the database with `sqlite3`")]
    Sqlite(#[from] rusqlite::Error),

    #[error("stored {what} is not valid: {source}; the database may have been edited by hand")]
    Corrupt {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("release v{version} of app {app} does not exist; see `slipway history {app}`")]
    ReleaseNotFound { app: String, version: Version },

    #[error(
        "a rollout of {app} is already in progress (rollout #{id}, to v{to}, started at {started_at} ms); wait for it to finish or abort it first"
    )]
    RolloutInProgress {
        app: String,
        id: i64,
        to: Version,
        started_at: i64,
    },

    #[error("rollout #{id} does not exist")]
    RolloutNotFound { id: i64 },

    #[error("rollout #{id} has already finished and can no longer change")]
    RolloutFinished { id: i64 },

    #[error(
        "lock {name} is held by {holder} since {since_ms} ms; wait for it to be released, or restart the daemon to recover it"
    )]
    LockHeld {
        name: String,
        holder: String,
        since_ms: i64,
    },

    #[error(
        "{app} already has an evaluation key named {name}; pick another name, or revoke it first"
    )]
    FlagKeyExists { app: String, name: String },

    #[error(
        "flag {flag} of {app} is already ramping (ramp #{id}); wait for it, or change the flag to stop it"
    )]
    FlagRampActive { app: String, flag: String, id: i64 },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "invalid exclude pattern {pattern:?}: {source}; fix `artifact.exclude` in slipway.toml"
    )]
    Pattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },

    #[error("{path} is not valid UTF-8; rename it or exclude it from the artifact")]
    NonUtf8Path { path: PathBuf },

    #[error(
        "{path} is a symlink to {target}: {why}. A release runs only what was frozen, so the deploy \
         stops here; copy what it points to into the folder, or leave the link out with \
         `exclude = [\"{path}\"]` under [artifact] in slipway.toml"
    )]
    LinkOutside {
        path: String,
        target: String,
        why: &'static str,
    },

    #[error("{path} changed while it was being frozen; retry the deploy once the folder is stable")]
    ChangedWhileFreezing { path: PathBuf },

    #[error("{0:?} is not an artifact digest (expected sha256:<64 hex digits>)")]
    InvalidDigest(String),

    #[error("artifact {digest} is not in the artifact store; deploy again to re-create it")]
    ArtifactNotFound { digest: String },

    #[error("artifact {digest} is damaged: {detail}; deploy again to freeze a fresh copy")]
    ArtifactCorrupt { digest: String, detail: String },

    #[error(
        "the state database stayed locked for {secs}s, so no consistent copy could be read; another \
         process holds it (e.g. `sqlite3` in a transaction): end that, then try again"
    )]
    SnapshotLocked { secs: u64 },

    #[error("this is not a sound slipway backup: {0}")]
    Backup(String),

    #[error(
        "[artifact] path {artifact} is outside the config's folder {folder}, and only that folder is \
         sent to the daemon: move slipway.toml to a folder holding both, or deploy with \
         `--no-upload` to a daemon that reads this host's files"
    )]
    UploadOutside { artifact: PathBuf, folder: PathBuf },

    #[error("the uploaded folder is refused: {0}")]
    Upload(String),
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Corrupt {
            what,
            source: Box::new(source),
        }
    }
}
