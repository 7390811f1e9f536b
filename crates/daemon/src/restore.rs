//! `slipway restore FILE --state-dir DIR`: a backup (`ops/backup.rs`) made into a state dir a daemon
//! can serve from, offline — no daemon runs during a restore.
//!
//! Nothing is lost, whatever goes wrong: DIR must be empty or not exist (a dir that holds anything is
//! refused before a byte is read); the backup is unpacked into a staging folder beside DIR, where every
//! entry is checked as it passes (`slipway_store::read_backup`), then the database with SQLite's
//! `PRAGMA integrity_check` and every artifact's blobs against its manifest; only then is the staging
//! folder renamed to DIR, in one step. A damaged or refused backup leaves DIR as it was.
//!
//! What a restored dir lacks, by design: instance logs, and the TCP API's `api-token` (a secret,
//! never in a backup) — a daemon started with `--api` makes a new one, and tokens made with
//! `slipway token create` (kept as hashes in the database) keep working.

use crate::paths::Paths;
use anyhow::{Context, bail};
use serde::Serialize;
pub use slipway_store::{AppContents, BackupIndex};
use slipway_store::{ArtifactStore, CheckOnly, IntoFolder, Store};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// What a restore made.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub state_dir: PathBuf,
    pub made_by: String,
    pub made_at_ms: i64,
    pub apps: Vec<AppContents>,
    /// Artifacts restored (releases that can be rolled back to).
    pub artifacts: usize,
    /// Bytes of the database and blobs.
    pub bytes: u64,
    /// What the backup could not include, as it said when it was made.
    pub notes: Vec<String>,
}

/// Reads a backup file through and checks every entry, keeping nothing: what `slipway backup` does
/// with the file it has just written.
pub fn check(file: &Path) -> anyhow::Result<BackupIndex> {
    let input = fs::File::open(file)
        .with_context(|| format!("cannot read the backup {}", file.display()))?;
    Ok(slipway_store::read_backup(
        BufReader::with_capacity(1 << 16, input),
        &mut CheckOnly,
    )?)
}

/// Restores `file` into `state_dir` (empty or new); see the module's docs.
pub fn restore(file: &Path, state_dir: &Path) -> anyhow::Result<Restored> {
    refuse_unless_empty(state_dir)?;
    let input = fs::File::open(file)
        .with_context(|| format!("cannot read the backup {}", file.display()))?;
    let staging = Staging::beside(state_dir)?;
    let nothing_changed = || format!("nothing was restored: {} is as it was", state_dir.display());
    let index = slipway_store::read_backup(
        BufReader::with_capacity(1 << 16, input),
        &mut IntoFolder(staging.0.clone()),
    )
    .with_context(|| format!("{}", file.display()))
    .with_context(nothing_changed)?;
    check_unpacked(&staging.0, &index)
        .with_context(|| format!("{} is damaged", file.display()))
        .with_context(nothing_changed)?;
    // Someone may have put something there meanwhile: refuse again rather than replace it.
    refuse_unless_empty(state_dir)?;
    fs::rename(&staging.0, state_dir).with_context(|| {
        format!(
            "cannot move the restored state into {}; {}",
            state_dir.display(),
            nothing_changed()
        )
    })?;
    staging.keep();
    Ok(Restored {
        state_dir: state_dir.to_path_buf(),
        made_by: index.made_by,
        made_at_ms: index.made_at_ms,
        apps: index.apps,
        artifacts: index.artifacts.len(),
        bytes: index.db.size + index.blobs.iter().map(|b| b.size).sum::<u64>(),
        notes: index.notes,
    })
}

/// The database opens with a schema this slipway knows and passes `PRAGMA integrity_check`; every
/// artifact's manifest matches its digest and every blob its manifest.
fn check_unpacked(dir: &Path, index: &BackupIndex) -> anyhow::Result<()> {
    let paths = Paths::new(dir);
    {
        let db = Store::open_read_only(&paths.db())?;
        let problems = db.integrity_problems()?;
        if !problems.is_empty() {
            bail!(
                "its database fails SQLite's integrity check: {}",
                problems.into_iter().take(3).collect::<Vec<_>>().join("; ")
            );
        }
        let found = db.schema_version()?;
        if found != index.schema_version {
            bail!(
                "its database has schema version {found}, its index says {}",
                index.schema_version
            );
        }
    }
    let artifacts = ArtifactStore::open(&paths.artifacts())
        .with_context(|| format!("cannot lay out {}", paths.artifacts().display()))?;
    for digest in &index.artifacts {
        artifacts.verify(digest)?;
    }
    Ok(())
}

/// A state dir is restored into only when it holds nothing (or does not exist yet).
fn refuse_unless_empty(dir: &Path) -> anyhow::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => bail!(
            "{} is a file, not a state dir; nothing was changed. Restore into a new or empty dir",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let shown = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 5 { ", …" } else { "" };
    bail!(
        "{dir} is not empty (it holds {shown}{more}); a backup is restored only into an empty or new \
         state dir, so that nothing in it is lost. Nothing was changed. Restore into a new dir \
         (e.g. --state-dir {dir}-restored), or move this one away first if you mean to replace it",
        dir = dir.display()
    )
}

/// The folder a restore unpacks into, beside the state dir; removed unless kept.
struct Staging(PathBuf, bool);

impl Staging {
    fn beside(state_dir: &Path) -> anyhow::Result<Staging> {
        use std::os::unix::fs::DirBuilderExt;
        let parent = match state_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let name = state_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".into());
        let dir = parent.join(format!(".{name}.restoring-{}", std::process::id()));
        // The state dir's own mode: the daemon refuses one others can reach.
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Staging(dir, false))
    }

    fn keep(mut self) {
        self.1 = true;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.1 {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_that_holds_anything_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("keep.txt"), "mine").unwrap();
        let err = restore(&tmp.path().join("no-such.tar"), &dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not empty (it holds keep.txt)"), "{err}");
        assert!(err.contains("Nothing was changed"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("keep.txt")).unwrap(), "mine");
        // No staging folder is left beside it either.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_that_is_no_backup_leaves_a_new_dir_uncreated() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("junk.tar");
        fs::write(&file, "not a tar at all").unwrap();
        let dir = tmp.path().join("state");
        let err = format!("{:#}", restore(&file, &dir).unwrap_err());
        assert!(err.contains("nothing was restored"), "{err}");
        assert!(!dir.exists());
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "only junk.tar"
        );
    }
}
