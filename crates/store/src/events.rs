//! The event journal: append-only, one line per thing that happened (deploy started, instance ready,
//! rollout failed…). Ids only grow, so a reader follows it with `after_id` like a cursor.

use crate::error::Result;
use crate::rollouts::limit_param;
use crate::store::{Store, Tx};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use slipway_core::release::Version;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub id: i64,
    pub app: String,
    #[schema(value_type = Option<u64>)]
    pub release: Option<Version>,
    /// A short machine-readable kind, e.g. `rollout.started`.
    pub kind: String,
    pub message: String,
    /// Unix milliseconds.
    pub at: i64,
}

impl Tx<'_> {
    /// Appends an event and returns its id.
    pub fn add_event(
        &self,
        app: &str,
        release: Option<Version>,
        kind: &str,
        message: &str,
        now_ms: i64,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO events (app, release, kind, message, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![app, release, kind, message, now_ms],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Events with id greater than `after_id` (of one app, or all), oldest first, at most `limit`.
    pub fn events(&self, app: Option<&str>, after_id: i64, limit: usize) -> Result<Vec<Event>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, app, release, kind, message, at FROM events
             WHERE id > ?1 AND (?2 IS NULL OR app = ?2) ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![after_id, app, limit_param(limit)], |row| {
            Ok(Event {
                id: row.get(0)?,
                app: row.get(1)?,
                release: row.get(2)?,
                kind: row.get(3)?,
                message: row.get(4)?,
                at: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest `limit` events of one app, newest first (for a dashboard's "what just happened").
    pub fn latest_events(&self, app: &str, limit: usize) -> Result<Vec<Event>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, app, release, kind, message, at FROM events
             WHERE app = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![app, limit_param(limit)], |row| {
            Ok(Event {
                id: row.get(0)?,
                app: row.get(1)?,
                release: row.get(2)?,
                kind: row.get(3)?,
                message: row.get(4)?,
                at: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Store {
    /// The newest `limit` events of one app, newest first.
    pub fn latest_events(&self, app: &str, limit: usize) -> Result<Vec<Event>> {
        self.read(|tx| tx.latest_events(app, limit))
    }

    /// Appends an event and returns its id.
    pub fn add_event(
        &self,
        app: &str,
        release: Option<Version>,
        kind: &str,
        message: &str,
        now_ms: i64,
    ) -> Result<i64> {
        self.transaction(|tx| tx.add_event(app, release, kind, message, now_ms))
    }

    /// Events with id greater than `after_id` (of one app, or all), oldest first, at most `limit`.
    pub fn events(&self, app: Option<&str>, after_id: i64, limit: usize) -> Result<Vec<Event>> {
        self.read(|tx| tx.events(app, after_id, limit))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::open_temp;

    #[test]
    fn events_follow_like_a_cursor() {
        let (_dir, store) = open_temp();
        let a = store
            .add_event("web", Some(1), "rollout.started", "deploying v1", 1)
            .unwrap();
        let b = store
            .add_event("api", None, "app.created", "new app", 2)
            .unwrap();
        let c = store
            .add_event("web", Some(1), "rollout.succeeded", "v1 is stable", 3)
            .unwrap();
        assert!(a < b && b < c);

        let all = store.events(None, 0, 100).unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [a, b, c]);
        let web = store.events(Some("web"), 0, 100).unwrap();
        assert_eq!(
            web.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["rollout.started", "rollout.succeeded"]
        );
        let after = store.events(Some("web"), a, 100).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].release, Some(1));
        assert_eq!(after[0].at, 3);
        assert_eq!(store.events(None, 0, 2).unwrap().len(), 2);
    }
}
