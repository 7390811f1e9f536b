//! Releases: immutable records of artifact + spec, numbered per app; only status and reason change.
//! Also the app's *stable* release, the one that serves when no rollout is in progress.

use crate::error::{Result, StoreError};
use crate::store::{Store, Tx};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use slipway_core::release::{Release, ReleaseStatus, Version};
use slipway_core::spec::AppSpec;

/// What the caller decides about a new release; the store assigns the version and the status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewRelease {
    pub app: String,
    pub label: Option<String>,
    pub artifact: String,
    pub spec: AppSpec,
    pub created_at: i64,
    pub created_by: String,
    pub message: Option<String>,
    pub rollback_of: Option<Version>,
}

const COLUMNS: &str = "app, version, label, artifact, spec, created_at, created_by, message, rollback_of, status, reason";

impl Tx<'_> {
    /// Records a new `Pending` release numbered one past the app's highest version.
    pub fn create_release(&self, new: NewRelease) -> Result<Release> {
        let latest: Option<Version> = self.conn.query_row(
            "SELECT MAX(version) FROM releases WHERE app = ?1",
            [&new.app],
            |row| row.get(0),
        )?;
        let version = latest.unwrap_or(0) + 1;
        let spec =
            serde_json::to_string(&new.spec).map_err(|e| StoreError::corrupt("release spec", e))?;
        let status = ReleaseStatus::Pending;
        self.conn.execute(
            &format!("INSERT INTO releases ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)"),
            params![
                new.app,
                version,
                new.label,
                new.artifact,
                spec,
                new.created_at,
                new.created_by,
                new.message,
                new.rollback_of,
                status.as_str(),
            ],
        )?;
        Ok(Release {
            app: new.app,
            version,
            label: new.label,
            artifact: new.artifact,
            spec: new.spec,
            created_at: new.created_at,
            created_by: new.created_by,
            message: new.message,
            rollback_of: new.rollback_of,
            status,
            reason: None,
        })
    }

    pub fn release(&self, app: &str, version: Version) -> Result<Option<Release>> {
        // Cached statements: the controller and the TLS upkeep ask these of every app often.
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM releases WHERE app = ?1 AND version = ?2"
            ))?
            .query_row(params![app, version], read_release)
            .optional()?
            .transpose()
    }

    /// All releases of `app`, newest first.
    pub fn releases(&self, app: &str) -> Result<Vec<Release>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM releases WHERE app = ?1 ORDER BY version DESC"
        ))?;
        let rows = stmt.query_map([app], read_release)?;
        rows.map(|row| row?).collect()
    }

    /// The releases retention decides on, newest first, without reading the whole history: the
    /// newest `newest`, the active one and the newest superseded one (the default rollback target)
    /// however old, and the versions in `also` (those in use).
    pub fn releases_for_retention(
        &self,
        app: &str,
        newest: u32,
        also: &[Version],
    ) -> Result<Vec<Release>> {
        let also = serde_json::to_string(also).unwrap_or_else(|_| "[]".into());
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM releases WHERE app = ?1 AND (
               version IN (SELECT version FROM releases WHERE app = ?1 ORDER BY version DESC LIMIT ?2)
               OR status = 'active'
               OR version = (SELECT MAX(version) FROM releases WHERE app = ?1 AND status = 'superseded')
               OR version IN (SELECT value FROM json_each(?3)))
             ORDER BY version DESC"
        ))?;
        let rows = stmt.query_map(params![app, newest, also], read_release)?;
        rows.map(|row| row?).collect()
    }

    pub fn set_release_status(
        &self,
        app: &str,
        version: Version,
        status: ReleaseStatus,
        reason: Option<&str>,
    ) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE releases SET status = ?3, reason = ?4 WHERE app = ?1 AND version = ?2",
            params![app, version, status.as_str(), reason],
        )?;
        if changed == 0 {
            return Err(StoreError::ReleaseNotFound {
                app: app.to_string(),
                version,
            });
        }
        Ok(())
    }

    /// Every app that has at least one release, by name.
    pub fn apps(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT app FROM releases ORDER BY app")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every app's stable release, by app.
    pub fn stables(&self) -> Result<Vec<(String, Version)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT app, version FROM stable ORDER BY app")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn stable(&self, app: &str) -> Result<Option<Version>> {
        Ok(self
            .conn
            .prepare_cached("SELECT version FROM stable WHERE app = ?1")?
            .query_row([app], |row| row.get(0))
            .optional()?)
    }

    /// Makes `version` the app's stable release: it becomes `Active` and whatever was `Active` before
    /// becomes `Superseded`.
    pub fn set_stable(&self, app: &str, version: Version) -> Result<()> {
        if self.release(app, version)?.is_none() {
            return Err(StoreError::ReleaseNotFound {
                app: app.to_string(),
                version,
            });
        }
        self.conn.execute(
            "UPDATE releases SET status = ?3 WHERE app = ?1 AND status = ?4 AND version != ?2",
            params![
                app,
                version,
                ReleaseStatus::Superseded.as_str(),
                ReleaseStatus::Active.as_str()
            ],
        )?;
        self.conn.execute(
            "UPDATE releases SET status = ?3 WHERE app = ?1 AND version = ?2",
            params![app, version, ReleaseStatus::Active.as_str()],
        )?;
        self.conn.execute(
            "INSERT INTO stable (app, version) VALUES (?1, ?2)
             ON CONFLICT (app) DO UPDATE SET version = excluded.version",
            params![app, version],
        )?;
        Ok(())
    }
}

/// Reads one row; the outer `rusqlite::Result` is the row access, the inner one our own decoding.
fn read_release(row: &Row<'_>) -> rusqlite::Result<Result<Release>> {
    let spec: String = row.get("spec")?;
    let status: String = row.get("status")?;
    let release = (|| -> Result<Release> {
        Ok(Release {
            app: row.get("app")?,
            version: row.get("version")?,
            label: row.get("label")?,
            artifact: row.get("artifact")?,
            spec: serde_json::from_str(&spec)
                .map_err(|e| StoreError::corrupt("release spec", e))?,
            created_at: row.get("created_at")?,
            created_by: row.get("created_by")?,
            message: row.get("message")?,
            rollback_of: row.get("rollback_of")?,
            status: ReleaseStatus::parse(&status).ok_or_else(|| {
                StoreError::corrupt("release status", UnknownValue(status.clone()))
            })?,
            reason: row.get("reason")?,
        })
    })();
    Ok(release)
}

/// A stored enum value this build does not know.
#[derive(Debug)]
pub(crate) struct UnknownValue(pub(crate) String);

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown value {:?}", self.0)
    }
}

impl std::error::Error for UnknownValue {}

impl Store {
    /// Records a new `Pending` release; its version is one past the app's highest, decided in the same
    /// transaction as the insert so concurrent deploys cannot get the same number.
    pub fn create_release(&self, new: NewRelease) -> Result<Release> {
        self.transaction(|tx| tx.create_release(new))
    }

    pub fn release(&self, app: &str, version: Version) -> Result<Option<Release>> {
        self.read(|tx| tx.release(app, version))
    }

    /// All releases of `app`, newest first.
    pub fn releases(&self, app: &str) -> Result<Vec<Release>> {
        self.read(|tx| tx.releases(app))
    }

    /// See [`Tx::releases_for_retention`].
    pub fn releases_for_retention(
        &self,
        app: &str,
        newest: u32,
        also: &[Version],
    ) -> Result<Vec<Release>> {
        self.read(|tx| tx.releases_for_retention(app, newest, also))
    }

    pub fn set_release_status(
        &self,
        app: &str,
        version: Version,
        status: ReleaseStatus,
        reason: Option<&str>,
    ) -> Result<()> {
        self.transaction(|tx| tx.set_release_status(app, version, status, reason))
    }

    /// Every app that has at least one release, by name.
    pub fn apps(&self) -> Result<Vec<String>> {
        self.read(|tx| tx.apps())
    }

    /// The stable release of an app (the one serving).
    pub fn stable(&self, app: &str) -> Result<Option<Version>> {
        self.read(|tx| tx.stable(app))
    }

    /// Every app's stable release, in one query (for what looks at every app often).
    pub fn stables(&self) -> Result<Vec<(String, Version)>> {
        self.read(|tx| tx.stables())
    }

    /// Makes `version` stable: the previous `Active` release becomes `Superseded` and this one `Active`,
    /// in one transaction.
    pub fn set_stable(&self, app: &str, version: Version) -> Result<()> {
        self.transaction(|tx| tx.set_stable(app, version))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::{new_release, open_temp};

    #[test]
    fn versions_increase_per_app_independently() {
        let (_dir, store) = open_temp();
        assert_eq!(store.create_release(new_release("web")).unwrap().version, 1);
        assert_eq!(store.create_release(new_release("web")).unwrap().version, 2);
        assert_eq!(store.create_release(new_release("api")).unwrap().version, 1);
        assert_eq!(store.create_release(new_release("web")).unwrap().version, 3);
        let versions: Vec<_> = store
            .releases("web")
            .unwrap()
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(versions, [3, 2, 1]);
        assert_eq!(store.apps().unwrap(), ["api", "web"]);
    }

    #[test]
    fn release_round_trips_with_its_spec() {
        let (_dir, store) = open_temp();
        let mut new = new_release("web");
        new.label = Some("abc123".into());
        new.message = Some("fix the thing".into());
        let created = store.create_release(new).unwrap();
        assert_eq!(created.status, ReleaseStatus::Pending);
        let read = store.release("web", 1).unwrap().unwrap();
        assert_eq!(read, created);
        assert!(store.release("web", 2).unwrap().is_none());
    }

    #[test]
    fn status_and_reason_change() {
        let (_dir, store) = open_temp();
        store.create_release(new_release("web")).unwrap();
        store
            .set_release_status(
                "web",
                1,
                ReleaseStatus::Failed,
                Some("readiness never passed"),
            )
            .unwrap();
        let r = store.release("web", 1).unwrap().unwrap();
        assert_eq!(r.status, ReleaseStatus::Failed);
        assert_eq!(r.reason.as_deref(), Some("readiness never passed"));
        let err = store
            .set_release_status("web", 9, ReleaseStatus::Failed, None)
            .unwrap_err();
        assert!(
            matches!(err, StoreError::ReleaseNotFound { version: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn retention_reads_the_newest_the_stable_the_rollback_target_and_those_in_use() {
        let (_dir, store) = open_temp();
        for _ in 0..8 {
            store.create_release(new_release("web")).unwrap();
        }
        // v2 was stable, then v3 (v2 superseded); v4..v8 are pending or failed.
        store.set_stable("web", 2).unwrap();
        store.set_stable("web", 3).unwrap();
        store
            .set_release_status("web", 5, ReleaseStatus::Failed, Some("x"))
            .unwrap();
        let versions = |newest, also: &[u64]| -> Vec<u64> {
            store
                .releases_for_retention("web", newest, also)
                .unwrap()
                .iter()
                .map(|r| r.version)
                .collect()
        };
        assert_eq!(versions(2, &[]), [8, 7, 3, 2]);
        assert_eq!(versions(0, &[1]), [3, 2, 1]);
        assert_eq!(versions(1, &[]), [8, 3, 2]);
        // The same answer retention gets from the whole history.
        let all = store.releases("web").unwrap();
        let some = store.releases_for_retention("web", 2, &[1]).unwrap();
        assert_eq!(all.len(), 8);
        assert!(some.iter().all(|r| all.contains(r)));
    }

    #[test]
    fn set_stable_supersedes_the_previous_active_release() {
        let (_dir, store) = open_temp();
        store.create_release(new_release("web")).unwrap();
        store.create_release(new_release("web")).unwrap();
        store.create_release(new_release("api")).unwrap();
        assert_eq!(store.stable("web").unwrap(), None);
        store.set_stable("web", 1).unwrap();
        store.set_stable("api", 1).unwrap();
        assert_eq!(store.stable("web").unwrap(), Some(1));
        store.set_stable("web", 2).unwrap();
        assert_eq!(store.stable("web").unwrap(), Some(2));
        let status = |app: &str, v| store.release(app, v).unwrap().unwrap().status;
        assert_eq!(status("web", 1), ReleaseStatus::Superseded);
        assert_eq!(status("web", 2), ReleaseStatus::Active);
        assert_eq!(
            status("api", 1),
            ReleaseStatus::Active,
            "other apps are untouched"
        );
        let err = store.set_stable("web", 7).unwrap_err();
        assert!(
            matches!(err, StoreError::ReleaseNotFound { version: 7, .. }),
            "{err}"
        );
        assert_eq!(store.stable("web").unwrap(), Some(2));
    }
}
