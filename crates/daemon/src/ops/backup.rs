//! `slipway backup`: a consistent copy of the daemon's state, made while it serves.
//!
//! Under the artifact gate (the lock pruning and freezing take), for a few milliseconds: the
//! database is copied with SQLite's online backup API (never a file copy of a live database), and the
//! manifests and blobs of the artifacts worth keeping — what artifact pruning keeps, read from that
//! very snapshot: each app's newest `[releases] keep`, its stable release, its rollback target and the
//! releases of a rollout in progress — are hard-linked into a staging folder of the backup's own.
//! Blobs are immutable, so the links hold exactly the bits of the moment; then the gate is released
//! and the file is written from the staging folder at the reader's pace, while pruning and deploys
//! carry on. Trees are left out (they are made again from blobs), and so are logs, pid files and
//! the TCP API's `api-token`: a backup holds no secret.

use crate::error::Error;
use crate::retention;
use slipway_core::release::{Release, Version};
use slipway_store::{
    AppContents, ArtifactStore, BackupIndex, BackupParts, Store, StoreError, Sum, sum_of,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Makes backups of one daemon's state.
pub struct Backups {
    pub store: Arc<Store>,
    pub artifacts: Arc<ArtifactStore>,
    pub artifact_gate: Arc<Mutex<()>>,
    /// `<state-dir>/backup-tmp`: one folder per backup being written.
    pub staging: PathBuf,
}

/// A backup ready to be written: its files linked into a folder of its own, removed when this is
/// dropped (written or not).
pub struct Prepared {
    pub index: BackupIndex,
    staging: Staging,
    db: PathBuf,
    manifests: Vec<(String, PathBuf)>,
    blobs: Vec<(String, PathBuf)>,
}

impl Prepared {
    /// Writes the backup file (a tar, `slipway_store::write_backup`) into `out`.
    pub fn write_to(&self, out: impl Write) -> Result<(), StoreError> {
        slipway_store::write_backup(
            out,
            &BackupParts {
                index: &self.index,
                db: &self.db,
                manifests: &self.manifests,
                blobs: &self.blobs,
            },
        )
    }

    /// How many bytes the backup's files hold (the tar adds a little).
    pub fn bytes(&self) -> u64 {
        self.index.db.size + self.index.blobs.iter().map(|b| b.size).sum::<u64>()
    }

    pub fn staging_dir(&self) -> &Path {
        &self.staging.0
    }
}

/// A folder removed with everything in it when dropped.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the snapshot says of one app.
pub struct AppFacts {
    pub app: String,
    /// Newest first.
    pub releases: Vec<Release>,
    /// The releases of its rollout in progress.
    pub in_use: Vec<Version>,
}

/// Which artifacts a backup takes: for each app, what artifact pruning keeps, as (version, digest),
/// oldest first.
pub fn plan(apps: &[AppFacts]) -> Vec<(AppContents, Vec<(Version, String)>)> {
    apps.iter()
        .map(|facts| {
            let keep = retention::keep_of(&facts.releases);
            let kept = retention::kept_versions(&facts.releases, keep, &facts.in_use);
            let mut artifacts: Vec<(Version, String)> = facts
                .releases
                .iter()
                .filter(|r| kept.contains(&r.version))
                .map(|r| (r.version, r.artifact.clone()))
                .collect();
            artifacts.sort();
            let contents = AppContents {
                app: facts.app.clone(),
                stable: facts
                    .releases
                    .iter()
                    .find(|r| r.status == slipway_core::release::ReleaseStatus::Active)
                    .map(|r| r.version),
                releases: facts.releases.len(),
                with_artifacts: artifacts.iter().map(|(v, _)| *v).collect(),
            };
            (contents, artifacts)
        })
        .collect()
}

impl Backups {
    /// Snapshots the database and links the artifacts worth keeping (see the module's docs). Blocking.
    pub fn prepare(&self) -> Result<Prepared, Error> {
        let staging = self.new_staging()?;
        let db = staging.0.join("slipway.db");
        let (manifest_dir, blob_dir) = (staging.0.join("manifests"), staging.0.join("blobs"));
        for dir in [&manifest_dir, &blob_dir] {
            std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        }
        let held = self.artifact_gate.lock().unwrap_or_else(|e| e.into_inner());
        self.store.snapshot_to(&db).map_err(cannot_copy)?;
        let snapshot = Store::open_read_only(&db).map_err(cannot_copy)?;
        let problems = snapshot.integrity_problems()?;
        if !problems.is_empty() {
            return Err(Error::internal(format!(
                "the state database fails SQLite's integrity check, so no backup was made: {}; \
                 inspect it with `sqlite3 <state-dir>/slipway.db 'PRAGMA integrity_check'`",
                problems
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        let mut facts = Vec::new();
        for app in snapshot.apps()? {
            let releases = snapshot.releases(&app)?;
            let in_use = snapshot
                .active_rollout(&app)?
                .map(|r| r.from.into_iter().chain([r.to]).collect())
                .unwrap_or_default();
            facts.push(AppFacts {
                app,
                releases,
                in_use,
            });
        }
        let schema_version = snapshot.schema_version()?;
        drop(snapshot);

        let mut notes = Vec::new();
        let mut apps = Vec::new();
        let mut manifests = Vec::new();
        let mut blobs: BTreeMap<String, (PathBuf, u64)> = BTreeMap::new();
        let mut taken: BTreeSet<String> = BTreeSet::new();
        for (mut contents, artifacts) in plan(&facts) {
            let mut with = Vec::new();
            for (version, digest) in artifacts {
                if taken.contains(&digest) {
                    with.push(version);
                    continue;
                }
                match self.link_artifact(&digest, &manifest_dir, &blob_dir, &mut blobs) {
                    Ok(manifest) => {
                        taken.insert(digest.clone());
                        manifests.push((digest, manifest));
                        with.push(version);
                    }
                    Err(why) => notes.push(format!(
                        "{} v{version}: its artifact {digest} is not included ({why}); a restored \
                         daemon cannot roll back to v{version}",
                        contents.app
                    )),
                }
            }
            contents.with_artifacts = with;
            apps.push(contents);
        }
        drop(held);

        let index = BackupIndex {
            format: slipway_store::BACKUP_FORMAT,
            made_by: format!("slipway {}", env!("CARGO_PKG_VERSION")),
            made_at_ms: crate::clock::now_ms() as i64,
            schema_version,
            db: sum_of(&db)?,
            apps,
            artifacts: manifests.iter().map(|(d, _)| d.clone()).collect(),
            blobs: blobs
                .iter()
                .map(|(sha256, (_, size))| Sum {
                    sha256: sha256.clone(),
                    size: *size,
                })
                .collect(),
            notes,
        };
        Ok(Prepared {
            index,
            staging,
            db,
            manifests,
            blobs: blobs.into_iter().map(|(h, (p, _))| (h, p)).collect(),
        })
    }

    /// Links an artifact's manifest and blobs into the staging folder; all of them or none.
    fn link_artifact(
        &self,
        digest: &str,
        manifest_dir: &Path,
        blob_dir: &Path,
        linked: &mut BTreeMap<String, (PathBuf, u64)>,
    ) -> Result<PathBuf, String> {
        let (manifest, blob_list) = self.artifacts.files_of(digest).map_err(|e| match e {
            StoreError::ArtifactNotFound { .. } => "it was pruned from the artifact store".into(),
            other => other.to_string(),
        })?;
        let mut sources = Vec::new();
        for (sha256, size) in &blob_list {
            let source = self
                .artifacts
                .blob_file(sha256)
                .map_err(|e| e.to_string())?;
            if !source.is_file() {
                return Err(format!(
                    "its blob {sha256} is missing from the artifact store"
                ));
            }
            sources.push((sha256.clone(), source, *size));
        }
        let name = manifest
            .file_name()
            .ok_or_else(|| "its manifest has no file name".to_string())?;
        let staged_manifest = manifest_dir.join(name);
        link_or_copy(&manifest, &staged_manifest)?;
        for (sha256, source, size) in sources {
            if linked.contains_key(&sha256) {
                continue;
            }
            let staged = blob_dir.join(&sha256);
            link_or_copy(&source, &staged)?;
            linked.insert(sha256, (staged, size));
        }
        Ok(staged_manifest)
    }

    fn new_staging(&self) -> Result<Staging, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = self.staging.join(format!("{}-{n}", crate::clock::now_ms()));
        std::fs::create_dir_all(&dir).map_err(|e| io_error("cannot create", &dir, e))?;
        Ok(Staging(dir))
    }
}

/// A hard link costs no space and keeps the blob's bits even if pruning removes it meanwhile; a copy
/// where links are refused.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::hard_link(from, to)
        .or_else(|_| std::fs::copy(from, to).map(|_| ()))
        .map_err(|e| format!("cannot copy {} into the backup: {e}", from.display()))
}

fn cannot_copy(e: StoreError) -> Error {
    match e {
        StoreError::SnapshotLocked { .. } => Error::unavailable(e.to_string()),
        other => Error::internal(format!(
            "cannot copy the state database: {other}; no backup was made"
        )),
    }
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!(
        "{action} {}: {e}; no backup was made",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::release::ReleaseStatus;

    use crate::test_release::release_kept as release;

    #[test]
    fn a_backup_takes_what_pruning_keeps() {
        use ReleaseStatus::*;
        // keep = 2: v6 and v5 as the newest, v4 stable, v3 its rollback target, v1 in a rollout.
        let releases = vec![
            release(6, Pending, 2),
            release(5, Failed, 2),
            release(4, Active, 2),
            release(3, Superseded, 2),
            release(2, Superseded, 2),
            release(1, Superseded, 2),
        ];
        let planned = plan(&[AppFacts {
            app: "a".into(),
            releases,
            in_use: vec![1],
        }]);
        let (contents, artifacts) = &planned[0];
        assert_eq!(contents.with_artifacts, [1, 3, 4, 5, 6]);
        assert_eq!(contents.stable, Some(4));
        assert_eq!(contents.releases, 6);
        assert_eq!(artifacts[0], (1, "sha256:1".to_string()));
    }
}
