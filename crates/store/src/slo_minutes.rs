//! Each app's traffic per minute, for its SLO's error budget: a 30-day budget must survive a restart.
//! The daemon adds what it counted since its last write into the minute's row (an upsert, so writing
//! the same minute twice adds up) and deletes the rows older than the app's window.

use crate::error::Result;
use crate::store::{Store, Tx};
use rusqlite::params;

/// One minute of an app's traffic (`minute`: minutes since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SloMinute {
    pub minute: u32,
    pub requests: u64,
    pub errors: u64,
    pub slow: u64,
}

impl Tx<'_> {
    /// Adds these counts to their minutes' rows.
    pub fn add_slo_minutes(&self, app: &str, minutes: &[SloMinute]) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO slo_minutes (app, minute, requests, errors, slow) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (app, minute) DO UPDATE SET requests = requests + excluded.requests,
                 errors = errors + excluded.errors, slow = slow + excluded.slow",
        )?;
        for m in minutes {
            stmt.execute(params![
                app,
                m.minute,
                m.requests as i64,
                m.errors as i64,
                m.slow as i64
            ])?;
        }
        Ok(())
    }

    /// Deletes the app's minutes before `minute`; says how many.
    pub fn prune_slo_minutes(&self, app: &str, minute: u32) -> Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM slo_minutes WHERE app = ?1 AND minute < ?2",
            params![app, minute],
        )?)
    }

    /// The app's minutes from `minute` on, oldest first.
    pub fn slo_minutes(&self, app: &str, minute: u32) -> Result<Vec<SloMinute>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT minute, requests, errors, slow FROM slo_minutes WHERE app = ?1 AND minute >= ?2
             ORDER BY minute",
        )?;
        let rows = stmt.query_map(params![app, minute], |row| {
            Ok(SloMinute {
                minute: row.get(0)?,
                requests: row.get::<_, i64>(1)?.max(0) as u64,
                errors: row.get::<_, i64>(2)?.max(0) as u64,
                slow: row.get::<_, i64>(3)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Store {
    /// Adds the counts, then prunes the minutes before `keep_from`, in one transaction.
    pub fn record_slo_minutes(
        &self,
        app: &str,
        minutes: &[SloMinute],
        keep_from: u32,
    ) -> Result<()> {
        self.transaction(|tx| {
            tx.add_slo_minutes(app, minutes)?;
            tx.prune_slo_minutes(app, keep_from)?;
            Ok(())
        })
    }

    pub fn slo_minutes(&self, app: &str, from: u32) -> Result<Vec<SloMinute>> {
        self.read(|tx| tx.slo_minutes(app, from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_add_up_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let m = |minute, requests, errors, slow| SloMinute {
            minute,
            requests,
            errors,
            slow,
        };
        store
            .record_slo_minutes("shop", &[m(10, 100, 1, 2), m(11, 5, 0, 0)], 0)
            .unwrap();
        store
            .record_slo_minutes("shop", &[m(11, 5, 5, 1)], 0)
            .unwrap();
        store
            .record_slo_minutes("blog", &[m(11, 1, 0, 0)], 0)
            .unwrap();
        assert_eq!(
            store.slo_minutes("shop", 0).unwrap(),
            [m(10, 100, 1, 2), m(11, 10, 5, 1)]
        );
        store.record_slo_minutes("shop", &[], 11).unwrap();
        assert_eq!(store.slo_minutes("shop", 0).unwrap(), [m(11, 10, 5, 1)]);
        assert_eq!(store.slo_minutes("shop", 12).unwrap(), []);
        assert_eq!(store.slo_minutes("blog", 0).unwrap().len(), 1, "per app");
    }
}
