//! Cron runs: one row per run of a `[cron.<name>]` job, with how it ended and the end of its output.
//! Only the newest `history` finished runs of each job are kept.

use crate::error::Result;
use crate::rollouts::limit_param;
use crate::store::{Store, Tx};
use rusqlite::params;
pub use slipway_api::CronRun;

use slipway_core::release::Version;

impl Tx<'_> {
    pub fn start_cron_run(
        &self,
        app: &str,
        job: &str,
        release: Version,
        trigger: &str,
        now_ms: i64,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO cron_runs (app, job, release, trigger, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![app, job, release, trigger, now_ms],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the end of a run and drops the oldest finished runs beyond `keep`.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_cron_run(
        &self,
        id: i64,
        outcome: &str,
        exit_code: Option<i32>,
        output: &str,
        now_ms: i64,
        keep: u32,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE cron_runs SET finished_at = ?2, outcome = ?3, exit_code = ?4, output = ?5 WHERE id = ?1",
            params![id, now_ms, outcome, exit_code, output],
        )?;
        self.conn.execute(
            "DELETE FROM cron_runs WHERE finished_at IS NOT NULL
               AND (app, job) = (SELECT app, job FROM cron_runs WHERE id = ?1)
               AND id NOT IN (SELECT id FROM cron_runs WHERE finished_at IS NOT NULL
                   AND (app, job) = (SELECT app, job FROM cron_runs WHERE id = ?1)
                   ORDER BY id DESC LIMIT ?2)",
            params![id, keep],
        )?;
        Ok(())
    }

    /// Runs that never finished (their daemon stopped): marked so, with the time found.
    pub fn close_abandoned_cron_runs(&self, now_ms: i64) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE cron_runs SET finished_at = ?1, outcome = 'abandoned: the daemon stopped during the run'
             WHERE finished_at IS NULL",
            [now_ms],
        )?)
    }

    /// The newest runs of a job (or of every job of the app), newest first.
    pub fn cron_runs(&self, app: &str, job: Option<&str>, limit: usize) -> Result<Vec<CronRun>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, app, job, release, trigger, started_at, finished_at, outcome, exit_code, output
             FROM cron_runs WHERE app = ?1 AND (?2 IS NULL OR job = ?2) ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![app, job, limit_param(limit)], |row| {
            Ok(CronRun {
                id: row.get(0)?,
                app: row.get(1)?,
                job: row.get(2)?,
                release: row.get(3)?,
                trigger: row.get(4)?,
                started_at: row.get(5)?,
                finished_at: row.get(6)?,
                outcome: row.get(7)?,
                exit_code: row.get(8)?,
                output: row.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Store {
    pub fn cron_runs(&self, app: &str, job: Option<&str>, limit: usize) -> Result<Vec<CronRun>> {
        self.read(|tx| tx.cron_runs(app, job, limit))
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn history_keeps_the_newest_finished_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        for i in 0..5 {
            store
                .transaction(|tx| {
                    let id = tx.start_cron_run("shop", "report", 1, "schedule", i)?;
                    tx.finish_cron_run(id, "succeeded", Some(0), "ok\n", i + 1, 3)
                })
                .unwrap();
        }
        let running = store
            .transaction(|tx| tx.start_cron_run("shop", "report", 1, "manual by bob", 9))
            .unwrap();
        let other = store
            .transaction(|tx| tx.start_cron_run("shop", "other", 1, "schedule", 9))
            .unwrap();
        let runs = store.cron_runs("shop", Some("report"), 100).unwrap();
        assert_eq!(runs.len(), 4, "3 finished + 1 running");
        assert_eq!(runs[0].id, running);
        assert_eq!(runs[0].outcome, None);
        assert_eq!(runs[3].started_at, 2);
        assert_eq!(
            store
                .transaction(|tx| tx.close_abandoned_cron_runs(10))
                .unwrap(),
            2
        );
        assert!(
            store
                .cron_runs("shop", None, 100)
                .unwrap()
                .iter()
                .all(|r| r.finished_at.is_some())
        );
        let _ = other;
    }
}
