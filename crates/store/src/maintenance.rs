//! Apps in maintenance (`slipway maintenance on`): kept here so a restarted or upgraded daemon keeps
//! holding their requests until someone says `slipway maintenance off`.

use crate::error::Result;
use crate::store::{Store, Tx};
use rusqlite::{OptionalExtension, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceRecord {
    pub app: String,
    /// Unix milliseconds.
    pub since: i64,
    pub hold_ms: u64,
    pub retry_after: u64,
    /// The page's HTML, if the app has its own.
    pub page: Option<String>,
    pub reason: Option<String>,
    pub set_by: String,
}

impl Tx<'_> {
    pub fn set_maintenance(&self, m: &MaintenanceRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO maintenance (app, since, hold_ms, retry_after, page, reason, set_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (app) DO UPDATE SET since = excluded.since, hold_ms = excluded.hold_ms,
                 retry_after = excluded.retry_after, page = excluded.page, reason = excluded.reason,
                 set_by = excluded.set_by",
            params![
                m.app,
                m.since,
                m.hold_ms as i64,
                m.retry_after as i64,
                m.page,
                m.reason,
                m.set_by
            ],
        )?;
        Ok(())
    }

    /// Ends an app's maintenance; says whether it was in maintenance.
    pub fn clear_maintenance(&self, app: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM maintenance WHERE app = ?1", [app])?
            > 0)
    }

    pub fn maintenance(&self, app: &str) -> Result<Option<MaintenanceRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT app, since, hold_ms, retry_after, page, reason, set_by FROM maintenance
                 WHERE app = ?1",
                [app],
                record,
            )
            .optional()?)
    }

    pub fn all_maintenance(&self) -> Result<Vec<MaintenanceRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT app, since, hold_ms, retry_after, page, reason, set_by FROM maintenance
             ORDER BY app",
        )?;
        let rows = stmt.query_map([], record)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<MaintenanceRecord> {
    Ok(MaintenanceRecord {
        app: row.get(0)?,
        since: row.get(1)?,
        hold_ms: row.get::<_, i64>(2)?.max(0) as u64,
        retry_after: row.get::<_, i64>(3)?.max(0) as u64,
        page: row.get(4)?,
        reason: row.get(5)?,
        set_by: row.get(6)?,
    })
}

impl Store {
    pub fn set_maintenance(&self, m: &MaintenanceRecord) -> Result<()> {
        self.transaction(|tx| tx.set_maintenance(m))
    }

    pub fn clear_maintenance(&self, app: &str) -> Result<bool> {
        self.transaction(|tx| tx.clear_maintenance(app))
    }

    pub fn all_maintenance(&self) -> Result<Vec<MaintenanceRecord>> {
        self.read(|tx| tx.all_maintenance())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replace_list_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let mut m = MaintenanceRecord {
            app: "shop".into(),
            since: 5,
            hold_ms: 30_000,
            retry_after: 60,
            page: Some("<h1>back soon</h1>".into()),
            reason: Some("migrating orders".into()),
            set_by: "alice".into(),
        };
        store.set_maintenance(&m).unwrap();
        m.hold_ms = 0;
        store.set_maintenance(&m).unwrap();
        assert_eq!(store.all_maintenance().unwrap(), [m]);
        assert!(store.clear_maintenance("shop").unwrap());
        assert!(!store.clear_maintenance("shop").unwrap());
        assert!(store.all_maintenance().unwrap().is_empty());
    }
}
