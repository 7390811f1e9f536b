//! Opening the database, its schema migrations, and the transaction wrapper every write goes through.
//!
//! All operations live on [`Tx`] (a borrowed connection, inside a transaction for writes); the
//! [`Store`] methods of the other modules are one-line wrappers that run one operation in its own
//! transaction. [`Store::transaction`] runs several in one, so a multi-step change is atomic.

use crate::error::{Result, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Each entry is one schema version; `PRAGMA user_version` records how many were applied.
/// Never edit an entry once released: add a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE releases (
        app         TEXT    NOT NULL,
        version     INTEGER NOT NULL CHECK (version > 0),
        label       TEXT,
        artifact    TEXT    NOT NULL,
        spec        TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        created_by  TEXT    NOT NULL,
        message     TEXT,
        rollback_of INTEGER,
        status      TEXT    NOT NULL,
        reason      TEXT,
        PRIMARY KEY (app, version)
    ) WITHOUT ROWID;

    CREATE TABLE stable (
        app     TEXT    PRIMARY KEY,
        version INTEGER NOT NULL,
        FOREIGN KEY (app, version) REFERENCES releases (app, version)
    ) WITHOUT ROWID;

    CREATE TABLE rollouts (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        app          TEXT    NOT NULL,
        from_version INTEGER,
        to_version   INTEGER NOT NULL,
        state        TEXT    NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        outcome      TEXT,
        reason       TEXT,
        FOREIGN KEY (app, to_version) REFERENCES releases (app, version)
    );
    -- At most one unfinished rollout per app, enforced by the database itself.
    CREATE UNIQUE INDEX rollouts_one_active ON rollouts (app) WHERE finished_at IS NULL;
    CREATE INDEX rollouts_by_app ON rollouts (app, id);

    CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        app     TEXT    NOT NULL,
        release INTEGER,
        kind    TEXT    NOT NULL,
        message TEXT    NOT NULL,
        at      INTEGER NOT NULL
    );
    CREATE INDEX events_by_app ON events (app, id);

    CREATE TABLE locks (
        name      TEXT    PRIMARY KEY,
        holder    TEXT    NOT NULL,
        daemon_id TEXT    NOT NULL,
        since_ms  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: the process model: config vars and formation set from the CLI, cron runs.
    r#"
    CREATE TABLE config_vars (
        app    TEXT    NOT NULL,
        key    TEXT    NOT NULL,
        value  TEXT    NOT NULL,
        set_at INTEGER NOT NULL,
        set_by TEXT    NOT NULL,
        PRIMARY KEY (app, key)
    ) WITHOUT ROWID;

    CREATE TABLE formation (
        app      TEXT    NOT NULL,
        process  TEXT    NOT NULL,
        replicas INTEGER NOT NULL CHECK (replicas >= 0),
        PRIMARY KEY (app, process)
    ) WITHOUT ROWID;

    CREATE TABLE cron_runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        app         TEXT    NOT NULL,
        job         TEXT    NOT NULL,
        release     INTEGER NOT NULL,
        trigger     TEXT    NOT NULL,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        outcome     TEXT,
        exit_code   INTEGER,
        output      TEXT
    );
    CREATE INDEX cron_runs_by_job ON cron_runs (app, job, id);
    "#,
    // 3: API tokens with roles (issue 7). Only a SHA-256 of each token is kept, never the token.
    r#"
    CREATE TABLE api_tokens (
        name         TEXT    PRIMARY KEY,
        role         TEXT    NOT NULL CHECK (role IN ('viewer', 'deployer', 'admin')),
        hash         TEXT    NOT NULL UNIQUE,
        created_at   INTEGER NOT NULL,
        created_by   TEXT    NOT NULL,
        last_used_at INTEGER
    ) WITHOUT ROWID;
    "#,
    // 4: feature flags — definitions, their audit log, evaluation keys (hashes only), ramps.
    r#"
    CREATE TABLE flag_sets (
        app        TEXT    PRIMARY KEY,
        evaluators TEXT    NOT NULL,
        metadata   TEXT    NOT NULL,
        generation INTEGER NOT NULL,
        changed_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE flags (
        app        TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        definition TEXT    NOT NULL,
        changed_at INTEGER NOT NULL,
        PRIMARY KEY (app, key)
    ) WITHOUT ROWID;

    CREATE TABLE flag_audit (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        app    TEXT    NOT NULL,
        flag   TEXT    NOT NULL,
        seq    INTEGER NOT NULL,
        at     INTEGER NOT NULL,
        who    TEXT    NOT NULL,
        action TEXT    NOT NULL,
        reason TEXT,
        before TEXT,
        after  TEXT,
        UNIQUE (app, flag, seq)
    );

    CREATE TABLE flag_keys (
        app          TEXT    NOT NULL,
        name         TEXT    NOT NULL,
        hash         TEXT    NOT NULL UNIQUE,
        rate_per_sec REAL    NOT NULL,
        created_at   INTEGER NOT NULL,
        created_by   TEXT    NOT NULL,
        PRIMARY KEY (app, name)
    ) WITHOUT ROWID;

    CREATE TABLE flag_ramps (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        app         TEXT    NOT NULL,
        flag        TEXT    NOT NULL,
        variant     TEXT    NOT NULL,
        state       TEXT    NOT NULL,
        before      TEXT    NOT NULL,
        started_at  INTEGER NOT NULL,
        started_by  TEXT    NOT NULL,
        finished_at INTEGER,
        outcome     TEXT,
        reason      TEXT
    );
    CREATE UNIQUE INDEX flag_ramps_one_active ON flag_ramps (app, flag) WHERE finished_at IS NULL;
    "#,
    // 5: releases as a rowid table. In a WITHOUT ROWID table a row's local payload is capped near
    // 1 KB per 4 KB page, so every release's spec (about 1 KB of JSON) spilled into an overflow page
    // of its own: 4.5 KB per release; here it sits in its leaf page, 1.4 KB per release (measured
    // over 1,000 releases; docs/benchmarks.md). Releases are never pruned, so this is the history's
    // cost. The table is rebuilt as SQLite documents it (foreign keys checked at the end: `migrate`).
    r#"
    CREATE TABLE releases_rowid (
        app         TEXT    NOT NULL,
        version     INTEGER NOT NULL CHECK (version > 0),
        label       TEXT,
        artifact    TEXT    NOT NULL,
        spec        TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        created_by  TEXT    NOT NULL,
        message     TEXT,
        rollback_of INTEGER,
        status      TEXT    NOT NULL,
        reason      TEXT,
        PRIMARY KEY (app, version)
    );
    INSERT INTO releases_rowid (app, version, label, artifact, spec, created_at, created_by, message,
                                rollback_of, status, reason)
        SELECT app, version, label, artifact, spec, created_at, created_by, message, rollback_of,
               status, reason
        FROM releases ORDER BY app, version;
    DROP TABLE releases;
    ALTER TABLE releases_rowid RENAME TO releases;
    "#,
    // 6: apps in maintenance (`slipway maintenance on`), so a restarted daemon keeps holding them.
    r#"
    CREATE TABLE maintenance (
        app         TEXT    PRIMARY KEY,
        since       INTEGER NOT NULL,
        hold_ms     INTEGER NOT NULL,
        retry_after INTEGER NOT NULL,
        page        TEXT,
        reason      TEXT,
        set_by      TEXT    NOT NULL
    );
    "#,
    // 7: watches after promotion (`[deploy] watch`) while they run, so a restarted daemon watches on.
    r#"
    CREATE TABLE watches (
        app     TEXT    PRIMARY KEY,
        release INTEGER NOT NULL,
        state   TEXT    NOT NULL,
        FOREIGN KEY (app, release) REFERENCES releases (app, version)
    );
    "#,
    // 8: each app's traffic per minute for its SLO's error budget (`[slo]`), pruned past its window.
    r#"
    CREATE TABLE slo_minutes (
        app      TEXT    NOT NULL,
        minute   INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        errors   INTEGER NOT NULL,
        slow     INTEGER NOT NULL,
        PRIMARY KEY (app, minute)
    ) WITHOUT ROWID;
    "#,
    // 9: drill reports (`slipway drill`, `[drill] schedule`), the newest kept per app.
    r#"
    CREATE TABLE drills (
        app     TEXT    NOT NULL,
        release INTEGER NOT NULL,
        at      INTEGER NOT NULL,
        report  TEXT    NOT NULL,
        PRIMARY KEY (app, release)
    );
    "#,
];

/// The daemon's durable state. `Send + Sync`: share it behind an `Arc`; calls are serialized on one
/// connection, which is plenty for a control plane and keeps transactions simple.
pub struct Store {
    conn: Mutex<Connection>,
    /// Where the database file is, for connections of their own (a backup's snapshot).
    pub(crate) path: std::path::PathBuf,
}

/// One unit of work on the database. Inside [`Store::transaction`] everything done through it commits
/// together or not at all.
pub struct Tx<'c> {
    pub(crate) conn: &'c Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(StoreError::io("cannot create the state folder", parent))?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // `journal_mode` answers with the mode in effect; WAL is persistent once set.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            warn_without_wal(path, &mode);
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        migrate(&mut conn)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Runs `f` in one immediate SQLite transaction: it commits if `f` returns `Ok`, and nothing of it
    /// is written if `f` returns `Err` (or panics).
    pub fn transaction<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        // IMMEDIATE takes the write lock up front, so a concurrent writer (e.g. `sqlite3` by hand) makes
        // us wait on busy_timeout instead of failing halfway through.
        let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&Tx { conn: &txn })?;
        txn.commit()?;
        Ok(value)
    }

    /// Runs a read-only `f` on the connection, outside any explicit transaction.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let conn = self.conn();
        f(&Tx { conn: &conn })
    }

    /// A store over a connection opened elsewhere (a read-only copy), its schema left as it is.
    pub(crate) fn over(conn: Connection, path: &Path) -> Store {
        Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        }
    }

    /// Calls `f` after each committed write (a transaction or a lone statement), on the writer's
    /// thread while it still holds the connection: `f` must only take note (set a flag, wake a task),
    /// never touch the store. Replaces an earlier `f`. What the Kubernetes standby copies hangs on it.
    pub fn on_commit(&self, mut f: impl FnMut() + Send + 'static) -> Result<()> {
        let mut conn = self.conn();
        conn.commit_hook(Some(move || {
            f();
            false // never veto the commit
        }))?;
        Ok(())
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: the open transaction (if any) was
        // rolled back when it was dropped during unwinding.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The crate has no logging dependency; a non-WAL journal (e.g. on a filesystem without shared memory)
/// still works, only with less read concurrency, so this is informational.
fn warn_without_wal(path: &Path, mode: &str) {
    eprintln!(
        "slipway-store: {} uses journal mode {mode} (WAL unavailable on this filesystem); state stays durable but reads may wait on writes",
        path.display()
    );
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    // A migration may rebuild a table others reference (SQLite's way to change one: make the new
    // table, copy, drop the old, rename), which row-by-row foreign key checks would refuse halfway. So
    // they run with foreign keys off (the caller turns them on after) and are checked as a whole
    // before each migration commits.
    conn.pragma_update(None, "foreign_keys", false)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let txn = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        txn.execute_batch(sql)?;
        let broken: Option<String> = txn
            .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
            .optional()?;
        if let Some(table) = broken {
            return Err(StoreError::corrupt(
                "schema migration",
                std::io::Error::other(format!(
                    "migration {} leaves rows of {table} without the row they refer to",
                    index + 1
                )),
            ));
        }
        txn.pragma_update(None, "user_version", index as i64 + 1)?;
        txn.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RolloutOutcome;
    use crate::test_support::{new_release, open_temp};
    use serde_json::json;
    use slipway_core::release::ReleaseStatus;

    #[test]
    fn open_sets_wal_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.db");
        let store = Store::open(&path).unwrap();
        let conn = store.conn();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn reopening_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        Store::open(&path).unwrap();
    }

    #[test]
    fn transaction_is_all_or_nothing() {
        let (_dir, store) = open_temp();
        let err = store
            .transaction(|tx| {
                tx.create_release(new_release("web"))?;
                tx.set_stable("web", 1)?;
                tx.add_event("web", Some(1), "release.created", "v1", 1)?;
                tx.acquire_lock("rollout:web", "rollout #1", "d1", 1)?;
                // Fails: the lock is now held, so everything above must vanish.
                tx.acquire_lock("rollout:web", "rollout #2", "d1", 2)
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::LockHeld { .. }), "{err}");
        assert!(store.releases("web").unwrap().is_empty());
        assert_eq!(store.stable("web").unwrap(), None);
        assert!(store.events(None, 0, 10).unwrap().is_empty());
        assert!(store.lock("rollout:web").unwrap().is_none());
        assert!(store.apps().unwrap().is_empty());
    }

    #[test]
    fn transaction_commits_several_writes_together() {
        let (_dir, store) = open_temp();
        store.create_release(new_release("web")).unwrap();
        let rollout = store
            .start_rollout("web", None, 1, &json!({"phase": "switching"}), 5)
            .unwrap();
        let event = store
            .transaction(|tx| {
                tx.finish_rollout(rollout.id, RolloutOutcome::Succeeded, None, 9)?;
                tx.set_stable("web", 1)?;
                tx.add_event("web", Some(1), "rollout.succeeded", "v1 is stable", 9)
            })
            .unwrap();
        assert!(store.active_rollout("web").unwrap().is_none());
        assert_eq!(store.stable("web").unwrap(), Some(1));
        assert_eq!(store.events(None, 0, 10).unwrap()[0].id, event);
    }

    #[test]
    fn reopening_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let rollout_id = {
            let store = Store::open(&path).unwrap();
            store.create_release(new_release("web")).unwrap();
            store.create_release(new_release("web")).unwrap();
            store.set_stable("web", 1).unwrap();
            store
                .set_release_status("web", 2, ReleaseStatus::Pending, Some("rolling out"))
                .unwrap();
            let r = store
                .start_rollout("web", Some(1), 2, &json!({"step": 2}), 7)
                .unwrap();
            store
                .add_event("web", Some(2), "rollout.started", "v1 -> v2", 7)
                .unwrap();
            store
                .acquire_lock("rollout:web", "rollout #1", "daemon-a", 7)
                .unwrap();
            r.id
        };
        let store = Store::open(&path).unwrap();
        assert_eq!(store.releases("web").unwrap().len(), 2);
        assert_eq!(
            store.release("web", 2).unwrap().unwrap().reason.as_deref(),
            Some("rolling out")
        );
        assert_eq!(store.stable("web").unwrap(), Some(1));
        let active = store.active_rollouts().unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(
            (active[0].id, &active[0].state),
            (rollout_id, &json!({"step": 2}))
        );
        assert_eq!(store.events(Some("web"), 0, 10).unwrap().len(), 1);
        assert_eq!(
            store.lock("rollout:web").unwrap().unwrap().daemon_id,
            "daemon-a"
        );
        assert_eq!(store.create_release(new_release("web")).unwrap().version, 3);
    }

    #[test]
    fn on_commit_runs_after_each_committed_write_and_not_for_a_failed_one() {
        let (_dir, store) = open_temp();
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = commits.clone();
        store
            .on_commit(move || {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .unwrap();
        store.create_release(new_release("web")).unwrap();
        let after_one = commits.load(std::sync::atomic::Ordering::SeqCst);
        assert!(after_one >= 1);
        let failed: Result<()> = store.transaction(|tx| {
            tx.conn
                .execute("INSERT INTO stable (app, version) VALUES ('x', 1)", [])?;
            Err(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
        });
        assert!(failed.is_err());
        assert_eq!(commits.load(std::sync::atomic::Ordering::SeqCst), after_one);
    }

    #[test]
    fn store_is_shareable_across_threads() {
        let (_dir, store) = open_temp();
        let store = std::sync::Arc::new(store);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..5)
                        .map(|_| store.create_release(new_release("web")).unwrap().version)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut versions: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        versions.sort();
        assert_eq!(
            versions,
            (1..=20).collect::<Vec<_>>(),
            "no version handed out twice"
        );
    }

    #[test]
    fn releases_rebuilt_as_a_rowid_table_keep_every_row_and_reference() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        // A database as schema 4 left it, with releases, a stable one and rollouts pointing at them.
        {
            let mut conn = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS.iter().take(4).enumerate() {
                let txn = conn.transaction().unwrap();
                txn.execute_batch(sql).unwrap();
                txn.pragma_update(None, "user_version", i as i64 + 1)
                    .unwrap();
                txn.commit().unwrap();
            }
            for v in 1..=3 {
                conn.execute(
                    "INSERT INTO releases (app, version, artifact, spec, created_at, created_by, status)
                     VALUES ('web', ?1, 'sha256:x', '{}', ?1, 'me', 'superseded')",
                    [v],
                )
                .unwrap();
            }
            conn.execute("INSERT INTO stable (app, version) VALUES ('web', 3)", [])
                .unwrap();
            conn.execute(
                "INSERT INTO rollouts (app, from_version, to_version, state, started_at)
                 VALUES ('web', 2, 3, '{}', 1)",
                [],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let conn = store.conn();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'releases'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM releases ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        // The references still hold, and are still enforced.
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        assert!(
            conn.execute("INSERT INTO stable (app, version) VALUES ('api', 9)", [])
                .is_err()
        );
        drop(conn);
        assert_eq!(store.stable("web").unwrap(), Some(3));
        assert_eq!(store.rollouts("web", 10).unwrap()[0].to, 3);
        assert_eq!(store.create_release(new_release("web")).unwrap().version, 4);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
    }
}
