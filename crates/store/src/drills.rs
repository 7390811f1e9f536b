//! Drill reports (`slipway drill`, `[drill] schedule`): what each drill found, as the daemon computed it
//! (JSON; the store never reads inside it). The newest [`KEPT`] per app are kept.

use crate::error::Result;
use crate::store::{Store, Tx};
use rusqlite::params;

/// Drill reports kept per app: a weekly drill's two years.
pub const KEPT: usize = 100;

impl Tx<'_> {
    /// Records (or replaces) the report of `app`'s drill `release`, and drops the oldest beyond [`KEPT`].
    pub fn save_drill(
        &self,
        app: &str,
        release: u64,
        at: i64,
        report: &serde_json::Value,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO drills (app, release, at, report) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (app, release) DO UPDATE SET at = excluded.at, report = excluded.report",
            params![app, release as i64, at, report.to_string()],
        )?;
        self.conn.execute(
            "DELETE FROM drills WHERE app = ?1 AND release NOT IN
               (SELECT release FROM drills WHERE app = ?1 ORDER BY release DESC LIMIT ?2)",
            params![app, KEPT as i64],
        )?;
        Ok(())
    }

    /// `app`'s newest drill reports, newest first, at most `limit`.
    pub fn drills(&self, app: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        let mut stmt = self
            .conn
            .prepare("SELECT report FROM drills WHERE app = ?1 ORDER BY release DESC LIMIT ?2")?;
        let rows = stmt.query_map(params![app, limit.min(KEPT) as i64], |row| {
            row.get::<_, String>(0)
        })?;
        let mut reports = Vec::new();
        for row in rows {
            // A report this daemon cannot read is left out by the daemon, not an error here.
            reports.push(serde_json::from_str(&row?).unwrap_or(serde_json::Value::Null));
        }
        Ok(reports)
    }
}

impl Store {
    pub fn save_drill(
        &self,
        app: &str,
        release: u64,
        at: i64,
        report: &serde_json::Value,
    ) -> Result<()> {
        self.transaction(|tx| tx.save_drill(app, release, at, report))
    }

    pub fn drills(&self, app: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        self.read(|tx| tx.drills(app, limit))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::open_temp;

    #[test]
    fn reports_are_listed_newest_first_replaced_by_release_and_bounded() {
        let (_dir, store) = open_temp();
        for release in 1..=(super::KEPT as u64 + 5) {
            let report = serde_json::json!({ "release": release, "passed": true });
            store.save_drill("shop", release, 10, &report).unwrap();
        }
        let again = serde_json::json!({ "release": 105, "passed": false });
        store.save_drill("shop", 105, 20, &again).unwrap();
        let all = store.drills("shop", 1_000).unwrap();
        assert_eq!(all.len(), super::KEPT, "the oldest dropped");
        assert_eq!(all[0], again, "newest first, replaced");
        assert_eq!(all.last().unwrap()["release"], 6);
        assert_eq!(store.drills("shop", 2).unwrap().len(), 2);
        assert!(store.drills("other", 10).unwrap().is_empty());
    }
}
