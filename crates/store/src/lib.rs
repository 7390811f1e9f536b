//! Durable state: releases, rollouts, events and locks in SQLite; the content-addressed artifact store.
//!
//! Why SQLite: the daemon must survive its own crash mid-rollout and resume from exactly what it had
//! decided, and an operator must be able to inspect that state with `sqlite3` when something goes wrong.
//! WAL mode gives crash safety with cheap concurrent reads; every multi-step write (finish a rollout,
//! make its release stable, journal an event) goes through one [`Store::transaction`] so it is all or
//! nothing.
//!
//! Why content-addressed artifacts: a release must run exactly the bits it was made from, even after the
//! user keeps editing the source folder, and two releases of identical content should cost nothing.
//! [`ArtifactStore`] freezes a folder into blobs named by their SHA-256 and a manifest whose own hash is
//! the artifact's digest.
//!
//! Why backups are a tar of a database snapshot plus manifests and blobs: see `archive.rs` and
//! `snapshot.rs`. History that grows with every deploy is pruned in small batches (`pruning.rs`).
//!
//! The API is synchronous (rusqlite and file IO); async callers run it from `spawn_blocking`.

mod app_config;
mod archive;
mod artifact;
mod cron_runs;
mod drills;
mod error;
mod events;
mod exclude;
mod flags;
mod locks;
mod maintenance;
mod pruning;
mod releases;
mod rollouts;
mod slo_minutes;
mod snapshot;
mod store;
#[cfg(test)]
mod test_support;
mod tokens;
mod tree_rules;
mod upload;
mod watches;

pub use app_config::ConfigVar;
pub use archive::{
    AppContents, BackupIndex, BackupParts, CheckOnly, FORMAT as BACKUP_FORMAT, IntoFolder, Sum,
    Unpack, read_backup, sum_of, write_backup,
};
pub use artifact::{ArtifactStore, FrozenArtifact, PruneReport};
pub use cron_runs::CronRun;
pub use error::{Result, StoreError};
pub use events::Event;
pub use flags::{FlagAudit, FlagKey, FlagRampRecord, StoredFlag, StoredFlagSet};
pub use locks::Lock;
pub use maintenance::MaintenanceRecord;
pub use pruning::{Cut, EventKinds, HistoryExtent, HistoryRows, TableExtent};
pub use releases::NewRelease;
pub use rollouts::{RolloutOutcome, RolloutRecord};
pub use slo_minutes::SloMinute;
pub use store::{Store, Tx};
pub use tokens::ApiToken;
pub use upload::{FolderSize, Packed, pack, unpack};
