//! Rollouts: the controller persists its state machine (as JSON) after every change, so a restarted
//! daemon resumes each unfinished rollout where it stopped. At most one rollout per app is unfinished at
//! a time; the database enforces it with a partial unique index.

use crate::error::{Result, StoreError};
use crate::releases::UnknownValue;
use crate::store::{Store, Tx};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use slipway_core::release::Version;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    pub id: i64,
    pub app: String,
    /// The stable release when the rollout started (none for an app's first deploy).
    pub from: Option<Version>,
    pub to: Version,
    /// The controller's state machine, opaque to the store.
    pub state: serde_json::Value,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Set, with `outcome`, once the rollout is over.
    pub finished_at: Option<i64>,
    pub outcome: Option<RolloutOutcome>,
    pub reason: Option<String>,
}

impl RolloutRecord {
    pub fn is_active(&self) -> bool {
        self.finished_at.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutOutcome {
    /// The new release became stable.
    Succeeded,
    /// It failed (probes, deadline, analysis) and the stable release kept or took back the traffic.
    Failed,
    /// An operator stopped it.
    Aborted,
}

impl RolloutOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutOutcome::Succeeded => "succeeded",
            RolloutOutcome::Failed => "failed",
            RolloutOutcome::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "succeeded" => RolloutOutcome::Succeeded,
            "failed" => RolloutOutcome::Failed,
            "aborted" => RolloutOutcome::Aborted,
            _ => return None,
        })
    }
}

const COLUMNS: &str =
    "id, app, from_version, to_version, state, started_at, finished_at, outcome, reason";

impl Tx<'_> {
    /// Starts a rollout of `app` to release `to`; fails with `RolloutInProgress` (naming the active one)
    /// if the app already has an unfinished rollout.
    pub fn start_rollout(
        &self,
        app: &str,
        from: Option<Version>,
        to: Version,
        state: &serde_json::Value,
        now_ms: i64,
    ) -> Result<RolloutRecord> {
        if let Some(active) = self.active_rollout(app)? {
            return Err(StoreError::RolloutInProgress {
                app: app.to_string(),
                id: active.id,
                to: active.to,
                started_at: active.started_at,
            });
        }
        if self.release(app, to)?.is_none() {
            return Err(StoreError::ReleaseNotFound {
                app: app.to_string(),
                version: to,
            });
        }
        self.conn.execute(
            "INSERT INTO rollouts (app, from_version, to_version, state, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![app, from, to, encode_state(state)?, now_ms],
        )?;
        Ok(RolloutRecord {
            id: self.conn.last_insert_rowid(),
            app: app.to_string(),
            from,
            to,
            state: state.clone(),
            started_at: now_ms,
            finished_at: None,
            outcome: None,
            reason: None,
        })
    }

    /// Replaces the persisted state of an unfinished rollout.
    pub fn update_rollout(&self, id: i64, state: &serde_json::Value) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE rollouts SET state = ?2 WHERE id = ?1 AND finished_at IS NULL",
            params![id, encode_state(state)?],
        )?;
        self.expect_changed(id, changed)
    }

    /// Ends an unfinished rollout. It then no longer counts as active, so a new one may start.
    pub fn finish_rollout(
        &self,
        id: i64,
        outcome: RolloutOutcome,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE rollouts SET finished_at = ?2, outcome = ?3, reason = ?4 WHERE id = ?1 AND finished_at IS NULL",
            params![id, now_ms, outcome.as_str(), reason],
        )?;
        self.expect_changed(id, changed)
    }

    /// Every unfinished rollout, oldest first: what a starting daemon must resume.
    pub fn active_rollouts(&self) -> Result<Vec<RolloutRecord>> {
        self.query_rollouts(
            &format!("SELECT {COLUMNS} FROM rollouts WHERE finished_at IS NULL ORDER BY id"),
            params![],
        )
    }

    pub fn active_rollout(&self, app: &str) -> Result<Option<RolloutRecord>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM rollouts WHERE app = ?1 AND finished_at IS NULL"
            ))?
            .query_row([app], read_rollout)
            .optional()?
            .transpose()
    }

    pub fn rollout(&self, id: i64) -> Result<Option<RolloutRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM rollouts WHERE id = ?1"),
                [id],
                read_rollout,
            )
            .optional()?
            .transpose()
    }

    /// The app's most recent rollouts, newest first.
    pub fn rollouts(&self, app: &str, limit: usize) -> Result<Vec<RolloutRecord>> {
        self.query_rollouts(
            &format!("SELECT {COLUMNS} FROM rollouts WHERE app = ?1 ORDER BY id DESC LIMIT ?2"),
            params![app, limit_param(limit)],
        )
    }

    fn query_rollouts(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<RolloutRecord>> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(params, read_rollout)?;
        rows.map(|row| row?).collect()
    }

    fn expect_changed(&self, id: i64, changed: usize) -> Result<()> {
        if changed > 0 {
            return Ok(());
        }
        match self.rollout(id)? {
            Some(_) => Err(StoreError::RolloutFinished { id }),
            None => Err(StoreError::RolloutNotFound { id }),
        }
    }
}

/// SQLite's LIMIT is signed; anything beyond i64 means "all".
pub(crate) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn encode_state(state: &serde_json::Value) -> Result<String> {
    serde_json::to_string(state).map_err(|e| StoreError::corrupt("rollout state", e))
}

fn read_rollout(row: &Row<'_>) -> rusqlite::Result<Result<RolloutRecord>> {
    let state: String = row.get("state")?;
    let outcome: Option<String> = row.get("outcome")?;
    Ok((|| -> Result<RolloutRecord> {
        Ok(RolloutRecord {
            id: row.get("id")?,
            app: row.get("app")?,
            from: row.get("from_version")?,
            to: row.get("to_version")?,
            state: serde_json::from_str(&state)
                .map_err(|e| StoreError::corrupt("rollout state", e))?,
            started_at: row.get("started_at")?,
            finished_at: row.get("finished_at")?,
            outcome: outcome
                .map(|s| {
                    RolloutOutcome::parse(&s)
                        .ok_or_else(|| StoreError::corrupt("rollout outcome", UnknownValue(s)))
                })
                .transpose()?,
            reason: row.get("reason")?,
        })
    })())
}

impl Store {
    /// Starts a rollout; errors with `RolloutInProgress` if one is active for `app`.
    pub fn start_rollout(
        &self,
        app: &str,
        from: Option<Version>,
        to: Version,
        state: &serde_json::Value,
        now_ms: i64,
    ) -> Result<RolloutRecord> {
        self.transaction(|tx| tx.start_rollout(app, from, to, state, now_ms))
    }

    pub fn update_rollout(&self, id: i64, state: &serde_json::Value) -> Result<()> {
        self.transaction(|tx| tx.update_rollout(id, state))
    }

    pub fn finish_rollout(
        &self,
        id: i64,
        outcome: RolloutOutcome,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        self.transaction(|tx| tx.finish_rollout(id, outcome, reason, now_ms))
    }

    pub fn active_rollouts(&self) -> Result<Vec<RolloutRecord>> {
        self.read(|tx| tx.active_rollouts())
    }

    pub fn active_rollout(&self, app: &str) -> Result<Option<RolloutRecord>> {
        self.read(|tx| tx.active_rollout(app))
    }

    pub fn rollout(&self, id: i64) -> Result<Option<RolloutRecord>> {
        self.read(|tx| tx.rollout(id))
    }

    /// The app's most recent rollouts, newest first.
    pub fn rollouts(&self, app: &str, limit: usize) -> Result<Vec<RolloutRecord>> {
        self.read(|tx| tx.rollouts(app, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{new_release, open_temp};
    use serde_json::json;

    #[test]
    fn one_active_rollout_per_app() {
        let (_dir, store) = open_temp();
        store.create_release(new_release("web")).unwrap();
        store.create_release(new_release("web")).unwrap();
        store.create_release(new_release("api")).unwrap();
        let first = store
            .start_rollout("web", Some(1), 2, &json!({"phase": "starting"}), 10)
            .unwrap();
        let err = store
            .start_rollout("web", Some(1), 2, &json!({}), 20)
            .unwrap_err();
        match err {
            StoreError::RolloutInProgress {
                app,
                id,
                to,
                started_at,
            } => {
                assert_eq!((app.as_str(), id, to, started_at), ("web", first.id, 2, 10));
            }
            other => panic!("expected RolloutInProgress, got {other}"),
        }
        // Another app is independent.
        store.start_rollout("api", None, 1, &json!({}), 30).unwrap();
        assert_eq!(store.active_rollouts().unwrap().len(), 2);
    }

    #[test]
    fn finished_rollout_allows_a_new_one_and_is_frozen() {
        let (_dir, store) = open_temp();
        store.create_release(new_release("web")).unwrap();
        let first = store
            .start_rollout("web", None, 1, &json!({"step": 0}), 10)
            .unwrap();
        store.update_rollout(first.id, &json!({"step": 3})).unwrap();
        assert_eq!(
            store.active_rollout("web").unwrap().unwrap().state,
            json!({"step": 3})
        );
        store
            .finish_rollout(
                first.id,
                RolloutOutcome::Failed,
                Some("deadline exceeded"),
                50,
            )
            .unwrap();
        assert!(store.active_rollout("web").unwrap().is_none());
        assert!(matches!(
            store.update_rollout(first.id, &json!({})),
            Err(StoreError::RolloutFinished { .. })
        ));
        assert!(matches!(
            store.finish_rollout(first.id, RolloutOutcome::Aborted, None, 60),
            Err(StoreError::RolloutFinished { .. })
        ));
        assert!(matches!(
            store.update_rollout(999, &json!({})),
            Err(StoreError::RolloutNotFound { id: 999 })
        ));

        let second = store.start_rollout("web", None, 1, &json!({}), 70).unwrap();
        let history = store.rollouts("web", 10).unwrap();
        assert_eq!(
            history.iter().map(|r| r.id).collect::<Vec<_>>(),
            [second.id, first.id]
        );
        let done = &history[1];
        assert_eq!(done.outcome, Some(RolloutOutcome::Failed));
        assert_eq!(done.finished_at, Some(50));
        assert_eq!(done.reason.as_deref(), Some("deadline exceeded"));
        assert!(!done.is_active());
        assert_eq!(store.rollouts("web", 1).unwrap().len(), 1);
    }

    #[test]
    fn rollout_needs_an_existing_release() {
        let (_dir, store) = open_temp();
        let err = store
            .start_rollout("web", None, 1, &json!({}), 0)
            .unwrap_err();
        assert!(matches!(err, StoreError::ReleaseNotFound { .. }), "{err}");
    }
}
