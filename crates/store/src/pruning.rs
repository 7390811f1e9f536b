//! Pruning the history that grows with every deploy: the event journal, finished rollouts, the flag
//! audit and finished flag ramps. Which rows may go is the caller's policy (a [`Cut`]); this module
//! only deletes, and at most `batch` rows per call in one short transaction, the oldest first — a big
//! backlog goes in many small steps, and requests waiting for the database get in between.
//!
//! Releases are never pruned: they are the history (`slipway history`), and each is small.

use crate::error::Result;
use crate::rollouts::limit_param;
use crate::store::{Store, Tx};
use rusqlite::params;
use slipway_core::release::Version;

/// Which rows of one app's table may go: those older than `before_ms`, and those older than the
/// row `below_id` (the oldest of the newest N the policy keeps; `None`: fewer rows than that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub before_ms: i64,
    pub below_id: Option<i64>,
}

/// Which events a call is about: the audit trail (`kind = 'audit'`: who asked for what) is kept
/// under a policy of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKinds {
    Audit,
    NotAudit,
    All,
}

impl EventKinds {
    fn sql(self) -> &'static str {
        match self {
            EventKinds::Audit => "kind = 'audit'",
            EventKinds::NotAudit => "kind <> 'audit'",
            EventKinds::All => "1",
        }
    }
}

impl Tx<'_> {
    /// Every app with history in a table that is pruned (including the daemon's own journal).
    pub fn history_apps(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT app FROM events UNION SELECT app FROM rollouts
             UNION SELECT app FROM flag_audit UNION SELECT app FROM flag_ramps ORDER BY app",
        )?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The id of the `keep`-th newest event of these kinds of one app: older ones are beyond `keep`.
    pub fn events_floor(&self, app: &str, kinds: EventKinds, keep: u64) -> Result<Option<i64>> {
        self.floor(
            &format!(
                "SELECT id FROM events WHERE app = ?1 AND {} ORDER BY id DESC LIMIT 1 OFFSET ?2",
                kinds.sql()
            ),
            app,
            keep,
        )
    }

    /// Deletes up to `batch` of the oldest events of these kinds of one app that the cut lets go,
    /// never one at or after `protect_from_ms` (e.g. since the current rollout started).
    pub fn prune_events(
        &self,
        app: &str,
        kinds: EventKinds,
        cut: Cut,
        protect_from_ms: Option<i64>,
        batch: usize,
    ) -> Result<usize> {
        Ok(self.conn.execute(
            &format!(
                "DELETE FROM events WHERE id IN (
                   SELECT id FROM events WHERE app = ?1 AND {}
                     AND (at < ?2 OR id < ?3) AND (?4 IS NULL OR at < ?4)
                   ORDER BY id LIMIT ?5)",
                kinds.sql()
            ),
            params![
                app,
                cut.before_ms,
                cut.below_id,
                protect_from_ms,
                limit_param(batch)
            ],
        )?)
    }

    /// The id of the `keep`-th newest finished rollout of one app.
    pub fn rollouts_floor(&self, app: &str, keep: u64) -> Result<Option<i64>> {
        self.floor(
            "SELECT id FROM rollouts WHERE app = ?1 AND finished_at IS NOT NULL
             ORDER BY id DESC LIMIT 1 OFFSET ?2",
            app,
            keep,
        )
    }

    /// Deletes up to `batch` of the oldest finished rollouts of one app that the cut lets go (by when
    /// they finished), never one to a version in `protect` (the stable release, its rollback
    /// target…). An unfinished rollout is never touched.
    pub fn prune_rollouts(
        &self,
        app: &str,
        cut: Cut,
        protect: &[Version],
        batch: usize,
    ) -> Result<usize> {
        let protect = serde_json::to_string(protect).unwrap_or_else(|_| "[]".into());
        Ok(self.conn.execute(
            "DELETE FROM rollouts WHERE id IN (
               SELECT id FROM rollouts WHERE app = ?1 AND finished_at IS NOT NULL
                 AND (finished_at < ?2 OR id < ?3)
                 AND to_version NOT IN (SELECT value FROM json_each(?4))
               ORDER BY id LIMIT ?5)",
            params![
                app,
                cut.before_ms,
                cut.below_id,
                protect,
                limit_param(batch)
            ],
        )?)
    }

    /// The id of the `keep`-th newest flag audit entry of one app.
    pub fn flag_audit_floor(&self, app: &str, keep: u64) -> Result<Option<i64>> {
        self.floor(
            "SELECT id FROM flag_audit WHERE app = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
            app,
            keep,
        )
    }

    /// Deletes up to `batch` of the oldest flag audit entries of one app that the cut lets go, never
    /// a flag's newest entry (what `flags history` and `revert` start from).
    pub fn prune_flag_audit(&self, app: &str, cut: Cut, batch: usize) -> Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM flag_audit WHERE id IN (
               SELECT id FROM flag_audit WHERE app = ?1 AND (at < ?2 OR id < ?3)
                 AND id NOT IN (SELECT MAX(id) FROM flag_audit WHERE app = ?1 GROUP BY flag)
               ORDER BY id LIMIT ?4)",
            params![app, cut.before_ms, cut.below_id, limit_param(batch)],
        )?)
    }

    /// The id of the `keep`-th newest finished flag ramp of one app.
    pub fn flag_ramps_floor(&self, app: &str, keep: u64) -> Result<Option<i64>> {
        self.floor(
            "SELECT id FROM flag_ramps WHERE app = ?1 AND finished_at IS NOT NULL
             ORDER BY id DESC LIMIT 1 OFFSET ?2",
            app,
            keep,
        )
    }

    /// Deletes up to `batch` of the oldest finished flag ramps of one app that the cut lets go (by
    /// when they finished), never a running one nor a flag's newest (the dashboard shows it).
    pub fn prune_flag_ramps(&self, app: &str, cut: Cut, batch: usize) -> Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM flag_ramps WHERE id IN (
               SELECT id FROM flag_ramps WHERE app = ?1 AND finished_at IS NOT NULL
                 AND (finished_at < ?2 OR id < ?3)
                 AND id NOT IN (SELECT MAX(id) FROM flag_ramps WHERE app = ?1 GROUP BY flag)
               ORDER BY id LIMIT ?4)",
            params![app, cut.before_ms, cut.below_id, limit_param(batch)],
        )?)
    }

    /// Row counts of the pruned tables (for `/metrics` and benchmarks).
    pub fn history_rows(&self) -> Result<HistoryRows> {
        let count = |table: &str| -> Result<u64> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                    row.get::<_, i64>(0)
                })? as u64)
        };
        Ok(HistoryRows {
            events: count("events")?,
            rollouts: count("rollouts")?,
            flag_audit: count("flag_audit")?,
            flag_ramps: count("flag_ramps")?,
        })
    }

    /// How many rows each pruned table holds that pruning may touch, and the oldest one's time: a
    /// table within every limit has nothing to prune (four queries instead of a round over every app).
    pub fn history_extent(&self) -> Result<HistoryExtent> {
        let extent = |sql: &str| -> Result<TableExtent> {
            Ok(self.conn.query_row(sql, [], |row| {
                Ok(TableExtent {
                    rows: row.get::<_, i64>(0)? as u64,
                    oldest_ms: row.get(1)?,
                })
            })?)
        };
        Ok(HistoryExtent {
            events: extent("SELECT COUNT(*), MIN(at) FROM events")?,
            rollouts: extent(
                "SELECT COUNT(*), MIN(finished_at) FROM rollouts WHERE finished_at IS NOT NULL",
            )?,
            flag_audit: extent("SELECT COUNT(*), MIN(at) FROM flag_audit")?,
            flag_ramps: extent(
                "SELECT COUNT(*), MIN(finished_at) FROM flag_ramps WHERE finished_at IS NOT NULL",
            )?,
        })
    }

    /// `keep` = 0 keeps none: every row is beyond it.
    fn floor(&self, sql: &str, app: &str, keep: u64) -> Result<Option<i64>> {
        if keep == 0 {
            return Ok(Some(i64::MAX));
        }
        let offset = i64::try_from(keep - 1).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(params![app, offset])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }
}

/// How many rows the pruned tables hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRows {
    pub events: u64,
    pub rollouts: u64,
    pub flag_audit: u64,
    pub flag_ramps: u64,
}

/// Rows pruning may touch in one table, over every app: how many, and the oldest one's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableExtent {
    pub rows: u64,
    pub oldest_ms: Option<i64>,
}

/// [`TableExtent`] of each pruned table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryExtent {
    pub events: TableExtent,
    /// Finished rollouts only.
    pub rollouts: TableExtent,
    pub flag_audit: TableExtent,
    /// Finished flag ramps only.
    pub flag_ramps: TableExtent,
}

impl Store {
    /// Read-only look-ups for a pruning round, outside any write transaction.
    pub fn history_apps(&self) -> Result<Vec<String>> {
        self.read(|tx| tx.history_apps())
    }

    pub fn history_rows(&self) -> Result<HistoryRows> {
        self.read(|tx| tx.history_rows())
    }

    pub fn history_extent(&self) -> Result<HistoryExtent> {
        self.read(|tx| tx.history_extent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RolloutOutcome;
    use crate::test_support::{new_release, open_temp};
    use serde_json::json;

    /// Prunes in batches of 2 until nothing more goes; returns how many went.
    fn drain(mut step: impl FnMut() -> usize) -> usize {
        let mut total = 0;
        loop {
            let n = step();
            assert!(n <= 2);
            total += n;
            if n < 2 {
                return total;
            }
        }
    }

    #[test]
    fn events_go_by_count_and_by_age_but_not_those_protected() {
        let (_dir, store) = open_temp();
        for at in 1..=10 {
            store.add_event("web", None, "note", "m", at * 100).unwrap();
            store
                .add_event("web", None, "audit", "asked", at * 100)
                .unwrap();
        }
        store.add_event("api", None, "note", "m", 50).unwrap();
        assert_eq!(store.history_apps().unwrap(), ["api", "web"]);

        // Keep the newest 4 non-audit events of web; nothing is old enough to go by age.
        let floor = store
            .transaction(|tx| tx.events_floor("web", EventKinds::NotAudit, 4))
            .unwrap();
        let cut = Cut {
            before_ms: 0,
            below_id: floor,
        };
        let gone = drain(|| {
            store
                .transaction(|tx| tx.prune_events("web", EventKinds::NotAudit, cut, None, 2))
                .unwrap()
        });
        assert_eq!(gone, 6);
        let left = store.events(Some("web"), 0, 100).unwrap();
        assert_eq!(left.iter().filter(|e| e.kind == "note").count(), 4);
        assert_eq!(left.iter().filter(|e| e.kind == "audit").count(), 10);
        assert_eq!(store.events(Some("api"), 0, 100).unwrap().len(), 1);

        // By age: audit older than 500 ms goes, except what is protected from 300 ms on.
        let cut = Cut {
            before_ms: 500,
            below_id: None,
        };
        let gone = drain(|| {
            store
                .transaction(|tx| tx.prune_events("web", EventKinds::Audit, cut, Some(300), 2))
                .unwrap()
        });
        assert_eq!(gone, 2, "audit at 100 and 200 ms");
        // Fewer events than `keep`: no floor.
        assert_eq!(
            store
                .transaction(|tx| tx.events_floor("api", EventKinds::All, 5))
                .unwrap(),
            None
        );
    }

    #[test]
    fn rollouts_to_protected_versions_and_unfinished_ones_stay() {
        let (_dir, store) = open_temp();
        for v in 1..=5u64 {
            store.create_release(new_release("web")).unwrap();
            let r = store
                .start_rollout("web", v.checked_sub(1).filter(|p| *p > 0), v, &json!({}), 1)
                .unwrap();
            if v < 5 {
                store
                    .finish_rollout(r.id, RolloutOutcome::Succeeded, None, v as i64 * 10)
                    .unwrap();
            }
        }
        // Keep none by count; v3 and v4 are protected; v5's rollout is running.
        let cut = Cut {
            before_ms: i64::MAX,
            below_id: store.transaction(|tx| tx.rollouts_floor("web", 0)).unwrap(),
        };
        let gone = drain(|| {
            store
                .transaction(|tx| tx.prune_rollouts("web", cut, &[3, 4], 2))
                .unwrap()
        });
        assert_eq!(gone, 2);
        let left: Vec<u64> = store
            .rollouts("web", 10)
            .unwrap()
            .iter()
            .map(|r| r.to)
            .collect();
        assert_eq!(left, [5, 4, 3]);
    }

    #[test]
    fn a_flags_newest_audit_entry_stays() {
        let (_dir, store) = open_temp();
        store
            .transaction(|tx| {
                for seq in 1..=5 {
                    tx.add_flag_audit("web", "a", seq, "op", "set", None, None, None)?;
                }
                tx.add_flag_audit("web", "b", 1, "op", "set", None, None, None)?;
                Ok(())
            })
            .unwrap();
        let cut = Cut {
            before_ms: i64::MAX,
            below_id: None,
        };
        let gone = drain(|| {
            store
                .transaction(|tx| tx.prune_flag_audit("web", cut, 2))
                .unwrap()
        });
        assert_eq!(gone, 4);
        let left = store.flag_audit("web", None, 10).unwrap();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(store.history_rows().unwrap().flag_audit, 2);
    }
}
