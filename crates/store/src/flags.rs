//! Feature flags: each app's definitions, the audit log of every change, evaluation keys, and ramps.
//!
//! Definitions are stored one flag a row, as JSON (flagd's format, written and read by the daemon: this
//! crate does not interpret it), beside the set's shared `$evaluators` and metadata and a generation
//! number bumped on every change (OFREP's ETag). Every change adds an audit row per flag with the flag
//! before and after, numbered per flag so `flags revert NAME --to N` can name one. Evaluation keys are
//! kept as a SHA-256 hash only: the key itself is shown once, when it is made, and never stored.

use crate::error::{Result, StoreError};
use crate::rollouts::limit_param;
use crate::store::{Store, Tx};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
pub use slipway_api::flags::FlagAudit;

/// One flag's stored definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlag {
    pub key: String,
    /// JSON, as the daemon wrote it.
    pub definition: String,
    /// Unix milliseconds of the last change to this flag.
    pub changed_at: i64,
}

/// What an app's flag set shares, and its generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlagSet {
    /// JSON object: `$evaluators`.
    pub evaluators: String,
    /// JSON object: the set's metadata.
    pub metadata: String,
    /// Bumped on every change to the app's flags.
    pub generation: i64,
    pub changed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagKey {
    pub app: String,
    pub name: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// Requests per second this key may make (a token bucket of one second's worth).
    pub rate_per_sec: f64,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagRampRecord {
    pub id: i64,
    pub app: String,
    pub flag: String,
    pub variant: String,
    /// The ramp's state machine, as JSON.
    pub state: String,
    /// The flag as it was before the ramp (JSON): what a regression restores.
    pub before: String,
    pub started_at: i64,
    pub started_by: String,
    pub finished_at: Option<i64>,
    /// `completed`, `reverted`, `cancelled`.
    pub outcome: Option<String>,
    pub reason: Option<String>,
}

impl Tx<'_> {
    pub fn flag_apps(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT app FROM flag_sets ORDER BY app")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn flag_set(&self, app: &str) -> Result<Option<StoredFlagSet>> {
        Ok(self
            .conn
            .query_row(
                "SELECT evaluators, metadata, generation, changed_at FROM flag_sets WHERE app = ?1",
                [app],
                |row| {
                    Ok(StoredFlagSet {
                        evaluators: row.get(0)?,
                        metadata: row.get(1)?,
                        generation: row.get(2)?,
                        changed_at: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn flags(&self, app: &str) -> Result<Vec<StoredFlag>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, definition, changed_at FROM flags WHERE app = ?1 ORDER BY key")?;
        let rows = stmt.query_map([app], |row| {
            Ok(StoredFlag {
                key: row.get(0)?,
                definition: row.get(1)?,
                changed_at: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_flag(&self, app: &str, key: &str, definition: &str, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO flags (app, key, definition, changed_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (app, key) DO UPDATE SET definition = excluded.definition,
             changed_at = excluded.changed_at",
            params![app, key, definition, now_ms],
        )?;
        Ok(())
    }

    pub fn delete_flag(&self, app: &str, key: &str) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM flags WHERE app = ?1 AND key = ?2",
            params![app, key],
        )? > 0)
    }

    /// Records the set's shared parts and bumps its generation; returns the new generation.
    pub fn put_flag_set(
        &self,
        app: &str,
        evaluators: &str,
        metadata: &str,
        now_ms: i64,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO flag_sets (app, evaluators, metadata, generation, changed_at)
             VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT (app) DO UPDATE SET evaluators = excluded.evaluators,
             metadata = excluded.metadata, generation = generation + 1,
             changed_at = excluded.changed_at",
            params![app, evaluators, metadata, now_ms],
        )?;
        Ok(self.conn.query_row(
            "SELECT generation FROM flag_sets WHERE app = ?1",
            [app],
            |row| row.get(0),
        )?)
    }

    /// Appends an audit row; returns its number for that flag.
    #[allow(clippy::too_many_arguments)]
    pub fn add_flag_audit(
        &self,
        app: &str,
        flag: &str,
        at: i64,
        who: &str,
        action: &str,
        reason: Option<&str>,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<i64> {
        let seq: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM flag_audit WHERE app = ?1 AND flag = ?2",
            params![app, flag],
            |row| row.get(0),
        )?;
        self.conn.execute(
            "INSERT INTO flag_audit (app, flag, seq, at, who, action, reason, before, after)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![app, flag, seq, at, who, action, reason, before, after],
        )?;
        Ok(seq)
    }

    /// The newest audit rows of one flag (or of every flag of the app), newest first.
    pub fn flag_audit(
        &self,
        app: &str,
        flag: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FlagAudit>> {
        let mut stmt = self.conn.prepare(
            "SELECT app, flag, seq, at, who, action, reason, before, after FROM flag_audit
             WHERE app = ?1 AND (?2 IS NULL OR flag = ?2) ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![app, flag, limit_param(limit)], audit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn flag_audit_entry(&self, app: &str, flag: &str, seq: i64) -> Result<Option<FlagAudit>> {
        Ok(self
            .conn
            .query_row(
                "SELECT app, flag, seq, at, who, action, reason, before, after FROM flag_audit
                 WHERE app = ?1 AND flag = ?2 AND seq = ?3",
                params![app, flag, seq],
                audit_row,
            )
            .optional()?)
    }

    pub fn add_flag_key(&self, key: &FlagKey) -> Result<()> {
        let taken: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM flag_keys WHERE app = ?1 AND name = ?2)",
            params![key.app, key.name],
            |row| row.get(0),
        )?;
        if taken {
            return Err(StoreError::FlagKeyExists {
                app: key.app.clone(),
                name: key.name.clone(),
            });
        }
        self.conn.execute(
            "INSERT INTO flag_keys (app, name, hash, rate_per_sec, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                key.app,
                key.name,
                key.hash,
                key.rate_per_sec,
                key.created_at,
                key.created_by
            ],
        )?;
        Ok(())
    }

    /// Every app's keys when `app` is `None`.
    pub fn flag_keys(&self, app: Option<&str>) -> Result<Vec<FlagKey>> {
        let mut stmt = self.conn.prepare(
            "SELECT app, name, hash, rate_per_sec, created_at, created_by FROM flag_keys
             WHERE ?1 IS NULL OR app = ?1 ORDER BY app, name",
        )?;
        let rows = stmt.query_map([app], |row| {
            Ok(FlagKey {
                app: row.get(0)?,
                name: row.get(1)?,
                hash: row.get(2)?,
                rate_per_sec: row.get(3)?,
                created_at: row.get(4)?,
                created_by: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delete_flag_key(&self, app: &str, name: &str) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM flag_keys WHERE app = ?1 AND name = ?2",
            params![app, name],
        )? > 0)
    }

    /// Records a ramp; refused while the flag has another one running.
    #[allow(clippy::too_many_arguments)]
    pub fn start_flag_ramp(
        &self,
        app: &str,
        flag: &str,
        variant: &str,
        state: &str,
        before: &str,
        now_ms: i64,
        who: &str,
    ) -> Result<i64> {
        if let Some(active) = self.active_flag_ramp(app, flag)? {
            return Err(StoreError::FlagRampActive {
                app: app.to_string(),
                flag: flag.to_string(),
                id: active.id,
            });
        }
        self.conn.execute(
            "INSERT INTO flag_ramps (app, flag, variant, state, before, started_at, started_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![app, flag, variant, state, before, now_ms, who],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Saves a running ramp's state; false if it has finished meanwhile.
    pub fn update_flag_ramp(&self, id: i64, state: &str) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE flag_ramps SET state = ?2 WHERE id = ?1 AND finished_at IS NULL",
            params![id, state],
        )? > 0)
    }

    /// Ends a ramp; false if it had already ended.
    pub fn finish_flag_ramp(
        &self,
        id: i64,
        state: &str,
        outcome: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE flag_ramps SET state = ?2, outcome = ?3, reason = ?4, finished_at = ?5
             WHERE id = ?1 AND finished_at IS NULL",
            params![id, state, outcome, reason, now_ms],
        )? > 0)
    }

    pub fn active_flag_ramps(&self) -> Result<Vec<FlagRampRecord>> {
        self.ramps_where("finished_at IS NULL", params![])
    }

    pub fn active_flag_ramp(&self, app: &str, flag: &str) -> Result<Option<FlagRampRecord>> {
        Ok(self
            .ramps_where(
                "finished_at IS NULL AND app = ?1 AND flag = ?2",
                params![app, flag],
            )?
            .pop())
    }

    /// The flag's newest ramp, running or not.
    pub fn latest_flag_ramp(&self, app: &str, flag: &str) -> Result<Option<FlagRampRecord>> {
        Ok(self
            .ramps_where(
                "id = (SELECT MAX(id) FROM flag_ramps WHERE app = ?1 AND flag = ?2)",
                params![app, flag],
            )?
            .pop())
    }

    fn ramps_where(
        &self,
        condition: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<FlagRampRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, app, flag, variant, state, before, started_at, started_by, finished_at,
             outcome, reason FROM flag_ramps WHERE {condition} ORDER BY id"
        ))?;
        let rows = stmt.query_map(args, |row| {
            Ok(FlagRampRecord {
                id: row.get(0)?,
                app: row.get(1)?,
                flag: row.get(2)?,
                variant: row.get(3)?,
                state: row.get(4)?,
                before: row.get(5)?,
                started_at: row.get(6)?,
                started_by: row.get(7)?,
                finished_at: row.get(8)?,
                outcome: row.get(9)?,
                reason: row.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn audit_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FlagAudit> {
    Ok(FlagAudit {
        app: row.get(0)?,
        flag: row.get(1)?,
        seq: row.get(2)?,
        at: row.get(3)?,
        who: row.get(4)?,
        action: row.get(5)?,
        reason: row.get(6)?,
        before: row.get(7)?,
        after: row.get(8)?,
    })
}

impl Store {
    pub fn flag_apps(&self) -> Result<Vec<String>> {
        self.read(|tx| tx.flag_apps())
    }

    pub fn flag_set(&self, app: &str) -> Result<Option<StoredFlagSet>> {
        self.read(|tx| tx.flag_set(app))
    }

    pub fn flags(&self, app: &str) -> Result<Vec<StoredFlag>> {
        self.read(|tx| tx.flags(app))
    }

    pub fn flag_audit(
        &self,
        app: &str,
        flag: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FlagAudit>> {
        self.read(|tx| tx.flag_audit(app, flag, limit))
    }

    pub fn flag_keys(&self, app: Option<&str>) -> Result<Vec<FlagKey>> {
        self.read(|tx| tx.flag_keys(app))
    }

    pub fn active_flag_ramps(&self) -> Result<Vec<FlagRampRecord>> {
        self.read(|tx| tx.active_flag_ramps())
    }

    pub fn latest_flag_ramp(&self, app: &str, flag: &str) -> Result<Option<FlagRampRecord>> {
        self.read(|tx| tx.latest_flag_ramp(app, flag))
    }

    pub fn active_flag_ramp(&self, app: &str, flag: &str) -> Result<Option<FlagRampRecord>> {
        self.read(|tx| tx.active_flag_ramp(app, flag))
    }
}

#[cfg(test)]
mod tests {
    use crate::{FlagKey, Store, StoreError};

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_change_writes_the_flag_its_audit_and_a_new_generation_together() {
        let (_dir, store) = open();
        let generation = store
            .transaction(|tx| {
                tx.put_flag("shop", "f", r#"{"v":1}"#, 10)?;
                tx.add_flag_audit(
                    "shop",
                    "f",
                    10,
                    "alice",
                    "set",
                    None,
                    None,
                    Some(r#"{"v":1}"#),
                )?;
                tx.put_flag_set("shop", "{}", "{}", 10)
            })
            .unwrap();
        assert_eq!(generation, 1);
        let failed = store.transaction(|tx| {
            tx.put_flag("shop", "f", r#"{"v":2}"#, 20)?;
            tx.add_flag_audit("shop", "f", 20, "bob", "set", None, None, None)?;
            tx.put_flag_set("shop", "{}", "{}", 20)?;
            Err::<(), _>(StoreError::RolloutNotFound { id: 0 })
        });
        assert!(failed.is_err());
        assert_eq!(store.flags("shop").unwrap()[0].definition, r#"{"v":1}"#);
        assert_eq!(store.flag_set("shop").unwrap().unwrap().generation, 1);
        assert_eq!(store.flag_audit("shop", None, 10).unwrap().len(), 1);
        let seq = store
            .transaction(|tx| {
                tx.put_flag_set("shop", "{}", "{}", 30)?;
                tx.add_flag_audit("shop", "f", 30, "bob", "kill", Some("pager"), None, None)
            })
            .unwrap();
        assert_eq!(seq, 2);
        assert_eq!(store.flag_set("shop").unwrap().unwrap().generation, 2);
        let entry = store
            .read(|tx| tx.flag_audit_entry("shop", "f", 1))
            .unwrap()
            .unwrap();
        assert_eq!(
            (entry.who.as_str(), entry.after.as_deref()),
            ("alice", Some(r#"{"v":1}"#))
        );
        assert_eq!(store.flag_apps().unwrap(), vec!["shop".to_string()]);
    }

    #[test]
    fn keys_are_unique_per_app_and_name() {
        let (_dir, store) = open();
        let key = FlagKey {
            app: "shop".into(),
            name: "web".into(),
            hash: "ab".repeat(32),
            rate_per_sec: 100.0,
            created_at: 1,
            created_by: "alice".into(),
        };
        store.transaction(|tx| tx.add_flag_key(&key)).unwrap();
        let again = store.transaction(|tx| tx.add_flag_key(&key)).unwrap_err();
        assert!(matches!(again, StoreError::FlagKeyExists { .. }), "{again}");
        assert_eq!(store.flag_keys(Some("shop")).unwrap(), vec![key]);
        assert!(
            store
                .transaction(|tx| tx.delete_flag_key("shop", "web"))
                .unwrap()
        );
        assert!(store.flag_keys(None).unwrap().is_empty());
    }

    #[test]
    fn one_running_ramp_per_flag() {
        let (_dir, store) = open();
        let id = store
            .transaction(|tx| tx.start_flag_ramp("shop", "f", "on", "{}", "{}", 1, "alice"))
            .unwrap();
        let second = store
            .transaction(|tx| tx.start_flag_ramp("shop", "f", "on", "{}", "{}", 2, "bob"))
            .unwrap_err();
        assert!(
            matches!(second, StoreError::FlagRampActive { .. }),
            "{second}"
        );
        assert!(
            store
                .transaction(|tx| tx.update_flag_ramp(id, r#"{"step":1}"#))
                .unwrap()
        );
        assert_eq!(store.active_flag_ramps().unwrap().len(), 1);
        assert!(
            store
                .transaction(|tx| tx.finish_flag_ramp(id, "{}", "reverted", Some("errors"), 3))
                .unwrap()
        );
        assert!(
            !store
                .transaction(|tx| tx.update_flag_ramp(id, "{}"))
                .unwrap()
        );
        assert!(store.active_flag_ramps().unwrap().is_empty());
        let latest = store.latest_flag_ramp("shop", "f").unwrap().unwrap();
        assert_eq!(latest.outcome.as_deref(), Some("reverted"));
        store
            .transaction(|tx| tx.start_flag_ramp("shop", "f", "on", "{}", "{}", 4, "bob"))
            .unwrap();
    }
}
